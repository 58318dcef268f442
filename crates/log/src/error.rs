//! Errors of a partition log. The broker maps each to one Kafka error code.

use crate::batch::record_checks::{invalid_records_message, RecordError};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A compression type id Kafka does not define.
    #[error("unknown compression type {0}")]
    UnknownCompression(i8),
    /// A compressed payload that does not decompress.
    #[error("the payload does not decompress: {0}")]
    Decompress(String),
    /// A compressed payload that decompresses past the bound its reader set.
    #[error("the payload decompresses to more than {limit_bytes} bytes")]
    DecompressedTooLarge { limit_bytes: usize },
    #[error("record batch is corrupt: {0}")]
    CorruptMessage(String),
    #[error("record batch is invalid: {0}")]
    InvalidRecord(String),
    /// Kafka's INVALID_RECORD with the records at fault (KIP-467): records a topic refuses,
    /// such as keyless ones for a compacted topic. The message is Kafka's.
    #[error("{}", invalid_records_message(.0))]
    InvalidRecords(Vec<RecordError>),
    /// Kafka's INVALID_TIMESTAMP with the records at fault: at least one record's timestamp
    /// is refused (other records at fault are listed too). The message is Kafka's.
    #[error("One or more records have been rejected due to invalid timestamp")]
    InvalidTimestamps(Vec<RecordError>),
    #[error("record batch of {size_bytes} bytes exceeds max.message.bytes {limit_bytes}")]
    RecordTooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error("producer {producer_id} sent sequence {got}, expected {expected}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    #[error("producer {producer_id} epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        current: i16,
        got: i16,
    },
    /// Kafka's INVALID_TXN_STATE: a write that does not fit the producer's transaction, such
    /// as a non-transactional batch while its transaction is open.
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    /// Kafka's TRANSACTION_COORDINATOR_FENCED: a marker from a coordinator older than one
    /// that already wrote a marker for this producer.
    #[error("producer {producer_id}: coordinator epoch {got} is older than {current}, the last one seen")]
    TransactionCoordinatorFenced {
        producer_id: i64,
        current: i32,
        got: i32,
    },
    #[error("offset {offset} is outside the log range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
    /// Kafka's NOT_COORDINATOR: a coordinator's write from a broker that is no longer the
    /// one running the coordinators (a shared engine checks this at commit).
    #[error("not the coordinator: {0}")]
    NotCoordinator(String),
}

impl LogError {
    /// The records at fault, by index in their batch; empty for errors of a whole batch.
    pub fn record_errors(&self) -> &[RecordError] {
        match self {
            LogError::InvalidRecords(errors) | LogError::InvalidTimestamps(errors) => errors,
            LogError::CorruptMessage(_)
            | LogError::InvalidRecord(_)
            | LogError::RecordTooLarge { .. }
            | LogError::OutOfOrderSequence { .. }
            | LogError::InvalidProducerEpoch { .. }
            | LogError::InvalidTxnState(_)
            | LogError::TransactionCoordinatorFenced { .. }
            | LogError::OffsetOutOfRange { .. }
            | LogError::UnknownCompression(_)
            | LogError::Decompress(_)
            | LogError::DecompressedTooLarge { .. }
            | LogError::Io(_)
            | LogError::NotCoordinator(_) => &[],
        }
    }
}
