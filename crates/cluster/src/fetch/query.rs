//! The reader's SQL: one statement per read for every partition's row, its next chunks
//! and (read_committed) its aborted transactions; the refresh of cached rows; and the
//! chunk lookups by timestamp.

use tokio_postgres::Row;
use uuid::Uuid;

use super::state::PartitionRow;

/// One read: per requested partition (the `unnest` arrays, in request order), its live
/// row joined by topic id and index (so the first read of a partition needs no separate id
/// lookup), then the chunks from the one holding the fetch offset on, at most `$6` and no
/// more than the partition's byte limit needs (a chunk is taken while the chunks before it
/// hold fewer bytes than `bytes_max`: the first is always taken), and for read_committed
/// reads the aborted transactions overlapping [fetch offset, LSO), at most `$7`, by first
/// offset. The chunk that holds the fetch offset is found through the primary key
/// (the last chunk starting at or below it), never by scanning the partition's chunks.
const READ_SQL: &str = "\
SELECT w.i, p.partition_id, p.next_offset, p.log_start_offset, p.first_unstable_offset, \
       p.size_bytes, \
       c.base_offset, c.last_offset, c.object_id, c.position, c.size_bytes, \
       c.offsets_in_object, \
       a.producer_ids, a.first_offsets, a.last_offsets \
FROM unnest($1::uuid[], $2::int[], $3::bigint[], $4::bigint[], $5::bool[]) WITH ORDINALITY \
     AS w(topic_id, partition, fetch_offset, bytes_max, read_committed, i) \
JOIN partitions p \
  ON p.topic_id = w.topic_id AND p.partition = w.partition AND p.deleted_at IS NULL \
LEFT JOIN LATERAL ( \
  SELECT * FROM ( \
    SELECT c.*, sum(c.size_bytes) OVER (ORDER BY c.base_offset) - c.size_bytes AS bytes_before \
    FROM chunks c \
    WHERE c.partition_id = p.partition_id \
      AND w.fetch_offset >= p.log_start_offset AND w.fetch_offset < p.next_offset \
      AND c.base_offset >= coalesce( \
            (SELECT h.base_offset FROM chunks h \
             WHERE h.partition_id = p.partition_id AND h.base_offset <= w.fetch_offset \
             ORDER BY h.base_offset DESC LIMIT 1), \
            w.fetch_offset) \
      AND c.last_offset >= w.fetch_offset \
      AND c.base_offset < p.next_offset \
    ORDER BY c.base_offset \
    LIMIT $6 \
  ) c WHERE c.bytes_before < w.bytes_max \
) c ON true \
LEFT JOIN LATERAL ( \
  SELECT array_agg(t.producer_id ORDER BY t.first_offset) AS producer_ids, \
         array_agg(t.first_offset ORDER BY t.first_offset) AS first_offsets, \
         array_agg(t.last_offset ORDER BY t.first_offset) AS last_offsets \
  FROM ( \
    SELECT * FROM aborted_txns t \
    WHERE t.partition_id = p.partition_id AND t.last_offset >= w.fetch_offset \
      AND t.first_offset < coalesce(p.first_unstable_offset, p.next_offset) \
    ORDER BY t.first_offset \
    LIMIT $7 \
  ) t \
) a ON w.read_committed \
ORDER BY w.i, c.base_offset";

/// The live rows of cached partitions, to confirm them after a reconnect or on the poll.
pub(crate) const REFRESH_SQL: &str = "\
SELECT partition_id, next_offset, log_start_offset, first_unstable_offset, size_bytes \
FROM partitions WHERE partition_id = ANY($1) AND deleted_at IS NULL";

/// One partition's live row.
pub(crate) const ROW_SQL: &str = "\
SELECT partition_id, next_offset, log_start_offset, first_unstable_offset, size_bytes \
FROM partitions WHERE topic_id = $1 AND partition = $2 AND deleted_at IS NULL";

/// ListOffsets by time: the partition's row and, after the chunk starting at `$4`, the
/// first `$5` chunks above the log start whose largest timestamp reaches `$3`. The first
/// of them holds the answer unless its matching batches lie below the log start; the
/// caller then asks again after it.
pub(crate) const BY_TIMESTAMP_SQL: &str = "\
SELECT p.partition_id, p.next_offset, p.log_start_offset, p.first_unstable_offset, \
       p.size_bytes, \
       c.base_offset, c.last_offset, c.object_id, c.position, c.size_bytes, \
       c.offsets_in_object \
FROM partitions p \
LEFT JOIN LATERAL ( \
  SELECT * FROM chunks c \
  WHERE c.partition_id = p.partition_id AND c.base_offset > $4 \
    AND c.last_offset >= p.log_start_offset AND c.base_offset < p.next_offset \
    AND c.max_timestamp >= $3 \
  ORDER BY c.base_offset LIMIT $5 \
) c ON true \
WHERE p.topic_id = $1 AND p.partition = $2 AND p.deleted_at IS NULL \
ORDER BY c.base_offset";

/// ListOffsets -3: the partition's row and the chunk above the log start with the largest
/// timestamp (the first of them on a tie).
pub(crate) const MAX_TIMESTAMP_SQL: &str = "\
SELECT p.partition_id, p.next_offset, p.log_start_offset, p.first_unstable_offset, \
       p.size_bytes, \
       c.base_offset, c.last_offset, c.object_id, c.position, c.size_bytes, \
       c.offsets_in_object \
FROM partitions p \
LEFT JOIN LATERAL ( \
  SELECT * FROM chunks c \
  WHERE c.partition_id = p.partition_id \
    AND c.last_offset >= p.log_start_offset AND c.base_offset < p.next_offset \
  ORDER BY c.max_timestamp DESC, c.base_offset LIMIT 1 \
) c ON true \
WHERE p.topic_id = $1 AND p.partition = $2 AND p.deleted_at IS NULL";

/// One `chunks` row: where its bytes are and the offsets they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkRow {
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) object_id: i64,
    pub(crate) position: i64,
    pub(crate) size_bytes: i32,
    pub(crate) offsets_in_object: bool,
}

/// One aborted transaction as the table holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AbortedRow {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
}

/// What the read statement found for one requested partition.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) row: PartitionRow,
    pub(crate) chunks: Vec<ChunkRow>,
    pub(crate) aborted: Vec<AbortedRow>,
}

/// One partition to read, as the statement takes it.
pub(crate) struct Want {
    pub(crate) topic_id: Uuid,
    pub(crate) partition: i32,
    pub(crate) fetch_offset: i64,
    pub(crate) bytes_max: i64,
    pub(crate) read_committed: bool,
}

/// Runs the read statement; the result is in the order of `wants`, `None` for a partition
/// with no live row.
pub(crate) async fn read(
    client: &tokio_postgres::Client,
    wants: &[Want],
    chunk_rows_max: i64,
    aborted_rows_max: i64,
) -> Result<Vec<Option<Found>>, tokio_postgres::Error> {
    let topic_ids: Vec<Uuid> = wants.iter().map(|w| w.topic_id).collect();
    let partitions: Vec<i32> = wants.iter().map(|w| w.partition).collect();
    let fetch_offsets: Vec<i64> = wants.iter().map(|w| w.fetch_offset).collect();
    let bytes_max: Vec<i64> = wants.iter().map(|w| w.bytes_max.max(1)).collect();
    let read_committed: Vec<bool> = wants.iter().map(|w| w.read_committed).collect();
    let rows = client
        .query(
            READ_SQL,
            &[
                &topic_ids,
                &partitions,
                &fetch_offsets,
                &bytes_max,
                &read_committed,
                &chunk_rows_max,
                &aborted_rows_max,
            ],
        )
        .await?;
    let mut found: Vec<Option<Found>> = vec![None; wants.len()];
    for row in rows {
        let i: i64 = row.get(0);
        let slot = &mut found[(i - 1) as usize];
        let entry = slot.get_or_insert_with(|| Found {
            row: partition_row(&row, 1),
            chunks: Vec::new(),
            aborted: aborted_rows(&row, 12),
        });
        if let Some(chunk) = chunk_row(&row, 6) {
            entry.chunks.push(chunk);
        }
    }
    Ok(found)
}

/// The `partitions` columns starting at column `at`.
pub(crate) fn partition_row(row: &Row, at: usize) -> PartitionRow {
    PartitionRow {
        partition_id: row.get(at),
        next_offset: row.get(at + 1),
        log_start_offset: row.get(at + 2),
        first_unstable_offset: row.get(at + 3),
        size_bytes: row.get(at + 4),
    }
}

/// The `chunks` columns starting at column `at`; `None` when the outer join found none.
pub(crate) fn chunk_row(row: &Row, at: usize) -> Option<ChunkRow> {
    Some(ChunkRow {
        base_offset: row.get::<_, Option<i64>>(at)?,
        last_offset: row.get(at + 1),
        object_id: row.get(at + 2),
        position: row.get(at + 3),
        size_bytes: row.get(at + 4),
        offsets_in_object: row.get(at + 5),
    })
}

fn aborted_rows(row: &Row, at: usize) -> Vec<AbortedRow> {
    let producer_ids: Option<Vec<i64>> = row.get(at);
    let first_offsets: Option<Vec<i64>> = row.get(at + 1);
    let last_offsets: Option<Vec<i64>> = row.get(at + 2);
    match (producer_ids, first_offsets, last_offsets) {
        (Some(p), Some(f), Some(l)) => p
            .into_iter()
            .zip(f)
            .zip(l)
            .map(|((producer_id, first_offset), last_offset)| AbortedRow {
                producer_id,
                first_offset,
                last_offset,
            })
            .collect(),
        _ => Vec::new(),
    }
}
