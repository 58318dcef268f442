//! weir-console's integration tests, one module per file, built as one test binary
//! (one link instead of one per file). Run one file's tests with
//! `cargo test -p weir-console --test integration <file>::`. `process_metrics.rs` stays a
//! binary of its own: it counts the process's open descriptors, which other tests move.

mod api_common;
mod api_errors;
mod api_groups;
mod api_https;
mod api_login;
mod api_topics;
mod broker_metrics;
#[path = "../../../broker/tests/integration/common/mod.rs"]
mod common;
mod console_pages;
mod groups;
mod metrics;
mod scrape;
