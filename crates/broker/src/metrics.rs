//! The broker's own Prometheus metrics: requests, their duration and the error codes their
//! responses carry; connections and why they closed; bytes on the wire; fsync latency;
//! parked fetches; start-up time. Requests, bytes and connections are counted in
//! [`crate::connection`], error codes as a response is encoded
//! ([`crate::handlers::RequestMeta`]), fsyncs where the broker asks for them. The `console`
//! crate registers the families with [`BrokerMetrics::register`] and encodes them on each
//! scrape. Per-partition values are not kept here: they are read from the partitions at
//! scrape time.
//!
//! Every label set is bounded: `api` is one of the Kafka API keys weir decodes (about
//! fifty), and `version` one of the versions weir accepts for it (under twenty); requests
//! at other versions are not decoded, so never counted. `code` is one of Kafka's error
//! codes (about 135), and only codes weir itself puts in responses occur. `reason` is one
//! of the [`CloseReason`]s.

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use weir_wire::kafka_protocol::messages::ApiKey;
use weir_wire::ErrorName;

use crate::response_errors::ErrorCodes;

/// Bucket bounds of the request duration histogram: 0.1 ms doubling up to about 52 s,
/// which covers an in-memory ApiVersions and a Fetch long-poll alike.
const DURATION_BUCKET_FIRST_SECONDS: f64 = 0.0001;
const DURATION_BUCKETS_COUNT: u16 = 20;
/// Bucket bounds of the fsync histogram: 10 µs (a disk cache that lies) doubling up to
/// about 5 s (a disk in trouble).
const FSYNC_BUCKET_FIRST_SECONDS: f64 = 0.00001;
const FSYNC_BUCKETS_COUNT: u16 = 20;

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

/// A Kafka error code as a label value, by Kafka's name for it (`NOT_COORDINATOR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCodeLabel(pub i16);

impl EncodeLabelValue for ErrorCodeLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        write!(encoder, "{}", ErrorName(self.0))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ErrorLabels {
    pub api: ApiLabel,
    pub code: ErrorCodeLabel,
}

/// Why a client connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client closed its side (end of stream between or inside frames).
    ClientClosed,
    /// A frame over the size limit, or a request that could not be decoded.
    BadRequest,
    /// The broker chose to close after answering (a response it could not encode, a
    /// request refused with a closed connection as Kafka does).
    BrokerClosed,
    /// Reading or writing the socket failed.
    IoError,
    /// The broker shut down while the connection was open.
    Shutdown,
    /// The TLS handshake or SASL authentication failed, or the client sent another
    /// request before authenticating.
    AuthenticationFailed,
}

impl CloseReason {
    pub const ALL: [CloseReason; 6] = [
        CloseReason::ClientClosed,
        CloseReason::BadRequest,
        CloseReason::BrokerClosed,
        CloseReason::IoError,
        CloseReason::Shutdown,
        CloseReason::AuthenticationFailed,
    ];

    /// The label value, in the snake case Prometheus label values usually are.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "client_closed",
            CloseReason::BadRequest => "bad_request",
            CloseReason::BrokerClosed => "broker_closed",
            CloseReason::IoError => "io_error",
            CloseReason::Shutdown => "shutdown",
            CloseReason::AuthenticationFailed => "authentication_failed",
        }
    }
}

impl EncodeLabelValue for CloseReason {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CloseLabels {
    pub reason: CloseReason,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(
        DURATION_BUCKET_FIRST_SECONDS,
        2.0,
        DURATION_BUCKETS_COUNT,
    ))
}

/// Error codes by API, counted from each response as it is encoded. Cloning shares the
/// counts; handlers carry a clone in their [`crate::handlers::RequestMeta`].
#[derive(Debug, Clone, Default)]
pub struct RequestErrors(Family<ErrorLabels, Counter>);

impl RequestErrors {
    /// Counts every non-zero error code in `response`. A response without errors costs
    /// one walk over its parts and nothing else.
    pub fn count(&self, api: ApiKey, response: &(impl ErrorCodes + ?Sized)) {
        response.each_error_code(&mut |code| {
            if code != 0 {
                self.0
                    .get_or_create(&ErrorLabels {
                        api: ApiLabel(api),
                        code: ErrorCodeLabel(code),
                    })
                    .inc();
            }
        });
    }
}

/// Seconds since the Unix epoch now, for the start time gauge.
fn unix_now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The metric families. Cloning shares them: every clone counts into the same values.
#[derive(Debug, Clone)]
pub struct BrokerMetrics {
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<ApiLabels, Histogram, fn() -> Histogram>,
    connections_open: Gauge,
    connections_closed: Family<CloseLabels, Counter>,
    bytes_received: Counter,
    bytes_sent: Counter,
    pub request_errors: RequestErrors,
    fsync_duration: Histogram,
    fetches_parked: Gauge,
    startup_recovery_seconds: Gauge<f64, AtomicU64>,
    start_time_seconds: Gauge<f64, AtomicU64>,
}

impl Default for BrokerMetrics {
    fn default() -> BrokerMetrics {
        let metrics = BrokerMetrics {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(duration_histogram),
            connections_open: Gauge::default(),
            connections_closed: Family::default(),
            bytes_received: Counter::default(),
            bytes_sent: Counter::default(),
            request_errors: RequestErrors::default(),
            fsync_duration: Histogram::new(exponential_buckets(
                FSYNC_BUCKET_FIRST_SECONDS,
                2.0,
                FSYNC_BUCKETS_COUNT,
            )),
            fetches_parked: Gauge::default(),
            startup_recovery_seconds: Gauge::default(),
            start_time_seconds: Gauge::default(),
        };
        // Every reason is present from the start, at 0, so a rate over it has a series
        // before the first such close.
        for reason in CloseReason::ALL {
            let _ = metrics
                .connections_closed
                .get_or_create(&CloseLabels { reason });
        }
        metrics.start_time_seconds.set(unix_now_seconds());
        metrics
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
            "Client connections closed since start, by why they closed",
            self.connections_closed.clone(),
        );
        registry.register(
            "weir_request_errors",
            "Error codes in responses, by API and Kafka error name; a response counts each code it carries",
            self.request_errors.0.clone(),
        );
        registry.register_with_unit(
            "weir_log_fsync_duration",
            "Time of each fsync the broker waits on (partition logs, coordinator journals)",
            Unit::Seconds,
            self.fsync_duration.clone(),
        );
        registry.register(
            "weir_fetches_parked",
            "Fetch requests waiting for data (long-poll) now",
            self.fetches_parked.clone(),
        );
        registry.register_with_unit(
            "weir_startup_recovery",
            "Time the last start took to open the partition logs and replay the coordinators",
            Unit::Seconds,
            self.startup_recovery_seconds.clone(),
        );
        registry.register_with_unit(
            "weir_start_time",
            "When the broker started, in seconds since the Unix epoch",
            Unit::Seconds,
            self.start_time_seconds.clone(),
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

    pub fn connection_closed(&self, reason: CloseReason) {
        self.connections_open.dec();
        self.connections_closed
            .get_or_create(&CloseLabels { reason })
            .inc();
    }

    /// Records one fsync (or one group of files fsynced together) the broker waited on.
    pub fn fsync_done(&self, elapsed: Duration) {
        self.fsync_duration.observe(elapsed.as_secs_f64());
    }

    /// What a partition log calls with the time of each fsync it makes on its own (a
    /// segment as it rolls), counted with the broker's.
    pub fn fsync_observer(&self) -> weir_log::FsyncObserver {
        let histogram = self.fsync_duration.clone();
        std::sync::Arc::new(move |elapsed: Duration| histogram.observe(elapsed.as_secs_f64()))
    }

    /// Runs `sync` and records how long it took, whatever its outcome.
    pub fn timed_fsync<T>(&self, sync: impl FnOnce() -> T) -> T {
        let started = std::time::Instant::now();
        let out = sync();
        self.fsync_done(started.elapsed());
        out
    }

    /// Counts a fetch as parked until the returned guard is dropped (answered or abandoned).
    pub fn fetch_parked(&self) -> ParkedFetch {
        self.fetches_parked.inc();
        ParkedFetch(self.fetches_parked.clone())
    }

    pub fn startup_recovered(&self, elapsed: Duration) {
        self.startup_recovery_seconds.set(elapsed.as_secs_f64());
    }
}

/// A fetch waiting for data; it leaves `weir_fetches_parked` when dropped.
#[derive(Debug)]
pub struct ParkedFetch(Gauge);

impl Drop for ParkedFetch {
    fn drop(&mut self) {
        self.0.dec();
    }
}
