//! Metadata: brokers, cluster id, controller, and topics with their partitions. Creates a
//! missing topic on request when `auto.create.topics.enable` is on, as Kafka does.
//!
//! Authorization as Kafka's: the every-topic form lists only topics the principal may
//! DESCRIBE; a topic asked for without DESCRIBE is TOPIC_AUTHORIZATION_FAILED whether it
//! exists or not (by id, the id is kept and the name left out); auto-creating one needs
//! CREATE on the cluster or the topic.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use uuid::Uuid;
use weir_meta::acls::Operation;
use weir_meta::Topic;
use weir_wire::ResponseError;

use super::{str_bytes, RequestMeta};
use crate::authz::Access;
use crate::connection::{ClientInfo, Reply};
use crate::state::BrokerState;

/// The leader epoch of every partition: one node has led each since it was created, and
/// every batch it appends carries this epoch.
pub const PARTITION_LEADER_EPOCH: i32 = 0;

pub fn describe_topic(state: &BrokerState, topic: &Topic) -> MetadataResponseTopic {
    let membership = state.membership();
    let partitions = (0..topic.partitions)
        .map(|i| {
            let node = BrokerId(membership.leader(topic.id, i));
            MetadataResponsePartition::default()
                .with_partition_index(i)
                .with_leader_id(node)
                .with_leader_epoch(PARTITION_LEADER_EPOCH)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(&topic.name))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.internal)
        .with_partitions(partitions)
}

fn topic_error(name: Option<&str>, id: Uuid, code: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code.code())
        .with_name(name.map(|n| TopicName(str_bytes(n))))
        .with_topic_id(id)
}

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    access: &Access,
    request: MetadataRequest,
) -> Reply {
    let v = meta.api_version;
    let brokers: Vec<MetadataResponseBroker> = state
        .brokers(&client.listener.config)
        .into_iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.node_id))
                .with_host(str_bytes(&b.host))
                .with_port(b.port)
        })
        .collect();

    // v0 asks for every topic with an empty list; v1+ with a null list.
    let requested = match request.topics {
        None => None,
        Some(t) if t.is_empty() && v == 0 => None,
        Some(t) => Some(t),
    };
    let allow_auto_create = if v >= 4 {
        request.allow_auto_topic_creation
    } else {
        true
    };

    let topics = match requested {
        // Every topic, internal ones included and marked so, as Kafka answers: clients
        // leave them out where they should (`exclude.internal.topics`, the admin client's
        // `listInternal`), and Kafka's tools list them.
        None => state
            .topics()
            .iter()
            .filter(|t| access.topic(Operation::Describe, &t.name))
            .map(|t| describe_topic(state, t))
            .collect(),
        Some(list) => {
            // As in Kafka, a request naming any topic id is answered by id, whatever names it
            // carries: the Java consumer resolves the ids of its assignment with empty names.
            let by_id = list.iter().any(|t| !t.topic_id.is_nil());
            // A topic another broker of a cluster has just created may not have reached
            // this one yet: read the stored catalog before answering that it is unknown.
            let unknown = |t: &MetadataRequestTopic| match t.name.as_ref().filter(|_| !by_id) {
                Some(name) => state.topic(&name.0).is_none(),
                None => state.topic_by_id(t.topic_id).is_none(),
            };
            if list.iter().any(unknown) {
                state.catch_up_catalog();
            }
            list
            .into_iter()
            .map(|t| {
                if let Some(name) = t.name.as_ref().map(|n| n.0.to_string()).filter(|_| !by_id) {
                    if !access.topic(Operation::Describe, &name) {
                        return topic_error(Some(&name), Uuid::nil(), ResponseError::TopicAuthorizationFailed);
                    }
                    if let Some(topic) = state.topic(&name) {
                        return describe_topic(state, &topic);
                    }
                    if weir_meta::catalog::validate_topic_name(&name).is_err() {
                        return topic_error(Some(&name), Uuid::nil(), ResponseError::InvalidTopicException);
                    }
                    // Asking for the offsets topic by name creates it as the coordinator would.
                    if name == crate::group_runtime::OFFSETS_TOPIC && allow_auto_create {
                        match crate::group_runtime::ensure_offsets_topic(state) {
                            Ok(topic) => return describe_topic(state, &topic),
                            Err(e) => tracing::warn!(error = %e.message, "cannot create {name}"),
                        }
                    }
                    if allow_auto_create && state.config.auto_create_topics && !access.create_topic(&name) {
                        return topic_error(Some(&name), Uuid::nil(), ResponseError::TopicAuthorizationFailed);
                    }
                    if allow_auto_create && state.config.auto_create_topics {
                        match state.create_topic(&name, state.config.default_partitions, 1, BTreeMap::new(), false, true) {
                            Ok(topic) => return describe_topic(state, &topic),
                            // Another connection created it between our check and create.
                            Err(e) if e.code == ResponseError::TopicAlreadyExists.code() => {
                                if let Some(topic) = state.topic(&name) {
                                    return describe_topic(state, &topic);
                                }
                            }
                            Err(e) => tracing::warn!(topic = name, error = %e.message, "auto-create failed"),
                        }
                    }
                    topic_error(Some(&name), Uuid::nil(), ResponseError::UnknownTopicOrPartition)
                } else {
                    match state.topic_by_id(t.topic_id) {
                        Some(topic) if !access.topic(Operation::Describe, &topic.name) => {
                            topic_error(None, t.topic_id, ResponseError::TopicAuthorizationFailed)
                        }
                        Some(topic) => describe_topic(state, &topic),
                        None => topic_error(None, t.topic_id, ResponseError::UnknownTopicId),
                    }
                }
            })
            .collect()
        }
    };

    let mut topics: Vec<MetadataResponseTopic> = topics;
    if v >= 8 && request.include_topic_authorized_operations {
        for t in topics.iter_mut().filter(|t| t.error_code == 0) {
            let name = t.name.as_ref().map_or(String::new(), |n| n.0.to_string());
            t.topic_authorized_operations = access.topic_operations(&name);
        }
    }
    let body = MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(&state.cluster_id())))
        .with_controller_id(BrokerId(state.membership().controller()))
        .with_topics(topics);
    meta.reply(&body)
}
