//! DescribeProducers: the producers each partition knows, with their open transaction's
//! first offset (what `kafka-transactions.sh describe-producers` and `find-hanging` read).
//! Needs READ on each topic (else TOPIC_AUTHORIZATION_FAILED), as Kafka checks.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::RequestMeta;
use crate::authz::Access;
use crate::connection::Reply;
use crate::state::BrokerState;

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    request: DescribeProducersRequest,
) -> Reply {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let readable = access.topic(Operation::Read, t.name.0.as_str());
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&p| {
                    if !readable {
                        return PartitionResponse::default()
                            .with_partition_index(p)
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                            .with_error_message(Some(super::str_bytes(
                                &crate::authz::refusal(ResponseError::TopicAuthorizationFailed)
                                    .message,
                            )));
                    }
                    let Some(handle) = state.partition(t.name.0.as_str(), p) else {
                        return PartitionResponse::default()
                            .with_partition_index(p)
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let producers = handle
                        .log
                        .lock()
                        .producer_states()
                        .into_iter()
                        .map(|s| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(s.producer_id))
                                .with_producer_epoch(i32::from(s.producer_epoch))
                                .with_last_sequence(s.last_sequence)
                                .with_last_timestamp(s.last_timestamp_ms)
                                .with_coordinator_epoch(s.coordinator_epoch)
                                .with_current_txn_start_offset(s.current_txn_start_offset)
                        })
                        .collect();
                    PartitionResponse::default()
                        .with_partition_index(p)
                        .with_active_producers(producers)
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    meta.reply(&DescribeProducersResponse::default().with_topics(topics))
}
