//! The LISTEN connection against a real PostgreSQL.

use crate::common;

use std::time::Duration;

use tokio::sync::broadcast;
use weir_cluster::notify::{Listener, Signal, CHANNELS, CHANNEL_CATALOG, CHANNEL_MEMBERS};
use weir_cluster::pg::Connector;

/// Long enough that polls do not crowd the notifications out of a test's view, short
/// enough that the poll test takes a second.
const POLL: Duration = Duration::from_millis(100);
/// How long any one expected signal may take.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(10);

/// The next signal that `keep` accepts, skipping others; panics after SIGNAL_TIMEOUT.
async fn next_matching(
    signals: &mut broadcast::Receiver<Signal>,
    what: &str,
    keep: impl Fn(&Signal) -> bool,
) -> Signal {
    tokio::time::timeout(SIGNAL_TIMEOUT, async {
        loop {
            match signals.recv().await {
                Ok(signal) if keep(&signal) => return signal,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("the listener stopped"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: not within {SIGNAL_TIMEOUT:?}"))
}

async fn connected(signals: &mut broadcast::Receiver<Signal>) -> i32 {
    match next_matching(signals, "a LISTEN connection", |s| {
        matches!(s, Signal::Connected { .. })
    })
    .await
    {
        Signal::Connected { backend_pid } => backend_pid,
        _ => unreachable!(),
    }
}

async fn notified(signals: &mut broadcast::Receiver<Signal>, channel: &str, payload: &str) {
    next_matching(signals, &format!("NOTIFY {channel} {payload}"), |s| {
        matches!(s, Signal::Notification { channel: c, payload: p } if &**c == channel && &**p == payload)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_arrive_and_listen_reconnects_after_its_backend_is_killed() {
    // Goal: notifications on our channels reach subscribers; when an operator (or a
    // restart) ends the LISTEN connection, the listener connects again by itself, says so
    // (consumers must then look at everything), and later notifications arrive again.
    let Some(url) = common::database("listen_reconnects").await else {
        return;
    };
    let listener = Listener::spawn(Connector::new(&url).unwrap(), CHANNELS, POLL);
    let mut signals = listener.subscribe();
    let first_pid = connected(&mut signals).await;
    assert_eq!(*listener.backend_pid().borrow(), Some(first_pid));

    let other = common::connect(&url).await;
    other
        .batch_execute("NOTIFY weir_members, '41'")
        .await
        .unwrap();
    notified(&mut signals, CHANNEL_MEMBERS, "41").await;
    // Channels we did not ask for are not delivered: this one is sent first, so if it
    // were delivered it would come before the catalog notification.
    other
        .batch_execute("NOTIFY weir_other, 'x'; NOTIFY weir_catalog, '7'")
        .await
        .unwrap();
    let next = next_matching(&mut signals, "a notification", |s| {
        matches!(s, Signal::Notification { .. })
    })
    .await;
    assert!(
        matches!(&next, Signal::Notification { channel, .. } if &**channel == CHANNEL_CATALOG),
        "{next:?}"
    );

    let terminated: bool = other
        .query_one("SELECT pg_terminate_backend($1)", &[&first_pid])
        .await
        .unwrap()
        .get(0);
    assert!(terminated);
    let second_pid = connected(&mut signals).await;
    assert_ne!(second_pid, first_pid, "a new backend");
    other
        .batch_execute("NOTIFY weir_members, '42'")
        .await
        .unwrap();
    notified(&mut signals, CHANNEL_MEMBERS, "42").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_tick_while_connected_and_while_postgres_is_unreachable() {
    // Goal: the fallback poll ticks every poll period, so a consumer that missed a
    // notification looks again within one period; and it keeps ticking while the LISTEN
    // connection cannot be made (consumers judge for themselves whether PostgreSQL is
    // back).
    let Some(url) = common::database("polls_tick").await else {
        return;
    };
    let listener = Listener::spawn(Connector::new(&url).unwrap(), CHANNELS, POLL);
    let mut signals = listener.subscribe();
    connected(&mut signals).await;
    let started = tokio::time::Instant::now();
    for _ in 0..5 {
        next_matching(&mut signals, "a poll", |s| *s == Signal::Poll).await;
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= 4 * POLL - Duration::from_millis(20),
        "5 polls in {elapsed:?}"
    );
    assert!(elapsed <= 10 * POLL, "5 polls took {elapsed:?}");

    // Nothing listens on this port: every connection attempt is refused.
    let unreachable = common::with_database("postgresql://weir@127.0.0.1:1/x", "x");
    let listener = Listener::spawn(Connector::new(&unreachable).unwrap(), CHANNELS, POLL);
    let mut signals = listener.subscribe();
    for _ in 0..3 {
        next_matching(&mut signals, "a poll while disconnected", |s| {
            *s == Signal::Poll
        })
        .await;
    }
    assert_eq!(*listener.backend_pid().borrow(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_listen_connection_is_noticed_and_replaced() {
    // Goal: when PostgreSQL stops answering without closing the connection (a SIGSTOPped
    // server, a partition), the listener notices by its ping and gives the connection up
    // rather than waiting forever for notifications; once the server answers again it
    // listens again and notifications arrive.
    let Some(url) = common::database("listen_hangs").await else {
        return;
    };
    let relay = common::Relay::start(&url).await;
    let listener = Listener::spawn(Connector::new(&relay.url).unwrap(), CHANNELS, POLL);
    let mut signals = listener.subscribe();
    let first_pid = connected(&mut signals).await;
    relay.freeze();
    let mut pid = listener.backend_pid();
    tokio::time::timeout(
        SIGNAL_TIMEOUT + SIGNAL_TIMEOUT,
        pid.wait_for(|p| p.is_none()),
    )
    .await
    .expect("the hung connection is given up")
    .unwrap();
    relay.thaw();
    let second_pid = connected(&mut signals).await;
    assert_ne!(second_pid, first_pid);
    let other = common::connect(&url).await;
    other
        .batch_execute("NOTIFY weir_members, '43'")
        .await
        .unwrap();
    notified(&mut signals, CHANNEL_MEMBERS, "43").await;
}
