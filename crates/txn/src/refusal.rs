//! A transaction API refused as a whole before the coordinator sees it: the answer a
//! broker gives when it is not the transaction coordinator (NOT_COORDINATOR, so the client
//! finds the coordinator again) or while the coordinator is still loading
//! (COORDINATOR_LOAD_IN_PROGRESS, so the client retries). ListTransactions is the
//! exception: clients ask every broker for the transactions it coordinates, so a broker
//! that is not the coordinator answers an empty list.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::TransactionState;
use kafka_protocol::messages::*;

use crate::{TxnRequest, TxnResponse};

/// The first AddPartitionsToTxn version that batches transactions (sent by brokers).
const ADD_PARTITIONS_BATCHED_VERSION: i16 = 4;

impl TxnRequest {
    /// This request answered with `error` everywhere it carries a code, at `api_version`.
    pub fn refused(&self, api_version: i16, error: ResponseError) -> TxnResponse {
        let code = error.code();
        match self {
            TxnRequest::InitProducerId(_) => TxnResponse::InitProducerId(
                InitProducerIdResponse::default()
                    .with_error_code(code)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            ),
            TxnRequest::AddPartitionsToTxn(_) if api_version >= ADD_PARTITIONS_BATCHED_VERSION => {
                TxnResponse::AddPartitionsToTxn(
                    AddPartitionsToTxnResponse::default().with_error_code(code),
                )
            }
            TxnRequest::AddPartitionsToTxn(r) => TxnResponse::AddPartitionsToTxn(
                AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(
                    r.v3_and_below_topics
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
                                                .with_partition_error_code(code)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            ),
            TxnRequest::AddOffsetsToTxn { .. } => TxnResponse::AddOffsetsToTxn(
                AddOffsetsToTxnResponse::default().with_error_code(code),
            ),
            TxnRequest::EndTxn(_) => TxnResponse::EndTxn(
                EndTxnResponse::default()
                    .with_error_code(code)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            ),
            TxnRequest::DescribeTransactions(r) => TxnResponse::DescribeTransactions(
                DescribeTransactionsResponse::default().with_transaction_states(
                    r.transactional_ids
                        .iter()
                        .map(|id| {
                            TransactionState::default()
                                .with_transactional_id(id.clone())
                                .with_error_code(code)
                        })
                        .collect(),
                ),
            ),
            // Each broker lists the transactions it coordinates (clients ask every broker
            // and merge): one that is not the coordinator has none, which is no error.
            TxnRequest::ListTransactions(_) if matches!(error, ResponseError::NotCoordinator) => {
                TxnResponse::ListTransactions(ListTransactionsResponse::default())
            }
            TxnRequest::ListTransactions(_) => TxnResponse::ListTransactions(
                ListTransactionsResponse::default().with_error_code(code),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn refusals_carry_the_code_where_clients_look() {
        // Goal: a client's AddPartitionsToTxn (v3 and older) is refused per partition, a
        // broker's (v4+) at the top level; EndTxn at the top level with no producer.
        let code = ResponseError::NotCoordinator;
        let r = AddPartitionsToTxnRequest::default().with_v3_and_below_topics(vec![
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![0, 2]),
        ]);
        let TxnResponse::AddPartitionsToTxn(v3) =
            TxnRequest::AddPartitionsToTxn(r.clone()).refused(3, code)
        else {
            panic!("an AddPartitionsToTxn answer")
        };
        let parts = &v3.results_by_topic_v3_and_below[0].results_by_partition;
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.partition_error_code == code.code()));
        let TxnResponse::AddPartitionsToTxn(v4) =
            TxnRequest::AddPartitionsToTxn(r).refused(4, code)
        else {
            panic!("an AddPartitionsToTxn answer")
        };
        assert_eq!(v4.error_code, code.code());
        let TxnResponse::EndTxn(e) = TxnRequest::EndTxn(EndTxnRequest::default()).refused(4, code)
        else {
            panic!("an EndTxn answer")
        };
        assert_eq!((e.error_code, e.producer_id.0), (code.code(), -1));
    }
}
