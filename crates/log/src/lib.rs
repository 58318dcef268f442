//! `weir-log`: one partition's log on local disk.
//!
//! Owns: segments of Kafka v2 record batches stored exactly as the producer sent them (the
//! broker only writes the base offset and partition leader epoch, which the CRC does not
//! cover; compaction later rewrites batches that lose records), sparse offset and time
//! indexes, recovery of a torn tail, retention by time and bytes, compaction by key, and
//! idempotent-producer sequence checks. Knows nothing of the network or groups.
//!
//! Layout:
//! - [`batch`]: the 61-byte batch header, CRC validation, offset assignment.
//! - [`segment`]: one `.log` file with its `.index` and `.timeindex`.
//! - [`partition`]: [`PartitionLog`], the ordered set of segments of one partition.
//! - [`producer`]: per-producer sequence state for idempotent produce.
//! - [`cleaner`]: compaction of `cleanup.policy=compact` logs.
//! - [`config`]: [`LogConfig`], the topic-level settings a log obeys.
//! - [`error`]: [`LogError`].
//!
//! Files follow Kafka's naming: `<dir>/<20-digit base offset>.log|.index|.timeindex`.

pub mod batch;
pub mod cleaner;
pub mod config;
pub mod error;
pub mod partition;
pub mod producer;
pub mod segment;

pub use config::{FsyncPolicy, LogConfig};
pub use error::LogError;
pub use partition::{AppendOutcome, CompactionReport, PartitionLog, ReadSlice};

/// Fsyncs (data only) every file at once and returns each result in order. Several files
/// synced together share the file system's journal commit, so N partitions cost about one
/// fsync's latency instead of N.
pub fn sync_data_all(files: &[std::sync::Arc<std::fs::File>]) -> Vec<std::io::Result<()>> {
    match files {
        [] => Vec::new(),
        [only] => vec![only.sync_data()],
        [first, rest @ ..] => std::thread::scope(|s| {
            let others: Vec<_> = rest.iter().map(|f| s.spawn(move || f.sync_data())).collect();
            let mut out = vec![first.sync_data()];
            out.extend(others.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(std::io::Error::other("fsync thread panicked")))));
            out
        }),
    }
}
