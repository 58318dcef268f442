//! A job's output: the cleaned copies of its chunks, in offset order, gathered into
//! chunks and objects, and each object committed in one transaction that replaces the
//! chunks it copies.
//!
//! A copy joins the chunk being gathered unless that would take it past [`CHUNK_BYTES`],
//! or both hold tombstones first cleaned at different times (a chunk has one
//! `tombstones_since_ms`). A finished chunk joins the object being built, which is PUT
//! and committed once it reaches [`OBJECT_BYTES`] (or would pass the object format's
//! bound). A copy with nothing left replaces its chunk with nothing, in the same commit
//! as the chunk gathered with it.

use std::time::Duration;

use futures::FutureExt;
use tokio_postgres::Client;

use super::plan::ChunkInfo;
use super::{millis, Done, CLAIM};
use crate::error::ClusterError;
use crate::janitor::{objects, transaction, Context};
use crate::object::{ChunkEntry, ObjectBuilder, PartitionKey};

/// The size at which a chunk being gathered is finished.
pub const CHUNK_BYTES: usize = 8 * 1024 * 1024;
/// The size at which an object being built is PUT and committed.
pub const OBJECT_BYTES: u64 = 16 * 1024 * 1024;

/// A PUT object's id and its chunks, each with its tombstones' clock.
type PutObject = (i64, Vec<(ChunkEntry, Option<i64>)>);

/// The output of one job (see the module's opening).
pub(super) struct Output<'a> {
    context: &'a Context,
    partition_id: i64,
    key: PartitionKey,
    node_id: i32,
    /// The chunk being gathered: its bytes, the chunks it copies, its tombstones' clock.
    bytes: Vec<u8>,
    copies: Vec<ChunkInfo>,
    since: Option<i64>,
    /// The object being built, the clock of each of its chunks, and the chunks they copy.
    builder: ObjectBuilder,
    clocks: Vec<Option<i64>>,
    replaced: Vec<ChunkInfo>,
}

impl<'a> Output<'a> {
    pub(super) fn new(
        context: &'a Context,
        partition_id: i64,
        key: PartitionKey,
        node_id: i32,
    ) -> Output<'a> {
        Output {
            context,
            partition_id,
            key,
            node_id,
            bytes: Vec::new(),
            copies: Vec::new(),
            since: None,
            builder: ObjectBuilder::new(),
            clocks: Vec::new(),
            replaced: Vec::new(),
        }
    }

    /// Adds the cleaned copy of `chunk` (`bytes`, maybe none; `since` its tombstones'
    /// clock, `None` without tombstones). Returns whether the job may go on (`false`
    /// once a commit found the partition changed).
    pub(super) async fn push(
        &mut self,
        chunk: ChunkInfo,
        bytes: Vec<u8>,
        since: Option<i64>,
        done: &mut Done,
    ) -> Result<bool, ClusterError> {
        let clocks_differ = since.is_some() && self.since.is_some() && since != self.since;
        let too_big = !self.bytes.is_empty() && self.bytes.len() + bytes.len() > CHUNK_BYTES;
        if (clocks_differ || too_big) && !self.finish_chunk(done).await? {
            return Ok(false);
        }
        self.bytes.extend_from_slice(&bytes);
        self.copies.push(chunk);
        self.since = self.since.or(since);
        if self.bytes.len() >= CHUNK_BYTES {
            return self.finish_chunk(done).await;
        }
        Ok(true)
    }

    /// Commits what is left, moving `clean_through`. Returns whether it committed.
    pub(super) async fn finish(
        mut self,
        clean_through: i64,
        done: &mut Done,
    ) -> Result<bool, ClusterError> {
        if !self.finish_chunk(done).await? {
            return Ok(false);
        }
        self.commit(Some(clean_through), done).await
    }

    /// Moves the chunk being gathered into the object (committing the object first if it
    /// would not fit, and after if it is full).
    async fn finish_chunk(&mut self, done: &mut Done) -> Result<bool, ClusterError> {
        if self.copies.is_empty() {
            return Ok(true);
        }
        if !self.bytes.is_empty()
            && !self.builder.fits(self.bytes.len())
            && !self.commit(None, done).await?
        {
            return Ok(false);
        }
        if !self.bytes.is_empty() {
            self.builder
                .add_chunk_with_offsets(self.key, &self.bytes)
                .map_err(|e| ClusterError::Corrupt(format!("a compacted chunk: {e}")))?;
            self.clocks.push(self.since);
        }
        self.replaced.append(&mut self.copies);
        self.bytes.clear();
        self.since = None;
        if self.builder.object_size_bytes() >= OBJECT_BYTES {
            return self.commit(None, done).await;
        }
        Ok(true)
    }

    /// PUTs the object (if it holds chunks) and commits it with the chunks it replaces;
    /// `clean_through` moves with the job's last commit. Returns whether the job may go
    /// on (`false` when the partition changed under it).
    async fn commit(
        &mut self,
        clean_through: Option<i64>,
        done: &mut Done,
    ) -> Result<bool, ClusterError> {
        let builder = std::mem::take(&mut self.builder);
        let clocks = std::mem::take(&mut self.clocks);
        let replaced = std::mem::take(&mut self.replaced);
        if replaced.is_empty() && clean_through.is_none() {
            return Ok(true);
        }
        let context = self.context;
        let object = if builder.chunk_count() > 0 {
            let (bytes, footer) = builder.finish();
            let object_id = context
                .bucket
                .reserve_object(
                    &context.session,
                    self.node_id,
                    bytes.len(),
                    context.settings.statement_timeout,
                )
                .await?;
            if let Err(e) = context.bucket.put(object_id, bytes.into()).await {
                drop_object(context, object_id).await;
                return Err(e);
            }
            let chunks: Vec<(ChunkEntry, Option<i64>)> =
                footer.chunks.into_iter().zip(clocks).collect();
            Some((object_id, chunks))
        } else {
            None
        };
        let (partition_id, node_id, grace) =
            (self.partition_id, self.node_id, context.settings.grace);
        let for_commit = object.clone();
        let committed = transaction::run(
            &context.compaction_transactions,
            "a compaction commit",
            context.settings.statement_timeout,
            move |client| {
                async move {
                    commit_in(
                        client,
                        partition_id,
                        node_id,
                        &replaced,
                        for_commit.as_ref(),
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
            other => {
                if let Some((object_id, _)) = object {
                    drop_object(context, object_id).await;
                }
                other.map(|_| false)
            }
        }
    }
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

/// The commit, inside its transaction; `None` when the claim or the replaced chunks are
/// no longer as planned (nothing is changed then).
async fn commit_in(
    client: &Client,
    partition_id: i64,
    node_id: i32,
    replaced: &[ChunkInfo],
    object: Option<&PutObject>,
    clean_through: Option<i64>,
    grace: Duration,
) -> Result<Option<Committed>, ClusterError> {
    let live = client
        .query_opt(
            "SELECT 1 FROM partitions WHERE partition_id = $1 AND deleted_at IS NULL FOR UPDATE",
            &[&partition_id],
        )
        .await?;
    if live.is_none() {
        return Ok(None);
    }
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
    if claimed.is_none() {
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
        for (chunk, since) in chunks {
            bytes_after += i64::from(chunk.size_bytes);
            client
                .execute(
                    "INSERT INTO chunks (partition_id, base_offset, last_offset, object_id, \
                                         position, size_bytes, batch_count, max_timestamp, \
                                         offsets_in_object, tombstones_since_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true, $9)",
                    &[
                        &partition_id,
                        &chunk.base_offset,
                        &chunk.last_offset,
                        object_id,
                        &(chunk.position as i64),
                        &(chunk.size_bytes as i32),
                        &(chunk.batch_count as i32),
                        &chunk.max_timestamp,
                        since,
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
