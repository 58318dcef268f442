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
//! Layout:
//! - `bucket.rs`: `Bucket`, the object store `--object-store` names, with bounded calls, and
//!   the key of each object.
//! - `catalog.rs`: `PgCatalog`, the catalog as one compare-and-set JSON document, cached;
//!   producer id blocks.
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
//!   read from the bucket through a memory cache, high watermarks followed from commit
//!   notifications, ListOffsets by time.
//! - `engine.rs`, `engine/`: `ClusterLog`, the cluster engine behind weir-log's storage
//!   traits (`Engine`), over one `Appender` and one `Reader` that hears its commits.
//! - `notify.rs`: the LISTEN connection and its fallback poll, as `Signal`s.
//! - `object`: the object format: the builder that packs chunks of record batches into one
//!   object, the footer that indexes them and its parser, and `patch_offsets`, which writes
//!   real offsets into a chunk's batches on the way to a consumer.
//! - `janitor.rs`, `janitor/`: `Janitor`, the background work one broker at a time runs
//!   under the `janitor` lease: retention, deleted topics' rows, and objects deleted from
//!   the bucket once no chunk points at them and a grace period has passed.

pub mod bucket;
pub mod catalog;
pub mod config;
pub mod engine;
pub mod error;
pub mod fetch;
pub mod janitor;
pub mod leaders;
pub mod members;
pub mod migrate;
pub mod notify;
pub mod object;
pub mod partitions;
pub mod pg;
pub mod produce;

pub use bucket::Bucket;
pub use catalog::{CatalogSnapshot, CommitOutcome, PgCatalog};
pub use config::{ClusterConfig, Endpoint};
pub use engine::{ClusterLog, ClusterLogSettings};
pub use error::ClusterError;
pub use fetch::{ReadSettings, ReadStats, Reader};
pub use janitor::{Janitor, JanitorSettings, JanitorStats, PassReport, TopicConfigs};
pub use leaders::ClusterMembership;
pub use members::{LeaseLoss, LeaseState, LiveBroker, MembersView, Registration};
pub use notify::{Listener, Signal};
pub use produce::{AppendSettings, AppendStats, Appender, CommitHook, CommittedFlush};
