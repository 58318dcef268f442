//! The listeners, the background tasks, and shutdown.
//!
//! Start-up: [`Broker::listen`] binds the listeners (so the ports clients are told of are
//! known), then [`Listening::open`] recovers a single node's data directory, or
//! [`Listening::open_with`] takes the parts a cluster's broker was given; either way the
//! coordinators start before serving. [`Broker::bind`] and [`Broker::bind_with`] do both.
//!
//! Background tasks: the `interval` fsync policy's flusher; retention, which deletes old
//! segments every `retention_check_interval_ms`; and, on a task of its own, the log cleaner,
//! which compacts the closed segments of `cleanup.policy=compact` topics every
//! `log_cleaner_interval_ms`; and the follower of the controller, which starts and stops
//! the coordinators ([`crate::coordinator_role`]). Shutdown stops accepting, waits briefly
//! for connections to finish, then fsyncs every partition.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use weir_log::FsyncPolicy;

use crate::config::{BrokerConfig, CONNECTIONS_MAX};
use crate::handlers::produce::now_ms;
use crate::security::Listener;
use crate::state::{BrokerParts, BrokerState};

pub struct Broker {
    state: Arc<BrokerState>,
    listeners: Vec<(TcpListener, Arc<Listener>)>,
}

/// A broker's listeners, bound (so the ports clients are told of are known) before any
/// state is opened: a cluster's broker registers with them first.
pub struct Listening {
    config: BrokerConfig,
    listeners: Vec<(TcpListener, Arc<Listener>)>,
    add_scram: Vec<weir_meta::scram::ScramBootstrap>,
}

impl Broker {
    /// Recovers the data directory and binds the listeners; serving starts with
    /// [`Broker::run`].
    pub async fn bind(config: BrokerConfig) -> anyhow::Result<Broker> {
        Broker::listen(config).await?.open().await
    }

    /// Binds the listeners over `parts` (a cluster's); serving starts with [`Broker::run`].
    pub async fn bind_with(config: BrokerConfig, parts: BrokerParts) -> anyhow::Result<Broker> {
        Broker::listen(config).await?.open_with(parts).await
    }

    /// Binds the listeners, and checks the settings they need, without opening anything.
    pub async fn listen(config: BrokerConfig) -> anyhow::Result<Listening> {
        let mut config = config;
        anyhow::ensure!(!config.listeners.is_empty(), "no listener is configured");
        let mut sockets = Vec::with_capacity(config.listeners.len());
        for listener in &mut config.listeners {
            let bind = listener.bind;
            let socket = TcpListener::bind(bind).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {bind} for listener {}: {e}; pick another address",
                    listener.name
                )
            })?;
            let local = socket.local_addr()?;
            listener.bind = local;
            if listener.advertised_port == 0 {
                listener.advertised_port = i32::from(local.port());
            }
            sockets.push(socket);
        }
        let add_scram = config
            .security
            .add_scram
            .iter()
            .map(|entry| {
                weir_meta::scram::parse_add_scram(entry)
                    .map_err(|e| anyhow::anyhow!("--add-scram '{entry}': {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut listeners = Vec::with_capacity(sockets.len());
        for (socket, listener) in sockets.into_iter().zip(&config.listeners) {
            listeners.push((
                socket,
                Arc::new(Listener::new(listener.clone(), &config.security)?),
            ));
        }
        Ok(Listening {
            config,
            listeners,
            add_scram,
        })
    }
}

impl Listening {
    /// The config with each listener's bound address and advertised port filled in.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// This broker's node id, when it is known only after binding (a cluster hands one
    /// out at registration).
    pub fn set_node_id(&mut self, node_id: i32) {
        self.config.node_id = node_id;
    }

    /// The single node: recovers the data directory.
    pub async fn open(self) -> anyhow::Result<Broker> {
        let config = self.config.clone();
        self.start(move || BrokerState::open(config), true).await
    }

    /// A broker over `parts`.
    pub async fn open_with(self, parts: BrokerParts) -> anyhow::Result<Broker> {
        let config = self.config.clone();
        self.start(move || BrokerState::open_with(config, parts), false)
            .await
    }

    /// Opens the state with `open`, applies the security settings, and starts the
    /// coordinators if this broker is the controller. With `coordinators_required` (the
    /// single node), failing to load them fails the start; in a cluster the controller
    /// follower tries again while the broker serves (another broker may, for instance,
    /// have created an internal topic at the same moment).
    async fn start(
        self,
        open: impl FnOnce() -> anyhow::Result<Arc<BrokerState>> + Send + 'static,
        coordinators_required: bool,
    ) -> anyhow::Result<Broker> {
        let Listening {
            config: _,
            listeners,
            add_scram,
        } = self;
        // Start-up recovery: opening (and recovering) every partition log, then replaying
        // the coordinators' internal topics.
        let recovery_started = std::time::Instant::now();
        let state = tokio::task::spawn_blocking(open).await??;
        let security = &state.config.security;
        state.set_super_users(security.super_users.clone());
        state.set_allow_everyone_if_no_acl_found(security.allow_everyone_if_no_acl_found);
        state.set_authorizer_enabled(security.authorizer);
        if !add_scram.is_empty() {
            let s = Arc::clone(&state);
            tokio::task::spawn_blocking(move || s.add_scram_bootstrap(&add_scram)).await??;
        }
        // On a single node this broker is the controller: the coordinators load here.
        if let Err(e) = crate::coordinator_role::reconcile(&state).await {
            if coordinators_required {
                return Err(e);
            }
            tracing::warn!(error = %e, "loading the coordinators failed; trying again while serving");
        }
        let recovery = recovery_started.elapsed();
        state.metrics.startup_recovered(recovery);
        tracing::info!(
            recovery_ms = recovery.as_millis() as u64,
            "recovered logs and coordinators"
        );
        Ok(Broker { state, listeners })
    }
}

impl Broker {
    /// The first listener's bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners[0].1.config.bind
    }

    pub fn state(&self) -> Arc<BrokerState> {
        Arc::clone(&self.state)
    }

    /// Serves until `shutdown` resolves, then flushes everything to disk.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let Broker { state, listeners } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let background = spawn_background(Arc::clone(&state), stop_rx.clone());
        let coordinators = crate::coordinator_role::follow(Arc::clone(&state), stop_rx.clone());
        let cleaner_stop = Arc::new(AtomicBool::new(false));
        let cleaner = spawn_cleaner(Arc::clone(&state), Arc::clone(&cleaner_stop));
        let permits = Arc::new(Semaphore::new(CONNECTIONS_MAX));
        let accepting: Vec<_> = listeners
            .into_iter()
            .map(|(socket, listener)| {
                tokio::spawn(accept_loop(
                    Arc::clone(&state),
                    socket,
                    listener,
                    Arc::clone(&permits),
                    stop_rx.clone(),
                ))
            })
            .collect();
        shutdown.await;
        tracing::info!("shutting down: flushing partitions");
        let _ = stop_tx.send(true);
        for task in accepting {
            let _ = task.await;
        }
        // A running clean stops at its next segment; its unswapped copies are removed on the
        // next start.
        cleaner_stop.store(true, Ordering::Relaxed);
        cleaner.abort();
        let _ = background.await;
        let _ = coordinators.await;
        state.log_admin().flush().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Accepts one listener's connections until the broker stops.
async fn accept_loop(
    state: Arc<BrokerState>,
    socket: TcpListener,
    listener: Arc<Listener>,
    permits: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            accepted = socket.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, listener = %listener.config.name, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let permit = tokio::select! {
            _ = stop.changed() => return,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        // Over the address's connection_creation_rate quota (KIP-612), the connection is
        // held unserved for the throttle time and then closed, as Kafka's acceptor delays
        // the close; it keeps its permit meanwhile, so held connections stay bounded.
        let throttle_ms =
            state.connection_throttle_ms(peer.ip(), crate::handlers::produce::now_ms());
        if throttle_ms > 0 {
            tracing::debug!(%peer, throttle_ms, "connection over its connection_creation_rate: closing it after the throttle time");
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(throttle_ms as u64)).await;
                drop(stream);
                drop(permit);
            });
            continue;
        }
        let state = Arc::clone(&state);
        let listener = Arc::clone(&listener);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = crate::connection::serve(state, stream, peer, listener) => {}
                _ = stop.changed() => {}
            }
            drop(permit);
        });
    }
}

fn spawn_background(
    state: Arc<BrokerState>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let fsync_every = Duration::from_millis(state.config.fsync_interval_ms.max(1));
        let retention_every =
            Duration::from_millis(state.config.retention_check_interval_ms.max(1));
        let mut fsync_tick = tokio::time::interval(fsync_every);
        let mut retention_tick = tokio::time::interval(retention_every);
        retention_tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = fsync_tick.tick() => {
                    if state.config.fsync != FsyncPolicy::Never {
                        // Under `always`, acks=0/1 appends are flushed here too.
                        state.log_admin().flush().await;
                    }
                }
                _ = retention_tick.tick() => {
                    state.log_admin().apply_retention(now_ms()).await;
                }
            }
        }
    })
}

/// The log cleaner, on its own task so a long clean never holds up the fsync flusher or
/// retention. `stop` makes a running clean give up at its next segment.
fn spawn_cleaner(state: Arc<BrokerState>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(
            state.config.log_cleaner_interval_ms.max(1),
        ));
        tick.tick().await;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            state
                .log_admin()
                .compact_due(now_ms(), Arc::clone(&stop))
                .await;
        }
    })
}
