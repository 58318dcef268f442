//! Per-partition metrics, read on each scrape: offsets and sizes from what the storage
//! engine holds in memory (`LogAdmin::status`), so they can never disagree with it, and the
//! traffic counters the broker keeps per partition (records and bytes produced, bytes
//! fetched).
//!
//! At most [`PARTITIONS_SCRAPED_MAX`] partitions are reported, in (topic, partition) order,
//! which bounds both the time a scrape holds partition locks and the series a Prometheus
//! server must store. `weir_partitions_unreported` says how many were left out.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use weir_broker::state::{partition_of, BrokerState};
use weir_broker::traffic::PartitionTraffic;

/// The most partitions one scrape reports.
pub const PARTITIONS_SCRAPED_MAX: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: i32,
}

/// One partition's values, read under its lock and released before any encoding.
struct PartitionReading {
    labels: PartitionLabels,
    log_start_offset: i64,
    high_watermark: i64,
    last_stable_offset: i64,
    size_bytes: i64,
    segments: i64,
    records_in: u64,
    bytes_in: u64,
    bytes_out: u64,
}

pub struct PartitionMetrics {
    state: Arc<BrokerState>,
}

impl std::fmt::Debug for PartitionMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PartitionMetrics")
    }
}

impl PartitionMetrics {
    pub fn new(state: Arc<BrokerState>) -> PartitionMetrics {
        PartitionMetrics { state }
    }

    /// Reads the first [`PARTITIONS_SCRAPED_MAX`] partitions in (topic, partition) order,
    /// and counts the rest.
    fn read(&self) -> (Vec<PartitionReading>, usize) {
        let mut topics = self.state.topics();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        let total: usize = topics.iter().map(|t| t.partitions.max(0) as usize).sum();
        let admin = self.state.log_admin();
        let readings: Vec<PartitionReading> = topics
            .iter()
            .flat_map(|t| (0..t.partitions).filter_map(move |i| partition_of(t, i)))
            .take(PARTITIONS_SCRAPED_MAX)
            .filter_map(|tp| {
                // A partition deleted since the catalog was read is left out.
                let status = admin.status(&tp)?;
                let traffic = self.state.traffic.get(tp.topic_id, tp.partition);
                let counter =
                    |read: fn(&PartitionTraffic) -> u64| traffic.as_deref().map_or(0, read);
                Some(PartitionReading {
                    log_start_offset: status.offsets.log_start_offset,
                    high_watermark: status.offsets.high_watermark,
                    last_stable_offset: status.offsets.last_stable_offset,
                    size_bytes: i64::try_from(status.size_bytes).unwrap_or(i64::MAX),
                    segments: i64::try_from(status.segment_count).unwrap_or(i64::MAX),
                    records_in: counter(PartitionTraffic::records_in),
                    bytes_in: counter(PartitionTraffic::bytes_in),
                    bytes_out: counter(PartitionTraffic::bytes_out),
                    labels: PartitionLabels {
                        topic: tp.topic,
                        partition: tp.partition,
                    },
                })
            })
            .collect();
        (readings, total.saturating_sub(PARTITIONS_SCRAPED_MAX))
    }
}

/// Encodes one gauge family with a sample per partition.
fn encode_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    readings: &[PartitionReading],
    value: fn(&PartitionReading) -> i64,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for r in readings {
        ConstGauge::new(value(r)).encode(family.encode_family(&r.labels)?)?;
    }
    Ok(())
}

/// Encodes one counter family with a sample per partition. The byte counters carry no
/// OpenMetrics unit: it would append `_bytes` to names that already say bytes.
fn encode_counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    readings: &[PartitionReading],
    value: fn(&PartitionReading) -> u64,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for r in readings {
        ConstCounter::new(value(r)).encode(family.encode_family(&r.labels)?)?;
    }
    Ok(())
}

impl Collector for PartitionMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (readings, unreported) = self.read();
        encode_family(
            &mut encoder,
            "weir_partition_log_start_offset",
            "First offset still in the partition's log.",
            None,
            &readings,
            |r| r.log_start_offset,
        )?;
        encode_family(
            &mut encoder,
            "weir_partition_high_watermark",
            "Offset after the last record consumers can read.",
            None,
            &readings,
            |r| r.high_watermark,
        )?;
        encode_family(
            &mut encoder,
            "weir_partition_last_stable_offset",
            "First offset of the earliest open transaction, or the high watermark.",
            None,
            &readings,
            |r| r.last_stable_offset,
        )?;
        encode_family(
            &mut encoder,
            "weir_partition_size",
            "Bytes of the partition's segment files.",
            Some(&Unit::Bytes),
            &readings,
            |r| r.size_bytes,
        )?;
        encode_family(
            &mut encoder,
            "weir_partition_segments",
            "Segments in the partition's log.",
            None,
            &readings,
            |r| r.segments,
        )?;
        encode_counters(
            &mut encoder,
            "weir_partition_records_in",
            "Records appended to the partition by producers since the broker started.",
            &readings,
            |r| r.records_in,
        )?;
        encode_counters(
            &mut encoder,
            "weir_partition_bytes_in",
            "Bytes of record batches appended to the partition by producers since the broker started.",
            &readings,
            |r| r.bytes_in,
        )?;
        encode_counters(
            &mut encoder,
            "weir_partition_bytes_out",
            "Bytes of record batches sent to consumers from the partition since the broker started.",
            &readings,
            |r| r.bytes_out,
        )?;
        let unreported_gauge = ConstGauge::new(i64::try_from(unreported).unwrap_or(i64::MAX));
        unreported_gauge.encode(encoder.encode_descriptor(
            "weir_partitions_unreported",
            "Partitions beyond the per-scrape cap, left out of the weir_partition_ metrics.",
            None,
            MetricType::Gauge,
        )?)?;
        Ok(())
    }
}
