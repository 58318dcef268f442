//! `weir serve --cluster URL --object-store URL`: a broker of a cluster, one of several
//! stateless brokers sharing one PostgreSQL database (ordering, metadata, the catalog)
//! and one bucket (records). The broker knows nothing of this: it is handed the cluster's
//! catalog store, engine, membership and producer ids as trait objects, and this file
//! assembles them from `weir-cluster`.
//!
//! Start-up, in order: the Kafka listeners are bound (so the ports to advertise are
//! known); the schema is migrated and the broker registers with one endpoint per listener
//! (its HTTP listener's among them, which other brokers' consoles forward group requests
//! to);
//! the LISTEN connection starts and the registration follows it; the catalog is opened
//! (written empty by the first broker of the cluster); the engine and the membership are
//! built; the broker opens over them; a task follows other brokers' catalog commits; the
//! janitor starts. A broker that loses its registration stops serving; a clean stop
//! deregisters.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weir_broker::server::Listening;
use weir_broker::state::{log_config_for, BrokerParts, BrokerState, ProducerIds};
use weir_broker::Broker;
use weir_cluster::config::{redact, LEASE_MS_DEFAULT, POLL_MS_DEFAULT};
use weir_cluster::fetch::MEMORY_CACHE_BYTES_MAX_DEFAULT as MEMORY_CACHE_BYTES_DEFAULT;
use weir_cluster::notify::CHANNELS;
use weir_cluster::pg::{Connector, Session};
use weir_cluster::{
    AppendSettings, Bucket, CatalogSnapshot, ClusterConfig, ClusterError, ClusterLog,
    ClusterLogSettings, ClusterMembership, CoordinatorFence, DiskCache, Endpoint, Janitor,
    JanitorSettings, LeaseLoss, LeaseState, Listener, PgCatalog, ReadSettings, Registration,
};
use weir_meta::membership::{HTTPS_ENDPOINT, HTTP_ENDPOINT};

/// The Appender's flush window by default: writes gathered this long share one object
/// and one commit.
pub const BATCH_MS_DEFAULT: u64 = 20;
/// Longer windows only add produce latency; a flush also ends early when it is full.
pub const BATCH_MS_MAX: u64 = 10_000;

#[derive(clap::Args)]
pub struct ClusterArgs {
    /// Run as a broker of a cluster whose ordering and metadata live in this PostgreSQL
    /// database (postgresql://user@host:5432/weir; the password may come from PGPASSWORD).
    /// Needs --object-store. In cluster mode --data-dir holds no records.
    #[arg(long, env = "WEIR_CLUSTER", value_name = "POSTGRES_URL")]
    cluster: Option<String>,
    /// Where a cluster keeps its records: s3://bucket/prefix?endpoint=...&region=...
    /// (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or file:///dir for a
    /// directory every broker sees. Needs --cluster.
    #[arg(long, env = "WEIR_OBJECT_STORE", value_name = "URL")]
    object_store: Option<String>,
    /// How long this broker stays listed without renewing its registration (cluster
    /// mode); a broker that dies is dropped from the cluster after this.
    #[arg(long, env = "WEIR_CLUSTER_LEASE_MS", default_value_t = LEASE_MS_DEFAULT)]
    cluster_lease_ms: u64,
    /// How often PostgreSQL is checked for changes a lost notification did not announce
    /// (cluster mode).
    #[arg(long, env = "WEIR_CLUSTER_POLL_MS", default_value_t = POLL_MS_DEFAULT)]
    cluster_poll_ms: u64,
    /// How long produced records are gathered before they are written as one object
    /// (cluster mode): longer means fewer, larger objects and slower acknowledgements.
    #[arg(long, env = "WEIR_CLUSTER_BATCH_MS", default_value_t = BATCH_MS_DEFAULT)]
    cluster_batch_ms: u64,
    /// Bytes of record chunks kept in memory for fetches (cluster mode).
    #[arg(long, env = "WEIR_CLUSTER_MEMORY_CACHE_BYTES", default_value_t = MEMORY_CACHE_BYTES_DEFAULT as u64)]
    cluster_memory_cache_bytes: u64,
    /// Bytes of record chunks kept on this broker's disk for fetches, below the memory
    /// cache (cluster mode); 0 keeps none.
    #[arg(long, env = "WEIR_CLUSTER_DISK_CACHE_BYTES", default_value_t = DISK_CACHE_BYTES_DEFAULT)]
    cluster_disk_cache_bytes: u64,
    /// The directory of the disk cache (cluster mode): its `weir-chunk-cache`
    /// subdirectory is emptied at start and filled as fetches read the bucket. By default
    /// --data-dir.
    #[arg(long, env = "WEIR_CLUSTER_CACHE_DIR", value_name = "DIR")]
    cluster_cache_dir: Option<PathBuf>,
}

/// The disk cache's size by default (`--cluster-disk-cache-bytes`).
pub const DISK_CACHE_BYTES_DEFAULT: u64 = 1 << 30;

/// What a broker of a cluster is started with, checked.
pub struct ClusterSettings {
    config: ClusterConfig,
    batch_window: Duration,
    memory_cache_bytes: usize,
    /// The disk cache's directory and bound; `None` without one.
    disk_cache: Option<(PathBuf, u64)>,
    /// The HTTP listener's address and whether it serves HTTPS; `None` when it is off.
    http: Option<(SocketAddr, bool)>,
}

impl ClusterSettings {
    /// Registers the HTTP listener beside the Kafka listeners, so that the other brokers'
    /// consoles can forward group requests to this one while it is the controller.
    pub fn with_http(mut self, listen: Option<SocketAddr>, https: bool) -> ClusterSettings {
        self.http = listen.map(|addr| (addr, https));
        self
    }
}

impl ClusterArgs {
    /// `None` in single-node mode. Errors are one sentence naming the flag and the fix.
    /// `data_dir` is the disk cache's directory unless --cluster-cache-dir names one.
    pub fn settings(
        &self,
        node_id: Option<i32>,
        data_dir: &Path,
    ) -> anyhow::Result<Option<ClusterSettings>> {
        let (postgres_url, object_store_url) = match (&self.cluster, &self.object_store) {
            (None, None) => return Ok(None),
            (Some(pg), Some(store)) => (pg, store),
            (Some(_), None) => anyhow::bail!(
                "--cluster needs --object-store too: give the bucket that holds the cluster's records, such as s3://bucket/prefix?endpoint=... or file:///shared/dir"
            ),
            (None, Some(_)) => anyhow::bail!(
                "--object-store is only used in cluster mode: give --cluster with the cluster's PostgreSQL URL, or leave out --object-store"
            ),
        };
        if !(1..=BATCH_MS_MAX).contains(&self.cluster_batch_ms) {
            anyhow::bail!(
                "--cluster-batch-ms is {} but must be between 1 and {BATCH_MS_MAX}; the default is {BATCH_MS_DEFAULT}",
                self.cluster_batch_ms
            );
        }
        let mut config = ClusterConfig::new(postgres_url.as_str(), object_store_url.as_str());
        config.lease_ms = self.cluster_lease_ms;
        config.poll_ms = self.cluster_poll_ms;
        config.node_id = node_id;
        let Ok(memory_cache_bytes) = usize::try_from(self.cluster_memory_cache_bytes) else {
            anyhow::bail!(
                "--cluster-memory-cache-bytes is {} but this machine cannot address that much; give a smaller size",
                self.cluster_memory_cache_bytes
            );
        };
        let disk_cache = (self.cluster_disk_cache_bytes > 0).then(|| {
            let dir = self.cluster_cache_dir.clone();
            (
                dir.unwrap_or_else(|| data_dir.to_path_buf()),
                self.cluster_disk_cache_bytes,
            )
        });
        Ok(Some(ClusterSettings {
            config,
            batch_window: Duration::from_millis(self.cluster_batch_ms),
            memory_cache_bytes,
            disk_cache,
            http: None,
        }))
    }
}

/// This broker's part in the cluster while it serves: what must be stopped or given up
/// when it stops.
pub struct ClusterNode {
    registration: Registration,
    janitor: Janitor,
    catalog_follower: JoinHandle<()>,
    /// Kept for its tasks: the registration, the catalog and the engine follow it.
    _listener: Listener,
}

/// Registers this broker in the cluster and opens it over the cluster's storage.
pub async fn start(
    mut listening: Listening,
    settings: ClusterSettings,
) -> anyhow::Result<(Broker, ClusterNode)> {
    let ClusterSettings {
        mut config,
        batch_window,
        memory_cache_bytes,
        disk_cache,
        http,
    } = settings;
    config.advertised = advertised(&listening, http)?;
    config.validate()?;
    let bucket = Bucket::from_url(&config.object_store_url)?;
    let shown = redact(&config.postgres_url);

    // Before anything is registered: a disk cache that cannot be kept stops the start.
    let disk_cache = match disk_cache {
        // Off the async workers: emptying a full cache deletes many files.
        Some((dir, bytes_max)) => {
            let opening = dir.clone();
            let opened = tokio::task::spawn_blocking(move || DiskCache::open(&opening, bytes_max))
                .await
                .context("opening the disk cache failed")?;
            Some(opened.with_context(|| {
                format!(
                    "cannot keep the disk cache in {}; give a writable directory with --cluster-cache-dir, or --cluster-disk-cache-bytes 0 to run without one",
                    dir.join(weir_cluster::fetch::disk_cache::SUBDIR).display()
                )
            })?)
        }
        None => None,
    };

    // 1. The schema, then the registration (which needs it).
    let connector = Connector::new(&config.postgres_url)?;
    let mut client = connector
        .connect()
        .await
        .with_context(|| format!("cannot reach the cluster's PostgreSQL at {shown}; check --cluster and that the server is up"))?;
    let migrated = weir_cluster::migrate::migrate(&mut client).await?;
    drop(client);
    tracing::info!(version = migrated.version, applied = ?migrated.applied, "the cluster's schema is current");
    let mut registration = register(&config).await?;
    let node_id = registration.node_id();
    listening.set_node_id(node_id);

    // 2. Notifications, which the registration, the catalog and the engine follow.
    let listener = Listener::spawn(connector.clone(), CHANNELS, config.poll());
    registration.follow(listener.subscribe());
    let session = || Arc::new(Session::new(connector.clone()));
    let catalog = Arc::new(PgCatalog::open(session(), Some(listener.subscribe())).await?);
    let engine = ClusterLog::start(
        session(),
        bucket.clone(),
        Some(listener.subscribe()),
        ClusterLogSettings {
            append: AppendSettings {
                batch_window,
                node_id,
                ..AppendSettings::default()
            },
            read: ReadSettings {
                memory_cache_bytes_max: memory_cache_bytes,
                disk_cache,
                ..ReadSettings::default()
            },
        },
    );
    // Coordinator writes commit only while this broker, as registered, is the controller.
    engine.set_coordinator_fence(CoordinatorFence {
        node_id,
        incarnation: registration.incarnation(),
    });
    // The live brokers before anything asks who the controller is: with an empty view a
    // broker would take itself for the controller.
    registration.refresh().await?;
    let membership = ClusterMembership::new(node_id, registration.view());
    let engine = Arc::new(engine);

    // 3. The broker over them, and the catalog followed from now on.
    let parts = BrokerParts {
        catalog: catalog.current().catalog.clone(),
        catalog_store: Box::new(Arc::clone(&catalog)),
        engine: Arc::clone(&engine) as _,
        membership: Arc::new(membership),
        producer_ids: ProducerIds::Source(Box::new(Arc::clone(&catalog))),
    };
    let broker = listening.open_with(parts).await?;
    let state = broker.state();
    let catalog_follower = tokio::spawn(follow_catalog(Arc::clone(&state), catalog.changed()));

    // 4. The janitor, with the topic configs this broker holds.
    let configs_of: Arc<BrokerState> = Arc::clone(&state);
    let janitor = Janitor::start(
        session(),
        bucket,
        node_id,
        registration.incarnation(),
        JanitorSettings::default(),
        Arc::new(move |topic_id| configs_of.topic_by_id(topic_id).map(|t| log_config_for(&t))),
    );
    engine.publish_janitor(janitor.stats_handle());
    tracing::info!(
        node_id,
        generation = registration.generation(),
        cluster = %shown,
        object_store = %redact(&config.object_store_url),
        "joined the cluster"
    );
    Ok((
        broker,
        ClusterNode {
            registration,
            janitor,
            catalog_follower,
            _listener: listener,
        },
    ))
}

impl ClusterNode {
    /// Resolves when the registration is lost: the broker must then stop serving rather
    /// than act on a node id that may be another broker's.
    pub async fn lease_lost(&self) -> LeaseLoss {
        let mut lease = self.registration.lease_state();
        loop {
            if let LeaseState::Lost(loss) = *lease.borrow_and_update() {
                return loss;
            }
            if lease.changed().await.is_err() {
                // The renewer is gone without a verdict: only a stop does that.
                return std::future::pending().await;
            }
        }
    }

    /// A clean stop: the janitor gives its lease up and the registration is deleted, so
    /// the others need not wait out the lease.
    pub async fn stop(self) {
        self.catalog_follower.abort();
        self.janitor.stop().await;
        if let Err(e) = self.registration.deregister().await {
            tracing::warn!(error = %e, "deregistering failed; the registration expires after its lease");
        }
    }
}

/// Registers this broker. A node id asked for that a registration still holds may be
/// this broker's own previous run (killed before it could leave): its lease runs out
/// within one lease period, so registering is retried for a little longer than that
/// before the node id is taken to belong to another live broker.
async fn register(config: &ClusterConfig) -> anyhow::Result<Registration> {
    let deadline = tokio::time::Instant::now() + config.lease() * 2;
    let mut told = false;
    loop {
        match Registration::register(config).await {
            Err(ClusterError::NodeIdTaken { node_id })
                if tokio::time::Instant::now() < deadline =>
            {
                if !told {
                    tracing::info!(
                        node_id,
                        "node id {node_id} is still registered (a previous run of this broker?); waiting for its lease to run out"
                    );
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(REGISTER_RETRY_MS)).await;
            }
            result => return Ok(result?),
        }
    }
}

/// How often registering is retried while the node id asked for is still held.
const REGISTER_RETRY_MS: u64 = 250;

/// Where other brokers and clients reach this one, per listener: the advertised host and
/// the port bound (or advertised). The HTTP listener, if any, is registered too, under
/// [`HTTP_ENDPOINT`] or [`HTTPS_ENDPOINT`], at its own address or, when that is a wildcard,
/// at the first listener's advertised host; not at all when it is a loopback address and
/// the brokers advertise themselves to other machines.
fn advertised(
    listening: &Listening,
    http: Option<(SocketAddr, bool)>,
) -> anyhow::Result<BTreeMap<String, Endpoint>> {
    let mut endpoints = BTreeMap::new();
    for listener in &listening.config().listeners {
        if listener
            .advertised_host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
        {
            anyhow::bail!(
                "listener {} would be advertised as {}, which other brokers and clients cannot reach; set --advertised-address (or --advertised-listeners) to this broker's host name",
                listener.name,
                listener.advertised_host
            );
        }
        let port = u16::try_from(listener.advertised_port).with_context(|| {
            format!(
                "listener {} advertises port {}, which is not a TCP port; fix --advertised-address",
                listener.name, listener.advertised_port
            )
        })?;
        endpoints.insert(
            listener.name.clone(),
            Endpoint {
                host: listener.advertised_host.clone(),
                port,
            },
        );
    }
    if let Some((addr, https)) = http.filter(|(addr, _)| addr.port() != 0) {
        let kafka_host = listening
            .config()
            .listeners
            .first()
            .map(|l| l.advertised_host.clone());
        let host = if addr.ip().is_unspecified() {
            kafka_host
        } else if addr.ip().is_loopback() && !kafka_host.as_deref().is_some_and(is_loopback_host) {
            // Reachable from this machine alone, while the brokers may be on others.
            None
        } else {
            Some(addr.ip().to_string())
        };
        if let Some(host) = host {
            let name = if https { HTTPS_ENDPOINT } else { HTTP_ENDPOINT };
            endpoints.insert(
                name.to_string(),
                Endpoint {
                    host,
                    port: addr.port(),
                },
            );
        }
    }
    Ok(endpoints)
}

/// Whether an advertised host names this machine only.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Applies each catalog another broker committed (one newer than this broker's), off the
/// async workers: the broker's catalog lock may be held across a commit.
async fn follow_catalog(
    state: Arc<BrokerState>,
    mut changed: watch::Receiver<Arc<CatalogSnapshot>>,
) {
    loop {
        let snapshot = changed.borrow_and_update().clone();
        let s = Arc::clone(&state);
        let adopted =
            tokio::task::spawn_blocking(move || s.adopt_catalog(snapshot.catalog.clone())).await;
        match adopted {
            Ok(Ok(true)) => tracing::debug!("took the catalog another broker committed"),
            Ok(Ok(false)) => {}
            // The next newer version tries again.
            Ok(Err(e)) => tracing::warn!(error = %e, "taking a catalog committed elsewhere failed"),
            Err(e) => tracing::error!(error = %e, "taking a catalog committed elsewhere panicked"),
        }
        if changed.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        cluster: ClusterArgs,
    }

    fn settings(args: &[&str]) -> anyhow::Result<Option<ClusterSettings>> {
        let mut argv = vec!["serve"];
        argv.extend_from_slice(args);
        Serve::try_parse_from(argv)
            .unwrap()
            .cluster
            .settings(None, Path::new("data"))
    }

    #[test]
    fn loopback_hosts_are_this_machine_only() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.0.0.5",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["broker1.example.com", "10.0.0.5", "0.0.0.0", "[fe80::1]"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn cluster_mode_needs_both_urls_and_names_the_flag_it_lacks() {
        // Goal: no cluster flag is the single node; --cluster and --object-store come
        // together, and a missing or bad one is refused in one sentence naming the flag.
        assert!(settings(&[]).unwrap().is_none());
        let both = settings(&[
            "--cluster",
            "postgresql://weir@db/weir",
            "--object-store",
            "file:///b",
        ])
        .unwrap()
        .expect("cluster mode");
        assert_eq!(both.batch_window, Duration::from_millis(BATCH_MS_DEFAULT));
        assert_eq!(both.config.lease_ms, LEASE_MS_DEFAULT);
        assert_eq!(
            both.disk_cache,
            Some((PathBuf::from("data"), DISK_CACHE_BYTES_DEFAULT))
        );
        let urls = [
            "--cluster",
            "postgresql://weir@db/weir",
            "--object-store",
            "file:///b",
        ];
        let no_disk = settings(&[&urls[..], &["--cluster-disk-cache-bytes", "0"]].concat())
            .unwrap()
            .unwrap();
        assert_eq!(no_disk.disk_cache, None);
        let elsewhere = settings(&[&urls[..], &["--cluster-cache-dir", "/fast"]].concat())
            .unwrap()
            .unwrap();
        assert_eq!(
            elsewhere.disk_cache,
            Some((PathBuf::from("/fast"), DISK_CACHE_BYTES_DEFAULT))
        );
        for (args, flag) in [
            (
                &["--cluster", "postgresql://weir@db/weir"][..],
                "--object-store",
            ),
            (&["--object-store", "file:///b"][..], "--cluster"),
            (
                &[
                    "--cluster",
                    "postgresql://weir@db/weir",
                    "--object-store",
                    "file:///b",
                    "--cluster-batch-ms",
                    "0",
                ][..],
                "--cluster-batch-ms",
            ),
        ] {
            let message = settings(args).err().expect("refused").to_string();
            assert!(message.contains(flag), "{message:?} does not name {flag}");
            assert!(!message.contains('\n'), "{message:?} is not one line");
        }
    }
}
