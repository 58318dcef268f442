//! ListOffsets by time: the chunks' `max_timestamp` column finds the candidate chunks, and
//! the records of their batches give the offset. Records below the log start are never
//! answered, as Kafka searches from the log start.

use bytes::Bytes;
use weir_log::batch::BatchHeader;
use weir_log::records::{decode_batch, StoredRecord};
use weir_log::store::{StoreError, TimestampedOffset, TopicPartition};
use weir_log::LogError;

use super::chunks::chunk_bytes;
use super::query::{self, ChunkRow};
use super::state::PartitionRow;
use super::{storage_error, Shared, TIMESTAMP_CHUNK_ROWS, TIMESTAMP_QUERIES_MAX};
use crate::error::ClusterError;

pub(super) async fn offset_for_timestamp(
    shared: &Shared,
    tp: &TopicPartition,
    timestamp_ms: i64,
) -> Result<Option<TimestampedOffset>, StoreError> {
    // Candidates come a few at a time: the first one answers unless its matching batches
    // all lie below the log start.
    let mut after_base_offset = -1i64;
    for _ in 0..TIMESTAMP_QUERIES_MAX {
        let (row, chunks) = lookup(shared, tp, |client| async move {
            client
                .query(
                    query::BY_TIMESTAMP_SQL,
                    &[
                        &tp.topic_id,
                        &tp.partition,
                        &timestamp_ms,
                        &after_base_offset,
                        &TIMESTAMP_CHUNK_ROWS,
                    ],
                )
                .await
        })
        .await?;
        if chunks.is_empty() {
            return Ok(None);
        }
        for chunk in &chunks {
            let bytes = chunk_bytes(shared, *chunk)
                .await
                .map_err(|e| StoreError::Log(storage_error(&e)))?;
            let found = records_above(&bytes, &row, |header| header.max_timestamp >= timestamp_ms)?
                .into_iter()
                .find(|r| r.timestamp_ms >= timestamp_ms);
            if let Some(record) = found {
                return Ok(Some(TimestampedOffset {
                    offset: record.offset,
                    timestamp: record.timestamp_ms,
                }));
            }
            after_base_offset = chunk.base_offset;
        }
    }
    Err(StoreError::Log(LogError::Io(std::io::Error::other(
        format!(
        "no record at or after timestamp {timestamp_ms} was found in the first {} candidate chunks",
        TIMESTAMP_QUERIES_MAX as i64 * TIMESTAMP_CHUNK_ROWS
    ),
    ))))
}

pub(super) async fn max_timestamp_offset(
    shared: &Shared,
    tp: &TopicPartition,
) -> Result<Option<TimestampedOffset>, StoreError> {
    let (row, chunks) = lookup(shared, tp, |client| async move {
        client
            .query(query::MAX_TIMESTAMP_SQL, &[&tp.topic_id, &tp.partition])
            .await
    })
    .await?;
    let Some(chunk) = chunks.first() else {
        return Ok(None);
    };
    let bytes = chunk_bytes(shared, *chunk)
        .await
        .map_err(|e| StoreError::Log(storage_error(&e)))?;
    let mut best: Option<StoredRecord> = None;
    for record in records_above(&bytes, &row, |_| true)? {
        // Strictly larger: the first record wins a tie.
        if best
            .as_ref()
            .is_none_or(|b| record.timestamp_ms > b.timestamp_ms)
        {
            best = Some(record);
        }
    }
    Ok(best.map(|r| TimestampedOffset {
        offset: r.offset,
        timestamp: r.timestamp_ms,
    }))
}

/// Runs one lookup statement (the partition's row and chunk rows, as the timestamp
/// statements return them), merging the row into the cache.
async fn lookup<'a, F, Fut>(
    shared: &'a Shared,
    tp: &'a TopicPartition,
    statement: F,
) -> Result<(PartitionRow, Vec<ChunkRow>), StoreError>
where
    F: FnOnce(std::sync::Arc<tokio_postgres::Client>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>>,
{
    let generation = shared.states.generation();
    let rows = shared
        .query_other("a lookup of chunks by timestamp", async {
            let client = shared.session.client().await?;
            Ok::<_, ClusterError>(statement(client).await?)
        })
        .await
        .map_err(|e| StoreError::Log(storage_error(&e)))?;
    let Some(first) = rows.first() else {
        return Err(StoreError::UnknownPartition);
    };
    let row = query::partition_row(first, 0);
    shared.states.merge_row(tp, &row, generation);
    let chunks = rows.iter().filter_map(|r| query::chunk_row(r, 5)).collect();
    Ok((row, chunks))
}

/// The records, decoded, of the chunk's batches that `keep` accepts, at or above the log
/// start and below the high watermark.
fn records_above(
    chunk: &Bytes,
    row: &PartitionRow,
    keep: impl Fn(&BatchHeader) -> bool,
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut records = Vec::new();
    let mut position = 0usize;
    while position < chunk.len() {
        let header = BatchHeader::parse(&chunk[position..])
            .ok()
            .filter(|h| position + h.size_bytes <= chunk.len())
            .ok_or_else(|| {
                StoreError::Log(LogError::Io(std::io::Error::other(format!(
                    "a stored chunk is damaged at byte {position}"
                ))))
            })?;
        let batch = &chunk[position..position + header.size_bytes];
        position += header.size_bytes;
        if header.last_offset() < row.log_start_offset
            || header.base_offset >= row.next_offset
            || !keep(&header)
        {
            continue;
        }
        let decoded = decode_batch(batch).map_err(|e| {
            StoreError::Log(LogError::Io(std::io::Error::other(format!(
                "a stored batch does not decode: {e}"
            ))))
        })?;
        records.extend(
            decoded
                .into_iter()
                .filter(|r| r.offset >= row.log_start_offset && r.offset < row.next_offset),
        );
    }
    Ok(records)
}
