//! The memory cache of chunk bytes: a least-recently-used map bounded by the bytes it
//! holds, with whole objects (written through by the broker that made them) counted
//! against the same bound.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use parking_lot::Mutex;

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CacheKey {
    /// One chunk, ready to send: offsets patched, leader epoch written. Patching depends
    /// only on the chunk's row, which never changes (a compaction writes new chunks in new
    /// objects), so a hit is served without a copy or a walk of its batches.
    Chunk { object_id: i64, position: u64 },
    /// A whole object as its writer PUT it (batches unpatched), so that tail reads on that
    /// broker need no GET; a hit slices the chunk out and patches a copy.
    Object { object_id: i64 },
}

/// Bytes by key, the least recently used evicted first once `bytes_max` is passed.
pub(crate) struct ChunkCache {
    bytes_max: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<CacheKey, (Bytes, u64)>,
    /// Entries by last use: the first is evicted first.
    by_use: BTreeMap<u64, CacheKey>,
    /// Counts uses; never reused, so every entry's tick is unique.
    tick: u64,
    bytes: usize,
}

impl ChunkCache {
    pub(crate) fn new(bytes_max: usize) -> ChunkCache {
        ChunkCache {
            bytes_max,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub(crate) fn get(&self, key: &CacheKey) -> Option<Bytes> {
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let (bytes, used) = inner.entries.get_mut(key)?;
        let old = std::mem::replace(used, tick);
        let bytes = bytes.clone();
        inner.by_use.remove(&old);
        inner.by_use.insert(tick, *key);
        Some(bytes)
    }

    /// Keeps `bytes` under `key`, evicting the least recently used entries to stay within
    /// the bound. An entry larger than the whole bound is not kept: it would evict
    /// everything and then itself.
    pub(crate) fn insert(&self, key: CacheKey, bytes: Bytes) {
        if bytes.len() > self.bytes_max {
            return;
        }
        let mut inner = self.inner.lock();
        inner.remove(&key);
        inner.tick += 1;
        let tick = inner.tick;
        inner.bytes += bytes.len();
        inner.entries.insert(key, (bytes, tick));
        inner.by_use.insert(tick, key);
        while inner.bytes > self.bytes_max {
            let Some((_, oldest)) = inner.by_use.pop_first() else {
                break;
            };
            inner.remove(&oldest);
        }
        assert!(inner.bytes <= self.bytes_max, "eviction keeps the bound");
        assert_eq!(inner.entries.len(), inner.by_use.len());
    }

    pub(crate) fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }
}

impl Inner {
    fn remove(&mut self, key: &CacheKey) {
        if let Some((bytes, tick)) = self.entries.remove(key) {
            self.by_use.remove(&tick);
            self.bytes -= bytes.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(object_id: i64) -> CacheKey {
        CacheKey::Chunk {
            object_id,
            position: 0,
        }
    }

    #[test]
    fn the_least_recently_used_goes_first_and_the_bound_holds() {
        // Goal: inserting past the bound evicts the entry used longest ago (a get counts as
        // a use), the bytes held never pass the bound, and an entry larger than the bound
        // is not kept at all.
        let cache = ChunkCache::new(30);
        cache.insert(chunk(1), Bytes::from(vec![1; 10]));
        cache.insert(chunk(2), Bytes::from(vec![2; 10]));
        cache.insert(chunk(3), Bytes::from(vec![3; 10]));
        assert!(cache.get(&chunk(1)).is_some());
        cache.insert(CacheKey::Object { object_id: 4 }, Bytes::from(vec![4; 10]));
        assert!(cache.get(&chunk(2)).is_none(), "2 was used longest ago");
        assert!(cache.get(&chunk(1)).is_some());
        assert!(cache.get(&chunk(3)).is_some());
        assert_eq!((cache.bytes(), cache.len()), (30, 3));
        cache.insert(chunk(5), Bytes::from(vec![5; 31]));
        assert!(cache.get(&chunk(5)).is_none());
        assert_eq!(cache.bytes(), 30);
        cache.insert(chunk(1), Bytes::from(vec![1; 25]));
        assert_eq!(cache.bytes(), 25, "replacing an entry frees the old bytes");
        assert_eq!(cache.len(), 1);
    }
}
