//! DeleteTopics, by name (all versions) or by topic id (v6+).
//!
//! Deleting needs DELETE on the cluster or the topic. As Kafka's controller answers, a
//! topic the principal may not describe is TOPIC_AUTHORIZATION_FAILED whether it exists or
//! not, and one named by id keeps its name hidden unless the principal may describe it.
//!
//! A topic about to be deleted is charged its partitions against the client's
//! `controller_mutation_rate` quota (KIP-599): from v5 a topic that does not fit is refused
//! with THROTTLING_QUOTA_EXCEEDED; before, it is deleted and the response throttled.

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::{str_bytes, RequestMeta};
use crate::authz::Access;
use crate::connection::Reply;
use crate::state::BrokerState;

/// The first DeleteTopics version whose `controller_mutation_rate` quota is strict.
const STRICT_QUOTA_SINCE_VERSION: i16 = 5;

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    request: DeleteTopicsRequest,
) -> Reply {
    let mutation_quota = meta.controller_mutation_quota(STRICT_QUOTA_SINCE_VERSION);
    let cluster_delete = access.cluster(Operation::Delete);
    let deletable = |name: &str| cluster_delete || access.topic(Operation::Delete, name);
    let describable = |name: &str| cluster_delete || access.topic(Operation::Describe, name);
    let targets: Vec<(Option<String>, Uuid)> = if meta.api_version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let by_id = name.is_none();
            let name = match name {
                Some(n) => Some(n),
                None => state.topic_by_id(id).map(|t| t.name),
            };
            let result = DeletableTopicResult::default().with_topic_id(id);
            let Some(name) = name else {
                return result.with_error_code(ResponseError::UnknownTopicId.code());
            };
            // By name: a topic the principal may describe but that does not exist is
            // UNKNOWN_TOPIC_OR_PARTITION, as from Kafka's controller.
            if !by_id && describable(&name) && state.topic(&name).is_none() {
                return result
                    .with_name(Some(TopicName(str_bytes(&name))))
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code());
            }
            if !deletable(&name) {
                let denied = result.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                return if by_id && !describable(&name) {
                    denied
                } else {
                    denied.with_name(Some(TopicName(str_bytes(&name))))
                };
            }
            let result = result.with_name(Some(TopicName(str_bytes(&name))));
            if let Some(topic) = state.topic(&name) {
                if let Err(e) = mutation_quota.charge(topic.partitions) {
                    return result
                        .with_error_code(e.code)
                        .with_error_message(Some(str_bytes(&e.message)));
                }
            }
            match state.delete_topic(&name) {
                Ok(topic) => result.with_topic_id(topic.id),
                Err(e) => result
                    .with_error_code(e.code)
                    .with_error_message(Some(str_bytes(&e.message))),
            }
        })
        .collect();
    meta.reply(
        &DeleteTopicsResponse::default()
            .with_responses(responses)
            .with_throttle_time_ms(mutation_quota.throttle_time_ms()),
    )
}
