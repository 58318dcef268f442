//! Topics: list, describe (partitions' offsets and sizes, configs with their sources),
//! create, delete, alter configs, add partitions.
//!
//! Each change goes through the function the Kafka API's handler uses (CreateTopics'
//! `create_one`, IncrementalAlterConfigs' `incremental_topic`, the state's
//! `delete_topic` and `add_partitions`), so both front doors check and do the same.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::Json;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weir_broker::handlers::configs::{incremental_topic, RESOURCE_TOPIC};
use weir_broker::state::BrokerState;
use weir_log::store::{PartitionStatus, TopicPartition};
use weir_meta::acls::Operation;
use weir_meta::Topic;

use super::extract::{JsonBody, PathParams};
use super::{blocking, ApiContext};
use crate::errors::{ErrorBody, HttpError};

/// The most topics one list answers; `truncated` says how many more there are.
pub const TOPICS_LISTED_MAX: usize = 10_000;

/// IncrementalAlterConfigs' operations the API uses.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicList {
    pub topics: Vec<TopicSummary>,
    /// Topics beyond the first 10,000 by name, left out.
    pub truncated: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicSummary {
    pub name: String,
    pub topic_id: String,
    pub internal: bool,
    pub partitions: i32,
    /// Bytes of the topic's segment files.
    pub size_bytes: u64,
    /// Records between each partition's log start offset and high watermark, summed.
    pub records: i64,
    /// The partitions' high watermarks, summed: records ever appended, less any truncation.
    pub high_watermark_sum: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicDetail {
    pub name: String,
    pub topic_id: String,
    pub internal: bool,
    pub partitions: Vec<PartitionInfo>,
    pub configs: Vec<ConfigEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionInfo {
    pub partition: i32,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// The first offset of the earliest open transaction, or the high watermark.
    pub last_stable_offset: i64,
    pub size_bytes: u64,
    pub segments: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
}

/// Where a config's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfigSource {
    /// Set on the topic.
    Topic,
    /// The broker's setting.
    Broker,
    /// weir's default.
    Default,
    /// Any other source Kafka names.
    Other,
}

impl ConfigSource {
    /// From DescribeConfigs' `config_source`.
    fn of(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::Topic,
            2..=4 => ConfigSource::Broker,
            5 => ConfigSource::Default,
            _ => ConfigSource::Other,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    pub name: String,
    /// Partitions; the broker's default (`--default-partitions`) when left out.
    pub partitions: Option<i32>,
    /// Config overrides, e.g. `{"retention.ms": "86400000"}`.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlterConfigs {
    /// Configs to set on the topic.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Configs to remove from the topic, so their defaults apply again.
    #[serde(default)]
    pub delete: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddPartitions {
    /// The new partition count, larger than the current one.
    pub count: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicDeleted {
    pub name: String,
    pub topic_id: String,
}

pub fn unknown_topic(name: &str) -> HttpError {
    HttpError::not_found(
        "unknown_topic",
        format!("Topic '{name}' does not exist; GET /api/v1/topics lists the topics."),
    )
}

/// A topic's catalog entry, or 404.
pub fn topic_or_404(broker: &BrokerState, name: &str) -> Result<Topic, HttpError> {
    broker.topic(name).ok_or_else(|| unknown_topic(name))
}

/// A partition, or 404 naming what exists.
pub fn partition_or_404(
    broker: &BrokerState,
    topic: &str,
    partition: i32,
) -> Result<TopicPartition, HttpError> {
    let t = topic_or_404(broker, topic)?;
    broker.topic_partition(topic, partition).ok_or_else(|| {
        HttpError::not_found(
            "unknown_partition",
            format!(
                "Topic '{topic}' has no partition {partition}; its partitions are 0 to {}.",
                t.partitions - 1
            ),
        )
    })
}

fn partition_info(partition: i32, status: PartitionStatus) -> PartitionInfo {
    PartitionInfo {
        partition,
        log_start_offset: status.offsets.log_start_offset,
        high_watermark: status.offsets.high_watermark,
        last_stable_offset: status.offsets.last_stable_offset,
        size_bytes: status.size_bytes,
        segments: status.segment_count,
    }
}

fn partitions_of(broker: &BrokerState, topic: &Topic) -> Vec<PartitionInfo> {
    (0..topic.partitions)
        .filter_map(|i| {
            let tp = broker.topic_partition(&topic.name, i)?;
            broker
                .log_admin()
                .status(&tp)
                .map(|status| partition_info(i, status))
        })
        .collect()
}

/// The topic's configs as DescribeConfigs gives them: every config, with its source.
fn configs_of(broker: &BrokerState, name: &str) -> Result<Vec<ConfigEntry>, HttpError> {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(None)]);
    let answer = weir_broker::handlers::configs::describe_answer(broker, request);
    let Some(result) = answer.results.into_iter().next() else {
        return Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "DescribeConfigs answered nothing for the topic.",
        ));
    };
    if result.error_code != 0 {
        let message = result
            .error_message
            .map(|m| m.to_string())
            .unwrap_or_default();
        return Err(HttpError::from_kafka(result.error_code, message));
    }
    Ok(result
        .configs
        .into_iter()
        .map(|c| ConfigEntry {
            name: c.name.to_string(),
            value: c.value.map(|v| v.to_string()),
            source: ConfigSource::of(c.config_source),
            read_only: c.read_only,
        })
        .collect())
}

fn detail(broker: &BrokerState, topic: &Topic) -> Result<TopicDetail, HttpError> {
    Ok(TopicDetail {
        name: topic.name.clone(),
        topic_id: topic.id.to_string(),
        internal: topic.internal,
        partitions: partitions_of(broker, topic),
        configs: configs_of(broker, &topic.name)?,
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/topics",
    tag = "topics",
    responses((status = 200, description = "Every topic, internal ones included, by name", body = TopicList))
)]
pub async fn list_topics(ctx: ApiContext) -> Result<Json<TopicList>, HttpError> {
    let broker = Arc::clone(&ctx.broker);
    blocking(move || {
        let mut topics = broker.topics();
        // As Metadata: the topics the caller may not describe are left out.
        topics.retain(|t| ctx.may_describe_topic(&t.name));
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        let truncated = topics.len().saturating_sub(TOPICS_LISTED_MAX);
        topics.truncate(TOPICS_LISTED_MAX);
        let topics = topics
            .iter()
            .map(|t| {
                let parts = partitions_of(&broker, t);
                TopicSummary {
                    name: t.name.clone(),
                    topic_id: t.id.to_string(),
                    internal: t.internal,
                    partitions: t.partitions,
                    size_bytes: parts.iter().map(|p| p.size_bytes).sum(),
                    records: parts
                        .iter()
                        .map(|p| p.high_watermark - p.log_start_offset)
                        .sum(),
                    high_watermark_sum: parts.iter().map(|p| p.high_watermark).sum(),
                }
            })
            .collect();
        Ok(Json(TopicList { topics, truncated }))
    })
    .await
}

#[utoipa::path(
    get,
    path = "/api/v1/topics/{topic}",
    tag = "topics",
    params(("topic" = String, Path, description = "Topic name")),
    responses(
        (status = 200, description = "The topic", body = TopicDetail),
        (status = 404, description = "No such topic", body = ErrorBody),
    )
)]
pub async fn describe_topic(
    ctx: ApiContext,
    PathParams(name): PathParams<String>,
) -> Result<Json<TopicDetail>, HttpError> {
    ctx.require_topic(Operation::Describe, &name)?;
    let broker = Arc::clone(&ctx.broker);
    blocking(move || {
        let topic = topic_or_404(&broker, &name)?;
        let mut detail = detail(&broker, &topic)?;
        // The configs are DescribeConfigs' answer, with its ACL.
        if !ctx.access.topic(Operation::DescribeConfigs, &name) {
            detail.configs.clear();
        }
        Ok(Json(detail))
    })
    .await
}

#[utoipa::path(
    post,
    path = "/api/v1/topics",
    tag = "topics",
    request_body = CreateTopic,
    responses(
        (status = 201, description = "Created", body = TopicDetail),
        (status = 400, description = "Bad name, partition count or config, or a malformed body", body = ErrorBody),
        (status = 409, description = "The topic exists", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
    )
)]
pub async fn create_topic(
    ctx: ApiContext,
    JsonBody(body): JsonBody<CreateTopic>,
) -> Result<(StatusCode, Json<TopicDetail>), HttpError> {
    ctx.require_create_topic(&body.name)?;
    let broker = ctx.broker;
    blocking(move || {
        let request = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(body.name.clone())))
            .with_num_partitions(body.partitions.unwrap_or(-1))
            .with_replication_factor(-1)
            .with_configs(
                body.configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.clone()))
                            .with_value(Some(StrBytes::from_string(v.clone())))
                    })
                    .collect(),
            );
        let topic =
            weir_broker::handlers::create_topics::create_one(&broker, &body.name, &request, true)?;
        Ok((StatusCode::CREATED, Json(detail(&broker, &topic)?)))
    })
    .await
}

#[utoipa::path(
    delete,
    path = "/api/v1/topics/{topic}",
    tag = "topics",
    params(("topic" = String, Path, description = "Topic name")),
    responses(
        (status = 200, description = "Deleted, with its records", body = TopicDeleted),
        (status = 400, description = "An internal topic", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
    )
)]
pub async fn delete_topic(
    ctx: ApiContext,
    PathParams(name): PathParams<String>,
) -> Result<Json<TopicDeleted>, HttpError> {
    ctx.require_topic(Operation::Delete, &name)?;
    let broker = ctx.broker;
    blocking(move || {
        topic_or_404(&broker, &name)?;
        let topic = broker.delete_topic(&name)?;
        Ok(Json(TopicDeleted {
            name: topic.name,
            topic_id: topic.id.to_string(),
        }))
    })
    .await
}

#[utoipa::path(
    patch,
    path = "/api/v1/topics/{topic}/configs",
    tag = "topics",
    params(("topic" = String, Path, description = "Topic name")),
    request_body = AlterConfigs,
    responses(
        (status = 200, description = "The topic's configs after the change", body = [ConfigEntry]),
        (status = 400, description = "An unknown config, a bad value, or no change named", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
    )
)]
pub async fn alter_topic_configs(
    ctx: ApiContext,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<AlterConfigs>,
) -> Result<Json<Vec<ConfigEntry>>, HttpError> {
    ctx.require_topic(Operation::AlterConfigs, &name)?;
    if body.set.is_empty() && body.delete.is_empty() {
        return Err(HttpError::bad_request(
            "invalid_body",
            "Name configs to change: \"set\" (name to value) or \"delete\" (names).",
        ));
    }
    let broker = ctx.broker;
    blocking(move || {
        topic_or_404(&broker, &name)?;
        let ops = body
            .set
            .iter()
            .map(|(k, v)| (k, OP_SET, Some(v)))
            .chain(body.delete.iter().map(|k| (k, OP_DELETE, None)));
        let resource = AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(name.clone()))
            .with_configs(
                ops.map(|(k, op, v)| {
                    AlterableConfig::default()
                        .with_name(StrBytes::from_string(k.clone()))
                        .with_config_operation(op)
                        .with_value(v.map(|v| StrBytes::from_string(v.clone())))
                })
                .collect(),
            );
        incremental_topic(&broker, &resource, true)?;
        configs_of(&broker, &name).map(Json)
    })
    .await
}

#[utoipa::path(
    post,
    path = "/api/v1/topics/{topic}/partitions",
    tag = "topics",
    params(("topic" = String, Path, description = "Topic name")),
    request_body = AddPartitions,
    responses(
        (status = 200, description = "The topic with its new partitions", body = TopicDetail),
        (status = 400, description = "A count not above the current one", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
    )
)]
pub async fn add_partitions(
    ctx: ApiContext,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<AddPartitions>,
) -> Result<Json<TopicDetail>, HttpError> {
    ctx.require_topic(Operation::Alter, &name)?;
    let broker = ctx.broker;
    blocking(move || {
        topic_or_404(&broker, &name)?;
        broker.add_partitions(&name, body.count)?;
        let topic = topic_or_404(&broker, &name)?;
        detail(&broker, &topic).map(Json)
    })
    .await
}
