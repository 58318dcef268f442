//! DescribeTopicPartitions (KIP-966): topics and their partitions, a page at a time, as
//! `kafka-topics --describe` and the Java admin's `describeTopics` ask for them in 4.x.
//!
//! Paging follows Kafka: the topics asked for (or every topic, for an empty list) are taken
//! in name order from the cursor's topic on, that topic from the cursor's partition; at most
//! `response_partition_limit` partitions (capped at [`PARTITIONS_PER_RESPONSE_MAX`]) are
//! returned, and `next_cursor` names the first partition left out. A topic asked for by
//! name that does not exist is answered with an error; in the every-topic form there are
//! none to answer. One node leads every partition and is its only replica, so the eligible
//! leader replicas (KIP-966) and last known ones are always empty and no replica is offline.
//!
//! Only topics the principal may DESCRIBE are listed; one asked for by name without it is
//! answered TOPIC_AUTHORIZATION_FAILED after the page, whether it exists or not, and each
//! topic carries the operations the principal may perform on it.

use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use uuid::Uuid;
use weir_meta::acls::Operation;
use weir_meta::Topic;
use weir_wire::ResponseError;

use super::metadata::PARTITION_LEADER_EPOCH;
use super::{str_bytes, RequestMeta};
use crate::authz::Access;
use crate::connection::Reply;
use crate::state::BrokerState;

/// The most partitions one response carries, whatever the request asks for (Kafka's
/// `max.request.partition.size.limit` default).
pub const PARTITIONS_PER_RESPONSE_MAX: i32 = 2000;

/// The operations a topic allows when no authorizer runs: every topic operation (READ,
/// WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS) as a bit field
/// of their ACL operation codes, which is what Kafka reports without an authorizer.
pub const TOPIC_AUTHORIZED_OPERATIONS_ALL: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);

/// Kafka's internal topics, named for a topic that does not exist here.
fn is_internal_name(name: &str) -> bool {
    matches!(
        name,
        "__consumer_offsets" | "__transaction_state" | "__share_group_state"
    )
}

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    request: DescribeTopicPartitionsRequest,
) -> Reply {
    let every_topic = request.topics.is_empty();
    let cursor = request
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.0.to_string(), c.partition_index));
    let cursor_topic = cursor.as_ref().map(|c| c.0.as_str()).unwrap_or("");

    // 1. The topics to describe, in name order, from the cursor's topic on.
    let mut names: Vec<String> = if every_topic {
        state.topics().into_iter().map(|t| t.name).collect()
    } else {
        request
            .topics
            .iter()
            .map(|t| t.name.0.to_string())
            .collect()
    };
    names.retain(|n| n.as_str() >= cursor_topic);
    names.sort();
    names.dedup();
    if !every_topic {
        if let Some((topic, _)) = &cursor {
            if !names.contains(topic) {
                // The cursor's topic must be one of those asked for.
                let topics = names
                    .iter()
                    .map(|n| topic_error(n, ResponseError::InvalidRequest))
                    .collect();
                return meta.reply(&DescribeTopicPartitionsResponse::default().with_topics(topics));
            }
        }
    }

    let (names, refused): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|n| access.topic(Operation::Describe, n));
    let refused = refused.into_iter().filter(|_| !every_topic).map(|n| {
        DescribeTopicPartitionsResponseTopic::default()
            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
            .with_name(Some(TopicName(str_bytes(&n))))
            .with_topic_id(Uuid::nil())
    });

    // 2. Fill the page, partition by partition, up to the limit.
    let mut remaining = request
        .response_partition_limit
        .min(PARTITIONS_PER_RESPONSE_MAX);
    let mut body = DescribeTopicPartitionsResponse::default();
    for name in names {
        if remaining == 0 {
            // The page is full: the next one starts at this topic.
            body.next_cursor = Some(cursor_at(&name, 0));
            break;
        }
        if remaining < 0 {
            break;
        }
        let Some(topic) = state.topic(&name) else {
            if !every_topic {
                let code = match weir_meta::catalog::validate_topic_name(&name) {
                    Ok(()) => ResponseError::UnknownTopicOrPartition,
                    Err(_) => ResponseError::InvalidTopicException,
                };
                body.topics.push(topic_error(&name, code));
            }
            continue;
        };
        let start = match &cursor {
            Some((t, p)) if *t == name => *p,
            _ => 0,
        };
        let end = topic.partitions.min(start.saturating_add(remaining));
        body.topics.push(describe(state, &topic, start.max(0)..end));
        if end < topic.partitions {
            body.next_cursor = Some(cursor_at(&name, end));
            break;
        }
        remaining -= (end - start.max(0)).max(0);
    }
    for t in &mut body.topics {
        if t.error_code == 0 {
            t.topic_authorized_operations = access
                .topic_operations(&t.name.as_ref().map_or(String::new(), |n| n.0.to_string()));
        }
    }
    body.topics.extend(refused);
    meta.reply(&body)
}

fn cursor_at(topic: &str, partition_index: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(TopicName(str_bytes(topic)))
        .with_partition_index(partition_index)
}

fn describe(
    state: &BrokerState,
    topic: &Topic,
    partitions: std::ops::Range<i32>,
) -> DescribeTopicPartitionsResponseTopic {
    let membership = state.membership();
    let partitions = partitions
        .map(|i| {
            let node = BrokerId(membership.leader(topic.id, i));
            DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(i)
                .with_leader_id(node)
                .with_leader_epoch(PARTITION_LEADER_EPOCH)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
                .with_eligible_leader_replicas(Some(vec![]))
                .with_last_known_elr(Some(vec![]))
                .with_offline_replicas(vec![])
        })
        .collect();
    DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(&topic.name))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.internal)
        .with_partitions(partitions)
        .with_topic_authorized_operations(TOPIC_AUTHORIZED_OPERATIONS_ALL)
}

fn topic_error(name: &str, code: ResponseError) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(code.code())
        .with_name(Some(TopicName(str_bytes(name))))
        .with_topic_id(Uuid::nil())
        .with_is_internal(is_internal_name(name))
        .with_topic_authorized_operations(TOPIC_AUTHORIZED_OPERATIONS_ALL)
}
