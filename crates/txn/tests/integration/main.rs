//! weir-txn's integration tests, one module per file, built as one test binary
//! (one link instead of one per file). Run one file's tests with
//! `cargo test -p weir-txn --test integration <file>::`.

mod coordinator;
mod simulation;
