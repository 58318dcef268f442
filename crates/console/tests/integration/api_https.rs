//! `--http-tls`: the API over HTTPS with the broker's certificate, and nothing for a client
//! that does not speak TLS.

use crate::common;

use std::sync::Arc;

use common::TestBroker;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_broker::security::tls::{ClientAuth, TlsSettings};
use weir_console::Console;

const REQUEST: &[u8] =
    b"GET /api/v1/cluster HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

/// Goal: with --http-tls the API answers over TLS with the broker's certificate and says
/// so in /cluster; a plaintext request gets no HTTP answer; and without a certificate the
/// listener does not start, with a sentence naming the flags.
#[tokio::test]
async fn the_api_answers_over_https_only() {
    let dir = tempfile::tempdir().unwrap();
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let certificate = dir.path().join("server.pem");
    let key = dir.path().join("server-key.pem");
    std::fs::write(&certificate, issued.cert.pem()).unwrap();
    std::fs::write(&key, issued.key_pair.serialize_pem()).unwrap();
    let broker = TestBroker::start(|c| {
        c.security.tls = Some(TlsSettings {
            certificate,
            key,
            truststore: None,
            client_auth: ClientAuth::None,
        });
    })
    .await;
    let console = Console::bind_with("127.0.0.1:0".parse().unwrap(), &broker.state, true)
        .await
        .unwrap();
    let addr = console.local_addr();
    tokio::spawn(console.run(std::future::pending()));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(issued.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(REQUEST).await.unwrap();
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""protocol":"HTTPS""#), "{answer}");

    // Plain HTTP to the TLS port: whatever comes back is not an HTTP answer.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain.write_all(REQUEST).await.unwrap();
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        plain.read_to_end(&mut bytes),
    )
    .await;
    assert!(
        !bytes.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );

    // No certificate, no HTTPS listener.
    let bare = TestBroker::start(|_| {}).await;
    let refused = Console::bind_with("127.0.0.1:0".parse().unwrap(), &bare.state, true)
        .await
        .err()
        .expect("refused without a certificate")
        .to_string();
    assert!(
        refused.contains("--ssl-certificate-location and --ssl-key-location"),
        "{refused}"
    );
}
