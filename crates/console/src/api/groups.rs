//! Consumer groups: list, describe, the latest rebalances, delete a group, delete some of
//! its committed offsets.
//!
//! Everything but the rebalances is asked of the group coordinator as a Kafka admin client
//! would ask it (ListGroups, DescribeGroups or ConsumerGroupDescribe, OffsetFetch,
//! DeleteGroups, OffsetDelete), through the broker's coordinator runtime, so the API sees
//! exactly what Kafka clients see. The rebalances, which no Kafka API tells, come from the
//! coordinator's read-only inspection.

use std::collections::BTreeMap;

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
use weir_groups::group::RemovalReason;
use weir_groups::inspect::InspectQuery;
use weir_groups::rebalances::MemberChangeKind;
use weir_groups::{GroupRequest, GroupResponse};
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::extract::{JsonBody, PathParams};
use super::ApiContext;
use crate::errors::{ErrorBody, HttpError};
use crate::group_lag::{GroupLag, GroupLagReport};
use crate::group_status::{group_status, status_window, STATUS_WINDOW_SAMPLES};
use crate::lag_history::LAG_SAMPLE_INTERVAL;

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

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupList {
    pub groups: Vec<GroupSummary>,
    /// Groups beyond the first 1,000 by id, left out.
    pub truncated: usize,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
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
    /// The largest lag in time over the partitions, in seconds.
    pub lag_seconds_max: Option<f64>,
    /// `ok`, `warning`, `stalled`, `stopped` or `error`, judged from the console's recent
    /// lag samples (see docs/metrics.md); `ok` until there are samples.
    pub status: String,
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
    /// Records behind, over every partition the group has committed.
    pub total_lag: i64,
    /// The largest lag in time over the partitions, in seconds.
    pub lag_seconds_max: Option<f64>,
    /// As in the list: judged from the console's recent lag samples.
    pub status: String,
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

#[derive(Debug, Serialize, ToSchema)]
pub struct Rebalances {
    pub group_id: String,
    pub state: String,
    /// Classic groups: the generation; consumer groups: the group epoch.
    pub generation_id: i32,
    /// The latest rebalances, oldest first (the coordinator keeps a bounded number).
    pub rebalances: Vec<RebalanceEntry>,
    /// Rebalances since the coordinator started, by trigger (only triggers seen).
    pub counts: BTreeMap<String, u64>,
    pub last_rebalance_duration_ms: Option<i64>,
    /// How long the running rebalance has run, if one runs.
    pub current_rebalance_ms: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RebalanceEntry {
    pub started_ms: i64,
    /// Null while it runs.
    pub ended_ms: Option<i64>,
    /// How long it ran, or has run so far.
    pub duration_ms: i64,
    /// `running`, `completed`, `superseded` or `protocol_changed`.
    pub outcome: String,
    /// What started it, e.g. `member_joined`, `session_timeout`.
    pub trigger: String,
    /// The trigger, for people.
    pub reason: String,
    /// The generation (classic) or group epoch (consumer) it produced.
    pub generation_id: Option<i32>,
    /// Classic groups: when every member had rejoined, or the wait ran out.
    pub join_completed_ms: Option<i64>,
    pub member_changes: Vec<MemberChangeEntry>,
    /// Member changes beyond the kept ones, counted only.
    pub member_changes_dropped: usize,
    /// Classic groups: members the join waited for in vain, and that were removed.
    pub waited_for: Vec<String>,
    pub waited_for_dropped: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberChangeEntry {
    pub at_ms: i64,
    pub member_id: String,
    /// `joined`, or the reason it was removed: `left`, `session_timeout`,
    /// `rebalance_timeout`, `fenced_static_instance`, `admin_removal`.
    pub change: String,
}

fn change_name(kind: MemberChangeKind) -> &'static str {
    match kind {
        MemberChangeKind::Joined => "joined",
        MemberChangeKind::Removed(RemovalReason::Left) => "left",
        MemberChangeKind::Removed(RemovalReason::SessionTimeout) => "session_timeout",
        MemberChangeKind::Removed(RemovalReason::RebalanceTimeout) => "rebalance_timeout",
        MemberChangeKind::Removed(RemovalReason::FencedStaticInstance) => "fenced_static_instance",
        MemberChangeKind::Removed(RemovalReason::AdminRemoval) => "admin_removal",
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LagHistoryAnswer {
    pub group_id: String,
    /// As in the group's describe, judged from the latest samples.
    pub status: String,
    /// Milliseconds between samples.
    pub sample_interval_ms: u64,
    /// Oldest first; the console keeps a bounded number, sampled while it runs.
    pub samples: Vec<LagSample>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LagSample {
    pub at_ms: i64,
    pub has_members: bool,
    pub total_lag: i64,
    pub partitions: Vec<LagSamplePartition>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LagSamplePartition {
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub lag: i64,
}

/// A group's status from the console's latest lag samples.
fn status_of(ctx: &ApiContext, group_id: &str) -> String {
    let samples = ctx.lag_history.latest(group_id, STATUS_WINDOW_SAMPLES);
    group_status(status_window(&samples)).name().to_string()
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
    // As ListGroups: the groups the caller may not describe are left out.
    groups.retain(|g| ctx.may_describe_group(&g.group_id));
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
    // As OffsetFetch: the topics the caller may not describe are left out.
    for t in group
        .topics
        .into_iter()
        .filter(|t| ctx.may_describe_topic(&t.name))
    {
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

/// Each committed or assigned partition with its offsets and lag, the lag as
/// [`crate::group_lag`] reads it for every consumer of it (`/metrics`, the console).
fn partition_offsets(
    ctx: &ApiContext,
    members: &[Member],
    lag: Option<&GroupLag>,
) -> Vec<PartitionOffset> {
    let mut owners: BTreeMap<(String, i32), String> = BTreeMap::new();
    for m in members {
        for t in &m.assignment {
            for p in t.partitions.iter().flatten() {
                owners.insert((t.topic.clone(), *p), m.member_id.clone());
            }
        }
    }
    owners.retain(|(topic, _), _| ctx.may_describe_topic(topic));
    let mut out: BTreeMap<(String, i32), PartitionOffset> = BTreeMap::new();
    for p in lag.map(|g| g.partitions.as_slice()).unwrap_or_default() {
        let key = (p.topic.clone(), p.partition);
        out.insert(
            key.clone(),
            PartitionOffset {
                topic: p.topic.clone(),
                partition: p.partition,
                committed_offset: Some(p.committed_offset),
                high_watermark: p.high_watermark,
                lag: p.lag_records,
                lag_seconds: p.lag_seconds,
                member_id: owners.get(&key).cloned(),
            },
        );
    }
    // Assigned partitions the group has not committed on yet: no lag to speak of.
    for ((topic, partition), member_id) in owners {
        out.entry((topic.clone(), partition)).or_insert_with(|| {
            let high_watermark = ctx
                .broker
                .topic_partition(&topic, partition)
                .and_then(|tp| ctx.broker.log_admin().status(&tp))
                .map(|s| s.offsets.high_watermark);
            PartitionOffset {
                topic,
                partition,
                committed_offset: None,
                high_watermark,
                lag: None,
                lag_seconds: None,
                member_id: Some(member_id),
            }
        });
    }
    out.into_values().collect()
}

/// The groups' lag now, on the topics the caller may describe.
async fn lag_of(ctx: &ApiContext, group_ids: Vec<String>) -> GroupLagReport {
    let mut report = GroupLagReport::read(
        &ctx.broker,
        group_ids,
        weir_broker::handlers::produce::now_ms(),
    )
    .await;
    for g in &mut report.groups {
        g.partitions.retain(|p| ctx.may_describe_topic(&p.topic));
    }
    report
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
pub async fn list_groups(ctx: ApiContext) -> Result<Json<GroupList>, HttpError> {
    // The route itself is forwarded before it gets here; the overview's call is not.
    if let Some(elsewhere) = crate::forward::coordinator_elsewhere(&ctx.broker) {
        return crate::forward::get_json(&ctx, &elsewhere, "/api/v1/groups")
            .await
            .map(Json);
    }
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
    let lag = lag_of(&ctx, listed.iter().map(|g| g.group_id.clone()).collect()).await;
    let mut groups = Vec::with_capacity(listed.len());
    for g in listed {
        let members = described.get(&g.group_id).map_or(0, |d| d.members.len());
        let group_lag = lag.group(&g.group_id);
        let total_lag = group_lag.map_or(0, GroupLag::total_lag_records);
        let lag_seconds_max = group_lag.and_then(GroupLag::max_lag_seconds);
        let status = status_of(&ctx, &g.group_id);
        groups.push(GroupSummary {
            group_id: g.group_id,
            state: g.state,
            group_type: g.group_type,
            protocol_type: g.protocol_type,
            members,
            total_lag,
            lag_seconds_max,
            status,
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
    ctx: ApiContext,
    PathParams(group_id): PathParams<String>,
) -> Result<Json<GroupDetail>, HttpError> {
    ctx.require_group(Operation::Describe, &group_id)?;
    let (listed, described, _) = read_group(&ctx, &group_id).await?;
    let lag = lag_of(&ctx, vec![group_id.clone()]).await;
    let group_lag = lag.group(&group_id);
    let offsets = partition_offsets(&ctx, &described.members, group_lag);
    let total_lag = group_lag.map_or(0, GroupLag::total_lag_records);
    let lag_seconds_max = group_lag.and_then(GroupLag::max_lag_seconds);
    let status = status_of(&ctx, &group_id);
    Ok(Json(GroupDetail {
        group_id,
        state: described.state,
        group_type: listed.group_type,
        protocol_type: described.protocol_type,
        protocol: described.protocol,
        members: described.members,
        offsets,
        total_lag,
        lag_seconds_max,
        status,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/groups/{group}/rebalances",
    tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    responses(
        (status = 200, description = "The group's latest rebalances and counts by trigger", body = Rebalances),
        (status = 404, description = "No such group", body = ErrorBody),
    )
)]
pub async fn group_rebalances(
    ctx: ApiContext,
    PathParams(group_id): PathParams<String>,
) -> Result<Json<Rebalances>, HttpError> {
    ctx.require_group(Operation::Describe, &group_id)?;
    let runtime = ctx
        .broker
        .groups()
        .ok_or_else(HttpError::coordinator_unavailable)?;
    let query = InspectQuery {
        group_ids: Some(vec![group_id.clone()]),
        include_members: false,
    };
    let inspection = runtime
        .inspect(query, ctx.broker.topic_image())
        .await
        .ok_or_else(HttpError::coordinator_unavailable)?;
    let now_ms = inspection.now_ms;
    let g = inspection
        .groups
        .into_iter()
        .find(|g| g.group_id == group_id)
        .ok_or_else(|| unknown_group(&group_id))?;
    Ok(Json(Rebalances {
        state: g.state.to_string(),
        generation_id: g.generation_id,
        rebalances: g
            .rebalances
            .iter()
            .map(|r| RebalanceEntry {
                started_ms: r.started_ms,
                ended_ms: r.ended_ms,
                duration_ms: r.duration_ms(now_ms),
                outcome: r.outcome.name().to_string(),
                trigger: r.trigger.name().to_string(),
                reason: r.trigger.description().to_string(),
                generation_id: r.generation_id,
                join_completed_ms: r.join_completed_ms,
                member_changes: r
                    .member_changes
                    .iter()
                    .map(|c| MemberChangeEntry {
                        at_ms: c.at_ms,
                        member_id: c.member_id.clone(),
                        change: change_name(c.kind).to_string(),
                    })
                    .collect(),
                member_changes_dropped: r.member_changes_dropped,
                waited_for: r.waited_for.clone(),
                waited_for_dropped: r.waited_for_dropped,
            })
            .collect(),
        counts: g
            .rebalance_counts
            .iter()
            .map(|(t, n)| (t.name().to_string(), *n))
            .collect(),
        last_rebalance_duration_ms: g.last_rebalance_duration_ms,
        current_rebalance_ms: g.current_rebalance_ms,
        group_id,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/groups/{group}/lag-history",
    tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    responses(
        (status = 200, description = "The group's lag as the console sampled it, and its status", body = LagHistoryAnswer),
        (status = 404, description = "No such group", body = ErrorBody),
    )
)]
pub async fn group_lag_history(
    ctx: ApiContext,
    PathParams(group_id): PathParams<String>,
) -> Result<Json<LagHistoryAnswer>, HttpError> {
    ctx.require_group(Operation::Describe, &group_id)?;
    let samples = ctx.lag_history.samples(&group_id);
    // A group not sampled yet may still exist.
    if samples.is_empty() && !list(&ctx).await?.iter().any(|g| g.group_id == group_id) {
        return Err(unknown_group(&group_id));
    }
    let status = group_status(status_window(&samples)).name().to_string();
    Ok(Json(LagHistoryAnswer {
        group_id,
        status,
        sample_interval_ms: u64::try_from(LAG_SAMPLE_INTERVAL.as_millis()).unwrap_or(u64::MAX),
        samples: samples
            .iter()
            .map(|s| LagSample {
                at_ms: s.at_ms,
                has_members: s.has_members,
                total_lag: s
                    .partitions
                    .iter()
                    .filter(|p| ctx.may_describe_topic(&p.topic))
                    .map(|p| p.lag)
                    .sum(),
                partitions: s
                    .partitions
                    .iter()
                    .filter(|p| ctx.may_describe_topic(&p.topic))
                    .map(|p| LagSamplePartition {
                        topic: p.topic.to_string(),
                        partition: p.partition,
                        committed_offset: p.committed_offset,
                        log_start_offset: p.log_start_offset,
                        high_watermark: p.high_watermark,
                        lag: p.lag,
                    })
                    .collect(),
            })
            .collect(),
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
    ctx: ApiContext,
    PathParams(group_id): PathParams<String>,
) -> Result<Json<GroupDeleted>, HttpError> {
    ctx.require_group(Operation::Delete, &group_id)?;
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
        (status = 409, description = "The group has live members (a classic group whose protocol weir cannot read), or one consumes a named topic", body = ErrorBody),
    )
)]
pub async fn delete_offsets(
    ctx: ApiContext,
    PathParams(group_id): PathParams<String>,
    JsonBody(body): JsonBody<DeleteOffsets>,
) -> Result<Json<OffsetsDeleted>, HttpError> {
    if body.topics.is_empty() {
        return Err(HttpError::bad_request(
            "invalid_body",
            "Name the topics whose offsets to delete in \"topics\".",
        ));
    }
    // As OffsetDelete: DELETE on the group, READ on each topic.
    ctx.require_group(Operation::Delete, &group_id)?;
    for t in &body.topics {
        ctx.require_topic(Operation::Read, &t.topic)?;
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
        Some(ResponseError::NonEmptyGroup) => {
            return Err(HttpError::conflict(
                "group_not_empty",
                format!("Group '{group_id}' has active members; stop its consumers before deleting its offsets."),
            ))
        }
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
