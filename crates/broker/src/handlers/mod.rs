//! One file per Kafka API. [`dispatch`] starts a decoded request and returns its [`Reply`].
//!
//! Every response is encoded through [`RequestMeta`], which also counts the error codes it
//! carries (`weir_request_errors_total`), so no handler has to remember to.

use std::sync::Arc;

use futures::FutureExt;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Encodable, StrBytes};
use weir_groups::GroupRequest;
use weir_log::store::BoxFuture;
use weir_wire::request::{DecodedRequest, Request};

use crate::authz::Access;
use crate::connection::{ClientInfo, Frame, Reply};
use crate::metrics::RequestErrors;
use crate::response_errors::ErrorCodes;
use crate::response_throttle::ThrottleTime;
use crate::state::BrokerState;

pub mod acls;
pub mod api_versions;
pub mod client_quotas;
pub mod cluster_access;
pub mod configs;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_topic_partitions;
pub mod elect_leaders;
pub mod fetch;
pub mod find_coordinator;
pub mod group_access;
pub mod groups;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod partition_reassignments;
pub mod produce;
pub mod scram_credentials;
pub mod telemetry;
pub mod txn;
pub mod write_txn_markers;

/// Whether the group coordinator APIs are advertised and served.
pub const GROUPS_ENABLED: bool = true;

/// Who asked, and at which version: everything needed to encode the answer, and the
/// counters its error codes go to.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    pub errors: RequestErrors,
    /// The throttle time the connection decided before dispatch (a Produce over its
    /// `producer_byte_rate`, any request over its `request_percentage`), set on the
    /// response's `throttle_time_ms` unless the handler set a larger one.
    pub throttle_time_ms: i32,
    /// Who sent the request, for the quotas its handling counts against (a Fetch's
    /// bytes, topic mutations); `None` where no client quota is set.
    pub quota: Option<crate::state::QuotaClient>,
}

impl RequestMeta {
    /// Encodes `body` as this request's response frame. An encoding failure is a broker
    /// bug (a field the version cannot carry); it is logged and the connection closed.
    pub fn frame<T: Encodable + ErrorCodes + ThrottleTime + Clone>(
        &self,
        body: &T,
    ) -> Option<Frame> {
        self.errors.count(self.api_key, body);
        if self.throttle_time_ms > 0 {
            // Throttled responses are rare: only they pay for the copy.
            let mut throttled = body.clone();
            if let Some(t) = throttled.throttle_time_ms_mut() {
                *t = (*t).max(self.throttle_time_ms);
            }
            return self.encode(&throttled);
        }
        self.encode(body)
    }

    fn encode<T: Encodable>(&self, body: &T) -> Option<Frame> {
        match weir_wire::response::encode_response(
            self.api_key,
            self.api_version,
            self.correlation_id,
            body,
        ) {
            Ok(b) => Some(vec![b]),
            Err(e) => {
                tracing::error!(api = ?self.api_key, version = self.api_version, error = %e, "could not encode response");
                None
            }
        }
    }

    /// A Fetch response as chunks that carry the read records without copying them.
    /// Its size counts against the consumer's `consumer_byte_rate` quota, and over it the
    /// response carries the throttle time (the connection is muted for that long); the
    /// larger of that and the request quota's throttle, as Kafka sends.
    pub fn fetch_frame(&self, mut body: kafka_protocol::messages::FetchResponse) -> Option<Frame> {
        self.errors.count(self.api_key, &body);
        if let Some(quota) = &self.quota {
            let bytes = body.compute_size(self.api_version).unwrap_or(0);
            body.throttle_time_ms =
                quota.record(weir_meta::client_quotas::CONSUMER_BYTE_RATE, bytes);
        }
        body.throttle_time_ms = body.throttle_time_ms.max(self.throttle_time_ms);
        match weir_wire::response::encode_fetch_response(
            self.api_version,
            self.correlation_id,
            body,
        ) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(version = self.api_version, error = %e, "could not encode fetch response");
                None
            }
        }
    }

    pub fn fetch_reply(&self, body: kafka_protocol::messages::FetchResponse) -> Reply {
        match self.fetch_frame(body) {
            Some(f) => Reply::Now(f),
            None => Reply::Close(None),
        }
    }

    /// The `controller_mutation_rate` quota this request's topic changes are charged to:
    /// strict from `strict_since_version` (KIP-599).
    pub fn controller_mutation_quota(
        &self,
        strict_since_version: i16,
    ) -> crate::state::ControllerMutationQuota {
        crate::state::ControllerMutationQuota::new(
            self.quota.clone(),
            self.api_version,
            strict_since_version,
        )
    }

    pub fn reply<T: Encodable + ErrorCodes + ThrottleTime + Clone>(&self, body: &T) -> Reply {
        match self.frame(body) {
            Some(f) => Reply::Now(f),
            None => Reply::Close(None),
        }
    }

    /// Answers with `body` at once when it is ready (the local storage engine answers at
    /// once), or when it resolves.
    pub fn reply_when_ready<T>(&self, mut body: BoxFuture<'static, T>) -> Reply
    where
        T: Encodable + ErrorCodes + ThrottleTime + Clone + Send + 'static,
    {
        if let Some(body) = (&mut body).now_or_never() {
            return self.reply(&body);
        }
        let meta = self.clone();
        Reply::Later(Box::pin(async move { meta.frame(&body.await) }))
    }
}

pub fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// The meta of a decoded request, to answer it with.
pub fn request_meta(state: &BrokerState, request: &DecodedRequest) -> RequestMeta {
    RequestMeta {
        api_key: request.api_key,
        api_version: request.api_version,
        correlation_id: request.correlation_id,
        errors: state.metrics.request_errors.clone(),
        throttle_time_ms: 0,
        quota: None,
    }
}

pub fn dispatch(
    state: &Arc<BrokerState>,
    client: &ClientInfo,
    meta: RequestMeta,
    request: DecodedRequest,
) -> Reply {
    tracing::trace!(api = ?meta.api_key, version = meta.api_version, client = %client.client_id, "request");
    let access = Access::of(state, client);
    if let Some(refusal) = cluster_access::refuse(&access, &meta, &request.body) {
        return refusal;
    }
    match request.body {
        Request::ApiVersions(r) => api_versions::handle(&meta, r),
        Request::Metadata(r) => metadata::handle(state, &meta, client, &access, r),
        Request::Produce(r) => produce::handle(state, &meta, &access, r),
        Request::Fetch(r) => fetch::handle(state, &meta, &access, r),
        Request::ListOffsets(r) => list_offsets::handle(state, &meta, &access, r),
        Request::CreateTopics(r) => create_topics::handle(state, &meta, &access, r),
        Request::DeleteTopics(r) => delete_topics::handle(state, &meta, &access, r),
        Request::CreatePartitions(r) => create_partitions::handle(state, &meta, &access, r),
        Request::DescribeConfigs(r) => configs::describe(state, &meta, &access, r),
        Request::AlterConfigs(r) => configs::alter(state, &meta, &access, r),
        Request::IncrementalAlterConfigs(r) => configs::incremental_alter(state, &meta, &access, r),
        Request::ListConfigResources(r) => configs::list_resources(state, &meta, &access, r),
        Request::DescribeCluster(r) => describe_cluster::handle(state, &meta, client, r),
        Request::DeleteRecords(r) => delete_records::handle(state, &meta, &access, r),
        Request::InitProducerId(r) => init_producer_id::handle(state, &meta, client, &access, r),
        Request::DescribeLogDirs(r) => describe_log_dirs::handle(state, &meta, &access, r),
        Request::OffsetForLeaderEpoch(r) => {
            offset_for_leader_epoch::handle(state, &meta, &access, r)
        }
        Request::DescribeTopicPartitions(r) => {
            describe_topic_partitions::handle(state, &meta, &access, r)
        }
        Request::ElectLeaders(r) => elect_leaders::handle(state, &meta, r),
        Request::AlterPartitionReassignments(r) => partition_reassignments::alter(state, &meta, r),
        Request::ListPartitionReassignments(r) => partition_reassignments::list(state, &meta, r),
        Request::FindCoordinator(r) => find_coordinator::handle(state, &meta, client, &access, r),
        Request::JoinGroup(r) => groups::handle(
            state,
            &meta,
            client,
            &access,
            GroupRequest::JoinGroup(r, state.topic_image()),
        ),
        Request::SyncGroup(r) => groups::handle(
            state,
            &meta,
            client,
            &access,
            GroupRequest::SyncGroup(r, state.topic_image()),
        ),
        Request::Heartbeat(r) => {
            groups::handle(state, &meta, client, &access, GroupRequest::Heartbeat(r))
        }
        Request::LeaveGroup(r) => {
            groups::handle(state, &meta, client, &access, GroupRequest::LeaveGroup(r))
        }
        Request::OffsetCommit(r) => {
            groups::handle(state, &meta, client, &access, GroupRequest::OffsetCommit(r))
        }
        Request::OffsetFetch(r) => {
            groups::handle(state, &meta, client, &access, GroupRequest::OffsetFetch(r))
        }
        Request::OffsetDelete(r) => {
            groups::handle(state, &meta, client, &access, GroupRequest::OffsetDelete(r))
        }
        Request::ListGroups(r) => {
            groups::handle(state, &meta, client, &access, GroupRequest::ListGroups(r))
        }
        Request::DescribeGroups(r) => groups::handle(
            state,
            &meta,
            client,
            &access,
            GroupRequest::DescribeGroups(r),
        ),
        Request::DeleteGroups(r) => {
            groups::handle(state, &meta, client, &access, GroupRequest::DeleteGroups(r))
        }
        Request::AddPartitionsToTxn(r) => txn::add_partitions(state, &meta, client, &access, r),
        Request::AddOffsetsToTxn(r) => txn::add_offsets(state, &meta, client, &access, r),
        Request::EndTxn(r) => txn::end(state, &meta, client, &access, r),
        Request::TxnOffsetCommit(r) => txn::txn_offset_commit(state, &meta, client, &access, r),
        Request::DescribeTransactions(r) => txn::describe(state, &meta, client, &access, r),
        Request::ListTransactions(r) => txn::list(state, &meta, client, &access, r),
        Request::DescribeProducers(r) => describe_producers::handle(state, &meta, &access, r),
        Request::WriteTxnMarkers(r) => write_txn_markers::handle(state, &meta, r),
        Request::ConsumerGroupHeartbeat(r) => groups::handle(
            state,
            &meta,
            client,
            &access,
            GroupRequest::ConsumerGroupHeartbeat(r, state.topic_image()),
        ),
        Request::ConsumerGroupDescribe(r) => groups::handle(
            state,
            &meta,
            client,
            &access,
            GroupRequest::ConsumerGroupDescribe(r, state.topic_image()),
        ),
        Request::GetTelemetrySubscriptions(r) => {
            telemetry::get_subscriptions(state, &meta, client, r)
        }
        Request::PushTelemetry(r) => telemetry::push(state, &meta, client, r),
        Request::CreateAcls(r) => acls::create(state, &meta, r),
        Request::DescribeAcls(r) => acls::describe(state, &meta, r),
        Request::DeleteAcls(r) => acls::delete(state, &meta, r),
        // Authentication requests are answered by the connection's session before dispatch.
        Request::SaslHandshake(_) | Request::SaslAuthenticate(_) => Reply::Close(None),
        Request::DescribeUserScramCredentials(r) => scram_credentials::describe(state, &meta, r),
        Request::AlterUserScramCredentials(r) => scram_credentials::alter(state, &meta, r),
        Request::DescribeClientQuotas(r) => client_quotas::describe(state, &meta, r),
        Request::AlterClientQuotas(r) => client_quotas::alter(state, &meta, r),
    }
}
