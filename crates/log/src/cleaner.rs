//! Log compaction for topics whose `cleanup.policy` contains `compact`: closed segments are
//! rewritten so that only the newest record of each key remains, in place and with its
//! original offset, as Kafka's log cleaner does.
//!
//! The work is split so that the partition lock is held only briefly:
//! 1. `PartitionLog::plan_compaction` (under the lock) picks the closed segments that may be
//!    cleaned and decides whether enough of them is dirty;
//! 2. [`compact`] (without the lock) reads those segments, which never change once closed,
//!    and writes a cleaned copy of each next to it (`<base>.log.cleaned`, fsynced), handing
//!    each to a `swap` callback as soon as it is written; the callback swaps it in with a
//!    rename under the lock (`PartitionLog::swap_cleaned`), so a clean needs free disk for
//!    one segment's copy at a time;
//! 3. `PartitionLog::finish_compaction` (under the lock) records how far the log is clean.
//!
//! Readers that already hold an old file keep reading it; a crash before a rename leaves a
//! `.cleaned` file that the next open deletes.
//!
//! Rules, as in Kafka: the active segment is never cleaned; with `min.compaction.lag.ms`
//! above 0, nor is a not-yet-cleaned segment holding records younger than that; a record is
//! kept when it is the newest of its key among the cleanable segments; records without a key
//! are dropped; a tombstone (a record with a key and no value) is kept until
//! `delete.retention.ms` after its segment was first cleaned (broker time, so consumers that
//! read behind see the delete), then dropped. A batch whose records are all kept is copied
//! byte for byte; a batch with some records kept keeps its header (base offset, last offset,
//! producer id, epoch, base sequence, base timestamp, codec) and the kept records' bytes as
//! they were, only recompressed, as Kafka's cleaner does; an empty batch is dropped.
//! The newest-offset map holds copies of the keys, up to [`KEY_MAP_BYTES_MAX`]; a log with
//! more keys is cleaned in several passes, oldest segments first.
//!
//! Transactions, as in Kafka: a control batch (a commit or abort marker) is always copied
//! unchanged, and its record's key never enters the key map, so it never supersedes a user
//! record with the same key bytes. Markers are kept for good (Kafka drops a marker once
//! `delete.retention.ms` has passed and no batch of its transaction is left; weir does not,
//! which costs a few bytes per transaction and never lets a reader see a transaction without
//! its end). The batches of an aborted transaction (found in the aborted index the plan
//! carries) are dropped whole: read_committed readers skip them anyway. The plan stops before
//! the segment holding the last stable offset, so every transactional batch it covers is
//! decided: not aborted means committed, compacted like any other batch. (Should one at or
//! past the plan's LSO turn up all the same, it is copied unchanged and kept out of the key
//! map, as a transaction that may still abort.)
//!
//! The rules on a batch's bytes (its fate, the key map, one batch cleaned) are in
//! `cleaner/batches.rs`, with no file behind them: the cluster engine's compactor runs the
//! same ones over chunks in its bucket.

mod batches;

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use batches::{clean_batch, AbortedRanges, BatchFate, CleanedBatch, Kept, KeyMap};

use crate::batch::{BatchHeader, BATCH_HEADER_BYTES};
use crate::records::{records_payload, walk_records, BATCH_DECOMPRESSED_BYTES_MAX};
use crate::segment::file_stem;
use crate::txn_index::AbortedTxn;
use crate::LogError;

/// Suffix of a cleaned copy of a segment before it replaces the original.
pub const CLEANED_SUFFIX: &str = ".log.cleaned";
/// Bound on the key bytes (plus a per-entry allowance) one pass holds in memory.
pub const KEY_MAP_BYTES_MAX: usize = 128 << 20;

/// One closed segment chosen for cleaning.
#[derive(Debug, Clone)]
pub struct PlannedSegment {
    pub base_offset: i64,
    pub(crate) file: Arc<File>,
    pub(crate) size_bytes: u64,
    /// One past the last offset the segment holds.
    pub next_offset: i64,
    /// When the tombstones of this segment may go: `delete.retention.ms` after its first
    /// clean. `None` before that clean, which keeps them.
    pub tombstone_deadline_ms: Option<i64>,
    /// Not cleaned yet (at or past the cleaned point).
    pub dirty: bool,
}

/// What `PartitionLog::plan_compaction` chose.
#[derive(Debug, Clone)]
pub struct CompactionPlan {
    pub(crate) dir: PathBuf,
    pub segments: Vec<PlannedSegment>,
    pub(crate) key_map_bytes_max: usize,
    /// The aborted transactions overlapping the planned segments.
    pub(crate) aborted: Vec<AbortedTxn>,
    /// The partition's last stable offset when planned: transactional batches from here on
    /// may still be undecided.
    pub(crate) last_stable_offset: i64,
}

impl CompactionPlan {
    /// Bounds the memory of the key map (normally [`KEY_MAP_BYTES_MAX`]); a log with more
    /// keys is cleaned over several passes.
    pub fn with_key_map_limit(mut self, bytes: usize) -> CompactionPlan {
        self.key_map_bytes_max = bytes;
        self
    }
}

/// A cleaned copy of one segment, written and fsynced, not yet swapped in; `path` is `None`
/// when the clean kept every record, so the segment stays as it is.
#[derive(Debug)]
pub struct CleanedSegment {
    pub base_offset: i64,
    pub(crate) original: Arc<File>,
    pub(crate) path: Option<PathBuf>,
    pub size_bytes: u64,
}

/// The outcome of [`compact`].
#[derive(Debug, Default)]
pub struct CompactionOutput {
    /// One past the last offset covered: the log is clean below it when `all_swapped`.
    pub clean_through: i64,
    /// Every cleaned segment was swapped in (none had gone or changed meanwhile).
    pub all_swapped: bool,
    pub records_read: u64,
    pub records_kept: u64,
}

/// Path of the cleaned copy of the segment at `base_offset`.
pub fn cleaned_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}{CLEANED_SUFFIX}", file_stem(base_offset)))
}

/// Cleans the planned segments (see the module documentation), handing each cleaned copy to
/// `swap` as soon as it is written; `swap` says whether it went in. `stop` is asked between
/// segments; when it says yes, the clean ends there and `None` is returned (the segments
/// already swapped in stay, clean).
pub fn compact(
    plan: &CompactionPlan,
    now_ms: i64,
    stop: &dyn Fn() -> bool,
    swap: &mut dyn FnMut(CleanedSegment) -> Result<bool, LogError>,
) -> Result<Option<CompactionOutput>, LogError> {
    // Pass 1: the newest offset of every key in the dirty segments, oldest first, while the
    // map has room (at least one segment). The segments before them are already clean: each
    // of their keys appears once, and is superseded only by a record in the map.
    let aborted = AbortedRanges::new(&plan.aborted);
    let mut keys = KeyMap::new();
    let mut records_read = 0u64;
    let mut covered = 0usize;
    let mut dirty_covered = 0usize;
    for seg in &plan.segments {
        if !seg.dirty {
            covered += 1;
            continue;
        }
        if dirty_covered > 0 && keys.bytes() >= plan.key_map_bytes_max {
            break;
        }
        if stop() {
            return Ok(None);
        }
        for_each_batch(seg, |header, batch| {
            if aborted.fate(header, plan.last_stable_offset) == BatchFate::Compact {
                records_read += keys.add_batch(header, batch)?;
            }
            Ok(())
        })?;
        covered += 1;
        dirty_covered += 1;
    }

    // Pass 2: write the kept records of every segment up to the last one in the map. A record
    // stays when no newer record of its key is in the map.
    let mut out = CompactionOutput {
        records_read,
        all_swapped: true,
        ..CompactionOutput::default()
    };
    for seg in &plan.segments[..covered] {
        if stop() {
            return Ok(None);
        }
        let keep_tombstones = seg
            .tombstone_deadline_ms
            .is_none_or(|deadline| now_ms <= deadline);
        let path = cleaned_path(&plan.dir, seg.base_offset);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let mut writer = BufWriter::with_capacity(1 << 20, &file);
        let mut size_bytes = 0u64;
        let mut changed = false;
        for_each_batch(seg, |header, batch| {
            match aborted.fate(header, plan.last_stable_offset) {
                BatchFate::Compact => {}
                BatchFate::Keep => {
                    writer.write_all(batch)?;
                    size_bytes += batch.len() as u64;
                    return Ok(());
                }
                BatchFate::Drop => {
                    changed = true;
                    return Ok(());
                }
            }
            let kept = clean_batch(header, batch, &keys, keep_tombstones)?;
            out.records_kept += kept.records;
            match kept.batch {
                CleanedBatch::Whole => {
                    writer.write_all(batch)?;
                    size_bytes += batch.len() as u64;
                }
                CleanedBatch::Rewritten(rewritten) => {
                    changed = true;
                    writer.write_all(&rewritten)?;
                    size_bytes += rewritten.len() as u64;
                }
                CleanedBatch::Empty => changed = true,
            }
            Ok(())
        })?;
        writer.flush()?;
        drop(writer);
        let path = if changed {
            file.sync_all()?;
            Some(path)
        } else {
            drop(file);
            fs::remove_file(&path)?;
            None
        };
        out.clean_through = seg.next_offset;
        let swapped = swap(CleanedSegment {
            base_offset: seg.base_offset,
            original: Arc::clone(&seg.file),
            path,
            size_bytes: if changed { size_bytes } else { seg.size_bytes },
        })?;
        out.all_swapped &= swapped;
    }
    Ok(Some(out))
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

/// How many records of one whole batch (`batch` is exactly the batch) have no key. Walks the
/// records' bytes, decompressed, without decoding them further; the CRC is not checked.
pub fn keyless_records(batch: &[u8]) -> Result<usize, LogError> {
    let header = BatchHeader::parse(batch)?;
    if header.size_bytes != batch.len() {
        return Err(LogError::CorruptMessage(format!(
            "batch declares {} bytes, {} present",
            header.size_bytes,
            batch.len()
        )));
    }
    let payload = records_payload(&header, batch, BATCH_DECOMPRESSED_BYTES_MAX)?;
    Ok(walk_records(&header, &payload)?
        .iter()
        .filter(|r| r.key.is_none())
        .count())
}
