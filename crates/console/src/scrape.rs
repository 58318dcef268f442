//! `GET /metrics`: the broker's counters, the partitions' offsets and traffic, the groups'
//! committed offsets and lag, the process's memory, CPU and descriptors, and the storage
//! engine's own counters (a cluster's object-store requests), encoded in
//! OpenMetrics text on each scrape.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use prometheus_client::registry::Registry;
use weir_broker::authz::Access;
use weir_broker::state::BrokerState;
use weir_meta::acls::Operation;

use crate::engine_metrics::EngineMetrics;
use crate::errors::HttpError;
use crate::group_metrics::GroupMetrics;
use crate::partition_metrics::PartitionMetrics;
use crate::process_metrics::ProcessMetrics;

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A registry for one scrape: the broker's families (shared, not copied), the collectors that
/// read partitions and the process, and the groups' offsets the coordinator just gave.
fn registry(state: &Arc<BrokerState>, groups: GroupMetrics) -> Registry {
    let mut registry = Registry::default();
    state.metrics.register(&mut registry);
    registry.register_collector(Box::new(PartitionMetrics::new(Arc::clone(state))));
    registry.register_collector(Box::new(groups));
    registry.register_collector(Box::new(ProcessMetrics));
    registry.register_collector(Box::new(EngineMetrics::read(state)));
    registry
}

/// The scrape names every topic and group, so the caller needs DESCRIBE on the cluster
/// (always granted while the authorizer is off).
pub async fn metrics(
    State(state): State<Arc<BrokerState>>,
    State(lag_history): State<Arc<crate::lag_history::LagHistory>>,
    Extension(access): Extension<Access>,
) -> Response {
    if let Err(refused) = crate::api::authorize::require_cluster(&access, Operation::Describe) {
        return refused.into_response();
    }
    let groups = GroupMetrics::read(&state, &lag_history).await;
    // Encoding takes each partition's lock in turn, which an append may hold during disk
    // I/O, so it runs off the async workers.
    let encoded = tokio::task::spawn_blocking(move || {
        let registry = registry(&state, groups);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).map(|()| text)
    })
    .await;
    match encoded {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response(),
        Ok(Err(e)) => encode_failed(&e),
        Err(e) => encode_failed(&e),
    }
}

fn encode_failed(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "encoding /metrics failed");
    HttpError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal",
        message: "The metrics could not be encoded; the broker log says why.".to_string(),
    }
    .into_response()
}
