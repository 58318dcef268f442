//! What the HTTP side (metrics, REST API, web console) asks of groups, beyond what Kafka's
//! DescribeGroups and ConsumerGroupDescribe say: one overview per group with its state,
//! protocol, generation or epoch, members, and rebalances (the latest ones and counters by
//! trigger, see [`crate::rebalances`]). Not a Kafka API: the runtime offers it to the console
//! only. Read-only: asking changes nothing, so it emits no records.

use crate::coordinator::Coordinator;
use crate::embedded_protocol::parse_assignment;
use crate::group::Group;
use crate::rebalances::{Rebalance, RebalanceTrigger};
use crate::topics::TopicImage;

/// The most groups one inspection returns when it asks for all of them (by group id); the
/// rest are counted in [`Inspection::groups_left_out`].
pub const INSPECT_GROUPS_MAX: usize = 1_000;
/// The most groups one inspection may name; names past it are ignored and counted.
pub const INSPECT_GROUP_IDS_MAX: usize = INSPECT_GROUPS_MAX;

/// Which groups to inspect, and how much of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InspectQuery {
    /// `None`: every group (the first [`INSPECT_GROUPS_MAX`] by id).
    pub group_ids: Option<Vec<String>>,
    /// List each group's members (with their partitions). Off for metrics, which need only
    /// the count.
    pub include_members: bool,
}

/// One member, whatever the group's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberOverview {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Partitions assigned to it, by topic name (sorted). For a classic group whose
    /// protocol type is not `consumer` the assignment is the client's own format: `None`.
    /// A consumer group's topic missing from the image (deleted) is named by its id.
    pub assigned: Option<Vec<(String, Vec<i32>)>>,
    /// Consumer groups: the member's epoch; classic groups: the group's generation.
    pub member_epoch: i32,
    /// The member speaks the classic protocol (in a consumer group, during a migration).
    pub classic_protocol: bool,
}

/// One group as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupOverview {
    pub group_id: String,
    /// `classic` or `consumer`.
    pub group_type: &'static str,
    /// As Kafka names it: `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Stable`,
    /// `Dead`; for consumer groups `Empty`, `Assigning`, `Reconciling`, `Stable`.
    pub state: &'static str,
    /// Classic groups: when the current state began (ms); `None` for consumer groups.
    pub state_since_ms: Option<i64>,
    /// Classic: the protocol type (`consumer`, `connect`…); consumer groups: `consumer`.
    pub protocol_type: Option<String>,
    /// Classic: the protocol chosen (the client-side assignor, `range`…); consumer groups:
    /// the server-side assignor most members ask for.
    pub protocol: Option<String>,
    /// Classic: the generation; consumer groups: the group epoch.
    pub generation_id: i32,
    /// Consumer groups: the epoch of the target assignment.
    pub assignment_epoch: Option<i32>,
    pub member_count: usize,
    /// Empty unless the query asked for members.
    pub members: Vec<MemberOverview>,
    /// Classic: members a running join phase still waits for.
    pub waiting_for: Vec<String>,
    /// Partitions the group has committed offsets for.
    pub committed_partitions: usize,
    /// The latest rebalances, oldest first.
    pub rebalances: Vec<Rebalance>,
    /// Rebalances started since the coordinator started, by trigger (only triggers seen).
    pub rebalance_counts: Vec<(RebalanceTrigger, u64)>,
    /// Duration of the last rebalance that completed.
    pub last_rebalance_duration_ms: Option<i64>,
    /// How long the running rebalance has run at the inspection, if one runs.
    pub current_rebalance_ms: Option<i64>,
}

/// The answer to an [`InspectQuery`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inspection {
    /// When the coordinator answered (its clock).
    pub now_ms: i64,
    /// By group id; a named group that does not exist is left out.
    pub groups: Vec<GroupOverview>,
    /// Groups beyond the bounds, not inspected.
    pub groups_left_out: usize,
}

impl Coordinator {
    /// Overviews of the groups `query` names (or all of them, bounded), at `now_ms`. `image`
    /// names the topics of consumer groups' assignments.
    pub fn inspect(&self, now_ms: i64, query: &InspectQuery, image: &TopicImage) -> Inspection {
        let mut out = Inspection {
            now_ms,
            ..Inspection::default()
        };
        let overview = |g: &Group| overview(g, now_ms, query.include_members, image);
        match &query.group_ids {
            None => {
                out.groups = self
                    .groups()
                    .take(INSPECT_GROUPS_MAX)
                    .map(overview)
                    .collect();
                out.groups_left_out = self.groups.len().saturating_sub(INSPECT_GROUPS_MAX);
            }
            Some(ids) => {
                let mut ids: Vec<&String> = ids.iter().collect();
                ids.sort();
                ids.dedup();
                out.groups_left_out = ids.len().saturating_sub(INSPECT_GROUP_IDS_MAX);
                out.groups = ids
                    .into_iter()
                    .take(INSPECT_GROUP_IDS_MAX)
                    .filter_map(|id| self.group(id))
                    .map(overview)
                    .collect();
            }
        }
        out
    }
}

fn overview(g: &Group, now_ms: i64, include_members: bool, image: &TopicImage) -> GroupOverview {
    let log = g.rebalances();
    let mut o = GroupOverview {
        group_id: g.group_id.clone(),
        group_type: g.group_type(),
        state: g.state_name(),
        state_since_ms: None,
        protocol_type: None,
        protocol: None,
        generation_id: 0,
        assignment_epoch: None,
        member_count: 0,
        members: Vec::new(),
        waiting_for: Vec::new(),
        committed_partitions: g.offsets.len(),
        rebalances: log.history().cloned().collect(),
        rebalance_counts: log.counts().iter().map(|(t, n)| (*t, *n)).collect(),
        last_rebalance_duration_ms: log.last_completed_duration_ms(),
        current_rebalance_ms: log.current().map(|r| r.duration_ms(now_ms)),
    };
    match &g.modern {
        Some(cg) => {
            o.protocol_type = Some("consumer".to_string());
            o.protocol = cg.preferred_assignor();
            o.generation_id = cg.group_epoch;
            o.assignment_epoch = Some(cg.assignment_epoch);
            o.member_count = cg.members.len();
            if include_members {
                o.members = cg
                    .members
                    .values()
                    .map(|m| MemberOverview {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        assigned: Some(named(&m.assigned, image)),
                        member_epoch: m.member_epoch,
                        classic_protocol: m.uses_classic_protocol(),
                    })
                    .collect();
            }
        }
        None => {
            o.state_since_ms = Some(g.state_since_ms);
            o.protocol_type = g.protocol_type.clone();
            o.protocol = g.protocol_name.clone();
            o.generation_id = g.generation_id;
            o.member_count = g.members.len();
            o.waiting_for = g.waiting_for();
            if include_members {
                let consumer = g.protocol_type.as_deref() == Some("consumer");
                o.members = g
                    .members
                    .values()
                    .map(|m| MemberOverview {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        assigned: if consumer {
                            parse_assignment(&m.assignment).map(sorted)
                        } else {
                            None
                        },
                        member_epoch: g.generation_id,
                        classic_protocol: true,
                    })
                    .collect();
            }
        }
    }
    o
}

/// A consumer group's assignment (by topic id) by topic name, sorted.
fn named(a: &crate::consumer_records::Assignment, image: &TopicImage) -> Vec<(String, Vec<i32>)> {
    sorted(
        a.iter()
            .map(|(id, ps)| {
                let name = image
                    .name_of(*id)
                    .map_or_else(|| id.to_string(), str::to_string);
                (name, ps.iter().copied().collect())
            })
            .collect(),
    )
}

fn sorted(mut v: Vec<(String, Vec<i32>)>) -> Vec<(String, Vec<i32>)> {
    for (_, ps) in &mut v {
        ps.sort_unstable();
    }
    v.sort();
    v
}
