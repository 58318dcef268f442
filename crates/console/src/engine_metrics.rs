//! The storage engine's own counters (`weir_cluster_object_puts_total`, …), read from the
//! engine on each scrape. The local engine has none; a cluster broker's are the
//! object-store requests and PostgreSQL commits behind its produce and fetch traffic.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use weir_broker::state::BrokerState;
use weir_log::store::EngineCounter;

/// One reading of the engine's counters, taken when the scrape's registry is built.
#[derive(Debug)]
pub struct EngineMetrics(Vec<EngineCounter>);

impl EngineMetrics {
    pub fn read(state: &BrokerState) -> EngineMetrics {
        EngineMetrics(state.engine_counters())
    }
}

impl Collector for EngineMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for c in &self.0 {
            let unit = c.bytes.then_some(Unit::Bytes);
            ConstCounter::new(c.value).encode(encoder.encode_descriptor(
                &format!("weir_{}", c.name),
                c.help,
                unit.as_ref(),
                MetricType::Counter,
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_encoded_with_their_unit_and_total() {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(EngineMetrics(vec![
            EngineCounter {
                name: "cluster_object_puts",
                help: "Objects.",
                bytes: false,
                value: 3,
            },
            EngineCounter {
                name: "cluster_object_put",
                help: "Bytes.",
                bytes: true,
                value: 4096,
            },
        ])));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("\nweir_cluster_object_puts_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains("\nweir_cluster_object_put_bytes_total 4096\n"),
            "{text}"
        );
    }
}
