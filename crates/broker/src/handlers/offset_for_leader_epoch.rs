//! OffsetForLeaderEpoch: the end offset of a leader epoch, which a consumer asks for to
//! check that its position still lies on the log after it learns a leader epoch.
//!
//! A single node has led every partition since it was created, in one epoch
//! ([`PARTITION_LEADER_EPOCH`]), and stamps that epoch on every batch it appends. So the
//! partition's epoch history has one entry, starting at the log start offset, and:
//! - the current epoch ends at the log end offset;
//! - an epoch newer than the current one is unknown (-1, -1);
//! - an epoch older than any known one ends where the first known epoch starts, the log
//!   start offset, and is answered under the epoch asked for;
//! - the undefined epoch (-1) is answered with -1, -1.
//!
//! A request's `current_leader_epoch` other than -1 is checked first: older than ours is
//! FENCED_LEADER_EPOCH, newer is UNKNOWN_LEADER_EPOCH, as a Kafka leader answers.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderPartition;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::metadata::PARTITION_LEADER_EPOCH;
use super::RequestMeta;
use crate::authz::Access;
use crate::connection::Reply;
use crate::errors::store_error_code;
use crate::state::BrokerState;

/// Kafka's "no epoch" and "no offset" (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET).
const UNDEFINED_EPOCH: i32 = -1;
const UNDEFINED_EPOCH_OFFSET: i64 = -1;

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    request: OffsetForLeaderEpochRequest,
) -> Reply {
    // A consumer needs DESCRIBE on the topic, as Kafka checks.
    let describable: Vec<bool> = request
        .topics
        .iter()
        .map(|t| access.topic(Operation::Describe, t.topic.0.as_str()))
        .collect();
    let state = Arc::clone(state);
    meta.reply_when_ready(Box::pin(async move {
        let mut topics = Vec::with_capacity(request.topics.len());
        for (t, describable) in request.topics.into_iter().zip(describable) {
            let name = t.topic.0.to_string();
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in &t.partitions {
                partitions.push(if describable {
                    end_offset(&state, &name, p).await
                } else {
                    EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(UNDEFINED_EPOCH)
                        .with_end_offset(UNDEFINED_EPOCH_OFFSET)
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                });
            }
            topics.push(
                OffsetForLeaderTopicResult::default()
                    .with_topic(t.topic)
                    .with_partitions(partitions),
            );
        }
        OffsetForLeaderEpochResponse::default().with_topics(topics)
    }))
}

async fn end_offset(
    state: &BrokerState,
    topic: &str,
    p: &OffsetForLeaderPartition,
) -> EpochEndOffset {
    let answer = |epoch: i32, offset: i64| {
        EpochEndOffset::default()
            .with_partition(p.partition)
            .with_leader_epoch(epoch)
            .with_end_offset(offset)
    };
    let refuse = |e: ResponseError| {
        answer(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET).with_error_code(e.code())
    };
    // 1. The partition must exist here.
    let Some(tp) = state.topic_partition(topic, p.partition) else {
        return refuse(ResponseError::UnknownTopicOrPartition);
    };
    // 2. The asker's view of the current epoch, when it has one, must be ours.
    if p.current_leader_epoch != UNDEFINED_EPOCH {
        if p.current_leader_epoch < PARTITION_LEADER_EPOCH {
            return refuse(ResponseError::FencedLeaderEpoch);
        }
        if p.current_leader_epoch > PARTITION_LEADER_EPOCH {
            return refuse(ResponseError::UnknownLeaderEpoch);
        }
    }
    // 3. Where the asked epoch ends, in a history of one epoch.
    let offsets = match state.log_admin().offsets(&tp).await {
        Ok(offsets) => offsets,
        Err(e) => {
            return answer(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
                .with_error_code(store_error_code(&e))
        }
    };
    match p.leader_epoch {
        UNDEFINED_EPOCH => answer(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET),
        e if e == PARTITION_LEADER_EPOCH => answer(e, offsets.log_end_offset),
        e if e > PARTITION_LEADER_EPOCH => answer(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET),
        e => answer(e, offsets.log_start_offset),
    }
}
