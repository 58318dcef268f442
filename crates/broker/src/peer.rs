//! Requests one broker of a cluster sends another: a produce's transaction check, which only
//! the transaction coordinator can answer and which runs on the controller
//! (`coordinator_role`), as a partition leader asks the coordinator in Kafka
//! (AddPartitionsToTxn v4+, one transaction, `verify_only` for older clients).
//!
//! Brokers reach each other on a PLAINTEXT listener, at the address the cluster's
//! membership gives for it. One connection per peer, one request at a time on it (a
//! transaction is checked once per partition, so this is not a hot path); a connection that
//! fails or times out is dropped and dialled again on the next request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, ApiVersionsRequest,
    ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::security::listener::SecurityProtocol;
use crate::state::BrokerState;

/// How long one request to a peer (connecting included) may take. A produce waits on it,
/// so it is far below the client's request timeout; a peer that does not answer in time
/// costs the client a retry.
pub const PEER_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer accepted from a peer.
const PEER_RESPONSE_BYTES_MAX: usize = 16 << 20;
/// The newest AddPartitionsToTxn version this broker sends.
const ADD_PARTITIONS_VERSION_MAX: i16 = 5;
/// The first version with broker-to-broker batches (`transactions`, `verify_only`).
const ADD_PARTITIONS_VERSION_MIN: i16 = 4;

/// Why a peer did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error("no PLAINTEXT listener to reach the other brokers on")]
    NoPlaintextListener,
    #[error("broker {0} is not live, or has no PLAINTEXT listener")]
    Unreachable(i32),
    #[error("broker {node_id} at {address}: {reason}")]
    Failed {
        node_id: i32,
        address: String,
        reason: String,
    },
}

/// The connections to the other brokers, by address.
#[derive(Default)]
pub struct Peers {
    conns: parking_lot::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<PeerConn>>>>>,
}

impl Peers {
    /// Sends one AddPartitionsToTxn (v4+) to broker `node_id` and returns its answer.
    pub async fn add_partitions_to_txn(
        &self,
        state: &BrokerState,
        node_id: i32,
        request: &AddPartitionsToTxnRequest,
    ) -> Result<AddPartitionsToTxnResponse, PeerError> {
        let address = peer_address(state, node_id)?;
        let slot = Arc::clone(self.conns.lock().entry(address.clone()).or_default());
        let mut conn = slot.lock().await;
        let failed = |reason: String| PeerError::Failed {
            node_id,
            address: address.clone(),
            reason,
        };
        let answer = tokio::time::timeout(PEER_REQUEST_TIMEOUT, async {
            if conn.is_none() {
                *conn = Some(PeerConn::connect(&address, state.config.node_id).await?);
            }
            let c = conn.as_mut().expect("connected above");
            let version = c
                .add_partitions_version
                .ok_or_else(|| "it does not take AddPartitionsToTxn v4 or later".to_string())?;
            c.call::<AddPartitionsToTxnRequest>(request, version).await
        })
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer within {}s",
                PEER_REQUEST_TIMEOUT.as_secs()
            ))
        });
        if answer.is_err() {
            *conn = None;
        }
        answer.map_err(failed)
    }
}

/// Where broker `node_id` takes PLAINTEXT connections, as the membership lists it.
fn peer_address(state: &BrokerState, node_id: i32) -> Result<String, PeerError> {
    let listener = state
        .config
        .listeners
        .iter()
        .find(|l| l.protocol == SecurityProtocol::Plaintext)
        .ok_or(PeerError::NoPlaintextListener)?;
    state
        .brokers(listener)
        .into_iter()
        .find(|b| b.node_id == node_id)
        .map(|b| b.authority())
        .ok_or(PeerError::Unreachable(node_id))
}

struct PeerConn {
    stream: TcpStream,
    client_id: StrBytes,
    next_correlation_id: i32,
    /// The AddPartitionsToTxn version both sides speak, if it is v4 or later.
    add_partitions_version: Option<i16>,
}

impl PeerConn {
    async fn connect(address: &str, this_node: i32) -> Result<PeerConn, String> {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut c = PeerConn {
            stream,
            client_id: StrBytes::from_string(format!("weir-broker-{this_node}")),
            next_correlation_id: 0,
            add_partitions_version: None,
        };
        let versions: ApiVersionsResponse = c
            .call::<ApiVersionsRequest>(&ApiVersionsRequest::default(), 0)
            .await?;
        if versions.error_code != 0 {
            return Err(format!(
                "ApiVersions refused with error {}",
                versions.error_code
            ));
        }
        c.add_partitions_version = versions
            .api_keys
            .iter()
            .find(|k| k.api_key == AddPartitionsToTxnRequest::KEY)
            .map(|k| k.max_version.min(ADD_PARTITIONS_VERSION_MAX))
            .filter(|v| *v >= ADD_PARTITIONS_VERSION_MIN);
        Ok(c)
    }

    async fn call<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response, String>
    where
        R::Response: Decodable + HeaderVersion,
    {
        let key = ApiKey::try_from(R::KEY).map_err(|_| format!("unknown API key {}", R::KEY))?;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let correlation_id = self.next_correlation_id;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let header_version = key.request_header_version(version);
        let encode = || -> anyhow::Result<BytesMut> {
            let size = header.compute_size(header_version)? + request.compute_size(version)?;
            let mut buf = BytesMut::with_capacity(size + 4);
            buf.put_i32(i32::try_from(size)?);
            header.encode(&mut buf, header_version)?;
            request.encode(&mut buf, version)?;
            Ok(buf)
        };
        let buf = encode().map_err(|e| format!("cannot encode {key:?}: {e}"))?;
        self.stream
            .write_all(&buf)
            .await
            .map_err(|e| format!("cannot send: {e}"))?;
        let size = self
            .stream
            .read_i32()
            .await
            .map_err(|e| format!("closed the connection: {e}"))?;
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= PEER_RESPONSE_BYTES_MAX)
            .ok_or_else(|| format!("sent a response of {size} bytes"))?;
        let mut body = vec![0u8; size];
        self.stream
            .read_exact(&mut body)
            .await
            .map_err(|e| format!("closed the connection: {e}"))?;
        let mut body = Bytes::from(body);
        let decode = |body: &mut Bytes| -> anyhow::Result<(ResponseHeader, R::Response)> {
            let header = ResponseHeader::decode(body, key.response_header_version(version))?;
            Ok((header, R::Response::decode(body, version)?))
        };
        let (header, response) =
            decode(&mut body).map_err(|e| format!("sent an undecodable {key:?} answer: {e}"))?;
        if header.correlation_id != correlation_id {
            return Err("answered out of order".to_string());
        }
        Ok(response)
    }
}
