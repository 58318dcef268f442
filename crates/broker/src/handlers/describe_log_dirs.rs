//! DescribeLogDirs: the one data directory and the size of each partition in it. Needs
//! DESCRIBE on the cluster; without it the answer is empty, with CLUSTER_AUTHORIZATION_FAILED
//! from v3, as Kafka answers.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::{str_bytes, RequestMeta};
use crate::authz::Access;
use crate::connection::Reply;
use crate::state::BrokerState;

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    access: &Access,
    request: DescribeLogDirsRequest,
) -> Reply {
    if !access.cluster(Operation::Describe) {
        return meta.reply(
            &DescribeLogDirsResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
        );
    }
    // No topics named: every partition, as Kafka answers a null topic list.
    let wanted: BTreeMap<String, Vec<i32>> = match request.topics {
        Some(ts) => ts
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect(),
        None => state
            .topics()
            .into_iter()
            .map(|t| (t.name.clone(), (0..t.partitions).collect()))
            .collect(),
    };
    let state = Arc::clone(state);
    meta.reply_when_ready(Box::pin(async move {
        let mut topics = Vec::new();
        for (name, partitions) in wanted {
            let mut found = Vec::new();
            for p in partitions {
                let Some(tp) = state.topic_partition(&name, p) else {
                    continue;
                };
                // A partition deleted meanwhile is left out, as one never created is.
                if let Ok(size_bytes) = state.log_admin().size_bytes(&tp).await {
                    found.push(
                        DescribeLogDirsPartition::default()
                            .with_partition_index(p)
                            .with_partition_size(size_bytes as i64)
                            .with_offset_lag(0),
                    );
                }
            }
            if !found.is_empty() {
                topics.push(
                    DescribeLogDirsTopic::default()
                        .with_name(TopicName(str_bytes(&name)))
                        .with_partitions(found),
                );
            }
        }
        let dir = std::fs::canonicalize(&state.config.data_dir)
            .unwrap_or_else(|_| state.config.data_dir.clone());
        let result = DescribeLogDirsResult::default()
            .with_log_dir(str_bytes(&dir.display().to_string()))
            .with_topics(topics)
            .with_total_bytes(-1)
            .with_usable_bytes(-1);
        DescribeLogDirsResponse::default().with_results(vec![result])
    }))
}
