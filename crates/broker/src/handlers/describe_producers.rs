//! DescribeProducers: the producers each partition knows, with their open transaction's
//! first offset (what `kafka-transactions.sh describe-producers` and `find-hanging` read).
//! Needs READ on each topic (else TOPIC_AUTHORIZATION_FAILED), as Kafka checks.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_request::TopicRequest as DescribeProducersTopic;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use weir_log::store::TopicPartition;
use weir_log::ProducerStateView;
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::RequestMeta;
use crate::authz::Access;
use crate::connection::Reply;
use crate::errors::store_error_code;
use crate::state::{partition_of, BrokerState};

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    request: DescribeProducersRequest,
) -> Reply {
    // 1. Decide each partition's fate now: refused, unknown, or asked of the engine.
    let asked: Vec<(DescribeProducersTopic, Vec<Result<TopicPartition, i16>>)> = request
        .topics
        .into_iter()
        .map(|t| {
            let readable = access.topic(Operation::Read, t.name.0.as_str());
            let topic = state.topic(t.name.0.as_str());
            let fates = t
                .partition_indexes
                .iter()
                .map(|&p| {
                    if !readable {
                        return Err(ResponseError::TopicAuthorizationFailed.code());
                    }
                    topic
                        .as_ref()
                        .and_then(|topic| partition_of(topic, p))
                        .ok_or(ResponseError::UnknownTopicOrPartition.code())
                })
                .collect();
            (t, fates)
        })
        .collect();
    // 2. Ask the engine, partition by partition, and answer when all have answered.
    let state = Arc::clone(state);
    meta.reply_when_ready(Box::pin(async move {
        let mut topics = Vec::with_capacity(asked.len());
        for (t, fates) in asked {
            let mut partitions = Vec::with_capacity(fates.len());
            for (&p, fate) in t.partition_indexes.iter().zip(fates) {
                let answer = PartitionResponse::default().with_partition_index(p);
                let producers = match fate {
                    Ok(tp) => state
                        .txn_log()
                        .producers(&tp)
                        .await
                        .map_err(|e| store_error_code(&e)),
                    Err(code) => Err(code),
                };
                partitions.push(match producers {
                    Ok(producers) => answer
                        .with_active_producers(producers.into_iter().map(producer_state).collect()),
                    Err(code) if code == ResponseError::TopicAuthorizationFailed.code() => answer
                        .with_error_code(code)
                        .with_error_message(Some(super::str_bytes(
                            &crate::authz::refusal(ResponseError::TopicAuthorizationFailed).message,
                        ))),
                    Err(code) => answer.with_error_code(code),
                });
            }
            topics.push(
                TopicResponse::default()
                    .with_name(t.name)
                    .with_partitions(partitions),
            );
        }
        DescribeProducersResponse::default().with_topics(topics)
    }))
}

fn producer_state(s: ProducerStateView) -> ProducerState {
    ProducerState::default()
        .with_producer_id(ProducerId(s.producer_id))
        .with_producer_epoch(i32::from(s.producer_epoch))
        .with_last_sequence(s.last_sequence)
        .with_last_timestamp(s.last_timestamp_ms)
        .with_coordinator_epoch(s.coordinator_epoch)
        .with_current_txn_start_offset(s.current_txn_start_offset)
}
