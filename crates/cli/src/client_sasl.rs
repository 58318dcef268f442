//! The client side of SASL for the CLI's connections: SaslHandshake, then SaslAuthenticate
//! with PLAIN (RFC 4616) or SCRAM-SHA-256/512 (RFC 5802, RFC 7677). The SCRAM exchange
//! checks the broker's final signature, so a broker that does not know the password
//! cannot pass for one that does.

use anyhow::{anyhow, bail};
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256, Sha512};
use weir_broker::security::sasl::Mechanism;

use crate::client::{sb, Connection};
use crate::client_security::SaslLogin;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Length of the client's SCRAM nonce.
const CLIENT_NONCE_CHARS: usize = 24;
/// Fewest and most PBKDF2 iterations accepted from a broker: fewer is weak, more is a
/// way to make the client spin.
const ITERATIONS_MIN: u32 = 4096;
const ITERATIONS_MAX: u32 = 1_000_000;

fn hmac(m: Mechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match m {
        Mechanism::ScramSha512 => {
            let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

fn hash(m: Mechanism, data: &[u8]) -> Vec<u8> {
    match m {
        Mechanism::ScramSha512 => Sha512::digest(data).to_vec(),
        _ => Sha256::digest(data).to_vec(),
    }
}

fn salted_password(m: Mechanism, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    match m {
        Mechanism::ScramSha512 => {
            pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password.as_bytes(), salt, iterations).to_vec()
        }
        _ => {
            pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password.as_bytes(), salt, iterations).to_vec()
        }
    }
}

/// A SCRAM user name with `,` and `=` escaped.
fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// One `k=value` attribute of a SCRAM message.
fn attribute<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .split(',')
        .find_map(|part| part.strip_prefix(key).and_then(|p| p.strip_prefix('=')))
}

/// Share of a session's lifetime after which the client renews it.
const REAUTHENTICATE_AT_SHARE: f64 = 0.85;

async fn step(conn: &mut Connection, token: Vec<u8>) -> anyhow::Result<Bytes> {
    let (r, _) = conn
        .call(&SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)))
        .await
        .map_err(|_| {
            anyhow!(
                "broker at {} closed the connection during SASL authentication",
                conn.address
            )
        })?;
    if r.error_code != 0 {
        let message = r.error_message.map(|m| m.to_string()).unwrap_or_default();
        bail!(
            "broker at {} refused the SASL login: {message} (error {}); check sasl.username and the password",
            conn.address,
            r.error_code
        );
    }
    conn.reauthenticate_at = (r.session_lifetime_ms > 0).then(|| {
        std::time::Instant::now()
            + std::time::Duration::from_millis(
                (r.session_lifetime_ms as f64 * REAUTHENTICATE_AT_SHARE) as u64,
            )
    });
    Ok(r.auth_bytes)
}

/// Authenticates `conn` as `login`.
pub async fn authenticate(conn: &mut Connection, login: &SaslLogin) -> anyhow::Result<()> {
    let m = login.mechanism;
    let (r, _) = conn
        .call(&SaslHandshakeRequest::default().with_mechanism(sb(m.name())))
        .await?;
    if r.error_code != 0 {
        let offered: Vec<String> = r.mechanisms.iter().map(|m| m.to_string()).collect();
        bail!(
            "broker at {} does not offer SASL mechanism {} (it offers {}); set -X sasl.mechanism to one of those",
            conn.address,
            m.name(),
            offered.join(", ")
        );
    }
    match m {
        Mechanism::Plain => {
            let mut token = Vec::new();
            token.push(0);
            token.extend_from_slice(login.username.as_bytes());
            token.push(0);
            token.extend_from_slice(login.password.as_bytes());
            step(conn, token).await?;
        }
        Mechanism::OAuthBearer => {
            bail!("the CLI does not log in with OAUTHBEARER; use PLAIN or SCRAM")
        }
        Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
            let nonce = Alphanumeric.sample_string(&mut rand::thread_rng(), CLIENT_NONCE_CHARS);
            let first_bare = format!("n={},r={nonce}", sasl_name(&login.username));
            let server_first = step(conn, format!("n,,{first_bare}").into_bytes()).await?;
            let server_first = std::str::from_utf8(&server_first)
                .map_err(|_| anyhow!("the broker's SCRAM message is not UTF-8"))?
                .to_string();
            let bad = || anyhow!("the broker's SCRAM message '{server_first}' is malformed");
            let combined = attribute(&server_first, "r").ok_or_else(bad)?;
            if !combined.starts_with(&nonce) || combined.len() == nonce.len() {
                bail!("the broker's SCRAM nonce does not extend the client's");
            }
            let salt = B64
                .decode(attribute(&server_first, "s").ok_or_else(bad)?)
                .map_err(|_| bad())?;
            let iterations: u32 = attribute(&server_first, "i")
                .and_then(|i| i.parse().ok())
                .ok_or_else(bad)?;
            if !(ITERATIONS_MIN..=ITERATIONS_MAX).contains(&iterations) {
                bail!("the broker asks for {iterations} SCRAM iterations, outside {ITERATIONS_MIN}..={ITERATIONS_MAX}");
            }
            let salted = salted_password(m, &login.password, &salt, iterations);
            let client_key = hmac(m, &salted, b"Client Key");
            let stored_key = hash(m, &client_key);
            let final_bare = format!("c=biws,r={combined}");
            let auth_message = format!("{first_bare},{server_first},{final_bare}");
            let signature = hmac(m, &stored_key, auth_message.as_bytes());
            let proof: Vec<u8> = client_key
                .iter()
                .zip(&signature)
                .map(|(a, b)| a ^ b)
                .collect();
            let server_final = step(
                conn,
                format!("{final_bare},p={}", B64.encode(proof)).into_bytes(),
            )
            .await?;
            let server_final = String::from_utf8_lossy(&server_final).to_string();
            let server_key = hmac(m, &salted, b"Server Key");
            let expected = B64.encode(hmac(m, &server_key, auth_message.as_bytes()));
            if attribute(&server_final, "v") != Some(expected.as_str()) {
                bail!(
                    "broker at {} did not prove it knows the password (SCRAM server signature mismatch)",
                    conn.address
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_keys_match_rfc_7677() {
        // Goal: the client's key derivation reproduces RFC 7677's SCRAM-SHA-256 example proof.
        let m = Mechanism::ScramSha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password(m, "pencil", &salt, 4096);
        let client_key = hmac(m, &salted, b"Client Key");
        let stored_key = hash(m, &client_key);
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let sig = hmac(m, &stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        assert_eq!(
            B64.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let server_key = hmac(m, &salted, b"Server Key");
        assert_eq!(
            B64.encode(hmac(m, &server_key, auth.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        assert_eq!(sasl_name("a=b,c"), "a=3Db=2Cc");
    }
}
