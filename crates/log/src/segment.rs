//! One segment: a `.log` file of whole record batches, plus a sparse offset index
//! (`.index`, entries of relative offset and file position, 4+4 bytes) and a sparse time
//! index (`.timeindex`, entries of timestamp and relative offset, 8+4 bytes), named after
//! the segment's base offset as Kafka names them.
//!
//! Both indexes are also kept in memory. They are rebuilt from the log on open, so a
//! missing or damaged index file never matters; the files are written for tools and for
//! humans that expect Kafka's layout.
//!
//! A segment also owns its aborted-transaction index ([`TxnIndex`], `.txnindex`), which is
//! not rebuilt from the segment alone (an entry needs the first offset of a transaction that
//! may have begun in an earlier segment): it is read on open and kept as written; the
//! partition reconciles the active segment's with what replay derives.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::{crc_matches, end_txn_marker, BatchHeader, EndTxnMarker, BATCH_HEADER_BYTES};
use crate::config::INDEX_INTERVAL_BYTES;
use crate::txn_index::{AbortedTxn, TxnIndex};
use crate::LogError;

/// Buffer used when scanning a segment on open.
const SCAN_BUFFER_BYTES: usize = 1 << 20;

pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

pub struct Segment {
    pub base_offset: i64,
    log_path: PathBuf,
    log: Arc<File>,
    index_file: File,
    time_index_file: File,
    txn_index: TxnIndex,
    size_bytes: u64,
    /// Sparse (relative offset, position) of batch starts, ascending.
    index: Vec<(u32, u32)>,
    /// Sparse (max timestamp so far, relative offset of the batch that reached it).
    time_index: Vec<(i64, u32)>,
    bytes_since_index: u64,
    /// One past the last offset stored in this segment.
    pub next_offset: i64,
    /// Largest batch max_timestamp in this segment, -1 when empty.
    pub max_timestamp: i64,
    /// Base offset of the batch holding `max_timestamp`.
    pub max_timestamp_batch_offset: i64,
    /// Wall-clock time of the first append, for `segment.ms` rolls.
    pub first_append_ms: Option<i64>,
}

/// One batch found by the scan on open: its header and, for a control batch, its marker.
#[derive(Debug, Clone, Copy)]
pub struct ScannedBatch {
    pub header: BatchHeader,
    pub marker: Option<EndTxnMarker>,
}

/// What recovery found in a segment: the batches kept, and how many bytes were cut.
pub struct OpenReport {
    pub batches: Vec<ScannedBatch>,
    pub truncated_bytes: u64,
}

impl Segment {
    fn paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf, PathBuf) {
        let stem = file_stem(base_offset);
        (
            dir.join(format!("{stem}.log")),
            dir.join(format!("{stem}.index")),
            dir.join(format!("{stem}.timeindex")),
        )
    }

    /// Opens (or creates) the segment at `base_offset`, scanning its log to rebuild the
    /// indexes. With `validate_crc`, every batch's CRC is checked and the log is cut at the
    /// first torn or corrupt batch: that is how the active segment recovers from a crash.
    /// With `keep_headers`, the report lists every batch kept, markers read.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        validate_crc: bool,
        keep_headers: bool,
    ) -> Result<(Segment, OpenReport), LogError> {
        let (log_path, index_path, time_index_path) = Self::paths(dir, base_offset);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&log_path)?;
        let index_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&index_path)?;
        let time_index_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&time_index_path)?;
        let file_len = log.metadata()?.len();
        let mut seg = Segment {
            base_offset,
            log_path,
            log: Arc::new(log),
            index_file,
            time_index_file,
            txn_index: TxnIndex::open(TxnIndex::path(dir, &file_stem(base_offset)))?,
            size_bytes: 0,
            index: Vec::new(),
            time_index: Vec::new(),
            bytes_since_index: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            max_timestamp_batch_offset: base_offset,
            first_append_ms: None,
        };

        // Scan batch by batch; stop at the first incomplete or invalid one.
        let mut batches = Vec::new();
        let scan_file = Arc::clone(&seg.log);
        let mut reader = BufReader::with_capacity(SCAN_BUFFER_BYTES, scan_file.as_ref());
        reader.seek(SeekFrom::Start(0))?;
        let mut position: u64 = 0;
        let mut head = [0u8; BATCH_HEADER_BYTES];
        let mut body = Vec::new();
        while position + BATCH_HEADER_BYTES as u64 <= file_len {
            if reader.read_exact(&mut head).is_err() {
                break;
            }
            let Ok(header) = BatchHeader::parse(&head) else {
                break;
            };
            if header.magic != 2
                || position + header.size_bytes as u64 > file_len
                || header.base_offset < seg.next_offset
                || header.last_offset_delta < 0
            {
                break;
            }
            let rest = header.size_bytes - BATCH_HEADER_BYTES;
            // The body is read when its CRC is checked, or when it holds a marker to replay.
            if validate_crc || (keep_headers && header.is_control()) {
                body.clear();
                body.extend_from_slice(&head);
                body.resize(header.size_bytes, 0);
                if reader.read_exact(&mut body[BATCH_HEADER_BYTES..]).is_err() {
                    break;
                }
                if validate_crc && !crc_matches(&header, &body) {
                    break;
                }
            } else {
                reader.seek_relative(rest as i64)?;
            }
            seg.note_append(&header, position)?;
            if keep_headers {
                let marker = if header.is_control() {
                    end_txn_marker(&body)
                } else {
                    None
                };
                batches.push(ScannedBatch { header, marker });
            }
            position += header.size_bytes as u64;
        }
        drop(reader);
        let truncated_bytes = file_len - position;
        if truncated_bytes > 0 {
            tracing::warn!(
                segment = %seg.log_path.display(),
                truncated_bytes,
                "cut a torn or corrupt tail off the log"
            );
            seg.log.set_len(position)?;
            seg.log.sync_all()?;
        }
        Ok((
            seg,
            OpenReport {
                batches,
                truncated_bytes,
            },
        ))
    }

    /// Updates the in-memory state and index files for a batch just written at `position`.
    fn note_append(&mut self, header: &BatchHeader, position: u64) -> Result<(), LogError> {
        let relative = (header.base_offset - self.base_offset) as u32;
        if self.index.is_empty() || self.bytes_since_index >= INDEX_INTERVAL_BYTES {
            self.index.push((relative, position as u32));
            let mut entry = [0u8; 8];
            entry[..4].copy_from_slice(&relative.to_be_bytes());
            entry[4..].copy_from_slice(&(position as u32).to_be_bytes());
            self.index_file.write_all(&entry)?;
            let ts = self.max_timestamp.max(header.max_timestamp);
            let mut tentry = [0u8; 12];
            tentry[..8].copy_from_slice(&ts.to_be_bytes());
            tentry[8..].copy_from_slice(&relative.to_be_bytes());
            self.time_index.push((ts, relative));
            self.time_index_file.write_all(&tentry)?;
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += header.size_bytes as u64;
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.max_timestamp_batch_offset = header.base_offset;
        }
        self.size_bytes = position + header.size_bytes as u64;
        self.next_offset = header.last_offset() + 1;
        Ok(())
    }

    /// Appends one batch whose base offset is already assigned.
    pub fn append(
        &mut self,
        batch: &[u8],
        header: &BatchHeader,
        now_ms: i64,
    ) -> Result<(), LogError> {
        debug_assert_eq!(batch.len(), header.size_bytes);
        let position = self.size_bytes;
        self.log.write_all_at(batch, position)?;
        self.first_append_ms.get_or_insert(now_ms);
        self.note_append(header, position)
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// The max timestamp of the first batch: about when the segment's oldest record was made.
    pub fn first_timestamp(&self) -> Option<i64> {
        self.time_index
            .first()
            .map(|&(ts, _)| ts)
            .filter(|&ts| ts >= 0)
    }

    pub fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }

    pub fn file(&self) -> Arc<File> {
        Arc::clone(&self.log)
    }

    pub fn read_header_at(&self, position: u64) -> Result<BatchHeader, LogError> {
        let mut head = [0u8; BATCH_HEADER_BYTES];
        self.log.read_exact_at(&mut head, position)?;
        BatchHeader::parse(&head)
    }

    /// Position and header of the batch holding `offset`, or of the first batch after it.
    pub fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        if offset >= self.next_offset || self.size_bytes == 0 {
            return Ok(None);
        }
        let relative = (offset - self.base_offset).max(0) as u32;
        let slot = self.index.partition_point(|&(rel, _)| rel <= relative);
        let mut position = if slot == 0 {
            0
        } else {
            u64::from(self.index[slot - 1].1)
        };
        while position < self.size_bytes {
            let header = self.read_header_at(position)?;
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.size_bytes as u64;
        }
        Ok(None)
    }

    /// Position of the first batch whose max timestamp is at least `timestamp`.
    pub fn find_batch_by_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(u64, BatchHeader)>, LogError> {
        if self.max_timestamp < timestamp {
            return Ok(None);
        }
        // Start from the last sparse entry still below the target.
        let slot = self.time_index.partition_point(|&(ts, _)| ts < timestamp);
        let start_rel = if slot == 0 {
            0
        } else {
            self.time_index[slot - 1].1
        };
        let start = self.find_batch(self.base_offset + i64::from(start_rel))?;
        let Some((mut position, _)) = start else {
            return Ok(None);
        };
        while position < self.size_bytes {
            let header = self.read_header_at(position)?;
            if header.max_timestamp >= timestamp {
                return Ok(Some((position, header)));
            }
            position += header.size_bytes as u64;
        }
        Ok(None)
    }

    pub fn read_bytes(&self, position: u64, len: usize) -> Result<Vec<u8>, LogError> {
        let mut buf = vec![0u8; len];
        self.log.read_exact_at(&mut buf, position)?;
        Ok(buf)
    }

    /// Fsyncs the log and the entries appended to the aborted-transaction index.
    pub fn sync(&self) -> Result<(), LogError> {
        self.log.sync_data()?;
        self.txn_index.sync()
    }

    /// The aborted transactions whose abort marker is in this segment, in marker order.
    pub fn aborted(&self) -> &[AbortedTxn] {
        self.txn_index.entries()
    }

    /// Indexes an abort whose marker was just appended here.
    pub fn append_aborted(&mut self, entry: AbortedTxn) -> Result<(), LogError> {
        debug_assert!(
            entry.last_offset >= self.base_offset && entry.last_offset < self.next_offset
        );
        self.txn_index.append(entry)
    }

    /// Recovery: makes the aborted index agree with this segment's batches and with the
    /// entries replay derived for them (see [`TxnIndex::reconcile`]).
    pub fn reconcile_aborted(&mut self, derived: &[AbortedTxn]) -> Result<(), LogError> {
        self.txn_index.reconcile(self.next_offset, derived)
    }

    pub fn delete_files(self) -> Result<(), LogError> {
        let (_, index_path, time_index_path) = Self::paths(
            self.log_path.parent().unwrap_or_else(|| Path::new(".")),
            self.base_offset,
        );
        self.txn_index.delete_file()?;
        for p in [&self.log_path, &index_path, &time_index_path] {
            match fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
