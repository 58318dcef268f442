//! The settings one partition log obeys; topic configs map onto these.

/// When appended bytes are forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Every produce with acks=all is fsynced before it is acknowledged.
    Always,
    /// The broker fsyncs every partition on a fixed interval (`--fsync-interval-ms`).
    Interval,
    /// The operating system decides; only a clean shutdown flushes.
    Never,
}

/// Kafka's default `segment.bytes` (1 GiB).
pub const SEGMENT_BYTES_DEFAULT: u64 = 1 << 30;
/// Kafka's default `segment.ms` (7 days).
pub const SEGMENT_MS_DEFAULT: i64 = 7 * 24 * 3600 * 1000;
/// Kafka's default `retention.ms` (7 days).
pub const RETENTION_MS_DEFAULT: i64 = 7 * 24 * 3600 * 1000;
/// Kafka's default `max.message.bytes`.
pub const MAX_MESSAGE_BYTES_DEFAULT: usize = 1_048_588;
/// Bytes of log between two sparse index entries (Kafka's `index.interval.bytes`).
pub const INDEX_INTERVAL_BYTES: u64 = 4096;

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    /// Negative means unlimited, as in Kafka.
    pub retention_ms: i64,
    /// Negative means unlimited, as in Kafka.
    pub retention_bytes: i64,
    pub max_message_bytes: usize,
    /// `cleanup.policy` contains `delete`; when false, retention deletes nothing.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`: closed segments keep the newest record per key,
    /// and records without a key are refused.
    pub cleanup_compact: bool,
    /// `min.cleanable.dirty.ratio`: the share of not-yet-cleaned bytes that starts a clean.
    pub min_cleanable_dirty_ratio: f64,
    /// `delete.retention.ms`: how long a tombstone stays after its segment's newest record.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a record older than this is compacted whatever the dirty
    /// ratio, and the active segment rolls so that it can be.
    pub max_compaction_lag_ms: i64,
    /// `message.timestamp.type` is `LogAppendTime`: producers' timestamps are not checked,
    /// and a producer may not send a batch that claims the broker's time.
    pub timestamp_log_append: bool,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime record may be.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime record may be.
    pub timestamp_after_max_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            segment_ms: SEGMENT_MS_DEFAULT,
            retention_ms: RETENTION_MS_DEFAULT,
            retention_bytes: -1,
            max_message_bytes: MAX_MESSAGE_BYTES_DEFAULT,
            cleanup_delete: true,
            cleanup_compact: false,
            min_cleanable_dirty_ratio: 0.5,
            delete_retention_ms: 24 * 3600 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            timestamp_log_append: false,
            // A bare config checks no timestamps; the broker maps each topic's configs,
            // Kafka's defaults (after.max.ms one hour) among them.
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
        }
    }
}
