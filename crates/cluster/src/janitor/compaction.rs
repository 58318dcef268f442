//! Compaction of topics whose `cleanup.policy` holds `compact`, by any broker's janitor,
//! one broker at a time per partition: a broker claims a partition's row of
//! `compaction_jobs` for [`CLAIM`], and only the claim's holder may commit the result.
//!
//! One job on one partition:
//! 1. the plan (`compaction/plan.rs`): its chunks from the log start, the clean ones (below
//!    `clean_through`) then the dirty ones, and whether a clean is due;
//! 2. the key map: the dirty chunks are read (offsets written in), and the newest offset of
//!    each of their keys noted;
//! 3. each clean chunk is read and cleaned against the map (`compaction/clean.rs`) and, if
//!    anything left it, replaced by its cleaned copy; the dirty chunks are cleaned and
//!    replaced together by one chunk. Copies carry their real offsets
//!    (`offsets_in_object`); a chunk left empty is replaced by nothing;
//! 4. the copies are gathered into objects of at most [`OUTPUT_OBJECT_BYTES`], each PUT
//!    (recorded pending first, as produce does) and then committed in one transaction that
//!    locks the partition row (produce commits and retention lock it too), checks the claim
//!    and that every replaced chunk is still there as planned, swaps the chunk rows, lowers
//!    `size_bytes`, and marks the objects that lost their last chunk (they stay readable
//!    for the janitor's grace). The last commit moves `clean_through`.
//!
//! Offsets never move: a kept record keeps its offset, and a gap is left where records
//! went, which readers step over as they do in Kafka. A tombstone in a chunk that was
//! cleaned before goes once `delete.retention.ms` has passed since the object holding it
//! was written (that is, since its last clean, as Kafka before KIP-534 counted it from a
//! segment's last change); one in a dirty chunk stays. Transaction markers stay for good,
//! as the local engine's cleaner keeps them.
//!
//! Each commit renews the claim. A job that meets a change (retention or a deleted topic
//! took a chunk it read, the claim expired) drops its last object, which the janitor's object step deletes; what it
//! committed before stays, each commit being a whole, valid replacement.

mod clean;
pub mod plan;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use tokio_postgres::Client;
use uuid::Uuid;
use weir_log::cleaner::{AbortedRanges, KeyMap};
use weir_log::{AbortedTxn, LogConfig};

use super::{objects, transaction, Context, PassReport, PARTITIONS_PER_PASS_MAX};
use crate::error::ClusterError;
use crate::object::{ChunkEntry, ObjectBuilder, PartitionKey};
use clean::{CleanedChunk, Transactions};
use plan::{ChunkInfo, PartitionView, Plan};

/// How long a claim on a partition's compaction lasts; each of a job's commits checks it
/// and renews it, so a job that goes this long without a commit commits nothing more.
pub const CLAIM: Duration = Duration::from_secs(120);
/// Jobs one broker's janitor runs in one pass.
pub const JOBS_PER_PASS_MAX: usize = 4;
/// The size at which a job's output object is finished and committed.
pub const OUTPUT_OBJECT_BYTES: usize = 16 * 1024 * 1024;
/// Chunk rows one plan reads; a partition with more is planned over its first ones.
pub const CHUNK_ROWS_PER_PLAN_MAX: i64 = 10_000;
/// Aborted transactions one job reads; a job whose range holds more does not run.
pub const ABORTED_TXNS_PER_JOB_MAX: i64 = 100_000;

/// One compacted partition that may have work.
struct Candidate {
    partition_id: i64,
    key: PartitionKey,
    config: LogConfig,
}

/// What one job did.
#[derive(Debug, Default)]
struct Done {
    compacted: bool,
    bytes_removed: i64,
    objects_marked: u64,
}

/// The compaction step of one pass: the compacted partitions after `cursor` (at most
/// [`PARTITIONS_PER_PASS_MAX`]) whose dirty share may be due, at most [`JOBS_PER_PASS_MAX`]
/// jobs; returns the cursor for the next pass (0 once the last partition was looked at).
pub(super) async fn apply(
    context: &Context,
    node_id: i32,
    cursor: i64,
    now_ms: i64,
    report: &mut PassReport,
) -> i64 {
    let (candidates, next_cursor) = match candidates(context, cursor, now_ms).await {
        Ok(found) => found,
        Err(e) => {
            context.error("compaction's partition query", &e, report);
            return cursor;
        }
    };
    let mut jobs = 0;
    for candidate in candidates {
        if jobs == JOBS_PER_PASS_MAX {
            return candidate.partition_id - 1;
        }
        match claim(context, candidate.partition_id, node_id).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                context.error("a compaction claim", &e, report);
                continue;
            }
        }
        jobs += 1;
        match job(context, &candidate, node_id, now_ms).await {
            Ok(done) => {
                report.partitions_compacted += u64::from(done.compacted);
                report.compaction_bytes_removed += done.bytes_removed.max(0) as u64;
                report.objects_marked += done.objects_marked;
            }
            Err(e) => context.error("a compaction", &e, report),
        }
        if let Err(e) = release(context, candidate.partition_id, node_id).await {
            context.error("the release of a compaction claim", &e, report);
        }
    }
    next_cursor
}

/// The compacted partitions after `cursor` with dirty bytes, and the cursor to go on from.
/// One statement for the rows, one for the dirty and total bytes of the compacted ones.
async fn candidates(
    context: &Context,
    cursor: i64,
    now_ms: i64,
) -> Result<(Vec<Candidate>, i64), ClusterError> {
    let session = &context.session;
    let timeout = context.settings.statement_timeout;
    let rows = session
        .query(
            "compaction's partition query",
            timeout,
            "SELECT partition_id, topic_id, partition FROM partitions \
             WHERE deleted_at IS NULL AND partition_id > $1 AND next_offset > clean_through \
             ORDER BY partition_id LIMIT $2",
            &[&cursor, &PARTITIONS_PER_PASS_MAX],
        )
        .await?;
    let next_cursor = if (rows.len() as i64) < PARTITIONS_PER_PASS_MAX {
        0
    } else {
        rows.last().map_or(0, |r| r.get(0))
    };
    let mut compacted: BTreeMap<i64, Candidate> = BTreeMap::new();
    for row in &rows {
        let topic_id: Uuid = row.get(1);
        let Some(config) = (context.configs)(topic_id).filter(|c| c.cleanup_compact) else {
            continue;
        };
        let partition_id: i64 = row.get(0);
        let key = PartitionKey {
            topic_id,
            partition: row.get(2),
        };
        compacted.insert(
            partition_id,
            Candidate {
                partition_id,
                key,
                config,
            },
        );
    }
    if compacted.is_empty() {
        return Ok((Vec::new(), next_cursor));
    }
    let ids: Vec<i64> = compacted.keys().copied().collect();
    // The newest chunk never counts: it is never cleaned.
    let sums = session
        .query(
            "compaction's dirty bytes query",
            timeout,
            "SELECT p.partition_id, \
                    coalesce(sum(c.size_bytes) FILTER (WHERE c.last_offset >= p.clean_through), 0), \
                    coalesce(sum(c.size_bytes), 0), \
                    min(c.max_timestamp) FILTER (WHERE c.last_offset >= p.clean_through) \
             FROM partitions p JOIN chunks c ON c.partition_id = p.partition_id \
             WHERE p.partition_id = ANY($1) AND c.last_offset >= p.log_start_offset \
               AND c.base_offset < (SELECT max(n.base_offset) FROM chunks n \
                                    WHERE n.partition_id = p.partition_id) \
             GROUP BY p.partition_id",
            &[&ids],
        )
        .await?;
    let mut due = Vec::new();
    for row in sums {
        let partition_id: i64 = row.get(0);
        let (dirty, total): (i64, i64) = (row.get(1), row.get(2));
        let oldest_dirty: Option<i64> = row.get(3);
        let Some(candidate) = compacted.remove(&partition_id) else {
            continue;
        };
        let by_ratio =
            dirty > 0 && dirty as f64 >= candidate.config.min_cleanable_dirty_ratio * total as f64;
        let by_max_lag = oldest_dirty.is_some_and(|ts| {
            ts >= 0 && now_ms.saturating_sub(ts) >= candidate.config.max_compaction_lag_ms
        });
        // The plan decides exactly (lags, the last stable offset); this only skips the
        // partitions that cannot be due.
        if by_ratio || by_max_lag {
            due.push(candidate);
        }
    }
    due.sort_by_key(|c| c.partition_id);
    Ok((due, next_cursor))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Claims the partition's compaction for this broker; `false` when another holds it.
async fn claim(context: &Context, partition_id: i64, node_id: i32) -> Result<bool, ClusterError> {
    let claimed = context
        .session
        .query(
            "a compaction claim",
            context.settings.statement_timeout,
            "INSERT INTO compaction_jobs AS j (partition_id, due_at, claimed_by, claim_expires_at) \
             VALUES ($1, now(), $2, now() + $3::bigint * interval '1 millisecond') \
             ON CONFLICT (partition_id) DO UPDATE \
               SET claimed_by = $2, claim_expires_at = excluded.claim_expires_at \
               WHERE j.claimed_by IS NULL OR j.claimed_by = $2 OR j.claim_expires_at < now() \
             RETURNING partition_id",
            &[&partition_id, &node_id, &millis(CLAIM)],
        )
        .await?;
    Ok(!claimed.is_empty())
}

/// Gives the claim up, if it is still this broker's.
async fn release(context: &Context, partition_id: i64, node_id: i32) -> Result<(), ClusterError> {
    context
        .session
        .execute(
            "the release of a compaction claim",
            context.settings.statement_timeout,
            "UPDATE compaction_jobs SET claimed_by = NULL, claim_expires_at = NULL \
             WHERE partition_id = $1 AND claimed_by = $2",
            &[&partition_id, &node_id],
        )
        .await?;
    Ok(())
}

/// One job, as the module's opening describes it.
async fn job(
    context: &Context,
    candidate: &Candidate,
    node_id: i32,
    now_ms: i64,
) -> Result<Done, ClusterError> {
    let mut done = Done::default();
    let Some((plan, txns)) = make_plan(context, candidate, now_ms).await? else {
        return Ok(done);
    };
    // 2. The key map of the dirty chunks, whose bytes are kept for step 3.
    let mut dirty_bytes = Vec::with_capacity(plan.dirty().len());
    for chunk in plan.dirty() {
        dirty_bytes.push(read_chunk(context, chunk).await?);
    }
    let (keys, dirty_bytes, txns) = blocking(move || {
        let mut keys = KeyMap::new();
        for (chunk, bytes) in plan_dirty_pairs(&dirty_bytes) {
            clean::add_keys(chunk, bytes, &txns, &mut keys)?;
        }
        Ok((keys, dirty_bytes, txns))
    })
    .await?;
    let keys = std::sync::Arc::new(keys);
    let txns = std::sync::Arc::new(txns);
    let delete_retention_ms = candidate.config.delete_retention_ms;

    // 3 and 4. Replacements, gathered into objects.
    let mut output = Output::new(candidate.key);
    for chunk in plan.clean() {
        if context.stopping.load(Ordering::Relaxed) {
            // The broker is stopping: what was committed stays, the rest waits.
            return Ok(done);
        }
        let bytes = read_chunk(context, chunk).await?;
        let keep_tombstones = chunk.made_ms.saturating_add(delete_retention_ms) >= now_ms;
        let (chunk_info, keys, txns) = (*chunk, keys.clone(), txns.clone());
        let cleaned = blocking(move || {
            clean::clean_chunk(&chunk_info, &bytes.1, &txns, &keys, keep_tombstones)
        })
        .await?;
        if cleaned.changed {
            output.add(vec![*chunk], cleaned)?;
        }
        if output.full()
            && !commit_output(context, candidate, node_id, &mut output, None, &mut done).await?
        {
            return Ok(done);
        }
    }
    let (keys2, txns2) = (keys.clone(), txns.clone());
    let merged = blocking(move || {
        let mut merged = CleanedChunk::default();
        for (chunk, bytes) in plan_dirty_pairs(&dirty_bytes) {
            let cleaned = clean::clean_chunk(chunk, bytes, &txns2, &keys2, true)?;
            merged.bytes.extend_from_slice(&cleaned.bytes);
            merged.records_kept += cleaned.records_kept;
        }
        merged.changed = true;
        Ok(merged)
    })
    .await?;
    if !output.fits(merged.bytes.len())
        && !commit_output(context, candidate, node_id, &mut output, None, &mut done).await?
    {
        return Ok(done);
    }
    output.add(plan.dirty().to_vec(), merged)?;
    if commit_output(
        context,
        candidate,
        node_id,
        &mut output,
        Some(plan.clean_through),
        &mut done,
    )
    .await?
    {
        done.compacted = true;
    }
    Ok(done)
}

/// The dirty chunks and their bytes, as read.
fn plan_dirty_pairs(read: &[(ChunkInfo, Vec<u8>)]) -> impl Iterator<Item = (&ChunkInfo, &[u8])> {
    read.iter().map(|(chunk, bytes)| (chunk, bytes.as_slice()))
}

/// Runs CPU work (decompression, recompression) off the runtime's threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ClusterError> + Send + 'static,
) -> Result<T, ClusterError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ClusterError::Corrupt(format!("a compaction task failed: {e}")))?
}

/// Step 1: the partition's row, its chunks and its aborted transactions, and the plan.
async fn make_plan(
    context: &Context,
    candidate: &Candidate,
    now_ms: i64,
) -> Result<Option<(Plan, Transactions)>, ClusterError> {
    let session = &context.session;
    let timeout = context.settings.statement_timeout;
    let Some(row) = session
        .query(
            "a compaction's partition row",
            timeout,
            "SELECT log_start_offset, coalesce(first_unstable_offset, next_offset), clean_through \
             FROM partitions WHERE partition_id = $1 AND deleted_at IS NULL",
            &[&candidate.partition_id],
        )
        .await?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let view = PartitionView {
        log_start_offset: row.get(0),
        last_stable_offset: row.get(1),
        clean_through: row.get(2),
    };
    let chunks: Vec<ChunkInfo> = session
        .query(
            "a compaction's chunk query",
            timeout,
            "SELECT c.base_offset, c.last_offset, c.object_id, c.position, c.size_bytes, \
                    c.max_timestamp, c.offsets_in_object, \
                    (extract(epoch FROM o.created_at) * 1000)::bigint \
             FROM chunks c JOIN objects o ON o.object_id = c.object_id \
             WHERE c.partition_id = $1 AND c.last_offset >= $2 \
             ORDER BY c.base_offset LIMIT $3",
            &[
                &candidate.partition_id,
                &view.log_start_offset,
                &CHUNK_ROWS_PER_PLAN_MAX,
            ],
        )
        .await?
        .iter()
        .map(|r| ChunkInfo {
            base_offset: r.get(0),
            last_offset: r.get(1),
            object_id: r.get(2),
            position: r.get(3),
            size_bytes: r.get(4),
            max_timestamp: r.get(5),
            offsets_in_object: r.get(6),
            made_ms: r.get(7),
        })
        .collect();
    let Some(plan) = plan::plan(&chunks, view, &candidate.config, now_ms) else {
        return Ok(None);
    };
    let start = plan.chunks.first().map_or(0, |c| c.base_offset);
    let aborted: Vec<AbortedTxn> = session
        .query(
            "a compaction's aborted transactions",
            timeout,
            "SELECT producer_id, first_offset, last_offset FROM aborted_txns \
             WHERE partition_id = $1 AND last_offset >= $2 AND first_offset < $3 \
             ORDER BY first_offset LIMIT $4",
            &[
                &candidate.partition_id,
                &start,
                &plan.clean_through,
                &(ABORTED_TXNS_PER_JOB_MAX + 1),
            ],
        )
        .await?
        .iter()
        .map(|r| AbortedTxn {
            producer_id: r.get(0),
            first_offset: r.get(1),
            last_offset: r.get(2),
            last_stable_offset: 0,
        })
        .collect();
    if aborted.len() as i64 > ABORTED_TXNS_PER_JOB_MAX {
        return Err(ClusterError::Corrupt(format!(
            "partition {}: more than {ABORTED_TXNS_PER_JOB_MAX} aborted transactions in the range \
             a compaction would cover; it is left uncompacted",
            candidate.partition_id
        )));
    }
    let txns = Transactions {
        aborted: AbortedRanges::new(&aborted),
        last_stable_offset: view.last_stable_offset,
    };
    Ok(Some((plan, txns)))
}

/// One chunk's batches from the bucket, their offsets real.
async fn read_chunk(
    context: &Context,
    chunk: &ChunkInfo,
) -> Result<(ChunkInfo, Vec<u8>), ClusterError> {
    let start = chunk.position as u64;
    let end = start + chunk.size_bytes as u64;
    let raw = context
        .bucket
        .get_range(chunk.object_id, start..end)
        .await?;
    if raw.len() as u64 != end - start {
        return Err(ClusterError::Corrupt(format!(
            "object {} returned {} bytes for the range {start}..{end}",
            chunk.object_id,
            raw.len()
        )));
    }
    Ok((*chunk, clean::with_offsets(chunk, &raw)?))
}

/// The replacements of a job not yet committed: an object being built, and which chunks
/// each of its chunks (or nothing, for a chunk cleaned empty) replaces.
struct Output {
    key: PartitionKey,
    builder: ObjectBuilder,
    replaced: Vec<ChunkInfo>,
}

impl Output {
    fn new(key: PartitionKey) -> Output {
        Output {
            key,
            builder: ObjectBuilder::new(),
            replaced: Vec::new(),
        }
    }

    fn full(&self) -> bool {
        self.builder.object_size_bytes() >= OUTPUT_OBJECT_BYTES as u64
    }

    fn fits(&self, bytes: usize) -> bool {
        self.builder.fits(bytes)
    }

    /// `inputs` are to be replaced by `cleaned` (nothing, if it kept no batch).
    fn add(&mut self, inputs: Vec<ChunkInfo>, cleaned: CleanedChunk) -> Result<(), ClusterError> {
        if !cleaned.bytes.is_empty() {
            self.builder
                .add_chunk_with_offsets(self.key, &cleaned.bytes)
                .map_err(|e| ClusterError::Corrupt(format!("a compacted chunk: {e}")))?;
        }
        self.replaced.extend(inputs);
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.replaced.is_empty()
    }
}

/// PUTs the output's object (if it holds chunks) and commits it; `clean_through` moves
/// with the job's last commit. Returns whether the job may go on (`false` when the
/// partition changed under it). The output is empty afterwards.
async fn commit_output(
    context: &Context,
    candidate: &Candidate,
    node_id: i32,
    output: &mut Output,
    clean_through: Option<i64>,
    done: &mut Done,
) -> Result<bool, ClusterError> {
    let taken = std::mem::replace(output, Output::new(candidate.key));
    if taken.is_empty() {
        return Ok(true);
    }
    let replaced = taken.replaced;
    let object = if taken.builder.chunk_count() > 0 {
        let (bytes, footer) = taken.builder.finish();
        let object_id = reserve_object(context, node_id, bytes.len()).await?;
        if let Err(e) = context.bucket.put(object_id, bytes.into()).await {
            drop_object(context, object_id).await;
            return Err(e);
        }
        Some((object_id, footer.chunks))
    } else {
        None
    };
    let partition_id = candidate.partition_id;
    let grace = context.settings.grace;
    let object_for_commit = object.clone();
    let committed = transaction::run(
        &context.transactions,
        "a compaction commit",
        context.settings.statement_timeout,
        move |client| {
            async move {
                commit_in(
                    client,
                    partition_id,
                    node_id,
                    &replaced,
                    object_for_commit.as_ref(),
                    clean_through,
                    grace,
                )
                .await
            }
            .boxed()
        },
    )
    .await;
    match committed {
        Ok(Some(committed)) => {
            done.bytes_removed += committed.bytes_removed;
            done.objects_marked += committed.objects_marked;
            Ok(true)
        }
        Ok(None) => {
            if let Some((object_id, _)) = object {
                drop_object(context, object_id).await;
            }
            Ok(false)
        }
        Err(e) => {
            if let Some((object_id, _)) = object {
                drop_object(context, object_id).await;
            }
            Err(e)
        }
    }
}

/// Takes the next object id and records the object as pending, written by this node.
async fn reserve_object(
    context: &Context,
    node_id: i32,
    size_bytes: usize,
) -> Result<i64, ClusterError> {
    let session = &context.session;
    let key_of = |id: i64| context.bucket.object_key(id).to_string();
    session
        .bounded(
            "the reservation of a compaction's object",
            context.settings.statement_timeout,
            async {
                let client = session.client().await?;
                let object_id: i64 = client
                    .query_one("SELECT nextval('object_ids')", &[])
                    .await?
                    .get(0);
                client
                    .execute(
                        "INSERT INTO objects (object_id, key, size_bytes, state, writer_node) \
                         VALUES ($1, $2, $3, 0, $4)",
                        &[
                            &object_id,
                            &key_of(object_id),
                            &(size_bytes as i64),
                            &node_id,
                        ],
                    )
                    .await?;
                Ok(object_id)
            },
        )
        .await
}

/// Leaves a job's object for the object step to delete at once. Should this fail, the
/// object stays pending and goes once pending too long.
async fn drop_object(context: &Context, object_id: i64) {
    let result = context
        .session
        .execute(
            "the drop of a compaction's object",
            context.settings.statement_timeout,
            "UPDATE objects SET state = 2, delete_after = now() \
             WHERE object_id = $1 AND state = 0",
            &[&object_id],
        )
        .await;
    if let Err(e) = result {
        tracing::warn!(object_id, error = %e, "a compaction's unused object stays pending");
    }
}

/// What one commit did.
struct Committed {
    bytes_removed: i64,
    objects_marked: u64,
}

/// The commit of step 4, inside its transaction; `None` when the claim or the replaced
/// chunks are no longer as planned (nothing is changed then).
async fn commit_in(
    client: &Client,
    partition_id: i64,
    node_id: i32,
    replaced: &[ChunkInfo],
    object: Option<&(i64, Vec<ChunkEntry>)>,
    clean_through: Option<i64>,
    grace: Duration,
) -> Result<Option<Committed>, ClusterError> {
    let live = client
        .query_opt(
            "SELECT 1 FROM partitions WHERE partition_id = $1 AND deleted_at IS NULL FOR UPDATE",
            &[&partition_id],
        )
        .await?;
    // The claim is checked and renewed at once: a long job keeps it while it commits.
    let claimed = client
        .query_opt(
            "UPDATE compaction_jobs \
             SET claim_expires_at = now() + $3::bigint * interval '1 millisecond' \
             WHERE partition_id = $1 AND claimed_by = $2 AND claim_expires_at > now() \
             RETURNING partition_id",
            &[&partition_id, &node_id, &millis(CLAIM)],
        )
        .await?;
    if live.is_none() || claimed.is_none() {
        return Ok(None);
    }
    let bases: Vec<i64> = replaced.iter().map(|c| c.base_offset).collect();
    let objects: Vec<i64> = replaced.iter().map(|c| c.object_id).collect();
    let positions: Vec<i64> = replaced.iter().map(|c| c.position).collect();
    let present = client
        .query_one(
            "SELECT count(*) FROM chunks c \
             JOIN unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS w(base_offset, object_id, position) \
               ON c.base_offset = w.base_offset AND c.object_id = w.object_id \
                  AND c.position = w.position \
             WHERE c.partition_id = $1",
            &[&partition_id, &bases, &objects, &positions],
        )
        .await?
        .get::<_, i64>(0);
    if present != replaced.len() as i64 {
        return Ok(None);
    }
    let gone = client
        .query(
            "DELETE FROM chunks WHERE partition_id = $1 AND base_offset = ANY($2) \
             RETURNING size_bytes",
            &[&partition_id, &bases],
        )
        .await?;
    let bytes_before: i64 = gone.iter().map(|r| i64::from(r.get::<_, i32>(0))).sum();
    let mut bytes_after = 0i64;
    if let Some((object_id, chunks)) = object {
        for chunk in chunks {
            bytes_after += i64::from(chunk.size_bytes);
            client
                .execute(
                    "INSERT INTO chunks (partition_id, base_offset, last_offset, object_id, \
                                         position, size_bytes, batch_count, max_timestamp, \
                                         offsets_in_object) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true)",
                    &[
                        &partition_id,
                        &chunk.base_offset,
                        &chunk.last_offset,
                        object_id,
                        &(chunk.position as i64),
                        &(chunk.size_bytes as i32),
                        &(chunk.batch_count as i32),
                        &chunk.max_timestamp,
                    ],
                )
                .await?;
        }
        let made_live = client
            .execute(
                "UPDATE objects SET state = 1 WHERE object_id = $1 AND state = 0",
                &[object_id],
            )
            .await?;
        if made_live != 1 {
            return Err(ClusterError::Corrupt(format!(
                "object {object_id} is no longer pending; a compaction cannot make it live"
            )));
        }
    }
    let bytes_removed = bytes_before - bytes_after;
    client
        .execute(
            "UPDATE partitions SET size_bytes = greatest(size_bytes - $2, 0), \
                    clean_through = greatest(clean_through, coalesce($3, clean_through)) \
             WHERE partition_id = $1",
            &[&partition_id, &bytes_removed, &clean_through],
        )
        .await?;
    let objects_marked = objects::mark_unreferenced(client, objects, grace).await?;
    Ok(Some(Committed {
        bytes_removed,
        objects_marked,
    }))
}
