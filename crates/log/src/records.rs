//! The records inside stored Kafka v2 batches: finding them in a batch's payload and
//! decoding them whole (offset, timestamp, key, value, headers), for the cleaner, the checks
//! a produce runs on each record, and readers that show records rather than send bytes
//! (the HTTP API's message browser, the time lag of consumer groups).
//!
//! A batch's payload is decompressed with a bound ([`BATCH_DECOMPRESSED_BYTES_MAX`]): the
//! compressed size of a stored batch is bounded by `max.message.bytes`, but what it expands to
//! is the producer's choice, and a reader must not let one batch take all the memory.
//!
//! Record layout inside the payload (all integers zig-zag varints):
//!
//! ```text
//! length, attributes (1 byte), timestamp_delta, offset_delta,
//! key_length, key, value_length, value, header_count, (key_length, key, value_length, value)*
//! ```
//!
//! A length of -1 is a null key or value.

use std::ops::Range;

use bytes::Bytes;

use crate::batch::{crc_matches, read_varint as varint, BatchHeader, BATCH_HEADER_BYTES};
use crate::codec::decompress;
use crate::LogError;

/// Bound on the decompressed payload of one batch. Far above what a producer sends under
/// any sensible `max.message.bytes` at realistic compression ratios (Kafka's default limit
/// is 1 MiB compressed), and low enough that a batch built to expand without end (a
/// compression bomb) is refused after this much memory instead of all of it.
pub const BATCH_DECOMPRESSED_BYTES_MAX: usize = 128 << 20;

/// Bound on the headers of one record: a record claiming more is corrupt (each header takes
/// at least two bytes, so the payload bound already caps them; this keeps the count sane
/// before any allocation).
const HEADERS_PER_RECORD_MAX: usize = 1 << 16;

/// Bits of a batch's attributes that hold the compression codec.
pub(crate) const CODEC_MASK: i16 = 0x07;
/// The attribute bit saying the broker set the timestamps (LogAppendTime).
pub(crate) const TIMESTAMP_TYPE_LOG_APPEND: i16 = 0x08;

/// Who set a record's timestamp, from its batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamp, per record.
    CreateTime,
    /// The broker's append time: every record of the batch has the batch's max timestamp.
    LogAppendTime,
}

/// One header of a record. Kafka's clients write UTF-8 keys; the bytes are kept as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// One record as stored, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub timestamp_type: TimestampType,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
    /// The record belongs to a transaction (its batch has the transactional attribute).
    pub transactional: bool,
    /// A control record (a transaction's commit or abort marker), not a user record.
    pub control: bool,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

impl StoredRecord {
    /// Bytes of key, value and headers: what a reader's byte budget counts.
    pub fn size_bytes(&self) -> usize {
        let opt = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len);
        opt(&self.key)
            + opt(&self.value)
            + self
                .headers
                .iter()
                .map(|h| h.key.len() + opt(&h.value))
                .sum::<usize>()
    }
}

/// One record inside a batch's (uncompressed) records payload, located but not copied.
#[derive(Debug)]
pub(crate) struct RawRecord {
    /// The record's bytes in the payload, its length prefix included.
    pub(crate) range: Range<usize>,
    pub(crate) offset: i64,
    /// The timestamp the record carries (base timestamp plus delta); a LogAppendTime batch
    /// overrides it with its max timestamp, see [`decode_batch`].
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Range<usize>>,
    /// The value's declared length (-1 for null) and where it starts; checked only when the
    /// record is decoded whole.
    value_len: i64,
    value_at: usize,
}

impl RawRecord {
    /// The record has a value (is not a tombstone).
    pub(crate) fn has_value(&self) -> bool {
        self.value_len >= 0
    }
}

/// The records payload of a batch, decompressed to at most `max_bytes`. Every failure,
/// the bound included, is a corrupt batch: a stored batch that cannot be read is damage.
pub(crate) fn records_payload(
    header: &BatchHeader,
    batch: &[u8],
    max_bytes: usize,
) -> Result<Bytes, LogError> {
    let body = &batch[BATCH_HEADER_BYTES..];
    let codec = (header.attributes & CODEC_MASK) as i8;
    decompress(codec, body, max_bytes)
        .map(Bytes::from)
        .map_err(|e| {
            LogError::CorruptMessage(format!(
                "cannot decompress the batch at offset {}: {e}",
                header.base_offset
            ))
        })
}

/// Finds the records of a payload: where each one lies, its offset, timestamp and key.
pub(crate) fn walk_records(
    header: &BatchHeader,
    payload: &[u8],
) -> Result<Vec<RawRecord>, LogError> {
    let bad = |what: &str| corrupt(header, what);
    // The count comes from the batch: trust it only as far as the bytes can hold records.
    let mut out = Vec::with_capacity((header.records_count.max(0) as usize).min(payload.len()));
    let mut at = 0usize;
    for _ in 0..header.records_count.max(0) {
        let start = at;
        let len = varint(payload, &mut at)?;
        let end = at
            .checked_add(usize::try_from(len).map_err(|_| bad("negative record length"))?)
            .ok_or_else(|| bad("record length"))?;
        if end > payload.len() {
            return Err(bad("a record runs past the payload"));
        }
        let body = &payload[..end];
        at += 1; // attributes
        let timestamp_delta = varint(body, &mut at)?;
        let offset_delta = varint(body, &mut at)?;
        let key_len = varint(body, &mut at)?;
        let key = if key_len < 0 {
            None
        } else {
            let k = at..at
                .checked_add(key_len as usize)
                .ok_or_else(|| bad("key length"))?;
            if k.end > end {
                return Err(bad("a key runs past its record"));
            }
            at = k.end;
            Some(k)
        };
        let value_len = varint(body, &mut at)?;
        out.push(RawRecord {
            range: start..end,
            offset: header.base_offset.saturating_add(offset_delta),
            timestamp: header.base_timestamp.saturating_add(timestamp_delta),
            key,
            value_len,
            value_at: at,
        });
        at = end;
    }
    Ok(out)
}

fn corrupt(header: &BatchHeader, what: &str) -> LogError {
    LogError::CorruptMessage(format!(
        "the batch at offset {}: {what}",
        header.base_offset
    ))
}

/// A length-prefixed (nullable) byte field of `record` at `*at`, which moves past it.
fn nullable_bytes(
    header: &BatchHeader,
    payload: &Bytes,
    record_end: usize,
    at: &mut usize,
) -> Result<Option<Bytes>, LogError> {
    let len = varint(&payload[..record_end], at)?;
    nullable_at(header, payload, record_end, at, len)
}

/// The field of `len` bytes (-1: null) at `*at`, which moves past it.
fn nullable_at(
    header: &BatchHeader,
    payload: &Bytes,
    record_end: usize,
    at: &mut usize,
    len: i64,
) -> Result<Option<Bytes>, LogError> {
    if len < 0 {
        return Ok(None);
    }
    let end = at
        .checked_add(len as usize)
        .filter(|&e| e <= record_end)
        .ok_or_else(|| corrupt(header, "a field runs past its record"))?;
    let bytes = payload.slice(*at..end);
    *at = end;
    Ok(Some(bytes))
}

/// Decodes one whole stored batch (`batch` is exactly the batch) into its records, control
/// records included. The CRC is checked first; the payload is decompressed to at most
/// [`BATCH_DECOMPRESSED_BYTES_MAX`]. Any damage is [`LogError::CorruptMessage`], never a
/// panic.
pub fn decode_batch(batch: &[u8]) -> Result<Vec<StoredRecord>, LogError> {
    let header = BatchHeader::parse(batch)?;
    if header.magic != 2 {
        return Err(corrupt(&header, "not a v2 batch"));
    }
    if !crc_matches(&header, batch) {
        return Err(corrupt(&header, "the CRC does not match"));
    }
    let payload = records_payload(&header, batch, BATCH_DECOMPRESSED_BYTES_MAX)?;
    let timestamp_type = if header.attributes & TIMESTAMP_TYPE_LOG_APPEND != 0 {
        TimestampType::LogAppendTime
    } else {
        TimestampType::CreateTime
    };
    let raw = walk_records(&header, &payload)?;
    let mut out = Vec::with_capacity(raw.len());
    for r in raw {
        let end = r.range.end;
        let mut at = r.value_at;
        let value = nullable_at(&header, &payload, end, &mut at, r.value_len)?;
        let count = varint(&payload[..end], &mut at)?;
        let count = usize::try_from(count)
            .ok()
            .filter(|&n| n <= HEADERS_PER_RECORD_MAX)
            .ok_or_else(|| corrupt(&header, "an impossible header count"))?;
        let mut headers = Vec::with_capacity(count.min(end - at));
        for _ in 0..count {
            let key = nullable_bytes(&header, &payload, end, &mut at)?
                .ok_or_else(|| corrupt(&header, "a header without a key"))?;
            let value = nullable_bytes(&header, &payload, end, &mut at)?;
            headers.push(RecordHeader { key, value });
        }
        out.push(StoredRecord {
            offset: r.offset,
            timestamp_ms: match timestamp_type {
                TimestampType::CreateTime => r.timestamp,
                TimestampType::LogAppendTime => header.max_timestamp,
            },
            timestamp_type,
            key: r.key.map(|k| payload.slice(k)),
            value,
            headers,
            transactional: header.is_transactional(),
            control: header.is_control(),
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
        });
    }
    Ok(out)
}

/// Where a [`RecordCollector`] stands after one read's batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collected {
    /// The limits are reached: the records gathered are the answer.
    Full,
    /// Whole batches were walked; read again from [`RecordCollector::next_offset`].
    Moved,
    /// The read held no whole batch (the log ends in a torn tail, or it was empty).
    Stuck,
}

/// Gathers decoded user records from successive reads of whole stored batches, for
/// readers that show records (the message browser, the lag in time): records from
/// `from_offset` up to the high watermark, at most `max_records`, and no more once their
/// sizes reach `max_bytes` (the first is taken whatever its size). Control batches are
/// skipped. Both engines read the batches their own way and hand them here.
#[derive(Debug)]
pub struct RecordCollector {
    from_offset: i64,
    high_watermark: i64,
    max_records: usize,
    max_bytes: usize,
    next_offset: i64,
    bytes: usize,
    records: Vec<StoredRecord>,
}

impl RecordCollector {
    pub fn new(
        from_offset: i64,
        high_watermark: i64,
        max_records: usize,
        max_bytes: usize,
    ) -> RecordCollector {
        RecordCollector {
            from_offset,
            high_watermark,
            max_records,
            max_bytes,
            next_offset: from_offset,
            bytes: 0,
            records: Vec::new(),
        }
    }

    /// The offset to read from next: past every batch walked so far.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Whether there is nothing more to gather: the high watermark is reached, or the
    /// record limit.
    pub fn done(&self) -> bool {
        self.next_offset >= self.high_watermark || self.records.len() >= self.max_records
    }

    /// Walks one read's whole batches.
    pub fn take(&mut self, batches: bytes::Bytes) -> Result<Collected, LogError> {
        let mut moved = false;
        for batch in crate::batch::whole_batches(batches) {
            let (header, batch) = batch?;
            self.next_offset = self.next_offset.max(header.last_offset() + 1);
            moved = true;
            if header.is_control() {
                continue;
            }
            for record in decode_batch(&batch)? {
                if record.offset < self.from_offset || record.offset >= self.high_watermark {
                    continue;
                }
                if self.records.len() >= self.max_records
                    || (!self.records.is_empty() && self.bytes >= self.max_bytes)
                {
                    return Ok(Collected::Full);
                }
                self.bytes += record.size_bytes();
                self.records.push(record);
            }
        }
        Ok(if moved {
            Collected::Moved
        } else {
            Collected::Stuck
        })
    }

    pub fn into_records(self) -> Vec<StoredRecord> {
        self.records
    }
}
