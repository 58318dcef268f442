//! Which chunks of a partition one compaction covers, and whether it is due ([`plan`], no
//! I/O).
//!
//! Kafka's rules, with chunks for segments (the chunks below `clean_through` are the
//! clean ones, those at or above it dirty):
//! - the partition's newest chunk is never cleaned (Kafka never cleans the active
//!   segment), nor any chunk reaching the last stable offset (a transaction there may
//!   still abort, and a record there may not yet supersede an older one that
//!   read_committed readers still see as the newest), nor, with `min.compaction.lag.ms`
//!   above 0, a dirty chunk holding records younger than that, nor any after it;
//! - the clean is due when the dirty chunks hold at least `min.cleanable.dirty.ratio` of
//!   the covered bytes, or when a dirty chunk's newest record is older than
//!   `max.compaction.lag.ms` (Kafka looks at the segment's first record; a chunk keeps
//!   only its newest timestamp, so this is due a little later than in Kafka);
//! - every cleanable dirty chunk is planned, and the ratio counts them all (as Kafka
//!   counts the whole dirty section, however much of it one clean gets through); the job
//!   then takes as many as its key map holds ([`Plan::take_dirty`]), at least one, and
//!   the next job goes on from there.

use weir_log::LogConfig;

/// One `chunks` row as the compactor reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub object_id: i64,
    pub position: i64,
    pub size_bytes: i32,
    pub max_timestamp: i64,
    /// A compactor's output: its batches carry their real offsets.
    pub offsets_in_object: bool,
    /// When the tombstones it holds were first cleaned; `None` if it holds none or was
    /// never cleaned.
    pub tombstones_since_ms: Option<i64>,
}

/// The partition's row, as far as a plan needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionView {
    pub log_start_offset: i64,
    /// `coalesce(first_unstable_offset, next_offset)`.
    pub last_stable_offset: i64,
    pub clean_through: i64,
}

/// What one compaction covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The chunks, in offset order: the clean ones first, then the dirty ones.
    pub chunks: Vec<ChunkInfo>,
    /// The index in `chunks` of the first dirty chunk.
    pub first_dirty: usize,
    /// One past the last covered offset: the partition is clean below it once done.
    pub clean_through: i64,
}

impl Plan {
    pub fn clean(&self) -> &[ChunkInfo] {
        &self.chunks[..self.first_dirty]
    }

    pub fn dirty(&self) -> &[ChunkInfo] {
        &self.chunks[self.first_dirty..]
    }

    /// Keeps only the first `count` dirty chunks (at least one): those the key map could
    /// hold. The partition is then clean up to the end of the last one.
    pub fn take_dirty(&mut self, count: usize) {
        let keep = self.first_dirty + count.max(1);
        self.chunks.truncate(keep);
        if let Some(last) = self.chunks.last() {
            self.clean_through = last.last_offset + 1;
        }
    }
}

/// The plan for a partition whose chunks (every one at or above the log start, in offset
/// order, the newest included) are `chunks`; `None` when its topic is not compacted or no
/// clean is due.
pub fn plan(
    chunks: &[ChunkInfo],
    view: PartitionView,
    config: &LogConfig,
    now_ms: i64,
) -> Option<Plan> {
    if !config.cleanup_compact || chunks.len() < 2 {
        return None;
    }
    let lag = config.min_compaction_lag_ms;
    let mut taken: Vec<ChunkInfo> = Vec::new();
    let mut first_dirty = None;
    let mut dirty_bytes = 0i64;
    for chunk in &chunks[..chunks.len() - 1] {
        if chunk.last_offset < view.log_start_offset {
            continue;
        }
        if chunk.last_offset >= view.last_stable_offset {
            break;
        }
        let dirty = chunk.last_offset >= view.clean_through;
        if dirty {
            let young = lag > 0 && chunk.max_timestamp > now_ms.saturating_sub(lag);
            if young {
                break;
            }
            first_dirty.get_or_insert(taken.len());
            dirty_bytes += i64::from(chunk.size_bytes);
        }
        taken.push(*chunk);
    }
    let first_dirty = first_dirty?;
    let total: i64 = taken.iter().map(|c| i64::from(c.size_bytes)).sum();
    let oldest_dirty = taken[first_dirty..]
        .iter()
        .map(|c| c.max_timestamp)
        .filter(|&ts| ts >= 0)
        .min();
    if !due(dirty_bytes, total, oldest_dirty, config, now_ms) {
        return None;
    }
    let clean_through = taken
        .last()
        .map_or(view.clean_through, |c| c.last_offset + 1);
    Some(Plan {
        chunks: taken,
        first_dirty,
        clean_through,
    })
}

/// Whether a clean is due (the rules of the module's opening): `dirty_bytes` of
/// `total_bytes` covered are dirty, and the oldest of the dirty chunks' newest timestamps
/// (those known, 0 or more) is `oldest_dirty_timestamp`.
pub fn due(
    dirty_bytes: i64,
    total_bytes: i64,
    oldest_dirty_timestamp: Option<i64>,
    config: &LogConfig,
    now_ms: i64,
) -> bool {
    let by_ratio = dirty_bytes > 0
        && dirty_bytes as f64 >= config.min_cleanable_dirty_ratio * total_bytes as f64;
    let by_max_lag = oldest_dirty_timestamp
        .is_some_and(|ts| ts >= 0 && now_ms.saturating_sub(ts) >= config.max_compaction_lag_ms);
    by_ratio || by_max_lag
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(base_offset: i64, last_offset: i64, size_bytes: i32, max_timestamp: i64) -> ChunkInfo {
        ChunkInfo {
            base_offset,
            last_offset,
            object_id: base_offset,
            position: 0,
            size_bytes,
            max_timestamp,
            offsets_in_object: false,
            tombstones_since_ms: None,
        }
    }

    fn compacted() -> LogConfig {
        LogConfig {
            cleanup_compact: true,
            cleanup_delete: false,
            ..LogConfig::default()
        }
    }

    fn view(log_start_offset: i64, last_stable_offset: i64, clean_through: i64) -> PartitionView {
        PartitionView {
            log_start_offset,
            last_stable_offset,
            clean_through,
        }
    }

    fn bases(plan: &Plan) -> Vec<i64> {
        plan.chunks.iter().map(|c| c.base_offset).collect()
    }

    #[test]
    fn the_newest_chunk_and_anything_reaching_the_last_stable_offset_stay_out() {
        // Goal: every chunk but the newest is covered when all is stable; an open
        // transaction's first offset stops the plan before the chunk reaching it; chunks
        // wholly below the log start are skipped; topics without compact have no plan.
        let chunks = [
            chunk(0, 9, 100, 1),
            chunk(10, 19, 100, 1),
            chunk(20, 29, 100, 1),
            chunk(30, 39, 100, 1),
        ];
        let p = plan(&chunks, view(0, 40, 0), &compacted(), 10).unwrap();
        assert_eq!(bases(&p), [0, 10, 20]);
        assert_eq!((p.first_dirty, p.clean_through), (0, 30));
        let p = plan(&chunks, view(0, 25, 0), &compacted(), 10).unwrap();
        assert_eq!(bases(&p), [0, 10]);
        let p = plan(&chunks, view(12, 40, 0), &compacted(), 10).unwrap();
        assert_eq!(bases(&p), [10, 20]);
        assert!(plan(&chunks, view(0, 5, 0), &compacted(), 10).is_none());
        assert!(plan(&chunks, view(0, 40, 0), &LogConfig::default(), 10).is_none());
        assert!(plan(&chunks[..1], view(0, 40, 0), &compacted(), 10).is_none());
    }

    #[test]
    fn the_dirty_ratio_decides_and_clean_chunks_come_first() {
        // Goal: with half the covered bytes dirty (the default ratio 0.5) the clean is due,
        // with less it is not; the clean chunks lead the plan and `clean_through` ends at
        // the last covered chunk.
        let chunks = [
            chunk(0, 9, 300, 1),
            chunk(10, 19, 100, 1),
            chunk(20, 29, 100, 1),
            chunk(30, 39, 100, 1),
        ];
        assert!(plan(&chunks, view(0, 40, 10), &compacted(), 10).is_none());
        let chunks = [
            chunk(0, 9, 200, 1),
            chunk(10, 19, 100, 1),
            chunk(20, 29, 100, 1),
            chunk(30, 39, 100, 1),
        ];
        let p = plan(&chunks, view(0, 40, 10), &compacted(), 10).unwrap();
        assert_eq!(
            (bases(&p), p.first_dirty, p.clean_through),
            (vec![0, 10, 20], 1, 30)
        );
        assert_eq!(p.clean().len(), 1);
        assert_eq!(p.dirty().len(), 2);
        // Nothing dirty below the newest chunk: nothing to do.
        assert!(plan(&chunks, view(0, 40, 30), &compacted(), 10).is_none());
    }

    #[test]
    fn lags_limit_the_plan_and_the_key_map_what_a_job_takes() {
        // Goal: min.compaction.lag.ms stops the plan at the first dirty chunk younger than
        // it; max.compaction.lag.ms makes an old dirty chunk due whatever the ratio; the
        // ratio counts every dirty chunk; the key map's bound takes fewer, at least one.
        let chunks = [
            chunk(0, 9, 1_000, 1),
            chunk(10, 19, 100, 5),
            chunk(20, 29, 100, 50),
            chunk(30, 39, 100, 60),
        ];
        let lagged = LogConfig {
            min_compaction_lag_ms: 20,
            ..compacted()
        };
        let p = plan(&chunks, view(0, 40, 0), &lagged, 60).unwrap();
        assert_eq!(bases(&p), [0, 10]);
        let max_lag = LogConfig {
            max_compaction_lag_ms: 50,
            ..compacted()
        };
        assert!(plan(&chunks, view(0, 40, 10), &compacted(), 60).is_none());
        assert!(plan(&chunks, view(0, 40, 10), &max_lag, 60).is_some());
        // A clean part larger than any one job's dirty share: the ratio counts every
        // dirty chunk, so the clean is due.
        let mib = 1 << 20;
        let chunks = [
            chunk(0, 9, 60 * mib, 1),
            chunk(10, 19, 40 * mib, 1),
            chunk(20, 29, 40 * mib, 1),
            chunk(30, 39, 40 * mib, 1),
            chunk(40, 49, 40 * mib, 1),
            chunk(50, 59, 40 * mib, 1),
            chunk(60, 69, 100, 1),
        ];
        let p = plan(&chunks, view(0, 70, 10), &compacted(), 10).unwrap();
        assert_eq!((p.first_dirty, p.clean_through), (1, 60));
        // The key map's own bound cuts the dirty chunks after the plan.
        let chunks = [
            chunk(0, 9, 100, 1),
            chunk(10, 19, 100, 1),
            chunk(20, 29, 100, 1),
            chunk(30, 39, 100, 1),
        ];
        let mut p = plan(&chunks, view(0, 40, 10), &compacted(), 10).unwrap();
        p.take_dirty(1);
        assert_eq!((bases(&p), p.clean_through), (vec![0, 10], 20));
        p.take_dirty(0);
        assert_eq!(
            (bases(&p), p.clean_through),
            (vec![0, 10], 20),
            "one is always kept"
        );
    }
}
