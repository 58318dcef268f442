//! `weir-cluster`: the cluster-mode storage engine, for several stateless brokers sharing
//! one PostgreSQL database (ordering and metadata) and one S3-compatible bucket (record
//! data).
//!
//! Owns: the PostgreSQL schema and its migrations, broker registration and leases, the
//! layout of the objects that hold record batches, the produce and fetch paths over them,
//! and the engine (`ClusterLog`) that puts both behind weir-log's storage traits. Must not:
//! decode Kafka requests or know about the network protocol; the broker drives it through
//! the storage traits of `log` and `meta`.
//!
//! Everything but the object format sits behind the default `engine` feature (PostgreSQL,
//! the bucket); the fuzz targets build the object format without it.
//!
//! Layout:
//! - `bucket.rs`: `Bucket`, the object store `--object-store` names, with bounded calls, and
//!   the key of each object.
//! - `catalog.rs`: `PgCatalog`, the catalog as one compare-and-set JSON document, cached;
//!   producer id blocks. It is the broker's `CatalogStore` and `ProducerIdSource` (weir-meta)
//!   in cluster mode; `weir serve --cluster` (the CLI's `serve_cluster.rs`) assembles a
//!   broker from these parts.
//! - `config.rs`: `ClusterConfig` (the `--cluster*` flags) and its validation.
//! - `error.rs`: `ClusterError`, the crate's error type for PostgreSQL work, and which
//!   errors are retriable.
//! - `pg.rs`: connections to PostgreSQL with bounded connects; a reconnecting `Session`.
//! - `schema/`: the SQL of each migration; `migrate.rs` applies them once per database.
//! - `members.rs`: broker registration, its lease and renewal, reaping, the live brokers.
//! - `leaders.rs`: `ClusterMembership`, the brokers clients are told of and the leader of
//!   each partition, spread over the live brokers.
//! - `partitions.rs`: `PartitionIds`, the `partitions` row id of each partition, cached.
//! - `produce`: `Appender`, the produce path: writes validated and gathered into one object
//!   per flush, PUT, then offsets assigned in one PostgreSQL commit, in flush order.
//! - `fetch.rs`, `fetch/`: `Reader`, the fetch path: reads of chunks found in PostgreSQL and
//!   read from the bucket through a memory cache and a disk cache (`DiskCache`), high
//!   watermarks followed from commit notifications, ListOffsets by time.
//! - `engine.rs`, `engine/`: `ClusterLog`, the cluster engine behind weir-log's storage
//!   traits (`Engine`), over one `Appender` and one `Reader` that hears its commits.
//! - `notify.rs`: the LISTEN connection and its fallback poll, as `Signal`s.
//! - `object`: the object format: the builder that packs chunks of record batches into one
//!   object, the footer that indexes them and its parser, and `patch_offsets`, which writes
//!   real offsets into a chunk's batches on the way to a consumer.
//! - `janitor.rs`, `janitor/`: `Janitor`, the background work one broker at a time runs
//!   under the `janitor` lease: retention, deleted topics' rows, and objects deleted from
//!   the bucket once no chunk points at them and a grace period has passed; and
//!   compaction, which every broker's janitor runs on the partitions it claims.

#[cfg(feature = "engine")]
pub mod bucket;
#[cfg(feature = "engine")]
pub mod catalog;
#[cfg(feature = "engine")]
pub mod config;
#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "engine")]
pub mod error;
#[cfg(feature = "engine")]
pub mod fetch;
#[cfg(feature = "engine")]
pub mod janitor;
#[cfg(feature = "engine")]
pub mod leaders;
#[cfg(feature = "engine")]
pub mod members;
#[cfg(feature = "engine")]
pub mod migrate;
#[cfg(feature = "engine")]
pub mod notify;
pub mod object;
#[cfg(feature = "engine")]
pub mod partitions;
#[cfg(feature = "engine")]
pub mod pg;
#[cfg(feature = "engine")]
pub mod produce;

#[cfg(feature = "engine")]
pub use bucket::Bucket;
#[cfg(feature = "engine")]
pub use catalog::{CatalogSnapshot, CommitOutcome, PgCatalog};
#[cfg(feature = "engine")]
pub use config::{ClusterConfig, Endpoint};
#[cfg(feature = "engine")]
pub use engine::{ClusterLog, ClusterLogSettings};
#[cfg(feature = "engine")]
pub use error::ClusterError;
#[cfg(feature = "engine")]
pub use fetch::{DiskCache, ReadSettings, ReadStats, Reader};
#[cfg(feature = "engine")]
pub use janitor::{
    Janitor, JanitorSettings, JanitorStats, JanitorStatsHandle, PassReport, TopicConfigs,
};
#[cfg(feature = "engine")]
pub use leaders::ClusterMembership;
#[cfg(feature = "engine")]
pub use members::{LeaseLoss, LeaseState, LiveBroker, MembersView, Registration};
#[cfg(feature = "engine")]
pub use notify::{Listener, Signal};
#[cfg(feature = "engine")]
pub use produce::{
    AppendSettings, AppendStats, Appender, CommitHook, CommittedFlush, CoordinatorFence,
};
