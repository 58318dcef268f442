//! The checks a write passes before it is queued: the first step of the local engine's
//! `PartitionLog::append`, with the same errors, so a producer cannot tell the engines
//! apart by what they refuse. The producer-state checks need PostgreSQL and run at commit.
//!
//! The local engine keeps a LogAppendTime topic's batches as the producer sent them (it
//! refuses a producer's batch that claims LogAppendTime, and does not rewrite timestamps);
//! this path does the same.

use weir_log::batch::record_checks::{check_records, RecordRules, TimestampRule};
use weir_log::batch::{validate_batches, AppendOrigin, BatchHeader};
use weir_log::store::TopicPartition;
use weir_log::{LogConfig, LogError};

use super::WRITE_BYTES_MAX;

/// Validates one write (one partition's batches of one request) against its topic's
/// `config` at `now_ms`; returns the batch headers in order. A coordinator's write
/// ([`AppendOrigin::Coordinator`]) is checked as the local engine's `append_internal`
/// checks it: no `max.message.bytes`, no sequence needed for a batch with a producer id,
/// and no timestamp window (the coordinator stamps its records itself).
pub(super) fn validate_write(
    tp: &TopicPartition,
    records: &[u8],
    config: &LogConfig,
    origin: AppendOrigin,
    now_ms: i64,
) -> Result<Vec<BatchHeader>, LogError> {
    // 1. Whole batches, each valid on its own.
    let max_message_bytes = match origin {
        AppendOrigin::Client => config.max_message_bytes,
        AppendOrigin::Coordinator => usize::MAX,
    };
    let headers = validate_batches(records, max_message_bytes, origin)?;
    // A write must fit in one object. Only a request of many batches can pass
    // max.message.bytes and still be this large; Kafka's answer for a too-large write is
    // the same error.
    if records.len() > WRITE_BYTES_MAX {
        return Err(LogError::RecordTooLarge {
            size_bytes: records.len(),
            limit_bytes: WRITE_BYTES_MAX,
        });
    }
    // 2. Their records, by the topic's rules.
    let timestamps = if origin == AppendOrigin::Coordinator {
        TimestampRule::Unchecked
    } else if config.timestamp_log_append {
        TimestampRule::LogAppendTime
    } else {
        TimestampRule::CreateTime {
            now_ms,
            before_max_ms: config.timestamp_before_max_ms,
            after_max_ms: config.timestamp_after_max_ms,
        }
    };
    let rules = RecordRules {
        key_required: config.cleanup_compact,
        timestamps,
    };
    // As Kafka prints a topic partition ("orders-0"), like the local engine's directory.
    let topic_partition = format!("{}-{}", tp.topic, tp.partition);
    let mut at = 0usize;
    for header in &headers {
        check_records(
            &records[at..at + header.size_bytes],
            header,
            &rules,
            &topic_partition,
        )?;
        at += header.size_bytes;
    }
    Ok(headers)
}
