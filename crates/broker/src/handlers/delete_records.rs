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
use crate::state::BrokerState;

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    request: DeleteRecordsRequest,
) -> Reply {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let allowed = access.topic(Operation::Delete, &name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let out = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    if !allowed {
                        return out.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let Some(handle) = state.partition(&name, p.partition_index) else {
                        return out.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let mut log = handle.log.lock();
                    let target = if p.offset == -1 {
                        log.high_watermark()
                    } else {
                        p.offset
                    };
                    match log.delete_records_before(target) {
                        Ok(low) => out.with_low_watermark(low),
                        Err(e) => out.with_error_code(crate::errors::log_error_code(&e)),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    meta.reply(&DeleteRecordsResponse::default().with_topics(topics))
}
