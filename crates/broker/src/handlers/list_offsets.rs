//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), latest
//! tiered (-5, never an offset: weir tiers nothing), and the first offset at or after a
//! timestamp, found through the time index. Under
//! read_committed (isolation level 1) "latest" is the last stable offset, and nothing at or
//! past it is returned.
//!
//! Each topic needs DESCRIBE; the partitions of one the principal may not describe are
//! answered TOPIC_AUTHORIZATION_FAILED, after the others, as Kafka answers.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_request::ListOffsetsTopic;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use weir_log::store::{TimestampedOffset, TopicPartition};
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::RequestMeta;
use crate::authz::Access;
use crate::connection::Reply;
use crate::errors::store_error_code;
use crate::state::BrokerState;

pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
/// The last offset copied to tiered storage (KIP-1005). Without tiered storage there is
/// none: the answer carries offset -1 and no error, as Kafka's does for a topic that is not
/// tiered.
pub const LATEST_TIERED_TIMESTAMP: i64 = -5;

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    mut request: ListOffsetsRequest,
) -> Reply {
    let (allowed, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
        .into_iter()
        .partition(|t| access.topic(Operation::Describe, t.name.0.as_str()));
    request.topics = allowed;
    let state = Arc::clone(state);
    let version = meta.api_version;
    meta.reply_when_ready(Box::pin(async move {
        let mut body = answer(&state, version, request).await;
        body.topics.extend(denied.into_iter().map(refused_topic));
        body
    }))
}

/// A topic the principal may not describe: every partition refused.
fn refused_topic(t: ListOffsetsTopic) -> ListOffsetsTopicResponse {
    ListOffsetsTopicResponse::default()
        .with_name(t.name)
        .with_partitions(
            t.partitions
                .iter()
                .map(|p| {
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1)
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                })
                .collect(),
        )
}

/// The answer to a ListOffsets at `version`; the HTTP API asks through here too.
pub async fn answer(
    state: &BrokerState,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let read_committed = request.isolation_level == 1;
    let mut topics = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let name = t.name.0.to_string();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let out = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            partitions.push(match state.topic_partition(&name, p.partition_index) {
                None => out.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                Some(tp) => match find(state, &tp, p.timestamp, read_committed).await {
                    Ok(Some(found)) => {
                        // The leader epoch field exists from v4.
                        let epoch = if version >= 4 { 0 } else { -1 };
                        out.with_offset(found.offset)
                            .with_timestamp(found.timestamp)
                            .with_leader_epoch(epoch)
                    }
                    Ok(None) => out,
                    Err(code) => out.with_error_code(code),
                },
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// The offset one partition's answer gives for `timestamp` (a time, or one of the special
/// values above).
async fn find(
    state: &BrokerState,
    tp: &TopicPartition,
    timestamp: i64,
    read_committed: bool,
) -> Result<Option<TimestampedOffset>, i16> {
    let admin = state.log_admin();
    let offsets = admin.offsets(tp).await.map_err(|e| store_error_code(&e))?;
    let visible_end = if read_committed {
        offsets.last_stable_offset
    } else {
        offsets.high_watermark
    };
    let at = |offset| {
        Some(TimestampedOffset {
            offset,
            timestamp: -1,
        })
    };
    let found = match timestamp {
        // Latest and earliest stand as they are; lookups by timestamp stop short of what
        // the reader may not see.
        LATEST_TIMESTAMP => return Ok(at(visible_end)),
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => return Ok(at(offsets.log_start_offset)),
        LATEST_TIERED_TIMESTAMP => return Ok(None),
        MAX_TIMESTAMP => admin.max_timestamp_offset(tp).await,
        ts if ts >= 0 => admin.offset_for_timestamp(tp, ts).await,
        _ => return Err(ResponseError::InvalidRequest.code()),
    };
    Ok(found
        .map_err(|e| store_error_code(&e))?
        .filter(|f| f.offset < visible_end))
}
