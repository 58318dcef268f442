//! `weir-broker`: the tokio server that turns Kafka requests into work on the log, the
//! catalog and the group coordinator.
//!
//! Layout:
//! - [`config`]: [`BrokerConfig`], every knob of `weir serve`.
//! - [`state`]: [`state::BrokerState`], the open partitions and the catalog on disk.
//! - [`server`]: the listener, background tasks (fsync interval, retention, the log
//!   cleaner) and shutdown.
//! - [`connection`]: one client connection: frames in, ordered responses out.
//! - [`group_runtime`]: the task that drives the pure group coordinator and persists its
//!   records to `__consumer_offsets`.
//! - [`offsets_journal`]: the journal that makes each coordinator step durable with one
//!   fsync.
//! - [`fetch_session`]: incremental fetch sessions (KIP-227).
//! - [`handlers`]: one file per Kafka API.
//! - [`errors`]: the one place crate errors become Kafka error codes.

pub mod config;
pub mod connection;
pub mod errors;
pub mod fetch_session;
pub mod group_runtime;
pub mod handlers;
pub mod offsets_journal;
pub mod server;
pub mod state;

pub use config::BrokerConfig;
pub use server::Broker;
