//! WriteTxnMarkers from outside the broker: what `kafka-transactions.sh abort` and
//! `weir transactions abort` send to end a hanging transaction (KIP-664). weir's own
//! coordinator writes its markers in process ([`crate::txn_runtime`]); this handler writes
//! the same control batches for a client, durably, and tells the group coordinator about
//! markers in `__consumer_offsets`.

use std::sync::Arc;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use weir_wire::ResponseError;

use super::RequestMeta;
use crate::connection::Reply;
use crate::group_runtime::OFFSETS_TOPIC;
use crate::handlers::produce::now_ms;
use crate::state::BrokerState;

/// Writes every marker; returns the answer and the offsets partitions that got one, with
/// their producer and outcome.
fn write_all(
    state: &BrokerState,
    request: WriteTxnMarkersRequest,
) -> (WriteTxnMarkersResponse, Vec<(i32, i64, bool)>) {
    let now = now_ms();
    let mut offsets_markers = Vec::new();
    let mut files = Vec::new();
    let mut results = Vec::new();
    for m in request.markers {
        let mut topics = Vec::new();
        for t in m.topics {
            let mut partitions = Vec::new();
            for p in t.partition_indexes {
                let code = match state.partition(t.name.0.as_str(), p) {
                    None => ResponseError::UnknownTopicOrPartition.code(),
                    Some(handle) => {
                        let mut log = handle.log.lock();
                        match log.append_marker(
                            m.producer_id.0,
                            m.producer_epoch,
                            m.coordinator_epoch,
                            m.transaction_result,
                            now,
                        ) {
                            Ok(_) => {
                                if let Some(f) = log.sync_handle_if(
                                    state.config.fsync == weir_log::FsyncPolicy::Always,
                                ) {
                                    files.push(f);
                                }
                                drop(log);
                                handle.appended.notify_waiters();
                                if t.name.0.as_str() == OFFSETS_TOPIC {
                                    offsets_markers.push((
                                        p,
                                        m.producer_id.0,
                                        m.transaction_result,
                                    ));
                                }
                                0
                            }
                            Err(e) => crate::errors::log_error_code(&e),
                        }
                    }
                };
                partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(p)
                        .with_error_code(code),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(t.name)
                    .with_partitions(partitions),
            );
        }
        results.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics),
        );
    }
    // Answered once durable; a failed fsync turns every written marker's answer into an error.
    if state
        .metrics
        .timed_fsync(|| weir_log::sync_data_all(&files))
        .iter()
        .any(Result::is_err)
    {
        for r in &mut results {
            for t in &mut r.topics {
                for p in &mut t.partitions {
                    if p.error_code == 0 {
                        p.error_code = ResponseError::KafkaStorageError.code();
                    }
                }
            }
        }
        offsets_markers.clear();
    }
    (
        WriteTxnMarkersResponse::default().with_markers(results),
        offsets_markers,
    )
}

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    request: WriteTxnMarkersRequest,
) -> Reply {
    let state = Arc::clone(state);
    let meta = meta.clone();
    Reply::Later(Box::pin(async move {
        let s = Arc::clone(&state);
        let (body, offsets_markers) = tokio::task::spawn_blocking(move || write_all(&s, request))
            .await
            .ok()?;
        if let Some(groups) = state.groups() {
            for (p, producer_id, commit) in offsets_markers {
                groups.marker_written(p, producer_id, commit).await;
            }
        }
        meta.frame(&body)
    }))
}
