//! Compaction of topics whose `cleanup.policy` holds `compact`, by every broker's janitor
//! (a loop of its own beside the lease's passes), one broker at a time per partition: a
//! broker claims a partition's row of `compaction_jobs` for [`CLAIM`], and only the
//! claim's holder may commit the result.
//!
//! One job on one partition:
//! 1. the plan (`compaction/plan.rs`): its chunks from the log start, the clean ones (below
//!    `clean_through`) then the dirty ones, and whether a clean is due;
//! 2. the key map: the dirty chunks are read (offsets written in) and the newest offset of
//!    each of their keys noted, until the map holds [`KEY_MAP_BYTES_MAX`];
//! 3. every planned chunk is read again in order (the dirty ones are kept from step 2, up
//!    to [`DIRTY_BYTES_HELD_MAX`]) and cleaned against the map (`compaction/clean.rs`),
//!    and the whole planned range is written anew (`compaction/output.rs`): the cleaned
//!    copies, their offsets real (`offsets_in_object`), gathered into chunks of about
//!    [`output::CHUNK_BYTES`] and objects of about [`output::OBJECT_BYTES`]. As in Kafka's
//!    cleaner, the clean part is rewritten too: the dirty share that makes a job due
//!    (`min.cleanable.dirty.ratio`) bounds that cost, and the partition's chunk count
//!    stays small;
//! 4. each object is PUT (recorded pending first, as produce does), then committed in one
//!    transaction that locks the partition row (produce commits and retention lock it
//!    too), checks and renews the claim, checks that every replaced chunk is still there
//!    as planned, swaps the chunk rows, lowers `size_bytes`, and marks the objects that
//!    lost their last chunk (they stay readable for the janitor's grace). The last commit
//!    moves `clean_through`.
//!
//! Offsets never move: a kept record keeps its offset, and a gap is left where records
//! went, which readers step over as they do in Kafka. Tombstones stay for
//! `delete.retention.ms` after their first clean: a chunk records when that was
//! (`tombstones_since_ms`), and its copies carry it on; copies whose tombstones were
//! first cleaned at different times never share a chunk. Transaction markers stay for
//! good, as the local engine's cleaner keeps them.
//!
//! A job that meets a change (retention or a deleted topic took a chunk it read, the claim
//! expired) drops its last object, which the janitor's object step deletes; what it
//! committed before stays, each commit being a whole, valid replacement. A stopping
//! janitor ends its job between chunks.

mod clean;
mod output;
pub mod plan;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use std::sync::Arc;

use uuid::Uuid;
use weir_log::cleaner::{AbortedRanges, KeyMap};
use weir_log::{AbortedTxn, LogConfig};

use super::{Context, PassReport, PARTITIONS_PER_PASS_MAX};
use crate::error::ClusterError;
use crate::object::PartitionKey;
use clean::Transactions;
use output::Output;
use plan::{ChunkInfo, PartitionView, Plan};

/// How long a claim on a partition's compaction lasts; each of a job's commits checks it
/// and renews it, and so does the job between chunks (every [`CLAIM_RENEWAL`]); a job
/// that loses it commits nothing more.
pub const CLAIM: Duration = Duration::from_secs(120);
/// How often a job renews its claim between commits.
const CLAIM_RENEWAL: Duration = Duration::from_secs(30);
/// Bytes of dirty chunks a job holds from its key map's step to its rewrite; dirty chunks
/// beyond are read again.
const DIRTY_BYTES_HELD_MAX: usize = 32 * 1024 * 1024;
/// Jobs one broker's janitor runs in one pass.
pub const JOBS_PER_PASS_MAX: usize = 4;
/// The key map's bound (keys and a per-entry allowance): the dirty chunks a job takes
/// stop once it is reached.
pub const KEY_MAP_BYTES_MAX: usize = 64 * 1024 * 1024;
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
        if jobs == JOBS_PER_PASS_MAX || context.stopping.load(Ordering::Relaxed) {
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
                    min(c.max_timestamp) \
                      FILTER (WHERE c.last_offset >= p.clean_through AND c.max_timestamp >= 0) \
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
        // The plan decides exactly (lags, the last stable offset); this only skips the
        // partitions that cannot be due.
        if plan::due(dirty, total, oldest_dirty, &candidate.config, now_ms) {
            due.push(candidate);
        }
    }
    due.sort_by_key(|c| c.partition_id);
    Ok((due, next_cursor))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Claims the partition's compaction for this broker; `false` when another holds it, or
/// the partition is gone (a deleted topic's rows are cleaned up, and must not be left
/// with a claim).
async fn claim(context: &Context, partition_id: i64, node_id: i32) -> Result<bool, ClusterError> {
    let claimed = context
        .session
        .query(
            "a compaction claim",
            context.settings.statement_timeout,
            "INSERT INTO compaction_jobs AS j (partition_id, due_at, claimed_by, claim_expires_at) \
             SELECT $1, now(), $2, now() + $3::bigint * interval '1 millisecond' \
             WHERE EXISTS (SELECT 1 FROM partitions \
                           WHERE partition_id = $1 AND deleted_at IS NULL) \
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
    let Some((mut plan, txns)) = make_plan(context, candidate, now_ms).await? else {
        return Ok(done);
    };
    let stopping = || context.stopping.load(Ordering::Relaxed);
    let mut renewal = Renewal::new(candidate.partition_id, node_id);
    // 2. The key map of the dirty chunks, whose bytes are kept for step 3 (up to a bound;
    // the rest are read again there).
    let txns = Arc::new(txns);
    let mut keys = KeyMap::new();
    let mut dirty: Vec<(ChunkInfo, Option<Vec<u8>>)> = Vec::with_capacity(plan.dirty().len());
    let mut held = 0usize;
    for chunk in plan.dirty() {
        if stopping() || !renewal.keep(context).await? {
            return Ok(done);
        }
        let (chunk, bytes) = read_chunk(context, chunk).await?;
        let txns = Arc::clone(&txns);
        let (map, bytes) = blocking(move || {
            clean::add_keys(&chunk, &bytes, &txns, &mut keys)?;
            Ok((keys, bytes))
        })
        .await?;
        keys = map;
        let keep = held + bytes.len() <= DIRTY_BYTES_HELD_MAX;
        held += if keep { bytes.len() } else { 0 };
        dirty.push((chunk, keep.then_some(bytes)));
        if keys.bytes() >= KEY_MAP_BYTES_MAX {
            break;
        }
    }
    plan.take_dirty(dirty.len());
    let keys = Arc::new(keys);

    // 3 and 4. The planned range cleaned and written anew, committed object by object.
    let delete_retention_ms = candidate.config.delete_retention_ms;
    let mut output = Output::new(context, candidate.partition_id, candidate.key, node_id);
    let clean = plan.clean().iter().map(|chunk| (*chunk, None, true));
    let dirty = dirty
        .into_iter()
        .map(|(chunk, bytes)| (chunk, bytes, false));
    let pieces: Vec<(ChunkInfo, Option<Vec<u8>>, bool)> = clean.chain(dirty).collect();
    for (chunk, bytes, was_clean) in pieces {
        if stopping() || !renewal.keep(context).await? {
            return Ok(done);
        }
        let bytes = match bytes {
            Some(bytes) => bytes,
            None => read_chunk(context, &chunk).await?.1,
        };
        // Tombstones go delete.retention.ms after their first clean; a dirty chunk's are
        // cleaned for the first time now.
        let since = chunk.tombstones_since_ms.filter(|_| was_clean);
        let keep_tombstones = since.is_none_or(|t| t.saturating_add(delete_retention_ms) >= now_ms);
        let (keys, txns) = (Arc::clone(&keys), Arc::clone(&txns));
        let cleaned =
            blocking(move || clean::clean_chunk(&chunk, &bytes, &txns, &keys, keep_tombstones))
                .await?;
        let since = (cleaned.tombstones_kept > 0).then(|| since.unwrap_or(now_ms));
        if !output.push(chunk, cleaned.bytes, since, &mut done).await? {
            return Ok(done);
        }
    }
    if output.finish(plan.clean_through, &mut done).await? {
        done.compacted = true;
    }
    Ok(done)
}

/// A job's claim, renewed every [`CLAIM_RENEWAL`] between chunks: reading thousands of
/// small chunks before the first commit (which renews it too) may take longer than the
/// claim lasts.
struct Renewal {
    partition_id: i64,
    node_id: i32,
    renewed_at: Instant,
}

impl Renewal {
    fn new(partition_id: i64, node_id: i32) -> Renewal {
        Renewal {
            partition_id,
            node_id,
            renewed_at: Instant::now(),
        }
    }

    /// Whether the claim is still this broker's, renewing it when due.
    async fn keep(&mut self, context: &Context) -> Result<bool, ClusterError> {
        if self.renewed_at.elapsed() < CLAIM_RENEWAL {
            return Ok(true);
        }
        let started = Instant::now();
        let kept = claim(context, self.partition_id, self.node_id).await?;
        self.renewed_at = started;
        if !kept {
            tracing::warn!(partition_id = self.partition_id, "a compaction lost its claim (another broker took it, or the partition is gone); it stops");
        }
        Ok(kept)
    }
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
            "SELECT base_offset, last_offset, object_id, position, size_bytes, \
                    max_timestamp, offsets_in_object, tombstones_since_ms \
             FROM chunks WHERE partition_id = $1 AND last_offset >= $2 \
             ORDER BY base_offset LIMIT $3",
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
            tombstones_since_ms: r.get(7),
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
