//! EndTxn: the outcome of a transaction is decided (PrepareCommit or PrepareAbort, durable),
//! its markers are written, and it completes (CompleteCommit or CompleteAbort). The EndTxn
//! answer waits for the completion, so once a client hears "committed" every partition
//! already holds the marker.
//!
//! Transactions V2 (EndTxn v5+): every end bumps the producer epoch, and the answer carries
//! the producer id and epoch to use next; a retried EndTxn is recognised by its epoch being
//! one below the current one.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};
use kafka_protocol::ResponseError;

use crate::coordinator::TxnCoordinator;
use crate::init_producer_id::fenced_for_version;
use crate::metadata::{epoch_exhausted, TxnMetadata, TxnState};
use crate::{Output, ProducerIds, RequestContext, TxnResponse, END_TXN_PARKED_MAX};

/// The first EndTxn version of transactions V2.
pub const END_TXN_V2_VERSION: i16 = 5;

fn answer(
    out: &mut Output,
    token: u64,
    api_version: i16,
    result: Result<(i64, i16), ResponseError>,
) {
    let body = match result {
        Ok((id, epoch)) => EndTxnResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(e) => EndTxnResponse::default()
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_error_code(fenced_for_version(e, api_version, 2).code()),
    };
    out.responses.push((token, TxnResponse::EndTxn(body)));
}

/// Whether an EndTxn at `producer_epoch` may act on `m` (Kafka's epoch rules for V1 and V2).
fn epoch_valid(m: &TxnMetadata, producer_id: i64, producer_epoch: i16) -> (bool, bool) {
    let v2 = m.bumps_epoch_at_end();
    // A retry of an EndTxn whose bump is already stored.
    let retry_on_bump = v2 && m.producer_epoch == producer_epoch.saturating_add(1);
    // A retry of an EndTxn whose bump ran out of epochs and moved to a new producer id.
    let retry_on_overflow = v2
        && m.previous_producer_id == producer_id
        && producer_epoch == i16::MAX - 1
        && m.producer_epoch == 0;
    let valid = if v2 {
        match m.state {
            TxnState::Ongoing | TxnState::Empty | TxnState::Dead | TxnState::PrepareEpochFence => {
                producer_epoch == m.producer_epoch
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_bump,
            TxnState::CompleteCommit | TxnState::CompleteAbort => {
                retry_on_bump || retry_on_overflow
            }
        }
    } else {
        producer_epoch == m.producer_epoch
    };
    (valid, retry_on_overflow)
}

pub fn handle(
    c: &mut TxnCoordinator,
    now_ms: i64,
    ctx: RequestContext,
    r: EndTxnRequest,
    ids: &mut dyn ProducerIds,
    out: &mut Output,
) {
    let tid = r.transactional_id.0.to_string();
    let (pid, epoch, commit, v) = (
        r.producer_id.0,
        r.producer_epoch,
        r.committed,
        ctx.api_version,
    );
    // 1. Guards.
    if tid.is_empty() {
        return answer(out, ctx.token, v, Err(ResponseError::InvalidRequest));
    }
    let Some(current) = c.txns.get(&tid).cloned() else {
        return answer(
            out,
            ctx.token,
            v,
            Err(ResponseError::InvalidProducerIdMapping),
        );
    };
    let (valid, retry_on_overflow) = epoch_valid(&current, pid, epoch);
    if current.producer_id != pid && !retry_on_overflow {
        return answer(
            out,
            ctx.token,
            v,
            Err(ResponseError::InvalidProducerIdMapping),
        );
    }
    if !valid {
        return answer(out, ctx.token, v, Err(ResponseError::ProducerFenced));
    }
    // 2. By state.
    let done = Ok((current.producer_id, current.producer_epoch));
    match (current.state, commit) {
        (TxnState::Ongoing, _) => {
            let mut next = current.clone();
            next.client_transaction_version = if v >= END_TXN_V2_VERSION { 2 } else { 0 };
            if next.bumps_epoch_at_end() {
                if epoch_exhausted(current.producer_epoch) {
                    // The bump below uses the last epoch; the next transaction gets a new id.
                    let Ok(id) = ids.next_producer_id() else {
                        return answer(
                            out,
                            ctx.token,
                            v,
                            Err(ResponseError::CoordinatorNotAvailable),
                        );
                    };
                    next.next_producer_id = id;
                }
                next.producer_epoch = current.producer_epoch + 1;
            }
            next.state = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            next.txn_last_update_timestamp_ms = now_ms;
            prepare(c, next, out);
            park(c, &tid, ctx, out);
        }
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
            answer(out, ctx.token, v, done)
        }
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            // Markers are being written; this retry is answered with the first request.
            park(c, &tid, ctx, out);
        }
        (TxnState::Empty, _)
        | (TxnState::CompleteCommit, false)
        | (TxnState::CompleteAbort, true)
        | (TxnState::PrepareCommit, false)
        | (TxnState::PrepareAbort, true)
        | (TxnState::Dead, _)
        | (TxnState::PrepareEpochFence, _) => {
            answer(out, ctx.token, v, Err(ResponseError::InvalidTxnState))
        }
    }
}

/// Parks an EndTxn until the markers are written; beyond the bound the client is asked to
/// retry.
fn park(c: &mut TxnCoordinator, tid: &str, ctx: RequestContext, out: &mut Output) {
    let parked = c.parked_end_txn.entry(tid.to_string()).or_default();
    if parked.len() >= END_TXN_PARKED_MAX {
        return answer(
            out,
            ctx.token,
            ctx.api_version,
            Err(ResponseError::ConcurrentTransactions),
        );
    }
    parked.push((ctx.token, ctx.api_version));
}

/// Writes a PrepareCommit/PrepareAbort state and asks for its markers. A transaction with
/// no partitions has nothing to mark and completes at once.
fn prepare(c: &mut TxnCoordinator, next: TxnMetadata, out: &mut Output) {
    let tid = next.transactional_id.clone();
    let job = c.marker_job(&next);
    let (pid, epoch, now_ms) = (
        next.producer_id,
        next.producer_epoch,
        next.txn_last_update_timestamp_ms,
    );
    c.write(next, out);
    if job.partitions.is_empty() {
        complete(c, now_ms, &tid, pid, epoch, out);
    } else {
        out.markers.push(job);
    }
}

/// Aborts `current`'s open transaction with the epoch bumped, which fences the producer
/// instance that opened it (InitProducerId from a new instance, or a timeout).
pub(crate) fn fence_and_abort(
    c: &mut TxnCoordinator,
    now_ms: i64,
    current: &TxnMetadata,
    out: &mut Output,
) {
    let mut next = current.clone();
    if current.producer_epoch < i16::MAX {
        next.producer_epoch = current.producer_epoch + 1;
    }
    // Not a client's own end: an EndTxn at the old epoch is not taken for a retry of one
    // (V2's retry rule), so the fenced instance hears PRODUCER_FENCED, as from Kafka.
    next.client_transaction_version = 0;
    next.state = TxnState::PrepareAbort;
    next.txn_last_update_timestamp_ms = now_ms;
    prepare(c, next, out);
}

/// Aborts every open transaction past its timeout.
pub fn abort_timed_out(c: &mut TxnCoordinator, now_ms: i64, out: &mut Output) {
    let due: Vec<TxnMetadata> = c
        .txns
        .values()
        .filter(|m| m.timeout_deadline_ms().is_some_and(|d| d <= now_ms))
        .cloned()
        .collect();
    for m in due {
        fence_and_abort(c, now_ms, &m, out);
    }
}

/// The markers of `producer_id`/`producer_epoch` are written: complete the transaction and
/// answer its parked EndTxn requests. Anything else (a stale or repeated notice) is ignored.
pub fn complete(
    c: &mut TxnCoordinator,
    now_ms: i64,
    tid: &str,
    producer_id: i64,
    producer_epoch: i16,
    out: &mut Output,
) {
    let Some(current) = c.txns.get(tid).cloned() else {
        return;
    };
    if !current.state.is_preparing()
        || current.producer_id != producer_id
        || current.producer_epoch != producer_epoch
    {
        return;
    }
    let mut next = current.clone();
    next.state = if current.state == TxnState::PrepareCommit {
        TxnState::CompleteCommit
    } else {
        TxnState::CompleteAbort
    };
    if current.next_producer_id != -1 {
        next.previous_producer_id = current.producer_id;
        next.producer_id = current.next_producer_id;
        next.producer_epoch = 0;
        next.next_producer_id = -1;
    }
    next.partitions.clear();
    next.txn_last_update_timestamp_ms = now_ms;
    let result = Ok((next.producer_id, next.producer_epoch));
    c.write(next, out);
    for (token, api_version) in c.parked_end_txn.remove(tid).unwrap_or_default() {
        answer(out, token, api_version, result);
    }
}
