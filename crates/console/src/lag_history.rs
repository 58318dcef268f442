//! The recent lag of consumer groups: per group, a bounded ring of samples (per partition:
//! committed offset, log start offset, high watermark, lag), taken every
//! [`LAG_SAMPLE_INTERVAL`] by a task the console starts. It feeds the group status
//! ([`crate::group_status`]) and the console's lag charts ([`LagHistory::samples`]).
//!
//! Bounds: [`LAG_HISTORY_SAMPLES_MAX`] samples per group (one hour at the default interval),
//! [`LAG_HISTORY_GROUPS_MAX`] groups (by group id), and [`LAG_HISTORY_PARTITIONS_MAX`]
//! (group, partition) pairs per sampling, so the memory stays under about
//! `LAG_HISTORY_SAMPLES_MAX × LAG_HISTORY_PARTITIONS_MAX × 100` bytes (some 36 MB) however
//! many groups and partitions there are. A group that disappears is forgotten at the next sample.
//!
//! The samples live in memory only: a restarted broker starts with empty rings.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_broker::state::BrokerState;
use weir_groups::inspect::{InspectQuery, Inspection};

use crate::group_lag::GroupLagReport;
use crate::group_metrics::wall_clock_ms;

/// How often the lag of every group is sampled.
pub const LAG_SAMPLE_INTERVAL: Duration = Duration::from_secs(10);
/// Samples kept per group: one hour at [`LAG_SAMPLE_INTERVAL`].
pub const LAG_HISTORY_SAMPLES_MAX: usize = 360;
/// Groups whose lag is kept (the first by group id).
pub const LAG_HISTORY_GROUPS_MAX: usize = 1_000;
/// (group, partition) pairs one sampling keeps, over all groups; pairs past it are left out
/// of that sample.
pub const LAG_HISTORY_PARTITIONS_MAX: usize = 1_000;

/// One partition of a group at one sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSample {
    pub topic: Arc<str>,
    pub partition: i32,
    pub committed_offset: i64,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// High watermark minus committed offset, at least 0.
    pub lag: i64,
}

/// One group at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSample {
    /// Broker wall-clock time, ms since the Unix epoch.
    pub at_ms: i64,
    /// The group had members (any protocol) at the sample.
    pub has_members: bool,
    /// The partitions the group has committed and that still exist, by (topic, partition).
    pub partitions: Vec<PartitionSample>,
}

/// The rings of every tracked group. Cheap to share: clone the `Arc`.
#[derive(Debug, Default)]
pub struct LagHistory {
    /// Held only to copy a sample in or out, never across an await.
    rings: Mutex<BTreeMap<String, VecDeque<GroupSample>>>,
}

impl LagHistory {
    pub fn new() -> Arc<LagHistory> {
        Arc::new(LagHistory::default())
    }

    /// The samples of `group_id`, oldest first; empty when it is not tracked.
    pub fn samples(&self, group_id: &str) -> Vec<GroupSample> {
        self.lock()
            .get(group_id)
            .map(|ring| ring.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The latest `n` samples of `group_id`, oldest first.
    pub fn latest(&self, group_id: &str, n: usize) -> Vec<GroupSample> {
        self.lock()
            .get(group_id)
            .map(|ring| {
                ring.iter()
                    .skip(ring.len().saturating_sub(n))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The groups tracked, by id.
    pub fn groups(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, VecDeque<GroupSample>>> {
        // A panic while holding the lock leaves whole samples behind: still usable.
        self.rings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds one sample per group from one reading of their lag (`report`) and of their
    /// members (`groups`); groups in neither are forgotten.
    pub fn record(&self, report: &GroupLagReport, groups: &Inspection) {
        let members: BTreeMap<&str, usize> = groups
            .groups
            .iter()
            .map(|g| (g.group_id.as_str(), g.member_count))
            .collect();
        let mut pairs = 0usize;
        let mut samples: BTreeMap<String, GroupSample> = BTreeMap::new();
        for g in report.groups.iter().take(LAG_HISTORY_GROUPS_MAX) {
            let mut partitions = Vec::new();
            for p in &g.partitions {
                let (Some(log_start_offset), Some(high_watermark), Some(lag)) =
                    (p.log_start_offset, p.high_watermark, p.lag_records)
                else {
                    continue;
                };
                if pairs == LAG_HISTORY_PARTITIONS_MAX {
                    break;
                }
                pairs += 1;
                partitions.push(PartitionSample {
                    topic: Arc::from(p.topic.as_str()),
                    partition: p.partition,
                    committed_offset: p.committed_offset,
                    log_start_offset,
                    high_watermark,
                    lag,
                });
            }
            let has_members = members.get(g.group_id.as_str()).is_some_and(|n| *n > 0);
            samples.insert(
                g.group_id.clone(),
                GroupSample {
                    at_ms: report.now_ms,
                    has_members,
                    partitions,
                },
            );
        }
        let mut rings = self.lock();
        rings.retain(|id, _| samples.contains_key(id));
        for (id, sample) in samples {
            let ring = rings.entry(id).or_default();
            if ring.len() == LAG_HISTORY_SAMPLES_MAX {
                ring.pop_front();
            }
            ring.push_back(sample);
        }
        debug_assert!(rings.len() <= LAG_HISTORY_GROUPS_MAX);
    }

    /// Reads every group's lag and members now and records a sample of each.
    pub async fn sample(&self, state: &Arc<BrokerState>) {
        let report = GroupLagReport::read_all(state, wall_clock_ms()).await;
        let groups = match state.groups() {
            Some(runtime) => {
                let query = InspectQuery {
                    group_ids: None,
                    include_members: false,
                };
                runtime.inspect(query, state.topic_image()).await
            }
            None => None,
        };
        // Without the coordinator there is nothing to say: keep what is known.
        let Some(groups) = groups else {
            return;
        };
        self.record(&report, &groups);
    }

    /// Samples every `interval` until the returned task is aborted (the console does so when
    /// it stops serving).
    pub fn spawn_sampler(
        self: &Arc<Self>,
        state: Arc<BrokerState>,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let history = Arc::clone(self);
        crate::throughput_history::every(interval, move || {
            let history = Arc::clone(&history);
            let state = Arc::clone(&state);
            async move { history.sample(&state).await }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group_lag::{GroupLag, PartitionLag};
    use weir_groups::inspect::GroupOverview;

    fn report(now_ms: i64, groups: &[(&str, i64)]) -> GroupLagReport {
        GroupLagReport {
            now_ms,
            groups: groups
                .iter()
                .map(|(id, committed)| GroupLag {
                    group_id: id.to_string(),
                    partitions: vec![PartitionLag {
                        topic: "t".into(),
                        partition: 0,
                        committed_offset: *committed,
                        log_start_offset: Some(0),
                        high_watermark: Some(100),
                        lag_records: Some(100 - committed),
                        first_unconsumed_timestamp_ms: None,
                        lag_seconds: None,
                    }],
                })
                .collect(),
            ..GroupLagReport::default()
        }
    }

    fn overview(id: &str, members: usize) -> GroupOverview {
        GroupOverview {
            group_id: id.into(),
            group_type: "classic",
            state: "Stable",
            state_since_ms: None,
            protocol_type: None,
            protocol: None,
            generation_id: 1,
            assignment_epoch: None,
            member_count: members,
            members: Vec::new(),
            waiting_for: Vec::new(),
            committed_partitions: 1,
            rebalances: Vec::new(),
            rebalance_counts: Vec::new(),
            last_rebalance_duration_ms: None,
            current_rebalance_ms: None,
        }
    }

    #[test]
    fn rings_keep_the_latest_samples_and_forget_vanished_groups() {
        // Goal: each group keeps at most LAG_HISTORY_SAMPLES_MAX samples, newest last, with
        // its members as seen; a group gone from the reading is dropped.
        let history = LagHistory::new();
        let groups = Inspection {
            groups: vec![overview("a", 2), overview("b", 0)],
            ..Inspection::default()
        };
        for i in 0..(LAG_HISTORY_SAMPLES_MAX as i64 + 10) {
            history.record(&report(i, &[("a", i % 100), ("b", 3)]), &groups);
        }
        let a = history.samples("a");
        assert_eq!(a.len(), LAG_HISTORY_SAMPLES_MAX);
        assert_eq!(a.first().unwrap().at_ms, 10);
        assert_eq!(a.last().unwrap().at_ms, LAG_HISTORY_SAMPLES_MAX as i64 + 9);
        assert!(a.iter().all(|s| s.has_members));
        assert!(history.samples("b").iter().all(|s| !s.has_members));
        assert_eq!(history.samples("b")[0].partitions[0].lag, 97);
        history.record(&report(10_000, &[("a", 5)]), &groups);
        assert_eq!(history.groups(), vec!["a".to_string()]);
        assert!(history.samples("b").is_empty());
    }

    #[test]
    fn one_sampling_keeps_at_most_the_partition_bound() {
        // Goal: however many groups and partitions there are, one sampling keeps at most
        // LAG_HISTORY_PARTITIONS_MAX (group, partition) pairs.
        let history = LagHistory::new();
        let two = report(1, &[("x", 1)]).groups[0].partitions[0].clone();
        let groups_count = LAG_HISTORY_PARTITIONS_MAX / 2 + 100;
        assert!(groups_count <= LAG_HISTORY_GROUPS_MAX);
        let reading = GroupLagReport {
            now_ms: 1,
            groups: (0..groups_count)
                .map(|i| GroupLag {
                    group_id: format!("g{i:05}"),
                    partitions: vec![
                        two.clone(),
                        PartitionLag {
                            partition: 1,
                            ..two.clone()
                        },
                    ],
                })
                .collect(),
            ..GroupLagReport::default()
        };
        history.record(&reading, &Inspection::default());
        let kept: usize = history
            .groups()
            .iter()
            .map(|g| history.samples(g)[0].partitions.len())
            .sum();
        assert_eq!(kept, LAG_HISTORY_PARTITIONS_MAX);
    }
}
