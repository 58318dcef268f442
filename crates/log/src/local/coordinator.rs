//! The local engine's [`CoordinatorLog`]: a coordinator step's batches are appended to
//! their partitions at once and, under `--fsync always`, made durable by one append to the
//! topic's journal (`journal.rs`), the only file fsynced, however many partitions the step
//! touched. On start, [`LocalLog::recover_journal`] puts back what a crash took from the
//! partitions before the coordinator replays them.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::journal::{OffsetsJournal, JOURNAL_BYTES_MAX};
use super::{ready, LocalLog, LocalPartition};
use crate::batch::BatchHeader;
use crate::store::{BoxFuture, CoordinatorLog, PartitionWrite, StoreError};
use crate::{FsyncPolicy, LogError};

impl LocalLog {
    /// Opens the journal of `topic`'s coordinator at `path` and puts back into the topic
    /// every journalled batch a partition lacks (lost with the page cache in a crash), at
    /// the offset it had; then fsyncs those partitions and empties the journal. Later
    /// coordinator writes to `topic` go through this journal. Call it once per topic,
    /// after its partitions are open and before the coordinator replays them.
    pub fn recover_journal(&self, topic: &str, path: &Path, now_ms: i64) -> Result<(), LogError> {
        let (mut journal, entries) = OffsetsJournal::open(path)
            .map_err(|e| LogError::Io(std::io::Error::other(format!("{}: {e}", path.display()))))?;
        let mut restored = 0usize;
        let mut named = BTreeSet::new();
        for entry in entries {
            let Some(p) = self.partition(topic, entry.partition) else {
                tracing::warn!(
                    partition = entry.partition,
                    "the journal names a partition {topic} lacks; skipped"
                );
                continue;
            };
            named.insert(entry.partition);
            let Ok(header) = BatchHeader::parse(&entry.batch) else {
                continue;
            };
            let mut log = p.log.lock();
            if header.base_offset < log.log_end_offset() {
                continue; // the partition has it (maybe only in the page cache: synced below)
            }
            let mut batch = entry.batch;
            let outcome = log.append_internal(&mut batch, now_ms)?;
            if outcome.base_offset != header.base_offset {
                tracing::error!(
                    partition = entry.partition,
                    journalled = header.base_offset,
                    appended = outcome.base_offset,
                    missing_offsets = header.base_offset - outcome.base_offset,
                    "a journalled batch went back at another offset: the partition lost data the journal does not hold"
                );
            }
            restored += 1;
        }
        // Every partition the journal covers goes to disk before the journal is emptied:
        // after a process crash its batches may still be only in the page cache.
        for index in named {
            if let Some(p) = self.partition(topic, index) {
                let started = Instant::now();
                p.log.lock().sync()?;
                (self.fsync_observer)(started.elapsed());
            }
        }
        journal.reset()?;
        if restored > 0 {
            tracing::info!(
                batches = restored,
                "restored coordinator writes to {topic} from its journal"
            );
        }
        self.journals
            .lock()
            .insert(topic.to_string(), Arc::new(Mutex::new(journal)));
        Ok(())
    }
}

impl CoordinatorLog for LocalLog {
    fn append_internal(
        &self,
        topic: &str,
        writes: Vec<PartitionWrite>,
        now_ms: i64,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        // 1. Append each batch under its partition's lock.
        let mut written: Vec<(i32, Arc<LocalPartition>, Vec<u8>)> = Vec::new();
        for mut write in writes {
            debug_assert_eq!(write.tp.topic, topic);
            let Some(p) = self.partition(topic, write.tp.partition) else {
                return ready(Err(StoreError::UnknownPartition));
            };
            if let Err(e) = p.log.lock().append_internal(&mut write.records, now_ms) {
                return ready(Err(e.into()));
            }
            written.push((write.tp.partition, p, write.records.to_vec()));
        }
        let journal = self.journals.lock().get(topic).cloned();
        let notify = move |written: &[(i32, Arc<LocalPartition>, Vec<u8>)]| {
            for (_, p, _) in written {
                p.appended.notify_waiters();
            }
        };
        // 2. Under `--fsync always`, make the step durable with one fsync of the journal
        //    (or of the partitions, for a topic without one), on the blocking pool.
        if self.fsync != FsyncPolicy::Always || written.is_empty() {
            notify(&written);
            return ready(Ok(()));
        }
        let observer = Arc::clone(&self.fsync_observer);
        // Taken now: emptying the journal syncs every partition of the topic first.
        let topic_partitions = self.topic_partitions(topic);
        Box::pin(async move {
            let outcome = tokio::task::spawn_blocking(move || {
                let result = match journal {
                    Some(journal) => journal_step(&journal, &written, &topic_partitions, &observer),
                    None => {
                        let files: Vec<_> = written
                            .iter()
                            .map(|(_, p, _)| p.log.lock().sync_handle())
                            .collect();
                        let started = Instant::now();
                        let outcomes = crate::sync_data_all(&files);
                        observer(started.elapsed());
                        outcomes
                            .into_iter()
                            .collect::<std::io::Result<Vec<()>>>()
                            .map(|_| ())
                    }
                };
                notify(&written);
                result
            })
            .await;
            match outcome {
                Ok(result) => result.map_err(|e| StoreError::Log(LogError::Io(e))),
                Err(e) => Err(StoreError::Log(LogError::Io(std::io::Error::other(
                    e.to_string(),
                )))),
            }
        })
    }
}

/// Appends a step's batches to the journal with one fsync; empties the journal (after
/// fsyncing every partition it covers) once it grows past [`JOURNAL_BYTES_MAX`].
fn journal_step(
    journal: &Mutex<OffsetsJournal>,
    written: &[(i32, Arc<LocalPartition>, Vec<u8>)],
    topic_partitions: &[Arc<LocalPartition>],
    observer: &crate::FsyncObserver,
) -> std::io::Result<()> {
    let mut journal = journal.lock();
    let entries: Vec<(i32, &[u8])> = written.iter().map(|(i, _, b)| (*i, &b[..])).collect();
    let started = Instant::now();
    let appended = journal.append(&entries);
    observer(started.elapsed());
    appended?;
    if journal.len() > JOURNAL_BYTES_MAX {
        // Everything the journal covers goes to disk in its partitions; then it can go.
        let files: Vec<_> = topic_partitions
            .iter()
            .map(|p| p.log.lock().sync_handle())
            .collect();
        let started = Instant::now();
        let outcomes = crate::sync_data_all(&files);
        observer(started.elapsed());
        for outcome in outcomes {
            if let Err(e) = outcome {
                // A failed fsync may not fail again: the journal stays as it is.
                journal.mark_failed();
                return Err(e);
            }
        }
        journal.reset()?;
    }
    Ok(())
}
