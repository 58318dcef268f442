//! weir-groups's integration tests, one module per file, built as one test binary
//! (one link instead of one per file). Run one file's tests with
//! `cargo test -p weir-groups --test integration <file>::`.

mod common;
mod consumer_group_describe;
mod consumer_protocol;
mod consumer_simulation;
mod coordinator;
mod group_configs;
mod migration;
mod rebalances;
mod simulation;
mod static_members;
