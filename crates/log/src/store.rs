//! The storage boundary: what the broker asks of whichever engine holds the records. Two
//! engines implement it: [`crate::local::LocalLog`], the single node's segment files, and
//! the cluster engine (`weir-cluster`), objects in a bucket ordered by PostgreSQL. The
//! handlers above it do not know which one runs.
//!
//! Five narrow traits rather than one: [`LogStore`] is the data path (appends and reads of
//! many partitions at once, so an engine can gather a request's partitions into one fsync
//! or one object, and a wake-up for long-polling fetches); [`LogAdmin`] answers the admin
//! APIs and the console and runs retention and compaction; [`TxnLog`] writes transaction
//! markers and shows producers' state; [`CoordinatorLog`] takes the coordinators' writes to
//! their internal topics; [`LogLifecycle`] opens, deletes and reconfigures partitions as
//! the catalog changes. Almost everything is a future, because every call of the cluster engine is
//! I/O; the local engine's futures are ready at once unless they wait for an fsync, and
//! the handlers answer ready futures without leaving the request's task.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{AbortedTxn, LogConfig, LogError, ProducerStateView, StoredRecord};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A partition as the broker names it. The local engine finds it by name, the cluster
/// engine by id (a topic deleted and created again under its name has a new id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

/// How durable an append must be before it is answered: Kafka's `acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// acks=0: nobody waits for the answer.
    None,
    /// acks=1.
    Leader,
    /// acks=all (-1).
    All,
}

impl Acks {
    /// Kafka's number; anything else is not a valid `acks` (INVALID_REQUIRED_ACKS).
    pub fn from_kafka(acks: i16) -> Option<Acks> {
        match acks {
            0 => Some(Acks::None),
            1 => Some(Acks::Leader),
            -1 => Some(Acks::All),
            _ => None,
        }
    }
}

/// One producer batch for one partition, as the client sent it (the engine writes its
/// base offset, so it is a copy the engine may change).
#[derive(Debug)]
pub struct PartitionWrite {
    pub tp: TopicPartition,
    pub records: BytesMut,
}

/// A stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_start_offset: i64,
    /// The batch was a producer retry already stored: nothing new was written.
    pub duplicate: bool,
}

/// Why a batch was not stored.
#[derive(Debug)]
pub enum Refused {
    /// The log refused it. The log start offset goes with the answer for refusals of single
    /// records (KIP-467), as Kafka's answer carries it.
    Log {
        error: LogError,
        log_start_offset: i64,
    },
    /// The engine holds no such partition (deleted meanwhile, or never created).
    UnknownPartition,
}

pub type AppendResult = Result<Acked, Refused>;

/// One partition to read from.
#[derive(Debug, Clone)]
pub struct ReadSpec {
    pub tp: TopicPartition,
    pub fetch_offset: i64,
    /// The client's per-partition limit.
    pub partition_max_bytes: usize,
    /// Only records below the last stable offset, with the aborted transactions among them.
    pub read_committed: bool,
}

/// What a read found in one partition.
#[derive(Debug)]
pub struct PartitionRead {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// For read_committed reads: the aborted transactions the reader must skip.
    pub aborted: Option<Vec<AbortedTxn>>,
    /// Whole stored batches (empty when there is nothing to send), or why none could be
    /// read (an offset out of range, a storage error).
    pub records: Result<Bytes, LogError>,
}

/// The data path of every engine.
pub trait LogStore: Send + Sync + 'static {
    /// Appends each write to its partition; the results come in the order of `writes`.
    ///
    /// The order of appends is fixed when this returns, not when the future resolves: a
    /// producer's pipelined requests are appended in the order the connection handed them
    /// over. The future resolves when each stored batch is as durable as the engine
    /// promises for `acks` (the local engine: after the fsync `--fsync always` asks of
    /// acks=all; the cluster engine: after the commit that assigns its offsets).
    fn append(
        &self,
        writes: Vec<PartitionWrite>,
        acks: Acks,
        now_ms: i64,
    ) -> BoxFuture<'static, Vec<AppendResult>>;

    /// Reads each partition in order from its fetch offset, within its own limit and a
    /// running total of `max_bytes` for all of them. The first batch found is sent whole
    /// even when it exceeds the limits (as Kafka does, so a consumer can always progress);
    /// after it, a batch that does not fit is left for the next fetch. `None` for a
    /// partition the engine does not hold.
    fn read<'a>(
        &'a self,
        reads: &'a [ReadSpec],
        max_bytes: usize,
    ) -> BoxFuture<'a, Vec<Option<PartitionRead>>>;

    /// Notified after every append to `tp` (and when it is deleted), so a waiting fetch
    /// looks again. `None` for a partition the engine does not hold.
    fn watch(&self, tp: &TopicPartition) -> Option<Arc<Notify>>;
}

/// Why a call about one partition failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine holds no such partition (deleted meanwhile, or never created).
    #[error("the engine holds no such partition")]
    UnknownPartition,
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Where a partition's log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start_offset: i64,
    /// The offset after the last record stored.
    pub log_end_offset: i64,
    /// The offset after the last record readers may see.
    pub high_watermark: i64,
    /// The first offset of a transaction still open (or the high watermark): the end of
    /// what read_committed readers may see.
    pub last_stable_offset: i64,
}

/// An offset found for a timestamp, and that record's timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampedOffset {
    pub offset: i64,
    pub timestamp: i64,
}

/// DeleteRecords' offset for "everything stored" (Kafka's -1).
pub const DELETE_TO_HIGH_WATERMARK: i64 = -1;

/// What the engine knows of a partition at once, without waiting for I/O: for metrics and
/// the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionStatus {
    pub offsets: PartitionOffsets,
    /// The bytes its records take.
    pub size_bytes: u64,
    /// The pieces its records are kept in (the local engine: segment files).
    pub segment_count: usize,
}

/// What the admin APIs ask of a partition's log (ListOffsets, OffsetForLeaderEpoch,
/// DeleteRecords, DescribeLogDirs).
pub trait LogAdmin: Send + Sync + 'static {
    fn offsets(&self, tp: &TopicPartition) -> BoxFuture<'_, Result<PartitionOffsets, StoreError>>;

    /// The first record at or after `timestamp_ms`, if any.
    fn offset_for_timestamp(
        &self,
        tp: &TopicPartition,
        timestamp_ms: i64,
    ) -> BoxFuture<'_, Result<Option<TimestampedOffset>, StoreError>>;

    /// The record with the largest timestamp (the first of them on a tie), if any.
    fn max_timestamp_offset(
        &self,
        tp: &TopicPartition,
    ) -> BoxFuture<'_, Result<Option<TimestampedOffset>, StoreError>>;

    /// Moves the log start offset up to `offset`, or to the high watermark for
    /// [`DELETE_TO_HIGH_WATERMARK`]; returns the new log start offset.
    fn delete_records_before(
        &self,
        tp: &TopicPartition,
        offset: i64,
    ) -> BoxFuture<'_, Result<i64, StoreError>>;

    /// The bytes the partition's records take in the engine.
    fn size_bytes(&self, tp: &TopicPartition) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Where the partition stands, from what the engine holds in memory; `None` for a
    /// partition it does not hold (an engine may then learn it in the background, and
    /// answer a later ask).
    fn status(&self, tp: &TopicPartition) -> Option<PartitionStatus>;

    /// The user records from `from_offset` on, decoded, for readers that show them (the
    /// console's message browser): at most `max_records`, and no more once their bytes
    /// reach `max_bytes` (the first is returned whatever its size); transaction markers are
    /// skipped. `from_offset` must lie between the log start and end offsets.
    fn read_records(
        &self,
        tp: &TopicPartition,
        from_offset: i64,
        max_records: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, StoreError>>;

    /// The timestamp of the first user record at or after `offset` below the high
    /// watermark, if any (a consumer group's lag in time).
    fn timestamp_at(
        &self,
        tp: &TopicPartition,
        offset: i64,
    ) -> BoxFuture<'_, Result<Option<i64>, StoreError>>;

    /// Deletes what retention (`retention.ms`, `retention.bytes`) no longer keeps.
    fn apply_retention(&self, now_ms: i64) -> BoxFuture<'static, ()>;

    /// Compacts the `cleanup.policy=compact` logs that are due; a compaction in progress
    /// gives up at its next step once `stop` is set.
    fn compact_due(&self, now_ms: i64, stop: Arc<AtomicBool>) -> BoxFuture<'static, ()>;

    /// Makes everything appended so far durable (the interval fsync policy, and a clean
    /// stop).
    fn flush(&self) -> BoxFuture<'static, ()>;
}

/// A transaction marker (a control batch that commits or aborts a producer's open
/// transaction) to write into one partition.
#[derive(Debug, Clone)]
pub struct MarkerWrite {
    pub tp: TopicPartition,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub commit: bool,
    /// Written by this broker's own transaction coordinator, not asked for by an admin tool
    /// (WriteTxnMarkers). An engine shared by brokers commits the coordinator's markers
    /// only while this broker runs the coordinators, as it does the coordinators' other
    /// writes ([`CoordinatorLog::append_internal`]).
    pub from_coordinator: bool,
}

/// What transactions ask of a partition's log.
pub trait TxnLog: Send + Sync + 'static {
    /// Writes each marker; the results come in the order of `markers`. As with
    /// [`LogStore::append`], the order is fixed when this returns; the future resolves when
    /// the markers written are durable (the local engine: fsynced under `--fsync always`).
    fn write_markers(
        &self,
        markers: Vec<MarkerWrite>,
        now_ms: i64,
    ) -> BoxFuture<'static, Vec<Result<(), StoreError>>>;

    /// Whether `producer_id` has a transaction open in the partition under
    /// `producer_epoch` (not one of an earlier epoch whose marker is still to come).
    fn has_open_transaction(
        &self,
        tp: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// [`TxnLog::has_open_transaction`] answered at once, by an engine that holds the
    /// answer in memory; `None` (the default) from one that must look it up, which is then
    /// asked with `has_open_transaction`.
    fn has_open_transaction_now(
        &self,
        _tp: &TopicPartition,
        _producer_id: i64,
        _producer_epoch: i16,
    ) -> Option<Result<bool, StoreError>> {
        None
    }

    /// The producers the partition remembers (DescribeProducers).
    fn producers(
        &self,
        tp: &TopicPartition,
    ) -> BoxFuture<'_, Result<Vec<ProducerStateView>, StoreError>>;
}

/// What the broker's coordinators (groups, transactions) ask of their internal topics
/// (`__consumer_offsets`, `__transaction_state`). They read them back at start through
/// [`LogStore::read`].
pub trait CoordinatorLog: Send + Sync + 'static {
    /// Appends one coordinator step's batches to `topic` (each write one of its
    /// partitions) with the coordinator's origin: no `max.message.bytes` limit, and no
    /// sequence needed for a batch with a producer id (epochs are still fenced). Resolves
    /// when every batch is durable (the local engine: fsynced under `--fsync always`, in
    /// one fsync however many partitions the step touched); one failure fails the step.
    fn append_internal(
        &self,
        topic: &str,
        writes: Vec<PartitionWrite>,
        now_ms: i64,
    ) -> BoxFuture<'static, Result<(), StoreError>>;
}

/// How partitions come into an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// Partitions the catalog already had (the broker starting): the engine recovers what
    /// it holds of them.
    Existing,
    /// New partitions (a topic created, partitions added): they start empty, and whatever
    /// an earlier topic of the same name left behind is removed first.
    New,
}

/// Which partitions an engine serves, and with what settings. The broker calls these as
/// its catalog changes (and, at start, for every partition the catalog holds); the
/// catalog, not the engine, decides what exists.
pub trait LogLifecycle: Send + Sync + 'static {
    /// Opens partitions `partitions` of a topic with its settings. Their indexes follow on
    /// from the partitions of the topic the engine holds already.
    fn open_partitions(
        &self,
        topic: &str,
        topic_id: Uuid,
        partitions: std::ops::Range<i32>,
        config: &LogConfig,
        opening: Opening,
    ) -> Result<(), StoreError>;

    /// Takes a deleted topic's partitions out of service, wakes the fetches waiting on
    /// them, and removes their data.
    fn delete_topic(&self, topic: &str, topic_id: Uuid) -> Result<(), StoreError>;

    /// Applies a topic's changed settings to its partitions at once.
    fn set_config(&self, topic: &str, topic_id: Uuid, config: &LogConfig);

    /// Running totals of the engine's own work that the metrics endpoint publishes as
    /// counters (a cluster engine's object-store requests and commits). None by default:
    /// the local engine's work shows in the partitions' own metrics.
    fn counters(&self) -> Vec<EngineCounter> {
        Vec::new()
    }
}

/// One running total of an engine's work, published as `weir_<name>_total` (with the
/// unit before `_total` when there is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineCounter {
    pub name: &'static str,
    pub help: &'static str,
    /// `true` when the count is of bytes.
    pub bytes: bool,
    pub value: u64,
}

/// A whole engine: the five traits in one object, which is what the broker holds.
pub trait Engine: LogStore + LogAdmin + TxnLog + CoordinatorLog + LogLifecycle {}

impl<T: LogStore + LogAdmin + TxnLog + CoordinatorLog + LogLifecycle> Engine for T {}
