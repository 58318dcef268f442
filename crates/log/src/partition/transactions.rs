//! The transactional side of [`PartitionLog`] (KIP-98): writing commit and abort markers,
//! the last stable offset, the aborted transactions a read_committed Fetch carries, and the
//! producer state DescribeProducers reports.

use crate::batch::{
    assign_base_offset, encode_end_txn_marker, BatchHeader, ControlRecordType, EndTxnMarker,
};
use crate::partition::{AppendOutcome, PartitionLog};
use crate::producer::ProducerStateView;
use crate::txn_index::AbortedTxn;
use crate::LogError;

impl PartitionLog {
    /// Writes the marker that ends a transaction of `producer_id` (commit or abort), as the
    /// transaction coordinator asks with WriteTxnMarkers.
    ///
    /// Steps:
    /// 1. guards: a marker of an older producer epoch is refused (`InvalidProducerEpoch`), one
    ///    from an older coordinator too (`TransactionCoordinatorFenced`);
    /// 2. encode the control batch and append it at the log end (rolling first if due);
    /// 3. end the producer's open transaction, if it has one (a marker without one is still
    ///    written, as in Kafka); an abort is added to the active segment's aborted index.
    pub fn append_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        now_ms: i64,
    ) -> Result<AppendOutcome, LogError> {
        // 1. Guards.
        if producer_id < 0 || producer_epoch < 0 {
            return Err(LogError::InvalidRecord(format!(
                "a transaction marker needs a producer id and epoch, not {producer_id} and {producer_epoch}"
            )));
        }
        self.producers
            .check_marker(producer_id, producer_epoch, coordinator_epoch)?;

        // 2. Encode and write.
        let control_type = if commit {
            ControlRecordType::Commit
        } else {
            ControlRecordType::Abort
        };
        let marker = EndTxnMarker {
            control_type,
            coordinator_epoch,
        };
        let mut batch = encode_end_txn_marker(producer_id, producer_epoch, marker, now_ms)?;
        let offset = self.log_end_offset();
        assign_base_offset(&mut batch, offset, 0);
        let header = BatchHeader::parse(&batch)?;
        self.maybe_roll(header.size_bytes as u64, now_ms)?;
        self.active_mut().append(&batch, &header, now_ms)?;
        self.unsynced_bytes += header.size_bytes as u64;

        // 3. Producer state and the aborted index.
        let aborted = self.producers.record_marker(
            producer_id,
            producer_epoch,
            coordinator_epoch,
            control_type,
            offset,
            header.max_timestamp,
        );
        if let Some(entry) = aborted {
            self.active_mut().append_aborted(entry)?;
        }
        Ok(AppendOutcome {
            base_offset: offset,
            last_offset: offset,
            duplicate: false,
        })
    }

    /// The last stable offset: the first offset of the earliest open transaction, or the
    /// high watermark when none is open. As in Kafka it is never below the log start offset
    /// (a transaction's first batches may have been deleted while it stays open).
    pub fn last_stable_offset(&self) -> i64 {
        let high_watermark = self.high_watermark();
        let first_unstable = self
            .producers
            .first_unstable_offset()
            .map_or(high_watermark, |f| f.min(high_watermark));
        first_unstable.max(self.log_start_offset)
    }

    /// The aborted transactions a read of `[from_offset, upper_bound_offset)` overlaps: those
    /// with `last_offset >= from_offset` and `first_offset < upper_bound_offset`, by first
    /// offset. A read_committed Fetch returns them so the consumer skips their batches.
    pub fn aborted_transactions(
        &self,
        from_offset: i64,
        upper_bound_offset: i64,
    ) -> Vec<AbortedTxn> {
        let mut out = Vec::new();
        // An entry lives in the segment holding its marker, so markers at or past
        // `from_offset` are in the segment holding it or a later one.
        let first_segment = self
            .segments
            .range(..=from_offset)
            .next_back()
            .map_or(i64::MIN, |(&base, _)| base);
        'segments: for segment in self.segments.range(first_segment..).map(|(_, s)| s) {
            let entries = segment.aborted();
            let start = entries.partition_point(|e| e.last_offset < from_offset);
            for entry in &entries[start..] {
                if entry.first_offset < upper_bound_offset {
                    out.push(*entry);
                }
                // As in Kafka's TransactionIndex: every transaction aborted after this one
                // began at or past this one's LSO, so once that reaches the bound no later
                // entry overlaps the read.
                if entry.last_stable_offset >= upper_bound_offset {
                    break 'segments;
                }
            }
        }
        out.sort_by_key(|e| (e.first_offset, e.last_offset));
        out
    }

    /// Whether `producer_id` has a transaction open in this partition under
    /// `producer_epoch` (a transactional produce to a partition without one is checked with
    /// the coordinator first, KIP-890). A transaction of an earlier epoch, whose marker is
    /// still to come, does not count: the batch of a producer's next transaction (epoch
    /// bumped, transactions V2) must wait for that marker, which the coordinator's check
    /// makes it do (CONCURRENT_TRANSACTIONS), or it would join the earlier transaction.
    pub fn has_open_transaction(&self, producer_id: i64, producer_epoch: i16) -> bool {
        self.producers
            .has_open_transaction_at(producer_id, producer_epoch)
    }

    /// Every producer this partition has state for, by producer id (DescribeProducers).
    pub fn producer_states(&self) -> Vec<ProducerStateView> {
        self.producers.views()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use bytes::Bytes;
    use kafka_protocol::records::Compression;

    use crate::batch::{
        encode_batch, encode_transactional_batch, end_txn_marker, whole_batches, NewRecord,
    };
    use crate::txn_index::AbortedTxn;
    use crate::{LogConfig, LogError, PartitionLog};

    fn records(n: usize) -> Vec<NewRecord> {
        (0..n)
            .map(|i| NewRecord {
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from("v")),
                timestamp_ms: 10,
            })
            .collect()
    }

    fn plain(n: usize) -> Vec<u8> {
        encode_batch(&records(n), None, Compression::None)
            .unwrap()
            .to_vec()
    }

    fn txn(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
        encode_transactional_batch(&records(n), (pid, epoch, seq), Compression::None)
            .unwrap()
            .to_vec()
    }

    fn open(dir: &std::path::Path, segment_bytes: u64) -> PartitionLog {
        PartitionLog::open(
            dir,
            LogConfig {
                segment_bytes,
                ..LogConfig::default()
            },
        )
        .unwrap()
    }

    fn open_txns(log: &PartitionLog) -> Vec<(i64, i64)> {
        log.producer_states()
            .iter()
            .filter(|p| p.current_txn_start_offset >= 0)
            .map(|p| (p.producer_id, p.current_txn_start_offset))
            .collect()
    }

    #[test]
    fn interleaved_transactions_move_the_last_stable_offset() {
        // Goal: the LSO stays at the earliest open transaction's first offset while two
        // producers' transactions interleave, moves as each ends, and is the high watermark
        // when none is open; the abort is indexed with the LSO right after it.
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), 1 << 20);
        log.append(&mut plain(1), 0).unwrap(); // 0
        assert_eq!(log.last_stable_offset(), 1);
        log.append(&mut txn(1, 0, 0, 2), 0).unwrap(); // 1-2
        log.append(&mut txn(2, 0, 0, 1), 0).unwrap(); // 3
        log.append(&mut plain(1), 0).unwrap(); // 4
        assert_eq!(log.last_stable_offset(), 1);
        assert_eq!(open_txns(&log), vec![(1, 1), (2, 3)]);
        assert_eq!(log.append_marker(1, 0, 0, true, 50).unwrap().base_offset, 5);
        assert_eq!(log.last_stable_offset(), 3);
        log.append(&mut txn(2, 0, 1, 1), 0).unwrap(); // 6
        assert_eq!(log.last_stable_offset(), 3);
        log.append_marker(2, 0, 0, false, 60).unwrap(); // 7
        assert_eq!(log.last_stable_offset(), 8);
        assert_eq!(log.last_stable_offset(), log.high_watermark());
        assert_eq!(open_txns(&log), vec![]);
        let want = AbortedTxn {
            producer_id: 2,
            first_offset: 3,
            last_offset: 7,
            last_stable_offset: 8,
        };
        assert_eq!(log.aborted_transactions(0, 8), vec![want]);
        let states = log.producer_states();
        assert_eq!(
            (
                states[0].producer_id,
                states[0].last_sequence,
                states[0].last_timestamp_ms
            ),
            (1, 1, 50)
        );
        assert_eq!(
            (
                states[1].producer_id,
                states[1].last_sequence,
                states[1].coordinator_epoch
            ),
            (2, 1, 0)
        );
    }

    #[test]
    fn a_plain_batch_inside_an_open_transaction_is_refused_and_stores_nothing() {
        // Goal: INVALID_TXN_STATE, the log unchanged; after the commit the same producer may
        // write plain batches again.
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), 1 << 20);
        log.append(&mut txn(1, 0, 0, 1), 0).unwrap();
        let plain_idempotent = |seq| {
            encode_batch(&records(1), Some((1, 0, seq)), Compression::None)
                .unwrap()
                .to_vec()
        };
        let size = log.size_bytes();
        assert!(matches!(
            log.append(&mut plain_idempotent(1), 0),
            Err(LogError::InvalidTxnState(_))
        ));
        assert_eq!((log.log_end_offset(), log.size_bytes()), (1, size));
        // A request that opens a transaction and leaves it in the same breath stores nothing.
        let mut mixed = [
            txn(2, 0, 0, 1),
            encode_batch(&records(1), Some((2, 0, 1)), Compression::None)
                .unwrap()
                .to_vec(),
        ]
        .concat();
        assert!(matches!(
            log.append(&mut mixed, 0),
            Err(LogError::InvalidTxnState(_))
        ));
        assert_eq!(log.log_end_offset(), 1);
        log.append_marker(1, 0, 0, true, 0).unwrap();
        assert_eq!(
            log.append(&mut plain_idempotent(1), 0).unwrap().base_offset,
            2
        );
    }

    #[test]
    fn markers_are_fenced_by_producer_and_coordinator_epochs() {
        // Goal: an older producer epoch or coordinator epoch is refused and stores nothing; a
        // newer producer epoch moves the producer there, so its old epoch is fenced after.
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), 1 << 20);
        log.append(&mut txn(1, 3, 0, 1), 0).unwrap();
        log.append_marker(1, 3, 7, false, 0).unwrap();
        let end = log.log_end_offset();
        assert!(matches!(
            log.append_marker(1, 2, 7, true, 0),
            Err(LogError::InvalidProducerEpoch {
                current: 3,
                got: 2,
                ..
            })
        ));
        assert!(matches!(
            log.append_marker(1, 3, 6, true, 0),
            Err(LogError::TransactionCoordinatorFenced {
                current: 7,
                got: 6,
                ..
            })
        ));
        assert!(matches!(
            log.append_marker(-1, 0, 0, true, 0),
            Err(LogError::InvalidRecord(_))
        ));
        assert_eq!(log.log_end_offset(), end);
        // A marker without an open transaction is written all the same.
        log.append_marker(1, 4, 8, true, 0).unwrap();
        assert_eq!(log.log_end_offset(), end + 1);
        let state = log.producer_states()[0];
        assert_eq!(
            (
                state.producer_epoch,
                state.coordinator_epoch,
                state.last_sequence
            ),
            (4, 8, -1)
        );
        assert!(matches!(
            log.append(&mut txn(1, 3, 1, 1), 0),
            Err(LogError::InvalidProducerEpoch { .. })
        ));
        assert_eq!(
            log.append(&mut txn(1, 4, 0, 1), 0).unwrap().base_offset,
            end + 1
        );
    }

    #[test]
    fn aborted_transactions_select_exactly_the_overlapping_range() {
        // Goal: for every read range, the result is the aborts with last_offset >= from and
        // first_offset < upper, by first offset, across segments (the early stop included).
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), 400);
        let mut all: Vec<AbortedTxn> = Vec::new();
        let mut seq = [0i32; 3];
        let mut first: [Option<i64>; 3] = [None; 3];
        for step in 0..60usize {
            let p = step % 3;
            let pid = p as i64 + 10;
            if step % 7 == 5 || step % 11 == 4 {
                let commit = step % 2 == 0;
                let at = log.append_marker(pid, 0, 0, commit, 0).unwrap().base_offset;
                if let (Some(first_offset), false) = (first[p].take(), commit) {
                    let lso = first.iter().flatten().min().copied().unwrap_or(at + 1);
                    all.push(AbortedTxn {
                        producer_id: pid,
                        first_offset,
                        last_offset: at,
                        last_stable_offset: lso,
                    });
                }
            } else {
                let at = log
                    .append(&mut txn(pid, 0, seq[p], 2), 0)
                    .unwrap()
                    .base_offset;
                seq[p] += 2;
                first[p].get_or_insert(at);
            }
        }
        assert!(
            log.segment_count() > 3 && all.len() > 4,
            "the case spans segments"
        );
        let end = log.log_end_offset();
        for from in 0..=end {
            for upper in from..=end + 1 {
                let mut want: Vec<AbortedTxn> = all
                    .iter()
                    .filter(|e| e.last_offset >= from && e.first_offset < upper)
                    .copied()
                    .collect();
                want.sort_by_key(|e| e.first_offset);
                assert_eq!(
                    log.aborted_transactions(from, upper),
                    want,
                    "from {from} upper {upper}"
                );
            }
        }
        drop(log);
        let log = open(dir.path(), 400);
        assert_eq!(
            log.aborted_transactions(0, end + 1).len(),
            all.len(),
            "reopened from the .txnindex files"
        );
    }

    #[test]
    fn read_bounded_returns_only_whole_batches_below_the_bound() {
        // Goal: the read stops before the first batch at or past the bound, even inside the
        // byte limit; a read starting there is empty; an unbounded read is unchanged.
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), 1 << 20);
        for _ in 0..4 {
            log.append(&mut plain(3), 0).unwrap(); // 0-2, 3-5, 6-8, 9-11
        }
        let bases = |bytes: Bytes| {
            whole_batches(bytes)
                .map(|b| b.unwrap().0.base_offset)
                .collect::<Vec<_>>()
        };
        let read = |from, upper| {
            log.read_bounded(from, 1 << 20, upper)
                .unwrap()
                .map(|s| bases(s.load().unwrap()))
        };
        assert_eq!(read(0, 6), Some(vec![0, 3]));
        assert_eq!(read(4, 6), Some(vec![3]));
        assert_eq!(
            read(0, 7),
            Some(vec![0, 3, 6]),
            "a batch that starts below the bound is whole"
        );
        assert_eq!(read(6, 6), None);
        assert_eq!(read(7, 6), None);
        assert_eq!(read(0, i64::MAX), Some(vec![0, 3, 6, 9]));
        let unbounded = log.read(0, 1 << 20).unwrap().unwrap();
        assert_eq!(bases(unbounded.load().unwrap()), vec![0, 3, 6, 9]);
        let slice = log.read_bounded(0, 1 << 20, 6).unwrap().unwrap();
        assert_eq!(
            slice.len(),
            2 * slice.first_batch_bytes(),
            "the planned length already stops at the bound"
        );
        // The byte limit still applies below the bound.
        assert_eq!(
            log.read_bounded(0, 1, 9)
                .unwrap()
                .map(|s| bases(s.load().unwrap())),
            Some(vec![0])
        );
    }

    #[test]
    fn an_abort_synced_before_a_crash_is_indexed_after_it_without_duplicates() {
        // Goal: a transaction begun in an older segment and aborted in the active one is
        // indexed after reopen when the active .txnindex write was lost (replay derives it
        // from the snapshot and the marker), once when the file was intact, and still open
        // transactions stay open, also when the newest snapshot is gone.
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), 300);
        log.append(&mut txn(1, 0, 0, 3), 0).unwrap(); // 0-2
        log.append(&mut txn(2, 0, 0, 3), 0).unwrap(); // 3-5, p2 stays open
                                                      // The transactions' first batches end up in closed segments.
        while log.segment_count() < 3 {
            log.append(&mut plain(3), 0).unwrap();
        }
        let marker_offset = log.append_marker(1, 0, 0, false, 0).unwrap().base_offset;
        log.sync().unwrap();
        let aborted = log.aborted_transactions(0, i64::MAX);
        assert_eq!(aborted.len(), 1);
        assert_eq!(
            (
                aborted[0].first_offset,
                aborted[0].last_offset,
                aborted[0].last_stable_offset
            ),
            (0, marker_offset, 3)
        );
        let lso = log.last_stable_offset();
        assert_eq!(lso, 3);
        drop(log);

        let log = open(dir.path(), 300);
        assert_eq!(
            log.aborted_transactions(0, i64::MAX),
            aborted,
            "an intact index is not added to"
        );
        assert_eq!(open_txns(&log), vec![(2, 3)]);
        drop(log);

        let txnindexes: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "txnindex"))
            .collect();
        assert_eq!(txnindexes.len(), 1);
        fs::remove_file(&txnindexes[0]).unwrap();
        let log = open(dir.path(), 300);
        assert_eq!(
            log.aborted_transactions(0, i64::MAX),
            aborted,
            "derived again by replay"
        );
        assert!(txnindexes[0].exists(), "and written back");
        assert_eq!(log.last_stable_offset(), lso);
        drop(log);

        let mut snapshots = crate::producer_snapshot::list(dir.path()).unwrap();
        let newest = snapshots.pop().unwrap();
        fs::remove_file(dir.path().join(crate::producer_snapshot::file_name(newest))).unwrap();
        fs::remove_file(&txnindexes[0]).unwrap();
        let log = open(dir.path(), 300);
        assert_eq!(
            log.aborted_transactions(0, i64::MAX),
            aborted,
            "replayed from an older snapshot"
        );
        assert_eq!(open_txns(&log), vec![(2, 3)]);
        assert!(
            crate::producer_snapshot::list(dir.path())
                .unwrap()
                .contains(&newest),
            "the missing snapshot is written again"
        );
    }

    #[test]
    fn deleting_a_segment_deletes_its_txnindex() {
        // Goal: DeleteRecords and retention remove a segment's .txnindex with it, and its
        // aborts leave the index.
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), 200);
        log.append(&mut txn(1, 0, 0, 1), 0).unwrap();
        log.append_marker(1, 0, 0, false, 0).unwrap();
        while log.segment_count() < 3 {
            log.append(&mut plain(2), 0).unwrap();
        }
        let index = dir.path().join("00000000000000000000.txnindex");
        assert!(index.exists());
        assert_eq!(log.aborted_transactions(0, i64::MAX).len(), 1);
        let end = log.log_end_offset();
        log.delete_records_before(end).unwrap();
        assert!(!index.exists());
        assert!(log.aborted_transactions(0, i64::MAX).is_empty());
    }

    #[test]
    fn coordinator_writes_join_transactions_without_sequences() {
        // Goal: append_internal takes a transactional batch with a producer id and no
        // sequence (which produce refuses), opens the producer's transaction with it, holds
        // the LSO until the marker, and keeps that across a reopen.
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), 1 << 20);
        let offsets = || txn(9, 1, -1, 2);
        assert!(matches!(
            log.append(&mut offsets(), 0),
            Err(LogError::InvalidRecord(_))
        ));
        assert!(!log.has_open_transaction(9, 1));
        log.append(&mut plain(1), 0).unwrap();
        assert_eq!(
            log.append_internal(&mut offsets(), 0).unwrap().base_offset,
            1
        );
        assert!(log.has_open_transaction(9, 1));
        assert!(
            !log.has_open_transaction(9, 2),
            "the next epoch's batch is not part of this transaction"
        );
        assert_eq!(log.last_stable_offset(), 1);
        drop(log);
        let mut log = open(dir.path(), 1 << 20);
        assert!(log.has_open_transaction(9, 1), "replayed");
        assert!(matches!(
            log.append_internal(&mut txn(9, 0, -1, 1), 0),
            Err(LogError::InvalidProducerEpoch { .. })
        ));
        log.append_marker(9, 1, 0, true, 0).unwrap();
        assert!(!log.has_open_transaction(9, 1));
        assert_eq!(log.last_stable_offset(), 4);
    }

    #[test]
    fn a_compacted_log_takes_markers() {
        // Goal: the key requirement of compacted topics is for produced records, not for the
        // broker's markers (whose record has a key anyway).
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            cleanup_compact: true,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(dir.path(), config).unwrap();
        log.append(&mut txn(1, 0, 0, 1), 0).unwrap();
        log.append_marker(1, 0, 0, true, 0).unwrap();
        let bytes = log.read(1, 1 << 20).unwrap().unwrap().load().unwrap();
        assert!(end_txn_marker(&bytes).is_some());
    }
}
