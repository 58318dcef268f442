//! The fetch path (`Reader`) against a real PostgreSQL and a bucket in a directory, with
//! data written the way the produce path writes it: an object of chunks PUT first, then
//! one transaction that inserts its `objects` and `chunks` rows, moves the partitions'
//! next offsets and notifies `weir_appended`.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};
use tempfile::TempDir;
use tokio_postgres::Client;
use uuid::Uuid;
use weir_cluster::fetch::disk_cache::FILE_BLOCK_BYTES;
use weir_cluster::fetch::{DiskCache, ReadSettings, Reader};
use weir_cluster::notify::{Listener, CHANNEL_APPENDED};
use weir_cluster::object::{ObjectBuilder, PartitionKey};
use weir_cluster::partitions::PartitionIds;
use weir_cluster::pg::Connector;
use weir_cluster::Bucket;
use weir_log::batch::{assign_base_offset, crc_matches, encode_batch, BatchHeader, NewRecord};
use weir_log::store::{PartitionRead, ReadSpec, StoreError, TopicPartition};
use weir_log::LogError;

/// How long a watcher may take to wake after a commit.
const WOKEN_WITHIN: Duration = Duration::from_secs(5);
/// The listener's poll period: longer than any wait for a watcher, so a watcher woken
/// in time was woken by the notification, not by the refresh on the poll.
const POLL: Duration = Duration::from_secs(30);
/// Plenty for any read here.
const BYTES_MAX: usize = 1 << 20;

/// A test's database, bucket and connection.
struct Cluster {
    url: String,
    client: Client,
    bucket: Bucket,
    _dir: TempDir,
}

/// One batch of `records` as a producer sends it, except that its base offset and leader
/// epoch hold garbage (999, 7): the reader must write the real ones.
fn batch(records: &[(&str, &str, i64)]) -> Vec<u8> {
    let records: Vec<NewRecord> = records
        .iter()
        .map(|(k, v, ts)| NewRecord {
            key: Some(Bytes::copy_from_slice(k.as_bytes())),
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            timestamp_ms: *ts,
        })
        .collect();
    let mut batch = encode_batch(&records, None, Compression::None)
        .unwrap()
        .to_vec();
    assign_base_offset(&mut batch, 999, 7);
    batch
}

/// A batch of `count` records of `value_bytes` each, keys `prefix0`, `prefix1`, ...
fn sized_batch(prefix: &str, count: usize, value_bytes: usize) -> Vec<u8> {
    let keys: Vec<String> = (0..count).map(|i| format!("{prefix}{i}")).collect();
    let value = "x".repeat(value_bytes);
    let records: Vec<(&str, &str, i64)> = keys
        .iter()
        .map(|k| (k.as_str(), value.as_str(), 1000))
        .collect();
    batch(&records)
}

impl Cluster {
    async fn start(test: &str) -> Option<Cluster> {
        let url = common::database(test).await?;
        common::migrated(&url).await;
        let dir = tempfile::tempdir().unwrap();
        let bucket = Bucket::from_url(&format!("file://{}", dir.path().display())).unwrap();
        Some(Cluster {
            client: common::connect(&url).await,
            url,
            bucket,
            _dir: dir,
        })
    }

    fn reader(&self, listener: Option<&Listener>, settings: ReadSettings) -> Reader {
        let session = common::session(&self.url);
        Reader::start(
            session.clone(),
            self.bucket.clone(),
            Arc::new(PartitionIds::new(session)),
            listener.map(Listener::subscribe),
            settings,
        )
    }

    fn listener(&self) -> Listener {
        Listener::spawn(
            Connector::new(&self.url).unwrap(),
            &[CHANNEL_APPENDED],
            POLL,
        )
    }

    /// A new partition's row.
    async fn partition(&self, index: i32) -> (TopicPartition, i64) {
        let tp = TopicPartition {
            topic: "orders".into(),
            topic_id: Uuid::new_v4(),
            partition: index,
        };
        let id: i64 = self
            .client
            .query_one(
                "INSERT INTO partitions (topic_id, partition) VALUES ($1, $2) RETURNING partition_id",
                &[&tp.topic_id, &tp.partition],
            )
            .await
            .unwrap()
            .get(0);
        (tp, id)
    }

    /// Commits one object holding one chunk per entry of `chunks` (each the batches given,
    /// for the partition given), as the produce path does; returns the object's id and
    /// bytes.
    async fn append(&mut self, chunks: &[(&TopicPartition, i64, Vec<Vec<u8>>)]) -> (i64, Bytes) {
        let mut builder = ObjectBuilder::new();
        let mut entries = Vec::new();
        for (tp, id, batches) in chunks {
            let key = PartitionKey {
                topic_id: tp.topic_id,
                partition: tp.partition,
            };
            entries.push((*id, *builder.add_chunk(key, &batches.concat()).unwrap()));
        }
        let (object, _) = builder.finish();
        let object = Bytes::from(object);
        let object_id: i64 = self
            .client
            .query_one("SELECT nextval('object_ids')", &[])
            .await
            .unwrap()
            .get(0);
        self.bucket.put(object_id, object.clone()).await.unwrap();
        let key = self.bucket.object_key(object_id).to_string();
        let txn = self.client.transaction().await.unwrap();
        txn.execute(
            "INSERT INTO objects (object_id, key, size_bytes, state) VALUES ($1, $2, $3, 1)",
            &[&object_id, &key, &(object.len() as i64)],
        )
        .await
        .unwrap();
        let mut payload = format!("{object_id};");
        for (id, entry) in entries {
            let base: i64 = txn
                .query_one(
                    "SELECT next_offset FROM partitions WHERE partition_id = $1 FOR UPDATE",
                    &[&id],
                )
                .await
                .unwrap()
                .get(0);
            let next = base + entry.offset_count();
            txn.execute(
                "INSERT INTO chunks (partition_id, base_offset, last_offset, object_id, position, \
                 size_bytes, batch_count, max_timestamp, offsets_in_object) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, false)",
                &[
                    &id,
                    &base,
                    &(next - 1),
                    &object_id,
                    &(entry.position as i64),
                    &(entry.size_bytes as i32),
                    &(entry.batch_count as i32),
                    &entry.max_timestamp,
                ],
            )
            .await
            .unwrap();
            txn.execute(
                "UPDATE partitions SET next_offset = $2, size_bytes = size_bytes + $3 \
                 WHERE partition_id = $1",
                &[&id, &next, &(entry.size_bytes as i64)],
            )
            .await
            .unwrap();
            payload.push_str(&format!("{id}:{next},"));
        }
        txn.execute(
            "SELECT pg_notify('weir_appended', $1)",
            &[&payload.trim_end_matches(',')],
        )
        .await
        .unwrap();
        txn.commit().await.unwrap();
        (object_id, object)
    }

    async fn execute(&self, sql: &str, id: i64) {
        self.client.execute(sql, &[&id]).await.unwrap();
    }
}

fn spec(tp: &TopicPartition, fetch_offset: i64, partition_max_bytes: usize) -> ReadSpec {
    ReadSpec {
        tp: tp.clone(),
        fetch_offset,
        partition_max_bytes,
        read_committed: false,
    }
}

async fn read_one(reader: &Reader, spec: ReadSpec) -> PartitionRead {
    reader
        .read(&[spec], BYTES_MAX)
        .await
        .pop()
        .unwrap()
        .expect("a known partition")
}

fn records(read: &PartitionRead) -> &Bytes {
    read.records.as_ref().expect("records, not an error")
}

/// The batches' headers, each checked whole with a valid CRC.
fn headers(bytes: &Bytes) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let header = BatchHeader::parse(&bytes[at..]).unwrap();
        assert!(
            crc_matches(&header, &bytes[at..at + header.size_bytes]),
            "batch at byte {at}: the CRC does not match"
        );
        at += header.size_bytes;
        out.push(header);
    }
    assert_eq!(at, bytes.len(), "whole batches only");
    out
}

fn decoded(bytes: &Bytes) -> Vec<Record> {
    let mut buf = bytes.clone();
    RecordBatchDecoder::decode_all(&mut buf)
        .unwrap()
        .into_iter()
        .flat_map(|set| set.records)
        .collect()
}

fn base_offsets(bytes: &Bytes) -> Vec<i64> {
    headers(bytes).iter().map(|h| h.base_offset).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_return_real_offsets_epoch_zero_and_the_batch_holding_the_fetch_offset() {
    // Goal: batches stored with garbage base offsets and leader epochs come back with
    // their real, contiguous offsets across chunks and objects, leader epoch 0 and valid
    // CRCs, keys and values intact; a read from inside a batch starts with that batch.
    let Some(mut cluster) = Cluster::start("fetch_real_offsets").await else {
        return;
    };
    let (tp, id) = cluster.partition(0).await;
    cluster
        .append(&[(
            &tp,
            id,
            vec![
                batch(&[("a", "1", 10), ("b", "2", 11), ("c", "3", 12)]),
                batch(&[("d", "4", 13), ("e", "5", 14)]),
            ],
        )])
        .await;
    cluster
        .append(&[(&tp, id, vec![batch(&[("f", "6", 15)])])])
        .await;
    let reader = cluster.reader(None, ReadSettings::default());

    let read = read_one(&reader, spec(&tp, 0, BYTES_MAX)).await;
    assert_eq!(
        (
            read.high_watermark,
            read.log_start_offset,
            read.last_stable_offset
        ),
        (6, 0, 6)
    );
    assert_eq!(base_offsets(records(&read)), [0, 3, 5]);
    let got = decoded(records(&read));
    let seen: Vec<(i64, &[u8], &[u8], i32)> = got
        .iter()
        .map(|r| {
            (
                r.offset,
                &r.key.as_ref().unwrap()[..],
                &r.value.as_ref().unwrap()[..],
                r.partition_leader_epoch,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (0, &b"a"[..], &b"1"[..], 0),
            (1, b"b", b"2", 0),
            (2, b"c", b"3", 0),
            (3, b"d", b"4", 0),
            (4, b"e", b"5", 0),
            (5, b"f", b"6", 0),
        ]
    );

    for (fetch_offset, first_base) in [(1, 0), (4, 3), (5, 5)] {
        let read = read_one(&reader, spec(&tp, fetch_offset, BYTES_MAX)).await;
        assert_eq!(
            base_offsets(records(&read)).first(),
            Some(&first_base),
            "from {fetch_offset}"
        );
    }
    let at_end = read_one(&reader, spec(&tp, 6, BYTES_MAX)).await;
    assert!(records(&at_end).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_limits_keep_whole_batches_and_send_the_first_one_whole() {
    // Goal: a partition's limit and the response's total both cut between whole batches;
    // the first batch of a response goes whole even above both limits, but a later
    // partition's first batch that does not fit the total is left for the next fetch.
    let Some(mut cluster) = Cluster::start("fetch_byte_limits").await else {
        return;
    };
    let (p0, id0) = cluster.partition(0).await;
    let (p1, id1) = cluster.partition(1).await;
    // One chunk of three batches for p0, three chunks of one batch for p1.
    let b = |p: &str| sized_batch(p, 4, 100);
    let batch_bytes = b("k").len();
    cluster
        .append(&[
            (&p0, id0, vec![b("a"), b("b"), b("c")]),
            (&p1, id1, vec![b("d")]),
        ])
        .await;
    cluster.append(&[(&p1, id1, vec![b("e")])]).await;
    cluster.append(&[(&p1, id1, vec![b("f")])]).await;
    let reader = cluster.reader(None, ReadSettings::default());

    let both = |max0, max1| [spec(&p0, 0, max0), spec(&p1, 0, max1)];
    let count = |read: &Option<PartitionRead>| {
        let bytes = records(read.as_ref().unwrap());
        assert_eq!(bytes.len() % batch_bytes, 0);
        headers(bytes).len()
    };

    // The first batch whole, though above both limits; nothing more in the response.
    let reads = reader.read(&both(1, 1), 1).await;
    assert_eq!((count(&reads[0]), count(&reads[1])), (1, 0));
    // Per-partition limits, with room in the total.
    let reads = reader
        .read(&both(2 * batch_bytes, 2 * batch_bytes + 1), BYTES_MAX)
        .await;
    assert_eq!((count(&reads[0]), count(&reads[1])), (2, 2));
    let reads = reader.read(&both(1, 3 * batch_bytes), BYTES_MAX).await;
    assert_eq!((count(&reads[0]), count(&reads[1])), (1, 3));
    // The total: p0 takes two batches, p1 what is left, whole batches only.
    let reads = reader
        .read(
            &both(BYTES_MAX, BYTES_MAX),
            3 * batch_bytes + batch_bytes / 2,
        )
        .await;
    assert_eq!((count(&reads[0]), count(&reads[1])), (3, 0));
    let reads = reader
        .read(
            &both(2 * batch_bytes, BYTES_MAX),
            3 * batch_bytes + batch_bytes / 2,
        )
        .await;
    assert_eq!((count(&reads[0]), count(&reads[1])), (2, 1));
    // The total cuts inside a chunk of several batches.
    let reads = reader
        .read(
            &[spec(&p1, 0, batch_bytes), spec(&p0, 0, BYTES_MAX)],
            2 * batch_bytes + batch_bytes / 2,
        )
        .await;
    assert_eq!((count(&reads[0]), count(&reads[1])), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_outside_the_log_are_out_of_range() {
    // Goal: a fetch offset below the log start or above the high watermark is
    // OffsetOutOfRange with the log's bounds; the bounds themselves read fine.
    let Some(mut cluster) = Cluster::start("fetch_out_of_range").await else {
        return;
    };
    let (tp, id) = cluster.partition(0).await;
    cluster
        .append(&[(
            &tp,
            id,
            vec![sized_batch("a", 3, 10), sized_batch("b", 3, 10)],
        )])
        .await;
    cluster
        .execute(
            "UPDATE partitions SET log_start_offset = 3 WHERE partition_id = $1",
            id,
        )
        .await;
    let reader = cluster.reader(None, ReadSettings::default());
    for fetch_offset in [2, 7] {
        let read = read_one(&reader, spec(&tp, fetch_offset, BYTES_MAX)).await;
        match read.records {
            Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: 3,
                log_end_offset: 6,
            }) => assert_eq!(offset, fetch_offset),
            other => panic!("from {fetch_offset}: {other:?}"),
        }
    }
    let read = read_one(&reader, spec(&tp, 3, BYTES_MAX)).await;
    assert_eq!(base_offsets(records(&read)), [3]);
    assert_eq!(read.log_start_offset, 3);
    let read = read_one(&reader, spec(&tp, 6, BYTES_MAX)).await;
    assert!(records(&read).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_up_fetch_asks_nothing_and_another_brokers_commit_wakes_its_watch() {
    // Goal: once the reader follows the LISTEN connection, a fetch at the cached high
    // watermark is answered with no statement and no GET; another broker's commit wakes
    // the partition's watcher through the real notification, moves the cached high
    // watermark, and the next fetch returns the new batch.
    let Some(mut cluster) = Cluster::start("fetch_caught_up").await else {
        return;
    };
    let (tp, id) = cluster.partition(0).await;
    cluster
        .append(&[(&tp, id, vec![sized_batch("a", 2, 10)])])
        .await;
    let listener = cluster.listener();
    let reader = cluster.reader(
        Some(&listener),
        ReadSettings {
            signals_silent_max: 2 * POLL,
            ..ReadSettings::default()
        },
    );
    // Fresh once a read (or the refresh that follows the LISTEN connection) has seen the
    // row in the connection's generation: then reads at the end stop asking.
    common::wait_for(
        "a fetch at the end answered from the cache",
        WOKEN_WITHIN,
        || async {
            let before = reader.stats().read_queries;
            let read = read_one(&reader, spec(&tp, 2, BYTES_MAX)).await;
            assert!(records(&read).is_empty());
            (reader.stats().read_queries == before).then_some(())
        },
    )
    .await;
    let before = reader.stats();
    for _ in 0..20 {
        let read = read_one(&reader, spec(&tp, 2, BYTES_MAX)).await;
        assert_eq!((read.high_watermark, records(&read).len()), (2, 0));
    }
    let after = reader.stats();
    assert_eq!(
        (after.read_queries, after.gets),
        (before.read_queries, before.gets),
        "caught-up fetches went to PostgreSQL or the bucket"
    );

    let notify = reader.watch(&tp).expect("a partition the reader has read");
    let woken = notify.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    cluster
        .append(&[(&tp, id, vec![sized_batch("b", 3, 10)])])
        .await;
    tokio::time::timeout(WOKEN_WITHIN, woken)
        .await
        .expect("the watch woke on the commit's notification");
    assert_eq!(reader.status(&tp).unwrap().offsets.high_watermark, 5);
    let read = read_one(&reader, spec(&tp, 2, BYTES_MAX)).await;
    assert_eq!(base_offsets(records(&read)), [2]);
    assert_eq!(read.high_watermark, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_commit_wakes_the_watch_and_without_signals_every_read_asks() {
    // Goal: `note_committed` (this broker's own commit) moves the cached high watermark
    // and wakes the watcher at once; a reader that follows no signals never trusts its
    // cache, so each read at the end asks PostgreSQL.
    let Some(mut cluster) = Cluster::start("fetch_note_committed").await else {
        return;
    };
    let (tp, id) = cluster.partition(0).await;
    cluster
        .append(&[(&tp, id, vec![sized_batch("a", 2, 10)])])
        .await;
    let reader = cluster.reader(None, ReadSettings::default());
    assert!(reader.watch(&tp).is_none(), "not read yet");
    for round in 1..=3 {
        read_one(&reader, spec(&tp, 2, BYTES_MAX)).await;
        assert_eq!(reader.stats().read_queries, round);
    }
    let notify = reader.watch(&tp).unwrap();
    let woken = notify.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    reader.note_committed(id, 9);
    tokio::time::timeout(Duration::from_millis(100), woken)
        .await
        .expect("note_committed woke the watch");
    assert_eq!(reader.status(&tp).unwrap().offsets.high_watermark, 9);
    // An older commit heard late does not move it back.
    reader.note_committed(id, 4);
    assert_eq!(reader.status(&tp).unwrap().offsets.high_watermark, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_saves_gets_within_its_bound_and_keeps_written_objects() {
    // Goal: a chunk read twice is got once; the cache holds no more than its bound,
    // evicting the least recently used chunk (read again, it is got again); an object
    // handed to `cache_object` by its writer is read with no GET at all.
    let Some(mut cluster) = Cluster::start("fetch_cache").await else {
        return;
    };
    let (tp, id) = cluster.partition(0).await;
    let chunk = sized_batch("a", 10, 100);
    let chunk_bytes = chunk.len();
    for _ in 0..4 {
        cluster.append(&[(&tp, id, vec![chunk.clone()])]).await;
    }
    let bound = chunk_bytes * 5 / 2;
    let reader = cluster.reader(
        None,
        ReadSettings {
            memory_cache_bytes_max: bound,
            ..ReadSettings::default()
        },
    );
    let offsets_per_chunk = 10;
    read_one(&reader, spec(&tp, 0, 1)).await;
    read_one(&reader, spec(&tp, 0, 1)).await;
    let stats = reader.stats();
    assert_eq!(
        (stats.gets, stats.cache_hits, stats.cache_misses),
        (1, 1, 1)
    );
    assert_eq!(stats.bytes_got, chunk_bytes as u64);
    for k in 1..4 {
        read_one(&reader, spec(&tp, k * offsets_per_chunk, 1)).await;
        assert!(reader.stats().cache_bytes <= bound as u64);
    }
    assert_eq!(reader.stats().gets, 4);
    assert_eq!(reader.stats().cache_bytes, 2 * chunk_bytes as u64);
    read_one(&reader, spec(&tp, 0, 1)).await;
    assert_eq!(reader.stats().gets, 5, "the first chunk was evicted");

    let (object_id, object) = cluster
        .append(&[(&tp, id, vec![sized_batch("b", 2, 10)])])
        .await;
    reader.cache_object(object_id, object);
    let gets = reader.stats().gets;
    let read = read_one(&reader, spec(&tp, 4 * offsets_per_chunk, BYTES_MAX)).await;
    assert_eq!(base_offsets(records(&read)), [40]);
    assert_eq!(decoded(records(&read))[1].offset, 41);
    assert_eq!(reader.stats().gets, gets, "read from the written object");
    assert!(reader.stats().cache_bytes <= bound as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_cache_serves_what_memory_evicted_and_what_the_bucket_lost() {
    // Goal: with a memory cache too small to keep anything, a chunk read once is read
    // again from the disk cache with no GET, with the same bytes; with the object deleted
    // from the bucket, the disk cache still serves it; the disk cache holds no more than
    // its bound, and a chunk it evicted is got from the bucket again.
    let Some(mut cluster) = Cluster::start("fetch_disk_cache").await else {
        return;
    };
    let (tp, id) = cluster.partition(0).await;
    let chunk = sized_batch("a", 10, 100);
    let mut objects = Vec::new();
    for _ in 0..3 {
        objects.push(cluster.append(&[(&tp, id, vec![chunk.clone()])]).await.0);
    }
    let dir = tempfile::tempdir().unwrap();
    // Room for two chunks and their checksums, each file weighed in whole blocks.
    let file_bytes = (chunk.len() as u64 + 4).div_ceil(FILE_BLOCK_BYTES) * FILE_BLOCK_BYTES;
    let disk = DiskCache::open(dir.path(), 2 * file_bytes).unwrap();
    let reader = cluster.reader(
        None,
        ReadSettings {
            memory_cache_bytes_max: 1,
            disk_cache: Some(Arc::clone(&disk)),
            ..ReadSettings::default()
        },
    );
    let stored = |n: u64| {
        let disk = Arc::clone(&disk);
        async move {
            common::wait_for("the chunks on disk", WOKEN_WITHIN, || async {
                (disk.stored() >= n).then_some(())
            })
            .await
        }
    };
    let first = read_one(&reader, spec(&tp, 0, 1)).await;
    assert_eq!(reader.stats().gets, 1);
    stored(1).await;
    let again = read_one(&reader, spec(&tp, 0, 1)).await;
    assert_eq!(records(&again), records(&first));
    let stats = reader.stats();
    assert_eq!((stats.gets, stats.disk_cache_hits), (1, 1), "{stats:?}");

    let object_file = cluster
        ._dir
        .path()
        .join(cluster.bucket.object_key(objects[0]).to_string());
    std::fs::remove_file(object_file).unwrap();
    let lost = read_one(&reader, spec(&tp, 0, 1)).await;
    assert_eq!(records(&lost), records(&first), "served from disk");

    // Chunks 1 and 2 come in; 0, used longest ago, goes.
    read_one(&reader, spec(&tp, 10, 1)).await;
    stored(2).await;
    read_one(&reader, spec(&tp, 20, 1)).await;
    stored(3).await;
    assert_eq!(reader.stats().disk_cache_bytes, 2 * file_bytes);
    let gets = reader.stats().gets;
    read_one(&reader, spec(&tp, 10, 1)).await;
    assert_eq!(
        reader.stats().gets,
        gets,
        "the second chunk is still on disk"
    );
    let evicted = reader
        .read(&[spec(&tp, 0, 1)], BYTES_MAX)
        .await
        .pop()
        .unwrap()
        .unwrap();
    assert!(
        evicted.records.is_err(),
        "the first chunk was evicted from disk, and its object is gone from the bucket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_object_fails_only_its_partition() {
    // Goal: an object gone from the bucket turns the read of its partition into a
    // storage error (retriable for clients) while the other partitions of the same
    // fetch read as usual.
    let Some(mut cluster) = Cluster::start("fetch_missing_object").await else {
        return;
    };
    let (p0, id0) = cluster.partition(0).await;
    let (p1, id1) = cluster.partition(1).await;
    let (lost, _) = cluster
        .append(&[(&p0, id0, vec![sized_batch("a", 2, 10)])])
        .await;
    cluster
        .append(&[(&p1, id1, vec![sized_batch("b", 2, 10)])])
        .await;
    cluster.bucket.delete(lost).await.unwrap();
    let reader = cluster.reader(None, ReadSettings::default());
    let reads = reader
        .read(
            &[spec(&p0, 0, BYTES_MAX), spec(&p1, 0, BYTES_MAX)],
            BYTES_MAX,
        )
        .await;
    let failed = reads[0].as_ref().unwrap();
    match &failed.records {
        Err(LogError::Io(e)) => assert!(e.to_string().contains("bucket"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(failed.high_watermark, 2);
    assert_eq!(base_offsets(records(reads[1].as_ref().unwrap())), [0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_stops_at_the_last_stable_offset_with_the_aborted_transactions() {
    // Goal: a read_committed read returns no batch starting at or past the first
    // unstable offset, and carries exactly the aborted transactions overlapping what it
    // returns; a read_uncommitted read returns everything and no aborted list.
    let Some(mut cluster) = Cluster::start("fetch_read_committed").await else {
        return;
    };
    let (tp, id) = cluster.partition(0).await;
    let two = |p: &str| sized_batch(p, 2, 10);
    cluster
        .append(&[(&tp, id, vec![two("a"), two("b"), two("c"), two("d")])])
        .await;
    cluster
        .execute(
            "UPDATE partitions SET first_unstable_offset = 6 WHERE partition_id = $1",
            id,
        )
        .await;
    cluster
        .execute(
            "INSERT INTO aborted_txns (partition_id, producer_id, first_offset, last_offset) \
             VALUES ($1, 5, 0, 1), ($1, 6, 2, 3), ($1, 7, 4, 9)",
            id,
        )
        .await;
    let reader = cluster.reader(None, ReadSettings::default());
    let committed = |fetch_offset| ReadSpec {
        read_committed: true,
        ..spec(&tp, fetch_offset, BYTES_MAX)
    };
    let read = read_one(&reader, committed(2)).await;
    assert_eq!(base_offsets(records(&read)), [2, 4]);
    assert_eq!((read.last_stable_offset, read.high_watermark), (6, 8));
    let aborted: Vec<(i64, i64)> = read
        .aborted
        .unwrap()
        .iter()
        .map(|a| (a.producer_id, a.first_offset))
        .collect();
    assert_eq!(aborted, [(6, 2), (7, 4)]);
    let one_batch = ReadSpec {
        partition_max_bytes: 1,
        ..committed(2)
    };
    let read = read_one(&reader, one_batch).await;
    assert_eq!(base_offsets(records(&read)), [2]);
    assert_eq!(
        read.aborted.unwrap()[..].len(),
        1,
        "only the one overlapping offsets 2..=3"
    );
    let read = read_one(&reader, committed(0)).await;
    assert_eq!(base_offsets(records(&read)), [0, 2, 4]);
    assert_eq!(read.aborted.unwrap().len(), 3);
    let read = read_one(&reader, committed(6)).await;
    assert!(records(&read).is_empty());
    let read = read_one(&reader, spec(&tp, 2, BYTES_MAX)).await;
    assert_eq!(base_offsets(records(&read)), [2, 4, 6]);
    assert!(read.aborted.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_found_by_timestamp_above_the_log_start() {
    // Goal: ListOffsets by time answers the first record (in offset order) whose
    // timestamp reaches the one asked for, across chunks and with timestamps out of
    // order inside a batch; nothing when every record is older; the largest timestamp's
    // first record; and never a record below the log start.
    let Some(mut cluster) = Cluster::start("fetch_timestamps").await else {
        return;
    };
    let (tp, id) = cluster.partition(0).await;
    cluster
        .append(&[(
            &tp,
            id,
            vec![batch(&[("a", "", 100), ("b", "", 101), ("c", "", 102)])],
        )])
        .await;
    cluster
        .append(&[(
            &tp,
            id,
            vec![batch(&[
                ("d", "", 200),
                ("e", "", 150),
                ("f", "", 300),
                ("g", "", 300),
            ])],
        )])
        .await;
    let reader = cluster.reader(None, ReadSettings::default());
    let at = |offset, timestamp| Some(weir_log::store::TimestampedOffset { offset, timestamp });
    for (asked, expected) in [
        (0, at(0, 100)),
        (101, at(1, 101)),
        (103, at(3, 200)),
        (150, at(3, 200)),
        (250, at(5, 300)),
        (301, None),
    ] {
        assert_eq!(
            reader.offset_for_timestamp(&tp, asked).await.unwrap(),
            expected,
            "for {asked}"
        );
    }
    assert_eq!(reader.max_timestamp_offset(&tp).await.unwrap(), at(5, 300));
    cluster
        .execute(
            "UPDATE partitions SET log_start_offset = 2 WHERE partition_id = $1",
            id,
        )
        .await;
    assert_eq!(
        reader.offset_for_timestamp(&tp, 0).await.unwrap(),
        at(2, 102)
    );
    cluster
        .execute(
            "UPDATE partitions SET log_start_offset = 6 WHERE partition_id = $1",
            id,
        )
        .await;
    assert_eq!(
        reader.offset_for_timestamp(&tp, 0).await.unwrap(),
        at(6, 300)
    );
    assert_eq!(reader.max_timestamp_offset(&tp).await.unwrap(), at(6, 300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_deleted_partitions_are_not_held() {
    // Goal: a partition with no row, or whose row is marked deleted, reads as `None` and
    // is UnknownPartition for the admin calls, while a live one in the same read reads.
    let Some(mut cluster) = Cluster::start("fetch_unknown").await else {
        return;
    };
    let (live, live_id) = cluster.partition(0).await;
    let (gone, gone_id) = cluster.partition(1).await;
    cluster
        .append(&[
            (&live, live_id, vec![sized_batch("a", 1, 1)]),
            (&gone, gone_id, vec![sized_batch("b", 1, 1)]),
        ])
        .await;
    let reader = cluster.reader(None, ReadSettings::default());
    assert!(read_one(&reader, spec(&gone, 0, BYTES_MAX))
        .await
        .records
        .is_ok());
    cluster
        .execute(
            "UPDATE partitions SET deleted_at = now() WHERE partition_id = $1",
            gone_id,
        )
        .await;
    let never = TopicPartition {
        topic: "never".into(),
        topic_id: Uuid::new_v4(),
        partition: 0,
    };
    let reads = reader
        .read(
            &[
                spec(&never, 0, BYTES_MAX),
                spec(&gone, 0, BYTES_MAX),
                spec(&live, 0, BYTES_MAX),
            ],
            BYTES_MAX,
        )
        .await;
    assert!(reads[0].is_none());
    assert!(reads[1].is_none());
    assert_eq!(base_offsets(records(reads[2].as_ref().unwrap())), [0]);
    for tp in [&never, &gone] {
        assert!(matches!(
            reader.offsets(tp).await,
            Err(StoreError::UnknownPartition)
        ));
        assert!(matches!(
            reader.offset_for_timestamp(tp, 0).await,
            Err(StoreError::UnknownPartition)
        ));
    }
    assert_eq!(reader.offsets(&live).await.unwrap().high_watermark, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_postgresql_fails_the_read_in_bounded_time_with_a_storage_error() {
    // Goal: when PostgreSQL stops answering, a read that needs it returns within the
    // statement bound with a storage error (retriable for clients) in each partition it
    // could not read, keeping the offsets last seen; once PostgreSQL answers again, reads
    // succeed again with no restart.
    let Some(mut cluster) = Cluster::start("fetch_hung_postgres").await else {
        return;
    };
    let (tp, id) = cluster.partition(0).await;
    cluster
        .append(&[(&tp, id, vec![sized_batch("a", 2, 10)])])
        .await;
    let relay = common::Relay::start(&cluster.url).await;
    let session = common::session(&relay.url);
    let statement_timeout = Duration::from_millis(500);
    let reader = Reader::start(
        session.clone(),
        cluster.bucket.clone(),
        Arc::new(PartitionIds::new(session)),
        None,
        ReadSettings {
            statement_timeout,
            ..ReadSettings::default()
        },
    );
    assert_eq!(
        read_one(&reader, spec(&tp, 0, BYTES_MAX))
            .await
            .high_watermark,
        2
    );
    relay.freeze();
    let started = tokio::time::Instant::now();
    let read = read_one(&reader, spec(&tp, 0, BYTES_MAX)).await;
    assert!(
        started.elapsed() < 4 * statement_timeout,
        "{:?}",
        started.elapsed()
    );
    match &read.records {
        Err(LogError::Io(e)) => assert!(e.to_string().contains("PostgreSQL"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(read.high_watermark, 2, "the offsets last seen");
    relay.thaw();
    common::wait_for(
        "a read after PostgreSQL answers again",
        WOKEN_WITHIN,
        || async {
            let read = read_one(&reader, spec(&tp, 0, BYTES_MAX)).await;
            read.records.is_ok().then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_offsets_are_not_trusted_once_the_signals_go_silent() {
    // Goal: a reader whose signals have been silent longer than `signals_silent_max`
    // (its listener hung, say) asks PostgreSQL again even for a caught-up fetch, and
    // trusts its cache again once signals flow.
    let Some(mut cluster) = Cluster::start("fetch_silent_signals").await else {
        return;
    };
    let (tp, id) = cluster.partition(0).await;
    cluster
        .append(&[(&tp, id, vec![sized_batch("a", 2, 10)])])
        .await;
    let listener = cluster.listener();
    let silent_max = Duration::from_secs(1);
    let reader = cluster.reader(
        Some(&listener),
        ReadSettings {
            signals_silent_max: silent_max,
            ..ReadSettings::default()
        },
    );
    let asks = |fetch_offset| {
        let reader = &reader;
        let tp = &tp;
        async move {
            let before = reader.stats().read_queries;
            read_one(reader, spec(tp, fetch_offset, BYTES_MAX)).await;
            reader.stats().read_queries > before
        }
    };
    common::wait_for(
        "a caught-up fetch answered from the cache",
        WOKEN_WITHIN,
        || async { (!asks(2).await).then_some(()) },
    )
    .await;
    tokio::time::sleep(silent_max + Duration::from_millis(200)).await;
    assert!(asks(2).await, "trusted a cache whose signals went silent");
    cluster
        .append(&[(&tp, id, vec![sized_batch("b", 1, 10)])])
        .await;
    common::wait_for("the commit's notification", WOKEN_WITHIN, || async {
        (reader.status(&tp).unwrap().offsets.high_watermark == 3).then_some(())
    })
    .await;
    assert!(
        asks(2).await,
        "the new batch is found through PostgreSQL's index"
    );
    assert!(!asks(3).await, "signals flow again: the cache answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_written_together_are_got_together() {
    // Goal: a fetch of several partitions whose chunks one flush wrote side by side in
    // one object costs one ranged GET, and each partition still gets exactly its own
    // batches.
    let Some(mut cluster) = Cluster::start("fetch_coalesced").await else {
        return;
    };
    let (p0, id0) = cluster.partition(0).await;
    let (p1, id1) = cluster.partition(1).await;
    let (p2, id2) = cluster.partition(2).await;
    cluster
        .append(&[
            (&p0, id0, vec![batch(&[("a", "0", 1)])]),
            (
                &p1,
                id1,
                vec![batch(&[("b", "1", 1)]), batch(&[("c", "2", 1)])],
            ),
            (&p2, id2, vec![batch(&[("d", "3", 1)])]),
        ])
        .await;
    let reader = cluster.reader(None, ReadSettings::default());
    let reads = reader
        .read(
            &[
                spec(&p2, 0, BYTES_MAX),
                spec(&p0, 0, BYTES_MAX),
                spec(&p1, 0, BYTES_MAX),
            ],
            BYTES_MAX,
        )
        .await;
    let keys = |read: &Option<PartitionRead>| -> Vec<(i64, Bytes)> {
        decoded(records(read.as_ref().unwrap()))
            .into_iter()
            .map(|r| (r.offset, r.key.unwrap()))
            .collect()
    };
    assert_eq!(keys(&reads[0]), [(0, Bytes::from("d"))]);
    assert_eq!(keys(&reads[1]), [(0, Bytes::from("a"))]);
    assert_eq!(
        keys(&reads[2]),
        [(0, Bytes::from("b")), (1, Bytes::from("c"))]
    );
    let stats = reader.stats();
    assert_eq!((stats.gets, stats.cache_misses), (1, 3));
}
