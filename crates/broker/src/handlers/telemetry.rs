//! GetTelemetrySubscriptions (key 71) and PushTelemetry (key 72), KIP-714: the rules and
//! the store are in [`crate::telemetry`]; this turns requests into calls and answers.

use std::sync::Arc;

use kafka_protocol::messages::{
    GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse, PushTelemetryRequest,
    PushTelemetryResponse,
};

use super::produce::now_ms;
use super::{str_bytes, RequestMeta};
use crate::connection::{ClientInfo, Reply};
use crate::state::BrokerState;
use crate::telemetry::instances::{ClientFacts, ACCEPTED_COMPRESSION_TYPES, TELEMETRY_MAX_BYTES};

fn facts(client: &ClientInfo) -> ClientFacts {
    ClientFacts {
        client_id: client.client_id.clone(),
        client_software_name: client.software.0.clone(),
        client_software_version: client.software.1.clone(),
        client_source_address: client.peer.ip().to_string(),
        client_source_port: client.peer.port().to_string(),
    }
}

/// The subscription of the asking client instance, a new instance id when it sent the
/// zero UUID. A refusal carries only its error code, as Kafka's does.
pub fn get_subscriptions(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    request: GetTelemetrySubscriptionsRequest,
) -> Reply {
    let answer = match state.telemetry.get_subscription(
        request.client_instance_id,
        &facts(client),
        now_ms(),
    ) {
        Ok(g) => GetTelemetrySubscriptionsResponse::default()
            .with_client_instance_id(g.client_instance_id)
            .with_subscription_id(g.subscription_id)
            .with_accepted_compression_types(ACCEPTED_COMPRESSION_TYPES.to_vec())
            .with_push_interval_ms(g.push_interval_ms)
            .with_telemetry_max_bytes(TELEMETRY_MAX_BYTES)
            .with_delta_temporality(true)
            .with_requested_metrics(g.requested_metrics.iter().map(|m| str_bytes(m)).collect()),
        Err(e) => {
            tracing::debug!(client = %client.client_id, error = %e.message, "GetTelemetrySubscriptions refused");
            GetTelemetrySubscriptionsResponse::default().with_error_code(e.code)
        }
    };
    meta.reply(&answer)
}

/// A client instance's pushed metrics, kept in the telemetry store.
pub fn push(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    request: PushTelemetryRequest,
) -> Reply {
    let outcome = state.telemetry.push(
        request.client_instance_id,
        request.subscription_id,
        request.terminating,
        request.compression_type,
        &request.metrics,
        &facts(client),
        now_ms(),
    );
    let answer = match outcome {
        Ok(()) => PushTelemetryResponse::default(),
        Err(e) => {
            tracing::debug!(client = %client.client_id, error = %e.message, "PushTelemetry refused");
            PushTelemetryResponse::default().with_error_code(e.code)
        }
    };
    meta.reply(&answer)
}
