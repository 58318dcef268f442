//! weir-broker's integration tests, one module per file, built as one test binary
//! (one link instead of one per file). Run one file's tests with
//! `cargo test -p weir-broker --test integration <file>::`.

mod acls;
mod admin_apis;
mod client_quotas;
mod common;
mod group_configs;
mod protocol;
mod scram_credentials;
mod security_listeners;
