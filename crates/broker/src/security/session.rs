//! One connection's authentication state, and the answers to SaslHandshake and
//! SaslAuthenticate.
//!
//! On a PLAINTEXT or SSL listener a connection is authenticated from the start, as
//! `User:ANONYMOUS` or as its client certificate's subject. On a SASL listener it must
//! authenticate first, and until it has, only three requests are read (as Kafka reads
//! them): ApiVersions, then SaslHandshake naming a mechanism, then the SaslAuthenticate
//! requests of the exchange. Anything else closes the connection. After SaslHandshake v0
//! the client sends the exchange's tokens as bare size-prefixed frames instead.
//!
//! A failed authentication is answered with SASL_AUTHENTICATION_FAILED and the
//! connection closed after [`FAILED_AUTHENTICATION_DELAY`], Kafka's
//! `connection.failed.authentication.delay.ms`, so guessing passwords stays slow.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::FutureExt;
use kafka_protocol::messages::{SaslAuthenticateResponse, SaslHandshakeResponse};
use rand::distributions::{Alphanumeric, DistString};
use weir_wire::request::{DecodedRequest, Request};
use weir_wire::ResponseError;

use super::principal::Principal;
use super::sasl::{CredentialStore, Exchange, Mechanism, SaslError, Step};
use super::Listener;
use crate::connection::Reply;
use crate::handlers::{str_bytes, RequestMeta};

/// Kafka's `connection.failed.authentication.delay.ms` default.
pub const FAILED_AUTHENTICATION_DELAY: Duration = Duration::from_millis(100);
/// Largest frame read from a connection that has not authenticated (Kafka's
/// `sasl.server.max.receive.size`), so an unauthenticated client cannot make the broker
/// allocate a large request.
pub const UNAUTHENTICATED_FRAME_BYTES_MAX: usize = 512 * 1024;
/// Length of the server's part of a SCRAM nonce.
const SERVER_NONCE_CHARS: usize = 32;

enum AuthState {
    Authenticated(Arc<Principal>),
    /// A SASL listener before SaslHandshake; `versions_seen` once ApiVersions was asked.
    Handshake,
    /// After SaslHandshake v1: SaslAuthenticate requests carry the tokens.
    Authenticate(Exchange),
    /// After SaslHandshake v0: the tokens come as bare frames.
    RawTokens(Exchange),
    /// Authentication failed; the connection is closing.
    Failed,
}

/// What the connection does with a request.
pub enum Admission {
    /// Authenticated: dispatch it as the given principal.
    Dispatch(Arc<Principal>),
    /// The session answered it (a SASL step, or a close).
    Answered(Reply),
}

pub struct Session {
    listener: Arc<Listener>,
    state: AuthState,
}

impl Session {
    /// A new connection's session; `certificate` is the mapped subject of a verified
    /// client certificate, if the TLS handshake had one.
    pub fn new(listener: Arc<Listener>, certificate: Option<Principal>) -> Session {
        let state = if listener.config.protocol.uses_sasl() {
            AuthState::Handshake
        } else {
            AuthState::Authenticated(Arc::new(certificate.unwrap_or_else(Principal::anonymous)))
        };
        Session { listener, state }
    }

    pub fn listener(&self) -> &Arc<Listener> {
        &self.listener
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, AuthState::Authenticated(_))
    }

    /// The largest frame to read next.
    pub fn frame_bytes_max(&self, configured: usize) -> usize {
        if self.is_authenticated() {
            configured
        } else {
            configured.min(UNAUTHENTICATED_FRAME_BYTES_MAX)
        }
    }

    /// Whether the next frame is a bare SASL token (after SaslHandshake v0).
    pub fn expects_raw_token(&self) -> bool {
        matches!(self.state, AuthState::RawTokens(_))
    }

    /// Decides what happens to a decoded request.
    pub fn admit(
        &mut self,
        store: &dyn CredentialStore,
        meta: &RequestMeta,
        request: &DecodedRequest,
    ) -> Admission {
        match (&mut self.state, &request.body) {
            (AuthState::Authenticated(_), Request::SaslHandshake(_)) => {
                // Re-authentication (KIP-368) is not offered: session lifetimes are 0.
                let body = SaslHandshakeResponse::default()
                    .with_error_code(ResponseError::IllegalSaslState.code())
                    .with_mechanisms(self.mechanism_names());
                Admission::Answered(meta.reply(&body))
            }
            (AuthState::Authenticated(_), Request::SaslAuthenticate(_)) => {
                let body = SaslAuthenticateResponse::default()
                    .with_error_code(ResponseError::IllegalSaslState.code())
                    .with_error_message(Some(str_bytes(
                        "SaslAuthenticate request received after successful authentication",
                    )));
                Admission::Answered(meta.reply(&body))
            }
            (AuthState::Authenticated(p), _) => Admission::Dispatch(Arc::clone(p)),
            (AuthState::Handshake, Request::ApiVersions(_)) => {
                Admission::Dispatch(Arc::new(Principal::anonymous()))
            }
            (AuthState::Handshake, Request::SaslHandshake(r)) => {
                let enabled = Mechanism::from_name(r.mechanism.as_str())
                    .filter(|m| self.listener.sasl_mechanisms.contains(m));
                let Some(mechanism) = enabled else {
                    tracing::info!(mechanism = %r.mechanism.as_str(), listener = %self.listener.config.name, "SASL mechanism not enabled: closing");
                    let body = SaslHandshakeResponse::default()
                        .with_error_code(ResponseError::UnsupportedSaslMechanism.code())
                        .with_mechanisms(self.mechanism_names());
                    self.state = AuthState::Failed;
                    return Admission::Answered(close_with(meta.reply(&body)));
                };
                let exchange = Exchange::new(mechanism, server_nonce());
                self.state = if request.api_version == 0 {
                    AuthState::RawTokens(exchange)
                } else {
                    AuthState::Authenticate(exchange)
                };
                let body = SaslHandshakeResponse::default().with_mechanisms(self.mechanism_names());
                Admission::Answered(meta.reply(&body))
            }
            (AuthState::Authenticate(exchange), Request::SaslAuthenticate(r)) => {
                match exchange.step(&r.auth_bytes, store) {
                    Ok(Step::Challenge(token)) => {
                        let body =
                            SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(token));
                        Admission::Answered(meta.reply(&body))
                    }
                    Ok(Step::Done {
                        principal_name,
                        token,
                    }) => {
                        tracing::debug!(principal = %principal_name, listener = %self.listener.config.name, "authenticated");
                        self.state =
                            AuthState::Authenticated(Arc::new(Principal::user(principal_name)));
                        let body =
                            SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(token));
                        Admission::Answered(meta.reply(&body))
                    }
                    Err(e) => {
                        self.state = AuthState::Failed;
                        Admission::Answered(self.failed(meta, &e))
                    }
                }
            }
            (_, _) => {
                tracing::info!(api = ?request.api_key, listener = %self.listener.config.name, "request before authentication: closing");
                self.state = AuthState::Failed;
                Admission::Answered(Reply::Close(None))
            }
        }
    }

    /// A bare token after SaslHandshake v0: the answer is a bare token too; a failure
    /// closes the connection without one, as Kafka does for such clients.
    pub fn raw_token(&mut self, store: &dyn CredentialStore, token: &[u8]) -> Reply {
        let AuthState::RawTokens(exchange) = &mut self.state else {
            return Reply::Close(None);
        };
        let frame = |token: Vec<u8>| {
            let mut b = BytesMut::with_capacity(4 + token.len());
            b.put_i32(token.len() as i32);
            b.put_slice(&token);
            Reply::Now(vec![b.freeze()])
        };
        match exchange.step(token, store) {
            Ok(Step::Challenge(token)) => frame(token),
            Ok(Step::Done {
                principal_name,
                token,
            }) => {
                self.state = AuthState::Authenticated(Arc::new(Principal::user(principal_name)));
                frame(token)
            }
            Err(e) => {
                tracing::info!(error = %e, listener = %self.listener.config.name, "authentication failed");
                self.state = AuthState::Failed;
                delayed(Reply::Close(None))
            }
        }
    }

    fn failed(&self, meta: &RequestMeta, e: &SaslError) -> Reply {
        tracing::info!(error = %e, listener = %self.listener.config.name, "authentication failed");
        let body = SaslAuthenticateResponse::default()
            .with_error_code(e.error_code().code())
            .with_error_message(Some(str_bytes(&e.client_message())));
        delayed(close_with(meta.reply(&body)))
    }

    fn mechanism_names(&self) -> Vec<kafka_protocol::protocol::StrBytes> {
        self.listener
            .sasl_mechanisms
            .iter()
            .map(|m| str_bytes(m.name()))
            .collect()
    }
}

/// Answers with the reply's frame, then closes.
fn close_with(reply: Reply) -> Reply {
    match reply {
        Reply::Now(frame) => Reply::Close(Some(frame)),
        other => other,
    }
}

/// The reply after [`FAILED_AUTHENTICATION_DELAY`]; the connection reads nothing meanwhile.
fn delayed(reply: Reply) -> Reply {
    Reply::Gate(
        async move {
            tokio::time::sleep(FAILED_AUTHENTICATION_DELAY).await;
            reply
        }
        .boxed(),
    )
}

fn server_nonce() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), SERVER_NONCE_CHARS)
}
