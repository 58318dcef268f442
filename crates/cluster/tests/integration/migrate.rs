//! Schema migrations against a real PostgreSQL.

use crate::common;

use std::sync::Arc;

use tokio::sync::Barrier;
use weir_cluster::migrate::{migrate, MIGRATIONS};
use weir_cluster::pg::Connector;

/// How many brokers start at the same moment in the race below.
const RACERS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_from_three_brokers_apply_once() {
    // Goal: three brokers starting together on an empty database apply each migration
    // exactly once between them, none fails, and all end at the same version; a later
    // start applies nothing.
    let Some(url) = common::database("concurrent_migrations").await else {
        return;
    };
    let connector = Connector::new(&url).unwrap();
    // Connect first, then release all three at once, so they race on the migration and
    // not on connecting.
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let mut client = connector.connect().await.unwrap();
        let barrier = barrier.clone();
        racers.push(tokio::spawn(async move {
            barrier.wait().await;
            migrate(&mut client).await
        }));
    }
    let mut applied = Vec::new();
    for racer in racers {
        let migrated = racer
            .await
            .unwrap()
            .expect("every racer's migration succeeds");
        assert_eq!(migrated.version, MIGRATIONS.len() as i32);
        applied.extend(migrated.applied);
    }
    let all: Vec<i32> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
    assert_eq!(applied, all, "each migration applied once, by one racer");

    let check = common::connect(&url).await;
    let versions: Vec<i32> = check
        .query("SELECT version FROM weir_schema ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, all);
    let cluster = check
        .query_one("SELECT count(*), min(cluster_id) FROM cluster", &[])
        .await
        .unwrap();
    assert_eq!(cluster.get::<_, i64>(0), 1, "one cluster row");
    assert_eq!(
        cluster.get::<_, String>(1).len(),
        22,
        "a Kafka-style cluster id"
    );

    let again = migrate(&mut connector.connect().await.unwrap())
        .await
        .unwrap();
    assert!(again.applied.is_empty(), "a later start applies nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_the_binary_is_refused() {
    // Goal: a broker never runs against a schema from a newer weir (it would misread it);
    // it says so in one sentence and the error is not retriable.
    let Some(url) = common::database("newer_schema").await else {
        return;
    };
    common::migrated(&url).await;
    let check = common::connect(&url).await;
    check
        .execute("INSERT INTO weir_schema (version) VALUES (1000)", &[])
        .await
        .unwrap();
    let error = migrate(&mut Connector::new(&url).unwrap().connect().await.unwrap())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("upgrade the broker"), "{error}");
    assert!(!error.retriable());
}
