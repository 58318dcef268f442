//! The single node's engine: one [`PartitionLog`] per partition, in directories named
//! `<topic>-<partition>` under the data directory, behind the [`LogStore`] boundary.
//!
//! Appends run at once, under each partition's lock, in the caller's task: the order of a
//! connection's requests is the order of their appends. With `--fsync always`, an acks=all
//! append resolves only after every partition it wrote is fsynced; the fsync runs on the
//! blocking pool, outside the locks, and the partitions of one request are fsynced together
//! (see [`crate::sync_data_all`]), so concurrent producers share it.

mod coordinator;
mod journal;
mod lifecycle;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use crate::store::{
    Acked, Acks, AppendResult, BoxFuture, LogAdmin, LogStore, MarkerWrite, PartitionOffsets,
    PartitionRead, PartitionStatus, PartitionWrite, ReadSpec, Refused, StoreError,
    TimestampedOffset, TopicPartition, TxnLog, DELETE_TO_HIGH_WATERMARK,
};
use crate::{
    FsyncObserver, FsyncPolicy, LogConfig, LogError, PartitionLog, ProducerStateView, StoredRecord,
};

/// One partition of the local engine.
pub struct LocalPartition {
    pub topic: String,
    pub index: i32,
    pub log: Mutex<PartitionLog>,
    /// Notified on every append, so waiting fetches return the moment data arrives.
    pub appended: Arc<Notify>,
}

/// Every partition of the node, by topic name, then partition index.
pub struct LocalLog {
    data_dir: PathBuf,
    fsync: FsyncPolicy,
    /// Told the time of every fsync: the ones appends wait for and the ones logs make on
    /// their own as segments roll.
    fsync_observer: FsyncObserver,
    partitions: RwLock<HashMap<String, Vec<Arc<LocalPartition>>>>,
    /// The journal of each internal topic whose coordinator writes go through one
    /// ([`LocalLog::recover_journal`]).
    journals: Mutex<HashMap<String, Arc<Mutex<journal::OffsetsJournal>>>>,
}

impl LocalLog {
    pub fn new(data_dir: &Path, fsync: FsyncPolicy, fsync_observer: FsyncObserver) -> LocalLog {
        LocalLog {
            data_dir: data_dir.to_path_buf(),
            fsync,
            fsync_observer,
            partitions: RwLock::new(HashMap::new()),
            journals: Mutex::new(HashMap::new()),
        }
    }

    /// Where a partition's files live.
    fn partition_dir(&self, topic: &str, index: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{index}"))
    }

    /// Opens (recovering) a partition's log. It serves nothing until added with
    /// [`LocalLog::add_partitions`].
    fn open_partition(
        &self,
        topic: &str,
        index: i32,
        config: LogConfig,
    ) -> Result<Arc<LocalPartition>, LogError> {
        let mut log = PartitionLog::open(&self.partition_dir(topic, index), config)?;
        log.set_fsync_observer(Arc::clone(&self.fsync_observer));
        Ok(Arc::new(LocalPartition {
            topic: topic.to_string(),
            index,
            log: Mutex::new(log),
            appended: Arc::new(Notify::new()),
        }))
    }

    /// Adds opened partitions after the topic's others (their indexes must follow on).
    fn add_partitions(&self, topic: &str, opened: Vec<Arc<LocalPartition>>) {
        let mut map = self.partitions.write();
        let list = map.entry(topic.to_string()).or_default();
        for p in opened {
            assert_eq!(
                p.index as usize,
                list.len(),
                "partitions are added in order"
            );
            list.push(p);
        }
    }

    /// Takes a topic's partitions out of service and returns them (to be deleted).
    fn remove_topic(&self, topic: &str) -> Vec<Arc<LocalPartition>> {
        self.partitions.write().remove(topic).unwrap_or_default()
    }

    fn partition(&self, topic: &str, index: i32) -> Option<Arc<LocalPartition>> {
        let map = self.partitions.read();
        let list = map.get(topic)?;
        usize::try_from(index)
            .ok()
            .and_then(|i| list.get(i))
            .cloned()
    }

    fn topic_partitions(&self, topic: &str) -> Vec<Arc<LocalPartition>> {
        self.partitions
            .read()
            .get(topic)
            .cloned()
            .unwrap_or_default()
    }

    fn all(&self) -> Vec<Arc<LocalPartition>> {
        self.partitions.read().values().flatten().cloned().collect()
    }

    /// Appends one write under its partition's lock; the file to fsync with it when the
    /// append must wait for one.
    fn append_one(
        &self,
        write: &mut PartitionWrite,
        wait_for_fsync: bool,
        now_ms: i64,
    ) -> (AppendResult, Option<Arc<std::fs::File>>) {
        let Some(p) = self.partition(&write.tp.topic, write.tp.partition) else {
            return (Err(Refused::UnknownPartition), None);
        };
        let mut log = p.log.lock();
        match log.append(&mut write.records, now_ms) {
            Ok(outcome) => {
                let acked = Acked {
                    base_offset: outcome.base_offset,
                    last_offset: outcome.last_offset,
                    log_start_offset: log.log_start_offset(),
                    duplicate: outcome.duplicate,
                };
                // A retry already stored is fsynced again too: its first answer may have
                // been lost to a failed fsync.
                let file = wait_for_fsync.then(|| log.sync_handle());
                drop(log);
                if !outcome.duplicate {
                    p.appended.notify_waiters();
                }
                (Ok(acked), file)
            }
            Err(error) => (
                Err(Refused::Log {
                    error,
                    log_start_offset: log.log_start_offset(),
                }),
                None,
            ),
        }
    }

    /// Reads one partition; `total_bytes` is what the reads before it took.
    fn read_one(
        &self,
        spec: &ReadSpec,
        max_bytes: usize,
        total_bytes: &mut usize,
    ) -> Option<PartitionRead> {
        let p = self.partition(&spec.tp.topic, spec.tp.partition)?;
        let (slice, high_watermark, last_stable_offset, log_start_offset, aborted) = {
            let log = p.log.lock();
            let limit = spec
                .partition_max_bytes
                .min(max_bytes.saturating_sub(*total_bytes));
            let lso = log.last_stable_offset();
            let slice = if spec.read_committed {
                log.read_bounded(spec.fetch_offset, limit, lso)
            } else {
                log.read(spec.fetch_offset, limit)
            };
            let aborted = spec
                .read_committed
                .then(|| log.aborted_transactions(spec.fetch_offset, lso));
            (
                slice,
                log.high_watermark(),
                lso,
                log.log_start_offset(),
                aborted,
            )
        };
        // The file is read outside the lock: a slice stays valid while appends go on.
        let records = match slice {
            Ok(Some(slice)) => {
                // Only the first data of a response may exceed the byte limits.
                if *total_bytes > 0
                    && slice.first_batch_bytes() > max_bytes.saturating_sub(*total_bytes)
                {
                    Ok(Bytes::new())
                } else {
                    slice.load().inspect(|bytes| *total_bytes += bytes.len())
                }
            }
            Ok(None) => Ok(Bytes::new()),
            Err(e) => Err(e),
        };
        Some(PartitionRead {
            high_watermark,
            last_stable_offset,
            log_start_offset,
            aborted,
            records,
        })
    }
}

impl LocalLog {
    /// `results` once every file in `to_sync` is fsynced: at once when there is none; the
    /// result of a write whose fsync failed becomes `failed(error)`.
    fn durable<T: Send + 'static>(
        &self,
        mut results: Vec<T>,
        to_sync: Vec<(usize, TopicPartition, Arc<std::fs::File>)>,
        failed: fn(LogError) -> T,
    ) -> BoxFuture<'static, Vec<T>> {
        if to_sync.is_empty() {
            return ready(results);
        }
        let observer = Arc::clone(&self.fsync_observer);
        Box::pin(async move {
            let files: Vec<_> = to_sync.iter().map(|(_, _, f)| Arc::clone(f)).collect();
            let count = files.len();
            let outcomes = tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let outcomes = crate::sync_data_all(&files);
                observer(started.elapsed());
                outcomes
                    .into_iter()
                    .map(|r| r.map_err(|e| e.to_string()))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_else(|e| vec![Err(e.to_string()); count]);
            for ((i, tp, _), outcome) in to_sync.into_iter().zip(outcomes) {
                if let Err(e) = outcome {
                    tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "fsync failed");
                    results[i] = failed(LogError::Io(std::io::Error::other(format!(
                        "fsync failed: {e}"
                    ))));
                }
            }
            results
        })
    }

    /// Writes one marker under its partition's lock; the file to fsync with it when
    /// markers wait for one.
    fn write_marker(
        &self,
        m: &MarkerWrite,
        now_ms: i64,
    ) -> (Result<(), StoreError>, Option<Arc<std::fs::File>>) {
        let Some(p) = self.partition(&m.tp.topic, m.tp.partition) else {
            return (Err(StoreError::UnknownPartition), None);
        };
        let mut log = p.log.lock();
        if let Err(e) = log.append_marker(
            m.producer_id,
            m.producer_epoch,
            m.coordinator_epoch,
            m.commit,
            now_ms,
        ) {
            return (Err(e.into()), None);
        }
        let file = log.sync_handle_if(self.fsync == FsyncPolicy::Always);
        drop(log);
        p.appended.notify_waiters();
        (Ok(()), file)
    }
}

impl LogStore for LocalLog {
    fn append(
        &self,
        writes: Vec<PartitionWrite>,
        acks: Acks,
        now_ms: i64,
    ) -> BoxFuture<'static, Vec<AppendResult>> {
        let wait_for_fsync = acks == Acks::All && self.fsync == FsyncPolicy::Always;
        let mut results = Vec::with_capacity(writes.len());
        // (index in `results`, partition, file) of each append the answer waits to fsync.
        let mut to_sync = Vec::new();
        for (i, mut write) in writes.into_iter().enumerate() {
            let (result, file) = self.append_one(&mut write, wait_for_fsync, now_ms);
            if let Some(file) = file {
                to_sync.push((i, write.tp, file));
            }
            results.push(result);
        }
        self.durable(results, to_sync, |error| {
            Err(Refused::Log {
                error,
                log_start_offset: -1,
            })
        })
    }

    fn read<'a>(
        &'a self,
        reads: &'a [ReadSpec],
        max_bytes: usize,
    ) -> BoxFuture<'a, Vec<Option<PartitionRead>>> {
        let mut total_bytes = 0usize;
        let out = reads
            .iter()
            .map(|spec| self.read_one(spec, max_bytes, &mut total_bytes))
            .collect();
        ready(out)
    }

    fn watch(&self, tp: &TopicPartition) -> Option<Arc<Notify>> {
        self.partition(&tp.topic, tp.partition)
            .map(|p| Arc::clone(&p.appended))
    }
}

impl LocalLog {
    /// Runs `f` on a partition's log, under its lock.
    fn with_log<T>(
        &self,
        tp: &TopicPartition,
        f: impl FnOnce(&mut PartitionLog) -> Result<T, LogError>,
    ) -> Result<T, StoreError> {
        let p = self
            .partition(&tp.topic, tp.partition)
            .ok_or(StoreError::UnknownPartition)?;
        let mut log = p.log.lock();
        Ok(f(&mut log)?)
    }
}

/// A ready future: the local engine answers these calls at once.
fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

fn offsets_of(log: &PartitionLog) -> PartitionOffsets {
    PartitionOffsets {
        log_start_offset: log.log_start_offset(),
        log_end_offset: log.log_end_offset(),
        high_watermark: log.high_watermark(),
        last_stable_offset: log.last_stable_offset(),
    }
}

fn timestamped(found: Option<(i64, i64)>) -> Option<TimestampedOffset> {
    found.map(|(offset, timestamp)| TimestampedOffset { offset, timestamp })
}

impl LogAdmin for LocalLog {
    fn offsets(&self, tp: &TopicPartition) -> BoxFuture<'_, Result<PartitionOffsets, StoreError>> {
        ready(self.with_log(tp, |log| Ok(offsets_of(log))))
    }

    fn offset_for_timestamp(
        &self,
        tp: &TopicPartition,
        timestamp_ms: i64,
    ) -> BoxFuture<'_, Result<Option<TimestampedOffset>, StoreError>> {
        ready(self.with_log(tp, |log| {
            log.offset_for_timestamp(timestamp_ms).map(timestamped)
        }))
    }

    fn max_timestamp_offset(
        &self,
        tp: &TopicPartition,
    ) -> BoxFuture<'_, Result<Option<TimestampedOffset>, StoreError>> {
        ready(self.with_log(tp, |log| log.max_timestamp_offset().map(timestamped)))
    }

    fn delete_records_before(
        &self,
        tp: &TopicPartition,
        offset: i64,
    ) -> BoxFuture<'_, Result<i64, StoreError>> {
        ready(self.with_log(tp, |log| {
            let target = if offset == DELETE_TO_HIGH_WATERMARK {
                log.high_watermark()
            } else {
                offset
            };
            log.delete_records_before(target)
        }))
    }

    fn size_bytes(&self, tp: &TopicPartition) -> BoxFuture<'_, Result<u64, StoreError>> {
        ready(self.with_log(tp, |log| Ok(log.size_bytes())))
    }

    fn status(&self, tp: &TopicPartition) -> Option<PartitionStatus> {
        let p = self.partition(&tp.topic, tp.partition)?;
        let log = p.log.lock();
        Some(PartitionStatus {
            offsets: offsets_of(&log),
            size_bytes: log.size_bytes(),
            segment_count: log.segment_count(),
        })
    }

    fn read_records(
        &self,
        tp: &TopicPartition,
        from_offset: i64,
        max_records: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, StoreError>> {
        ready(self.with_log(tp, |log| {
            log.read_records(from_offset, max_records, max_bytes)
        }))
    }

    fn timestamp_at(
        &self,
        tp: &TopicPartition,
        offset: i64,
    ) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        ready(self.with_log(tp, |log| log.timestamp_at(offset)))
    }

    fn apply_retention(&self, now_ms: i64) -> BoxFuture<'static, ()> {
        let partitions = self.all();
        Box::pin(async move {
            let _ = tokio::task::spawn_blocking(move || {
                crate::housekeeping::apply_retention(&partitions, now_ms)
            })
            .await;
        })
    }

    fn compact_due(&self, now_ms: i64, stop: Arc<AtomicBool>) -> BoxFuture<'static, ()> {
        let partitions = self.all();
        Box::pin(async move {
            let _ = tokio::task::spawn_blocking(move || {
                crate::housekeeping::compact_due(&partitions, now_ms, &stop)
            })
            .await;
        })
    }

    fn flush(&self) -> BoxFuture<'static, ()> {
        let partitions = self.all();
        let observer = Arc::clone(&self.fsync_observer);
        Box::pin(async move {
            let _ = tokio::task::spawn_blocking(move || {
                crate::housekeeping::sync_all(&partitions, &observer)
            })
            .await;
        })
    }
}

impl TxnLog for LocalLog {
    fn write_markers(
        &self,
        markers: Vec<MarkerWrite>,
        now_ms: i64,
    ) -> BoxFuture<'static, Vec<Result<(), StoreError>>> {
        let mut results = Vec::with_capacity(markers.len());
        let mut to_sync = Vec::new();
        for (i, m) in markers.into_iter().enumerate() {
            let (result, file) = self.write_marker(&m, now_ms);
            if let Some(file) = file {
                to_sync.push((i, m.tp, file));
            }
            results.push(result);
        }
        self.durable(results, to_sync, |e| Err(StoreError::Log(e)))
    }

    fn has_open_transaction(
        &self,
        tp: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        let open = self.has_open_transaction_now(tp, producer_id, producer_epoch);
        ready(open.expect("the local engine answers at once"))
    }

    fn has_open_transaction_now(
        &self,
        tp: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Option<Result<bool, StoreError>> {
        Some(self.with_log(tp, |log| {
            Ok(log.has_open_transaction(producer_id, producer_epoch))
        }))
    }

    fn producers(
        &self,
        tp: &TopicPartition,
    ) -> BoxFuture<'_, Result<Vec<ProducerStateView>, StoreError>> {
        ready(self.with_log(tp, |log| Ok(log.producer_states())))
    }
}
