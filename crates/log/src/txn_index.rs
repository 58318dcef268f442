//! The aborted-transaction index of one segment: Kafka's `.txnindex` file, named after the
//! segment (`00000000000000000000.txnindex`), plus the same entries in memory.
//!
//! Each entry is one transaction that an abort marker in this segment ended, 34 bytes
//! big-endian, as Kafka writes them:
//!
//! ```text
//! offset  size  field
//!  0       2    version (0)
//!  2       8    producer_id
//! 10       8    first_offset        (the transaction's first batch)
//! 18       8    last_offset         (the abort marker)
//! 26       8    last_stable_offset  (the partition's LSO right after the abort)
//! ```
//!
//! Entries are in marker order, so ascending by `last_offset`. The file is created with the
//! first entry, as Kafka does: most segments never hold an abort. A read_committed Fetch
//! carries the entries overlapping the range it returns, so the consumer can skip the
//! aborted batches.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::durable::persist_file;
use crate::LogError;

/// Bytes of one `.txnindex` entry.
pub const ABORTED_TXN_ENTRY_BYTES: usize = 34;
/// The entry version Kafka writes and reads.
const ABORTED_TXN_VERSION: i16 = 0;

/// One aborted transaction of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AbortedTxn {
    pub producer_id: i64,
    /// Offset of the transaction's first batch.
    pub first_offset: i64,
    /// Offset of the abort marker that ended it.
    pub last_offset: i64,
    /// The partition's last stable offset right after the abort.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub fn encode(&self) -> [u8; ABORTED_TXN_ENTRY_BYTES] {
        let mut out = [0u8; ABORTED_TXN_ENTRY_BYTES];
        out[0..2].copy_from_slice(&ABORTED_TXN_VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// Reads one entry; `None` for a short slice or a version we do not know.
    pub fn decode(bytes: &[u8]) -> Option<AbortedTxn> {
        let entry = bytes.get(..ABORTED_TXN_ENTRY_BYTES)?;
        let i64_at = |at: usize| i64::from_be_bytes(entry[at..at + 8].try_into().expect("8 bytes"));
        if i16::from_be_bytes([entry[0], entry[1]]) != ABORTED_TXN_VERSION {
            return None;
        }
        Some(AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// Every whole, well-formed entry at the front of a `.txnindex` file's bytes, in order. The
/// walk stops at a torn entry (a crash inside a write), an unknown version, or an entry out
/// of marker order; the bool says whether anything was left unread.
pub fn decode_entries(bytes: &[u8]) -> (Vec<AbortedTxn>, bool) {
    let mut entries: Vec<AbortedTxn> = Vec::with_capacity(bytes.len() / ABORTED_TXN_ENTRY_BYTES);
    for chunk in bytes.chunks(ABORTED_TXN_ENTRY_BYTES) {
        let Some(entry) = AbortedTxn::decode(chunk) else {
            return (entries, true);
        };
        let ordered = entry.first_offset <= entry.last_offset
            && entries
                .last()
                .is_none_or(|e| e.last_offset < entry.last_offset);
        if !ordered {
            return (entries, true);
        }
        entries.push(entry);
    }
    (entries, false)
}

pub fn encode_entries(entries: &[AbortedTxn]) -> Vec<u8> {
    entries.iter().flat_map(AbortedTxn::encode).collect()
}

/// The aborted-transaction index of one segment.
pub struct TxnIndex {
    path: PathBuf,
    /// Open for appends once this process has written an entry.
    file: Option<File>,
    entries: Vec<AbortedTxn>,
    /// The file holds bytes the walk could not read, to be cut by the next rewrite.
    damaged: bool,
}

impl TxnIndex {
    pub fn path(dir: &Path, stem: &str) -> PathBuf {
        dir.join(format!("{stem}.txnindex"))
    }

    /// Reads the index file at `path`; a missing file is an empty index.
    pub fn open(path: PathBuf) -> Result<TxnIndex, LogError> {
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let (entries, damaged) = decode_entries(&bytes);
        if damaged {
            tracing::warn!(index = %path.display(), kept = entries.len(), "a transaction index ends in bytes that are not entries");
        }
        Ok(TxnIndex {
            path,
            file: None,
            entries,
            damaged,
        })
    }

    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// Appends the entry of an abort just written to the segment (not fsynced: see
    /// [`TxnIndex::sync`]).
    pub fn append(&mut self, entry: AbortedTxn) -> Result<(), LogError> {
        assert!(
            self.entries
                .last()
                .is_none_or(|e| e.last_offset < entry.last_offset),
            "aborted transactions are indexed in marker order"
        );
        // The marker is stored already: readers must skip this transaction even if the file
        // write fails, so memory comes first; a failed write leaves the file to be rewritten.
        self.entries.push(entry);
        if self.damaged {
            return self.rewrite();
        }
        let written = match &mut self.file {
            Some(file) => file.write_all(&entry.encode()),
            None => OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .and_then(|file| self.file.insert(file).write_all(&entry.encode())),
        };
        if let Err(e) = written {
            self.damaged = true;
            self.file = None;
            return Err(e.into());
        }
        Ok(())
    }

    /// Recovery of the active segment: drops the entries whose marker is at or past
    /// `next_offset` (cut off with a torn tail) and adds the entries replay derived that the
    /// file lacks (its write was lost in a crash); one marker has at most one entry, so an
    /// entry is known by its `last_offset`. The file is rewritten only if that changed it.
    pub fn reconcile(&mut self, next_offset: i64, derived: &[AbortedTxn]) -> Result<(), LogError> {
        let before = self.entries.len();
        self.entries.retain(|e| e.last_offset < next_offset);
        let mut changed = self.entries.len() != before;
        for entry in derived.iter().filter(|e| e.last_offset < next_offset) {
            if let Err(slot) = self
                .entries
                .binary_search_by_key(&entry.last_offset, |e| e.last_offset)
            {
                self.entries.insert(slot, *entry);
                changed = true;
            }
        }
        if changed || self.damaged {
            self.rewrite()?;
        }
        Ok(())
    }

    /// Replaces the file with the in-memory entries, atomically (or removes it when none).
    fn rewrite(&mut self) -> Result<(), LogError> {
        self.file = None;
        let result = match (
            self.path.parent(),
            self.path.file_name().and_then(|n| n.to_str()),
        ) {
            _ if self.entries.is_empty() => self.delete_file(),
            (Some(dir), Some(name)) => persist_file(dir, name, &encode_entries(&self.entries)),
            _ => Err(LogError::Io(std::io::Error::other(format!(
                "bad index path {}",
                self.path.display()
            )))),
        };
        self.damaged = result.is_err();
        result
    }

    /// Fsyncs the entries appended by this process (a rewrite is durable already).
    pub fn sync(&self) -> Result<(), LogError> {
        if let Some(file) = &self.file {
            file.sync_data()?;
        }
        Ok(())
    }

    pub fn delete_file(&self) -> Result<(), LogError> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(producer_id: i64, first_offset: i64, last_offset: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset,
            last_offset,
            last_stable_offset: last_offset + 1,
        }
    }

    #[test]
    fn entries_round_trip_through_kafkas_34_byte_layout() {
        // Goal: an entry is 34 big-endian bytes in Kafka's field order, and reads back equal.
        let e = AbortedTxn {
            producer_id: 0x0102030405060708,
            first_offset: 10,
            last_offset: 20,
            last_stable_offset: 15,
        };
        let bytes = e.encode();
        assert_eq!(&bytes[0..2], &[0, 0]);
        assert_eq!(&bytes[2..10], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[10..18], &10i64.to_be_bytes());
        assert_eq!(&bytes[26..34], &15i64.to_be_bytes());
        assert_eq!(AbortedTxn::decode(&bytes), Some(e));
        let mut other_version = bytes;
        other_version[1] = 1;
        assert_eq!(AbortedTxn::decode(&other_version), None);
    }

    #[test]
    fn the_file_round_trips_and_a_torn_entry_is_cut_by_recovery() {
        // Goal: appended entries are read back after reopening; a torn last entry is left out
        // and removed from the file by reconcile, which also drops entries past the log end
        // and adds derived ones without duplicating those already there.
        let dir = tempfile::tempdir().unwrap();
        let path = TxnIndex::path(dir.path(), "00000000000000000000");
        let mut index = TxnIndex::open(path.clone()).unwrap();
        assert!(!path.exists(), "the file is made by the first entry");
        for e in [entry(1, 0, 5), entry(2, 3, 9), entry(1, 10, 12)] {
            index.append(e).unwrap();
        }
        index.sync().unwrap();
        drop(index);
        assert_eq!(fs::read(&path).unwrap().len(), 3 * ABORTED_TXN_ENTRY_BYTES);
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&entry(3, 13, 14).encode()[..20]);
        fs::write(&path, &bytes).unwrap();

        let mut index = TxnIndex::open(path.clone()).unwrap();
        assert_eq!(
            index.entries(),
            &[entry(1, 0, 5), entry(2, 3, 9), entry(1, 10, 12)]
        );
        index
            .reconcile(12, &[entry(2, 3, 9), entry(4, 6, 7), entry(1, 10, 12)])
            .unwrap();
        let want = [entry(1, 0, 5), entry(4, 6, 7), entry(2, 3, 9)];
        assert_eq!(index.entries(), &want);
        assert_eq!(
            decode_entries(&fs::read(&path).unwrap()),
            (want.to_vec(), false)
        );
        index.append(entry(5, 11, 11)).unwrap();
        assert_eq!(TxnIndex::open(path.clone()).unwrap().entries().len(), 4);
        index.reconcile(0, &[]).unwrap();
        assert!(!path.exists(), "an index left empty has no file");
    }

    #[test]
    fn entries_out_of_marker_order_end_the_walk() {
        // Goal: bytes from disk that break the index's order are not trusted.
        let bytes = encode_entries(&[entry(1, 0, 5), entry(2, 1, 4), entry(3, 6, 7)]);
        assert_eq!(decode_entries(&bytes), (vec![entry(1, 0, 5)], true));
        let backwards = encode_entries(&[AbortedTxn {
            producer_id: 1,
            first_offset: 9,
            last_offset: 3,
            last_stable_offset: 4,
        }]);
        assert_eq!(decode_entries(&backwards), (vec![], true));
    }
}
