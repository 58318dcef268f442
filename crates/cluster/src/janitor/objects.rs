//! The life's end of objects: marked deleting (state 2) with a `delete_after`, then
//! deleted from the bucket, then their rows removed.
//!
//! An object is marked when its last chunk row goes (retention, deleted topics, or found
//! by the sweep), with `delete_after = now() + grace` so that readers that looked a chunk
//! up just before can still GET it; or when it has stayed pending past `pending_max`, with
//! `delete_after = now()`, since no reader ever saw a chunk of it. The mark moves a
//! pending object out of state 0, and the produce commit makes an object live only from
//! state 0, so a commit that comes after the mark fails rather than pointing chunks at an
//! object about to be deleted.
//!
//! The bucket's DELETE comes before the row's: if the janitor dies in between, the row
//! is still there and the next pass deletes again (a missing object is fine).

use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio_postgres::Client;

use super::{
    transaction, Context, PassReport, DELETES_IN_FLIGHT_MAX, OBJECTS_DELETED_PER_PASS_MAX,
    OBJECTS_SWEPT_PER_PASS_MAX,
};
use crate::error::ClusterError;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Marks deleting, `grace` from now, those of `object_ids` that are live and no chunk
/// points at any more; returns how many it marked. Runs inside the caller's transaction.
///
/// The objects are locked first, in id order: two transactions that each delete one of
/// an object's last two chunks then take turns here, and the second one's check (a new
/// statement, so a new snapshot) sees the first one's deletion, so the object is never
/// left unmarked by both.
pub(super) async fn mark_unreferenced(
    client: &Client,
    mut object_ids: Vec<i64>,
    grace: Duration,
) -> Result<u64, ClusterError> {
    object_ids.sort_unstable();
    object_ids.dedup();
    if object_ids.is_empty() {
        return Ok(0);
    }
    client
        .query(
            "SELECT object_id FROM objects WHERE object_id = ANY($1) \
             ORDER BY object_id FOR UPDATE",
            &[&object_ids],
        )
        .await?;
    let marked = client
        .execute(
            "UPDATE objects o SET state = 2, \
                    delete_after = now() + $2::bigint * interval '1 millisecond' \
             WHERE o.object_id = ANY($1) AND o.state = 1 \
               AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.object_id = o.object_id)",
            &[&object_ids, &millis(grace)],
        )
        .await?;
    Ok(marked)
}

/// Marks deleting at once the objects pending for longer than `pending_max`: PUTs whose
/// commit never came (the broker died, or PostgreSQL failed it).
pub(super) async fn mark_stale_pending(context: &Context, report: &mut PassReport) {
    let session = &context.session;
    let pending_max_ms = millis(context.settings.pending_max);
    let result = session.execute("marking stale pending objects", context.settings.statement_timeout, "UPDATE objects SET state = 2, delete_after = now() \
                         WHERE object_id IN (SELECT object_id FROM objects \
                                              WHERE state = 0 \
                                                AND created_at < now() - $1::bigint * interval '1 millisecond' \
                                              ORDER BY object_id LIMIT $2) \
                           AND state = 0",
                        &[&pending_max_ms, &OBJECTS_DELETED_PER_PASS_MAX])
        .await;
    match result {
        Ok(0) => {}
        Ok(marked) => {
            tracing::info!(
                objects = marked,
                "marked objects whose commit never came for deletion"
            );
            report.objects_marked += marked;
        }
        Err(e) => context.error("marking stale pending objects", &e, report),
    }
}

/// Looks at the live objects after `cursor` (at most [`OBJECTS_SWEPT_PER_PASS_MAX`]) and
/// marks those no chunk points at. Retention and deleted topics mark the objects they
/// empty as they go; this catches the rest (chunks deleted by other means, or a marking
/// lost with a janitor that died between two statements). Returns the next cursor.
pub(super) async fn sweep(context: &Context, cursor: i64, report: &mut PassReport) -> i64 {
    let session = &context.session;
    let rows = session.query("the sweep of live objects", context.settings.statement_timeout, "SELECT o.object_id, \
                                NOT EXISTS (SELECT 1 FROM chunks c WHERE c.object_id = o.object_id) \
                         FROM objects o WHERE o.state = 1 AND o.object_id > $1 \
                         ORDER BY o.object_id LIMIT $2",
                        &[&cursor, &OBJECTS_SWEPT_PER_PASS_MAX])
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            context.error("the sweep of live objects", &e, report);
            return cursor;
        }
    };
    let next_cursor = if (rows.len() as i64) < OBJECTS_SWEPT_PER_PASS_MAX {
        0
    } else {
        rows.last().map_or(0, |r| r.get(0))
    };
    let orphans: Vec<i64> = rows
        .iter()
        .filter(|r| r.get::<_, bool>(1))
        .map(|r| r.get(0))
        .collect();
    if orphans.is_empty() {
        return next_cursor;
    }
    let grace = context.settings.grace;
    let marked = transaction::run(
        &context.transactions,
        "marking objects no chunk points at",
        context.settings.statement_timeout,
        move |client| async move { mark_unreferenced(client, orphans, grace).await }.boxed(),
    )
    .await;
    match marked {
        Ok(marked) => report.objects_marked += marked,
        Err(e) => {
            context.error("marking objects no chunk points at", &e, report);
            return cursor;
        }
    }
    next_cursor
}

/// Deletes the objects whose `delete_after` has passed (at most
/// [`OBJECTS_DELETED_PER_PASS_MAX`]) from the bucket, then the rows of those the bucket
/// no longer holds.
pub(super) async fn delete_due(context: &Context, report: &mut PassReport) {
    let session = &context.session;
    let due = session
        .query(
            "the query of objects due for deletion",
            context.settings.statement_timeout, // A chunk pointing at an object marked deleting would be a bug
            // elsewhere; its bytes are kept rather than lost.
            "SELECT o.object_id FROM objects o \
                         WHERE o.state = 2 AND o.delete_after <= now() \
                           AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.object_id = o.object_id) \
                         ORDER BY o.delete_after LIMIT $1",
            &[&OBJECTS_DELETED_PER_PASS_MAX],
        )
        .await;
    let due: Vec<i64> = match due {
        Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
        Err(e) => return context.error("the query of objects due for deletion", &e, report),
    };
    if due.is_empty() {
        return;
    }
    let bucket = &context.bucket;
    let results: Vec<(i64, Result<(), ClusterError>)> = futures::stream::iter(due)
        .map(|object_id| async move { (object_id, bucket.delete(object_id).await) })
        .buffer_unordered(DELETES_IN_FLIGHT_MAX)
        .collect()
        .await;
    let mut gone = Vec::with_capacity(results.len());
    for (object_id, result) in results {
        match result {
            Ok(()) => gone.push(object_id),
            Err(e) => {
                tracing::warn!(object_id, error = %e, "deleting an object from the bucket failed; retrying next pass");
                report.errors += 1;
            }
        }
    }
    if gone.is_empty() {
        return;
    }
    let removed = session
        .execute(
            "the removal of deleted objects' rows",
            context.settings.statement_timeout,
            "DELETE FROM objects o WHERE o.object_id = ANY($1) AND o.state = 2 \
                           AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.object_id = o.object_id)",
            &[&gone],
        )
        .await;
    match removed {
        Ok(n) => report.objects_deleted += n,
        Err(e) => context.error("the removal of deleted objects' rows", &e, report),
    }
}
