//! What each partition took in and gave out since the broker started: records and bytes
//! appended by Produce, bytes served by Fetch. The broker counts them above the storage
//! engine, so both engines get the same metrics. Each partition's counters are relaxed
//! atomics found through a map under a read lock, so counting costs a lookup and an add
//! per partition of a request; the console reads them at scrape time.
//!
//! Records out are not counted: Fetch serves stored batches whole, so counting records
//! would mean reading each batch header of every response, and the count would include
//! records before the fetch offset and aborted ones a read_committed consumer skips.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use uuid::Uuid;

#[derive(Debug, Default)]
pub struct PartitionTraffic {
    records_in: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl PartitionTraffic {
    /// A batch appended by a producer (not a retry already stored).
    pub fn appended(&self, records: u64, bytes: u64) {
        self.records_in.fetch_add(records, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Record bytes put in a Fetch response.
    pub fn served(&self, bytes: u64) {
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn records_in(&self) -> u64 {
        self.records_in.load(Ordering::Relaxed)
    }

    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }
}

/// Every partition's counters, by topic id and partition index (a topic deleted and made
/// again under its name starts from zero).
#[derive(Debug, Default)]
pub struct Traffic {
    partitions: RwLock<HashMap<(Uuid, i32), Arc<PartitionTraffic>>>,
}

/// The counters summed over every partition at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrafficTotals {
    pub records_in: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Traffic {
    /// The counters of one partition, made on first use.
    pub fn of(&self, topic_id: Uuid, partition: i32) -> Arc<PartitionTraffic> {
        let key = (topic_id, partition);
        if let Some(found) = self.partitions.read().get(&key) {
            return Arc::clone(found);
        }
        Arc::clone(self.partitions.write().entry(key).or_default())
    }

    /// The counters of one partition, if it has counted anything.
    pub fn get(&self, topic_id: Uuid, partition: i32) -> Option<Arc<PartitionTraffic>> {
        self.partitions.read().get(&(topic_id, partition)).cloned()
    }

    /// Drops a deleted topic's counters.
    pub fn forget_topic(&self, topic_id: Uuid) {
        self.partitions.write().retain(|(id, _), _| *id != topic_id);
    }

    pub fn totals(&self) -> TrafficTotals {
        let mut totals = TrafficTotals::default();
        for t in self.partitions.read().values() {
            totals.records_in += t.records_in();
            totals.bytes_in += t.bytes_in();
            totals.bytes_out += t.bytes_out();
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_partition_and_forgets_a_deleted_topic() {
        // Goal: counters are kept per (topic id, partition), summed by totals, and gone
        // with their topic, so a topic made again under the name starts from zero.
        let traffic = Traffic::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        traffic.of(a, 0).appended(3, 300);
        traffic.of(a, 0).served(100);
        traffic.of(a, 1).appended(1, 10);
        traffic.of(b, 0).appended(2, 20);
        assert_eq!(traffic.get(a, 0).unwrap().records_in(), 3);
        assert_eq!(
            traffic.totals(),
            TrafficTotals {
                records_in: 6,
                bytes_in: 330,
                bytes_out: 100
            }
        );
        traffic.forget_topic(a);
        assert!(traffic.get(a, 0).is_none());
        assert_eq!(traffic.totals().records_in, 2);
    }
}
