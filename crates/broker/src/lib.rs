//! `weir-broker`: the tokio server that turns Kafka requests into work on the log, the
//! catalog and the group coordinator.
//!
//! Layout:
//! - [`config`]: [`BrokerConfig`], every knob of `weir serve`.
//! - [`state`]: [`state::BrokerState`], the open partitions and the catalog on disk.
//! - [`server`]: the listener, background tasks (fsync interval, retention) and shutdown.
//! - [`connection`]: one client connection: frames in, ordered responses out.
//! - [`handlers`]: one file per Kafka API.
//! - [`errors`]: the one place crate errors become Kafka error codes.

pub mod config;
pub mod connection;
pub mod errors;
pub mod fetch_session;
pub mod handlers;
pub mod server;
pub mod state;

pub use config::BrokerConfig;
pub use server::Broker;
