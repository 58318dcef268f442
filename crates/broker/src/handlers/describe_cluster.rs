//! DescribeCluster: this one broker, which is also the controller, and (when asked) the
//! operations the principal may perform on the cluster.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use weir_wire::ResponseError;

use super::{str_bytes, RequestMeta};
use crate::connection::{ClientInfo, Reply};
use crate::state::BrokerState;

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    request: DescribeClusterRequest,
) -> Reply {
    let mut body = DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(str_bytes(&state.cluster_id()))
        .with_controller_id(BrokerId(state.membership().controller()));
    // Endpoint type 1 asks for brokers, 2 for controllers; weir is both.
    if !matches!(request.endpoint_type, 1 | 2) {
        body = body
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(str_bytes(
                "endpoint type must be 1 (brokers) or 2 (controllers)",
            )));
        return meta.reply(&body);
    }
    if request.include_cluster_authorized_operations {
        body.cluster_authorized_operations =
            crate::authz::Access::of(state, client).cluster_operations();
    }
    body.brokers = state
        .brokers(&client.listener.config)
        .into_iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.node_id))
                .with_host(str_bytes(&b.host))
                .with_port(b.port)
        })
        .collect();
    meta.reply(&body)
}
