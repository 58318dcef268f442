//! Compaction on the bytes of record batches, with no storage behind it: what happens to a
//! batch ([`AbortedRanges::fate`]), the newest offset of every key ([`KeyMap`]), and one
//! batch cleaned against that map ([`clean_batch`]). The local engine's cleaner runs these
//! over segment files; the cluster engine's compactor over chunks read from the bucket.
//! The rules are the ones `cleaner.rs` opens with.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use crate::batch::{BatchHeader, BATCH_HEADER_BYTES};
use crate::records::{
    records_payload, walk_records, RawRecord, BATCH_DECOMPRESSED_BYTES_MAX, CODEC_MASK,
    TIMESTAMP_TYPE_LOG_APPEND,
};
use crate::txn_index::AbortedTxn;
use crate::LogError;

/// Memory counted per key map entry beyond the key bytes.
const KEY_MAP_ENTRY_OVERHEAD: usize = 64;

/// What the cleaner does with one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFate {
    /// Plain data, or a committed transaction's: compacted by key.
    Compact,
    /// A marker, or a transaction that may be open: copied as it is, its keys unused.
    Keep,
    /// An aborted transaction's data: left out.
    Drop,
}

/// The aborted transactions of a clean, per producer id as (first offset, last offset) by
/// first offset; one producer's transactions never overlap.
pub struct AbortedRanges(HashMap<i64, Vec<(i64, i64)>>);

impl AbortedRanges {
    pub fn new(aborted: &[AbortedTxn]) -> AbortedRanges {
        let mut map: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for a in aborted {
            map.entry(a.producer_id)
                .or_default()
                .push((a.first_offset, a.last_offset));
        }
        for ranges in map.values_mut() {
            ranges.sort_unstable();
        }
        AbortedRanges(map)
    }

    fn contains(&self, producer_id: i64, offset: i64) -> bool {
        let Some(ranges) = self.0.get(&producer_id) else {
            return false;
        };
        let slot = ranges.partition_point(|&(first, _)| first <= offset);
        slot > 0 && offset <= ranges[slot - 1].1
    }

    /// The fate of the batch `header` heads, in a log whose last stable offset was
    /// `last_stable_offset` when the clean was planned.
    pub fn fate(&self, header: &BatchHeader, last_stable_offset: i64) -> BatchFate {
        if header.is_control() {
            BatchFate::Keep
        } else if !header.is_transactional() {
            BatchFate::Compact
        } else if self.contains(header.producer_id, header.base_offset) {
            BatchFate::Drop
        } else if header.base_offset >= last_stable_offset {
            BatchFate::Keep
        } else {
            BatchFate::Compact
        }
    }
}

/// The newest offset of every key seen, with copies of the keys.
#[derive(Default)]
pub struct KeyMap {
    newest: HashMap<Bytes, i64>,
    bytes: usize,
}

impl KeyMap {
    pub fn new() -> KeyMap {
        KeyMap::default()
    }

    /// Memory the map holds: its keys' bytes and a per-entry allowance.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.newest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.newest.is_empty()
    }

    /// Notes the offset of every keyed record of `batch` (exactly one whole batch, its
    /// offsets real), later ones replacing earlier ones. Returns the records walked.
    pub fn add_batch(&mut self, header: &BatchHeader, batch: &[u8]) -> Result<u64, LogError> {
        let payload = records_payload(header, batch, BATCH_DECOMPRESSED_BYTES_MAX)?;
        let records = walk_records(header, &payload)?;
        for r in &records {
            if let Some(key) = &r.key {
                let key = &payload[key.clone()];
                match self.newest.get_mut(key) {
                    Some(offset) => *offset = (*offset).max(r.offset),
                    None => {
                        self.bytes += key.len() + KEY_MAP_ENTRY_OVERHEAD;
                        self.newest.insert(Bytes::copy_from_slice(key), r.offset);
                    }
                }
            }
        }
        Ok(records.len() as u64)
    }

    /// Whether the record of `key` at `offset` is the newest of its key the map knows (or
    /// the map does not know the key).
    fn is_newest(&self, key: &[u8], offset: i64) -> bool {
        self.newest.get(key).is_none_or(|&newest| newest <= offset)
    }
}

/// One batch after a clean.
#[derive(Debug, PartialEq, Eq)]
pub enum CleanedBatch {
    /// Every record kept: the batch goes on byte for byte.
    Whole,
    /// Some records kept: the batch rebuilt around them.
    Rewritten(Vec<u8>),
    /// No record kept: the batch goes.
    Empty,
}

/// What [`clean_batch`] kept of one batch.
#[derive(Debug, PartialEq, Eq)]
pub struct Kept {
    pub batch: CleanedBatch,
    pub records: u64,
    /// Of `records`, the tombstones (a key and no value).
    pub tombstones: u64,
}

/// Cleans one batch of fate [`BatchFate::Compact`] (`batch` is exactly the batch, its
/// offsets real): a record stays when it has a key, no newer record of that key is in
/// `keys`, and it has a value or `keep_tombstones`.
pub fn clean_batch(
    header: &BatchHeader,
    batch: &[u8],
    keys: &KeyMap,
    keep_tombstones: bool,
) -> Result<Kept, LogError> {
    let payload = records_payload(header, batch, BATCH_DECOMPRESSED_BYTES_MAX)?;
    let records = walk_records(header, &payload)?;
    let kept: Vec<&RawRecord> = records
        .iter()
        .filter(|r| {
            r.key
                .as_ref()
                .is_some_and(|k| keys.is_newest(&payload[k.clone()], r.offset))
                && (r.has_value() || keep_tombstones)
        })
        .collect();
    let tombstones = kept.iter().filter(|r| !r.has_value()).count() as u64;
    let outcome = if kept.len() == records.len() {
        CleanedBatch::Whole
    } else if kept.is_empty() {
        CleanedBatch::Empty
    } else {
        CleanedBatch::Rewritten(rebuild_batch(header, batch, &payload, &kept)?)
    };
    Ok(Kept {
        batch: outcome,
        records: kept.len() as u64,
        tombstones,
    })
}

/// Compresses a records payload with the codec of `header`.
fn compress_payload(header: &BatchHeader, raw: &[u8]) -> Result<Vec<u8>, LogError> {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let put_all = |b: &mut BytesMut| {
        b.extend_from_slice(raw);
        Ok(())
    };
    let result = match header.attributes & CODEC_MASK {
        0 => {
            out.extend_from_slice(raw);
            Ok(())
        }
        1 => <Gzip as Compressor<Vec<u8>>>::compress(&mut out, put_all),
        2 => <Snappy as Compressor<Vec<u8>>>::compress(&mut out, put_all),
        3 => <Lz4 as Compressor<Vec<u8>>>::compress(&mut out, put_all),
        4 => <Zstd as Compressor<Vec<u8>>>::compress(&mut out, put_all),
        codec => {
            return Err(LogError::CorruptMessage(format!(
                "unknown compression codec {codec}"
            )))
        }
    };
    result.map_err(|e| {
        LogError::InvalidRecord(format!(
            "cannot compress the cleaned batch at offset {}: {e}",
            header.base_offset
        ))
    })?;
    Ok(out)
}

/// A batch holding only the `kept` records of `batch`: the same header but for the length,
/// record count, max timestamp and CRC; the records' bytes unchanged (their offset and
/// timestamp deltas still count from the original base), recompressed with the same codec.
fn rebuild_batch(
    header: &BatchHeader,
    batch: &[u8],
    payload: &[u8],
    kept: &[&RawRecord],
) -> Result<Vec<u8>, LogError> {
    let mut raw = Vec::with_capacity(kept.iter().map(|r| r.range.len()).sum());
    for r in kept {
        raw.extend_from_slice(&payload[r.range.clone()]);
    }
    let records = compress_payload(header, &raw)?;
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + records.len());
    out.extend_from_slice(&batch[..BATCH_HEADER_BYTES]);
    out.extend_from_slice(&records);
    let batch_length = (out.len() - crate::batch::LOG_OVERHEAD_BYTES) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    if header.attributes & TIMESTAMP_TYPE_LOG_APPEND == 0 {
        let max_timestamp = kept
            .iter()
            .map(|r| r.timestamp)
            .max()
            .unwrap_or(header.max_timestamp);
        out[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    }
    out[57..61].copy_from_slice(&(kept.len() as i32).to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}
