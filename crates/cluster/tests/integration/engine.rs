//! `ClusterLog`, the cluster engine, driven only through weir-log's storage traits as a
//! broker drives its engine, against a real PostgreSQL and a directory bucket. Two
//! engines on one database stand for two brokers: what one writes, the other reads,
//! retries, deletes below and ends transactions in.

use crate::common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::Compression;
use tempfile::TempDir;
use tokio::sync::broadcast;
use tokio_postgres::Client;
use uuid::Uuid;
use weir_cluster::notify::{Listener, Signal, CHANNEL_APPENDED};
use weir_cluster::pg::Connector;
use weir_cluster::{AppendSettings, Bucket, ClusterLog, ClusterLogSettings};
use weir_log::batch::{encode_batch, encode_transactional_batch, whole_batches, NewRecord};
use weir_log::records::decode_batch;
use weir_log::store::{
    Acks, AppendResult, Engine, LogLifecycle, MarkerWrite, Opening, PartitionRead, PartitionWrite,
    ReadSpec, Refused, StoreError, TopicPartition, DELETE_TO_HIGH_WATERMARK,
};
use weir_log::{AbortedTxn, LogConfig, LogError};

const NOW_MS: i64 = 1_700_000_000_000;
const TOPIC: Uuid = Uuid::from_u128(0xe9);
const TOPIC_NAME: &str = "orders";
/// How long a watcher may take to wake.
const WOKEN_WITHIN: Duration = Duration::from_secs(5);
/// The listeners' poll period: longer than any wait here, so what is seen in time came
/// from a notification or the engine's own commit, not from the poll.
const POLL: Duration = Duration::from_secs(30);
const BYTES_MAX: usize = 1 << 20;

/// A database with partition 0 of the test topic, a bucket, and a connection to look.
struct Setup {
    url: String,
    bucket: Bucket,
    admin: Client,
    _dir: TempDir,
}

/// One broker: its engine and the listener that feeds it.
struct Broker {
    engine: ClusterLog,
    _listener: Option<Listener>,
}

impl Broker {
    fn engine(&self) -> &dyn Engine {
        &self.engine
    }
}

async fn setup(test: &str) -> Option<Setup> {
    let url = common::database(test).await?;
    common::migrated(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let bucket = common::bucket(test, dir.path());
    let admin = common::connect(&url).await;
    // As the catalog commit that creates the topic makes it.
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

impl Setup {
    /// A broker that has opened the test topic with `config`, listening already.
    async fn broker(&self, node_id: i32, config: &LogConfig) -> Broker {
        let listener = Listener::spawn(
            Connector::new(&self.url).unwrap(),
            &[CHANNEL_APPENDED],
            POLL,
        );
        let mut pid = listener.backend_pid();
        tokio::time::timeout(WOKEN_WITHIN, pid.wait_for(Option::is_some))
            .await
            .expect("the listener connects")
            .unwrap();
        let signals = listener.subscribe();
        self.broker_with(node_id, config, Some(signals), Some(listener))
    }

    /// A broker that follows no notifications: what it knows of commits comes from its
    /// own commits and its queries.
    fn broker_unsignalled(&self, node_id: i32, config: &LogConfig) -> Broker {
        self.broker_with(node_id, config, None, None)
    }

    fn broker_with(
        &self,
        node_id: i32,
        config: &LogConfig,
        signals: Option<broadcast::Receiver<Signal>>,
        listener: Option<Listener>,
    ) -> Broker {
        let engine = ClusterLog::start(
            common::session(&self.url),
            self.bucket.clone(),
            signals,
            ClusterLogSettings {
                append: AppendSettings {
                    batch_window: Duration::from_millis(5),
                    node_id,
                    ..AppendSettings::default()
                },
                read: Default::default(),
            },
        );
        engine
            .open_partitions(TOPIC_NAME, TOPIC, 0..1, config, Opening::Existing)
            .unwrap();
        Broker {
            engine,
            _listener: listener,
        }
    }
}

fn tp() -> TopicPartition {
    TopicPartition {
        topic: TOPIC_NAME.into(),
        topic_id: TOPIC,
        partition: 0,
    }
}

fn records(values: &[&str], first_timestamp_ms: i64) -> Vec<NewRecord> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| NewRecord {
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            timestamp_ms: first_timestamp_ms + 1000 * i as i64,
        })
        .collect()
}

/// A plain batch of `values`, timestamps a second apart from `NOW_MS`.
fn plain(values: &[&str]) -> BytesMut {
    encode_batch(&records(values, NOW_MS), None, Compression::None).unwrap()
}

/// A transactional batch of producer (id, epoch, first sequence).
fn transactional(values: &[&str], producer: (i64, i16, i32)) -> BytesMut {
    encode_transactional_batch(&records(values, NOW_MS), producer, Compression::None).unwrap()
}

async fn append(engine: &dyn Engine, batch: BytesMut) -> AppendResult {
    let write = PartitionWrite {
        tp: tp(),
        records: batch,
    };
    engine
        .append(vec![write], Acks::All, NOW_MS)
        .await
        .pop()
        .unwrap()
}

async fn read(engine: &dyn Engine, offset: i64, read_committed: bool) -> Option<PartitionRead> {
    let spec = ReadSpec {
        tp: tp(),
        fetch_offset: offset,
        partition_max_bytes: BYTES_MAX,
        read_committed,
    };
    engine
        .read(std::slice::from_ref(&spec), BYTES_MAX)
        .await
        .pop()
        .unwrap()
}

/// The user records of a read as (offset, value), markers left out.
fn values(read: &PartitionRead) -> Vec<(i64, String)> {
    let bytes = read.records.as_ref().expect("records").clone();
    let mut out = Vec::new();
    for batch in whole_batches(bytes) {
        let (header, batch) = batch.unwrap();
        if header.is_control() {
            continue;
        }
        for record in decode_batch(&batch).unwrap() {
            let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
            out.push((record.offset, value));
        }
    }
    out
}

fn marker(producer: (i64, i16), coordinator_epoch: i32, commit: bool) -> MarkerWrite {
    MarkerWrite {
        tp: tp(),
        producer_id: producer.0,
        producer_epoch: producer.1,
        coordinator_epoch,
        commit,
        from_coordinator: false,
    }
}

async fn write_marker(engine: &dyn Engine, marker: MarkerWrite) -> Result<(), StoreError> {
    common::write_marker(engine, marker, NOW_MS).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_broker_writes_it_reads_without_a_get_and_the_other_is_woken_for() {
    // Goal: the writing broker reads its own records back from the object its commit hook
    // cached (no GET), and knows the new high watermark without asking (it follows no
    // notifications here, so only its own commit can tell it); the other broker,
    // waiting on its watch, is woken by the commit's notification and reads them from the
    // bucket; offsets, status and size follow the appends.
    let Some(setup) = setup("engine_write_read").await else {
        return;
    };
    let config = LogConfig::default();
    let a = setup.broker_unsignalled(0, &config);
    let b = setup.broker(1, &config).await;
    let (ea, eb) = (a.engine(), b.engine());

    let acked = append(ea, plain(&["a", "b", "c"])).await.unwrap();
    assert_eq!((acked.base_offset, acked.last_offset), (0, 2));
    assert_eq!(
        ea.status(&tp()).map(|s| s.offsets.high_watermark),
        None,
        "status knows nothing of a partition before it is read"
    );
    // That miss started a read of the row in the background: the next asks answer.
    common::wait_for(
        "status learning a partition it was asked about",
        WOKEN_WITHIN,
        || async { (ea.status(&tp())?.offsets.high_watermark == 3).then_some(()) },
    )
    .await;
    let got = read(ea, 0, false).await.unwrap();
    assert_eq!(
        values(&got),
        [(0, "a".into()), (1, "b".into()), (2, "c".into())]
    );
    assert_eq!(
        a.engine.read_stats().gets,
        0,
        "the writer's read needed a GET"
    );
    assert!(a.engine.read_stats().cache_hits >= 1);

    // B learns the partition, then waits at its end.
    let caught_up = read(eb, 3, false).await.unwrap();
    assert_eq!((caught_up.high_watermark, values(&caught_up).len()), (3, 0));
    let notify = eb.watch(&tp()).expect("a partition B has read");
    let woken = notify.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    let size_before = ea.size_bytes(&tp()).await.unwrap();
    let acked = append(ea, plain(&["d", "e"])).await.unwrap();
    assert_eq!((acked.base_offset, acked.last_offset), (3, 4));
    // A's own commit moved its cached state before the append was answered.
    assert_eq!(ea.status(&tp()).unwrap().offsets.high_watermark, 5);
    tokio::time::timeout(WOKEN_WITHIN, woken)
        .await
        .expect("B's watch woke on A's commit");
    let got = read(eb, 3, false).await.unwrap();
    assert_eq!(values(&got), [(3, "d".into()), (4, "e".into())]);
    assert!(b.engine.read_stats().gets >= 1, "B had nothing cached");

    let offsets = eb.offsets(&tp()).await.unwrap();
    assert_eq!(
        (
            offsets.log_start_offset,
            offsets.high_watermark,
            offsets.last_stable_offset
        ),
        (0, 5, 5)
    );
    assert_eq!(eb.status(&tp()).unwrap().offsets, offsets);
    let size_after = ea.size_bytes(&tp()).await.unwrap();
    assert!(
        size_before > 0 && size_after > size_before,
        "{size_before} {size_after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_through_the_other_broker_gets_the_first_offsets() {
    // Goal: a producer whose broker acknowledged a batch and then failed retries it
    // through another broker and gets the same offsets, marked duplicate, with nothing
    // stored twice; its next batch through the new broker follows on.
    let Some(setup) = setup("engine_failover_retry").await else {
        return;
    };
    let config = LogConfig::default();
    let a = setup.broker(0, &config).await;
    let b = setup.broker(1, &config).await;
    let batch = encode_batch(
        &records(&["x", "y", "z"], NOW_MS),
        Some((7, 0, 0)),
        Compression::None,
    )
    .unwrap();
    let first = append(a.engine(), batch.clone()).await.unwrap();
    drop(a);
    let retry = append(b.engine(), batch).await.unwrap();
    assert_eq!(
        (retry.base_offset, retry.last_offset, retry.duplicate),
        (first.base_offset, first.last_offset, true)
    );
    let next = encode_batch(&records(&["w"], NOW_MS), Some((7, 0, 3)), Compression::None).unwrap();
    let next = append(b.engine(), next).await.unwrap();
    assert_eq!((next.base_offset, next.duplicate), (3, false));
    let got = read(b.engine(), 0, false).await.unwrap();
    assert_eq!(values(&got).len(), 4);
    let producers = b.engine().producers(&tp()).await.unwrap();
    assert_eq!(producers.len(), 1);
    assert_eq!(
        (producers[0].producer_id, producers[0].last_sequence),
        (7, 3)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_moves_the_log_start_on_both_brokers() {
    // Goal: DeleteRecords through one broker moves the log start that both brokers
    // report; reads below it are out of range on both; an offset above the high watermark
    // is refused as the local engine refuses it; -1 means the high watermark; the log
    // start never moves back.
    let Some(setup) = setup("engine_delete_records").await else {
        return;
    };
    let config = LogConfig::default();
    let a = setup.broker(0, &config).await;
    let b = setup.broker(1, &config).await;
    let (ea, eb) = (a.engine(), b.engine());
    append(ea, plain(&["a", "b", "c"])).await.unwrap();
    append(ea, plain(&["d", "e"])).await.unwrap();
    assert_eq!(values(&read(eb, 0, false).await.unwrap()).len(), 5);

    assert_eq!(ea.delete_records_before(&tp(), 3).await.unwrap(), 3);
    for engine in [ea, eb] {
        assert_eq!(engine.offsets(&tp()).await.unwrap().log_start_offset, 3);
        let below = read(engine, 1, false).await.unwrap();
        assert!(
            matches!(
                below.records,
                Err(LogError::OffsetOutOfRange {
                    offset: 1,
                    log_start_offset: 3,
                    ..
                })
            ),
            "{:?}",
            below.records
        );
        assert_eq!(
            values(&read(engine, 3, false).await.unwrap()),
            [(3, "d".into()), (4, "e".into())]
        );
    }
    assert_eq!(ea.status(&tp()).unwrap().offsets.log_start_offset, 3);
    let refused = eb.delete_records_before(&tp(), 6).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Log(LogError::OffsetOutOfRange {
                offset: 6,
                log_start_offset: 3,
                log_end_offset: 5
            }))
        ),
        "{refused:?}"
    );
    assert_eq!(eb.delete_records_before(&tp(), 1).await.unwrap(), 3);
    assert_eq!(
        eb.delete_records_before(&tp(), DELETE_TO_HIGH_WATERMARK)
            .await
            .unwrap(),
        5
    );
    assert_eq!(ea.offsets(&tp()).await.unwrap().log_start_offset, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_and_decoded_records() {
    // Goal: ListOffsets by time finds the first record at or after a timestamp and the
    // one with the largest; the message browser's decoded records and a group's lag in
    // time come from reads, within the limits asked for.
    let Some(setup) = setup("engine_timestamps").await else {
        return;
    };
    let a = setup.broker(0, &LogConfig::default()).await;
    let ea = a.engine();
    append(ea, plain(&["a", "b", "c"])).await.unwrap();
    append(ea, plain(&["d"])).await.unwrap();

    let found = ea
        .offset_for_timestamp(&tp(), NOW_MS + 1500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.offset, found.timestamp), (2, NOW_MS + 2000));
    assert_eq!(
        ea.offset_for_timestamp(&tp(), NOW_MS + 5000).await.unwrap(),
        None
    );
    let max = ea.max_timestamp_offset(&tp()).await.unwrap().unwrap();
    assert_eq!((max.offset, max.timestamp), (2, NOW_MS + 2000));

    let decoded = ea.read_records(&tp(), 1, 10, BYTES_MAX).await.unwrap();
    let shown: Vec<_> = decoded
        .iter()
        .map(|r| (r.offset, r.value.clone().unwrap()))
        .collect();
    assert_eq!(
        shown,
        [
            (1, Bytes::from("b")),
            (2, Bytes::from("c")),
            (3, Bytes::from("d"))
        ]
    );
    assert_eq!(
        ea.read_records(&tp(), 0, 2, BYTES_MAX).await.unwrap().len(),
        2
    );
    // The first record whatever its size, then no more once the bytes are reached.
    assert_eq!(ea.read_records(&tp(), 0, 10, 1).await.unwrap().len(), 1);
    assert!(ea
        .read_records(&tp(), 4, 10, BYTES_MAX)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        ea.read_records(&tp(), 5, 10, BYTES_MAX).await,
        Err(StoreError::Log(LogError::OffsetOutOfRange { .. }))
    ));
    assert_eq!(
        ea.timestamp_at(&tp(), 1).await.unwrap(),
        Some(NOW_MS + 1000)
    );
    assert_eq!(ea.timestamp_at(&tp(), 3).await.unwrap(), Some(NOW_MS));
    assert_eq!(ea.timestamp_at(&tp(), 4).await.unwrap(), None);
    ea.delete_records_before(&tp(), 2).await.unwrap();
    assert_eq!(
        ea.timestamp_at(&tp(), 0).await.unwrap(),
        Some(NOW_MS + 2000),
        "below the log start means the first record still stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_writes_what_a_producer_may_not() {
    // Goal: a coordinator's transactional batch without a sequence, larger than
    // max.message.bytes, is refused from a producer and accepted from the coordinator; it
    // opens the producer's transaction and reads back; a step whose write is refused
    // fails.
    let Some(setup) = setup("engine_coordinator").await else {
        return;
    };
    let config = LogConfig {
        max_message_bytes: 100,
        ..LogConfig::default()
    };
    let a = setup.broker(0, &config).await;
    let ea = a.engine();
    let value = "v".repeat(200);
    let batch = transactional(&[&value, "small"], (9, 1, -1));
    let from_producer = append(ea, batch.clone()).await;
    assert!(
        matches!(from_producer, Err(Refused::Log { .. })),
        "{from_producer:?}"
    );
    let write = PartitionWrite {
        tp: tp(),
        records: batch,
    };
    ea.append_internal(TOPIC_NAME, vec![write], NOW_MS)
        .await
        .unwrap();
    let got = read(ea, 0, false).await.unwrap();
    assert_eq!(values(&got), [(0, value.clone()), (1, "small".into())]);
    assert!(ea.has_open_transaction(&tp(), 9, 1).await.unwrap());
    assert!(
        !ea.has_open_transaction(&tp(), 9, 2).await.unwrap(),
        "the next epoch's batch is not part of this transaction"
    );

    // An older epoch of the same producer is fenced, and fails the whole step.
    let stale = PartitionWrite {
        tp: tp(),
        records: transactional(&["old"], (9, 0, -1)),
    };
    let failed = ea.append_internal(TOPIC_NAME, vec![stale], NOW_MS).await;
    assert!(
        matches!(
            failed,
            Err(StoreError::Log(LogError::InvalidProducerEpoch { .. }))
        ),
        "{failed:?}"
    );
    write_marker(ea, marker((9, 1), 0, true)).await.unwrap();
    assert!(!ea.has_open_transaction(&tp(), 9, 1).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_end_transactions_for_read_committed_readers() {
    // Goal: a transaction's records stay below the last stable offset until its commit
    // marker, which any broker may write; an aborted transaction is listed in the aborted
    // transactions a read_committed read carries; with two transactions open, ending the
    // first moves the last stable offset to the second, not to the end; stale markers are
    // fenced; markers are skipped by the decoded records.
    let Some(setup) = setup("engine_markers").await else {
        return;
    };
    let config = LogConfig::default();
    let a = setup.broker(0, &config).await;
    let b = setup.broker(1, &config).await;
    let (ea, eb) = (a.engine(), b.engine());

    // 1. Producer 11's transaction, then a plain batch after it.
    append(ea, transactional(&["t1", "t2"], (11, 0, 0)))
        .await
        .unwrap();
    append(ea, plain(&["p"])).await.unwrap();
    let hidden = read(eb, 0, true).await.unwrap();
    assert_eq!((hidden.last_stable_offset, hidden.high_watermark), (0, 3));
    assert!(values(&hidden).is_empty());
    assert!(eb.has_open_transaction(&tp(), 11, 0).await.unwrap());
    assert!(!eb.has_open_transaction(&tp(), 12, 0).await.unwrap());
    let producers = eb.producers(&tp()).await.unwrap();
    assert_eq!(
        producers
            .iter()
            .map(|p| (p.producer_id, p.current_txn_start_offset))
            .collect::<Vec<_>>(),
        [(11, 0)]
    );

    // 2. Committed through the other broker: all of it is visible.
    write_marker(eb, marker((11, 0), 4, true)).await.unwrap();
    let shown = read(ea, 0, true).await.unwrap();
    assert_eq!((shown.last_stable_offset, shown.high_watermark), (4, 4));
    assert_eq!(
        values(&shown),
        [(0, "t1".into()), (1, "t2".into()), (2, "p".into())]
    );
    assert_eq!(shown.aborted.as_deref(), Some(&[][..]));
    assert!(!ea.has_open_transaction(&tp(), 11, 0).await.unwrap());
    let producer = eb.producers(&tp()).await.unwrap()[0];
    assert_eq!(
        (
            producer.coordinator_epoch,
            producer.current_txn_start_offset
        ),
        (4, -1)
    );

    // 3. Fenced markers: an older coordinator, an older producer epoch.
    let fenced = write_marker(ea, marker((11, 0), 3, false)).await;
    assert!(
        matches!(
            fenced,
            Err(StoreError::Log(
                LogError::TransactionCoordinatorFenced { .. }
            ))
        ),
        "{fenced:?}"
    );
    append(ea, transactional(&["u"], (11, 2, 0))).await.unwrap(); // offset 4
    let stale = write_marker(ea, marker((11, 1), 4, true)).await;
    assert!(
        matches!(
            stale,
            Err(StoreError::Log(LogError::InvalidProducerEpoch { .. }))
        ),
        "{stale:?}"
    );

    // 4. Producer 12 opens a transaction after 11's: ending 11's stops the last stable
    //    offset at 12's first offset.
    append(eb, transactional(&["v1", "v2"], (12, 0, 0)))
        .await
        .unwrap(); // 5, 6
    write_marker(ea, marker((11, 2), 4, true)).await.unwrap(); // 7
    let offsets = eb.offsets(&tp()).await.unwrap();
    assert_eq!((offsets.last_stable_offset, offsets.high_watermark), (5, 8));

    // 5. 12 aborts: read_committed readers get its range to skip.
    write_marker(eb, marker((12, 0), 4, false)).await.unwrap(); // 8
    let done = read(ea, 0, true).await.unwrap();
    assert_eq!((done.last_stable_offset, done.high_watermark), (9, 9));
    let aborted: Vec<_> = done
        .aborted
        .clone()
        .unwrap()
        .into_iter()
        .map(|t: AbortedTxn| (t.producer_id, t.first_offset, t.last_offset))
        .collect();
    assert_eq!(aborted, [(12, 5, 8)]);
    let decoded = ea.read_records(&tp(), 0, 100, BYTES_MAX).await.unwrap();
    let offsets: Vec<i64> = decoded.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [0, 1, 2, 4, 5, 6], "markers are not records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_topic_is_unknown_and_its_watchers_wake() {
    // Goal: once the catalog deleted a topic and the broker is told, its partitions are
    // unknown to reads, watches and appends, and a fetch waiting on one wakes at once.
    let Some(setup) = setup("engine_delete_topic").await else {
        return;
    };
    let a = setup.broker(0, &LogConfig::default()).await;
    let ea = a.engine();
    append(ea, plain(&["a"])).await.unwrap();
    assert!(read(ea, 1, false).await.is_some());
    let notify = ea.watch(&tp()).expect("a partition read");
    let woken = notify.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();

    // As the catalog commit that deletes the topic does.
    setup
        .admin
        .execute(
            "UPDATE partitions SET deleted_at = now() WHERE topic_id = $1",
            &[&TOPIC],
        )
        .await
        .unwrap();
    ea.delete_topic(TOPIC_NAME, TOPIC).unwrap();
    tokio::time::timeout(WOKEN_WITHIN, woken)
        .await
        .expect("the waiting watch woke");
    assert!(read(ea, 1, false).await.is_none());
    assert!(ea.watch(&tp()).is_none());
    assert!(matches!(
        append(ea, plain(&["b"])).await,
        Err(Refused::UnknownPartition)
    ));
    assert!(matches!(
        ea.offsets(&tp()).await,
        Err(StoreError::UnknownPartition)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topics_settings_come_from_the_lifecycle_calls() {
    // Goal: writes are checked by the settings the last `open_partitions` or `set_config`
    // gave their topic, at once; a topic never opened is unknown to appends.
    let Some(setup) = setup("engine_set_config").await else {
        return;
    };
    let a = setup.broker(0, &LogConfig::default()).await;
    let ea = a.engine();
    let value = "v".repeat(300);
    append(ea, plain(&[&value])).await.unwrap();
    let strict = LogConfig {
        max_message_bytes: 100,
        ..LogConfig::default()
    };
    ea.set_config(TOPIC_NAME, TOPIC, &strict);
    let refused = append(ea, plain(&[&value])).await;
    assert!(
        matches!(
            refused,
            Err(Refused::Log {
                error: LogError::RecordTooLarge { .. },
                ..
            })
        ),
        "{refused:?}"
    );
    let other = TopicPartition {
        topic: "other".into(),
        topic_id: Uuid::from_u128(0xf00),
        partition: 0,
    };
    let write = PartitionWrite {
        tp: other,
        records: plain(&["x"]),
    };
    let unknown = ea
        .append(vec![write], Acks::All, NOW_MS)
        .await
        .pop()
        .unwrap();
    assert!(
        matches!(unknown, Err(Refused::UnknownPartition)),
        "{unknown:?}"
    );
}
