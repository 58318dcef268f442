//! [`PartitionLog`]: the segments of one partition, in offset order, and everything that
//! spans them: offset assignment, reads, lookups by timestamp, retention, DeleteRecords,
//! and recovery on open. Transactions (markers, the last stable offset, aborted ranges,
//! producer state) are in the `transactions` part (`partition/transactions.rs`); reading
//! decoded records (the message browser, a group's lag in time) in `partition/read_records.rs`.
//!
//! The log end offset is also the high watermark: weir keeps one replica per partition.

mod read_records;
mod transactions;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::batch::record_checks::{check_records, RecordRules, TimestampRule};
use crate::batch::{
    assign_base_offset, validate_batches, AppendOrigin, BatchHeader, BATCH_HEADER_BYTES,
};
use crate::cleaner::{
    same_file, CleanedSegment, CompactionOutput, CompactionPlan, PlannedSegment, CLEANED_SUFFIX,
};
use crate::config::LogConfig;
use crate::durable::{persist_file, sync_dir, TEMP_SUFFIX};
use crate::producer::{ProducerStateTable, SequenceCheck};
use crate::producer_snapshot::{self, SNAPSHOT_SUFFIX};
use crate::segment::{file_stem, ScannedBatch, Segment};
use crate::txn_index::AbortedTxn;
use crate::LogError;

/// File that holds the log start offset after DeleteRecords or retention moved it.
const LOG_START_OFFSET_FILE: &str = "log-start-offset";
/// File that holds how far a compacted log is clean and when each segment was first cleaned.
const CLEANER_CHECKPOINT_FILE: &str = "cleaner-checkpoint";

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub base_offset: i64,
    pub last_offset: i64,
    /// True when the batch was a producer retry already stored: nothing was written.
    pub duplicate: bool,
}

/// A byte range of a segment to send to a consumer: whole batches, as stored.
#[derive(Debug, Clone)]
pub struct ReadSlice {
    file: Arc<File>,
    position: u64,
    len: usize,
    /// Size of the first batch, which is returned whole even when above the byte limit.
    first_batch_bytes: usize,
    max_bytes: usize,
}

impl ReadSlice {
    /// Reads the range and trims it to whole batches. Runs without the partition lock: the
    /// range is below the size the segment had when planned, and bytes there never change.
    pub fn load(&self) -> Result<Bytes, LogError> {
        let mut buf = BytesMut::zeroed(self.len);
        self.file.read_exact_at(&mut buf, self.position)?;
        let mut end = 0usize;
        while end + BATCH_HEADER_BYTES <= buf.len() {
            let header = BatchHeader::parse(&buf[end..])?;
            let next = end + header.size_bytes;
            if next > buf.len() || (end > 0 && next > self.max_bytes.max(self.first_batch_bytes)) {
                break;
            }
            end = next;
        }
        buf.truncate(end);
        Ok(buf.freeze())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Size of the first batch of the slice, which a read always includes whole.
    pub fn first_batch_bytes(&self) -> usize {
        self.first_batch_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Told how long each fsync the log makes on its own took (of a segment as it rolls), so
/// the owner can time them; the log itself keeps no metrics.
pub type FsyncObserver = Arc<dyn Fn(std::time::Duration) + Send + Sync>;

pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    producers: ProducerStateTable,
    /// Bytes appended since the last fsync.
    unsynced_bytes: u64,
    /// Compacted logs: every closed segment below this offset has been cleaned.
    clean_through: i64,
    /// Compacted logs: per cleaned segment (by base offset), when it was first cleaned.
    cleaned: BTreeMap<i64, CleanedState>,
    /// The partition was deleted: a compaction in flight must not swap files in.
    deleted: bool,
    fsync_observer: Option<FsyncObserver>,
}

/// What the cleaner remembers of a segment it has cleaned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CleanedState {
    /// Broker time of the first clean; its tombstones may go `delete.retention.ms` later.
    first_ms: i64,
    /// A clean after that deadline has run, so its tombstones are gone.
    tombstones_purged: bool,
}

/// What a compaction did, added up by [`PartitionLog::swap_cleaned`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionReport {
    pub segments_rewritten: usize,
    pub segments_removed: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

impl PartitionLog {
    /// Opens the partition in `dir`, creating it if needed, and recovers it: every segment's
    /// index is rebuilt, the active segment is checked batch by batch and cut at a torn tail,
    /// and producer state is loaded from the newest usable snapshot at or below the active
    /// segment's base, with every batch from the snapshot's offset on replayed over it (just
    /// the active segment's, normally). Replay also gives the aborted transactions whose
    /// markers reached the log but not the `.txnindex`.
    pub fn open(dir: &Path, config: LogConfig) -> Result<PartitionLog, LogError> {
        fs::create_dir_all(dir)?;
        let mut bases = Vec::new();
        for entry in fs::read_dir(dir)? {
            let Ok(entry) = entry else { continue };
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.ends_with(CLEANED_SUFFIX) {
                // A clean interrupted before its swap: the original segment is intact.
                fs::remove_file(entry.path())?;
            } else if name.ends_with(&format!("{SNAPSHOT_SUFFIX}{TEMP_SUFFIX}"))
                || name.ends_with(&format!(".txnindex{TEMP_SUFFIX}"))
            {
                // A snapshot or index rewrite interrupted before its rename.
                fs::remove_file(entry.path())?;
            } else if let Some(base) = name
                .strip_suffix(".log")
                .and_then(|stem| stem.parse::<i64>().ok())
            {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        let log_start_file = fs::read_to_string(dir.join(LOG_START_OFFSET_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok());

        let active_base = bases.last().copied().unwrap_or(log_start_file.unwrap_or(0));
        let (replay_from, mut producers) = match producer_snapshot::load_newest(dir, active_base)? {
            Some((offset, table)) => (offset, table),
            None => (i64::MIN, ProducerStateTable::default()),
        };
        let mut segments = BTreeMap::new();
        for (i, &base) in bases.iter().enumerate() {
            let active = i + 1 == bases.len();
            // Whether the segment may hold batches at or past the snapshot.
            let replay = bases.get(i + 1).is_none_or(|&next| next > replay_from);
            if active && i > 0 && replay_from < base {
                // The snapshot of this segment's roll is missing: write it now that the closed
                // segments are replayed, so the next open need not replay them again.
                producer_snapshot::write(dir, base, &producers)?;
            }
            let (mut segment, report) = Segment::open(dir, base, active, replay)?;
            if replay {
                let derived = replay_batches(&mut producers, &report.batches, replay_from);
                if active || !derived.is_empty() {
                    segment.reconcile_aborted(&derived)?;
                }
            }
            segments.insert(base, segment);
        }
        if segments.is_empty() {
            let base = log_start_file.unwrap_or(0);
            let (segment, _) = Segment::open(dir, base, true, false)?;
            segments.insert(base, segment);
            // A new partition: its first segment's name, and the directory's own.
            sync_dir(dir)?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        let first_base = *segments.keys().next().expect("at least one segment");
        let log_start_offset = log_start_file.unwrap_or(first_base).max(first_base);
        let (clean_through, cleaned) = read_cleaner_checkpoint(dir);
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset,
            producers,
            unsynced_bytes: 0,
            clean_through,
            cleaned,
            deleted: false,
            fsync_observer: None,
        };
        // A log start beyond the end (DeleteRecords then a torn tail) is clamped.
        log.log_start_offset = log.log_start_offset.min(log.log_end_offset());
        Ok(log)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Marks the log deleted (its directory is about to go): compactions in flight discard
    /// their work instead of swapping it in.
    pub fn mark_deleted(&mut self) {
        self.deleted = true;
    }

    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }

    pub fn high_watermark(&self) -> i64 {
        self.log_end_offset()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size_bytes).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    pub fn unsynced_bytes(&self) -> u64 {
        self.unsynced_bytes
    }

    /// Validates and appends the batches of one produce request for this partition.
    ///
    /// Steps:
    /// 1. validate every batch (magic, CRC, counts, `max.message.bytes`), then every record
    ///    (a key on a compacted topic, a timestamp within the topic's window); a batch with
    ///    an invalid record is refused whole, the error naming each such record;
    /// 2. check idempotent-producer sequences and transaction state; a retry of the last
    ///    stored batch returns its original offsets and writes nothing; a plain batch from a
    ///    producer whose transaction is open is refused (`InvalidTxnState`);
    /// 3. assign offsets in place, roll the segment if due, write, update producer state.
    pub fn append(&mut self, records: &mut [u8], now_ms: i64) -> Result<AppendOutcome, LogError> {
        let timestamps = if self.config.timestamp_log_append {
            TimestampRule::LogAppendTime
        } else {
            TimestampRule::CreateTime {
                now_ms,
                before_max_ms: self.config.timestamp_before_max_ms,
                after_max_ms: self.config.timestamp_after_max_ms,
            }
        };
        self.append_within(
            records,
            now_ms,
            self.config.max_message_bytes,
            AppendOrigin::Client,
            timestamps,
        )
    }

    /// [`PartitionLog::append`] for batches the broker already accepted once (put back from
    /// a journal): a `max.message.bytes` lowered since does not refuse them, nor does the
    /// clock that moved on since judge their timestamps.
    pub fn append_accepted(
        &mut self,
        records: &mut [u8],
        now_ms: i64,
    ) -> Result<AppendOutcome, LogError> {
        self.append_within(
            records,
            now_ms,
            usize::MAX,
            AppendOrigin::Client,
            TimestampRule::Unchecked,
        )
    }

    /// [`PartitionLog::append`] for the broker's own coordinators (records of
    /// `__consumer_offsets` or `__transaction_state`, and journalled copies of them), as
    /// Kafka's coordinator origin: no `max.message.bytes` limit, and a batch with a producer
    /// id needs no sequence. Producer epochs are still fenced, and a transactional batch
    /// (offsets committed in a transaction) opens its producer's transaction in this
    /// partition, to be ended by [`PartitionLog::append_marker`].
    pub fn append_internal(
        &mut self,
        records: &mut [u8],
        now_ms: i64,
    ) -> Result<AppendOutcome, LogError> {
        self.append_within(
            records,
            now_ms,
            usize::MAX,
            AppendOrigin::Coordinator,
            TimestampRule::Unchecked,
        )
    }

    /// The partition's name as Kafka prints a topic partition ("orders-0"): the log's
    /// directory is named so.
    fn topic_partition(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn append_within(
        &mut self,
        records: &mut [u8],
        now_ms: i64,
        max_message_bytes: usize,
        origin: AppendOrigin,
        timestamps: TimestampRule,
    ) -> Result<AppendOutcome, LogError> {
        // 1. Validate the batches, then their records.
        let headers = validate_batches(records, max_message_bytes, origin)?;
        let rules = RecordRules {
            key_required: self.config.cleanup_compact,
            timestamps,
        };
        let topic_partition = self.topic_partition();
        let mut at = 0usize;
        for h in &headers {
            check_records(&records[at..at + h.size_bytes], h, &rules, &topic_partition)?;
            at += h.size_bytes;
        }

        // 2. Sequence and transaction checks, all before any write so a refused request
        //    stores nothing.
        let checks = self.producers.check_batches(&headers)?;
        if let [SequenceCheck::Duplicate { base_offset }] = checks[..] {
            return Ok(AppendOutcome {
                base_offset,
                last_offset: base_offset + i64::from(headers[0].last_offset_delta),
                duplicate: true,
            });
        }
        if checks.iter().any(|c| *c != SequenceCheck::Append) {
            return Err(LogError::InvalidRecord(
                "a retried batch was sent together with other batches".into(),
            ));
        }

        // 3. Assign offsets and write.
        let base_offset = self.log_end_offset();
        let mut at = 0usize;
        let mut next = base_offset;
        for h in &headers {
            let batch = &mut records[at..at + h.size_bytes];
            assign_base_offset(batch, next, 0);
            let mut stored = *h;
            stored.base_offset = next;
            self.maybe_roll(h.size_bytes as u64, now_ms)?;
            self.active_mut().append(batch, &stored, now_ms)?;
            self.producers.record(&stored);
            self.unsynced_bytes += h.size_bytes as u64;
            next = stored.last_offset() + 1;
            at += h.size_bytes;
        }
        Ok(AppendOutcome {
            base_offset,
            last_offset: next - 1,
            duplicate: false,
        })
    }

    /// Starts a new segment when the active one is full or old. The old one is fsynced so
    /// that only the active segment can ever hold a torn tail, and a snapshot of producer
    /// state at the new segment's base is written, so recovery replays the active segment
    /// only.
    fn maybe_roll(&mut self, incoming_bytes: u64, now_ms: i64) -> Result<(), LogError> {
        let active = self.active();
        if active.is_empty() {
            return Ok(());
        }
        let full = active.size_bytes() + incoming_bytes > self.config.segment_bytes;
        let old = active
            .first_append_ms
            .is_some_and(|t| now_ms - t >= self.config.segment_ms);
        // A compacted log whose active segment holds records past max.compaction.lag.ms rolls,
        // so the cleaner can reach them.
        let overdue = self.config.cleanup_compact
            && active
                .first_append_ms
                .is_some_and(|t| now_ms.saturating_sub(t) >= self.config.max_compaction_lag_ms);
        if !(full || old || overdue) {
            return Ok(());
        }
        let started = std::time::Instant::now();
        active.sync()?;
        if let Some(observe) = &self.fsync_observer {
            observe(started.elapsed());
        }
        let base = active.next_offset;
        let (segment, _) = Segment::open(&self.dir, base, true, false)?;
        self.segments.insert(base, segment);
        // The snapshot's write ends with a directory fsync, which also keeps the new segment's
        // name through a power loss (or fsyncs of its data would not keep what they
        // acknowledge).
        producer_snapshot::write(&self.dir, base, &self.producers)
    }

    /// Plans a read of whole batches starting at the batch that holds `offset`, up to
    /// `max_bytes` (but at least one whole batch). `None` when `offset` is the log end.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<Option<ReadSlice>, LogError> {
        self.read_bounded(offset, max_bytes, i64::MAX)
    }

    /// [`PartitionLog::read`] of only the whole batches whose base offset is below
    /// `upper_bound_offset` (a read_committed Fetch passes the last stable offset). `None`
    /// when the batch at `offset` starts at or past the bound.
    pub fn read_bounded(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound_offset: i64,
    ) -> Result<Option<ReadSlice>, LogError> {
        let end = self.log_end_offset();
        if offset < self.log_start_offset || offset > end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: end,
            });
        }
        for (_, segment) in self
            .segments
            .range(..=offset)
            .next_back()
            .into_iter()
            .chain(self.segments.range(offset + 1..))
        {
            if let Some((position, header)) = segment.find_batch(offset)? {
                if header.base_offset >= upper_bound_offset {
                    return Ok(None);
                }
                // Where the first batch at or past the bound begins, if it is in this segment.
                let mut limit = segment.size_bytes();
                if let Some((bound_position, bound)) = segment.find_batch(upper_bound_offset)? {
                    limit = if bound.base_offset >= upper_bound_offset {
                        bound_position
                    } else {
                        bound_position + bound.size_bytes as u64
                    };
                }
                let available = (limit - position) as usize;
                let len = available.min(max_bytes.max(header.size_bytes));
                return Ok(Some(ReadSlice {
                    file: segment.file(),
                    position,
                    len,
                    first_batch_bytes: header.size_bytes,
                    max_bytes,
                }));
            }
        }
        Ok(None)
    }

    /// The earliest offset whose record timestamp is at least `timestamp`, with that
    /// record's timestamp. `None` when every record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        for segment in self.segments.values() {
            let Some((position, header)) = segment.find_batch_by_timestamp(timestamp)? else {
                continue;
            };
            let bytes = segment.read_bytes(position, header.size_bytes)?;
            let found = first_record_at_or_after(&bytes, timestamp)
                .unwrap_or((header.base_offset, header.max_timestamp));
            if found.0 < self.log_start_offset {
                return Ok(Some((self.log_start_offset, found.1)));
            }
            return Ok(Some(found));
        }
        Ok(None)
    }

    /// Offset and timestamp of the record with the largest timestamp (ListOffsets -3).
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let Some(segment) = self
            .segments
            .values()
            .filter(|s| !s.is_empty())
            .max_by_key(|s| s.max_timestamp)
        else {
            return Ok(None);
        };
        let Some((position, header)) = segment.find_batch(segment.max_timestamp_batch_offset)?
        else {
            return Ok(None);
        };
        let bytes = segment.read_bytes(position, header.size_bytes)?;
        Ok(Some(
            record_with_max_timestamp(&bytes)
                .unwrap_or((header.last_offset(), header.max_timestamp)),
        ))
    }

    /// DeleteRecords: moves the log start offset forward to `offset` and removes segments
    /// that lie wholly below it. Returns the new log start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        let end = self.log_end_offset();
        if offset < 0 || offset > end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: end,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.persist_log_start_offset()?;
            self.remove_segments_below_start()?;
        }
        Ok(self.log_start_offset)
    }

    fn persist_log_start_offset(&self) -> Result<(), LogError> {
        persist_file(
            &self.dir,
            LOG_START_OFFSET_FILE,
            self.log_start_offset.to_string().as_bytes(),
        )
    }

    /// Chooses the closed segments a compaction would clean, or `None` when the log is not
    /// compacted or too little of it is dirty (`min.cleanable.dirty.ratio`). Segments are
    /// taken oldest first; with `min.compaction.lag.ms` above 0, up to the first
    /// not-yet-cleaned one holding records younger than that; the active segment never; as in
    /// Kafka, none that reaches the last stable offset (a record there may not supersede an
    /// older one that read_committed readers still see as the newest, and a transaction there
    /// may still abort).
    pub fn plan_compaction(&self, now_ms: i64) -> Option<CompactionPlan> {
        if !self.config.cleanup_compact || self.segments.len() < 2 {
            return None;
        }
        let lag = self.config.min_compaction_lag_ms;
        let last_stable_offset = self.last_stable_offset();
        let closed = self.segments.values().take(self.segments.len() - 1);
        let segments: Vec<PlannedSegment> = closed
            .take_while(|s| s.next_offset <= last_stable_offset)
            .take_while(|s| {
                lag <= 0
                    || s.next_offset <= self.clean_through
                    || s.max_timestamp <= now_ms.saturating_sub(lag)
            })
            .map(|s| PlannedSegment {
                base_offset: s.base_offset,
                file: s.file(),
                size_bytes: s.size_bytes(),
                next_offset: s.next_offset,
                tombstone_deadline_ms: self.tombstone_deadline(s.base_offset),
                dirty: s.next_offset > self.clean_through,
            })
            .collect();
        let total: u64 = segments.iter().map(|s| s.size_bytes).sum();
        let dirty: u64 = segments
            .iter()
            .filter(|s| s.dirty)
            .map(|s| s.size_bytes)
            .sum();
        let due_by_ratio =
            dirty > 0 && (dirty as f64) >= self.config.min_cleanable_dirty_ratio * total as f64;
        // A dirty segment holding records past max.compaction.lag.ms is due whatever the ratio.
        let max_lag = self.config.max_compaction_lag_ms;
        let due_by_max_lag = self.segments.values().take(segments.len()).any(|s| {
            s.next_offset > self.clean_through
                && s.first_timestamp()
                    .is_some_and(|ts| now_ms.saturating_sub(ts) >= max_lag)
        });
        // A clean segment whose tombstones may now go is worth one more pass.
        let due_by_tombstones = segments.iter().any(|s| {
            !s.dirty
                && s.tombstone_deadline_ms.is_some_and(|d| now_ms > d)
                && self
                    .cleaned
                    .get(&s.base_offset)
                    .is_some_and(|c| !c.tombstones_purged)
        });
        if !(due_by_ratio || due_by_tombstones || due_by_max_lag) {
            return None;
        }
        let planned_end = segments
            .last()
            .map_or(self.log_start_offset, |s| s.next_offset);
        let planned_start = segments.first().map_or(planned_end, |s| s.base_offset);
        Some(CompactionPlan {
            dir: self.dir.clone(),
            segments,
            key_map_bytes_max: crate::cleaner::KEY_MAP_BYTES_MAX,
            aborted: self.aborted_transactions(planned_start, planned_end),
            last_stable_offset,
        })
    }

    /// Swaps in one segment [`crate::cleaner::compact`] has just written, and notes `now_ms`
    /// as its first clean if it is the first. A planned segment that is gone or changed since
    /// (retention, DeleteRecords, a deleted topic) keeps its place and the copy is discarded
    /// (`false`). A segment left empty is removed, unless it is the first (its name holds the
    /// log's start).
    pub fn swap_cleaned(
        &mut self,
        cleaned: CleanedSegment,
        now_ms: i64,
        report: &mut CompactionReport,
    ) -> Result<bool, LogError> {
        let log_path = self
            .dir
            .join(format!("{}.log", file_stem(cleaned.base_offset)));
        let current = self.segments.get(&cleaned.base_offset);
        let unchanged = !self.deleted
            && cleaned.base_offset != self.active().base_offset
            && current.is_some_and(|s| Arc::ptr_eq(&s.file(), &cleaned.original))
            && same_file(&log_path, &cleaned.original);
        if !unchanged {
            if let Some(path) = &cleaned.path {
                let _ = fs::remove_file(path);
            }
            return Ok(false);
        }
        let bytes_before = current.map_or(0, Segment::size_bytes);
        let deadline = self.tombstone_deadline(cleaned.base_offset);
        let state = self
            .cleaned
            .entry(cleaned.base_offset)
            .or_insert(CleanedState {
                first_ms: now_ms,
                tombstones_purged: false,
            });
        if deadline.is_some_and(|d| now_ms > d) {
            state.tombstones_purged = true;
        }
        let Some(path) = cleaned.path else {
            return Ok(true);
        }; // every record kept
        report.bytes_before += bytes_before;
        report.bytes_after += cleaned.size_bytes;
        if cleaned.size_bytes == 0 && self.segments.keys().next() != Some(&cleaned.base_offset) {
            let segment = self
                .segments
                .remove(&cleaned.base_offset)
                .expect("checked above");
            segment.delete_files()?;
            fs::remove_file(&path)?;
            report.segments_removed += 1;
            return Ok(true);
        }
        fs::rename(&path, &log_path)?;
        sync_dir(&self.dir)?;
        // The segment now holds the cleaned file; should reopening fail, the next open of the
        // partition reads it.
        let (segment, _) = Segment::open(&self.dir, cleaned.base_offset, false, false)?;
        self.segments.insert(cleaned.base_offset, segment);
        report.segments_rewritten += 1;
        Ok(true)
    }

    /// Ends a compaction whose segments were all swapped in (`output.all_swapped`): the log
    /// is clean up to `output.clean_through`. Saves the cleaner checkpoint either way.
    pub fn finish_compaction(&mut self, output: &CompactionOutput) -> Result<(), LogError> {
        if self.deleted {
            return Ok(());
        }
        if output.all_swapped && output.clean_through > self.clean_through {
            self.clean_through = output.clean_through;
        }
        let segments = &self.segments;
        self.cleaned.retain(|base, _| segments.contains_key(base));
        self.persist_cleaner_checkpoint()
    }

    /// When the tombstones of the segment at `base` may go: `delete.retention.ms` after its
    /// first clean; `None` if it was never cleaned.
    fn tombstone_deadline(&self, base: i64) -> Option<i64> {
        self.cleaned
            .get(&base)
            .map(|c| c.first_ms.saturating_add(self.config.delete_retention_ms))
    }

    fn persist_cleaner_checkpoint(&self) -> Result<(), LogError> {
        let mut text = format!("clean-through {}\n", self.clean_through);
        for (base, c) in &self.cleaned {
            text.push_str(&format!(
                "cleaned {base} {} {}\n",
                c.first_ms, c.tombstones_purged
            ));
        }
        persist_file(&self.dir, CLEANER_CHECKPOINT_FILE, text.as_bytes())
    }

    fn remove_segments_below_start(&mut self) -> Result<(), LogError> {
        loop {
            let mut iter = self.segments.iter();
            let Some((&base, first)) = iter.next() else {
                break;
            };
            let Some(_) = iter.next() else { break }; // never the active segment
            if first.next_offset > self.log_start_offset {
                break;
            }
            let segment = self.segments.remove(&base).expect("present");
            segment.delete_files()?;
        }
        Ok(())
    }

    /// Deletes whole segments past `retention.ms` or beyond `retention.bytes`, oldest first,
    /// never the active one. Returns how many segments went.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        if !self.config.cleanup_delete {
            return Ok(0);
        }
        let mut deleted = 0;
        loop {
            if self.segments.len() <= 1 {
                break;
            }
            let (&base, oldest) = self.segments.iter().next().expect("non-empty");
            let total = self.size_bytes() as i64;
            let over_bytes = self.config.retention_bytes >= 0
                && total - oldest.size_bytes() as i64 >= self.config.retention_bytes;
            let expired = self.config.retention_ms >= 0
                && oldest.max_timestamp >= 0
                && now_ms - oldest.max_timestamp > self.config.retention_ms;
            // Compaction can leave the first segment empty; it holds nothing to keep.
            let emptied = oldest.is_empty();
            if !(over_bytes || expired || emptied) {
                break;
            }
            let segment = self.segments.remove(&base).expect("present");
            let next_base = self
                .segments
                .keys()
                .next()
                .copied()
                .unwrap_or(segment.next_offset);
            let next_start = segment.next_offset.max(next_base);
            segment.delete_files()?;
            deleted += 1;
            if next_start > self.log_start_offset {
                self.log_start_offset = next_start;
            }
        }
        if deleted > 0 {
            self.persist_log_start_offset()?;
        }
        Ok(deleted)
    }

    /// The file to fsync to make every append so far durable. Earlier segments were
    /// fsynced when they rolled. The active segment's `.txnindex` is not among them: recovery
    /// derives its entries again from the markers in the log.
    pub fn sync_handle(&mut self) -> Arc<File> {
        self.unsynced_bytes = 0;
        self.active().file()
    }

    /// [`PartitionLog::sync_handle`] when `wanted`, for callers that sync only under some policies.
    pub fn sync_handle_if(&mut self, wanted: bool) -> Option<Arc<File>> {
        wanted.then(|| self.sync_handle())
    }

    /// Sets who is told the time of each fsync the log makes on its own (see
    /// [`FsyncObserver`]); fsyncs through [`PartitionLog::sync`] or a
    /// [`PartitionLog::sync_handle`] are the caller's to time.
    pub fn set_fsync_observer(&mut self, observer: FsyncObserver) {
        self.fsync_observer = Some(observer);
    }

    /// Fsyncs the active segment now.
    pub fn sync(&mut self) -> Result<(), LogError> {
        self.unsynced_bytes = 0;
        self.active().sync()
    }
}

/// Replays batches found on open into producer state, those from `from_offset` on (the
/// snapshot's offset). Returns the index entries of the aborts among them.
fn replay_batches(
    producers: &mut ProducerStateTable,
    batches: &[ScannedBatch],
    from_offset: i64,
) -> Vec<AbortedTxn> {
    let mut derived = Vec::new();
    for ScannedBatch { header: h, marker } in batches
        .iter()
        .filter(|b| b.header.base_offset >= from_offset)
    {
        if !h.is_control() {
            producers.record(h);
        } else if let Some(m) = marker {
            let aborted = producers.record_marker(
                h.producer_id,
                h.producer_epoch,
                m.coordinator_epoch,
                m.control_type,
                h.base_offset,
                h.max_timestamp,
            );
            derived.extend(aborted);
        }
    }
    derived
}

/// Reads the cleaner checkpoint: how far the log is clean, and per cleaned segment base its
/// first clean time and whether its tombstones were purged. A missing or unreadable file
/// means nothing was cleaned yet.
fn read_cleaner_checkpoint(dir: &Path) -> (i64, BTreeMap<i64, CleanedState>) {
    let mut clean_through = 0;
    let mut cleaned = BTreeMap::new();
    let text = fs::read_to_string(dir.join(CLEANER_CHECKPOINT_FILE)).unwrap_or_default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["clean-through", n] => clean_through = n.parse().unwrap_or(0),
            ["cleaned", base, ms, purged] => {
                if let (Ok(base), Ok(first_ms), Ok(tombstones_purged)) =
                    (base.parse(), ms.parse(), purged.parse())
                {
                    cleaned.insert(
                        base,
                        CleanedState {
                            first_ms,
                            tombstones_purged,
                        },
                    );
                }
            }
            _ => {}
        }
    }
    (clean_through, cleaned)
}

/// Finds the first record with timestamp >= `timestamp` in one stored batch.
fn first_record_at_or_after(batch: &[u8], timestamp: i64) -> Option<(i64, i64)> {
    let mut buf = Bytes::copy_from_slice(batch);
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).ok()?;
    set.records
        .iter()
        .find(|r| r.timestamp >= timestamp)
        .map(|r| (r.offset, r.timestamp))
}

/// Finds the first record with the batch's largest timestamp.
fn record_with_max_timestamp(batch: &[u8]) -> Option<(i64, i64)> {
    let mut buf = Bytes::copy_from_slice(batch);
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).ok()?;
    let max = set.records.iter().map(|r| r.timestamp).max()?;
    set.records
        .iter()
        .find(|r| r.timestamp == max)
        .map(|r| (r.offset, r.timestamp))
}
