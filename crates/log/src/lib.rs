//! `weir-log`: where records are stored. The boundary the broker's data path goes through
//! ([`LogStore`]), and the single node's engine behind it: partition logs on local disk.
//!
//! Owns: segments of Kafka v2 record batches stored exactly as the producer sent them (the
//! broker only writes the base offset and partition leader epoch, which the CRC does not
//! cover; compaction later rewrites batches that lose records), sparse offset and time
//! indexes, recovery of a torn tail, retention by time and bytes, compaction by key, and
//! producer state: idempotent-producer sequence checks and, for transactions (KIP-98), the
//! open transactions, the last stable offset, commit/abort markers and the aborted-
//! transaction index, kept across restarts by producer-state snapshots. Knows nothing of the
//! network, groups, or how transactions are coordinated (the broker asks for markers), nor
//! of metrics: the fsyncs it makes on its own are reported through a hook
//! ([`FsyncObserver`]) for the broker to count.
//!
//! Layout:
//! - [`batch`]: the 61-byte batch header, CRC validation, offset assignment, encoding; its
//!   `control` part encodes and reads transaction markers (control batches).
//! - [`codec`]: bounded decompression of one Kafka-compressed payload (client telemetry,
//!   stored batches).
//! - [`records`]: the records inside a stored batch, found for the cleaner and the produce
//!   checks, or decoded whole ([`StoredRecord`]) for readers that show them; behind
//!   [`PartitionLog::read_records`] and [`PartitionLog::timestamp_at`].
//! - [`segment`]: one `.log` file with its `.index`, `.timeindex` and `.txnindex`.
//! - [`partition`]: [`PartitionLog`], the ordered set of segments of one partition, with
//!   recovery on open; its `transactions` part writes markers and answers the LSO, aborted
//!   ranges and producer states.
//! - [`producer`]: per-producer state: sequences, epochs, coordinator epochs, open
//!   transactions.
//! - [`producer_snapshot`]: `.snapshot` files of producer state, written at segment rolls.
//! - [`txn_index`]: [`AbortedTxn`] and the `.txnindex` file of one segment.
//! - [`cleaner`]: compaction of `cleanup.policy=compact` logs.
//! - [`store`]: the boundary the broker goes through, whichever engine holds the records:
//!   [`LogStore`] (Produce, Fetch), `LogAdmin`, `TxnLog`, [`CoordinatorLog`] and
//!   [`LogLifecycle`]; [`local`]: [`LocalLog`], the single node's engine, every partition's
//!   [`PartitionLog`] under the data directory, with `local/lifecycle.rs` (partitions
//!   opened, made and removed as directories) and `local/journal.rs` (the journal that
//!   makes a coordinator step durable with one fsync); [`housekeeping`]: its retention,
//!   compaction and interval fsync over every partition.
//! - [`config`]: [`LogConfig`], the topic-level settings a log obeys.
//! - [`durable`]: atomic, fsynced writes of small files; directory fsyncs.
//! - [`error`] holds [`LogError`], the crate's one error type.
//!
//! Files follow Kafka's naming: `<dir>/<20-digit base offset>.log|.index|.timeindex|.txnindex`
//! and `<20-digit offset>.snapshot`.

pub mod batch;
pub mod cleaner;
pub mod codec;
pub mod config;
pub mod durable;
pub mod error;
pub mod housekeeping;
pub mod local;
pub mod partition;
pub mod producer;
pub mod producer_snapshot;
pub mod records;
pub mod segment;
pub mod store;
pub mod txn_index;

pub use config::{FsyncPolicy, LogConfig};
pub use error::LogError;
pub use local::{LocalLog, LocalPartition};
pub use partition::{AppendOutcome, CompactionReport, FsyncObserver, PartitionLog, ReadSlice};
pub use producer::ProducerStateView;
pub use records::{RecordHeader, StoredRecord, TimestampType};
pub use store::{CoordinatorLog, Engine, LogLifecycle, LogStore, Opening};
pub use txn_index::AbortedTxn;

/// Fsyncs (data only) every file at once and returns each result in order. Several files
/// synced together share the file system's journal commit, so N partitions cost about one
/// fsync's latency instead of N.
pub fn sync_data_all(files: &[std::sync::Arc<std::fs::File>]) -> Vec<std::io::Result<()>> {
    match files {
        [] => Vec::new(),
        [only] => vec![only.sync_data()],
        [first, rest @ ..] => std::thread::scope(|s| {
            let others: Vec<_> = rest
                .iter()
                .map(|f| s.spawn(move || f.sync_data()))
                .collect();
            let mut out = vec![first.sync_data()];
            out.extend(others.into_iter().map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("fsync thread panicked")))
            }));
            out
        }),
    }
}
