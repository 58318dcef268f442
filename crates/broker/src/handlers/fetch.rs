//! Fetch: stored batches straight from the segment files, with long-poll.
//!
//! A fetch that finds fewer than `min_bytes` waits on the `appended` notification of every
//! partition it reads, so it returns the moment a producer appends (as Kafka's purgatory
//! does), or when `max_wait_ms` runs out. It never sleeps and re-polls.
//!
//! Fetch sessions (KIP-227): weir answers every fetch in full and returns session id 0,
//! which the protocol defines as "no session"; clients then keep sending full requests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use uuid::Uuid;
use weir_wire::ResponseError;

use super::RequestMeta;
use crate::connection::Reply;
use crate::state::{BrokerState, PartitionHandle};

/// Upper bound on how long a fetch may wait, whatever the client asks.
pub const FETCH_WAIT_MS_MAX: i32 = 60_000;

struct Wanted {
    topic: TopicName,
    topic_id: Uuid,
    partitions: Vec<(i32, i64, usize, Option<Arc<PartitionHandle>>)>,
    unknown_code: i16,
}

fn plan(state: &BrokerState, meta: &RequestMeta, request: &FetchRequest) -> Vec<Wanted> {
    request
        .topics
        .iter()
        .map(|t| {
            let (topic, unknown_code) = if meta.api_version >= 13 {
                (state.topic_by_id(t.topic_id), ResponseError::UnknownTopicId.code())
            } else {
                (state.topic(t.topic.0.as_str()), ResponseError::UnknownTopicOrPartition.code())
            };
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let handle = topic.as_ref().and_then(|tp| state.partition(&tp.name, p.partition));
                    (p.partition, p.fetch_offset, p.partition_max_bytes.max(0) as usize, handle)
                })
                .collect();
            Wanted { topic: t.topic.clone(), topic_id: t.topic_id, partitions, unknown_code }
        })
        .collect()
}

/// Reads every wanted partition once. Returns the response, its record bytes, and whether
/// any partition carries an error (which answers at once).
fn collect(wanted: &[Wanted], max_bytes: usize) -> (FetchResponse, usize, bool) {
    let mut total = 0usize;
    let mut any_error = false;
    let mut topics = Vec::with_capacity(wanted.len());
    for w in wanted {
        let mut parts = Vec::with_capacity(w.partitions.len());
        for (index, offset, partition_max, handle) in &w.partitions {
            let mut data = PartitionData::default()
                .with_partition_index(*index)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(BrokerId(-1))
                .with_records(Some(Bytes::new()));
            let Some(handle) = handle else {
                any_error = true;
                parts.push(data.with_error_code(w.unknown_code));
                continue;
            };
            let (slice, hw, log_start) = {
                let log = handle.log.lock();
                let remaining = max_bytes.saturating_sub(total);
                (log.read(*offset, (*partition_max).min(remaining)), log.high_watermark(), log.log_start_offset())
            };
            data = data.with_high_watermark(hw).with_last_stable_offset(hw).with_log_start_offset(log_start);
            match slice {
                Ok(Some(slice)) => {
                    // Only the first data of a response may exceed the byte limits.
                    if total > 0 && slice.first_batch_bytes() > max_bytes.saturating_sub(total) {
                        parts.push(data);
                        continue;
                    }
                    match slice.load() {
                        Ok(bytes) => {
                            total += bytes.len();
                            parts.push(data.with_records(Some(bytes)));
                        }
                        Err(e) => {
                            any_error = true;
                            parts.push(data.with_error_code(crate::errors::log_error_code(&e)));
                        }
                    }
                }
                Ok(None) => parts.push(data),
                Err(e) => {
                    any_error = true;
                    parts.push(data.with_error_code(crate::errors::log_error_code(&e)));
                }
            }
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(w.topic.clone())
                .with_topic_id(w.topic_id)
                .with_partitions(parts),
        );
    }
    (FetchResponse::default().with_responses(topics), total, any_error)
}

pub fn handle(state: &Arc<BrokerState>, meta: &RequestMeta, request: FetchRequest) -> Reply {
    // An incremental fetch names a session weir never created.
    if request.session_id != 0 {
        let body = FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0);
        return meta.reply(&body);
    }
    let wanted = plan(state, meta, &request);
    let max_bytes = if request.max_bytes <= 0 { usize::MAX } else { request.max_bytes as usize };
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_wait_ms = request.max_wait_ms.clamp(0, FETCH_WAIT_MS_MAX);

    let (body, total, any_error) = collect(&wanted, max_bytes);
    if total >= min_bytes.max(1) || any_error || max_wait_ms == 0 || wanted.is_empty() {
        return meta.reply(&body);
    }

    let meta = *meta;
    Reply::Later(Box::pin(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(max_wait_ms as u64);
        let handles: Vec<Arc<PartitionHandle>> =
            wanted.iter().flat_map(|w| w.partitions.iter().filter_map(|p| p.3.clone())).collect();
        loop {
            // Register for wake-ups first, then look: an append in between is not missed.
            let mut waits: Vec<_> = handles.iter().map(|h| Box::pin(h.appended.notified())).collect();
            for w in waits.iter_mut() {
                w.as_mut().enable();
            }
            let (body, total, any_error) = collect(&wanted, max_bytes);
            if total >= min_bytes.max(1) || any_error || tokio::time::Instant::now() >= deadline {
                return meta.frame(&body);
            }
            tokio::select! {
                _ = futures::future::select_all(waits) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    let (body, _, _) = collect(&wanted, max_bytes);
                    return meta.frame(&body);
                }
            }
        }
    }))
}
