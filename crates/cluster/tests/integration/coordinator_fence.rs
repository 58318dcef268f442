//! The fence on coordinators' writes: with two brokers registered on one database, only
//! the controller by PostgreSQL's view (the live broker with the smallest node id, under
//! its current incarnation) commits writes to the coordinators' internal topics; a broker
//! that is not, or no longer is, gets NOT_COORDINATOR. The same holds for the transaction
//! markers the coordinator writes; an admin tool's markers (WriteTxnMarkers) any broker
//! writes.

use crate::common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::Compression;
use uuid::Uuid;
use weir_cluster::members::Registration;
use weir_cluster::{AppendSettings, ClusterLog, ClusterLogSettings, CoordinatorFence};
use weir_log::batch::{encode_batch, NewRecord};
use weir_log::store::{
    Acks, CoordinatorLog, LogLifecycle, LogStore, MarkerWrite, Opening, PartitionWrite, StoreError,
    TopicPartition,
};
use weir_log::{LogConfig, LogError};

const NOW_MS: i64 = 1_700_000_000_000;
const TOPIC: Uuid = Uuid::from_u128(0xc0);
const TOPIC_NAME: &str = "__consumer_offsets";
/// The shortest lease the config accepts, so that expiry takes a second.
const LEASE: Duration = Duration::from_millis(1_000);

fn write(value: &str) -> PartitionWrite {
    let records = [NewRecord {
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        timestamp_ms: NOW_MS,
    }];
    PartitionWrite {
        tp: TopicPartition {
            topic: TOPIC_NAME.into(),
            topic_id: TOPIC,
            partition: 0,
        },
        records: BytesMut::from(&encode_batch(&records, None, Compression::None).unwrap()[..]),
    }
}

/// One broker's engine, fenced to its registration.
fn engine(url: &str, bucket: &weir_cluster::Bucket, registration: &Registration) -> ClusterLog {
    let engine = ClusterLog::start(
        common::session(url),
        bucket.clone(),
        None,
        ClusterLogSettings {
            append: AppendSettings {
                batch_window: Duration::from_millis(5),
                node_id: registration.node_id(),
                ..AppendSettings::default()
            },
            read: Default::default(),
        },
    );
    engine
        .open_partitions(
            TOPIC_NAME,
            TOPIC,
            0..1,
            &LogConfig::default(),
            Opening::Existing,
        )
        .unwrap();
    engine.set_coordinator_fence(CoordinatorFence {
        node_id: registration.node_id(),
        incarnation: registration.incarnation(),
    });
    engine
}

async fn coordinator_write(engine: &ClusterLog, value: &str) -> Result<(), StoreError> {
    engine
        .append_internal(TOPIC_NAME, vec![write(value)], NOW_MS)
        .await
}

fn is_not_coordinator(result: &Result<(), StoreError>) -> bool {
    matches!(result, Err(StoreError::Log(LogError::NotCoordinator(_))))
}

/// The partition's next offset, as PostgreSQL holds it.
async fn next_offset(admin: &tokio_postgres::Client) -> i64 {
    admin
        .query_one(
            "SELECT next_offset FROM partitions WHERE topic_id = $1",
            &[&TOPIC],
        )
        .await
        .unwrap()
        .get(0)
}

/// Two brokers registered on a fresh database (ids 1 and 2), each with its fenced engine,
/// and one partition of the coordinators' topic; `None` without a test database.
struct TwoBrokers {
    admin: tokio_postgres::Client,
    a: Registration,
    b: Registration,
    ea: ClusterLog,
    eb: ClusterLog,
    _dir: tempfile::TempDir,
}

async fn two_brokers(name: &str) -> Option<TwoBrokers> {
    let url = common::database(name).await?;
    common::migrated(&url).await;
    let admin = common::connect(&url).await;
    admin
        .execute(
            "INSERT INTO partitions (topic_id, partition) VALUES ($1, 0)",
            &[&TOPIC],
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bucket = common::bucket(name, dir.path());
    let mut registrations = Vec::new();
    for (node_id, port) in [(1, 9092), (2, 9093)] {
        let endpoints = common::endpoints("127.0.0.1", port);
        registrations.push(
            Registration::register_with(common::session(&url), Some(node_id), &endpoints, LEASE)
                .await
                .unwrap(),
        );
    }
    let (b, a) = (registrations.pop().unwrap(), registrations.pop().unwrap());
    let ea = engine(&url, &bucket, &a);
    let eb = engine(&url, &bucket, &b);
    Some(TwoBrokers {
        admin,
        a,
        b,
        ea,
        eb,
        _dir: dir,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_controller_commits_coordinator_writes() {
    // Goal: of two registered brokers, the lower id's coordinator write commits and the
    // higher id's is refused with NOT_COORDINATOR (its producers' writes still commit);
    // once the lower one's lease has expired by PostgreSQL's clock, the higher one's
    // coordinator writes commit and the former controller's are refused.
    let Some(TwoBrokers {
        admin,
        mut a,
        b,
        ea,
        eb,
        _dir,
    }) = two_brokers("coordinator_fence").await
    else {
        return;
    };

    coordinator_write(&ea, "from the controller").await.unwrap();
    let refused = coordinator_write(&eb, "from another broker").await;
    assert!(is_not_coordinator(&refused), "{refused:?}");
    let produced = eb
        .append(vec![write("a producer's")], Acks::All, NOW_MS)
        .await;
    assert!(produced[0].is_ok(), "{produced:?}");
    let next_offset = next_offset(&admin).await;
    assert_eq!(next_offset, 2, "the refused write took no offset");

    // Broker 1 freezes: its lease runs out, and broker 2 becomes the controller.
    a.stop_renewing().await;
    let taken_over = common::wait_for(
        "broker 2's coordinator write to commit",
        Duration::from_secs(10),
        || async {
            let result = coordinator_write(&eb, "from the new controller").await;
            (!is_not_coordinator(&result)).then_some(result)
        },
    )
    .await;
    taken_over.unwrap();
    let stale = coordinator_write(&ea, "from the former controller").await;
    assert!(is_not_coordinator(&stale), "{stale:?}");
    b.deregister().await.unwrap();
}

/// An abort marker for a producer with no open transaction here (it only adds a control
/// batch), from the coordinator or from an admin tool.
async fn abort_marker(engine: &ClusterLog, from_coordinator: bool) -> Result<(), StoreError> {
    let marker = MarkerWrite {
        tp: write("").tp,
        producer_id: 7,
        producer_epoch: 0,
        coordinator_epoch: 0,
        commit: false,
        from_coordinator,
    };
    common::write_marker(engine, marker, NOW_MS).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_controller_commits_the_coordinators_markers() {
    // Goal: of two registered brokers, the coordinator's marker commits at the lower id
    // and is refused with NOT_COORDINATOR at the higher one, taking no offset; a marker an
    // admin tool asked for commits at either.
    let Some(TwoBrokers {
        admin,
        a,
        b,
        ea,
        eb,
        _dir,
    }) = two_brokers("coordinator_fence_markers").await
    else {
        return;
    };

    abort_marker(&ea, true).await.unwrap();
    let refused = abort_marker(&eb, true).await;
    assert!(is_not_coordinator(&refused), "{refused:?}");
    abort_marker(&eb, false).await.unwrap();
    let next_offset = next_offset(&admin).await;
    assert_eq!(next_offset, 2, "the refused marker took no offset");
    a.deregister().await.unwrap();
    b.deregister().await.unwrap();
}
