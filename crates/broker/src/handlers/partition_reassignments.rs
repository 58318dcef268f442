//! AlterPartitionReassignments and ListPartitionReassignments. One node is the only
//! replica of every partition and the only broker a partition can move to, so no
//! reassignment is ever in progress: one that names this node alone is already complete,
//! one that names any other broker (or this one twice, or nobody) is refused with Kafka's
//! controller's INVALID_REPLICA_ASSIGNMENT, and a cancellation finds nothing to cancel.

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_request::ReassignablePartition;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use weir_wire::ResponseError;

use super::{str_bytes, RequestMeta};
use crate::connection::Reply;
use crate::state::BrokerState;

pub fn alter(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    request: AlterPartitionReassignmentsRequest,
) -> Reply {
    let responses = request
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let out = ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_message(None);
                    match reassign(state, &name, p) {
                        Ok(()) => out,
                        Err((code, message)) => out
                            .with_error_code(code.code())
                            .with_error_message(Some(str_bytes(&message))),
                    }
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    let body = AlterPartitionReassignmentsResponse::default()
        .with_error_message(None)
        .with_allow_replication_factor_change(request.allow_replication_factor_change)
        .with_responses(responses);
    meta.reply(&body)
}

/// Checks one partition's target replicas, in the order Kafka's controller checks them.
fn reassign(
    state: &BrokerState,
    topic: &str,
    p: &ReassignablePartition,
) -> Result<(), (ResponseError, String)> {
    let unknown = |m: String| (ResponseError::UnknownTopicOrPartition, m);
    let invalid = |m: String| (ResponseError::InvalidReplicaAssignment, m);
    let t = state
        .topic(topic)
        .ok_or_else(|| unknown(format!("Unable to find a topic named {topic}.")))?;
    if p.partition_index < 0 || p.partition_index >= t.partitions {
        return Err(unknown(format!(
            "Unable to find partition {topic}:{}.",
            p.partition_index
        )));
    }
    let Some(replicas) = &p.replicas else {
        // A cancellation: there is never a reassignment to cancel.
        return Err((
            ResponseError::NoReassignmentInProgress,
            "No partition reassignment is in progress.".to_string(),
        ));
    };
    if replicas.is_empty() {
        return Err(invalid(
            "The manual partition assignment includes an empty replica list.".to_string(),
        ));
    }
    let mut sorted: Vec<i32> = replicas.iter().map(|b| b.0).collect();
    sorted.sort_unstable();
    let mut previous = None;
    for broker in sorted {
        if broker != state.config.node_id {
            return Err(invalid(format!(
                "The manual partition assignment includes broker {broker}, but no such broker is registered."
            )));
        }
        if previous == Some(broker) {
            return Err(invalid(format!(
                "The manual partition assignment includes the broker {broker} more than once."
            )));
        }
        previous = Some(broker);
    }
    // The target is this node alone, which is where the partition already is.
    Ok(())
}

pub fn list(
    _state: &Arc<BrokerState>,
    meta: &RequestMeta,
    _request: ListPartitionReassignmentsRequest,
) -> Reply {
    // No reassignment is ever in progress, whichever topics are asked about.
    meta.reply(&ListPartitionReassignmentsResponse::default().with_error_message(None))
}
