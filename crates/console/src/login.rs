//! Who is calling: the HTTP API's and the console's login.
//!
//! While the broker runs without security (every Kafka listener PLAINTEXT and the
//! authorizer off) nobody logs in and every caller is `User:ANONYMOUS`, allowed everything.
//! Once security is on, every route asks for HTTP Basic credentials, a user name and
//! password checked against the broker's SCRAM credentials exactly as SASL/PLAIN checks
//! them (the same users `kafka-configs --entity-type users` manages); the caller is then
//! `User:<name>` from its address, and the routes apply the ACLs to it as the Kafka APIs do
//! ([`crate::api::authorize`]). A browser asks for the user and password itself, on the
//! `WWW-Authenticate` challenge.
//!
//! Checking a password costs the credential's PBKDF2 iterations (4096 or more), too much
//! for every request of a page, so a password once verified is remembered as a keyed
//! SHA-256 digest (the key drawn at start, so the digest is of no use outside this process)
//! beside the credential it was checked against: a later request with the same password is
//! accepted while the user's credential is still that one, and a changed or deleted
//! credential refuses it at once. Digests are compared in constant time.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use weir_broker::authz::Access;
use weir_broker::security::listener::SecurityProtocol;
use weir_broker::security::principal::Principal;
use weir_broker::security::sasl::{plain, CredentialStore};
use weir_broker::security::session::FAILED_AUTHENTICATION_DELAY;
use weir_broker::state::BrokerState;
use weir_meta::scram::{ScramCredential, ScramMechanism};

use crate::errors::HttpError;
use crate::https::Peer;

/// The challenge of a 401: HTTP Basic, with the realm browsers show in their login dialog.
pub const CHALLENGE: &str = r#"Basic realm="weir", charset="UTF-8""#;
/// Verified passwords remembered at once; past it the memory starts again.
pub const VERIFIED_MAX: usize = 1_024;

/// A password verified against a credential.
struct Verified {
    password_digest: [u8; 32],
    credential: ScramCredential,
}

pub struct Login {
    broker: Arc<BrokerState>,
    required: bool,
    verified: Mutex<HashMap<String, Verified>>,
    /// Keys the digests of verified passwords.
    digest_key: [u8; 32],
}

impl Login {
    /// Login is required when the broker's security is on: a Kafka listener other than
    /// PLAINTEXT, or the ACL authorizer.
    pub fn for_broker(broker: &Arc<BrokerState>) -> Arc<Login> {
        let required = broker.authorizer_enabled()
            || broker
                .config
                .listeners
                .iter()
                .any(|l| l.protocol != SecurityProtocol::Plaintext);
        Arc::new(Login {
            broker: Arc::clone(broker),
            required,
            verified: Mutex::new(HashMap::new()),
            digest_key: rand::random(),
        })
    }

    /// The user's strongest credential, the one PLAIN checks passwords against.
    fn credential(&self, user: &str) -> Option<ScramCredential> {
        [ScramMechanism::Sha512, ScramMechanism::Sha256]
            .into_iter()
            .find_map(|m| self.broker.scram(user, m))
    }

    /// Whether `password` is the user's, from memory when it was verified against the
    /// credential the user still has.
    async fn verify(self: &Arc<Login>, user: &str, password: &str) -> bool {
        let digest: [u8; 32] = Sha256::new()
            .chain_update(self.digest_key)
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        let Some(current) = self.credential(user) else {
            return false;
        };
        if let Some(known) = self.verified.lock().get(user) {
            if known.credential == current && bool::from(known.password_digest.ct_eq(&digest)) {
                return true;
            }
        }
        let token = format!("\0{user}\0{password}");
        let broker = Arc::clone(&self.broker);
        let verified = tokio::task::spawn_blocking(move || {
            plain::authenticate(token.as_bytes(), &*broker).is_ok()
        })
        .await
        .unwrap_or(false);
        if verified {
            let mut memory = self.verified.lock();
            if memory.len() >= VERIFIED_MAX {
                memory.clear();
            }
            memory.insert(
                user.to_string(),
                Verified {
                    password_digest: digest,
                    credential: current,
                },
            );
        }
        verified
    }
}

/// `Authorization: Basic base64(user:password)`, or None when absent or not Basic.
fn basic_credentials(req: &Request) -> Option<Result<(String, String), ()>> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    Some(
        decoded
            .and_then(|d| {
                d.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            })
            .ok_or(()),
    )
}

/// A 401 with the challenge that makes a browser ask for the user and password.
fn challenge(code: &'static str, message: &str) -> Response {
    let mut response = HttpError::new(StatusCode::UNAUTHORIZED, code, message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(CHALLENGE),
    );
    response
}

/// The middleware in front of every route: decides who calls and hands the routes its
/// [`Access`] as a request extension.
pub async fn authenticate(
    State(login): State<Arc<Login>>,
    mut req: Request,
    next: Next,
) -> Response {
    let host = req
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0 .0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let principal = if !login.required {
        Principal::anonymous()
    } else {
        match basic_credentials(&req) {
            None => {
                return challenge(
                    "login_required",
                    "This broker runs with security on: log in with the user name and password of one of its SCRAM users (HTTP Basic).",
                )
            }
            Some(Err(())) => {
                return challenge(
                    "login_failed",
                    "The Authorization header is not Basic base64(user:password).",
                )
            }
            Some(Ok((user, password))) => {
                if user.is_empty() || !login.verify(&user, &password).await {
                    // As a failed SASL login is answered late, so guessing stays slow.
                    tokio::time::sleep(FAILED_AUTHENTICATION_DELAY).await;
                    return challenge("login_failed", "The user name or password is wrong.");
                }
                Principal::user(user)
            }
        }
    };
    req.extensions_mut()
        .insert(Access::new(&login.broker, principal, host));
    next.run(req).await
}
