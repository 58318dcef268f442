//! Reading a partition as decoded records rather than as bytes for a Fetch: the HTTP API's
//! message browser pages through them, and the lag of a consumer group in time needs the
//! timestamp of the first record it has not consumed.

use super::PartitionLog;
use crate::records::{Collected, RecordCollector, StoredRecord};
use crate::LogError;

/// Bytes planned per read of stored batches while looking for records; a batch larger than
/// this is still read whole.
const READ_CHUNK_BYTES: usize = 1 << 20;

impl PartitionLog {
    /// The user records from `from_offset` on, below the high watermark, in offset order:
    /// at most `max_records` of them, and no more once their keys, values and headers add
    /// up to `max_bytes` (the first record is returned whatever its size). Control batches
    /// (transaction markers) are skipped; records of aborted transactions are not (this is a
    /// read_uncommitted view; each record says whether it is transactional). Records below
    /// `from_offset` inside the first batch are left out.
    ///
    /// `from_offset` must lie in [log start offset, log end offset]
    /// ([`LogError::OffsetOutOfRange`] otherwise); at the end it gives no records. A batch
    /// that does not decode is [`LogError::CorruptMessage`]. The reads happen under whatever
    /// lock guards the log, and decode at most `max_bytes` plus one batch beyond what they
    /// return (each batch's payload bounded by
    /// [`crate::records::BATCH_DECOMPRESSED_BYTES_MAX`]).
    pub fn read_records(
        &self,
        from_offset: i64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let log_end_offset = self.log_end_offset();
        if from_offset < self.log_start_offset() || from_offset > log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset: from_offset,
                log_start_offset: self.log_start_offset(),
                log_end_offset,
            });
        }
        let mut collector =
            RecordCollector::new(from_offset, self.high_watermark(), max_records, max_bytes);
        // Every pass moves past at least one whole batch, or ends the read.
        while !collector.done() {
            let Some(slice) = self.read(collector.next_offset(), READ_CHUNK_BYTES)? else {
                break;
            };
            match collector.take(slice.load()?)? {
                Collected::Moved => {}
                // Stuck: a read that holds no whole batch, the log ends in a torn tail.
                Collected::Full | Collected::Stuck => break,
            }
        }
        Ok(collector.into_records())
    }

    /// The timestamp of the first user record at or after `offset` and below the high
    /// watermark, or `None` when there is none (the group has consumed everything, or only
    /// transaction markers are left). An `offset` below the log start offset means the first
    /// record still stored; one past the log end means none.
    pub fn timestamp_at(&self, offset: i64) -> Result<Option<i64>, LogError> {
        let from = offset.max(self.log_start_offset());
        if from >= self.high_watermark() {
            return Ok(None);
        }
        Ok(self
            .read_records(from, 1, 0)?
            .first()
            .map(|r| r.timestamp_ms))
    }
}
