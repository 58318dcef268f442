//! `weir-console`: weir's HTTP side. It reads the broker's live state on each request and
//! keeps no copy of it, but for a short in-memory history of consumer groups' lag. Once the
//! broker's security is on, every route asks for a login and applies the ACLs to the caller
//! as the Kafka APIs do; with `--http-tls` it serves HTTPS.
//!
//! Layout:
//! - [`server`]: [`Console`], the HTTP listener and its routes.
//! - [`scrape`]: `GET /metrics`, the Prometheus scrape in OpenMetrics text.
//! - [`partition_metrics`]: per-partition offsets and sizes, read from the logs at scrape
//!   time, and the records and bytes each partition took in and gave out.
//! - [`process_metrics`]: the process's memory, CPU time and file descriptors, read from
//!   `/proc/self` at scrape time (Linux).
//! - [`group_lag`]: consumer groups' committed offsets and lag in records and in time, asked
//!   of the group coordinator and read from the logs; one reading serves `/metrics` and the
//!   REST API.
//! - [`group_metrics`]: the consumer-group families of `/metrics`, encoded from those
//!   readings and the coordinator's overviews of groups (state, members, rebalances).
//! - [`lag_history`]: a bounded ring of lag samples per group, taken every few seconds by a
//!   task [`Console::run`] starts; with the throughput history below, the only state the console keeps, in memory.
//! - [`group_status`]: a group's status (ok, warning, stalled, stopped, error) judged from
//!   those samples.
//! - [`api`]: the REST admin API under `/api/v1` and its OpenAPI document, one file per
//!   resource (cluster, topics, messages, groups, offset resets).
//! - [`partitioner`]: the partition of a keyed record, as Kafka's clients choose it.
//! - [`throughput_history`]: the broker's produce and fetch rates over the last hour, for
//!   the overview chart, sampled by a task [`Console::run`] starts.
//! - [`ui`]: the web console: server-rendered pages that read through the API's functions,
//!   with its stylesheet, script and chart library compiled in.
//! - [`https`]: HTTPS for that listener with the broker's certificate (`--http-tls`).
//! - [`login`]: who calls: HTTP Basic against the broker's SCRAM users once security is
//!   on, the caller's ACL access handed to every route.
//! - [`forward`]: in a cluster, the group routes of a broker that is not the controller,
//!   answered by the controller's HTTP listener.
//! - [`errors`]: the JSON body of every HTTP error, and the one mapping of Kafka error codes
//!   to HTTP statuses.

pub mod api;
pub mod engine_metrics;
pub mod errors;
pub mod forward;
pub mod group_lag;
pub mod group_metrics;
pub mod group_status;
pub mod https;
pub mod lag_history;
pub mod login;
pub mod partition_metrics;
pub mod partitioner;
pub mod process_metrics;
pub mod scrape;
pub mod server;
pub mod throughput_history;
pub mod ui;

pub use server::Console;
