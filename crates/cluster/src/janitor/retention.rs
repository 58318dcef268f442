//! Retention: which chunks of a partition go ([`deletable`], no I/O), and the transaction
//! that deletes them and moves the partition's log start offset.
//!
//! Kafka's rules, with chunks for segments: from the oldest, a chunk goes while it lies
//! wholly below the log start offset (moved by DeleteRecords), or, on a topic with
//! `cleanup.policy=delete`, while its newest record is older than `retention.ms` or the
//! partition without it still holds at least `retention.bytes`. The partition's newest
//! chunk always stays (Kafka never deletes the active segment), so the log start offset
//! always lands on a chunk that exists.
//!
//! Steps for each partition:
//! 1. one query for a batch of partitions gives each one's oldest and newest chunk, and
//!    [`deletable`] on that oldest chunk says whether the partition has work;
//! 2. for each that has, a transaction locks the `partitions` row `FOR UPDATE` (produce
//!    commits lock the same row, so the two take turns and neither sees the other half
//!    done), reads its oldest chunks, decides again under the lock, deletes them, moves
//!    `log_start_offset` up to the first remaining chunk's base offset, lowers
//!    `size_bytes`, drops the aborted transactions that end below the new log start, and
//!    marks the objects that lost their last chunk.

use std::time::Duration;

use futures::FutureExt;
use tokio_postgres::Client;
use uuid::Uuid;
use weir_log::LogConfig;

use super::lease::Lease;
use super::{
    objects, transaction, Context, PassReport, CHUNKS_PER_TRANSACTION_MAX, PARTITIONS_PER_PASS_MAX,
    TRANSACTIONS_PER_PARTITION_MAX,
};
use crate::error::ClusterError;

/// What retention needs of one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChunkSpan {
    pub base_offset: i64,
    pub last_offset: i64,
    pub size_bytes: i64,
    pub max_timestamp: i64,
}

/// How many of `oldest` (a partition's oldest chunks, in offset order) go, by the rules
/// of the module's opening. `newest_base_offset` names the partition's newest chunk,
/// which never goes; `size_bytes` is the partition's; `config` is `None` for a topic
/// whose config is unknown (only the log start offset then deletes).
pub(super) fn deletable(
    oldest: &[ChunkSpan],
    newest_base_offset: i64,
    log_start_offset: i64,
    size_bytes: i64,
    config: Option<&LogConfig>,
    now_ms: i64,
) -> usize {
    let delete_policy = config.filter(|c| c.cleanup_delete);
    let mut remaining_bytes = size_bytes;
    let mut count = 0;
    for chunk in oldest {
        if chunk.base_offset >= newest_base_offset {
            break;
        }
        let below_start = chunk.last_offset < log_start_offset;
        let (expired, over_bytes) = match delete_policy {
            Some(c) => (
                c.retention_ms >= 0
                    && chunk.max_timestamp >= 0
                    && now_ms.saturating_sub(chunk.max_timestamp) > c.retention_ms,
                c.retention_bytes >= 0 && remaining_bytes - chunk.size_bytes >= c.retention_bytes,
            ),
            None => (false, false),
        };
        if !(below_start || expired || over_bytes) {
            break;
        }
        remaining_bytes -= chunk.size_bytes;
        count += 1;
    }
    count
}

/// One partition as the batch query sees it.
struct Candidate {
    partition_id: i64,
    topic_id: Uuid,
    log_start_offset: i64,
    size_bytes: i64,
    oldest: Option<ChunkSpan>,
    newest_base_offset: Option<i64>,
}

/// Retention over the partitions after `cursor` (at most [`PARTITIONS_PER_PASS_MAX`]);
/// returns the cursor for the next pass (0 once the last partition was looked at).
pub(super) async fn apply(
    context: &Context,
    lease: &Lease,
    cursor: i64,
    now_ms: i64,
    report: &mut PassReport,
) -> i64 {
    let candidates = match candidates(context, cursor).await {
        Ok(c) => c,
        Err(e) => {
            context.error("retention's partition query", &e, report);
            return cursor;
        }
    };
    let next_cursor = if (candidates.len() as i64) < PARTITIONS_PER_PASS_MAX {
        0
    } else {
        candidates.last().map_or(0, |c| c.partition_id)
    };
    for candidate in candidates {
        let (Some(oldest), Some(newest)) = (candidate.oldest, candidate.newest_base_offset) else {
            continue;
        };
        let config = (context.configs)(candidate.topic_id);
        let has_work = deletable(
            &[oldest],
            newest,
            candidate.log_start_offset,
            candidate.size_bytes,
            config.as_ref(),
            now_ms,
        ) > 0;
        if !has_work {
            continue;
        }
        for _ in 0..TRANSACTIONS_PER_PARTITION_MAX {
            if !lease.held() {
                return cursor;
            }
            match delete_oldest(context, candidate.partition_id, config.as_ref(), now_ms).await {
                Ok(outcome) => {
                    report.chunks_deleted += outcome.chunks_deleted;
                    report.objects_marked += outcome.objects_marked;
                    if !outcome.more {
                        break;
                    }
                }
                Err(e) => {
                    context.error("retention", &e, report);
                    break;
                }
            }
        }
    }
    next_cursor
}

async fn candidates(context: &Context, cursor: i64) -> Result<Vec<Candidate>, ClusterError> {
    let session = &context.session;
    let rows = session
        .query(
            "retention's partition query",
            context.settings.statement_timeout,
            "SELECT p.partition_id, p.topic_id, p.log_start_offset, p.size_bytes, \
                                o.base_offset, o.last_offset, o.size_bytes, o.max_timestamp, \
                                (SELECT max(n.base_offset) FROM chunks n \
                                  WHERE n.partition_id = p.partition_id) \
                         FROM partitions p \
                         LEFT JOIN LATERAL (SELECT c.base_offset, c.last_offset, c.size_bytes, \
                                                   c.max_timestamp \
                                            FROM chunks c WHERE c.partition_id = p.partition_id \
                                            ORDER BY c.base_offset LIMIT 1) o ON true \
                         WHERE p.deleted_at IS NULL AND p.partition_id > $1 \
                         ORDER BY p.partition_id LIMIT $2",
            &[&cursor, &PARTITIONS_PER_PASS_MAX],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Candidate {
            partition_id: row.get(0),
            topic_id: row.get(1),
            log_start_offset: row.get(2),
            size_bytes: row.get(3),
            oldest: row.get::<_, Option<i64>>(4).map(|base_offset| ChunkSpan {
                base_offset,
                last_offset: row.get(5),
                size_bytes: i64::from(row.get::<_, i32>(6)),
                max_timestamp: row.get(7),
            }),
            newest_base_offset: row.get(8),
        })
        .collect())
}

/// What one retention transaction did.
struct Deleted {
    chunks_deleted: u64,
    objects_marked: u64,
    /// It deleted all it looked at: there may be more to delete.
    more: bool,
}

/// The transaction of step 2 of the module's opening, for one partition.
async fn delete_oldest(
    context: &Context,
    partition_id: i64,
    config: Option<&LogConfig>,
    now_ms: i64,
) -> Result<Deleted, ClusterError> {
    let grace = context.settings.grace;
    let config = config.cloned();
    transaction::run(
        &context.transactions,
        "a retention transaction",
        context.settings.statement_timeout,
        move |client| {
            async move {
                delete_oldest_in(client, partition_id, config.as_ref(), now_ms, grace).await
            }
            .boxed()
        },
    )
    .await
}

async fn delete_oldest_in(
    client: &Client,
    partition_id: i64,
    config: Option<&LogConfig>,
    now_ms: i64,
    grace: Duration,
) -> Result<Deleted, ClusterError> {
    let nothing = Deleted {
        chunks_deleted: 0,
        objects_marked: 0,
        more: false,
    };
    let Some(row) = client
        .query_opt(
            "SELECT log_start_offset, size_bytes FROM partitions \
             WHERE partition_id = $1 AND deleted_at IS NULL FOR UPDATE",
            &[&partition_id],
        )
        .await?
    else {
        // Deleted since the batch query: the deleted-topic step cleans it.
        return Ok(nothing);
    };
    let (log_start_offset, size_bytes): (i64, i64) = (row.get(0), row.get(1));
    let Some(newest) = client
        .query_one(
            "SELECT max(base_offset) FROM chunks WHERE partition_id = $1",
            &[&partition_id],
        )
        .await?
        .get::<_, Option<i64>>(0)
    else {
        return Ok(nothing);
    };
    // One more than may be deleted, so the first chunk that stays is among them.
    let oldest: Vec<ChunkSpan> = client
        .query(
            "SELECT base_offset, last_offset, size_bytes, max_timestamp FROM chunks \
             WHERE partition_id = $1 ORDER BY base_offset LIMIT $2",
            &[&partition_id, &(CHUNKS_PER_TRANSACTION_MAX + 1)],
        )
        .await?
        .iter()
        .map(|row| ChunkSpan {
            base_offset: row.get(0),
            last_offset: row.get(1),
            size_bytes: i64::from(row.get::<_, i32>(2)),
            max_timestamp: row.get(3),
        })
        .collect();
    let limit = oldest.len().min(CHUNKS_PER_TRANSACTION_MAX as usize);
    let count = deletable(
        &oldest[..limit],
        newest,
        log_start_offset,
        size_bytes,
        config,
        now_ms,
    );
    if count == 0 {
        return Ok(nothing);
    }
    // The newest chunk never goes, so one always stays after those deleted.
    let Some(first_kept) = oldest.get(count) else {
        return Err(ClusterError::Corrupt(format!(
            "partition {partition_id}: retention chose every chunk it read, the newest among them"
        )));
    };
    let gone = client
        .query(
            "DELETE FROM chunks WHERE partition_id = $1 AND base_offset < $2 \
             RETURNING object_id, size_bytes",
            &[&partition_id, &first_kept.base_offset],
        )
        .await?;
    let bytes_deleted: i64 = gone.iter().map(|r| i64::from(r.get::<_, i32>(1))).sum();
    let new_log_start = log_start_offset.max(first_kept.base_offset);
    client
        .execute(
            "UPDATE partitions SET log_start_offset = $2, \
                    size_bytes = greatest(size_bytes - $3, 0) \
             WHERE partition_id = $1",
            &[&partition_id, &new_log_start, &bytes_deleted],
        )
        .await?;
    // An aborted transaction wholly below the log start can no longer be read.
    client
        .execute(
            "DELETE FROM aborted_txns WHERE partition_id = $1 AND last_offset < $2",
            &[&partition_id, &new_log_start],
        )
        .await?;
    let object_ids: Vec<i64> = gone.iter().map(|r| r.get(0)).collect();
    let objects_marked = objects::mark_unreferenced(client, object_ids, grace).await?;
    tracing::debug!(
        partition_id,
        chunks = gone.len(),
        bytes = bytes_deleted,
        log_start_offset = new_log_start,
        "retention deleted chunks"
    );
    Ok(Deleted {
        chunks_deleted: gone.len() as u64,
        objects_marked,
        more: count == limit && limit == CHUNKS_PER_TRANSACTION_MAX as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(base_offset: i64, last_offset: i64, size_bytes: i64, max_timestamp: i64) -> ChunkSpan {
        ChunkSpan {
            base_offset,
            last_offset,
            size_bytes,
            max_timestamp,
        }
    }

    fn config(retention_ms: i64, retention_bytes: i64, cleanup_delete: bool) -> LogConfig {
        LogConfig {
            retention_ms,
            retention_bytes,
            cleanup_delete,
            cleanup_compact: !cleanup_delete,
            ..LogConfig::default()
        }
    }

    #[test]
    fn time_retention_stops_at_the_first_young_chunk_and_keeps_the_newest() {
        // Goal: chunks older than retention.ms go from the oldest; a young chunk stops the
        // deletion even when older ones follow it; the newest chunk stays however old.
        let chunks = [
            chunk(0, 9, 100, 1_000),
            chunk(10, 19, 100, 2_000),
            chunk(20, 29, 100, 9_000),
            chunk(30, 39, 100, 1_500),
        ];
        let c = config(5_000, -1, true);
        assert_eq!(deletable(&chunks, 30, 0, 400, Some(&c), 10_000), 2);
        let all_old = [chunk(0, 9, 100, 1_000), chunk(10, 19, 100, 1_000)];
        assert_eq!(deletable(&all_old, 10, 0, 200, Some(&c), 10_000), 1);
        // Exactly at retention.ms is still kept, as Kafka does (strictly older goes).
        assert_eq!(deletable(&chunks, 30, 0, 400, Some(&c), 6_000), 0);
    }

    #[test]
    fn byte_retention_keeps_at_least_retention_bytes() {
        // Goal: chunks go while the partition without them still holds retention.bytes.
        let chunks = [
            chunk(0, 9, 100, 1),
            chunk(10, 19, 100, 1),
            chunk(20, 29, 100, 1),
            chunk(30, 39, 100, 1),
        ];
        let c = config(-1, 250, true);
        assert_eq!(deletable(&chunks, 30, 0, 400, Some(&c), 10), 1);
        let c = config(-1, 200, true);
        assert_eq!(deletable(&chunks, 30, 0, 400, Some(&c), 10), 2);
        let c = config(-1, 0, true);
        assert_eq!(deletable(&chunks, 30, 0, 400, Some(&c), 10), 3);
    }

    #[test]
    fn compact_only_and_unknown_topics_delete_only_below_the_log_start() {
        // Goal: without cleanup.policy=delete (or without a config) nothing old or big
        // goes, but chunks wholly below the log start offset do, and a chunk the log start
        // falls inside stays.
        let chunks = [
            chunk(0, 9, 100, 1),
            chunk(10, 19, 100, 1),
            chunk(20, 29, 100, 1),
        ];
        let c = config(0, 0, false);
        assert_eq!(deletable(&chunks, 20, 0, 300, Some(&c), 1_000_000), 0);
        assert_eq!(deletable(&chunks, 20, 15, 300, Some(&c), 1_000_000), 1);
        assert_eq!(deletable(&chunks, 20, 15, 300, None, 1_000_000), 1);
        // Below-start deletion never takes the newest chunk either.
        assert_eq!(deletable(&chunks, 20, 30, 300, None, 1_000_000), 2);
    }
}
