//! Produce: validate and append each partition's batches, then acknowledge per `acks`.
//!
//! A batch the log refuses for some of its records (a keyless record for a compacted topic,
//! a timestamp outside the topic's window) is answered, from Produce v8, with each of those
//! records by index and Kafka's message (KIP-467), so clients fail exactly those records and
//! tell the others that another record of their batch was invalid. Nothing of it is stored.
//!
//! The batches go to the storage engine ([`weir_log::LogStore`]) together; the answer goes
//! when the engine says they are as durable as `acks` asks (the local engine: with
//! `--fsync always`, acks=all waits for the fsync of every partition written).
//!
//! A transactional batch for a partition where its producer has no open transaction yet is
//! first checked with the transaction coordinator (KIP-890): for transactions V2 clients
//! (Produce v12+) the partition is added to the transaction, for older ones it must already
//! be in it. Anything refused is not stored.
//!
//! Authorization, as Kafka checks it: transactional records need WRITE on the request's
//! transactional id (else every partition hears TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
//! and each topic needs WRITE (else TOPIC_AUTHORIZATION_FAILED, whether it exists or not).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use futures::FutureExt;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;
use weir_log::batch::BatchHeader;
use weir_log::store::{Acks, AppendResult, BoxFuture, PartitionWrite, Refused};
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::RequestMeta;
use crate::authz::Access;
use crate::connection::Reply;
use crate::state::{partition_of, BrokerState};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn partition_error(index: i32, code: i16, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.map(StrBytes::from_string))
}

/// Produce v8 added the records at fault (KIP-467) and a message to a partition's answer.
const RECORD_ERRORS_VERSION: i16 = 8;

/// The answer for a partition whose batch the log refused. A batch refused for some of its
/// records carries the partition's log start offset and, from v8, names each of them, as
/// Kafka's answer does; to clients before v8 it is an error of the whole batch.
fn refused(
    api_version: i16,
    index: i32,
    e: &weir_log::LogError,
    log_start_offset: i64,
) -> PartitionProduceResponse {
    let answer = partition_error(index, crate::errors::log_error_code(e), Some(e.to_string()));
    let records = e.record_errors();
    if records.is_empty() {
        return answer;
    }
    let answer = answer.with_log_start_offset(log_start_offset);
    if api_version < RECORD_ERRORS_VERSION {
        return answer;
    }
    answer.with_record_errors(
        records
            .iter()
            .map(|r| {
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(r.batch_index)
                    .with_batch_index_error_message(Some(StrBytes::from_string(r.message.clone())))
            })
            .collect(),
    )
}

/// The transactional partitions of a request that the coordinator must check first:
/// (topic, partition, producer id, epoch) where the producer has no open transaction.
fn needing_check(state: &BrokerState, meta: &RequestMeta, request: &ProduceRequest) -> Vec<Check> {
    let mut out = Vec::new();
    for t in &request.topic_data {
        let topic = if meta.api_version >= 13 {
            state.topic_by_id(t.topic_id)
        } else {
            state.topic(t.name.0.as_str())
        };
        let Some(topic) = topic else { continue };
        for p in &t.partition_data {
            let Some(records) = &p.records else { continue };
            let Ok(header) = BatchHeader::parse(records) else {
                continue;
            };
            if !header.is_transactional() || header.is_control() {
                continue;
            }
            let Some(tp) = partition_of(&topic, p.index) else {
                continue;
            };
            // A partition already in the producer's open transaction needs no check. An
            // engine that answers from memory tells at once; one that must look (a
            // cluster's) is asked before the check, in the request's gate.
            let open = state.txn_log().has_open_transaction_now(
                &tp,
                header.producer_id,
                header.producer_epoch,
            );
            let unknown = match open {
                Some(Ok(true)) => continue,
                Some(_) => None,
                None => Some(tp),
            };
            out.push(Check {
                topic: topic.name.clone(),
                partition: p.index,
                producer_id: header.producer_id,
                producer_epoch: header.producer_epoch,
                unknown,
            });
        }
    }
    out
}

/// A transactional batch of a partition not known to be in its producer's transaction.
struct Check {
    topic: String,
    partition: i32,
    producer_id: i64,
    producer_epoch: i16,
    /// The partition, when whether its transaction is open is still to be asked.
    unknown: Option<weir_log::store::TopicPartition>,
}

/// The checks left once the engine has said which partitions are in an open transaction
/// already (those need no coordinator).
async fn still_needing_check(state: &BrokerState, checks: Vec<Check>) -> Vec<Check> {
    let mut out = Vec::with_capacity(checks.len());
    for c in checks {
        if let Some(tp) = &c.unknown {
            let open = state
                .txn_log()
                .has_open_transaction(tp, c.producer_id, c.producer_epoch)
                .await;
            if matches!(open, Ok(true)) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// A code from the coordinator's check as a produce answer says it (Kafka's mapping).
fn produce_code(code: i16, api_version: i16) -> i16 {
    let retriable = [
        ResponseError::ConcurrentTransactions.code(),
        ResponseError::CoordinatorNotAvailable.code(),
        ResponseError::NotCoordinator.code(),
        ResponseError::CoordinatorLoadInProgress.code(),
        ResponseError::NetworkException.code(),
    ];
    if retriable.contains(&code) {
        ResponseError::NotEnoughReplicas.code()
    } else if code == ResponseError::ProducerFenced.code() {
        // A produce from a fenced epoch hears INVALID_PRODUCER_EPOCH, as from Kafka.
        ResponseError::InvalidProducerEpoch.code()
    } else if code == ResponseError::TransactionAbortable.code() && api_version < 11 {
        ResponseError::InvalidTxnState.code()
    } else {
        code
    }
}

/// The verdict key that refuses every partition of a topic.
const WHOLE_TOPIC: i32 = -1;

/// Whether any partition's first batch is transactional.
fn has_transactional_records(request: &ProduceRequest) -> bool {
    request.topic_data.iter().any(|t| {
        t.partition_data.iter().any(|p| {
            p.records
                .as_ref()
                .and_then(|r| BatchHeader::parse(r).ok())
                .is_some_and(|h| h.is_transactional())
        })
    })
}

/// Every partition of the request refused with `code`; with acks=0, where no answer
/// could say so, the connection is closed, as Kafka closes it.
fn refuse_all(meta: &RequestMeta, request: &ProduceRequest, code: ResponseError) -> Reply {
    if request.acks == 0 {
        return Reply::Close(None);
    }
    let responses = request
        .topic_data
        .iter()
        .map(|t| {
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_partition_responses(
                    t.partition_data
                        .iter()
                        .map(|p| partition_error(p.index, code.code(), None))
                        .collect(),
                )
        })
        .collect();
    meta.reply(&ProduceResponse::default().with_responses(responses))
}

/// The topics of the request the principal may not write, as verdicts.
fn write_denied(
    state: &BrokerState,
    access: &Access,
    meta: &RequestMeta,
    request: &ProduceRequest,
) -> HashMap<(String, i32), i16> {
    let mut denied = HashMap::new();
    for t in &request.topic_data {
        let name = if meta.api_version >= 13 {
            match state.topic_by_id(t.topic_id) {
                Some(topic) => topic.name.clone(),
                None => continue,
            }
        } else {
            t.name.0.to_string()
        };
        if !access.topic(Operation::Write, &name) {
            denied.insert(
                (name, WHOLE_TOPIC),
                ResponseError::TopicAuthorizationFailed.code(),
            );
        }
    }
    denied
}

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    request: ProduceRequest,
) -> Reply {
    if has_transactional_records(&request)
        && !request
            .transactional_id
            .as_ref()
            .is_some_and(|t| access.transactional_id(Operation::Write, t.0.as_str()))
    {
        return refuse_all(
            meta,
            &request,
            ResponseError::TransactionalIdAuthorizationFailed,
        );
    }
    let mut verdicts = write_denied(state, access, meta, &request);
    let checks: Vec<Check> = needing_check(state, meta, &request)
        .into_iter()
        .filter(|c| !verdicts.contains_key(&(c.topic.clone(), WHOLE_TOPIC)))
        .collect();
    if checks.is_empty() {
        return append_all(state, meta, request, &verdicts);
    }
    let Some(tid) = request.transactional_id.as_ref().map(|t| t.0.to_string()) else {
        for c in &checks {
            verdicts.insert(
                (c.topic.clone(), c.partition),
                ResponseError::InvalidTxnState.code(),
            );
        }
        return append_all(state, meta, request, &verdicts);
    };
    let state = Arc::clone(state);
    let meta = meta.clone();
    Reply::Gate(Box::pin(async move {
        let checks = still_needing_check(&state, checks).await;
        if checks.is_empty() {
            return append_all(&state, &meta, request, &verdicts);
        }
        let verify_only = meta.api_version < super::txn::PRODUCE_TXN_V2_VERSION;
        // One producer per request; check its partitions together.
        let (pid, epoch) = (checks[0].producer_id, checks[0].producer_epoch);
        let parts: Vec<(String, i32)> =
            checks.into_iter().map(|c| (c.topic, c.partition)).collect();
        let codes = super::txn::verify_or_add(&state, &tid, pid, epoch, &parts, verify_only).await;
        for (part, code) in parts.into_iter().zip(codes) {
            if code != 0 {
                verdicts.insert(part, produce_code(code, meta.api_version));
            }
        }
        append_all(&state, &meta, request, &verdicts)
    }))
}

/// Appends every partition's batch (those with a refusing verdict aside) and answers.
fn append_all(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    request: ProduceRequest,
    verdicts: &HashMap<(String, i32), i16>,
) -> Reply {
    let acks = request.acks;
    let mut appended = append(state, meta.api_version, request, verdicts);
    appended.body.throttle_time_ms = meta.throttle_time_ms;
    if acks == 0 {
        // No answer goes back; an error is told the only way left, as Kafka tells it: the
        // connection is closed (what was appended stays).
        return match appended.ready() {
            Some(body) => acks0_reply(&body),
            None => Reply::Gate(Box::pin(
                async move { acks0_reply(&appended.answer().await) },
            )),
        };
    }
    if let Some(body) = appended.ready() {
        return meta.reply(&body);
    }
    let meta = meta.clone();
    Reply::Later(Box::pin(
        async move { meta.frame(&appended.answer().await) },
    ))
}

/// What an acks=0 produce gets back: nothing, or a closed connection if a partition failed.
fn acks0_reply(body: &ProduceResponse) -> Reply {
    let failed = body
        .responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .any(|p| p.error_code != 0);
    if failed {
        Reply::Close(None)
    } else {
        Reply::Nothing
    }
}

/// A Produce's answer: the partitions answered at once (refused before any append), and the
/// appends the storage engine has taken, whose outcomes fill in the rest when it resolves
/// them (at once, or after the fsync or commit that `acks` waits for).
pub struct Appended {
    pub body: ProduceResponse,
    api_version: i16,
    /// (topic index, partition index) in `body` of each write, in the order written.
    slots: Vec<(usize, usize)>,
    /// Each write's partition and size, counted in the partition's traffic once stored.
    written: Vec<(Uuid, i32, u64)>,
    state: Arc<BrokerState>,
    pending: Option<BoxFuture<'static, Vec<AppendResult>>>,
}

impl Appended {
    /// The answer, if the engine has resolved every append already.
    fn ready(&mut self) -> Option<ProduceResponse> {
        let results = match self.pending.as_mut() {
            None => Vec::new(),
            Some(pending) => pending.now_or_never()?,
        };
        self.pending = None;
        Some(self.fill(results))
    }

    /// The answer once every append is as durable as the request's `acks` asks.
    pub async fn answer(mut self) -> ProduceResponse {
        let results = match self.pending.take() {
            None => Vec::new(),
            Some(pending) => pending.await,
        };
        self.fill(results)
    }

    fn fill(&mut self, results: Vec<AppendResult>) -> ProduceResponse {
        assert_eq!(results.len(), self.slots.len(), "one result per write");
        for ((&(ti, pi), result), &(topic_id, partition, bytes)) in
            self.slots.iter().zip(results).zip(&self.written)
        {
            let p = &mut self.body.responses[ti].partition_responses[pi];
            let index = p.index;
            if let Ok(acked) = &result {
                if !acked.duplicate {
                    let records = (acked.last_offset - acked.base_offset + 1).max(0) as u64;
                    self.state
                        .traffic
                        .of(topic_id, partition)
                        .appended(records, bytes);
                }
            }
            *p = match result {
                Ok(acked) => PartitionProduceResponse::default()
                    .with_index(index)
                    .with_base_offset(acked.base_offset)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(acked.log_start_offset),
                Err(Refused::Log {
                    error,
                    log_start_offset,
                }) => {
                    tracing::debug!(partition = index, error = %error, "produce refused");
                    refused(self.api_version, index, &error, log_start_offset)
                }
                Err(Refused::UnknownPartition) => {
                    partition_error(index, ResponseError::UnknownTopicOrPartition.code(), None)
                }
            };
        }
        std::mem::take(&mut self.body)
    }
}

/// The append path of every Produce: checks each partition's batch and appends it to the
/// log, the partitions in `verdicts` (refused by the transaction coordinator, or whole topics the authorizer refused) aside. The
/// HTTP API's produce comes through here too.
pub fn append(
    state: &Arc<BrokerState>,
    api_version: i16,
    request: ProduceRequest,
    verdicts: &HashMap<(String, i32), i16>,
) -> Appended {
    let acks = request.acks;
    let mut slots = Vec::new();
    let mut writes = Vec::new();
    let mut written = Vec::new();
    let mut responses = Vec::with_capacity(request.topic_data.len());

    for (ti, topic_data) in request.topic_data.into_iter().enumerate() {
        // Produce v13+ names topics by id.
        let topic = if api_version >= 13 {
            state.topic_by_id(topic_data.topic_id)
        } else {
            state.topic(topic_data.name.0.as_str())
        };
        let unknown_code = if api_version >= 13 {
            ResponseError::UnknownTopicId.code()
        } else {
            ResponseError::UnknownTopicOrPartition.code()
        };
        let requested_name = match (&topic, api_version >= 13) {
            (Some(t), true) => t.name.clone(),
            _ => topic_data.name.0.to_string(),
        };
        let topic_verdict = verdicts.get(&(requested_name, WHOLE_TOPIC)).copied();
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for p in topic_data.partition_data {
            if let Some(code) = topic_verdict {
                partitions.push(partition_error(p.index, code, None));
                continue;
            }
            if Acks::from_kafka(acks).is_none() {
                partitions.push(partition_error(
                    p.index,
                    ResponseError::InvalidRequiredAcks.code(),
                    None,
                ));
                continue;
            }
            let Some(topic) = topic.as_ref() else {
                partitions.push(partition_error(p.index, unknown_code, None));
                continue;
            };
            if topic.internal {
                partitions.push(partition_error(
                    p.index,
                    ResponseError::InvalidTopicException.code(),
                    Some(format!("cannot append to internal topic {}", topic.name)),
                ));
                continue;
            }
            let Some(tp) = partition_of(topic, p.index) else {
                partitions.push(partition_error(
                    p.index,
                    ResponseError::UnknownTopicOrPartition.code(),
                    None,
                ));
                continue;
            };
            if let Some(&code) = verdicts.get(&(topic.name.clone(), p.index)) {
                partitions.push(partition_error(
                    p.index,
                    code,
                    Some("the partition is not in the producer's transaction".into()),
                ));
                continue;
            }
            let Some(records) = p.records else {
                partitions.push(partition_error(
                    p.index,
                    ResponseError::InvalidRecord.code(),
                    Some("no records".into()),
                ));
                continue;
            };
            // Produce v3 and later carries exactly one batch per partition, as Kafka enforces.
            if records.len() >= 12 {
                let first = 12
                    + i32::from_be_bytes([records[8], records[9], records[10], records[11]]).max(0)
                        as usize;
                if first < records.len() {
                    partitions.push(partition_error(
                        p.index,
                        ResponseError::InvalidRecord.code(),
                        Some(
                            "a produce request must hold exactly one record batch per partition"
                                .into(),
                        ),
                    ));
                    continue;
                }
            }
            // Answered once the engine has stored it. The broker writes the base offset into
            // the batch, so the engine gets its own copy.
            slots.push((ti, partitions.len()));
            written.push((tp.topic_id, tp.partition, records.len() as u64));
            partitions.push(PartitionProduceResponse::default().with_index(p.index));
            writes.push(PartitionWrite {
                tp,
                records: BytesMut::from(&records[..]),
            });
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(if api_version >= 13 {
                    TopicName::default()
                } else {
                    TopicName(topic_data.name.0.clone())
                })
                .with_topic_id(topic_data.topic_id)
                .with_partition_responses(partitions),
        );
    }

    let pending = match Acks::from_kafka(acks) {
        Some(acks) if !writes.is_empty() => Some(state.store().append(writes, acks, now_ms())),
        _ => None,
    };
    Appended {
        body: ProduceResponse::default().with_responses(responses),
        api_version,
        slots,
        written,
        state: Arc::clone(state),
        pending,
    }
}
