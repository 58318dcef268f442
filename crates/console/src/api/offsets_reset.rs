//! Resetting a group's committed offsets: a plan by default, applied with
//! `"execute": true`, and undone with the undo endpoint.
//!
//! The semantics are the CLI's (`weir groups reset-offsets`), which follow Kafka's tool:
//! 1. The group must have no live members (Kafka's rule: offsets are reset only while the
//!    group is inactive); else 409. A group unknown to the coordinator is fine: the commit
//!    creates it.
//! 2. The partitions are the ones named, or every partition the group has committed.
//! 3. Each new offset comes from the spec (earliest, latest, an offset, a shift, a time, or
//!    given offsets), clamped to [log start offset, high watermark].
//! 4. Executing first saves the offsets being replaced to an undo file,
//!    `<data dir>/console/undo/<group>-<time>.csv`, in the CLI's format (a `#` header,
//!    then `topic,partition,offset` lines), then commits the new offsets at generation -1
//!    as admin tools do.
//!
//! Undo applies the newest undo file of the group and renames it `*.csv.undone`, so the
//! next undo reaches the reset before it. Partitions that had no committed offset before a
//! reset are not in the file, and keep their new offset (as with the CLI).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use axum::Json;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    BrokerId, GroupId, ListOffsetsRequest, OffsetCommitRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weir_groups::{GroupRequest, GroupResponse};
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::extract::{JsonBody, PathParams};
use super::groups::{self, TopicPartitions};
use super::topics::{partition_or_404, topic_or_404};
use super::ApiContext;
use crate::errors::{ErrorBody, HttpError};

/// Where undo files go, under the data directory.
pub const UNDO_DIR: &str = "console/undo";
/// The OffsetCommit version the reset commits at.
const OFFSET_COMMIT_VERSION: i16 = 9;
const LIST_OFFSETS_VERSION: i16 = 8;
const EARLIEST: i64 = -2;
const LATEST: i64 = -1;
/// The most partitions one reset moves.
pub const RESET_PARTITIONS_MAX: usize = 10_000;

/// Where the new offsets come from.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ResetSpec {
    /// The log start offset.
    ToEarliest,
    /// The high watermark.
    ToLatest,
    /// This offset.
    ToOffset(i64),
    /// The committed offset (the log start offset where none) moved by this many records;
    /// negative moves back.
    ShiftBy(i64),
    /// The first offset at or after this time (milliseconds since the epoch); the high
    /// watermark when no record is that recent.
    ToTimestamp(i64),
    /// As `to_timestamp`, written as an RFC 3339 time, e.g. `2026-11-24T09:00:00Z`.
    ToDatetime(String),
    /// These offsets; the partitions are the ones listed.
    ToOffsets(Vec<OffsetEntry>),
    /// Offsets in the CLI's file format: `topic,partition,offset` lines, `#` comments.
    FromCsv(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OffsetEntry {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetOffsets {
    pub spec: ResetSpec,
    /// The topics (and partitions) to reset; not needed with `to_offsets` or `from_csv`.
    #[serde(default)]
    pub topics: Vec<TopicPartitions>,
    /// Every topic the group has committed offsets for.
    #[serde(default)]
    pub all_topics: bool,
    /// Apply the plan; without it the plan is only shown.
    #[serde(default)]
    pub execute: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResetPlan {
    pub group_id: String,
    pub executed: bool,
    pub partitions: Vec<PlannedOffset>,
    /// The undo file written by an executed reset, relative to the data directory.
    pub undo_file: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlannedOffset {
    pub topic: String,
    pub partition: i32,
    /// The committed offset before; None when the group had none.
    pub current: Option<i64>,
    pub new: i64,
}

/// The new offset of one partition: what the spec asks, clamped to what the log holds.
/// `at_time` is the first offset at or after the spec's time, if any record is that recent;
/// `given` the offset a list of offsets names for this partition.
pub fn plan_offset(
    spec: &ResetSpec,
    current: Option<i64>,
    log_start_offset: i64,
    high_watermark: i64,
    at_time: Option<i64>,
    given: Option<i64>,
) -> i64 {
    let (lo, hi) = (log_start_offset, high_watermark);
    let new = match spec {
        ResetSpec::ToEarliest => lo,
        ResetSpec::ToLatest => hi,
        ResetSpec::ToOffset(o) => *o,
        ResetSpec::ShiftBy(n) => current.unwrap_or(lo).saturating_add(*n),
        ResetSpec::ToTimestamp(_) | ResetSpec::ToDatetime(_) => at_time.unwrap_or(hi),
        ResetSpec::ToOffsets(_) | ResetSpec::FromCsv(_) => given.unwrap_or(lo),
    };
    new.clamp(lo, hi.max(lo))
}

/// Offsets in the CLI's file format: `topic,partition,offset` lines; blank lines and lines
/// starting with `#` are skipped. A topic may contain commas: the last two fields are the
/// numbers.
pub fn parse_offsets_csv(text: &str) -> Result<Vec<OffsetEntry>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.rsplitn(3, ',');
        let (o, p, t) = (f.next(), f.next(), f.next());
        match (
            t,
            p.and_then(|p| p.trim().parse().ok()),
            o.and_then(|o| o.trim().parse().ok()),
        ) {
            (Some(t), Some(partition), Some(offset)) => out.push(OffsetEntry {
                topic: t.trim().to_string(),
                partition,
                offset,
            }),
            _ => {
                return Err(format!(
                    "line {}: expected topic,partition,offset, found '{line}'",
                    i + 1
                ))
            }
        }
    }
    if out.is_empty() {
        return Err("the offsets list no topic,partition,offset line".to_string());
    }
    Ok(out)
}

/// The undo file's text: the offsets a reset replaces, in the CLI's format.
pub fn undo_csv(group_id: &str, at_rfc3339: &str, plan: &[PlannedOffset]) -> String {
    let mut text = format!(
        "# committed offsets of group {group_id} before the reset at {at_rfc3339}; topic,partition,offset\n"
    );
    for p in plan {
        if let Some(c) = p.current {
            text.push_str(&format!("{},{},{c}\n", p.topic, p.partition));
        }
    }
    text
}

/// A group id as part of a file name: bytes outside `[A-Za-z0-9._]` as `%XX`, so every id
/// has its own name and the `-` before the time is never part of it.
fn file_stem(group_id: &str) -> String {
    let mut out = String::new();
    for b in group_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn undo_dir(ctx: &ApiContext) -> PathBuf {
    ctx.broker.config.data_dir.join(UNDO_DIR)
}

/// The group's newest undo file not yet applied.
fn newest_undo_file(dir: &Path, group_id: &str) -> std::io::Result<Option<PathBuf>> {
    let prefix = format!("{}-", file_stem(group_id));
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".csv") {
            names.push(name);
        }
    }
    // The time in the name sorts as text.
    names.sort();
    Ok(names.pop().map(|n| dir.join(n)))
}

fn storage_error(what: &str, e: &std::io::Error) -> HttpError {
    tracing::error!(error = %e, "{what}");
    HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "storage_error",
        format!("{what}: {e}."),
    )
}

/// Offsets of one partition as ListOffsets answers them: (log start, high watermark, at
/// the spec's time).
async fn log_offsets(
    ctx: &ApiContext,
    topic: &str,
    partition: i32,
    timestamp_ms: Option<i64>,
) -> Result<(i64, i64, Option<i64>), HttpError> {
    let mut asks = vec![EARLIEST, LATEST];
    asks.extend(timestamp_ms);
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(
                asks.iter()
                    .map(|ts| {
                        ListOffsetsPartition::default()
                            .with_partition_index(partition)
                            .with_timestamp(*ts)
                    })
                    .collect(),
            )]);
    let answer =
        weir_broker::handlers::list_offsets::answer(&ctx.broker, LIST_OFFSETS_VERSION, request)
            .await;
    let found: Vec<_> = answer
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .collect();
    if found.len() != asks.len() {
        return Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "ListOffsets answered another number of partitions than asked.",
        ));
    }
    if let Some(bad) = found.iter().find(|p| p.error_code != 0) {
        return Err(HttpError::from_kafka(
            bad.error_code,
            format!("cannot read the offsets of {topic}[{partition}]"),
        ));
    }
    let at_time = found.get(2).map(|p| p.offset).filter(|o| *o >= 0);
    Ok((found[0].offset, found[1].offset, at_time))
}

/// Refuses a group with live members: its consumers would overwrite the reset.
fn check_inactive(group_id: &str, members: usize, state: &str) -> Result<(), HttpError> {
    if members == 0 {
        return Ok(());
    }
    Err(HttpError::conflict(
        "group_active",
        format!(
            "Group '{group_id}' has {members} live member{} (state {state}); stop its consumers first, offsets can only be reset while the group is inactive.",
            if members == 1 { "" } else { "s" }
        ),
    ))
}

/// Steps 1 to 3: the plan.
async fn plan(
    ctx: &ApiContext,
    group_id: &str,
    body: &ResetOffsets,
) -> Result<Vec<PlannedOffset>, HttpError> {
    // 1. An unknown group has no members and no offsets.
    let committed = match groups::read_group(ctx, group_id).await {
        Ok((_, described, committed)) => {
            check_inactive(group_id, described.members.len(), &described.state)?;
            committed
        }
        Err(e) if e.code == "unknown_group" => BTreeMap::new(),
        Err(e) => return Err(e),
    };
    // 2. The partitions, and the offsets given for them.
    let given: Option<Vec<OffsetEntry>> = match &body.spec {
        ResetSpec::ToOffsets(entries) => Some(entries.clone()),
        ResetSpec::FromCsv(text) => Some(parse_offsets_csv(text).map_err(|e| {
            HttpError::bad_request(
                "invalid_body",
                format!("The offsets in from_csv are not readable: {e}."),
            )
        })?),
        _ => None,
    };
    let mut targets: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    match &given {
        Some(entries) => {
            if !body.topics.is_empty() || body.all_topics {
                return Err(HttpError::bad_request(
                    "invalid_body",
                    "to_offsets and from_csv name their partitions; leave out topics and all_topics.",
                ));
            }
            for e in entries {
                targets
                    .entry(e.topic.clone())
                    .or_default()
                    .insert(e.partition);
            }
        }
        None => {
            if body.topics.is_empty() && !body.all_topics {
                return Err(HttpError::bad_request(
                    "invalid_body",
                    "Name what to reset: \"topics\" (each a topic and, optionally, its partitions), or \"all_topics\": true.",
                ));
            }
            if body.all_topics {
                for (t, p) in committed.keys() {
                    targets.entry(t.clone()).or_default().insert(*p);
                }
            }
            for t in &body.topics {
                let topic = topic_or_404(&ctx.broker, &t.topic)?;
                let partitions: Vec<i32> = match &t.partitions {
                    Some(ps) => ps.clone(),
                    None => (0..topic.partitions).collect(),
                };
                targets
                    .entry(t.topic.clone())
                    .or_default()
                    .extend(partitions);
            }
        }
    }
    if targets.is_empty() {
        return Err(HttpError::bad_request(
            "invalid_body",
            format!("Group '{group_id}' has no committed offsets; name the topics to reset."),
        ));
    }
    let count: usize = targets.values().map(BTreeSet::len).sum();
    if count > RESET_PARTITIONS_MAX {
        return Err(HttpError::bad_request(
            "invalid_body",
            format!(
                "A reset moves at most {RESET_PARTITIONS_MAX} partitions; this one names {count}."
            ),
        ));
    }
    let timestamp_ms = match &body.spec {
        ResetSpec::ToTimestamp(ts) => Some(*ts),
        ResetSpec::ToDatetime(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|e| {
                    HttpError::bad_request(
                        "invalid_body",
                        format!("The time '{s}' is not in RFC 3339 form ({e}); write it as e.g. 2026-11-24T09:00:00Z."),
                    )
                })?
                .timestamp_millis(),
        ),
        _ => None,
    };
    if timestamp_ms.is_some_and(|ts| ts < 0) {
        return Err(HttpError::bad_request(
            "invalid_body",
            "A reset's time must be at or after 1970-01-01T00:00:00Z.",
        ));
    }
    // 3. Each partition's new offset.
    let mut plan = Vec::with_capacity(count);
    for (topic, partitions) in &targets {
        for &partition in partitions {
            partition_or_404(&ctx.broker, topic, partition)?;
            let (lo, hi, at_time) = log_offsets(ctx, topic, partition, timestamp_ms).await?;
            let current = committed.get(&(topic.clone(), partition)).copied();
            let given_offset = given.as_ref().and_then(|entries| {
                entries
                    .iter()
                    .find(|e| e.topic == *topic && e.partition == partition)
                    .map(|e| e.offset)
            });
            plan.push(PlannedOffset {
                topic: topic.clone(),
                partition,
                current,
                new: plan_offset(&body.spec, current, lo, hi, at_time, given_offset),
            });
        }
    }
    Ok(plan)
}

/// Commits the plan's offsets for the group, as an admin client does (no member,
/// generation -1); the coordinator refuses it if members joined since the plan.
async fn commit(ctx: &ApiContext, group_id: &str, plan: &[PlannedOffset]) -> Result<(), HttpError> {
    let mut by_topic: BTreeMap<&str, Vec<&PlannedOffset>> = BTreeMap::new();
    for p in plan {
        by_topic.entry(&p.topic).or_default().push(p);
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group_id.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partitions(
                            ps.into_iter()
                                .map(|p| {
                                    OffsetCommitRequestPartition::default()
                                        .with_partition_index(p.partition)
                                        .with_committed_offset(p.new)
                                        .with_committed_leader_epoch(-1)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let GroupResponse::OffsetCommit(answer) = groups::call(
        ctx,
        OFFSET_COMMIT_VERSION,
        GroupRequest::OffsetCommit(request),
    )
    .await?
    else {
        return Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "The group coordinator answered another request than the one asked.",
        ));
    };
    for t in &answer.topics {
        for p in &t.partitions {
            match ResponseError::try_from_code(p.error_code) {
                None => {}
                Some(
                    ResponseError::UnknownMemberId
                    | ResponseError::IllegalGeneration
                    | ResponseError::RebalanceInProgress,
                ) => {
                    return Err(HttpError::conflict(
                        "group_active",
                        format!("Group '{group_id}' has live members now; stop its consumers first, offsets can only be reset while the group is inactive."),
                    ))
                }
                Some(e) => {
                    return Err(HttpError::from_kafka(
                        e.code(),
                        format!("the commit of {}[{}] failed: {e}", t.name.0, p.partition_index),
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Step 4: saves the undo file, then commits.
async fn execute(
    ctx: &ApiContext,
    group_id: &str,
    plan: &[PlannedOffset],
) -> Result<String, HttpError> {
    let now = chrono::Utc::now();
    let dir = undo_dir(ctx);
    let name = format!(
        "{}-{}.csv",
        file_stem(group_id),
        now.format("%Y%m%dT%H%M%S%.3fZ")
    );
    let text = undo_csv(group_id, &now.to_rfc3339(), plan);
    let path = dir.join(&name);
    let written = path.clone();
    super::blocking(move || {
        std::fs::create_dir_all(&dir)
            .map_err(|e| storage_error("cannot create the undo directory", &e))?;
        std::fs::write(&written, text).map_err(|e| storage_error("cannot write the undo file", &e))
    })
    .await?;
    if let Err(e) = commit(ctx, group_id, plan).await {
        // Nothing changed: an undo must not find this file and restore a reset that never
        // happened over a later one.
        if let Err(removed) = std::fs::remove_file(&path) {
            tracing::warn!(file = %path.display(), error = %removed, "cannot remove the undo file of a failed reset");
        }
        return Err(e);
    }
    Ok(format!("{UNDO_DIR}/{name}"))
}

#[utoipa::path(
    post,
    path = "/api/v1/groups/{group}/offsets/reset",
    tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    request_body = ResetOffsets,
    responses(
        (status = 200, description = "The plan, applied when execute was set", body = ResetPlan),
        (status = 400, description = "No partitions named, a bad spec or a malformed body", body = ErrorBody),
        (status = 404, description = "No such topic or partition", body = ErrorBody),
        (status = 409, description = "The group has live members", body = ErrorBody),
    )
)]
pub async fn reset_offsets(
    ctx: ApiContext,
    PathParams(group_id): PathParams<String>,
    JsonBody(body): JsonBody<ResetOffsets>,
) -> Result<Json<ResetPlan>, HttpError> {
    // A dry run reads what kafka-consumer-groups' does (DESCRIBE); executing commits
    // (OffsetCommit's READ on the group and each topic).
    let operation = if body.execute {
        Operation::Read
    } else {
        Operation::Describe
    };
    ctx.require_group(operation, &group_id)?;
    for t in &body.topics {
        ctx.require_topic(operation, &t.topic)?;
    }
    let partitions = plan(&ctx, &group_id, &body).await?;
    require_topics(&ctx, operation, &partitions)?;
    let undo_file = if body.execute {
        Some(execute(&ctx, &group_id, &partitions).await?)
    } else {
        None
    };
    Ok(Json(ResetPlan {
        group_id,
        executed: body.execute,
        partitions,
        undo_file,
    }))
}

/// Refuses unless the caller may perform `operation` on every topic of the plan.
fn require_topics(
    ctx: &ApiContext,
    operation: Operation,
    partitions: &[PlannedOffset],
) -> Result<(), HttpError> {
    let topics: std::collections::BTreeSet<&str> =
        partitions.iter().map(|p| p.topic.as_str()).collect();
    topics
        .into_iter()
        .try_for_each(|t| ctx.require_topic(operation, t))
}

#[utoipa::path(
    post,
    path = "/api/v1/groups/{group}/offsets/reset/undo",
    tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    responses(
        (status = 200, description = "The offsets restored from the group's last reset", body = ResetPlan),
        (status = 404, description = "No reset of this group to undo", body = ErrorBody),
        (status = 409, description = "The group has live members", body = ErrorBody),
    )
)]
pub async fn undo_reset(
    ctx: ApiContext,
    PathParams(group_id): PathParams<String>,
) -> Result<Json<ResetPlan>, HttpError> {
    ctx.require_group(Operation::Read, &group_id)?;
    let dir = undo_dir(&ctx);
    let group = group_id.clone();
    let found = super::blocking(move || {
        let Some(path) = newest_undo_file(&dir, &group)
            .map_err(|e| storage_error("cannot list the undo files", &e))?
        else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| storage_error("cannot read the undo file", &e))?;
        Ok(Some((path, text)))
    })
    .await?;
    let Some((path, text)) = found else {
        return Err(HttpError::not_found(
            "no_reset_to_undo",
            format!("Group '{group_id}' has no executed reset left to undo."),
        ));
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let body = ResetOffsets {
        spec: ResetSpec::FromCsv(text),
        topics: Vec::new(),
        all_topics: false,
        execute: true,
    };
    let partitions = match plan(&ctx, &group_id, &body).await {
        Ok(p) => p,
        // A reset of partitions that had no offset before leaves an undo file with none.
        Err(e) if e.code == "invalid_body" => Vec::new(),
        Err(e) => return Err(e),
    };
    require_topics(&ctx, Operation::Read, &partitions)?;
    if !partitions.is_empty() {
        commit(&ctx, &group_id, &partitions).await?;
    }
    let undone = path.with_extension("csv.undone");
    super::blocking(move || {
        std::fs::rename(&path, &undone)
            .map_err(|e| storage_error("cannot mark the undo file applied", &e))
    })
    .await?;
    Ok(Json(ResetPlan {
        group_id,
        executed: true,
        partitions,
        undo_file: Some(format!("{UNDO_DIR}/{name}")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spec lands inside [log start, high watermark], whatever it asks.
    #[test]
    fn plans_are_clamped_to_the_log() {
        let plan =
            |spec: ResetSpec, current| plan_offset(&spec, current, 10, 50, Some(30), Some(5));
        assert_eq!(plan(ResetSpec::ToEarliest, Some(40)), 10);
        assert_eq!(plan(ResetSpec::ToLatest, Some(40)), 50);
        assert_eq!(plan(ResetSpec::ToOffset(70), None), 50);
        assert_eq!(plan(ResetSpec::ToOffset(3), None), 10);
        assert_eq!(plan(ResetSpec::ToOffset(20), None), 20);
        assert_eq!(plan(ResetSpec::ShiftBy(-35), Some(40)), 10);
        assert_eq!(plan(ResetSpec::ShiftBy(-5), Some(40)), 35);
        assert_eq!(plan(ResetSpec::ShiftBy(5), None), 15);
        assert_eq!(plan(ResetSpec::ShiftBy(i64::MAX), Some(40)), 50);
        assert_eq!(plan(ResetSpec::ToTimestamp(0), None), 30);
        assert_eq!(plan(ResetSpec::ToOffsets(Vec::new()), None), 10);
        // No record as recent as the time: the high watermark.
        assert_eq!(
            plan_offset(&ResetSpec::ToTimestamp(9), None, 10, 50, None, None),
            50
        );
    }

    /// The undo file reads back as the offsets it saved, and skips partitions that had
    /// none.
    #[test]
    fn undo_file_round_trips() {
        let plan = vec![
            PlannedOffset {
                topic: "a,b".into(),
                partition: 0,
                current: Some(7),
                new: 0,
            },
            PlannedOffset {
                topic: "c".into(),
                partition: 2,
                current: None,
                new: 0,
            },
            PlannedOffset {
                topic: "c".into(),
                partition: 3,
                current: Some(9),
                new: 0,
            },
        ];
        let text = undo_csv("g", "2026-12-06T06:00:00+00:00", &plan);
        assert!(text.starts_with("# committed offsets of group g"));
        assert_eq!(
            parse_offsets_csv(&text).unwrap(),
            vec![
                OffsetEntry {
                    topic: "a,b".into(),
                    partition: 0,
                    offset: 7
                },
                OffsetEntry {
                    topic: "c".into(),
                    partition: 3,
                    offset: 9
                },
            ]
        );
        assert!(parse_offsets_csv("# only a comment\n").is_err());
        assert!(parse_offsets_csv("t,x,1\n").unwrap_err().contains("line 1"));
    }

    /// File names keep groups apart, even ids that only differ by a character a file name
    /// cannot hold or by the separator.
    #[test]
    fn file_stems_are_distinct() {
        assert_eq!(file_stem("billing.v2_x"), "billing.v2_x");
        assert_ne!(file_stem("a/b"), file_stem("a_b"));
        assert!(!file_stem("a-b").contains('-'));
    }
}
