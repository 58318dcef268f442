//! What the integration tests share: a database of their own on the test server, and
//! bounded waiting.
//!
//! The tests need a real PostgreSQL: `WEIR_TEST_POSTGRES_URL` names a database on it as a
//! role that may create databases (`tests/cluster/services.py with-postgres -- cargo test
//! -p weir-cluster` provides one). Each test creates its own database named after the
//! test (dropped first if a previous run left it), so tests run in parallel without
//! seeing each other and a failed run leaves its data to look at. Without the variable a
//! test prints "skipped: WEIR_TEST_POSTGRES_URL is not set" and passes, except under
//! `CI=true`, where it fails: CI must never pass by skipping.

#![allow(dead_code)] // Each test file uses its own part of this module.

use std::collections::BTreeMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_postgres::{Client, NoTls};
use weir_cluster::pg::{Connector, Session};
use weir_cluster::Endpoint;

pub const URL_VARIABLE: &str = "WEIR_TEST_POSTGRES_URL";
/// PostgreSQL truncates longer identifiers; a test's database name must stay unique.
const DATABASE_NAME_BYTES_MAX: usize = 63;
const CREATE_DATABASE_TRIES_MAX: u32 = 20;

/// The URL of a fresh, empty database for `test`, or `None` when the tests are skipped.
pub async fn database(test: &str) -> Option<String> {
    let Ok(server_url) = std::env::var(URL_VARIABLE) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{URL_VARIABLE} is not set and CI=true: run the tests with \
             `python3 tests/cluster/services.py with-postgres -- cargo test -p weir-cluster`"
        );
        println!("skipped: {URL_VARIABLE} is not set");
        return None;
    };
    let name = format!("weir_test_{test}");
    assert!(
        name.len() <= DATABASE_NAME_BYTES_MAX,
        "test name {test} is too long for a database name"
    );
    assert!(name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    let admin = connect(&server_url).await;
    // Two statements: CREATE DATABASE refuses to run in the implicit transaction of a
    // multi-statement string. Tests create databases in parallel, and PostgreSQL refuses
    // one while another copies the template, so a refusal is retried a bounded number
    // of times.
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
    for attempt in 1..=CREATE_DATABASE_TRIES_MAX {
        match admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
        {
            Ok(()) => break,
            Err(e) if attempt < CREATE_DATABASE_TRIES_MAX => {
                println!("creating database {name}: {e:?}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("creating database {name} on {server_url}: {e:?}"),
        }
    }
    Some(with_database(&server_url, &name))
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{scheme}://{authority}/{name}{query}")
}

/// A plain connection of the test's own, to look and to meddle.
pub async fn connect(url: &str) -> Client {
    let config = tokio_postgres::Config::from_str(url).expect("a valid URL");
    let (client, connection) = config
        .connect(NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    tokio::spawn(connection);
    client
}

pub fn session(url: &str) -> Arc<Session> {
    Arc::new(Session::new(Connector::new(url).expect("a valid URL")))
}

pub async fn migrated(url: &str) {
    let mut client = Connector::new(url).unwrap().connect().await.unwrap();
    weir_cluster::migrate::migrate(&mut client).await.unwrap();
}

pub fn endpoints(host: &str, port: u16) -> BTreeMap<String, Endpoint> {
    BTreeMap::from([(
        "PLAINTEXT".to_string(),
        Endpoint {
            host: host.into(),
            port,
        },
    )])
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP relay to PostgreSQL that the test can freeze: while frozen it moves no bytes in
/// either direction and accepts no new connections, as a hung server or a partitioned
/// network behaves (connections stay open, nothing answers).
pub struct Relay {
    pub url: String,
    frozen: watch::Sender<bool>,
}

impl Relay {
    pub async fn start(url: &str) -> Relay {
        let config = tokio_postgres::Config::from_str(url).unwrap();
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let target = format!("127.0.0.1:{port}");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap();
        let (frozen, frozen_rx) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut frozen = frozen_rx.clone();
                let _ = frozen.wait_for(|f| !*f).await;
                let Ok(outbound) = TcpStream::connect(&target).await else {
                    continue;
                };
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                tokio::spawn(pipe(ri, wo, frozen_rx.clone()));
                tokio::spawn(pipe(ro, wi, frozen_rx.clone()));
            }
        });
        let rest = url
            .split_once('@')
            .map(|(user, rest)| (format!("{user}@"), rest))
            .unwrap();
        let path = &rest.1[rest.1.find('/').unwrap()..];
        Relay {
            url: format!("{}127.0.0.1:{}{path}", rest.0, local.port()),
            frozen,
        }
    }

    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        // Bytes read while frozen are held back until thawed.
        if frozen.wait_for(|f| !*f).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

pub const S3_URL_VARIABLE: &str = "WEIR_TEST_S3_URL";

/// The bucket a test's engine writes to: a prefix of its own in the S3-compatible store
/// `WEIR_TEST_S3_URL` names (`services.py with-services` runs SeaweedFS for it), or else a
/// directory, `dir` (a `file://` bucket, which the engine serves as it serves S3).
pub fn bucket(test: &str, dir: &std::path::Path) -> weir_cluster::Bucket {
    let url = match std::env::var(S3_URL_VARIABLE) {
        Ok(base) => {
            let (location, query) = base.split_once('?').unwrap_or((&base, ""));
            format!("{}/{test}?{query}", location.trim_end_matches('/'))
        }
        Err(_) => format!("file://{}", dir.display()),
    };
    weir_cluster::Bucket::from_url(&url).unwrap()
}

/// Writes one transaction marker through `engine` and returns its outcome.
pub async fn write_marker(
    engine: &dyn weir_log::store::TxnLog,
    marker: weir_log::store::MarkerWrite,
    now_ms: i64,
) -> Result<(), weir_log::store::StoreError> {
    engine
        .write_markers(vec![marker], now_ms)
        .await
        .pop()
        .unwrap()
}
