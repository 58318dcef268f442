//! CreateTopics: name, partition count, replication factor (1 on a single node), configs,
//! and `validate_only`.
//!
//! Creating a topic needs CREATE on the cluster or on the topic (else
//! TOPIC_AUTHORIZATION_FAILED); the created topic's configs are returned only to a
//! principal with DESCRIBE_CONFIGS on it, as Kafka's controller answers.
//!
//! Each topic that passes every check is charged its partitions against the client's
//! `controller_mutation_rate` quota (KIP-599): from v6 a topic that does not fit is refused
//! with THROTTLING_QUOTA_EXCEEDED; before, it is created and the response throttled.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::{str_bytes, RequestMeta};
use crate::authz::Access;
use crate::connection::Reply;
use crate::state::{ApiError, BrokerState, ControllerMutationQuota};

/// The first CreateTopics version whose `controller_mutation_rate` quota is strict.
const STRICT_QUOTA_SINCE_VERSION: i16 = 6;

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    request: CreateTopicsRequest,
) -> Reply {
    let apply = !request.validate_only;
    let mutation_quota = meta.controller_mutation_quota(STRICT_QUOTA_SINCE_VERSION);
    let mut seen = std::collections::HashSet::new();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let result = CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_num_partitions(-1)
                .with_replication_factor(-1);
            if !seen.insert(name.clone()) {
                return result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(&format!(
                        "topic '{name}' appears twice in the request"
                    ))));
            }
            if !access.create_topic(&name) {
                return result
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(str_bytes("Authorization failed.")));
            }
            let mut created = create_charged(state, &name, &t, apply, &mutation_quota);
            // This broker's catalog was behind the stored one (another broker of the
            // cluster changed it a moment ago): take the stored catalog and decide again,
            // so a topic just created elsewhere is TOPIC_ALREADY_EXISTS, as in Kafka.
            let stale = |r: &Result<_, ApiError>| {
                r.as_ref()
                    .is_err_and(|e| e.code == ResponseError::NotController.code())
            };
            if apply && stale(&created) {
                state.catch_up_catalog();
                created = create_charged(state, &name, &t, apply, &mutation_quota);
            }
            match created {
                Ok(topic) => {
                    let configs = weir_meta::config::TOPIC_CONFIGS
                        .iter()
                        .map(|d| {
                            let explicit = topic.configs.get(d.name);
                            CreatableTopicConfigs::default()
                                .with_name(StrBytes::from_static_str(d.name))
                                .with_value(Some(str_bytes(
                                    explicit.map(String::as_str).unwrap_or(d.default),
                                )))
                                .with_config_source(if explicit.is_some() { 1 } else { 5 })
                        })
                        .collect();
                    // The created topic's details are part of the response from v5.
                    if meta.api_version < 5 {
                        return result;
                    }
                    let result = result
                        .with_topic_id(topic.id)
                        .with_num_partitions(topic.partitions)
                        .with_replication_factor(1);
                    if access.topic(Operation::DescribeConfigs, &name) {
                        result.with_configs(Some(configs))
                    } else {
                        result
                            .with_configs(Some(Vec::new()))
                            .with_topic_config_error_code(
                                ResponseError::TopicAuthorizationFailed.code(),
                            )
                    }
                }
                Err(e) => result
                    .with_error_code(e.code)
                    .with_error_message(Some(str_bytes(&e.message))),
            }
        })
        .collect();
    meta.reply(
        &CreateTopicsResponse::default()
            .with_topics(topics)
            .with_throttle_time_ms(mutation_quota.throttle_time_ms()),
    )
}

/// Checks one topic and charges its partitions to the `controller_mutation_rate` quota
/// before, with `apply`, creating it; without a client quota, checks and creates at once.
fn create_charged(
    state: &BrokerState,
    name: &str,
    t: &kafka_protocol::messages::create_topics_request::CreatableTopic,
    apply: bool,
    mutation_quota: &ControllerMutationQuota,
) -> Result<weir_meta::Topic, ApiError> {
    if !mutation_quota.applies() {
        return create_one(state, name, t, apply);
    }
    let checked = create_one(state, name, t, false)?;
    mutation_quota.charge(checked.partitions)?;
    if apply {
        create_one(state, name, t, true)
    } else {
        Ok(checked)
    }
}

/// Checks one topic of a CreateTopics and, with `apply`, creates it; the HTTP API creates
/// topics through here too.
pub fn create_one(
    state: &BrokerState,
    name: &str,
    t: &kafka_protocol::messages::create_topics_request::CreatableTopic,
    apply: bool,
) -> Result<weir_meta::Topic, ApiError> {
    let node = state.config.node_id;
    let (partitions, replication_factor) = if t.assignments.is_empty() {
        let p = if t.num_partitions == -1 {
            state.config.default_partitions
        } else {
            t.num_partitions
        };
        let rf = if t.replication_factor == -1 {
            1
        } else {
            t.replication_factor
        };
        (p, rf)
    } else {
        // A manual assignment may only name this broker, once per partition.
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                "both a replica assignment and a partition count or replication factor were given",
            ));
        }
        for (i, a) in t.assignments.iter().enumerate() {
            if a.partition_index != i as i32
                || a.broker_ids.iter().any(|b| b.0 != node)
                || a.broker_ids.len() != 1
            {
                return Err(ApiError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!("replica assignments may only name broker {node}, once, for partitions 0..n"),
                ));
            }
        }
        (t.assignments.len() as i32, 1)
    };
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        match &c.value {
            Some(v) => {
                configs.insert(c.name.to_string(), v.to_string());
            }
            None => {
                return Err(ApiError::new(
                    ResponseError::InvalidConfig,
                    format!("config '{}' has a null value", c.name.as_str()),
                ));
            }
        }
    }
    state.create_topic(name, partitions, replication_factor, configs, false, apply)
}
