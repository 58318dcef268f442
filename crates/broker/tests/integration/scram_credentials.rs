//! DescribeUserScramCredentials and AlterUserScramCredentials over real sockets, with
//! Kafka 4.x's answers, and the credentials kept across a restart and used by the SASL
//! exchanges.

use crate::common;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use weir_broker::security::sasl::{CredentialStore, Exchange, Mechanism, Step};
use weir_meta::scram::{parse_add_scram, ScramMechanism};
use weir_wire::ResponseError;

const SHA256: i8 = 1;
const SHA512: i8 = 2;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// An upsertion as Kafka's Admin client builds it: the password salted client-side.
fn upsert(user: &str, mechanism: i8, password: &str, iterations: i32) -> ScramCredentialUpsertion {
    let m = ScramMechanism::from_type(mechanism).unwrap_or(ScramMechanism::Sha256);
    let salt = format!("salt-of-{user}").into_bytes();
    let salted = m.salted_password(password.as_bytes(), &salt, iterations);
    ScramCredentialUpsertion::default()
        .with_name(s(user))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(Bytes::from(salt))
        .with_salted_password(Bytes::from(salted))
}

fn delete(user: &str, mechanism: i8) -> ScramCredentialDeletion {
    ScramCredentialDeletion::default()
        .with_name(s(user))
        .with_mechanism(mechanism)
}

async fn alter(
    c: &mut Client,
    deletions: Vec<ScramCredentialDeletion>,
    upsertions: Vec<ScramCredentialUpsertion>,
) -> Vec<(String, i16, Option<String>)> {
    let req = AlterUserScramCredentialsRequest::default()
        .with_deletions(deletions)
        .with_upsertions(upsertions);
    let resp: AlterUserScramCredentialsResponse =
        c.call(ApiKey::AlterUserScramCredentials, 0, &req).await;
    let mut out: Vec<_> = resp
        .results
        .into_iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.error_code,
                r.error_message.map(|m| m.to_string()),
            )
        })
        .collect();
    out.sort();
    out
}

/// Each described user: (name, error code, message, [(mechanism, iterations)]).
type Described = (String, i16, Option<String>, Vec<(i8, i32)>);

async fn describe(c: &mut Client, users: Option<&[&str]>) -> Vec<Described> {
    let req = DescribeUserScramCredentialsRequest::default().with_users(users.map(|users| {
        users
            .iter()
            .map(|u| UserName::default().with_name(s(u)))
            .collect()
    }));
    let resp: DescribeUserScramCredentialsResponse =
        c.call(ApiKey::DescribeUserScramCredentials, 0, &req).await;
    assert_eq!(resp.error_code, 0);
    resp.results
        .into_iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.error_code,
                // Kafka leaves a described user's message at the schema's default, "".
                r.error_message
                    .map(|m| m.to_string())
                    .filter(|m| !m.is_empty()),
                r.credential_infos
                    .iter()
                    .map(|i| (i.mechanism, i.iterations))
                    .collect(),
            )
        })
        .collect()
}

fn plain_login(store: &dyn CredentialStore, user: &str, password: &str) -> bool {
    let token = format!("\0{user}\0{password}");
    matches!(
        Exchange::new(Mechanism::Plain, String::new()).step(token.as_bytes(), store),
        Ok(Step::Done { .. })
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_then_describe_and_restart_keeps_credentials() {
    // Goal: upserted credentials are described with their mechanisms and iterations,
    // authenticate PLAIN logins, and are all still there after the broker restarts on the
    // same data directory; a deletion removes one mechanism.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    assert!(describe(&mut c, None).await.is_empty());
    let r = alter(
        &mut c,
        vec![],
        vec![
            upsert("alice", SHA256, "alice-secret", 4096),
            upsert("bob", SHA512, "bob-secret", 8192),
        ],
    )
    .await;
    assert_eq!(r, vec![("alice".into(), 0, None), ("bob".into(), 0, None)]);
    let r = alter(
        &mut c,
        vec![],
        vec![upsert("alice", SHA512, "alice-512", 16384)],
    )
    .await;
    assert_eq!(r, vec![("alice".into(), 0, None)]);
    let all = describe(&mut c, None).await;
    assert_eq!(
        all,
        vec![
            (
                "alice".into(),
                0,
                None,
                vec![(SHA256, 4096), (SHA512, 16384)]
            ),
            ("bob".into(), 0, None, vec![(SHA512, 8192)]),
        ]
    );
    assert_eq!(
        describe(&mut c, Some(&[])).await,
        all,
        "no names is every user"
    );
    assert!(plain_login(&*broker.state, "bob", "bob-secret"));
    assert!(!plain_login(&*broker.state, "bob", "alice-secret"));

    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, |_| {}).await;
    let mut c = broker.client().await;
    assert_eq!(describe(&mut c, None).await, all);
    assert!(plain_login(&*broker.state, "alice", "alice-512"));

    let r = alter(&mut c, vec![delete("alice", SHA512)], vec![]).await;
    assert_eq!(r, vec![("alice".into(), 0, None)]);
    assert_eq!(
        describe(&mut c, Some(&["alice"])).await,
        vec![("alice".into(), 0, None, vec![(SHA256, 4096)])]
    );
    assert!(plain_login(&*broker.state, "alice", "alice-secret"));
    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, |_| {}).await;
    let mut c = broker.client().await;
    assert_eq!(
        describe(&mut c, Some(&["alice"])).await,
        vec![("alice".into(), 0, None, vec![(SHA256, 4096)])],
        "the deletion was persisted too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_have_kafkas_codes_and_messages() {
    // Goal: each refusal of Kafka's controller and broker is answered per user with
    // Kafka's code and sentence, and refused users are left unchanged.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    alter(&mut c, vec![], vec![upsert("carol", SHA256, "pw", 4096)]).await;
    let r = alter(
        &mut c,
        vec![
            delete("nobody", SHA256),
            delete("x", 0),
            delete("carol", SHA512),
        ],
        vec![
            upsert("", SHA256, "pw", 4096),
            upsert("weird", 3, "pw", 4096),
            upsert("few", SHA256, "pw", 4095),
            upsert("many", SHA512, "pw", 16385),
            upsert("dave", SHA256, "pw", 4096),
            upsert("dave", SHA512, "pw", 4096),
            upsert("erin", SHA256, "pw", 4096),
        ],
    )
    .await;
    let code = |e: ResponseError| e.code();
    let missing = Some("Attempt to delete a user credential that does not exist".to_string());
    let twice = Some("A user credential cannot be altered twice in the same request".to_string());
    assert_eq!(
        r,
        vec![
            (
                "".into(),
                code(ResponseError::UnacceptableCredential),
                Some("Username must not be empty".into())
            ),
            (
                "carol".into(),
                code(ResponseError::ResourceNotFound),
                missing.clone()
            ),
            ("dave".into(), code(ResponseError::DuplicateResource), twice),
            ("erin".into(), 0, None),
            (
                "few".into(),
                code(ResponseError::UnacceptableCredential),
                Some("Too few iterations".into())
            ),
            (
                "many".into(),
                code(ResponseError::UnacceptableCredential),
                Some("Too many iterations".into())
            ),
            (
                "nobody".into(),
                code(ResponseError::ResourceNotFound),
                missing
            ),
            (
                "weird".into(),
                code(ResponseError::UnsupportedSaslMechanism),
                Some("Unknown SCRAM mechanism".into())
            ),
            (
                "x".into(),
                code(ResponseError::UnsupportedSaslMechanism),
                Some("Unknown SCRAM mechanism".into())
            ),
        ]
    );
    let d = describe(&mut c, Some(&["carol", "dave", "erin", "erin"])).await;
    assert_eq!(
        d,
        vec![
            ("carol".into(), 0, None, vec![(SHA256, 4096)]),
            (
                "dave".into(),
                code(ResponseError::ResourceNotFound),
                Some("Attempt to describe a user credential that does not exist: dave".into()),
                vec![]
            ),
            (
                "erin".into(),
                code(ResponseError::DuplicateResource),
                Some(
                    "Cannot describe SCRAM credentials for the same user twice in a single request: erin"
                        .into()
                ),
                vec![]
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_scram_bootstrap_adds_once_and_persists() {
    // Goal: `--add-scram` entries create credentials that log in, are persisted, and do
    // not overwrite a credential the user already has (a restart with the same flags
    // keeps a password changed since).
    let broker = TestBroker::start(|_| {}).await;
    let entries = [
        parse_add_scram("SCRAM-SHA-256=[name=alice,password=first]").unwrap(),
        parse_add_scram("SCRAM-SHA-512=[name=alice,password=first,iterations=8192]").unwrap(),
    ];
    broker.state.add_scram_bootstrap(&entries).unwrap();
    assert!(plain_login(&*broker.state, "alice", "first"));
    let mut c = broker.client().await;
    alter(
        &mut c,
        vec![],
        vec![upsert("alice", SHA512, "changed", 4096)],
    )
    .await;
    let dir = broker.stop().await;

    let broker = TestBroker::start_in(dir, |_| {}).await;
    broker.state.add_scram_bootstrap(&entries).unwrap();
    assert!(plain_login(&*broker.state, "alice", "changed"));
    assert!(!plain_login(&*broker.state, "alice", "first"));
    let mut c = broker.client().await;
    assert_eq!(
        describe(&mut c, None).await,
        vec![(
            "alice".into(),
            0,
            None,
            vec![(SHA256, 4096), (SHA512, 4096)]
        )]
    );
    let sha256 = broker.state.scram("alice", ScramMechanism::Sha256).unwrap();
    assert!(sha256.verify_password(ScramMechanism::Sha256, "first"));
    assert_eq!(sha256.salt.len(), weir_meta::scram::BOOTSTRAP_SALT_BYTES);
}
