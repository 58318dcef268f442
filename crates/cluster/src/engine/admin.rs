//! `LogAdmin` for [`ClusterLog`]: offsets and timestamp lookups from the reader,
//! DeleteRecords and sizes from the `partitions` row, decoded records through reads.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use weir_log::records::{Collected, RecordCollector};
use weir_log::store::{
    BoxFuture, LogAdmin, PartitionOffsets, PartitionStatus, ReadSpec, StoreError,
    TimestampedOffset, TopicPartition, DELETE_TO_HIGH_WATERMARK,
};
use weir_log::{LogError, StoredRecord};

use super::ClusterLog;

/// Bytes asked for per read while looking for records to decode (as the local engine's
/// `read_records`); a larger batch still comes whole.
const READ_RECORDS_BYTES_PER_READ: usize = 1 << 20;

/// DeleteRecords in one statement: the row locked, the log start moved up to the offset
/// asked for (-1: the next offset) unless that lies outside [0, next offset], and the row
/// as it was returned either way, so a refusal can say where the log stands.
const DELETE_RECORDS_SQL: &str = "\
WITH cur AS ( \
  SELECT partition_id, next_offset, log_start_offset FROM partitions \
  WHERE topic_id = $1 AND partition = $2 AND deleted_at IS NULL FOR UPDATE \
), moved AS ( \
  UPDATE partitions p \
  SET log_start_offset = greatest(cur.log_start_offset, \
        CASE WHEN $3::bigint = -1 THEN cur.next_offset ELSE $3::bigint END) \
  FROM cur \
  WHERE p.partition_id = cur.partition_id \
    AND ($3::bigint = -1 OR ($3::bigint >= 0 AND $3::bigint <= cur.next_offset)) \
  RETURNING p.log_start_offset \
) \
SELECT cur.next_offset, cur.log_start_offset, (SELECT log_start_offset FROM moved) \
FROM cur";

impl ClusterLog {
    /// The local engine's `PartitionLog::read_records` over reads: whole batches from
    /// `from_offset` on, control batches skipped, records below `from_offset` or at and
    /// above the high watermark (as of the first read) left out.
    async fn decoded_records(
        &self,
        tp: &TopicPartition,
        from_offset: i64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        // Made at the first read, which fixes the high watermark the records stop at.
        let mut collector: Option<RecordCollector> = None;
        // Every pass moves past at least one whole batch, or ends the read.
        loop {
            let spec = ReadSpec {
                tp: tp.clone(),
                fetch_offset: collector
                    .as_ref()
                    .map_or(from_offset, RecordCollector::next_offset),
                partition_max_bytes: READ_RECORDS_BYTES_PER_READ,
                read_committed: false,
            };
            let read = self
                .reader
                .read(std::slice::from_ref(&spec), READ_RECORDS_BYTES_PER_READ)
                .await
                .pop()
                .flatten()
                .ok_or(StoreError::UnknownPartition)?;
            let c = collector.get_or_insert_with(|| {
                RecordCollector::new(from_offset, read.high_watermark, max_records, max_bytes)
            });
            let collected = c.take(read.records?)?;
            if collected != Collected::Moved || c.done() {
                return Ok(collector
                    .map(RecordCollector::into_records)
                    .unwrap_or_default());
            }
        }
    }
}

impl LogAdmin for ClusterLog {
    fn offsets(&self, tp: &TopicPartition) -> BoxFuture<'_, Result<PartitionOffsets, StoreError>> {
        let tp = tp.clone();
        Box::pin(async move { self.reader.offsets(&tp).await })
    }

    fn offset_for_timestamp(
        &self,
        tp: &TopicPartition,
        timestamp_ms: i64,
    ) -> BoxFuture<'_, Result<Option<TimestampedOffset>, StoreError>> {
        let tp = tp.clone();
        Box::pin(async move { self.reader.offset_for_timestamp(&tp, timestamp_ms).await })
    }

    fn max_timestamp_offset(
        &self,
        tp: &TopicPartition,
    ) -> BoxFuture<'_, Result<Option<TimestampedOffset>, StoreError>> {
        let tp = tp.clone();
        Box::pin(async move { self.reader.max_timestamp_offset(&tp).await })
    }

    /// Moves `partitions.log_start_offset`; the chunks and objects below it stay until the
    /// janitor deletes them (reads below the log start are refused meanwhile). An offset
    /// outside [0, high watermark] is refused as the local engine refuses it. This broker's
    /// reader sees the new log start at once; other brokers' on their next query of the
    /// row (any read below it, `offsets`, the poll's refresh).
    fn delete_records_before(
        &self,
        tp: &TopicPartition,
        offset: i64,
    ) -> BoxFuture<'_, Result<i64, StoreError>> {
        let tp = tp.clone();
        Box::pin(async move {
            let offset_asked = if offset == DELETE_TO_HIGH_WATERMARK {
                -1
            } else {
                offset
            };
            let row = self
                .bounded("DeleteRecords", async {
                    let client = self.session.client().await?;
                    Ok(client
                        .query_opt(
                            DELETE_RECORDS_SQL,
                            &[&tp.topic_id, &tp.partition, &offset_asked],
                        )
                        .await?)
                })
                .await?
                .ok_or(StoreError::UnknownPartition)?;
            let (next_offset, log_start_offset, moved): (i64, i64, Option<i64>) =
                (row.get(0), row.get(1), row.get(2));
            let Some(new_log_start_offset) = moved else {
                return Err(StoreError::Log(LogError::OffsetOutOfRange {
                    offset,
                    log_start_offset,
                    log_end_offset: next_offset,
                }));
            };
            // The reader's cached state takes the new log start from the row.
            self.reader.offsets(&tp).await?;
            Ok(new_log_start_offset)
        })
    }

    fn size_bytes(&self, tp: &TopicPartition) -> BoxFuture<'_, Result<u64, StoreError>> {
        let tp = tp.clone();
        Box::pin(async move {
            let size_bytes: i64 = self
                .bounded("the read of a partition's size", async {
                    let client = self.session.client().await?;
                    Ok(client
                        .query_opt(
                            "SELECT size_bytes FROM partitions \
                             WHERE topic_id = $1 AND partition = $2 AND deleted_at IS NULL",
                            &[&tp.topic_id, &tp.partition],
                        )
                        .await?
                        .map(|row| row.get(0)))
                })
                .await?
                .ok_or(StoreError::UnknownPartition)?;
            Ok(size_bytes.max(0) as u64)
        })
    }

    fn status(&self, tp: &TopicPartition) -> Option<PartitionStatus> {
        self.reader.status(tp)
    }

    fn read_records(
        &self,
        tp: &TopicPartition,
        from_offset: i64,
        max_records: usize,
        max_bytes: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, StoreError>> {
        let tp = tp.clone();
        Box::pin(async move {
            self.decoded_records(&tp, from_offset, max_records, max_bytes)
                .await
        })
    }

    /// As the local engine: an offset below the log start means the first record still
    /// stored; none at or past the high watermark.
    fn timestamp_at(
        &self,
        tp: &TopicPartition,
        offset: i64,
    ) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        let tp = tp.clone();
        Box::pin(async move {
            let offsets = self.reader.offsets(&tp).await?;
            let from = offset.max(offsets.log_start_offset);
            if from >= offsets.high_watermark {
                return Ok(None);
            }
            Ok(self
                .decoded_records(&tp, from, 1, 0)
                .await?
                .first()
                .map(|r| r.timestamp_ms))
        })
    }

    /// Nothing here: in cluster mode retention is enforced by the janitor, one task for
    /// the whole cluster, which moves log starts and deletes chunks and objects.
    fn apply_retention(&self, _now_ms: i64) -> BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }

    /// Nothing here: compaction (`cleanup.policy=compact`) is not supported in cluster
    /// mode yet; compacted topics keep every record.
    fn compact_due(&self, _now_ms: i64, _stop: Arc<AtomicBool>) -> BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }

    /// Nothing to do: every write is answered only after the commit that stores it, so
    /// everything acknowledged is already durable.
    fn flush(&self) -> BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }
}
