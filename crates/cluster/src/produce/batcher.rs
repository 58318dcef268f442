//! The two tasks behind an [`super::Appender`]: the batcher cuts the queue of writes into
//! flushes and prepares each one (partition ids, the object, its pending row, the PUT),
//! several at once; the committer commits the prepared flushes one at a time, in the
//! order they were cut, and answers their writes.
//!
//! Commits in cut order are what keep a producer's pipelined requests in order: a later
//! flush's PUT may finish first, but its offsets are assigned after the earlier flush's.
//! At most `puts_in_flight_max` flushes are between their cut and the end of their commit;
//! while all of them are, new writes wait in the queue (bounded by `pending_bytes_max`)
//! and go into the next flush together.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weir_log::store::{Acked, Refused};

use super::commit::{self, CommitWrite, WriteOutcome};
use super::{storage_error, AppendSettings, CommitHook, CommittedFlush, PendingWrite, Shared};
use crate::bucket::Bucket;
use crate::error::ClusterError;
use crate::object::{
    footer_size_bytes, ObjectBuilder, PartitionKey, CHUNKS_PER_OBJECT_MAX, OBJECT_BYTES_MAX,
};
use crate::partitions::PartitionIds;
use crate::pg::Session;

/// What the tasks work with.
pub(super) struct Context {
    pub shared: Arc<Shared>,
    /// Single statements: partition ids, object ids.
    pub session: Arc<Session>,
    /// The commits' own connection.
    pub commit_session: Arc<Session>,
    pub bucket: Bucket,
    pub ids: Arc<PartitionIds>,
    pub settings: AppendSettings,
    /// Hears each commit that stored records.
    pub on_commit: Option<CommitHook>,
}

/// Starts the batcher, which starts the committer; both end once the queue is closed and
/// drained.
pub(super) fn spawn(context: Context, queued: mpsc::UnboundedReceiver<PendingWrite>) {
    let context = Arc::new(context);
    let in_flight = context.settings.puts_in_flight_max;
    let (prepared_tx, prepared_rx) = mpsc::channel(in_flight);
    tokio::spawn(commit_in_order(Arc::clone(&context), prepared_rx));
    tokio::spawn(cut_flushes(context, queued, prepared_tx));
}

/// The writes of one flush, in queue order, and what they add up to.
#[derive(Default)]
struct Flush {
    writes: Vec<PendingWrite>,
    size_bytes: usize,
}

impl Flush {
    /// Whether `write` fits in this flush's object (one chunk per write).
    fn fits(&self, write: &PendingWrite) -> bool {
        let chunk_count = self.writes.len() + 1;
        let object_size_bytes =
            self.size_bytes + write.records.len() + footer_size_bytes(chunk_count);
        chunk_count <= CHUNKS_PER_OBJECT_MAX && object_size_bytes as u64 <= OBJECT_BYTES_MAX
    }

    fn push(&mut self, write: PendingWrite) {
        self.size_bytes += write.records.len();
        self.writes.push(write);
    }
}

/// A flush ready to commit, or failed before it could be.
struct Prepared {
    /// Holds one of the `puts_in_flight_max` places until the commit is done.
    _permit: OwnedSemaphorePermit,
    outcome: Result<Option<ReadyObject>, String>,
    /// The writes still unanswered, in queue order.
    writes: Vec<PendingWrite>,
    /// Their partition ids and places in the object (empty if the flush failed before the
    /// object was built).
    commits: Vec<CommitWrite>,
}

/// The object of a flush, stored and registered as pending.
struct ReadyObject {
    object_id: i64,
    /// Its bytes, kept from the PUT to the commit only when a commit hook wants them.
    bytes: Option<Bytes>,
}

/// The batcher: cuts a flush when its window has passed since its first write, when its
/// bytes reach `batch_bytes_max`, or when the next write would not fit in its object; then
/// takes one of the places in flight and starts the flush's preparation, handing it to the
/// committer in cut order.
async fn cut_flushes(
    context: Arc<Context>,
    mut queued: mpsc::UnboundedReceiver<PendingWrite>,
    prepared: mpsc::Sender<JoinHandle<Prepared>>,
) {
    let places = Arc::new(Semaphore::new(context.settings.puts_in_flight_max));
    let mut carried: Option<PendingWrite> = None;
    loop {
        let first = match carried.take() {
            Some(write) => write,
            None => match queued.recv().await {
                Some(write) => write,
                None => return,
            },
        };
        let mut flush = Flush::default();
        flush.push(first);
        let deadline = Instant::now() + context.settings.batch_window;
        let mut closed = false;
        while flush.size_bytes < context.settings.batch_bytes_max {
            // The deadline first: a queue that never runs dry must not stretch the window.
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(deadline) => break,
                write = queued.recv() => match write {
                    Some(write) if flush.fits(&write) => flush.push(write),
                    Some(write) => {
                        carried = Some(write);
                        break;
                    }
                    None => {
                        closed = true;
                        break;
                    }
                },
            }
        }
        let permit = Arc::clone(&places)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let task = tokio::spawn(prepare(Arc::clone(&context), flush, permit));
        if prepared.send(task).await.is_err() || closed {
            return;
        }
    }
}

/// Prepares one flush: partition ids, the object, its pending row, the PUT. A failure is
/// returned as the sentence every write of the flush will be refused with.
async fn prepare(context: Arc<Context>, flush: Flush, permit: OwnedSemaphorePermit) -> Prepared {
    // 1. Partition ids (cached after the first flush that names a partition).
    let tps: Vec<_> = flush.writes.iter().map(|w| &w.tp).collect();
    let ids = match context.ids.ids(&tps).await {
        Ok(ids) => ids,
        Err(e) => {
            return Prepared {
                _permit: permit,
                outcome: Err(format!(
                    "PostgreSQL did not give the partitions' ids ({e}); retry"
                )),
                writes: flush.writes,
                commits: Vec::new(),
            };
        }
    };
    let mut known = Vec::with_capacity(flush.writes.len());
    for (write, id) in flush.writes.into_iter().zip(ids) {
        match id {
            Some(partition_id) => known.push((write, partition_id)),
            None => write.answer(Err(Refused::UnknownPartition)),
        }
    }
    if known.is_empty() {
        return Prepared {
            _permit: permit,
            outcome: Ok(None),
            writes: Vec::new(),
            commits: Vec::new(),
        };
    }

    // 2. The object: each partition's writes together, in queue order, so that a
    //    partition's accepted writes make one chunk row.
    let mut layout: Vec<usize> = (0..known.len()).collect();
    layout.sort_by_key(|&i| (known[i].0.tp.topic_id, known[i].0.tp.partition));
    let mut positions = vec![0u64; known.len()];
    let mut builder = ObjectBuilder::new();
    for &i in &layout {
        let write = &known[i].0;
        let key = PartitionKey {
            topic_id: write.tp.topic_id,
            partition: write.tp.partition,
        };
        positions[i] = builder
            .add_chunk(key, &write.records)
            .expect("validated batches, within the bounds the flush was cut by")
            .position;
    }
    let (object, _) = builder.finish();
    let object = Bytes::from(object);
    let commits: Vec<CommitWrite> = known
        .iter()
        .zip(positions)
        .map(|((write, partition_id), position)| CommitWrite {
            partition_id: *partition_id,
            headers: write.headers.clone(),
            position,
            marker: write.marker,
            coordinator: write.coordinator,
        })
        .collect();
    let writes: Vec<PendingWrite> = known.into_iter().map(|(write, _)| write).collect();

    // 3. Its id and pending row, so that a PUT whose commit never comes can be found and
    //    deleted.
    let reserved = context.bucket.reserve_object(
        &context.session,
        context.settings.node_id,
        object.len(),
        context.settings.statement_timeout,
    );
    let object_id = match reserved.await {
        Ok(id) => id,
        Err(e) => {
            return Prepared {
                _permit: permit,
                outcome: Err(format!(
                    "PostgreSQL did not register the flush's object ({e}); retry"
                )),
                writes,
                commits,
            }
        }
    };

    // 4. The PUT.
    let size_bytes = object.len() as u64;
    let kept = context.on_commit.is_some().then(|| object.clone());
    if let Err(e) = context.bucket.put(object_id, object).await {
        return Prepared {
            _permit: permit,
            outcome: Err(format!(
                "the bucket {} did not store the flush's object ({e}); retry",
                context.bucket.shown()
            )),
            writes,
            commits,
        };
    }
    let counters = &context.shared.counters;
    counters.objects_put.fetch_add(1, Ordering::Relaxed);
    counters.bytes_put.fetch_add(size_bytes, Ordering::Relaxed);
    Prepared {
        _permit: permit,
        outcome: Ok(Some(ReadyObject {
            object_id,
            bytes: kept,
        })),
        writes,
        commits,
    }
}

/// The committer: one flush at a time, in cut order, waiting for each one's preparation.
async fn commit_in_order(
    context: Arc<Context>,
    mut prepared: mpsc::Receiver<JoinHandle<Prepared>>,
) {
    while let Some(task) = prepared.recv().await {
        // A panicked preparation dropped its writes; their callers get a storage error.
        let Ok(flush) = task.await else {
            context
                .shared
                .counters
                .flushes_failed
                .fetch_add(1, Ordering::Relaxed);
            continue;
        };
        match flush.outcome {
            Ok(None) => {}
            Ok(Some(object)) => commit_flush(&context, object, flush.writes, &flush.commits).await,
            Err(sentence) => fail_flush(&context, flush.writes, &sentence),
        }
    }
}

fn fail_flush(context: &Context, writes: Vec<PendingWrite>, sentence: &str) {
    tracing::warn!(reason = sentence, "a produce flush failed");
    context
        .shared
        .counters
        .flushes_failed
        .fetch_add(1, Ordering::Relaxed);
    for write in writes {
        write.answer(Err(storage_error(sentence.to_string())));
    }
}

/// Commits one flush and answers its writes.
async fn commit_flush(
    context: &Context,
    object: ReadyObject,
    writes: Vec<PendingWrite>,
    commits: &[CommitWrite],
) {
    let object_id = object.object_id;
    let session = &context.commit_session;
    let result = session
        .bounded(
            "the commit of a produce flush",
            context.settings.statement_timeout,
            async {
                let client = session.client().await?;
                let fence = *context.shared.coordinator_fence.read();
                let result = commit::run(&client, object_id, commits, fence).await;
                if result.is_err() && !client.is_closed() {
                    // Leave the connection clean for the next flush; if even this fails,
                    // the connection is dropped below.
                    if let Err(e) = client.batch_execute("ROLLBACK").await {
                        tracing::debug!(error = %e, "ROLLBACK after a failed commit failed");
                        return Err(ClusterError::ConnectionClosed("the commit connection"));
                    }
                }
                result
            },
        )
        .await;
    let plan = match result {
        Ok(plan) => plan,
        Err(e) => {
            // A failure during COMMIT leaves the outcome unknown; the answer is the same,
            // and the producer's retry is then a duplicate.
            let sentence = format!(
                "PostgreSQL did not commit the offsets of the flush's object {object_id} ({e}); retry"
            );
            return fail_flush(context, writes, &sentence);
        }
    };
    let counters = &context.shared.counters;
    counters.commits.fetch_add(1, Ordering::Relaxed);
    counters
        .records_committed
        .fetch_add(plan.records_committed, Ordering::Relaxed);
    counters
        .batches_committed
        .fetch_add(plan.batches_committed, Ordering::Relaxed);
    // The hook before the answers: a producer that hears its offsets can read them back
    // from this broker at once.
    if let (Some(hook), Some(bytes)) = (&context.on_commit, object.bytes) {
        if !plan.chunks.is_empty() {
            hook(&CommittedFlush {
                object_id,
                object: bytes,
                next_offsets: plan
                    .partitions
                    .iter()
                    .map(|(&id, row)| (id, row.next_offset))
                    .collect(),
            });
        }
    }
    let mut log_start_offsets = Vec::new();
    assert_eq!(plan.outcomes.len(), writes.len(), "one outcome per write");
    for (write, outcome) in writes.into_iter().zip(plan.outcomes) {
        let result = match outcome {
            WriteOutcome::Stored {
                base_offset,
                last_offset,
                log_start_offset,
                duplicate,
            } => {
                log_start_offsets.push((write.tp.topic_id, write.tp.partition, log_start_offset));
                Ok(Acked {
                    base_offset,
                    last_offset,
                    log_start_offset,
                    duplicate,
                })
            }
            WriteOutcome::Refused {
                error,
                log_start_offset,
            } => Err(Refused::Log {
                error,
                log_start_offset,
            }),
            WriteOutcome::UnknownPartition => Err(Refused::UnknownPartition),
        };
        write.answer(result);
    }
    let mut cache = context.shared.log_start_offsets.lock();
    for (topic_id, partition, offset) in log_start_offsets {
        cache.insert((topic_id, partition), offset);
    }
}
