//! The janitor against a real PostgreSQL and a directory bucket: retention by time, by
//! size and below a DeleteRecords log start; compacted topics left alone; objects deleted
//! only once no chunk points at them and the grace has passed; stale pending objects;
//! deleted topics; one janitor at a time under the lease; and retention racing produce
//! commits on the same partitions.
//!
//! Most tests write rows and objects directly (as the produce path would leave them) and
//! drive passes with `run_once`, whose `now_ms` sets the clock retention compares
//! timestamps with; their janitors' own loops never tick (a one-hour interval).

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::Compression;
use parking_lot::RwLock;
use tempfile::TempDir;
use tokio_postgres::Client;
use uuid::Uuid;
use weir_cluster::object::patch_offsets;
use weir_cluster::partitions::PartitionIds;
use weir_cluster::{AppendSettings, Appender, Bucket, Janitor, JanitorSettings};
use weir_log::batch::{encode_batch, whole_batches, NewRecord};
use weir_log::records::decode_batch;
use weir_log::store::{Acks, PartitionWrite, TopicPartition};
use weir_log::LogConfig;

/// The clock of the tests that drive passes by hand.
const NOW_MS: i64 = 1_700_000_000_000;
/// The bytes of every chunk the tests write by hand.
const CHUNK_BYTES: i32 = 100;

/// A test's database, bucket, connection and the topic configs its janitors see.
struct Setup {
    url: String,
    dir: TempDir,
    bucket: Bucket,
    admin: Client,
    configs: Arc<RwLock<HashMap<Uuid, LogConfig>>>,
}

async fn setup(test: &str) -> Option<Setup> {
    let url = common::database(test).await?;
    common::migrated(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let bucket = Bucket::from_url(&format!("file://{}", dir.path().display())).unwrap();
    let admin = common::connect(&url).await;
    Some(Setup {
        url,
        dir,
        bucket,
        admin,
        configs: Arc::new(RwLock::new(HashMap::new())),
    })
}

/// Settings for janitors driven by `run_once`: the loop never ticks, the lease outlasts
/// the test, and objects are kept `grace` after their last chunk goes.
fn by_hand(grace: Duration) -> JanitorSettings {
    JanitorSettings {
        interval: Duration::from_secs(3600),
        lease: Duration::from_secs(7200),
        grace,
        ..JanitorSettings::default()
    }
}

/// A topic's config; a compacted one is never due for compaction (`compaction.rs` tests
/// that), as the bytes of the chunks written here by hand are not record batches.
fn config(retention_ms: i64, retention_bytes: i64, cleanup_delete: bool) -> LogConfig {
    LogConfig {
        retention_ms,
        retention_bytes,
        cleanup_delete,
        cleanup_compact: !cleanup_delete,
        min_compaction_lag_ms: i64::MAX,
        ..LogConfig::default()
    }
}

/// One chunk to write by hand: (partition id, base offset, last offset, max timestamp).
type Chunk = (i64, i64, i64, i64);

impl Setup {
    fn janitor(&self, node_id: i32, settings: JanitorSettings) -> Janitor {
        let configs = Arc::clone(&self.configs);
        Janitor::start(
            common::session(&self.url),
            self.bucket.clone(),
            node_id,
            Uuid::new_v4(),
            settings,
            Arc::new(move |topic_id| configs.read().get(&topic_id).cloned()),
        )
    }

    /// A new topic with `partitions` partitions and `config`; returns their row ids.
    async fn topic(&self, config: LogConfig, partitions: i32) -> (Uuid, Vec<i64>) {
        let topic_id = Uuid::new_v4();
        self.configs.write().insert(topic_id, config);
        let mut ids = Vec::new();
        for partition in 0..partitions {
            ids.push(
                self.admin
                    .query_one(
                        "INSERT INTO partitions (topic_id, partition) VALUES ($1, $2) \
                         RETURNING partition_id",
                        &[&topic_id, &partition],
                    )
                    .await
                    .unwrap()
                    .get(0),
            );
        }
        (topic_id, ids)
    }

    /// A live object holding `chunks` (each [`CHUNK_BYTES`] long), stored in the bucket,
    /// with its rows, as a produce commit leaves them; returns its id.
    async fn object(&self, chunks: &[Chunk]) -> i64 {
        let object_id = self.object_row(1, "now()").await;
        for (i, &(partition_id, base_offset, last_offset, max_timestamp)) in
            chunks.iter().enumerate()
        {
            self.admin
                .execute(
                    "INSERT INTO chunks (partition_id, base_offset, last_offset, object_id, \
                     position, size_bytes, batch_count, max_timestamp) \
                     VALUES ($1, $2, $3, $4, $5, $6, 1, $7)",
                    &[
                        &partition_id,
                        &base_offset,
                        &last_offset,
                        &object_id,
                        &(i as i64 * i64::from(CHUNK_BYTES)),
                        &CHUNK_BYTES,
                        &max_timestamp,
                    ],
                )
                .await
                .unwrap();
            self.admin
                .execute(
                    "UPDATE partitions SET next_offset = $2, size_bytes = size_bytes + $3 \
                     WHERE partition_id = $1",
                    &[&partition_id, &(last_offset + 1), &i64::from(CHUNK_BYTES)],
                )
                .await
                .unwrap();
        }
        object_id
    }

    /// An object row in `state`, made at `created_at` (SQL), and its bytes in the bucket.
    async fn object_row(&self, state: i16, created_at: &str) -> i64 {
        let object_id: i64 = self
            .admin
            .query_one("SELECT nextval('object_ids')", &[])
            .await
            .unwrap()
            .get(0);
        self.bucket
            .put(object_id, Bytes::from(vec![7u8; 4 * CHUNK_BYTES as usize]))
            .await
            .unwrap();
        let key = self.bucket.object_key(object_id).to_string();
        self.admin
            .execute(
                &format!(
                    "INSERT INTO objects (object_id, key, size_bytes, state, created_at) \
                     VALUES ($1, $2, $3, $4, {created_at})"
                ),
                &[&object_id, &key, &(4 * i64::from(CHUNK_BYTES)), &state],
            )
            .await
            .unwrap();
        object_id
    }

    fn file(&self, object_id: i64) -> PathBuf {
        self.dir
            .path()
            .join(self.bucket.object_key(object_id).to_string())
    }

    fn stored(&self, object_id: i64) -> bool {
        Path::exists(&self.file(object_id))
    }

    /// The object's state, `None` once its row is gone.
    async fn state(&self, object_id: i64) -> Option<i16> {
        self.admin
            .query_opt(
                "SELECT state FROM objects WHERE object_id = $1",
                &[&object_id],
            )
            .await
            .unwrap()
            .map(|r| r.get(0))
    }

    /// The base offsets of the partition's chunks, oldest first.
    async fn chunk_bases(&self, partition_id: i64) -> Vec<i64> {
        self.admin
            .query(
                "SELECT base_offset FROM chunks WHERE partition_id = $1 ORDER BY base_offset",
                &[&partition_id],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// (log_start_offset, size_bytes, next_offset) of the partition.
    async fn partition(&self, partition_id: i64) -> (i64, i64, i64) {
        let row = self
            .admin
            .query_one(
                "SELECT log_start_offset, size_bytes, next_offset FROM partitions \
                 WHERE partition_id = $1",
                &[&partition_id],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    }

    async fn count(&self, sql: &str, id: i64) -> i64 {
        self.admin.query_one(sql, &[&id]).await.unwrap().get(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_retention_deletes_old_chunks_but_never_the_newest() {
    // Goal: chunks whose newest record is older than retention.ms go from the oldest; a
    // younger chunk stops the deletion; the newest chunk stays however old; the log start
    // moves to the first remaining chunk and size_bytes drops by the chunks deleted.
    let Some(s) = setup("janitor_time_retention").await else {
        return;
    };
    let (_, ids) = s.topic(config(1_000, -1, true), 1).await;
    let p = ids[0];
    s.object(&[(p, 0, 9, NOW_MS - 5_000)]).await;
    s.object(&[(p, 10, 19, NOW_MS - 500)]).await;
    s.object(&[(p, 20, 29, NOW_MS - 5_000)]).await;
    let janitor = s.janitor(1, by_hand(Duration::from_secs(60)));

    let report = janitor.run_once(NOW_MS).await;
    assert!(report.lease_held, "{report:?}");
    assert_eq!((report.chunks_deleted, report.errors), (1, 0), "{report:?}");
    assert_eq!(s.chunk_bases(p).await, [10, 20]);
    assert_eq!(s.partition(p).await, (10, 200, 30));

    // Later the middle chunk is old too; the newest, just as old, stays.
    let report = janitor.run_once(NOW_MS + 10_000).await;
    assert_eq!(report.chunks_deleted, 1, "{report:?}");
    assert_eq!(s.chunk_bases(p).await, [20]);
    assert_eq!(s.partition(p).await, (20, 100, 30));
    assert_eq!(janitor.stats().chunks_deleted, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_retention_keeps_at_least_retention_bytes() {
    // Goal: chunks go from the oldest while the partition without them still holds
    // retention.bytes, whatever their age.
    let Some(s) = setup("janitor_size_retention").await else {
        return;
    };
    let (_, ids) = s.topic(config(-1, 250, true), 1).await;
    let p = ids[0];
    for base in [0, 10, 20, 30] {
        s.object(&[(p, base, base + 9, NOW_MS)]).await;
    }
    let janitor = s.janitor(1, by_hand(Duration::from_secs(60)));
    let report = janitor.run_once(NOW_MS).await;
    assert_eq!((report.chunks_deleted, report.errors), (1, 0), "{report:?}");
    assert_eq!(s.chunk_bases(p).await, [10, 20, 30]);
    assert_eq!(s.partition(p).await, (10, 300, 40));

    // A smaller bound deletes down to it, but never the newest chunk.
    s.configs
        .write()
        .values_mut()
        .for_each(|c| c.retention_bytes = 0);
    janitor.run_once(NOW_MS).await;
    assert_eq!(s.chunk_bases(p).await, [30]);
    assert_eq!(s.partition(p).await, (30, 100, 40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_topics_keep_their_chunks() {
    // Goal: a topic with cleanup.policy=compact only keeps old and oversized chunks, and so
    // does a topic whose config the broker does not know.
    let Some(s) = setup("janitor_compact_only").await else {
        return;
    };
    let (_, compacted) = s.topic(config(0, 0, false), 1).await;
    let unknown = s.topic(config(0, 0, true), 1).await;
    s.configs.write().remove(&unknown.0);
    for p in [compacted[0], unknown.1[0]] {
        for base in [0, 10, 20] {
            s.object(&[(p, base, base + 9, 1)]).await;
        }
    }
    let janitor = s.janitor(1, by_hand(Duration::from_secs(60)));
    let report = janitor.run_once(NOW_MS).await;
    assert!(report.lease_held);
    assert_eq!((report.chunks_deleted, report.errors), (0, 0), "{report:?}");
    for p in [compacted[0], unknown.1[0]] {
        assert_eq!(s.chunk_bases(p).await, [0, 10, 20]);
        assert_eq!(s.partition(p).await, (0, 300, 30));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_below_a_deleterecords_log_start_go() {
    // Goal: once DeleteRecords moves the log start, the chunks wholly below it go on any
    // topic (compacted, unlimited retention); the chunk it falls inside stays and the log
    // start stays where DeleteRecords put it; deleting up to the end keeps the newest chunk.
    let Some(s) = setup("janitor_delete_records").await else {
        return;
    };
    let (_, ids) = s.topic(config(-1, -1, false), 1).await;
    let p = ids[0];
    for base in [0, 10, 20, 30] {
        s.object(&[(p, base, base + 9, 1)]).await;
    }
    s.admin
        .execute(
            "UPDATE partitions SET log_start_offset = 25 WHERE partition_id = $1",
            &[&p],
        )
        .await
        .unwrap();
    let janitor = s.janitor(1, by_hand(Duration::from_secs(60)));
    let report = janitor.run_once(NOW_MS).await;
    assert_eq!((report.chunks_deleted, report.errors), (2, 0), "{report:?}");
    assert_eq!(s.chunk_bases(p).await, [20, 30]);
    assert_eq!(s.partition(p).await, (25, 200, 40));

    s.admin
        .execute(
            "UPDATE partitions SET log_start_offset = 40 WHERE partition_id = $1",
            &[&p],
        )
        .await
        .unwrap();
    janitor.run_once(NOW_MS).await;
    assert_eq!(s.chunk_bases(p).await, [30]);
    assert_eq!(s.partition(p).await, (40, 100, 40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_goes_only_after_its_last_chunk_and_the_grace() {
    // Goal: an object shared by two partitions stays while either one's chunk is there;
    // once both are gone it is marked deleting but stays in the bucket for the grace; only
    // after the grace are its bytes and its row deleted. Objects still in use stay.
    let Some(s) = setup("janitor_object_grace").await else {
        return;
    };
    let grace = Duration::from_millis(1_500);
    let (_, a) = s.topic(config(1_000, -1, true), 1).await;
    let (long, b) = s.topic(config(-1, -1, true), 1).await;
    let (a, b) = (a[0], b[0]);
    let shared = s
        .object(&[(a, 0, 9, NOW_MS - 5_000), (b, 0, 9, NOW_MS - 5_000)])
        .await;
    let newer = s
        .object(&[(a, 10, 19, NOW_MS - 5_000), (b, 10, 19, NOW_MS - 5_000)])
        .await;
    let janitor = s.janitor(1, by_hand(grace));

    // Partition a's chunk goes; b's chunk keeps the object live.
    let report = janitor.run_once(NOW_MS).await;
    assert_eq!((report.chunks_deleted, report.errors), (1, 0), "{report:?}");
    assert_eq!(report.objects_marked, 0, "{report:?}");
    assert_eq!(s.state(shared).await, Some(1));
    assert!(s.stored(shared));

    // Partition b's goes too: marked, still stored through the grace.
    s.configs.write().get_mut(&long).unwrap().retention_ms = 1_000;
    let report = janitor.run_once(NOW_MS).await;
    assert_eq!((report.chunks_deleted, report.objects_marked), (1, 1));
    assert_eq!(report.objects_deleted, 0);
    assert_eq!(s.state(shared).await, Some(2));
    assert!(s.stored(shared), "deleted before the grace passed");
    let report = janitor.run_once(NOW_MS).await;
    assert_eq!(report.objects_deleted, 0);
    assert!(s.stored(shared), "deleted before the grace passed");

    tokio::time::sleep(grace + Duration::from_millis(300)).await;
    let report = janitor.run_once(NOW_MS).await;
    assert_eq!(
        (report.objects_deleted, report.errors),
        (1, 0),
        "{report:?}"
    );
    assert!(!s.stored(shared));
    assert_eq!(s.state(shared).await, None);
    assert_eq!(s.state(newer).await, Some(1));
    assert!(s.stored(newer));
    assert_eq!(janitor.stats().objects_deleted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_pending_objects_go_and_fresh_ones_stay() {
    // Goal: an object pending longer than pending_max (a PUT whose commit never came) is
    // deleted from the bucket with its row; one pending for less is left for its commit.
    let Some(s) = setup("janitor_stale_pending").await else {
        return;
    };
    let stale = s.object_row(0, "now() - interval '20 minutes'").await;
    let fresh = s.object_row(0, "now() - interval '1 minute'").await;
    let janitor = s.janitor(
        1,
        JanitorSettings {
            pending_max: Duration::from_secs(600),
            ..by_hand(Duration::from_secs(60))
        },
    );
    let report = janitor.run_once(NOW_MS).await;
    assert_eq!(
        (report.objects_marked, report.objects_deleted, report.errors),
        (1, 1, 0),
        "{report:?}"
    );
    assert!(!s.stored(stale));
    assert_eq!(s.state(stale).await, None);
    assert!(s.stored(fresh));
    assert_eq!(s.state(fresh).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_topics_lose_their_rows_and_their_own_objects() {
    // Goal: a partition with deleted_at set loses its chunks, producer states, aborted
    // transactions and row; an object only it used is deleted, one shared with a live
    // partition stays, and the live partition is untouched.
    let Some(s) = setup("janitor_deleted_topic").await else {
        return;
    };
    let (gone_topic, gone) = s.topic(config(-1, -1, true), 2).await;
    let (_, live) = s.topic(config(-1, -1, true), 1).await;
    let own = s
        .object(&[(gone[0], 0, 9, NOW_MS), (gone[1], 0, 9, NOW_MS)])
        .await;
    let own_later = s.object(&[(gone[0], 10, 19, NOW_MS)]).await;
    let shared = s
        .object(&[(gone[1], 10, 19, NOW_MS), (live[0], 0, 9, NOW_MS)])
        .await;
    for &p in &gone {
        s.admin
            .execute(
                "INSERT INTO producer_state (partition_id, producer_id, producer_epoch, recent, \
                 coordinator_epoch, last_timestamp) VALUES ($1, 7, 0, '[]', 0, 0)",
                &[&p],
            )
            .await
            .unwrap();
        s.admin
            .execute(
                "INSERT INTO aborted_txns (partition_id, producer_id, first_offset, last_offset) \
                 VALUES ($1, 7, 2, 4)",
                &[&p],
            )
            .await
            .unwrap();
    }
    s.admin
        .execute(
            "UPDATE partitions SET deleted_at = now() WHERE topic_id = $1",
            &[&gone_topic],
        )
        .await
        .unwrap();
    // No grace: the objects go in the same pass their last chunk does.
    let janitor = s.janitor(1, by_hand(Duration::ZERO));
    let report = janitor.run_once(NOW_MS).await;
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(
        (report.partitions_dropped, report.chunks_deleted),
        (2, 4),
        "{report:?}"
    );
    for &p in &gone {
        for sql in [
            "SELECT count(*) FROM partitions WHERE partition_id = $1",
            "SELECT count(*) FROM chunks WHERE partition_id = $1",
            "SELECT count(*) FROM producer_state WHERE partition_id = $1",
            "SELECT count(*) FROM aborted_txns WHERE partition_id = $1",
        ] {
            assert_eq!(s.count(sql, p).await, 0, "{sql} for {p}");
        }
    }
    for object_id in [own, own_later] {
        assert!(!s.stored(object_id));
        assert_eq!(s.state(object_id).await, None);
    }
    assert!(s.stored(shared));
    assert_eq!(s.state(shared).await, Some(1));
    assert_eq!(s.chunk_bases(live[0]).await, [0]);
    assert_eq!(s.partition(live[0]).await, (0, 100, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_janitor_works_at_a_time_and_another_takes_over() {
    // Goal: of two brokers' janitors only one holds the lease and works; when it stops
    // renewing (its broker dies), the other takes the lease within a lease period, with a
    // new epoch, and does the work the first one left.
    let Some(s) = setup("janitor_lease").await else {
        return;
    };
    let lease = Duration::from_millis(1_000);
    let settings = JanitorSettings {
        interval: Duration::from_millis(100),
        lease,
        grace: Duration::ZERO,
        ..JanitorSettings::default()
    };
    let first = s.janitor(1, settings.clone());
    let second = s.janitor(2, settings);
    let first_holds = common::wait_for("a janitor holds the lease", lease * 5, || async {
        match (first.stats().lease_held, second.stats().lease_held) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        }
    })
    .await;
    let (holder, waiter) = if first_holds {
        (first, second)
    } else {
        (second, first)
    };
    // Several passes each: the waiter keeps trying and never works.
    tokio::time::sleep(lease).await;
    let (h, w) = (holder.stats(), waiter.stats());
    assert!(h.lease_held && h.passes_worked >= 3, "{h:?}");
    assert!(!w.lease_held && w.passes >= 3, "{w:?}");
    assert_eq!(w.passes_worked, 0, "{w:?}");

    // The holder dies: it renews no more and gives nothing up.
    let epoch = h.lease_epoch;
    drop(holder);
    let stale = s.object_row(0, "now() - interval '1 hour'").await;
    let took = common::wait_for("the other janitor takes over", lease * 5, || async {
        let w = waiter.stats();
        w.lease_held.then_some(w)
    })
    .await;
    assert_eq!(took.lease_epoch, epoch + 1, "{took:?}");
    common::wait_for("the new holder works", lease * 5, || async {
        (!s.stored(stale)).then_some(())
    })
    .await;
    assert_eq!(s.state(stale).await, None);

    // A clean stop gives the lease up: a third janitor takes it at its first pass.
    waiter.stop().await;
    let third = s.janitor(3, by_hand(Duration::ZERO));
    assert!(third.run_once(NOW_MS).await.lease_held);
}

/// The produce side of the race test.
const RACE_TOPIC: Uuid = Uuid::from_u128(0xace);
const RACE_APPENDS: usize = 150;

fn race_tp(partition: i32) -> TopicPartition {
    TopicPartition {
        topic: "race".into(),
        topic_id: RACE_TOPIC,
        partition,
    }
}

fn race_batch(tag: usize) -> BytesMut {
    let records: Vec<NewRecord> = (0..3)
        .map(|i| NewRecord {
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("{tag}-{i}"))),
            timestamp_ms: NOW_MS,
        })
        .collect();
    encode_batch(&records, None, Compression::None).unwrap()
}

/// Every record of the partition from its chunks and their objects: (offset, value),
/// checking that the chunks follow one another without a gap.
async fn read_back(s: &Setup, partition_id: i64) -> Vec<(i64, String)> {
    let rows = s
        .admin
        .query(
            "SELECT object_id, position, size_bytes, base_offset, last_offset \
             FROM chunks WHERE partition_id = $1 ORDER BY base_offset",
            &[&partition_id],
        )
        .await
        .unwrap();
    let mut records = Vec::new();
    let mut expected_base = None;
    for row in rows {
        let (object_id, position, size_bytes): (i64, i64, i32) =
            (row.get(0), row.get(1), row.get(2));
        let (base_offset, last_offset): (i64, i64) = (row.get(3), row.get(4));
        if let Some(expected) = expected_base {
            assert_eq!(base_offset, expected, "chunks leave no gap");
        }
        let range = position as u64..(position + i64::from(size_bytes)) as u64;
        let mut bytes = s.bucket.get_range(object_id, range).await.unwrap().to_vec();
        assert_eq!(
            patch_offsets(&mut bytes, base_offset).unwrap(),
            last_offset + 1
        );
        for batch in whole_batches(Bytes::from(bytes)) {
            for r in decode_batch(&batch.unwrap().1).unwrap() {
                records.push((
                    r.offset,
                    String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                ));
            }
        }
        expected_base = Some(last_offset + 1);
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_commits_racing_retention_lose_nothing_above_the_log_start() {
    // Goal: while a producer commits flushes to two partitions (each commit locks both
    // rows) and a janitor applies retention to them over and over, every commit succeeds
    // (no deadlock, no failed transaction), and at the end every acknowledged record at or
    // above each partition's log start is readable from its chunks, the log start is the
    // first chunk's base offset, and size_bytes is the sum of the remaining chunks.
    let Some(s) = setup("janitor_produce_race").await else {
        return;
    };
    let mut ids = Vec::new();
    for partition in 0..2 {
        ids.push(
            s.admin
                .query_one(
                    "INSERT INTO partitions (topic_id, partition) VALUES ($1, $2) \
                     RETURNING partition_id",
                    &[&RACE_TOPIC, &partition],
                )
                .await
                .unwrap()
                .get::<_, i64>(0),
        );
    }
    // Keeps about the newest few chunks of each partition.
    s.configs.write().insert(RACE_TOPIC, config(-1, 600, true));
    let session = common::session(&s.url);
    let appender = Appender::start(
        Arc::clone(&session),
        s.bucket.clone(),
        Arc::new(PartitionIds::new(session)),
        AppendSettings {
            batch_window: Duration::from_millis(2),
            ..AppendSettings::default()
        },
        None,
    );
    appender.set_topic_config(RACE_TOPIC, LogConfig::default());
    let janitor = Arc::new(s.janitor(1, by_hand(Duration::ZERO)));

    let cleaning = {
        let janitor = Arc::clone(&janitor);
        tokio::spawn(async move {
            let mut reports = Vec::new();
            loop {
                let report = janitor.run_once(NOW_MS).await;
                reports.push(report);
                if Arc::strong_count(&janitor) == 1 {
                    return reports;
                }
            }
        })
    };
    let producing = async {
        let mut acked: Vec<Vec<(i64, String)>> = vec![Vec::new(), Vec::new()];
        for tag in 0..RACE_APPENDS {
            let writes = (0..2)
                .map(|p| PartitionWrite {
                    tp: race_tp(p),
                    records: race_batch(tag),
                })
                .collect();
            let results = appender.append(writes, Acks::All, NOW_MS).await;
            for (p, result) in results.into_iter().enumerate() {
                let acked_write = result.unwrap_or_else(|e| panic!("append {tag}: {e:?}"));
                for i in 0..3 {
                    acked[p].push((acked_write.base_offset + i, format!("{tag}-{i}")));
                }
            }
        }
        acked
    };
    let acked = tokio::time::timeout(Duration::from_secs(60), producing)
        .await
        .expect("the produce calls finished: nothing deadlocked");
    drop(janitor);
    let reports = tokio::time::timeout(Duration::from_secs(30), cleaning)
        .await
        .expect("the janitor's passes finished")
        .unwrap();
    let deleted: u64 = reports.iter().map(|r| r.chunks_deleted).sum();
    let errors: u64 = reports.iter().map(|r| r.errors).sum();
    assert_eq!(errors, 0, "{reports:?}");
    assert!(deleted > 0, "retention ran alongside the commits");

    for (p, &partition_id) in ids.iter().enumerate() {
        let (log_start, size_bytes, next_offset) = s.partition(partition_id).await;
        assert_eq!(next_offset, 3 * RACE_APPENDS as i64);
        let bases = s.chunk_bases(partition_id).await;
        assert_eq!(bases.first().copied(), Some(log_start), "partition {p}");
        let chunk_bytes = s
            .count(
                "SELECT coalesce(sum(size_bytes), 0)::bigint FROM chunks WHERE partition_id = $1",
                partition_id,
            )
            .await;
        assert_eq!(size_bytes, chunk_bytes, "partition {p}");
        assert!(log_start > 0, "partition {p} was never cleaned");
        let kept: Vec<(i64, String)> = acked[p]
            .iter()
            .filter(|(offset, _)| *offset >= log_start)
            .cloned()
            .collect();
        assert_eq!(read_back(&s, partition_id).await, kept, "partition {p}");
    }
}
