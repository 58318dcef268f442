//! The produce path (`Appender`) against a real PostgreSQL and a directory bucket: offsets,
//! flushes, idempotence, the bytes the `chunks` rows point at, two brokers on one
//! partition, and failures of the bucket and of PostgreSQL.

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::Compression;
use tempfile::TempDir;
use tokio_postgres::Client;
use uuid::Uuid;
use weir_cluster::bucket::Bucket;
use weir_cluster::notify::{Listener, Signal, CHANNEL_APPENDED};
use weir_cluster::object::patch_offsets;
use weir_cluster::partitions::PartitionIds;
use weir_cluster::pg::Connector;
use weir_cluster::{AppendSettings, Appender, CommitHook, CommittedFlush};
use weir_log::batch::{encode_batch, encode_transactional_batch, whole_batches, NewRecord};
use weir_log::records::decode_batch;
use weir_log::store::{Acks, AppendResult, PartitionWrite, Refused, TopicPartition};
use weir_log::{LogConfig, LogError, PartitionLog};

const NOW_MS: i64 = 1_700_000_000_000;
const TOPIC: Uuid = Uuid::from_u128(0x5eed);

/// A database, a bucket directory, and the pieces an appender needs.
struct Setup {
    url: String,
    dir: TempDir,
    bucket: Bucket,
    admin: Client,
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
    })
}

impl Setup {
    /// An appender (a broker) that knows the test topic.
    fn appender(&self, settings: AppendSettings) -> Appender {
        self.appender_at(&self.url, settings)
    }

    /// An appender that reaches the database at `url` (through a relay, say).
    fn appender_at(&self, url: &str, settings: AppendSettings) -> Appender {
        let session = common::session(url);
        let ids = Arc::new(PartitionIds::new(Arc::clone(&session)));
        let appender = Appender::start(session, self.bucket.clone(), ids, settings, None);
        appender.set_topic_config(TOPIC, LogConfig::default());
        appender
    }

    /// Makes partition `partition` of the test topic; returns its row id.
    async fn partition(&self, partition: i32) -> i64 {
        self.admin
            .query_one(
                "INSERT INTO partitions (topic_id, partition) VALUES ($1, $2) \
                 RETURNING partition_id",
                &[&TOPIC, &partition],
            )
            .await
            .unwrap()
            .get(0)
    }

    async fn next_offset(&self, partition_id: i64) -> i64 {
        self.admin
            .query_one(
                "SELECT next_offset FROM partitions WHERE partition_id = $1",
                &[&partition_id],
            )
            .await
            .unwrap()
            .get(0)
    }

    async fn count(&self, sql: &str) -> i64 {
        self.admin.query_one(sql, &[]).await.unwrap().get(0)
    }

    /// Every record of the partition as a consumer would get it through the `chunks`
    /// rows: (offset, value), after checking that each row's range holds exactly its
    /// batches and offsets.
    async fn read_back(&self, partition_id: i64) -> Vec<(i64, String)> {
        let rows = self
            .admin
            .query(
                "SELECT object_id, position, size_bytes, base_offset, last_offset, batch_count \
                 FROM chunks WHERE partition_id = $1 ORDER BY base_offset",
                &[&partition_id],
            )
            .await
            .unwrap();
        let mut records = Vec::new();
        let mut expected_base = 0i64;
        for row in rows {
            let (object_id, position, size_bytes): (i64, i64, i32) =
                (row.get(0), row.get(1), row.get(2));
            let (base_offset, last_offset, batch_count): (i64, i64, i32) =
                (row.get(3), row.get(4), row.get(5));
            assert_eq!(base_offset, expected_base, "chunks leave no gap");
            let range = position as u64..(position + i64::from(size_bytes)) as u64;
            let mut bytes = self
                .bucket
                .get_range(object_id, range)
                .await
                .unwrap()
                .to_vec();
            let next = patch_offsets(&mut bytes, base_offset).unwrap();
            assert_eq!(next, last_offset + 1, "the row's offsets match its bytes");
            let batches: Vec<_> = whole_batches(Bytes::from(bytes.clone()))
                .map(Result::unwrap)
                .collect();
            assert_eq!(batches.len(), batch_count as usize);
            let batch_bytes: usize = batches.iter().map(|(_, b)| b.len()).sum();
            assert_eq!(batch_bytes, bytes.len(), "the range is whole batches only");
            for (_, batch) in batches {
                for r in decode_batch(&batch).unwrap() {
                    let value = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
                    records.push((r.offset, value));
                }
            }
            expected_base = last_offset + 1;
        }
        records
    }
}

fn tp(partition: i32) -> TopicPartition {
    TopicPartition {
        topic: "orders".into(),
        topic_id: TOPIC,
        partition,
    }
}

/// One batch of `count` records whose values are `tag-0`, `tag-1`, …
fn batch(tag: &str, count: usize, producer: Option<(i64, i16, i32)>) -> BytesMut {
    encode_batch(&records(tag, count), producer, Compression::None).unwrap()
}

fn records(tag: &str, count: usize) -> Vec<NewRecord> {
    (0..count)
        .map(|i| NewRecord {
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("{tag}-{i}"))),
            timestamp_ms: NOW_MS + i as i64,
        })
        .collect()
}

fn write(partition: i32, records: BytesMut) -> PartitionWrite {
    PartitionWrite {
        tp: tp(partition),
        records,
    }
}

async fn append(appender: &Appender, writes: Vec<PartitionWrite>) -> Vec<AppendResult> {
    appender.append(writes, Acks::All, NOW_MS).await
}

/// (base offset, last offset, duplicate) of a stored write.
fn stored(result: &AppendResult) -> (i64, i64, bool) {
    match result {
        Ok(a) => (a.base_offset, a.last_offset, a.duplicate),
        Err(e) => panic!("expected the write stored, got {e:?}"),
    }
}

/// The refusal's error, as the local engine's would print.
fn refusal(result: &AppendResult) -> String {
    match result {
        Err(Refused::Log { error, .. }) => format!("{error:?}"),
        other => panic!("expected a refusal by the log, got {other:?}"),
    }
}

fn storage_error(result: &AppendResult) -> String {
    match result {
        Err(Refused::Log {
            error: LogError::Io(e),
            log_start_offset: -1,
        }) => e.to_string(),
        other => panic!("expected a storage error, got {other:?}"),
    }
}

fn quick() -> AppendSettings {
    AppendSettings {
        batch_window: Duration::from_millis(5),
        ..AppendSettings::default()
    }
}

fn object_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("objects"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_contiguous_per_partition_and_results_follow_the_call() {
    // Goal: one call's writes to three partitions come back in call order, each partition's
    // offsets following on from the last, and partitions.next_offset holds the end.
    let Some(s) = setup("produce_call_order").await else {
        return;
    };
    let ids = [
        s.partition(0).await,
        s.partition(1).await,
        s.partition(2).await,
    ];
    let appender = s.appender(quick());
    let results = append(
        &appender,
        vec![
            write(0, batch("a", 2, None)),
            write(1, batch("b", 3, None)),
            write(0, batch("c", 1, None)),
            write(2, batch("d", 4, None)),
            write(1, batch("e", 2, None)),
        ],
    )
    .await;
    let spans: Vec<_> = results.iter().map(stored).collect();
    assert_eq!(
        spans,
        vec![
            (0, 1, false),
            (0, 2, false),
            (2, 2, false),
            (0, 3, false),
            (3, 4, false)
        ]
    );
    let again = append(&appender, vec![write(1, batch("f", 1, None))]).await;
    assert_eq!(stored(&again[0]), (5, 5, false));
    assert_eq!(s.next_offset(ids[0]).await, 3);
    assert_eq!(s.next_offset(ids[1]).await, 6);
    assert_eq!(s.next_offset(ids[2]).await, 4);
    let values: Vec<String> = s.read_back(ids[1]).await.into_iter().map(|r| r.1).collect();
    assert_eq!(values, ["b-0", "b-1", "b-2", "e-0", "e-1", "f-0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_notifies_each_partitions_next_offset() {
    // Goal: a commit sends `object_id;partition_id:next_offset,...` on weir_appended, one
    // pair per partition that took records, so other brokers' waiting fetches look again.
    let Some(s) = setup("produce_notify").await else {
        return;
    };
    let ids = [s.partition(0).await, s.partition(1).await];
    let listener = Listener::spawn(
        Connector::new(&s.url).unwrap(),
        &[CHANNEL_APPENDED],
        Duration::from_secs(60),
    );
    let mut signals = listener.subscribe();
    loop {
        if let Signal::Connected { .. } = signals.recv().await.unwrap() {
            break;
        }
    }
    let appender = s.appender(quick());
    append(
        &appender,
        vec![write(1, batch("a", 3, None)), write(0, batch("b", 2, None))],
    )
    .await;
    let payload = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Signal::Notification { channel, payload } = signals.recv().await.unwrap() {
                assert_eq!(&*channel, CHANNEL_APPENDED);
                return payload;
            }
        }
    })
    .await
    .expect("a notification");
    let object_id: i64 = s
        .admin
        .query_one("SELECT max(object_id) FROM objects WHERE state = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        &*payload,
        format!("{object_id};{}:2,{}:3", ids[0], ids[1]).as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_writes_in_one_window_make_one_object_and_one_commit() {
    // Goal: fifty separate calls inside one batch window cost one PUT and one commit.
    let Some(s) = setup("produce_one_object").await else {
        return;
    };
    s.partition(0).await;
    s.partition(1).await;
    let appender = s.appender(AppendSettings {
        batch_window: Duration::from_millis(300),
        ..AppendSettings::default()
    });
    let calls: Vec<_> = (0..50)
        .map(|i| appender.append(vec![write(i % 2, batch("x", 2, None))], Acks::All, NOW_MS))
        .collect();
    let results = futures::future::join_all(calls).await;
    let mut ends: Vec<i64> = results.iter().map(|r| stored(&r[0]).1).collect();
    ends.sort_unstable();
    assert_eq!(ends.len(), 50);
    let stats = appender.stats();
    assert_eq!((stats.objects_put, stats.commits), (1, 1), "{stats:?}");
    assert_eq!(
        (stats.batches_committed, stats.records_committed),
        (50, 100)
    );
    assert_eq!(object_files(s.dir.path()), 1);
    assert_eq!(
        s.count("SELECT count(*) FROM objects WHERE state = 1")
            .await,
        1
    );
    // Each partition's 25 writes are adjacent in the object: one chunk row each.
    assert_eq!(s.count("SELECT count(*) FROM chunks").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_is_cut_early_once_its_bytes_reach_the_bound() {
    // Goal: with batch_bytes_max at two and a half writes, five writes sent at once make
    // two objects: the first three (cut by size), then the last two (cut by the window).
    let Some(s) = setup("produce_bytes_bound").await else {
        return;
    };
    let id = s.partition(0).await;
    let one = batch("a", 2, None);
    let appender = s.appender(AppendSettings {
        batch_window: Duration::from_millis(200),
        batch_bytes_max: one.len() * 5 / 2,
        ..AppendSettings::default()
    });
    let writes = (0..5).map(|_| write(0, one.clone())).collect();
    let results = append(&appender, writes).await;
    assert_eq!(stored(&results[4]), (8, 9, false));
    assert_eq!(appender.stats().objects_put, 2, "{:?}", appender.stats());
    let per_object: Vec<i64> = s
        .admin
        .query(
            "SELECT batch_count::bigint FROM chunks WHERE partition_id = $1 ORDER BY base_offset",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(per_object, [3, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producers_pipelined_writes_keep_their_order_across_flushes() {
    // Goal: an idempotent producer sends requests one after another without waiting (as
    // with max.in.flight > 1); they span several flushes whose PUTs overlap, and every one is
    // stored in order: none refused for its sequence, offsets increasing.
    let Some(s) = setup("produce_pipelined").await else {
        return;
    };
    let id = s.partition(0).await;
    let appender = s.appender(AppendSettings {
        batch_window: Duration::from_millis(2),
        puts_in_flight_max: 4,
        ..AppendSettings::default()
    });
    let mut calls = Vec::new();
    for i in 0..60 {
        let records = batch(&format!("p{i}"), 3, Some((9, 0, i * 3)));
        calls.push(appender.append(vec![write(0, records)], Acks::All, NOW_MS));
        if i % 5 == 4 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    let results = futures::future::join_all(calls).await;
    for (i, r) in results.iter().enumerate() {
        let i = i as i64;
        assert_eq!(stored(&r[0]), (i * 3, i * 3 + 2, false), "request {i}");
    }
    assert!(appender.stats().commits > 1, "{:?}", appender.stats());
    assert_eq!(s.next_offset(id).await, 180);
    assert_eq!(s.read_back(id).await.len(), 180);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_batch_gets_its_first_offsets_and_stores_nothing() {
    // Goal: a retry of one of the producer's last five batches is answered with the
    // offsets it got first, marked duplicate, and adds no offsets, rows or bytes.
    let Some(s) = setup("produce_duplicate").await else {
        return;
    };
    let id = s.partition(0).await;
    let appender = s.appender(quick());
    for (seq, tag) in [(0, "a"), (2, "b"), (4, "c")] {
        append(&appender, vec![write(0, batch(tag, 2, Some((5, 0, seq))))]).await;
    }
    let chunks_before = s.count("SELECT count(*) FROM chunks").await;
    let size_before: i64 = s
        .admin
        .query_one(
            "SELECT size_bytes FROM partitions WHERE partition_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    let retry = append(&appender, vec![write(0, batch("b", 2, Some((5, 0, 2))))]).await;
    assert_eq!(stored(&retry[0]), (2, 3, true));
    let last_retry = append(&appender, vec![write(0, batch("c", 2, Some((5, 0, 4))))]).await;
    assert_eq!(stored(&last_retry[0]), (4, 5, true));
    assert_eq!(s.next_offset(id).await, 6);
    assert_eq!(s.count("SELECT count(*) FROM chunks").await, chunks_before);
    let size_after: i64 = s
        .admin
        .query_one(
            "SELECT size_bytes FROM partitions WHERE partition_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(size_after, size_before);
    // The retries' objects hold nothing any chunk points at: they are left for deletion.
    assert_eq!(
        s.count("SELECT count(*) FROM objects WHERE state = 2 AND delete_after IS NOT NULL")
            .await,
        2
    );
    // The next new batch follows on.
    let next = append(&appender, vec![write(0, batch("d", 1, Some((5, 0, 6))))]).await;
    assert_eq!(stored(&next[0]), (6, 6, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_the_local_engines_and_store_nothing() {
    // Goal: the same requests sent to the appender and to a local PartitionLog get the same
    // answers: a sequence gap (OutOfOrderSequence), a stale epoch (InvalidProducerEpoch), a
    // new epoch not starting at 0, a plain batch inside an open transaction
    // (InvalidTxnState), a bad CRC (CorruptMessage), a batch over max.message.bytes; none
    // of them takes an offset.
    let Some(s) = setup("produce_refusals").await else {
        return;
    };
    let id = s.partition(0).await;
    let appender = s.appender(quick());
    let local_dir = tempfile::tempdir().unwrap();
    let mut local =
        PartitionLog::open(&local_dir.path().join("orders-0"), LogConfig::default()).unwrap();
    let mut bad_crc = batch("z", 2, None);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    let big = encode_batch(
        &[NewRecord {
            key: None,
            value: Some(Bytes::from(vec![7u8; 1_100_000])),
            timestamp_ms: NOW_MS,
        }],
        None,
        Compression::None,
    )
    .unwrap();
    let txn =
        |seq| encode_transactional_batch(&records("t", 1), (8, 0, seq), Compression::None).unwrap();
    let steps: Vec<(&str, BytesMut, bool)> = vec![
        ("first", batch("a", 2, Some((7, 3, 0))), true),
        ("gap", batch("b", 2, Some((7, 3, 5))), false),
        ("stale epoch", batch("c", 2, Some((7, 2, 2))), false),
        ("new epoch not at 0", batch("d", 2, Some((7, 4, 3))), false),
        ("in order", batch("e", 2, Some((7, 3, 2))), true),
        ("bad crc", bad_crc, false),
        ("too large", big, false),
        ("opens a transaction", txn(0), true),
        ("plain while open", batch("f", 1, Some((8, 0, 1))), false),
    ];
    let mut expected_next = 0;
    for (what, records, accepted) in steps {
        let mut local_copy = records.clone();
        let want = local.append(&mut local_copy, NOW_MS);
        let got = append(&appender, vec![write(0, records)]).await;
        match want {
            Ok(outcome) => {
                assert!(accepted, "{what}: the local engine stored it");
                assert_eq!(
                    stored(&got[0]),
                    (outcome.base_offset, outcome.last_offset, false),
                    "{what}"
                );
                expected_next = outcome.last_offset + 1;
            }
            Err(error) => {
                assert!(!accepted, "{what}: the local engine refused it: {error}");
                assert_eq!(refusal(&got[0]), format!("{error:?}"), "{what}");
            }
        }
        assert_eq!(s.next_offset(id).await, expected_next, "{what}");
    }
    // The open transaction holds the last stable offset at its first offset.
    let first_unstable: Option<i64> = s
        .admin
        .query_one(
            "SELECT first_unstable_offset FROM partitions WHERE partition_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(first_unstable, Some(4));
    assert_eq!(local.last_stable_offset(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_rows_point_at_exactly_the_accepted_bytes() {
    // Goal: in one flush, a bad-CRC write is refused at once without failing the others,
    // and duplicates and refused batches inside the object break runs: reading each
    // `chunks` row's range back, patching its offsets and decoding gives exactly the
    // accepted records at their offsets, nothing else.
    let Some(s) = setup("produce_read_back").await else {
        return;
    };
    let id0 = s.partition(0).await;
    let id1 = s.partition(1).await;
    let appender = s.appender(AppendSettings {
        batch_window: Duration::from_millis(200),
        ..AppendSettings::default()
    });
    let mut bad_crc = batch("bad", 2, None);
    bad_crc[70] ^= 0x01;
    let results = append(
        &appender,
        vec![
            write(0, batch("a", 2, Some((3, 0, 0)))),
            write(0, batch("a", 2, Some((3, 0, 0)))), // a retry: duplicate
            write(0, batch("b", 3, Some((3, 0, 2)))),
            write(1, bad_crc),
            write(0, batch("x", 1, Some((3, 0, 9)))), // a gap: refused at commit
            write(1, batch("p", 2, None)),
            write(0, batch("c", 1, Some((3, 0, 5)))),
            write(0, batch("d", 2, None)),
        ],
    )
    .await;
    assert_eq!(stored(&results[0]), (0, 1, false));
    assert_eq!(stored(&results[1]), (0, 1, true));
    assert_eq!(stored(&results[2]), (2, 4, false));
    assert!(refusal(&results[3]).starts_with("CorruptMessage"));
    assert!(refusal(&results[4]).starts_with("OutOfOrderSequence"));
    assert_eq!(stored(&results[5]), (0, 1, false));
    assert_eq!(stored(&results[6]), (5, 5, false));
    assert_eq!(stored(&results[7]), (6, 7, false));
    assert_eq!(appender.stats().objects_put, 1);
    let want: Vec<(i64, String)> = ["a-0", "a-1", "b-0", "b-1", "b-2", "c-0", "d-0", "d-1"]
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64, v.to_string()))
        .collect();
    assert_eq!(s.read_back(id0).await, want);
    assert_eq!(
        s.read_back(id1).await,
        vec![(0, "p-0".to_string()), (1, "p-1".to_string())]
    );
    // [a], [b], [c d]: the duplicate and the refused write break runs.
    let rows = s
        .count(&format!(
            "SELECT count(*) FROM chunks WHERE partition_id = {id0}"
        ))
        .await;
    assert_eq!(rows, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_brokers_appending_to_one_partition_share_its_offsets() {
    // Goal: two appenders (two brokers) on one database write one partition at once; the
    // offsets they hand out neither overlap nor leave gaps, and the chunks agree.
    let Some(s) = setup("produce_two_brokers").await else {
        return;
    };
    let id = s.partition(0).await;
    let brokers = [s.appender(quick()), s.appender(quick())];
    let mut calls = Vec::new();
    for i in 0..40 {
        for (b, broker) in brokers.iter().enumerate() {
            let records = batch(&format!("b{b}-{i}"), 1 + (i % 3), None);
            calls.push(broker.append(vec![write(0, records)], Acks::All, NOW_MS));
        }
        if i % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let results = futures::future::join_all(calls).await;
    let mut spans: Vec<(i64, i64)> = results
        .iter()
        .map(|r| {
            let (base, last, _) = stored(&r[0]);
            (base, last)
        })
        .collect();
    spans.sort_unstable();
    let mut next = 0;
    for (base, last) in &spans {
        assert_eq!(*base, next, "no gap or overlap at {base}");
        next = last + 1;
    }
    assert_eq!(s.next_offset(id).await, next);
    assert_eq!(s.read_back(id).await.len() as i64, next);
    assert!(brokers.iter().all(|b| b.stats().commits >= 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_failure_fails_the_flush_and_the_next_one_succeeds() {
    // Goal: when the PUT fails, every write of the flush gets the retriable storage error
    // naming the bucket, and no offset is taken; once the bucket works again, the next
    // flush is stored from offset 0.
    let Some(s) = setup("produce_bucket_failure").await else {
        return;
    };
    let id = s.partition(0).await;
    let appender = s.appender(quick());
    // A file where the objects directory belongs: no object can be created (even as root,
    // which a read-only directory would not stop).
    std::fs::write(s.dir.path().join("objects"), b"in the way").unwrap();
    let failed = append(
        &appender,
        vec![write(0, batch("a", 2, None)), write(0, batch("b", 1, None))],
    )
    .await;
    for r in &failed {
        let e = storage_error(r);
        assert!(e.contains("bucket"), "{e}");
    }
    assert_eq!(appender.stats().flushes_failed, 1);
    assert_eq!(s.next_offset(id).await, 0);
    std::fs::remove_file(s.dir.path().join("objects")).unwrap();
    let ok = append(&appender, vec![write(0, batch("c", 2, None))]).await;
    assert_eq!(stored(&ok[0]), (0, 1, false));
    let values: Vec<String> = s.read_back(id).await.into_iter().map(|r| r.1).collect();
    assert_eq!(values, ["c-0", "c-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_fails_the_flush_and_the_next_one_succeeds() {
    // Goal: when the commit's transaction fails in PostgreSQL, every write of the flush
    // gets the storage error naming PostgreSQL, nothing of it is committed (its object
    // stays pending), and the next flush commits from offset 0.
    let Some(s) = setup("produce_commit_failure").await else {
        return;
    };
    let id = s.partition(0).await;
    let appender = s.appender(quick());
    s.admin
        .batch_execute("ALTER TABLE chunks RENAME TO chunks_away")
        .await
        .unwrap();
    let failed = append(&appender, vec![write(0, batch("a", 2, Some((4, 0, 0))))]).await;
    let e = storage_error(&failed[0]);
    assert!(e.contains("PostgreSQL"), "{e}");
    assert_eq!(s.next_offset(id).await, 0);
    assert_eq!(
        s.count("SELECT count(*) FROM objects WHERE state = 0")
            .await,
        1
    );
    s.admin
        .batch_execute("ALTER TABLE chunks_away RENAME TO chunks")
        .await
        .unwrap();
    // The producer's retry is new data: the failed commit stored nothing of it.
    let ok = append(&appender, vec![write(0, batch("a", 2, Some((4, 0, 0))))]).await;
    assert_eq!(stored(&ok[0]), (0, 1, false));
    assert_eq!(appender.stats().flushes_failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_postgresql_fails_the_flush_within_the_bound_and_the_next_one_succeeds() {
    // Goal: when PostgreSQL stops answering (a hung server, a partitioned network), the
    // flush fails with the storage error within the statement bound instead of waiting,
    // and once it answers again the next flush commits after the last good one.
    let Some(s) = setup("produce_hung_postgres").await else {
        return;
    };
    let id = s.partition(0).await;
    let relay = common::Relay::start(&s.url).await;
    let appender = s.appender_at(
        &relay.url,
        AppendSettings {
            batch_window: Duration::from_millis(5),
            statement_timeout: Duration::from_millis(500),
            ..AppendSettings::default()
        },
    );
    let first = append(&appender, vec![write(0, batch("a", 2, None))]).await;
    assert_eq!(stored(&first[0]), (0, 1, false));
    relay.freeze();
    let hung = tokio::time::timeout(
        Duration::from_secs(5),
        append(&appender, vec![write(0, batch("b", 2, None))]),
    )
    .await
    .expect("answered within the bound");
    let e = storage_error(&hung[0]);
    assert!(e.contains("PostgreSQL"), "{e}");
    relay.thaw();
    let after = append(&appender, vec![write(0, batch("c", 1, None))]).await;
    assert_eq!(stored(&after[0]), (2, 2, false));
    assert_eq!(s.next_offset(id).await, 3);
    let values: Vec<String> = s.read_back(id).await.into_iter().map(|r| r.1).collect();
    assert_eq!(values, ["a-0", "a-1", "c-0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_bytes_past_the_bound_are_refused_at_once() {
    // Goal: with more bytes waiting than pending_bytes_max, a write is refused at once with
    // the storage error instead of queued; once the waiting flush commits, writes are taken
    // again.
    let Some(s) = setup("produce_pending_bound").await else {
        return;
    };
    s.partition(0).await;
    let one = batch("a", 3, None);
    let appender = s.appender(AppendSettings {
        batch_window: Duration::from_millis(300),
        pending_bytes_max: one.len() + one.len() / 2,
        ..AppendSettings::default()
    });
    let first = appender.append(vec![write(0, one.clone())], Acks::All, NOW_MS);
    let second = append(&appender, vec![write(0, one.clone())]).await;
    assert!(storage_error(&second[0]).contains("waiting"));
    assert_eq!(stored(&first.await[0]), (0, 2, false));
    assert_eq!(appender.pending_bytes(), 0);
    let third = append(&appender, vec![write(0, one)]).await;
    assert_eq!(stored(&third[0]), (3, 5, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_partitions_are_refused_and_the_others_stored() {
    // Goal: a topic without a config, or a partition without a row, is refused as unknown;
    // the writes beside them in the flush are stored.
    let Some(s) = setup("produce_unknown").await else {
        return;
    };
    s.partition(0).await;
    let appender = s.appender(quick());
    let elsewhere = TopicPartition {
        topic: "other".into(),
        topic_id: Uuid::from_u128(0xbad),
        partition: 0,
    };
    let results = append(
        &appender,
        vec![
            PartitionWrite {
                tp: elsewhere,
                records: batch("n", 1, None),
            },
            write(7, batch("m", 1, None)),
            write(0, batch("a", 1, None)),
        ],
    )
    .await;
    assert!(matches!(results[0], Err(Refused::UnknownPartition)));
    assert!(matches!(results[1], Err(Refused::UnknownPartition)));
    assert_eq!(stored(&results[2]), (0, 0, false));
    appender.forget_topic(TOPIC);
    let gone = append(&appender, vec![write(0, batch("b", 1, None))]).await;
    assert!(matches!(gone[0], Err(Refused::UnknownPartition)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commit_hook_hears_each_commit_before_its_writes_are_answered() {
    // Goal: the hook given at start hears, before the append resolves, the committed
    // object's id, its bytes exactly as stored in the bucket, and each partition's new
    // next offset; a flush that stored nothing (a duplicate) is not reported.
    let Some(setup) = setup("produce_commit_hook").await else {
        return;
    };
    let p0 = setup.partition(0).await;
    let p1 = setup.partition(1).await;
    let heard: Arc<parking_lot::Mutex<Vec<CommittedFlush>>> = Arc::default();
    let hook: CommitHook = {
        let heard = Arc::clone(&heard);
        Arc::new(move |flush: &CommittedFlush| heard.lock().push(flush.clone()))
    };
    let session = common::session(&setup.url);
    let ids = Arc::new(PartitionIds::new(Arc::clone(&session)));
    let appender = Appender::start(
        session,
        setup.bucket.clone(),
        ids,
        AppendSettings::default(),
        Some(hook),
    );
    appender.set_topic_config(TOPIC, LogConfig::default());
    let idempotent = batch("i", 1, Some((3, 0, 0)));
    let results = append(
        &appender,
        vec![write(0, batch("a", 3, None)), write(1, idempotent.clone())],
    )
    .await;
    assert_eq!(stored(&results[0]), (0, 2, false));
    let flushes = heard.lock().clone();
    assert_eq!(flushes.len(), 1, "heard before the answer");
    let flush = &flushes[0];
    let mut next_offsets = flush.next_offsets.clone();
    next_offsets.sort_unstable();
    assert_eq!(next_offsets, [(p0, 3), (p1, 1)]);
    let stored_bytes = setup
        .bucket
        .get_range(flush.object_id, 0..flush.object.len() as u64)
        .await
        .unwrap();
    assert_eq!(stored_bytes, flush.object);

    let retry = append(&appender, vec![write(1, idempotent)]).await;
    assert!(stored(&retry[0]).2, "a duplicate");
    assert_eq!(
        heard.lock().len(),
        1,
        "a flush that stored nothing was reported"
    );
}
