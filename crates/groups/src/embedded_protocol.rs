//! The consumer protocol embedded in classic JoinGroup and SyncGroup (protocol type
//! `consumer`): a member's subscription (topics, owned partitions, rack) and its assignment,
//! as the coordinator must read and write them once it assigns for classic members of a
//! consumer group. Each is a `version i16` followed by the message of that version; a
//! version newer than we know is read as the newest we know, as Kafka's clients do.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::consumer_records::Assignment;
use crate::topics::TopicImage;

/// The newest version of both embedded messages this build knows.
const EMBEDDED_VERSION_MAX: i16 = 3;

/// What a classic member subscribes to, read from its JoinGroup protocol metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// Sorted, without duplicates.
    pub topics: Vec<String>,
    /// The partitions the member says it still holds (cooperative clients; eager ones
    /// revoke everything before they join and send none).
    pub owned: Vec<(String, Vec<i32>)>,
    pub rack_id: Option<String>,
}

/// The version a member's subscription is written in, which its assignment is answered in.
pub fn version_of(metadata: &[u8]) -> Option<i16> {
    (metadata.len() >= 2).then(|| i16::from_be_bytes([metadata[0], metadata[1]]))
}

/// Reads a subscription; `None` when it is malformed.
pub fn parse_subscription(metadata: &Bytes) -> Option<Subscription> {
    let mut buf = metadata.clone();
    let version = version_of(&buf)?;
    if version < 0 {
        return None;
    }
    buf.advance(2);
    let s =
        ConsumerProtocolSubscription::decode(&mut buf, version.min(EMBEDDED_VERSION_MAX)).ok()?;
    let mut topics: Vec<String> = s.topics.iter().map(|t| t.to_string()).collect();
    topics.sort();
    topics.dedup();
    Some(Subscription {
        topics,
        owned: s
            .owned_partitions
            .into_iter()
            .map(|tp| (tp.topic.0.to_string(), tp.partitions))
            .collect(),
        rack_id: s.rack_id.map(|r| r.to_string()).filter(|r| !r.is_empty()),
    })
}

/// Reads an assignment by topic name; `None` when it is malformed.
pub fn parse_assignment(bytes: &Bytes) -> Option<Vec<(String, Vec<i32>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let mut buf = bytes.clone();
    let version = version_of(&buf)?;
    if version < 0 {
        return None;
    }
    buf.advance(2);
    let a = ConsumerProtocolAssignment::decode(&mut buf, version.min(EMBEDDED_VERSION_MAX)).ok()?;
    Some(
        a.assigned_partitions
            .into_iter()
            .map(|tp| (tp.topic.0.to_string(), tp.partitions))
            .collect(),
    )
}

/// Writes an assignment (by topic id, named through the image) in `version`; topics the
/// image no longer has are left out.
pub fn encode_assignment(assignment: &Assignment, image: &TopicImage, version: i16) -> Bytes {
    let version = version.clamp(0, EMBEDDED_VERSION_MAX);
    let topics = assignment
        .iter()
        .filter_map(|(id, ps)| {
            let name = image.name_of(*id)?;
            Some(
                AssignedTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(name.to_string())))
                    .with_partitions(ps.iter().copied().collect()),
            )
        })
        .collect();
    let message = ConsumerProtocolAssignment::default().with_assigned_partitions(topics);
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    message
        .encode(&mut buf, version)
        .expect("an assignment of known topics encodes at every version");
    buf.freeze()
}

/// Partitions by topic name turned into partitions by topic id; unknown topics and
/// partitions beyond a topic's count are dropped.
pub fn to_assignment(partitions: &[(String, Vec<i32>)], image: &TopicImage) -> Assignment {
    let mut a = Assignment::new();
    for (name, ps) in partitions {
        let Some(t) = image.topic(name) else { continue };
        let valid: Vec<i32> = ps
            .iter()
            .copied()
            .filter(|p| (0..t.partitions).contains(p))
            .collect();
        if !valid.is_empty() {
            a.entry(t.id).or_default().extend(valid);
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::TopicInfo;
    use uuid::Uuid;

    fn image() -> TopicImage {
        let mut image = TopicImage::default();
        image.topics.insert(
            "orders".into(),
            TopicInfo {
                id: Uuid::from_u128(7),
                partitions: 3,
                partition_bytes_in_per_s: Vec::new(),
            },
        );
        image
    }

    #[test]
    fn a_subscription_with_owned_partitions_reads_back() {
        // Goal: the topics, owned partitions and rack of a cooperative member's
        // subscription (v3) are what the coordinator reads; a cut one is refused.
        let sub = ConsumerProtocolSubscription::default()
            .with_topics(vec![
                StrBytes::from_static_str("orders"),
                StrBytes::from_static_str("a"),
            ])
            .with_owned_partitions(vec![
                kafka_protocol::messages::consumer_protocol_subscription::TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_static_str("orders")))
                    .with_partitions(vec![0, 2]),
            ])
            .with_rack_id(Some(StrBytes::from_static_str("r1")));
        let mut buf = BytesMut::new();
        buf.put_i16(3);
        sub.encode(&mut buf, 3).unwrap();
        let bytes = buf.freeze();
        let s = parse_subscription(&bytes).unwrap();
        assert_eq!(s.topics, vec!["a".to_string(), "orders".to_string()]);
        assert_eq!(s.owned, vec![("orders".to_string(), vec![0, 2])]);
        assert_eq!(s.rack_id.as_deref(), Some("r1"));
        assert!(parse_subscription(&bytes.slice(..5)).is_none());
        assert!(parse_subscription(&Bytes::new()).is_none());
    }

    #[test]
    fn an_assignment_round_trips_through_topic_ids() {
        // Goal: an assignment written for a member reads back to the same partitions, and
        // names of unknown topics or partitions past the count are dropped on the way in.
        let image = image();
        let a = to_assignment(
            &[("orders".into(), vec![0, 2, 9]), ("gone".into(), vec![0])],
            &image,
        );
        assert_eq!(a.len(), 1);
        for version in 0..=4 {
            let bytes = encode_assignment(&a, &image, version);
            let back = parse_assignment(&bytes).unwrap();
            assert_eq!(back, vec![("orders".to_string(), vec![0, 2])]);
        }
        assert_eq!(parse_assignment(&Bytes::new()), Some(Vec::new()));
    }
}
