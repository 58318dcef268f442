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
/// The epoch of the finalized features; they never change while weir runs.
const FINALIZED_FEATURES_EPOCH: i64 = 1;

pub fn handle(meta: &RequestMeta, _request: ApiVersionsRequest) -> Reply {
    let mut body = ApiVersionsResponse::default().with_api_keys(api_list());
    if meta.api_version >= 3 {
        // (name, finalized level): transactions V2, and `group.version` 1, which lets
        // clients use the consumer group protocol (KIP-848), as a fresh Kafka 4.x has.
        let features = [
            ("transaction.version", TRANSACTION_VERSION_FINALIZED),
            ("group.version", GROUP_VERSION_FINALIZED),
        ];
        body.supported_features = features
            .iter()
            .map(|(n, level)| {
                SupportedFeatureKey::default()
                    .with_name(StrBytes::from_static_str(n))
                    .with_min_version(0)
                    .with_max_version(*level)
            })
            .collect();
        body.finalized_features_epoch = FINALIZED_FEATURES_EPOCH;
        body.finalized_features = features
            .iter()
            .map(|(n, level)| {
                FinalizedFeatureKey::default()
                    .with_name(StrBytes::from_static_str(n))
                    .with_min_version_level(*level)
                    .with_max_version_level(*level)
            })
            .collect();
    }
    // v5 answers in the v4 layout (see weir_wire::api).
    let meta = RequestMeta {
        api_version: meta
            .api_version
            .min(weir_wire::api::API_VERSIONS_CODEC_VERSION),
        ..*meta
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
