//! Producer state of one partition, as Kafka's `ProducerStateManager` keeps it (KIP-98):
//! per producer id, its epoch, the last batches seen (so a retried batch is acknowledged
//! again without being stored twice, and a gap in the sequence is refused), the coordinator
//! epoch of the last transaction marker, and the first offset of its open transaction; and,
//! across producers, the open transactions ordered by first offset, which give the last
//! stable offset.
//!
//! Checks (`check`, `check_batches`, `check_marker`) change nothing; `record` and
//! `record_marker` apply what was stored, live and in replay alike.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::batch::{BatchHeader, ControlRecordType};
use crate::txn_index::AbortedTxn;
use crate::LogError;

/// How many recent batches per producer are remembered for duplicate detection. Kafka's
/// producers keep at most 5 requests in flight per partition under idempotence.
pub const PRODUCER_BATCHES_CACHED_MAX: usize = 5;

/// Kafka's "no epoch" / "no sequence" value.
const NONE_I32: i32 = -1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<CachedBatch>,
    /// Epoch of the transaction coordinator that wrote this producer's last marker; -1 when
    /// none has.
    pub coordinator_epoch: i32,
    /// First offset of the producer's open transaction.
    pub current_txn_first_offset: Option<i64>,
    /// Max timestamp of the producer's last batch, or the time of its last marker.
    pub last_timestamp_ms: i64,
}

impl Default for ProducerEntry {
    fn default() -> Self {
        ProducerEntry {
            epoch: -1,
            batches: VecDeque::new(),
            coordinator_epoch: NONE_I32,
            current_txn_first_offset: None,
            last_timestamp_ms: -1,
        }
    }
}

impl ProducerEntry {
    pub fn last_sequence(&self) -> i32 {
        self.batches.back().map_or(NONE_I32, |b| b.last_sequence)
    }

    /// Moves to `epoch`; a new epoch forgets the batches cached under the old one.
    fn set_epoch(&mut self, epoch: i16) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
    }
}

/// One producer as Kafka's DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStateView {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// -1 when no batch of the current epoch is remembered.
    pub last_sequence: i32,
    pub last_timestamp_ms: i64,
    /// -1 when no marker was written for this producer.
    pub coordinator_epoch: i32,
    /// -1 when the producer has no open transaction.
    pub current_txn_start_offset: i64,
}

/// What to do with an incoming idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New data: append it.
    Append,
    /// A retry of a batch already stored at this base offset: acknowledge, don't store.
    Duplicate { base_offset: i64 },
}

#[derive(Debug, Default)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: first offset → producer id. The smallest key is the first
    /// unstable offset.
    open_txns: BTreeMap<i64, i64>,
}

fn next_sequence(last: i32) -> i32 {
    if last == i32::MAX {
        0
    } else {
        last + 1
    }
}

/// Checks one data batch against its producer's entry (`None`: a producer without state).
/// A batch with a producer id but no sequence (written by a coordinator) has its epoch and
/// transaction state checked, not its sequence.
fn check_data_batch(
    entry: Option<&ProducerEntry>,
    batch: &BatchHeader,
) -> Result<SequenceCheck, LogError> {
    if batch.producer_id < 0 {
        return Ok(SequenceCheck::Append);
    }
    let Some(entry) = entry else {
        // A producer this partition has no state for (new, or its state aged out of the
        // log): accept whatever sequence it starts at, as Kafka does.
        return Ok(SequenceCheck::Append);
    };
    if batch.producer_epoch < entry.epoch {
        return Err(LogError::InvalidProducerEpoch {
            producer_id: batch.producer_id,
            current: entry.epoch,
            got: batch.producer_epoch,
        });
    }
    if batch.base_sequence < 0 {
        // No sequence to check: only the epoch above and the transaction below.
    } else if batch.producer_epoch > entry.epoch {
        if batch.base_sequence != 0 {
            return Err(LogError::OutOfOrderSequence {
                producer_id: batch.producer_id,
                expected: 0,
                got: batch.base_sequence,
            });
        }
    } else {
        if let Some(dup) = entry.batches.iter().find(|c| {
            c.first_sequence == batch.base_sequence && c.last_sequence == batch.last_sequence()
        }) {
            return Ok(SequenceCheck::Duplicate {
                base_offset: dup.base_offset,
            });
        }
        if let Some(last) = entry.batches.back() {
            let expected = next_sequence(last.last_sequence);
            if batch.base_sequence != expected {
                return Err(LogError::OutOfOrderSequence {
                    producer_id: batch.producer_id,
                    expected,
                    got: batch.base_sequence,
                });
            }
        }
    }
    // As Kafka: once a transaction is open, every batch of the producer belongs to it until
    // its marker, whatever the epoch.
    if let Some(first_offset) = entry.current_txn_first_offset {
        if !batch.is_transactional() {
            return Err(LogError::InvalidTxnState(format!(
                "producer {} sent a non-transactional batch while its transaction from offset {first_offset} is open; \
                 the transaction must be committed or aborted first",
                batch.producer_id
            )));
        }
    }
    Ok(SequenceCheck::Append)
}

/// Applies a stored data batch to its producer's entry; returns whether it opened a
/// transaction.
fn apply_data_batch(entry: &mut ProducerEntry, header: &BatchHeader) -> bool {
    entry.set_epoch(header.producer_epoch);
    if header.base_sequence >= 0 {
        entry.batches.push_back(CachedBatch {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            base_offset: header.base_offset,
        });
        while entry.batches.len() > PRODUCER_BATCHES_CACHED_MAX {
            entry.batches.pop_front();
        }
    }
    entry.last_timestamp_ms = header.max_timestamp;
    let opens = header.is_transactional() && entry.current_txn_first_offset.is_none();
    if opens {
        entry.current_txn_first_offset = Some(header.base_offset);
    }
    opens
}

impl ProducerStateTable {
    /// Decides whether `batch` is new, a duplicate, or refused. Changes nothing.
    pub fn check(&self, batch: &BatchHeader) -> Result<SequenceCheck, LogError> {
        check_data_batch(self.producers.get(&batch.producer_id), batch)
    }

    /// Checks the batches of one request in order, each against the state the ones before
    /// it would leave (so a request cannot open a transaction and then leave it with a
    /// non-transactional batch). Changes nothing.
    pub fn check_batches(&self, batches: &[BatchHeader]) -> Result<Vec<SequenceCheck>, LogError> {
        let mut staged: HashMap<i64, ProducerEntry> = HashMap::new();
        let mut out = Vec::with_capacity(batches.len());
        for batch in batches {
            let entry = staged
                .get(&batch.producer_id)
                .or_else(|| self.producers.get(&batch.producer_id));
            let check = check_data_batch(entry, batch)?;
            if check == SequenceCheck::Append && batch.producer_id >= 0 {
                let base = self.producers.get(&batch.producer_id);
                let entry = staged
                    .entry(batch.producer_id)
                    .or_insert_with(|| base.cloned().unwrap_or_default());
                apply_data_batch(entry, batch);
            }
            out.push(check);
        }
        Ok(out)
    }

    /// Records a data batch stored at `header.base_offset` (offsets already assigned).
    pub fn record(&mut self, header: &BatchHeader) {
        if header.producer_id < 0 {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if apply_data_batch(entry, header) {
            self.open_txns
                .insert(header.base_offset, header.producer_id);
        }
    }

    /// Decides whether a marker from this producer epoch and coordinator epoch may be
    /// written. Changes nothing.
    pub fn check_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), LogError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if producer_epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id,
                current: entry.epoch,
                got: producer_epoch,
            });
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(LogError::TransactionCoordinatorFenced {
                producer_id,
                current: entry.coordinator_epoch,
                got: coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Records a marker stored at `offset`: it ends the producer's open transaction, if any.
    /// Returns the aborted-index entry when it aborted one; its last stable offset is the
    /// first offset of the earliest transaction still open, else the offset after the
    /// marker (as Kafka computes it for `.txnindex`).
    pub fn record_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        control_type: ControlRecordType,
        offset: i64,
        timestamp_ms: i64,
    ) -> Option<AbortedTxn> {
        let entry = self.producers.entry(producer_id).or_default();
        entry.set_epoch(producer_epoch);
        entry.coordinator_epoch = coordinator_epoch;
        entry.last_timestamp_ms = timestamp_ms;
        let first_offset = entry.current_txn_first_offset.take()?;
        let removed = self.open_txns.remove(&first_offset);
        assert_eq!(
            removed,
            Some(producer_id),
            "an open transaction is indexed by its first offset"
        );
        if control_type != ControlRecordType::Abort {
            return None;
        }
        let last_stable_offset = self.first_unstable_offset().unwrap_or(offset + 1);
        Some(AbortedTxn {
            producer_id,
            first_offset,
            last_offset: offset,
            last_stable_offset,
        })
    }

    /// First offset of the producer's open transaction.
    pub fn open_transaction_of(&self, producer_id: i64) -> Option<i64> {
        self.producers
            .get(&producer_id)
            .and_then(|e| e.current_txn_first_offset)
    }

    /// Whether the producer has a transaction open here under `producer_epoch` (its epoch
    /// now), not one of an earlier epoch whose marker is still to come.
    pub fn has_open_transaction_at(&self, producer_id: i64, producer_epoch: i16) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some() && e.epoch == producer_epoch)
    }

    /// First offset of the earliest open transaction.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.open_txns.keys().next().copied()
    }

    /// Open transactions as (producer id, first offset), by first offset.
    pub fn open_transactions(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.open_txns.iter().map(|(&first, &pid)| (pid, first))
    }

    pub fn entries(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(&pid, e)| (pid, e))
    }

    /// Puts back an entry read from a snapshot, with its open transaction. Refuses (false,
    /// nothing changed) an entry for a producer already present, or whose open transaction
    /// starts where another producer's does: a damaged snapshot, not a state to trust.
    pub fn insert(&mut self, producer_id: i64, entry: ProducerEntry) -> bool {
        if self.producers.contains_key(&producer_id) {
            return false;
        }
        if let Some(first) = entry.current_txn_first_offset {
            if self.open_txns.contains_key(&first) {
                return false;
            }
            self.open_txns.insert(first, producer_id);
        }
        self.producers.insert(producer_id, entry);
        true
    }

    /// Every producer, by producer id.
    pub fn views(&self) -> Vec<ProducerStateView> {
        let mut out: Vec<ProducerStateView> = self
            .producers
            .iter()
            .map(|(&producer_id, e)| ProducerStateView {
                producer_id,
                producer_epoch: e.epoch,
                last_sequence: e.last_sequence(),
                last_timestamp_ms: e.last_timestamp_ms,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.current_txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_by_key(|v| v.producer_id);
        out
    }

    pub fn clear(&mut self) {
        self.producers.clear();
        self.open_txns.clear();
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            size_bytes: 100,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: base_offset * 10,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    fn txn(pid: i64, epoch: i16, seq: i32, count: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            attributes: 0x10,
            ..header(pid, epoch, seq, count, base_offset)
        }
    }

    #[test]
    fn duplicates_are_recognised_and_gaps_refused() {
        // Goal: a retry returns the original offset; a skipped sequence is refused; an old
        // epoch is fenced; a new epoch must start at 0.
        let mut t = ProducerStateTable::default();
        let b0 = header(1, 0, 0, 10, 0);
        assert_eq!(t.check(&b0).unwrap(), SequenceCheck::Append);
        t.record(&b0);
        let b1 = header(1, 0, 10, 5, 10);
        t.record(&b1);
        assert_eq!(
            t.check(&header(1, 0, 0, 10, 99)).unwrap(),
            SequenceCheck::Duplicate { base_offset: 0 }
        );
        assert_eq!(
            t.check(&header(1, 0, 10, 5, 99)).unwrap(),
            SequenceCheck::Duplicate { base_offset: 10 }
        );
        assert_eq!(
            t.check(&header(1, 0, 15, 1, 99)).unwrap(),
            SequenceCheck::Append
        );
        assert!(matches!(
            t.check(&header(1, 0, 17, 1, 99)),
            Err(LogError::OutOfOrderSequence {
                expected: 15,
                got: 17,
                ..
            })
        ));
        assert!(matches!(
            t.check(&header(1, 1, 3, 1, 99)),
            Err(LogError::OutOfOrderSequence { .. })
        ));
        assert_eq!(
            t.check(&header(1, 1, 0, 1, 99)).unwrap(),
            SequenceCheck::Append
        );
        t.record(&header(1, 1, 0, 1, 20));
        assert!(matches!(
            t.check(&header(1, 0, 1, 1, 99)),
            Err(LogError::InvalidProducerEpoch { .. })
        ));
        // Unknown producers may start anywhere; non-idempotent batches always append.
        assert_eq!(
            t.check(&header(2, 0, 500, 1, 0)).unwrap(),
            SequenceCheck::Append
        );
        assert_eq!(
            t.check(&header(-1, -1, -1, 1, 0)).unwrap(),
            SequenceCheck::Append
        );
    }

    #[test]
    fn a_transaction_opens_at_its_first_batch_and_a_marker_ends_it() {
        // Goal: the first transactional batch opens the transaction at its base offset, later
        // ones leave it there; a commit ends it with no index entry, an abort with one whose
        // range runs from the first batch to the marker; each marker records its coordinator
        // epoch and time.
        let mut t = ProducerStateTable::default();
        t.record(&txn(1, 0, 0, 2, 10));
        t.record(&txn(1, 0, 2, 3, 12));
        assert_eq!(t.first_unstable_offset(), Some(10));
        assert_eq!(t.open_transactions().collect::<Vec<_>>(), vec![(1, 10)]);
        assert_eq!(
            t.record_marker(1, 0, 4, ControlRecordType::Commit, 15, 777),
            None
        );
        assert_eq!(t.first_unstable_offset(), None);
        let view = t.views()[0];
        assert_eq!(
            view,
            ProducerStateView {
                producer_id: 1,
                producer_epoch: 0,
                last_sequence: 4,
                last_timestamp_ms: 777,
                coordinator_epoch: 4,
                current_txn_start_offset: -1
            }
        );

        t.record(&txn(1, 0, 5, 1, 16));
        assert_eq!(t.views()[0].current_txn_start_offset, 16);
        let aborted = t.record_marker(1, 0, 4, ControlRecordType::Abort, 17, 800);
        assert_eq!(
            aborted,
            Some(AbortedTxn {
                producer_id: 1,
                first_offset: 16,
                last_offset: 17,
                last_stable_offset: 18
            })
        );
        // A marker without an open transaction changes only the epochs and the time.
        assert_eq!(
            t.record_marker(1, 0, 5, ControlRecordType::Abort, 18, 900),
            None
        );
        assert_eq!(t.views()[0].coordinator_epoch, 5);
        assert_eq!(
            t.views()[0].last_sequence,
            5,
            "a marker of the same epoch keeps the cached batches"
        );
    }

    #[test]
    fn an_abort_records_the_earliest_other_open_transaction_as_its_stable_offset() {
        // Goal: with two producers' transactions interleaved, the first unstable offset is the
        // earlier first offset, and an abort's index entry carries the LSO after it.
        let mut t = ProducerStateTable::default();
        t.record(&txn(1, 0, 0, 1, 0));
        t.record(&txn(2, 0, 0, 1, 1));
        t.record(&txn(1, 0, 1, 1, 2));
        assert_eq!(t.first_unstable_offset(), Some(0));
        let aborted = t
            .record_marker(1, 0, 0, ControlRecordType::Abort, 3, 0)
            .unwrap();
        assert_eq!(
            aborted,
            AbortedTxn {
                producer_id: 1,
                first_offset: 0,
                last_offset: 3,
                last_stable_offset: 1
            }
        );
        assert_eq!(t.first_unstable_offset(), Some(1));
        t.record_marker(2, 0, 0, ControlRecordType::Commit, 4, 0);
        assert_eq!(t.first_unstable_offset(), None);
    }

    #[test]
    fn a_non_transactional_batch_is_refused_while_a_transaction_is_open() {
        // Goal: INVALID_TXN_STATE for a plain batch (any epoch) inside an open transaction,
        // also within one request; accepted again after the marker.
        let mut t = ProducerStateTable::default();
        t.record(&txn(1, 0, 0, 1, 0));
        assert!(matches!(
            t.check(&header(1, 0, 1, 1, 1)),
            Err(LogError::InvalidTxnState(_))
        ));
        assert!(matches!(
            t.check(&header(1, 1, 0, 1, 1)),
            Err(LogError::InvalidTxnState(_))
        ));
        assert_eq!(t.check(&txn(1, 0, 1, 1, 1)).unwrap(), SequenceCheck::Append);
        // A retry of a stored batch is still acknowledged.
        assert_eq!(
            t.check(&header(1, 0, 0, 1, 9)).unwrap(),
            SequenceCheck::Duplicate { base_offset: 0 }
        );
        t.record_marker(1, 0, 0, ControlRecordType::Commit, 1, 0);
        assert_eq!(
            t.check(&header(1, 0, 1, 1, 2)).unwrap(),
            SequenceCheck::Append
        );

        let fresh = ProducerStateTable::default();
        let request = [txn(7, 0, 0, 1, 0), header(7, 0, 1, 1, 1)];
        assert!(matches!(
            fresh.check_batches(&request),
            Err(LogError::InvalidTxnState(_))
        ));
        let request = [txn(7, 0, 0, 1, 0), txn(7, 0, 1, 1, 1)];
        assert_eq!(
            fresh.check_batches(&request).unwrap(),
            vec![SequenceCheck::Append; 2]
        );
        assert!(fresh.is_empty(), "checks change nothing");
    }

    #[test]
    fn coordinator_batches_without_a_sequence_keep_epochs_and_transactions() {
        // Goal: a transactional batch with a producer id and no sequence (a coordinator's
        // TxnOffsetCommit records) opens the producer's transaction and caches no sequence;
        // its epoch is fenced like any other.
        let mut t = ProducerStateTable::default();
        t.record(&txn(5, 2, 0, 1, 0));
        let offsets = txn(5, 2, -1, 1, 1);
        assert_eq!(t.check(&offsets).unwrap(), SequenceCheck::Append);
        t.record(&offsets);
        assert_eq!(t.open_transaction_of(5), Some(0));
        assert_eq!(
            t.views()[0].last_sequence,
            0,
            "no sequence was cached for it"
        );
        assert!(matches!(
            t.check(&txn(5, 1, -1, 1, 2)),
            Err(LogError::InvalidProducerEpoch { .. })
        ));
        assert!(matches!(
            t.check(&header(5, 2, -1, 1, 2)),
            Err(LogError::InvalidTxnState(_))
        ));
        let mut fresh = ProducerStateTable::default();
        fresh.record(&txn(6, 0, -1, 1, 7));
        assert_eq!(
            (fresh.open_transaction_of(6), fresh.views()[0].last_sequence),
            (Some(7), -1)
        );
    }

    #[test]
    fn markers_are_fenced_by_producer_epoch_and_coordinator_epoch() {
        // Goal: a marker of an older producer epoch, or from an older coordinator, is refused;
        // a newer producer epoch moves the producer there and forgets its cached batches.
        let mut t = ProducerStateTable::default();
        assert!(
            t.check_marker(1, 0, 0).is_ok(),
            "an unknown producer may get a marker"
        );
        t.record(&txn(1, 2, 0, 1, 0));
        t.record_marker(1, 2, 5, ControlRecordType::Commit, 1, 0);
        assert!(matches!(
            t.check_marker(1, 1, 5),
            Err(LogError::InvalidProducerEpoch {
                current: 2,
                got: 1,
                ..
            })
        ));
        assert!(matches!(
            t.check_marker(1, 2, 4),
            Err(LogError::TransactionCoordinatorFenced {
                current: 5,
                got: 4,
                ..
            })
        ));
        assert!(t.check_marker(1, 2, 5).is_ok());
        assert!(t.check_marker(1, 3, 6).is_ok());
        t.record_marker(1, 3, 6, ControlRecordType::Abort, 2, 0);
        let view = t.views()[0];
        assert_eq!(
            (
                view.producer_epoch,
                view.last_sequence,
                view.coordinator_epoch
            ),
            (3, -1, 6)
        );
        assert!(matches!(
            t.check(&header(1, 2, 1, 1, 3)),
            Err(LogError::InvalidProducerEpoch { .. })
        ));
    }
}
