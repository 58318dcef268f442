//! ElectLeaders: on one node every partition already has its preferred leader, the only
//! replica, so there is never an election to hold. The answers are Kafka's controller's:
//! ELECTION_NOT_NEEDED for each partition named (for a preferred or an unclean election
//! alike), UNKNOWN_TOPIC_OR_PARTITION for one that does not exist, and for the every-partition
//! form (a null list) each topic with no partition results, since Kafka leaves out the
//! partitions that need no election.

use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use weir_wire::ResponseError;

use super::{str_bytes, RequestMeta};
use crate::connection::Reply;
use crate::state::BrokerState;

/// Election types (v1+; v0 always means preferred).
const ELECTION_PREFERRED: i8 = 0;
const ELECTION_UNCLEAN: i8 = 1;

pub fn handle(state: &Arc<BrokerState>, meta: &RequestMeta, request: ElectLeadersRequest) -> Reply {
    let election_type = if meta.api_version >= 1 {
        request.election_type
    } else {
        ELECTION_PREFERRED
    };
    let known_type = matches!(election_type, ELECTION_PREFERRED | ELECTION_UNCLEAN);
    let results = match request.topic_partitions {
        // Every partition of every topic: none needs an election, so none is listed.
        None if known_type => state
            .topics()
            .into_iter()
            .map(|t| ReplicaElectionResult::default().with_topic(TopicName(str_bytes(&t.name))))
            .collect(),
        None => vec![],
        Some(topics) => topics
            .into_iter()
            .map(|t| {
                let name = t.topic.0.to_string();
                let partition_result = t
                    .partitions
                    .iter()
                    .map(|&p| {
                        let (code, message) = if !known_type {
                            (
                                ResponseError::InvalidRequest,
                                format!("Unknown election type {election_type}"),
                            )
                        } else {
                            election_result(state, &name, p)
                        };
                        PartitionResult::default()
                            .with_partition_id(p)
                            .with_error_code(code.code())
                            .with_error_message(Some(str_bytes(&message)))
                    })
                    .collect();
                ReplicaElectionResult::default()
                    .with_topic(t.topic)
                    .with_partition_result(partition_result)
            })
            .collect(),
    };
    let mut body = ElectLeadersResponse::default().with_replica_election_results(results);
    if !known_type {
        body.error_code = ResponseError::InvalidRequest.code();
    }
    meta.reply(&body)
}

/// The outcome of an election on one partition, with Kafka's messages.
fn election_result(state: &BrokerState, topic: &str, partition: i32) -> (ResponseError, String) {
    match state.topic(topic) {
        None => (
            ResponseError::UnknownTopicOrPartition,
            format!("No such topic as {topic}"),
        ),
        Some(t) if partition < 0 || partition >= t.partitions => (
            ResponseError::UnknownTopicOrPartition,
            format!("No such partition as {topic}-{partition}"),
        ),
        Some(_) => (
            ResponseError::ElectionNotNeeded,
            "Leader election not needed for topic partition.".to_string(),
        ),
    }
}
