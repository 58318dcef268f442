//! SASL exchanges, sans I/O: the server side of PLAIN (RFC 4616) and SCRAM-SHA-256 /
//! SCRAM-SHA-512 (RFC 5802, RFC 7677), as Kafka's brokers run them.
//!
//! The connection owns one [`Exchange`] per authentication: it hands in each client token
//! (from SaslAuthenticate, or raw after a v0 SaslHandshake) and sends back what
//! [`Exchange::step`] returns, until [`Step::Done`] names the principal or a [`SaslError`]
//! ends the exchange. Nothing here reads a socket, a clock or a random source: the SCRAM
//! server nonce comes in with [`Exchange::new`] (see [`server_nonce`]), and credentials come
//! from a [`CredentialStore`].
//!
//! Layout:
//! - [`plain`]: the single PLAIN step, checking the password against the stored SCRAM
//!   credential (weir keeps no password).
//! - [`scram`]: the two SCRAM steps and their message grammar.
//!
//! OAUTHBEARER's token is checked by [`crate::oauthbearer`], reached through
//! [`CredentialStore::oauth`]. A refused token is answered, as RFC 7628 asks, with an error
//! challenge (`{"status":"invalid_token"}`); the client acknowledges it with `\x01` and the
//! exchange then fails with that JSON as its message, as Kafka's does.

pub mod plain;
pub mod scram;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use weir_meta::scram::{ScramCredential, ScramMechanism};
use weir_wire::ResponseError;

/// Largest client token taken. PLAIN's three fields are at most a few hundred bytes and
/// SCRAM's messages less; Kafka bounds the whole authentication request at 512 KiB, but no
/// honest token comes near this.
pub const TOKEN_BYTES_MAX: usize = 8192;

/// A SASL mechanism weir serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    OAuthBearer,
}

impl Mechanism {
    pub const ALL: [Mechanism; 4] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
        Mechanism::OAuthBearer,
    ];

    /// The name a client asks for in SaslHandshake.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// Exact and case-sensitive, as Kafka matches the handshake's mechanism.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The SCRAM hash behind a SCRAM mechanism; None for the others.
    pub fn scram(self) -> Option<ScramMechanism> {
        match self {
            Mechanism::Plain | Mechanism::OAuthBearer => None,
            Mechanism::ScramSha256 => Some(ScramMechanism::Sha256),
            Mechanism::ScramSha512 => Some(ScramMechanism::Sha512),
        }
    }
}

/// Credential lookups an exchange needs (the broker implements it over its catalog).
pub trait CredentialStore {
    fn scram(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential>;

    /// Checks an OAUTHBEARER client message; None where OAUTHBEARER is not configured.
    fn oauth(
        &self,
        _message: &[u8],
    ) -> Option<Result<crate::oauthbearer::ValidToken, crate::oauthbearer::OAuthError>> {
        None
    }
}

/// What one step gives back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this token and wait for the client's next one.
    Challenge(Vec<u8>),
    /// Authenticated as `principal_name` (Kafka's `User:` principal); send `token` (empty
    /// for PLAIN, the server-final message for SCRAM).
    Done {
        principal_name: String,
        token: Vec<u8>,
    },
}

/// Why an exchange failed. Each ends the exchange; the connection answers with
/// [`SaslError::error_code`] and [`SaslError::client_message`], then closes, as Kafka does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// A SCRAM exchange failed: an unknown user, a wrong proof, a malformed message. The
    /// reason is for the broker's log only; the client is told no more than Kafka tells it,
    /// so it cannot learn whether a user exists.
    #[error("{mechanism} authentication failed: {reason}")]
    ScramFailed {
        mechanism: &'static str,
        reason: String,
    },
    /// PLAIN: an unknown user or a wrong password, not told apart.
    #[error("Authentication failed: Invalid username or password")]
    InvalidUsernameOrPassword,
    #[error("Authentication failed: username not specified")]
    UsernameNotSpecified,
    #[error("Authentication failed: password not specified")]
    PasswordNotSpecified,
    /// PLAIN: the token is not `authzid NUL authcid NUL passwd`.
    #[error("Invalid SASL/PLAIN response: expected 3 tokens, got {0}")]
    PlainTokenCount(usize),
    /// The client asked to act as another user than the one it authenticates as.
    #[error("Authentication failed: Client requested an authorization id that is different from username")]
    AuthorizationIdMismatch,
    /// A token after the exchange completed or failed.
    #[error("Unexpected challenge in Sasl server state {0}")]
    IllegalState(&'static str),
    #[error("SASL token of {bytes} bytes is larger than the {TOKEN_BYTES_MAX} bytes accepted")]
    TokenTooLarge { bytes: usize },
    /// OAUTHBEARER: the token was refused (the reason is for the log); the client is sent
    /// RFC 7628's error JSON.
    #[error("OAUTHBEARER token refused: {reason}")]
    OAuthBearerRefused { reason: String },
    /// OAUTHBEARER is enabled on the listener but no token validator is configured.
    #[error("OAUTHBEARER is not configured on this broker")]
    OAuthBearerUnavailable,
}

/// RFC 7628's error for a refused token, sent as the challenge and then as the message.
pub const OAUTHBEARER_INVALID_TOKEN: &str = r#"{"status":"invalid_token"}"#;

impl SaslError {
    /// The Kafka error code of the SaslAuthenticate response.
    pub fn error_code(&self) -> ResponseError {
        match self {
            SaslError::ScramFailed { .. } => ResponseError::SaslAuthenticationFailed,
            SaslError::InvalidUsernameOrPassword => ResponseError::SaslAuthenticationFailed,
            SaslError::UsernameNotSpecified => ResponseError::SaslAuthenticationFailed,
            SaslError::PasswordNotSpecified => ResponseError::SaslAuthenticationFailed,
            SaslError::PlainTokenCount(_) => ResponseError::SaslAuthenticationFailed,
            SaslError::AuthorizationIdMismatch => ResponseError::SaslAuthenticationFailed,
            SaslError::IllegalState(_) => ResponseError::IllegalSaslState,
            SaslError::TokenTooLarge { .. } => ResponseError::SaslAuthenticationFailed,
            SaslError::OAuthBearerRefused { .. } => ResponseError::SaslAuthenticationFailed,
            SaslError::OAuthBearerUnavailable => ResponseError::SaslAuthenticationFailed,
        }
    }

    /// The sentence the client is sent: Kafka's own where Kafka sends one.
    pub fn client_message(&self) -> String {
        match self {
            SaslError::ScramFailed { mechanism, .. } => format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
            ),
            SaslError::InvalidUsernameOrPassword
            | SaslError::UsernameNotSpecified
            | SaslError::PasswordNotSpecified
            | SaslError::PlainTokenCount(_)
            | SaslError::AuthorizationIdMismatch
            | SaslError::IllegalState(_)
            | SaslError::TokenTooLarge { .. }
            | SaslError::OAuthBearerUnavailable => self.to_string(),
            SaslError::OAuthBearerRefused { .. } => OAUTHBEARER_INVALID_TOKEN.to_string(),
        }
    }
}

/// A SCRAM server nonce from random bytes (at least 16 are advised): base64, so printable
/// and free of commas.
pub fn server_nonce(random_bytes: &[u8]) -> String {
    BASE64.encode(random_bytes)
}

/// One SASL exchange on one connection.
pub struct Exchange {
    mechanism: Mechanism,
    server_nonce: String,
    state: State,
    /// When the credential it authenticated with expires (an OAUTHBEARER token's `exp`).
    credential_expires_ms: Option<i64>,
}

enum State {
    /// Waiting for the client's first token.
    Start,
    /// SCRAM: the server-first message went out; waiting for the client-final message.
    ScramFinal(Box<scram::AwaitingFinal>),
    /// OAUTHBEARER: the error challenge went out; waiting for the client's `\x01`.
    OAuthErrorSent {
        reason: String,
    },
    Complete,
    Failed,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Start => "START",
            State::ScramFinal(_) => "RECEIVE_CLIENT_FINAL_MESSAGE",
            State::OAuthErrorSent { .. } => "ERROR_SENT",
            State::Complete => "COMPLETE",
            State::Failed => "FAILED",
        };
        f.debug_struct("Exchange")
            .field("mechanism", &self.mechanism)
            .field("state", &state)
            .finish()
    }
}

impl Exchange {
    /// Starts an exchange. `server_nonce` is this server's part of the SCRAM nonce:
    /// non-empty, printable ASCII, without ','; PLAIN ignores it.
    pub fn new(mechanism: Mechanism, server_nonce: String) -> Exchange {
        if mechanism.scram().is_some() {
            assert!(
                scram::is_valid_nonce(&server_nonce),
                "a SCRAM server nonce is printable ASCII without ','"
            );
        }
        Exchange {
            mechanism,
            server_nonce,
            state: State::Start,
            credential_expires_ms: None,
        }
    }

    /// When the credential of a completed exchange expires, if it does (OAUTHBEARER).
    pub fn credential_expires_ms(&self) -> Option<i64> {
        self.credential_expires_ms
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Takes the client's next token. An error ends the exchange: any later step fails
    /// with [`SaslError::IllegalState`].
    pub fn step(&mut self, token: &[u8], store: &dyn CredentialStore) -> Result<Step, SaslError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let result = self.advance(state, token, store);
        if let Err(e) = &result {
            tracing::debug!(mechanism = self.mechanism.name(), error = %e, "SASL exchange failed");
        }
        result
    }

    /// One transition; `self.state` is `Failed` unless this sets it otherwise.
    fn advance(
        &mut self,
        state: State,
        token: &[u8],
        store: &dyn CredentialStore,
    ) -> Result<Step, SaslError> {
        match state {
            State::Complete => {
                self.state = State::Complete;
                return Err(SaslError::IllegalState("COMPLETE"));
            }
            State::Failed => return Err(SaslError::IllegalState("FAILED")),
            State::Start | State::ScramFinal(_) | State::OAuthErrorSent { .. } => {}
        }
        if token.len() > TOKEN_BYTES_MAX {
            return Err(SaslError::TokenTooLarge { bytes: token.len() });
        }
        if self.mechanism == Mechanism::OAuthBearer {
            return self.oauth_step(state, token, store);
        }
        match (state, self.mechanism.scram()) {
            (State::OAuthErrorSent { .. }, _) => Err(SaslError::IllegalState("ERROR_SENT")),
            (State::Start, None) => {
                let principal_name = plain::authenticate(token, store)?;
                self.state = State::Complete;
                Ok(Step::Done {
                    principal_name,
                    token: Vec::new(),
                })
            }
            (State::Start, Some(m)) => {
                let (awaiting, server_first) =
                    scram::client_first(m, token, &self.server_nonce, store)?;
                self.state = State::ScramFinal(Box::new(awaiting));
                Ok(Step::Challenge(server_first))
            }
            (State::ScramFinal(awaiting), _) => {
                let (principal_name, server_final) = scram::client_final(*awaiting, token)?;
                self.state = State::Complete;
                Ok(Step::Done {
                    principal_name,
                    token: server_final,
                })
            }
            (State::Complete | State::Failed, _) => unreachable!("handled above"),
        }
    }

    /// OAUTHBEARER: one message with the token; a refused one gets the error challenge,
    /// and the client's `\x01` after it ends the exchange.
    fn oauth_step(
        &mut self,
        state: State,
        token: &[u8],
        store: &dyn CredentialStore,
    ) -> Result<Step, SaslError> {
        match state {
            State::Start => match store.oauth(token) {
                None => Err(SaslError::OAuthBearerUnavailable),
                Some(Ok(valid)) => {
                    self.state = State::Complete;
                    self.credential_expires_ms = Some(valid.expires_ms);
                    Ok(Step::Done {
                        principal_name: valid.principal_name,
                        token: Vec::new(),
                    })
                }
                Some(Err(e)) => {
                    self.state = State::OAuthErrorSent {
                        reason: e.to_string(),
                    };
                    Ok(Step::Challenge(
                        OAUTHBEARER_INVALID_TOKEN.as_bytes().to_vec(),
                    ))
                }
            },
            State::OAuthErrorSent { reason } => Err(SaslError::OAuthBearerRefused { reason }),
            State::ScramFinal(_) | State::Complete | State::Failed => {
                Err(SaslError::IllegalState("FAILED"))
            }
        }
    }
}

#[cfg(test)]
mod tests;
