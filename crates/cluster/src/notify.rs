//! One LISTEN connection per broker, turning PostgreSQL's notifications into
//! [`Signal`]s, with a poll tick beside them.
//!
//! Notifications are a fast path only: one sent while the connection was down is lost
//! for good. So every consumer treats a [`Signal`] as "look now", and also looks on each
//! [`Signal::Poll`] (every `poll_ms`) and [`Signal::Connected`]; a lost notification
//! then costs at most one poll period.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_postgres::AsyncMessage;

use crate::error::ClusterError;
use crate::pg::{bounded, Connector};

/// Membership changed; payload: the new generation.
pub const CHANNEL_MEMBERS: &str = "weir_members";
/// The catalog changed; payload: its new version.
pub const CHANNEL_CATALOG: &str = "weir_catalog";
/// Records were committed; payload: `object_id;partition_id:next_offset,…`.
pub const CHANNEL_APPENDED: &str = "weir_appended";
/// A coordinator or job lease changed hands.
pub const CHANNEL_LEASES: &str = "weir_leases";
/// Everything a broker listens to.
pub const CHANNELS: &[&str] = &[
    CHANNEL_MEMBERS,
    CHANNEL_CATALOG,
    CHANNEL_APPENDED,
    CHANNEL_LEASES,
];

/// Signals buffered per subscriber. One that falls further behind gets `Lagged` and must
/// re-read everything, exactly as after a poll.
pub const SIGNALS_QUEUED_MAX: usize = 1024;
/// Backoff between reconnection attempts: doubled from the minimum after each failure,
/// capped so that a restarted PostgreSQL is found again within the maximum.
pub const RECONNECT_BACKOFF_MS_MIN: u64 = 50;
pub const RECONNECT_BACKOFF_MS_MAX: u64 = 2_000;
/// A LISTEN connection only reads, so a hung server (or a silently dropped TCP
/// connection) would go unnoticed; every this many polls it is asked `SELECT 1`.
const PING_EVERY_POLLS: u32 = 10;
/// How long that ping may take before the connection is given up.
const PING_TIMEOUT_MS: u64 = 5_000;

/// Something may have changed in PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A `pg_notify` on one of the channels.
    Notification {
        channel: Arc<str>,
        payload: Arc<str>,
    },
    /// The fallback poll tick.
    Poll,
    /// A new LISTEN connection is up (the first, or after a loss). Notifications sent in
    /// between are lost: look at everything.
    Connected { backend_pid: i32 },
}

/// The LISTEN task and its outputs. Dropping it stops the task.
pub struct Listener {
    signals: broadcast::Sender<Signal>,
    backend_pid: watch::Receiver<Option<i32>>,
    task: JoinHandle<()>,
}

impl Listener {
    /// Starts listening on `channels` (plain lower-case identifiers), reconnecting
    /// whenever the connection is lost, and polling every `poll`.
    pub fn spawn(connector: Connector, channels: &[&str], poll: Duration) -> Listener {
        assert!(!channels.is_empty(), "listening to nothing");
        for channel in channels {
            // They are spliced into LISTEN, which takes no parameters.
            assert!(
                channel.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "channel {channel:?} is not a plain identifier"
            );
        }
        assert!(!poll.is_zero(), "a zero poll period would spin");
        let listen_sql: String = channels.iter().map(|c| format!("LISTEN {c};")).collect();
        let (signals, _) = broadcast::channel(SIGNALS_QUEUED_MAX);
        let (pid_tx, backend_pid) = watch::channel(None);
        let task = tokio::spawn(
            ListenTask {
                connector,
                listen_sql,
                poll,
                signals: signals.clone(),
                backend_pid: pid_tx,
            }
            .run(),
        );
        Listener {
            signals,
            backend_pid,
            task,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.signals.subscribe()
    }

    /// The server process of the current LISTEN connection (`None` while reconnecting),
    /// for operators and for tests that kill it.
    pub fn backend_pid(&self) -> watch::Receiver<Option<i32>> {
        self.backend_pid.clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct ListenTask {
    connector: Connector,
    listen_sql: String,
    poll: Duration,
    signals: broadcast::Sender<Signal>,
    backend_pid: watch::Sender<Option<i32>>,
}

impl ListenTask {
    async fn run(self) {
        let mut ticker = tokio::time::interval(self.poll);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut backoff = Duration::from_millis(RECONNECT_BACKOFF_MS_MIN);
        loop {
            let Err(e) = self.listen(&mut ticker, &mut backoff).await;
            self.backend_pid.send_replace(None);
            tracing::warn!(error = %e, retry_in = ?backoff, "the LISTEN connection is down; reconnecting");
            // Keep polling while disconnected: consumers may still reach PostgreSQL
            // through their own connections.
            let wake_at = tokio::time::Instant::now() + backoff;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(wake_at) => break,
                    _ = ticker.tick() => { let _ = self.signals.send(Signal::Poll); }
                }
            }
            backoff = (backoff * 2).min(Duration::from_millis(RECONNECT_BACKOFF_MS_MAX));
        }
    }

    /// One connection's life: connect, LISTEN, forward until it fails (it never ends on
    /// its own while we hold the client).
    async fn listen(
        &self,
        ticker: &mut tokio::time::Interval,
        backoff: &mut Duration,
    ) -> Result<Infallible, ClusterError> {
        let (client, mut connection) = self.connector.connect_raw().await?;
        let (tx, mut notifications) = mpsc::channel(SIGNALS_QUEUED_MAX);
        // The connection is driven by polling it for messages; this task forwards the
        // notifications and ends with the connection.
        let forwarder = AbortOnDrop(tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if tx.send(n).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {} // Notices: nothing to act on.
                    Err(e) => {
                        tracing::debug!(error = %e, "the LISTEN connection failed");
                        return;
                    }
                }
            }
        }));
        let ping_timeout = Duration::from_millis(PING_TIMEOUT_MS);
        let backend_pid: i32 = bounded("LISTEN", ping_timeout, async {
            client.batch_execute(&self.listen_sql).await?;
            Ok(client
                .query_one("SELECT pg_backend_pid()", &[])
                .await?
                .get(0))
        })
        .await?;
        self.backend_pid.send_replace(Some(backend_pid));
        let _ = self.signals.send(Signal::Connected { backend_pid });
        tracing::debug!(backend_pid, "listening for cluster notifications");
        *backoff = Duration::from_millis(RECONNECT_BACKOFF_MS_MIN);
        let mut polls: u32 = 0;
        loop {
            tokio::select! {
                notification = notifications.recv() => {
                    let Some(n) = notification else {
                        drop(forwarder);
                        return Err(ClusterError::ConnectionClosed("the LISTEN connection"));
                    };
                    let _ = self.signals.send(Signal::Notification {
                        channel: n.channel().into(),
                        payload: n.payload().into(),
                    });
                }
                _ = ticker.tick() => {
                    let _ = self.signals.send(Signal::Poll);
                    polls = polls.wrapping_add(1);
                    if polls.is_multiple_of(PING_EVERY_POLLS) {
                        bounded("the LISTEN connection's ping", ping_timeout, async {
                            client.simple_query("SELECT 1").await?;
                            Ok(())
                        })
                        .await?;
                    }
                }
            }
        }
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
