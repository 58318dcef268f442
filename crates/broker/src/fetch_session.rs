//! Incremental fetch sessions (KIP-227).
//!
//! A consumer that opens a session (id 0, epoch 0) sends its full partition list once;
//! after that each request carries only the partitions whose fetch position changed,
//! plus the ones to forget, and each response carries only partitions with something new
//! (records, an error, a moved high watermark or log start offset). That keeps requests
//! and responses small for consumers of many partitions.

use std::collections::HashMap;

use indexmap::IndexMap;
use parking_lot::Mutex;
use uuid::Uuid;

/// Sessions kept at once (Kafka's `max.incremental.fetch.session.cache.slots`); the least
/// recently used is evicted to make room.
pub const FETCH_SESSIONS_MAX: usize = 1000;
/// Partitions one session may hold.
pub const FETCH_SESSION_PARTITIONS_MAX: usize = 100_000;

/// A partition as a session knows it: topic name and id (either may be empty), index.
pub type SessionKey = (String, Uuid, i32);

#[derive(Debug, Clone)]
pub struct SessionPartition {
    pub fetch_offset: i64,
    pub partition_max_bytes: usize,
    /// Values last sent to the client; -2 until the partition was first answered.
    pub last_high_watermark: i64,
    pub last_log_start_offset: i64,
}

#[derive(Debug, Clone)]
pub struct Session {
    /// The epoch the next request must carry.
    pub next_epoch: i32,
    pub partitions: IndexMap<SessionKey, SessionPartition>,
    last_used: u64,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<i32, Session>,
    next_id: i32,
    clock: u64,
}

#[derive(Default)]
pub struct FetchSessions {
    inner: Mutex<Inner>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SessionError {
    NotFound,
    InvalidEpoch,
    TooLarge,
}

impl FetchSessions {
    /// Creates a session holding `partitions`; returns its id.
    pub fn create(&self, partitions: IndexMap<SessionKey, SessionPartition>) -> i32 {
        let mut inner = self.inner.lock();
        if partitions.len() > FETCH_SESSION_PARTITIONS_MAX {
            return 0;
        }
        if inner.sessions.len() >= FETCH_SESSIONS_MAX {
            if let Some((&oldest, _)) = inner.sessions.iter().min_by_key(|(_, s)| s.last_used) {
                inner.sessions.remove(&oldest);
            }
        }
        inner.clock += 1;
        loop {
            inner.next_id = inner.next_id.wrapping_add(1).max(1);
            let id = inner.next_id;
            if !inner.sessions.contains_key(&id) {
                let last_used = inner.clock;
                inner.sessions.insert(
                    id,
                    Session {
                        next_epoch: 1,
                        partitions,
                        last_used,
                    },
                );
                return id;
            }
        }
    }

    pub fn remove(&self, id: i32) {
        self.inner.lock().sessions.remove(&id);
    }

    /// Applies an incremental request: checks the epoch, merges changed partitions,
    /// drops forgotten ones, advances the epoch. Returns a copy of the session's partitions.
    pub fn update(
        &self,
        id: i32,
        epoch: i32,
        changed: Vec<(SessionKey, i64, usize)>,
        forgotten: Vec<SessionKey>,
    ) -> Result<IndexMap<SessionKey, SessionPartition>, SessionError> {
        let mut inner = self.inner.lock();
        inner.clock += 1;
        let clock = inner.clock;
        let session = inner.sessions.get_mut(&id).ok_or(SessionError::NotFound)?;
        if session.next_epoch != epoch {
            return Err(SessionError::InvalidEpoch);
        }
        for key in forgotten {
            session.partitions.shift_remove(&key);
        }
        for (key, fetch_offset, partition_max_bytes) in changed {
            let entry = session.partitions.entry(key).or_insert(SessionPartition {
                fetch_offset,
                partition_max_bytes,
                last_high_watermark: -2,
                last_log_start_offset: -2,
            });
            entry.fetch_offset = fetch_offset;
            entry.partition_max_bytes = partition_max_bytes;
        }
        if session.partitions.len() > FETCH_SESSION_PARTITIONS_MAX {
            return Err(SessionError::TooLarge);
        }
        session.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
        session.last_used = clock;
        Ok(session.partitions.clone())
    }

    /// Records what was sent for `key`, so the next response can leave it out if unchanged.
    pub fn record_sent(
        &self,
        id: i32,
        key: &SessionKey,
        high_watermark: i64,
        log_start_offset: i64,
    ) {
        let mut inner = self.inner.lock();
        if let Some(p) = inner
            .sessions
            .get_mut(&id)
            .and_then(|s| s.partitions.get_mut(key))
        {
            p.last_high_watermark = high_watermark;
            p.last_log_start_offset = log_start_offset;
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> SessionKey {
        ("t".to_string(), Uuid::nil(), p)
    }

    #[test]
    fn epochs_advance_and_stale_ones_are_refused() {
        // Goal: a session accepts epochs 1, 2, ... in order and refuses repeats and unknown ids.
        let s = FetchSessions::default();
        let mut parts = IndexMap::new();
        parts.insert(
            key(0),
            SessionPartition {
                fetch_offset: 0,
                partition_max_bytes: 10,
                last_high_watermark: -2,
                last_log_start_offset: -2,
            },
        );
        let id = s.create(parts);
        assert!(id > 0);
        let p = s
            .update(id, 1, vec![(key(1), 5, 10)], vec![key(0)])
            .unwrap();
        assert_eq!(p.keys().cloned().collect::<Vec<_>>(), vec![key(1)]);
        assert_eq!(
            s.update(id, 1, vec![], vec![]).unwrap_err(),
            SessionError::InvalidEpoch
        );
        assert!(s.update(id, 2, vec![], vec![]).is_ok());
        assert_eq!(
            s.update(id + 1, 1, vec![], vec![]).unwrap_err(),
            SessionError::NotFound
        );
        s.remove(id);
        assert!(s.is_empty());
    }

    #[test]
    fn cache_is_bounded() {
        // Goal: the cache never holds more than FETCH_SESSIONS_MAX sessions.
        let s = FetchSessions::default();
        for _ in 0..FETCH_SESSIONS_MAX + 10 {
            s.create(IndexMap::new());
        }
        assert_eq!(s.len(), FETCH_SESSIONS_MAX);
    }
}
