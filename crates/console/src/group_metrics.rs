//! Per-group metrics, encoded from one [`GroupLagReport`] taken at the scrape (see
//! [`crate::group_lag`] for how the lag is read, and its bounds): each group's committed
//! offset, lag in records and lag in time on every partition it has committed, and per group
//! its largest lag in time and its total lag in records.
//!
//! Series caps: the report covers at most [`crate::group_lag::GROUPS_READ_MAX`] groups and
//! [`crate::group_lag::GROUP_PARTITIONS_READ_MAX`] (group, partition) pairs; what is left out is counted in
//! `weir_groups_unreported` and `weir_group_partitions_unreported`.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use weir_broker::state::BrokerState;
use weir_groups::inspect::{InspectQuery, Inspection};
use weir_groups::rebalances::RebalanceTrigger;

use crate::group_lag::GroupLagReport;
use crate::group_status::{group_status, GroupStatus, STATUS_WINDOW_SAMPLES};
use crate::lag_history::LagHistory;

/// The states a group of each protocol can be in, as Kafka names them: the values of the
/// `state` label of `weir_group_state`.
const CLASSIC_STATES: [&str; 5] = [
    "Empty",
    "PreparingRebalance",
    "CompletingRebalance",
    "Stable",
    "Dead",
];
const CONSUMER_STATES: [&str; 4] = ["Empty", "Assigning", "Reconciling", "Stable"];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GroupPartitionLabels {
    group: String,
    topic: String,
    partition: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GroupStateLabels {
    group: String,
    state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GroupStatusLabels {
    group: String,
    status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GroupReasonLabels {
    group: String,
    reason: String,
}

/// One scrape's view of the groups, taken before encoding because asking the coordinator
/// is asynchronous and encoding is not.
#[derive(Debug, Default)]
pub struct GroupMetrics {
    lag: GroupLagReport,
    groups: Inspection,
    /// Each group the lag history tracks, with its status now.
    statuses: Vec<(String, GroupStatus)>,
}

/// Wall-clock time now, in ms since the Unix epoch.
pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl GroupMetrics {
    /// Reads the groups' lag now; empty when the coordinator is not running (start-up,
    /// shutdown).
    pub async fn read(state: &Arc<BrokerState>, lag_history: &LagHistory) -> GroupMetrics {
        let lag = GroupLagReport::read_all(state, wall_clock_ms()).await;
        let query = InspectQuery {
            group_ids: None,
            include_members: false,
        };
        let groups = match state.groups() {
            Some(runtime) => runtime
                .inspect(query, state.topic_image())
                .await
                .unwrap_or_default(),
            None => Inspection::default(),
        };
        let statuses = lag_history
            .groups()
            .into_iter()
            .map(|id| {
                let window = lag_history.latest(&id, STATUS_WINDOW_SAMPLES);
                (id, group_status(&window))
            })
            .collect();
        GroupMetrics {
            lag,
            groups,
            statuses,
        }
    }

    /// The metrics of readings already taken.
    pub fn from_readings(
        lag: GroupLagReport,
        groups: Inspection,
        statuses: Vec<(String, GroupStatus)>,
    ) -> GroupMetrics {
        GroupMetrics {
            lag,
            groups,
            statuses,
        }
    }
}

fn encode_count(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    count: usize,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(i64::try_from(count).unwrap_or(i64::MAX)).encode(encoder.encode_descriptor(
        name,
        help,
        None,
        MetricType::Gauge,
    )?)
}

impl GroupMetrics {
    /// Every (group, partition) pair of the report with its labels.
    fn pairs(
        &self,
    ) -> impl Iterator<Item = (GroupPartitionLabels, &crate::group_lag::PartitionLag)> {
        self.lag.groups.iter().flat_map(|g| {
            g.partitions.iter().map(move |p| {
                (
                    GroupPartitionLabels {
                        group: g.group_id.clone(),
                        topic: p.topic.clone(),
                        partition: p.partition,
                    },
                    p,
                )
            })
        })
    }
}

impl GroupMetrics {
    /// The families read from the coordinator's overviews: state, members, generation,
    /// rebalances.
    fn encode_overviews(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let group = |id: &str| GroupLabels {
            group: id.to_string(),
        };
        let mut family = encoder.encode_descriptor(
            "weir_group_state",
            "1 for the state a group is in, 0 for the other states of its protocol.",
            None,
            MetricType::Gauge,
        )?;
        for g in &self.groups.groups {
            let states: &[&str] = if g.group_type == "consumer" {
                &CONSUMER_STATES
            } else {
                &CLASSIC_STATES
            };
            for state in states {
                let labels = GroupStateLabels {
                    group: g.group_id.clone(),
                    state: state.to_string(),
                };
                ConstGauge::new(i64::from(*state == g.state))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "weir_group_members",
            "Members of a group now.",
            None,
            MetricType::Gauge,
        )?;
        for g in &self.groups.groups {
            let members = i64::try_from(g.member_count).unwrap_or(i64::MAX);
            ConstGauge::new(members).encode(family.encode_family(&group(&g.group_id))?)?;
        }
        let mut family = encoder.encode_descriptor(
            "weir_group_generation",
            "A classic group's generation, or a consumer group's group epoch.",
            None,
            MetricType::Gauge,
        )?;
        for g in &self.groups.groups {
            ConstGauge::new(i64::from(g.generation_id))
                .encode(family.encode_family(&group(&g.group_id))?)?;
        }
        let mut family = encoder.encode_descriptor(
            "weir_group_rebalances",
            "Rebalances a group started since the broker started, by what started them.",
            None,
            MetricType::Counter,
        )?;
        for g in &self.groups.groups {
            for (trigger, count) in &g.rebalance_counts {
                let labels = GroupReasonLabels {
                    group: g.group_id.clone(),
                    reason: RebalanceTrigger::name(*trigger).to_string(),
                };
                ConstCounter::new(*count).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "weir_group_last_rebalance_duration",
            "How long a group's last completed rebalance took.",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for g in &self.groups.groups {
            if let Some(ms) = g.last_rebalance_duration_ms {
                ConstGauge::new(ms as f64 / 1000.0)
                    .encode(family.encode_family(&group(&g.group_id))?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "weir_group_status",
            "1 for a group's status judged from its recent lag (ok, warning, stalled, stopped, error), 0 for the others.",
            None,
            MetricType::Gauge,
        )?;
        for (id, status) in &self.statuses {
            for s in GroupStatus::ALL {
                let labels = GroupStatusLabels {
                    group: id.clone(),
                    status: s.name().to_string(),
                };
                ConstGauge::new(i64::from(s == *status)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

impl Collector for GroupMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "weir_group_committed_offset",
            "Offset a consumer group has committed on a partition.",
            None,
            MetricType::Gauge,
        )?;
        for (labels, p) in self.pairs() {
            ConstGauge::new(p.committed_offset).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "weir_group_lag",
            "Records between a consumer group's committed offset and the partition's high watermark.",
            None,
            MetricType::Gauge,
        )?;
        for (labels, p) in self.pairs() {
            if let Some(lag) = p.lag_records {
                ConstGauge::new(lag).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "weir_group_lag",
            "Time the first record a consumer group has not consumed has waited (now minus its timestamp); 0 with no lag.",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for (labels, p) in self.pairs() {
            if let Some(seconds) = p.lag_seconds {
                ConstGauge::new(seconds).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "weir_group_max_lag",
            "The largest lag in time of a consumer group over the partitions it has committed.",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for g in &self.lag.groups {
            if let Some(seconds) = g.max_lag_seconds() {
                let labels = GroupLabels {
                    group: g.group_id.clone(),
                };
                ConstGauge::new(seconds).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "weir_group_total_lag",
            "The sum of a consumer group's lag in records over the partitions it has committed.",
            None,
            MetricType::Gauge,
        )?;
        for g in self.lag.groups.iter().filter(|g| !g.partitions.is_empty()) {
            let labels = GroupLabels {
                group: g.group_id.clone(),
            };
            ConstGauge::new(g.total_lag_records()).encode(family.encode_family(&labels)?)?;
        }
        self.encode_overviews(&mut encoder)?;
        encode_count(
            &mut encoder,
            "weir_groups_unreported",
            "Consumer groups beyond the per-scrape cap, left out of the weir_group_ metrics.",
            self.lag.groups_unreported.max(self.groups.groups_left_out),
        )?;
        encode_count(
            &mut encoder,
            "weir_group_partitions_unreported",
            "Committed partitions beyond the per-scrape cap, left out of the weir_group_ metrics.",
            self.lag.partitions_unreported,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group_lag::{GroupLag, PartitionLag};

    #[test]
    fn seconds_families_carry_their_unit_in_the_name() {
        // Goal: the lag in time is named `weir_group_lag_seconds`, its per-group maximum
        // `weir_group_max_lag_seconds`, and the records lag keeps its name beside them.
        let lag = GroupLagReport {
            now_ms: 10_000,
            groups: vec![GroupLag {
                group_id: "g".into(),
                partitions: vec![PartitionLag {
                    topic: "t".into(),
                    partition: 0,
                    committed_offset: 2,
                    log_start_offset: Some(0),
                    high_watermark: Some(5),
                    lag_records: Some(3),
                    first_unconsumed_timestamp_ms: Some(7_500),
                    lag_seconds: Some(2.5),
                }],
            }],
            ..GroupLagReport::default()
        };
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(GroupMetrics::from_readings(
            lag,
            Inspection::default(),
            Vec::new(),
        )));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("weir_group_lag_seconds{group=\"g\",topic=\"t\",partition=\"0\"} 2.5"),
            "{text}"
        );
        assert!(
            text.contains("weir_group_max_lag_seconds{group=\"g\"} 2.5"),
            "{text}"
        );
        assert!(
            text.contains("weir_group_lag{group=\"g\",topic=\"t\",partition=\"0\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("weir_group_total_lag{group=\"g\"} 3"),
            "{text}"
        );
    }
}
