//! Deleted topics: a `partitions` row with `deleted_at` set (the catalog sets it when the
//! topic goes) loses its chunks, a bounded number per transaction, and once none is left,
//! its producer states, aborted transactions, compaction job and the row itself. The
//! objects that lose their last chunk are marked deleting as retention's are.
//!
//! Produce commits and reads already ignore a deleted row, so nothing else writes to it;
//! the row lock is still taken, so a commit that locked it just before it was deleted
//! finishes first.

use std::time::Duration;

use futures::FutureExt;
use tokio_postgres::Client;

use super::lease::Lease;
use super::{
    objects, transaction, Context, PassReport, CHUNKS_PER_TRANSACTION_MAX,
    DROPPED_PARTITIONS_PER_PASS_MAX, TRANSACTIONS_PER_PARTITION_MAX,
};
use crate::error::ClusterError;

/// What one transaction on a deleted partition did.
struct Cleaned {
    chunks_deleted: u64,
    objects_marked: u64,
    /// The partition's row is gone.
    dropped: bool,
}

/// Cleans up to [`DROPPED_PARTITIONS_PER_PASS_MAX`] deleted partitions, each with at most
/// [`TRANSACTIONS_PER_PARTITION_MAX`] transactions; what is left goes on next pass.
pub(super) async fn clean(context: &Context, lease: &Lease, report: &mut PassReport) {
    let session = &context.session;
    let ids = session
        .query(
            "the query of deleted partitions",
            context.settings.statement_timeout,
            "SELECT partition_id FROM partitions WHERE deleted_at IS NOT NULL \
                         ORDER BY partition_id LIMIT $1",
            &[&DROPPED_PARTITIONS_PER_PASS_MAX],
        )
        .await;
    let ids: Vec<i64> = match ids {
        Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
        Err(e) => return context.error("the query of deleted partitions", &e, report),
    };
    for partition_id in ids {
        for _ in 0..TRANSACTIONS_PER_PARTITION_MAX {
            if !lease.held() {
                return;
            }
            let grace = context.settings.grace;
            let cleaned = transaction::run(
                &context.transactions,
                "the cleanup of a deleted partition",
                context.settings.statement_timeout,
                move |client| clean_one(client, partition_id, grace).boxed(),
            )
            .await;
            match cleaned {
                Ok(cleaned) => {
                    report.chunks_deleted += cleaned.chunks_deleted;
                    report.objects_marked += cleaned.objects_marked;
                    if cleaned.dropped {
                        tracing::info!(partition_id, "removed a deleted partition");
                        report.partitions_dropped += 1;
                        break;
                    }
                }
                Err(e) => {
                    context.error("the cleanup of a deleted partition", &e, report);
                    break;
                }
            }
        }
    }
}

async fn clean_one(
    client: &Client,
    partition_id: i64,
    grace: Duration,
) -> Result<Cleaned, ClusterError> {
    let locked = client
        .query_opt(
            "SELECT 1 FROM partitions WHERE partition_id = $1 AND deleted_at IS NOT NULL \
             FOR UPDATE",
            &[&partition_id],
        )
        .await?;
    if locked.is_none() {
        // Removed by another janitor in the meantime.
        return Ok(Cleaned {
            chunks_deleted: 0,
            objects_marked: 0,
            dropped: false,
        });
    }
    let gone = client
        .query(
            "DELETE FROM chunks WHERE partition_id = $1 AND base_offset IN \
               (SELECT base_offset FROM chunks WHERE partition_id = $1 \
                ORDER BY base_offset LIMIT $2) \
             RETURNING object_id",
            &[&partition_id, &CHUNKS_PER_TRANSACTION_MAX],
        )
        .await?;
    let object_ids: Vec<i64> = gone.iter().map(|r| r.get(0)).collect();
    let objects_marked = objects::mark_unreferenced(client, object_ids, grace).await?;
    let chunks_left = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM chunks WHERE partition_id = $1)",
            &[&partition_id],
        )
        .await?
        .get::<_, bool>(0);
    if !chunks_left {
        for sql in [
            "DELETE FROM producer_state WHERE partition_id = $1",
            "DELETE FROM aborted_txns WHERE partition_id = $1",
            "DELETE FROM compaction_jobs WHERE partition_id = $1",
            "DELETE FROM partitions WHERE partition_id = $1",
        ] {
            client.execute(sql, &[&partition_id]).await?;
        }
    }
    Ok(Cleaned {
        chunks_deleted: gone.len() as u64,
        objects_marked,
        dropped: !chunks_left,
    })
}
