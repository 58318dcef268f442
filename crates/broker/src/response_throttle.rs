//! The `throttle_time_ms` field of each response type, so [`crate::handlers::RequestMeta`]
//! can set the throttle a client quota asks for on any response, whichever handler built it.
//!
//! Responses without the field (SaslHandshake, SaslAuthenticate, WriteTxnMarkers) are the
//! ones Kafka never throttles anyway.

use kafka_protocol::messages::*;

/// A response that may carry a throttle time.
pub trait ThrottleTime {
    /// The response's `throttle_time_ms`, or `None` for a response without one.
    fn throttle_time_ms_mut(&mut self) -> Option<&mut i32>;
}

macro_rules! with_throttle_time {
    ($($response:ty),* $(,)?) => {
        $(
            impl ThrottleTime for $response {
                fn throttle_time_ms_mut(&mut self) -> Option<&mut i32> {
                    Some(&mut self.throttle_time_ms)
                }
            }
        )*
    };
}

macro_rules! without_throttle_time {
    ($($response:ty),* $(,)?) => {
        $(
            impl ThrottleTime for $response {
                fn throttle_time_ms_mut(&mut self) -> Option<&mut i32> {
                    None
                }
            }
        )*
    };
}

with_throttle_time!(
    ApiVersionsResponse,
    ListConfigResourcesResponse,
    DescribeClusterResponse,
    InitProducerIdResponse,
    ListPartitionReassignmentsResponse,
    JoinGroupResponse,
    SyncGroupResponse,
    HeartbeatResponse,
    ListGroupsResponse,
    AddOffsetsToTxnResponse,
    EndTxnResponse,
    ListTransactionsResponse,
    ConsumerGroupHeartbeatResponse,
    GetTelemetrySubscriptionsResponse,
    PushTelemetryResponse,
    CreateAclsResponse,
    DescribeAclsResponse,
    DeleteAclsResponse,
    ProduceResponse,
    FetchResponse,
    ListOffsetsResponse,
    MetadataResponse,
    CreateTopicsResponse,
    DeleteTopicsResponse,
    CreatePartitionsResponse,
    DescribeConfigsResponse,
    AlterConfigsResponse,
    IncrementalAlterConfigsResponse,
    DeleteRecordsResponse,
    DescribeLogDirsResponse,
    OffsetForLeaderEpochResponse,
    DescribeTopicPartitionsResponse,
    ElectLeadersResponse,
    AlterPartitionReassignmentsResponse,
    FindCoordinatorResponse,
    LeaveGroupResponse,
    OffsetCommitResponse,
    OffsetFetchResponse,
    OffsetDeleteResponse,
    DescribeGroupsResponse,
    DeleteGroupsResponse,
    AddPartitionsToTxnResponse,
    TxnOffsetCommitResponse,
    DescribeTransactionsResponse,
    DescribeProducersResponse,
    ConsumerGroupDescribeResponse,
    DescribeUserScramCredentialsResponse,
    AlterUserScramCredentialsResponse,
    DescribeClientQuotasResponse,
    AlterClientQuotasResponse,
);

without_throttle_time!(
    SaslHandshakeResponse,
    SaslAuthenticateResponse,
    WriteTxnMarkersResponse,
);
