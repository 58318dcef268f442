//! Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete, and retention of the
//! offsets of groups that stay empty.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::Coordinator;
use crate::group::{Group, GroupEventKind, GroupState};
use crate::records::{OffsetCommitValue, RecordKey};
use crate::{GroupResponse, Output, Record, RequestContext};

/// Why a whole OffsetCommit is refused, before looking at partitions.
fn check_commit(
    c: &Coordinator,
    req: &OffsetCommitRequest,
    api_version: i16,
) -> Option<ResponseError> {
    let group_id = req.group_id.0.as_str();
    if group_id.is_empty() {
        return Some(ResponseError::InvalidGroupId);
    }
    let generation = req.generation_id_or_member_epoch;
    let member_id = req.member_id.as_str();
    if let Some(cg) = c.groups.get(group_id).and_then(|g| g.modern.as_ref()) {
        return check_consumer_group_member(cg, member_id, generation, Some(api_version));
    }
    let simple = generation < 0 && member_id.is_empty() && req.group_instance_id.is_none();
    let Some(group) = c.groups.get(group_id) else {
        // A consumer outside any group (or an admin tool) may commit to a new group id.
        return if simple {
            None
        } else {
            Some(ResponseError::IllegalGeneration)
        };
    };
    if simple {
        return if group.members.is_empty() {
            None
        } else {
            Some(ResponseError::UnknownMemberId)
        };
    }
    if let Some(iid) = &req.group_instance_id {
        if group
            .static_members
            .get(iid.as_str())
            .is_some_and(|known| known.as_str() != member_id)
        {
            return Some(ResponseError::FencedInstanceId);
        }
    }
    if !group.members.contains_key(member_id) {
        return Some(ResponseError::UnknownMemberId);
    }
    if generation != group.generation_id {
        return Some(ResponseError::IllegalGeneration);
    }
    if group.is(GroupState::CompletingRebalance) {
        return Some(ResponseError::RebalanceInProgress);
    }
    None
}

/// Kafka's check of a commit or fetch that names a member of a consumer group (KIP-848):
/// without an epoch it is an admin's, allowed on an empty group only (commits; fetches
/// always); otherwise the member must exist, commit with OffsetCommit v9 or later (when
/// `commit_version` is given) unless it is a classic member, and bring its current epoch.
pub(crate) fn check_consumer_group_member(
    cg: &crate::consumer_group::ConsumerGroup,
    member_id: &str,
    member_epoch: i32,
    commit_version: Option<i16>,
) -> Option<ResponseError> {
    if member_epoch < 0 && (commit_version.is_none() || cg.members.is_empty()) {
        return None;
    }
    let Some(member) = cg.members.get(member_id) else {
        return Some(ResponseError::UnknownMemberId);
    };
    // A member still on the classic protocol commits as it always did: any version, with
    // its generation (its member epoch), and hears ILLEGAL_GENERATION, which it knows.
    let classic = member.uses_classic_protocol();
    if !classic && commit_version.is_some_and(|v| v < 9) {
        return Some(ResponseError::UnsupportedVersion);
    }
    if member_epoch != member.member_epoch {
        return Some(if classic {
            ResponseError::IllegalGeneration
        } else {
            ResponseError::StaleMemberEpoch
        });
    }
    None
}

pub(crate) fn commit(
    c: &mut Coordinator,
    now_ms: i64,
    ctx: &RequestContext,
    req: OffsetCommitRequest,
    out: &mut Output,
) {
    let refused = check_commit(c, &req, ctx.api_version);
    let group_id = req.group_id.0.to_string();
    let partition = c.partition_of(&group_id);
    let max_metadata = c.config.offset_metadata_max_bytes;
    let mut records = Vec::new();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let metadata = p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default();
                    let code = match refused {
                        Some(e) => e.code(),
                        None if metadata.len() > max_metadata => {
                            ResponseError::OffsetMetadataTooLarge.code()
                        }
                        None => {
                            let key = RecordKey::OffsetCommit {
                                group: group_id.clone(),
                                topic: t.name.0.to_string(),
                                partition: p.partition_index,
                            };
                            let value = OffsetCommitValue {
                                offset: p.committed_offset,
                                leader_epoch: p.committed_leader_epoch,
                                metadata,
                                commit_timestamp_ms: now_ms,
                            };
                            records.push(Record {
                                partition,
                                key: key.encode(),
                                value: Some(value.encode()),
                                producer: None,
                            });
                            0
                        }
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    // Live state changes only through the records, exactly as a restart replays them.
    for r in &records {
        c.replay(&r.key, r.value.as_deref())
            .expect("records this coordinator wrote are readable");
    }
    if refused.is_none() {
        if let Some(m) = c
            .groups
            .get_mut(&group_id)
            .and_then(|g| g.members.get_mut(req.member_id.as_str()))
        {
            m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
        }
    }
    out.records.extend(records);
    out.responses.push((
        ctx.token,
        GroupResponse::OffsetCommit(OffsetCommitResponse::default().with_topics(topics)),
    ));
}

fn committed(group: Option<&Group>, topic: &str, partition: i32) -> (i64, i32, String) {
    group
        .and_then(|g| g.offsets.get(&(topic.to_string(), partition)))
        .map(|o| (o.offset, o.leader_epoch, o.metadata.clone()))
        .unwrap_or((-1, -1, String::new()))
}

/// Every committed (topic, [partitions]) of a group, for a fetch of "all topics".
fn all_committed(group: Option<&Group>) -> BTreeMap<String, Vec<i32>> {
    let mut all: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    if let Some(g) = group {
        for (t, p) in g.offsets.keys() {
            all.entry(t.clone()).or_default().push(*p);
        }
    }
    all
}

pub(crate) fn fetch(
    c: &mut Coordinator,
    ctx: &RequestContext,
    req: OffsetFetchRequest,
    out: &mut Output,
) {
    let v = ctx.api_version;
    let epoch_of = |e: i32| if v >= 5 { e } else { -1 };
    let body = if v >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|rg| {
                let gid = rg.group_id.0.as_str();
                let group = c.groups.get(gid);
                let wanted: BTreeMap<String, Vec<i32>> = match &rg.topics {
                    None => all_committed(group),
                    Some(ts) => ts
                        .iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                        .collect(),
                };
                let topics = wanted
                    .into_iter()
                    .map(|(topic, parts)| {
                        let partitions = parts
                            .into_iter()
                            .map(|p| {
                                let (offset, epoch, metadata) = committed(group, &topic, p);
                                let unstable = req.require_stable
                                    && crate::txn_offsets::is_pending(c, gid, &topic, p);
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(if unstable { -1 } else { offset })
                                    .with_committed_leader_epoch(epoch_of(epoch))
                                    .with_metadata(Some(StrBytes::from_string(metadata)))
                                    .with_error_code(if unstable {
                                        ResponseError::UnstableOffsetCommit.code()
                                    } else {
                                        0
                                    })
                            })
                            .collect();
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(StrBytes::from_string(topic)))
                            .with_partitions(partitions)
                    })
                    .collect();
                let member_check =
                    group
                        .and_then(|g| g.modern.as_ref())
                        .and_then(|cg| match &rg.member_id {
                            Some(m) => {
                                check_consumer_group_member(cg, m.as_str(), rg.member_epoch, None)
                            }
                            None => None,
                        });
                let code = if gid.is_empty() {
                    ResponseError::InvalidGroupId.code()
                } else if let Some(e) = member_check {
                    e.code()
                } else {
                    0
                };
                OffsetFetchResponseGroup::default()
                    .with_group_id(rg.group_id.clone())
                    .with_topics(if member_check.is_some() {
                        Vec::new()
                    } else {
                        topics
                    })
                    .with_error_code(code)
            })
            .collect();
        OffsetFetchResponse::default().with_groups(groups)
    } else {
        let gid = req.group_id.0.as_str();
        let group = c.groups.get(gid);
        let wanted: BTreeMap<String, Vec<i32>> = match &req.topics {
            None => all_committed(group),
            Some(ts) => ts
                .iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                .collect(),
        };
        let topics = wanted
            .into_iter()
            .map(|(topic, parts)| {
                let partitions = parts
                    .into_iter()
                    .map(|p| {
                        let (offset, epoch, metadata) = committed(group, &topic, p);
                        let unstable = v >= 7
                            && req.require_stable
                            && crate::txn_offsets::is_pending(c, gid, &topic, p);
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(if unstable { -1 } else { offset })
                            .with_committed_leader_epoch(epoch_of(epoch))
                            .with_metadata(Some(StrBytes::from_string(metadata)))
                            .with_error_code(if unstable {
                                ResponseError::UnstableOffsetCommit.code()
                            } else {
                                0
                            })
                    })
                    .collect();
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic)))
                    .with_partitions(partitions)
            })
            .collect();
        let code = if gid.is_empty() && v >= 2 {
            ResponseError::InvalidGroupId.code()
        } else {
            0
        };
        let mut r = OffsetFetchResponse::default().with_topics(topics);
        if v >= 2 {
            r.error_code = code;
        }
        r
    };
    out.responses
        .push((ctx.token, GroupResponse::OffsetFetch(body)));
}

pub(crate) fn delete(
    c: &mut Coordinator,
    ctx: &RequestContext,
    req: OffsetDeleteRequest,
    out: &mut Output,
) {
    let group_id = req.group_id.0.to_string();
    let reply_error = |out: &mut Output, e: ResponseError| {
        out.responses.push((
            ctx.token,
            GroupResponse::OffsetDelete(OffsetDeleteResponse::default().with_error_code(e.code())),
        ));
    };
    if group_id.is_empty() {
        return reply_error(out, ResponseError::InvalidGroupId);
    }
    let Some(group) = c.groups.get(&group_id) else {
        return reply_error(out, ResponseError::GroupIdNotFound);
    };
    let subscribed: Option<Vec<String>> = if group.members.is_empty() {
        Some(Vec::new())
    } else {
        group.subscribed_topics()
    };
    let Some(subscribed) = subscribed else {
        // Members of a group whose subscriptions weir cannot read: refuse, as Kafka does
        // for non-consumer groups with members.
        return reply_error(out, ResponseError::NonEmptyGroup);
    };
    let partition = c.partition_of(&group_id);
    let mut records = Vec::new();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = t.name.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = if subscribed.contains(&topic) {
                        ResponseError::GroupSubscribedToTopic.code()
                    } else {
                        let key = RecordKey::OffsetCommit {
                            group: group_id.clone(),
                            topic: topic.clone(),
                            partition: p.partition_index,
                        };
                        records.push(Record {
                            partition,
                            key: key.encode(),
                            value: None,
                            producer: None,
                        });
                        0
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    for r in &records {
        c.replay(&r.key, r.value.as_deref())
            .expect("records this coordinator wrote are readable");
    }
    out.records.extend(records);
    out.responses.push((
        ctx.token,
        GroupResponse::OffsetDelete(OffsetDeleteResponse::default().with_topics(topics)),
    ));
}

/// Offsets of a group with no members expire `offsets_retention_ms` after the later of
/// their commit and the moment the group became empty (KIP-211). A group left with no
/// offsets and no members is deleted.
pub(crate) fn expire_offsets(c: &mut Coordinator, now_ms: i64, out: &mut Output) {
    let retention = c.config.offsets_retention_ms;
    let mut records = Vec::new();
    let mut emptied = Vec::new();
    for g in c.groups.values_mut() {
        if !g.members.is_empty() || !g.is(GroupState::Empty) {
            continue;
        }
        let expired: Vec<(String, i32)> = g
            .offsets
            .iter()
            .filter(|(_, o)| now_ms - o.commit_timestamp_ms.max(g.state_since_ms) >= retention)
            .map(|(k, _)| k.clone())
            .collect();
        if expired.is_empty() {
            continue;
        }
        let partition = Coordinator::partition_for(&g.group_id, c.config.offsets_topic_partitions);
        for (topic, p) in &expired {
            let key = RecordKey::OffsetCommit {
                group: g.group_id.clone(),
                topic: topic.clone(),
                partition: *p,
            };
            records.push(Record {
                partition,
                key: key.encode(),
                value: None,
                producer: None,
            });
        }
        g.record(
            now_ms,
            GroupEventKind::OffsetsExpired {
                partitions: expired.len(),
            },
        );
        if expired.len() == g.offsets.len() {
            emptied.push((g.group_id.clone(), partition));
        }
    }
    for r in &records {
        c.replay(&r.key, r.value.as_deref())
            .expect("records this coordinator wrote are readable");
    }
    for (group_id, partition) in emptied {
        let key = RecordKey::GroupMetadata {
            group: group_id.clone(),
        }
        .encode();
        c.replay(&key, None).expect("tombstone is readable");
        records.push(Record {
            partition,
            key,
            value: None,
            producer: None,
        });
    }
    out.records.extend(records);
}
