//! What the reader knows of each partition without asking PostgreSQL: its offsets as last
//! seen, whether that knowledge is fresh enough to answer a fetch at the high watermark
//! with no query, and the `Notify` of each watched partition.
//!
//! Knowledge comes from three places, merged so that offsets only move forward: the rows
//! a read or a refresh queries, the `weir_appended` notifications of every broker's
//! commits, and this broker's own commits ([`super::Reader::note_committed`]).
//!
//! Freshness. A notification sent while the LISTEN connection was down is lost, so a
//! cached high watermark may be trusted only if it was read after the current LISTEN
//! connection came up. Each `Connected` signal (and each `Lagged` gap in the signals)
//! starts a new generation; an entry is fresh when it was confirmed in the current
//! generation, signals keep arriving (the poll tick at least), and the follower still
//! runs. A refresh after each new generation confirms every entry again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Notify;
use weir_log::store::{PartitionOffsets, PartitionStatus, TopicPartition};

/// Commits heard for partitions not cached yet, kept for the read whose statement is in
/// flight when they arrive (its row may be older than the commit). Once full the list is
/// dropped whole: a read then misses at most one poll period's news.
const UNCACHED_COMMITS_KEPT_MAX: usize = 4096;

/// One partition as last seen.
#[derive(Debug, Clone)]
pub(crate) struct PartitionState {
    pub(crate) tp: TopicPartition,
    pub(crate) next_offset: i64,
    pub(crate) log_start_offset: i64,
    /// As last read from the row; `lso_known` says whether it still holds.
    pub(crate) last_stable_offset: i64,
    /// False once a notification moved `next_offset` past the row last read: the commit
    /// may have opened a transaction, which only the row tells.
    pub(crate) lso_known: bool,
    pub(crate) size_bytes: i64,
    /// The generation in which a row or a notification last confirmed this entry.
    confirmed_generation: u64,
}

/// The columns of one `partitions` row the reader uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PartitionRow {
    pub(crate) partition_id: i64,
    pub(crate) next_offset: i64,
    pub(crate) log_start_offset: i64,
    pub(crate) first_unstable_offset: Option<i64>,
    pub(crate) size_bytes: i64,
}

impl PartitionRow {
    pub(crate) fn last_stable_offset(&self) -> i64 {
        self.first_unstable_offset.unwrap_or(self.next_offset)
    }
}

impl PartitionState {
    pub(crate) fn offsets(&self) -> PartitionOffsets {
        PartitionOffsets {
            log_start_offset: self.log_start_offset,
            log_end_offset: self.next_offset,
            high_watermark: self.next_offset,
            last_stable_offset: self.last_stable_offset.min(self.next_offset),
        }
    }
}

/// The states, the watchers and the generation, behind one lock that is never held
/// across an await.
pub(crate) struct States {
    inner: Mutex<Inner>,
    /// How long the signals may be silent before cached offsets are no longer trusted.
    silent_max: std::time::Duration,
}

struct Inner {
    by_id: HashMap<i64, PartitionState>,
    ids: HashMap<(uuid::Uuid, i32), i64>,
    watchers: HashMap<i64, Arc<Notify>>,
    /// Next offsets by partition id, for partitions not cached when their commit was heard.
    uncached_commits: HashMap<i64, i64>,
    /// 0 until the first `Connected` signal: nothing is fresh before LISTEN runs.
    generation: u64,
    /// The follower runs and has a LISTEN connection.
    following: bool,
    last_signal_at: Option<Instant>,
}

impl States {
    pub(crate) fn new(silent_max: std::time::Duration) -> States {
        States {
            inner: Mutex::new(Inner {
                by_id: HashMap::new(),
                ids: HashMap::new(),
                watchers: HashMap::new(),
                uncached_commits: HashMap::new(),
                generation: 0,
                following: false,
                last_signal_at: None,
            }),
            silent_max,
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.inner.lock().generation
    }

    /// A signal arrived: the follower is alive.
    pub(crate) fn signalled(&self) {
        self.inner.lock().last_signal_at = Some(Instant::now());
    }

    /// A new LISTEN connection, or a gap in the signals: nothing cached is fresh until
    /// confirmed again. Returns the new generation.
    pub(crate) fn new_generation(&self) -> u64 {
        let mut inner = self.inner.lock();
        inner.generation += 1;
        inner.following = true;
        inner.last_signal_at = Some(Instant::now());
        inner.generation
    }

    /// The follower stopped (the listener is gone): every read asks PostgreSQL.
    pub(crate) fn stopped_following(&self) {
        self.inner.lock().following = false;
    }

    pub(crate) fn id_of(&self, tp: &TopicPartition) -> Option<i64> {
        self.inner
            .lock()
            .ids
            .get(&(tp.topic_id, tp.partition))
            .copied()
    }

    /// The cached state, if it is fresh (see the module's opening).
    pub(crate) fn fresh(&self, partition_id: i64) -> Option<PartitionState> {
        let inner = self.inner.lock();
        let alive = inner.following
            && inner.generation > 0
            && inner
                .last_signal_at
                .is_some_and(|at| at.elapsed() <= self.silent_max);
        let state = inner.by_id.get(&partition_id)?;
        (alive && state.confirmed_generation == inner.generation).then(|| state.clone())
    }

    /// The cached state, fresh or not.
    pub(crate) fn cached(&self, partition_id: i64) -> Option<PartitionState> {
        self.inner.lock().by_id.get(&partition_id).cloned()
    }

    pub(crate) fn status(&self, tp: &TopicPartition) -> Option<PartitionStatus> {
        let inner = self.inner.lock();
        let id = inner.ids.get(&(tp.topic_id, tp.partition))?;
        let state = inner.by_id.get(id)?;
        Some(PartitionStatus {
            offsets: state.offsets(),
            size_bytes: state.size_bytes.max(0) as u64,
            // The cluster engine keeps no segments; chunks are not counted from memory.
            segment_count: 0,
        })
    }

    /// Merges a row read in `generation`; returns the merged state. Offsets never move
    /// back: a row read before a notification was applied is older than the entry.
    pub(crate) fn merge_row(
        &self,
        tp: &TopicPartition,
        row: &PartitionRow,
        generation: u64,
    ) -> PartitionState {
        let mut inner = self.inner.lock();
        inner
            .ids
            .insert((tp.topic_id, tp.partition), row.partition_id);
        let fresh = PartitionState {
            tp: tp.clone(),
            next_offset: row.next_offset,
            log_start_offset: row.log_start_offset,
            last_stable_offset: row.last_stable_offset(),
            lso_known: true,
            size_bytes: row.size_bytes,
            confirmed_generation: generation,
        };
        let current = inner.generation;
        let heard = inner.uncached_commits.remove(&row.partition_id);
        let state = inner.by_id.entry(row.partition_id).or_insert(fresh.clone());
        let moved = row.next_offset > state.next_offset;
        if row.next_offset >= state.next_offset {
            *state = PartitionState {
                log_start_offset: row.log_start_offset.max(state.log_start_offset),
                ..fresh
            };
        } else {
            state.log_start_offset = state.log_start_offset.max(row.log_start_offset);
        }
        if let Some(next_offset) = heard.filter(|&n| n > state.next_offset) {
            // A commit heard while the row was being read, after the row's snapshot.
            state.next_offset = next_offset;
            state.lso_known = false;
        }
        // A row read in an older generation may miss what the lost notifications said.
        state.confirmed_generation = state.confirmed_generation.max(generation.min(current));
        let merged = state.clone();
        if moved {
            if let Some(notify) = inner.watchers.get(&row.partition_id) {
                notify.notify_waiters();
            }
        }
        merged
    }

    /// A commit moved `partition_id`'s next offset to `next_offset` (a notification, or
    /// this broker's own commit). For a partition not cached, it is kept for the read
    /// that may be querying its row right now.
    pub(crate) fn committed(&self, partition_id: i64, next_offset: i64) {
        let mut inner = self.inner.lock();
        let Some(state) = inner.by_id.get_mut(&partition_id) else {
            if inner.uncached_commits.len() >= UNCACHED_COMMITS_KEPT_MAX {
                inner.uncached_commits.clear();
            }
            let heard = inner
                .uncached_commits
                .entry(partition_id)
                .or_insert(next_offset);
            *heard = (*heard).max(next_offset);
            // A watcher made from the id alone (known to `PartitionIds`) wakes all the same.
            if let Some(notify) = inner.watchers.get(&partition_id) {
                notify.notify_waiters();
            }
            return;
        };
        if next_offset <= state.next_offset {
            return;
        }
        state.next_offset = next_offset;
        state.lso_known = false;
        // The entry stays as fresh as it was, no fresher: a notification lost before this
        // one may have moved other fields.
        if let Some(notify) = inner.watchers.get(&partition_id) {
            notify.notify_waiters();
        }
    }

    /// The partition's row is gone (deleted): forget it and wake its watchers, whose next
    /// read finds it unknown.
    pub(crate) fn forget(&self, partition_id: i64) {
        let mut inner = self.inner.lock();
        if let Some(state) = inner.by_id.remove(&partition_id) {
            inner.ids.remove(&(state.tp.topic_id, state.tp.partition));
        }
        if let Some(notify) = inner.watchers.remove(&partition_id) {
            notify.notify_waiters();
        }
    }

    /// The watcher of a partition, made on first use.
    pub(crate) fn watch(&self, partition_id: i64) -> Arc<Notify> {
        self.inner
            .lock()
            .watchers
            .entry(partition_id)
            .or_default()
            .clone()
    }

    /// Every cached partition, for a refresh.
    pub(crate) fn cached_ids(&self) -> Vec<(i64, TopicPartition)> {
        self.inner
            .lock()
            .by_id
            .iter()
            .map(|(id, s)| (*id, s.tp.clone()))
            .collect()
    }
}

/// Parses a `weir_appended` payload, `object_id;partition_id:next_offset,…`, into its
/// (partition id, next offset) pairs; `None` if it is malformed (written by something
/// else: the caller logs it and relies on the poll).
pub(crate) fn parse_appended(payload: &str) -> Option<Vec<(i64, i64)>> {
    let (_object_id, pairs) = payload.split_once(';')?;
    pairs
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (id, next) = pair.split_once(':')?;
            Some((id.trim().parse().ok()?, next.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(partition_id: i64, next_offset: i64) -> PartitionRow {
        PartitionRow {
            partition_id,
            next_offset,
            log_start_offset: 0,
            first_unstable_offset: None,
            size_bytes: 0,
        }
    }

    #[test]
    fn offsets_never_move_back_and_a_commit_heard_before_the_row_counts() {
        // Goal: a row read before a commit was heard does not undo it, whether the
        // partition was cached when the commit was heard or not; a moved high watermark
        // leaves the last stable offset unknown until a row says it.
        let states = States::new(std::time::Duration::from_secs(1));
        let tp = TopicPartition {
            topic: "t".into(),
            topic_id: uuid::Uuid::from_u128(1),
            partition: 0,
        };
        states.committed(7, 12);
        let merged = states.merge_row(&tp, &row(7, 10), 0);
        assert_eq!((merged.next_offset, merged.lso_known), (12, false));
        states.committed(7, 15);
        let merged = states.merge_row(&tp, &row(7, 14), 0);
        assert_eq!(merged.next_offset, 15);
        let merged = states.merge_row(&tp, &row(7, 15), 0);
        assert_eq!((merged.next_offset, merged.lso_known), (15, true));
    }

    #[test]
    fn appended_payloads_parse_or_are_refused() {
        // Goal: the produce path's payload gives each partition's next offset; anything
        // malformed is refused whole rather than half applied.
        assert_eq!(parse_appended("17;3:100,4:7"), Some(vec![(3, 100), (4, 7)]));
        assert_eq!(parse_appended("17;"), Some(vec![]));
        assert_eq!(parse_appended("17"), None);
        assert_eq!(parse_appended("17;3:x"), None);
        assert_eq!(parse_appended("17;3"), None);
    }
}
