//! Fetch: stored batches, as the storage engine ([`weir_log::LogStore`]) reads them, with
//! long-poll and sessions.
//!
//! A fetch that finds fewer than `min_bytes` waits on the engine's wake-up of every
//! partition it reads, so it returns the moment a producer appends (as Kafka's purgatory
//! does), or when `max_wait_ms` runs out. It never sleeps and re-polls.
//!
//! Sessions (KIP-227, see [`crate::fetch_session`]): id 0 with epoch -1 is a plain full
//! fetch; epoch 0 opens a session (closing the one named, if any); a known id with the
//! expected epoch is an incremental fetch, answered with only the partitions that have
//! news; epoch -1 on a known id closes it.
//!
//! Each partition's topic needs READ; one the principal may not read is answered
//! TOPIC_AUTHORIZATION_FAILED whether it exists or not, as Kafka answers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use indexmap::IndexMap;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Notify;
use uuid::Uuid;
use weir_log::store::{PartitionRead, ReadSpec, TopicPartition};
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::RequestMeta;
use crate::authz::Access;
use crate::connection::Reply;
use crate::fetch_session::{SessionError, SessionKey, SessionPartition};
use crate::state::{partition_of, BrokerState};

/// Upper bound on how long a fetch may wait, whatever the client asks.
pub const FETCH_WAIT_MS_MAX: i32 = 60_000;

/// One partition to read, resolved against the catalog.
struct Want {
    /// read_committed: data up to the last stable offset, with the aborted transactions.
    read_committed: bool,
    key: SessionKey,
    fetch_offset: i64,
    partition_max_bytes: usize,
    /// The partition, when it exists and the principal may read it.
    tp: Option<TopicPartition>,
    unknown_code: i16,
    /// For incremental responses: what the client last saw.
    last_high_watermark: i64,
    last_log_start_offset: i64,
}

#[allow(clippy::too_many_arguments)]
fn resolve(
    state: &BrokerState,
    access: &Access,
    version: i16,
    read_committed: bool,
    key: SessionKey,
    fetch_offset: i64,
    max: usize,
    last: (i64, i64),
) -> Want {
    let (topic, unknown_code) = if version >= 13 {
        (
            state.topic_by_id(key.1),
            ResponseError::UnknownTopicId.code(),
        )
    } else {
        (
            state.topic(&key.0),
            ResponseError::UnknownTopicOrPartition.code(),
        )
    };
    let name = topic.as_ref().map_or(key.0.as_str(), |t| t.name.as_str());
    let readable = (version >= 13 && topic.is_none()) || access.topic(Operation::Read, name);
    let (tp, unknown_code) = if readable {
        let tp = topic.as_ref().and_then(|t| partition_of(t, key.2));
        (tp, unknown_code)
    } else {
        (None, ResponseError::TopicAuthorizationFailed.code())
    };
    Want {
        read_committed,
        key,
        fetch_offset,
        partition_max_bytes: max,
        tp,
        unknown_code,
        last_high_watermark: last.0,
        last_log_start_offset: last.1,
    }
}

/// The outcome of reading every wanted partition once.
struct Collected {
    /// (index into wants, partition data), in request order.
    parts: Vec<(usize, PartitionData)>,
    total_bytes: usize,
    any_error: bool,
}

/// What to ask the storage engine: a read for each wanted partition that exists.
fn read_specs(wants: &[Want]) -> Vec<ReadSpec> {
    wants
        .iter()
        .filter_map(|w| {
            w.tp.as_ref().map(|tp| ReadSpec {
                tp: tp.clone(),
                fetch_offset: w.fetch_offset,
                partition_max_bytes: w.partition_max_bytes,
                read_committed: w.read_committed,
            })
        })
        .collect()
}

/// Puts what the engine read (one per partition in `read_specs`, in order) into each
/// wanted partition's answer.
fn collect(wants: &[Want], reads: Vec<Option<PartitionRead>>) -> Collected {
    let mut total = 0usize;
    let mut any_error = false;
    let mut parts = Vec::with_capacity(wants.len());
    let mut reads = reads.into_iter();
    for (i, w) in wants.iter().enumerate() {
        let data = PartitionData::default()
            .with_partition_index(w.key.2)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_preferred_read_replica(BrokerId(-1))
            .with_records(Some(Bytes::new()));
        let read = match &w.tp {
            None => None,
            Some(_) => reads.next().expect("one read per partition asked"),
        };
        let Some(read) = read else {
            any_error = true;
            parts.push((i, data.with_error_code(w.unknown_code)));
            continue;
        };
        let mut data = data
            .with_high_watermark(read.high_watermark)
            .with_last_stable_offset(read.last_stable_offset)
            .with_log_start_offset(read.log_start_offset);
        if let Some(aborted) = read.aborted {
            data.aborted_transactions = Some(
                aborted
                    .into_iter()
                    .map(|a| {
                        kafka_protocol::messages::fetch_response::AbortedTransaction::default()
                            .with_producer_id(kafka_protocol::messages::ProducerId(a.producer_id))
                            .with_first_offset(a.first_offset)
                    })
                    .collect(),
            );
        }
        match read.records {
            Ok(bytes) => {
                total += bytes.len();
                parts.push((i, data.with_records(Some(bytes))));
            }
            Err(e) => {
                any_error = true;
                parts.push((i, data.with_error_code(crate::errors::log_error_code(&e))));
            }
        }
    }
    Collected {
        parts,
        total_bytes: total,
        any_error,
    }
}

/// Builds the response. In a session, only partitions with news are included, and the
/// session learns what the client has now seen.
fn respond(
    state: &BrokerState,
    wants: &[Want],
    collected: Collected,
    session_id: i32,
    incremental: bool,
) -> FetchResponse {
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    for (i, data) in collected.parts {
        let w = &wants[i];
        let has_news = data.error_code != 0
            || data.records.as_ref().is_some_and(|r| !r.is_empty())
            || data.high_watermark != w.last_high_watermark
            || data.log_start_offset != w.last_log_start_offset;
        if incremental && !has_news {
            continue;
        }
        if let (Some(tp), Some(records)) = (&w.tp, &data.records) {
            if !records.is_empty() {
                state
                    .traffic
                    .of(tp.topic_id, tp.partition)
                    .served(records.len() as u64);
            }
        }
        if session_id != 0 {
            state.fetch_sessions.record_sent(
                session_id,
                &w.key,
                data.high_watermark,
                data.log_start_offset,
            );
        }
        let same_topic = topics
            .last()
            .is_some_and(|t| t.topic.0.as_str() == w.key.0 && t.topic_id == w.key.1);
        if !same_topic {
            topics.push(
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_string(w.key.0.clone())))
                    .with_topic_id(w.key.1),
            );
        }
        topics.last_mut().expect("pushed").partitions.push(data);
    }
    tracing::debug!(
        session_id,
        sent = ?topics.iter().flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.high_watermark, p.records.as_ref().map_or(0, |r| r.len())))).collect::<Vec<_>>(),
        "fetch response"
    );
    FetchResponse::default()
        .with_session_id(session_id)
        .with_responses(topics)
}

fn key_of(version: i16, topic: &TopicName, topic_id: Uuid, partition: i32) -> SessionKey {
    if version >= 13 {
        (String::new(), topic_id, partition)
    } else {
        (topic.0.to_string(), Uuid::nil(), partition)
    }
}

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    request: FetchRequest,
) -> Reply {
    let v = meta.api_version;
    let read_committed = request.isolation_level == 1;
    let listed: Vec<(SessionKey, i64, usize)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                (
                    key_of(v, &t.topic, t.topic_id, p.partition),
                    p.fetch_offset,
                    p.partition_max_bytes.max(0) as usize,
                )
            })
        })
        .collect();

    tracing::debug!(
        session_id = request.session_id,
        session_epoch = request.session_epoch,
        listed = ?listed.iter().map(|(k, o, _)| (k.2, *o)).collect::<Vec<_>>(),
        forgotten = request.forgotten_topics_data.len(),
        "fetch"
    );
    // 1. Work out which partitions this fetch reads, and in which session.
    let (session_id, incremental, wants) = match (request.session_id, request.session_epoch) {
        (0, -1) => (
            0,
            false,
            listed
                .into_iter()
                .map(|(k, o, m)| resolve(state, access, v, read_committed, k, o, m, (-2, -2)))
                .collect::<Vec<_>>(),
        ),
        (old, 0) => {
            // Epoch 0 opens a new session; a non-zero id with it closes that one first.
            if old != 0 {
                state.fetch_sessions.remove(old);
            }
            let parts: IndexMap<SessionKey, SessionPartition> = listed
                .iter()
                .map(|(k, o, m)| {
                    (
                        k.clone(),
                        SessionPartition {
                            fetch_offset: *o,
                            partition_max_bytes: *m,
                            last_high_watermark: -2,
                            last_log_start_offset: -2,
                        },
                    )
                })
                .collect();
            let id = state.fetch_sessions.create(parts);
            (
                id,
                false,
                listed
                    .into_iter()
                    .map(|(k, o, m)| resolve(state, access, v, read_committed, k, o, m, (-2, -2)))
                    .collect(),
            )
        }
        (0, _) => {
            return meta.reply(
                &FetchResponse::default()
                    .with_error_code(ResponseError::InvalidFetchSessionEpoch.code()),
            )
        }
        (id, -1) => {
            state.fetch_sessions.remove(id);
            (
                0,
                false,
                listed
                    .into_iter()
                    .map(|(k, o, m)| resolve(state, access, v, read_committed, k, o, m, (-2, -2)))
                    .collect(),
            )
        }
        (id, epoch) => {
            let forgotten: Vec<SessionKey> = request
                .forgotten_topics_data
                .iter()
                .flat_map(|f| {
                    f.partitions
                        .iter()
                        .map(move |p| key_of(v, &f.topic, f.topic_id, *p))
                })
                .collect();
            match state.fetch_sessions.update(id, epoch, listed, forgotten) {
                Ok(parts) => (
                    id,
                    true,
                    parts
                        .into_iter()
                        .map(|(k, p)| {
                            resolve(
                                state,
                                access,
                                v,
                                read_committed,
                                k,
                                p.fetch_offset,
                                p.partition_max_bytes,
                                (p.last_high_watermark, p.last_log_start_offset),
                            )
                        })
                        .collect(),
                ),
                Err(e) => {
                    let code = match e {
                        SessionError::NotFound => ResponseError::FetchSessionIdNotFound,
                        SessionError::InvalidEpoch => ResponseError::InvalidFetchSessionEpoch,
                        SessionError::TooLarge => ResponseError::FetchSessionTopicIdError,
                    };
                    return meta.reply(&FetchResponse::default().with_error_code(code.code()));
                }
            }
        }
    };

    // 2. Read now; answer at once if there is enough, or an error, or no wait allowed.
    let max_bytes = if request.max_bytes <= 0 {
        usize::MAX
    } else {
        request.max_bytes as usize
    };
    let min_bytes = (request.min_bytes.max(0) as usize).max(1);
    let max_wait_ms = request.max_wait_ms.clamp(0, FETCH_WAIT_MS_MAX);
    let specs = read_specs(&wants);
    // An engine that cannot answer at once (its reads are I/O) is asked again below, where
    // the answer may wait.
    if let Some(reads) = state.store().read(&specs, max_bytes).now_or_never() {
        let collected = collect(&wants, reads);
        if collected.total_bytes >= min_bytes
            || collected.any_error
            || max_wait_ms == 0
            || wants.is_empty()
        {
            return meta.fetch_reply(respond(state, &wants, collected, session_id, incremental));
        }
    }

    // 3. Otherwise wait for an append to any of them, or the deadline.
    let meta = meta.clone();
    let state = Arc::clone(state);
    // Counted as parked until the answer is ready, or the connection drops the wait.
    let parked = state.metrics.fetch_parked();
    Reply::Later(Box::pin(async move {
        let _parked = parked;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(max_wait_ms as u64);
        let watches: Vec<Arc<Notify>> = specs
            .iter()
            .filter_map(|s| state.store().watch(&s.tp))
            .collect();
        loop {
            // Register for wake-ups first, then look: an append in between is not missed.
            let mut waits: Vec<_> = watches.iter().map(|n| Box::pin(n.notified())).collect();
            for w in waits.iter_mut() {
                w.as_mut().enable();
            }
            let reads = state.store().read(&specs, max_bytes).await;
            let collected = collect(&wants, reads);
            if collected.total_bytes >= min_bytes
                || collected.any_error
                || wants.is_empty()
                || tokio::time::Instant::now() >= deadline
            {
                return meta.fetch_frame(respond(
                    &state,
                    &wants,
                    collected,
                    session_id,
                    incremental,
                ));
            }
            tokio::select! {
                _ = futures::future::select_all(waits) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }))
}
