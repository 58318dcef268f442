//! weir-auth's integration tests, one module per file, built as one test binary
//! (one link instead of one per file). Run one file's tests with
//! `cargo test -p weir-auth --test integration <file>::`.

mod oauthbearer_random_messages;
mod sasl_random_tokens;
