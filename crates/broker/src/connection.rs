//! One client connection.
//!
//! A reader task takes frames off the socket, decodes them and starts each request in
//! arrival order (so appends happen in the order a producer pipelined them); a writer
//! task awaits the replies in that same order and writes them. At most
//! [`REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX`] requests are read ahead of their replies.
//!
//! A frame that cannot be decoded closes this connection only, as Kafka does; the one
//! exception is an ApiVersions request at a version weir does not know, which gets the v0
//! answer with UNSUPPORTED_VERSION so the client can retry with a version both sides speak.
//!
//! The connection's [`Session`] decides what it may send: on a SASL listener, nothing but
//! ApiVersions and the SASL exchange until it has authenticated. On a TLS listener the
//! handshake comes first, bounded by [`tls::HANDSHAKE_TIMEOUT`].
//!
//! The broker's metrics are counted here: each decoded request by API and version, the time
//! until its response frame is ready (a long-polling Fetch counts its wait), the bytes each
//! way, and the connection itself with the [`CloseReason`] it ended for.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use weir_wire::kafka_protocol::messages::ApiKey;
use weir_wire::request::decode_request;
use weir_wire::WireError;

use crate::config::REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX;
use crate::metrics::CloseReason;
use crate::request_time::PollTimed;
use crate::security::principal::Principal;
use crate::security::session::{Admission, Session};
use crate::security::{tls, Listener};

/// How much of an undecodable request is logged, in hex, to diagnose it.
const FRAME_BYTES_LOGGED_MAX: usize = 256;
/// The size prefix before every frame, counted in the byte metrics.
const FRAME_SIZE_PREFIX_BYTES: usize = 4;
use crate::handlers;
use crate::state::{BrokerState, QuotaClient};
use weir_meta::client_quotas::PRODUCER_BYTE_RATE;

/// A response frame: its pieces, written one after the other. Most frames are one buffer;
/// a Fetch response's record sets are the very buffers the log read, not copied.
pub type Frame = Vec<Bytes>;

/// What a started request will send back.
pub enum Reply {
    /// The response frame is ready.
    Now(Frame),
    /// The response frame will be ready later (fsync, long-poll, group coordination).
    Later(BoxFuture<'static, Option<Frame>>),
    /// No response at all (produce with acks=0).
    Nothing,
    /// Work that must finish before the connection starts its next request (a produce whose
    /// transactional partitions the coordinator checks first, so appends stay in request
    /// order); it then gives the reply.
    Gate(BoxFuture<'static, Reply>),
    /// Answer with this frame, then close the connection.
    Close(Option<Frame>),
}

/// The connection's write buffer.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// Slices handed to one `writev`.
const WRITE_SLICES_MAX: usize = 64;

/// Writes a frame's chunks: through the buffer when they fit in it, else with vectored
/// writes, so a Fetch response leaves as one stream rather than a small write per piece.
async fn write_chunks<W: AsyncWrite + Unpin>(
    out: &mut BufWriter<W>,
    chunks: &[Bytes],
) -> std::io::Result<()> {
    let total: usize = chunks.iter().map(Bytes::len).sum();
    if total <= WRITE_BUFFER_BYTES.saturating_sub(out.buffer().len()) {
        for c in chunks {
            out.write_all(c).await?;
        }
        return Ok(());
    }
    out.flush().await?;
    let inner = out.get_mut();
    // An empty chunk (a frame may end right after its last record set) is nothing to
    // write; left in, it would make a final writev write zero bytes.
    let chunks: Vec<&Bytes> = chunks.iter().filter(|c| !c.is_empty()).collect();
    let (mut idx, mut off) = (0usize, 0usize);
    while idx < chunks.len() {
        let slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&chunks[idx][off..]))
            .chain(chunks[idx + 1..].iter().map(|c| IoSlice::new(c.as_ref())))
            .take(WRITE_SLICES_MAX)
            .collect();
        let mut n = inner.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 && idx < chunks.len() {
            let left = chunks[idx].len() - off;
            if n >= left {
                n -= left;
                idx += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
    }
    Ok(())
}

/// Facts about the connection a handler may need.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub peer: SocketAddr,
    pub client_id: String,
    /// The client's software name and version, as its ApiVersions request (v3+) said;
    /// empty before one.
    pub software: Arc<(String, String)>,
    /// The listener the connection came in on: its advertised address is the one to give
    /// this client.
    pub listener: Arc<Listener>,
    /// Who the connection authenticated as (`User:ANONYMOUS` without authentication).
    pub principal: Arc<Principal>,
}

/// Counts a connection as open until it is dropped, however `serve` ends. `serve` sets the
/// reason before it returns; a connection dropped without one was cancelled at shutdown.
struct OpenConnection {
    state: Arc<BrokerState>,
    reason: CloseReason,
}

impl OpenConnection {
    fn new(state: &Arc<BrokerState>) -> OpenConnection {
        state.metrics.connection_opened();
        OpenConnection {
            state: Arc::clone(state),
            reason: CloseReason::Shutdown,
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.state.metrics.connection_closed(self.reason);
    }
}

/// A failed read: the client closing its side, or a socket error.
fn read_failure(e: &std::io::Error) -> CloseReason {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        CloseReason::ClientClosed
    } else {
        CloseReason::IoError
    }
}

/// Records the request's duration once its reply is known: now for a ready frame, when the
/// future resolves for a later one.
fn timed(state: &Arc<BrokerState>, api: ApiKey, started: Instant, reply: Reply) -> Reply {
    match reply {
        Reply::Later(fut) => {
            let state = Arc::clone(state);
            Reply::Later(
                fut.map(move |frame| {
                    state.metrics.request_done(api, started.elapsed());
                    frame
                })
                .boxed(),
            )
        }
        Reply::Gate(work) => {
            let state = Arc::clone(state);
            Reply::Gate(async move { timed(&state, api, started, work.await) }.boxed())
        }
        other => {
            state.metrics.request_done(api, started.elapsed());
            other
        }
    }
}

/// Requests Kafka never counts against a client quota: the inter-broker ones it serves
/// (of those, weir serves WriteTxnMarkers) and the SASL exchange.
fn quota_exempt(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::WriteTxnMarkers | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
    )
}

/// Client quotas, when any is set: the throttle the `request_percentage` quota asks for
/// from the client's earlier handler time goes on the response; a Produce's request bytes
/// count against `producer_byte_rate` now, and its response carries the larger throttle,
/// as Kafka sends the larger. The request carries who sent it, so a Fetch's response bytes
/// count against `consumer_byte_rate` once built and topic changes against
/// `controller_mutation_rate`. Over a quota, the connection's mute (`muted_until_ms`) is
/// extended. Returns the client, to record the request's handler time against.
fn with_quota(
    state: &Arc<BrokerState>,
    mut meta: handlers::RequestMeta,
    info: &ClientInfo,
    request_bytes: usize,
    muted_until_ms: &Arc<AtomicI64>,
) -> (handlers::RequestMeta, Option<QuotaClient>) {
    if !state.has_client_quotas() || quota_exempt(meta.api_key) {
        return (meta, None);
    }
    let quota = QuotaClient::new(
        state,
        info.principal.name(),
        &info.client_id,
        muted_until_ms,
    );
    meta.throttle_time_ms = quota.request_throttle();
    if meta.api_key == ApiKey::Produce {
        let produce_throttle_ms = quota.record(PRODUCER_BYTE_RATE, request_bytes);
        meta.throttle_time_ms = meta.throttle_time_ms.max(produce_throttle_ms);
    }
    meta.quota = Some(quota.clone());
    (meta, Some(quota))
}

/// Records a request's handler time against its client's `request_percentage` quota once
/// its reply is known: `spent` (the dispatch call) plus the time inside the polls of any
/// future the reply still waits on.
fn with_handler_time(reply: Reply, spent: Duration, quota: QuotaClient) -> Reply {
    match reply {
        Reply::Later(fut) => Reply::Later(
            async move {
                let (frame, polled) = PollTimed::new(fut).await;
                quota.record_request_time(spent + polled);
                frame
            }
            .boxed(),
        ),
        Reply::Gate(work) => Reply::Gate(
            async move {
                let (reply, polled) = PollTimed::new(work).await;
                with_handler_time(reply, spent + polled, quota)
            }
            .boxed(),
        ),
        other => {
            quota.record_request_time(spent);
            other
        }
    }
}

/// Serves one accepted connection: the TLS handshake first on a TLS listener, then
/// requests until either side closes.
pub async fn serve(
    state: Arc<BrokerState>,
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<Listener>,
) {
    let mut open = OpenConnection::new(&state);
    let _ = stream.set_nodelay(true);
    let Some(tls) = &listener.tls else {
        let session = Session::new(Arc::clone(&listener), None);
        let (read_half, write_half) = stream.into_split();
        serve_stream(state, read_half, write_half, peer, session, &mut open).await;
        return;
    };
    let accepted =
        tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await;
    let stream = match accepted {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::info!(%peer, listener = %listener.config.name, error = %e, "TLS handshake failed");
            open.reason = CloseReason::AuthenticationFailed;
            return;
        }
        Err(_) => {
            tracing::info!(%peer, listener = %listener.config.name, "TLS handshake timed out");
            open.reason = CloseReason::AuthenticationFailed;
            return;
        }
    };
    // A verified client certificate names the principal, through the mapping rules.
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| tls::subject_rfc2253(leaf.as_ref()));
    let principal = match certificate {
        None => None,
        Some(None) => {
            tracing::info!(%peer, "client certificate subject unreadable: closing");
            open.reason = CloseReason::AuthenticationFailed;
            return;
        }
        Some(Some(subject)) => match listener.principal_mapping.map(&subject) {
            Some(name) => Some(Principal::user(name)),
            None => {
                tracing::info!(%peer, %subject, "no principal mapping rule applies to the client certificate: closing");
                open.reason = CloseReason::AuthenticationFailed;
                return;
            }
        },
    };
    let session = Session::new(Arc::clone(&listener), principal);
    let (read_half, write_half) = tokio::io::split(stream);
    serve_stream(state, read_half, write_half, peer, session, &mut open).await;
}

async fn serve_stream<R, W>(
    state: Arc<BrokerState>,
    read_half: R,
    write_half: W,
    peer: SocketAddr,
    mut session: Session,
    open: &mut OpenConnection,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Reply>(REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX);

    let metrics = state.metrics.clone();
    let writer = tokio::spawn(async move {
        let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, write_half);
        while let Some(reply) = rx.recv().await {
            let (frame, close) = match reply {
                Reply::Now(f) => (Some(f), false),
                Reply::Later(f) => (f.await, false),
                Reply::Nothing => (None, false),
                Reply::Close(f) => (f, true),
                // Resolved by the reader before it queues a reply.
                Reply::Gate(_) => (None, false),
            };
            if let Some(chunks) = frame {
                if write_chunks(&mut out, &chunks).await.is_err() {
                    return;
                }
                metrics.bytes_sent(chunks.iter().map(Bytes::len).sum());
            }
            if close {
                break;
            }
            if rx.is_empty() && out.flush().await.is_err() {
                return;
            }
        }
        let _ = out.flush().await;
        let _ = out.shutdown().await;
    });

    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let limit = state.config.request_bytes_max;
    let mut software: Arc<(String, String)> = Arc::default();
    // Until when (wall-clock ms) the connection is muted for being over a client quota.
    let muted_until_ms = Arc::new(AtomicI64::new(0));
    loop {
        // 1. Frame: size prefix, checked before the body is read.
        let size = match reader.read_i32().await {
            Ok(s) => s,
            Err(e) => {
                open.reason = read_failure(&e);
                break;
            }
        };
        let size = match weir_wire::frame::check_frame_size(size, session.frame_bytes_max(limit)) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                open.reason = CloseReason::BadRequest;
                break;
            }
        };
        let mut frame = BytesMut::zeroed(size);
        if let Err(e) = reader.read_exact(&mut frame).await {
            open.reason = read_failure(&e);
            break;
        }
        // Muted over a client quota: the request waits out the throttle time, as Kafka
        // leaves it unread until then.
        let muted_ms = muted_until_ms.load(Ordering::Relaxed) - handlers::produce::now_ms();
        if muted_ms > 0 {
            tokio::time::sleep(Duration::from_millis(muted_ms as u64)).await;
        }
        // 2. Decode and start the request.
        let frame = frame.freeze();
        let frame_bytes = FRAME_SIZE_PREFIX_BYTES + size;
        let started = Instant::now();
        let mut undecodable = false;
        let reply = if session.expects_raw_token() {
            state.metrics.bytes_received(frame_bytes);
            session.raw_token(state.as_ref(), &frame)
        } else {
            match decode_request(frame.clone(), handlers::GROUPS_ENABLED) {
                Ok(request) => {
                    let api = request.api_key;
                    state
                        .metrics
                        .request_received(api, request.api_version, frame_bytes);
                    let meta = handlers::request_meta(&state, &request);
                    match session.admit(state.as_ref(), &meta, &request) {
                        Admission::Answered(reply) => timed(&state, api, started, reply),
                        Admission::Dispatch(principal) => {
                            if let weir_wire::request::Request::ApiVersions(r) = &request.body {
                                if !r.client_software_name.is_empty() {
                                    software = Arc::new((
                                        r.client_software_name.to_string(),
                                        r.client_software_version.to_string(),
                                    ));
                                }
                            }
                            let info = ClientInfo {
                                peer,
                                client_id: request.client_id.clone().unwrap_or_default(),
                                software: Arc::clone(&software),
                                listener: Arc::clone(session.listener()),
                                principal,
                            };
                            let (meta, quota) = if session.is_authenticated() {
                                with_quota(&state, meta, &info, size, &muted_until_ms)
                            } else {
                                (meta, None)
                            };
                            let dispatched = Instant::now();
                            let reply = handlers::dispatch(&state, &info, meta, request);
                            let reply = match quota {
                                Some(q) => with_handler_time(reply, dispatched.elapsed(), q),
                                None => reply,
                            };
                            timed(&state, api, started, reply)
                        }
                    }
                }
                Err(WireError::UnsupportedVersion {
                    api_key,
                    correlation_id,
                    api_version,
                }) if api_key == ApiKey::ApiVersions as i16 => {
                    // Not counted as a request: its version, any number a client sends, would
                    // make the version label unbounded.
                    state.metrics.bytes_received(frame_bytes);
                    tracing::debug!(%peer, api_version, "ApiVersions at an unknown version: answering v0");
                    handlers::api_versions::unsupported_version_reply(correlation_id)
                }
                Err(e) => {
                    state.metrics.bytes_received(frame_bytes);
                    let head: String = frame
                        .iter()
                        .take(FRAME_BYTES_LOGGED_MAX)
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    tracing::warn!(%peer, error = %e, frame_start = %head, "closing connection");
                    undecodable = true;
                    Reply::Close(None)
                }
            }
        };
        let reply = match reply {
            Reply::Gate(work) => work.await,
            other => other,
        };
        let closing = matches!(reply, Reply::Close(_));
        if tx.send(reply).await.is_err() {
            // The writer stopped: writing to the socket failed.
            open.reason = CloseReason::IoError;
            break;
        }
        if closing {
            open.reason = if undecodable {
                CloseReason::BadRequest
            } else if !session.is_authenticated() {
                // A failed authentication, or a request before one.
                CloseReason::AuthenticationFailed
            } else {
                CloseReason::BrokerClosed
            };
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}
