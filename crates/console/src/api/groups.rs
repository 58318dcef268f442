//! Consumer groups: list, describe, delete a group, delete some of its committed offsets.
//!
//! Everything is asked of the group coordinator as a Kafka admin client would ask it
//! (ListGroups, DescribeGroups or ConsumerGroupDescribe, OffsetFetch, DeleteGroups,
//! OffsetDelete), through the broker's coordinator runtime, so the API sees exactly what
//! Kafka clients see.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use bytes::Buf;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerProtocolAssignment, DeleteGroupsRequest,
    DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetDeleteRequest, OffsetFetchRequest,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weir_groups::{GroupRequest, GroupResponse};
use weir_wire::ResponseError;

use super::extract::{JsonBody, PathParams};
use super::ApiContext;
use crate::errors::{ErrorBody, HttpError};

/// The most groups one list answers.
pub const GROUPS_LISTED_MAX: usize = 1_000;
/// Groups named in one describe request to the coordinator.
const GROUPS_PER_DESCRIBE_MAX: usize = 100;
/// The versions the API speaks to the coordinator: the newest of each.
const LIST_GROUPS_VERSION: i16 = 5;
const DESCRIBE_GROUPS_VERSION: i16 = 5;
const CONSUMER_GROUP_DESCRIBE_VERSION: i16 = 1;
const OFFSET_FETCH_VERSION: i16 = 9;
const OFFSET_DELETE_VERSION: i16 = 0;
const DELETE_GROUPS_VERSION: i16 = 2;
/// How the coordinator sees the API in its logs.
pub const CLIENT_ID: &str = "weir-http-api";
/// ListGroups' type of a KIP-848 consumer group.
const GROUP_TYPE_CONSUMER: &str = "consumer";

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupList {
    pub groups: Vec<GroupSummary>,
    /// Groups beyond the first 1,000 by id, left out.
    pub truncated: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupSummary {
    pub group_id: String,
    /// Empty, Stable, PreparingRebalance, CompletingRebalance, Assigning, Reconciling, Dead.
    pub state: String,
    /// `classic` or `consumer` (KIP-848).
    pub group_type: String,
    /// A classic group's protocol type (`consumer`, `connect`, …).
    pub protocol_type: String,
    pub members: usize,
    /// Records behind, over every partition the group has committed.
    pub total_lag: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDetail {
    pub group_id: String,
    pub state: String,
    pub group_type: String,
    pub protocol_type: String,
    /// The assignor: a classic group's chosen protocol, a consumer group's server assignor.
    pub protocol: String,
    pub members: Vec<Member>,
    /// Every partition the group has committed an offset for or is assigned.
    pub offsets: Vec<PartitionOffset>,
    pub total_lag: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub assignment: Vec<TopicPartitions>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TopicPartitions {
    pub topic: String,
    /// The partitions; every partition of the topic when left out (where a request allows).
    pub partitions: Option<Vec<i32>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: i32,
    /// None when the group has not committed on this partition.
    pub committed_offset: Option<i64>,
    /// None when the partition no longer exists.
    pub high_watermark: Option<i64>,
    /// Records between the committed offset and the high watermark.
    pub lag: Option<i64>,
    /// How old the first record the group has not consumed is, in seconds; 0 when it has
    /// consumed everything.
    pub lag_seconds: Option<f64>,
    /// The member the partition is assigned to.
    pub member_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteOffsets {
    /// The topics (and partitions) whose committed offsets to delete.
    pub topics: Vec<TopicPartitions>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OffsetsDeleted {
    pub group_id: String,
    pub deleted: Vec<TopicPartitions>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDeleted {
    pub group_id: String,
}

/// One request to the group coordinator.
pub async fn call(
    ctx: &ApiContext,
    version: i16,
    request: GroupRequest,
) -> Result<GroupResponse, HttpError> {
    let runtime = ctx
        .broker
        .groups()
        .ok_or_else(HttpError::coordinator_unavailable)?;
    runtime
        .call(version, CLIENT_ID.to_string(), String::new(), request)
        .await
        .ok_or_else(HttpError::coordinator_unavailable)
}

fn unexpected() -> HttpError {
    HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "The group coordinator answered another request than the one asked.",
    )
}

pub fn unknown_group(group_id: &str) -> HttpError {
    HttpError::not_found(
        "unknown_group",
        format!("Group '{group_id}' does not exist; GET /api/v1/groups lists the groups."),
    )
}

/// A group as ListGroups names it.
pub struct Listed {
    pub group_id: String,
    pub state: String,
    pub group_type: String,
    pub protocol_type: String,
}

/// Every group the coordinator knows, by id.
pub async fn list(ctx: &ApiContext) -> Result<Vec<Listed>, HttpError> {
    let GroupResponse::ListGroups(listed) = call(
        ctx,
        LIST_GROUPS_VERSION,
        GroupRequest::ListGroups(ListGroupsRequest::default()),
    )
    .await?
    else {
        return Err(unexpected());
    };
    if listed.error_code != 0 {
        return Err(HttpError::from_kafka(
            listed.error_code,
            "cannot list the groups",
        ));
    }
    let mut groups: Vec<Listed> = listed
        .groups
        .into_iter()
        .map(|g| Listed {
            group_id: g.group_id.0.to_string(),
            state: g.group_state.to_string(),
            group_type: if g.group_type.is_empty() {
                "classic".to_string()
            } else {
                g.group_type.to_string()
            },
            protocol_type: g.protocol_type.to_string(),
        })
        .collect();
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    Ok(groups)
}

/// A group's members and protocol, as its describe gives them.
pub struct Described {
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<Member>,
}

/// Topic → partitions of a classic member's assignment (the consumer protocol's bytes).
fn decode_assignment(bytes: &bytes::Bytes) -> Vec<TopicPartitions> {
    let mut b = bytes.clone();
    if b.len() < 2 {
        return Vec::new();
    }
    let version = b.get_i16();
    match ConsumerProtocolAssignment::decode(&mut b, version.clamp(0, 3)) {
        Ok(a) => a
            .assigned_partitions
            .into_iter()
            .map(|t| TopicPartitions {
                topic: t.topic.to_string(),
                partitions: Some(t.partitions),
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Describes groups of one type, by id; a group gone since it was listed is left out.
async fn describe(
    ctx: &ApiContext,
    group_ids: &[String],
    consumer: bool,
) -> Result<BTreeMap<String, Described>, HttpError> {
    let mut out = BTreeMap::new();
    for chunk in group_ids.chunks(GROUPS_PER_DESCRIBE_MAX) {
        let ids: Vec<GroupId> = chunk
            .iter()
            .map(|g| GroupId(StrBytes::from_string(g.clone())))
            .collect();
        if consumer {
            let request = GroupRequest::ConsumerGroupDescribe(
                ConsumerGroupDescribeRequest::default().with_group_ids(ids),
                ctx.broker.topic_image(),
            );
            let GroupResponse::ConsumerGroupDescribe(answer) =
                call(ctx, CONSUMER_GROUP_DESCRIBE_VERSION, request).await?
            else {
                return Err(unexpected());
            };
            for g in answer.groups.into_iter().filter(|g| g.error_code == 0) {
                let members = g
                    .members
                    .iter()
                    .map(|m| Member {
                        member_id: m.member_id.to_string(),
                        instance_id: m.instance_id.as_ref().map(|s| s.to_string()),
                        client_id: m.client_id.to_string(),
                        host: m.client_host.to_string(),
                        assignment: m
                            .assignment
                            .topic_partitions
                            .iter()
                            .map(|t| TopicPartitions {
                                topic: t.topic_name.to_string(),
                                partitions: Some(t.partitions.clone()),
                            })
                            .collect(),
                    })
                    .collect();
                out.insert(
                    g.group_id.0.to_string(),
                    Described {
                        state: g.group_state.to_string(),
                        protocol_type: GROUP_TYPE_CONSUMER.to_string(),
                        protocol: g.assignor_name.to_string(),
                        members,
                    },
                );
            }
        } else {
            let request =
                GroupRequest::DescribeGroups(DescribeGroupsRequest::default().with_groups(ids));
            let GroupResponse::DescribeGroups(answer) =
                call(ctx, DESCRIBE_GROUPS_VERSION, request).await?
            else {
                return Err(unexpected());
            };
            for g in answer.groups.into_iter().filter(|g| g.error_code == 0) {
                let consumer_protocol =
                    g.protocol_type.as_str() == "consumer" || g.protocol_type.is_empty();
                let members = g
                    .members
                    .iter()
                    .map(|m| Member {
                        member_id: m.member_id.to_string(),
                        instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                        client_id: m.client_id.to_string(),
                        host: m.client_host.to_string(),
                        assignment: if consumer_protocol {
                            decode_assignment(&m.member_assignment)
                        } else {
                            Vec::new()
                        },
                    })
                    .collect();
                out.insert(
                    g.group_id.0.to_string(),
                    Described {
                        state: g.group_state.to_string(),
                        protocol_type: g.protocol_type.to_string(),
                        protocol: g.protocol_data.to_string(),
                        members,
                    },
                );
            }
        }
    }
    Ok(out)
}

/// A group's committed offsets, (topic, partition) → offset, as OffsetFetch gives them.
pub async fn committed(
    ctx: &ApiContext,
    group_id: &str,
) -> Result<BTreeMap<(String, i32), i64>, HttpError> {
    let request =
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_string(group_id.to_string())))
            .with_topics(None)]);
    let GroupResponse::OffsetFetch(answer) = call(
        ctx,
        OFFSET_FETCH_VERSION,
        GroupRequest::OffsetFetch(request),
    )
    .await?
    else {
        return Err(unexpected());
    };
    let Some(group) = answer.groups.into_iter().next() else {
        return Err(unexpected());
    };
    if group.error_code != 0 {
        return Err(HttpError::from_kafka(
            group.error_code,
            format!("cannot read the committed offsets of group '{group_id}'"),
        ));
    }
    let mut out = BTreeMap::new();
    for t in group.topics {
        for p in t.partitions.into_iter().filter(|p| p.committed_offset >= 0) {
            out.insert(
                (t.name.0.to_string(), p.partition_index),
                p.committed_offset,
            );
        }
    }
    Ok(out)
}

/// A group's state, members and committed offsets; 404 when the coordinator knows nothing
/// of it (no members, no offsets).
pub async fn read_group(
    ctx: &ApiContext,
    group_id: &str,
) -> Result<(Listed, Described, BTreeMap<(String, i32), i64>), HttpError> {
    let listed = list(ctx)
        .await?
        .into_iter()
        .find(|g| g.group_id == group_id)
        .ok_or_else(|| unknown_group(group_id))?;
    let consumer = listed.group_type == GROUP_TYPE_CONSUMER;
    let described = describe(ctx, &[group_id.to_string()], consumer)
        .await?
        .remove(group_id)
        .ok_or_else(|| unknown_group(group_id))?;
    let committed = committed(ctx, group_id).await?;
    Ok((listed, described, committed))
}

/// Each committed or assigned partition with its offsets.
fn partition_offsets(
    ctx: &ApiContext,
    members: &[Member],
    committed: &BTreeMap<(String, i32), i64>,
) -> Vec<PartitionOffset> {
    let mut owners: BTreeMap<(String, i32), String> = BTreeMap::new();
    for m in members {
        for t in &m.assignment {
            for p in t.partitions.iter().flatten() {
                owners.insert((t.topic.clone(), *p), m.member_id.clone());
            }
        }
    }
    let mut keys: Vec<(String, i32)> = committed.keys().cloned().collect();
    keys.extend(owners.keys().cloned());
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|(topic, partition)| {
            let high_watermark = ctx
                .broker
                .partition(&topic, partition)
                .map(|h| h.log.lock().high_watermark());
            let committed_offset = committed.get(&(topic.clone(), partition)).copied();
            PartitionOffset {
                member_id: owners.get(&(topic.clone(), partition)).cloned(),
                topic,
                partition,
                committed_offset,
                high_watermark,
                lag: None,
                lag_seconds: None,
            }
        })
        .collect()
}

#[utoipa::path(
    get,
    path = "/api/v1/groups",
    tag = "groups",
    responses(
        (status = 200, description = "Every group, by id", body = GroupList),
        (status = 503, description = "The group coordinator is not running", body = ErrorBody),
    )
)]
pub async fn list_groups(State(ctx): State<ApiContext>) -> Result<Json<GroupList>, HttpError> {
    let mut listed = list(&ctx).await?;
    let truncated = listed.len().saturating_sub(GROUPS_LISTED_MAX);
    listed.truncate(GROUPS_LISTED_MAX);
    let ids = |consumer: bool| -> Vec<String> {
        listed
            .iter()
            .filter(|g| (g.group_type == GROUP_TYPE_CONSUMER) == consumer)
            .map(|g| g.group_id.clone())
            .collect()
    };
    let mut described = describe(&ctx, &ids(false), false).await?;
    described.extend(describe(&ctx, &ids(true), true).await?);
    let mut groups = Vec::with_capacity(listed.len());
    for g in listed {
        let members = described.get(&g.group_id).map_or(0, |d| d.members.len());
        let total_lag = 0;
        groups.push(GroupSummary {
            group_id: g.group_id,
            state: g.state,
            group_type: g.group_type,
            protocol_type: g.protocol_type,
            members,
            total_lag,
        });
    }
    Ok(Json(GroupList { groups, truncated }))
}

#[utoipa::path(
    get,
    path = "/api/v1/groups/{group}",
    tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    responses(
        (status = 200, description = "The group", body = GroupDetail),
        (status = 404, description = "No such group", body = ErrorBody),
    )
)]
pub async fn describe_group(
    State(ctx): State<ApiContext>,
    PathParams(group_id): PathParams<String>,
) -> Result<Json<GroupDetail>, HttpError> {
    let (listed, described, committed) = read_group(&ctx, &group_id).await?;
    let offsets = partition_offsets(&ctx, &described.members, &committed);
    let total_lag = offsets.iter().filter_map(|o| o.lag).sum();
    Ok(Json(GroupDetail {
        group_id,
        state: described.state,
        group_type: listed.group_type,
        protocol_type: described.protocol_type,
        protocol: described.protocol,
        members: described.members,
        offsets,
        total_lag,
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/groups/{group}",
    tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    responses(
        (status = 200, description = "Deleted, with its committed offsets", body = GroupDeleted),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 409, description = "The group has members", body = ErrorBody),
    )
)]
pub async fn delete_group(
    State(ctx): State<ApiContext>,
    PathParams(group_id): PathParams<String>,
) -> Result<Json<GroupDeleted>, HttpError> {
    let request = DeleteGroupsRequest::default()
        .with_groups_names(vec![GroupId(StrBytes::from_string(group_id.clone()))]);
    let GroupResponse::DeleteGroups(answer) = call(
        &ctx,
        DELETE_GROUPS_VERSION,
        GroupRequest::DeleteGroups(request),
    )
    .await?
    else {
        return Err(unexpected());
    };
    let code = answer.results.first().map_or(0, |r| r.error_code);
    match ResponseError::try_from_code(code) {
        None => Ok(Json(GroupDeleted { group_id })),
        Some(ResponseError::GroupIdNotFound) => Err(unknown_group(&group_id)),
        Some(ResponseError::NonEmptyGroup) => Err(HttpError::conflict(
            "group_not_empty",
            format!(
                "Group '{group_id}' has active members; stop its consumers before deleting it."
            ),
        )),
        Some(e) => Err(HttpError::from_kafka(
            e.code(),
            format!("cannot delete group '{group_id}': {e}"),
        )),
    }
}

#[utoipa::path(
    delete,
    path = "/api/v1/groups/{group}/offsets",
    tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    request_body = DeleteOffsets,
    responses(
        (status = 200, description = "The offsets deleted", body = OffsetsDeleted),
        (status = 400, description = "No topics named, or a malformed body", body = ErrorBody),
        (status = 404, description = "No such group, topic or partition", body = ErrorBody),
        (status = 409, description = "A live member of the group consumes a named topic", body = ErrorBody),
    )
)]
pub async fn delete_offsets(
    State(ctx): State<ApiContext>,
    PathParams(group_id): PathParams<String>,
    JsonBody(body): JsonBody<DeleteOffsets>,
) -> Result<Json<OffsetsDeleted>, HttpError> {
    if body.topics.is_empty() {
        return Err(HttpError::bad_request(
            "invalid_body",
            "Name the topics whose offsets to delete in \"topics\".",
        ));
    }
    let (_, _, committed) = read_group(&ctx, &group_id).await?;
    let mut targets = Vec::new();
    for t in &body.topics {
        let topic = super::topics::topic_or_404(&ctx.broker, &t.topic)?;
        let partitions = match &t.partitions {
            Some(ps) => {
                for p in ps {
                    super::topics::partition_or_404(&ctx.broker, &t.topic, *p)?;
                }
                ps.clone()
            }
            // Every partition the group has committed on, else every partition.
            None => {
                let ps: Vec<i32> = committed
                    .keys()
                    .filter(|(ct, _)| *ct == t.topic)
                    .map(|(_, p)| *p)
                    .collect();
                if ps.is_empty() {
                    (0..topic.partitions).collect()
                } else {
                    ps
                }
            }
        };
        targets.push(TopicPartitions {
            topic: t.topic.clone(),
            partitions: Some(partitions),
        });
    }
    let request = OffsetDeleteRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group_id.clone())))
        .with_topics(
            targets
                .iter()
                .map(|t| {
                    OffsetDeleteRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t.topic.clone())))
                        .with_partitions(
                            t.partitions
                                .iter()
                                .flatten()
                                .map(|p| {
                                    OffsetDeleteRequestPartition::default().with_partition_index(*p)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let GroupResponse::OffsetDelete(answer) = call(
        &ctx,
        OFFSET_DELETE_VERSION,
        GroupRequest::OffsetDelete(request),
    )
    .await?
    else {
        return Err(unexpected());
    };
    match ResponseError::try_from_code(answer.error_code) {
        None => {}
        Some(ResponseError::GroupIdNotFound) => return Err(unknown_group(&group_id)),
        Some(e) => {
            return Err(HttpError::from_kafka(
                e.code(),
                format!("cannot delete offsets of group '{group_id}': {e}"),
            ))
        }
    }
    for t in &answer.topics {
        for p in &t.partitions {
            match ResponseError::try_from_code(p.error_code) {
                None => {}
                Some(ResponseError::GroupSubscribedToTopic) => {
                    return Err(HttpError::conflict(
                        "group_subscribed_to_topic",
                        format!(
                            "Group '{group_id}' has a live member consuming '{}'; stop its consumers first.",
                            t.name.0
                        ),
                    ))
                }
                Some(e) => {
                    return Err(HttpError::from_kafka(
                        e.code(),
                        format!(
                            "cannot delete the offset of {}[{}]: {e}",
                            t.name.0, p.partition_index
                        ),
                    ))
                }
            }
        }
    }
    Ok(Json(OffsetsDeleted {
        group_id,
        deleted: targets,
    }))
}
