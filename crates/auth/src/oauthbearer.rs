//! SASL/OAUTHBEARER (RFC 7628) on the broker: the client's message carries a JSON Web
//! Token, checked here against the keys of a JWKS file: its signature (RS256/384/512,
//! ES256/384), its expiry (with a clock skew allowance), and, when configured, its issuer
//! and audience. The principal is the token's subject claim.
//!
//! Pure apart from reading the JWKS file: time comes in as `now_ms`. The key set is read
//! again when the file changes, at most once every [`JWKS_RELOAD_CHECK_INTERVAL`], so keys
//! can be rotated without a restart.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use parking_lot::Mutex;
use serde_json::Value;

/// How often the JWKS file is checked for a change.
pub const JWKS_RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Largest token accepted.
pub const TOKEN_BYTES_MAX: usize = 16 * 1024;
/// Most keys read from a JWKS file.
pub const JWKS_KEYS_MAX: usize = 64;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Why a token was refused. The message is the one logged; the client is told only that
/// the token is invalid, as RFC 7628 answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("the OAUTHBEARER message is malformed: {0}")]
    Malformed(&'static str),
    #[error("the token is malformed: {0}")]
    BadToken(&'static str),
    #[error("the token's algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("no key in the JWKS file matches the token (kid {0:?})")]
    NoKey(Option<String>),
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has no expiry")]
    NoExpiry,
    #[error("the token expired")]
    Expired,
    #[error("the token is not valid before its nbf time")]
    NotYetValid,
    #[error("the token's issuer is not the expected one")]
    Issuer,
    #[error("the token's audience does not include an expected one")]
    Audience,
    #[error("the token has no subject claim '{0}'")]
    NoSubject(String),
}

/// A public key of the set.
#[derive(Debug, Clone)]
enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed point, 0x04 || x || y, with its curve's bits.
    Ec {
        point: Vec<u8>,
        bits: u32,
    },
}

#[derive(Debug, Clone)]
struct Jwk {
    kid: Option<String>,
    key: PublicKey,
}

/// The keys of a JWKS document that weir can verify with.
#[derive(Debug, Clone)]
pub struct JwkSet(Vec<Jwk>);

impl JwkSet {
    pub fn parse(text: &str) -> anyhow::Result<JwkSet> {
        parse_jwks(text).map(JwkSet)
    }
}

/// Checks a client's OAUTHBEARER message against a key set at `now_ms`.
pub fn validate_message(
    message: &[u8],
    keys: &JwkSet,
    settings: &OAuthSettings,
    now_ms: i64,
) -> Result<ValidToken, OAuthError> {
    let token = bearer_token(message)?;
    validate(&token, &keys.0, settings, now_ms)
}

/// Parses a JWKS document; keys of kinds weir does not verify are left out.
fn parse_jwks(text: &str) -> anyhow::Result<Vec<Jwk>> {
    let doc: Value = serde_json::from_str(text)?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow::anyhow!("a JWKS document needs a \"keys\" array"))?;
    let field = |k: &Value, name: &str| -> Option<Vec<u8>> {
        B64URL
            .decode(k.get(name)?.as_str()?.trim_end_matches('='))
            .ok()
    };
    let mut out = Vec::new();
    for k in keys.iter().take(JWKS_KEYS_MAX) {
        let kid = k.get("kid").and_then(Value::as_str).map(str::to_string);
        let key = match k.get("kty").and_then(Value::as_str) {
            Some("RSA") => match (field(k, "n"), field(k, "e")) {
                (Some(n), Some(e)) => PublicKey::Rsa { n, e },
                _ => continue,
            },
            Some("EC") => {
                let bits = match k.get("crv").and_then(Value::as_str) {
                    Some("P-256") => 256,
                    Some("P-384") => 384,
                    _ => continue,
                };
                match (field(k, "x"), field(k, "y")) {
                    (Some(x), Some(y)) => {
                        let mut point = vec![4u8];
                        point.extend(x);
                        point.extend(y);
                        PublicKey::Ec { point, bits }
                    }
                    _ => continue,
                }
            }
            _ => continue,
        };
        out.push(Jwk { kid, key });
    }
    if out.is_empty() {
        anyhow::bail!("the JWKS document holds no RSA or EC (P-256, P-384) key");
    }
    Ok(out)
}

/// What the broker accepts, as `weir serve` was told it (Kafka's
/// `sasl.oauthbearer.*` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// The JWKS file (Kafka's `sasl.oauthbearer.jwks.endpoint.url`, as a file).
    pub jwks: PathBuf,
    /// `sasl.oauthbearer.expected.issuer`.
    pub expected_issuer: Option<String>,
    /// `sasl.oauthbearer.expected.audience`: the token must name one of them.
    pub expected_audience: Vec<String>,
    /// `sasl.oauthbearer.sub.claim.name`.
    pub sub_claim: String,
    /// `sasl.oauthbearer.clock.skew.seconds`, in ms.
    pub clock_skew_ms: i64,
}

impl OAuthSettings {
    pub fn new(jwks: PathBuf) -> OAuthSettings {
        OAuthSettings {
            jwks,
            expected_issuer: None,
            expected_audience: Vec::new(),
            sub_claim: "sub".to_string(),
            clock_skew_ms: 30_000,
        }
    }
}

/// A token that passed: who it names and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    pub principal_name: String,
    pub expires_ms: i64,
}

struct Loaded {
    keys: Vec<Jwk>,
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
}

/// The validator: settings and the current key set.
pub struct OAuthValidator {
    settings: OAuthSettings,
    loaded: Mutex<Loaded>,
}

impl std::fmt::Debug for OAuthValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthValidator")
            .field("settings", &self.settings)
            .finish()
    }
}

fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn load_keys(path: &std::path::Path) -> anyhow::Result<Vec<Jwk>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the JWKS file {}: {e}; give it with --sasl-oauthbearer-jwks-file",
            path.display()
        )
    })?;
    parse_jwks(&text)
        .map_err(|e| anyhow::anyhow!("the JWKS file {} is not usable: {e}", path.display()))
}

impl OAuthValidator {
    /// Reads the key set now: a broker does not start with one that does not load.
    pub fn new(settings: OAuthSettings) -> anyhow::Result<OAuthValidator> {
        let keys = load_keys(&settings.jwks)?;
        Ok(OAuthValidator {
            loaded: Mutex::new(Loaded {
                keys,
                stamp: stamp(&settings.jwks),
                checked: Instant::now(),
            }),
            settings,
        })
    }

    fn keys(&self) -> Vec<Jwk> {
        let mut loaded = self.loaded.lock();
        if loaded.checked.elapsed() >= JWKS_RELOAD_CHECK_INTERVAL {
            loaded.checked = Instant::now();
            let now = stamp(&self.settings.jwks);
            if now != loaded.stamp {
                loaded.stamp = now;
                match load_keys(&self.settings.jwks) {
                    Ok(keys) => {
                        loaded.keys = keys;
                        tracing::info!(jwks = %self.settings.jwks.display(), "JWKS file changed: reloaded");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "JWKS file changed but does not load: keeping the previous keys")
                    }
                }
            }
        }
        loaded.keys.clone()
    }

    /// Checks the client's OAUTHBEARER message at `now_ms`.
    pub fn validate_message(&self, message: &[u8], now_ms: i64) -> Result<ValidToken, OAuthError> {
        let token = bearer_token(message)?;
        validate(&token, &self.keys(), &self.settings, now_ms)
    }

    /// The same at the wall clock's time.
    pub fn validate_now(&self, message: &[u8]) -> Result<ValidToken, OAuthError> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.validate_message(message, now_ms)
    }
}

/// The bearer token of a client's first message: `n,[a=authzid],` then `\x01`-separated
/// `key=value` pairs, one of them `auth=Bearer <token>`, and a final `\x01`.
pub fn bearer_token(message: &[u8]) -> Result<String, OAuthError> {
    if message.len() > TOKEN_BYTES_MAX {
        return Err(OAuthError::Malformed("the message is too large"));
    }
    let text = std::str::from_utf8(message).map_err(|_| OAuthError::Malformed("not UTF-8"))?;
    let rest = text
        .strip_prefix("n,")
        .or_else(|| text.strip_prefix("y,"))
        .ok_or(OAuthError::Malformed("no GS2 header"))?;
    let (_authzid, rest) = rest
        .split_once(',')
        .ok_or(OAuthError::Malformed("no GS2 header"))?;
    let rest = rest
        .strip_prefix('\u{1}')
        .and_then(|r| r.strip_suffix("\u{1}\u{1}"))
        .ok_or(OAuthError::Malformed(
            "the key-value pairs are not framed by \\x01",
        ))?;
    for pair in rest.split('\u{1}') {
        if let Some(value) = pair.strip_prefix("auth=") {
            let (scheme, token) = value
                .split_once(' ')
                .ok_or(OAuthError::Malformed("auth is not 'Bearer <token>'"))?;
            if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
                return Err(OAuthError::Malformed("auth is not 'Bearer <token>'"));
            }
            return Ok(token.trim().to_string());
        }
    }
    Err(OAuthError::Malformed("no auth pair"))
}

fn json_part(part: &str) -> Result<Value, OAuthError> {
    let bytes = B64URL
        .decode(part.trim_end_matches('='))
        .map_err(|_| OAuthError::BadToken("a part is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| OAuthError::BadToken("a part is not JSON"))
}

fn verify(alg: &str, key: &PublicKey, message: &[u8], sig: &[u8]) -> bool {
    match (alg, key) {
        ("RS256" | "RS384" | "RS512", PublicKey::Rsa { n, e }) => {
            let params = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                _ => &signature::RSA_PKCS1_2048_8192_SHA512,
            };
            RsaPublicKeyComponents { n, e }
                .verify(params, message, sig)
                .is_ok()
        }
        ("ES256", PublicKey::Ec { point, bits: 256 }) => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, sig)
                .is_ok()
        }
        ("ES384", PublicKey::Ec { point, bits: 384 }) => {
            UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                .verify(message, sig)
                .is_ok()
        }
        _ => false,
    }
}

/// Seconds since the epoch in a numeric claim, as ms.
fn time_claim(claims: &Value, name: &str) -> Option<i64> {
    let v = claims.get(name)?;
    let secs = v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))?;
    secs.checked_mul(1000)
}

fn validate(
    token: &str,
    keys: &[Jwk],
    settings: &OAuthSettings,
    now_ms: i64,
) -> Result<ValidToken, OAuthError> {
    // 1. Shape: three base64url parts.
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OAuthError::BadToken("a JWT has three parts"));
    };
    let header = json_part(h)?;
    let claims = json_part(p)?;
    let sig = B64URL
        .decode(s)
        .map_err(|_| OAuthError::BadToken("the signature is not base64url"))?;
    // 2. Signature, by a key of the set (the one named by kid, when the token names one).
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("none");
    if !matches!(alg, "RS256" | "RS384" | "RS512" | "ES256" | "ES384") {
        return Err(OAuthError::Algorithm(alg.to_string()));
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_string);
    let candidates: Vec<&Jwk> = keys
        .iter()
        .filter(|k| kid.is_none() || k.kid == kid)
        .collect();
    if candidates.is_empty() {
        return Err(OAuthError::NoKey(kid));
    }
    let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
    if !candidates.iter().any(|k| verify(alg, &k.key, signed, &sig)) {
        return Err(OAuthError::Signature);
    }
    // 3. Time, with the allowed skew.
    let exp = time_claim(&claims, "exp").ok_or(OAuthError::NoExpiry)?;
    if now_ms >= exp.saturating_add(settings.clock_skew_ms) {
        return Err(OAuthError::Expired);
    }
    if let Some(nbf) = time_claim(&claims, "nbf") {
        if now_ms.saturating_add(settings.clock_skew_ms) < nbf {
            return Err(OAuthError::NotYetValid);
        }
    }
    // 4. Issuer and audience, when configured.
    if let Some(iss) = &settings.expected_issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(iss.as_str()) {
            return Err(OAuthError::Issuer);
        }
    }
    if !settings.expected_audience.is_empty() {
        let aud: Vec<&str> = match claims.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !aud
            .iter()
            .any(|a| settings.expected_audience.iter().any(|e| e == a))
        {
            return Err(OAuthError::Audience);
        }
    }
    // 5. Who.
    let principal_name = claims
        .get(&settings.sub_claim)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| OAuthError::NoSubject(settings.sub_claim.clone()))?
        .to_string();
    Ok(ValidToken {
        principal_name,
        expires_ms: exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    struct Signer {
        pair: EcdsaKeyPair,
        kid: &'static str,
    }

    impl Signer {
        fn new(kid: &'static str) -> Signer {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            Signer {
                pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                    .unwrap(),
                kid,
            }
        }

        fn jwk(&self) -> Jwk {
            Jwk {
                kid: Some(self.kid.to_string()),
                key: PublicKey::Ec {
                    point: self.pair.public_key().as_ref().to_vec(),
                    bits: 256,
                },
            }
        }

        fn token(&self, claims: Value) -> String {
            let header = serde_json::json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"});
            let signed = format!(
                "{}.{}",
                B64URL.encode(header.to_string()),
                B64URL.encode(claims.to_string())
            );
            let sig = self
                .pair
                .sign(&SystemRandom::new(), signed.as_bytes())
                .unwrap();
            format!("{signed}.{}", B64URL.encode(sig.as_ref()))
        }
    }

    fn settings() -> OAuthSettings {
        let mut s = OAuthSettings::new(PathBuf::from("unused"));
        s.expected_issuer = Some("https://issuer.example".into());
        s.expected_audience = vec!["weir".into()];
        s
    }

    const NOW_MS: i64 = 1_800_000_000_000;

    fn claims(exp_s: i64) -> Value {
        serde_json::json!({"sub": "alice", "exp": exp_s, "iat": NOW_MS / 1000, "iss": "https://issuer.example", "aud": ["other", "weir"]})
    }

    #[test]
    fn a_signed_current_token_names_its_subject() {
        // Goal: a good token passes and yields its subject and expiry.
        let s = Signer::new("k1");
        let t = s.token(claims(NOW_MS / 1000 + 60));
        let ok = validate(&t, &[s.jwk()], &settings(), NOW_MS).unwrap();
        assert_eq!(ok.principal_name, "alice");
        assert_eq!(ok.expires_ms, NOW_MS + 60_000);
    }

    #[test]
    fn expired_foreign_tampered_or_misaddressed_tokens_are_refused() {
        // Goal: each failure is caught for its own reason.
        let s = Signer::new("k1");
        let keys = [s.jwk()];
        let st = settings();
        let expired = s.token(claims(NOW_MS / 1000 - 31));
        assert_eq!(
            validate(&expired, &keys, &st, NOW_MS),
            Err(OAuthError::Expired)
        );
        let within_skew = s.token(claims(NOW_MS / 1000 - 29));
        assert!(validate(&within_skew, &keys, &st, NOW_MS).is_ok());
        let other = Signer::new("k1");
        let foreign = other.token(claims(NOW_MS / 1000 + 60));
        assert_eq!(
            validate(&foreign, &keys, &st, NOW_MS),
            Err(OAuthError::Signature)
        );
        let unknown_kid = Signer::new("k2").token(claims(NOW_MS / 1000 + 60));
        assert_eq!(
            validate(&unknown_kid, &keys, &st, NOW_MS),
            Err(OAuthError::NoKey(Some("k2".into())))
        );
        let good = s.token(claims(NOW_MS / 1000 + 60));
        let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
        let mut c = claims(NOW_MS / 1000 + 60);
        c["sub"] = "mallory".into();
        parts[1] = B64URL.encode(c.to_string());
        assert_eq!(
            validate(&parts.join("."), &keys, &st, NOW_MS),
            Err(OAuthError::Signature)
        );
        let mut c = claims(NOW_MS / 1000 + 60);
        c["iss"] = "https://elsewhere".into();
        assert_eq!(
            validate(&s.token(c), &keys, &st, NOW_MS),
            Err(OAuthError::Issuer)
        );
        let mut c = claims(NOW_MS / 1000 + 60);
        c["aud"] = "other".into();
        assert_eq!(
            validate(&s.token(c), &keys, &st, NOW_MS),
            Err(OAuthError::Audience)
        );
        let mut c = claims(NOW_MS / 1000 + 60);
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            validate(&s.token(c), &keys, &st, NOW_MS),
            Err(OAuthError::NoExpiry)
        );
        let unsigned = format!(
            "{}.{}.",
            B64URL.encode(r#"{"alg":"none"}"#),
            B64URL.encode(claims(NOW_MS / 1000 + 60).to_string())
        );
        assert_eq!(
            validate(&unsigned, &keys, &st, NOW_MS),
            Err(OAuthError::Algorithm("none".into()))
        );
        for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert!(validate(junk, &keys, &st, NOW_MS).is_err());
        }
    }

    #[test]
    fn the_client_message_carries_the_token_between_separators() {
        // Goal: RFC 7628's framing is read, extensions skipped, bad framing refused.
        assert_eq!(
            bearer_token(b"n,,\x01auth=Bearer abc.def.ghi\x01\x01").unwrap(),
            "abc.def.ghi"
        );
        assert_eq!(
            bearer_token(b"n,a=alice,\x01host=x\x01auth=bearer t.t.t\x01ext=1\x01\x01").unwrap(),
            "t.t.t"
        );
        for bad in [
            &b""[..],
            b"n,,auth=Bearer x",
            b"n,,\x01auth=Basic x\x01\x01",
            b"n,,\x01host=x\x01\x01",
            b"\xff\xfe",
        ] {
            assert!(bearer_token(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn jwks_documents_keep_the_keys_weir_verifies() {
        // Goal: RSA and P-256/P-384 keys are read; other kinds are skipped; none is an error.
        let doc = r#"{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},{"kty":"oct","k":"x"},{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}]}"#;
        let keys = parse_jwks(doc).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("r"));
        assert!(parse_jwks(r#"{"keys":[{"kty":"oct"}]}"#).is_err());
        assert!(parse_jwks("[]").is_err());
    }
}
