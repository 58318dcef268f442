//! DeleteTopics, by name (all versions) or by topic id (v6+).

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;
use weir_wire::ResponseError;

use super::{str_bytes, RequestMeta};
use crate::connection::Reply;
use crate::state::BrokerState;

pub fn handle(state: &Arc<BrokerState>, meta: &RequestMeta, request: DeleteTopicsRequest) -> Reply {
    let targets: Vec<(Option<String>, Uuid)> = if meta.api_version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let name = match name {
                Some(n) => Some(n),
                None => state.topic_by_id(id).map(|t| t.name),
            };
            let result = DeletableTopicResult::default().with_topic_id(id);
            let Some(name) = name else {
                return result.with_error_code(ResponseError::UnknownTopicId.code());
            };
            let result = result.with_name(Some(TopicName(str_bytes(&name))));
            match state.delete_topic(&name) {
                Ok(topic) => result.with_topic_id(topic.id),
                Err(e) => result
                    .with_error_code(e.code)
                    .with_error_message(Some(str_bytes(&e.message))),
            }
        })
        .collect();
    meta.reply(&DeleteTopicsResponse::default().with_responses(responses))
}
