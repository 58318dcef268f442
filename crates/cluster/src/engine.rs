//! `ClusterLog`: the cluster engine behind the broker's storage traits (`weir_log::store`),
//! so a broker holds it as `Arc<dyn Engine>` exactly as it holds the single node's
//! `LocalLog`.
//!
//! It is a thin layer over the pieces that do the work: the [`Appender`] (appends, the
//! coordinators' writes and transaction markers, all through one ordered commit path) and
//! the [`Reader`] (reads, watches, offsets and timestamp lookups), sharing one
//! [`PartitionIds`]. The appender tells the reader of every commit before it answers
//! (its commit hook): the reader moves the partitions' high watermarks, wakes their
//! watchers and keeps the object whole in its cache, so a tail read on the writing broker
//! needs neither the notification round trip nor a GET.
//!
//! What the cluster engine does not do here: retention (the janitor enforces it across the
//! cluster, and deletes the chunks and objects below a partition's log start) and
//! compaction (not supported in cluster mode yet). `LogLifecycle` does not create or mark
//! deleted the `partitions` rows either: the catalog commit does (`PgCatalog::commit`).
//!
//! Layout: this file (the engine, `LogStore`, `CoordinatorLog`, `LogLifecycle`),
//! `engine/admin.rs` (`LogAdmin`), `engine/txn.rs` (`TxnLog`).

mod admin;
mod txn;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, Notify};
use uuid::Uuid;
use weir_log::store::{
    Acks, AppendResult, BoxFuture, CoordinatorLog, EngineCounter, LogLifecycle, LogStore, Opening,
    PartitionRead, PartitionWrite, ReadSpec, Refused, StoreError, TopicPartition,
};
use weir_log::{LogConfig, LogError};

use crate::bucket::Bucket;
use crate::error::ClusterError;
use crate::fetch::{ReadSettings, ReadStats, Reader};
use crate::janitor::JanitorStatsHandle;
use crate::notify::Signal;
use crate::partitions::PartitionIds;
use crate::pg::Session;
use crate::produce::{AppendSettings, AppendStats, Appender, CommitHook, CommittedFlush};

/// The settings of the engine's two halves.
#[derive(Debug, Clone, Default)]
pub struct ClusterLogSettings {
    pub append: AppendSettings,
    /// The reader's bounds; its statement timeout also bounds the engine's own statements
    /// (DeleteRecords, sizes, producer states).
    pub read: ReadSettings,
}

/// The cluster engine of one broker. Dropping it stops taking writes (the flushes already
/// cut are still committed) and stops following the commit notifications.
pub struct ClusterLog {
    appender: Appender,
    reader: Arc<Reader>,
    ids: Arc<PartitionIds>,
    session: Arc<Session>,
    statement_timeout: Duration,
    /// The janitor's totals, published with the engine's once the broker attaches them.
    janitor: OnceLock<JanitorStatsHandle>,
}

impl ClusterLog {
    /// Starts the appender and the reader over one `session`, one `bucket` and one cache
    /// of partition ids. `signals` (the listener's) let the reader trust its cached high
    /// watermarks and wake watchers on other brokers' commits; without them every read
    /// asks PostgreSQL.
    pub fn start(
        session: Arc<Session>,
        bucket: Bucket,
        signals: Option<broadcast::Receiver<Signal>>,
        settings: ClusterLogSettings,
    ) -> ClusterLog {
        let ids = Arc::new(PartitionIds::new(Arc::clone(&session)));
        let reader = Arc::new(Reader::start(
            Arc::clone(&session),
            bucket.clone(),
            Arc::clone(&ids),
            signals,
            settings.read.clone(),
        ));
        // Weak: the appender's tasks outlive the engine until their last flush commits,
        // and must not keep the reader (and its follower task) alive that long.
        let own_reader: Weak<Reader> = Arc::downgrade(&reader);
        let on_commit: CommitHook = Arc::new(move |flush: &CommittedFlush| {
            let Some(reader) = own_reader.upgrade() else {
                return;
            };
            reader.cache_object(flush.object_id, flush.object.clone());
            for &(partition_id, next_offset) in &flush.next_offsets {
                reader.note_committed(partition_id, next_offset);
            }
        });
        let appender = Appender::start(
            Arc::clone(&session),
            bucket,
            Arc::clone(&ids),
            settings.append,
            Some(on_commit),
        );
        ClusterLog {
            appender,
            reader,
            ids,
            session,
            statement_timeout: settings.read.statement_timeout,
            janitor: OnceLock::new(),
        }
    }

    /// Publishes the janitor's totals (retention, compaction, object deletion) with the
    /// engine's counters; a second call is ignored.
    pub fn publish_janitor(&self, handle: JanitorStatsHandle) {
        let _ = self.janitor.set(handle);
    }

    /// Fences the coordinators' writes ([`CoordinatorLog::append_internal`]) to this broker
    /// as registered: from now on they commit only while it is the controller by
    /// PostgreSQL's view, and are refused with NOT_COORDINATOR otherwise.
    pub fn set_coordinator_fence(&self, fence: crate::CoordinatorFence) {
        self.appender.set_coordinator_fence(fence);
    }

    /// What the produce path has done since start.
    pub fn append_stats(&self) -> AppendStats {
        self.appender.stats()
    }

    /// What the fetch path has done since start.
    pub fn read_stats(&self) -> ReadStats {
        self.reader.stats()
    }

    /// The partition's row id, or `UnknownPartition` when it has no live row.
    async fn partition_id(&self, tp: &TopicPartition) -> Result<i64, StoreError> {
        self.ids
            .id(tp)
            .await
            .map_err(|e| storage_error("the lookup of a partition", &e))?
            .ok_or(StoreError::UnknownPartition)
    }

    /// Runs one of the engine's own statements, bounded.
    async fn bounded<T>(
        &self,
        what: &'static str,
        f: impl std::future::Future<Output = Result<T, ClusterError>>,
    ) -> Result<T, StoreError> {
        self.session
            .bounded(what, self.statement_timeout, f)
            .await
            .map_err(|e| storage_error(what, &e))
    }
}

/// A failure of PostgreSQL as the storage error a partition's call fails with
/// (KAFKA_STORAGE_ERROR, which clients retry).
fn storage_error(what: &str, e: &ClusterError) -> StoreError {
    StoreError::Log(LogError::Io(std::io::Error::other(format!(
        "{what} failed in PostgreSQL: {e}"
    ))))
}

/// A refused write as the error of a call about one partition.
fn refused_error(refused: Refused) -> StoreError {
    match refused {
        Refused::Log { error, .. } => StoreError::Log(error),
        Refused::UnknownPartition => StoreError::UnknownPartition,
    }
}

impl LogStore for ClusterLog {
    fn append(
        &self,
        writes: Vec<PartitionWrite>,
        acks: Acks,
        now_ms: i64,
    ) -> BoxFuture<'static, Vec<AppendResult>> {
        self.appender.append(writes, acks, now_ms)
    }

    fn read<'a>(
        &'a self,
        reads: &'a [ReadSpec],
        max_bytes: usize,
    ) -> BoxFuture<'a, Vec<Option<PartitionRead>>> {
        Box::pin(self.reader.read(reads, max_bytes))
    }

    fn watch(&self, tp: &TopicPartition) -> Option<Arc<Notify>> {
        self.reader.watch(tp)
    }
}

impl CoordinatorLog for ClusterLog {
    /// One step's writes go into the queue together, so they usually share one flush and
    /// one commit; the step fails with the first write refused (the others may be stored,
    /// as with the local engine, and the coordinator's replay reads them back).
    fn append_internal(
        &self,
        topic: &str,
        writes: Vec<PartitionWrite>,
        now_ms: i64,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        debug_assert!(
            writes.iter().all(|w| w.tp.topic == topic),
            "a coordinator step writes one internal topic"
        );
        let answers = self.appender.append_internal(writes, now_ms);
        Box::pin(async move {
            for result in answers.await {
                result.map_err(refused_error)?;
            }
            Ok(())
        })
    }
}

impl LogLifecycle for ClusterLog {
    /// The rows exist already (the catalog commit made them): opening a topic's partitions
    /// only gives the appender its settings. A new topic has a new id, so nothing of an
    /// earlier topic of its name can be mistaken for its data.
    fn open_partitions(
        &self,
        _topic: &str,
        topic_id: Uuid,
        _partitions: std::ops::Range<i32>,
        config: &LogConfig,
        _opening: Opening,
    ) -> Result<(), StoreError> {
        self.appender.set_topic_config(topic_id, config.clone());
        Ok(())
    }

    /// Writes are refused as unknown from now on, cached states and ids are dropped and
    /// the watchers woken (their next read finds the row gone). The data is the janitor's
    /// to delete.
    fn delete_topic(&self, _topic: &str, topic_id: Uuid) -> Result<(), StoreError> {
        self.appender.forget_topic(topic_id);
        self.reader.forget_topic(topic_id);
        // The reader forgot the shared ids already; this covers ids cached meanwhile.
        self.ids.forget_topic(topic_id);
        Ok(())
    }

    fn set_config(&self, _topic: &str, topic_id: Uuid, config: &LogConfig) {
        self.appender.set_topic_config(topic_id, config.clone());
    }

    /// The object-store requests and PostgreSQL commits behind produce and fetch: what a
    /// cluster costs per megabyte.
    fn counters(&self) -> Vec<EngineCounter> {
        let (a, r) = (self.append_stats(), self.read_stats());
        let counter = |name, help, bytes, value| EngineCounter {
            name,
            help,
            bytes,
            value,
        };
        let mut counters = vec![
            counter(
                "cluster_object_puts",
                "Objects written to the bucket (one PUT each).",
                false,
                a.objects_put,
            ),
            counter(
                "cluster_object_put",
                "Bytes written to the bucket.",
                true,
                a.bytes_put,
            ),
            counter(
                "cluster_flush_commits",
                "PostgreSQL transactions that gave a flush's batches their offsets.",
                false,
                a.commits,
            ),
            counter(
                "cluster_flushes_failed",
                "Flushes failed by the bucket or PostgreSQL.",
                false,
                a.flushes_failed,
            ),
            counter(
                "cluster_object_gets",
                "Ranged GETs from the bucket.",
                false,
                r.gets,
            ),
            counter(
                "cluster_object_get",
                "Bytes read from the bucket.",
                true,
                r.bytes_got,
            ),
            counter(
                "cluster_read_queries",
                "PostgreSQL reads of the object index for fetches the cache could not answer.",
                false,
                r.read_queries,
            ),
            counter(
                "cluster_cache_hits",
                "Chunks of records found in the memory cache.",
                false,
                r.cache_hits,
            ),
            counter(
                "cluster_cache_misses",
                "Chunks of records not in the memory cache.",
                false,
                r.cache_misses,
            ),
            counter(
                "cluster_disk_cache_hits",
                "Chunks of records the memory cache missed and the disk cache held.",
                false,
                r.disk_cache_hits,
            ),
        ];
        if let Some(j) = self.janitor.get().map(JanitorStatsHandle::stats) {
            counters.extend([
                counter(
                    "cluster_compactions",
                    "Partition compactions this broker finished.",
                    false,
                    j.partitions_compacted,
                ),
                counter(
                    "cluster_compaction_removed",
                    "Bytes this broker's compactions took off their partitions.",
                    true,
                    j.compaction_bytes_removed,
                ),
                counter(
                    "cluster_retention_chunks_deleted",
                    "Chunks retention and DeleteRecords deleted while this broker was the janitor.",
                    false,
                    j.chunks_deleted,
                ),
                counter(
                    "cluster_objects_deleted",
                    "Objects deleted from the bucket while this broker was the janitor.",
                    false,
                    j.objects_deleted,
                ),
                counter(
                    "cluster_janitor_errors",
                    "Janitor steps that failed on this broker (each runs again next pass).",
                    false,
                    j.errors,
                ),
            ]);
        }
        counters
    }
}
