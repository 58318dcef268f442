//! `Reader`: the cluster engine's fetch path. It serves the storage traits' reads
//! (`LogStore::read` and `watch`, and `LogAdmin`'s offsets, status and timestamp
//! lookups) from the `chunks` index in PostgreSQL and the objects in the bucket.
//!
//! A read costs at most one PostgreSQL round trip, for all its partitions at once (their
//! rows, their next chunks, their aborted transactions), and none when every partition is
//! asked for at its cached high watermark while the cache is fresh: the long-poll of a
//! consumer that has caught up, the common case. The cached high watermarks follow the
//! `weir_appended` notifications of every broker's commits and this broker's own commits
//! ([`Reader::note_committed`]); the poll tick and each new LISTEN connection refresh
//! them from PostgreSQL, so a lost notification costs at most one poll period.
//!
//! Chunk bytes come from a bounded memory cache, then from a bounded disk cache (if the
//! broker has one), before the bucket; the broker that wrote an object keeps it in memory
//! whole ([`Reader::cache_object`]), so its tail reads need no GET. Batches go out with their real offsets written (the produce path stores them as
//! the producer sent them, offsets relative) and leader epoch 0: cluster mode never
//! truncates, so there is only ever one epoch.
//!
//! Failures stay with the partitions they touch: PostgreSQL or the bucket failing turns
//! into a storage error (KAFKA_STORAGE_ERROR, which clients retry) in those partitions'
//! `records`, never a panic and never a failed request.
//!
//! Layout: `fetch/query.rs` (the SQL), `fetch/read.rs` (one read: plan, GETs, whole
//! batches within the byte limits), `fetch/chunks.rs` (chunk bytes from the cache or by
//! GETs that gather neighbouring chunks), `fetch/timestamp.rs` (ListOffsets by time),
//! `fetch/state.rs` (the cached partition states, their freshness, the watchers),
//! `fetch/cache.rs` (the LRU of chunk bytes), `fetch/disk_cache.rs` (the disk cache).

mod cache;
mod chunks;
pub mod disk_cache;
mod query;
mod read;
mod state;
mod timestamp;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinHandle;
use uuid::Uuid;
use weir_log::store::{
    PartitionOffsets, PartitionRead, PartitionStatus, ReadSpec, StoreError, TimestampedOffset,
    TopicPartition,
};
use weir_log::LogError;

use crate::bucket::Bucket;
use crate::error::ClusterError;
use crate::notify::{Signal, CHANNEL_APPENDED};
use crate::partitions::PartitionIds;
use crate::pg::Session;
use cache::{CacheKey, ChunkCache};
pub use disk_cache::DiskCache;
use state::States;

/// The default memory cache: enough for the tails of many partitions' recent objects.
pub const MEMORY_CACHE_BYTES_MAX_DEFAULT: usize = 256 * 1024 * 1024;
/// Chunks one read asks for per partition. A chunk holds one flush of a partition (often
/// many batches), so this many fill any sane partition limit; a read that needs more
/// returns less, and the consumer's next fetch goes on.
pub const CHUNK_ROWS_PER_QUERY_MAX_DEFAULT: i64 = 64;
/// How long one of the reader's statements may take.
pub const STATEMENT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
/// How long the signals may be silent before the cached high watermarks are no longer
/// trusted; must exceed the listener's poll period.
pub const SIGNALS_SILENT_MAX_DEFAULT: Duration = Duration::from_secs(10);
/// Ranged GETs one read runs at once.
pub const GETS_IN_FLIGHT_MAX_DEFAULT: usize = 16;
/// Aborted transactions one read_committed read carries per partition. A read that
/// meets more stops before the first one left out, so none of its records is shown as
/// committed.
pub const ABORTED_TXNS_PER_READ_MAX: i64 = 1000;
/// Chunk rows one timestamp lookup asks for at a time, and how many times it may ask.
const TIMESTAMP_CHUNK_ROWS: i64 = 4;
const TIMESTAMP_QUERIES_MAX: usize = 16;

/// The reader's bounds.
#[derive(Debug, Clone)]
pub struct ReadSettings {
    /// Bytes of chunks and whole objects kept in memory.
    pub memory_cache_bytes_max: usize,
    /// Chunk rows one read fetches per partition.
    pub chunk_rows_per_query_max: i64,
    /// How long one statement may take.
    pub statement_timeout: Duration,
    /// How long the signals may be silent before cached offsets are not trusted.
    pub signals_silent_max: Duration,
    /// Ranged GETs one read runs at once.
    pub gets_in_flight_max: usize,
    /// The disk cache below the memory cache, if any.
    pub disk_cache: Option<Arc<DiskCache>>,
}

impl Default for ReadSettings {
    fn default() -> ReadSettings {
        ReadSettings {
            memory_cache_bytes_max: MEMORY_CACHE_BYTES_MAX_DEFAULT,
            chunk_rows_per_query_max: CHUNK_ROWS_PER_QUERY_MAX_DEFAULT,
            statement_timeout: STATEMENT_TIMEOUT_DEFAULT,
            signals_silent_max: SIGNALS_SILENT_MAX_DEFAULT,
            gets_in_flight_max: GETS_IN_FLIGHT_MAX_DEFAULT,
            disk_cache: None,
        }
    }
}

/// What the reader has done since it started, for metrics and the cost benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Read statements (one per read that could not be answered from the cache).
    pub read_queries: u64,
    /// Other statements: refreshes after signals, offsets and timestamp lookups.
    pub other_queries: u64,
    /// Ranged GETs from the bucket, and the bytes they returned.
    pub gets: u64,
    pub bytes_got: u64,
    /// Chunks found in the memory cache (as chunks or inside a whole object), and not.
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Bytes the memory cache holds now.
    pub cache_bytes: u64,
    /// Chunks the memory cache missed and the disk cache held, and the bytes it holds now.
    pub disk_cache_hits: u64,
    pub disk_cache_bytes: u64,
}

#[derive(Default)]
struct Counters {
    read_queries: AtomicU64,
    other_queries: AtomicU64,
    gets: AtomicU64,
    bytes_got: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    disk_cache_hits: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// What the reader and its follower task share.
struct Shared {
    session: Arc<Session>,
    bucket: Bucket,
    ids: Arc<PartitionIds>,
    settings: ReadSettings,
    states: States,
    cache: ChunkCache,
    counters: Counters,
    /// Partitions whose row a `status` that found nothing started to read.
    learning: parking_lot::Mutex<std::collections::HashSet<TopicPartition>>,
}

/// Rows `status` reads in the background at once, at most; more misses wait for its next
/// ask.
const LEARNING_MAX: usize = 256;

/// The fetch path of one broker. Dropping it stops its follower task.
pub struct Reader {
    shared: Arc<Shared>,
    follower: Option<JoinHandle<()>>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(task) = &self.follower {
            task.abort();
        }
    }
}

impl Reader {
    /// Starts the reader and, given the listener's `signals`, the task that follows them.
    /// Without signals nothing cached is ever fresh: every read asks PostgreSQL.
    pub fn start(
        session: Arc<Session>,
        bucket: Bucket,
        ids: Arc<PartitionIds>,
        signals: Option<broadcast::Receiver<Signal>>,
        settings: ReadSettings,
    ) -> Reader {
        assert!(settings.chunk_rows_per_query_max > 0, "a read needs chunks");
        assert!(settings.gets_in_flight_max > 0, "a read needs its GETs");
        let shared = Arc::new(Shared {
            session,
            bucket,
            ids,
            states: States::new(settings.signals_silent_max),
            cache: ChunkCache::new(settings.memory_cache_bytes_max as u64),
            counters: Counters::default(),
            learning: parking_lot::Mutex::new(std::collections::HashSet::new()),
            settings,
        });
        let follower = signals.map(|signals| tokio::spawn(follow(Arc::clone(&shared), signals)));
        Reader { shared, follower }
    }

    /// Reads each partition in order, with the contract of `LogStore::read`: within each
    /// partition's limit and a running total of `max_bytes`, the first batch whole, `None`
    /// for a partition with no live row, `OffsetOutOfRange` outside [log start, high
    /// watermark]; read_committed reads stop at the last stable offset and carry the
    /// aborted transactions overlapping what they return.
    pub async fn read(&self, reads: &[ReadSpec], max_bytes: usize) -> Vec<Option<PartitionRead>> {
        read::read(&self.shared, reads, max_bytes).await
    }

    /// Notified when the partition's high watermark moves or its row goes. `None` for a
    /// partition this reader has not read yet (a fetch reads before it waits).
    pub fn watch(&self, tp: &TopicPartition) -> Option<Arc<Notify>> {
        let id = self.shared.partition_id(tp)?;
        Some(self.shared.states.watch(id))
    }

    /// Where the partition stands, from its row.
    pub async fn offsets(&self, tp: &TopicPartition) -> Result<PartitionOffsets, StoreError> {
        self.shared.offsets(tp).await
    }

    /// Where the partition stands as last seen, without I/O. A partition this broker has
    /// not read yet (another broker writes it, say) is `None` at first: the miss starts a
    /// background read of its row, after which the partition is known and kept fresh like
    /// any read one, so the next ask answers (the console's lag and partition metrics ask
    /// again at each sample).
    pub fn status(&self, tp: &TopicPartition) -> Option<PartitionStatus> {
        let status = self.shared.states.status(tp);
        if status.is_none() {
            learn(&self.shared, tp);
        }
        status
    }

    /// The first record at or after `timestamp_ms` above the log start, if any.
    pub async fn offset_for_timestamp(
        &self,
        tp: &TopicPartition,
        timestamp_ms: i64,
    ) -> Result<Option<TimestampedOffset>, StoreError> {
        timestamp::offset_for_timestamp(&self.shared, tp, timestamp_ms).await
    }

    /// The record with the largest timestamp above the log start (the first on a tie).
    pub async fn max_timestamp_offset(
        &self,
        tp: &TopicPartition,
    ) -> Result<Option<TimestampedOffset>, StoreError> {
        timestamp::max_timestamp_offset(&self.shared, tp).await
    }

    /// This broker committed records to `partition_id` up to `next_offset`: readers see
    /// them, and watchers wake, without waiting for the notification.
    pub fn note_committed(&self, partition_id: i64, next_offset: i64) {
        self.shared.states.committed(partition_id, next_offset);
    }

    /// Keeps an object this broker wrote, whole, for the reads of its chunks.
    pub fn cache_object(&self, object_id: i64, bytes: Bytes) {
        self.shared
            .cache
            .insert(CacheKey::Object { object_id }, bytes);
    }

    /// Forgets a deleted topic's partitions (their states and cached ids) and wakes their
    /// watchers; a read of them asks PostgreSQL, which no longer has their rows.
    pub fn forget_topic(&self, topic_id: Uuid) {
        let mut ids: Vec<i64> = self
            .shared
            .states
            .cached_ids()
            .into_iter()
            .filter(|(_, tp)| tp.topic_id == topic_id)
            .map(|(id, _)| id)
            .collect();
        ids.extend(self.shared.ids.forget_topic(topic_id));
        for id in ids {
            self.shared.states.forget(id);
        }
    }

    pub fn stats(&self) -> ReadStats {
        let c = &self.shared.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ReadStats {
            read_queries: load(&c.read_queries),
            other_queries: load(&c.other_queries),
            gets: load(&c.gets),
            bytes_got: load(&c.bytes_got),
            cache_hits: load(&c.cache_hits),
            cache_misses: load(&c.cache_misses),
            cache_bytes: self.shared.cache.bytes(),
            disk_cache_hits: load(&c.disk_cache_hits),
            disk_cache_bytes: self
                .shared
                .settings
                .disk_cache
                .as_ref()
                .map_or(0, |d| d.bytes()),
        }
    }
}

impl Shared {
    /// Where the partition stands, from its row, which the states then hold.
    async fn offsets(&self, tp: &TopicPartition) -> Result<PartitionOffsets, StoreError> {
        let generation = self.states.generation();
        let row = self
            .query_other("the read of a partition's offsets", async {
                let client = self.session.client().await?;
                Ok(client
                    .query_opt(query::ROW_SQL, &[&tp.topic_id, &tp.partition])
                    .await?
                    .map(|row| query::partition_row(&row, 0)))
            })
            .await
            .map_err(|e| StoreError::Log(storage_error(&e)))?
            .ok_or(StoreError::UnknownPartition)?;
        Ok(self.states.merge_row(tp, &row, generation).offsets())
    }

    /// The partition's row id if known without I/O.
    fn partition_id(&self, tp: &TopicPartition) -> Option<i64> {
        self.states.id_of(tp).or_else(|| self.ids.cached(tp))
    }

    /// Runs a statement other than a read, bounded and counted.
    async fn query_other<T>(
        &self,
        what: &'static str,
        f: impl std::future::Future<Output = Result<T, ClusterError>>,
    ) -> Result<T, ClusterError> {
        bump(&self.counters.other_queries, 1);
        self.session
            .bounded(what, self.settings.statement_timeout, f)
            .await
    }

    /// Confirms every cached partition from its row; rows that are gone are forgotten.
    async fn refresh(&self, generation: u64) -> Result<(), ClusterError> {
        let cached = self.states.cached_ids();
        if cached.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = cached.iter().map(|(id, _)| *id).collect();
        let rows = self
            .query_other("the refresh of cached partitions", async {
                let client = self.session.client().await?;
                Ok(client.query(query::REFRESH_SQL, &[&ids]).await?)
            })
            .await?;
        let mut seen = std::collections::HashSet::with_capacity(rows.len());
        for row in &rows {
            let row = query::partition_row(row, 0);
            seen.insert(row.partition_id);
            if let Some((_, tp)) = cached.iter().find(|(id, _)| *id == row.partition_id) {
                self.states.merge_row(tp, &row, generation);
            }
        }
        for (id, _) in &cached {
            if !seen.contains(id) {
                self.states.forget(*id);
            }
        }
        Ok(())
    }
}

/// Reads the row of a partition `status` did not know, in the background (one read per
/// partition at a time, at most [`LEARNING_MAX`] at once); nothing without a runtime.
fn learn(shared: &Arc<Shared>, tp: &TopicPartition) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    {
        let mut learning = shared.learning.lock();
        if learning.len() >= LEARNING_MAX || !learning.insert(tp.clone()) {
            return;
        }
    }
    let shared = Arc::clone(shared);
    let tp = tp.clone();
    runtime.spawn(async move {
        if let Err(e) = shared.offsets(&tp).await {
            tracing::debug!(topic_id = %tp.topic_id, partition = tp.partition, error = %e,
                "could not read a partition's row for its status");
        }
        shared.learning.lock().remove(&tp);
    });
}

/// The follower: applies `weir_appended` notifications, and refreshes every cached
/// partition on the poll tick, on each new LISTEN connection and after missed signals.
async fn follow(shared: Arc<Shared>, mut signals: broadcast::Receiver<Signal>) {
    loop {
        let generation = match signals.recv().await {
            Ok(Signal::Notification { channel, payload }) => {
                shared.states.signalled();
                if &*channel == CHANNEL_APPENDED {
                    match state::parse_appended(&payload) {
                        Some(pairs) => {
                            for (partition_id, next_offset) in pairs {
                                shared.states.committed(partition_id, next_offset);
                            }
                        }
                        None => {
                            tracing::warn!(%payload, "a weir_appended payload that does not parse; the poll will catch up")
                        }
                    }
                }
                continue;
            }
            Ok(Signal::Poll) => {
                shared.states.signalled();
                shared.states.generation()
            }
            Ok(Signal::Connected { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                shared.states.new_generation()
            }
            Err(broadcast::error::RecvError::Closed) => {
                shared.states.stopped_following();
                return;
            }
        };
        if let Err(e) = shared.refresh(generation).await {
            tracing::warn!(error = %e, "could not refresh the cached high watermarks; reads ask PostgreSQL until a refresh succeeds");
            // Nothing cached is trusted until a refresh succeeds.
            shared.states.new_generation();
        }
    }
}

/// A failure of PostgreSQL or the bucket as the storage error a partition's read carries:
/// KAFKA_STORAGE_ERROR, which clients retry.
fn storage_error(e: &ClusterError) -> LogError {
    LogError::Io(std::io::Error::other(match e {
        ClusterError::ObjectStore { .. } => format!("the bucket could not be read: {e}"),
        _ => format!("the partition index in PostgreSQL could not be read: {e}"),
    }))
}
