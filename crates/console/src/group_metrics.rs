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
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use weir_broker::state::BrokerState;

use crate::group_lag::GroupLagReport;

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

/// One scrape's view of the groups, taken before encoding because asking the coordinator
/// is asynchronous and encoding is not.
#[derive(Debug, Default)]
pub struct GroupMetrics {
    lag: GroupLagReport,
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
    pub async fn read(state: &Arc<BrokerState>) -> GroupMetrics {
        GroupMetrics {
            lag: GroupLagReport::read_all(state, wall_clock_ms()).await,
        }
    }

    /// The metrics of a report already taken.
    pub fn from_report(lag: GroupLagReport) -> GroupMetrics {
        GroupMetrics { lag }
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
        encode_count(
            &mut encoder,
            "weir_groups_unreported",
            "Consumer groups beyond the per-scrape cap, left out of the weir_group_ metrics.",
            self.lag.groups_unreported,
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
        registry.register_collector(Box::new(GroupMetrics::from_report(lag)));
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
