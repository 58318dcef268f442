//! Errors found while reading a request off the wire.

/// A request that could not be turned into a typed message.
///
/// Every variant closes the connection, as Kafka does, except an unsupported ApiVersions
/// version, which the broker answers with `UNSUPPORTED_VERSION` and the v0 API list so the
/// client can retry with a version both sides know.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("frame size {size_bytes} is negative or above the limit of {limit_bytes} bytes")]
    FrameSize { size_bytes: i64, limit_bytes: usize },
    #[error("request is shorter than a request header")]
    Truncated,
    #[error("unknown API key {api_key}")]
    UnknownApiKey { api_key: i16 },
    #[error("API key {api_key} version {api_version} is not supported")]
    UnsupportedVersion {
        api_key: i16,
        api_version: i16,
        correlation_id: i32,
    },
    #[error("malformed request (API key {api_key} version {api_version}): {reason}")]
    Malformed {
        api_key: i16,
        api_version: i16,
        reason: String,
    },
}
