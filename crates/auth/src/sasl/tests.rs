//! Exchanges driven step by step against an in-memory credential store.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use weir_meta::scram::{ScramCredential, ScramMechanism};
use weir_wire::ResponseError;

use super::*;

#[derive(Default)]
struct Store(BTreeMap<(String, ScramMechanism), ScramCredential>);

impl Store {
    fn with(mut self, user: &str, m: ScramMechanism, password: &str, salt: &[u8]) -> Store {
        let cred = ScramCredential::from_password(m, password, salt, 4096);
        self.0.insert((user.to_string(), m), cred);
        self
    }
}

impl CredentialStore for Store {
    fn scram(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.0.get(&(user.to_string(), mechanism)).cloned()
    }
}

const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

/// A SCRAM client written from RFC 5802 for these tests: it builds its messages, its
/// proof from the password, and checks the server's signature.
struct TestClient {
    m: ScramMechanism,
    password: String,
    gs2_header: String,
    client_first_bare: String,
}

impl TestClient {
    fn new(m: ScramMechanism, user_escaped: &str, password: &str, nonce: &str) -> TestClient {
        TestClient {
            m,
            password: password.to_string(),
            gs2_header: "n,,".to_string(),
            client_first_bare: format!("n={user_escaped},r={nonce}"),
        }
    }

    fn first(&self) -> Vec<u8> {
        format!("{}{}", self.gs2_header, self.client_first_bare).into_bytes()
    }

    /// The client-final message for a server-first message, and the signature the
    /// server must answer with.
    fn last(&self, server_first: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let server_first = std::str::from_utf8(server_first).unwrap();
        let mut nonce = "";
        let mut salt = Vec::new();
        let mut iterations = 0;
        for field in server_first.split(',') {
            match field.split_at(2) {
                ("r=", v) => nonce = v,
                ("s=", v) => salt = BASE64.decode(v).unwrap(),
                ("i=", v) => iterations = v.parse().unwrap(),
                other => panic!("unexpected {other:?}"),
            }
        }
        let without_proof = format!("c={},r={nonce}", BASE64.encode(&self.gs2_header));
        let auth = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let m = self.m;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let signature = m.hmac(&m.hash(&client_key), auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key");
        let expected = format!("v={}", BASE64.encode(m.hmac(&server_key, auth.as_bytes())));
        (
            format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes(),
            expected.into_bytes(),
        )
    }
}

fn challenge(step: Result<Step, SaslError>) -> Vec<u8> {
    match step {
        Ok(Step::Challenge(t)) => t,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn scram_failed(m: Mechanism) -> impl Fn(&Result<Step, SaslError>) -> bool {
    move |r| matches!(r, Err(SaslError::ScramFailed { mechanism, .. }) if *mechanism == m.name())
}

#[test]
fn rfc7677_example_reproduces_the_rfc_messages() {
    // Goal: with RFC 7677's user, password, salt and nonces, the server sends exactly the
    // RFC's server-first and server-final messages and authenticates "user".
    let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let store = Store::default().with("user", ScramMechanism::Sha256, "pencil", &salt);
    let mut x = Exchange::new(Mechanism::ScramSha256, SERVER_NONCE.to_string());
    let server_first = challenge(x.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &store));
    assert_eq!(
        std::str::from_utf8(&server_first).unwrap(),
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    );
    let done = x.step(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
          p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        &store,
    );
    assert_eq!(
        done,
        Ok(Step::Done {
            principal_name: "user".into(),
            token: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
        })
    );
    assert_eq!(
        x.step(b"again", &store),
        Err(SaslError::IllegalState("COMPLETE"))
    );
    assert_eq!(
        SaslError::IllegalState("COMPLETE").error_code(),
        ResponseError::IllegalSaslState
    );
}

#[test]
fn both_scram_mechanisms_round_trip_with_an_independent_client() {
    // Goal: a client built from the RFC (not from the server's code path) authenticates
    // with SHA-256 and SHA-512, and the server's signature is the one it expects.
    for (mechanism, m) in [
        (Mechanism::ScramSha256, ScramMechanism::Sha256),
        (Mechanism::ScramSha512, ScramMechanism::Sha512),
    ] {
        let store = Store::default().with("alice", m, "alice-secret", b"some salt");
        let client = TestClient::new(m, "alice", "alice-secret", "fyko+d2lbbFgONRv9qkxdawL");
        let mut x = Exchange::new(mechanism, server_nonce(&[7; 18]));
        let server_first = challenge(x.step(&client.first(), &store));
        let (last, expected) = client.last(&server_first);
        assert_eq!(
            x.step(&last, &store),
            Ok(Step::Done {
                principal_name: "alice".into(),
                token: expected
            }),
            "{mechanism:?}"
        );
    }
}

#[test]
fn a_wrong_password_fails_with_kafkas_generic_message() {
    // Goal: a wrong proof fails with SASL_AUTHENTICATION_FAILED and Kafka's sentence,
    // which says nothing about why; the exchange is then over.
    let store = Store::default().with("alice", ScramMechanism::Sha512, "right", b"s");
    let client = TestClient::new(ScramMechanism::Sha512, "alice", "wrong", "abc");
    let mut x = Exchange::new(Mechanism::ScramSha512, "xyz".into());
    let (last, _) = client.last(&challenge(x.step(&client.first(), &store)));
    let err = x.step(&last, &store).unwrap_err();
    assert_eq!(err.error_code(), ResponseError::SaslAuthenticationFailed);
    assert_eq!(
        err.client_message(),
        "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
    );
    assert_eq!(
        x.step(&last, &store),
        Err(SaslError::IllegalState("FAILED"))
    );
}

#[test]
fn an_unknown_user_or_mechanism_fails_at_the_first_message() {
    // Goal: as Kafka, a user without a credential for the mechanism fails at
    // client-first, with the same message as a wrong password.
    let store = Store::default().with("alice", ScramMechanism::Sha256, "pw", b"s");
    let mut x = Exchange::new(Mechanism::ScramSha256, "n".into());
    let r = x.step(b"n,,n=bob,r=abc", &store);
    assert!(scram_failed(Mechanism::ScramSha256)(&r), "{r:?}");
    let mut x = Exchange::new(Mechanism::ScramSha512, "n".into());
    let r = x.step(b"n,,n=alice,r=abc", &store);
    assert!(scram_failed(Mechanism::ScramSha512)(&r), "{r:?}");
}

#[test]
fn authorization_ids_and_escaped_names() {
    // Goal: an authorization id equal to the user is accepted (and must be repeated in
    // the channel binding); another one is refused with Kafka's visible sentence; `=2C`
    // and `=3D` in names are unescaped.
    let store = Store::default()
        .with("user", ScramMechanism::Sha256, "pw", b"s")
        .with("a,b=c", ScramMechanism::Sha256, "pw", b"s");
    let mut client = TestClient::new(ScramMechanism::Sha256, "user", "pw", "abc");
    client.gs2_header = "n,a=user,".into();
    let mut x = Exchange::new(Mechanism::ScramSha256, "n".into());
    let (last, expected) = client.last(&challenge(x.step(&client.first(), &store)));
    assert_eq!(
        x.step(&last, &store),
        Ok(Step::Done {
            principal_name: "user".into(),
            token: expected
        })
    );

    let mut x = Exchange::new(Mechanism::ScramSha256, "n".into());
    let err = x.step(b"n,a=admin,n=user,r=abc", &store).unwrap_err();
    assert_eq!(err, SaslError::AuthorizationIdMismatch);
    assert_eq!(
        err.client_message(),
        "Authentication failed: Client requested an authorization id that is different from username"
    );

    let client = TestClient::new(ScramMechanism::Sha256, "a=2Cb=3Dc", "pw", "abc");
    let mut x = Exchange::new(Mechanism::ScramSha256, "n".into());
    let (last, _) = client.last(&challenge(x.step(&client.first(), &store)));
    assert!(matches!(
        x.step(&last, &store),
        Ok(Step::Done { principal_name, .. }) if principal_name == "a,b=c"
    ));
}

#[test]
fn extensions_are_ignored_but_delegation_tokens_are_refused() {
    // Goal: an unknown extension is carried in the AuthMessage and otherwise ignored, as
    // Kafka ignores it; `tokenauth=true` fails since weir has no delegation tokens.
    let store = Store::default().with("alice", ScramMechanism::Sha256, "pw", b"s");
    let mut client = TestClient::new(ScramMechanism::Sha256, "alice", "pw", "abc");
    client.client_first_bare.push_str(",colour=blue");
    let mut x = Exchange::new(Mechanism::ScramSha256, "n".into());
    let (last, expected) = client.last(&challenge(x.step(&client.first(), &store)));
    assert_eq!(
        x.step(&last, &store),
        Ok(Step::Done {
            principal_name: "alice".into(),
            token: expected
        })
    );
    let mut x = Exchange::new(Mechanism::ScramSha256, "n".into());
    let r = x.step(b"n,,n=alice,r=abc,tokenauth=true", &store);
    assert!(scram_failed(Mechanism::ScramSha256)(&r), "{r:?}");
}

#[test]
fn malformed_scram_messages_fail_without_panicking() {
    // Goal: every malformed client-first or client-final message is an authentication
    // failure, never a panic or a success.
    let store = Store::default().with("alice", ScramMechanism::Sha256, "pw", b"s");
    let is_failure = scram_failed(Mechanism::ScramSha256);
    for first in [
        &b""[..],
        b"n",
        b"n,,",
        b"y,,n=alice,r=abc",
        b"p=tls-unique,,n=alice,r=abc",
        b"n,,m=ext,n=alice,r=abc",
        b"n,,n=alice",
        b"n,,n=alice,r=",
        b"n,,n=alice,r=a b",
        b"n,,n=,r=abc",
        b"n,,n=al=ice,r=abc",
        b"n,,n=alice=2,r=abc",
        b"n,,n=alice,r=abc,=x",
        b"n,,n=alice,r=abc,k=",
        b"n,,n=alice,r=abc,k1=v",
        b"n,x,n=alice,r=abc",
        b"n,a=,n=alice,r=abc",
        b"n,,r=abc,n=alice",
        b"n,,n=ali\xffce,r=abc",
        b"n,,n=\xc3=2,r=abc",
    ] {
        let mut x = Exchange::new(Mechanism::ScramSha256, "n".into());
        let r = x.step(first, &store);
        assert!(
            is_failure(&r),
            "{:?}: {r:?}",
            String::from_utf8_lossy(first)
        );
    }

    let client = TestClient::new(ScramMechanism::Sha256, "alice", "pw", "abc");
    let start = || {
        let mut x = Exchange::new(Mechanism::ScramSha256, "n".into());
        let server_first = challenge(x.step(&client.first(), &store));
        (x, server_first)
    };
    let (_, server_first) = start();
    let (good, _) = client.last(&server_first);
    let good = String::from_utf8(good).unwrap();
    let (without_proof, proof) = good.rsplit_once(",p=").unwrap();
    let short_proof = BASE64.encode(&BASE64.decode(proof).unwrap()[..31]);
    let finals: Vec<String> = vec![
        String::new(),
        without_proof.to_string(),
        format!("{without_proof},p="),
        format!("{without_proof},p=!!!!"),
        format!("{without_proof},p={short_proof}"),
        good.replacen("c=biws", "c=eSws", 1),
        good.replacen("c=biws", "c=biws=", 1),
        good.replacen("c=biws,", "", 1),
        good.replacen("r=abcn", "r=abcX", 1),
        good.replacen("r=abcn", "r=abc", 1),
        good.replacen(",p=", ",x=1,p=", 1).replacen("r=", "r", 1),
        format!("{good},e=1"),
    ];
    for last in &finals {
        let (mut x, _) = start();
        let r = x.step(last.as_bytes(), &store);
        assert!(is_failure(&r), "{last:?}: {r:?}");
    }
    // The unaltered message still succeeds, so each failure above is its alteration.
    let (mut x, _) = start();
    assert!(matches!(
        x.step(good.as_bytes(), &store),
        Ok(Step::Done { .. })
    ));
}

#[test]
fn plain_checks_the_password_against_the_scram_credential() {
    // Goal: PLAIN accepts the right password (the SHA-512 credential wins when the user
    // has both), refuses a wrong one and an unknown user alike, and refuses an
    // authorization id other than the user, each with Kafka's sentence.
    let store = Store::default()
        .with("alice", ScramMechanism::Sha256, "alice-secret", b"s")
        .with("bob", ScramMechanism::Sha256, "old", b"s")
        .with("bob", ScramMechanism::Sha512, "new", b"s");
    let plain = |token: &[u8]| Exchange::new(Mechanism::Plain, String::new()).step(token, &store);
    let done = |user: &str| {
        Ok(Step::Done {
            principal_name: user.to_string(),
            token: Vec::new(),
        })
    };
    assert_eq!(plain(b"\0alice\0alice-secret"), done("alice"));
    assert_eq!(plain(b"alice\0alice\0alice-secret"), done("alice"));
    assert_eq!(plain(b"\0bob\0new"), done("bob"));
    for (token, err) in [
        (&b"\0bob\0old"[..], SaslError::InvalidUsernameOrPassword),
        (b"\0alice\0wrong", SaslError::InvalidUsernameOrPassword),
        (
            b"\0carol\0alice-secret",
            SaslError::InvalidUsernameOrPassword,
        ),
        (
            b"\0alice\0alice-secre\xff",
            SaslError::InvalidUsernameOrPassword,
        ),
        (
            b"bob\0alice\0alice-secret",
            SaslError::AuthorizationIdMismatch,
        ),
        (b"\0\0pw", SaslError::UsernameNotSpecified),
        (b"\0alice\0", SaslError::PasswordNotSpecified),
        (b"alice", SaslError::PlainTokenCount(1)),
        (b"\0alice", SaslError::PlainTokenCount(2)),
        (b"\0alice\0pw\0", SaslError::PlainTokenCount(4)),
        (b"\0\0\0\0\0\0", SaslError::PlainTokenCount(4)),
    ] {
        let r = plain(token);
        assert_eq!(r, Err(err.clone()), "{:?}", String::from_utf8_lossy(token));
        assert_eq!(err.error_code(), ResponseError::SaslAuthenticationFailed);
    }
    assert_eq!(
        SaslError::InvalidUsernameOrPassword.client_message(),
        "Authentication failed: Invalid username or password"
    );
    let mut x = Exchange::new(Mechanism::Plain, String::new());
    x.step(b"\0alice\0alice-secret", &store).unwrap();
    assert_eq!(
        x.step(b"\0alice\0alice-secret", &store),
        Err(SaslError::IllegalState("COMPLETE"))
    );
}

#[test]
fn oversized_tokens_are_refused() {
    // Goal: a token over TOKEN_BYTES_MAX fails before it is parsed, for every mechanism.
    let store = Store::default();
    let big = vec![b'a'; TOKEN_BYTES_MAX + 1];
    for m in Mechanism::ALL {
        let mut x = Exchange::new(m, "n".into());
        assert_eq!(
            x.step(&big, &store),
            Err(SaslError::TokenTooLarge {
                bytes: TOKEN_BYTES_MAX + 1
            })
        );
    }
}

#[test]
fn mechanism_names_are_kafkas_and_exact() {
    // Goal: names round-trip and are matched case-sensitively, as in SaslHandshake.
    for m in Mechanism::ALL {
        assert_eq!(Mechanism::from_name(m.name()), Some(m));
    }
    assert_eq!(Mechanism::from_name("plain"), None);
    assert_eq!(Mechanism::from_name("GSSAPI"), None);
    assert!(super::scram::is_valid_nonce(&server_nonce(&[0xff; 32])));
}

/// A store whose OAUTHBEARER check accepts exactly the message "good".
struct OAuthStore;

impl CredentialStore for OAuthStore {
    fn scram(&self, _: &str, _: ScramMechanism) -> Option<ScramCredential> {
        None
    }

    fn oauth(
        &self,
        message: &[u8],
    ) -> Option<Result<crate::oauthbearer::ValidToken, crate::oauthbearer::OAuthError>> {
        Some(if message == b"good" {
            Ok(crate::oauthbearer::ValidToken {
                principal_name: "alice".into(),
                expires_ms: 1234,
            })
        } else {
            Err(crate::oauthbearer::OAuthError::Expired)
        })
    }
}

#[test]
fn oauthbearer_accepts_a_valid_token_and_refuses_as_rfc_7628_says() {
    // Goal: a good token completes with its subject and expiry; a refused one gets the
    // error challenge, and the client's \x01 after it fails with that JSON as the message;
    // without a validator the exchange fails at once.
    let mut x = Exchange::new(Mechanism::OAuthBearer, String::new());
    assert_eq!(
        x.step(b"good", &OAuthStore),
        Ok(Step::Done {
            principal_name: "alice".into(),
            token: Vec::new()
        })
    );
    assert_eq!(x.credential_expires_ms(), Some(1234));

    let mut x = Exchange::new(Mechanism::OAuthBearer, String::new());
    assert_eq!(
        x.step(b"bad", &OAuthStore),
        Ok(Step::Challenge(
            OAUTHBEARER_INVALID_TOKEN.as_bytes().to_vec()
        ))
    );
    let e = x.step(b"\x01", &OAuthStore).unwrap_err();
    assert_eq!(e.client_message(), r#"{"status":"invalid_token"}"#);
    assert_eq!(e.error_code(), ResponseError::SaslAuthenticationFailed);
    assert!(
        x.step(b"good", &OAuthStore).is_err(),
        "a failed exchange stays failed"
    );

    let mut x = Exchange::new(Mechanism::OAuthBearer, String::new());
    assert_eq!(
        x.step(b"good", &Store::default()),
        Err(SaslError::OAuthBearerUnavailable)
    );
}
