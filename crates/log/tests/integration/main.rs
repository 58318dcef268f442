//! weir-log's integration tests, one module per file, built as one test binary
//! (one link instead of one per file). Run one file's tests with
//! `cargo test -p weir-log --test integration <file>::`.

mod compaction;
mod local_store;
mod partition_model;
mod records;
mod transactions;
