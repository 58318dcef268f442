//! CreatePartitions: grow a topic's partition count (never shrink). Needs ALTER on the
//! topic (else TOPIC_AUTHORIZATION_FAILED).
//!
//! The partitions a topic gains are charged against the client's
//! `controller_mutation_rate` quota (KIP-599) once every other check passed: from v3 a
//! topic that does not fit is refused with THROTTLING_QUOTA_EXCEEDED; before, it grows and
//! the response is throttled.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::{str_bytes, RequestMeta};
use crate::authz::Access;
use crate::connection::Reply;
use crate::state::{ApiError, BrokerState};

/// The first CreatePartitions version whose `controller_mutation_rate` quota is strict.
const STRICT_QUOTA_SINCE_VERSION: i16 = 3;

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    request: CreatePartitionsRequest,
) -> Reply {
    let node = state.config.node_id;
    let mutation_quota = meta.controller_mutation_quota(STRICT_QUOTA_SINCE_VERSION);
    let results = request
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            let outcome = (|| -> Result<(), ApiError> {
                if !access.topic(Operation::Alter, &name) {
                    return Err(ApiError::new(
                        ResponseError::TopicAuthorizationFailed,
                        "The topic authorization is failed.",
                    ));
                }
                if let Some(assignments) = &t.assignments {
                    // As in Kafka: given assignments name exactly the partitions being added.
                    if let Some(current) = state.topic(&name).map(|topic| topic.partitions) {
                        let added = i64::from(t.count) - i64::from(current);
                        if added > 0 && assignments.len() as i64 != added {
                            return Err(ApiError::new(
                                ResponseError::InvalidReplicaAssignment,
                                format!(
                                    "{added} partition(s) to add but {} assignment(s) given",
                                    assignments.len()
                                ),
                            ));
                        }
                    }
                    if assignments
                        .iter()
                        .any(|a| a.broker_ids.len() != 1 || a.broker_ids[0].0 != node)
                    {
                        return Err(ApiError::new(
                            ResponseError::InvalidReplicaAssignment,
                            format!("replica assignments may only name broker {node}"),
                        ));
                    }
                }
                state.check_add_partitions(&name, t.count)?;
                if mutation_quota.applies() {
                    let current = state.topic(&name).map_or(t.count, |topic| topic.partitions);
                    mutation_quota.charge(t.count - current)?;
                }
                if request.validate_only {
                    Ok(())
                } else {
                    state.add_partitions(&name, t.count)
                }
            })();
            match outcome {
                Ok(()) => result,
                Err(e) => result
                    .with_error_code(e.code)
                    .with_error_message(Some(str_bytes(&e.message))),
            }
        })
        .collect();
    meta.reply(
        &CreatePartitionsResponse::default()
            .with_results(results)
            .with_throttle_time_ms(mutation_quota.throttle_time_ms()),
    )
}
