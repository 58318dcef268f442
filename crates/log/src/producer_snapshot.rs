//! Producer-state snapshots: the whole [`ProducerStateTable`] as it was at a log offset,
//! written when a segment rolls as `<dir>/<20-digit offset>.snapshot` (the offset is the new
//! active segment's base: every batch below it is in the snapshot, none at or above). On
//! open, the newest valid snapshot at or below the active segment's base is loaded and the
//! batches from its offset on are replayed over it, so a transaction opened in an older
//! segment is still open after a restart.
//!
//! The format is weir's own, big-endian:
//!
//! ```text
//! offset  size  field
//!  0       4    crc      (CRC-32C of every byte after this field)
//!  4       2    version  (1)
//!  6       8    offset   (the same as the file name's)
//! 14       4    producer count
//! then per producer, by producer id:
//!          8    producer id
//!          2    epoch
//!          4    coordinator epoch (-1: none)
//!          8    first offset of the open transaction (-1: none)
//!          8    last timestamp (ms)
//!          1    cached batch count (at most PRODUCER_BATCHES_CACHED_MAX)
//!         16    per cached batch: int32 first sequence, int32 last sequence, int64 base offset
//! ```
//!
//! A snapshot that does not read back whole (bad CRC, short, other version) is ignored and
//! removed; the next older one is used instead, or empty state with the whole log replayed.

use std::collections::VecDeque;
use std::fs;
use std::path::Path;

use crate::durable::{persist_file, sync_dir};
use crate::producer::{
    CachedBatch, ProducerEntry, ProducerStateTable, PRODUCER_BATCHES_CACHED_MAX,
};
use crate::segment::file_stem;
use crate::LogError;

pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Snapshots kept in a partition directory; older ones are deleted when a new one is written.
pub const SNAPSHOTS_KEPT: usize = 2;
const SNAPSHOT_VERSION: i16 = 1;
const HEADER_BYTES: usize = 18;
const PRODUCER_BYTES: usize = 31;
const CACHED_BATCH_BYTES: usize = 16;

pub fn file_name(offset: i64) -> String {
    format!("{}{SNAPSHOT_SUFFIX}", file_stem(offset))
}

pub fn encode(offset: i64, table: &ProducerStateTable) -> Vec<u8> {
    let mut entries: Vec<(i64, &ProducerEntry)> = table.entries().collect();
    entries.sort_by_key(|(pid, _)| *pid);
    let mut out = Vec::with_capacity(
        HEADER_BYTES + entries.len() * (PRODUCER_BYTES + 2 * CACHED_BATCH_BYTES),
    );
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (pid, e) in entries {
        assert!(
            e.batches.len() <= PRODUCER_BATCHES_CACHED_MAX,
            "the cache is bounded"
        );
        out.extend_from_slice(&pid.to_be_bytes());
        out.extend_from_slice(&e.epoch.to_be_bytes());
        out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        out.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        out.extend_from_slice(&e.last_timestamp_ms.to_be_bytes());
        out.push(e.batches.len() as u8);
        for b in &e.batches {
            out.extend_from_slice(&b.first_sequence.to_be_bytes());
            out.extend_from_slice(&b.last_sequence.to_be_bytes());
            out.extend_from_slice(&b.base_offset.to_be_bytes());
        }
    }
    let crc = crc32c::crc32c(&out[4..]);
    out[..4].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Reads bytes from disk at a cursor, refusing to run past their end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], LogError> {
        let end = self
            .at
            .checked_add(N)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(corrupt("it ends early"));
        };
        let out = self.bytes[self.at..end].try_into().expect("N bytes");
        self.at = end;
        Ok(out)
    }
    fn i16(&mut self) -> Result<i16, LogError> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Result<i32, LogError> {
        self.take().map(i32::from_be_bytes)
    }
    fn i64(&mut self) -> Result<i64, LogError> {
        self.take().map(i64::from_be_bytes)
    }
}

fn corrupt(why: &str) -> LogError {
    LogError::CorruptMessage(format!("producer-state snapshot: {why}"))
}

/// Reads a snapshot that its file name says is at `offset`.
pub fn decode(bytes: &[u8], offset: i64) -> Result<ProducerStateTable, LogError> {
    if bytes.len() < HEADER_BYTES {
        return Err(corrupt("shorter than its header"));
    }
    let stored_crc = u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes"));
    if crc32c::crc32c(&bytes[4..]) != stored_crc {
        return Err(corrupt("CRC mismatch"));
    }
    let mut r = Reader { bytes, at: 4 };
    if r.i16()? != SNAPSHOT_VERSION {
        return Err(corrupt("unknown version"));
    }
    if r.i64()? != offset {
        return Err(corrupt("its offset is not its name's"));
    }
    let count = u32::from_be_bytes(r.take()?) as usize;
    // The count comes from disk: trust it only as far as the bytes can hold producers.
    if count > (bytes.len() - HEADER_BYTES) / PRODUCER_BYTES {
        return Err(corrupt("more producers than bytes"));
    }
    let mut table = ProducerStateTable::default();
    for _ in 0..count {
        let producer_id = r.i64()?;
        let epoch = r.i16()?;
        let coordinator_epoch = r.i32()?;
        let txn_first = r.i64()?;
        let last_timestamp_ms = r.i64()?;
        let [batch_count] = r.take::<1>()?;
        if usize::from(batch_count) > PRODUCER_BATCHES_CACHED_MAX {
            return Err(corrupt("too many cached batches"));
        }
        let mut batches = VecDeque::with_capacity(usize::from(batch_count));
        for _ in 0..batch_count {
            batches.push_back(CachedBatch {
                first_sequence: r.i32()?,
                last_sequence: r.i32()?,
                base_offset: r.i64()?,
            });
        }
        let current_txn_first_offset = (txn_first >= 0).then_some(txn_first);
        if current_txn_first_offset.is_some_and(|f| f >= offset) {
            return Err(corrupt("a transaction that begins after the snapshot"));
        }
        let entry = ProducerEntry {
            epoch,
            batches,
            coordinator_epoch,
            current_txn_first_offset,
            last_timestamp_ms,
        };
        if !table.insert(producer_id, entry) {
            return Err(corrupt(
                "two entries for one producer, or two transactions at one offset",
            ));
        }
    }
    if r.at != bytes.len() {
        return Err(corrupt("bytes after the last producer"));
    }
    Ok(table)
}

/// Offsets of the snapshots in `dir`, ascending.
pub fn list(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if let Some(offset) = name
            .strip_suffix(SNAPSHOT_SUFFIX)
            .and_then(|stem| stem.parse::<i64>().ok())
        {
            out.push(offset);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn remove(dir: &Path, offset: i64) -> Result<(), LogError> {
    match fs::remove_file(dir.join(file_name(offset))) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Writes the snapshot at `offset` durably, then deletes all but the newest
/// [`SNAPSHOTS_KEPT`].
pub fn write(dir: &Path, offset: i64, table: &ProducerStateTable) -> Result<(), LogError> {
    persist_file(dir, &file_name(offset), &encode(offset, table))?;
    let offsets = list(dir)?;
    for &old in offsets.iter().rev().skip(SNAPSHOTS_KEPT) {
        remove(dir, old)?;
    }
    Ok(())
}

/// The newest snapshot at or below `at_most` that reads back whole. Snapshots above
/// `at_most` (the log was cut below them, or their segment never became durable) and
/// unreadable ones are deleted.
pub fn load_newest(
    dir: &Path,
    at_most: i64,
) -> Result<Option<(i64, ProducerStateTable)>, LogError> {
    let mut removed = false;
    let mut found = None;
    for offset in list(dir)?.into_iter().rev() {
        if offset > at_most {
            remove(dir, offset)?;
            removed = true;
            continue;
        }
        let bytes = fs::read(dir.join(file_name(offset)))?;
        match decode(&bytes, offset) {
            Ok(table) => {
                found = Some((offset, table));
                break;
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), offset, error = %e, "removing an unreadable producer-state snapshot");
                remove(dir, offset)?;
                removed = true;
            }
        }
    }
    if removed {
        // A removed snapshot must stay removed: the log may be written past it differently.
        sync_dir(dir)?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchHeader, ControlRecordType};

    fn table() -> ProducerStateTable {
        let mut t = ProducerStateTable::default();
        for (pid, attributes, base_offset) in
            [(1i64, 0x10i16, 3i64), (2, 0, 5), (1, 0x10, 7), (3, 0x10, 9)]
        {
            for seq in 0..7 {
                t.record(&BatchHeader {
                    base_offset: base_offset * 100 + i64::from(seq),
                    size_bytes: 100,
                    magic: 2,
                    crc: 0,
                    attributes,
                    last_offset_delta: 0,
                    base_timestamp: 1,
                    max_timestamp: 2,
                    producer_id: pid,
                    producer_epoch: 4,
                    base_sequence: seq + (base_offset as i32) * 10,
                    records_count: 1,
                });
            }
        }
        t.record_marker(3, 4, 8, ControlRecordType::Commit, 2_000, 55);
        t
    }

    #[test]
    fn a_snapshot_round_trips_every_entry_and_open_transaction() {
        // Goal: epochs, coordinator epochs, open transactions, times and cached batches come
        // back equal, and the open-transaction index is rebuilt from them.
        let t = table();
        let bytes = encode(3_000, &t);
        let back = decode(&bytes, 3_000).unwrap();
        assert_eq!(back.views(), t.views());
        let mut a: Vec<_> = t.entries().map(|(p, e)| (p, e.clone())).collect();
        let mut b: Vec<_> = back.entries().map(|(p, e)| (p, e.clone())).collect();
        a.sort_by_key(|x| x.0);
        b.sort_by_key(|x| x.0);
        assert_eq!(a, b);
        assert_eq!(back.open_transactions().collect::<Vec<_>>(), vec![(1, 300)]);
        assert!(
            decode(&bytes, 2_999).is_err(),
            "the name and the content must agree"
        );
    }

    #[test]
    fn snapshots_that_contradict_themselves_are_refused() {
        // Goal: a snapshot whose CRC is right but whose entries cannot all hold (one producer
        // twice, two transactions opened at one offset) is refused, not half-loaded.
        let mut t = ProducerStateTable::default();
        let entry = |first| ProducerEntry {
            current_txn_first_offset: Some(first),
            ..ProducerEntry::default()
        };
        assert!(t.insert(1, entry(10)));
        assert!(t.insert(2, entry(20)));
        let mut bytes = encode(100, &t);
        assert!(decode(&bytes, 100).is_ok());
        // Make producer 2's transaction start where producer 1's does, then fix the CRC.
        let second_txn_at = HEADER_BYTES + PRODUCER_BYTES + 14;
        bytes[second_txn_at..second_txn_at + 8].copy_from_slice(&10i64.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[4..]);
        bytes[..4].copy_from_slice(&crc.to_be_bytes());
        assert!(decode(&bytes, 100).is_err());
        assert!(!t.insert(1, entry(30)), "one entry per producer");
        assert!(!t.insert(3, entry(20)), "one transaction per first offset");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn damaged_snapshots_are_refused_without_panics() {
        // Goal: any truncation or flipped byte is an error (the CRC, then the bounds).
        let bytes = encode(3_000, &table());
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], 3_000).is_err());
        }
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(decode(&bad, 3_000).is_err());
        }
    }

    #[test]
    fn the_newest_usable_snapshot_is_loaded_and_older_ones_pruned() {
        // Goal: writing keeps the newest two; loading skips (and deletes) those above the
        // bound and corrupt ones, falling back to the next older.
        let dir = tempfile::tempdir().unwrap();
        let t = table();
        for offset in [2_100, 2_200, 2_300] {
            write(dir.path(), offset, &t).unwrap();
        }
        assert_eq!(list(dir.path()).unwrap(), vec![2_200, 2_300]);
        fs::write(dir.path().join(file_name(2_400)), encode(2_400, &t)).unwrap();
        fs::write(dir.path().join(file_name(2_300)), b"garbage").unwrap();
        let (offset, loaded) = load_newest(dir.path(), 2_350).unwrap().unwrap();
        assert_eq!(offset, 2_200, "2_400 is above the bound, 2_300 is corrupt");
        assert_eq!(loaded.views(), t.views());
        assert_eq!(list(dir.path()).unwrap(), vec![2_200]);
        fs::write(dir.path().join(file_name(2_200)), b"").unwrap();
        assert!(load_newest(dir.path(), i64::MAX).unwrap().is_none());
    }
}
