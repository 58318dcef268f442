//! InitProducerId with a transactional id: a new producer id for an id seen first, else
//! the next epoch, which fences every older instance of the producer (KIP-98). A producer
//! recovering from an abortable error names its current id and epoch and keeps its id
//! (KIP-360). An open transaction is aborted first and the client asked to retry.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use crate::coordinator::TxnCoordinator;
use crate::metadata::{epoch_exhausted, TxnMetadata, TxnState};
use crate::{end_txn, Output, ProducerIds, RequestContext, TxnResponse, TRANSACTIONAL_IDS_MAX};

fn answer(out: &mut Output, ctx: RequestContext, result: Result<(i64, i16), ResponseError>) {
    let body = match result {
        Ok((id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(e) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_error_code(fenced_for_version(e, ctx.api_version, 4).code()),
    };
    out.responses
        .push((ctx.token, TxnResponse::InitProducerId(body)));
}

/// Clients from before KIP-588 know INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED.
pub(crate) fn fenced_for_version(
    e: ResponseError,
    api_version: i16,
    first_with_fenced: i16,
) -> ResponseError {
    if e == ResponseError::ProducerFenced && api_version < first_with_fenced {
        ResponseError::InvalidProducerEpoch
    } else {
        e
    }
}

pub fn handle(
    c: &mut TxnCoordinator,
    now_ms: i64,
    ctx: RequestContext,
    r: InitProducerIdRequest,
    ids: &mut dyn ProducerIds,
    out: &mut Output,
) {
    // 1. Guards: an id, a timeout within bounds.
    let Some(tid) = r.transactional_id.as_ref().map(|s| s.to_string()) else {
        return answer(out, ctx, Err(ResponseError::InvalidRequest));
    };
    if tid.is_empty() {
        return answer(out, ctx, Err(ResponseError::InvalidRequest));
    }
    if r.transaction_timeout_ms <= 0
        || r.transaction_timeout_ms > c.config.transaction_max_timeout_ms
    {
        return answer(out, ctx, Err(ResponseError::InvalidTransactionTimeout));
    }
    // KIP-360: a producer may name the id and epoch it has, to keep its id.
    let expected = (r.producer_id.0 != -1).then_some((r.producer_id.0, r.producer_epoch));

    // 2. The id's metadata, new if it has none.
    let current = match c.txns.get(&tid) {
        Some(m) => m.clone(),
        None => {
            if c.txns.len() >= TRANSACTIONAL_IDS_MAX {
                return answer(out, ctx, Err(ResponseError::CoordinatorNotAvailable));
            }
            match ids.next_producer_id() {
                Ok(id) => TxnMetadata::new(&tid, id, r.transaction_timeout_ms, now_ms),
                Err(_) => return answer(out, ctx, Err(ResponseError::CoordinatorNotAvailable)),
            }
        }
    };

    // 3. Fencing: an instance naming an id that is no longer this transactional id's.
    if let Some((pid, epoch)) = expected {
        let valid = current.producer_epoch == -1
            || pid == current.producer_id
            || (pid == current.previous_producer_id && epoch_exhausted(epoch));
        if !valid {
            return answer(out, ctx, Err(ResponseError::ProducerFenced));
        }
    }

    // 4. By state.
    match current.state {
        TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
            answer(out, ctx, Err(ResponseError::ConcurrentTransactions))
        }
        TxnState::Ongoing => {
            // Abort what the old instance left open, with a bumped epoch so it is fenced,
            // and have the client retry: its retry bumps the epoch once more.
            end_txn::fence_and_abort(c, now_ms, &current, out);
            answer(out, ctx, Err(ResponseError::ConcurrentTransactions))
        }
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort | TxnState::Dead => {
            let mut next = current.clone();
            if epoch_exhausted(current.producer_epoch)
                && expected.is_none_or(|(_, e)| e == current.producer_epoch)
            {
                // The epochs of this producer id are used up: move to a new id.
                let Ok(id) = ids.next_producer_id() else {
                    return answer(out, ctx, Err(ResponseError::CoordinatorNotAvailable));
                };
                next.previous_producer_id = current.producer_id;
                next.producer_id = id;
                next.producer_epoch = 0;
            } else {
                match expected {
                    Some((_, e)) if current.producer_epoch != -1 && e != current.producer_epoch => {
                        return answer(out, ctx, Err(ResponseError::ProducerFenced));
                    }
                    _ => next.producer_epoch = current.producer_epoch + 1,
                }
            }
            next.state = TxnState::Empty;
            next.next_producer_id = -1;
            next.txn_timeout_ms = r.transaction_timeout_ms;
            next.partitions.clear();
            next.txn_start_timestamp_ms = -1;
            next.txn_last_update_timestamp_ms = now_ms;
            let (id, epoch) = (next.producer_id, next.producer_epoch);
            c.write(next, out);
            answer(out, ctx, Ok((id, epoch)));
        }
    }
}
