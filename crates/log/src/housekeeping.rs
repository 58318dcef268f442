//! The local engine's background work over every partition: retention, compaction of
//! compacted logs, and the fsync of what was appended (the interval policy, a clean stop).
//! Each runs on a blocking thread; a partition's lock is held only for the steps that need
//! it, so producers and fetches go on meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::local::LocalPartition;
use crate::{cleaner, CompactionReport, FsyncObserver};

/// Deletes the segments retention no longer keeps, partition by partition.
pub fn apply_retention(partitions: &[Arc<LocalPartition>], now_ms: i64) {
    for p in partitions {
        match p.log.lock().apply_retention(now_ms) {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(topic = %p.topic, partition = p.index, segments = n, "retention deleted segments")
            }
            Err(e) => {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "retention failed")
            }
        }
    }
}

/// Compacts every partition whose log is due. The partition lock is held only to plan and
/// to swap the cleaned segments in; reading and rewriting run without it.
pub fn compact_due(partitions: &[Arc<LocalPartition>], now_ms: i64, stop: &AtomicBool) {
    for p in partitions {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Some(plan) = p.log.lock().plan_compaction(now_ms) else {
            continue;
        };
        let mut report = CompactionReport::default();
        let result = cleaner::compact(
            &plan,
            now_ms,
            &|| stop.load(Ordering::Relaxed),
            &mut |cleaned| p.log.lock().swap_cleaned(cleaned, now_ms, &mut report),
        )
        .and_then(|output| {
            let Some(output) = output else {
                return Ok(None);
            };
            p.log
                .lock()
                .finish_compaction(&output)
                .map(|()| Some(output))
        });
        match result {
            // Stopped.
            Ok(None) => return,
            Ok(Some(output)) => tracing::info!(
                topic = %p.topic,
                partition = p.index,
                segments = report.segments_rewritten + report.segments_removed,
                bytes_before = report.bytes_before,
                bytes_after = report.bytes_after,
                records_read = output.records_read,
                records_kept = output.records_kept,
                "compacted"
            ),
            Err(e) => {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "compaction failed")
            }
        }
    }
}

/// Fsyncs every partition with unsynced appends, each timed for the observer.
pub fn sync_all(partitions: &[Arc<LocalPartition>], observer: &FsyncObserver) {
    for p in partitions {
        let mut log = p.log.lock();
        if log.unsynced_bytes() == 0 {
            continue;
        }
        let started = Instant::now();
        let result = log.sync();
        observer(started.elapsed());
        if let Err(e) = result {
            tracing::error!(topic = %p.topic, partition = p.index, error = %e, "fsync failed");
        }
    }
}
