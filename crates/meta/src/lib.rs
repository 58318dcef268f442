//! `weir-meta`: the catalog of topics, partitions, topic configs, group configs,
//! client-metrics subscriptions, SCRAM credentials, ACLs and client quotas, and where
//! coordinator keys are placed.
//!
//! Pure: no files, no clock. The broker persists the catalog through a [`CatalogStore`]
//! (the single node's writes [`Catalog::to_bytes`] to a file and loads it with
//! [`Catalog::from_bytes`]).
//!
//! Layout:
//! - [`acls`]: Kafka's ACLs, their filters and the authorizer's decision.
//! - [`catalog`]: [`Catalog`] and [`Topic`], creation, deletion, partitions, producer ids.
//! - [`catalog_store`]: [`CatalogStore`], where the broker keeps the catalog (a file, or
//!   PostgreSQL in a cluster), committed version by version.
//! - [`config`]: the topic configs weir knows, their defaults and validation.
//! - [`client_quotas`]: client quotas (users, client ids, IPs): Describe/AlterClientQuotas
//!   decided as Kafka does, and the limit a connection falls under.
//! - [`client_metrics`]: client-metrics subscriptions (KIP-714), checked and typed.
//! - [`membership`]: [`membership::Membership`], the brokers of the cluster and which one
//!   leads each partition.
//! - [`group_config`]: the group configs weir knows, checked against the broker's bounds.
//! - [`scram`]: SCRAM credentials: their derivation and checks, and `--add-scram`.
//! - [`user_scram_credentials`]: Describe/AlterUserScramCredentials decided over the catalog.
//! - [`placement`]: which internal-topic partition holds a group or transactional id.
//! - [`producer_ids`]: [`ProducerIdSource`], new producer ids from outside the catalog (a
//!   cluster's shared sequence).
//! - [`error`]: [`MetaError`].

pub mod acls;
pub mod catalog;
pub mod catalog_store;
pub mod client_metrics;
pub mod client_quotas;
pub mod config;
pub mod error;
pub mod group_config;
pub mod membership;
pub mod placement;
pub mod producer_ids;
pub mod scram;
pub mod user_scram_credentials;

pub use catalog::{Catalog, Topic};
pub use catalog_store::CatalogStore;
pub use error::MetaError;
pub use producer_ids::ProducerIdSource;
