//! The classic consumer group APIs: each is handed to the coordinator task
//! ([`crate::group_runtime`]) and answered when the coordinator releases its response.

use std::sync::Arc;

use weir_groups::{GroupRequest, GroupResponse};

use super::RequestMeta;
use crate::connection::{ClientInfo, Reply};
use crate::state::BrokerState;

pub fn handle(state: &Arc<BrokerState>, meta: &RequestMeta, client: &ClientInfo, request: GroupRequest) -> Reply {
    let Some(runtime) = state.groups() else {
        return Reply::Close(None);
    };
    let runtime = runtime.clone();
    let meta = *meta;
    let client_id = client.client_id.clone();
    // Kafka reports a member's host as "/" followed by its address.
    let client_host = format!("/{}", client.peer.ip());
    Reply::Later(Box::pin(async move {
        let response = runtime.call(meta.api_version, client_id, client_host, request).await?;
        match response {
            GroupResponse::JoinGroup(b) => meta.frame(&b),
            GroupResponse::SyncGroup(b) => meta.frame(&b),
            GroupResponse::Heartbeat(b) => meta.frame(&b),
            GroupResponse::LeaveGroup(b) => meta.frame(&b),
            GroupResponse::OffsetCommit(b) => meta.frame(&b),
            GroupResponse::OffsetFetch(b) => meta.frame(&b),
            GroupResponse::OffsetDelete(b) => meta.frame(&b),
            GroupResponse::ListGroups(b) => meta.frame(&b),
            GroupResponse::DescribeGroups(b) => meta.frame(&b),
            GroupResponse::DeleteGroups(b) => meta.frame(&b),
        }
    }))
}
