//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics, and a read-only
//! view of the broker's own settings.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use weir_meta::config::{ConfigType, TOPIC_CONFIGS};
use weir_wire::ResponseError;

use super::{str_bytes, RequestMeta};
use crate::connection::Reply;
use crate::state::{ApiError, BrokerState};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// The broker settings DescribeConfigs shows, under Kafka's names.
fn broker_configs(state: &BrokerState) -> Vec<(&'static str, String, ConfigType)> {
    let c = &state.config;
    vec![
        (
            "auto.create.topics.enable",
            c.auto_create_topics.to_string(),
            ConfigType::Boolean,
        ),
        ("broker.id", c.node_id.to_string(), ConfigType::Int),
        (
            "group.initial.rebalance.delay.ms",
            c.group_initial_rebalance_delay_ms.to_string(),
            ConfigType::Int,
        ),
        (
            "log.dirs",
            c.data_dir.display().to_string(),
            ConfigType::Choice(&[]),
        ),
        (
            "log.cleaner.backoff.ms",
            c.log_cleaner_interval_ms.to_string(),
            ConfigType::Long,
        ),
        (
            "log.retention.check.interval.ms",
            c.retention_check_interval_ms.to_string(),
            ConfigType::Long,
        ),
        (
            "num.partitions",
            c.default_partitions.to_string(),
            ConfigType::Int,
        ),
        (
            "offsets.topic.num.partitions",
            c.offsets_topic_partitions.to_string(),
            ConfigType::Int,
        ),
        (
            "offsets.topic.segment.bytes",
            c.offsets_topic_segment_bytes.to_string(),
            ConfigType::Int,
        ),
        (
            "socket.request.max.bytes",
            c.request_bytes_max.to_string(),
            ConfigType::Int,
        ),
    ]
}

fn entry(
    name: &str,
    value: &str,
    source: i8,
    kind: ConfigType,
    read_only: bool,
    synonyms: bool,
) -> DescribeConfigsResourceResult {
    let mut r = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(name))
        .with_value(Some(str_bytes(value)))
        .with_read_only(read_only)
        .with_config_source(source)
        .with_config_type(kind.describe_code());
    if synonyms {
        r = r.with_synonyms(vec![DescribeConfigsSynonym::default()
            .with_name(str_bytes(name))
            .with_value(Some(str_bytes(value)))
            .with_source(source)]);
    }
    r
}

pub fn describe(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    request: DescribeConfigsRequest,
) -> Reply {
    let synonyms = request.include_synonyms;
    let results = request
        .resources
        .into_iter()
        .map(|res| {
            let wanted = |name: &str| {
                res.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
            };
            let out = DescribeConfigsResult::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            match res.resource_type {
                RESOURCE_TOPIC => {
                    let Some(topic) = state.topic(res.resource_name.as_str()) else {
                        return out
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes(&format!(
                                "topic '{}' does not exist",
                                res.resource_name.as_str()
                            ))));
                    };
                    let configs = TOPIC_CONFIGS
                        .iter()
                        .filter(|d| wanted(d.name))
                        .map(|d| match topic.configs.get(d.name) {
                            Some(v) => {
                                entry(d.name, v, SOURCE_DYNAMIC_TOPIC, d.kind, false, synonyms)
                            }
                            None => {
                                entry(d.name, d.default, SOURCE_DEFAULT, d.kind, false, synonyms)
                            }
                        })
                        .collect();
                    out.with_configs(configs)
                }
                RESOURCE_BROKER => {
                    let name = res.resource_name.as_str();
                    if !name.is_empty() && name != state.config.node_id.to_string() {
                        return out
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes(&format!(
                                "broker '{name}' is not this broker"
                            ))));
                    }
                    let configs = broker_configs(state)
                        .into_iter()
                        .filter(|(n, _, _)| wanted(n))
                        .map(|(n, v, kind)| {
                            entry(n, &v, SOURCE_STATIC_BROKER, kind, true, synonyms)
                        })
                        .collect();
                    out.with_configs(configs)
                }
                other => out
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(&format!(
                        "resource type {other} is not supported"
                    )))),
            }
        })
        .collect();
    meta.reply(&DescribeConfigsResponse::default().with_results(results))
}

fn not_a_topic(resource_type: i8) -> ApiError {
    if resource_type == RESOURCE_BROKER {
        ApiError::new(
            ResponseError::InvalidRequest,
            "broker configs are set on the command line of `weir serve`, not at runtime",
        )
    } else {
        ApiError::new(
            ResponseError::InvalidRequest,
            format!("resource type {resource_type} cannot be altered"),
        )
    }
}

pub fn alter(state: &Arc<BrokerState>, meta: &RequestMeta, request: AlterConfigsRequest) -> Reply {
    let apply = !request.validate_only;
    let responses = request
        .resources
        .into_iter()
        .map(|res| {
            let outcome = (|| -> Result<(), ApiError> {
                if res.resource_type != RESOURCE_TOPIC {
                    return Err(not_a_topic(res.resource_type));
                }
                let mut configs = BTreeMap::new();
                for c in &res.configs {
                    if let Some(v) = &c.value {
                        configs.insert(c.name.to_string(), v.to_string());
                    }
                }
                state.set_topic_configs(res.resource_name.as_str(), configs, apply)
            })();
            let r = alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name);
            match outcome {
                Ok(()) => r,
                Err(e) => r
                    .with_error_code(e.code)
                    .with_error_message(Some(str_bytes(&e.message))),
            }
        })
        .collect();
    meta.reply(&AlterConfigsResponse::default().with_responses(responses))
}

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub fn incremental_alter(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    request: IncrementalAlterConfigsRequest,
) -> Reply {
    let apply = !request.validate_only;
    let responses = request
        .resources
        .into_iter()
        .map(|res| {
            let outcome = (|| -> Result<(), ApiError> {
                if res.resource_type != RESOURCE_TOPIC {
                    return Err(not_a_topic(res.resource_type));
                }
                let name = res.resource_name.as_str();
                let topic = state.topic(name).ok_or_else(|| {
                    ApiError::new(
                        ResponseError::UnknownTopicOrPartition,
                        format!("topic '{name}' does not exist"),
                    )
                })?;
                let mut configs = topic.configs.clone();
                for c in &res.configs {
                    let key = c.name.to_string();
                    let def = weir_meta::config::find(&key).ok_or_else(|| {
                        ApiError::new(
                            ResponseError::InvalidConfig,
                            format!("unknown topic config '{key}'"),
                        )
                    })?;
                    let value = c.value.as_ref().map(StrBytes::to_string);
                    match c.config_operation {
                        OP_SET => {
                            let v = value.ok_or_else(|| {
                                ApiError::new(
                                    ResponseError::InvalidRequest,
                                    format!("SET of '{key}' needs a value"),
                                )
                            })?;
                            configs.insert(key, v);
                        }
                        OP_DELETE => {
                            configs.remove(&key);
                        }
                        OP_APPEND | OP_SUBTRACT => {
                            if !matches!(def.kind, ConfigType::ListOf(_)) {
                                return Err(ApiError::new(
                                    ResponseError::InvalidConfig,
                                    format!("'{key}' is not a list; APPEND and SUBTRACT need one"),
                                ));
                            }
                            let current = configs
                                .get(&key)
                                .cloned()
                                .unwrap_or_else(|| def.default.to_string());
                            let mut items: Vec<String> = current
                                .split(',')
                                .map(|s| s.trim().to_string())
                                .filter(|s| !s.is_empty())
                                .collect();
                            let change: Vec<String> = value
                                .unwrap_or_default()
                                .split(',')
                                .map(|s| s.trim().to_string())
                                .filter(|s| !s.is_empty())
                                .collect();
                            if c.config_operation == OP_APPEND {
                                for i in change {
                                    if !items.contains(&i) {
                                        items.push(i);
                                    }
                                }
                            } else {
                                items.retain(|i| !change.contains(i));
                            }
                            configs.insert(key, items.join(","));
                        }
                        other => {
                            return Err(ApiError::new(
                                ResponseError::InvalidRequest,
                                format!("unknown config operation {other}"),
                            ))
                        }
                    }
                }
                state.set_topic_configs(name, configs, apply)
            })();
            let r = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name);
            match outcome {
                Ok(()) => r,
                Err(e) => r
                    .with_error_code(e.code)
                    .with_error_message(Some(str_bytes(&e.message))),
            }
        })
        .collect();
    meta.reply(&IncrementalAlterConfigsResponse::default().with_responses(responses))
}
