//! The broker's own Prometheus metrics: requests, their duration, connections and bytes
//! on the wire. They are counted where requests are dispatched ([`crate::connection`]);
//! the `console` crate registers them with [`BrokerMetrics::register`] and encodes them
//! on each scrape. Per-partition values are not kept here: they are read from the logs
//! at scrape time.
//!
//! Every label set is bounded: `api` is one of the Kafka API keys weir decodes (about
//! fifty), and `version` one of the versions weir accepts for it (under twenty); requests
//! at other versions are not decoded, so never counted.

use std::fmt::Write as _;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use weir_wire::kafka_protocol::messages::ApiKey;

/// Bucket bounds of the request duration histogram: 0.1 ms doubling up to about 52 s,
/// which covers an in-memory ApiVersions and a Fetch long-poll alike.
const DURATION_BUCKET_FIRST_SECONDS: f64 = 0.0001;
const DURATION_BUCKETS_COUNT: u16 = 20;

/// A Kafka API as a label value, by its name in Kafka's protocol (`Produce`, `Fetch`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiLabel(pub ApiKey);

impl EncodeLabelValue for ApiLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        // The enum's variant names are Kafka's API names.
        write!(encoder, "{:?}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub api: ApiLabel,
    pub version: i16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ApiLabels {
    pub api: ApiLabel,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(
        DURATION_BUCKET_FIRST_SECONDS,
        2.0,
        DURATION_BUCKETS_COUNT,
    ))
}

/// The metric families. Cloning shares them: every clone counts into the same values.
#[derive(Debug, Clone)]
pub struct BrokerMetrics {
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<ApiLabels, Histogram, fn() -> Histogram>,
    connections_open: Gauge,
    connections_closed: Counter,
    bytes_received: Counter,
    bytes_sent: Counter,
}

impl Default for BrokerMetrics {
    fn default() -> BrokerMetrics {
        BrokerMetrics {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(duration_histogram),
            connections_open: Gauge::default(),
            connections_closed: Counter::default(),
            bytes_received: Counter::default(),
            bytes_sent: Counter::default(),
        }
    }
}

impl BrokerMetrics {
    /// Adds every family to `registry` under its `weir_` name.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "weir_requests",
            "Kafka requests received, by API and version",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "weir_request_duration",
            "Time from a request's arrival to its response being ready, by API",
            Unit::Seconds,
            self.request_duration.clone(),
        );
        registry.register(
            "weir_connections_open",
            "Client connections open now",
            self.connections_open.clone(),
        );
        registry.register(
            "weir_connections_closed",
            "Client connections closed since start",
            self.connections_closed.clone(),
        );
        registry.register(
            "weir_bytes_received",
            "Bytes of Kafka requests read, size prefixes included",
            self.bytes_received.clone(),
        );
        registry.register(
            "weir_bytes_sent",
            "Bytes of Kafka responses written, size prefixes included",
            self.bytes_sent.clone(),
        );
    }

    pub fn request_received(&self, api: ApiKey, version: i16, frame_bytes: usize) {
        self.requests
            .get_or_create(&RequestLabels {
                api: ApiLabel(api),
                version,
            })
            .inc();
        self.bytes_received.inc_by(frame_bytes as u64);
    }

    /// Counts the bytes of a frame not counted as a request (one that could not be decoded),
    /// so the byte counter matches what the socket delivered.
    pub fn bytes_received(&self, bytes: usize) {
        self.bytes_received.inc_by(bytes as u64);
    }

    pub fn request_done(&self, api: ApiKey, elapsed: Duration) {
        self.request_duration
            .get_or_create(&ApiLabels { api: ApiLabel(api) })
            .observe(elapsed.as_secs_f64());
    }

    pub fn bytes_sent(&self, bytes: usize) {
        self.bytes_sent.inc_by(bytes as u64);
    }

    pub fn connection_opened(&self) {
        self.connections_open.inc();
    }

    pub fn connection_closed(&self) {
        self.connections_open.dec();
        self.connections_closed.inc();
    }
}
