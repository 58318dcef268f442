//! The checks a topic makes of each record of a produced batch (KIP-467): a compacted topic
//! needs a key on every record, and a CreateTime topic needs every timestamp within
//! `message.timestamp.before.max.ms` / `message.timestamp.after.max.ms` of the broker's
//! clock. A batch with any record that fails is refused whole, and the error names each
//! record that failed by its index in the batch, so a client can fail exactly those records
//! and tell the others that another record of their batch was invalid.

use crate::batch::BatchHeader;
use crate::records::TIMESTAMP_TYPE_LOG_APPEND;
use crate::LogError;

/// A record timestamp that says "no timestamp"; it is never out of range.
const NO_TIMESTAMP: i64 = -1;

/// How a record's timestamp is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampRule {
    /// Not checked: a batch the broker accepted once already (put back from a journal).
    Unchecked,
    /// `message.timestamp.type=CreateTime`: within `[now_ms - before_max_ms, now_ms +
    /// after_max_ms]`, computed with Java's wrapping arithmetic so the edges match Kafka's.
    CreateTime {
        now_ms: i64,
        before_max_ms: i64,
        after_max_ms: i64,
    },
    /// `message.timestamp.type=LogAppendTime`: the broker's time counts, so the producer's
    /// is not checked, but a producer may not claim the broker's time for its batch.
    LogAppendTime,
}

/// What a topic asks of every record it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRules {
    /// `cleanup.policy` contains `compact`: every record needs a key.
    pub key_required: bool,
    pub timestamps: TimestampRule,
}

/// Why one record was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordErrorKind {
    /// A record without a key for a compacted topic (INVALID_RECORD).
    MissingKey,
    /// A CreateTime timestamp outside the topic's window (INVALID_TIMESTAMP).
    TimestampOutOfRange,
    /// A producer's batch that claims LogAppendTime (INVALID_TIMESTAMP).
    LogAppendTimeFromProducer,
}

impl RecordErrorKind {
    pub fn is_timestamp(self) -> bool {
        match self {
            RecordErrorKind::MissingKey => false,
            RecordErrorKind::TimestampOutOfRange | RecordErrorKind::LogAppendTimeFromProducer => {
                true
            }
        }
    }
}

/// One refused record: its index in its batch (0 for the first record) and why, in the
/// words Kafka's brokers use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub kind: RecordErrorKind,
    pub message: String,
}

/// The top-level message of a batch refused as INVALID_RECORD: the count of refused
/// records and the first three of them, worded as Kafka's brokers word it.
pub fn invalid_records_message(errors: &[RecordError]) -> String {
    let shown: Vec<String> = errors
        .iter()
        .take(3)
        .map(|e| {
            format!(
                "RecordError(batchIndex={}, message='{}')",
                e.batch_index, e.message
            )
        })
        .collect();
    format!(
        "One or more records have been rejected due to {} record errors in total, and only \
         showing the first three errors at most: [{}]",
        errors.len(),
        shown.join(", ")
    )
}

/// Checks every record of one whole batch (`batch` is exactly the batch, as the producer
/// sent it) against `rules`. `topic_partition` ("topic-0") goes into the messages.
///
/// A batch whose header alone shows that no record can fail is not decompressed: a
/// non-compacted topic with no lower timestamp bound (Kafka's default) only needs the
/// batch's max timestamp, which weir already trusts for its time index.
pub fn check_records(
    batch: &[u8],
    header: &BatchHeader,
    rules: &RecordRules,
    topic_partition: &str,
) -> Result<(), LogError> {
    let claims_log_append = header.attributes & TIMESTAMP_TYPE_LOG_APPEND != 0;
    let timestamps_can_fail = match rules.timestamps {
        TimestampRule::Unchecked => false,
        TimestampRule::LogAppendTime => claims_log_append,
        TimestampRule::CreateTime {
            now_ms,
            before_max_ms,
            after_max_ms,
        } => {
            claims_log_append
                || before_max_ms != i64::MAX
                || header.max_timestamp.wrapping_sub(now_ms) > after_max_ms
        }
    };
    if !rules.key_required && !timestamps_can_fail {
        return Ok(());
    }
    let payload = crate::records::records_payload(
        header,
        batch,
        crate::records::BATCH_DECOMPRESSED_BYTES_MAX,
    )?;
    let records = crate::records::walk_records(header, &payload)?;
    let mut errors = Vec::new();
    for (batch_index, record) in records.iter().enumerate() {
        let batch_index = batch_index as i32;
        // As Kafka: one error per record, a missing key before its timestamp.
        if rules.key_required && record.key.is_none() {
            errors.push(RecordError {
                batch_index,
                kind: RecordErrorKind::MissingKey,
                message: format!(
                    "Compacted topic cannot accept message without key in topic partition \
                     {topic_partition}"
                ),
            });
            continue;
        }
        if let Some(e) = timestamp_error(
            rules.timestamps,
            claims_log_append,
            batch_index,
            record.offset,
            record.timestamp,
        ) {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else if errors.iter().any(|e| e.kind.is_timestamp()) {
        Err(LogError::InvalidTimestamps(errors))
    } else {
        Err(LogError::InvalidRecords(errors))
    }
}

fn timestamp_error(
    rule: TimestampRule,
    claims_log_append: bool,
    batch_index: i32,
    offset: i64,
    timestamp: i64,
) -> Option<RecordError> {
    match rule {
        TimestampRule::Unchecked => None,
        TimestampRule::CreateTime {
            now_ms,
            before_max_ms,
            after_max_ms,
        } if timestamp != NO_TIMESTAMP => {
            let behind_ms = now_ms.wrapping_sub(timestamp);
            if behind_ms > before_max_ms || behind_ms.wrapping_neg() > after_max_ms {
                Some(RecordError {
                    batch_index,
                    kind: RecordErrorKind::TimestampOutOfRange,
                    message: format!(
                        "Timestamp {timestamp} of message with offset {offset} is out of \
                         range. The timestamp should be within [{}, {}]",
                        now_ms.wrapping_sub(before_max_ms),
                        now_ms.wrapping_add(after_max_ms)
                    ),
                })
            } else {
                None
            }
        }
        TimestampRule::CreateTime { .. } | TimestampRule::LogAppendTime => {
            claims_log_append.then(|| RecordError {
                batch_index,
                kind: RecordErrorKind::LogAppendTimeFromProducer,
                message: format!(
                    "Invalid timestamp type in message with offset {offset}. Producer should \
                     not set timestamp type to LogAppendTime."
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{encode_batch, NewRecord};
    use kafka_protocol::records::Compression;

    const NOW_MS: i64 = 1_700_000_000_000;
    const HOUR_MS: i64 = 3_600_000;

    fn batch(records: &[(Option<&str>, i64)], compression: Compression) -> (Vec<u8>, BatchHeader) {
        let records: Vec<NewRecord> = records
            .iter()
            .map(|(k, ts)| NewRecord {
                key: k.map(|k| bytes::Bytes::from(k.to_string())),
                value: Some(bytes::Bytes::from_static(b"v")),
                timestamp_ms: *ts,
            })
            .collect();
        let b = encode_batch(&records, None, compression).unwrap().to_vec();
        let h = BatchHeader::parse(&b).unwrap();
        (b, h)
    }

    fn create_time(before_max_ms: i64, after_max_ms: i64) -> TimestampRule {
        TimestampRule::CreateTime {
            now_ms: NOW_MS,
            before_max_ms,
            after_max_ms,
        }
    }

    fn indexes(e: &LogError) -> Vec<(i32, RecordErrorKind)> {
        e.record_errors()
            .iter()
            .map(|r| (r.batch_index, r.kind))
            .collect()
    }

    #[test]
    fn keyless_records_of_a_compacted_topic_are_named_by_index() {
        // Goal: each keyless record is reported at its index with Kafka's message; the batch
        // is INVALID_RECORD and the summary shows at most three of them; compressed batches
        // are checked the same way.
        for compression in [Compression::None, Compression::Lz4] {
            let (b, h) = batch(
                &[
                    (Some("k0"), NOW_MS),
                    (None, NOW_MS),
                    (Some("k2"), NOW_MS),
                    (None, NOW_MS),
                    (None, NOW_MS),
                    (None, NOW_MS),
                ],
                compression,
            );
            let rules = RecordRules {
                key_required: true,
                timestamps: TimestampRule::Unchecked,
            };
            let e = check_records(&b, &h, &rules, "t-0").unwrap_err();
            assert!(matches!(e, LogError::InvalidRecords(_)));
            let missing = RecordErrorKind::MissingKey;
            assert_eq!(
                indexes(&e),
                vec![(1, missing), (3, missing), (4, missing), (5, missing)]
            );
            assert_eq!(
                e.record_errors()[0].message,
                "Compacted topic cannot accept message without key in topic partition t-0"
            );
            let text = e.to_string();
            assert!(text.starts_with(
                "One or more records have been rejected due to 4 record errors in total, and \
                 only showing the first three errors at most: [RecordError(batchIndex=1, \
                 message='Compacted topic"
            ));
            assert_eq!(text.matches("RecordError(").count(), 3);
        }
    }

    #[test]
    fn timestamps_outside_the_window_are_invalid_timestamps() {
        // Goal: a timestamp too old or too new fails with Kafka's message; any timestamp
        // error makes the batch INVALID_TIMESTAMP, a keyless record still listed with it;
        // -1 (no timestamp) and the window's edges pass.
        let (b, h) = batch(
            &[
                (Some("k0"), NOW_MS),
                (None, NOW_MS - 2 * HOUR_MS),
                (Some("k2"), NOW_MS - 2 * HOUR_MS),
                (Some("k3"), NOW_MS + 2 * HOUR_MS),
                (Some("k4"), -1),
                (Some("k5"), NOW_MS - HOUR_MS),
                (Some("k6"), NOW_MS + HOUR_MS),
            ],
            Compression::None,
        );
        let rules = RecordRules {
            key_required: true,
            timestamps: create_time(HOUR_MS, HOUR_MS),
        };
        let e = check_records(&b, &h, &rules, "t-0").unwrap_err();
        assert!(matches!(e, LogError::InvalidTimestamps(_)));
        let late = RecordErrorKind::TimestampOutOfRange;
        assert_eq!(
            indexes(&e),
            vec![(1, RecordErrorKind::MissingKey), (2, late), (3, late)]
        );
        assert_eq!(
            e.record_errors()[1].message,
            format!(
                "Timestamp {} of message with offset 2 is out of range. The timestamp should \
                 be within [{}, {}]",
                NOW_MS - 2 * HOUR_MS,
                NOW_MS - HOUR_MS,
                NOW_MS + HOUR_MS
            )
        );
        assert_eq!(
            e.to_string(),
            "One or more records have been rejected due to invalid timestamp"
        );
    }

    #[test]
    fn batches_that_cannot_fail_pass_and_unchecked_skips_timestamps() {
        // Goal: Kafka's default window (no lower bound, one hour ahead) passes ordinary
        // batches; a batch put back from a journal is not judged by today's clock; a
        // LogAppendTime topic does not judge a producer's CreateTime timestamps.
        let (b, h) = batch(&[(Some("k"), 5), (None, NOW_MS)], Compression::None);
        let default_window = RecordRules {
            key_required: false,
            timestamps: create_time(i64::MAX, HOUR_MS),
        };
        assert!(check_records(&b, &h, &default_window, "t-0").is_ok());
        let (future, fh) = batch(&[(Some("k"), NOW_MS + 2 * HOUR_MS)], Compression::None);
        assert!(matches!(
            check_records(&future, &fh, &default_window, "t-0"),
            Err(LogError::InvalidTimestamps(_))
        ));
        for timestamps in [TimestampRule::Unchecked, TimestampRule::LogAppendTime] {
            let rules = RecordRules {
                key_required: false,
                timestamps,
            };
            assert!(check_records(&future, &fh, &rules, "t-0").is_ok());
        }
        // A producer's batch that claims LogAppendTime is refused record by record.
        let mut claims = future.clone();
        claims[22] |= 0x08;
        let crc = crc32c::crc32c(&claims[21..]);
        claims[17..21].copy_from_slice(&crc.to_be_bytes());
        let ch = BatchHeader::parse(&claims).unwrap();
        let rules = RecordRules {
            key_required: false,
            timestamps: TimestampRule::LogAppendTime,
        };
        let e = check_records(&claims, &ch, &rules, "t-0").unwrap_err();
        assert_eq!(
            indexes(&e),
            vec![(0, RecordErrorKind::LogAppendTimeFromProducer)]
        );
    }
}
