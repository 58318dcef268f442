//! What can be wrong with an object or a chunk: each variant names the bound or the field
//! that refused, so a log line says which object is damaged and how.

use weir_log::LogError;

/// Refusals of the object format: a footer that does not parse, a chunk that is not a run
/// of whole v2 batches, or an object past its bounds.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ObjectError {
    /// The bytes given hold less than the footer needs; a reader fetches `needed_bytes`
    /// from the end of the object and parses again.
    #[error("the object's tail holds {present_bytes} bytes, its footer needs {needed_bytes}")]
    FooterTruncated {
        needed_bytes: u64,
        present_bytes: u64,
    },
    #[error("not a weir object: magic {found:?}")]
    BadMagic { found: [u8; 4] },
    #[error("object format version {version} is not supported (this build reads {supported})")]
    UnsupportedVersion { version: u16, supported: u16 },
    #[error("footer checksum {stored:#010x} does not match its bytes ({computed:#010x})")]
    FooterChecksum { stored: u32, computed: u32 },
    #[error("{chunk_count} chunks in one object; at most {limit} are allowed")]
    TooManyChunks { chunk_count: u64, limit: usize },
    #[error("footer declares {declared_bytes} bytes, {chunk_count} chunks make {expected_bytes}")]
    FooterSizeMismatch {
        declared_bytes: u64,
        chunk_count: u64,
        expected_bytes: u64,
    },
    #[error("object is {actual_bytes} bytes, its footer accounts for {declared_bytes}")]
    ObjectSizeMismatch {
        declared_bytes: u64,
        actual_bytes: u64,
    },
    #[error("object of {size_bytes} bytes is over the {limit_bytes}-byte bound")]
    ObjectTooLarge { size_bytes: u64, limit_bytes: u64 },
    #[error("chunk {index} ({size_bytes} bytes at {position}) lies outside the {body_size_bytes}-byte body")]
    ChunkOutOfRange {
        index: usize,
        position: u64,
        size_bytes: u32,
        body_size_bytes: u64,
    },
    #[error(
        "chunk {index} starts at {position}, before the previous chunk ends at {previous_end}"
    )]
    ChunksOverlap {
        index: usize,
        position: u64,
        previous_end: u64,
    },
    #[error("chunk {index}: {reason}")]
    BadChunkEntry { index: usize, reason: &'static str },
    /// A chunk's bytes are not a run of whole v2 batches; `position` is the batch's start
    /// within the chunk.
    #[error("batch at {position} of the chunk: {reason}")]
    BadBatch { position: usize, reason: String },
    #[error("offsets from {base_offset} over {offset_count} records pass the largest offset")]
    OffsetOverflow { base_offset: i64, offset_count: i64 },
    #[error("base offset {base_offset} is negative")]
    NegativeBaseOffset { base_offset: i64 },
    #[error("an empty chunk holds no batch")]
    EmptyChunk,
    /// The builder refuses a chunk that would push the object past a bound; the caller
    /// finishes this object and starts another.
    #[error("object full: {reason}")]
    ObjectFull { reason: &'static str },
}

impl ObjectError {
    pub(crate) fn bad_batch(position: usize, reason: impl Into<String>) -> ObjectError {
        ObjectError::BadBatch {
            position,
            reason: reason.into(),
        }
    }

    pub(crate) fn from_log(position: usize, error: LogError) -> ObjectError {
        ObjectError::bad_batch(position, error.to_string())
    }
}
