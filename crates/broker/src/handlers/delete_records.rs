//! DeleteRecords: move a partition's log start offset forward (-1 means the high watermark).
//! Needs DELETE on the topic (else TOPIC_AUTHORIZATION_FAILED).

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::RequestMeta;
use crate::authz::Access;
use crate::connection::Reply;
use crate::errors::store_error_code;
use crate::state::BrokerState;

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    request: DeleteRecordsRequest,
) -> Reply {
    let allowed: Vec<bool> = request
        .topics
        .iter()
        .map(|t| access.topic(Operation::Delete, t.name.0.as_str()))
        .collect();
    let state = Arc::clone(state);
    meta.reply_when_ready(Box::pin(async move {
        let mut topics = Vec::with_capacity(request.topics.len());
        for (t, allowed) in request.topics.into_iter().zip(allowed) {
            let name = t.name.0.to_string();
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in t.partitions {
                let out = DeleteRecordsPartitionResult::default()
                    .with_partition_index(p.partition_index)
                    .with_low_watermark(-1);
                if !allowed {
                    partitions
                        .push(out.with_error_code(ResponseError::TopicAuthorizationFailed.code()));
                    continue;
                }
                let Some(tp) = state.topic_partition(&name, p.partition_index) else {
                    partitions
                        .push(out.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                    continue;
                };
                // -1 is DELETE_TO_HIGH_WATERMARK, which the engine understands.
                partitions.push(
                    match state.log_admin().delete_records_before(&tp, p.offset).await {
                        Ok(low) => out.with_low_watermark(low),
                        Err(e) => out.with_error_code(store_error_code(&e)),
                    },
                );
            }
            topics.push(
                DeleteRecordsTopicResult::default()
                    .with_name(t.name)
                    .with_partitions(partitions),
            );
        }
        DeleteRecordsResponse::default().with_topics(topics)
    }))
}
