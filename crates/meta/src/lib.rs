//! `weir-meta`: the catalog of topics, partitions and topic configs, and where coordinator
//! keys are placed.
//!
//! Pure: no files, no clock. The broker persists the catalog with [`Catalog::to_bytes`]
//! and loads it with [`Catalog::from_bytes`].
//!
//! Layout:
//! - [`catalog`]: [`Catalog`] and [`Topic`], creation, deletion, partitions, producer ids.
//! - [`config`]: the topic configs weir knows, their defaults and validation.
//! - [`placement`]: which internal-topic partition holds a group or transactional id.
//! - [`error`]: [`MetaError`].

pub mod catalog;
pub mod config;
pub mod error;
pub mod placement;

pub use catalog::{Catalog, Topic};
pub use error::MetaError;
