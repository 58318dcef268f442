//! The journal that makes a coordinator's writes to its internal topic durable with one
//! fsync (the local engine's side of [`crate::store::CoordinatorLog`]).
//!
//! Under `--fsync always` a group write (offset commits, group metadata) is acknowledged only
//! once it is on disk. Its records go to `__consumer_offsets` partitions chosen by group, so
//! one coordinator step can touch many partitions, and fsyncing many files costs several
//! times one fsync. Instead, each step appends its batches to their partitions without an
//! fsync and writes the same batches, in one append, to this journal, which alone is
//! fsynced. On start, before `__consumer_offsets` is replayed, every journal batch that a
//! partition lacks (its data was lost with the page cache) is appended again, at the same
//! offset; the partitions are then fsynced and the journal emptied. The journal is also
//! emptied, after the partitions are fsynced, whenever it grows past
//! [`JOURNAL_BYTES_MAX`].
//!
//! Entry layout: `u32 length` (of what follows the checksum), `u32 CRC-32C` (of the same),
//! `i32 partition`, then one record batch with its assigned base offset. A torn last entry is
//! cut off on open.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

/// Size past which the journal is emptied (after fsyncing the partitions it covers).
pub const JOURNAL_BYTES_MAX: u64 = 16 << 20;

/// One journalled batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub partition: i32,
    /// A whole record batch, its base offset assigned.
    pub batch: Vec<u8>,
}

pub struct OffsetsJournal {
    file: File,
    len: u64,
    /// A write or fsync failed in a way that may have left bad bytes before good ones: no
    /// more appends, and no reset, in this process.
    failed: bool,
}

impl OffsetsJournal {
    /// Opens (or creates) the journal and returns the entries it holds, in order. A torn or
    /// corrupt tail is cut off.
    pub fn open(path: &Path) -> std::io::Result<(OffsetsJournal, Vec<JournalEntry>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut entries = Vec::new();
        let mut at = 0usize;
        while at + 12 <= bytes.len() {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let crc = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
            let Some(end) = (at + 8)
                .checked_add(len)
                .filter(|&e| e <= bytes.len() && len >= 4)
            else {
                break;
            };
            let body = &bytes[at + 8..end];
            if crc32c::crc32c(body) != crc {
                break;
            }
            let partition = i32::from_be_bytes(body[..4].try_into().expect("4 bytes"));
            entries.push(JournalEntry {
                partition,
                batch: body[4..].to_vec(),
            });
            at = end;
        }
        if at < bytes.len() {
            // Keep what is cut, for inspection: a damaged entry in the middle would drop the
            // entries after it.
            let kept = path.with_extension("damaged");
            std::fs::write(&kept, &bytes)?;
            tracing::warn!(journal = %path.display(), cut_bytes = bytes.len() - at, copy = %kept.display(), "cut a torn tail off the offsets journal");
            file.set_len(at as u64)?;
            file.sync_all()?;
        }
        // The journal's own name must survive a power loss (it may have just been created).
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        // Appends go to the end whatever the file position.
        let file = OpenOptions::new().append(true).open(path)?;
        Ok((
            OffsetsJournal {
                file,
                len: at as u64,
                failed: false,
            },
            entries,
        ))
    }

    /// Appends the batches of one coordinator step and fsyncs: once this returns, they
    /// survive a crash even if their partitions' copies do not.
    pub fn append(&mut self, entries: &[(i32, &[u8])]) -> std::io::Result<()> {
        if self.failed {
            return Err(std::io::Error::other(
                "the offsets journal failed earlier; restart the broker once the disk is healthy",
            ));
        }
        let mut buf = Vec::with_capacity(entries.iter().map(|(_, b)| b.len() + 12).sum());
        for (partition, batch) in entries {
            let mut body = Vec::with_capacity(4 + batch.len());
            body.extend_from_slice(&partition.to_be_bytes());
            body.extend_from_slice(batch);
            buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
            buf.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
            buf.extend_from_slice(&body);
        }
        if let Err(e) = self.file.write_all(&buf) {
            // Cut the partial entry off, or later entries would sit behind bytes that end
            // the journal on the next open.
            if self
                .file
                .set_len(self.len)
                .and_then(|()| self.file.sync_all())
                .is_err()
            {
                self.failed = true;
            }
            return Err(e);
        }
        if let Err(e) = self.file.sync_data() {
            // After a failed fsync the written bytes may or may not be on disk; nothing
            // after them can be trusted to come back.
            self.failed = true;
            return Err(e);
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Stops appends for good in this process (an fsync the journal relies on failed).
    pub fn mark_failed(&mut self) {
        self.failed = true;
    }

    /// Empties the journal. Only once every partition it covers is fsynced.
    pub fn reset(&mut self) -> std::io::Result<()> {
        if self.failed {
            return Err(std::io::Error::other(
                "the offsets journal failed earlier; it is kept as it is",
            ));
        }
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.len = 0;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_in_order_and_a_torn_tail_is_cut() {
        // Goal: what was appended is read back on open; a half-written last entry and a
        // corrupt one are dropped, the rest kept; reset empties the file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let (mut j, entries) = OffsetsJournal::open(&path).unwrap();
        assert!(entries.is_empty());
        j.append(&[(3, b"first batch"), (7, b"second")]).unwrap();
        j.append(&[(3, b"third")]).unwrap();
        drop(j);
        let (_, entries) = OffsetsJournal::open(&path).unwrap();
        let got: Vec<(i32, &[u8])> = entries
            .iter()
            .map(|e| (e.partition, e.batch.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, &b"first batch"[..]),
                (7, &b"second"[..]),
                (3, &b"third"[..])
            ]
        );

        // Tear the last entry: the first two remain, and the file is cut to them.
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() - 2]).unwrap();
        let (mut j, entries) = OffsetsJournal::open(&path).unwrap();
        assert_eq!(entries.len(), 2);
        j.append(&[(1, b"after the cut")]).unwrap();
        drop(j);
        let (_, entries) = OffsetsJournal::open(&path).unwrap();
        assert_eq!(
            entries.last().map(|e| (e.partition, e.batch.clone())),
            Some((1, b"after the cut".to_vec()))
        );

        // A flipped byte in the second entry: only the first survives.
        let mut bytes = std::fs::read(&path).unwrap();
        let second = 12 + 4 + b"first batch".len() - 4 + 12;
        bytes[second] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (mut j, entries) = OffsetsJournal::open(&path).unwrap();
        assert_eq!(entries.len(), 1);
        j.reset().unwrap();
        assert!(j.is_empty());
        drop(j);
        assert!(OffsetsJournal::open(&path).unwrap().1.is_empty());
    }
}
