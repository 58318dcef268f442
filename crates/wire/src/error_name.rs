//! Kafka's names for error codes (`UNKNOWN_TOPIC_OR_PARTITION` for 3), as Kafka's tools and
//! metrics print them.
//!
//! The `kafka-protocol` crate names each code in CamelCase (`UnknownTopicOrPartition`);
//! Kafka's name is the same words in upper case joined by `_`, so it is derived from that
//! rather than kept as a second table that could drift.

use std::fmt;

use kafka_protocol::error::ResponseError;

/// Displays a Kafka error code by Kafka's name for it: `NONE` for 0, and the number itself
/// for a code the protocol crate does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorName(pub i16);

impl fmt::Display for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(error) = ResponseError::try_from_code(self.0) else {
            return f.write_str("NONE");
        };
        if let ResponseError::Unknown(code) = error {
            return write!(f, "{code}");
        }
        // The variant's name is its Kafka name in CamelCase; it has no digits or acronyms.
        let camel = format!("{error:?}");
        for (i, c) in camel.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                f.write_str("_")?;
            }
            write!(f, "{}", c.to_ascii_uppercase())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes print as Kafka's error names, including the first and last known and the
    /// special ones (none, unknown server error, a code no one defined).
    #[test]
    fn names_match_kafka() {
        let cases = [
            (0, "NONE"),
            (-1, "UNKNOWN_SERVER_ERROR"),
            (3, "UNKNOWN_TOPIC_OR_PARTITION"),
            (17, "INVALID_TOPIC_EXCEPTION"),
            (20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND"),
            (56, "KAFKA_STORAGE_ERROR"),
            (69, "GROUP_ID_NOT_FOUND"),
            (110, "FENCED_MEMBER_EPOCH"),
            (133, "SHARE_SESSION_LIMIT_REACHED"),
            (9999, "9999"),
        ];
        for (code, name) in cases {
            assert_eq!(ErrorName(code).to_string(), name, "code {code}");
        }
    }
}
