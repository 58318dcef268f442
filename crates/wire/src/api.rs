//! The APIs weir implements and the version range of each: exactly what ApiVersions
//! advertises. An API appears here only once its handler is real.

use kafka_protocol::messages::ApiKey;

/// One row of the ApiVersions answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub api_key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
}

const fn range(api_key: ApiKey, min_version: i16, max_version: i16) -> ApiRange {
    ApiRange {
        api_key,
        min_version,
        max_version,
    }
}

/// The newest ApiVersions version weir answers.
pub const API_VERSIONS_MAX_VERSION: i16 = 5;
/// The newest ApiVersions layout the codec has; newer versions share it.
pub const API_VERSIONS_CODEC_VERSION: i16 = 4;

/// APIs served by the broker core (log and metadata).
pub const CORE_APIS: &[ApiRange] = &[
    range(ApiKey::Produce, 3, 13),
    range(ApiKey::Fetch, 4, 18),
    range(ApiKey::ListOffsets, 1, 10),
    range(ApiKey::Metadata, 0, 13),
    // v5 (KIP-1242) only adds request fields weir does not need: it is read and answered
    // in the v4 layout, which v5 keeps (franz-go asks v5 and reads no features from a
    // version-error answer).
    range(ApiKey::ApiVersions, 0, API_VERSIONS_MAX_VERSION),
    range(ApiKey::CreateTopics, 2, 7),
    range(ApiKey::DeleteTopics, 1, 6),
    range(ApiKey::CreatePartitions, 0, 3),
    range(ApiKey::DescribeConfigs, 1, 4),
    range(ApiKey::AlterConfigs, 0, 2),
    range(ApiKey::IncrementalAlterConfigs, 0, 1),
    // v1 (KIP-1142) lists topics, the broker and groups with configs of their own.
    range(ApiKey::ListConfigResources, 0, 1),
    range(ApiKey::DescribeCluster, 0, 2),
    range(ApiKey::DeleteRecords, 0, 2),
    range(ApiKey::InitProducerId, 0, 5),
    range(ApiKey::DescribeLogDirs, 1, 4),
    // Client telemetry (KIP-714): subscriptions come from client-metrics config resources,
    // pushed metrics are kept in the broker's bounded telemetry store.
    range(ApiKey::GetTelemetrySubscriptions, 0, 0),
    range(ApiKey::PushTelemetry, 0, 0),
    // A consumer validates its position with it once it knows a leader epoch.
    range(ApiKey::OffsetForLeaderEpoch, 2, 4),
    // KIP-966: `kafka-topics --describe` and the Java admin's describeTopics in 4.x.
    range(ApiKey::DescribeTopicPartitions, 0, 0),
    // Elections and reassignments, answered as one node answers: nothing is ever needed.
    range(ApiKey::ElectLeaders, 0, 2),
    range(ApiKey::AlterPartitionReassignments, 0, 1),
    range(ApiKey::ListPartitionReassignments, 0, 0),
];

/// APIs served by the group coordinator.
pub const GROUP_APIS: &[ApiRange] = &[
    range(ApiKey::FindCoordinator, 0, 6),
    range(ApiKey::JoinGroup, 0, 9),
    range(ApiKey::SyncGroup, 0, 5),
    range(ApiKey::Heartbeat, 0, 4),
    range(ApiKey::LeaveGroup, 0, 5),
    range(ApiKey::OffsetCommit, 2, 9),
    range(ApiKey::OffsetFetch, 1, 9),
    range(ApiKey::OffsetDelete, 0, 0),
    range(ApiKey::ListGroups, 0, 5),
    range(ApiKey::DescribeGroups, 0, 6),
    range(ApiKey::DeleteGroups, 0, 2),
    // The consumer group protocol (KIP-848); v1 has the client choose its member id.
    range(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    range(ApiKey::ConsumerGroupDescribe, 0, 1),
];

/// APIs served by the transaction coordinator and the broker's transaction support.
pub const TXN_APIS: &[ApiRange] = &[
    range(ApiKey::AddPartitionsToTxn, 0, 5),
    range(ApiKey::AddOffsetsToTxn, 0, 4),
    range(ApiKey::EndTxn, 0, 5),
    range(ApiKey::TxnOffsetCommit, 0, 5),
    range(ApiKey::DescribeTransactions, 0, 0),
    range(ApiKey::ListTransactions, 0, 2),
    range(ApiKey::DescribeProducers, 0, 0),
    range(ApiKey::WriteTxnMarkers, 1, 1),
];

/// Authentication and its credentials. Advertised on every listener, as Kafka does: a
/// client asks ApiVersions before it knows whether it must authenticate.
pub const SECURITY_APIS: &[ApiRange] = &[
    // v0 is followed by raw SASL tokens rather than SaslAuthenticate requests.
    range(ApiKey::SaslHandshake, 0, 1),
    range(ApiKey::SaslAuthenticate, 0, 2),
    range(ApiKey::DescribeUserScramCredentials, 0, 0),
    range(ApiKey::AlterUserScramCredentials, 0, 0),
];

/// The ACL APIs (`kafka-acls`). Kafka 4.x removed version 0 of each (KIP-896), whose only
/// difference was the lack of a pattern type.
pub const ACL_APIS: &[ApiRange] = &[
    range(ApiKey::DescribeAcls, 1, 3),
    range(ApiKey::CreateAcls, 1, 3),
    range(ApiKey::DeleteAcls, 1, 3),
];

/// Client quotas (`kafka-configs --entity-type users|clients|ips`).
pub const QUOTA_APIS: &[ApiRange] = &[
    range(ApiKey::DescribeClientQuotas, 0, 1),
    range(ApiKey::AlterClientQuotas, 0, 1),
];

/// The version range weir supports for `api_key`, if it supports the API at all.
pub fn supported_range(api_key: ApiKey, with_groups: bool) -> Option<ApiRange> {
    let groups: &[ApiRange] = if with_groups { GROUP_APIS } else { &[] };
    CORE_APIS
        .iter()
        .chain(groups.iter())
        .chain(TXN_APIS.iter())
        .chain(SECURITY_APIS.iter())
        .chain(ACL_APIS.iter())
        .chain(QUOTA_APIS.iter())
        .copied()
        .find(|r| r.api_key == api_key)
}

/// Every API weir advertises, core first.
pub fn advertised(with_groups: bool) -> Vec<ApiRange> {
    let groups: &[ApiRange] = if with_groups { GROUP_APIS } else { &[] };
    CORE_APIS
        .iter()
        .chain(groups.iter())
        .chain(TXN_APIS.iter())
        .chain(SECURITY_APIS.iter())
        .chain(ACL_APIS.iter())
        .chain(QUOTA_APIS.iter())
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;

    fn crate_range(key: ApiKey) -> (i16, i16) {
        let v = match key {
            ApiKey::Produce => ProduceRequest::VERSIONS,
            ApiKey::Fetch => FetchRequest::VERSIONS,
            ApiKey::ListOffsets => ListOffsetsRequest::VERSIONS,
            ApiKey::Metadata => MetadataRequest::VERSIONS,
            ApiKey::ApiVersions => ApiVersionsRequest::VERSIONS,
            ApiKey::CreateTopics => CreateTopicsRequest::VERSIONS,
            ApiKey::DeleteTopics => DeleteTopicsRequest::VERSIONS,
            ApiKey::CreatePartitions => CreatePartitionsRequest::VERSIONS,
            ApiKey::DescribeConfigs => DescribeConfigsRequest::VERSIONS,
            ApiKey::AlterConfigs => AlterConfigsRequest::VERSIONS,
            ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::VERSIONS,
            ApiKey::ListConfigResources => ListConfigResourcesRequest::VERSIONS,
            ApiKey::DescribeCluster => DescribeClusterRequest::VERSIONS,
            ApiKey::DeleteRecords => DeleteRecordsRequest::VERSIONS,
            ApiKey::InitProducerId => InitProducerIdRequest::VERSIONS,
            ApiKey::DescribeLogDirs => DescribeLogDirsRequest::VERSIONS,
            ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::VERSIONS,
            ApiKey::DescribeTopicPartitions => DescribeTopicPartitionsRequest::VERSIONS,
            ApiKey::ElectLeaders => ElectLeadersRequest::VERSIONS,
            ApiKey::AlterPartitionReassignments => AlterPartitionReassignmentsRequest::VERSIONS,
            ApiKey::ListPartitionReassignments => ListPartitionReassignmentsRequest::VERSIONS,
            ApiKey::FindCoordinator => FindCoordinatorRequest::VERSIONS,
            ApiKey::JoinGroup => JoinGroupRequest::VERSIONS,
            ApiKey::SyncGroup => SyncGroupRequest::VERSIONS,
            ApiKey::Heartbeat => HeartbeatRequest::VERSIONS,
            ApiKey::LeaveGroup => LeaveGroupRequest::VERSIONS,
            ApiKey::OffsetCommit => OffsetCommitRequest::VERSIONS,
            ApiKey::OffsetFetch => OffsetFetchRequest::VERSIONS,
            ApiKey::OffsetDelete => OffsetDeleteRequest::VERSIONS,
            ApiKey::ListGroups => ListGroupsRequest::VERSIONS,
            ApiKey::DescribeGroups => DescribeGroupsRequest::VERSIONS,
            ApiKey::DeleteGroups => DeleteGroupsRequest::VERSIONS,
            ApiKey::AddPartitionsToTxn => AddPartitionsToTxnRequest::VERSIONS,
            ApiKey::AddOffsetsToTxn => AddOffsetsToTxnRequest::VERSIONS,
            ApiKey::EndTxn => EndTxnRequest::VERSIONS,
            ApiKey::TxnOffsetCommit => TxnOffsetCommitRequest::VERSIONS,
            ApiKey::DescribeTransactions => DescribeTransactionsRequest::VERSIONS,
            ApiKey::ListTransactions => ListTransactionsRequest::VERSIONS,
            ApiKey::DescribeProducers => DescribeProducersRequest::VERSIONS,
            ApiKey::WriteTxnMarkers => WriteTxnMarkersRequest::VERSIONS,
            ApiKey::ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest::VERSIONS,
            ApiKey::ConsumerGroupDescribe => ConsumerGroupDescribeRequest::VERSIONS,
            ApiKey::GetTelemetrySubscriptions => GetTelemetrySubscriptionsRequest::VERSIONS,
            ApiKey::PushTelemetry => PushTelemetryRequest::VERSIONS,
            ApiKey::SaslHandshake => SaslHandshakeRequest::VERSIONS,
            ApiKey::SaslAuthenticate => SaslAuthenticateRequest::VERSIONS,
            ApiKey::DescribeUserScramCredentials => DescribeUserScramCredentialsRequest::VERSIONS,
            ApiKey::AlterUserScramCredentials => AlterUserScramCredentialsRequest::VERSIONS,
            ApiKey::DescribeAcls => DescribeAclsRequest::VERSIONS,
            ApiKey::CreateAcls => CreateAclsRequest::VERSIONS,
            ApiKey::DeleteAcls => DeleteAclsRequest::VERSIONS,
            ApiKey::DescribeClientQuotas => DescribeClientQuotasRequest::VERSIONS,
            ApiKey::AlterClientQuotas => AlterClientQuotasRequest::VERSIONS,
            other => panic!("no codec range listed for {other:?}"),
        };
        (v.min, v.max)
    }

    #[test]
    fn advertised_ranges_are_within_what_the_codec_supports() {
        // Goal: never advertise a version the message codec cannot decode or encode.
        for r in advertised(true) {
            let (min, mut max) = crate_range(r.api_key);
            if r.api_key == ApiKey::ApiVersions {
                max = API_VERSIONS_MAX_VERSION; // read and answered in the v4 layout
            }
            assert!(
                r.min_version >= min && r.max_version <= max,
                "{r:?} outside {min}..={max}"
            );
            assert!(r.min_version <= r.max_version);
        }
    }
}
