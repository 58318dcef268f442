//! `PgCatalog`: the cluster's one catalog (topics, configs, ACLs, SCRAM credentials,
//! quotas) as a JSON document in `cluster.catalog`, changed only by compare-and-set on
//! `cluster.catalog_version`, and cached by every broker.
//!
//! Admin changes are rare, so one document with optimistic concurrency is enough: a
//! writer that loses the race gets the newer catalog back and reapplies its change.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;
use weir_meta::catalog::PRODUCER_ID_BLOCK_SIZE;
use weir_meta::{Catalog, CatalogStore, MetaError, ProducerIdSource};

use crate::error::ClusterError;
use crate::notify::{Signal, CHANNEL_CATALOG};
use crate::pg::Session;

/// How long one catalog statement may take; past it the connection is dropped and the
/// call fails retriably.
pub const CATALOG_STATEMENT_TIMEOUT_MS: u64 = 10_000;

/// A catalog and the version it was stored under. (The version sits beside the catalog
/// until `Catalog` carries one itself.)
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogSnapshot {
    pub version: u64,
    pub catalog: Catalog,
}

/// What a compare-and-set did.
#[derive(Debug, Clone, PartialEq)]
pub enum CommitOutcome {
    /// Stored under this version.
    Committed { version: u64 },
    /// Someone else committed first; this is the catalog now stored. Reapply the change
    /// to it and try again.
    Conflict { current: Arc<CatalogSnapshot> },
}

/// The catalog in PostgreSQL, with a cache kept fresh by `weir_catalog` notifications
/// and polls. Dropping it stops the refresh task.
pub struct PgCatalog {
    inner: Arc<Inner>,
    refresher: Option<JoinHandle<()>>,
    /// Where the broker's blocking calls (`CatalogStore`, `ProducerIdSource`) run, with a
    /// connection of their own: the broker holds its catalog lock across a commit, and
    /// its async workers may all be waiting on that lock, so a commit must not need them
    /// to make progress.
    own_runtime: Option<tokio::runtime::Runtime>,
}

struct Inner {
    session: Arc<Session>,
    /// The connection of the blocking calls, driven by `own_runtime`.
    blocking_session: Arc<Session>,
    current: watch::Sender<Arc<CatalogSnapshot>>,
    /// The rest of this broker's producer id block: ids handed out one range at a time
    /// without a round trip.
    producer_ids: tokio::sync::Mutex<Range<i64>>,
}

impl PgCatalog {
    /// Loads the catalog, writing an empty one (with the cluster's id) if this database
    /// never had one. With `signals` (from a [`crate::notify::Listener`]) the cache
    /// follows other brokers' commits by itself; without, only [`PgCatalog::reload`]
    /// and this broker's own commits change it.
    pub async fn open(
        session: Arc<Session>,
        signals: Option<broadcast::Receiver<Signal>>,
    ) -> Result<PgCatalog, ClusterError> {
        let snapshot = statement(&session, "the catalog's first read", async {
            let client = session.client().await?;
            let row = client
                .query_one("SELECT cluster_id FROM cluster", &[])
                .await?;
            let empty = to_json(&Catalog::new(row.get(0)));
            // Only the first broker's write lands; the others read it.
            client
                .execute(
                    "UPDATE cluster SET catalog = $1 WHERE catalog IS NULL",
                    &[&empty],
                )
                .await?;
            read(&client).await
        })
        .await?;
        let (current, _) = watch::channel(Arc::new(snapshot));
        let own_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("weir-catalog")
            .enable_all()
            .build()
            .map_err(|e| {
                ClusterError::Config(format!("cannot start the catalog's runtime: {e}"))
            })?;
        let inner = Arc::new(Inner {
            blocking_session: Arc::new(Session::new(session.connector().clone())),
            session,
            current,
            producer_ids: tokio::sync::Mutex::new(0..0),
        });
        let refresher = signals.map(|signals| tokio::spawn(inner.clone().follow(signals)));
        Ok(PgCatalog {
            inner,
            refresher,
            own_runtime: Some(own_runtime),
        })
    }

    /// The newest catalog this broker knows; no I/O.
    pub fn current(&self) -> Arc<CatalogSnapshot> {
        self.inner.current.borrow().clone()
    }

    /// Changes whenever the cached catalog does (another broker's commit seen, or ours).
    pub fn changed(&self) -> watch::Receiver<Arc<CatalogSnapshot>> {
        self.inner.current.subscribe()
    }

    /// Reads the stored catalog now and caches it if it is newer.
    pub async fn reload(&self) -> Result<Arc<CatalogSnapshot>, ClusterError> {
        self.inner.reload(&self.inner.session).await
    }

    /// Stores `next` iff the stored version is still `expected_version`, and in the same
    /// statement keeps `partitions` in step with the topics: a row per new partition, and
    /// `deleted_at` set on the partitions of topics that are gone. Other brokers are told
    /// on `weir_catalog` when it commits.
    pub async fn commit(
        &self,
        expected_version: u64,
        next: Catalog,
    ) -> Result<CommitOutcome, ClusterError> {
        self.commit_on(&self.inner.session, expected_version, next)
            .await
    }

    async fn commit_on(
        &self,
        session: &Session,
        expected_version: u64,
        next: Catalog,
    ) -> Result<CommitOutcome, ClusterError> {
        let inner = &self.inner;
        assert_eq!(
            next.cluster_id,
            inner.current.borrow().catalog.cluster_id,
            "a catalog of another cluster"
        );
        let json = to_json(&next);
        let (topic_ids, partition_counts): (Vec<Uuid>, Vec<i32>) =
            next.topics.values().map(|t| (t.id, t.partitions)).unzip();
        let expected = i64::try_from(expected_version).expect("catalog versions fit in bigint");
        let committed = statement(session, "the catalog commit", async {
            let client = session.client().await?;
            let row = client
                .query_opt(
                    "WITH updated AS (
                       UPDATE cluster SET catalog = $2, catalog_version = catalog_version + 1
                        WHERE catalog_version = $1 RETURNING catalog_version),
                     added AS (
                       INSERT INTO partitions (topic_id, partition)
                       SELECT t.id, p
                         FROM unnest($3::uuid[], $4::int[]) AS t(id, n), generate_series(0, t.n - 1) AS p
                        WHERE EXISTS (SELECT 1 FROM updated)
                       ON CONFLICT (topic_id, partition) DO NOTHING),
                     dropped AS (
                       UPDATE partitions SET deleted_at = now()
                        WHERE deleted_at IS NULL AND NOT (topic_id = ANY($3::uuid[]))
                          AND EXISTS (SELECT 1 FROM updated))
                     SELECT catalog_version, pg_notify($5, catalog_version::text) FROM updated",
                    &[&expected, &json, &topic_ids, &partition_counts, &CHANNEL_CATALOG],
                )
                .await?;
            Ok(row.map(|row| row.get::<_, i64>(0)))
        })
        .await?;
        match committed {
            Some(version) => {
                let version = version as u64;
                let mut catalog = next;
                catalog.version = version;
                inner.offer(CatalogSnapshot { version, catalog });
                Ok(CommitOutcome::Committed { version })
            }
            None => Ok(CommitOutcome::Conflict {
                current: inner.reload(session).await?,
            }),
        }
    }

    /// `count` producer ids (1..=PRODUCER_ID_BLOCK_SIZE) no other broker ever gets: taken
    /// from this broker's current block, or from a new block of the `producer_id_blocks`
    /// sequence when the rest of the current one is too short (the rest is then skipped;
    /// ids are plentiful).
    pub async fn allocate_producer_ids(&self, count: u32) -> Result<Range<i64>, ClusterError> {
        self.allocate_producer_ids_on(&self.inner.session, count)
            .await
    }

    async fn allocate_producer_ids_on(
        &self,
        session: &Session,
        count: u32,
    ) -> Result<Range<i64>, ClusterError> {
        assert!(
            count >= 1 && i64::from(count) <= PRODUCER_ID_BLOCK_SIZE,
            "{count} producer ids at once"
        );
        let count = i64::from(count);
        let mut block = self.inner.producer_ids.lock().await;
        if block.end - block.start < count {
            let n: i64 = statement(session, "the producer id block", async {
                Ok(session
                    .client()
                    .await?
                    .query_one("SELECT nextval('producer_id_blocks')", &[])
                    .await?
                    .get(0))
            })
            .await?;
            *block = n * PRODUCER_ID_BLOCK_SIZE..(n + 1) * PRODUCER_ID_BLOCK_SIZE;
        }
        let ids = block.start..block.start + count;
        block.start += count;
        Ok(ids)
    }
}

impl PgCatalog {
    /// Runs `f` to its end on the catalog's own runtime, blocking this thread (a worker of
    /// the broker's runtime is told it blocks).
    fn on_own_runtime<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let handle = self
            .own_runtime
            .as_ref()
            .expect("the runtime lives until the catalog is dropped")
            .handle()
            .clone();
        tokio::task::block_in_place(|| handle.block_on(f))
    }
}

impl Drop for PgCatalog {
    fn drop(&mut self) {
        if let Some(task) = &self.refresher {
            task.abort();
        }
        if let Some(runtime) = self.own_runtime.take() {
            // Dropped on an async worker, a runtime may not wait for its tasks.
            runtime.shutdown_background();
        }
    }
}

impl Inner {
    /// Replaces the cache if `snapshot` is newer: notifications and reloads can arrive
    /// out of order, and the cache must never go back.
    fn offer(&self, snapshot: CatalogSnapshot) -> Arc<CatalogSnapshot> {
        let mut newest = None;
        self.current.send_if_modified(|current| {
            if snapshot.version > current.version {
                *current = Arc::new(snapshot);
                newest = Some(current.clone());
                true
            } else {
                newest = Some(current.clone());
                false
            }
        });
        newest.expect("set in the closure")
    }

    async fn reload(&self, session: &Session) -> Result<Arc<CatalogSnapshot>, ClusterError> {
        let snapshot = statement(session, "the catalog read", async {
            read(&*session.client().await?).await
        })
        .await?;
        Ok(self.offer(snapshot))
    }

    /// Reads the version (cheap) and, if it is newer than the cache, the catalog.
    async fn reload_if_newer(&self, known_newer: Option<u64>) -> Result<(), ClusterError> {
        let cached = self.current.borrow().version;
        let stored = match known_newer {
            Some(version) => version,
            None => {
                let session = &self.session;
                let version: i64 = statement(session, "the catalog version", async {
                    Ok(session
                        .client()
                        .await?
                        .query_one("SELECT catalog_version FROM cluster", &[])
                        .await?
                        .get(0))
                })
                .await?;
                version as u64
            }
        };
        if stored > cached {
            self.reload(&self.session).await?;
        }
        Ok(())
    }

    /// Follows other brokers' commits: a `weir_catalog` notification names the new
    /// version; a poll, a reconnection or falling behind means "check".
    async fn follow(self: Arc<Self>, mut signals: broadcast::Receiver<Signal>) {
        loop {
            let known_newer = match signals.recv().await {
                Ok(Signal::Notification { channel, payload }) if &*channel == CHANNEL_CATALOG => {
                    payload.parse::<u64>().ok()
                }
                Ok(Signal::Notification { .. }) => continue,
                Ok(Signal::Poll | Signal::Connected { .. }) => None,
                Err(broadcast::error::RecvError::Lagged(_)) => None,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if let Err(e) = self.reload_if_newer(known_newer).await {
                tracing::warn!(error = %e, "refreshing the catalog failed; the next poll tries again");
            }
        }
    }
}

async fn read(client: &tokio_postgres::Client) -> Result<CatalogSnapshot, ClusterError> {
    let row = client
        .query_one("SELECT catalog_version, catalog FROM cluster", &[])
        .await?;
    let version: i64 = row.get(0);
    let json: Option<serde_json::Value> = row.get(1);
    let json = json.ok_or_else(|| ClusterError::Corrupt("cluster.catalog is NULL".into()))?;
    let mut catalog: Catalog = serde_json::from_value(json)
        .map_err(|e| ClusterError::Corrupt(format!("cluster.catalog: {e}")))?;
    // The column is the truth; the copy inside the document is the version it was
    // changed from.
    catalog.version = version as u64;
    Ok(CatalogSnapshot {
        version: version as u64,
        catalog,
    })
}

fn to_json(catalog: &Catalog) -> serde_json::Value {
    serde_json::to_value(catalog).expect("a catalog serializes")
}

/// Runs one bounded step on `session` (which drops a connection that failed).
async fn statement<T>(
    session: &Session,
    what: &'static str,
    f: impl std::future::Future<Output = Result<T, ClusterError>>,
) -> Result<T, ClusterError> {
    session
        .bounded(what, Duration::from_millis(CATALOG_STATEMENT_TIMEOUT_MS), f)
        .await
}

/// The broker commits its changed catalog through this: a compare-and-set on the version
/// the broker changed. The broker's admin paths are synchronous and rare, so the commit
/// waits here, on a worker thread the runtime is told may block.
impl CatalogStore for PgCatalog {
    fn commit(&self, catalog: &Catalog) -> Result<u64, MetaError> {
        let outcome = self.on_own_runtime(self.commit_on(
            &self.inner.blocking_session,
            catalog.version,
            catalog.clone(),
        ));
        match outcome {
            Ok(CommitOutcome::Committed { version }) => Ok(version),
            Ok(CommitOutcome::Conflict { .. }) => Err(MetaError::CatalogConflict),
            Err(e) => Err(MetaError::CatalogUnavailable(e.to_string())),
        }
    }

    fn latest(&self) -> Result<Option<Catalog>, MetaError> {
        let snapshot = self
            .on_own_runtime(self.inner.reload(&self.inner.blocking_session))
            .map_err(|e| MetaError::CatalogUnavailable(e.to_string()))?;
        Ok(Some(snapshot.catalog.clone()))
    }
}

/// The broker takes producer ids one at a time; the block behind them is this broker's
/// (`allocate_producer_ids`), so only the first id of each block waits on PostgreSQL, on
/// a worker thread the runtime is told may block, as catalog commits do.
impl ProducerIdSource for PgCatalog {
    fn next_producer_id(&self) -> Result<i64, MetaError> {
        let ids =
            self.on_own_runtime(self.allocate_producer_ids_on(&self.inner.blocking_session, 1));
        ids.map(|ids| ids.start)
            .map_err(|e| MetaError::ProducerIdsUnavailable(e.to_string()))
    }
}
