//! Online migration between the classic protocol and the consumer protocol (KIP-848), as
//! Kafka 4.x does it, under `group.consumer.migration.policy`.
//!
//! Upgrade: the first consumer-protocol member to join a classic group of `consumer`
//! protocol type turns it into a consumer group. Every classic member becomes a member of
//! the consumer group that keeps speaking the classic protocol (JoinGroup, SyncGroup,
//! Heartbeat; see [`crate::classic_members`]), at an epoch equal to the classic generation,
//! holding what the classic leader last assigned it. Its offsets stay.
//!
//! Downgrade: when the last consumer-protocol member leaves (or is fenced) and only classic
//! members remain, the group becomes a classic group again at a generation equal to the
//! group epoch, each member holding its target assignment, and a rebalance starts so the
//! classic members rejoin and a leader assigns again.
//!
//! Both conversions only emit records (the classic group's tombstone and the consumer
//! group's records, or the reverse) and then apply them through replay, so a broker that
//! restarts mid-way loads whichever group the log last describes.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use crate::consumer_group::{ConsumerMember, MemberState};
use crate::consumer_group_heartbeat::{consumer_record, group_tombstones, removal_keys, Refusal};
use crate::consumer_records::{
    Assignment, ClassicMemberMetadata, ConsumerKey, GroupMetadataValue,
    TargetAssignmentMemberValue, TargetAssignmentMetadataValue,
};
use crate::coordinator::Coordinator;
use crate::embedded_protocol::{self, encode_assignment, parse_assignment, parse_subscription};
use crate::group::{GroupEventKind, GroupState};
use crate::membership;
use crate::rebalances::{RebalanceOutcome, RebalanceTrigger};
use crate::records::RecordKey;
use crate::topics::TopicImage;
use crate::{GroupResponse, Output, Record};

/// The protocol type of consumers, the only one a consumer group can take in.
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Whether the classic group `group_id`, which has members, may become a consumer group
/// because a consumer-protocol member joins it; `Err` says why not, as Kafka answers.
pub(crate) fn check_upgrade(c: &Coordinator, group_id: &str) -> Result<(), Refusal> {
    let g = c.groups.get(group_id).expect("caller found the group");
    let not_consumer = || {
        Err((
            ResponseError::GroupIdNotFound,
            format!("Group {group_id} is not a consumer group."),
        ))
    };
    if !c.config.consumer_migration_policy.upgrades() {
        return not_consumer();
    }
    if g.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
        return not_consumer();
    }
    let max = c.config.consumer_max_size;
    if g.members.len() > max {
        return not_consumer();
    }
    if g.members.len() == max {
        // Kafka converts, then finds the group full and keeps it classic.
        return Err((
            ResponseError::GroupMaxSizeReached,
            format!("The consumer group has reached its maximum capacity of {max} members."),
        ));
    }
    Ok(())
}

/// Turns the classic group `group_id` into a consumer group (see the module comment).
/// Requests parked in its join or sync phase hear REBALANCE_IN_PROGRESS, so they rejoin.
pub(crate) fn upgrade(
    c: &mut Coordinator,
    now_ms: i64,
    group_id: &str,
    image: &TopicImage,
    out: &mut Output,
) -> Result<(), Refusal> {
    let g = c.groups.get(group_id).expect("caller found the group");
    let generation = g.generation_id;
    let malformed = || {
        (
            ResponseError::GroupIdNotFound,
            format!(
                "Cannot upgrade the classic group {group_id} to consumer group because the embedded consumer protocol is malformed."
            ),
        )
    };

    // 1. Each classic member as a consumer-group member speaking the classic protocol. A
    //    partition two members claim (a leader may assign anything) goes to the first.
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    let mut members: Vec<ConsumerMember> = Vec::with_capacity(g.members.len());
    for m in g.members.values() {
        let protocol = g
            .protocol_name
            .clone()
            .or_else(|| m.protocols.first().map(|(n, _)| n.clone()))
            .unwrap_or_default();
        let sub = parse_subscription(&m.metadata_for(&protocol)).ok_or_else(malformed)?;
        let named = parse_assignment(&m.assignment).ok_or_else(malformed)?;
        let mut assigned = embedded_protocol::to_assignment(&named, image);
        for (id, ps) in assigned.iter_mut() {
            ps.retain(|p| taken.insert((*id, *p)));
        }
        assigned.retain(|_, ps| !ps.is_empty());
        let mut cm = ConsumerMember::new(&m.member_id);
        cm.instance_id = m.group_instance_id.clone();
        cm.rack_id = sub.rack_id;
        cm.client_id = m.client_id.clone();
        cm.client_host = m.client_host.clone();
        cm.subscribed_topic_names = sub.topics;
        cm.rebalance_timeout_ms = m.rebalance_timeout_ms;
        cm.member_epoch = generation;
        cm.previous_member_epoch = generation;
        cm.state = MemberState::Stable;
        cm.assigned = assigned;
        cm.classic = Some(ClassicMemberMetadata {
            session_timeout_ms: m.session_timeout_ms,
            protocols: m.protocols.clone(),
        });
        members.push(cm);
    }

    // 2. Parked joins and syncs learn that another rebalance runs.
    let g = c.groups.get_mut(group_id).expect("found above");
    for m in g.members.values_mut() {
        if let Some(p) = m.awaiting_join.take() {
            out.responses.push((
                p.token,
                GroupResponse::JoinGroup(membership::join_error(
                    p.api_version,
                    ResponseError::RebalanceInProgress,
                    &m.member_id,
                )),
            ));
        }
        if let Some(p) = m.awaiting_sync.take() {
            out.responses.push((
                p.token,
                GroupResponse::SyncGroup(membership::sync_error(
                    ResponseError::RebalanceInProgress,
                )),
            ));
        }
    }

    // 3. The classic group's tombstone, then the consumer group's records.
    let partition = c.partition_of(group_id);
    let rec = |k: ConsumerKey, v: Option<bytes::Bytes>| consumer_record(partition, k, v);
    let classic_tombstone = Record {
        partition,
        key: RecordKey::GroupMetadata {
            group: group_id.to_string(),
        }
        .encode(),
        value: None,
        producer: None,
    };
    let mut records = Vec::with_capacity(3 * members.len() + 2);
    for m in &members {
        records.push(rec(
            ConsumerKey::MemberMetadata {
                group: group_id.to_string(),
                member: m.member_id.clone(),
            },
            Some(m.metadata_value().encode()),
        ));
    }
    records.push(rec(
        ConsumerKey::GroupMetadata {
            group: group_id.to_string(),
        },
        Some(GroupMetadataValue { epoch: generation }.encode()),
    ));
    for m in &members {
        records.push(rec(
            ConsumerKey::TargetAssignmentMember {
                group: group_id.to_string(),
                member: m.member_id.clone(),
            },
            Some(
                TargetAssignmentMemberValue {
                    partitions: m.assigned.clone(),
                }
                .encode(),
            ),
        ));
    }
    records.push(rec(
        ConsumerKey::TargetAssignmentMetadata {
            group: group_id.to_string(),
        },
        Some(
            TargetAssignmentMetadataValue {
                assignment_epoch: generation,
            }
            .encode(),
        ),
    ));
    for m in &members {
        records.push(rec(
            ConsumerKey::CurrentMemberAssignment {
                group: group_id.to_string(),
                member: m.member_id.clone(),
            },
            Some(m.assignment_value().encode()),
        ));
    }

    // 4. Applied through replay; each member's session runs on from now.
    if let Some(g) = c.groups.get_mut(group_id) {
        g.rebalances_mut()
            .end(now_ms, RebalanceOutcome::ProtocolChanged);
    }
    c.replay(&classic_tombstone.key, None)
        .expect("a tombstone this coordinator encoded");
    c.apply_consumer_records(
        group_id,
        now_ms,
        &records,
        RebalanceTrigger::ProtocolMigration,
    );
    for m in &members {
        let session_ms = m.classic.as_ref().map_or(0, |x| x.session_timeout_ms);
        let t = c.modern_timers_entry(group_id, &m.member_id);
        t.session_deadline_ms = now_ms + i64::from(session_ms);
    }
    if let Some(g) = c.groups.get_mut(group_id) {
        g.record(
            now_ms,
            GroupEventKind::ProtocolChanged {
                to: CONSUMER_PROTOCOL_TYPE.to_string(),
                members: members.len(),
            },
        );
    }
    out.records.push(classic_tombstone);
    out.records.extend(records);
    Ok(())
}

/// Whether removing `leaving_member_id` from consumer group `group_id` should turn it back
/// into a classic group: the leaving member is the last one on the consumer protocol, some
/// classic members remain, the policy allows it, and they fit a classic group.
pub(crate) fn should_downgrade(c: &Coordinator, group_id: &str, leaving_member_id: &str) -> bool {
    let Some(cg) = c.groups.get(group_id).and_then(|g| g.modern.as_ref()) else {
        return false;
    };
    let Some(leaving) = cg.members.get(leaving_member_id) else {
        return false;
    };
    let others = cg.members.len() - 1;
    !leaving.uses_classic_protocol()
        && others >= 1
        && cg
            .members
            .values()
            .filter(|m| m.member_id != leaving_member_id)
            .all(|m| m.uses_classic_protocol())
        && c.config.consumer_migration_policy.downgrades()
        && others <= c.config.group_max_size
}

/// Turns consumer group `group_id` back into a classic group without `leaving_member_id`
/// (see the module comment) and starts a rebalance.
pub(crate) fn downgrade(
    c: &mut Coordinator,
    now_ms: i64,
    group_id: &str,
    leaving_member_id: &str,
    out: &mut Output,
) {
    let image = c.last_image.clone();
    let cg = c
        .groups
        .get(group_id)
        .and_then(|g| g.modern.as_ref())
        .expect("caller checked should_downgrade");
    let partition = c.partition_of(group_id);

    // 1. Tombstones for every member and for the group.
    let mut records: Vec<Record> = Vec::with_capacity(3 * cg.members.len() + 3);
    for id in cg.members.keys() {
        records.extend(
            removal_keys(group_id, id)
                .into_iter()
                .map(|k| consumer_record(partition, k, None)),
        );
    }
    records.extend(group_tombstones(c, group_id));

    // 2. The classic group: each remaining member with its protocols and its target
    //    assignment, written in the version of its own subscription.
    let mut classic = crate::group::Group::new(group_id, now_ms);
    classic.generation_id = cg.group_epoch;
    classic.protocol_type = Some(CONSUMER_PROTOCOL_TYPE.to_string());
    for m in cg.members.values() {
        if m.member_id == leaving_member_id {
            continue;
        }
        let meta = m.classic.as_ref().expect("only classic members remain");
        if let Some(iid) = &m.instance_id {
            classic
                .static_members
                .insert(iid.clone(), m.member_id.clone());
        }
        classic.members.insert(
            m.member_id.clone(),
            crate::group::Member {
                member_id: m.member_id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: meta.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
                protocols: meta.protocols.clone(),
                assignment: bytes::Bytes::new(),
                awaiting_join: None,
                awaiting_sync: None,
                session_deadline_ms: now_ms + i64::from(meta.session_timeout_ms),
            },
        );
    }
    classic.protocol_name = classic.select_protocol();
    let protocol = classic.protocol_name.clone().unwrap_or_default();
    let targets: Vec<(String, Assignment)> = classic
        .members
        .keys()
        .map(|id| (id.clone(), cg.target_of(id)))
        .collect();
    for (id, target) in targets {
        let m = classic.members.get_mut(&id).expect("just inserted");
        let version = embedded_protocol::version_of(&m.metadata_for(&protocol)).unwrap_or(0);
        m.assignment = encode_assignment(&target, &image, version);
    }
    let classic_record = c.group_metadata_record(&classic, now_ms);
    let members = classic.members.len();

    // 3. Applied: the consumer group is gone and the classic one takes its place (directly,
    //    as Kafka does, so members keep every protocol they joined with; a reload reads the
    //    same generation, members and assignments from the record). Sessions and the join
    //    phase start now.
    c.apply_consumer_records(
        group_id,
        now_ms,
        &records,
        RebalanceTrigger::ProtocolMigration,
    );
    c.modern_timers.remove(group_id);
    c.modern_image_versions.remove(group_id);
    let initial_delay_ms = c.config.group_initial_rebalance_delay_ms;
    let g = c
        .groups
        .get_mut(group_id)
        .expect("the group keeps its offsets");
    debug_assert!(g.modern.is_none());
    g.generation_id = classic.generation_id;
    g.protocol_type = classic.protocol_type;
    g.protocol_name = classic.protocol_name;
    g.leader_id = None;
    g.members = classic.members;
    g.static_members = classic.static_members;
    g.pending_members.clear();
    g.join_deadline_ms = None;
    g.force_state(GroupState::Stable, now_ms);
    g.record(
        now_ms,
        GroupEventKind::ProtocolChanged {
            to: "classic".to_string(),
            members,
        },
    );
    g.rebalances_mut()
        .end(now_ms, RebalanceOutcome::ProtocolChanged);
    membership::prepare_rebalance(
        g,
        now_ms,
        RebalanceTrigger::ProtocolMigration,
        initial_delay_ms,
        out,
    );
    out.records.extend(records);
    out.records.push(classic_record);
}
