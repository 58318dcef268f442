//! [`TopicImage`]: what the coordinator knows of the topics, handed in by the runtime with
//! the consumer-protocol requests. Server-side assignment needs each topic's id and
//! partition count; the image is an input like the clock, so the coordinator stays pure.

use std::collections::BTreeMap;

use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub id: Uuid,
    pub partitions: i32,
    /// Recent bytes-in rate per partition (bytes/s), for the load-aware assignor; empty
    /// when unknown.
    pub partition_bytes_in_per_s: Vec<u64>,
}

/// The topics at one moment. `version` grows whenever the catalog changes, so a group can
/// tell whether its subscription metadata may be stale.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicImage {
    pub version: u64,
    pub topics: BTreeMap<String, TopicInfo>,
}

impl TopicImage {
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name)
    }

    /// The name of the topic with this id.
    pub fn name_of(&self, id: Uuid) -> Option<&str> {
        self.topics
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(n, _)| n.as_str())
    }
}
