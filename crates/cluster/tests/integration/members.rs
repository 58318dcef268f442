//! Broker registration and leases against a real PostgreSQL.

use crate::common;

use std::time::{Duration, Instant};

use weir_cluster::members::{
    LeaseLoss, LeaseState, Registration, LEASE_SAFETY_DIVISOR, RENEWS_PER_LEASE,
};
use weir_cluster::notify::{Listener, CHANNELS};
use weir_cluster::pg::Connector;
use weir_cluster::ClusterError;

/// Short, so that expiry tests take seconds; the minimum the config accepts.
const LEASE: Duration = Duration::from_millis(1_000);

async fn register(
    url: &str,
    node_id: Option<i32>,
    port: u16,
) -> Result<Registration, ClusterError> {
    Registration::register_with(
        common::session(url),
        node_id,
        &common::endpoints("127.0.0.1", port),
        LEASE,
    )
    .await
}

fn node_ids(registration: &Registration) -> Vec<i32> {
    registration
        .live_brokers()
        .iter()
        .map(|b| b.node_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_registries_see_each_other_and_a_clean_stop_leaves_at_once() {
    // Goal: two brokers without --node-id get the lowest free ids, each sees the other
    // with its endpoints (right away on refresh, and in its cached view after a
    // renewal), every change bumps the generation, and a deregistered broker is gone
    // at once, without waiting out its lease.
    let Some(url) = common::database("two_registries").await else {
        return;
    };
    common::migrated(&url).await;
    let a = register(&url, None, 9092).await.unwrap();
    let b = register(&url, None, 9093).await.unwrap();
    assert_eq!((a.node_id(), b.node_id()), (0, 1));

    let seen_by_a = a.refresh().await.unwrap();
    assert_eq!(
        seen_by_a
            .brokers
            .iter()
            .map(|b| b.node_id)
            .collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(
        seen_by_a.brokers[1].endpoints,
        common::endpoints("127.0.0.1", 9093)
    );
    let generation_with_both = seen_by_a.generation;
    // A's cache learns of B by itself, within a renewal or two.
    common::wait_for("A's cached view lists B", LEASE, || async {
        (node_ids(&a) == [0, 1]).then_some(())
    })
    .await;
    assert_eq!(node_ids(&b), [0, 1]);
    assert_eq!(a.generation(), generation_with_both);

    b.deregister().await.unwrap();
    // Read at once, without waiting for any lease to run out.
    let after = a.refresh().await.unwrap();
    assert_eq!(
        after.brokers.iter().map(|b| b.node_id).collect::<Vec<_>>(),
        [0]
    );
    assert!(
        after.generation > generation_with_both,
        "leaving bumps the generation"
    );

    // The freed id is the lowest free one again.
    let c = register(&url, None, 9094).await.unwrap();
    assert_eq!(c.node_id(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_stops_renewing_is_gone_after_one_lease() {
    // Goal: a broker that stops renewing (frozen or dead) stays listed until its lease
    // runs out, then the others reap it: its row is deleted and the generation bumped.
    let Some(url) = common::database("stops_renewing").await else {
        return;
    };
    common::migrated(&url).await;
    let a = register(&url, None, 9092).await.unwrap();
    let mut b = register(&url, None, 9093).await.unwrap();
    common::wait_for("A sees B", LEASE, || async {
        (node_ids(&a) == [0, 1]).then_some(())
    })
    .await;
    let generation_before = a.generation();

    b.stop_renewing().await;
    let stopped = Instant::now();
    assert_eq!(
        a.refresh().await.unwrap().brokers.len(),
        2,
        "B is still listed right after it stopped: its lease has not run out"
    );
    common::wait_for("A's view drops B", 3 * LEASE, || async {
        (node_ids(&a) == [0]).then_some(())
    })
    .await;
    let gone_after = stopped.elapsed();
    // B's last renewal was at most a renewal period before it stopped.
    let earliest = LEASE - LEASE / RENEWS_PER_LEASE;
    assert!(
        gone_after >= earliest - Duration::from_millis(50),
        "B dropped after {gone_after:?}, before its lease ran out"
    );
    assert!(
        a.generation() > generation_before,
        "reaping bumps the generation"
    );
    let check = common::connect(&url).await;
    let rows: i64 = check
        .query_one("SELECT count(*) FROM brokers WHERE node_id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "B's row was reaped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_node_id_is_refused_while_its_holder_is_alive() {
    // Goal: --node-id of a live broker is refused with one sentence naming the flag (not
    // retriable: retrying would not help), and the same id is taken over once the holder's
    // lease has run out.
    let Some(url) = common::database("same_node_id").await else {
        return;
    };
    common::migrated(&url).await;
    let mut holder = register(&url, Some(7), 9092).await.unwrap();
    let generation = holder.refresh().await.unwrap().generation;

    let refused = register(&url, Some(7), 9093)
        .await
        .err()
        .expect("a second node 7 is refused");
    assert!(
        matches!(refused, ClusterError::NodeIdTaken { node_id: 7 }),
        "{refused:?}"
    );
    let message = refused.to_string();
    assert!(
        message.contains("--node-id") && !message.contains('\n'),
        "{message}"
    );
    assert!(!refused.retriable());
    let after = holder.refresh().await.unwrap();
    assert_eq!(
        after.generation, generation,
        "a refused registration changes nothing"
    );
    assert_eq!(
        after.brokers[0].endpoints,
        common::endpoints("127.0.0.1", 9092)
    );

    holder.stop_renewing().await;
    let successor = common::wait_for("node 7 can be taken over", 3 * LEASE, || async {
        register(&url, Some(7), 9093).await.ok()
    })
    .await;
    assert_eq!(successor.node_id(), 7);
    assert_ne!(successor.incarnation(), holder.incarnation());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_node_id_a_broker_takes_the_lowest_expired_or_unused_id() {
    // Goal: a broker started without --node-id reuses the id of a broker whose lease
    // has run out (even before anyone reaped it) rather than growing the ids, and never
    // takes the id of a live one.
    let Some(url) = common::database("lowest_free_id").await else {
        return;
    };
    common::migrated(&url).await;
    let mut first = register(&url, None, 9092).await.unwrap();
    let second = register(&url, None, 9093).await.unwrap();
    assert_eq!((first.node_id(), second.node_id()), (0, 1));
    first.stop_renewing().await;
    second.deregister().await.unwrap();
    // Nobody is left to reap node 0; its lease runs out by PostgreSQL's clock.
    let check = common::connect(&url).await;
    common::wait_for("node 0's lease runs out", 3 * LEASE, || async {
        let expired: bool = check
            .query_one(
                "SELECT lease_expires_at < now() FROM brokers WHERE node_id = 0",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        expired.then_some(())
    })
    .await;
    let third = register(&url, None, 9094).await.unwrap();
    assert_eq!(third.node_id(), 0, "the expired id");
    let fourth = register(&url, None, 9095).await.unwrap();
    assert_eq!(fourth.node_id(), 1, "the unused id, not the live 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_reports_its_lease_lost_when_its_row_is_deleted() {
    // Goal: a broker whose row is deleted behind its back learns it at its next renewal
    // and reports it on the lease watch, instead of carrying on as a node it no longer is.
    let Some(url) = common::database("row_deleted").await else {
        return;
    };
    common::migrated(&url).await;
    let holder = register(&url, None, 9092).await.unwrap();
    let mut lease = holder.lease_state();
    assert_eq!(*lease.borrow(), LeaseState::Held);
    let check = common::connect(&url).await;
    check
        .execute(
            "DELETE FROM brokers WHERE node_id = $1",
            &[&holder.node_id()],
        )
        .await
        .unwrap();
    let state = tokio::time::timeout(LEASE, lease.wait_for(|s| *s != LeaseState::Held))
        .await
        .expect("reported within one lease")
        .map(|s| *s)
        .unwrap();
    assert_eq!(state, LeaseState::Lost(LeaseLoss::RowGone));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_reports_its_lease_lost_when_its_id_is_taken_over() {
    // Goal: a holder that stopped renewing long enough for another broker to take its
    // node id learns, when it renews again, that it was replaced.
    let Some(url) = common::database("id_taken_over").await else {
        return;
    };
    common::migrated(&url).await;
    let holder = register(&url, Some(3), 9092).await.unwrap();
    let mut lease = holder.lease_state();
    // Simulate expiry by PostgreSQL's clock, then a successor taking the id.
    let check = common::connect(&url).await;
    check
        .execute(
            "UPDATE brokers SET lease_expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    let _successor = register(&url, Some(3), 9093).await.unwrap();
    let state = tokio::time::timeout(LEASE, lease.wait_for(|s| *s != LeaseState::Held))
        .await
        .expect("reported within one lease")
        .map(|s| *s)
        .unwrap();
    assert_eq!(state, LeaseState::Lost(LeaseLoss::Replaced));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewer_whose_connection_is_killed_reconnects_and_keeps_its_lease() {
    // Goal: losing the renewal connection (PostgreSQL restarting a backend, an operator
    // ending it) costs one renewal, not the lease: the renewer connects again in time.
    let Some(url) = common::database("renewer_reconnects").await else {
        return;
    };
    common::migrated(&url).await;
    let holder = register(&url, None, 9092).await.unwrap();
    let lease = holder.lease_state();
    let check = common::connect(&url).await;
    let kill_others = "SELECT count(pg_terminate_backend(pid))::int FROM pg_stat_activity
                        WHERE datname = current_database() AND pid <> pg_backend_pid()";
    for _ in 0..3 {
        let killed: i32 = check.query_one(kill_others, &[]).await.unwrap().get(0);
        assert!(killed >= 1, "the renewer's connection was there to kill");
        tokio::time::sleep(LEASE / 2).await;
    }
    tokio::time::sleep(LEASE).await;
    assert_eq!(*lease.borrow(), LeaseState::Held);
    let live: bool = check
        .query_one(
            "SELECT lease_expires_at > now() FROM brokers WHERE node_id = $1",
            &[&holder.node_id()],
        )
        .await
        .unwrap()
        .get(0);
    assert!(live, "the lease was renewed after the kills");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_gives_up_its_lease_when_postgres_stops_answering() {
    // Goal: when PostgreSQL hangs (connections open, nothing answers), the holder reports
    // its lease lost by its own monotonic deadline, before PostgreSQL would let another
    // broker take its id, and not long before that either.
    let Some(url) = common::database("postgres_hangs").await else {
        return;
    };
    common::migrated(&url).await;
    let relay = common::Relay::start(&url).await;
    let holder = register(&relay.url, None, 9092).await.unwrap();
    let mut lease = holder.lease_state();
    // Let one renewal pass through the relay first, so the deadline counts from it.
    tokio::time::sleep(LEASE / RENEWS_PER_LEASE + Duration::from_millis(50)).await;
    relay.freeze();
    let frozen = Instant::now();
    let state = tokio::time::timeout(2 * LEASE, lease.wait_for(|s| *s != LeaseState::Held))
        .await
        .expect("reported within two leases")
        .map(|s| *s)
        .unwrap();
    let lost_after = frozen.elapsed();
    assert_eq!(state, LeaseState::Lost(LeaseLoss::Unreachable));
    let local_lease = LEASE - LEASE / LEASE_SAFETY_DIVISOR;
    assert!(
        lost_after <= local_lease + Duration::from_millis(100),
        "lost only after {lost_after:?}"
    );
    assert!(
        lost_after >= local_lease - LEASE / RENEWS_PER_LEASE - Duration::from_millis(100),
        "gave up after {lost_after:?}, too early"
    );
    relay.thaw();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_sees_joins_and_leaves_by_notification_before_its_next_renewal() {
    // Goal: with `weir_members` followed, a broker's cached view shows a join and a
    // clean leave within a fraction of a second, although its lease (and so its own
    // refresh by renewal) is a minute long.
    let Some(url) = common::database("follow_members").await else {
        return;
    };
    common::migrated(&url).await;
    let long_lease = Duration::from_secs(60);
    let register_long = |port| {
        let url = url.clone();
        async move {
            Registration::register_with(
                common::session(&url),
                None,
                &common::endpoints("127.0.0.1", port),
                long_lease,
            )
            .await
            .unwrap()
        }
    };
    let listener = Listener::spawn(
        Connector::new(&url).unwrap(),
        CHANNELS,
        Duration::from_secs(3600),
    );
    let mut pid = listener.backend_pid();
    tokio::time::timeout(Duration::from_secs(10), pid.wait_for(|p| p.is_some()))
        .await
        .unwrap()
        .unwrap();
    let mut a = register_long(9092).await;
    a.follow(listener.subscribe());

    let within = Duration::from_millis(500);
    let b = register_long(9093).await;
    common::wait_for("A sees B join", within, || async {
        (node_ids(&a) == [0, 1]).then_some(())
    })
    .await;
    b.deregister().await.unwrap();
    common::wait_for("A sees B leave", within, || async {
        (node_ids(&a) == [0]).then_some(())
    })
    .await;
}
