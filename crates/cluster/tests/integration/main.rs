//! weir-cluster's integration tests, one module per file, built as one test binary
//! (one link instead of one per file). Run one file's tests with
//! `cargo test -p weir-cluster --test integration <file>::`.

mod catalog;
mod common;
mod compaction;
mod coordinator_fence;
mod engine;
mod fetch;
mod janitor;
mod members;
mod migrate;
mod notify;
mod object_roundtrip;
mod pg;
mod produce;
