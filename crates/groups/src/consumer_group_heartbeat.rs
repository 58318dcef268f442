//! ConsumerGroupHeartbeat (KIP-848): join, heartbeat, reconcile and leave in one API, and
//! the session and revocation timeouts of consumer-protocol members.
//!
//! A heartbeat is handled in three steps, as Kafka does: (1) the member is created or
//! updated, and the group epoch is bumped when its subscription or the subscribed topics
//! changed; (2) when the group epoch is ahead of the target assignment's, the assignor
//! computes a new target for every member; (3) the member is reconciled one step towards
//! its target ([`crate::reconcile`]). Each step only emits records; the records are then
//! replayed into the group, so live and loaded state cannot differ.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as WireAssignment, TopicPartitions,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::assignors::{self, MemberSpec, TopicSpec};
use crate::consumer_group::{
    ConsumerGroup, ConsumerMember, MemberState, MemberTimers, LEAVE_GROUP_MEMBER_EPOCH,
    LEAVE_GROUP_STATIC_MEMBER_EPOCH,
};
use crate::consumer_records::{
    Assignment, ConsumerKey, GroupMetadataValue, PartitionMetadataValue,
    TargetAssignmentMemberValue, TargetAssignmentMetadataValue, TopicMetadata,
};
use crate::coordinator::Coordinator;
use crate::group::{GroupEventKind, RemovalReason};
use crate::migration;
use crate::rebalances::{MemberChangeKind, RebalanceTrigger};
use crate::records::RecordKey;
use crate::topics::TopicImage;
use crate::{GroupResponse, Output, Record, RequestContext};

/// A refusal: the error code and the sentence that tells the client what to do.
pub(crate) type Refusal = (ResponseError, String);

/// Topics a regular expression never matches, as in Kafka (internal topics).
const INTERNAL_TOPICS: [&str; 2] = ["__consumer_offsets", "__transaction_state"];

pub(crate) fn heartbeat(
    c: &mut Coordinator,
    now_ms: i64,
    ctx: &RequestContext,
    req: ConsumerGroupHeartbeatRequest,
    image: &Arc<TopicImage>,
    out: &mut Output,
) {
    c.last_image = image.clone();
    let response = match run(c, now_ms, ctx, &req, image, out) {
        Ok(r) => r,
        Err((e, message)) => ConsumerGroupHeartbeatResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(StrBytes::from_string(message))),
    };
    out.responses
        .push((ctx.token, GroupResponse::ConsumerGroupHeartbeat(response)));
}

fn invalid(message: &str) -> Refusal {
    (ResponseError::InvalidRequest, message.to_string())
}

/// Rejects what no heartbeat may carry, before anything is looked up.
fn throw_if_request_is_invalid(
    req: &ConsumerGroupHeartbeatRequest,
    version: i16,
) -> Result<(), Refusal> {
    if req.group_id.is_empty() {
        return Err(invalid("GroupId can't be empty."));
    }
    if req.instance_id.as_ref().is_some_and(|s| s.is_empty()) {
        return Err(invalid("InstanceId can't be empty."));
    }
    if req.rack_id.as_ref().is_some_and(|s| s.is_empty()) {
        return Err(invalid("RackId can't be empty."));
    }
    let epoch = req.member_epoch;
    if epoch > 0 || epoch == LEAVE_GROUP_MEMBER_EPOCH {
        if req.member_id.is_empty() {
            return Err(invalid("MemberId can't be empty."));
        }
    } else if epoch == 0 {
        // From version 1 on the client chooses its member id (KIP-1082).
        if version >= 1 && req.member_id.is_empty() {
            return Err(invalid("MemberId can't be empty."));
        }
        if req.rebalance_timeout_ms == -1 {
            return Err(invalid(
                "RebalanceTimeoutMs must be provided in first request.",
            ));
        }
        if req.topic_partitions.as_ref().is_none_or(|t| !t.is_empty()) {
            return Err(invalid("TopicPartitions must be empty when (re-)joining."));
        }
        let names = req
            .subscribed_topic_names
            .as_ref()
            .is_some_and(|n| !n.is_empty());
        if !names && req.subscribed_topic_regex.is_none() {
            return Err(invalid(
                "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
            ));
        }
    } else if epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        if req.member_id.is_empty() {
            return Err(invalid("MemberId can't be empty."));
        }
        if req.instance_id.is_none() {
            return Err(invalid("InstanceId can't be null."));
        }
    } else {
        return Err(invalid("MemberEpoch is invalid."));
    }
    if let Some(regex) = &req.subscribed_topic_regex {
        if compile(regex).is_err() {
            return Err((
                ResponseError::InvalidRegularExpression,
                format!("SubscribedTopicRegex `{regex}` is not a valid regular expression."),
            ));
        }
    }
    if let Some(a) = &req.server_assignor {
        if !assignors::ASSIGNORS.contains(&a.as_str()) {
            return Err((
                ResponseError::UnsupportedAssignor,
                format!(
                    "ServerAssignor {a} is not supported. Supported assignors: {}.",
                    assignors::ASSIGNORS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// A topic regex as Kafka applies it: the whole name must match.
pub(crate) fn compile(regex: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{regex})$"))
        .size_limit(1 << 20)
        .build()
}

fn owned_of(req: &ConsumerGroupHeartbeatRequest) -> Option<Assignment> {
    req.topic_partitions.as_ref().map(|tps| {
        let mut a = Assignment::new();
        for tp in tps {
            a.entry(tp.topic_id)
                .or_default()
                .extend(tp.partitions.iter().copied());
        }
        a
    })
}

fn is_subset(owned: Option<&Assignment>, of: &Assignment) -> bool {
    let Some(owned) = owned else { return false };
    owned.iter().all(|(id, ps)| {
        ps.is_empty()
            || of
                .get(id)
                .is_some_and(|have| ps.iter().all(|p| have.contains(p)))
    })
}

fn fenced(message: String) -> Refusal {
    (ResponseError::FencedMemberEpoch, message)
}

/// The member's epoch must be the one the coordinator knows, or the one before it when the
/// member holds no more than its assignment (the answer that bumped it was lost).
fn throw_if_member_epoch_is_invalid(
    member: &ConsumerMember,
    received: i32,
    owned: Option<&Assignment>,
) -> Result<(), Refusal> {
    if received > member.member_epoch {
        return Err(fenced(format!(
            "The consumer group member has a greater member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
            member.member_epoch
        )));
    }
    if received < member.member_epoch
        && (received != member.previous_member_epoch || !is_subset(owned, &member.assigned))
    {
        return Err(fenced(format!(
            "The consumer group member has a smaller member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
            member.member_epoch
        )));
    }
    Ok(())
}

fn unknown_member(group_id: &str, member_id: &str) -> Refusal {
    (
        ResponseError::UnknownMemberId,
        format!("Member {member_id} is not a member of group {group_id}."),
    )
}

/// The consumer group `group_id` if it is one (or may become one: a new or empty classic
/// group, when joining).
fn consumer_group<'a>(
    c: &'a Coordinator,
    group_id: &str,
    joining: bool,
) -> Result<Option<&'a ConsumerGroup>, Refusal> {
    match c.groups.get(group_id) {
        None if joining => Ok(None),
        None => Err((
            ResponseError::GroupIdNotFound,
            format!("Consumer group {group_id} not found."),
        )),
        Some(g) => match &g.modern {
            Some(cg) => Ok(Some(cg)),
            None if joining && g.members.is_empty() && g.pending_members.is_empty() => Ok(None),
            None => Err((
                ResponseError::GroupIdNotFound,
                format!("Group {group_id} is not a consumer group."),
            )),
        },
    }
}

fn run(
    c: &mut Coordinator,
    now_ms: i64,
    ctx: &RequestContext,
    req: &ConsumerGroupHeartbeatRequest,
    image: &TopicImage,
    out: &mut Output,
) -> Result<ConsumerGroupHeartbeatResponse, Refusal> {
    throw_if_request_is_invalid(req, ctx.api_version)?;
    let group_id = req.group_id.0.to_string();
    let epoch = req.member_epoch;
    if epoch == LEAVE_GROUP_MEMBER_EPOCH || epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        return leave(c, now_ms, &group_id, req, out);
    }
    let joining = epoch == 0;
    let owned = owned_of(req);
    let empty = ConsumerGroup::default();
    let generated_id;
    let member_id = if req.member_id.is_empty() {
        generated_id = c.new_consumer_member_id();
        generated_id.as_str()
    } else {
        req.member_id.as_str()
    };
    if !c.groups.contains_key(&group_id) && c.groups.len() >= crate::GROUPS_MAX {
        return Err((
            ResponseError::CoordinatorNotAvailable,
            format!(
                "The coordinator holds {} groups, its limit.",
                crate::GROUPS_MAX
            ),
        ));
    }
    // A classic group with members becomes a consumer group when a consumer-protocol member
    // joins it, if the migration policy allows (see crate::migration).
    let classic_with_members = c
        .groups
        .get(&group_id)
        .is_some_and(|g| g.modern.is_none() && !g.members.is_empty());
    if joining && classic_with_members {
        migration::check_upgrade(c, &group_id)?;
        migration::upgrade(c, now_ms, &group_id, image, out)?;
    }
    let cg = consumer_group(c, &group_id, joining)?.unwrap_or(&empty);

    // The group may not grow past its cap.
    let max = c.config.consumer_max_size;
    if cg.members.len() >= max && !cg.members.contains_key(member_id) {
        return Err((
            ResponseError::GroupMaxSizeReached,
            format!("The consumer group has reached its maximum capacity of {max} members."),
        ));
    }

    // 1. The member: found, new, rejoining, or a static member replacing its instance.
    let mut records: Vec<Record> = Vec::new();
    let partition = c.partition_of(&group_id);
    let rec = |k: ConsumerKey, v: Option<bytes::Bytes>| consumer_record(partition, k, v);
    let mut replaced: Option<&ConsumerMember> = None;
    let existing: Option<&ConsumerMember> = match &req.instance_id {
        None => {
            let m = cg.members.get(member_id);
            match m {
                None if !joining => return Err(unknown_member(&group_id, member_id)),
                Some(m) if !joining => throw_if_member_epoch_is_invalid(m, epoch, owned.as_ref())?,
                _ => {}
            }
            m
        }
        Some(iid) => {
            let holder = cg
                .static_members
                .get(iid.as_str())
                .and_then(|id| cg.members.get(id));
            match holder {
                None if !joining => {
                    return Err((
                        ResponseError::UnknownMemberId,
                        format!("Instance id {iid} is unknown."),
                    ))
                }
                None => None,
                Some(h) if h.member_id != member_id => {
                    if !joining {
                        return Err((
                            ResponseError::FencedInstanceId,
                            format!(
                                "Static member {member_id} with instance id {iid} was fenced by member {}.",
                                h.member_id
                            ),
                        ));
                    }
                    // A consumer-protocol instance must have left with epoch -2 first;
                    // a classic one is replaced as a classic rejoin would replace it.
                    if h.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH
                        && !h.uses_classic_protocol()
                    {
                        return Err((
                            ResponseError::UnreleasedInstanceId,
                            format!(
                                "Static member {member_id} with instance id {iid} cannot join the group because the instance id is owned by {} member.",
                                h.member_id
                            ),
                        ));
                    }
                    replaced = Some(h);
                    None
                }
                Some(h) => {
                    if !joining {
                        throw_if_member_epoch_is_invalid(h, epoch, owned.as_ref())?;
                    }
                    Some(h)
                }
            }
        }
    };
    let is_new = existing.is_none();
    let mut member = member_before_update(existing, replaced, member_id);
    if joining && existing.is_some() {
        // A member rejoins (it was fenced, or restarted with its member id): it holds
        // nothing now, and reconciles from epoch 0.
        member.member_epoch = 0;
        member.previous_member_epoch = 0;
        member.state = MemberState::Stable;
        member.assigned.clear();
        member.pending_revocation.clear();
    }
    let before = member.clone();
    if let Some(old) = replaced {
        for k in removal_keys(&group_id, &old.member_id) {
            records.push(rec(k, None));
        }
    }
    let mut updated = member.clone();
    // Whatever it spoke before, the member now speaks the consumer protocol.
    updated.classic = None;
    if let Some(iid) = &req.instance_id {
        updated.instance_id = Some(iid.to_string());
    }
    if let Some(r) = &req.rack_id {
        updated.rack_id = Some(r.to_string());
    }
    if req.rebalance_timeout_ms != -1 {
        updated.rebalance_timeout_ms = req.rebalance_timeout_ms;
    }
    if let Some(a) = &req.server_assignor {
        updated.server_assignor = Some(a.to_string());
    }
    if let Some(names) = &req.subscribed_topic_names {
        let mut n: Vec<String> = names.iter().map(|t| t.0.to_string()).collect();
        n.sort();
        n.dedup();
        updated.subscribed_topic_names = n;
    }
    if let Some(r) = &req.subscribed_topic_regex {
        updated.subscribed_topic_regex = if r.is_empty() {
            None
        } else {
            Some(r.to_string())
        };
    }
    updated.client_id = ctx.client_id.clone();
    updated.client_host = ctx.client_host.clone();
    let plan = plan_member_update(
        c,
        &group_id,
        cg,
        image,
        MemberUpdate {
            before: &member,
            updated,
            is_new,
            replaced,
            owned: owned.as_ref(),
        },
        records,
    )?;
    let records = plan.records;
    let reconciled = plan.reconciled;
    let assigned_changed = reconciled.assigned != before.assigned || is_new;
    let full_request = joining
        || (req.rebalance_timeout_ms != -1
            && req.subscribed_topic_names.is_some()
            && req.topic_partitions.is_some());
    let replaced_old = replaced.map(|m| (m.member_id.clone(), m.instance_id.clone()));
    let member_epoch = reconciled.member_epoch;
    let state = reconciled.state;
    let rebalance_timeout_ms = reconciled.rebalance_timeout_ms;
    let assignment = reconciled.assigned.clone();

    apply_member_update(
        c,
        now_ms,
        &group_id,
        image.version,
        records,
        member_id,
        req.instance_id.as_deref(),
        is_new,
        replaced_old,
        out,
    );
    let session_timeout_ms = c.consumer_session_timeout_ms(&group_id);
    let timers = c.modern_timers_entry(&group_id, member_id);
    timers.session_deadline_ms = now_ms + i64::from(session_timeout_ms);
    timers.revocation_deadline = match state {
        MemberState::UnrevokedPartitions => match timers.revocation_deadline {
            Some((t, e)) if e == member_epoch => Some((t, e)),
            _ => Some((
                now_ms + i64::from(rebalance_timeout_ms.max(0)),
                member_epoch,
            )),
        },
        _ => None,
    };

    let mut response = ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(StrBytes::from_string(member_id.to_string())))
        .with_member_epoch(member_epoch)
        .with_heartbeat_interval_ms(c.consumer_heartbeat_interval_ms(&group_id));
    if full_request || assigned_changed {
        response = response.with_assignment(Some(wire_assignment(&assignment)));
    }
    Ok(response)
}

/// The member an update starts from: the one found, a static member's new instance taking
/// over the old one's partitions from epoch 0, or a new member.
pub(crate) fn member_before_update(
    existing: Option<&ConsumerMember>,
    replaced: Option<&ConsumerMember>,
    member_id: &str,
) -> ConsumerMember {
    match (existing, replaced) {
        (Some(m), _) => m.clone(),
        (None, Some(old)) => {
            let mut m = old.clone();
            m.member_id = member_id.to_string();
            m.member_epoch = 0;
            m.previous_member_epoch = 0;
            m
        }
        (None, None) => ConsumerMember::new(member_id),
    }
}

/// One member's new metadata, as a heartbeat or a classic JoinGroup brings it.
pub(crate) struct MemberUpdate<'a> {
    /// The member as stored (reset to epoch 0 when it rejoins).
    pub before: &'a ConsumerMember,
    /// The member with the request's metadata applied.
    pub updated: ConsumerMember,
    pub is_new: bool,
    /// The static member this one replaces.
    pub replaced: Option<&'a ConsumerMember>,
    /// The partitions the member says it owns; `None` when it did not say.
    pub owned: Option<&'a Assignment>,
}

/// What a member update decides: its records, and the member after one reconciliation step.
pub(crate) struct Plan {
    pub records: Vec<Record>,
    pub reconciled: ConsumerMember,
}

/// Steps 1 to 3 of a heartbeat for one member: its metadata record and the group epoch
/// (bumped when its subscription or the subscribed topics changed), a new target assignment
/// when the group epoch moved past it, and one step of reconciliation. Only records come
/// out; nothing is applied.
pub(crate) fn plan_member_update(
    c: &Coordinator,
    group_id: &str,
    cg: &ConsumerGroup,
    image: &TopicImage,
    u: MemberUpdate<'_>,
    mut records: Vec<Record>,
) -> Result<Plan, Refusal> {
    let group_id = group_id.to_string();
    let member_id = u.updated.member_id.clone();
    let member_id = member_id.as_str();
    let partition = c.partition_of(&group_id);
    let rec = |k: ConsumerKey, v: Option<bytes::Bytes>| consumer_record(partition, k, v);
    let (is_new, replaced, owned, updated) = (u.is_new, u.replaced, u.owned, u.updated);
    let member = u.before;
    let metadata_changed = is_new || updated.metadata_value() != u.before.metadata_value();
    if metadata_changed {
        records.push(rec(
            ConsumerKey::MemberMetadata {
                group: group_id.clone(),
                member: member_id.to_string(),
            },
            Some(updated.metadata_value().encode()),
        ));
    }
    if let Some(old) = replaced {
        records.push(rec(
            ConsumerKey::TargetAssignmentMember {
                group: group_id.clone(),
                member: member_id.to_string(),
            },
            Some(
                TargetAssignmentMemberValue {
                    partitions: cg.target_of(&old.member_id),
                }
                .encode(),
            ),
        ));
        records.push(rec(
            ConsumerKey::CurrentMemberAssignment {
                group: group_id.clone(),
                member: member_id.to_string(),
            },
            Some(member.assignment_value().encode()),
        ));
    }
    let mut bump = is_new || updated.subscription_differs(member);

    // The members as they will be, for the subscription and the assignor. Most heartbeats
    // of a stable group need neither, and a group may have thousands of members, so the
    // map is built only when one of them is needed.
    let replaced_id = replaced.map(|m| m.member_id.clone());
    let image_changed = c
        .modern_image_versions
        .get(&group_id)
        .is_none_or(|v| *v != image.version);
    let needs_members = bump || image_changed || cg.group_epoch > cg.assignment_epoch;
    let mut members: BTreeMap<&str, &ConsumerMember> = BTreeMap::new();
    if needs_members {
        members = cg
            .members
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != replaced_id.as_deref())
            .map(|(id, m)| (id.as_str(), m))
            .collect();
        members.insert(member_id, &updated);
    }
    let metadata = if bump || image_changed {
        let metadata = subscription_metadata(members.values().copied(), image);
        if metadata != cg.subscription_metadata {
            bump = true;
            records.push(rec(
                ConsumerKey::PartitionMetadata {
                    group: group_id.clone(),
                },
                Some(
                    PartitionMetadataValue {
                        topics: metadata.values().cloned().collect(),
                    }
                    .encode(),
                ),
            ));
        }
        std::borrow::Cow::Owned(metadata)
    } else {
        std::borrow::Cow::Borrowed(&cg.subscription_metadata)
    };
    let mut group_epoch = cg.group_epoch;
    if bump {
        group_epoch += 1;
        records.push(rec(
            ConsumerKey::GroupMetadata {
                group: group_id.clone(),
            },
            Some(GroupMetadataValue { epoch: group_epoch }.encode()),
        ));
    }

    // 2. A new target assignment when the group epoch moved past it.
    let (target_epoch, target) = if group_epoch > cg.assignment_epoch {
        let assignor = crate::consumer_group::assignor_by_votes(members.values().copied())
            .unwrap_or_else(|| assignors::UNIFORM.to_string());
        let new_target = compute_target(&assignor, &members, &metadata, image, cg);
        for (id, a) in &new_target {
            let unchanged = cg.target.get(*id).is_some_and(|old| old == a);
            if !unchanged {
                records.push(rec(
                    ConsumerKey::TargetAssignmentMember {
                        group: group_id.clone(),
                        member: id.to_string(),
                    },
                    Some(
                        TargetAssignmentMemberValue {
                            partitions: a.clone(),
                        }
                        .encode(),
                    ),
                ));
            }
        }
        records.push(rec(
            ConsumerKey::TargetAssignmentMetadata {
                group: group_id.clone(),
            },
            Some(
                TargetAssignmentMetadataValue {
                    assignment_epoch: group_epoch,
                }
                .encode(),
            ),
        ));
        let mine = new_target.get(member_id).cloned().unwrap_or_default();
        (group_epoch, mine)
    } else {
        let t = match &replaced_id {
            Some(old) if !cg.target.contains_key(member_id) => cg.target_of(old),
            _ => cg.target_of(member_id),
        };
        (cg.assignment_epoch, t)
    };

    // 3. One step of reconciliation. Partitions the member (or the instance it replaces)
    //    holds are its own, not someone else's.
    let me = member_id.to_string();
    let partition_epoch = |id: Uuid, p: i32| match cg.owners.get(&(id, p)) {
        Some((owner, _)) if *owner == me || Some(owner) == replaced_id.as_ref() => -1,
        Some((_, e)) => *e,
        None => -1,
    };
    let reconciled =
        crate::reconcile::reconcile(&updated, target_epoch, &target, &partition_epoch, owned)
            .map_err(|m| fenced(m.to_string()))?;
    if reconciled.assignment_value() != member.assignment_value() || is_new {
        records.push(rec(
            ConsumerKey::CurrentMemberAssignment {
                group: group_id.clone(),
                member: member_id.to_string(),
            },
            Some(reconciled.assignment_value().encode()),
        ));
    }
    Ok(Plan {
        records,
        reconciled,
    })
}

/// Applies a planned member update through replay, remembers the image it was computed
/// with, and writes the group's history: a static member replaced, or a member joined.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply_member_update(
    c: &mut Coordinator,
    now_ms: i64,
    group_id: &str,
    image_version: u64,
    records: Vec<Record>,
    member_id: &str,
    instance_id: Option<&str>,
    is_new: bool,
    replaced: Option<(String, Option<String>)>,
    out: &mut Output,
) {
    // What an epoch bump in these records comes from, for the group's rebalance history.
    let metadata_of_member = records.iter().any(|r| {
        matches!(
            crate::records::RecordKey::decode(&r.key),
            Ok(crate::records::RecordKey::Consumer(
                ConsumerKey::MemberMetadata { .. }
            ))
        )
    });
    let cause = if is_new && replaced.is_none() {
        RebalanceTrigger::MemberJoined
    } else if metadata_of_member {
        RebalanceTrigger::SubscriptionChanged
    } else {
        RebalanceTrigger::TopicMetadataChanged
    };
    c.apply_consumer_records(group_id, now_ms, &records, cause);
    if is_new {
        if let Some(g) = c.groups.get_mut(group_id) {
            g.rebalances_mut()
                .note_member(now_ms, member_id, MemberChangeKind::Joined);
        }
    }
    c.modern_image_versions
        .insert(group_id.to_string(), image_version);
    out.records.extend(records);
    let kind = match replaced {
        Some((old_id, iid)) => {
            c.modern_timers_remove(group_id, &old_id);
            GroupEventKind::StaticMemberReplaced {
                old_member_id: old_id,
                new_member_id: member_id.to_string(),
                group_instance_id: iid.unwrap_or_default(),
            }
        }
        None if is_new => GroupEventKind::MemberJoined {
            member_id: member_id.to_string(),
            group_instance_id: instance_id.map(str::to_string),
        },
        None => return,
    };
    if let Some(g) = c.groups.get_mut(group_id) {
        g.record(now_ms, kind);
    }
}

fn wire_assignment(a: &Assignment) -> WireAssignment {
    WireAssignment::default().with_topic_partitions(
        a.iter()
            .map(|(id, ps)| {
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

/// The keys whose tombstones remove a member, in Kafka's order.
pub(crate) fn removal_keys(group_id: &str, member_id: &str) -> [ConsumerKey; 3] {
    [
        ConsumerKey::CurrentMemberAssignment {
            group: group_id.to_string(),
            member: member_id.to_string(),
        },
        ConsumerKey::TargetAssignmentMember {
            group: group_id.to_string(),
            member: member_id.to_string(),
        },
        ConsumerKey::MemberMetadata {
            group: group_id.to_string(),
            member: member_id.to_string(),
        },
    ]
}

/// The topics the members subscribe to, by name or by regular expression, that exist.
pub(crate) fn subscription_metadata<'a>(
    members: impl Iterator<Item = &'a ConsumerMember>,
    image: &TopicImage,
) -> BTreeMap<String, TopicMetadata> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut regexes: BTreeSet<String> = BTreeSet::new();
    for m in members {
        names.extend(m.subscribed_topic_names.iter().cloned());
        if let Some(r) = &m.subscribed_topic_regex {
            regexes.insert(r.clone());
        }
    }
    for r in regexes {
        // Validated when it arrived; one that no longer compiles matches nothing.
        let Ok(re) = compile(&r) else { continue };
        for name in image.topics.keys() {
            if !INTERNAL_TOPICS.contains(&name.as_str()) && re.is_match(name) {
                names.insert(name.clone());
            }
        }
    }
    names
        .into_iter()
        .filter_map(|n| {
            image.topic(&n).map(|t| {
                (
                    n.clone(),
                    TopicMetadata {
                        topic_id: t.id,
                        topic_name: n,
                        partitions: t.partitions,
                    },
                )
            })
        })
        .collect()
}

/// The topics one member subscribes to among `metadata`, by id.
fn member_topics(m: &ConsumerMember, metadata: &BTreeMap<String, TopicMetadata>) -> BTreeSet<Uuid> {
    let re = m
        .subscribed_topic_regex
        .as_deref()
        .and_then(|r| compile(r).ok());
    metadata
        .values()
        .filter(|t| {
            m.subscribed_topic_names
                .binary_search(&t.topic_name)
                .is_ok()
                || re.as_ref().is_some_and(|re| {
                    !INTERNAL_TOPICS.contains(&t.topic_name.as_str()) && re.is_match(&t.topic_name)
                })
        })
        .map(|t| t.topic_id)
        .collect()
}

pub(crate) fn compute_target<'a>(
    assignor: &str,
    members: &BTreeMap<&'a str, &ConsumerMember>,
    metadata: &BTreeMap<String, TopicMetadata>,
    image: &TopicImage,
    cg: &ConsumerGroup,
) -> BTreeMap<&'a str, Assignment> {
    let specs: Vec<MemberSpec> = members
        .values()
        .map(|m| MemberSpec {
            member_id: m.member_id.clone(),
            instance_id: m.instance_id.clone(),
            topics: member_topics(m, metadata),
        })
        .collect();
    let topics: BTreeMap<Uuid, TopicSpec> = metadata
        .values()
        .map(|t| {
            (
                t.topic_id,
                TopicSpec {
                    partitions: t.partitions,
                    weights: image
                        .topic(&t.topic_name)
                        .map(|i| i.partition_bytes_in_per_s.clone())
                        .unwrap_or_default(),
                },
            )
        })
        .collect();
    // A static member that replaced an old instance inherits its target, for stickiness.
    let mut previous = cg.target.clone();
    for m in members.values() {
        if !previous.contains_key(&m.member_id) {
            if let Some(old) = m
                .instance_id
                .as_ref()
                .and_then(|iid| cg.static_members.get(iid))
            {
                if let Some(t) = cg.target.get(old) {
                    previous.insert(m.member_id.clone(), t.clone());
                }
            }
        }
    }
    let result = assignors::assign(assignor, &specs, &topics, &previous);
    members
        .keys()
        .map(|id| (*id, result.get(*id).cloned().unwrap_or_default()))
        .collect()
}

fn leave(
    c: &mut Coordinator,
    now_ms: i64,
    group_id: &str,
    req: &ConsumerGroupHeartbeatRequest,
    out: &mut Output,
) -> Result<ConsumerGroupHeartbeatResponse, Refusal> {
    let cg = consumer_group(c, group_id, false)?.expect("not joining");
    let member_id = req.member_id.as_str();
    let member = match &req.instance_id {
        None => cg
            .members
            .get(member_id)
            .ok_or_else(|| unknown_member(group_id, member_id))?,
        Some(iid) => {
            let m = cg
                .static_members
                .get(iid.as_str())
                .and_then(|id| cg.members.get(id))
                .ok_or_else(|| {
                    (
                        ResponseError::UnknownMemberId,
                        format!("Instance id {iid} is unknown."),
                    )
                })?;
            if m.member_id != member_id {
                return Err((
                    ResponseError::FencedInstanceId,
                    format!(
                        "Static member {member_id} with instance id {iid} was fenced by member {}.",
                        m.member_id
                    ),
                ));
            }
            m
        }
    };
    let response = ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(StrBytes::from_string(member_id.to_string())))
        .with_member_epoch(req.member_epoch);
    if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        // The static member keeps its partitions until it returns or its session ends.
        let mut m = member.clone();
        m.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
        m.pending_revocation.clear();
        let record = consumer_record(
            c.partition_of(group_id),
            ConsumerKey::CurrentMemberAssignment {
                group: group_id.to_string(),
                member: member_id.to_string(),
            },
            Some(m.assignment_value().encode()),
        );
        c.apply_consumer_records(
            group_id,
            now_ms,
            std::slice::from_ref(&record),
            RebalanceTrigger::MemberLeft,
        );
        out.records.push(record);
        if let Some(t) = c.modern_timers_get(group_id, member_id) {
            t.revocation_deadline = None;
        }
        return Ok(response);
    }
    let member_id = member.member_id.clone();
    fence_member(c, now_ms, group_id, &member_id, RemovalReason::Left, out);
    Ok(response)
}

/// Removes a member and bumps the group epoch, so the others get its partitions.
pub(crate) fn fence_member(
    c: &mut Coordinator,
    now_ms: i64,
    group_id: &str,
    member_id: &str,
    reason: RemovalReason,
    out: &mut Output,
) {
    if migration::should_downgrade(c, group_id, member_id) {
        if let Some(g) = c.groups.get_mut(group_id) {
            g.record(
                now_ms,
                GroupEventKind::MemberRemoved {
                    member_id: member_id.to_string(),
                    reason,
                },
            );
        }
        migration::downgrade(c, now_ms, group_id, member_id, out);
        return;
    }
    let Some(cg) = c.groups.get(group_id).and_then(|g| g.modern.as_ref()) else {
        return;
    };
    let partition = c.partition_of(group_id);
    let rec = |k: ConsumerKey, v: Option<bytes::Bytes>| consumer_record(partition, k, v);
    let mut records: Vec<Record> = removal_keys(group_id, member_id)
        .into_iter()
        .map(|k| rec(k, None))
        .collect();
    let remaining = cg.members.values().filter(|m| m.member_id != member_id);
    // The image the group last saw is the one to recompute with.
    let image = c.last_image.clone();
    let metadata = subscription_metadata(remaining, &image);
    if metadata != cg.subscription_metadata {
        records.push(rec(
            ConsumerKey::PartitionMetadata {
                group: group_id.to_string(),
            },
            Some(
                PartitionMetadataValue {
                    topics: metadata.values().cloned().collect(),
                }
                .encode(),
            ),
        ));
    }
    records.push(rec(
        ConsumerKey::GroupMetadata {
            group: group_id.to_string(),
        },
        Some(
            GroupMetadataValue {
                epoch: cg.group_epoch + 1,
            }
            .encode(),
        ),
    ));
    c.apply_consumer_records(
        group_id,
        now_ms,
        &records,
        RebalanceTrigger::of_removal(reason),
    );
    c.modern_timers_remove(group_id, member_id);
    if let Some(g) = c.groups.get_mut(group_id) {
        g.rebalances_mut()
            .note_member(now_ms, member_id, MemberChangeKind::Removed(reason));
        g.record(
            now_ms,
            GroupEventKind::MemberRemoved {
                member_id: member_id.to_string(),
                reason,
            },
        );
    }
    out.records.extend(records);
}

/// Fires the session and revocation timeouts due at `now_ms` in one consumer group.
pub(crate) fn expire(c: &mut Coordinator, now_ms: i64, group_id: &str, out: &mut Output) {
    let Some(timers) = c.modern_timers.get(group_id) else {
        return;
    };
    let Some(cg) = c.groups.get(group_id).and_then(|g| g.modern.as_ref()) else {
        return;
    };
    let mut due: Vec<(String, RemovalReason)> = Vec::new();
    let mut stale: Vec<String> = Vec::new();
    for (member_id, t) in timers {
        if now_ms >= t.session_deadline_ms {
            due.push((member_id.clone(), RemovalReason::SessionTimeout));
        } else if t.join_deadline_ms.is_some_and(|d| now_ms >= d)
            || t.sync_deadline_ms.is_some_and(|d| now_ms >= d)
        {
            // A classic member did not rejoin, or did not sync, within its rebalance timeout.
            due.push((member_id.clone(), RemovalReason::RebalanceTimeout));
        } else if let Some((deadline, epoch)) = t.revocation_deadline {
            let still = cg.members.get(member_id).is_some_and(|m| {
                m.state == MemberState::UnrevokedPartitions && m.member_epoch == epoch
            });
            if now_ms >= deadline && still {
                due.push((member_id.clone(), RemovalReason::RebalanceTimeout));
            } else if now_ms >= deadline {
                // The member revoked in time: a passed deadline must not wake the timer again.
                stale.push(member_id.clone());
            }
        }
    }
    for member_id in stale {
        if let Some(t) = c.modern_timers_get(group_id, &member_id) {
            t.revocation_deadline = None;
        }
    }
    for (member_id, reason) in due {
        fence_member(c, now_ms, group_id, &member_id, reason, out);
    }
}

/// The earliest deadline among one group's member timers.
pub(crate) fn next_deadline(timers: &BTreeMap<String, MemberTimers>) -> Option<i64> {
    timers.values().map(MemberTimers::next_ms).min()
}

/// The tombstones that end an empty consumer group (its offsets stay), its epoch last.
pub(crate) fn group_tombstones(c: &Coordinator, group_id: &str) -> Vec<Record> {
    let partition = c.partition_of(group_id);
    [
        ConsumerKey::TargetAssignmentMetadata {
            group: group_id.to_string(),
        },
        ConsumerKey::PartitionMetadata {
            group: group_id.to_string(),
        },
        ConsumerKey::GroupMetadata {
            group: group_id.to_string(),
        },
    ]
    .into_iter()
    .map(|k| consumer_record(partition, k, None))
    .collect()
}

/// A consumer-group record for `__consumer_offsets` partition `partition`.
pub(crate) fn consumer_record(
    partition: i32,
    key: ConsumerKey,
    value: Option<bytes::Bytes>,
) -> Record {
    Record {
        partition,
        key: RecordKey::Consumer(key).encode(),
        value,
        producer: None,
    }
}
