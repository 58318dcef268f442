//! Log compaction for topics whose `cleanup.policy` contains `compact`: closed segments are
//! rewritten so that only the newest record of each key remains, in place and with its
//! original offset, as Kafka's log cleaner does.
//!
//! The work is split so that the partition lock is held only briefly:
//! 1. [`PartitionLog::plan_compaction`] (under the lock) picks the closed segments that may be
//!    cleaned and decides whether enough of them is dirty;
//! 2. [`compact`] (without the lock) reads those segments, which never change once closed,
//!    and writes a cleaned copy of each next to it (`<base>.log.cleaned`, fsynced);
//! 3. [`PartitionLog::finish_compaction`] (under the lock) swaps each copy in with a rename
//!    and records how far the log is clean. Readers that already hold the old file keep
//!    reading it; a crash before the rename leaves a `.cleaned` file that the next open
//!    deletes.
//!
//! Rules, as in Kafka: the active segment is never cleaned; nor is a segment holding records
//! younger than `min.compaction.lag.ms`; a record is kept when it is the newest of its key
//! among the cleanable segments; records without a key are dropped; a tombstone (a record
//! with a key and no value) is kept for `delete.retention.ms` after the newest record of its
//! segment, so consumers that read behind see the delete, then dropped. A batch whose records
//! are all kept is copied byte for byte; a batch with some records kept is re-encoded with
//! the same compression, producer id, epoch and timestamps; an empty batch is dropped.
//! Transactional and control batches are copied unchanged.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::{RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};

use crate::batch::{BatchHeader, BATCH_HEADER_BYTES};
use crate::segment::file_stem;
use crate::LogError;

/// Suffix of a cleaned copy of a segment before it replaces the original.
pub const CLEANED_SUFFIX: &str = ".log.cleaned";

/// One closed segment chosen for cleaning.
#[derive(Debug, Clone)]
pub struct PlannedSegment {
    pub base_offset: i64,
    pub(crate) file: Arc<File>,
    pub(crate) size_bytes: u64,
    /// One past the last offset the segment holds.
    pub next_offset: i64,
    pub max_timestamp: i64,
}

/// What [`PartitionLog::plan_compaction`](crate::PartitionLog::plan_compaction) chose.
#[derive(Debug, Clone)]
pub struct CompactionPlan {
    pub(crate) dir: PathBuf,
    pub segments: Vec<PlannedSegment>,
    pub(crate) delete_retention_ms: i64,
}

impl CompactionPlan {
    /// Bytes in the segments to clean.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size_bytes).sum()
    }
}

/// A cleaned copy of one segment, written and fsynced, not yet swapped in.
#[derive(Debug)]
pub struct CleanedSegment {
    pub base_offset: i64,
    pub(crate) original: Arc<File>,
    pub(crate) path: PathBuf,
    pub size_bytes: u64,
}

/// The outcome of [`compact`].
#[derive(Debug, Default)]
pub struct CompactionOutput {
    pub segments: Vec<CleanedSegment>,
    /// One past the last offset covered: the log is clean below it once swapped in.
    pub clean_through: i64,
    pub records_read: u64,
    pub records_kept: u64,
}

/// Path of the cleaned copy of the segment at `base_offset`.
pub fn cleaned_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}{CLEANED_SUFFIX}", file_stem(base_offset)))
}

/// Cleans the planned segments (see the module documentation). Touches no state of the
/// partition: the result is swapped in by `finish_compaction`.
pub fn compact(plan: &CompactionPlan, now_ms: i64) -> Result<CompactionOutput, LogError> {
    // Pass 1: the newest offset of every key.
    let mut newest: HashMap<Bytes, i64> = HashMap::new();
    let mut records_read = 0u64;
    for seg in &plan.segments {
        for_each_batch(seg, |header, batch| {
            if header.is_control() || header.is_transactional() {
                return Ok(());
            }
            for r in decode(header, batch)?.records {
                records_read += 1;
                if let Some(key) = r.key {
                    newest.insert(key, r.offset);
                }
            }
            Ok(())
        })?;
    }

    // Pass 2: write each segment's kept records.
    let mut out = CompactionOutput { records_read, ..CompactionOutput::default() };
    for seg in &plan.segments {
        let keep_tombstones = seg.max_timestamp < 0 || now_ms - seg.max_timestamp <= plan.delete_retention_ms;
        let path = cleaned_path(&plan.dir, seg.base_offset);
        let file = OpenOptions::new().write(true).create(true).truncate(true).open(&path)?;
        let mut writer = BufWriter::with_capacity(1 << 20, &file);
        let mut size_bytes = 0u64;
        let mut kept_total = 0u64;
        for_each_batch(seg, |header, batch| {
            if header.is_control() || header.is_transactional() {
                writer.write_all(batch)?;
                size_bytes += batch.len() as u64;
                return Ok(());
            }
            let set = decode(header, batch)?;
            let total = set.records.len();
            let kept: Vec<_> = set
                .records
                .into_iter()
                .filter(|r| {
                    r.key.as_ref().is_some_and(|k| newest.get(k) == Some(&r.offset))
                        && (r.value.is_some() || keep_tombstones)
                })
                .collect();
            kept_total += kept.len() as u64;
            if kept.len() == total {
                writer.write_all(batch)?;
                size_bytes += batch.len() as u64;
            } else if !kept.is_empty() {
                let rewritten = reencode(header, &kept, set.compression)?;
                writer.write_all(&rewritten)?;
                size_bytes += rewritten.len() as u64;
            }
            Ok(())
        })?;
        writer.flush()?;
        drop(writer);
        file.sync_all()?;
        out.records_kept += kept_total;
        out.clean_through = seg.next_offset;
        out.segments.push(CleanedSegment {
            base_offset: seg.base_offset,
            original: Arc::clone(&seg.file),
            path,
            size_bytes,
        });
    }
    Ok(out)
}

/// Whether `path` still names the file `original` was opened from: a topic deleted and
/// created again while the cleaner ran has new files under the same names.
pub(crate) fn same_file(path: &Path, original: &File) -> bool {
    match (fs::metadata(path), original.metadata()) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

/// Calls `f` with every whole batch of a closed segment, in order.
fn for_each_batch(
    seg: &PlannedSegment,
    mut f: impl FnMut(&BatchHeader, &[u8]) -> Result<(), LogError>,
) -> Result<(), LogError> {
    const CHUNK: usize = 4 << 20;
    let mut position = 0u64;
    let mut buf: Vec<u8> = Vec::new();
    while position + BATCH_HEADER_BYTES as u64 <= seg.size_bytes {
        // Read a chunk of whole batches (at least one) starting at `position`.
        let want = (seg.size_bytes - position).min(CHUNK as u64) as usize;
        buf.resize(want, 0);
        seg.file.read_exact_at(&mut buf, position)?;
        let mut at = 0usize;
        while at + BATCH_HEADER_BYTES <= buf.len() {
            let header = BatchHeader::parse(&buf[at..])?;
            if at + header.size_bytes > buf.len() {
                break;
            }
            f(&header, &buf[at..at + header.size_bytes])?;
            at += header.size_bytes;
        }
        if at == 0 {
            // A single batch larger than the chunk.
            let header = BatchHeader::parse(&buf)?;
            if position + header.size_bytes as u64 > seg.size_bytes {
                return Err(LogError::CorruptMessage(format!(
                    "batch at position {position} of segment {} runs past its end",
                    seg.base_offset
                )));
            }
            let mut whole = vec![0u8; header.size_bytes];
            seg.file.read_exact_at(&mut whole, position)?;
            f(&header, &whole)?;
            at = header.size_bytes;
        }
        position += at as u64;
    }
    Ok(())
}

fn decode(header: &BatchHeader, batch: &[u8]) -> Result<kafka_protocol::records::RecordSet, LogError> {
    let mut bytes = Bytes::copy_from_slice(batch);
    RecordBatchDecoder::decode(&mut bytes).map_err(|e| {
        LogError::CorruptMessage(format!("cannot decode the batch at offset {}: {e}", header.base_offset))
    })
}

/// Encodes the kept records of one batch as a batch of their own, keeping the original
/// batch's attributes that the encoder does not carry (timestamp type) and its sequence
/// convention (-1 for batches without a producer).
fn reencode(
    header: &BatchHeader,
    kept: &[kafka_protocol::records::Record],
    compression: kafka_protocol::records::Compression,
) -> Result<Vec<u8>, LogError> {
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, kept, &RecordEncodeOptions { version: 2, compression })
        .map_err(|e| LogError::InvalidRecord(format!("cannot encode the cleaned batch at offset {}: {e}", header.base_offset)))?;
    let mut out = buf.to_vec();
    let rewritten = BatchHeader::parse(&out)?;
    if rewritten.size_bytes != out.len() {
        return Err(LogError::InvalidRecord(format!(
            "the cleaned batch at offset {} did not encode as one batch",
            header.base_offset
        )));
    }
    let timestamp_type_bit = header.attributes & 0x08;
    let attributes = rewritten.attributes | timestamp_type_bit;
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    if header.base_sequence < 0 {
        out[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    }
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}
