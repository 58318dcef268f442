//! `PgCatalog` against a real PostgreSQL.

use crate::common;

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;
use uuid::Uuid;
use weir_cluster::notify::{Listener, CHANNELS};
use weir_cluster::pg::Connector;
use weir_cluster::{CatalogSnapshot, CommitOutcome, PgCatalog};
use weir_meta::Catalog;

/// How long a second store may take to see a commit through a notification.
const NOTIFIED_WITHIN: Duration = Duration::from_secs(1);

async fn store(url: &str) -> PgCatalog {
    PgCatalog::open(common::session(url), None).await.unwrap()
}

fn with_topic(snapshot: &CatalogSnapshot, name: &str, partitions: i32) -> Catalog {
    let mut next = snapshot.catalog.clone();
    next.create_topic(name, Uuid::new_v4(), partitions, 1, BTreeMap::new(), false)
        .unwrap();
    next
}

fn topic_names(snapshot: &CatalogSnapshot) -> Vec<&str> {
    snapshot.catalog.topics.keys().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_commit_gets_the_newer_catalog_and_both_changes_land() {
    // Goal: two brokers change the catalog from the same version; the second one's
    // compare-and-set fails and returns the first one's catalog, to which it reapplies
    // its change; in the end both topics exist, and partitions rows follow the topics.
    let Some(url) = common::database("catalog_conflict").await else {
        return;
    };
    common::migrated(&url).await;
    let a = store(&url).await;
    let b = store(&url).await;
    let start = a.current();
    assert_eq!(start.version, 0);
    assert_eq!(
        b.current().catalog.cluster_id,
        start.catalog.cluster_id,
        "one catalog, written once"
    );

    let outcome = a.commit(0, with_topic(&start, "orders", 3)).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
    assert_eq!(
        topic_names(&a.current()),
        ["orders"],
        "the committer's cache has its own commit"
    );

    let stale = b.current();
    let CommitOutcome::Conflict { current } = b
        .commit(stale.version, with_topic(&stale, "payments", 2))
        .await
        .unwrap()
    else {
        panic!("a commit from a stale version must conflict");
    };
    assert_eq!(current.version, 1);
    assert_eq!(topic_names(&current), ["orders"]);
    assert_eq!(b.current(), current, "the conflict refreshed B's cache");
    let retried = b
        .commit(current.version, with_topic(&current, "payments", 2))
        .await
        .unwrap();
    assert_eq!(retried, CommitOutcome::Committed { version: 2 });
    let both = a.reload().await.unwrap();
    assert_eq!(topic_names(&both), ["orders", "payments"]);

    let check = common::connect(&url).await;
    let live: i64 = check
        .query_one(
            "SELECT count(*) FROM partitions WHERE deleted_at IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(live, 5, "3 + 2 partitions rows");

    // Deleting a topic marks its partitions deleted in the same commit.
    let mut next = both.catalog.clone();
    let orders = next.delete_topic("orders").unwrap();
    assert_eq!(
        a.commit(both.version, next).await.unwrap(),
        CommitOutcome::Committed { version: 3 }
    );
    let deleted: i64 = check
        .query_one(
            "SELECT count(*) FROM partitions WHERE topic_id = $1 AND deleted_at IS NOT NULL",
            &[&orders.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(deleted, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_id_ranges_are_disjoint_across_three_stores() {
    // Goal: three brokers handing out producer ids at the same time never hand out one
    // id twice, whether they take one at a time or whole blocks.
    let Some(url) = common::database("producer_ids").await else {
        return;
    };
    common::migrated(&url).await;
    let mut tasks = Vec::new();
    for store_index in 0..3u32 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let store = store(&url).await;
            let mut ranges: Vec<Range<i64>> = Vec::new();
            for i in 0..200u32 {
                let count = [1, 7, 1000][((i + store_index) % 3) as usize];
                let ids = store.allocate_producer_ids(count).await.unwrap();
                assert_eq!(ids.end - ids.start, i64::from(count));
                ranges.push(ids);
            }
            ranges
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_by_key(|r| r.start);
    for pair in all.windows(2) {
        assert!(
            pair[0].end <= pair[1].start,
            "{:?} and {:?} overlap",
            pair[0],
            pair[1]
        );
    }
    assert!(all[0].start >= 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_store_sees_a_commit_by_notification_and_without_one_by_polling() {
    // Goal: a broker learns of another's commit by itself: within a second through
    // `weir_catalog` (the poll is set far longer, so only the notification can explain
    // it), and, with no working LISTEN connection, within a poll period.
    let Some(url) = common::database("catalog_notify").await else {
        return;
    };
    common::migrated(&url).await;
    let writer = store(&url).await;

    let listener = Listener::spawn(
        Connector::new(&url).unwrap(),
        CHANNELS,
        Duration::from_secs(3600),
    );
    let mut connected = listener.backend_pid();
    tokio::time::timeout(
        Duration::from_secs(10),
        connected.wait_for(|pid| pid.is_some()),
    )
    .await
    .unwrap()
    .unwrap();
    let notified = PgCatalog::open(common::session(&url), Some(listener.subscribe()))
        .await
        .unwrap();

    // LISTEN points at a port where nothing answers: only polls reach this one.
    let poll = Duration::from_millis(200);
    let deaf = Listener::spawn(
        Connector::new("postgresql://weir@127.0.0.1:1/x").unwrap(),
        CHANNELS,
        poll,
    );
    let polled = PgCatalog::open(common::session(&url), Some(deaf.subscribe()))
        .await
        .unwrap();

    let mut notified_changes = notified.changed();
    let mut polled_changes = polled.changed();
    let start = writer.current();
    assert_eq!(
        writer
            .commit(start.version, with_topic(&start, "orders", 1))
            .await
            .unwrap(),
        CommitOutcome::Committed { version: 1 }
    );
    tokio::time::timeout(
        NOTIFIED_WITHIN,
        notified_changes.wait_for(|s| s.version == 1),
    )
    .await
    .expect("seen through the notification")
    .unwrap();
    assert_eq!(topic_names(&notified.current()), ["orders"]);
    tokio::time::timeout(3 * poll, polled_changes.wait_for(|s| s.version == 1))
        .await
        .expect("seen through a poll")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_from_three_stores_all_land_once() {
    // Goal: under real contention, compare-and-set with retry loses no update and
    // applies none twice: 3 stores each add 5 topics at the same time; in the end all 15
    // exist, the version counts exactly 15 commits, and every topic has its partition rows.
    let Some(url) = common::database("catalog_contention").await else {
        return;
    };
    common::migrated(&url).await;
    /// More than enough for 15 writers; a store that needs more is livelocked.
    const TRIES_MAX: u32 = 50;
    // All three read version 0 before any writes, so at least two first commits must
    // conflict: the contention is certain, not left to scheduling.
    let all_read = Arc::new(Barrier::new(3));
    let mut writers = Vec::new();
    for store_index in 0..3 {
        let (url, all_read) = (url.clone(), all_read.clone());
        writers.push(tokio::spawn(async move {
            let store = store(&url).await;
            let mut conflicts = 0;
            let mut first = Some(store.current());
            all_read.wait().await;
            for topic in 0..5 {
                let name = format!("t{store_index}_{topic}");
                let mut base = first.take().unwrap_or_else(|| store.current());
                let mut tries = 0;
                loop {
                    tries += 1;
                    assert!(tries <= TRIES_MAX, "{name}: no commit in {TRIES_MAX} tries");
                    match store
                        .commit(base.version, with_topic(&base, &name, 2))
                        .await
                        .unwrap()
                    {
                        CommitOutcome::Committed { .. } => break,
                        CommitOutcome::Conflict { current } => {
                            conflicts += 1;
                            base = current;
                        }
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for writer in writers {
        conflicts += writer.await.unwrap();
    }
    let end = store(&url).await.current();
    assert_eq!(end.catalog.topics.len(), 15);
    assert_eq!(
        end.version, 15,
        "one version per landed update ({conflicts} conflicts retried)"
    );
    assert!(conflicts >= 2, "only {conflicts} conflicts");
    let check = common::connect(&url).await;
    let rows: i64 = check
        .query_one("SELECT count(*) FROM partitions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_commits_through_the_catalog_store_and_a_stale_change_is_refused() {
    // Goal: through `CatalogStore` (what the broker calls), a change made on the stored
    // version commits and returns the next version, while a change another broker made
    // from the same, now stale, version is refused with CatalogConflict (NOT_CONTROLLER to
    // the client), and nothing of it is stored.
    let Some(url) = common::database("catalog_store_trait").await else {
        return;
    };
    common::migrated(&url).await;
    let a = store(&url).await;
    let b = store(&url).await;
    let stale = b.current();
    let mut next = with_topic(&a.current(), "orders", 2);
    let version = weir_meta::CatalogStore::commit(&a, &next).unwrap();
    assert_eq!(version, 1);
    next.version = version;
    assert_eq!(
        a.current().catalog.version,
        1,
        "the cache carries its version"
    );

    let refused = weir_meta::CatalogStore::commit(&b, &with_topic(&stale, "payments", 1));
    assert_eq!(refused, Err(weir_meta::MetaError::CatalogConflict));
    let stored = b.reload().await.unwrap();
    assert_eq!(topic_names(&stored), ["orders"]);
    assert_eq!(stored.catalog.version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_completes_while_every_worker_waits_on_the_brokers_catalog_lock() {
    // Goal: the broker holds its catalog lock across a commit, and its request handlers
    // block on that lock; with every async worker so blocked, the commit (and the reads
    // and producer ids the broker takes the same way) still completes, because it needs no
    // worker of the broker's runtime. Without its own runtime and connection, the commit
    // waited for a worker to drive its connection, and the broker hung.
    let Some(url) = common::database("catalog_store_starved").await else {
        return;
    };
    common::migrated(&url).await;
    let catalog = Arc::new(store(&url).await);
    // Warm the shared connection first, as a running broker has.
    catalog.reload().await.unwrap();
    let lock = Arc::new(std::sync::Mutex::new(()));
    let held = lock.lock().unwrap();
    // Two tasks block both workers on the lock (as handlers calling `state.topic()`).
    let (blocked_tx, mut blocked_rx) = tokio::sync::mpsc::channel(2);
    for _ in 0..2 {
        let lock = Arc::clone(&lock);
        let blocked_tx = blocked_tx.clone();
        tokio::spawn(async move {
            blocked_tx.send(()).await.unwrap();
            drop(lock.lock().unwrap());
        });
    }
    blocked_rx.recv().await.unwrap();
    blocked_rx.recv().await.unwrap();
    // The lock holder commits from a thread of its own (the broker's holder is a worker
    // in `block_in_place`, which hands its tasks to a new worker that then blocks too).
    let committer = Arc::clone(&catalog);
    let handle = tokio::runtime::Handle::current();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _entered = handle.enter();
        let next = with_topic(&committer.current(), "orders", 1);
        let version = weir_meta::CatalogStore::commit(&*committer, &next);
        let latest = weir_meta::CatalogStore::latest(&*committer);
        let id = weir_meta::ProducerIdSource::next_producer_id(&*committer);
        let _ = done_tx.send((version, latest, id));
    });
    let outcome = done_rx.recv_timeout(Duration::from_secs(20));
    drop(held);
    let (version, latest, id) =
        outcome.expect("the commit completed while every worker was blocked");
    assert_eq!(version, Ok(1));
    let latest = latest
        .unwrap()
        .expect("a shared store reads the stored catalog");
    assert!(latest.topics.contains_key("orders"));
    assert!(id.unwrap() >= 0);
}
