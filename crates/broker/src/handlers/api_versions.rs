//! ApiVersions: what weir speaks, and the v0 fallback for versions it does not know.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use weir_wire::ResponseError;

use super::{RequestMeta, GROUPS_ENABLED};
use crate::connection::Reply;

fn api_list() -> Vec<ApiVersion> {
    weir_wire::api::advertised(GROUPS_ENABLED)
        .into_iter()
        .map(|r| {
            ApiVersion::default()
                .with_api_key(r.api_key as i16)
                .with_min_version(r.min_version)
                .with_max_version(r.max_version)
        })
        .collect()
}

/// The `transaction.version` weir finalizes: 2 lets Kafka 4.x clients run transactions V2
/// (KIP-890 part 2: the broker adds partitions on produce, the epoch bumps at every end).
pub const TRANSACTION_VERSION_FINALIZED: i16 = 2;
/// The `group.version` weir finalizes: 1 enables the consumer group protocol (KIP-848).
pub const GROUP_VERSION_FINALIZED: i16 = 1;
/// `metadata.version` as a feature level: 7 is 3.3-IV3, the oldest Kafka 4.x accepts; 33 is
/// 4.4-IV2, what a fresh Apache Kafka 4.4 finalizes. weir keeps no metadata log, so the level
/// only tells tools which Kafka release's behaviour to expect; weir answers as 4.4 does.
pub const METADATA_VERSION_MIN: i16 = 7;
pub const METADATA_VERSION_FINALIZED: i16 = 33;
/// The epoch of the finalized features; they never change while weir runs.
const FINALIZED_FEATURES_EPOCH: i64 = 1;

/// One feature: its name, the levels weir supports, and the level finalized, if any.
struct Feature {
    name: &'static str,
    min_version: i16,
    max_version: i16,
    finalized: Option<i16>,
}

const fn feature(
    name: &'static str,
    min_version: i16,
    max_version: i16,
    finalized: Option<i16>,
) -> Feature {
    Feature {
        name,
        min_version,
        max_version,
        finalized,
    }
}

/// The features a single-node Apache Kafka 4.4 reports, at its levels where weir has what
/// they enable. Share groups (KIP-932) and streams groups (KIP-1071) are not in weir, so
/// `share.version` and `streams.version` are supported only at level 0 and not finalized.
/// `eligible.leader.replicas.version` 1 is true of one node: its eligible leader replicas
/// are always empty. `kraft.version` 1 is what a single KRaft node finalizes.
const FEATURES: &[Feature] = &[
    feature("eligible.leader.replicas.version", 0, 1, Some(1)),
    feature(
        "group.version",
        0,
        GROUP_VERSION_FINALIZED,
        Some(GROUP_VERSION_FINALIZED),
    ),
    feature("kraft.version", 0, 1, Some(1)),
    feature(
        "metadata.version",
        METADATA_VERSION_MIN,
        METADATA_VERSION_FINALIZED,
        Some(METADATA_VERSION_FINALIZED),
    ),
    feature("share.version", 0, 0, None),
    feature("streams.version", 0, 0, None),
    feature(
        "transaction.version",
        0,
        TRANSACTION_VERSION_FINALIZED,
        Some(TRANSACTION_VERSION_FINALIZED),
    ),
];

pub fn handle(meta: &RequestMeta, _request: ApiVersionsRequest) -> Reply {
    let mut body = ApiVersionsResponse::default().with_api_keys(api_list());
    if meta.api_version >= 3 {
        body.supported_features = FEATURES
            .iter()
            .map(|f| {
                SupportedFeatureKey::default()
                    .with_name(StrBytes::from_static_str(f.name))
                    .with_min_version(f.min_version)
                    .with_max_version(f.max_version)
            })
            .collect();
        body.finalized_features_epoch = FINALIZED_FEATURES_EPOCH;
        body.finalized_features = FEATURES
            .iter()
            .filter_map(|f| {
                f.finalized.map(|level| {
                    FinalizedFeatureKey::default()
                        .with_name(StrBytes::from_static_str(f.name))
                        .with_min_version_level(level)
                        .with_max_version_level(level)
                })
            })
            .collect();
    }
    // v5 answers in the v4 layout (see weir_wire::api).
    let meta = RequestMeta {
        api_version: meta
            .api_version
            .min(weir_wire::api::API_VERSIONS_CODEC_VERSION),
        ..meta.clone()
    };
    meta.reply(&body)
}

/// The answer to an ApiVersions request at a version weir does not know: a v0 body with
/// UNSUPPORTED_VERSION and the full list, as Kafka sends, so the client can pick a version.
pub fn unsupported_version_reply(correlation_id: i32) -> Reply {
    use kafka_protocol::protocol::Encodable;
    let body = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_list());
    let Ok(size) = body.compute_size(0) else {
        return Reply::Close(None);
    };
    let mut buf = BytesMut::with_capacity(8 + size);
    buf.put_i32((4 + size) as i32);
    buf.put_i32(correlation_id);
    if body.encode(&mut buf, 0).is_err() {
        return Reply::Close(None);
    }
    Reply::Now(vec![Bytes::from(buf)])
}
