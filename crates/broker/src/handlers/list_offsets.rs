//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), latest
//! tiered (-5, never an offset: weir tiers nothing), and the first offset at or after a
//! timestamp, found through the time index. Under
//! read_committed (isolation level 1) "latest" is the last stable offset, and nothing at or
//! past it is returned.
//!
//! Each topic needs DESCRIBE; the partitions of one the principal may not describe are
//! answered TOPIC_AUTHORIZATION_FAILED, after the others, as Kafka answers.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::RequestMeta;
use crate::authz::Access;
use crate::connection::Reply;
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
    let mut body = answer(state, meta.api_version, request);
    body.topics.extend(denied.into_iter().map(|t| {
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
    }));
    meta.reply(&body)
}

/// The answer to a ListOffsets at `version`; the HTTP API asks through here too.
pub fn answer(
    state: &BrokerState,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let read_committed = request.isolation_level == 1;
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let out = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    let Some(handle) = state.partition(&name, p.partition_index) else {
                        return out.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let log = handle.log.lock();
                    let visible_end = if read_committed {
                        log.last_stable_offset()
                    } else {
                        log.high_watermark()
                    };
                    let found = match p.timestamp {
                        LATEST_TIMESTAMP => Ok(Some((visible_end, -1))),
                        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => {
                            Ok(Some((log.log_start_offset(), -1)))
                        }
                        MAX_TIMESTAMP => log.max_timestamp_offset(),
                        LATEST_TIERED_TIMESTAMP => Ok(None),
                        ts if ts >= 0 => log.offset_for_timestamp(ts),
                        _ => {
                            return out.with_error_code(ResponseError::InvalidRequest.code());
                        }
                    };
                    let found = found.map(|f| {
                        f.filter(|(offset, _)| {
                            // Only lookups by timestamp are bounded: latest and earliest stand as they are.
                            matches!(
                                p.timestamp,
                                LATEST_TIMESTAMP | EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP
                            ) || *offset < visible_end
                        })
                    });
                    match found {
                        Ok(Some((offset, timestamp))) => {
                            // The leader epoch field exists from v4.
                            let epoch = if version >= 4 { 0 } else { -1 };
                            out.with_offset(offset)
                                .with_timestamp(timestamp)
                                .with_leader_epoch(epoch)
                        }
                        Ok(None) => out,
                        Err(e) => out.with_error_code(crate::errors::log_error_code(&e)),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
