//! Reading a request: a cheap check of the fixed header fields, then a full decode.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

use crate::api::supported_range;
use crate::WireError;

/// A decoded request header plus its typed body.
#[derive(Debug)]
pub struct DecodedRequest {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub body: Request,
}

/// Every request body weir decodes. One variant per API in [`crate::api`].
#[derive(Debug)]
pub enum Request {
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    ApiVersions(ApiVersionsRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    CreatePartitions(CreatePartitionsRequest),
    DescribeConfigs(DescribeConfigsRequest),
    AlterConfigs(AlterConfigsRequest),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    ListConfigResources(ListConfigResourcesRequest),
    DescribeCluster(DescribeClusterRequest),
    DeleteRecords(DeleteRecordsRequest),
    InitProducerId(InitProducerIdRequest),
    DescribeLogDirs(DescribeLogDirsRequest),
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    DescribeTopicPartitions(DescribeTopicPartitionsRequest),
    ElectLeaders(ElectLeadersRequest),
    AlterPartitionReassignments(AlterPartitionReassignmentsRequest),
    ListPartitionReassignments(ListPartitionReassignmentsRequest),
    FindCoordinator(FindCoordinatorRequest),
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    OffsetDelete(OffsetDeleteRequest),
    ListGroups(ListGroupsRequest),
    DescribeGroups(DescribeGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
    AddPartitionsToTxn(AddPartitionsToTxnRequest),
    AddOffsetsToTxn(AddOffsetsToTxnRequest),
    EndTxn(EndTxnRequest),
    TxnOffsetCommit(TxnOffsetCommitRequest),
    DescribeTransactions(DescribeTransactionsRequest),
    ListTransactions(ListTransactionsRequest),
    DescribeProducers(DescribeProducersRequest),
    WriteTxnMarkers(WriteTxnMarkersRequest),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest),
    ConsumerGroupDescribe(ConsumerGroupDescribeRequest),
    GetTelemetrySubscriptions(GetTelemetrySubscriptionsRequest),
    PushTelemetry(PushTelemetryRequest),
    SaslHandshake(SaslHandshakeRequest),
    SaslAuthenticate(SaslAuthenticateRequest),
    DescribeUserScramCredentials(DescribeUserScramCredentialsRequest),
    AlterUserScramCredentials(AlterUserScramCredentialsRequest),
    DescribeAcls(DescribeAclsRequest),
    CreateAcls(CreateAclsRequest),
    DeleteAcls(DeleteAclsRequest),
    DescribeClientQuotas(DescribeClientQuotasRequest),
    AlterClientQuotas(AlterClientQuotasRequest),
}

/// The fixed start of every request header: API key, API version, correlation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Reads the first 8 bytes of a request without consuming the frame.
pub fn peek_prefix(frame: &[u8]) -> Result<HeaderPrefix, WireError> {
    if frame.len() < 8 {
        return Err(WireError::Truncated);
    }
    let mut b = &frame[..8];
    Ok(HeaderPrefix {
        api_key: b.get_i16(),
        api_version: b.get_i16(),
        correlation_id: b.get_i32(),
    })
}

/// Decodes one whole request frame (without its size prefix).
///
/// Steps:
/// 1. check the API key and version against what weir advertises (cheap, before decoding);
/// 2. decode the header at the header version that API version implies;
/// 3. decode the body; a missing byte is a malformed request, extra ones are ignored.
pub fn decode_request(mut frame: Bytes, with_groups: bool) -> Result<DecodedRequest, WireError> {
    // 1. Cheap checks on the fixed prefix.
    let prefix = peek_prefix(&frame)?;
    let api_key = ApiKey::try_from(prefix.api_key).map_err(|_| WireError::UnknownApiKey {
        api_key: prefix.api_key,
    })?;
    let supported = supported_range(api_key, with_groups).ok_or(WireError::UnknownApiKey {
        api_key: prefix.api_key,
    })?;
    if prefix.api_version < supported.min_version || prefix.api_version > supported.max_version {
        return Err(WireError::UnsupportedVersion {
            api_key: prefix.api_key,
            api_version: prefix.api_version,
            correlation_id: prefix.correlation_id,
        });
    }
    let malformed = |reason: String| WireError::Malformed {
        api_key: prefix.api_key,
        api_version: prefix.api_version,
        reason,
    };

    // 2. Header.
    let header_version = api_key.request_header_version(prefix.api_version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| malformed(format!("header: {e}")))?;
    let client_id = header.client_id.as_ref().map(|s| s.to_string());

    // 3. Body.
    let v = prefix.api_version;
    let body = decode_body(api_key, &mut frame, v).map_err(|e| malformed(format!("body: {e}")))?;
    // Bytes after the body are ignored, as Kafka's parser ignores them: librdkafka 2.13,
    // for one, sends a few extra bytes after some Metadata v13 requests.
    Ok(DecodedRequest {
        api_key,
        api_version: v,
        correlation_id: prefix.correlation_id,
        client_id,
        body,
    })
}

fn decode_body(api_key: ApiKey, buf: &mut Bytes, v: i16) -> anyhow::Result<Request> {
    Ok(match api_key {
        ApiKey::Produce => Request::Produce(Decodable::decode(buf, v)?),
        ApiKey::Fetch => Request::Fetch(Decodable::decode(buf, v)?),
        ApiKey::ListOffsets => Request::ListOffsets(Decodable::decode(buf, v)?),
        ApiKey::Metadata => Request::Metadata(Decodable::decode(buf, v)?),
        ApiKey::ApiVersions if v > crate::api::API_VERSIONS_CODEC_VERSION => {
            Request::ApiVersions(decode_api_versions_v5(buf)?)
        }
        ApiKey::ApiVersions => Request::ApiVersions(Decodable::decode(buf, v)?),
        ApiKey::CreateTopics => Request::CreateTopics(Decodable::decode(buf, v)?),
        ApiKey::DeleteTopics => Request::DeleteTopics(Decodable::decode(buf, v)?),
        ApiKey::CreatePartitions => Request::CreatePartitions(Decodable::decode(buf, v)?),
        ApiKey::DescribeConfigs => Request::DescribeConfigs(Decodable::decode(buf, v)?),
        ApiKey::AlterConfigs => Request::AlterConfigs(Decodable::decode(buf, v)?),
        ApiKey::IncrementalAlterConfigs => {
            Request::IncrementalAlterConfigs(Decodable::decode(buf, v)?)
        }
        ApiKey::ListConfigResources => Request::ListConfigResources(Decodable::decode(buf, v)?),
        ApiKey::DescribeCluster => Request::DescribeCluster(Decodable::decode(buf, v)?),
        ApiKey::DeleteRecords => Request::DeleteRecords(Decodable::decode(buf, v)?),
        ApiKey::InitProducerId => Request::InitProducerId(Decodable::decode(buf, v)?),
        ApiKey::DescribeLogDirs => Request::DescribeLogDirs(Decodable::decode(buf, v)?),
        ApiKey::OffsetForLeaderEpoch => Request::OffsetForLeaderEpoch(Decodable::decode(buf, v)?),
        ApiKey::DescribeTopicPartitions => {
            Request::DescribeTopicPartitions(Decodable::decode(buf, v)?)
        }
        ApiKey::ElectLeaders => Request::ElectLeaders(Decodable::decode(buf, v)?),
        ApiKey::AlterPartitionReassignments => {
            Request::AlterPartitionReassignments(Decodable::decode(buf, v)?)
        }
        ApiKey::ListPartitionReassignments => {
            Request::ListPartitionReassignments(Decodable::decode(buf, v)?)
        }
        ApiKey::FindCoordinator => Request::FindCoordinator(Decodable::decode(buf, v)?),
        ApiKey::JoinGroup => Request::JoinGroup(Decodable::decode(buf, v)?),
        ApiKey::SyncGroup => Request::SyncGroup(Decodable::decode(buf, v)?),
        ApiKey::Heartbeat => Request::Heartbeat(Decodable::decode(buf, v)?),
        ApiKey::LeaveGroup => Request::LeaveGroup(Decodable::decode(buf, v)?),
        ApiKey::OffsetCommit => Request::OffsetCommit(Decodable::decode(buf, v)?),
        ApiKey::OffsetFetch => Request::OffsetFetch(Decodable::decode(buf, v)?),
        ApiKey::OffsetDelete => Request::OffsetDelete(Decodable::decode(buf, v)?),
        ApiKey::ListGroups => Request::ListGroups(Decodable::decode(buf, v)?),
        ApiKey::DescribeGroups => Request::DescribeGroups(Decodable::decode(buf, v)?),
        ApiKey::DeleteGroups => Request::DeleteGroups(Decodable::decode(buf, v)?),
        ApiKey::AddPartitionsToTxn => Request::AddPartitionsToTxn(Decodable::decode(buf, v)?),
        ApiKey::AddOffsetsToTxn => Request::AddOffsetsToTxn(Decodable::decode(buf, v)?),
        ApiKey::EndTxn => Request::EndTxn(Decodable::decode(buf, v)?),
        ApiKey::TxnOffsetCommit => Request::TxnOffsetCommit(Decodable::decode(buf, v)?),
        ApiKey::DescribeTransactions => Request::DescribeTransactions(Decodable::decode(buf, v)?),
        ApiKey::ListTransactions => Request::ListTransactions(Decodable::decode(buf, v)?),
        ApiKey::DescribeProducers => Request::DescribeProducers(Decodable::decode(buf, v)?),
        ApiKey::WriteTxnMarkers => Request::WriteTxnMarkers(Decodable::decode(buf, v)?),
        ApiKey::ConsumerGroupHeartbeat => {
            Request::ConsumerGroupHeartbeat(Decodable::decode(buf, v)?)
        }
        ApiKey::ConsumerGroupDescribe => Request::ConsumerGroupDescribe(Decodable::decode(buf, v)?),
        ApiKey::GetTelemetrySubscriptions => {
            Request::GetTelemetrySubscriptions(Decodable::decode(buf, v)?)
        }
        ApiKey::PushTelemetry => Request::PushTelemetry(Decodable::decode(buf, v)?),
        ApiKey::SaslHandshake => Request::SaslHandshake(Decodable::decode(buf, v)?),
        ApiKey::SaslAuthenticate => Request::SaslAuthenticate(Decodable::decode(buf, v)?),
        ApiKey::DescribeUserScramCredentials => {
            Request::DescribeUserScramCredentials(Decodable::decode(buf, v)?)
        }
        ApiKey::AlterUserScramCredentials => {
            Request::AlterUserScramCredentials(Decodable::decode(buf, v)?)
        }
        ApiKey::DescribeAcls => Request::DescribeAcls(Decodable::decode(buf, v)?),
        ApiKey::CreateAcls => Request::CreateAcls(Decodable::decode(buf, v)?),
        ApiKey::DeleteAcls => Request::DeleteAcls(Decodable::decode(buf, v)?),
        ApiKey::DescribeClientQuotas => Request::DescribeClientQuotas(Decodable::decode(buf, v)?),
        ApiKey::AlterClientQuotas => Request::AlterClientQuotas(Decodable::decode(buf, v)?),
        other => anyhow::bail!("no decoder for {other:?}"),
    })
}

/// ApiVersions v5 (KIP-1242): the v4 fields, then the cluster id (nullable compact string)
/// and node id the client believes it reached, then tagged fields. weir answers whatever
/// those say, so it keeps only the v4 fields.
fn decode_api_versions_v5(buf: &mut Bytes) -> anyhow::Result<ApiVersionsRequest> {
    fn uvarint(buf: &mut Bytes) -> anyhow::Result<u64> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            anyhow::ensure!(buf.has_remaining(), "the request ends inside a varint");
            let byte = buf.get_u8();
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        anyhow::bail!("a varint longer than 5 bytes")
    }
    /// A compact (nullable) string: length + 1 as a varint, 0 for null.
    fn compact_string(buf: &mut Bytes) -> anyhow::Result<Option<Bytes>> {
        let n = uvarint(buf)? as usize;
        if n == 0 {
            return Ok(None);
        }
        anyhow::ensure!(buf.remaining() >= n - 1, "a string runs past the request");
        Ok(Some(buf.split_to(n - 1)))
    }
    let text = |b: Option<Bytes>| -> anyhow::Result<kafka_protocol::protocol::StrBytes> {
        Ok(kafka_protocol::protocol::StrBytes::from_utf8(
            b.unwrap_or_default(),
        )?)
    };
    let name = text(compact_string(buf)?)?;
    let version = text(compact_string(buf)?)?;
    let _cluster_id = compact_string(buf)?;
    anyhow::ensure!(buf.remaining() >= 4, "the request ends inside the node id");
    let _node_id = buf.get_i32();
    for _ in 0..uvarint(buf)? {
        let _tag = uvarint(buf)?;
        let size = uvarint(buf)? as usize;
        anyhow::ensure!(
            buf.remaining() >= size,
            "a tagged field runs past the request"
        );
        buf.advance(size);
    }
    Ok(ApiVersionsRequest::default()
        .with_client_software_name(name)
        .with_client_software_version(version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn frame_of<T: Encodable>(key: ApiKey, version: i16, body: &T) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("t")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn decodes_every_metadata_version() {
        // Goal: a request encoded at any advertised version decodes back at that version.
        for v in 0..=13 {
            let f = frame_of(ApiKey::Metadata, v, &MetadataRequest::default());
            let d = decode_request(f, false).unwrap();
            assert_eq!(d.api_version, v);
            assert_eq!(d.correlation_id, 7);
            assert!(matches!(d.body, Request::Metadata(_)));
        }
    }

    #[test]
    fn decodes_every_version_of_the_single_node_admin_apis() {
        // Goal: OffsetForLeaderEpoch, DescribeTopicPartitions, ElectLeaders and the two
        // reassignment APIs decode at every version weir advertises for them.
        fn check<T: Encodable>(key: ApiKey, body: &T, is: fn(&Request) -> bool) {
            let r = crate::api::supported_range(key, false).expect("advertised");
            for v in r.min_version..=r.max_version {
                let d = decode_request(frame_of(key, v, body), false).unwrap();
                assert_eq!(d.api_version, v);
                assert!(is(&d.body), "{key:?} v{v}");
            }
        }
        check(
            ApiKey::OffsetForLeaderEpoch,
            &OffsetForLeaderEpochRequest::default(),
            |b| matches!(b, Request::OffsetForLeaderEpoch(_)),
        );
        check(
            ApiKey::DescribeTopicPartitions,
            &DescribeTopicPartitionsRequest::default(),
            |b| matches!(b, Request::DescribeTopicPartitions(_)),
        );
        check(ApiKey::ElectLeaders, &ElectLeadersRequest::default(), |b| {
            matches!(b, Request::ElectLeaders(_))
        });
        check(
            ApiKey::AlterPartitionReassignments,
            &AlterPartitionReassignmentsRequest::default(),
            |b| matches!(b, Request::AlterPartitionReassignments(_)),
        );
        check(
            ApiKey::ListPartitionReassignments,
            &ListPartitionReassignmentsRequest::default(),
            |b| matches!(b, Request::ListPartitionReassignments(_)),
        );
    }

    #[test]
    fn unknown_key_and_version_are_refused() {
        // Goal: unknown keys and unsupported versions never reach a handler.
        let mut f = BytesMut::from(&[0x7f, 0x00, 0, 0, 0, 0, 0, 1][..]);
        assert!(matches!(
            decode_request(f.split().freeze(), false),
            Err(WireError::UnknownApiKey { .. })
        ));
        let f = frame_of(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        let mut raw = BytesMut::from(&f[..]);
        raw[2] = 0;
        raw[3] = 99;
        assert!(matches!(
            decode_request(raw.freeze(), false),
            Err(WireError::UnsupportedVersion {
                api_version: 99,
                correlation_id: 7,
                ..
            })
        ));
        assert_eq!(
            decode_request(Bytes::from_static(&[0, 1]), false).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn truncated_body_is_malformed_not_a_panic() {
        // Goal: every prefix of a valid request is either refused cleanly or decodes.
        let f = frame_of(ApiKey::Metadata, 12, &MetadataRequest::default());
        for cut in 0..f.len() {
            let _ = decode_request(f.slice(..cut), false);
        }
    }
}
