//! What one partition took in and gave out since the broker started: records and bytes
//! appended by Produce, bytes served by Fetch. Kept with the partition's handle as
//! relaxed atomics, so counting costs an add per request and no lock; the console reads
//! them at scrape time.
//!
//! Records out are not counted: Fetch serves stored batches whole, so counting records
//! would mean reading each batch header of every response, and the count would include
//! records before the fetch offset and aborted ones a read_committed consumer skips.

use std::sync::atomic::{AtomicU64, Ordering};

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
