//! `weir-wire`: the Kafka wire protocol, with no I/O and no state.
//!
//! Layout:
//! - [`frame`]: the 4-byte size prefix and the request size limit.
//! - [`api`]: the table of APIs and versions weir implements (what ApiVersions advertises).
//! - [`request`]: request header parsing and decoding a body into a typed [`request::Request`].
//! - [`response`]: encoding a response header and body into one size-prefixed frame.
//! - [`error`]: [`WireError`], and how each decode failure is answered.
//! - [`error_name`]: Kafka's name for an error code, for logs and metric labels.
//!
//! Message types come from the `kafka-protocol` crate; this crate only decides which of
//! them weir speaks and how a bad frame is treated.

pub mod api;
pub mod error;
pub mod error_name;
pub mod frame;
pub mod request;
pub mod response;

pub use error::WireError;
pub use error_name::ErrorName;
pub use kafka_protocol;
pub use kafka_protocol::error::ResponseError;
