//! `weir-console`: weir's HTTP side. It reads the broker's live state on each request and
//! keeps no copy of it.
//!
//! Layout:
//! - [`server`]: [`Console`], the HTTP listener and its routes.
//! - [`scrape`]: `GET /metrics`, the Prometheus scrape in OpenMetrics text.
//! - [`partition_metrics`]: per-partition offsets and sizes, read from the logs at scrape
//!   time, and the records and bytes each partition took in and gave out.
//! - [`process_metrics`]: the process's memory, CPU time and file descriptors, read from
//!   `/proc/self` at scrape time (Linux).
//! - [`group_metrics`]: consumer groups' committed offsets and lag, asked of the group
//!   coordinator on each scrape.
//! - [`errors`]: the JSON body of every HTTP error.
//!
//! The REST admin API and the web console will be served from here too.

pub mod errors;
pub mod group_metrics;
pub mod partition_metrics;
pub mod process_metrics;
pub mod scrape;
pub mod server;

pub use server::Console;
