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
//! With `connections.max.reauth.ms` set, a SASL authentication lasts that long (KIP-368):
//! the SaslAuthenticate answer tells the client, which authenticates again on the same
//! connection with a new SaslHandshake before then, as the same principal. A request
//! after the session expired closes the connection.
//!
//! A failed authentication is answered with SASL_AUTHENTICATION_FAILED and the
//! connection closed after [`FAILED_AUTHENTICATION_DELAY`], Kafka's
//! `connection.failed.authentication.delay.ms`, so guessing passwords stays slow.

use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// `expires` is when a SASL session must have re-authenticated by.
    Authenticated {
        principal: Arc<Principal>,
        expires: Option<Instant>,
    },
    /// Re-authenticating (KIP-368): requests still act as `principal`, and the exchange
    /// must end as the same principal.
    Reauthenticate {
        principal: Arc<Principal>,
        expires: Option<Instant>,
        exchange: Option<Exchange>,
    },
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

/// The broker's SCRAM credentials and the listener's OAUTHBEARER validator, as one store.
struct ListenerCredentials<'a> {
    broker: &'a dyn CredentialStore,
    oauth: Option<&'a crate::security::oauthbearer::OAuthValidator>,
}

impl CredentialStore for ListenerCredentials<'_> {
    fn scram(
        &self,
        user: &str,
        mechanism: weir_meta::scram::ScramMechanism,
    ) -> Option<weir_meta::scram::ScramCredential> {
        self.broker.scram(user, mechanism)
    }

    fn oauth(
        &self,
        message: &[u8],
    ) -> Option<
        Result<crate::security::oauthbearer::ValidToken, crate::security::oauthbearer::OAuthError>,
    > {
        self.oauth.map(|v| v.validate_now(message))
    }
}

impl Session {
    /// A new connection's session; `certificate` is the mapped subject of a verified
    /// client certificate, if the TLS handshake had one.
    pub fn new(listener: Arc<Listener>, certificate: Option<Principal>) -> Session {
        let state = if listener.config.protocol.uses_sasl() {
            AuthState::Handshake
        } else {
            AuthState::Authenticated {
                principal: Arc::new(certificate.unwrap_or_else(Principal::anonymous)),
                expires: None,
            }
        };
        Session { listener, state }
    }

    pub fn listener(&self) -> &Arc<Listener> {
        &self.listener
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(
            self.state,
            AuthState::Authenticated { .. } | AuthState::Reauthenticate { .. }
        )
    }

    /// The lifetime of a new SASL session, and when it ends: `connections.max.reauth.ms`,
    /// or less if the credential expires sooner (an OAUTHBEARER token), as in Kafka. With
    /// re-authentication off, sessions do not end.
    fn lifetime(&self, credential_expires_ms: Option<i64>) -> (i64, Option<Instant>) {
        if self.listener.reauth_ms == 0 {
            return (0, None);
        }
        let mut ms = i64::try_from(self.listener.reauth_ms).unwrap_or(i64::MAX);
        if let Some(expires_ms) = credential_expires_ms {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            ms = ms.min(expires_ms.saturating_sub(now_ms)).max(1);
        }
        (
            ms,
            Some(Instant::now() + Duration::from_millis(ms.unsigned_abs())),
        )
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
        // A session past its lifetime that did not re-authenticate ends here; a
        // SaslHandshake may still start the re-authentication, as Kafka lets it (the
        // client's last request may have been a long poll that outlived the session).
        let listener = Arc::clone(&self.listener);
        let credentials = ListenerCredentials {
            broker: store,
            oauth: listener.oauth.as_ref(),
        };
        let store: &dyn CredentialStore = &credentials;
        let expires = match (&self.state, &request.body) {
            (AuthState::Authenticated { .. }, Request::SaslHandshake(_)) => None,
            (AuthState::Reauthenticate { .. }, Request::SaslAuthenticate(_)) => None,
            (AuthState::Authenticated { expires, .. }, _)
            | (AuthState::Reauthenticate { expires, .. }, _) => *expires,
            _ => None,
        };
        if expires.is_some_and(|at| Instant::now() >= at) {
            tracing::info!(listener = %self.listener.config.name, "SASL session expired without re-authenticating: closing");
            self.state = AuthState::Failed;
            return Admission::Answered(Reply::Close(None));
        }
        let reauth = self.listener.reauth_ms > 0;
        match (&mut self.state, &request.body) {
            (AuthState::Authenticated { principal, expires }, Request::SaslHandshake(r))
                if reauth && self.listener.config.protocol.uses_sasl() =>
            {
                let (principal, expires) = (Arc::clone(principal), *expires);
                match self.enabled(r.mechanism.as_str()) {
                    Some(mechanism) => {
                        self.state = AuthState::Reauthenticate {
                            principal,
                            expires,
                            exchange: Some(Exchange::new(mechanism, server_nonce())),
                        };
                        Admission::Answered(meta.reply(&self.handshake_answer(None)))
                    }
                    None => {
                        self.state = AuthState::Failed;
                        Admission::Answered(close_with(meta.reply(
                            &self.handshake_answer(Some(ResponseError::UnsupportedSaslMechanism)),
                        )))
                    }
                }
            }
            (AuthState::Authenticated { .. }, Request::SaslHandshake(_)) => Admission::Answered(
                meta.reply(&self.handshake_answer(Some(ResponseError::IllegalSaslState))),
            ),
            (AuthState::Authenticated { .. }, Request::SaslAuthenticate(_)) => {
                let body = SaslAuthenticateResponse::default()
                    .with_error_code(ResponseError::IllegalSaslState.code())
                    .with_error_message(Some(str_bytes(
                        "SaslAuthenticate request received after successful authentication",
                    )));
                Admission::Answered(meta.reply(&body))
            }
            (AuthState::Authenticated { principal, .. }, _) => {
                Admission::Dispatch(Arc::clone(principal))
            }
            (
                AuthState::Reauthenticate {
                    principal,
                    exchange,
                    ..
                },
                Request::SaslAuthenticate(r),
            ) => {
                let Some(ex) = exchange.as_mut() else {
                    self.state = AuthState::Failed;
                    return Admission::Answered(Reply::Close(None));
                };
                let previous = Arc::clone(principal);
                let step = ex.step(&r.auth_bytes, store);
                let credential_expires_ms = ex.credential_expires_ms();
                match step {
                    Ok(Step::Challenge(token)) => {
                        let body =
                            SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(token));
                        Admission::Answered(meta.reply(&body))
                    }
                    Ok(Step::Done {
                        principal_name,
                        token,
                    }) => {
                        let principal = Principal::user(principal_name);
                        if principal != *previous {
                            self.state = AuthState::Failed;
                            let e = format!("Cannot change principals during re-authentication from {previous} to {principal}");
                            return Admission::Answered(self.refuse(
                                meta,
                                ResponseError::SaslAuthenticationFailed,
                                &e,
                            ));
                        }
                        Admission::Answered(self.authenticated(
                            meta,
                            principal,
                            token,
                            credential_expires_ms,
                        ))
                    }
                    Err(e) => {
                        self.state = AuthState::Failed;
                        Admission::Answered(self.failed(meta, &e))
                    }
                }
            }
            // A second handshake in the middle of re-authenticating.
            (AuthState::Reauthenticate { .. }, Request::SaslHandshake(_)) => {
                self.state = AuthState::Failed;
                Admission::Answered(Reply::Close(None))
            }
            // Requests already pipelined behind the re-authentication go on as before.
            (AuthState::Reauthenticate { principal, .. }, _) => {
                Admission::Dispatch(Arc::clone(principal))
            }
            (AuthState::Handshake, Request::ApiVersions(_)) => {
                Admission::Dispatch(Arc::new(Principal::anonymous()))
            }
            (AuthState::Handshake, Request::SaslHandshake(r)) => {
                let Some(mechanism) = self.enabled(r.mechanism.as_str()) else {
                    tracing::info!(mechanism = %r.mechanism.as_str(), listener = %self.listener.config.name, "SASL mechanism not enabled: closing");
                    self.state = AuthState::Failed;
                    return Admission::Answered(close_with(meta.reply(
                        &self.handshake_answer(Some(ResponseError::UnsupportedSaslMechanism)),
                    )));
                };
                let exchange = Exchange::new(mechanism, server_nonce());
                self.state = if request.api_version == 0 {
                    AuthState::RawTokens(exchange)
                } else {
                    AuthState::Authenticate(exchange)
                };
                Admission::Answered(meta.reply(&self.handshake_answer(None)))
            }
            (AuthState::Authenticate(exchange), Request::SaslAuthenticate(r)) => {
                let step = exchange.step(&r.auth_bytes, store);
                let credential_expires_ms = exchange.credential_expires_ms();
                match step {
                    Ok(Step::Challenge(token)) => {
                        let body =
                            SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(token));
                        Admission::Answered(meta.reply(&body))
                    }
                    Ok(Step::Done {
                        principal_name,
                        token,
                    }) => Admission::Answered(self.authenticated(
                        meta,
                        Principal::user(principal_name),
                        token,
                        credential_expires_ms,
                    )),
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

    /// The mechanism named, if this listener enables it.
    fn enabled(&self, name: &str) -> Option<Mechanism> {
        Mechanism::from_name(name).filter(|m| self.listener.sasl_mechanisms.contains(m))
    }

    fn handshake_answer(&self, error: Option<ResponseError>) -> SaslHandshakeResponse {
        SaslHandshakeResponse::default()
            .with_error_code(error.map_or(0, |e| e.code()))
            .with_mechanisms(self.mechanism_names())
    }

    /// The exchange succeeded: the session starts (again) with its lifetime.
    fn authenticated(
        &mut self,
        meta: &RequestMeta,
        principal: Principal,
        token: Vec<u8>,
        credential_expires_ms: Option<i64>,
    ) -> Reply {
        tracing::debug!(%principal, listener = %self.listener.config.name, "authenticated");
        let (lifetime_ms, expires) = self.lifetime(credential_expires_ms);
        self.state = AuthState::Authenticated {
            principal: Arc::new(principal),
            expires,
        };
        let body = SaslAuthenticateResponse::default()
            .with_auth_bytes(Bytes::from(token))
            .with_session_lifetime_ms(lifetime_ms);
        meta.reply(&body)
    }

    /// A bare token after SaslHandshake v0: the answer is a bare token too; a failure
    /// closes the connection without one, as Kafka does for such clients.
    pub fn raw_token(&mut self, store: &dyn CredentialStore, token: &[u8]) -> Reply {
        let listener = Arc::clone(&self.listener);
        let credentials = ListenerCredentials {
            broker: store,
            oauth: listener.oauth.as_ref(),
        };
        let store: &dyn CredentialStore = &credentials;
        let AuthState::RawTokens(exchange) = &mut self.state else {
            return Reply::Close(None);
        };
        let frame = |token: Vec<u8>| {
            let mut b = BytesMut::with_capacity(4 + token.len());
            b.put_i32(token.len() as i32);
            b.put_slice(&token);
            Reply::Now(vec![b.freeze()])
        };
        let step = exchange.step(token, store);
        let credential_expires_ms = exchange.credential_expires_ms();
        match step {
            Ok(Step::Challenge(token)) => frame(token),
            Ok(Step::Done {
                principal_name,
                token,
            }) => {
                let (_, expires) = self.lifetime(credential_expires_ms);
                self.state = AuthState::Authenticated {
                    principal: Arc::new(Principal::user(principal_name)),
                    expires,
                };
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
        self.refuse(meta, e.error_code(), &e.client_message())
    }

    /// Answers SaslAuthenticate with an error, then closes after the failure delay.
    fn refuse(&self, meta: &RequestMeta, code: ResponseError, message: &str) -> Reply {
        tracing::info!(error = %message, listener = %self.listener.config.name, "authentication failed");
        let body = SaslAuthenticateResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message)));
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
