//! `weir-cluster`: the cluster-mode storage engine, for several stateless brokers sharing
//! one PostgreSQL database (ordering and metadata) and one S3-compatible bucket (record
//! data).
//!
//! Owns: the PostgreSQL schema and its migrations, broker registration and leases, the
//! layout of the objects that hold record batches, and (as it grows) the produce and fetch
//! paths over them. Must not: decode Kafka requests or know about the network protocol;
//! the broker drives it through the storage traits of `log` and `meta`.
//!
//! Layout: filled in as modules land.
//! - `object`: the object format: the builder that packs chunks of record batches into one
//!   object, the footer that indexes them and its parser, and `patch_offsets`, which writes
//!   real offsets into a chunk's batches on the way to a consumer.

pub mod object;
