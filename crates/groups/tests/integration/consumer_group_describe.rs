//! ConsumerGroupDescribe as the admin tools read it: the member type of a consumer-protocol
//! member is Kafka's "consumer" (1), from version 1 on.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{consumer_heartbeat_req, request_ctx};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;
use weir_groups::*;

const TOPIC: Uuid = Uuid::from_u128(0xabc);

#[test]
fn a_consumer_protocol_member_is_described_as_a_consumer_member() {
    // Goal: v1 reports member type 1 (Kafka's "consumer"; 0 is "classic"), which Kafka's
    // admin client and tools read; v0 has no member type.
    let mut topics = BTreeMap::new();
    topics.insert(
        "t".to_string(),
        TopicInfo {
            id: TOPIC,
            partitions: 2,
            partition_bytes_in_per_s: Vec::new(),
        },
    );
    let image = Arc::new(TopicImage { version: 1, topics });
    let mut c = Coordinator::new(CoordinatorConfig::default());
    let req = consumer_heartbeat_req("a", None, 0, TOPIC, &BTreeSet::new(), 60_000);
    c.handle(
        1_000,
        request_ctx(1, 1, "client"),
        GroupRequest::ConsumerGroupHeartbeat(req, image.clone()),
    );
    for (version, expected) in [(1, 1), (0, -1)] {
        let describe = ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![StrBytes::from_static_str("g").into()]);
        let out = c.handle(
            1_000,
            request_ctx(2, version, "admin"),
            GroupRequest::ConsumerGroupDescribe(describe, image.clone()),
        );
        let Some((_, GroupResponse::ConsumerGroupDescribe(r))) = out.responses.first() else {
            panic!("no describe answer: {:?}", out.responses);
        };
        assert_eq!(r.groups[0].members[0].member_type, expected, "v{version}");
    }
}
