//! DescribeConfigs, AlterConfigs, IncrementalAlterConfigs and ListConfigResources for
//! topics, for groups
//! (Kafka's group configs: a consumer group's own session timeout and heartbeat interval)
//! and for client-metrics subscriptions (KIP-714, resource type 16, which
//! `kafka-client-metrics.sh` writes), and a read-only view of the broker's own settings.
//!
//! Group configs are checked as Kafka 4.x checks them, with its error codes and messages;
//! a change is persisted in the catalog and handed to the group coordinator before the
//! answer goes ([`crate::group_runtime::GroupRuntime::alter_group_configs`]).
//!
//! Describing needs DESCRIBE_CONFIGS and altering ALTER_CONFIGS on the resource: the topic,
//! the group, or the cluster for the broker, its loggers and client-metrics subscriptions.
//! A refused resource gets TOPIC_, GROUP_ or CLUSTER_AUTHORIZATION_FAILED.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_request, incremental_alter_configs_response,
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ListConfigResourcesRequest,
    ListConfigResourcesResponse,
};
use kafka_protocol::protocol::StrBytes;
use weir_meta::acls::Operation;
use weir_meta::config::{ConfigDef, ConfigType, TOPIC_CONFIGS};
use weir_meta::group_config::GROUP_CONFIGS;
use weir_wire::ResponseError;

use super::{str_bytes, RequestMeta};
use crate::authz::Access;
use crate::connection::Reply;
use crate::state::{ApiError, BrokerState};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
/// Kafka's `ConfigResource.Type.GROUP`.
pub const RESOURCE_GROUP: i8 = 32;

/// Kafka's `ConfigResource.Type.BROKER_LOGGER`, listed by Kafka, whose configs weir has not.
const RESOURCE_BROKER_LOGGER: i8 = 8;
/// Kafka's `ConfigResource.Type.CLIENT_METRICS`: a client-metrics subscription (KIP-714).
pub const RESOURCE_CLIENT_METRICS: i8 = 16;

const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
/// Kafka's `CLIENT_METRICS_CONFIG`.
const SOURCE_CLIENT_METRICS: i8 = 7;
/// Kafka's `DYNAMIC_GROUP_CONFIG`.
const SOURCE_DYNAMIC_GROUP: i8 = 8;

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
            "group.consumer.heartbeat.interval.ms",
            c.group_consumer_heartbeat_interval_ms.to_string(),
            ConfigType::Int,
        ),
        (
            "group.consumer.max.heartbeat.interval.ms",
            c.group_consumer_heartbeat_interval_bounds_ms.1.to_string(),
            ConfigType::Int,
        ),
        (
            "group.consumer.max.session.timeout.ms",
            c.group_consumer_session_timeout_bounds_ms.1.to_string(),
            ConfigType::Int,
        ),
        (
            "group.consumer.min.heartbeat.interval.ms",
            c.group_consumer_heartbeat_interval_bounds_ms.0.to_string(),
            ConfigType::Int,
        ),
        (
            "group.consumer.min.session.timeout.ms",
            c.group_consumer_session_timeout_bounds_ms.0.to_string(),
            ConfigType::Int,
        ),
        (
            "group.consumer.session.timeout.ms",
            c.group_consumer_session_timeout_ms.to_string(),
            ConfigType::Int,
        ),
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

/// One topic config: the topic's own value (DYNAMIC_TOPIC_CONFIG) or the default
/// (DEFAULT_CONFIG). Its synonyms run from the topic's value to the broker setting the
/// default comes from, named as Kafka names it, so `kafka-configs --describe` shows where
/// a value comes from as it does against Kafka.
fn topic_entry(
    def: &ConfigDef,
    value: Option<&String>,
    synonyms: bool,
) -> DescribeConfigsResourceResult {
    let (shown, source) = match value {
        Some(v) => (v.as_str(), SOURCE_DYNAMIC_TOPIC),
        None => (def.default, SOURCE_DEFAULT),
    };
    let mut r = entry(def.name, shown, source, def.kind, false, false);
    if synonyms {
        let own = value.map(|v| {
            DescribeConfigsSynonym::default()
                .with_name(str_bytes(def.name))
                .with_value(Some(str_bytes(v)))
                .with_source(SOURCE_DYNAMIC_TOPIC)
        });
        let default = def.broker_synonym.map(|broker_name| {
            DescribeConfigsSynonym::default()
                .with_name(str_bytes(broker_name))
                .with_value(Some(str_bytes(def.default)))
                .with_source(SOURCE_DEFAULT)
        });
        r = r.with_synonyms(own.into_iter().chain(default).collect());
    }
    r
}

/// One group config as Kafka describes it: the group's override (source
/// DYNAMIC_GROUP_CONFIG) or the broker's setting, which is STATIC_BROKER_CONFIG unless it
/// is Kafka's default; the synonyms run from the override through the broker's setting to
/// Kafka's default.
fn group_entry(
    def: &weir_meta::group_config::GroupConfigDef,
    overridden: Option<&String>,
    broker_value: i32,
    synonyms: bool,
) -> DescribeConfigsResourceResult {
    let broker_source = if broker_value == def.kafka_default {
        SOURCE_DEFAULT
    } else {
        SOURCE_STATIC_BROKER
    };
    let mut chain = Vec::new();
    if let Some(v) = overridden {
        chain.push((def.name, v.clone(), SOURCE_DYNAMIC_GROUP));
    }
    if broker_source == SOURCE_STATIC_BROKER {
        chain.push((
            def.broker_name,
            broker_value.to_string(),
            SOURCE_STATIC_BROKER,
        ));
    }
    chain.push((
        def.broker_name,
        def.kafka_default.to_string(),
        SOURCE_DEFAULT,
    ));
    let (value, source) = match overridden {
        Some(v) => (v.clone(), SOURCE_DYNAMIC_GROUP),
        None => (broker_value.to_string(), broker_source),
    };
    let mut r = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(def.name))
        .with_value(Some(str_bytes(&value)))
        .with_read_only(false)
        .with_config_source(source)
        .with_config_type(ConfigType::Int.describe_code());
    if synonyms {
        r = r.with_synonyms(
            chain
                .into_iter()
                .map(|(n, v, s)| {
                    DescribeConfigsSynonym::default()
                        .with_name(str_bytes(n))
                        .with_value(Some(str_bytes(&v)))
                        .with_source(s)
                })
                .collect(),
        );
    }
    r
}

/// The refusal for `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a config resource,
/// if the principal may not: the broker, its loggers and client-metrics subscriptions are
/// the cluster's, as Kafka checks them.
fn config_refusal(
    access: &Access,
    operation: Operation,
    resource_type: i8,
    name: &str,
) -> Option<ApiError> {
    let (allowed, code) = match resource_type {
        RESOURCE_TOPIC => (
            access.topic(operation, name),
            ResponseError::TopicAuthorizationFailed,
        ),
        RESOURCE_GROUP => (
            access.group(operation, name),
            ResponseError::GroupAuthorizationFailed,
        ),
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER | RESOURCE_CLIENT_METRICS => (
            access.cluster(operation),
            ResponseError::ClusterAuthorizationFailed,
        ),
        _ => return None,
    };
    (!allowed).then(|| crate::authz::refusal(code))
}

pub fn describe(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    mut request: DescribeConfigsRequest,
) -> Reply {
    let mut refused = Vec::new();
    request.resources.retain(|res| {
        match config_refusal(
            access,
            Operation::DescribeConfigs,
            res.resource_type,
            res.resource_name.as_str(),
        ) {
            Some(e) => {
                refused.push(
                    DescribeConfigsResult::default()
                        .with_resource_type(res.resource_type)
                        .with_resource_name(res.resource_name.clone())
                        .with_error_code(e.code)
                        .with_error_message(Some(str_bytes(&e.message))),
                );
                false
            }
            None => true,
        }
    });
    let mut body = describe_answer(state, request);
    body.results.extend(refused);
    meta.reply(&body)
}

/// The answer to a DescribeConfigs; the HTTP API describes topics' configs through here too.
pub fn describe_answer(
    state: &BrokerState,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
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
                        .map(|d| topic_entry(d, topic.configs.get(d.name), synonyms))
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
                RESOURCE_GROUP => {
                    let group_id = res.resource_name.as_str();
                    if group_id.is_empty() {
                        return out
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes("Group name must not be empty")));
                    }
                    // Any group id has configs, whether or not the group exists, as in Kafka.
                    let overrides = state.group_configs(group_id);
                    let limits = state.group_config_limits();
                    let configs = GROUP_CONFIGS
                        .iter()
                        .filter(|d| wanted(d.name))
                        .map(|d| {
                            let broker_value = limits.default_of(d.name).expect("a group config");
                            group_entry(d, overrides.get(d.name), broker_value, synonyms)
                        })
                        .collect();
                    out.with_configs(configs)
                }
                RESOURCE_CLIENT_METRICS => {
                    let name = res.resource_name.as_str();
                    if name.is_empty() {
                        return out
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes(
                                "Client metrics subscription name must not be empty",
                            )));
                    }
                    // As Kafka: the configs set, no defaults; an unknown name has none.
                    let configs = state
                        .client_metrics(name)
                        .into_iter()
                        .filter(|(n, _)| wanted(n))
                        .map(|(n, v)| {
                            DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(&n))
                                .with_value(Some(str_bytes(&v)))
                                .with_read_only(false)
                                .with_config_source(SOURCE_CLIENT_METRICS)
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
    DescribeConfigsResponse::default().with_results(results)
}

fn not_alterable(resource_type: i8) -> ApiError {
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

/// Kafka's refusals of a group resource before its configs are looked at: the empty name
/// (Kafka's "default group", which it does not have) and a name given twice.
fn check_group_request<'a>(
    group_id: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), ApiError> {
    if group_id.is_empty() {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            "Default group resources are not allowed.",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                "Error due to duplicate config keys",
            ));
        }
    }
    Ok(())
}

fn null_value(name: &str) -> ApiError {
    ApiError::new(
        ResponseError::InvalidRequest,
        format!("Null value not supported for : {name}"),
    )
}

/// Applies a group config change through the group coordinator's runtime (or, before it
/// runs, to the catalog alone: the coordinator reads it when it starts).
async fn alter_group(
    state: &Arc<BrokerState>,
    group_id: &str,
    apply: bool,
    change: impl FnOnce(BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError>,
) -> Result<(), ApiError> {
    match state.groups() {
        Some(runtime) => {
            runtime
                .alter_group_configs(state, group_id, apply, change)
                .await
        }
        None => state.set_group_configs(group_id, apply, change).map(|_| ()),
    }
}

/// One resource's outcome, as both alter APIs answer it.
type Outcome = (i8, StrBytes, Result<(), ApiError>);

/// Runs each resource of an alter request in order: a group resource through `group`, any
/// other (a topic, or a type that cannot be altered) through `topic`. At once when the
/// request names no group, else in a reply that waits for the group coordinator.
fn alter_each<R, F, G, Fut>(
    state: &Arc<BrokerState>,
    access: &Access,
    resources: Vec<R>,
    kind: fn(&R) -> (i8, StrBytes),
    topic: F,
    group: G,
    answer: impl FnOnce(Vec<Outcome>) -> Option<crate::connection::Frame> + Send + 'static,
) -> Reply
where
    R: Send + 'static,
    F: Fn(&Arc<BrokerState>, R) -> Result<(), ApiError> + Send + 'static,
    G: Fn(Arc<BrokerState>, R) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), ApiError>> + Send,
{
    // Refused resources are answered in their place, and not looked at further.
    let mut refusals: Vec<Option<ApiError>> = resources
        .iter()
        .map(|r| {
            let (t, n) = kind(r);
            config_refusal(access, Operation::AlterConfigs, t, n.as_str())
        })
        .collect();
    if resources.iter().all(|r| kind(r).0 != RESOURCE_GROUP) {
        let outcomes = resources
            .into_iter()
            .zip(refusals)
            .map(|(r, refusal)| {
                let (t, n) = kind(&r);
                match refusal {
                    Some(e) => (t, n, Err(e)),
                    None => (t, n, topic(state, r)),
                }
            })
            .collect();
        return match answer(outcomes) {
            Some(f) => Reply::Now(f),
            None => Reply::Close(None),
        };
    }
    let state = Arc::clone(state);
    Reply::Later(Box::pin(async move {
        let mut outcomes = Vec::with_capacity(resources.len());
        for (r, refusal) in resources.into_iter().zip(refusals.drain(..)) {
            let (t, n) = kind(&r);
            let result = if let Some(e) = refusal {
                Err(e)
            } else if t == RESOURCE_GROUP {
                group(Arc::clone(&state), r).await
            } else {
                topic(&state, r)
            };
            outcomes.push((t, n, result));
        }
        answer(outcomes)
    }))
}

pub fn alter(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    request: AlterConfigsRequest,
) -> Reply {
    use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
    let apply = !request.validate_only;
    let meta = meta.clone();
    alter_each(
        state,
        access,
        request.resources,
        |r: &AlterConfigsResource| (r.resource_type, r.resource_name.clone()),
        move |state, res| {
            if res.resource_type == RESOURCE_CLIENT_METRICS {
                // AlterConfigs replaces the whole set.
                let mut configs = BTreeMap::new();
                for c in &res.configs {
                    let v = c
                        .value
                        .as_ref()
                        .ok_or_else(|| null_value(c.name.as_str()))?;
                    configs.insert(c.name.to_string(), v.to_string());
                }
                return state
                    .set_client_metrics(res.resource_name.as_str(), apply, |_| Ok(configs));
            }
            if res.resource_type != RESOURCE_TOPIC {
                return Err(not_alterable(res.resource_type));
            }
            let mut configs = BTreeMap::new();
            for c in &res.configs {
                if let Some(v) = &c.value {
                    configs.insert(c.name.to_string(), v.to_string());
                }
            }
            state.set_topic_configs(res.resource_name.as_str(), configs, apply)
        },
        move |state, res| async move {
            let group_id = res.resource_name.to_string();
            check_group_request(&group_id, res.configs.iter().map(|c| c.name.as_str()))?;
            // AlterConfigs replaces the whole set.
            let mut configs = BTreeMap::new();
            for c in &res.configs {
                let v = c
                    .value
                    .as_ref()
                    .ok_or_else(|| null_value(c.name.as_str()))?;
                configs.insert(c.name.to_string(), v.to_string());
            }
            alter_group(&state, &group_id, apply, |_| Ok(configs)).await
        },
        move |outcomes| {
            let responses = outcomes
                .into_iter()
                .map(|(t, n, outcome)| {
                    let r = alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_resource_type(t)
                        .with_resource_name(n);
                    match outcome {
                        Ok(()) => r.with_error_message(None),
                        Err(e) => r
                            .with_error_code(e.code)
                            .with_error_message(Some(str_bytes(&e.message))),
                    }
                })
                .collect();
            meta.frame(&AlterConfigsResponse::default().with_responses(responses))
        },
    )
}

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// The broker's and the topics' replication throttles, which Kafka's reassignment tool
/// deletes after every `--verify` and `--cancel`. weir replicates nothing, so none is ever
/// set, and deleting one changes nothing and succeeds, as deleting an unset config does on
/// Kafka.
const BROKER_THROTTLE_CONFIGS: &[&str] = &[
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
    "replica.alter.log.dirs.io.max.bytes.per.second",
];
const TOPIC_THROTTLE_CONFIGS: &[&str] = &[
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];

/// Whether `res` only deletes replication throttles of this broker or of an existing topic.
fn deletes_throttles(
    state: &BrokerState,
    res: &incremental_alter_configs_request::AlterConfigsResource,
) -> bool {
    let name = res.resource_name.as_str();
    let throttles = match res.resource_type {
        RESOURCE_BROKER if name.is_empty() || name == state.config.node_id.to_string() => {
            BROKER_THROTTLE_CONFIGS
        }
        RESOURCE_TOPIC if state.topic(name).is_some() => TOPIC_THROTTLE_CONFIGS,
        _ => return false,
    };
    !res.configs.is_empty()
        && res
            .configs
            .iter()
            .all(|c| c.config_operation == OP_DELETE && throttles.contains(&c.name.as_str()))
}

/// IncrementalAlterConfigs on one topic, or a deletion of replication throttles; the HTTP
/// API alters topics' configs through here too.
pub fn incremental_topic(
    state: &BrokerState,
    res: &incremental_alter_configs_request::AlterConfigsResource,
    apply: bool,
) -> Result<(), ApiError> {
    if res.resource_type == RESOURCE_CLIENT_METRICS {
        return state.set_client_metrics(res.resource_name.as_str(), apply, |current| {
            apply_ops(&res.configs, current, weir_meta::client_metrics::is_list)
        });
    }
    if deletes_throttles(state, res) {
        return Ok(());
    }
    if res.resource_type != RESOURCE_TOPIC {
        return Err(not_alterable(res.resource_type));
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
                let changed = changed_list(
                    &current,
                    &value.unwrap_or_default(),
                    c.config_operation == OP_APPEND,
                );
                configs.insert(key, changed);
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
}

/// A LIST config's value after APPEND (the items it lacks, in order) or SUBTRACT.
fn changed_list(current: &str, change: &str, append: bool) -> String {
    let items = |v: &str| -> Vec<String> {
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let mut current = items(current);
    let change = items(change);
    if append {
        for i in change {
            if !current.contains(&i) {
                current.push(i);
            }
        }
    } else {
        current.retain(|i| !change.contains(i));
    }
    current.join(",")
}

/// The operations of an IncrementalAlterConfigs on one group or client-metrics
/// subscription, applied to its current overrides, with Kafka's refusals: SET needs a
/// value, DELETE of a config it does not have is no change, APPEND and SUBTRACT work on the
/// configs `is_list` names only (a subscription's `metrics` and `match`; no group config).
fn apply_ops(
    ops: &[incremental_alter_configs_request::AlterableConfig],
    mut configs: BTreeMap<String, String>,
    is_list: impl Fn(&str) -> bool,
) -> Result<BTreeMap<String, String>, ApiError> {
    for c in ops {
        let name = c.name.as_str();
        match c.config_operation {
            OP_SET => {
                let v = c.value.as_ref().ok_or_else(|| null_value(name))?;
                configs.insert(name.to_string(), v.to_string());
            }
            OP_DELETE => {
                configs.remove(name);
            }
            OP_APPEND | OP_SUBTRACT => {
                let append = c.config_operation == OP_APPEND;
                if !is_list(name) {
                    let op = if append { "APPEND" } else { "SUBTRACT" };
                    return Err(ApiError::new(
                        ResponseError::InvalidConfig,
                        format!("Can't {op} to key {name} because its type is not LIST."),
                    ));
                }
                let current = configs.get(name).map_or("", String::as_str);
                let change = c.value.as_ref().map_or("", |v| v.as_str());
                let changed = changed_list(current, change, append);
                configs.insert(name.to_string(), changed);
            }
            other => {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("unknown config operation {other}"),
                ))
            }
        }
    }
    Ok(configs)
}

pub fn incremental_alter(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    request: IncrementalAlterConfigsRequest,
) -> Reply {
    let apply = !request.validate_only;
    let meta = meta.clone();
    alter_each(
        state,
        access,
        request.resources,
        |r: &incremental_alter_configs_request::AlterConfigsResource| {
            (r.resource_type, r.resource_name.clone())
        },
        move |state, res| incremental_topic(state, &res, apply),
        move |state, res| async move {
            let group_id = res.resource_name.to_string();
            check_group_request(&group_id, res.configs.iter().map(|c| c.name.as_str()))?;
            alter_group(&state, &group_id, apply, |current| {
                apply_ops(&res.configs, current, |_| false)
            })
            .await
        },
        move |outcomes| {
            let responses = outcomes
                .into_iter()
                .map(|(t, n, outcome)| {
                    let r =
                        incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                            .with_resource_type(t)
                            .with_resource_name(n);
                    match outcome {
                        Ok(()) => r.with_error_message(None),
                        Err(e) => r
                            .with_error_code(e.code)
                            .with_error_message(Some(str_bytes(&e.message))),
                    }
                })
                .collect();
            meta.frame(&IncrementalAlterConfigsResponse::default().with_responses(responses))
        },
    )
}

/// ListConfigResources (KIP-1142), as Kafka 4.x answers it: v0 lists client-metrics
/// subscriptions; v1 lists the asked types, every type when none is asked:
/// groups with configs of their own, the broker, every topic. A type Kafka does not know is
/// UNSUPPORTED_VERSION.
pub fn list_resources(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    request: ListConfigResourcesRequest,
) -> Reply {
    if !access.cluster(Operation::DescribeConfigs) {
        return meta.reply(
            &ListConfigResourcesResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
        );
    }
    use kafka_protocol::messages::list_config_resources_response::ConfigResource;
    let known = [
        RESOURCE_TOPIC,
        RESOURCE_BROKER,
        RESOURCE_BROKER_LOGGER,
        RESOURCE_CLIENT_METRICS,
        RESOURCE_GROUP,
    ];
    let types: Vec<i8> = if meta.api_version == 0 {
        vec![RESOURCE_CLIENT_METRICS]
    } else if request.resource_types.is_empty() {
        vec![RESOURCE_GROUP, RESOURCE_BROKER, RESOURCE_TOPIC]
    } else {
        request.resource_types.clone()
    };
    if let Some(t) = types.iter().find(|t| !known.contains(t)) {
        tracing::debug!(resource_type = t, "ListConfigResources of an unknown type");
        return meta.reply(
            &ListConfigResourcesResponse::default()
                .with_error_code(ResponseError::UnsupportedVersion.code()),
        );
    }
    let mut resources = Vec::new();
    let mut add = |name: String, t: i8| {
        resources.push(
            ConfigResource::default()
                .with_resource_name(str_bytes(&name))
                .with_resource_type(t),
        )
    };
    for t in types {
        match t {
            RESOURCE_GROUP => {
                for g in state.groups_with_configs() {
                    add(g, t);
                }
            }
            RESOURCE_BROKER => add(state.config.node_id.to_string(), t),
            RESOURCE_CLIENT_METRICS => {
                for name in state.client_metrics_names() {
                    add(name, t);
                }
            }
            RESOURCE_TOPIC => {
                for topic in state.topics() {
                    add(topic.name, t);
                }
            }
            // weir serves no broker-logger configs.
            _ => {}
        }
    }
    meta.reply(&ListConfigResourcesResponse::default().with_config_resources(resources))
}
