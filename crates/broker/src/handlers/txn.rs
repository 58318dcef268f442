//! The transaction APIs: each is handed to the transaction coordinator task
//! ([`crate::txn_runtime`]) and answered when it releases the response. TxnOffsetCommit
//! goes to the group coordinator, after the transaction coordinator has checked (or, for
//! transactions V2, added) the group's offsets partition.
//!
//! Authorization as Kafka's: every client transaction API needs WRITE on the transactional
//! id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); AddPartitionsToTxn also WRITE on each topic,
//! AddOffsetsToTxn and TxnOffsetCommit READ on the group, TxnOffsetCommit READ on each
//! topic. DescribeTransactions needs DESCRIBE on each id and shows only the partitions of
//! topics the principal may describe; ListTransactions lists the ids it may describe.
//!
//! On a broker that is not the coordinator (not the controller), or before the coordinator
//! has loaded, a request is refused whole with NOT_COORDINATOR or
//! COORDINATOR_LOAD_IN_PROGRESS, after the ACL checks.

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;
use weir_groups::{GroupRequest, GroupResponse};
use weir_meta::acls::Operation;
use weir_txn::{TxnRequest, TxnResponse};
use weir_wire::ResponseError;

use super::RequestMeta;
use crate::authz::Access;
use crate::connection::{ClientInfo, Reply};
use crate::group_runtime::OFFSETS_TOPIC;
use crate::state::BrokerState;

/// The first TxnOffsetCommit version of transactions V2 (the broker adds the partition).
pub const TXN_OFFSET_COMMIT_V2_VERSION: i16 = 5;
/// The first Produce version of transactions V2 (the broker adds the partition).
pub const PRODUCE_TXN_V2_VERSION: i16 = 12;

/// Encodes whatever the coordinator answered.
fn frame_of(meta: &RequestMeta, response: TxnResponse) -> Option<crate::connection::Frame> {
    match response {
        TxnResponse::InitProducerId(b) => meta.frame(&b),
        TxnResponse::AddPartitionsToTxn(b) => meta.frame(&b),
        TxnResponse::AddOffsetsToTxn(b) => meta.frame(&b),
        TxnResponse::EndTxn(b) => meta.frame(&b),
        TxnResponse::DescribeTransactions(b) => meta.frame(&b),
        TxnResponse::ListTransactions(b) => meta.frame(&b),
    }
}

/// Sends `request` to the transaction coordinator and answers with its response.
pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    request: TxnRequest,
) -> Reply {
    handle_then(state, meta, client, request, |_| {})
}

/// Like [`handle`], with `then` applied to the coordinator's response before it goes.
fn handle_then(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    request: TxnRequest,
    then: impl FnOnce(&mut TxnResponse) + Send + 'static,
) -> Reply {
    let runtime = match (state.coordinator_refusal(), state.txns()) {
        (None, Some(runtime)) => runtime,
        (refusal, _) => {
            let code = refusal.unwrap_or(ResponseError::CoordinatorLoadInProgress);
            let mut response = request.refused(meta.api_version, code);
            then(&mut response);
            return match frame_of(meta, response) {
                Some(f) => Reply::Now(f),
                None => Reply::Close(None),
            };
        }
    };
    // The requests of one producer's transaction hear NOT_COORDINATOR when the coordinator
    // stops or its write fails before answering, as from Kafka, so the producer finds the
    // coordinator again at once. Their answer is small, so it is made up front.
    let on_failure = matches!(
        request,
        TxnRequest::InitProducerId(_) | TxnRequest::AddOffsetsToTxn { .. } | TxnRequest::EndTxn(_)
    )
    .then(|| request.refused(meta.api_version, ResponseError::NotCoordinator));
    let meta = meta.clone();
    let client_id = client.client_id.clone();
    Reply::Later(Box::pin(async move {
        let mut response = match runtime.call(meta.api_version, client_id, request).await {
            Some(response) => response,
            None => on_failure?,
        };
        then(&mut response);
        frame_of(&meta, response)
    }))
}

/// EndTxn, which needs WRITE on the transactional id.
pub fn end(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    access: &Access,
    r: EndTxnRequest,
) -> Reply {
    if !access.transactional_id(Operation::Write, r.transactional_id.0.as_str()) {
        return meta.reply(
            &EndTxnResponse::default()
                .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        );
    }
    handle(state, meta, client, TxnRequest::EndTxn(r))
}

/// DescribeTransactions: ids the principal may not describe are refused, and only the
/// partitions of topics it may describe are shown.
pub fn describe(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    access: &Access,
    mut r: DescribeTransactionsRequest,
) -> Reply {
    use kafka_protocol::messages::describe_transactions_response::TransactionState;
    let mut refused = Vec::new();
    r.transactional_ids.retain(|id| {
        let allowed = access.transactional_id(Operation::Describe, id.0.as_str());
        if !allowed {
            refused.push(
                TransactionState::default()
                    .with_transactional_id(id.clone())
                    .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()),
            );
        }
        allowed
    });
    let access = access.clone();
    handle_then(
        state,
        meta,
        client,
        TxnRequest::DescribeTransactions(r),
        move |response| {
            if let TxnResponse::DescribeTransactions(b) = response {
                for s in b.transaction_states.iter_mut() {
                    s.topics
                        .retain(|t| access.topic(Operation::Describe, t.topic.0.as_str()));
                }
                b.transaction_states.extend(refused);
            }
        },
    )
}

/// ListTransactions: only the ids the principal may describe.
pub fn list(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    access: &Access,
    r: ListTransactionsRequest,
) -> Reply {
    let access = access.clone();
    handle_then(
        state,
        meta,
        client,
        TxnRequest::ListTransactions(r),
        move |response| {
            if let TxnResponse::ListTransactions(b) = response {
                b.transaction_states.retain(|s| {
                    access.transactional_id(Operation::Describe, s.transactional_id.0.as_str())
                });
            }
        },
    )
}

/// AddPartitionsToTxn from a client: partitions of topics the principal may not write are
/// refused with TOPIC_AUTHORIZATION_FAILED, those of topics that do not exist with
/// UNKNOWN_TOPIC_OR_PARTITION, and the rest with OPERATION_NOT_ATTEMPTED, as Kafka does,
/// without asking the coordinator.
pub fn add_partitions(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    access: &Access,
    r: AddPartitionsToTxnRequest,
) -> Reply {
    // v4+ comes from brokers only.
    if meta.api_version >= 4 && !access.cluster(Operation::ClusterAction) {
        return meta.reply(
            &AddPartitionsToTxnResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
        );
    }
    if meta.api_version <= 3
        && !access.transactional_id(Operation::Write, r.v3_and_below_transactional_id.0.as_str())
    {
        return v3_answer(meta, &r, |_, _| {
            ResponseError::TransactionalIdAuthorizationFailed
        });
    }
    let topics: Vec<&AddPartitionsToTxnTopic> = if meta.api_version <= 3 {
        r.v3_and_below_topics.iter().collect()
    } else {
        r.transactions
            .iter()
            .flat_map(|t| t.topics.iter())
            .collect()
    };
    let exists = |t: &AddPartitionsToTxnTopic, p: i32| {
        state
            .topic(t.name.0.as_str())
            .is_some_and(|topic| (0..topic.partitions).contains(&p))
            && !t.name.0.is_empty()
    };
    // Internal topics are never writable by clients, as in Kafka.
    let writable = |t: &AddPartitionsToTxnTopic| {
        meta.api_version >= 4
            || (!state
                .topic(t.name.0.as_str())
                .is_some_and(|topic| topic.internal)
                && access.topic(Operation::Write, t.name.0.as_str()))
    };
    let refusal = |t: &AddPartitionsToTxnTopic, p: i32| {
        if !writable(t) {
            Some(ResponseError::TopicAuthorizationFailed)
        } else if !exists(t, p) {
            Some(ResponseError::UnknownTopicOrPartition)
        } else {
            None
        }
    };
    let any_unknown = topics
        .iter()
        .any(|t| t.partitions.iter().any(|p| refusal(t, *p).is_some()));
    if any_unknown && meta.api_version <= 3 {
        return v3_answer(meta, &r, |t, p| {
            refusal(t, p).unwrap_or(ResponseError::OperationNotAttempted)
        });
    }
    handle(state, meta, client, TxnRequest::AddPartitionsToTxn(r))
}

/// An AddPartitionsToTxn (v3 or older) answered without the coordinator, with `code` for
/// each partition.
fn v3_answer(
    meta: &RequestMeta,
    r: &AddPartitionsToTxnRequest,
    code: impl Fn(&AddPartitionsToTxnTopic, i32) -> ResponseError,
) -> Reply {
    let results = r
        .v3_and_below_topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(code(t, *p).code())
                        })
                        .collect(),
                )
        })
        .collect();
    meta.reply(&AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results))
}

pub fn add_offsets(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    access: &Access,
    r: AddOffsetsToTxnRequest,
) -> Reply {
    let refused = if !access.transactional_id(Operation::Write, r.transactional_id.0.as_str()) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !access.group(Operation::Read, r.group_id.0.as_str()) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    if let Some(code) = refused {
        return meta.reply(&AddOffsetsToTxnResponse::default().with_error_code(code.code()));
    }
    let offsets_partition = offsets_partition_of(state, r.group_id.0.as_str());
    handle(
        state,
        meta,
        client,
        TxnRequest::AddOffsetsToTxn {
            request: r,
            offsets_partition,
        },
    )
}

fn offsets_partition_of(state: &BrokerState, group_id: &str) -> i32 {
    let partitions = state
        .topic(OFFSETS_TOPIC)
        .map(|t| t.partitions)
        .unwrap_or(state.config.offsets_topic_partitions);
    weir_meta::placement::partition_for(group_id, partitions)
}

/// Asks the transaction coordinator to check (`verify_only`) or add partitions of one
/// transaction, as the broker's produce and offset-commit paths do (AddPartitionsToTxn v4+).
/// Returns a code per partition, in order.
pub async fn verify_or_add(
    state: &Arc<BrokerState>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(String, i32)],
    verify_only: bool,
) -> Vec<i16> {
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (t, p) in partitions {
        if topics.last().is_none_or(|x| x.name.0.as_str() != t) {
            topics
                .push(AddPartitionsToTxnTopic::default().with_name(TopicName(super::str_bytes(t))));
        }
        topics.last_mut().expect("pushed").partitions.push(*p);
    }
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(super::str_bytes(transactional_id)))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_verify_only(verify_only)
            .with_topics(topics),
    ]);
    let body = match (state.coordinator_refusal(), state.txns()) {
        (None, Some(runtime)) => match runtime
            .call(5, String::new(), TxnRequest::AddPartitionsToTxn(request))
            .await
        {
            Some(TxnResponse::AddPartitionsToTxn(body)) => body,
            _ => return vec![ResponseError::CoordinatorNotAvailable.code(); partitions.len()],
        },
        // Another broker is the controller: it runs the coordinator, so it is asked, as a
        // partition leader asks the coordinator in Kafka.
        (Some(ResponseError::NotCoordinator), _) => {
            let controller = state.membership().controller();
            match state
                .peers
                .add_partitions_to_txn(state, controller, &request)
                .await
            {
                Ok(body) if body.error_code == 0 => body,
                Ok(body) => return vec![forwarded_refusal(body.error_code); partitions.len()],
                Err(e) => {
                    tracing::info!(transactional_id, error = %e, "cannot check a transaction with the controller");
                    return vec![ResponseError::NetworkException.code(); partitions.len()];
                }
            }
        }
        (refusal, _) => {
            let code = refusal.unwrap_or(ResponseError::CoordinatorLoadInProgress);
            return vec![code.code(); partitions.len()];
        }
    };
    partitions
        .iter()
        .map(|(t, p)| {
            body.results_by_transaction
                .iter()
                .flat_map(|r| r.topic_results.iter())
                .filter(|tr| tr.name.0.as_str() == t)
                .flat_map(|tr| tr.results_by_partition.iter())
                .find(|pr| pr.partition_index == *p)
                .map_or(ResponseError::UnknownServerError.code(), |pr| {
                    pr.partition_error_code
                })
        })
        .collect()
}

/// A whole-request error from the controller, as a partition's answer: a refused
/// broker-to-broker call means the transaction could not be checked (Kafka answers
/// INVALID_TXN_STATE for a refused cluster action); anything else is passed on.
fn forwarded_refusal(code: i16) -> i16 {
    if code == ResponseError::ClusterAuthorizationFailed.code() {
        ResponseError::InvalidTxnState.code()
    } else {
        code
    }
}

/// TxnOffsetCommit: the group's offsets partition must be in the transaction (checked for
/// V1 clients, added for V2 ones), then the group coordinator stores the offsets pending.
pub fn txn_offset_commit(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    access: &Access,
    mut r: TxnOffsetCommitRequest,
) -> Reply {
    let whole = if !access.transactional_id(Operation::Write, r.transactional_id.0.as_str()) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !access.group(Operation::Read, r.group_id.0.as_str()) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    if let Some(code) = whole {
        return meta.reply(&txn_offset_commit_refused(&r.topics, code.code()));
    }
    let groups = match (state.coordinator_refusal(), state.groups()) {
        (None, Some(groups)) => groups,
        (refusal, _) => {
            let code = refusal.unwrap_or(ResponseError::CoordinatorLoadInProgress);
            return meta.reply(&txn_offset_commit_refused(&r.topics, code.code()));
        }
    };
    let (allowed, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut r.topics)
        .into_iter()
        .partition(|t| access.topic(Operation::Read, t.name.0.as_str()));
    r.topics = allowed;
    let denied =
        txn_offset_commit_refused(&denied, ResponseError::TopicAuthorizationFailed.code()).topics;
    let state = Arc::clone(state);
    let meta = meta.clone();
    let client_id = client.client_id.clone();
    let client_host = format!("/{}", client.peer.ip());
    Reply::Later(Box::pin(async move {
        let partition = offsets_partition_of(&state, r.group_id.0.as_str());
        let verify_only = meta.api_version < TXN_OFFSET_COMMIT_V2_VERSION;
        let codes = verify_or_add(
            &state,
            r.transactional_id.0.as_str(),
            r.producer_id.0,
            r.producer_epoch,
            &[(OFFSETS_TOPIC.to_string(), partition)],
            verify_only,
        )
        .await;
        let code = codes.first().copied().unwrap_or(0);
        if code != 0 {
            // A V1 client that never added the offsets partition hears INVALID_TXN_STATE for
            // old versions, TRANSACTION_ABORTABLE from v4 on (KIP-890).
            let code = if code == ResponseError::TransactionAbortable.code() && meta.api_version < 4
            {
                ResponseError::InvalidTxnState.code()
            } else {
                code
            };
            let mut body = txn_offset_commit_refused(&r.topics, code);
            body.topics.extend(denied);
            return meta.frame(&body);
        }
        match groups
            .call(
                meta.api_version,
                client_id,
                client_host,
                GroupRequest::TxnOffsetCommit(r),
            )
            .await?
        {
            GroupResponse::TxnOffsetCommit(mut b) => {
                b.topics.extend(denied);
                meta.frame(&b)
            }
            _ => None,
        }
    }))
}

/// A TxnOffsetCommit answer refusing every partition of `topics` with `code`.
fn txn_offset_commit_refused(
    topics: &[kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestTopic],
    code: i16,
) -> TxnOffsetCommitResponse {
    let topics = topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
