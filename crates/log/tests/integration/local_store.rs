//! The local engine driven only through the [`LogStore`] boundary, as the broker's Produce
//! and Fetch drive it: results in the order of the writes, reads within their byte limits,
//! fsyncs waited for exactly when acks=all meets `--fsync always`, wake-ups on append.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use uuid::Uuid;
use weir_log::batch::{encode_batch, NewRecord};
use weir_log::store::{
    Acks, CoordinatorLog, LogLifecycle, LogStore, Opening, PartitionWrite, ReadSpec, Refused,
    TopicPartition,
};
use weir_log::{FsyncPolicy, LocalLog, LogConfig};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.to_string(),
        topic_id: Uuid::nil(),
        partition,
    }
}

fn batch(values: &[&str], producer: Option<(i64, i16, i32)>) -> BytesMut {
    let records: Vec<NewRecord> = values
        .iter()
        .map(|v| NewRecord {
            key: None,
            value: Some(Bytes::from(v.to_string())),
            timestamp_ms: now_ms(),
        })
        .collect();
    encode_batch(&records, producer, Compression::None).expect("encodes")
}

fn write(topic: &str, partition: i32, records: BytesMut) -> PartitionWrite {
    PartitionWrite {
        tp: tp(topic, partition),
        records,
    }
}

fn read_spec(
    topic: &str,
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: usize,
) -> ReadSpec {
    ReadSpec {
        tp: tp(topic, partition),
        fetch_offset,
        partition_max_bytes,
        read_committed: false,
    }
}

/// The values of every record in `bytes`, with their offsets.
fn values(bytes: &Bytes) -> Vec<(i64, String)> {
    let mut buf = bytes.clone();
    let mut out = Vec::new();
    while !buf.is_empty() {
        let set = RecordBatchDecoder::decode(&mut buf).expect("whole batches");
        for r in set.records {
            let value = r.value.map(|v| String::from_utf8_lossy(&v).into_owned());
            out.push((r.offset, value.unwrap_or_default()));
        }
    }
    out
}

/// A node with `topic` of `partitions` partitions, counting the fsyncs it reports.
fn node(
    dir: &std::path::Path,
    fsync: FsyncPolicy,
    topic: &str,
    partitions: i32,
) -> (LocalLog, Arc<AtomicUsize>) {
    let fsyncs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fsyncs);
    let logs = LocalLog::new(
        dir,
        fsync,
        Arc::new(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        }),
    );
    logs.open_partitions(
        topic,
        Uuid::nil(),
        0..partitions,
        &LogConfig::default(),
        Opening::New,
    )
    .expect("opens");
    (logs, fsyncs)
}

#[tokio::test]
async fn appends_answer_in_write_order_and_read_back_at_their_offsets() {
    // Goal: a request's writes to several partitions (one of them unknown) come back in
    // write order with the right offsets, and reads return exactly what was stored.
    let dir = tempfile::tempdir().expect("tempdir");
    let (logs, _) = node(dir.path(), FsyncPolicy::Never, "t", 2);
    let first = logs
        .append(
            vec![
                write("t", 0, batch(&["a", "b"], None)),
                write("nope", 0, batch(&["x"], None)),
                write("t", 1, batch(&["c"], None)),
                write("t", 0, batch(&["d"], None)),
            ],
            Acks::Leader,
            now_ms(),
        )
        .await;
    let offsets: Vec<_> = first
        .iter()
        .map(|r| r.as_ref().map(|a| (a.base_offset, a.last_offset)).ok())
        .collect();
    assert_eq!(
        offsets,
        vec![Some((0, 1)), None, Some((0, 0)), Some((2, 2))]
    );
    assert!(matches!(first[1], Err(Refused::UnknownPartition)));

    let specs = vec![
        read_spec("t", 0, 1, 1 << 20),
        read_spec("t", 1, 0, 1 << 20),
        read_spec("t", 7, 0, 1 << 20),
    ];
    let reads = logs.read(&specs, 1 << 20).await;
    let p0 = reads[0].as_ref().expect("t-0 exists");
    assert_eq!(p0.high_watermark, 3);
    assert_eq!(p0.log_start_offset, 0);
    // Whole batches: the one holding offset 1 starts at 0.
    let got = values(p0.records.as_ref().expect("readable"));
    assert_eq!(got, vec![(0, "a".into()), (1, "b".into()), (2, "d".into())]);
    let p1 = reads[1].as_ref().expect("t-1 exists");
    assert_eq!(
        values(p1.records.as_ref().expect("readable")),
        vec![(0, "c".into())]
    );
    assert!(reads[2].is_none(), "no partition 7");
}

#[tokio::test]
async fn reads_keep_to_the_byte_limits_but_always_send_a_first_batch() {
    // Goal: the first batch of a response goes whole even past both limits; after it, a
    // partition whose next batch does not fit in what is left gets nothing.
    let dir = tempfile::tempdir().expect("tempdir");
    let (logs, _) = node(dir.path(), FsyncPolicy::Never, "t", 2);
    let big = "x".repeat(4000);
    let results = logs
        .append(
            vec![
                write("t", 0, batch(&[&big], None)),
                write("t", 1, batch(&[&big], None)),
            ],
            Acks::Leader,
            now_ms(),
        )
        .await;
    assert!(results.iter().all(|r| r.is_ok()));
    let specs = vec![read_spec("t", 0, 0, 100), read_spec("t", 1, 0, 100)];
    let reads = logs.read(&specs, 1000).await;
    let first = reads[0].as_ref().unwrap().records.as_ref().unwrap();
    assert!(first.len() > 4000, "the first batch is sent whole");
    let second = reads[1].as_ref().unwrap().records.as_ref().unwrap();
    assert!(second.is_empty(), "nothing fits after the first");
    assert_eq!(reads[1].as_ref().unwrap().high_watermark, 1);
}

#[tokio::test]
async fn acks_all_under_fsync_always_waits_for_one_shared_fsync() {
    // Goal: with `--fsync always`, acks=all resolves only through an fsync of the written
    // partitions, timed once for them all; acks=1 resolves at once without one, and so does
    // acks=all under the interval policy.
    let dir = tempfile::tempdir().expect("tempdir");
    let (logs, fsyncs) = node(dir.path(), FsyncPolicy::Always, "t", 3);
    let writes = |n: &str| {
        (0..3)
            .map(|p| write("t", p, batch(&[n], None)))
            .collect::<Vec<_>>()
    };
    let leader = logs
        .append(writes("a"), Acks::Leader, now_ms())
        .now_or_never();
    assert!(leader.is_some(), "acks=1 is answered at once");
    assert_eq!(fsyncs.load(Ordering::Relaxed), 0);

    let mut all = logs.append(writes("b"), Acks::All, now_ms());
    assert!(
        (&mut all).now_or_never().is_none(),
        "acks=all waits for the fsync"
    );
    let results = all.await;
    assert!(results
        .iter()
        .all(|r| r.as_ref().is_ok_and(|a| a.base_offset == 1)));
    assert_eq!(
        fsyncs.load(Ordering::Relaxed),
        1,
        "one fsync for three partitions"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let (logs, fsyncs) = node(dir.path(), FsyncPolicy::Interval, "t", 3);
    assert!(logs
        .append(writes("c"), Acks::All, now_ms())
        .now_or_never()
        .is_some());
    assert_eq!(fsyncs.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_producer_retry_is_answered_with_its_first_offsets() {
    // Goal: an idempotent retry of a stored batch is a duplicate with the original offsets,
    // and a sequence gap is refused with the log's error and the log start offset.
    let dir = tempfile::tempdir().expect("tempdir");
    let (logs, _) = node(dir.path(), FsyncPolicy::Never, "t", 1);
    let producer = Some((7, 0, 0));
    let first = logs
        .append(
            vec![write("t", 0, batch(&["a", "b"], producer))],
            Acks::All,
            now_ms(),
        )
        .await;
    let retry = logs
        .append(
            vec![write("t", 0, batch(&["a", "b"], producer))],
            Acks::All,
            now_ms(),
        )
        .await;
    let (first, retry) = (first[0].as_ref().unwrap(), retry[0].as_ref().unwrap());
    assert!(!first.duplicate);
    assert!(retry.duplicate);
    assert_eq!((retry.base_offset, retry.last_offset), (0, 1));

    let gap = logs
        .append(
            vec![write("t", 0, batch(&["c"], Some((7, 0, 5))))],
            Acks::All,
            now_ms(),
        )
        .await;
    match &gap[0] {
        Err(Refused::Log {
            error,
            log_start_offset,
        }) => {
            assert!(error.to_string().contains("expected 2"), "{error}");
            assert_eq!(*log_start_offset, 0);
        }
        other => panic!("expected an out-of-order refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_watch_wakes_on_append_and_only_for_its_partition() {
    // Goal: a fetch parked on a partition's watch wakes when that partition is appended to,
    // not when another one is.
    let dir = tempfile::tempdir().expect("tempdir");
    let (logs, _) = node(dir.path(), FsyncPolicy::Never, "t", 2);
    let watch = logs.watch(&tp("t", 0)).expect("t-0 exists");
    assert!(logs.watch(&tp("t", 9)).is_none());
    let mut woken = Box::pin(watch.notified());
    woken.as_mut().enable();
    logs.append(
        vec![write("t", 1, batch(&["x"], None))],
        Acks::Leader,
        now_ms(),
    )
    .await;
    assert!(
        (&mut woken).now_or_never().is_none(),
        "t-1's append is not t-0's"
    );
    logs.append(
        vec![write("t", 0, batch(&["y"], None))],
        Acks::Leader,
        now_ms(),
    )
    .await;
    assert!(
        woken.now_or_never().is_some(),
        "t-0's append wakes its watch"
    );
}

#[tokio::test]
async fn a_coordinator_step_is_durable_with_one_journal_fsync_and_comes_back_from_it() {
    // Goal: under `fsync always`, a coordinator step touching three partitions of a
    // journalled topic costs one fsync (the journal's), and what a crash took from the
    // partitions comes back from the journal at the same offsets when the node opens again.
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("offsets-journal");
    let topic = "__consumer_offsets";
    let (logs, fsyncs) = node(&dir.path().join("a"), FsyncPolicy::Always, topic, 3);
    logs.recover_journal(topic, &journal, now_ms()).unwrap();
    let step = (0..3)
        .map(|p| write(topic, p, batch(&[&format!("commit-{p}")], None)))
        .collect();
    logs.append_internal(topic, step, now_ms())
        .await
        .expect("durable");
    assert_eq!(
        fsyncs.load(Ordering::Relaxed),
        1,
        "one fsync for three partitions"
    );
    let read = logs.read(&[read_spec(topic, 2, 0, 1 << 20)], 1 << 20).await;
    let records = read[0].as_ref().unwrap().records.as_ref().unwrap();
    assert_eq!(values(records), vec![(0, "commit-2".to_string())]);
    drop(logs);

    // The same journal beside partitions that lost everything (a crash before their pages
    // reached the disk): opening puts each batch back at its offset.
    let (reopened, _) = node(&dir.path().join("b"), FsyncPolicy::Always, topic, 3);
    reopened.recover_journal(topic, &journal, now_ms()).unwrap();
    for p in 0..3 {
        let read = reopened
            .read(&[read_spec(topic, p, 0, 1 << 20)], 1 << 20)
            .await;
        let records = read[0].as_ref().unwrap().records.as_ref().unwrap();
        assert_eq!(values(records), vec![(0, format!("commit-{p}"))]);
    }

    // A step to a partition the engine does not hold fails whole.
    let outcome = reopened
        .append_internal(topic, vec![write(topic, 7, batch(&["x"], None))], now_ms())
        .await;
    assert!(matches!(
        outcome,
        Err(weir_log::store::StoreError::UnknownPartition)
    ));
}
