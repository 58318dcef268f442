//! The server side of SCRAM (RFC 5802) with SHA-256 or SHA-512 (RFC 7677), as Kafka's
//! brokers speak it:
//!
//! ```text
//! client-first  n,[a=authzid],n=user,r=cnonce[,ext=value...]
//! server-first  r=cnonce+snonce,s=base64(salt),i=iterations
//! client-final  c=base64(gs2 header),r=cnonce+snonce[,ext=value...],p=base64(proof)
//! server-final  v=base64(ServerSignature)
//! ```
//!
//! Kafka's limits are kept: no channel binding (the gs2 header is `n,` only), an
//! authorization id must equal the user, and Kafka's `tokenauth` extension (delegation
//! tokens) is refused since weir has none; other extensions are ignored. The AuthMessage is
//! built from the messages exactly as they were received.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use weir_meta::scram::{ScramCredential, ScramMechanism, ITERATIONS_MIN};

use super::{CredentialStore, SaslError};

/// Kafka's extension that marks a delegation-token login.
const TOKEN_AUTH_EXTENSION: &str = "tokenauth";

/// What the server keeps between its first message and the client's final one.
pub struct AwaitingFinal {
    mechanism: ScramMechanism,
    user: String,
    credential: ScramCredential,
    /// `n,,` or `n,a=...,` as received: the client-final `c=` must carry exactly this.
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    /// Client nonce followed by server nonce.
    nonce: String,
}

fn failed(mechanism: ScramMechanism, reason: impl Into<String>) -> SaslError {
    SaslError::ScramFailed {
        mechanism: mechanism.name(),
        reason: reason.into(),
    }
}

/// A nonce as RFC 5802 allows it: printable ASCII except ','.
pub fn is_valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Undoes the escaping of a SCRAM user name: `=2C` is ',' and `=3D` is '='; any other '='
/// (and an empty or NUL-holding name) is malformed.
fn unescape_name(name: &str) -> Option<String> {
    if name.is_empty() || name.contains('\0') {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i..i + 3)?;
        match escape {
            "=2C" => out.push(','),
            "=3D" => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// Extensions (`key=value` with an alphabetic key and a non-empty value), or None if one
/// is malformed.
fn parse_extensions<'a>(fields: impl Iterator<Item = &'a str>) -> Option<Vec<(&'a str, &'a str)>> {
    fields
        .map(|f| {
            let (key, value) = f.split_once('=')?;
            let key_ok = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphabetic());
            (key_ok && !value.is_empty()).then_some((key, value))
        })
        .collect()
}

/// The client-first message: finds the user's credential and answers with the
/// server-first message.
pub fn client_first(
    mechanism: ScramMechanism,
    token: &[u8],
    server_nonce: &str,
    store: &dyn CredentialStore,
) -> Result<(AwaitingFinal, Vec<u8>), SaslError> {
    let malformed = || failed(mechanism, "invalid SCRAM client first message format");
    let message = std::str::from_utf8(token).map_err(|_| malformed())?;

    // 1. The gs2 header: no channel binding, and an optional authorization id.
    let rest = message.strip_prefix("n,").ok_or_else(malformed)?;
    let (authzid_field, bare) = rest.split_once(',').ok_or_else(malformed)?;
    let authzid = match authzid_field {
        "" => String::new(),
        field => {
            let escaped = field.strip_prefix("a=").ok_or_else(malformed)?;
            unescape_name(escaped).ok_or_else(malformed)?
        }
    };
    let gs2_header = format!("n,{authzid_field},");

    // 2. The bare message: user, nonce, then extensions. Kafka supports no mandatory
    //    extension, so a reserved `m=` fails as RFC 5802 requires.
    let mut fields = bare.split(',');
    let user_field = fields.next().ok_or_else(malformed)?;
    let user = user_field
        .strip_prefix("n=")
        .and_then(unescape_name)
        .ok_or_else(malformed)?;
    let client_nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .filter(|n| is_valid_nonce(n))
        .ok_or_else(malformed)?;
    let extensions = parse_extensions(fields).ok_or_else(malformed)?;
    let token_auth = extensions
        .iter()
        .any(|(k, v)| *k == TOKEN_AUTH_EXTENSION && v.eq_ignore_ascii_case("true"));
    if token_auth {
        return Err(failed(mechanism, "delegation tokens are not supported"));
    }

    // 3. The credential, then the authorization id, in Kafka's order.
    let credential = store
        .scram(&user, mechanism)
        .ok_or_else(|| failed(mechanism, format!("no credential for user {user:?}")))?;
    if !authzid.is_empty() && authzid != user {
        return Err(SaslError::AuthorizationIdMismatch);
    }
    if credential.iterations < ITERATIONS_MIN {
        return Err(failed(
            mechanism,
            format!(
                "iterations {} is less than the minimum {ITERATIONS_MIN}",
                credential.iterations
            ),
        ));
    }

    // 4. The server-first message.
    let nonce = format!("{client_nonce}{server_nonce}");
    let server_first = format!(
        "r={nonce},s={},i={}",
        BASE64.encode(&credential.salt),
        credential.iterations
    );
    let reply = server_first.clone().into_bytes();
    Ok((
        AwaitingFinal {
            mechanism,
            user,
            credential,
            gs2_header,
            client_first_bare: bare.to_string(),
            server_first,
            nonce,
        },
        reply,
    ))
}

/// The client-final message: checks the proof and answers with the server-final
/// message. Returns the principal name and that message.
pub fn client_final(awaiting: AwaitingFinal, token: &[u8]) -> Result<(String, Vec<u8>), SaslError> {
    let m = awaiting.mechanism;
    let malformed = || failed(m, "invalid SCRAM client final message format");
    let message = std::str::from_utf8(token).map_err(|_| malformed())?;

    // 1. Split off the proof: base64 holds no ',' so the last `,p=` starts it.
    let proof_at = message.rfind(",p=").ok_or_else(malformed)?;
    let without_proof = &message[..proof_at];
    let proof = BASE64
        .decode(&message[proof_at + 3..])
        .map_err(|_| malformed())?;

    // 2. Channel binding, nonce, ignored extensions.
    let mut fields = without_proof.split(',');
    let binding = fields
        .next()
        .and_then(|f| f.strip_prefix("c="))
        .ok_or_else(malformed)?;
    let binding = BASE64.decode(binding).map_err(|_| malformed())?;
    let nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .ok_or_else(malformed)?;
    parse_extensions(fields).ok_or_else(malformed)?;
    if binding != awaiting.gs2_header.as_bytes() {
        return Err(failed(m, "channel binding does not repeat the gs2 header"));
    }
    if nonce != awaiting.nonce {
        return Err(failed(
            m,
            "invalid client nonce in the final client message",
        ));
    }

    // 3. The proof, over the messages as exchanged.
    let auth_message = format!(
        "{},{},{without_proof}",
        awaiting.client_first_bare, awaiting.server_first
    );
    if !awaiting
        .credential
        .verify_proof(m, auth_message.as_bytes(), &proof)
    {
        return Err(failed(m, "invalid client credentials"));
    }
    let signature = awaiting
        .credential
        .server_signature(m, auth_message.as_bytes());
    let server_final = format!("v={}", BASE64.encode(signature)).into_bytes();
    Ok((awaiting.user, server_final))
}
