//! The classic consumer group APIs: each is handed to the coordinator task
//! ([`crate::group_runtime`]) and answered when the coordinator releases its response.
//! The ACL checks come first ([`super::group_access`]). On a broker that is not the
//! coordinator (not the controller), or before the coordinator has loaded, the request is
//! refused whole with NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::OffsetCommitResponse;
use weir_groups::{GroupRequest, GroupResponse};
use weir_wire::ResponseError;

use super::{group_access, RequestMeta};
use crate::authz::Access;
use crate::connection::{ClientInfo, Reply};
use crate::state::BrokerState;

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    access: &Access,
    mut request: GroupRequest,
) -> Reply {
    let mut after = match group_access::check(access, meta, &mut request) {
        Ok(after) => after,
        Err(reply) => return reply,
    };
    // As Kafka's request handler does before the coordinator sees an OffsetCommit: offsets
    // for topics or partitions that do not exist are refused with UNKNOWN_TOPIC_OR_PARTITION,
    // and when nothing is left the coordinator is not asked at all.
    let mut unknown: Vec<OffsetCommitResponseTopic> = after.take_commit_refused();
    if let GroupRequest::OffsetCommit(r) = &mut request {
        for mut t in std::mem::take(&mut r.topics) {
            let count = state
                .topic(t.name.as_str())
                .map_or(0, |topic| topic.partitions);
            let (valid, invalid): (Vec<_>, Vec<_>) = t
                .partitions
                .into_iter()
                .partition(|p| (0..count).contains(&p.partition_index));
            if !invalid.is_empty() {
                unknown.push(
                    OffsetCommitResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            invalid
                                .iter()
                                .map(|p| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(
                                            ResponseError::UnknownTopicOrPartition.code(),
                                        )
                                })
                                .collect(),
                        ),
                );
            }
            if !valid.is_empty() {
                t.partitions = valid;
                r.topics.push(t);
            }
        }
        if r.topics.is_empty() {
            return meta.reply(&OffsetCommitResponse::default().with_topics(unknown));
        }
    }
    if let GroupRequest::JoinGroup(r, _) = &request {
        tracing::debug!(
            group = %r.group_id.0,
            member = %r.member_id,
            instance = ?r.group_instance_id.as_deref(),
            client = %client.client_id,
            "JoinGroup"
        );
    }
    // Not the coordinator, or not loaded yet: refused as a whole, after the ACL checks.
    let runtime = match (state.coordinator_refusal(), state.groups()) {
        (None, Some(runtime)) => runtime,
        (refusal, _) => {
            let code = refusal.unwrap_or(ResponseError::CoordinatorLoadInProgress);
            let mut response = request.refused(meta.api_version, code);
            after.apply(&mut response);
            return match frame_of(meta, response, unknown) {
                Some(f) => Reply::Now(f),
                None => Reply::Close(None),
            };
        }
    };
    // The requests a coordinator parks (joins, syncs, heartbeats) hear NOT_COORDINATOR when
    // it stops or its write fails before answering, as from Kafka, so their clients find
    // the coordinator again at once instead of after their request timeout. Their answer
    // is small whatever the request, so it is made up front.
    let on_failure = matches!(
        request,
        GroupRequest::JoinGroup(..)
            | GroupRequest::SyncGroup(..)
            | GroupRequest::Heartbeat(_)
            | GroupRequest::LeaveGroup(_)
            | GroupRequest::ConsumerGroupHeartbeat(..)
    )
    .then(|| request.refused(meta.api_version, ResponseError::NotCoordinator));
    let meta = meta.clone();
    let client_id = client.client_id.clone();
    // Kafka reports a member's host as "/" followed by its address.
    let client_host = format!("/{}", client.peer.ip());
    Reply::Later(Box::pin(async move {
        let mut response = match runtime
            .call(meta.api_version, client_id, client_host, request)
            .await
        {
            Some(response) => response,
            None => on_failure?,
        };
        after.apply(&mut response);
        frame_of(&meta, response, unknown)
    }))
}

/// Encodes the coordinator's answer; `unknown` are OffsetCommit partitions refused before.
fn frame_of(
    meta: &RequestMeta,
    response: GroupResponse,
    unknown: Vec<OffsetCommitResponseTopic>,
) -> Option<crate::connection::Frame> {
    match response {
        GroupResponse::JoinGroup(b) => meta.frame(&b),
        GroupResponse::SyncGroup(b) => meta.frame(&b),
        GroupResponse::Heartbeat(b) => meta.frame(&b),
        GroupResponse::LeaveGroup(b) => meta.frame(&b),
        GroupResponse::OffsetCommit(mut b) => {
            // Refused partitions join their topic's entry, or come as one of their own.
            for t in unknown {
                match b.topics.iter_mut().find(|x| x.name == t.name) {
                    Some(x) => x.partitions.extend(t.partitions),
                    None => b.topics.push(t),
                }
            }
            meta.frame(&b)
        }
        GroupResponse::OffsetFetch(b) => meta.frame(&b),
        GroupResponse::OffsetDelete(b) => meta.frame(&b),
        GroupResponse::ListGroups(b) => meta.frame(&b),
        GroupResponse::DescribeGroups(b) => meta.frame(&b),
        GroupResponse::DeleteGroups(b) => meta.frame(&b),
        GroupResponse::TxnOffsetCommit(b) => meta.frame(&b),
        GroupResponse::ConsumerGroupHeartbeat(b) => meta.frame(&b),
        GroupResponse::ConsumerGroupDescribe(b) => meta.frame(&b),
    }
}
