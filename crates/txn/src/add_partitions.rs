//! AddPartitionsToTxn and AddOffsetsToTxn: partitions join the open transaction (which
//! opens it), so the coordinator knows where to write markers.
//!
//! Versions 0-3 come from clients, one transaction each. Versions 4 and later come from the
//! broker itself, batched: with `verify_only` to check that a transactional produce or
//! offset commit goes to a partition already in the transaction (KIP-890 part 1), without
//! it to add the partition on the client's behalf (part 2, transactions V2).

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::coordinator::TxnCoordinator;
use crate::init_producer_id::fenced_for_version;
use crate::metadata::TxnState;
use crate::{Output, RequestContext, TxnResponse, TXN_PARTITIONS_MAX};

/// The `__consumer_offsets` topic, whose partition holding a group joins a transaction
/// that commits offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// No error.
const NONE: i16 = 0;

/// How a request touches a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A client adding partitions (v0-3, AddOffsetsToTxn).
    Client,
    /// The broker checking partitions are in the transaction (v4+, verify_only).
    Verify,
    /// The broker adding partitions for a transactions-V2 client (v4+).
    AddForV2,
}

/// Adds `partitions` to the transaction of `tid`, or checks them. `Err` is one code for
/// the whole transaction; `Ok` holds a code per partition.
fn add_or_verify(
    c: &mut TxnCoordinator,
    now_ms: i64,
    tid: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(String, i32)],
    mode: Mode,
    out: &mut Output,
) -> Result<Vec<i16>, ResponseError> {
    // 1. Guards.
    if tid.is_empty() {
        return Err(ResponseError::InvalidRequest);
    }
    let Some(current) = c.txns.get(tid) else {
        return Err(ResponseError::InvalidProducerIdMapping);
    };
    if current.producer_id != producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if current.producer_epoch != producer_epoch {
        return Err(ResponseError::ProducerFenced);
    }
    if current.state.is_preparing() || current.state == TxnState::PrepareEpochFence {
        return Err(ResponseError::ConcurrentTransactions);
    }
    // 2. Verification only reads.
    if mode == Mode::Verify {
        return Ok(partitions
            .iter()
            .map(|p| {
                if current.state == TxnState::Ongoing && current.partitions.contains(p) {
                    NONE
                } else {
                    ResponseError::TransactionAbortable.code()
                }
            })
            .collect());
    }
    // 3. Already there: nothing to write.
    let all_present = partitions.iter().all(|p| current.partitions.contains(p));
    if current.state == TxnState::Ongoing && all_present {
        return Ok(vec![NONE; partitions.len()]);
    }
    if current.partitions.len() + partitions.len() > TXN_PARTITIONS_MAX {
        return Err(ResponseError::InvalidRequest);
    }
    // 4. The transaction (re)opens with these partitions.
    let mut next = current.clone();
    if !matches!(current.state, TxnState::Ongoing) {
        next.txn_start_timestamp_ms = now_ms;
        next.partitions.clear();
    }
    if mode == Mode::AddForV2 {
        next.client_transaction_version = 2;
    }
    next.state = TxnState::Ongoing;
    next.partitions.extend(partitions.iter().cloned());
    next.txn_last_update_timestamp_ms = now_ms;
    c.write(next, out);
    Ok(vec![NONE; partitions.len()])
}

fn topic_results(
    partitions: &[(String, i32)],
    codes: &[i16],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, p), code) in partitions.iter().zip(codes) {
        if topics.last().is_none_or(|t| t.name.0.as_str() != topic) {
            topics.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone()))),
            );
        }
        topics
            .last_mut()
            .expect("pushed")
            .results_by_partition
            .push(
                AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(*p)
                    .with_partition_error_code(*code),
            );
    }
    topics
}

pub fn handle(
    c: &mut TxnCoordinator,
    now_ms: i64,
    ctx: RequestContext,
    r: AddPartitionsToTxnRequest,
    out: &mut Output,
) {
    let mut body = AddPartitionsToTxnResponse::default();
    if ctx.api_version <= 3 {
        let partitions: Vec<(String, i32)> = r
            .v3_and_below_topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), *p)))
            .collect();
        let tid = r.v3_and_below_transactional_id.0.to_string();
        let codes = add_or_verify(
            c,
            now_ms,
            &tid,
            r.v3_and_below_producer_id.0,
            r.v3_and_below_producer_epoch,
            &partitions,
            Mode::Client,
            out,
        )
        .unwrap_or_else(|e| {
            vec![fenced_for_version(e, ctx.api_version, 2).code(); partitions.len()]
        });
        body.results_by_topic_v3_and_below = topic_results(&partitions, &codes);
    } else {
        for t in r.transactions {
            let partitions: Vec<(String, i32)> = t
                .topics
                .iter()
                .flat_map(|tp| {
                    tp.partitions
                        .iter()
                        .map(move |p| (tp.name.0.to_string(), *p))
                })
                .collect();
            let mode = if t.verify_only {
                Mode::Verify
            } else {
                Mode::AddForV2
            };
            let tid = t.transactional_id.0.to_string();
            let codes = add_or_verify(
                c,
                now_ms,
                &tid,
                t.producer_id.0,
                t.producer_epoch,
                &partitions,
                mode,
                out,
            )
            .unwrap_or_else(|e| vec![e.code(); partitions.len()]);
            body.results_by_transaction.push(
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(t.transactional_id)
                    .with_topic_results(topic_results(&partitions, &codes)),
            );
        }
    }
    out.responses
        .push((ctx.token, TxnResponse::AddPartitionsToTxn(body)));
}

pub fn add_offsets(
    c: &mut TxnCoordinator,
    now_ms: i64,
    ctx: RequestContext,
    r: AddOffsetsToTxnRequest,
    offsets_partition: i32,
    out: &mut Output,
) {
    let tid = r.transactional_id.0.to_string();
    let partitions = [(OFFSETS_TOPIC.to_string(), offsets_partition)];
    let code = match add_or_verify(
        c,
        now_ms,
        &tid,
        r.producer_id.0,
        r.producer_epoch,
        &partitions,
        Mode::Client,
        out,
    ) {
        Ok(codes) => codes[0],
        Err(e) => fenced_for_version(e, ctx.api_version, 2).code(),
    };
    out.responses.push((
        ctx.token,
        TxnResponse::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(code)),
    ));
}
