//! Classic members of a consumer group: JoinGroup, SyncGroup, Heartbeat and LeaveGroup
//! from consumers still on the classic protocol, in a group the coordinator assigns
//! (KIP-848's online migration; see [`crate::migration`]).
//!
//! A classic member is reconciled like any other, with what it says it owns taken from
//! the subscription in its JoinGroup. Its generation is its member epoch. JoinGroup is
//! answered at once with no member list (no client leads); SyncGroup hands it its current
//! assignment, written in the embedded consumer protocol. A Heartbeat answers
//! REBALANCE_IN_PROGRESS whenever the member must rejoin to move on: the group epoch passed
//! it, it must revoke partitions, or partitions it waits for were released. A member that
//! does not rejoin or sync within its rebalance timeout is removed.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::consumer_group::{ConsumerGroup, ConsumerMember, MemberState};
use crate::consumer_group_heartbeat::{
    apply_member_update, consumer_record, fence_member, member_before_update, plan_member_update,
    removal_keys, MemberUpdate, Refusal,
};
use crate::consumer_records::ClassicMemberMetadata;
use crate::coordinator::Coordinator;
use crate::embedded_protocol::{self, parse_subscription};
use crate::group::RemovalReason;
use crate::migration::CONSUMER_PROTOCOL_TYPE;
use crate::topics::TopicImage;
use crate::{GroupResponse, Output, RequestContext};

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Whether the group `group_id` is a consumer group, whose classic requests come here.
pub(crate) fn is_consumer_group(c: &Coordinator, group_id: &str) -> bool {
    c.groups.get(group_id).is_some_and(|g| g.modern.is_some())
}

/// Whether a member with these protocols can join: type `consumer`, and one protocol every
/// classic member already in the group supports.
fn supports(cg: &ConsumerGroup, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
    if protocol_type != CONSUMER_PROTOCOL_TYPE || protocols.is_empty() {
        return false;
    }
    let classic: Vec<&ClassicMemberMetadata> = cg
        .members
        .values()
        .filter_map(|m| m.classic.as_ref())
        .collect();
    protocols.iter().any(|(name, _)| {
        classic
            .iter()
            .all(|m| m.protocols.iter().any(|(n, _)| n == name))
    })
}

/// The member a classic request names: by instance id for a static member (whose member id
/// must match), else by member id; it must speak the classic protocol.
fn classic_member<'a>(
    cg: &'a ConsumerGroup,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<&'a ConsumerMember, ResponseError> {
    let member = match instance_id {
        None => cg.members.get(member_id),
        Some(iid) => {
            let m = cg.static_members.get(iid).and_then(|id| cg.members.get(id));
            if m.is_some_and(|m| m.member_id != member_id) {
                return Err(ResponseError::FencedInstanceId);
            }
            m
        }
    };
    match member {
        Some(m) if m.uses_classic_protocol() => Ok(m),
        _ => Err(ResponseError::UnknownMemberId),
    }
}

/// The consumer group `group_id` and its classic member a SyncGroup or Heartbeat names,
/// which must bring the member's epoch as its generation.
fn classic_member_at<'a>(
    c: &'a Coordinator,
    group_id: &str,
    member_id: &str,
    instance_id: Option<&str>,
    generation_id: i32,
) -> Result<(&'a ConsumerGroup, &'a ConsumerMember), ResponseError> {
    let cg = c
        .groups
        .get(group_id)
        .and_then(|g| g.modern.as_ref())
        .expect("caller checked is_consumer_group");
    let m = classic_member(cg, member_id, instance_id)?;
    if generation_id != m.member_epoch {
        return Err(ResponseError::IllegalGeneration);
    }
    Ok((cg, m))
}

/// JoinGroup to a consumer group with members. `member_id` is empty for a new member.
#[allow(clippy::too_many_arguments)]
pub(crate) fn join(
    c: &mut Coordinator,
    now_ms: i64,
    ctx: &RequestContext,
    req: &JoinGroupRequest,
    protocols: Vec<(String, Bytes)>,
    rebalance_timeout_ms: i32,
    image: &Arc<TopicImage>,
    out: &mut Output,
) {
    let v = ctx.api_version;
    let group_id = req.group_id.0.to_string();
    let instance_id = req.group_instance_id.as_ref().map(|s| s.to_string());
    c.last_image = image.clone();
    let unknown = req.member_id.is_empty();
    let member_id = if unknown {
        c.new_member_id(&ctx.client_id)
    } else {
        req.member_id.to_string()
    };
    let response = match join_member(
        c,
        now_ms,
        ctx,
        req,
        &group_id,
        &member_id,
        unknown,
        instance_id.as_deref(),
        protocols,
        rebalance_timeout_ms,
        image,
        out,
    ) {
        Ok(r) => r,
        Err((code, _)) => crate::membership::join_error(v, code, &member_id),
    };
    out.responses
        .push((ctx.token, GroupResponse::JoinGroup(response)));
}

#[allow(clippy::too_many_arguments)]
fn join_member(
    c: &mut Coordinator,
    now_ms: i64,
    ctx: &RequestContext,
    req: &JoinGroupRequest,
    group_id: &str,
    member_id: &str,
    unknown: bool,
    instance_id: Option<&str>,
    protocols: Vec<(String, Bytes)>,
    rebalance_timeout_ms: i32,
    image: &TopicImage,
    out: &mut Output,
) -> Result<JoinGroupResponse, Refusal> {
    let v = ctx.api_version;
    let cg = c
        .groups
        .get(group_id)
        .and_then(|g| g.modern.as_ref())
        .expect("caller checked is_consumer_group");

    // 1. Guards: room, protocols, and a member id for a new dynamic member (v4+).
    let max = c.config.consumer_max_size;
    if cg.members.len() >= max && !cg.members.contains_key(member_id) {
        return Err((
            ResponseError::GroupMaxSizeReached,
            format!("The consumer group has reached its maximum capacity of {max} members."),
        ));
    }
    if !supports(cg, req.protocol_type.as_str(), &protocols) {
        return Err((
            ResponseError::InconsistentGroupProtocol,
            format!("Member {member_id}'s protocols are not supported."),
        ));
    }
    if v >= 4 && unknown && instance_id.is_none() {
        return Ok(JoinGroupResponse::default()
            .with_error_code(ResponseError::MemberIdRequired.code())
            .with_generation_id(-1)
            .with_protocol_name(if v >= 7 { None } else { Some(sb("")) })
            .with_member_id(sb(member_id)));
    }
    let Some(sub) = parse_subscription(&protocols[0].1) else {
        return Err((
            ResponseError::UnknownServerError,
            "Malformed embedded consumer protocol in subscription deserialization.".into(),
        ));
    };

    // 2. The member: found, new, or a static member taking its instance's place.
    let mut replaced: Option<&ConsumerMember> = None;
    let existing: Option<&ConsumerMember> = match instance_id {
        None => cg.members.get(member_id),
        Some(iid) => {
            let holder = cg.static_members.get(iid).and_then(|id| cg.members.get(id));
            match holder {
                Some(h) if unknown => {
                    replaced = Some(h);
                    None
                }
                Some(h) if h.member_id != member_id => {
                    return Err((
                        ResponseError::FencedInstanceId,
                        format!(
                        "Static member {member_id} with instance id {iid} was fenced by member {}.",
                        h.member_id
                    ),
                    ))
                }
                Some(h) => Some(h),
                None if unknown => None,
                None => {
                    return Err((
                        ResponseError::UnknownMemberId,
                        format!(
                            "Member with instance id {iid} is not a member of group {group_id}."
                        ),
                    ))
                }
            }
        }
    };
    let is_new = existing.is_none();
    let member = member_before_update(existing, replaced, member_id);
    let mut updated = member.clone();
    if let Some(iid) = instance_id {
        updated.instance_id = Some(iid.to_string());
    }
    if let Some(r) = &sub.rack_id {
        updated.rack_id = Some(r.clone());
    }
    if rebalance_timeout_ms != -1 {
        updated.rebalance_timeout_ms = rebalance_timeout_ms;
    }
    updated.subscribed_topic_names = sub.topics.clone();
    updated.subscribed_topic_regex = None;
    updated.client_id = ctx.client_id.clone();
    updated.client_host = ctx.client_host.clone();
    updated.classic = Some(ClassicMemberMetadata {
        session_timeout_ms: req.session_timeout_ms,
        protocols: protocols.clone(),
    });
    let owned = embedded_protocol::to_assignment(&sub.owned, image);

    // 3. A replaced static member's tombstones go first; then the shared heartbeat steps:
    //    the member's records (with the target it inherits), group epoch, target, and one
    //    reconciliation step.
    let partition = c.partition_of(group_id);
    let mut records = Vec::new();
    if let Some(old) = replaced {
        for k in removal_keys(group_id, &old.member_id) {
            records.push(consumer_record(partition, k, None));
        }
    }
    let replaced_old = replaced.map(|m| (m.member_id.clone(), m.instance_id.clone()));
    let plan = plan_member_update(
        c,
        group_id,
        cg,
        image,
        MemberUpdate {
            before: &member,
            updated,
            is_new,
            replaced,
            owned: Some(&owned),
        },
        records,
    )?;
    let member_epoch = plan.reconciled.member_epoch;

    // 4. Applied through replay; the member must sync within its rebalance timeout.
    apply_member_update(
        c,
        now_ms,
        group_id,
        image.version,
        plan.records,
        member_id,
        instance_id,
        is_new,
        replaced_old,
        out,
    );
    let timers = c.modern_timers_entry(group_id, member_id);
    timers.session_deadline_ms = now_ms + i64::from(req.session_timeout_ms);
    timers.join_deadline_ms = None;
    timers.revocation_deadline = None;
    timers.sync_deadline_ms = Some(now_ms + i64::from(rebalance_timeout_ms.max(0)));

    Ok(JoinGroupResponse::default()
        .with_member_id(sb(member_id))
        .with_generation_id(member_epoch)
        .with_protocol_type(if v >= 7 {
            Some(sb(CONSUMER_PROTOCOL_TYPE))
        } else {
            None
        })
        .with_protocol_name(Some(sb(&protocols[0].0)))
        .with_leader(sb("")))
}

/// Asks a classic member to rejoin (REBALANCE_IN_PROGRESS), starting its join timeout
/// unless one runs.
fn ask_to_rejoin(c: &mut Coordinator, now_ms: i64, group_id: &str, m: &ConsumerMember) {
    let deadline = now_ms + i64::from(m.rebalance_timeout_ms.max(0));
    let t = c.modern_timers_entry(group_id, &m.member_id);
    t.join_deadline_ms.get_or_insert(deadline);
}

/// Whether a classic member must rejoin to move on: the group epoch passed it, it must
/// revoke partitions, or partitions it waits for are now free.
fn must_rejoin(cg: &ConsumerGroup, m: &ConsumerMember) -> bool {
    m.member_epoch < cg.group_epoch
        || m.state == MemberState::UnrevokedPartitions
        || (m.state == MemberState::UnreleasedPartitions && !waits_on_unreleased(cg, m))
}

/// Whether some partition of the member's target is still held by another member.
fn waits_on_unreleased(cg: &ConsumerGroup, m: &ConsumerMember) -> bool {
    cg.target_of(&m.member_id).iter().any(|(id, ps)| {
        ps.iter().any(|p| {
            !m.assigned.get(id).is_some_and(|a| a.contains(p))
                && cg
                    .owners
                    .get(&(*id, *p))
                    .is_some_and(|o| o.0 != m.member_id)
        })
    })
}

/// SyncGroup from a classic member of a consumer group: its current assignment.
pub(crate) fn sync(
    c: &mut Coordinator,
    now_ms: i64,
    ctx: &RequestContext,
    req: &SyncGroupRequest,
    image: &Arc<TopicImage>,
    out: &mut Output,
) {
    c.last_image = image.clone();
    let group_id = req.group_id.0.as_str();
    let result = (|| {
        let (cg, m) = classic_member_at(
            c,
            group_id,
            req.member_id.as_str(),
            req.group_instance_id.as_deref(),
            req.generation_id,
        )?;
        let meta = m.classic.as_ref().expect("classic_member checked");
        let first = meta.protocols.first().map(|(n, _)| n.as_str());
        if req
            .protocol_type
            .as_ref()
            .is_some_and(|t| t.as_str() != CONSUMER_PROTOCOL_TYPE)
            || req
                .protocol_name
                .as_ref()
                .is_some_and(|n| Some(n.as_str()) != first)
        {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        if cg.group_epoch > m.member_epoch && m.state != MemberState::UnrevokedPartitions {
            let m = m.clone();
            ask_to_rejoin(c, now_ms, group_id, &m);
            return Err(ResponseError::RebalanceInProgress);
        }
        let version = meta
            .protocols
            .first()
            .and_then(|(_, md)| embedded_protocol::version_of(md))
            .unwrap_or(0);
        let assignment = embedded_protocol::encode_assignment(&m.assigned, image, version);
        let (member_id, session_ms) = (m.member_id.clone(), meta.session_timeout_ms);
        let t = c.modern_timers_entry(group_id, &member_id);
        t.sync_deadline_ms = None;
        t.session_deadline_ms = now_ms + i64::from(session_ms);
        Ok(assignment)
    })();
    let r = match result {
        Ok(assignment) => SyncGroupResponse::default()
            .with_protocol_type(req.protocol_type.clone())
            .with_protocol_name(req.protocol_name.clone())
            .with_assignment(assignment),
        Err(code) => crate::membership::sync_error(code),
    };
    out.responses.push((ctx.token, GroupResponse::SyncGroup(r)));
}

/// Heartbeat from a classic member of a consumer group.
pub(crate) fn heartbeat(
    c: &mut Coordinator,
    now_ms: i64,
    ctx: &RequestContext,
    req: &HeartbeatRequest,
    out: &mut Output,
) {
    let group_id = req.group_id.0.as_str();
    let code = (|| {
        let (cg, m) = classic_member_at(
            c,
            group_id,
            req.member_id.as_str(),
            req.group_instance_id.as_deref(),
            req.generation_id,
        )?;
        let rejoin = must_rejoin(cg, m);
        let m = m.clone();
        let session_ms = m.classic.as_ref().map_or(0, |x| x.session_timeout_ms);
        c.modern_timers_entry(group_id, &m.member_id)
            .session_deadline_ms = now_ms + i64::from(session_ms);
        if rejoin {
            ask_to_rejoin(c, now_ms, group_id, &m);
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    })();
    let r = HeartbeatResponse::default().with_error_code(match code {
        Ok(()) => 0,
        Err(e) => e.code(),
    });
    out.responses.push((ctx.token, GroupResponse::Heartbeat(r)));
}

/// LeaveGroup for classic members of a consumer group: each named member is removed, and
/// the others get its partitions.
pub(crate) fn leave(
    c: &mut Coordinator,
    now_ms: i64,
    group_id: &str,
    leaving: Vec<(String, Option<String>)>,
    out: &mut Output,
) -> Vec<MemberResponse> {
    let mut results = Vec::with_capacity(leaving.len());
    for (member_id, instance_id) in leaving {
        let found = c
            .groups
            .get(group_id)
            .and_then(|g| g.modern.as_ref())
            .ok_or(ResponseError::UnknownMemberId)
            .and_then(|cg| {
                let m = match &instance_id {
                    None => cg.members.get(&member_id),
                    Some(iid) => {
                        let m = cg.static_members.get(iid).and_then(|id| cg.members.get(id));
                        // An admin removes a static member by instance id alone.
                        if m.is_some_and(|m| !member_id.is_empty() && m.member_id != member_id) {
                            return Err(ResponseError::FencedInstanceId);
                        }
                        m
                    }
                };
                match m {
                    Some(m) if m.uses_classic_protocol() => Ok(m.member_id.clone()),
                    _ => Err(ResponseError::UnknownMemberId),
                }
            });
        let code = match found {
            Ok(id) => {
                let reason = if member_id.is_empty() {
                    RemovalReason::AdminRemoval
                } else {
                    RemovalReason::Left
                };
                fence_member(c, now_ms, group_id, &id, reason, out);
                0
            }
            Err(e) => e.code(),
        };
        results.push(
            MemberResponse::default()
                .with_member_id(sb(&member_id))
                .with_group_instance_id(instance_id.as_deref().map(sb))
                .with_error_code(code),
        );
    }
    results
}
