//! A minimal Kafka protocol client for the CLI, over the `kafka-protocol` message types:
//! one connection, TLS and SASL as [`crate::client_security`] says, ApiVersions
//! negotiation, pipelined requests answered in order.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::client_security::{self, ReadHalf, WriteHalf};

/// How long connecting to a broker may take before the CLI gives up with a clear error.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response the CLI accepts.
const RESPONSE_BYTES_MAX: usize = 256 << 20;

pub struct Connection {
    reader: BufReader<ReadHalf>,
    writer: WriteHalf,
    next_correlation_id: i32,
    versions: HashMap<i16, (i16, i16)>,
    /// Requests sent and not yet answered: correlation id, API key, version.
    in_flight: VecDeque<(i32, ApiKey, i16)>,
    pub address: String,
    /// When the SASL session should be renewed (KIP-368), if the broker limits it.
    pub reauthenticate_at: Option<std::time::Instant>,
}

impl Connection {
    /// Connects and negotiates API versions.
    pub async fn connect(address: &str) -> anyhow::Result<Connection> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| anyhow!("no answer from broker at {address} within {}s; is it running? start one with `weir serve`", CONNECT_TIMEOUT.as_secs()))?
            .with_context(|| format!("cannot connect to broker at {address}; is it running? start one with `weir serve`"))?;
        stream.set_nodelay(true)?;
        let (r, w) = client_security::wrap(stream, address).await?;
        let mut c = Connection {
            reader: BufReader::with_capacity(1 << 20, r),
            writer: w,
            next_correlation_id: 0,
            versions: HashMap::new(),
            in_flight: VecDeque::new(),
            address: address.to_string(),
            reauthenticate_at: None,
        };
        let resp: ApiVersionsResponse = c.call_at(&ApiVersionsRequest::default(), 0).await?;
        if resp.error_code != 0 {
            bail!(
                "broker at {address} refused ApiVersions (error {})",
                resp.error_code
            );
        }
        c.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        if let Some(login) = &client_security::settings().sasl {
            crate::client_sasl::authenticate(&mut c, login).await?;
        }
        Ok(c)
    }

    /// The highest version both this client and the broker speak for `R`.
    pub fn version<R: Request>(&self) -> anyhow::Result<i16> {
        let key = ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown API key {}", R::KEY))?;
        let (bmin, bmax) = *self
            .versions
            .get(&R::KEY)
            .ok_or_else(|| anyhow!("broker at {} does not support {key:?}", self.address))?;
        let v = bmax.min(R::VERSIONS.max);
        if v < bmin.max(R::VERSIONS.min) {
            bail!(
                "broker at {} and weir share no version of {key:?}",
                self.address
            );
        }
        Ok(v)
    }

    /// Sends a request without waiting; answers come back in order through [`Connection::recv`].
    pub async fn send_at<R: Request>(&mut self, request: &R, version: i16) -> anyhow::Result<()> {
        let key = ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown API key"))?;
        // A SASL session near its end is renewed between requests, as Kafka's clients do.
        if self.in_flight.is_empty()
            && R::KEY != SaslHandshakeRequest::KEY
            && R::KEY != SaslAuthenticateRequest::KEY
            && self
                .reauthenticate_at
                .is_some_and(|at| std::time::Instant::now() >= at)
        {
            if let Some(login) = &client_security::settings().sasl {
                Box::pin(crate::client_sasl::authenticate(self, login)).await?;
            }
        }
        self.next_correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.next_correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("weir-cli")));
        let header_version = key.request_header_version(version);
        let size = header.compute_size(header_version)? + request.compute_size(version)?;
        let mut buf = BytesMut::with_capacity(size + 4);
        buf.put_i32(size as i32);
        header.encode(&mut buf, header_version)?;
        request.encode(&mut buf, version)?;
        self.writer.write_all(&buf).await?;
        self.in_flight
            .push_back((self.next_correlation_id, key, version));
        Ok(())
    }

    /// Receives the answer to the oldest request in flight.
    pub async fn recv<Resp: Decodable + HeaderVersion>(&mut self) -> anyhow::Result<Resp> {
        let (correlation_id, key, version) = self
            .in_flight
            .pop_front()
            .ok_or_else(|| anyhow!("no request in flight"))?;
        let size = self
            .reader
            .read_i32()
            .await
            .with_context(|| format!("broker at {} closed the connection", self.address))?;
        if size < 0 || size as usize > RESPONSE_BYTES_MAX {
            // A TLS record (an alert or a handshake, version 3.x) read as a size.
            let [kind, major, ..] = size.to_be_bytes();
            if matches!(kind, 0x15 | 0x16) && major == 0x03 {
                bail!(
                    "broker at {} answered with TLS: it is an SSL or SASL_SSL listener; set -X security.protocol=SSL (or SASL_SSL) and -X ssl.ca.location",
                    self.address
                );
            }
            bail!("broker at {} sent a response of {size} bytes", self.address);
        }
        let mut buf = vec![0u8; size as usize];
        self.reader.read_exact(&mut buf).await?;
        let mut buf = bytes::Bytes::from(buf);
        let header = ResponseHeader::decode(&mut buf, key.response_header_version(version))?;
        if header.correlation_id != correlation_id {
            bail!("broker at {} answered out of order", self.address);
        }
        Ok(Resp::decode(&mut buf, version)?)
    }

    pub async fn call_at<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> anyhow::Result<R::Response> {
        self.send_at(request, version).await?;
        self.recv::<R::Response>().await
    }

    /// Sends at the negotiated version and waits for the answer.
    pub async fn call<R: Request>(&mut self, request: &R) -> anyhow::Result<(R::Response, i16)> {
        let v = self.version::<R>()?;
        Ok((self.call_at(request, v).await?, v))
    }

    /// Forgets the last request sent: an acks=0 produce gets no answer.
    pub fn forget_last(&mut self) {
        self.in_flight.pop_back();
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

/// FindCoordinator key types.
pub const KEY_TYPE_GROUP: i8 = 0;
pub const KEY_TYPE_TRANSACTION: i8 = 1;

/// One FindCoordinator for `group`: (error code, node id, host, port). v4+ batches keys;
/// earlier versions carry one. Callers decide what to retry.
pub async fn ask_group_coordinator(
    conn: &mut Connection,
    group: &str,
) -> anyhow::Result<(i16, i32, String, i32)> {
    ask_coordinator(conn, KEY_TYPE_GROUP, group).await
}

/// One FindCoordinator for `key` of `key_type` (a group or a transactional id).
pub async fn ask_coordinator(
    conn: &mut Connection,
    key_type: i8,
    key: &str,
) -> anyhow::Result<(i16, i32, String, i32)> {
    let v = conn.version::<FindCoordinatorRequest>()?;
    let req = if v >= 4 {
        FindCoordinatorRequest::default()
            .with_key_type(key_type)
            .with_coordinator_keys(vec![sb(key)])
    } else {
        FindCoordinatorRequest::default()
            .with_key_type(key_type)
            .with_key(sb(key))
    };
    let r = conn.call_at(&req, v).await?;
    Ok(match r.coordinators.first() {
        Some(c) => (c.error_code, c.node_id.0, c.host.to_string(), c.port),
        None => (r.error_code, r.node_id.0, r.host.to_string(), r.port),
    })
}

pub fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}
