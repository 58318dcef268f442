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
}

impl Mechanism {
    pub const ALL: [Mechanism; 3] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
    ];

    /// The name a client asks for in SaslHandshake.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// Exact and case-sensitive, as Kafka matches the handshake's mechanism.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The SCRAM hash behind a SCRAM mechanism; None for PLAIN.
    pub fn scram(self) -> Option<ScramMechanism> {
        match self {
            Mechanism::Plain => None,
            Mechanism::ScramSha256 => Some(ScramMechanism::Sha256),
            Mechanism::ScramSha512 => Some(ScramMechanism::Sha512),
        }
    }
}

/// Credential lookups an exchange needs (the broker implements it over its catalog).
pub trait CredentialStore {
    fn scram(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential>;
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
}

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
            | SaslError::TokenTooLarge { .. } => self.to_string(),
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
}

enum State {
    /// Waiting for the client's first token.
    Start,
    /// SCRAM: the server-first message went out; waiting for the client-final message.
    ScramFinal(Box<scram::AwaitingFinal>),
    Complete,
    Failed,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Start => "START",
            State::ScramFinal(_) => "RECEIVE_CLIENT_FINAL_MESSAGE",
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
        }
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
            State::Start | State::ScramFinal(_) => {}
        }
        if token.len() > TOKEN_BYTES_MAX {
            return Err(SaslError::TokenTooLarge { bytes: token.len() });
        }
        match (state, self.mechanism.scram()) {
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
}

#[cfg(test)]
mod tests;
