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
use weir_log::store::MarkerWrite;
use weir_wire::ResponseError;

use super::RequestMeta;
use crate::connection::Reply;
use crate::errors::store_error_code;
use crate::group_runtime::OFFSETS_TOPIC;
use crate::handlers::produce::now_ms;
use crate::state::BrokerState;

/// Writes every marker; returns the answer and the offsets partitions that got one, with
/// their producer and outcome. Answered once the markers written are durable.
async fn write_all(
    state: &BrokerState,
    request: WriteTxnMarkersRequest,
) -> (WriteTxnMarkersResponse, Vec<(i32, i64, bool)>) {
    // 1. Every partition's answer, with the markers to write for those that exist.
    let mut writes = Vec::new();
    // (marker, topic, partition) in `results` of each write.
    let mut slots = Vec::new();
    let mut results = Vec::with_capacity(request.markers.len());
    for (mi, m) in request.markers.into_iter().enumerate() {
        let mut topics = Vec::with_capacity(m.topics.len());
        for (ti, t) in m.topics.into_iter().enumerate() {
            let mut partitions = Vec::with_capacity(t.partition_indexes.len());
            for (pi, p) in t.partition_indexes.into_iter().enumerate() {
                let mut code = 0;
                match state.topic_partition(t.name.0.as_str(), p) {
                    None => code = ResponseError::UnknownTopicOrPartition.code(),
                    Some(tp) => {
                        slots.push((mi, ti, pi));
                        writes.push(MarkerWrite {
                            tp,
                            producer_id: m.producer_id.0,
                            producer_epoch: m.producer_epoch,
                            coordinator_epoch: m.coordinator_epoch,
                            commit: m.transaction_result,
                            from_coordinator: false,
                        });
                    }
                }
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
    // 2. Write them all; each answer says how its marker fared.
    let outcomes = state
        .txn_log()
        .write_markers(writes.clone(), now_ms())
        .await;
    let mut offsets_markers = Vec::new();
    for (((mi, ti, pi), outcome), w) in slots.into_iter().zip(outcomes).zip(writes) {
        let p = &mut results[mi].topics[ti].partitions[pi];
        match outcome {
            Ok(()) => {
                if w.tp.topic == OFFSETS_TOPIC {
                    offsets_markers.push((w.tp.partition, w.producer_id, w.commit));
                }
            }
            Err(e) => p.error_code = store_error_code(&e),
        }
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
        let (body, offsets_markers) = write_all(&state, request).await;
        if let Some(groups) = state.groups() {
            for (p, producer_id, commit) in offsets_markers {
                groups.marker_written(p, producer_id, commit).await;
            }
        }
        meta.frame(&body)
    }))
}
