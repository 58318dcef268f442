//! Offsets committed inside a transaction (TxnOffsetCommit, KIP-98 and KIP-447): written to
//! `__consumer_offsets` in a transactional batch of the producer, held as pending, and made
//! the group's committed offsets only when the commit marker reaches that partition (an
//! abort marker drops them). Until then an OffsetFetch that requires stable offsets gets
//! UNSTABLE_OFFSET_COMMIT for those partitions, so a new owner never starts from an offset
//! that might still be rolled back.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::coordinator::Coordinator;
use crate::group::{CommittedOffset, GroupState};
use crate::records::{OffsetCommitValue, RecordKey};
use crate::{GroupResponse, Output, Record, RequestContext, TXN_PENDING_OFFSETS_MAX};

/// An offset committed in a transaction that has not ended yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOffset {
    /// The `__consumer_offsets` partition it was written to: that partition's marker ends it.
    pub offsets_partition: i32,
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: CommittedOffset,
}

/// KIP-447: a commit that names a member is checked against the group's generation.
fn check(c: &Coordinator, r: &TxnOffsetCommitRequest) -> Option<ResponseError> {
    let group_id = r.group_id.0.as_str();
    if group_id.is_empty() {
        return Some(ResponseError::InvalidGroupId);
    }
    let simple = r.generation_id < 0 && r.member_id.is_empty() && r.group_instance_id.is_none();
    let Some(group) = c.groups.get(group_id) else {
        return if simple {
            None
        } else {
            Some(ResponseError::IllegalGeneration)
        };
    };
    if simple {
        return None;
    }
    // A consumer group's member brings its member epoch (a classic member of it, its
    // generation); OffsetCommit's check applies, without its version rule (KIP-848).
    if let Some(cg) = &group.modern {
        return crate::offsets::check_consumer_group_member(
            cg,
            r.member_id.as_str(),
            r.generation_id,
            None,
        );
    }
    if let Some(iid) = &r.group_instance_id {
        if group
            .static_members
            .get(iid.as_str())
            .is_some_and(|known| known.as_str() != r.member_id.as_str())
        {
            return Some(ResponseError::FencedInstanceId);
        }
    }
    if !group.members.contains_key(r.member_id.as_str()) {
        return Some(ResponseError::UnknownMemberId);
    }
    if r.generation_id != group.generation_id {
        return Some(ResponseError::IllegalGeneration);
    }
    if group.is(GroupState::CompletingRebalance) {
        return Some(ResponseError::RebalanceInProgress);
    }
    None
}

pub(crate) fn commit(
    c: &mut Coordinator,
    now_ms: i64,
    ctx: &RequestContext,
    r: TxnOffsetCommitRequest,
    out: &mut Output,
) {
    let mut refused = check(c, &r);
    let group_id = r.group_id.0.to_string();
    let partition = c.partition_of(&group_id);
    let producer = (r.producer_id.0, r.producer_epoch);
    let pending_now: usize = c.pending_txn_offsets.values().map(Vec::len).sum();
    if refused.is_none() && pending_now >= TXN_PENDING_OFFSETS_MAX {
        refused = Some(ResponseError::CoordinatorLoadInProgress);
    }
    let max_metadata = c.config.offset_metadata_max_bytes;
    let mut records = Vec::new();
    let topics = r
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
                                producer: Some(producer),
                            });
                            0
                        }
                    };
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    for rec in &records {
        c.replay_transactional(rec.partition, producer.0, &rec.key, rec.value.as_deref())
            .expect("records this coordinator wrote are readable");
    }
    out.records.extend(records);
    out.responses.push((
        ctx.token,
        GroupResponse::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(topics)),
    ));
}

/// A commit or abort marker of `producer_id` reached `offsets_partition`: its pending
/// offsets there become committed, or go.
pub(crate) fn complete(
    c: &mut Coordinator,
    offsets_partition: i32,
    producer_id: i64,
    commit: bool,
) {
    let Some(pending) = c.pending_txn_offsets.get_mut(&producer_id) else {
        return;
    };
    let (done, kept): (Vec<PendingOffset>, Vec<PendingOffset>) = std::mem::take(pending)
        .into_iter()
        .partition(|p| p.offsets_partition == offsets_partition);
    if kept.is_empty() {
        c.pending_txn_offsets.remove(&producer_id);
    } else {
        *pending = kept;
    }
    if !commit {
        return;
    }
    for p in done {
        let g = c.group_or_new(&p.group, p.offset.commit_timestamp_ms);
        g.offsets.insert((p.topic, p.partition), p.offset);
    }
}

/// Whether `group` has an offset for `topic`/`partition` in a transaction still open.
pub fn is_pending(c: &Coordinator, group: &str, topic: &str, partition: i32) -> bool {
    c.pending_txn_offsets
        .values()
        .flatten()
        .any(|p| p.group == group && p.topic == topic && p.partition == partition)
}
