//! SCRAM credentials (RFC 5802, with the SHA-256 and SHA-512 hashes of RFC 7677): what
//! the catalog keeps per user and mechanism, the arithmetic that derives and checks them,
//! and the `--add-scram` syntax that seeds them at start.
//!
//! weir keeps no password. A credential is the salt, the iteration count and two keys
//! derived from the salted password (StoredKey and ServerKey), exactly what Kafka's
//! controller keeps, so a client's proof can be checked and the server can prove it knows
//! the credential, yet the password cannot be read back.
//!
//! Pure: no randomness. A random salt is drawn by the caller and handed in.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::MetaError;

/// Kafka's lowest accepted iteration count, for both mechanisms.
pub const ITERATIONS_MIN: i32 = 4096;
/// Kafka's highest accepted iteration count: each authentication with PLAIN, and each
/// credential made from a password, costs this many HMACs.
pub const ITERATIONS_MAX: i32 = 16384;
/// What `--add-scram` uses when no `iterations` is given, as Kafka's tool does.
pub const ITERATIONS_DEFAULT: i32 = 4096;
/// Longest salt kept. Kafka sets none; clients send 16 to 64 bytes, and the bound keeps a
/// credential small in a catalog that is rewritten on every change.
pub const SALT_BYTES_MAX: usize = 1024;
/// Longest salted password accepted from AlterUserScramCredentials. It is the output of
/// the mechanism's hash (32 or 64 bytes) for every real client.
pub const SALTED_PASSWORD_BYTES_MAX: usize = 1024;
/// Length of the random salt a caller should draw for `--add-scram` without `salt=`.
pub const BOOTSTRAP_SALT_BYTES: usize = 32;

/// A SCRAM mechanism, with Kafka's type numbers from the SCRAM credential APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// Exact and case-sensitive, as Kafka matches mechanism names.
    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's number for the mechanism in Describe/AlterUserScramCredentials (0 is
    /// Kafka's UNKNOWN).
    pub fn type_id(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_type(type_id: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL
            .into_iter()
            .find(|m| m.type_id() == type_id)
    }

    /// Output length of the mechanism's hash: the length of every key and proof.
    pub fn hash_bytes(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }

    /// H(data).
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// HMAC(key, data).
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    /// SaltedPassword := Hi(password, salt, iterations), which is PBKDF2 with this
    /// mechanism's HMAC. The password is used as its UTF-8 bytes, without SASLprep, as
    /// Kafka does. A count below one is taken as one.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: i32) -> Vec<u8> {
        let rounds = u32::try_from(iterations.max(1)).expect("positive");
        let mut out = vec![0u8; self.hash_bytes()];
        match self {
            ScramMechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out)
            }
            ScramMechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, &mut out)
            }
        }
        out
    }

    /// ClientKey := HMAC(SaltedPassword, "Client Key").
    pub fn client_key(self, salted_password: &[u8]) -> Vec<u8> {
        self.hmac(salted_password, b"Client Key")
    }

    /// ServerKey := HMAC(SaltedPassword, "Server Key").
    pub fn server_key(self, salted_password: &[u8]) -> Vec<u8> {
        self.hmac(salted_password, b"Server Key")
    }

    /// What a client sends as `p=`: ClientKey XOR HMAC(StoredKey, AuthMessage). The
    /// server never needs it; weir's own client and the tests do.
    pub fn client_proof(self, salted_password: &[u8], auth_message: &[u8]) -> Vec<u8> {
        let client_key = self.client_key(salted_password);
        let stored_key = self.hash(&client_key);
        let signature = self.hmac(&stored_key, auth_message);
        client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect()
    }
}

/// One user's credential for one mechanism, as Kafka's controller keeps it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    #[serde(with = "base64_bytes")]
    pub salt: Vec<u8>,
    pub iterations: i32,
    #[serde(with = "base64_bytes")]
    pub stored_key: Vec<u8>,
    #[serde(with = "base64_bytes")]
    pub server_key: Vec<u8>,
}

/// Keys stay out of logs, as Kafka hides them in its records' `toString`.
impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// The credential for a salted password (what AlterUserScramCredentials carries):
    /// StoredKey := H(ClientKey), ServerKey as RFC 5802 defines it.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: &[u8],
        salted_password: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: mechanism.hash(&mechanism.client_key(salted_password)),
            server_key: mechanism.server_key(salted_password),
        }
    }

    /// The credential for a password, salted here with `iterations` rounds.
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        salt: &[u8],
        iterations: i32,
    ) -> ScramCredential {
        let salted = mechanism.salted_password(password.as_bytes(), salt, iterations);
        ScramCredential::from_salted_password(mechanism, salt, &salted, iterations)
    }

    /// Whether `password` is the one this credential was made from (SASL/PLAIN checks a
    /// password this way). The keys are compared in constant time.
    pub fn verify_password(&self, mechanism: ScramMechanism, password: &str) -> bool {
        let salted = mechanism.salted_password(password.as_bytes(), &self.salt, self.iterations);
        let stored_key = mechanism.hash(&mechanism.client_key(&salted));
        bool::from(stored_key.ct_eq(&self.stored_key))
    }

    /// Whether a client's proof for `auth_message` shows it knows the salted password:
    /// ClientKey := proof XOR HMAC(StoredKey, AuthMessage) must hash to StoredKey.
    pub fn verify_proof(
        &self,
        mechanism: ScramMechanism,
        auth_message: &[u8],
        proof: &[u8],
    ) -> bool {
        let signature = mechanism.hmac(&self.stored_key, auth_message);
        if proof.len() != signature.len() {
            return false;
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        bool::from(mechanism.hash(&client_key).ct_eq(&self.stored_key))
    }

    /// ServerSignature := HMAC(ServerKey, AuthMessage), the `v=` of the server's final
    /// message.
    pub fn server_signature(&self, mechanism: ScramMechanism, auth_message: &[u8]) -> Vec<u8> {
        mechanism.hmac(&self.server_key, auth_message)
    }
}

/// Checks an iteration count against Kafka's bounds, with Kafka's words.
pub fn check_iterations(iterations: i32) -> Result<(), MetaError> {
    if iterations < ITERATIONS_MIN {
        return Err(MetaError::UnacceptableCredential(
            "Too few iterations".to_string(),
        ));
    }
    if iterations > ITERATIONS_MAX {
        return Err(MetaError::UnacceptableCredential(
            "Too many iterations".to_string(),
        ));
    }
    Ok(())
}

/// The secret of a `--add-scram` entry.
#[derive(Clone, PartialEq, Eq)]
pub enum BootstrapSecret {
    Password(String),
    /// Already salted (`saltedpassword=<base64>`, which requires `salt=`).
    SaltedPassword(Vec<u8>),
}

/// One `--add-scram` entry: `SCRAM-SHA-256=[name=alice,password=alice-secret]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramBootstrap {
    pub mechanism: ScramMechanism,
    pub user: String,
    /// None: the caller draws a random one.
    pub salt: Option<Vec<u8>>,
    pub iterations: i32,
    pub secret: BootstrapSecret,
}

/// The password stays out of logs.
impl std::fmt::Debug for ScramBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramBootstrap")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramBootstrap {
    /// The credential this entry stands for. `random_salt` is used when the entry named
    /// no salt; draw [`BOOTSTRAP_SALT_BYTES`] random bytes for it.
    pub fn credential(&self, random_salt: &[u8]) -> ScramCredential {
        let salt = self.salt.as_deref().unwrap_or(random_salt);
        match &self.secret {
            BootstrapSecret::Password(p) => {
                ScramCredential::from_password(self.mechanism, p, salt, self.iterations)
            }
            BootstrapSecret::SaltedPassword(s) => {
                ScramCredential::from_salted_password(self.mechanism, salt, s, self.iterations)
            }
        }
    }
}

/// Parses one `--add-scram` argument as Kafka's `kafka-storage.sh format` reads it:
/// `MECHANISM=[key=value,...]` with `name` and one of `password` or `saltedpassword`, and
/// optionally `salt` (base64) and `iterations`. A value may be wrapped in double quotes;
/// values cannot hold commas.
pub fn parse_add_scram(input: &str) -> Result<ScramBootstrap, MetaError> {
    let bad = |m: String| MetaError::InvalidScramBootstrap(m);
    let input = input.trim();
    let Some((mechanism_name, config)) = input.split_once('=') else {
        return Err(bad(format!(
            "Failed to find equals sign in SCRAM argument '{input}'"
        )));
    };
    let mechanism = ScramMechanism::from_name(mechanism_name).ok_or_else(|| {
        bad(format!(
            "The add-scram mechanism {mechanism_name} is not supported."
        ))
    })?;
    let config = config
        .strip_prefix('[')
        .ok_or_else(|| bad("Expected configuration string to start with [".to_string()))?;
    let config = config
        .strip_suffix(']')
        .ok_or_else(|| bad("Expected configuration string to end with ]".to_string()))?;
    let mut components = BTreeMap::new();
    for component in config.split(',') {
        let Some((key, value)) = component.split_once('=') else {
            return Err(bad(format!(
                "No equals sign found in SCRAM component: {component}"
            )));
        };
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(unquoted) => unquoted,
            None => value,
        };
        components.insert(key.trim().to_string(), value.to_string());
    }
    let user = components
        .remove("name")
        .ok_or_else(|| bad("You must supply 'name' to add-scram".to_string()))?;
    let salt = match components.remove("salt") {
        None => None,
        Some(s) => Some(
            BASE64
                .decode(&s)
                .map_err(|_| bad(format!("Failed to decode given salt: {s}")))?,
        ),
    };
    let iterations = match components.remove("iterations") {
        None => ITERATIONS_DEFAULT,
        Some(s) => s
            .parse::<i32>()
            .map_err(|_| bad(format!("Failed to parse iterations count: {s}")))?,
    };
    let secret = match (
        components.remove("password"),
        components.remove("saltedpassword"),
    ) {
        (Some(p), _) => BootstrapSecret::Password(p),
        (None, None) => {
            return Err(bad(
                "You must supply one of 'password' or 'saltedpassword' to add-scram".to_string(),
            ))
        }
        (None, Some(_)) if salt.is_none() => {
            return Err(bad(
                "You must supply 'salt' with 'saltedpassword' to add-scram".to_string(),
            ))
        }
        (None, Some(s)) => BootstrapSecret::SaltedPassword(
            BASE64
                .decode(&s)
                .map_err(|_| bad(format!("Failed to decode given saltedPassword: {s}")))?,
        ),
    };
    if !components.is_empty() {
        let unknown: Vec<&str> = components.keys().map(String::as_str).collect();
        return Err(bad(format!(
            "Unknown SCRAM configurations: {}",
            unknown.join(", ")
        )));
    }
    let mechanism_words = format!("for add-scram using {}", mechanism.name());
    if iterations < ITERATIONS_MIN {
        return Err(bad(format!(
            "The 'iterations' value must be >= {ITERATIONS_MIN} {mechanism_words}"
        )));
    }
    if iterations > ITERATIONS_MAX {
        return Err(bad(format!(
            "The 'iterations' value must be <= {ITERATIONS_MAX} {mechanism_words}"
        )));
    }
    if user.is_empty() {
        return Err(bad("The 'name' of add-scram must not be empty".to_string()));
    }
    if salt.as_ref().is_some_and(|s| s.len() > SALT_BYTES_MAX) {
        return Err(bad(format!(
            "The 'salt' of add-scram is longer than {SALT_BYTES_MAX} bytes"
        )));
    }
    Ok(ScramBootstrap {
        mechanism,
        user,
        salt,
        iterations,
        secret,
    })
}

/// Bytes as standard base64 strings in the catalog file, so it stays readable.
mod base64_bytes {
    use super::BASE64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        BASE64.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        BASE64.decode(s).unwrap()
    }

    #[test]
    fn rfc7677_vector_derives_the_rfc_proof_and_signature() {
        // Goal: the arithmetic reproduces RFC 7677's SCRAM-SHA-256 example: the client
        // proof the RFC's client sends is accepted, and the server signature is the RFC's.
        let m = ScramMechanism::Sha256;
        let salt = b64("W22ZaJ0SNY7soEsUEjb6gQ==");
        let cred = ScramCredential::from_password(m, "pencil", &salt, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let proof = b64("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        assert!(cred.verify_proof(m, auth_message.as_bytes(), &proof));
        assert_eq!(
            cred.server_signature(m, auth_message.as_bytes()),
            b64("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        );
        let salted = m.salted_password(b"pencil", &salt, 4096);
        assert_eq!(m.client_proof(&salted, auth_message.as_bytes()), proof);
        let mut wrong = proof.clone();
        wrong[0] ^= 1;
        assert!(!cred.verify_proof(m, auth_message.as_bytes(), &wrong));
        assert!(!cred.verify_proof(m, auth_message.as_bytes(), &proof[..31]));
    }

    #[test]
    fn sha512_keys_match_an_independent_computation() {
        // Goal: SCRAM-SHA-512 derives the keys that Python's hashlib/hmac derive for the
        // same password, salt and count (computed once outside weir and pasted here).
        let m = ScramMechanism::Sha512;
        let cred = ScramCredential::from_password(m, "alice-secret", b"NaCl-salt", 4096);
        assert_eq!(cred.stored_key, b64(SHA512_STORED_KEY));
        assert_eq!(cred.server_key, b64(SHA512_SERVER_KEY));
    }

    const SHA512_STORED_KEY: &str =
        "6IWdnu0lw66TF1OzhW5AJbWYSYPKBE6DnLzy8MomXIYFYyBxVFrPim9CCxmsL86pnaPyNOwiATGaF2scfLdZfA==";
    const SHA512_SERVER_KEY: &str =
        "AZ/bur/i2Avwd+OqMBjEt4SBkW/381pAmk478imo1ggu6UY85VeJ3qnLknh8jId3+vyJDsvr+uTcUvyLjj2faA==";

    #[test]
    fn passwords_verify_only_against_their_own_credential() {
        // Goal: PLAIN's check accepts the password and nothing else, for both mechanisms.
        for m in ScramMechanism::ALL {
            let cred = ScramCredential::from_password(m, "secret", b"salt", ITERATIONS_MIN);
            assert!(cred.verify_password(m, "secret"));
            assert!(!cred.verify_password(m, "Secret"));
            assert!(!cred.verify_password(m, ""));
            let other = if m == ScramMechanism::Sha256 {
                ScramMechanism::Sha512
            } else {
                ScramMechanism::Sha256
            };
            assert!(!cred.verify_password(other, "secret"));
        }
    }

    #[test]
    fn mechanisms_have_kafkas_names_and_type_numbers() {
        // Goal: names and numbers round-trip, unknown ones are refused, names are exact.
        for m in ScramMechanism::ALL {
            assert_eq!(ScramMechanism::from_name(m.name()), Some(m));
            assert_eq!(ScramMechanism::from_type(m.type_id()), Some(m));
        }
        assert_eq!(ScramMechanism::Sha256.type_id(), 1);
        assert_eq!(ScramMechanism::Sha512.type_id(), 2);
        assert_eq!(ScramMechanism::from_type(0), None);
        assert_eq!(ScramMechanism::from_type(3), None);
        assert_eq!(ScramMechanism::from_name("scram-sha-256"), None);
        assert_eq!(
            serde_json::to_string(&ScramMechanism::Sha512).unwrap(),
            "\"SCRAM-SHA-512\""
        );
    }

    #[test]
    fn add_scram_parses_kafkas_syntax() {
        // Goal: the forms Kafka's storage tool accepts parse to the same entry; what it
        // refuses is refused with its reason.
        let e = parse_add_scram("SCRAM-SHA-256=[name=alice,password=alice-secret]").unwrap();
        assert_eq!(e.mechanism, ScramMechanism::Sha256);
        assert_eq!(e.user, "alice");
        assert_eq!(e.iterations, ITERATIONS_DEFAULT);
        assert_eq!(e.salt, None);
        assert!(e.secret == BootstrapSecret::Password("alice-secret".into()));
        let cred = e.credential(b"random");
        assert_eq!(cred.salt, b"random");
        assert!(cred.verify_password(ScramMechanism::Sha256, "alice-secret"));

        let e = parse_add_scram(
            " SCRAM-SHA-512=[name=\"bob\",iterations=8192,salt=\"c2FsdA==\",password=pw] ",
        )
        .unwrap();
        assert_eq!(
            (e.mechanism, e.user.as_str(), e.iterations),
            (ScramMechanism::Sha512, "bob", 8192)
        );
        let cred = e.credential(b"ignored");
        assert_eq!(cred.salt, b"salt");
        assert_eq!(cred.iterations, 8192);
        assert!(cred.verify_password(ScramMechanism::Sha512, "pw"));

        let salted = ScramMechanism::Sha256.salted_password(b"pw", b"salt", 4096);
        let e = parse_add_scram(&format!(
            "SCRAM-SHA-256=[name=carol,salt=c2FsdA==,saltedpassword={}]",
            BASE64.encode(&salted)
        ))
        .unwrap();
        assert!(e
            .credential(b"x")
            .verify_password(ScramMechanism::Sha256, "pw"));

        for (input, words) in [
            ("SCRAM-SHA-256", "equals sign"),
            ("SCRAM-SHA-1=[name=a,password=b]", "not supported"),
            ("SCRAM-SHA-256=name=a,password=b]", "start with ["),
            ("SCRAM-SHA-256=[name=a,password=b", "end with ]"),
            ("SCRAM-SHA-256=[name=a,password]", "No equals sign"),
            ("SCRAM-SHA-256=[password=b]", "'name'"),
            (
                "SCRAM-SHA-256=[name=a]",
                "one of 'password' or 'saltedpassword'",
            ),
            ("SCRAM-SHA-256=[name=a,saltedpassword=AA==]", "'salt' with"),
            (
                "SCRAM-SHA-256=[name=a,password=b,salt=!!]",
                "decode given salt",
            ),
            (
                "SCRAM-SHA-256=[name=a,password=b,iterations=x]",
                "iterations count",
            ),
            (
                "SCRAM-SHA-256=[name=a,password=b,iterations=4095]",
                ">= 4096",
            ),
            (
                "SCRAM-SHA-256=[name=a,password=b,iterations=16385]",
                "<= 16384",
            ),
            (
                "SCRAM-SHA-256=[name=a,password=b,colour=red]",
                "Unknown SCRAM configurations: colour",
            ),
            ("SCRAM-SHA-256=[name=,password=b]", "must not be empty"),
        ] {
            match parse_add_scram(input) {
                Err(MetaError::InvalidScramBootstrap(m)) => {
                    assert!(m.contains(words), "{input}: {m}")
                }
                other => panic!("{input}: {other:?}"),
            }
        }
    }

    #[test]
    fn credentials_serialize_as_base64_and_hide_keys_in_debug() {
        // Goal: a credential round-trips through JSON with readable base64 fields, and its
        // Debug form shows no key material.
        let cred = ScramCredential::from_password(ScramMechanism::Sha256, "p", b"s", 4096);
        let json = serde_json::to_string(&cred).unwrap();
        assert!(json.contains("\"salt\":\"cw==\""), "{json}");
        let back: ScramCredential = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cred);
        assert!(!format!("{cred:?}").contains("key"));
    }
}
