//! Broker registration: each live broker holds a row in `brokers` with a lease that it
//! renews; a broker whose lease runs out is reaped by any other and stops counting.
//!
//! Every time is PostgreSQL's `now()`, so brokers' clocks never disagree about who is
//! alive. The one local clock is the holder's own monotonic deadline: a broker that cannot
//! reach PostgreSQL must assume its lease is gone before PostgreSQL thinks so, not after.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::config::{ClusterConfig, Endpoint};
use crate::error::ClusterError;
use crate::notify::{Signal, CHANNEL_MEMBERS};
use crate::pg::{bounded, Connector, Session};

/// A lease is renewed this many times per lease period, so that up to three renewals in
/// a row may fail (a slow or restarting PostgreSQL) before it runs out.
pub const RENEWS_PER_LEASE: u32 = 4;
/// The holder gives its lease up locally at `renewal sent + lease − lease / this`: the
/// margin covers a monotonic clock running slower than PostgreSQL's and the time between
/// the holder deciding to act and acting.
pub const LEASE_SAFETY_DIVISOR: u32 = 5;

/// One live broker as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveBroker {
    pub node_id: i32,
    pub endpoints: BTreeMap<String, Endpoint>,
}

/// The registered brokers at one moment, and the generation that names that membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersView {
    /// `cluster.generation`: grows on every join, leave and reap; the leader epoch.
    pub generation: i64,
    /// Ordered by node id.
    pub brokers: Arc<[LiveBroker]>,
}

/// Why a holder's registration is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseLoss {
    /// Its row was deleted (reaped after expiry, or removed by an operator).
    RowGone,
    /// Another broker registered the same node id after this one's lease expired.
    Replaced,
    /// Its row is there but PostgreSQL's clock says the lease has run out.
    Expired,
    /// PostgreSQL did not confirm a renewal before the local deadline.
    Unreachable,
}

impl fmt::Display for LeaseLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LeaseLoss::RowGone => "its row in brokers was deleted",
            LeaseLoss::Replaced => "another broker registered the same node id",
            LeaseLoss::Expired => "its lease expired before it was renewed",
            LeaseLoss::Unreachable => {
                "PostgreSQL did not confirm a renewal before the lease's local deadline"
            }
        })
    }
}

/// What the holder knows of its own lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    Held,
    /// Final: the broker must stop serving; a new registration gets a new incarnation.
    Lost(LeaseLoss),
}

/// The registered brokers with the generation, in one statement (one snapshot).
///
/// A broker whose lease has expired stays listed until it is reaped (within a renewal
/// period of any live broker): so one generation always names one membership, and
/// every broker that has seen a generation agrees on who leads what.
pub async fn members_view(client: &Client) -> Result<MembersView, ClusterError> {
    let rows = client
        .query(
            "SELECT c.generation, b.node_id, b.endpoints
               FROM cluster c
               LEFT JOIN brokers b ON true
              ORDER BY b.node_id",
            &[],
        )
        .await?;
    let Some(first) = rows.first() else {
        return Err(ClusterError::Corrupt(
            "the cluster row is missing; was the schema migrated?".into(),
        ));
    };
    let generation: i64 = first.get(0);
    let mut brokers = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(node_id) = row.get::<_, Option<i32>>(1) else {
            continue;
        };
        let endpoints: serde_json::Value = row.get(2);
        let endpoints = serde_json::from_value(endpoints)
            .map_err(|e| ClusterError::Corrupt(format!("endpoints of node {node_id}: {e}")))?;
        brokers.push(LiveBroker { node_id, endpoints });
    }
    Ok(MembersView {
        generation,
        brokers: brokers.into(),
    })
}

/// Deletes every broker row whose lease has expired, bumping the generation and telling
/// the others when it deleted any. Returns the new generation, if it changed.
pub async fn reap_expired(client: &Client) -> Result<Option<i64>, ClusterError> {
    // One statement, so the delete and the bump commit together.
    let row = client
        .query_opt(
            "WITH gone AS (DELETE FROM brokers WHERE lease_expires_at < now() RETURNING node_id),
                  bumped AS (UPDATE cluster SET generation = generation + 1
                              WHERE EXISTS (SELECT 1 FROM gone) RETURNING generation)
             SELECT generation, pg_notify($1, generation::text), (SELECT array_agg(node_id) FROM gone)
               FROM bumped",
            &[&CHANNEL_MEMBERS],
        )
        .await?;
    Ok(row.map(|row| {
        let generation: i64 = row.get(0);
        let reaped: Vec<i32> = row.get(2);
        tracing::info!(?reaped, generation, "reaped brokers whose lease expired");
        generation
    }))
}

/// This broker's registration: its node id and incarnation, the renewal task, and what
/// it last saw of the others. Dropping it stops the renewals (the row then expires after
/// one lease, as a crashed broker's does); [`Registration::deregister`] is the clean stop.
pub struct Registration {
    node_id: i32,
    incarnation: Uuid,
    lease: Duration,
    session: Arc<Session>,
    view: Arc<watch::Sender<Arc<MembersView>>>,
    lease_state: watch::Receiver<LeaseState>,
    renewer: Option<Renewer>,
    /// The task that refreshes the view on `weir_members` notifications, if any.
    follower: Option<JoinHandle<()>>,
}

impl Registration {
    /// Registers with the settings of `config` on a connection of its own (renewals must
    /// not queue behind other work).
    pub async fn register(config: &ClusterConfig) -> Result<Registration, ClusterError> {
        config.validate()?;
        let session = Arc::new(Session::new(Connector::new(&config.postgres_url)?));
        Registration::register_with(session, config.node_id, &config.advertised, config.lease())
            .await
    }

    /// Takes `node_id` (refused while a live broker holds it) or, when `None`, the lowest
    /// id no live broker holds; then starts renewing every `lease / RENEWS_PER_LEASE`.
    pub async fn register_with(
        session: Arc<Session>,
        node_id: Option<i32>,
        endpoints: &BTreeMap<String, Endpoint>,
        lease: Duration,
    ) -> Result<Registration, ClusterError> {
        let incarnation = Uuid::new_v4();
        let endpoints = serde_json::to_value(endpoints).expect("endpoints serialize");
        let lease_ms = lease_ms(lease);
        // A connection of its own: the transaction needs it exclusively. (The connect is
        // bounded by the connector.)
        let mut registering = session.connector().connect().await?;
        // Taken before the transaction starts: PostgreSQL's now() is later, so a deadline
        // counted from here ends before the lease PostgreSQL records.
        let sent_at = Instant::now();
        let (node_id, generation) = bounded("the broker registration", lease, async {
            insert_registration(&mut registering, node_id, incarnation, &endpoints, lease_ms).await
        })
        .await?;
        drop(registering);
        tracing::info!(node_id, %incarnation, generation, "registered in the cluster");

        // Should this fail, the row is registered but nobody renews it: it expires
        // after one lease, like a broker that died right after starting.
        let view = session
            .bounded("the members query", lease, async {
                members_view(&*session.client().await?).await
            })
            .await?;
        let view = Arc::new(watch::Sender::new(Arc::new(view)));
        let (lease_tx, lease_rx) = watch::channel(LeaseState::Held);
        let renewer = Renewer::spawn(RenewTask {
            session: session.clone(),
            node_id,
            incarnation,
            lease,
            deadline: local_deadline(sent_at, lease),
            view: view.clone(),
            lease_state: lease_tx,
        });
        Ok(Registration {
            node_id,
            incarnation,
            lease,
            session,
            view,
            lease_state: lease_rx,
            renewer: Some(renewer),
            follower: None,
        })
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn incarnation(&self) -> Uuid {
        self.incarnation
    }

    /// The registered brokers as of the last renewal, refresh or followed notification
    /// (one whose lease ran out stays until reaped, within a renewal period).
    pub fn live_brokers(&self) -> Arc<[LiveBroker]> {
        self.view.borrow().brokers.clone()
    }

    /// The membership generation as of the last renewal or refresh.
    pub fn generation(&self) -> i64 {
        self.view.borrow().generation
    }

    /// Changes whenever the cached view does.
    pub fn view(&self) -> watch::Receiver<Arc<MembersView>> {
        self.view.subscribe()
    }

    /// Moves to `Lost` once, when the registration is gone; the broker must then stop
    /// serving rather than act on a node id that may be someone else's.
    pub fn lease_state(&self) -> watch::Receiver<LeaseState> {
        self.lease_state.clone()
    }

    /// Reads the membership from PostgreSQL now (when a client names an epoch above
    /// ours, say), caches it if it is newer, and returns it.
    pub async fn refresh(&self) -> Result<Arc<MembersView>, ClusterError> {
        refresh(&self.session, &self.view, self.lease).await
    }

    /// Refreshes the cached view whenever `signals` (from a [`crate::notify::Listener`])
    /// bring a `weir_members` notification, a reconnection or a gap, so that joins and
    /// leaves are seen at once rather than at the next renewal.
    pub fn follow(&mut self, mut signals: broadcast::Receiver<Signal>) {
        let (session, view, lease) = (self.session.clone(), self.view.clone(), self.lease);
        let task = tokio::spawn(async move {
            loop {
                let newer = match signals.recv().await {
                    Ok(Signal::Notification { channel, payload })
                        if &*channel == CHANNEL_MEMBERS =>
                    {
                        payload.parse::<i64>().ok()
                    }
                    // The renewal refreshes every period anyway.
                    Ok(Signal::Notification { .. } | Signal::Poll) => continue,
                    Ok(Signal::Connected { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        None
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if newer.is_some_and(|generation| generation <= view.borrow().generation) {
                    continue;
                }
                if let Err(e) = refresh(&session, &view, lease).await {
                    tracing::warn!(error = %e, "refreshing the cluster's members failed; the next renewal tries again");
                }
            }
        });
        if let Some(old) = self.follower.replace(task) {
            old.abort();
        }
    }

    /// Stops renewing without removing the row: what a broker that froze or died looks
    /// like to the others. The row expires after one lease and is reaped.
    pub async fn stop_renewing(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.stop().await;
        }
    }

    /// A clean stop: no more renewals, and the row is deleted at once so that the others
    /// need not wait out the lease.
    pub async fn deregister(mut self) -> Result<(), ClusterError> {
        self.stop_renewing().await;
        if let Some(follower) = self.follower.take() {
            follower.abort();
        }
        let (node_id, incarnation) = (self.node_id, self.incarnation);
        self.session.bounded("the broker deregistration", self.lease, async {
            let row = self
                .session
                .client()
                .await?
                .query_opt(
                    "WITH gone AS (DELETE FROM brokers WHERE node_id = $1 AND incarnation = $2 RETURNING node_id),
                          bumped AS (UPDATE cluster SET generation = generation + 1
                                      WHERE EXISTS (SELECT 1 FROM gone) RETURNING generation)
                     SELECT generation, pg_notify($3, generation::text) FROM bumped",
                    &[&node_id, &incarnation, &CHANNEL_MEMBERS],
                )
                .await?;
            match row {
                Some(row) => tracing::info!(node_id, generation = row.get::<_, i64>(0), "deregistered"),
                None => tracing::warn!(node_id, "deregistering found no row of ours: it was reaped"),
            }
            Ok(())
        })
        .await
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // The renewer stops itself when dropped; the follower must be told.
        if let Some(follower) = self.follower.take() {
            follower.abort();
        }
    }
}

/// One transaction: bump the generation (its row lock also serializes registrations, so
/// two brokers never choose the same free id), choose the id, insert or take over an
/// expired row, notify.
async fn insert_registration(
    client: &mut Client,
    node_id: Option<i32>,
    incarnation: Uuid,
    endpoints: &serde_json::Value,
    lease_ms: i64,
) -> Result<(i32, i64), ClusterError> {
    let tx = client.transaction().await?;
    let generation: i64 = tx
        .query_one(
            "UPDATE cluster SET generation = generation + 1 RETURNING generation",
            &[],
        )
        .await?
        .get(0);
    let node_id = match node_id {
        Some(id) => id,
        // Among 0..=count there is always an id no live broker holds.
        None => tx
            .query_one(
                "SELECT min(n)::int FROM generate_series(0, (SELECT count(*)::int FROM brokers)) AS n
                  WHERE NOT EXISTS (SELECT 1 FROM brokers b WHERE b.node_id = n AND b.lease_expires_at >= now())",
                &[],
            )
            .await?
            .get(0),
    };
    let taken = tx
        .query_opt(
            "INSERT INTO brokers (node_id, incarnation, endpoints, lease_expires_at)
             VALUES ($1, $2, $3, now() + $4::bigint * interval '1 millisecond')
             ON CONFLICT (node_id) DO UPDATE
               SET incarnation = EXCLUDED.incarnation, endpoints = EXCLUDED.endpoints,
                   started_at = now(), lease_expires_at = EXCLUDED.lease_expires_at
               WHERE brokers.lease_expires_at < now()
             RETURNING node_id",
            &[&node_id, &incarnation, endpoints, &lease_ms],
        )
        .await?;
    if taken.is_none() {
        // Dropping the transaction rolls it back: the generation stays as it was.
        return Err(ClusterError::NodeIdTaken { node_id });
    }
    tx.execute(
        "SELECT pg_notify($1, $2::bigint::text)",
        &[&CHANNEL_MEMBERS, &generation],
    )
    .await?;
    tx.commit().await?;
    Ok((node_id, generation))
}

async fn refresh(
    session: &Session,
    view: &watch::Sender<Arc<MembersView>>,
    bound: Duration,
) -> Result<Arc<MembersView>, ClusterError> {
    let fresh = session
        .bounded("the members query", bound, async {
            members_view(&*session.client().await?).await
        })
        .await?;
    Ok(offer(view, fresh))
}

/// Caches `fresh` if its generation is newer than the cached one's; returns the newest.
/// Reads can finish out of order, and the view must never go back.
fn offer(view: &watch::Sender<Arc<MembersView>>, fresh: MembersView) -> Arc<MembersView> {
    let mut newest = None;
    view.send_if_modified(|current| {
        let newer = fresh.generation > current.generation;
        if newer {
            *current = Arc::new(fresh);
        }
        newest = Some(current.clone());
        newer
    });
    newest.expect("set in the closure")
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).expect("lease fits in i64 milliseconds")
}

fn local_deadline(sent_at: Instant, lease: Duration) -> Instant {
    sent_at + lease - lease / LEASE_SAFETY_DIVISOR
}

/// The running renewal task and the way to stop it.
struct Renewer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Renewer {
    fn spawn(task: RenewTask) -> Renewer {
        let (stop, stopped) = watch::channel(false);
        Renewer {
            stop,
            task: tokio::spawn(task.run(stopped)),
        }
    }

    /// Asks the task to stop and waits for it; a renewal in flight is bounded, so this is.
    async fn stop(mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        // A dropped registration renews no more (a finished task ignores this).
        self.task.abort();
    }
}

struct RenewTask {
    session: Arc<Session>,
    node_id: i32,
    incarnation: Uuid,
    lease: Duration,
    /// When this holder must consider its lease gone, by its own monotonic clock.
    deadline: Instant,
    view: Arc<watch::Sender<Arc<MembersView>>>,
    lease_state: watch::Sender<LeaseState>,
}

enum Renewal {
    Renewed,
    Lost(LeaseLoss),
}

impl RenewTask {
    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        let period = self.lease / RENEWS_PER_LEASE;
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stopped.changed() => return,
                _ = ticker.tick() => {}
            }
            let sent_at = Instant::now();
            let remaining = self.deadline.saturating_duration_since(sent_at);
            if remaining.is_zero() {
                return self.lose(LeaseLoss::Unreachable);
            }
            // Bounded by the period too, so a hung connection is dropped and the next
            // tick tries a fresh one while time remains.
            let attempt = self
                .session
                .bounded(
                    "the lease renewal",
                    remaining.min(period),
                    self.renew_once(),
                )
                .await;
            match attempt {
                Ok(Renewal::Renewed) => self.deadline = local_deadline(sent_at, self.lease),
                Ok(Renewal::Lost(loss)) => return self.lose(loss),
                Err(e) => {
                    tracing::warn!(node_id = self.node_id, error = %e, "lease renewal failed; retrying");
                    if Instant::now() >= self.deadline {
                        return self.lose(LeaseLoss::Unreachable);
                    }
                    continue;
                }
            }
            // Housekeeping any broker may do; a failure here costs only freshness.
            let housekeeping = self
                .session
                .bounded("the members refresh", period, async {
                    let client = self.session.client().await?;
                    reap_expired(&client).await?;
                    members_view(&client).await
                })
                .await;
            match housekeeping {
                Ok(view) => {
                    offer(&self.view, view);
                }
                Err(e) => tracing::warn!(error = %e, "reading the cluster's members failed"),
            }
        }
    }

    async fn renew_once(&self) -> Result<Renewal, ClusterError> {
        let client = self.session.client().await?;
        let renewed = client
            .query_opt(
                "UPDATE brokers SET lease_expires_at = now() + $3::bigint * interval '1 millisecond'
                  WHERE node_id = $1 AND incarnation = $2 AND lease_expires_at > now()
                  RETURNING node_id",
                &[&self.node_id, &self.incarnation, &lease_ms(self.lease)],
            )
            .await?;
        if renewed.is_some() {
            return Ok(Renewal::Renewed);
        }
        // Not renewed: find out why, for the operator.
        let holder = client
            .query_opt(
                "SELECT incarnation FROM brokers WHERE node_id = $1",
                &[&self.node_id],
            )
            .await?
            .map(|row| row.get::<_, Uuid>(0));
        Ok(Renewal::Lost(match holder {
            None => LeaseLoss::RowGone,
            Some(incarnation) if incarnation != self.incarnation => LeaseLoss::Replaced,
            Some(_) => LeaseLoss::Expired,
        }))
    }

    fn lose(self, loss: LeaseLoss) {
        tracing::error!(node_id = self.node_id, %loss, "lost the broker registration; this broker must stop serving");
        let _ = self.lease_state.send(LeaseState::Lost(loss));
    }
}
