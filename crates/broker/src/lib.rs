//! `weir-broker`: the tokio server that turns Kafka requests into work on the log, the
//! catalog, the group coordinator and the transaction coordinator.
//!
//! Layout:
//! - [`config`]: [`BrokerConfig`], every knob of `weir serve`.
//! - [`state`]: [`state::BrokerState`], the open partitions and the catalog on disk, or
//!   over [`state::BrokerParts`] given by the caller (a cluster's catalog store, engine,
//!   membership and producer ids, as trait objects: the broker knows no engine).
//! - [`server`]: the listener, background tasks (fsync interval, retention, the log
//!   cleaner) and shutdown; [`server::Listening`], the listeners bound before the state
//!   opens.
//! - [`connection`]: one client connection: frames in, ordered responses out.
//! - [`coordinator_runtime`]: the one runtime that drives the pure coordinators: a task
//!   each, their records persisted to their internal topic before responses go, timers,
//!   replay at start.
//! - [`group_runtime`]: the group coordinator on it (`__consumer_offsets`).
//! - [`txn_runtime`]: the transaction coordinator on it (`__transaction_state`), and the
//!   writing of transaction markers.
//! - [`coordinator_role`]: the coordinators run on the controller only; starting them when
//!   this broker becomes controller, stopping them when it no longer is.
//! - [`peer`]: requests to another broker of the cluster: a produce's transaction check,
//!   sent to the controller when this broker is not it.
//! - [`metrics`]: the Prometheus metric families the broker counts (requests, their
//!   duration and error codes, connections, bytes, fsyncs, parked fetches, start-up).
//! - [`traffic`]: each partition's records and bytes in and bytes out, counted above the
//!   storage engine, for the metrics and the console's throughput.
//! - [`response_errors`]: walking the error codes of each response type, for the error
//!   counts.
//! - [`response_throttle`]: each response type's `throttle_time_ms`, set over a quota.
//! - [`request_time`]: a request's handler time, for the `request_percentage` quota.
//! - [`quota_throttle`]: the rates client quotas are measured by and the throttle time
//!   over a quota, as Kafka decides them.
//! - [`fetch_session`]: incremental fetch sessions (KIP-227).
//! - [`telemetry`]: client telemetry (KIP-714): subscriptions given to client instances
//!   and the bounded store of the metrics they push.
//! - [`security`]: listeners and their security protocols, TLS, SASL authentication and
//!   the principal each connection acts as.
//! - [`handlers`]: one file per Kafka API.
//! - [`errors`]: the one place crate errors become Kafka error codes.

pub mod authz;
pub mod config;
pub mod connection;
pub mod coordinator_role;
pub mod coordinator_runtime;
pub mod errors;
pub mod fetch_session;
pub mod group_runtime;
pub mod handlers;
pub mod metrics;
pub mod peer;
pub mod quota_throttle;
pub mod request_time;
pub mod response_errors;
pub mod response_throttle;
pub mod security;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod traffic;
pub mod txn_runtime;

pub use config::BrokerConfig;
pub use server::Broker;
pub use weir_groups::MigrationPolicy;
