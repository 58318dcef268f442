//! Per-group metrics: each group's committed offset and lag on every partition it has
//! committed, asked of the group coordinator on each scrape (a ListGroups, then one
//! OffsetFetch for the groups), as an admin client would. The lag is the partition's high
//! watermark, read from its log at the same scrape, minus the committed offset.
//!
//! Bounds: at most [`GROUPS_SCRAPED_MAX`] groups (by group id) and
//! [`GROUP_PARTITIONS_SCRAPED_MAX`] (group, partition) series per scrape; what is left out
//! is counted in `weir_groups_unreported` and `weir_group_partitions_unreported`.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, OffsetFetchRequest};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use weir_broker::state::BrokerState;
use weir_groups::{GroupRequest, GroupResponse};

/// The most groups one scrape asks about.
pub const GROUPS_SCRAPED_MAX: usize = 1_000;
/// The most (group, topic, partition) series one scrape reports.
pub const GROUP_PARTITIONS_SCRAPED_MAX: usize = 10_000;
/// The ListGroups and OffsetFetch versions the scrape speaks to the coordinator: the
/// newest, where OffsetFetch asks for many groups at once.
const LIST_GROUPS_VERSION: i16 = 5;
const OFFSET_FETCH_VERSION: i16 = 9;
/// How the coordinator sees the scrape in its logs.
const CLIENT_ID: &str = "weir-console";

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GroupPartitionLabels {
    group: String,
    topic: String,
    partition: i32,
}

#[derive(Debug)]
struct GroupPartitionReading {
    labels: GroupPartitionLabels,
    committed_offset: i64,
    /// `None` when the partition no longer exists.
    lag: Option<i64>,
}

/// One scrape's view of the groups, taken before encoding because asking the coordinator
/// is asynchronous and encoding is not.
#[derive(Debug, Default)]
pub struct GroupMetrics {
    readings: Vec<GroupPartitionReading>,
    groups_unreported: usize,
    partitions_unreported: usize,
}

impl GroupMetrics {
    /// Asks the coordinator for the committed offsets of the first [`GROUPS_SCRAPED_MAX`]
    /// groups; empty when the coordinator is not running (start-up, shutdown).
    pub async fn read(state: &Arc<BrokerState>) -> GroupMetrics {
        let Some(groups) = state.groups() else {
            return GroupMetrics::default();
        };
        let call =
            |version, request| groups.call(version, CLIENT_ID.to_string(), String::new(), request);
        // 1. The groups, by id.
        let Some(GroupResponse::ListGroups(listed)) = call(
            LIST_GROUPS_VERSION,
            GroupRequest::ListGroups(ListGroupsRequest::default()),
        )
        .await
        else {
            return GroupMetrics::default();
        };
        let mut ids: Vec<GroupId> = listed.groups.into_iter().map(|g| g.group_id).collect();
        ids.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let groups_unreported = ids.len().saturating_sub(GROUPS_SCRAPED_MAX);
        ids.truncate(GROUPS_SCRAPED_MAX);
        if ids.is_empty() {
            return GroupMetrics::default();
        }
        // 2. Every committed offset of those groups, in one request.
        let request = OffsetFetchRequest::default().with_groups(
            ids.into_iter()
                // No topics named: every partition the group has committed.
                .map(|id| {
                    OffsetFetchRequestGroup::default()
                        .with_group_id(id)
                        .with_topics(None)
                })
                .collect(),
        );
        let Some(GroupResponse::OffsetFetch(fetched)) =
            call(OFFSET_FETCH_VERSION, GroupRequest::OffsetFetch(request)).await
        else {
            return GroupMetrics::default();
        };
        // 3. The lag against each partition's high watermark now.
        let mut readings = Vec::new();
        let mut partitions_unreported = 0usize;
        for group in fetched.groups.iter().filter(|g| g.error_code == 0) {
            for topic in &group.topics {
                for p in topic.partitions.iter().filter(|p| p.error_code == 0) {
                    if p.committed_offset < 0 {
                        continue;
                    }
                    if readings.len() == GROUP_PARTITIONS_SCRAPED_MAX {
                        partitions_unreported += 1;
                        continue;
                    }
                    let topic_name = topic.name.0.to_string();
                    let lag = state
                        .partition(&topic_name, p.partition_index)
                        .map(|h| (h.log.lock().high_watermark() - p.committed_offset).max(0));
                    readings.push(GroupPartitionReading {
                        labels: GroupPartitionLabels {
                            group: group.group_id.0.to_string(),
                            topic: topic_name,
                            partition: p.partition_index,
                        },
                        committed_offset: p.committed_offset,
                        lag,
                    });
                }
            }
        }
        GroupMetrics {
            readings,
            groups_unreported,
            partitions_unreported,
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

impl Collector for GroupMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "weir_group_committed_offset",
            "Offset a consumer group has committed on a partition.",
            None,
            MetricType::Gauge,
        )?;
        for r in &self.readings {
            ConstGauge::new(r.committed_offset).encode(family.encode_family(&r.labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "weir_group_lag",
            "Records between a consumer group's committed offset and the partition's high watermark.",
            None,
            MetricType::Gauge,
        )?;
        for r in &self.readings {
            if let Some(lag) = r.lag {
                ConstGauge::new(lag).encode(family.encode_family(&r.labels)?)?;
            }
        }
        encode_count(
            &mut encoder,
            "weir_groups_unreported",
            "Consumer groups beyond the per-scrape cap, left out of the weir_group_ metrics.",
            self.groups_unreported,
        )?;
        encode_count(
            &mut encoder,
            "weir_group_partitions_unreported",
            "Committed partitions beyond the per-scrape cap, left out of the weir_group_ metrics.",
            self.partitions_unreported,
        )
    }
}
