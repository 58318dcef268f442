//! Security: how a connection proves who it is.
pub mod sasl;
