//! `weir groups`: list, describe (lag in records and in time), reset-offsets (plan, execute,
//! undo), delete, delete-offsets.
//!
//! Both protocols are read as Kafka's admin client reads them: a consumer group (KIP-848,
//! `group.protocol=consumer`) through ConsumerGroupDescribe, with its epochs, its assignor
//! and each member's owned and target partitions; a classic group through DescribeGroups.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use bytes::Buf;
use clap::{ArgGroup, Subcommand};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use kafka_protocol::ResponseError;
use serde_json::json;
use weir_console::api::offsets_reset::{
    parse_offsets_csv, plan_offset, undo_csv, PlannedOffset, ResetSpec,
};

use crate::client::sb;
use crate::cluster::{error_name, Cluster};
use crate::output::{self, emit, Format};

#[derive(Subcommand)]
pub enum GroupsCommand {
    /// List groups with their protocol (classic or consumer), state, assignor and members;
    /// for consumer-protocol groups also the group epoch, the target assignment epoch and how
    /// many members are still reconciling towards their target.
    ///
    /// Examples:
    ///   weir groups list
    ///   weir groups list --protocol consumer
    ///   weir groups list --state Stable --output json
    List {
        /// Only groups in this state (Empty, Stable, PreparingRebalance, CompletingRebalance,
        /// Assigning, Reconciling, Dead).
        #[arg(long)]
        state: Option<String>,
        /// Only groups of this protocol: classic or consumer.
        #[arg(long, value_name = "classic|consumer")]
        protocol: Option<String>,
    },
    /// Show a group: protocol, state, assignor and epochs, members and their partitions
    /// (for consumer-protocol groups each member's epoch and target partitions, and which
    /// members are still reconciling), committed offsets and lag per partition, and total
    /// lag per topic in records and in time.
    ///
    /// Examples:
    ///   weir groups describe orders-app
    ///   weir groups describe orders-app --watch
    ///   weir groups describe orders-app --output json
    Describe {
        group: String,
        /// Refresh every N seconds (default 2) until interrupted.
        #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2")]
        watch: Option<u64>,
    },
    /// Move a group's committed offsets. Shows the plan and changes nothing without --execute;
    /// refuses while the group has active members. Every executed reset saves the previous
    /// offsets to a file and prints the command that restores them.
    ///
    /// Examples:
    ///   weir groups reset-offsets orders-app --topic orders --to-earliest
    ///   weir groups reset-offsets orders-app --topic orders:0,1 --shift-by -100 --execute
    ///   weir groups reset-offsets orders-app --topic orders --to-datetime 2026-11-24T09:00:00Z --execute
    ///   weir groups reset-offsets orders-app --topic orders --by-duration PT1H --execute
    ///   weir groups reset-offsets orders-app --from-file orders-app.offsets-20261124T100000.csv --execute
    #[command(group(ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime", "by_duration", "shift_by", "from_file"])))]
    ResetOffsets {
        group: String,
        /// TOPIC or TOPIC:P1,P2 to reset; repeat for more.
        #[arg(long = "topic", value_name = "TOPIC[:PARTITIONS]")]
        topics: Vec<String>,
        /// Every topic the group has committed offsets for.
        #[arg(long)]
        all_topics: bool,
        #[arg(long)]
        to_earliest: bool,
        #[arg(long)]
        to_latest: bool,
        #[arg(long, value_name = "OFFSET")]
        to_offset: Option<i64>,
        /// ISO 8601 time, e.g. 2026-11-24T09:00:00Z (no zone: local time).
        #[arg(long, value_name = "DATETIME")]
        to_datetime: Option<String>,
        /// ISO 8601 duration back from now, e.g. PT1H, P1DT12H, PT30M.
        #[arg(long, value_name = "DURATION")]
        by_duration: Option<String>,
        /// Move each partition by N records (negative: back).
        #[arg(long, value_name = "N", allow_hyphen_values = true)]
        shift_by: Option<i64>,
        /// Offsets to restore, as written by an earlier reset (topic,partition,offset lines).
        #[arg(long, value_name = "FILE")]
        from_file: Option<PathBuf>,
        /// Apply the plan.
        #[arg(long)]
        execute: bool,
        /// Where an executed reset saves the previous offsets (default: GROUP.offsets-TIME.csv here).
        #[arg(long, value_name = "FILE")]
        backup: Option<PathBuf>,
    },
    /// Delete groups with no active members, with their committed offsets.
    ///
    /// Example:
    ///   weir groups delete orders-app-old
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Delete a group's committed offsets for some topics or partitions.
    ///
    /// Example:
    ///   weir groups delete-offsets orders-app --topic orders-old
    DeleteOffsets {
        group: String,
        /// TOPIC or TOPIC:P1,P2; repeat for more.
        #[arg(long = "topic", value_name = "TOPIC[:PARTITIONS]", required = true)]
        topics: Vec<String>,
    },
}

pub async fn run(cluster: &mut Cluster, format: Format, cmd: GroupsCommand) -> anyhow::Result<()> {
    match cmd {
        GroupsCommand::List { state, protocol } => list(cluster, format, state, protocol).await,
        GroupsCommand::Describe { group, watch } => match watch {
            None => describe(cluster, format, &group).await,
            Some(secs) => loop {
                print!("\x1b[2J\x1b[H");
                describe(cluster, format, &group).await?;
                println!("\nrefreshing every {secs} s; Ctrl-C to stop");
                tokio::time::sleep(Duration::from_secs(secs.max(1))).await;
            },
        },
        GroupsCommand::ResetOffsets {
            group,
            topics,
            all_topics,
            to_earliest,
            to_latest,
            to_offset,
            to_datetime,
            by_duration,
            shift_by,
            from_file,
            execute,
            backup,
        } => {
            let spec = if to_earliest {
                Spec::Earliest
            } else if to_latest {
                Spec::Latest
            } else if let Some(o) = to_offset {
                Spec::Offset(o)
            } else if let Some(d) = to_datetime {
                Spec::Time(parse_datetime(&d)?)
            } else if let Some(d) = by_duration {
                Spec::Time(now_ms() - parse_duration(&d)?)
            } else if let Some(n) = shift_by {
                Spec::Shift(n)
            } else if let Some(f) = from_file {
                Spec::File(read_offsets_file(&f)?)
            } else {
                bail!("say where to move the offsets: --to-earliest, --to-latest, --to-offset, --to-datetime, --by-duration, --shift-by or --from-file")
            };
            reset(
                cluster, format, &group, &topics, all_topics, spec, execute, backup,
            )
            .await
        }
        GroupsCommand::Delete { groups } => delete(cluster, &groups).await,
        GroupsCommand::DeleteOffsets { group, topics } => {
            delete_offsets(cluster, &group, &topics).await
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------- reading a group

pub struct MemberInfo {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    /// topic -> partitions the member holds (for a classic group, when its protocol type
    /// is "consumer").
    pub assignment: BTreeMap<String, Vec<i32>>,
    /// Consumer protocol only: the member's epoch.
    pub member_epoch: Option<i32>,
    /// Consumer protocol only: topic -> partitions the member is heading for.
    pub target: Option<BTreeMap<String, Vec<i32>>>,
    /// Consumer protocol only: "consumer", or "classic" for a classic member of a consumer
    /// group.
    pub member_type: Option<&'static str>,
    pub subscribed_topics: Vec<String>,
    pub subscribed_regex: Option<String>,
}

impl MemberInfo {
    /// Whether a consumer-protocol member is still moving towards its target: behind the
    /// group's target assignment epoch, or holding other partitions than its target.
    pub fn reconciling(&self, assignment_epoch: Option<i32>) -> bool {
        match (self.member_epoch, assignment_epoch, &self.target) {
            (Some(epoch), Some(target_epoch), Some(target)) => {
                epoch < target_epoch || *target != self.assignment
            }
            _ => false,
        }
    }
}

/// The group protocol (Kafka's `group.protocol`) of a consumer group (KIP-848).
pub const PROTOCOL_CONSUMER: &str = "consumer";
/// The group protocol of a classic group.
pub const PROTOCOL_CLASSIC: &str = "classic";

pub struct GroupInfo {
    pub state: String,
    /// "consumer" (KIP-848) or "classic".
    pub group_protocol: &'static str,
    /// A classic group's protocol type ("consumer", "connect", ...); "consumer" for a
    /// consumer group.
    pub protocol_type: String,
    /// The assignor: a classic group's chosen protocol, a consumer group's server assignor.
    pub protocol: String,
    pub coordinator: i32,
    pub members: Vec<MemberInfo>,
    /// (topic, partition) -> committed offset
    pub committed: BTreeMap<(String, i32), i64>,
    /// Consumer protocol only: the group epoch and the epoch of its target assignment.
    pub group_epoch: Option<i32>,
    pub assignment_epoch: Option<i32>,
}

impl GroupInfo {
    pub fn reconciling_members(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.reconciling(self.assignment_epoch))
            .count()
    }
}

fn decode_assignment(bytes: &bytes::Bytes) -> BTreeMap<String, Vec<i32>> {
    let mut b = bytes.clone();
    if b.len() < 2 {
        return BTreeMap::new();
    }
    let version = b.get_i16();
    match ConsumerProtocolAssignment::decode(&mut b, version.clamp(0, 3)) {
        Ok(a) => a
            .assigned_partitions
            .into_iter()
            .map(|t| (t.topic.to_string(), t.partitions))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

async fn committed_offsets(
    cluster: &mut Cluster,
    coordinator: i32,
    group: &str,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let address = cluster
        .brokers
        .get(&coordinator)
        .cloned()
        .ok_or_else(|| anyhow!("coordinator {coordinator} is not in the metadata"))?;
    let conn = cluster.conn(&address).await?;
    let v = conn.version::<OffsetFetchRequest>()?;
    let req = if v >= 8 {
        OffsetFetchRequest::default().with_groups(vec![
            offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(sb(group)))
                .with_topics(None),
        ])
    } else {
        OffsetFetchRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_topics(None)
    };
    let resp = conn.call_at(&req, v).await?;
    // Version 8 and later answer per group; earlier versions answer at the top level. The
    // crate has a type for each shape, so each is flattened to (topic, partition, offset).
    let (error_code, rows): (i16, Vec<(String, i32, i64)>) = if v >= 8 {
        let g = resp
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("the coordinator did not answer for group '{group}'"))?;
        let rows = g.topics.into_iter().flat_map(|t| {
            let name = t.name.to_string();
            t.partitions
                .into_iter()
                .map(move |p| (name.clone(), p.partition_index, p.committed_offset))
        });
        (g.error_code, rows.collect())
    } else {
        let rows = resp.topics.into_iter().flat_map(|t| {
            let name = t.name.to_string();
            t.partitions
                .into_iter()
                .map(move |p| (name.clone(), p.partition_index, p.committed_offset))
        });
        (resp.error_code, rows.collect())
    };
    if error_code != 0 {
        bail!(
            "cannot read the committed offsets of group '{group}': {}",
            error_name(error_code)
        );
    }
    Ok(rows
        .into_iter()
        .filter(|r| r.2 >= 0)
        .map(|(topic, partition, offset)| ((topic, partition), offset))
        .collect())
}

/// Topic -> partitions of a ConsumerGroupDescribe assignment.
fn consumer_assignment(
    a: &consumer_group_describe_response::Assignment,
) -> BTreeMap<String, Vec<i32>> {
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for t in &a.topic_partitions {
        let ps = out.entry(t.topic_name.to_string()).or_default();
        ps.extend(t.partitions.iter().copied());
        ps.sort_unstable();
    }
    out
}

/// Kafka's member types in ConsumerGroupDescribe v1.
fn member_type_name(code: i8) -> Option<&'static str> {
    match code {
        0 => Some(PROTOCOL_CLASSIC),
        1 => Some(PROTOCOL_CONSUMER),
        _ => None,
    }
}

/// Consumer groups described by their coordinator, by group id: those that are consumer
/// groups; a classic or unknown group is left out (Kafka answers GROUP_ID_NOT_FOUND for
/// them), as is everything when the broker has no ConsumerGroupDescribe.
async fn describe_consumer_groups(
    cluster: &mut Cluster,
    coordinator: i32,
    groups: &[String],
) -> anyhow::Result<BTreeMap<String, GroupInfo>> {
    let mut out = BTreeMap::new();
    let address = cluster
        .brokers
        .get(&coordinator)
        .cloned()
        .ok_or_else(|| anyhow!("coordinator {coordinator} is not in the metadata"))?;
    if groups.is_empty()
        || cluster
            .conn(&address)
            .await?
            .version::<ConsumerGroupDescribeRequest>()
            .is_err()
    {
        return Ok(out);
    }
    for chunk in groups.chunks(DESCRIBE_GROUPS_PER_REQUEST_MAX) {
        let req = ConsumerGroupDescribeRequest::default()
            .with_group_ids(chunk.iter().map(|g| GroupId(sb(g))).collect());
        let resp = cluster.call_on(coordinator, &req).await?;
        for g in resp.groups {
            if g.error_code == ResponseError::GroupIdNotFound.code() {
                continue;
            }
            if g.error_code != 0 {
                bail!(
                    "cannot describe group '{}': {}",
                    g.group_id.as_str(),
                    error_name(g.error_code)
                );
            }
            let members = g
                .members
                .iter()
                .map(|m| MemberInfo {
                    member_id: m.member_id.to_string(),
                    instance_id: m.instance_id.as_ref().map(|s| s.to_string()),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assignment: consumer_assignment(&m.assignment),
                    member_epoch: Some(m.member_epoch),
                    target: Some(consumer_assignment(&m.target_assignment)),
                    member_type: member_type_name(m.member_type),
                    subscribed_topics: m
                        .subscribed_topic_names
                        .iter()
                        .map(|t| t.to_string())
                        .collect(),
                    subscribed_regex: m
                        .subscribed_topic_regex
                        .as_ref()
                        .filter(|r| !r.is_empty())
                        .map(|s| s.to_string()),
                })
                .collect();
            out.insert(
                g.group_id.to_string(),
                GroupInfo {
                    state: g.group_state.to_string(),
                    group_protocol: PROTOCOL_CONSUMER,
                    protocol_type: PROTOCOL_CONSUMER.to_string(),
                    protocol: g.assignor_name.to_string(),
                    coordinator,
                    members,
                    committed: BTreeMap::new(),
                    group_epoch: Some(g.group_epoch),
                    assignment_epoch: Some(g.assignment_epoch),
                },
            );
        }
    }
    Ok(out)
}

/// Groups named in one describe request, so a list of many groups is read in bounded
/// requests.
const DESCRIBE_GROUPS_PER_REQUEST_MAX: usize = 100;

/// A group's protocol, state, members and committed offsets; a clear error when it does
/// not exist. A consumer group is read with ConsumerGroupDescribe, a classic one (or any
/// group, from a broker without that API) with DescribeGroups.
pub async fn read_group(cluster: &mut Cluster, group: &str) -> anyhow::Result<GroupInfo> {
    let coordinator = cluster.coordinator(group).await?;
    if let Some(mut g) = describe_consumer_groups(cluster, coordinator, &[group.to_string()])
        .await?
        .remove(group)
    {
        g.committed = committed_offsets(cluster, coordinator, group).await?;
        return Ok(g);
    }
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(sb(group))]);
    let resp = cluster.call_on(coordinator, &req).await?;
    let g = resp
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("the coordinator did not describe group '{group}'"))?;
    let not_found = g.error_code == ResponseError::GroupIdNotFound.code();
    if g.error_code != 0 && !not_found {
        bail!(
            "cannot describe group '{group}': {}",
            error_name(g.error_code)
        );
    }
    let committed = committed_offsets(cluster, coordinator, group).await?;
    if (not_found || g.group_state.as_str() == "Dead")
        && g.members.is_empty()
        && committed.is_empty()
    {
        bail!("group '{group}' does not exist; list groups with `weir groups list`");
    }
    let consumer = g.protocol_type.as_str() == "consumer" || g.protocol_type.is_empty();
    let members = g
        .members
        .iter()
        .map(|m| MemberInfo {
            member_id: m.member_id.to_string(),
            instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            assignment: if consumer {
                decode_assignment(&m.member_assignment)
            } else {
                BTreeMap::new()
            },
            member_epoch: None,
            target: None,
            member_type: None,
            subscribed_topics: Vec::new(),
            subscribed_regex: None,
        })
        .collect();
    Ok(GroupInfo {
        state: g.group_state.to_string(),
        group_protocol: PROTOCOL_CLASSIC,
        protocol_type: g.protocol_type.to_string(),
        protocol: g.protocol_data.to_string(),
        coordinator,
        members,
        committed,
        group_epoch: None,
        assignment_epoch: None,
    })
}

/// One group as ListGroups names it, with what its coordinator's describe adds.
struct ListedGroup {
    group: String,
    state: String,
    protocol_type: String,
    group_protocol: &'static str,
    /// From the describe; None when the group was gone by then.
    details: Option<GroupInfo>,
}

/// Classic groups described by their coordinator (DescribeGroups), by group id.
async fn describe_classic_groups(
    cluster: &mut Cluster,
    coordinator: i32,
    groups: &[String],
) -> anyhow::Result<BTreeMap<String, GroupInfo>> {
    let mut out = BTreeMap::new();
    for chunk in groups.chunks(DESCRIBE_GROUPS_PER_REQUEST_MAX) {
        let req = DescribeGroupsRequest::default()
            .with_groups(chunk.iter().map(|g| GroupId(sb(g))).collect());
        let resp = cluster.call_on(coordinator, &req).await?;
        for g in resp.groups {
            if g.error_code != 0 {
                continue; // gone since it was listed
            }
            let members = g
                .members
                .iter()
                .map(|m| MemberInfo {
                    member_id: m.member_id.to_string(),
                    instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assignment: BTreeMap::new(),
                    member_epoch: None,
                    target: None,
                    member_type: None,
                    subscribed_topics: Vec::new(),
                    subscribed_regex: None,
                })
                .collect();
            out.insert(
                g.group_id.to_string(),
                GroupInfo {
                    state: g.group_state.to_string(),
                    group_protocol: PROTOCOL_CLASSIC,
                    protocol_type: g.protocol_type.to_string(),
                    protocol: g.protocol_data.to_string(),
                    coordinator,
                    members,
                    committed: BTreeMap::new(),
                    group_epoch: None,
                    assignment_epoch: None,
                },
            );
        }
    }
    Ok(out)
}

/// "classic" or "consumer" as the user may write it.
fn parse_protocol(s: &str) -> anyhow::Result<&'static str> {
    match s.to_ascii_lowercase().as_str() {
        PROTOCOL_CLASSIC => Ok(PROTOCOL_CLASSIC),
        PROTOCOL_CONSUMER => Ok(PROTOCOL_CONSUMER),
        _ => bail!("'{s}' is not a group protocol; write classic or consumer"),
    }
}

async fn list(
    cluster: &mut Cluster,
    format: Format,
    state: Option<String>,
    protocol: Option<String>,
) -> anyhow::Result<()> {
    let protocol = protocol.as_deref().map(parse_protocol).transpose()?;
    let brokers: Vec<i32> = cluster.brokers.keys().copied().collect();
    let mut groups: Vec<ListedGroup> = Vec::new();
    for b in brokers {
        let req = ListGroupsRequest::default()
            .with_states_filter(state.iter().map(|s| sb(s)).collect())
            .with_types_filter(protocol.iter().map(|p| sb(p)).collect());
        let resp = cluster.call_on(b, &req).await?;
        if resp.error_code != 0 {
            bail!(
                "cannot list groups on broker {b}: {}",
                error_name(resp.error_code)
            );
        }
        let mut listed: Vec<ListedGroup> = resp
            .groups
            .into_iter()
            .map(|g| ListedGroup {
                group: g.group_id.to_string(),
                state: g.group_state.to_string(),
                protocol_type: g.protocol_type.to_string(),
                // Brokers before ListGroups v5 have classic groups only.
                group_protocol: if g.group_type.eq_ignore_ascii_case(PROTOCOL_CONSUMER) {
                    PROTOCOL_CONSUMER
                } else {
                    PROTOCOL_CLASSIC
                },
                details: None,
            })
            .collect();
        // Brokers before ListGroups v4 ignore the state filter, before v5 the type filter.
        if let Some(s) = &state {
            listed.retain(|g| g.state.eq_ignore_ascii_case(s));
        }
        if let Some(p) = protocol {
            listed.retain(|g| g.group_protocol == p);
        }
        // Each broker lists the groups it coordinates, so it describes them too.
        let ids = |p: &str| -> Vec<String> {
            listed
                .iter()
                .filter(|g| g.group_protocol == p)
                .map(|g| g.group.clone())
                .collect()
        };
        let (consumer_ids, classic_ids) = (ids(PROTOCOL_CONSUMER), ids(PROTOCOL_CLASSIC));
        let mut details = describe_consumer_groups(cluster, b, &consumer_ids).await?;
        details.extend(describe_classic_groups(cluster, b, &classic_ids).await?);
        for g in &mut listed {
            g.details = details.remove(&g.group);
            if let Some(d) = &g.details {
                // The describe is newer than the listing.
                g.state = d.state.clone();
            }
        }
        groups.extend(listed);
    }
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    let value = json!(groups
        .iter()
        .map(|g| {
            let d = g.details.as_ref();
            json!({
                "group": g.group, "state": g.state, "protocol_type": g.protocol_type,
                "group_protocol": g.group_protocol,
                "assignor": d.map(|d| d.protocol.clone()).filter(|a| !a.is_empty()),
                "members": d.map(|d| d.members.len()),
                "group_epoch": d.and_then(|d| d.group_epoch),
                "assignment_epoch": d.and_then(|d| d.assignment_epoch),
                "reconciling_members": d.filter(|d| d.group_epoch.is_some()).map(|d| d.reconciling_members()),
            })
        })
        .collect::<Vec<_>>());
    emit(format, &value, || {
        if groups.is_empty() {
            println!("no consumer groups");
            return;
        }
        let mut tab = output::table(&[
            "GROUP",
            "STATE",
            "PROTOCOL",
            "ASSIGNOR",
            "MEMBERS",
            "GROUP-EPOCH",
            "TARGET-EPOCH",
            "RECONCILING",
        ]);
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        for g in &groups {
            let d = g.details.as_ref();
            tab.add_row(vec![
                g.group.clone(),
                g.state.clone(),
                protocol_label(g.group_protocol, &g.protocol_type),
                or_dash(d.map(|d| d.protocol.clone()).filter(|a| !a.is_empty())),
                or_dash(d.map(|d| d.members.len().to_string())),
                or_dash(d.and_then(|d| d.group_epoch).map(|e| e.to_string())),
                or_dash(d.and_then(|d| d.assignment_epoch).map(|e| e.to_string())),
                or_dash(
                    d.filter(|d| d.group_epoch.is_some())
                        .map(|d| d.reconciling_members().to_string()),
                ),
            ]);
        }
        println!("{tab}");
    })
}

/// "consumer", "classic", or "classic (connect)" for a classic group of another protocol
/// type than "consumer".
fn protocol_label(group_protocol: &str, protocol_type: &str) -> String {
    if group_protocol == PROTOCOL_CLASSIC
        && !protocol_type.is_empty()
        && protocol_type != PROTOCOL_CONSUMER
    {
        format!("{group_protocol} ({protocol_type})")
    } else {
        group_protocol.to_string()
    }
}

/// Partitions as "topic:0,1 other:2", or "-" for none.
fn partitions_text(a: &BTreeMap<String, Vec<i32>>) -> String {
    let text = a
        .iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(t, ps)| {
            format!(
                "{t}:{}",
                ps.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    if text.is_empty() {
        "-".into()
    } else {
        text
    }
}

/// The partitions among `keys` whose group offset was committed inside a transaction that
/// has not ended yet: a stable OffsetFetch (v7+) answers UNSTABLE_OFFSET_COMMIT for them.
/// Empty when the broker is too old to say.
async fn pending_in_transactions(
    cluster: &mut Cluster,
    coordinator: i32,
    group: &str,
    keys: &BTreeSet<(String, i32)>,
) -> anyhow::Result<BTreeSet<(String, i32)>> {
    let address = cluster
        .brokers
        .get(&coordinator)
        .cloned()
        .ok_or_else(|| anyhow!("coordinator {coordinator} is not in the metadata"))?;
    let conn = cluster.conn(&address).await?;
    let v = conn.version::<OffsetFetchRequest>()?;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in keys {
        by_topic.entry(t).or_default().push(*p);
    }
    if v < 7 || by_topic.is_empty() {
        return Ok(BTreeSet::new());
    }
    let unstable = ResponseError::UnstableOffsetCommit.code();
    let mut out = BTreeSet::new();
    if v >= 8 {
        let topics = by_topic
            .iter()
            .map(|(t, ps)| {
                offset_fetch_request::OffsetFetchRequestTopics::default()
                    .with_name(TopicName(sb(t)))
                    .with_partition_indexes(ps.clone())
            })
            .collect();
        let req = OffsetFetchRequest::default()
            .with_require_stable(true)
            .with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(sb(group)))
                    .with_topics(Some(topics)),
            ]);
        let resp = conn.call_at(&req, v).await?;
        for g in resp.groups {
            for t in g.topics {
                out.extend(
                    t.partitions
                        .iter()
                        .filter(|p| p.error_code == unstable)
                        .map(|p| (t.name.to_string(), p.partition_index)),
                );
            }
        }
    } else {
        let topics = by_topic
            .iter()
            .map(|(t, ps)| {
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(TopicName(sb(t)))
                    .with_partition_indexes(ps.clone())
            })
            .collect();
        let req = OffsetFetchRequest::default()
            .with_require_stable(true)
            .with_group_id(GroupId(sb(group)))
            .with_topics(Some(topics));
        let resp = conn.call_at(&req, v).await?;
        for t in resp.topics {
            out.extend(
                t.partitions
                    .iter()
                    .filter(|p| p.error_code == unstable)
                    .map(|p| (t.name.to_string(), p.partition_index)),
            );
        }
    }
    Ok(out)
}

struct PartitionLag {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    log_end: i64,
    lag: Option<i64>,
    /// How old the oldest unconsumed record is, in ms.
    behind_ms: Option<i64>,
    owner: Option<usize>,
    /// An offset committed in a transaction still open is waiting for its commit.
    pending: bool,
}

async fn describe(cluster: &mut Cluster, format: Format, group: &str) -> anyhow::Result<()> {
    let g = read_group(cluster, group).await?;
    // Partitions: those assigned to members and those with committed offsets.
    let mut owner: BTreeMap<(String, i32), usize> = BTreeMap::new();
    for (i, m) in g.members.iter().enumerate() {
        for (t, ps) in &m.assignment {
            for p in ps {
                owner.insert((t.clone(), *p), i);
            }
        }
    }
    let keys: BTreeSet<(String, i32)> = owner
        .keys()
        .cloned()
        .chain(g.committed.keys().cloned())
        .collect();
    let pending = pending_in_transactions(cluster, g.coordinator, group, &keys).await?;
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (t, p) in &keys {
        by_topic.entry(t.clone()).or_default().push(*p);
    }
    let now = now_ms();
    let mut rows = Vec::new();
    for (topic, ps) in &by_topic {
        let info = match cluster.topic(topic).await {
            Ok(i) => i,
            Err(_) => continue, // a deleted topic's leftover offsets
        };
        let ps: Vec<i32> = ps
            .iter()
            .copied()
            .filter(|p| info.partitions.iter().any(|x| x.partition == *p))
            .collect();
        let ends = cluster.list_offsets(&info, &ps, -1).await?;
        for p in ps {
            let log_end = ends.get(&p).map(|x| x.0).unwrap_or(-1);
            let committed = g.committed.get(&(topic.clone(), p)).copied();
            let lag = committed.map(|c| (log_end - c).max(0));
            let mut behind_ms = None;
            if let (Some(c), Some(l)) = (committed, lag) {
                if l > 0 {
                    if let Ok((recs, _)) = cluster.fetch(&info, p, c, 64 << 10, 0).await {
                        behind_ms = recs.first().map(|r| (now - r.timestamp).max(0));
                    }
                } else {
                    behind_ms = Some(0);
                }
            }
            let pending = pending.contains(&(topic.clone(), p));
            rows.push(PartitionLag {
                topic: topic.clone(),
                partition: p,
                committed,
                log_end,
                lag,
                behind_ms,
                owner: owner.get(&(topic.clone(), p)).copied(),
                pending,
            });
        }
    }
    let mut totals: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for r in &rows {
        let e = totals.entry(&r.topic).or_insert((0, 0));
        e.0 += r.lag.unwrap_or(0);
        e.1 = e.1.max(r.behind_ms.unwrap_or(0));
    }
    let coordinator_addr = cluster
        .brokers
        .get(&g.coordinator)
        .cloned()
        .unwrap_or_default();
    let reconciling = g.reconciling_members();
    let value = json!({
        "group": group, "state": g.state, "group_protocol": g.group_protocol,
        "protocol_type": g.protocol_type, "assignor": g.protocol,
        "group_epoch": g.group_epoch, "assignment_epoch": g.assignment_epoch,
        "reconciling_members": g.group_epoch.map(|_| reconciling),
        "coordinator": {"id": g.coordinator, "address": coordinator_addr},
        "members": g.members.iter().map(|m| {
            let mut v = json!({
                "member_id": m.member_id, "group_instance_id": m.instance_id, "client_id": m.client_id, "host": m.host,
                "assignment": m.assignment,
            });
            if g.group_protocol == PROTOCOL_CONSUMER {
                v["member_epoch"] = json!(m.member_epoch);
                v["member_type"] = json!(m.member_type);
                v["target_assignment"] = json!(m.target);
                v["reconciling"] = json!(m.reconciling(g.assignment_epoch));
                v["subscribed_topics"] = json!(m.subscribed_topics);
                v["subscribed_topic_regex"] = json!(m.subscribed_regex);
            }
            v
        }).collect::<Vec<_>>(),
        "partitions": rows.iter().map(|r| json!({
            "topic": r.topic, "partition": r.partition, "committed_offset": r.committed, "log_end_offset": r.log_end,
            "lag": r.lag, "behind_ms": r.behind_ms, "member_id": r.owner.map(|i| g.members[i].member_id.clone()),
            "pending_in_transaction": r.pending,
        })).collect::<Vec<_>>(),
        "lag": totals.iter().map(|(t, (n, ms))| json!({"topic": t, "records": n, "behind_ms": ms})).collect::<Vec<_>>(),
    });
    emit(format, &value, || {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let assignor = if g.protocol.is_empty() {
            "-"
        } else {
            &g.protocol
        };
        match (g.group_epoch, g.assignment_epoch) {
            (Some(epoch), Some(target_epoch)) => println!(
                "group {group}  protocol {}  state {}  assignor {assignor}  group epoch {epoch}  target assignment epoch {target_epoch}  coordinator {} ({})  {} member{}, {reconciling} reconciling",
                g.group_protocol,
                g.state,
                g.coordinator,
                coordinator_addr,
                g.members.len(),
                plural(g.members.len()),
            ),
            _ => println!(
                "group {group}  protocol {}  state {}  assignor {assignor}  coordinator {} ({})  {} member{}",
                protocol_label(g.group_protocol, &g.protocol_type),
                g.state,
                g.coordinator,
                coordinator_addr,
                g.members.len(),
                plural(g.members.len()),
            ),
        }
        for (t, (n, ms)) in &totals {
            if *n == 0 {
                println!("lag on {t}: none, caught up");
            } else {
                println!("lag on {t}: {n} records, {} behind", output::age(*ms));
            }
        }
        if !g.members.is_empty() && g.group_protocol == PROTOCOL_CONSUMER {
            // Owned against target: a member whose two differ (or whose epoch is behind the
            // target assignment's) is still reconciling.
            let mut tab = output::table(&[
                "MEMBER",
                "INSTANCE",
                "CLIENT-ID",
                "HOST",
                "EPOCH",
                "PARTITIONS",
                "TARGET",
                "RECONCILING",
            ]);
            for m in &g.members {
                tab.add_row(vec![
                    m.member_id.clone(),
                    m.instance_id.clone().unwrap_or_else(|| "-".into()),
                    m.client_id.clone(),
                    m.host.clone(),
                    m.member_epoch
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "-".into()),
                    partitions_text(&m.assignment),
                    m.target
                        .as_ref()
                        .map(partitions_text)
                        .unwrap_or_else(|| "-".into()),
                    if m.reconciling(g.assignment_epoch) {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                ]);
            }
            println!("{tab}");
        } else if !g.members.is_empty() {
            let mut tab = output::table(&["MEMBER", "INSTANCE", "CLIENT-ID", "HOST", "PARTITIONS"]);
            for m in &g.members {
                tab.add_row(vec![
                    m.member_id.clone(),
                    m.instance_id.clone().unwrap_or_else(|| "-".into()),
                    m.client_id.clone(),
                    m.host.clone(),
                    partitions_text(&m.assignment),
                ]);
            }
            println!("{tab}");
        }
        if !rows.is_empty() {
            let mut tab = output::table(&[
                "TOPIC",
                "PARTITION",
                "COMMITTED",
                "LOG-END",
                "LAG",
                "BEHIND",
                "MEMBER",
            ]);
            for r in &rows {
                let committed = r
                    .committed
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into());
                tab.add_row(vec![
                    r.topic.clone(),
                    r.partition.to_string(),
                    // A newer offset waits in an open transaction.
                    if r.pending {
                        format!("{committed} (+ pending in a transaction)")
                    } else {
                        committed
                    },
                    r.log_end.to_string(),
                    r.lag.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                    r.behind_ms.map(output::age).unwrap_or_else(|| "-".into()),
                    r.owner
                        .map(|i| g.members[i].member_id.clone())
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
            println!("{tab}");
        }
    })
}

// ---------------------------------------------------------------- resetting offsets

enum Spec {
    Earliest,
    Latest,
    Offset(i64),
    Time(i64),
    Shift(i64),
    File(Vec<(String, i32, i64)>),
}

/// "2026-11-24T09:00:00Z", "2026-11-24T09:00:00.000+01:00", or without zone in local time.
pub fn parse_datetime(s: &str) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d",
    ] {
        let parsed = chrono::NaiveDateTime::parse_from_str(s, f).or_else(|_| {
            chrono::NaiveDate::parse_from_str(s, f)
                .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight"))
        });
        if let Ok(naive) = parsed {
            use chrono::TimeZone;
            if let Some(t) = chrono::Local.from_local_datetime(&naive).earliest() {
                return Ok(t.timestamp_millis());
            }
        }
    }
    bail!("'{s}' is not an ISO 8601 time; write it as e.g. 2026-11-24T09:00:00Z or 2026-11-24T09:00:00 (local time)")
}

/// ISO 8601 durations: P1D, PT1H, PT30M, PT45S, P1DT12H, PT1.5S.
fn parse_duration(s: &str) -> anyhow::Result<i64> {
    let bad =
        || anyhow!("'{s}' is not an ISO 8601 duration; write it as e.g. PT1H, PT30M or P1DT12H");
    let rest = s
        .strip_prefix('P')
        .or_else(|| s.strip_prefix('p'))
        .ok_or_else(bad)?;
    let (mut ms, mut in_time, mut num) = (0f64, false, String::new());
    for c in rest.chars() {
        match c.to_ascii_uppercase() {
            'T' => in_time = true,
            '0'..='9' | '.' => num.push(c),
            u => {
                let n: f64 = num.parse().map_err(|_| bad())?;
                num.clear();
                ms += n * match (u, in_time) {
                    ('W', false) => 604_800_000.0,
                    ('D', false) => 86_400_000.0,
                    ('H', true) => 3_600_000.0,
                    ('M', true) => 60_000.0,
                    ('S', true) => 1_000.0,
                    _ => return Err(bad()),
                };
            }
        }
    }
    if !num.is_empty() || ms <= 0.0 {
        return Err(bad());
    }
    Ok(ms as i64)
}

/// Offsets to restore, in the format an executed reset saves (the HTTP API's undo files
/// share it).
fn read_offsets_file(path: &PathBuf) -> anyhow::Result<Vec<(String, i32, i64)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read offsets file {}", path.display()))?;
    let entries = parse_offsets_csv(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(entries
        .into_iter()
        .map(|e| (e.topic, e.partition, e.offset))
        .collect())
}

/// "orders" or "orders:0,2" -> (topic, Some(partitions)).
pub fn parse_topic_spec(s: &str) -> anyhow::Result<(String, Option<Vec<i32>>)> {
    match s.split_once(':') {
        None => Ok((s.to_string(), None)),
        Some((t, ps)) => {
            let parts: Result<Vec<i32>, _> =
                ps.split(',').map(|p| p.trim().parse::<i32>()).collect();
            Ok((
                t.to_string(),
                Some(
                    parts.map_err(|_| {
                        anyhow!("'{s}' is not TOPIC:P1,P2 (partitions are numbers)")
                    })?,
                ),
            ))
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn reset(
    cluster: &mut Cluster,
    format: Format,
    group: &str,
    topics: &[String],
    all_topics: bool,
    spec: Spec,
    execute: bool,
    backup: Option<PathBuf>,
) -> anyhow::Result<()> {
    // A group that has never committed and has no members is fine to reset: Kafka creates it.
    let g = match read_group(cluster, group).await {
        Ok(g) => g,
        Err(e) if e.to_string().contains("does not exist") => {
            let coordinator = cluster.coordinator(group).await?;
            GroupInfo {
                state: "Empty".into(),
                group_protocol: PROTOCOL_CLASSIC,
                protocol_type: String::new(),
                protocol: String::new(),
                coordinator,
                members: Vec::new(),
                committed: BTreeMap::new(),
                group_epoch: None,
                assignment_epoch: None,
            }
        }
        Err(e) => return Err(e),
    };
    if !g.members.is_empty() {
        bail!("group '{group}' has {} active member{} (state {}); stop its consumers first, offsets can only be reset while the group is empty",
              g.members.len(), if g.members.len() == 1 { "" } else { "s" }, g.state);
    }
    // The partitions to move.
    let mut targets: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    if let Spec::File(entries) = &spec {
        for (t, p, _) in entries {
            targets.entry(t.clone()).or_default().insert(*p);
        }
    } else {
        if topics.is_empty() && !all_topics {
            bail!("name what to reset: --topic TOPIC (or TOPIC:P1,P2), or --all-topics");
        }
        if all_topics {
            for (t, p) in g.committed.keys() {
                targets.entry(t.clone()).or_default().insert(*p);
            }
        }
        for s in topics {
            let (t, ps) = parse_topic_spec(s)?;
            let info = cluster.topic(&t).await?;
            let all: Vec<i32> = info.partitions.iter().map(|p| p.partition).collect();
            for p in ps.unwrap_or_else(|| all.clone()) {
                if !all.contains(&p) {
                    bail!(
                        "topic '{t}' has no partition {p}; it has partitions 0 to {}",
                        all.len() - 1
                    );
                }
                targets.entry(t.clone()).or_default().insert(p);
            }
        }
        if targets.is_empty() {
            bail!("group '{group}' has no committed offsets; name the topics with --topic");
        }
    }
    // Plan: (topic, partition, current, new), each new offset as the HTTP API plans it.
    let reset_spec = match &spec {
        Spec::Earliest => ResetSpec::ToEarliest,
        Spec::Latest => ResetSpec::ToLatest,
        Spec::Offset(o) => ResetSpec::ToOffset(*o),
        Spec::Shift(n) => ResetSpec::ShiftBy(*n),
        Spec::Time(ts) => ResetSpec::ToTimestamp(*ts),
        Spec::File(_) => ResetSpec::ToOffsets(Vec::new()),
    };
    let mut plan = Vec::new();
    for (t, ps) in &targets {
        let info = cluster.topic(t).await?;
        let ps: Vec<i32> = ps.iter().copied().collect();
        let earliest = cluster.list_offsets(&info, &ps, -2).await?;
        let latest = cluster.list_offsets(&info, &ps, -1).await?;
        let at_time = match &spec {
            Spec::Time(ts) => Some(cluster.list_offsets(&info, &ps, *ts).await?),
            _ => None,
        };
        for p in ps {
            let (lo, hi) = (earliest[&p].0, latest[&p].0);
            let current = g.committed.get(&(t.clone(), p)).copied();
            let at_time = at_time
                .as_ref()
                .and_then(|m| m.get(&p))
                .map(|x| x.0)
                .filter(|o| *o >= 0);
            let given = match &spec {
                Spec::File(entries) => entries
                    .iter()
                    .find(|(et, ep, _)| et == t && *ep == p)
                    .map(|e| e.2),
                _ => None,
            };
            let new = plan_offset(&reset_spec, current, lo, hi, at_time, given);
            plan.push((t.clone(), p, current, new));
        }
    }
    let value = json!({
        "group": group, "executed": execute,
        "partitions": plan.iter().map(|(t, p, c, n)| json!({"topic": t, "partition": p, "current": c, "new": n})).collect::<Vec<_>>(),
    });
    emit(format, &value, || {
        let mut tab = output::table(&["TOPIC", "PARTITION", "CURRENT", "NEW"]);
        for (t, p, c, n) in &plan {
            tab.add_row(vec![
                t.clone(),
                p.to_string(),
                c.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                n.to_string(),
            ]);
        }
        println!("{tab}");
    })?;
    if !execute {
        if format == Format::Table {
            println!("plan only: nothing changed; add --execute to apply it");
        }
        return Ok(());
    }
    // Save what is being replaced, so the reset can be undone.
    let backup = backup.unwrap_or_else(|| {
        PathBuf::from(format!(
            "{group}.offsets-{}.csv",
            chrono::Local::now().format("%Y%m%dT%H%M%S")
        ))
    });
    let mut f = std::fs::File::create(&backup).with_context(|| {
        format!(
            "cannot write the backup file {}; pass --backup FILE somewhere writable",
            backup.display()
        )
    })?;
    let previous: Vec<PlannedOffset> = plan
        .iter()
        .map(|(t, p, c, n)| PlannedOffset {
            topic: t.clone(),
            partition: *p,
            current: *c,
            new: *n,
        })
        .collect();
    f.write_all(undo_csv(group, &chrono::Local::now().to_rfc3339(), &previous).as_bytes())?;
    let uncommitted = plan.iter().filter(|(_, _, c, _)| c.is_none()).count();
    drop(f);
    commit_offsets(
        cluster,
        g.coordinator,
        group,
        &plan
            .iter()
            .map(|(t, p, _, n)| (t.clone(), *p, *n))
            .collect::<Vec<_>>(),
    )
    .await?;
    let undo = format!(
        "weir groups reset-offsets {group} --from-file {} --execute",
        backup.display()
    );
    if format == Format::Table {
        println!(
            "offsets of group '{group}' reset for {} partition{}",
            plan.len(),
            if plan.len() == 1 { "" } else { "s" }
        );
        println!(
            "previous offsets saved to {}; undo with:\n  {undo}",
            backup.display()
        );
        if uncommitted > 0 {
            println!("({uncommitted} partition{} had no committed offset before; undo leaves {} at the new position)", if uncommitted == 1 { "" } else { "s" }, if uncommitted == 1 { "it" } else { "them" });
        }
    } else {
        eprintln!(
            "previous offsets saved to {}; undo with: {undo}",
            backup.display()
        );
    }
    Ok(())
}

/// Commits offsets for a group with no members, as admin tools do (generation -1).
async fn commit_offsets(
    cluster: &mut Cluster,
    coordinator: i32,
    group: &str,
    offsets: &[(String, i32, i64)],
) -> anyhow::Result<()> {
    let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for (t, p, o) in offsets {
        by_topic.entry(t).or_default().push((*p, *o));
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(sb(""))
        .with_topics(
            by_topic
                .iter()
                .map(|(t, ps)| {
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(TopicName(sb(t)))
                        .with_partitions(
                            ps.iter()
                                .map(|(p, o)| {
                                    offset_commit_request::OffsetCommitRequestPartition::default()
                                        .with_partition_index(*p)
                                        .with_committed_offset(*o)
                                        .with_committed_leader_epoch(-1)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let resp = cluster.call_on(coordinator, &req).await?;
    for t in resp.topics {
        for p in t.partitions {
            if p.error_code != 0 {
                bail!(
                    "commit for {}[{}] in group '{group}' failed: {}",
                    t.name.as_str(),
                    p.partition_index,
                    error_name(p.error_code)
                );
            }
        }
    }
    Ok(())
}

async fn delete(cluster: &mut Cluster, groups: &[String]) -> anyhow::Result<()> {
    let mut failed = None;
    for group in groups {
        let coordinator = cluster.coordinator(group).await?;
        let resp = cluster
            .call_on(
                coordinator,
                &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb(group))]),
            )
            .await?;
        for r in resp.results {
            match ResponseError::try_from_code(r.error_code) {
                None => println!("group '{group}' deleted"),
                Some(ResponseError::GroupIdNotFound) => {
                    failed = Some(format!(
                        "group '{group}' does not exist; list groups with `weir groups list`"
                    ))
                }
                Some(ResponseError::NonEmptyGroup) => {
                    failed = Some(format!(
                        "group '{group}' has active members; stop its consumers before deleting it"
                    ))
                }
                Some(_) => {
                    failed = Some(format!(
                        "cannot delete group '{group}': {}",
                        error_name(r.error_code)
                    ))
                }
            }
        }
    }
    match failed {
        Some(f) => bail!(f),
        None => Ok(()),
    }
}

async fn delete_offsets(
    cluster: &mut Cluster,
    group: &str,
    topics: &[String],
) -> anyhow::Result<()> {
    let g = read_group(cluster, group).await?;
    let mut req_topics = Vec::new();
    for s in topics {
        let (t, ps) = parse_topic_spec(s)?;
        let ps = match ps {
            Some(ps) => ps,
            None => {
                let committed: Vec<i32> = g
                    .committed
                    .keys()
                    .filter(|(ct, _)| *ct == t)
                    .map(|(_, p)| *p)
                    .collect();
                if committed.is_empty() {
                    match cluster.topic(&t).await {
                        Ok(info) => info.partitions.iter().map(|p| p.partition).collect(),
                        Err(e) => return Err(e),
                    }
                } else {
                    committed
                }
            }
        };
        req_topics.push(
            offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(TopicName(sb(&t)))
                .with_partitions(
                    ps.iter()
                        .map(|p| {
                            offset_delete_request::OffsetDeleteRequestPartition::default()
                                .with_partition_index(*p)
                        })
                        .collect(),
                ),
        );
    }
    let resp = cluster
        .call_on(
            g.coordinator,
            &OffsetDeleteRequest::default()
                .with_group_id(GroupId(sb(group)))
                .with_topics(req_topics),
        )
        .await?;
    if resp.error_code != 0 {
        bail!(
            "cannot delete offsets of group '{group}': {}",
            error_name(resp.error_code)
        );
    }
    let mut n = 0;
    for t in resp.topics {
        for p in t.partitions {
            match ResponseError::try_from_code(p.error_code) {
                None => n += 1,
                Some(ResponseError::GroupSubscribedToTopic) => bail!("group '{group}' is consuming topic '{}'; stop its consumers before deleting its offsets", t.name.as_str()),
                Some(_) => bail!("cannot delete the offset of {}[{}] in group '{group}': {}", t.name.as_str(), p.partition_index, error_name(p.error_code)),
            }
        }
    }
    println!(
        "deleted {n} committed offset{} of group '{group}'",
        if n == 1 { "" } else { "s" }
    );
    Ok(())
}
