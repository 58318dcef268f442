//! The disk cache: chunks read from the bucket, ready to send, kept as files on the
//! broker's own disk below the memory cache, bounded by bytes, least recently used
//! evicted first. A chunk never changes (a compaction writes new chunks to new objects),
//! so a file is valid for as long as it exists.
//!
//! Layout: `<dir>/weir-chunk-cache/<xx>/<object id>-<position>`, `xx` the object id's
//! low byte in hex (so no directory holds too many files); each file is the chunk's bytes
//! after a CRC-32C of them. The directory is emptied when the broker starts: the index
//! of what is there lives in memory only.
//!
//! Writes go through a queue bounded by count and by bytes to one task, which writes a
//! temporary file and renames it in, so a reader never sees half a file; when the queue
//! is full a chunk is simply not kept. A file that is missing, short or fails its CRC is a
//! miss, and is dropped from the index. A lock file keeps a second broker out of the
//! directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::cache::{CacheKey, Lru};

/// The subdirectory of `--cluster-cache-dir` the cache owns (and empties at start).
pub const SUBDIR: &str = "weir-chunk-cache";
/// Chunks waiting to be written; more are not kept.
const WRITE_QUEUE: usize = 256;
/// Bytes waiting to be written; more are not kept.
const WRITE_QUEUE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Held locked while a broker uses the directory: two brokers sharing one would empty
/// each other's files.
const LOCK_FILE: &str = "weir-chunk-cache.lock";
const CRC_BYTES: usize = 4;
/// What a file is weighed at, at least and in steps of: a file takes whole blocks of the
/// file system, so a bound on bytes written would let many small chunks take far more.
pub const FILE_BLOCK_BYTES: u64 = 4096;

/// The disk cache of one broker (see the module's opening).
///
/// Its bound counts each file in whole blocks ([`FILE_BLOCK_BYTES`]), as the disk holds it.
pub struct DiskCache {
    dir: PathBuf,
    index: Lru<()>,
    writes: mpsc::Sender<(CacheKey, Bytes)>,
    /// Files begun, for unique temporary names.
    begun: AtomicU64,
    /// Files written and indexed.
    stored: AtomicU64,
    /// Bytes offered and not yet written.
    queued_bytes: AtomicU64,
    /// Locked for as long as the cache is open.
    _lock: std::fs::File,
}

impl std::fmt::Debug for DiskCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskCache")
            .field("dir", &self.dir)
            .field("bytes", &self.index.bytes())
            .finish()
    }
}

impl DiskCache {
    /// Opens the cache in `<dir>/weir-chunk-cache`, emptied, holding at most `bytes_max`
    /// bytes of chunks; starts its writer task (on the current runtime).
    pub fn open(dir: &Path, bytes_max: u64) -> std::io::Result<Arc<DiskCache>> {
        std::fs::create_dir_all(dir)?;
        let lock = std::fs::File::create(dir.join(LOCK_FILE))?;
        if let Err(e) = lock.try_lock() {
            return Err(std::io::Error::other(format!(
                "another process holds {} ({e}): each broker needs a cache directory of its own",
                dir.join(LOCK_FILE).display()
            )));
        }
        let dir = dir.join(SUBDIR);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::create_dir_all(&dir)?;
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        let cache = Arc::new(DiskCache {
            dir,
            index: Lru::new(bytes_max),
            writes,
            begun: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            queued_bytes: AtomicU64::new(0),
            _lock: lock,
        });
        tokio::spawn(write_all(Arc::downgrade(&cache), queue));
        Ok(cache)
    }

    /// Bytes of chunks the cache holds.
    pub fn bytes(&self) -> u64 {
        self.index.bytes()
    }

    /// Chunks written to disk since the cache was opened.
    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    fn path(&self, key: &CacheKey) -> Option<PathBuf> {
        match key {
            CacheKey::Chunk {
                object_id,
                position,
            } => Some(
                self.dir
                    .join(format!("{:02x}", object_id & 0xff))
                    .join(format!("{object_id}-{position}")),
            ),
            CacheKey::Object { .. } => None,
        }
    }

    /// The chunk under `key`, `size_bytes` long, if the cache holds it whole and intact.
    /// The file is read and checked off the runtime's threads.
    pub(crate) async fn get(&self, key: &CacheKey, size_bytes: usize) -> Option<Bytes> {
        self.index.get(key)?;
        let path = self.path(key)?;
        let read = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || read_intact(&path, size_bytes)).await
        };
        match read {
            Ok(Some(bytes)) => Some(bytes),
            _ => {
                self.index.remove(key);
                let _ = tokio::fs::remove_file(&path).await;
                None
            }
        }
    }

    /// Offers a chunk read from the bucket; it is written in the background, or not at
    /// all if the queue is full (by count or by bytes).
    pub(crate) fn offer(&self, key: CacheKey, bytes: Bytes) {
        if !matches!(key, CacheKey::Chunk { .. }) {
            return;
        }
        let len = bytes.len() as u64;
        let queued = self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if queued + len > WRITE_QUEUE_BYTES_MAX || self.writes.try_send((key, bytes)).is_err() {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
        }
    }

    /// Writes one file and indexes it; deletes the files its arrival evicts.
    fn write(&self, key: CacheKey, bytes: &[u8]) -> std::io::Result<()> {
        let Some(path) = self.path(&key) else {
            return Ok(());
        };
        let weight =
            ((CRC_BYTES + bytes.len()) as u64).div_ceil(FILE_BLOCK_BYTES) * FILE_BLOCK_BYTES;
        if weight > self.index.bytes_max() {
            return Ok(());
        }
        let shard = path.parent().expect("a shard directory");
        std::fs::create_dir_all(shard)?;
        let n = self.begun.fetch_add(1, Ordering::Relaxed);
        let temporary = shard.join(format!(".{}-{n}.tmp", std::process::id()));
        let written = (|| {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&crc32c::crc32c(bytes).to_be_bytes())?;
            file.write_all(bytes)?;
            drop(file);
            std::fs::rename(&temporary, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(e);
        }
        for evicted in self.index.insert_weighed(key, (), weight) {
            if let Some(path) = self.path(&evicted) {
                let _ = std::fs::remove_file(path);
            }
        }
        self.stored.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The file at `path` without its checksum, if it is `size_bytes` long and intact.
fn read_intact(path: &Path, size_bytes: usize) -> Option<Bytes> {
    let mut file = std::fs::read(path).ok()?;
    let intact = file.len() == CRC_BYTES + size_bytes
        && crc32c::crc32c(&file[CRC_BYTES..]).to_be_bytes() == file[..CRC_BYTES];
    if !intact {
        return None;
    }
    file.drain(..CRC_BYTES);
    Some(Bytes::from(file))
}

/// The writer task: one file at a time, off the runtime's threads, until the cache goes.
async fn write_all(
    cache: std::sync::Weak<DiskCache>,
    mut queue: mpsc::Receiver<(CacheKey, Bytes)>,
) {
    while let Some((key, bytes)) = queue.recv().await {
        let Some(cache) = cache.upgrade() else {
            return;
        };
        let written = tokio::task::spawn_blocking(move || {
            let written = cache.write(key, &bytes);
            cache
                .queued_bytes
                .fetch_sub(bytes.len() as u64, Ordering::Relaxed);
            written
        })
        .await;
        if let Ok(Err(e)) = written {
            tracing::warn!(error = %e, "a chunk could not be written to the disk cache");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(object_id: i64) -> CacheKey {
        CacheKey::Chunk {
            object_id,
            position: 7,
        }
    }

    async fn written(cache: &DiskCache, key: CacheKey, bytes: &[u8]) {
        let stored = cache.stored();
        cache.offer(key, Bytes::copy_from_slice(bytes));
        for _ in 0..200 {
            if cache.stored() > stored {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("the chunk was never written");
    }

    #[tokio::test]
    async fn chunks_come_back_intact_and_the_bound_holds() {
        // Goal: a written chunk comes back as written; a damaged or short file is a miss
        // and leaves the index; past the bound the least recently used file is deleted;
        // opening again empties the directory.
        let dir = tempfile::tempdir().unwrap();
        // Room for two files: each takes a whole block.
        let cache = DiskCache::open(dir.path(), 2 * FILE_BLOCK_BYTES).unwrap();
        written(&cache, chunk(1), &[1; 100]).await;
        assert_eq!(
            cache.get(&chunk(1), 100).await.as_deref(),
            Some(&[1u8; 100][..])
        );
        assert_eq!(
            cache.get(&chunk(1), 99).await,
            None,
            "a size that disagrees is a miss"
        );
        assert_eq!(
            cache.get(&chunk(1), 100).await,
            None,
            "and leaves the index"
        );

        written(&cache, chunk(2), &[2; 100]).await;
        let path = cache.path(&chunk(2)).unwrap();
        let mut file = std::fs::read(&path).unwrap();
        file[50] ^= 1;
        std::fs::write(&path, file).unwrap();
        assert_eq!(
            cache.get(&chunk(2), 100).await,
            None,
            "a damaged file is a miss"
        );

        written(&cache, chunk(3), &[3; 100]).await;
        written(&cache, chunk(4), &[4; 100]).await;
        assert!(cache.get(&chunk(3), 100).await.is_some());
        written(&cache, chunk(5), &[5; 100]).await;
        assert!(
            cache.get(&chunk(4), 100).await.is_none(),
            "4 was used longest ago"
        );
        assert!(
            !cache.path(&chunk(4)).unwrap().exists(),
            "its file is deleted"
        );
        assert!(cache.get(&chunk(3), 100).await.is_some());
        assert!(cache.get(&chunk(5), 100).await.is_some());
        assert_eq!(cache.bytes(), 2 * FILE_BLOCK_BYTES, "a file weighs a block");

        let shared = DiskCache::open(dir.path(), 1000).unwrap_err().to_string();
        assert!(shared.contains("a cache directory of its own"), "{shared}");
        drop(cache);
        let again = DiskCache::open(dir.path(), 1000).unwrap();
        assert_eq!(again.bytes(), 0);
        assert!(!again.path(&chunk(5)).unwrap().exists(), "emptied at start");
        let leftovers = std::fs::read_dir(dir.path().join(SUBDIR)).unwrap().count();
        assert_eq!(leftovers, 0);
    }
}
