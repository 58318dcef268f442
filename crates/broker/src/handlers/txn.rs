//! The transaction APIs: each is handed to the transaction coordinator task
//! ([`crate::txn_runtime`]) and answered when it releases the response. TxnOffsetCommit
//! goes to the group coordinator, after the transaction coordinator has checked (or, for
//! transactions V2, added) the group's offsets partition.

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
use weir_txn::{TxnRequest, TxnResponse};
use weir_wire::ResponseError;

use super::RequestMeta;
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
    let Some(runtime) = state.txns().cloned() else {
        return Reply::Close(None);
    };
    let meta = meta.clone();
    let client_id = client.client_id.clone();
    Reply::Later(Box::pin(async move {
        let response = runtime.call(meta.api_version, client_id, request).await?;
        frame_of(&meta, response)
    }))
}

/// AddPartitionsToTxn from a client: partitions of topics that do not exist are refused
/// with UNKNOWN_TOPIC_OR_PARTITION and the rest with OPERATION_NOT_ATTEMPTED, as Kafka does,
/// without asking the coordinator.
pub fn add_partitions(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    r: AddPartitionsToTxnRequest,
) -> Reply {
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
    let any_unknown = topics
        .iter()
        .any(|t| t.partitions.iter().any(|p| !exists(t, *p)));
    if any_unknown && meta.api_version <= 3 {
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
                                let code = if exists(t, *p) {
                                    ResponseError::OperationNotAttempted
                                } else {
                                    ResponseError::UnknownTopicOrPartition
                                };
                                AddPartitionsToTxnPartitionResult::default()
                                    .with_partition_index(*p)
                                    .with_partition_error_code(code.code())
                            })
                            .collect(),
                    )
            })
            .collect();
        return meta.reply(
            &AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results),
        );
    }
    handle(state, meta, client, TxnRequest::AddPartitionsToTxn(r))
}

pub fn add_offsets(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    r: AddOffsetsToTxnRequest,
) -> Reply {
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
    let Some(runtime) = state.txns().cloned() else {
        return vec![ResponseError::CoordinatorNotAvailable.code(); partitions.len()];
    };
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
    let Some(TxnResponse::AddPartitionsToTxn(body)) = runtime
        .call(5, String::new(), TxnRequest::AddPartitionsToTxn(request))
        .await
    else {
        return vec![ResponseError::CoordinatorNotAvailable.code(); partitions.len()];
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

/// TxnOffsetCommit: the group's offsets partition must be in the transaction (checked for
/// V1 clients, added for V2 ones), then the group coordinator stores the offsets pending.
pub fn txn_offset_commit(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    r: TxnOffsetCommitRequest,
) -> Reply {
    let Some(groups) = state.groups().cloned() else {
        return Reply::Close(None);
    };
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
            let topics = r
                .topics
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
            return meta.frame(&TxnOffsetCommitResponse::default().with_topics(topics));
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
            GroupResponse::TxnOffsetCommit(b) => meta.frame(&b),
            _ => None,
        }
    }))
}
