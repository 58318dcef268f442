//! Where Kafka puts a coordinator key (a group id, a transactional id) among the partitions
//! of its internal topic: `abs(String.hashCode(key)) % partitions`, so weir and Kafka place
//! the same key on the same partition.

/// Java's `String.hashCode`.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The partition of an internal topic with `partitions` partitions that holds `key`.
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    let h = java_string_hash(key);
    // Kafka's Utils.abs maps i32::MIN to 0 rather than overflowing.
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_matches_kafka() {
        // Goal: keys land on the same partition as in Kafka (abs(String.hashCode) % 50);
        // "billing".hashCode() == -109829509 in Java.
        assert_eq!(java_string_hash("billing"), -109_829_509);
        assert_eq!(partition_for("billing", 50), 109_829_509 % 50);
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(partition_for("", 50), 0);
    }
}
