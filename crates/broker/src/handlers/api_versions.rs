//! ApiVersions: what weir speaks, and the v0 fallback for versions it does not know.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
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

pub fn handle(meta: &RequestMeta, _request: ApiVersionsRequest) -> Reply {
    let body = ApiVersionsResponse::default().with_api_keys(api_list());
    meta.reply(&body)
}

/// The answer to an ApiVersions request at a version weir does not know: a v0 body with
/// UNSUPPORTED_VERSION and the full list, as Kafka sends, so the client can pick a version.
pub fn unsupported_version_reply(correlation_id: i32) -> Reply {
    use kafka_protocol::protocol::Encodable;
    let body = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_list());
    let Ok(size) = body.compute_size(0) else { return Reply::Close(None) };
    let mut buf = BytesMut::with_capacity(8 + size);
    buf.put_i32((4 + size) as i32);
    buf.put_i32(correlation_id);
    if body.encode(&mut buf, 0).is_err() {
        return Reply::Close(None);
    }
    Reply::Now(vec![Bytes::from(buf)])
}
