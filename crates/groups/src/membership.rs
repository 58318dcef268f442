//! Group membership for the classic protocol: JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, and the timers that drive a rebalance.
//!
//! A rebalance: the group enters PreparingRebalance; every JoinGroup is parked until all
//! known members have rejoined (or the rebalance timeout runs out, which removes those
//! that did not); then each parked JoinGroup is answered with the new generation, the
//! leader's answer carrying every member's subscription; the group waits in
//! CompletingRebalance for the leader's SyncGroup, whose assignments are persisted and
//! handed to every member. A group that was Empty first waits
//! `group.initial.rebalance.delay.ms` so a fleet of consumers starting together lands in
//! one generation.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use std::sync::Arc;

use crate::classic_members;
use crate::coordinator::Coordinator;
use crate::group::{Group, GroupEventKind, GroupState, Member, Parked, RemovalReason};
use crate::rebalances::{MemberChangeKind, RebalanceOutcome, RebalanceTrigger};
use crate::topics::TopicImage;
use crate::{GroupResponse, Output, RequestContext, GROUPS_MAX};

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A JoinGroup error, shaped for the version it answers.
pub(crate) fn join_error(version: i16, code: ResponseError, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(code.code())
        .with_generation_id(-1)
        .with_protocol_name(if version >= 7 { None } else { Some(sb("")) })
        .with_member_id(sb(member_id))
}

pub(crate) fn sync_error(code: ResponseError) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(code.code())
}

/// The JoinGroup answer for `member_id` in the group's current generation. Only the leader
/// gets the member list (with each member's subscription for the chosen protocol).
fn join_success(
    group: &Group,
    member_id: &str,
    version: i16,
    skip_assignment: bool,
) -> JoinGroupResponse {
    let protocol = group.protocol_name.clone().unwrap_or_default();
    let is_leader = group.leader_id.as_deref() == Some(member_id);
    let members = if is_leader {
        group
            .members
            .values()
            .map(|m| {
                JoinGroupResponseMember::default()
                    .with_member_id(sb(&m.member_id))
                    .with_group_instance_id(if version >= 5 {
                        m.group_instance_id.as_deref().map(sb)
                    } else {
                        None
                    })
                    .with_metadata(m.metadata_for(&protocol))
            })
            .collect()
    } else {
        Vec::new()
    };
    JoinGroupResponse::default()
        .with_generation_id(group.generation_id)
        .with_protocol_type(if version >= 7 {
            group.protocol_type.as_deref().map(sb)
        } else {
            None
        })
        .with_protocol_name(Some(sb(&protocol)))
        .with_leader(sb(group.leader_id.as_deref().unwrap_or("")))
        .with_skip_assignment(skip_assignment && version >= 9)
        .with_member_id(sb(member_id))
        .with_members(members)
}

pub(crate) fn join(
    c: &mut Coordinator,
    now_ms: i64,
    ctx: &RequestContext,
    req: JoinGroupRequest,
    image: &Arc<TopicImage>,
    out: &mut Output,
) {
    let v = ctx.api_version;
    let reply = |out: &mut Output, r: JoinGroupResponse| {
        out.responses.push((ctx.token, GroupResponse::JoinGroup(r)))
    };
    let group_id = req.group_id.0.to_string();
    let member_id = req.member_id.to_string();
    let instance_id = req.group_instance_id.as_ref().map(|s| s.to_string());
    let protocol_type = req.protocol_type.to_string();
    let protocols: Vec<(String, Bytes)> = req
        .protocols
        .iter()
        .map(|p| (p.name.to_string(), p.metadata.clone()))
        .collect();
    // Before v1 there was no rebalance timeout: the session timeout served for both.
    let rebalance_timeout_ms = if v >= 1 {
        req.rebalance_timeout_ms
    } else {
        req.session_timeout_ms
    };

    // 1. Guards that need no group.
    if group_id.is_empty() {
        return reply(
            out,
            join_error(v, ResponseError::InvalidGroupId, &member_id),
        );
    }
    if req.session_timeout_ms < c.config.group_min_session_timeout_ms
        || req.session_timeout_ms > c.config.group_max_session_timeout_ms
    {
        return reply(
            out,
            join_error(v, ResponseError::InvalidSessionTimeout, &member_id),
        );
    }
    if protocol_type.is_empty() || protocols.is_empty() {
        return reply(
            out,
            join_error(v, ResponseError::InconsistentGroupProtocol, &member_id),
        );
    }
    if !c.groups.contains_key(&group_id) {
        if !member_id.is_empty() {
            return reply(
                out,
                join_error(v, ResponseError::UnknownMemberId, &member_id),
            );
        }
        if c.groups.len() >= GROUPS_MAX {
            return reply(
                out,
                join_error(v, ResponseError::CoordinatorNotAvailable, &member_id),
            );
        }
        c.groups
            .insert(group_id.clone(), Group::new(&group_id, now_ms));
    }

    // A consumer group (KIP-848) with members assigns for its classic members too; an
    // empty one becomes a classic group again.
    if let Some(cg) = c.groups.get(&group_id).and_then(|g| g.modern.as_ref()) {
        if !cg.members.is_empty() {
            return classic_members::join(
                c,
                now_ms,
                ctx,
                &req,
                protocols,
                rebalance_timeout_ms,
                image,
                out,
            );
        }
        let records = crate::consumer_group_heartbeat::group_tombstones(c, &group_id);
        c.apply_consumer_records(
            &group_id,
            now_ms,
            &records,
            RebalanceTrigger::ProtocolMigration,
        );
        out.records.extend(records);
    }

    // 2. Guards that need the group.
    let max_size = c.config.group_max_size;
    let initial_delay_ms = c.config.group_initial_rebalance_delay_ms;
    let new_id = if member_id.is_empty() {
        Some(c.new_member_id(&ctx.client_id))
    } else {
        None
    };
    let group = c.groups.get_mut(&group_id).expect("ensured above");
    if !group.accepts(&protocol_type, &protocols) {
        return reply(
            out,
            join_error(v, ResponseError::InconsistentGroupProtocol, &member_id),
        );
    }
    let parked = Parked {
        token: ctx.token,
        api_version: v,
    };
    let make_member = |id: &str| Member {
        member_id: id.to_string(),
        group_instance_id: instance_id.clone(),
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host.clone(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms,
        protocol_type: protocol_type.clone(),
        protocols: protocols.clone(),
        assignment: Bytes::new(),
        awaiting_join: Some(parked),
        awaiting_sync: None,
        session_deadline_ms: now_ms + i64::from(req.session_timeout_ms),
    };

    // 3. A member without an id.
    if let Some(new_id) = new_id {
        // 3a. A static member coming back under a new id replaces its old self.
        if let Some(iid) = &instance_id {
            if let Some(old_id) = group.static_members.get(iid).cloned() {
                let old = group
                    .members
                    .remove(&old_id)
                    .expect("static member is a member");
                fence_parked(&old, out);
                let mut m = make_member(&new_id);
                m.assignment = old.assignment.clone();
                m.awaiting_join = None;
                group.members.insert(new_id.clone(), m);
                group.static_members.insert(iid.clone(), new_id.clone());
                let was_leader = group.leader_id.as_deref() == Some(old_id.as_str());
                if was_leader {
                    group.leader_id = Some(new_id.clone());
                }
                group.record(
                    now_ms,
                    GroupEventKind::StaticMemberReplaced {
                        old_member_id: old_id.clone(),
                        new_member_id: new_id.clone(),
                        group_instance_id: iid.clone(),
                    },
                );
                match group.state() {
                    GroupState::Stable if group.select_protocol() == group.protocol_name => {
                        // The same instance restarted within its session, and the protocol
                        // the group runs still suits everyone (its metadata may differ; the
                        // next rebalance uses it): no rebalance. The new id is persisted
                        // before the answer, so a broker restart keeps it. It syncs next
                        // and gets its old assignment back. A leader that can skip the
                        // assignment (v9, KIP-814) is told so; an older one is named as a
                        // follower (the leader is given under its old id), as Kafka does.
                        let mut r = join_success(group, &new_id, v, was_leader);
                        if was_leader && v < 9 {
                            r = r.with_leader(sb(&old_id)).with_members(Vec::new());
                        }
                        let record = c.group_metadata_record(
                            c.groups.get(&group_id).expect("present"),
                            now_ms,
                        );
                        out.records.push(record);
                        return reply(out, r);
                    }
                    GroupState::PreparingRebalance => {
                        group
                            .members
                            .get_mut(&new_id)
                            .expect("inserted")
                            .awaiting_join = Some(parked);
                        maybe_complete_join(c, now_ms, &group_id, out);
                        return;
                    }
                    state => {
                        // A changed protocol, or a generation formed but not yet assigned
                        // (the leader may have been given the old id to assign to): the
                        // group rebalances, as Kafka does.
                        group
                            .members
                            .get_mut(&new_id)
                            .expect("inserted")
                            .awaiting_join = Some(parked);
                        let trigger = if state == GroupState::CompletingRebalance {
                            RebalanceTrigger::StaticMemberRejoinedDuringSync
                        } else {
                            RebalanceTrigger::StaticMemberProtocolChanged
                        };
                        prepare_rebalance(group, now_ms, trigger, initial_delay_ms, out);
                        maybe_complete_join(c, now_ms, &group_id, out);
                        return;
                    }
                }
            }
        }
        if group.members.len() + group.pending_members.len() >= max_size {
            return reply(out, join_error(v, ResponseError::GroupMaxSizeReached, ""));
        }
        // 3b. KIP-394: a dynamic member gets its id first and must come back with it.
        if instance_id.is_none() && v >= 4 {
            group
                .pending_members
                .insert(new_id.clone(), now_ms + i64::from(req.session_timeout_ms));
            return reply(out, join_error(v, ResponseError::MemberIdRequired, &new_id));
        }
        add_member_and_rebalance(
            c,
            now_ms,
            &group_id,
            make_member(&new_id),
            initial_delay_ms,
            out,
        );
        return;
    }

    // 4. A member with an id.
    if let Some(iid) = &instance_id {
        match group.static_members.get(iid) {
            Some(known) if *known != member_id => {
                return reply(
                    out,
                    join_error(v, ResponseError::FencedInstanceId, &member_id),
                )
            }
            _ => {}
        }
    }
    if group.pending_members.remove(&member_id).is_some() {
        if group.members.len() >= max_size {
            return reply(
                out,
                join_error(v, ResponseError::GroupMaxSizeReached, &member_id),
            );
        }
        add_member_and_rebalance(
            c,
            now_ms,
            &group_id,
            make_member(&member_id),
            initial_delay_ms,
            out,
        );
        return;
    }
    let Some(member) = group.members.get_mut(&member_id) else {
        return reply(
            out,
            join_error(v, ResponseError::UnknownMemberId, &member_id),
        );
    };
    let unchanged = member.protocols == protocols;
    member.protocols = protocols;
    member.client_id = ctx.client_id.clone();
    member.client_host = ctx.client_host.clone();
    member.session_timeout_ms = req.session_timeout_ms;
    member.rebalance_timeout_ms = rebalance_timeout_ms;
    member.session_deadline_ms = now_ms + i64::from(req.session_timeout_ms);
    if let Some(old) = member.awaiting_join.replace(parked) {
        // A second JoinGroup replaces the first, which is answered as Kafka answers a
        // superseded request.
        out.responses.push((
            old.token,
            GroupResponse::JoinGroup(join_error(
                old.api_version,
                ResponseError::UnknownMemberId,
                &member_id,
            )),
        ));
    }
    let is_leader = group.leader_id.as_deref() == Some(member_id.as_str());
    match group.state() {
        GroupState::PreparingRebalance => maybe_complete_join(c, now_ms, &group_id, out),
        GroupState::CompletingRebalance | GroupState::Stable
            if unchanged && !(is_leader && group.is(GroupState::Stable)) =>
        {
            // Nothing changed: answer with the current generation at once.
            let member = group.members.get_mut(&member_id).expect("present");
            member.awaiting_join = None;
            let r = join_success(group, &member_id, v, false);
            reply(out, r);
        }
        _ => {
            let trigger = if unchanged {
                RebalanceTrigger::LeaderRejoined
            } else {
                RebalanceTrigger::SubscriptionChanged
            };
            prepare_rebalance(group, now_ms, trigger, initial_delay_ms, out);
            maybe_complete_join(c, now_ms, &group_id, out);
        }
    }
}

fn add_member_and_rebalance(
    c: &mut Coordinator,
    now_ms: i64,
    group_id: &str,
    member: Member,
    initial_delay_ms: i64,
    out: &mut Output,
) {
    let group = c.groups.get_mut(group_id).expect("caller ensured");
    if let Some(iid) = &member.group_instance_id {
        group
            .static_members
            .insert(iid.clone(), member.member_id.clone());
    }
    // The first member of an empty group sets the protocol type; an empty group keeps the
    // last one (Kafka lists and describes Empty groups with it).
    if group.members.is_empty() {
        group.protocol_type = Some(member.protocol_type.clone());
    }
    group.record(
        now_ms,
        GroupEventKind::MemberJoined {
            member_id: member.member_id.clone(),
            group_instance_id: member.group_instance_id.clone(),
        },
    );
    let member_id = member.member_id.clone();
    group.members.insert(member.member_id.clone(), member);
    if group.is(GroupState::PreparingRebalance) {
        group.new_member_joined_in_delay = true;
    } else {
        prepare_rebalance(
            group,
            now_ms,
            RebalanceTrigger::MemberJoined,
            initial_delay_ms,
            out,
        );
    }
    group
        .rebalances_mut()
        .note_member(now_ms, &member_id, MemberChangeKind::Joined);
    maybe_complete_join(c, now_ms, group_id, out);
}

/// Answers any request `member` has parked with FENCED_INSTANCE_ID (a newer instance took
/// its place).
fn fence_parked(member: &Member, out: &mut Output) {
    if let Some(p) = member.awaiting_join {
        out.responses.push((
            p.token,
            GroupResponse::JoinGroup(join_error(
                p.api_version,
                ResponseError::FencedInstanceId,
                &member.member_id,
            )),
        ));
    }
    if let Some(p) = member.awaiting_sync {
        out.responses.push((
            p.token,
            GroupResponse::SyncGroup(sync_error(ResponseError::FencedInstanceId)),
        ));
    }
}

/// The shortest first join phase of an empty group, whatever the initial delay.
pub const FIRST_JOIN_MIN_MS: i64 = 100;

/// Starts a join phase. Parked SyncGroups of the previous phase learn of it.
pub(crate) fn prepare_rebalance(
    group: &mut Group,
    now_ms: i64,
    trigger: RebalanceTrigger,
    initial_delay_ms: i64,
    out: &mut Output,
) {
    if group.is(GroupState::CompletingRebalance) {
        for m in group.members.values_mut() {
            m.assignment = Bytes::new();
            if let Some(p) = m.awaiting_sync.take() {
                out.responses.push((
                    p.token,
                    GroupResponse::SyncGroup(sync_error(ResponseError::RebalanceInProgress)),
                ));
            }
        }
    }
    let was_empty = group.is(GroupState::Empty);
    group.transition(GroupState::PreparingRebalance, now_ms);
    let rebalance_timeout_ms = group
        .members
        .values()
        .map(|m| i64::from(m.rebalance_timeout_ms))
        .max()
        .unwrap_or(0);
    if was_empty {
        // The first join phase of an empty group waits for the initial delay, and for at
        // least FIRST_JOIN_MIN_MS even with no delay configured, so members started
        // together (a process's consumers subscribing at once, static members started at
        // the same moment) land in one first generation, as on Kafka, where the join phase
        // ends only after the joins queued behind the first.
        let first = initial_delay_ms
            .max(FIRST_JOIN_MIN_MS)
            .min(rebalance_timeout_ms)
            .max(0);
        group.join_deadline_ms = Some(now_ms + first);
        group.initial_delay_remaining_ms = (rebalance_timeout_ms - first).max(0);
        group.new_member_joined_in_delay = false;
    } else {
        group.join_deadline_ms = Some(now_ms + rebalance_timeout_ms);
        group.initial_delay_remaining_ms = -1;
    }
    group.rebalance_started_ms = Some(now_ms);
    group.record(
        now_ms,
        GroupEventKind::RebalanceStarted {
            reason: trigger.description().to_string(),
        },
    );
    group.rebalances_mut().start(now_ms, trigger);
}

fn in_initial_delay(group: &Group) -> bool {
    group.initial_delay_remaining_ms >= 0
}

/// Completes the join phase if every known member has rejoined and no initial delay runs.
fn maybe_complete_join(c: &mut Coordinator, now_ms: i64, group_id: &str, out: &mut Output) {
    let Some(group) = c.groups.get(group_id) else {
        return;
    };
    if group.is(GroupState::PreparingRebalance) && !in_initial_delay(group) && group.all_joined() {
        complete_join(c, now_ms, group_id, out);
    }
}

/// Ends the join phase: members that did not rejoin are removed, the generation advances,
/// and every parked JoinGroup is answered.
fn complete_join(c: &mut Coordinator, now_ms: i64, group_id: &str, out: &mut Output) {
    let group = c.groups.get_mut(group_id).expect("caller checked");
    let late: Vec<String> = group
        .members
        .values()
        .filter(|m| m.awaiting_join.is_none())
        .map(|m| m.member_id.clone())
        .collect();
    // Whom the barrier still waited for: the late members, and ids handed out but unused.
    let waited_for: Vec<String> = late
        .iter()
        .cloned()
        .chain(group.pending_members.keys().cloned())
        .collect();
    for id in late {
        remove_quietly(group, &id, now_ms, RemovalReason::RebalanceTimeout, out);
        group.rebalances_mut().note_member(
            now_ms,
            &id,
            MemberChangeKind::Removed(RemovalReason::RebalanceTimeout),
        );
    }
    group.pending_members.clear();
    group.join_deadline_ms = None;
    group.initial_delay_remaining_ms = -1;
    group.generation_id += 1;
    let generation_id = group.generation_id;
    group
        .rebalances_mut()
        .join_completed(now_ms, generation_id, waited_for);
    let duration_ms = group
        .rebalance_started_ms
        .take()
        .map(|s| now_ms - s)
        .unwrap_or(0);
    if group.members.is_empty() {
        group.protocol_name = None;
        group.leader_id = None;
        group.transition(GroupState::Empty, now_ms);
        group
            .rebalances_mut()
            .end(now_ms, RebalanceOutcome::Completed);
        group.record(
            now_ms,
            GroupEventKind::RebalanceCompleted {
                generation_id: group.generation_id,
                members: 0,
                duration_ms,
            },
        );
        let record = c.group_metadata_record(c.groups.get(group_id).expect("present"), now_ms);
        out.records.push(record);
        return;
    }
    group.protocol_name = group.select_protocol();
    if group
        .leader_id
        .as_ref()
        .is_none_or(|l| !group.members.contains_key(l))
    {
        group.leader_id = group.members.keys().next().cloned();
    }
    group.transition(GroupState::CompletingRebalance, now_ms);
    group.record(
        now_ms,
        GroupEventKind::RebalanceCompleted {
            generation_id: group.generation_id,
            members: group.members.len(),
            duration_ms,
        },
    );
    let ids: Vec<String> = group.members.keys().cloned().collect();
    for id in ids {
        let parked = group.members.get_mut(&id).and_then(|m| {
            m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
            m.awaiting_join.take()
        });
        if let Some(p) = parked {
            let r = join_success(group, &id, p.api_version, false);
            out.responses.push((p.token, GroupResponse::JoinGroup(r)));
        }
    }
}

/// Removes a member without starting a rebalance; answers what it had parked.
fn remove_quietly(
    group: &mut Group,
    member_id: &str,
    now_ms: i64,
    reason: RemovalReason,
    out: &mut Output,
) -> bool {
    let Some(m) = group.members.remove(member_id) else {
        return false;
    };
    if let Some(iid) = &m.group_instance_id {
        if group.static_members.get(iid).map(String::as_str) == Some(member_id) {
            group.static_members.remove(iid);
        }
    }
    if let Some(p) = m.awaiting_join {
        out.responses.push((
            p.token,
            GroupResponse::JoinGroup(join_error(
                p.api_version,
                ResponseError::UnknownMemberId,
                member_id,
            )),
        ));
    }
    if let Some(p) = m.awaiting_sync {
        out.responses.push((
            p.token,
            GroupResponse::SyncGroup(sync_error(ResponseError::UnknownMemberId)),
        ));
    }
    group.record(
        now_ms,
        GroupEventKind::MemberRemoved {
            member_id: member_id.to_string(),
            reason,
        },
    );
    true
}

/// Removes a member and rebalances the rest (or completes a running join phase).
pub(crate) fn remove_member(
    c: &mut Coordinator,
    now_ms: i64,
    group_id: &str,
    member_id: &str,
    reason: RemovalReason,
    out: &mut Output,
) {
    let initial_delay_ms = c.config.group_initial_rebalance_delay_ms;
    let Some(group) = c.groups.get_mut(group_id) else {
        return;
    };
    if !remove_quietly(group, member_id, now_ms, reason, out) {
        return;
    }
    let removed = MemberChangeKind::Removed(reason);
    match group.state() {
        GroupState::Stable | GroupState::CompletingRebalance => {
            let trigger = RebalanceTrigger::of_removal(reason);
            prepare_rebalance(group, now_ms, trigger, initial_delay_ms, out);
            group
                .rebalances_mut()
                .note_member(now_ms, member_id, removed);
            maybe_complete_join(c, now_ms, group_id, out);
        }
        GroupState::PreparingRebalance => {
            group
                .rebalances_mut()
                .note_member(now_ms, member_id, removed);
            maybe_complete_join(c, now_ms, group_id, out)
        }
        GroupState::Empty | GroupState::Dead => {}
    }
}

pub(crate) fn sync(
    c: &mut Coordinator,
    now_ms: i64,
    ctx: &RequestContext,
    req: SyncGroupRequest,
    image: &Arc<TopicImage>,
    out: &mut Output,
) {
    let reply = |out: &mut Output, r: SyncGroupResponse| {
        out.responses.push((ctx.token, GroupResponse::SyncGroup(r)))
    };
    let group_id = req.group_id.0.to_string();
    let member_id = req.member_id.to_string();
    if group_id.is_empty() {
        return reply(out, sync_error(ResponseError::InvalidGroupId));
    }
    if classic_members::is_consumer_group(c, &group_id) {
        return classic_members::sync(c, now_ms, ctx, &req, image, out);
    }
    let Some(group) = c.groups.get_mut(&group_id) else {
        return reply(out, sync_error(ResponseError::UnknownMemberId));
    };
    if let Some(iid) = &req.group_instance_id {
        if group
            .static_members
            .get(iid.as_str())
            .is_some_and(|known| *known != member_id)
        {
            return reply(out, sync_error(ResponseError::FencedInstanceId));
        }
    }
    if !group.members.contains_key(&member_id) {
        return reply(out, sync_error(ResponseError::UnknownMemberId));
    }
    if req.generation_id != group.generation_id {
        return reply(out, sync_error(ResponseError::IllegalGeneration));
    }
    if req
        .protocol_type
        .as_ref()
        .is_some_and(|t| Some(t.as_str()) != group.protocol_type.as_deref())
        || req
            .protocol_name
            .as_ref()
            .is_some_and(|n| Some(n.as_str()) != group.protocol_name.as_deref())
    {
        return reply(out, sync_error(ResponseError::InconsistentGroupProtocol));
    }
    let v = ctx.api_version;
    let ok = |group: &Group, assignment: Bytes| {
        let mut r = SyncGroupResponse::default().with_assignment(assignment);
        if v >= 5 {
            r.protocol_type = group.protocol_type.as_deref().map(sb);
            r.protocol_name = group.protocol_name.as_deref().map(sb);
        }
        r
    };
    match group.state() {
        GroupState::Empty | GroupState::Dead => {
            reply(out, sync_error(ResponseError::UnknownMemberId))
        }
        GroupState::PreparingRebalance => {
            reply(out, sync_error(ResponseError::RebalanceInProgress))
        }
        GroupState::Stable => {
            let m = group.members.get_mut(&member_id).expect("checked");
            m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
            let a = m.assignment.clone();
            let r = ok(group, a);
            reply(out, r);
        }
        GroupState::CompletingRebalance => {
            let m = group.members.get_mut(&member_id).expect("checked");
            m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
            if let Some(old) = m.awaiting_sync.replace(Parked {
                token: ctx.token,
                api_version: v,
            }) {
                out.responses.push((
                    old.token,
                    GroupResponse::SyncGroup(sync_error(ResponseError::UnknownMemberId)),
                ));
            }
            if group.leader_id.as_deref() != Some(member_id.as_str()) {
                return;
            }
            // The leader's assignments: persist the generation, then release every sync.
            for m in group.members.values_mut() {
                m.assignment = Bytes::new();
            }
            for a in &req.assignments {
                if let Some(m) = group.members.get_mut(a.member_id.as_str()) {
                    m.assignment = a.assignment.clone();
                }
            }
            group.transition(GroupState::Stable, now_ms);
            group
                .rebalances_mut()
                .end(now_ms, RebalanceOutcome::Completed);
            let record = c.group_metadata_record(c.groups.get(&group_id).expect("present"), now_ms);
            out.records.push(record);
            let group = c.groups.get_mut(&group_id).expect("present");
            let ids: Vec<String> = group.members.keys().cloned().collect();
            for id in ids {
                let m = group.members.get_mut(&id).expect("present");
                if let Some(p) = m.awaiting_sync.take() {
                    let assignment = m.assignment.clone();
                    let mut r = SyncGroupResponse::default().with_assignment(assignment);
                    if p.api_version >= 5 {
                        r.protocol_type = group.protocol_type.as_deref().map(sb);
                        r.protocol_name = group.protocol_name.as_deref().map(sb);
                    }
                    out.responses.push((p.token, GroupResponse::SyncGroup(r)));
                }
            }
        }
    }
}

pub(crate) fn heartbeat(
    c: &mut Coordinator,
    now_ms: i64,
    ctx: &RequestContext,
    req: HeartbeatRequest,
    out: &mut Output,
) {
    let code = (|| {
        let group_id = req.group_id.0.as_str();
        if group_id.is_empty() {
            return ResponseError::InvalidGroupId;
        }
        if classic_members::is_consumer_group(c, group_id) {
            return ResponseError::Unknown(-1);
        }
        let Some(group) = c.groups.get_mut(group_id) else {
            return ResponseError::UnknownMemberId;
        };
        if let Some(iid) = &req.group_instance_id {
            if group
                .static_members
                .get(iid.as_str())
                .is_some_and(|known| known.as_str() != req.member_id.as_str())
            {
                return ResponseError::FencedInstanceId;
            }
        }
        if group.is(GroupState::Empty) {
            return ResponseError::UnknownMemberId;
        }
        let Some(m) = group.members.get_mut(req.member_id.as_str()) else {
            return ResponseError::UnknownMemberId;
        };
        if req.generation_id != group.generation_id {
            return ResponseError::IllegalGeneration;
        }
        m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
        if group.is(GroupState::PreparingRebalance) {
            return ResponseError::RebalanceInProgress;
        }
        ResponseError::Unknown(0)
    })();
    if code == ResponseError::Unknown(-1) {
        // The group is a consumer group: its classic members are answered there.
        return classic_members::heartbeat(c, now_ms, ctx, &req, out);
    }
    let r = HeartbeatResponse::default().with_error_code(if code == ResponseError::Unknown(0) {
        0
    } else {
        code.code()
    });
    out.responses.push((ctx.token, GroupResponse::Heartbeat(r)));
}

pub(crate) fn leave(
    c: &mut Coordinator,
    now_ms: i64,
    ctx: &RequestContext,
    req: LeaveGroupRequest,
    out: &mut Output,
) {
    let v = ctx.api_version;
    let group_id = req.group_id.0.to_string();
    let top_error =
        |code: ResponseError| LeaveGroupResponse::default().with_error_code(code.code());
    if group_id.is_empty() {
        out.responses.push((
            ctx.token,
            GroupResponse::LeaveGroup(top_error(ResponseError::InvalidGroupId)),
        ));
        return;
    }
    if !c.groups.contains_key(&group_id) {
        out.responses.push((
            ctx.token,
            GroupResponse::LeaveGroup(top_error(ResponseError::UnknownMemberId)),
        ));
        return;
    }
    // v0-2 name one member; v3+ a batch (static members and admin removal).
    let leaving: Vec<(String, Option<String>)> = if v >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    if classic_members::is_consumer_group(c, &group_id) {
        let results = classic_members::leave(c, now_ms, &group_id, leaving, out);
        let r = if v >= 3 {
            LeaveGroupResponse::default().with_members(results)
        } else {
            LeaveGroupResponse::default().with_error_code(results[0].error_code)
        };
        out.responses
            .push((ctx.token, GroupResponse::LeaveGroup(r)));
        return;
    }
    let mut results = Vec::with_capacity(leaving.len());
    for (member_id, instance_id) in leaving {
        let group = c.groups.get_mut(&group_id).expect("checked");
        let code = match &instance_id {
            Some(iid) => match group.static_members.get(iid).cloned() {
                None => ResponseError::UnknownMemberId,
                Some(known) if !member_id.is_empty() && known != member_id => {
                    ResponseError::FencedInstanceId
                }
                Some(known) => {
                    let reason = if member_id.is_empty() {
                        RemovalReason::AdminRemoval
                    } else {
                        RemovalReason::Left
                    };
                    remove_member(c, now_ms, &group_id, &known, reason, out);
                    ResponseError::Unknown(0)
                }
            },
            None => {
                if group.pending_members.remove(&member_id).is_some() {
                    maybe_complete_join(c, now_ms, &group_id, out);
                    ResponseError::Unknown(0)
                } else if group.members.contains_key(&member_id) {
                    remove_member(c, now_ms, &group_id, &member_id, RemovalReason::Left, out);
                    ResponseError::Unknown(0)
                } else {
                    ResponseError::UnknownMemberId
                }
            }
        };
        let code = if code == ResponseError::Unknown(0) {
            0
        } else {
            code.code()
        };
        results.push(
            MemberResponse::default()
                .with_member_id(sb(&member_id))
                .with_group_instance_id(instance_id.as_deref().map(sb))
                .with_error_code(code),
        );
    }
    let r = if v >= 3 {
        LeaveGroupResponse::default().with_members(results)
    } else {
        LeaveGroupResponse::default().with_error_code(results[0].error_code)
    };
    out.responses
        .push((ctx.token, GroupResponse::LeaveGroup(r)));
}

/// Timers of one group: pending member ids, sessions, the join phase.
pub(crate) fn expire(c: &mut Coordinator, now_ms: i64, group_id: &str, out: &mut Output) {
    let Some(group) = c.groups.get_mut(group_id) else {
        return;
    };
    let expired_pending: Vec<String> = group
        .pending_members
        .iter()
        .filter(|(_, &d)| d <= now_ms)
        .map(|(k, _)| k.clone())
        .collect();
    for id in &expired_pending {
        group.pending_members.remove(id);
    }
    if !expired_pending.is_empty() {
        maybe_complete_join(c, now_ms, group_id, out);
    }
    let Some(group) = c.groups.get_mut(group_id) else {
        return;
    };
    let expired: Vec<String> = group
        .members
        .values()
        .filter(|m| {
            m.awaiting_join.is_none()
                && m.awaiting_sync.is_none()
                && m.session_deadline_ms <= now_ms
        })
        .map(|m| m.member_id.clone())
        .collect();
    for id in expired {
        remove_member(c, now_ms, group_id, &id, RemovalReason::SessionTimeout, out);
    }
    let Some(group) = c.groups.get_mut(group_id) else {
        return;
    };
    if group.is(GroupState::PreparingRebalance)
        && group.join_deadline_ms.is_some_and(|d| d <= now_ms)
    {
        if in_initial_delay(group) {
            if group.new_member_joined_in_delay && group.initial_delay_remaining_ms > 0 {
                // More members arrived during the delay: wait another round, within the
                // rebalance timeout, as Kafka's initial delayed join does.
                let step = c
                    .config
                    .group_initial_rebalance_delay_ms
                    .min(group.initial_delay_remaining_ms);
                group.join_deadline_ms = Some(now_ms + step);
                group.initial_delay_remaining_ms -= step;
                group.new_member_joined_in_delay = false;
                return;
            }
            group.initial_delay_remaining_ms = -1;
        }
        complete_join(c, now_ms, group_id, out);
    }
}
