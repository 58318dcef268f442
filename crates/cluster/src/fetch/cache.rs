//! The least-recently-used map of the read caches, bounded by the bytes its entries
//! weigh: the memory cache of chunk bytes (whole objects, written through by the broker
//! that made them, counted against the same bound), and the index of the disk cache.

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

/// Values by key, each with a weight (its bytes), the least recently used evicted first
/// once the weights pass `bytes_max`. The memory cache holds the bytes themselves
/// ([`ChunkCache`]); the disk cache's index holds nothing but each file's size.
pub(crate) struct Lru<V> {
    bytes_max: u64,
    inner: Mutex<Inner<V>>,
}

/// The memory cache: chunk and object bytes.
pub(crate) type ChunkCache = Lru<Bytes>;

struct Inner<V> {
    entries: HashMap<CacheKey, Entry<V>>,
    /// Entries by last use: the first is evicted first.
    by_use: BTreeMap<u64, CacheKey>,
    /// Counts uses; never reused, so every entry's tick is unique.
    tick: u64,
    bytes: u64,
}

struct Entry<V> {
    value: V,
    weight: u64,
    used: u64,
}

impl<V: Clone> Lru<V> {
    pub(crate) fn new(bytes_max: u64) -> Lru<V> {
        Lru {
            bytes_max,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                by_use: BTreeMap::new(),
                tick: 0,
                bytes: 0,
            }),
        }
    }

    /// The value under `key`, counted as a use.
    pub(crate) fn get(&self, key: &CacheKey) -> Option<V> {
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let entry = inner.entries.get_mut(key)?;
        let old = std::mem::replace(&mut entry.used, tick);
        let value = entry.value.clone();
        inner.by_use.remove(&old);
        inner.by_use.insert(tick, *key);
        Some(value)
    }

    /// Keeps `value` of `weight` under `key`, evicting the least recently used entries to
    /// stay within the bound; returns the keys evicted. An entry heavier than the whole
    /// bound is not kept: it would evict everything and then itself.
    pub(crate) fn insert_weighed(&self, key: CacheKey, value: V, weight: u64) -> Vec<CacheKey> {
        if weight > self.bytes_max {
            return Vec::new();
        }
        let mut inner = self.inner.lock();
        inner.remove(&key);
        inner.tick += 1;
        let used = inner.tick;
        inner.bytes += weight;
        inner.entries.insert(
            key,
            Entry {
                value,
                weight,
                used,
            },
        );
        inner.by_use.insert(used, key);
        let mut evicted = Vec::new();
        while inner.bytes > self.bytes_max {
            let Some((_, oldest)) = inner.by_use.pop_first() else {
                break;
            };
            inner.remove(&oldest);
            evicted.push(oldest);
        }
        assert!(inner.bytes <= self.bytes_max, "eviction keeps the bound");
        assert_eq!(inner.entries.len(), inner.by_use.len());
        evicted
    }

    pub(crate) fn remove(&self, key: &CacheKey) {
        self.inner.lock().remove(key);
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.inner.lock().bytes
    }

    pub(crate) fn bytes_max(&self) -> u64 {
        self.bytes_max
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }
}

impl Lru<Bytes> {
    /// Keeps `bytes` under `key`, weighed by their length.
    pub(crate) fn insert(&self, key: CacheKey, bytes: Bytes) {
        let weight = bytes.len() as u64;
        self.insert_weighed(key, bytes, weight);
    }
}

impl<V> Inner<V> {
    fn remove(&mut self, key: &CacheKey) {
        if let Some(entry) = self.entries.remove(key) {
            self.by_use.remove(&entry.used);
            self.bytes -= entry.weight;
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
        // The evicted keys come back, oldest first (the disk cache deletes their files).
        let sizes: Lru<()> = Lru::new(10);
        assert!(sizes.insert_weighed(chunk(1), (), 4).is_empty());
        assert!(sizes.insert_weighed(chunk(2), (), 4).is_empty());
        assert_eq!(sizes.insert_weighed(chunk(3), (), 8), [chunk(1), chunk(2)]);
        sizes.remove(&chunk(3));
        assert_eq!((sizes.bytes(), sizes.len()), (0, 0));
    }
}
