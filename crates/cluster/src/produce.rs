//! The cluster engine's produce path: [`Appender`] gathers the writes of many produce
//! requests, across partitions, for up to a batch window, stores them as one object in the
//! bucket, assigns their offsets in one PostgreSQL transaction, and only then answers.
//!
//! The commit is the durability promise, for acks=0, 1 and all alike: an answer (or, for
//! acks=0, the lack of one) never runs ahead of the offsets PostgreSQL holds. A flush whose
//! PUT or commit fails fails every write in it with a storage error (KAFKA_STORAGE_ERROR,
//! retriable); a commit whose outcome is unknown is reported the same way, and the
//! producer's retry is then recognised as a duplicate by its sequence.
//!
//! Steps of one write:
//! 1. `append` validates it at once, as the local engine does (`validate.rs`): batches
//!    (magic, CRC, counts, `max.message.bytes`), then records (keys on a compacted topic,
//!    timestamps within the topic's window), and queues it; the queue's order is the order
//!    of offsets;
//! 2. the batcher (`batcher.rs`) cuts the queue into flushes by time and size, builds each
//!    flush's object, reserves its id and PUTs it; several PUTs may be in flight;
//! 3. the committer takes prepared flushes strictly in order and runs the transaction
//!    (`commit.rs`): producer-state checks, offsets, `chunks` rows, notification.
//!
//! Three kinds of writes share the one queue, so their offsets follow one order: a
//! producer's batches ([`Appender::append`]), a coordinator's batches
//! ([`Appender::append_internal`], checked as the coordinator's origin), and transaction
//! markers ([`Appender::write_markers`]), whose commit closes the producer's open
//! transaction, records an abort in `aborted_txns` and recomputes the partition's first
//! unstable offset.
//!
//! After each commit the optional [`CommitHook`] hears what it stored (the object's bytes,
//! the partitions' new next offsets) before any of its writes is answered, so the
//! broker's own reader serves them at once, without a notification round trip or a GET.

mod batcher;
mod commit;
mod validate;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;
use weir_log::batch::{
    encode_end_txn_marker, AppendOrigin, BatchHeader, ControlRecordType, EndTxnMarker,
};
use weir_log::store::{
    Acks, AppendResult, BoxFuture, MarkerWrite, PartitionWrite, Refused, TopicPartition,
};
use weir_log::{LogConfig, LogError};

use crate::bucket::Bucket;
use crate::object::{footer_size_bytes, OBJECT_BYTES_MAX};
use crate::partitions::PartitionIds;
use crate::pg::Session;

/// How long a flush gathers writes after its first one, by default. Produce latency is this
/// plus a PUT and a commit; a shorter window means more, smaller objects (each PUT costs).
pub const BATCH_WINDOW_DEFAULT: Duration = Duration::from_millis(20);
/// A flush is cut early once its writes reach this many bytes, by default
/// (`--cluster-batch-bytes`).
pub const BATCH_BYTES_MAX_DEFAULT: usize = 8 * 1024 * 1024;
/// Flushes cut but not yet committed (their PUTs may overlap), by default.
pub const PUTS_IN_FLIGHT_MAX_DEFAULT: usize = 4;
/// Bytes of accepted writes not yet answered, by default. Past it `append` refuses at once
/// with a storage error: a slow bucket or PostgreSQL must push back on producers, not fill
/// the broker's memory.
pub const PENDING_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// How long one flush's PostgreSQL work may take: reserving its object, and its commit.
pub const STATEMENT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// The largest write (one partition's batches of one request): it must fit in an object of
/// its own.
pub const WRITE_BYTES_MAX: usize = OBJECT_BYTES_MAX as usize - footer_size_bytes(1);

/// How the appender batches, and its bounds.
#[derive(Debug, Clone)]
pub struct AppendSettings {
    pub batch_window: Duration,
    /// Flush early once the writes gathered reach this many bytes.
    pub batch_bytes_max: usize,
    /// Recorded as each object's writer, for operators.
    pub node_id: i32,
    /// Flushes between their cut and their commit; at least 1.
    pub puts_in_flight_max: usize,
    /// Bytes waiting for their commit; past it, appends are refused at once.
    pub pending_bytes_max: usize,
    /// The bound of each PostgreSQL step of a flush.
    pub statement_timeout: Duration,
}

impl Default for AppendSettings {
    fn default() -> Self {
        AppendSettings {
            batch_window: BATCH_WINDOW_DEFAULT,
            batch_bytes_max: BATCH_BYTES_MAX_DEFAULT,
            node_id: 0,
            puts_in_flight_max: PUTS_IN_FLIGHT_MAX_DEFAULT,
            pending_bytes_max: PENDING_BYTES_MAX_DEFAULT,
            statement_timeout: STATEMENT_TIMEOUT_DEFAULT,
        }
    }
}

/// What the appender has done since it started, for metrics and the cost benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendStats {
    /// Objects stored in the bucket (each one PUT).
    pub objects_put: u64,
    pub bytes_put: u64,
    /// PostgreSQL transactions that committed a flush.
    pub commits: u64,
    /// Records and batches given offsets (duplicates not counted).
    pub records_committed: u64,
    pub batches_committed: u64,
    /// Flushes failed by the bucket or PostgreSQL.
    pub flushes_failed: u64,
}

#[derive(Default)]
struct Counters {
    objects_put: AtomicU64,
    bytes_put: AtomicU64,
    commits: AtomicU64,
    records_committed: AtomicU64,
    batches_committed: AtomicU64,
    flushes_failed: AtomicU64,
}

/// What one committed flush stored, as the [`CommitHook`] hears it.
#[derive(Debug, Clone)]
pub struct CommittedFlush {
    pub object_id: i64,
    /// The whole object, as PUT.
    pub object: Bytes,
    /// (partition id, next offset) of every partition the flush gave records to.
    pub next_offsets: Vec<(i64, i64)>,
}

/// Called by the committer after each commit that stored records, before the flush's
/// writes are answered. It runs on the committer's task, so it must not block.
pub type CommitHook = Arc<dyn Fn(&CommittedFlush) + Send + Sync>;

/// A transaction marker queued as a write: what its commit checks and records besides
/// the batch (whose header carries the producer id and epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueuedMarker {
    pub coordinator_epoch: i32,
    pub control_type: ControlRecordType,
}

/// Who this broker is in `brokers`: a coordinator's write commits only while this broker
/// is the controller by PostgreSQL's view, the live broker (lease not expired by
/// PostgreSQL's clock) with the smallest node id, registered under this incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoordinatorFence {
    pub node_id: i32,
    pub incarnation: Uuid,
}

/// What `append`, the batcher and the committer share.
struct Shared {
    configs: RwLock<HashMap<Uuid, LogConfig>>,
    /// Unset, coordinators' writes are not checked (an engine no broker registration
    /// stands behind, as in tools and tests of the engine alone).
    coordinator_fence: RwLock<Option<CoordinatorFence>>,
    /// The log start offset each partition had at its last commit here, for refusals made
    /// before any I/O (Kafka answers them with it).
    log_start_offsets: Mutex<HashMap<(Uuid, i32), i64>>,
    pending_bytes: AtomicUsize,
    counters: Counters,
}

impl Shared {
    fn log_start_offset(&self, tp: &TopicPartition) -> i64 {
        self.log_start_offsets
            .lock()
            .get(&(tp.topic_id, tp.partition))
            .copied()
            .unwrap_or(-1)
    }
}

/// One validated write waiting for its flush. Its bytes count as pending until it is
/// answered (or dropped).
struct PendingWrite {
    tp: TopicPartition,
    records: Bytes,
    headers: Vec<BatchHeader>,
    /// Set for a transaction marker.
    marker: Option<QueuedMarker>,
    /// A coordinator's write ([`Appender::append_internal`]), fenced at commit.
    coordinator: bool,
    reply: oneshot::Sender<AppendResult>,
    _pending: PendingBytes,
}

impl PendingWrite {
    fn answer(self, result: AppendResult) {
        let PendingWrite {
            reply, _pending, ..
        } = self;
        // The bytes stop counting before the caller hears, so it sees them gone.
        drop(_pending);
        // The caller may have stopped waiting (acks=0, or a closed connection).
        let _ = reply.send(result);
    }
}

/// Bytes counted in `Shared::pending_bytes` until dropped.
struct PendingBytes {
    shared: Arc<Shared>,
    size_bytes: usize,
}

impl Drop for PendingBytes {
    fn drop(&mut self) {
        self.shared
            .pending_bytes
            .fetch_sub(self.size_bytes, Ordering::AcqRel);
    }
}

/// The refusal every write of a failed flush gets: a storage error, which clients retry.
fn storage_error(sentence: String) -> Refused {
    Refused::Log {
        error: LogError::Io(std::io::Error::other(sentence)),
        log_start_offset: -1,
    }
}

/// The cluster engine's appender. Dropping it stops taking writes; the flushes already cut
/// are still stored and committed (every step is bounded), then its tasks end.
pub struct Appender {
    shared: Arc<Shared>,
    queue: mpsc::UnboundedSender<PendingWrite>,
    settings: AppendSettings,
}

impl Appender {
    /// Starts the batcher and committer tasks. `session` serves the single statements of
    /// each flush; commits take a connection of their own from its connector, since a
    /// transaction must not share its connection with other work. `on_commit` hears every
    /// commit that stored records.
    pub fn start(
        session: Arc<Session>,
        bucket: Bucket,
        ids: Arc<PartitionIds>,
        settings: AppendSettings,
        on_commit: Option<CommitHook>,
    ) -> Appender {
        assert!(settings.puts_in_flight_max >= 1, "puts_in_flight_max is 0");
        assert!(!settings.batch_window.is_zero(), "a zero batch window");
        assert!(settings.batch_bytes_max >= 1, "batch_bytes_max is 0");
        let shared = Arc::new(Shared {
            configs: RwLock::new(HashMap::new()),
            coordinator_fence: RwLock::new(None),
            log_start_offsets: Mutex::new(HashMap::new()),
            pending_bytes: AtomicUsize::new(0),
            counters: Counters::default(),
        });
        let (queue, queued) = mpsc::unbounded_channel();
        let commit_session = Arc::new(Session::new(session.connector().clone()));
        batcher::spawn(
            batcher::Context {
                shared: Arc::clone(&shared),
                session,
                commit_session,
                bucket,
                ids,
                settings: settings.clone(),
                on_commit,
            },
            queued,
        );
        Appender {
            shared,
            queue,
            settings,
        }
    }

    /// The rules a topic's writes are validated by; a topic without them is unknown.
    pub fn set_topic_config(&self, topic_id: Uuid, config: LogConfig) {
        self.shared.configs.write().insert(topic_id, config);
    }

    /// From now on, a coordinator's write commits only while this broker, registered as
    /// `fence`, is the controller by PostgreSQL's view; otherwise it is refused with
    /// NOT_COORDINATOR, so a broker that lost the role unnoticed (paused past its lease)
    /// cannot write stale group or transaction state.
    pub fn set_coordinator_fence(&self, fence: CoordinatorFence) {
        *self.shared.coordinator_fence.write() = Some(fence);
    }

    /// Forgets a deleted topic: its writes are refused as unknown from now on.
    pub fn forget_topic(&self, topic_id: Uuid) {
        self.shared.configs.write().remove(&topic_id);
        self.shared
            .log_start_offsets
            .lock()
            .retain(|(id, _), _| *id != topic_id);
    }

    /// The contract of [`weir_log::store::LogStore::append`]: results in the order of
    /// `writes`; the order of appends is fixed when this returns (each valid write is queued
    /// before it does); the future resolves once the flush holding each write is committed.
    /// `acks` changes nothing: the commit is the only durability this engine has.
    pub fn append(
        &self,
        writes: Vec<PartitionWrite>,
        _acks: Acks,
        now_ms: i64,
    ) -> BoxFuture<'static, Vec<AppendResult>> {
        let answers = writes
            .into_iter()
            .map(|write| self.enqueue(write, AppendOrigin::Client, now_ms))
            .collect();
        answered(answers)
    }

    /// [`Appender::append`] for the broker's coordinators: the contract of
    /// [`weir_log::store::CoordinatorLog::append_internal`] per write (no
    /// `max.message.bytes`, no sequence needed with a producer id, no timestamp window;
    /// epochs are still fenced at commit).
    pub fn append_internal(
        &self,
        writes: Vec<PartitionWrite>,
        now_ms: i64,
    ) -> BoxFuture<'static, Vec<AppendResult>> {
        let answers = writes
            .into_iter()
            .map(|write| self.enqueue(write, AppendOrigin::Coordinator, now_ms))
            .collect();
        answered(answers)
    }

    /// Queues a control batch per marker, in order, among the other writes; each is
    /// answered with the marker's offset once committed, or refused as the local engine's
    /// `append_marker` refuses it (an older producer epoch, an older coordinator epoch).
    pub fn write_markers(
        &self,
        markers: &[MarkerWrite],
        now_ms: i64,
    ) -> BoxFuture<'static, Vec<AppendResult>> {
        let answers = markers
            .iter()
            .map(|marker| self.enqueue_marker(marker, now_ms))
            .collect();
        answered(answers)
    }

    /// Validates one write and queues it, or says why not.
    fn enqueue(
        &self,
        write: PartitionWrite,
        origin: AppendOrigin,
        now_ms: i64,
    ) -> Result<oneshot::Receiver<AppendResult>, Refused> {
        let Some(config) = self.shared.configs.read().get(&write.tp.topic_id).cloned() else {
            return Err(Refused::UnknownPartition);
        };
        let headers = validate::validate_write(&write.tp, &write.records, &config, origin, now_ms)
            .map_err(|error| Refused::Log {
                error,
                log_start_offset: self.shared.log_start_offset(&write.tp),
            })?;
        let coordinator = origin == AppendOrigin::Coordinator;
        self.queue_write(write.tp, write.records.freeze(), headers, None, coordinator)
    }

    /// Encodes one marker's control batch and queues it.
    fn enqueue_marker(
        &self,
        marker: &MarkerWrite,
        now_ms: i64,
    ) -> Result<oneshot::Receiver<AppendResult>, Refused> {
        if !self.shared.configs.read().contains_key(&marker.tp.topic_id) {
            return Err(Refused::UnknownPartition);
        }
        let refused = |error| Refused::Log {
            error,
            log_start_offset: self.shared.log_start_offset(&marker.tp),
        };
        if marker.producer_id < 0 || marker.producer_epoch < 0 {
            return Err(refused(LogError::InvalidRecord(format!(
                "a transaction marker needs a producer id and epoch, not {} and {}",
                marker.producer_id, marker.producer_epoch
            ))));
        }
        let control_type = if marker.commit {
            ControlRecordType::Commit
        } else {
            ControlRecordType::Abort
        };
        let batch = encode_end_txn_marker(
            marker.producer_id,
            marker.producer_epoch,
            EndTxnMarker {
                control_type,
                coordinator_epoch: marker.coordinator_epoch,
            },
            now_ms,
        )
        .map_err(refused)?;
        let header = BatchHeader::parse(&batch).map_err(refused)?;
        self.queue_write(
            marker.tp.clone(),
            batch.freeze(),
            vec![header],
            Some(QueuedMarker {
                coordinator_epoch: marker.coordinator_epoch,
                control_type,
            }),
            marker.from_coordinator,
        )
    }

    /// Counts a checked write's bytes as pending and queues it, or refuses it when too
    /// many bytes wait already.
    fn queue_write(
        &self,
        tp: TopicPartition,
        records: Bytes,
        headers: Vec<BatchHeader>,
        marker: Option<QueuedMarker>,
        coordinator: bool,
    ) -> Result<oneshot::Receiver<AppendResult>, Refused> {
        let size_bytes = records.len();
        let pending_before = self
            .shared
            .pending_bytes
            .fetch_add(size_bytes, Ordering::AcqRel);
        // Counted before the check, so the guard below gives the bytes back either way.
        let pending = PendingBytes {
            shared: Arc::clone(&self.shared),
            size_bytes,
        };
        if pending_before + size_bytes > self.settings.pending_bytes_max {
            return Err(storage_error(format!(
                "more than {} bytes are waiting for the bucket and PostgreSQL; retry later",
                self.settings.pending_bytes_max
            )));
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(PendingWrite {
                tp,
                records,
                headers,
                marker,
                coordinator,
                reply,
                _pending: pending,
            })
            .map_err(|_| {
                storage_error("the cluster appender has stopped and takes no writes".into())
            })?;
        Ok(answer)
    }

    pub fn stats(&self) -> AppendStats {
        let c = &self.shared.counters;
        AppendStats {
            objects_put: c.objects_put.load(Ordering::Relaxed),
            bytes_put: c.bytes_put.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            records_committed: c.records_committed.load(Ordering::Relaxed),
            batches_committed: c.batches_committed.load(Ordering::Relaxed),
            flushes_failed: c.flushes_failed.load(Ordering::Relaxed),
        }
    }

    /// Bytes of writes queued or in flight, not yet answered.
    pub fn pending_bytes(&self) -> usize {
        self.shared.pending_bytes.load(Ordering::Acquire)
    }
}

/// Waits for each queued write's answer, in order; a refusal made before queueing is
/// answered as it is.
fn answered(
    answers: Vec<Result<oneshot::Receiver<AppendResult>, Refused>>,
) -> BoxFuture<'static, Vec<AppendResult>> {
    Box::pin(async move {
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(match answer {
                Ok(receiver) => receiver.await.unwrap_or_else(|_| {
                    // The write was dropped unanswered: its flush's task ended (the
                    // appender stopped, or a bug panicked it). Whether it was committed
                    // is unknown, so the producer must retry.
                    Err(storage_error(
                        "the cluster appender stopped before committing this write to \
                         PostgreSQL; retry"
                            .into(),
                    ))
                }),
                Err(refused) => Err(refused),
            });
        }
        results
    })
}
