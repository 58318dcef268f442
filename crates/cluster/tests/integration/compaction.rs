//! Compaction in cluster mode against a real PostgreSQL and a bucket: the janitor's
//! compaction step keeps the newest record of each key at its offset, readers step over
//! the gaps, tombstones go once delete.retention.ms has passed since their last clean,
//! and producers racing two brokers' compactions lose nothing.

use crate::common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::Compression;
use rand::{rngs::StdRng, Rng, SeedableRng};
use tempfile::TempDir;
use tokio_postgres::Client;
use uuid::Uuid;
use weir_cluster::{
    AppendSettings, Bucket, ClusterLog, ClusterLogSettings, Janitor, JanitorSettings,
};
use weir_log::batch::{encode_batch, NewRecord};
use weir_log::store::{
    Acks, Engine, LogLifecycle, Opening, PartitionRead, PartitionWrite, ReadSpec, TopicPartition,
};
use weir_log::LogConfig;

const TOPIC: Uuid = Uuid::from_u128(0xc0);
const TOPIC_NAME: &str = "compacted";
const TIMESTAMP_MS: i64 = 1_700_000_000_000;
const DELETE_RETENTION_MS: i64 = 60_000;

struct Setup {
    url: String,
    bucket: Bucket,
    admin: Client,
    _dir: TempDir,
}

async fn setup(test: &str) -> Option<Setup> {
    let url = common::database(test).await?;
    common::migrated(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let bucket = common::bucket(test, dir.path());
    let admin = common::connect(&url).await;
    admin
        .execute(
            "INSERT INTO partitions (topic_id, partition) VALUES ($1, 0)",
            &[&TOPIC],
        )
        .await
        .unwrap();
    Some(Setup {
        url,
        bucket,
        admin,
        _dir: dir,
    })
}

fn compacted() -> LogConfig {
    LogConfig {
        cleanup_compact: true,
        cleanup_delete: false,
        delete_retention_ms: DELETE_RETENTION_MS,
        ..LogConfig::default()
    }
}

impl Setup {
    fn engine(&self, node_id: i32) -> ClusterLog {
        let engine = ClusterLog::start(
            common::session(&self.url),
            self.bucket.clone(),
            None,
            ClusterLogSettings {
                append: AppendSettings {
                    batch_window: Duration::from_millis(2),
                    node_id,
                    ..AppendSettings::default()
                },
                read: Default::default(),
            },
        );
        engine
            .open_partitions(TOPIC_NAME, TOPIC, 0..1, &compacted(), Opening::Existing)
            .unwrap();
        engine
    }

    /// A janitor whose loop never ticks (passes are run by hand), seeing the topic as
    /// compacted.
    fn janitor(&self, node_id: i32) -> Janitor {
        Janitor::start(
            common::session(&self.url),
            self.bucket.clone(),
            node_id,
            Uuid::new_v4(),
            JanitorSettings {
                interval: Duration::from_secs(3600),
                lease: Duration::from_secs(7200),
                grace: Duration::ZERO,
                ..JanitorSettings::default()
            },
            Arc::new(|topic_id| (topic_id == TOPIC).then(compacted)),
        )
    }

    /// The partition's chunk rows and size as PostgreSQL holds them: (chunk count, sum of
    /// chunk sizes, the row's size_bytes, clean_through).
    async fn index(&self) -> (i64, i64, i64, i64) {
        let row = self
            .admin
            .query_one(
                "SELECT (SELECT count(*) FROM chunks c WHERE c.partition_id = p.partition_id), \
                        (SELECT coalesce(sum(size_bytes), 0)::bigint FROM chunks c \
                         WHERE c.partition_id = p.partition_id), \
                        p.size_bytes, p.clean_through \
                 FROM partitions p WHERE p.topic_id = $1",
                &[&TOPIC],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2), row.get(3))
    }
}

fn tp() -> TopicPartition {
    TopicPartition {
        topic: TOPIC_NAME.into(),
        topic_id: TOPIC,
        partition: 0,
    }
}

/// One batch of (key, value) records; `None` is a tombstone.
fn batch(records: &[(String, Option<String>)]) -> BytesMut {
    let records: Vec<NewRecord> = records
        .iter()
        .map(|(k, v)| NewRecord {
            key: Some(Bytes::from(k.clone())),
            value: v.clone().map(Bytes::from),
            timestamp_ms: TIMESTAMP_MS,
        })
        .collect();
    encode_batch(&records, None, Compression::Lz4).unwrap()
}

/// Appends one batch (one flush, so one chunk) and returns its base offset.
async fn append(engine: &dyn Engine, records: &[(String, Option<String>)]) -> i64 {
    append_batch(engine, batch(records)).await
}

/// Appends one batch as given and returns its base offset.
async fn append_batch(engine: &dyn Engine, records: BytesMut) -> i64 {
    let write = PartitionWrite { tp: tp(), records };
    engine
        .append(vec![write], Acks::All, TIMESTAMP_MS)
        .await
        .pop()
        .unwrap()
        .unwrap()
        .base_offset
}

/// A read_committed read of the partition from `offset`, as a consumer's fetch asks.
async fn read_committed_at(engine: &dyn Engine, offset: i64) -> PartitionRead {
    engine
        .read(
            &[ReadSpec {
                tp: tp(),
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                read_committed: true,
            }],
            1 << 20,
        )
        .await
        .pop()
        .unwrap()
        .unwrap()
}

/// Every record of the partition as (offset, key, value), read through the engine.
async fn read_all(engine: &dyn Engine) -> Vec<(i64, String, Option<String>)> {
    engine
        .read_records(&tp(), 0, 1_000_000, 64 << 20)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.offset,
                String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                r.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
            )
        })
        .collect()
}

/// What a reader sees of a compacted partition against what was written (in offset
/// order): offsets only grow, every record is one that was written at its offset, the
/// last record of every key is there, and something went.
fn assert_compacted(
    written: &[(i64, String, Option<String>)],
    got: &[(i64, String, Option<String>)],
) {
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "offsets only grow");
    let written_at: BTreeMap<i64, &(i64, String, Option<String>)> =
        written.iter().map(|r| (r.0, r)).collect();
    for record in got {
        assert_eq!(
            Some(&record),
            written_at.get(&record.0),
            "only what was written"
        );
    }
    let mut last: BTreeMap<&str, &(i64, String, Option<String>)> = BTreeMap::new();
    for record in written {
        last.insert(&record.1, record);
    }
    for record in last.values() {
        assert!(got.contains(record), "{record:?} is readable");
    }
    assert!(got.len() < written.len(), "something was compacted away");
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// What a clean of every chunk but the newest (which starts at `newest_base`) leaves of
/// `written`: below it, the newest record of each key, tombstones too if `tombstones`;
/// from it on, everything.
fn expected(
    written: &[(i64, String, Option<String>)],
    newest_base: i64,
    tombstones: bool,
) -> Vec<(i64, String, Option<String>)> {
    let mut newest: BTreeMap<&str, i64> = BTreeMap::new();
    for (offset, key, _) in written.iter().filter(|r| r.0 < newest_base) {
        newest.insert(key, *offset);
    }
    written
        .iter()
        .filter(|(offset, key, value)| {
            *offset >= newest_base
                || (newest[key.as_str()] == *offset && (tombstones || value.is_some()))
        })
        .cloned()
        .collect()
}

/// Writes `rounds` batches of keys k0..k4 (k4 a tombstone in every third round) and
/// returns what was written as (offset, key, value).
async fn write_rounds(
    engine: &dyn Engine,
    rounds: std::ops::Range<usize>,
) -> Vec<(i64, String, Option<String>)> {
    let mut written = Vec::new();
    for round in rounds {
        let records: Vec<(String, Option<String>)> = (0..5)
            .map(|k| {
                let value = (k != 4 || round % 3 != 0).then(|| format!("r{round}"));
                (format!("k{k}"), value)
            })
            .collect();
        let base = append(engine, &records).await;
        for (i, (k, v)) in records.into_iter().enumerate() {
            written.push((base + i as i64, k, v));
        }
    }
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_the_newest_of_each_key_at_its_offset() {
    // Goal: after a compaction pass, a reader sees below the newest chunk exactly the newest
    // record of each key, at its original offset (tombstones kept: they were never cleaned
    // before), and the newest chunk whole; the dirty chunks became one; size_bytes is the
    // chunks' sum and clean_through the newest chunk's base. A fetch inside a gap gets the
    // next kept batch. Later writes make it due again and the clean part is cleaned with
    // them; once delete.retention.ms has passed since a clean, its tombstones go.
    let Some(s) = setup("compaction_newest").await else {
        return;
    };
    let engine = s.engine(1);
    let janitor = s.janitor(1);
    let mut written = write_rounds(&engine, 0..20).await;
    let newest_base = written.last().unwrap().0 - 4;
    assert_eq!(read_all(&engine).await, written);

    let report = janitor.run_once(wall_clock_ms()).await;
    assert_eq!(
        (report.partitions_compacted, report.errors),
        (1, 0),
        "{report:?}"
    );
    assert!(report.compaction_bytes_removed > 0);
    assert_eq!(
        read_all(&engine).await,
        expected(&written, newest_base, true)
    );
    let (chunks, sum, size_bytes, clean_through) = s.index().await;
    assert_eq!((chunks, sum, clean_through), (2, size_bytes, newest_base));
    // Offset 0 is gone (k0 was written again): a fetch there gets the next kept batch.
    let read = read_committed_at(&engine, 0).await;
    assert!(!read.records.unwrap().is_empty(), "a gap is stepped over");
    // A second pass at once finds nothing due.
    assert_eq!(
        janitor.run_once(wall_clock_ms()).await.partitions_compacted,
        0
    );

    // More rounds: due again; the clean chunk is cleaned against the new keys.
    written.extend(write_rounds(&engine, 20..40).await);
    let newest_base = written.last().unwrap().0 - 4;
    let report = janitor.run_once(wall_clock_ms()).await;
    assert_eq!(
        (report.partitions_compacted, report.errors),
        (1, 0),
        "{report:?}"
    );
    assert_eq!(
        read_all(&engine).await,
        expected(&written, newest_base, true)
    );

    // delete.retention.ms after those cleans, with new rounds to make a clean due: the
    // clean chunk's tombstones go; the dirty chunks' stay until their own clean is as old.
    let before_new = written.last().unwrap().0 + 1;
    written.extend(write_rounds(&engine, 40..61).await);
    let newest_base = written.last().unwrap().0 - 4;
    let later = wall_clock_ms() + 2 * DELETE_RETENTION_MS;
    let report = janitor.run_once(later).await;
    assert_eq!(
        (report.partitions_compacted, report.errors),
        (1, 0),
        "{report:?}"
    );
    let got = read_all(&engine).await;
    let tombstones: Vec<i64> = got.iter().filter(|r| r.2.is_none()).map(|r| r.0).collect();
    assert!(
        tombstones.iter().all(|&o| o >= before_new),
        "tombstones cleaned before are gone: {tombstones:?}"
    );
    let values: Vec<_> = got.iter().filter(|r| r.2.is_some()).cloned().collect();
    let want: Vec<_> = expected(&written, newest_base, true)
        .into_iter()
        .filter(|r| r.2.is_some())
        .collect();
    assert_eq!(values, want);
    let (_, sum, size_bytes, _) = s.index().await;
    assert_eq!(sum, size_bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producers_racing_two_brokers_compactions_lose_nothing() {
    // Goal: while two brokers append to the partition and two janitors compact it over and
    // over (each job claimed, so one at a time), every append succeeds, and at the end each
    // key's last acknowledged value is readable at its acknowledged offset, offsets only
    // grow, nothing unwritten appears, and size_bytes is the chunks' sum.
    let Some(s) = setup("compaction_race").await else {
        return;
    };
    let engines = [Arc::new(s.engine(1)), Arc::new(s.engine(2))];
    let janitors = [Arc::new(s.janitor(1)), Arc::new(s.janitor(2))];
    let done = Arc::new(AtomicBool::new(false));
    let mut cleaners = Vec::new();
    for janitor in &janitors {
        let (janitor, done) = (Arc::clone(janitor), Arc::clone(&done));
        cleaners.push(tokio::spawn(async move {
            let mut compacted = 0;
            while !done.load(Ordering::Relaxed) {
                let report = janitor.run_once(wall_clock_ms()).await;
                assert_eq!(report.errors, 0, "{report:?}");
                compacted += report.partitions_compacted;
            }
            compacted
        }));
    }
    let mut producers = Vec::new();
    for (p, engine) in engines.iter().enumerate() {
        let engine = Arc::clone(engine);
        producers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for round in 0..60 {
                let records: Vec<(String, Option<String>)> = (0..4)
                    .map(|k| (format!("p{p}-k{k}"), Some(format!("r{round}"))))
                    .collect();
                let base = append(engine.as_ref(), &records).await;
                for (i, (k, v)) in records.into_iter().enumerate() {
                    acked.push((base + i as i64, k, v));
                }
            }
            acked
        }));
    }
    let mut written: Vec<(i64, String, Option<String>)> = Vec::new();
    for producer in producers {
        written.extend(producer.await.unwrap());
    }
    // One more pass each after the writes stop.
    for janitor in &janitors {
        janitor.run_once(wall_clock_ms()).await;
    }
    done.store(true, Ordering::Relaxed);
    let mut compacted = 0;
    for cleaner in cleaners {
        compacted += cleaner.await.unwrap();
    }
    assert!(compacted > 0, "some compaction ran");
    written.sort();
    let got = read_all(engines[0].as_ref()).await;
    assert_compacted(&written, &got);
    let (_, sum, size_bytes, _) = s.index().await;
    assert_eq!(sum, size_bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_records_go_and_open_transactions_wait() {
    // Goal: an aborted transaction's records go and never supersede an older value of their
    // key; its marker stays; a transaction still open stops the compaction before it, and
    // once it commits, its records compact like any others.
    let Some(s) = setup("compaction_transactions").await else {
        return;
    };
    let engine = s.engine(1);
    let janitor = s.janitor(1);
    let record = |key: &str, value: &str| NewRecord {
        key: Some(Bytes::from(key.to_string())),
        value: Some(Bytes::from(value.to_string())),
        timestamp_ms: TIMESTAMP_MS,
    };
    let txn_batch = |pid: i64, key: &str, value: &str| {
        weir_log::batch::encode_transactional_batch(
            &[record(key, value)],
            (pid, 0, 0),
            Compression::None,
        )
        .unwrap()
    };
    let plain = |key: &str, value: &str| {
        encode_batch(&[record(key, value)], None, Compression::None).unwrap()
    };
    let marker = |pid: i64, commit: bool| weir_log::store::MarkerWrite {
        tp: tp(),
        producer_id: pid,
        producer_epoch: 0,
        coordinator_epoch: 0,
        commit,
        from_coordinator: false,
    };
    assert_eq!(append_batch(&engine, plain("k0", "a")).await, 0);
    assert_eq!(
        append_batch(&engine, txn_batch(41, "k0", "aborted")).await,
        1
    );
    common::write_marker(&engine, marker(41, false), TIMESTAMP_MS)
        .await
        .unwrap(); // 2
    assert_eq!(append_batch(&engine, txn_batch(42, "k1", "open")).await, 3);
    assert_eq!(append_batch(&engine, plain("k0", "b")).await, 4);
    let report = janitor.run_once(wall_clock_ms()).await;
    assert_eq!(
        (report.partitions_compacted, report.errors),
        (1, 0),
        "{report:?}"
    );
    let value = |key: &str, value: &str| (key.to_string(), Some(value.to_string()));
    let got: Vec<_> = read_all(&engine).await;
    let expect = [
        (0, value("k0", "a")),
        (3, value("k1", "open")),
        (4, value("k0", "b")),
    ];
    let flat = |e: &[(i64, (String, Option<String>))]| -> Vec<(i64, String, Option<String>)> {
        e.iter()
            .map(|(o, (k, v))| (*o, k.clone(), v.clone()))
            .collect()
    };
    assert_eq!(
        got,
        flat(&expect),
        "the aborted record went; k0 at 0 stays: 4 is past the open transaction"
    );
    let (_, _, _, clean_through) = s.index().await;
    assert_eq!(
        clean_through, 3,
        "the clean stops at the last stable offset"
    );

    // The transaction commits (5); a later write (6) makes the newest chunk another one.
    common::write_marker(&engine, marker(42, true), TIMESTAMP_MS)
        .await
        .unwrap();
    assert_eq!(append_batch(&engine, plain("k2", "c")).await, 6);
    let report = janitor.run_once(wall_clock_ms()).await;
    assert_eq!(
        (report.partitions_compacted, report.errors),
        (1, 0),
        "{report:?}"
    );
    let got = read_all(&engine).await;
    let expect = [
        (3, value("k1", "open")),
        (4, value("k0", "b")),
        (6, value("k2", "c")),
    ];
    assert_eq!(got, flat(&expect), "k0 at 0 is superseded by 4");
    let read = read_committed_at(&engine, 0).await;
    assert_eq!(read.last_stable_offset, 7);
    let batches: Vec<(i64, bool)> = weir_log::batch::whole_batches(read.records.unwrap())
        .map(|b| {
            let (header, _) = b.unwrap();
            (header.base_offset, header.is_control())
        })
        .collect();
    assert_eq!(
        batches,
        [(2, true), (3, false), (4, false), (5, true), (6, false)],
        "both markers stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_cut_off_anywhere_leaves_the_partition_whole() {
    // Goal: a broker dying in the middle of a compaction (here its janitor dropped at a
    // random moment, which closes its PostgreSQL connections as a kill does) leaves every
    // record either as it was or compacted as a whole commit: what a reader sees was
    // written at that offset, offsets only grow, every key's last value is there, and
    // size_bytes is the chunks' sum. A janitor started again (same node id, as a restarted
    // broker) goes on.
    let Some(s) = setup("compaction_cut_off").await else {
        return;
    };
    let engine = s.engine(1);
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut written = Vec::new();
    let mut cut = 0;
    for i in 0..25 {
        written.extend(write_rounds(&engine, i * 3..i * 3 + 3).await);
        let janitor = s.janitor(1);
        let pass = tokio::spawn(async move { janitor.run_once(wall_clock_ms()).await });
        let after = Duration::from_micros(rng.gen_range(0..40_000));
        tokio::time::sleep(after).await;
        if !pass.is_finished() {
            cut += 1;
        }
        pass.abort();
        let _ = pass.await;
    }
    println!("{cut} of 25 passes cut off");
    let report = s.janitor(1).run_once(wall_clock_ms()).await;
    assert_eq!(report.errors, 0, "{report:?}");
    let got = read_all(&engine).await;
    assert_compacted(&written, &got);
    let (_, sum, size_bytes, _) = s.index().await;
    assert_eq!(sum, size_bytes);
    let orphans: i64 = s
        .admin
        .query_one(
            "SELECT count(*) FROM objects o WHERE o.state = 1 \
             AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.object_id = o.object_id)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(orphans, 0, "no live object without a chunk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_go_delete_retention_after_their_first_clean_however_often_rewritten() {
    // Goal: a tombstone's delete.retention.ms counts from its first clean, and rewriting
    // its chunk in later cleans does not restart it; two tombstones first cleaned at
    // different times each go at their own time (they never share one chunk's clock).
    let Some(s) = setup("compaction_tombstone_clock").await else {
        return;
    };
    let engine = s.engine(1);
    let janitor = s.janitor(1);
    let one = |key: &str, value: Option<&str>| vec![(key.to_string(), value.map(str::to_string))];
    let tombstones = |records: &[(i64, String, Option<String>)]| -> Vec<String> {
        records
            .iter()
            .filter(|r| r.2.is_none() && r.1.starts_with("gone"))
            .map(|r| r.1.clone())
            .collect()
    };
    let t = wall_clock_ms();
    append(&engine, &one("gone1", Some("v"))).await;
    append(&engine, &one("gone1", None)).await;
    write_rounds(&engine, 0..10).await;
    let report = janitor.run_once(t).await;
    assert_eq!(
        (report.partitions_compacted, report.errors),
        (1, 0),
        "{report:?}"
    );

    append(&engine, &one("gone2", None)).await;
    write_rounds(&engine, 10..25).await;
    let report = janitor.run_once(t + DELETE_RETENTION_MS * 2 / 3).await;
    assert_eq!(
        (report.partitions_compacted, report.errors),
        (1, 0),
        "{report:?}"
    );
    assert_eq!(tombstones(&read_all(&engine).await), ["gone1", "gone2"]);

    write_rounds(&engine, 25..45).await;
    let report = janitor.run_once(t + DELETE_RETENTION_MS * 4 / 3).await;
    assert_eq!(
        (report.partitions_compacted, report.errors),
        (1, 0),
        "{report:?}"
    );
    assert_eq!(
        tombstones(&read_all(&engine).await),
        ["gone2"],
        "gone1's clock started at the first clean, gone2's at the second"
    );
}
