//! Idempotent-producer state of one partition: the last batches seen from each producer id,
//! so a retried batch is acknowledged again without being stored twice, and a gap in the
//! sequence is refused.

use std::collections::{HashMap, VecDeque};

use crate::batch::BatchHeader;
use crate::LogError;

/// How many recent batches per producer are remembered for duplicate detection. Kafka's
/// producers keep at most 5 requests in flight per partition under idempotence.
pub const PRODUCER_BATCHES_CACHED_MAX: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<CachedBatch>,
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
}

fn next_sequence(last: i32) -> i32 {
    if last == i32::MAX {
        0
    } else {
        last + 1
    }
}

impl ProducerStateTable {
    /// Decides whether `batch` is new, a duplicate, or refused. Changes nothing.
    pub fn check(&self, batch: &BatchHeader) -> Result<SequenceCheck, LogError> {
        if !batch.is_idempotent() {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&batch.producer_id) else {
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
        if batch.producer_epoch > entry.epoch {
            if batch.base_sequence != 0 {
                return Err(LogError::OutOfOrderSequence {
                    producer_id: batch.producer_id,
                    expected: 0,
                    got: batch.base_sequence,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        if let Some(dup) = entry.batches.iter().find(|c| {
            c.first_sequence == batch.base_sequence && c.last_sequence == batch.last_sequence()
        }) {
            return Ok(SequenceCheck::Duplicate { base_offset: dup.base_offset });
        }
        let Some(last) = entry.batches.back() else {
            return Ok(SequenceCheck::Append);
        };
        let expected = next_sequence(last.last_sequence);
        if batch.base_sequence != expected {
            return Err(LogError::OutOfOrderSequence {
                producer_id: batch.producer_id,
                expected,
                got: batch.base_sequence,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records a batch that was stored at `header.base_offset` (offsets already assigned).
    pub fn record(&mut self, header: &BatchHeader) {
        if !header.is_idempotent() {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(CachedBatch {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            base_offset: header.base_offset,
        });
        while entry.batches.len() > PRODUCER_BATCHES_CACHED_MAX {
            entry.batches.pop_front();
        }
    }

    pub fn clear(&mut self) {
        self.producers.clear();
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
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
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
        assert_eq!(t.check(&header(1, 0, 0, 10, 99)).unwrap(), SequenceCheck::Duplicate { base_offset: 0 });
        assert_eq!(t.check(&header(1, 0, 10, 5, 99)).unwrap(), SequenceCheck::Duplicate { base_offset: 10 });
        assert_eq!(t.check(&header(1, 0, 15, 1, 99)).unwrap(), SequenceCheck::Append);
        assert!(matches!(t.check(&header(1, 0, 17, 1, 99)), Err(LogError::OutOfOrderSequence { expected: 15, got: 17, .. })));
        assert!(matches!(t.check(&header(1, 1, 3, 1, 99)), Err(LogError::OutOfOrderSequence { .. })));
        assert_eq!(t.check(&header(1, 1, 0, 1, 99)).unwrap(), SequenceCheck::Append);
        t.record(&header(1, 1, 0, 1, 20));
        assert!(matches!(t.check(&header(1, 0, 1, 1, 99)), Err(LogError::InvalidProducerEpoch { .. })));
        // Unknown producers may start anywhere; non-idempotent batches always append.
        assert_eq!(t.check(&header(2, 0, 500, 1, 0)).unwrap(), SequenceCheck::Append);
        assert_eq!(t.check(&header(-1, -1, -1, 1, 0)).unwrap(), SequenceCheck::Append);
    }
}
