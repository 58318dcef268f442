//! [`BrokerState`]: the catalog (persisted as `meta/catalog.json` in the data directory,
//! or in the cluster's store) and the storage engine that holds every partition, shared by
//! every connection. [`BrokerState::open`] opens a single node's data directory;
//! [`BrokerState::open_with`] runs over [`BrokerParts`] its caller assembled (a cluster's).
//!
//! Locks are `parking_lot` mutexes held only for in-memory work and short file writes,
//! never across an `.await`.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use uuid::Uuid;
use weir_log::store::{CoordinatorLog, LogAdmin, LogLifecycle, Opening, TopicPartition, TxnLog};
use weir_log::{Engine, LocalLog, LogConfig, LogStore};
use weir_meta::acls::{AclBinding, AclBindingFilter, Acls, Operation, ResourceType};
use weir_meta::group_config::{GroupConfigLimits, GroupConfigOverrides};
use weir_meta::{Catalog, CatalogStore, MetaError, ProducerIdSource, Topic};
use weir_wire::ResponseError;

use crate::config::BrokerConfig;
use crate::errors::meta_error_code;
use crate::security::principal::Principal;
use catalog_file::CatalogFile;
use weir_meta::membership::{BrokerEndpoint, Membership, SingleNode};

mod catalog_file;
mod catalog_follow;
mod client_quotas;
pub use client_quotas::{ControllerMutationQuota, QuotaClient};
#[cfg(test)]
mod restore_tests;
mod scram;

/// A Kafka error code with the message that goes with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (error code {code})")]
pub struct ApiError {
    pub code: i16,
    pub message: String,
}

impl ApiError {
    pub fn new(e: ResponseError, message: impl Into<String>) -> ApiError {
        ApiError {
            code: e.code(),
            message: message.into(),
        }
    }
}

impl From<MetaError> for ApiError {
    fn from(e: MetaError) -> ApiError {
        ApiError {
            code: meta_error_code(&e),
            message: e.to_string(),
        }
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> ApiError {
        ApiError::new(ResponseError::KafkaStorageError, e.to_string())
    }
}

impl From<weir_log::store::StoreError> for ApiError {
    fn from(e: weir_log::store::StoreError) -> ApiError {
        ApiError {
            code: crate::errors::store_error_code(&e),
            message: e.to_string(),
        }
    }
}

impl From<weir_log::LogError> for ApiError {
    fn from(e: weir_log::LogError) -> ApiError {
        ApiError {
            code: crate::errors::log_error_code(&e),
            message: e.to_string(),
        }
    }
}

pub struct BrokerState {
    pub config: BrokerConfig,
    catalog: Mutex<Catalog>,
    /// Where the catalog is committed after each change.
    catalog_store: Box<dyn CatalogStore>,
    /// Where new producer ids come from.
    producer_ids: ProducerIds,
    /// The brokers of the cluster and who leads what.
    membership: Arc<dyn Membership>,
    /// The storage engine that holds every partition (the local engine on one node).
    logs: Arc<dyn Engine>,
    /// The coordinators, while this broker is the controller and has loaded them (see
    /// [`crate::coordinator_role`]).
    groups: RwLock<Option<crate::group_runtime::GroupRuntime>>,
    txns: RwLock<Option<crate::txn_runtime::TxnRuntime>>,
    pub fetch_sessions: crate::fetch_session::FetchSessions,
    /// Client telemetry (KIP-714): instances, their subscriptions, what they pushed.
    pub telemetry: crate::telemetry::Telemetry,
    /// The broker's metric families (requests, connections, fsyncs, …), encoded by the
    /// console on each scrape.
    pub metrics: crate::metrics::BrokerMetrics,
    /// What the authorizer decides with, besides the principal and the resource.
    authorizer: AuthorizerInputs,
    /// Client quotas and the rates they are measured by.
    quotas: client_quotas::QuotaState,
    /// What each partition took in and gave out, for the metrics.
    pub traffic: crate::traffic::Traffic,
    /// Connections to the other brokers of a cluster (a produce's transaction check).
    pub peers: crate::peer::Peers,
}

/// The authorizer's inputs. The ACLs are a copy of the catalog's, replaced after each
/// change, so the check every request makes never waits on the catalog lock (held across
/// file writes).
#[derive(Default)]
struct AuthorizerInputs {
    /// Off, every request is allowed (the single-node default).
    enabled: AtomicBool,
    /// `super.users`: principals allowed everything.
    super_users: RwLock<HashSet<String>>,
    acls: RwLock<Arc<Acls>>,
}

/// The journals of the coordinators' writes (see `weir_log::CoordinatorLog`), beside the
/// catalog.
const OFFSETS_JOURNAL_FILE: &str = "offsets-journal";
const TXN_JOURNAL_FILE: &str = "txn-journal";

/// Kafka's cluster ids are a UUID in URL-safe base64 without padding (22 characters).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = Uuid::new_v4().as_u128();
    (0..22)
        .map(|i| ALPHABET[((bits >> (6 * i)) & 63) as usize] as char)
        .collect()
}

/// A partition of `topic`, named as the storage engine names it; `None` when the topic has
/// no such partition.
pub fn partition_of(topic: &Topic, partition: i32) -> Option<TopicPartition> {
    (partition >= 0 && partition < topic.partitions).then(|| TopicPartition {
        topic: topic.name.clone(),
        topic_id: topic.id,
        partition,
    })
}

/// Maps a topic's configs onto the settings its logs obey.
pub fn log_config_for(topic: &Topic) -> LogConfig {
    let policy = topic.config("cleanup.policy").unwrap_or("delete");
    LogConfig {
        segment_bytes: topic.config_i64("segment.bytes").max(14) as u64,
        segment_ms: topic.config_i64("segment.ms").max(1),
        retention_ms: topic.config_i64("retention.ms"),
        retention_bytes: topic.config_i64("retention.bytes"),
        max_message_bytes: topic.config_i64("max.message.bytes").max(0) as usize,
        cleanup_delete: policy.split(',').any(|p| p.trim() == "delete"),
        cleanup_compact: policy.split(',').any(|p| p.trim() == "compact"),
        min_cleanable_dirty_ratio: topic
            .config("min.cleanable.dirty.ratio")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.5)
            .clamp(0.0, 1.0),
        delete_retention_ms: topic.config_i64("delete.retention.ms").max(0),
        min_compaction_lag_ms: topic.config_i64("min.compaction.lag.ms").max(0),
        max_compaction_lag_ms: topic.config_i64("max.compaction.lag.ms").max(1),
        timestamp_log_append: topic.config("message.timestamp.type") == Some("LogAppendTime"),
        timestamp_before_max_ms: topic.config_i64("message.timestamp.before.max.ms").max(0),
        timestamp_after_max_ms: topic.config_i64("message.timestamp.after.max.ms").max(0),
    }
}

/// Where a broker takes new producer ids from.
pub enum ProducerIds {
    /// Blocks recorded in the catalog and committed with it: right when this broker alone
    /// writes its catalog (the single node).
    CatalogBlocks,
    /// A source shared by the brokers of a cluster.
    Source(Box<dyn ProducerIdSource>),
}

/// What a broker runs over besides its config: the catalog as loaded, the store it is
/// committed to, the storage engine, the cluster's membership and the producer ids. The
/// single node's come from its data directory ([`BrokerState::open`]); a cluster's are
/// assembled by the caller ([`BrokerState::open_with`]).
pub struct BrokerParts {
    pub catalog: Catalog,
    pub catalog_store: Box<dyn CatalogStore>,
    pub engine: Arc<dyn Engine>,
    pub membership: Arc<dyn Membership>,
    pub producer_ids: ProducerIds,
}

/// Tells `engine` of every partition of `catalog`'s topics, with their configs.
fn open_catalog_partitions(engine: &dyn LogLifecycle, catalog: &Catalog) -> anyhow::Result<()> {
    for topic in catalog.topics.values() {
        engine.open_partitions(
            &topic.name,
            topic.id,
            0..topic.partitions,
            &log_config_for(topic),
            Opening::Existing,
        )?;
    }
    Ok(())
}

impl BrokerState {
    /// Opens the data directory: loads the catalog and recovers every partition log.
    pub fn open(config: BrokerConfig) -> anyhow::Result<Arc<BrokerState>> {
        let catalog_file = CatalogFile::new(&config.data_dir);
        let catalog = catalog_file
            .load()?
            .unwrap_or_else(|| Catalog::new(new_cluster_id()));
        let metrics = crate::metrics::BrokerMetrics::default();
        let logs = LocalLog::new(&config.data_dir, config.fsync, metrics.fsync_observer());
        open_catalog_partitions(&logs, &catalog)?;
        // What a crash took from the coordinators' internal topics comes back from their
        // journals before anything reads them.
        let meta_dir = config.data_dir.join(catalog_file::CATALOG_DIR);
        let now = crate::handlers::produce::now_ms();
        for (topic, journal) in [
            (crate::group_runtime::OFFSETS_TOPIC, OFFSETS_JOURNAL_FILE),
            (weir_txn::TRANSACTION_STATE_TOPIC, TXN_JOURNAL_FILE),
        ] {
            logs.recover_journal(topic, &meta_dir.join(journal), now)?;
        }
        let parts = BrokerParts {
            catalog,
            catalog_store: Box::new(catalog_file),
            engine: Arc::new(logs),
            membership: Arc::new(SingleNode {
                node_id: config.node_id,
            }),
            producer_ids: ProducerIds::CatalogBlocks,
        };
        let state = BrokerState::assemble(config, parts, metrics);
        state
            .persist_catalog(&mut state.catalog.lock())
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        state.telemetry.set_subscriptions(state.subscriptions());
        Ok(state)
    }

    /// A broker over `parts` (a cluster's): the engine is told of the catalog's
    /// partitions; the catalog is taken as loaded, not committed again.
    pub fn open_with(config: BrokerConfig, parts: BrokerParts) -> anyhow::Result<Arc<BrokerState>> {
        open_catalog_partitions(&*parts.engine, &parts.catalog)?;
        let state = BrokerState::assemble(config, parts, crate::metrics::BrokerMetrics::default());
        state.telemetry.set_subscriptions(state.subscriptions());
        Ok(state)
    }

    /// A broker over a loaded catalog, the store it is committed to, a storage engine
    /// holding the catalog's partitions, the membership and the producer ids.
    fn assemble(
        config: BrokerConfig,
        parts: BrokerParts,
        metrics: crate::metrics::BrokerMetrics,
    ) -> Arc<BrokerState> {
        let BrokerParts {
            catalog,
            catalog_store,
            engine,
            membership,
            producer_ids,
        } = parts;
        let acls = Arc::new(catalog.acls.clone());
        let quotas = client_quotas::QuotaState::new(&catalog.client_quotas);
        Arc::new(BrokerState {
            membership,
            config,
            catalog: Mutex::new(catalog),
            catalog_store,
            producer_ids,
            logs: engine,
            groups: RwLock::new(None),
            txns: RwLock::new(None),
            fetch_sessions: Default::default(),
            telemetry: Default::default(),
            metrics,
            authorizer: AuthorizerInputs {
                acls: RwLock::new(acls),
                ..Default::default()
            },
            quotas,
            traffic: Default::default(),
            peers: Default::default(),
        })
    }

    /// A broker over the data directory's catalog and a storage engine another broker may
    /// share, under `membership`: two brokers of one cluster in one process, for tests.
    #[cfg(test)]
    pub(crate) fn open_shared(
        config: BrokerConfig,
        logs: Arc<LocalLog>,
        membership: Arc<dyn Membership>,
    ) -> Arc<BrokerState> {
        let catalog_file = CatalogFile::new(&config.data_dir);
        let catalog = catalog_file
            .load()
            .expect("a readable catalog")
            .unwrap_or_else(|| Catalog::new(new_cluster_id()));
        let parts = BrokerParts {
            catalog,
            catalog_store: Box::new(catalog_file),
            engine: logs,
            membership,
            producer_ids: ProducerIds::CatalogBlocks,
        };
        BrokerState::assemble(config, parts, crate::metrics::BrokerMetrics::default())
    }

    /// Commits the changed `catalog` to its store and takes the version it was stored
    /// under. On an error the caller puts memory back to what it was before the change.
    fn persist_catalog(&self, catalog: &mut Catalog) -> Result<(), ApiError> {
        catalog.version = self.catalog_store.commit(catalog)?;
        Ok(())
    }

    /// Commits the changed `catalog`; when that fails, puts it back to `before` (what the
    /// store still holds), so memory never runs ahead of the stored catalog.
    fn persist_or_restore(&self, catalog: &mut Catalog, before: Catalog) -> Result<(), ApiError> {
        self.persist_catalog(catalog)
            .inspect_err(|_| *catalog = before)
    }

    /// The group coordinator runtime, while this broker runs it.
    pub fn groups(&self) -> Option<crate::group_runtime::GroupRuntime> {
        self.groups.read().clone()
    }

    /// Installs the group coordinator runtime; returns the one it replaces.
    pub fn set_groups(
        &self,
        runtime: Option<crate::group_runtime::GroupRuntime>,
    ) -> Option<crate::group_runtime::GroupRuntime> {
        std::mem::replace(&mut *self.groups.write(), runtime)
    }

    /// The transaction coordinator runtime, while this broker runs it.
    pub fn txns(&self) -> Option<crate::txn_runtime::TxnRuntime> {
        self.txns.read().clone()
    }

    /// Installs the transaction coordinator runtime; returns the one it replaces.
    pub fn set_txns(
        &self,
        runtime: Option<crate::txn_runtime::TxnRuntime>,
    ) -> Option<crate::txn_runtime::TxnRuntime> {
        std::mem::replace(&mut *self.txns.write(), runtime)
    }

    /// Whether the membership names this broker the controller, which runs the group and
    /// transaction coordinators.
    pub fn is_controller(&self) -> bool {
        self.membership.controller() == self.config.node_id
    }

    /// Why the coordinators' APIs cannot be served here now: NOT_COORDINATOR on a broker
    /// that is not the controller, COORDINATOR_LOAD_IN_PROGRESS on the controller until
    /// both coordinators have replayed their internal topics.
    pub fn coordinator_refusal(&self) -> Option<ResponseError> {
        if !self.is_controller() {
            Some(ResponseError::NotCoordinator)
        } else if self.groups.read().is_none() || self.txns.read().is_none() {
            Some(ResponseError::CoordinatorLoadInProgress)
        } else {
            None
        }
    }

    pub fn cluster_id(&self) -> String {
        self.catalog.lock().cluster_id.clone()
    }

    /// A copy of one topic's catalog entry.
    pub fn topic(&self, name: &str) -> Option<Topic> {
        self.catalog.lock().topic(name).cloned()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Topic> {
        self.catalog.lock().topic_by_id(id).cloned()
    }

    /// The topics as the group coordinator sees them (ids and partition counts), for the
    /// consumer group protocol's server-side assignment. The version is a hash of the
    /// content, so it changes exactly when a topic is created, deleted or grows.
    pub fn topic_image(&self) -> Arc<weir_groups::TopicImage> {
        use std::hash::{Hash, Hasher};
        let catalog = self.catalog.lock();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let topics: std::collections::BTreeMap<String, weir_groups::TopicInfo> = catalog
            .topics
            .values()
            .map(|t| {
                (t.name.as_str(), t.id, t.partitions).hash(&mut hasher);
                (
                    t.name.clone(),
                    weir_groups::TopicInfo {
                        id: t.id,
                        partitions: t.partitions,
                        partition_bytes_in_per_s: Vec::new(),
                    },
                )
            })
            .collect();
        Arc::new(weir_groups::TopicImage {
            version: hasher.finish(),
            topics,
        })
    }

    /// Copies of every topic's catalog entry, sorted by name.
    pub fn topics(&self) -> Vec<Topic> {
        self.catalog.lock().topics.values().cloned().collect()
    }

    /// A partition of the catalog, named as the storage engine names it; `None` when the
    /// topic or that partition of it does not exist.
    pub fn topic_partition(&self, topic: &str, partition: i32) -> Option<TopicPartition> {
        partition_of(self.catalog.lock().topic(topic)?, partition)
    }

    /// The brokers of the cluster, and which one leads each partition.
    pub fn membership(&self) -> &dyn Membership {
        &*self.membership
    }

    /// The live brokers as a client that came in on `listener` reaches them.
    pub fn brokers(
        &self,
        listener: &crate::security::listener::ListenerConfig,
    ) -> Vec<BrokerEndpoint> {
        let this_broker = BrokerEndpoint {
            node_id: self.config.node_id,
            host: listener.advertised_host.clone(),
            port: listener.advertised_port,
        };
        self.membership.brokers(&listener.name, &this_broker)
    }

    /// The storage engine: its data path (Produce, Fetch).
    pub fn store(&self) -> &dyn LogStore {
        &*self.logs
    }

    /// The storage engine: what the admin APIs ask of partitions.
    pub fn log_admin(&self) -> &dyn LogAdmin {
        &*self.logs
    }

    /// The storage engine: what transactions ask of partitions.
    pub fn txn_log(&self) -> &dyn TxnLog {
        &*self.logs
    }

    /// The storage engine: what the coordinators write to their internal topics.
    pub fn coordinator_log(&self) -> &dyn CoordinatorLog {
        &*self.logs
    }

    /// The storage engine: which partitions it serves, as the catalog changes.
    fn lifecycle(&self) -> &dyn LogLifecycle {
        &*self.logs
    }

    /// The storage engine's running totals of its own work, for the metrics endpoint.
    pub fn engine_counters(&self) -> Vec<weir_log::store::EngineCounter> {
        self.logs.counters()
    }

    /// Checks a new topic; with `apply`, also creates it (catalog first, then the logs).
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        internal: bool,
        apply: bool,
    ) -> Result<Topic, ApiError> {
        let mut catalog = self.catalog.lock();
        catalog.check_create(name, partitions, replication_factor, &configs)?;
        if !apply {
            return Ok(Topic {
                name: name.to_string(),
                id: Uuid::nil(),
                partitions,
                configs,
                internal,
            });
        }
        let topic = catalog
            .create_topic(
                name,
                Uuid::new_v4(),
                partitions,
                replication_factor,
                configs,
                internal,
            )?
            .clone();
        self.lifecycle().open_partitions(
            name,
            topic.id,
            0..partitions,
            &log_config_for(&topic),
            Opening::New,
        )?;
        if let Err(e) = self.persist_catalog(&mut catalog) {
            // Not in the catalog on disk: take the new logs away again.
            let _ = catalog.delete_topic(name);
            self.lifecycle().delete_topic(name, topic.id)?;
            return Err(e);
        }
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    pub fn delete_topic(&self, name: &str) -> Result<Topic, ApiError> {
        let mut catalog = self.catalog.lock();
        if catalog.topic(name).is_some_and(|t| t.internal) {
            return Err(ApiError::new(
                ResponseError::InvalidTopicException,
                format!("topic '{name}' is internal and cannot be deleted"),
            ));
        }
        let before = catalog.clone();
        let topic = catalog.delete_topic(name)?;
        self.persist_or_restore(&mut catalog, before)?;
        self.traffic.forget_topic(topic.id);
        self.lifecycle().delete_topic(name, topic.id)?;
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }

    pub fn check_add_partitions(&self, name: &str, count: i32) -> Result<(), ApiError> {
        self.catalog.lock().check_partitions(name, count)?;
        Ok(())
    }

    pub fn add_partitions(&self, name: &str, count: i32) -> Result<(), ApiError> {
        let mut catalog = self.catalog.lock();
        let old = catalog.check_partitions(name, count)?;
        let topic = catalog.topic(name).expect("checked").clone();
        let before = catalog.clone();
        catalog.set_partitions(name, count)?;
        self.persist_or_restore(&mut catalog, before)?;
        self.lifecycle().open_partitions(
            name,
            topic.id,
            old..count,
            &log_config_for(&topic),
            Opening::New,
        )?;
        Ok(())
    }

    /// Replaces a topic's config overrides and applies them to its logs at once.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        apply: bool,
    ) -> Result<(), ApiError> {
        let mut catalog = self.catalog.lock();
        for (k, v) in &configs {
            weir_meta::config::validate(k, v)?;
        }
        if catalog.topic(name).is_none() {
            return Err(MetaError::UnknownTopic(name.to_string()).into());
        }
        if !apply {
            return Ok(());
        }
        let before = catalog.clone();
        catalog.replace_configs(name, configs)?;
        self.persist_or_restore(&mut catalog, before)?;
        let topic = catalog.topic(name).expect("present");
        self.lifecycle()
            .set_config(name, topic.id, &log_config_for(topic));
        Ok(())
    }

    /// What a group config may be: the broker's `group.consumer.*` defaults and bounds.
    pub fn group_config_limits(&self) -> GroupConfigLimits {
        let c = &self.config;
        GroupConfigLimits {
            consumer_session_timeout_ms: c.group_consumer_session_timeout_ms,
            consumer_session_timeout_bounds_ms: c.group_consumer_session_timeout_bounds_ms,
            consumer_heartbeat_interval_ms: c.group_consumer_heartbeat_interval_ms,
            consumer_heartbeat_interval_bounds_ms: c.group_consumer_heartbeat_interval_bounds_ms,
        }
    }

    /// A group's config overrides; empty when it has none.
    pub fn group_configs(&self, group_id: &str) -> BTreeMap<String, String> {
        self.catalog.lock().group_configs(group_id)
    }

    /// The ids of the groups that have configs of their own, sorted.
    pub fn groups_with_configs(&self) -> Vec<String> {
        self.catalog.lock().group_configs.keys().cloned().collect()
    }

    /// Every group's config overrides, by group id, typed. Entries the current bounds no
    /// longer allow (the broker was restarted with other bounds) are skipped with a warning.
    pub fn all_group_configs(&self) -> BTreeMap<String, GroupConfigOverrides> {
        let limits = self.group_config_limits();
        let catalog = self.catalog.lock();
        let mut out = BTreeMap::new();
        for (group_id, configs) in &catalog.group_configs {
            match weir_meta::group_config::validate(configs, &limits) {
                Ok(o) => {
                    out.insert(group_id.clone(), o);
                }
                Err(e) => {
                    tracing::warn!(group = %group_id, error = %e, "group configs outside the broker's bounds are not applied")
                }
            }
        }
        out
    }

    /// Changes a group's config overrides: `change` turns the current ones into the new
    /// ones, which are checked against the broker's bounds and, with `apply`, persisted,
    /// all under the catalog lock. Returns the new overrides, typed.
    pub fn set_group_configs(
        &self,
        group_id: &str,
        apply: bool,
        change: impl FnOnce(BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError>,
    ) -> Result<GroupConfigOverrides, ApiError> {
        let mut catalog = self.catalog.lock();
        let configs = change(catalog.group_configs(group_id))?;
        let overrides = weir_meta::group_config::validate(&configs, &self.group_config_limits())?;
        if !apply {
            return Ok(overrides);
        }
        let before = catalog.group_configs(group_id);
        catalog.replace_group_configs(group_id, weir_meta::group_config::normalized(&overrides))?;
        if let Err(e) = self.persist_catalog(&mut catalog) {
            // Memory stays what the disk holds.
            catalog
                .replace_group_configs(group_id, before)
                .expect("the group had these configs a moment ago");
            return Err(e);
        }
        Ok(overrides)
    }

    /// Every client-metrics subscription, typed. One the checks refuse (written by a weir
    /// that checked less) is skipped with a warning.
    fn subscriptions(&self) -> Vec<weir_meta::client_metrics::Subscription> {
        let catalog = self.catalog.lock();
        let mut out = Vec::new();
        for (name, configs) in &catalog.client_metrics {
            match weir_meta::client_metrics::validate(name, configs) {
                Ok(s) => out.push(s),
                Err(e) => {
                    tracing::warn!(subscription = %name, error = %e, "client-metrics subscription not applied")
                }
            }
        }
        out
    }

    /// A client-metrics subscription's configs; empty when it does not exist.
    pub fn client_metrics(&self, name: &str) -> BTreeMap<String, String> {
        self.catalog.lock().client_metrics(name)
    }

    /// The names of the client-metrics subscriptions, sorted.
    pub fn client_metrics_names(&self) -> Vec<String> {
        self.catalog.lock().client_metrics.keys().cloned().collect()
    }

    /// Changes a client-metrics subscription: `change` turns its current configs into the
    /// new ones, which are checked and, with `apply`, persisted and handed to the telemetry
    /// service, all under the catalog lock. An empty set deletes the subscription.
    pub fn set_client_metrics(
        &self,
        name: &str,
        apply: bool,
        change: impl FnOnce(BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError>,
    ) -> Result<(), ApiError> {
        let mut catalog = self.catalog.lock();
        let before = catalog.client_metrics(name);
        let configs = change(before.clone())?;
        weir_meta::client_metrics::validate(name, &configs)?;
        if !apply {
            return Ok(());
        }
        catalog.replace_client_metrics(name, configs)?;
        if let Err(e) = self.persist_catalog(&mut catalog) {
            // Memory stays what the disk holds.
            catalog
                .replace_client_metrics(name, before)
                .expect("the subscription had these configs a moment ago");
            return Err(e);
        }
        drop(catalog);
        self.telemetry.set_subscriptions(self.subscriptions());
        Ok(())
    }

    /// A new producer id for InitProducerId: from the shared source in a cluster, else
    /// from the catalog's block, which is persisted when a new block starts.
    pub fn allocate_producer_id(&self) -> Result<i64, ApiError> {
        if let ProducerIds::Source(source) = &self.producer_ids {
            return Ok(source.next_producer_id()?);
        }
        let mut catalog = self.catalog.lock();
        let before = catalog.clone();
        let (id, new_block) = catalog.allocate_producer_id();
        if new_block {
            // Not handed out unless the new block is stored: a restart (or another broker)
            // could otherwise give the same id again.
            self.persist_or_restore(&mut catalog, before)?;
        }
        Ok(id)
    }
}

/// ACLs and the authorizer (CreateAcls, DescribeAcls, DeleteAcls, and the check dispatch
/// makes before a handler runs).
impl BrokerState {
    /// Turns authorization on or off (off by default: every request is allowed).
    pub fn set_authorizer_enabled(&self, enabled: bool) {
        self.authorizer.enabled.store(enabled, Ordering::Relaxed);
    }

    pub fn authorizer_enabled(&self) -> bool {
        self.authorizer.enabled.load(Ordering::Relaxed)
    }

    /// `super.users`: principals as `User:admin`, allowed everything.
    pub fn set_super_users(&self, super_users: Vec<String>) {
        *self.authorizer.super_users.write() = super_users.into_iter().collect();
    }

    /// Kafka's `allow.everyone.if.no.acl.found`: whether a resource without any ACL is
    /// open to everyone (false by default). A setting, not persisted.
    pub fn set_allow_everyone_if_no_acl_found(&self, allow: bool) {
        let mut catalog = self.catalog.lock();
        catalog.acls.set_allow_everyone_if_no_acl_found(allow);
        *self.authorizer.acls.write() = Arc::new(catalog.acls.clone());
    }

    /// Whether `principal`, connected from `host`, may perform `operation` on the
    /// resource. Always true while authorization is off.
    pub fn authorize(
        &self,
        principal: &Principal,
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        if !self.authorizer_enabled() {
            return true;
        }
        let acls = Arc::clone(&self.authorizer.acls.read());
        let super_users = self.authorizer.super_users.read();
        acls.authorize(
            &super_users,
            principal.as_str(),
            host,
            operation,
            resource_type,
            resource_name,
        )
    }

    /// Whether `principal` may perform `operation` on some resource of the type (Kafka's
    /// `authorizeByResourceType`). Always true while authorization is off.
    pub fn authorize_any(
        &self,
        principal: &Principal,
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if !self.authorizer_enabled() {
            return true;
        }
        let acls = Arc::clone(&self.authorizer.acls.read());
        let super_users = self.authorizer.super_users.read();
        acls.authorize_any(
            &super_users,
            principal.as_str(),
            host,
            operation,
            resource_type,
        )
    }

    /// The ACLs a filter matches, sorted.
    pub fn describe_acls(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        let acls = Arc::clone(&self.authorizer.acls.read());
        acls.describe(filter)
    }

    /// Creates checked bindings, persisting the catalog before returning: one result per
    /// binding, in order. When the catalog cannot be written, nothing is kept and every
    /// binding fails with that error.
    pub fn create_acls(&self, bindings: Vec<AclBinding>) -> Vec<Result<(), ApiError>> {
        let mut catalog = self.catalog.lock();
        let mut added = Vec::new();
        let mut results: Vec<Result<(), ApiError>> = bindings
            .into_iter()
            .map(|b| match catalog.acls.create(b.clone()) {
                Ok(true) => {
                    added.push(b);
                    Ok(())
                }
                Ok(false) => Ok(()),
                Err(e) => Err(e.into()),
            })
            .collect();
        if added.is_empty() {
            return results;
        }
        if let Err(e) = self.persist_catalog(&mut catalog) {
            // Memory stays what the disk holds.
            for b in &added {
                catalog.acls.remove(b);
            }
            tracing::error!(error = %e, "ACLs not created: the catalog could not be written");
            results = results.into_iter().map(|_| Err(e.clone())).collect();
            return results;
        }
        *self.authorizer.acls.write() = Arc::new(catalog.acls.clone());
        results
    }

    /// Deletes the bindings each filter matches, persisting the catalog before returning:
    /// one result per filter, listing what it matched. When the catalog cannot be written,
    /// nothing is deleted and every filter fails with that error.
    pub fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
    ) -> Vec<Result<Vec<AclBinding>, ApiError>> {
        let mut catalog = self.catalog.lock();
        let results = catalog.acls.delete(filters);
        let removed: std::collections::BTreeSet<&AclBinding> =
            results.iter().flatten().flatten().collect();
        if removed.is_empty() {
            return results
                .into_iter()
                .map(|r| r.map_err(ApiError::from))
                .collect();
        }
        if let Err(e) = self.persist_catalog(&mut catalog) {
            for b in removed {
                catalog
                    .acls
                    .create(b.clone())
                    .expect("a binding removed a moment ago fits back");
            }
            tracing::error!(error = %e, "ACLs not deleted: the catalog could not be written");
            return results.iter().map(|_| Err(e.clone())).collect();
        }
        *self.authorizer.acls.write() = Arc::new(catalog.acls.clone());
        results
            .into_iter()
            .map(|r| r.map_err(ApiError::from))
            .collect()
    }
}
