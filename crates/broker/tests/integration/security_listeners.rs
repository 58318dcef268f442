//! Listeners with security protocols: TLS with and without client certificates, and what
//! a connection on a SASL listener may do before it has authenticated.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use common::TestBroker;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_broker::security::listener::{parse_listeners, ListenerConfig};
use weir_broker::security::tls::{ClientAuth, TlsSettings};

/// A CA, and certificates it signed, written as PEM files.
struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = params.self_signed(&ca_key).unwrap();
        Pki { ca, ca_key }
    }

    /// Signs a certificate for `names` (SANs) with the given subject; returns (cert, key) PEM.
    fn issue(&self, names: &[&str], subject: &[(DnType, &str)]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (t, v) in subject {
            params.distinguished_name.push(t.clone(), *v);
        }
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Frames a request like a Kafka client.
fn frame<T: Encodable>(key: ApiKey, version: i16, correlation_id: i32, body: &T) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("security-test")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let mut out = Vec::with_capacity(buf.len() + 4);
    out.put_i32(buf.len() as i32);
    out.extend_from_slice(&buf);
    out
}

/// Reads one response frame; None when the broker closed the connection instead.
async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> Option<Bytes> {
    let size = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_i32())
        .await
        .expect("the broker answers or closes within 5 s")
        .ok()?;
    let mut buf = vec![0u8; size as usize];
    s.read_exact(&mut buf).await.ok()?;
    Some(Bytes::from(buf))
}

async fn call<S, Req, Resp>(s: &mut S, key: ApiKey, version: i16, body: &Req) -> Option<Resp>
where
    S: AsyncRead + AsyncWrite + Unpin,
    Req: Encodable,
    Resp: Decodable + HeaderVersion,
{
    s.write_all(&frame(key, version, 7, body)).await.ok()?;
    let mut resp = read_frame(s).await?;
    let header = ResponseHeader::decode(&mut resp, Resp::header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 7);
    Some(Resp::decode(&mut resp, version).unwrap())
}

async fn api_versions<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> Option<ApiVersionsResponse> {
    call(s, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await
}

fn listener_addr(b: &TestBroker, name: &str) -> SocketAddr {
    b.state
        .config
        .listeners
        .iter()
        .find(|l| l.name == name)
        .map(|l| l.bind)
        .unwrap()
}

fn listeners(spec: &str) -> Vec<ListenerConfig> {
    parse_listeners(spec, &Default::default()).unwrap()
}

struct TlsFiles {
    _dir: tempfile::TempDir,
    settings: TlsSettings,
    trusted: Pki,
    untrusted: Pki,
}

fn tls_files(client_auth: ClientAuth) -> TlsFiles {
    let dir = tempfile::tempdir().unwrap();
    let trusted = Pki::new("weir test CA");
    let (cert, key) = trusted.issue(
        &["localhost", "127.0.0.1"],
        &[(DnType::CommonName, "localhost")],
    );
    let settings = TlsSettings {
        certificate: write(dir.path(), "server.pem", &cert),
        key: write(dir.path(), "server-key.pem", &key),
        truststore: Some(write(dir.path(), "ca.pem", &trusted.ca.pem())),
        client_auth,
    };
    TlsFiles {
        _dir: dir,
        settings,
        trusted,
        untrusted: Pki::new("someone else's CA"),
    }
}

/// A TLS client trusting `ca`, presenting `identity` (cert, key PEM) if given.
async fn tls_connect(
    addr: SocketAddr,
    ca: &rcgen::Certificate,
    identity: Option<(String, String)>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    // TLS 1.3 reports a refused client certificate only on the first read.
    tls.flush().await?;
    Ok(tls)
}

#[tokio::test]
async fn ssl_listener_serves_tls_clients_and_refuses_plaintext() {
    // Goal: a TLS client gets answers on the SSL listener; plaintext bytes there get the
    // connection closed; the PLAINTEXT listener beside it still serves plaintext.
    let files = tls_files(ClientAuth::None);
    let settings = files.settings.clone();
    let b = TestBroker::start(move |c| {
        c.listeners = listeners("PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0");
        c.security.tls = Some(settings);
    })
    .await;
    let ssl = listener_addr(&b, "SSL");
    let mut tls = tls_connect(ssl, &files.trusted.ca, None).await.unwrap();
    let v = api_versions(&mut tls).await.expect("answered over TLS");
    assert_eq!(v.error_code, 0);
    let md: MetadataResponse = call(&mut tls, ApiKey::Metadata, 12, &MetadataRequest::default())
        .await
        .unwrap();
    assert_eq!(
        md.brokers[0].port,
        i32::from(ssl.port()),
        "Metadata advertises the SSL listener to SSL clients"
    );

    let mut plain = TcpStream::connect(ssl).await.unwrap();
    assert!(
        api_versions(&mut plain).await.is_none(),
        "plaintext on TLS is closed"
    );

    let mut plain = TcpStream::connect(listener_addr(&b, "PLAINTEXT"))
        .await
        .unwrap();
    let md: MetadataResponse = call(
        &mut plain,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        md.brokers[0].port,
        i32::from(listener_addr(&b, "PLAINTEXT").port())
    );
    b.stop().await;
}

#[tokio::test]
async fn required_client_certificates_must_come_from_a_trusted_ca() {
    // Goal: mTLS: a certificate from the trusted CA is served; none, or one from another
    // CA, ends the connection during or right after the handshake.
    let files = tls_files(ClientAuth::Required);
    let settings = files.settings.clone();
    let b = TestBroker::start(move |c| {
        c.listeners = listeners("SSL://127.0.0.1:0");
        c.security.tls = Some(settings);
    })
    .await;
    let ssl = listener_addr(&b, "SSL");
    let alice = files.trusted.issue(&[], &[(DnType::CommonName, "alice")]);
    let mut ok = tls_connect(ssl, &files.trusted.ca, Some(alice))
        .await
        .unwrap();
    assert!(api_versions(&mut ok).await.is_some());

    for identity in [
        None,
        Some(
            files
                .untrusted
                .issue(&[], &[(DnType::CommonName, "mallory")]),
        ),
    ] {
        let refused = match tls_connect(ssl, &files.trusted.ca, identity).await {
            Err(_) => true,
            Ok(mut s) => api_versions(&mut s).await.is_none(),
        };
        assert!(refused);
    }
    b.stop().await;
}

#[test]
fn a_certificate_subject_reads_as_rfc_2253() {
    // Goal: the principal of a client certificate is its subject, last RDN first, as
    // Kafka's default mapping (Java's X500Principal) writes it.
    let pki = Pki::new("ca");
    let (cert, _) = pki.issue(
        &[],
        &[
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "weir, inc"),
            (DnType::OrganizationalUnitName, "test"),
            (DnType::CommonName, "alice"),
        ],
    );
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
    assert_eq!(
        weir_broker::security::tls::subject_rfc2253(der.as_ref()).unwrap(),
        "CN=alice,OU=test,O=weir\\, inc,C=US"
    );
}

/// A request of every advertised API but the three allowed before authentication, with a
/// body that decodes.
fn one_of_each() -> Vec<(ApiKey, i16, Vec<u8>)> {
    let mut out = Vec::new();
    for range in weir_wire::api::advertised(true) {
        let key = range.api_key;
        if matches!(
            key,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        ) {
            continue;
        }
        let v = range.max_version;
        let f = match key {
            ApiKey::Produce => frame(key, v, 1, &ProduceRequest::default().with_acks(1)),
            ApiKey::Fetch => frame(key, v, 1, &FetchRequest::default()),
            ApiKey::ListOffsets => frame(key, v, 1, &ListOffsetsRequest::default()),
            ApiKey::Metadata => frame(key, v, 1, &MetadataRequest::default()),
            ApiKey::CreateTopics => frame(key, v, 1, &CreateTopicsRequest::default()),
            ApiKey::DeleteTopics => frame(key, v, 1, &DeleteTopicsRequest::default()),
            ApiKey::CreatePartitions => frame(key, v, 1, &CreatePartitionsRequest::default()),
            ApiKey::DescribeConfigs => frame(key, v, 1, &DescribeConfigsRequest::default()),
            ApiKey::AlterConfigs => frame(key, v, 1, &AlterConfigsRequest::default()),
            ApiKey::IncrementalAlterConfigs => {
                frame(key, v, 1, &IncrementalAlterConfigsRequest::default())
            }
            ApiKey::ListConfigResources => frame(key, v, 1, &ListConfigResourcesRequest::default()),
            ApiKey::DescribeCluster => frame(
                key,
                v,
                1,
                &DescribeClusterRequest::default().with_endpoint_type(1),
            ),
            ApiKey::DeleteRecords => frame(key, v, 1, &DeleteRecordsRequest::default()),
            ApiKey::InitProducerId => frame(
                key,
                v,
                1,
                &InitProducerIdRequest::default()
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            ),
            ApiKey::DescribeLogDirs => frame(key, v, 1, &DescribeLogDirsRequest::default()),
            ApiKey::GetTelemetrySubscriptions => {
                frame(key, v, 1, &GetTelemetrySubscriptionsRequest::default())
            }
            ApiKey::PushTelemetry => frame(key, v, 1, &PushTelemetryRequest::default()),
            ApiKey::OffsetForLeaderEpoch => {
                frame(key, v, 1, &OffsetForLeaderEpochRequest::default())
            }
            ApiKey::DescribeTopicPartitions => {
                frame(key, v, 1, &DescribeTopicPartitionsRequest::default())
            }
            ApiKey::ElectLeaders => frame(key, v, 1, &ElectLeadersRequest::default()),
            ApiKey::AlterPartitionReassignments => {
                frame(key, v, 1, &AlterPartitionReassignmentsRequest::default())
            }
            ApiKey::ListPartitionReassignments => {
                frame(key, v, 1, &ListPartitionReassignmentsRequest::default())
            }
            ApiKey::FindCoordinator => frame(
                key,
                v,
                1,
                &FindCoordinatorRequest::default()
                    .with_coordinator_keys(vec![StrBytes::from_static_str("g")]),
            ),
            ApiKey::JoinGroup => frame(key, v, 1, &JoinGroupRequest::default()),
            ApiKey::SyncGroup => frame(key, v, 1, &SyncGroupRequest::default()),
            ApiKey::Heartbeat => frame(key, v, 1, &HeartbeatRequest::default()),
            ApiKey::LeaveGroup => frame(key, v, 1, &LeaveGroupRequest::default()),
            ApiKey::OffsetCommit => frame(key, v, 1, &OffsetCommitRequest::default()),
            ApiKey::OffsetFetch => frame(key, v, 1, &OffsetFetchRequest::default()),
            ApiKey::OffsetDelete => frame(key, v, 1, &OffsetDeleteRequest::default()),
            ApiKey::ListGroups => frame(key, v, 1, &ListGroupsRequest::default()),
            ApiKey::DescribeGroups => frame(key, v, 1, &DescribeGroupsRequest::default()),
            ApiKey::DeleteGroups => frame(key, v, 1, &DeleteGroupsRequest::default()),
            ApiKey::ConsumerGroupHeartbeat => {
                frame(key, v, 1, &ConsumerGroupHeartbeatRequest::default())
            }
            ApiKey::ConsumerGroupDescribe => {
                frame(key, v, 1, &ConsumerGroupDescribeRequest::default())
            }
            ApiKey::AddPartitionsToTxn => frame(key, v, 1, &AddPartitionsToTxnRequest::default()),
            ApiKey::AddOffsetsToTxn => frame(key, v, 1, &AddOffsetsToTxnRequest::default()),
            ApiKey::EndTxn => frame(key, v, 1, &EndTxnRequest::default()),
            ApiKey::TxnOffsetCommit => frame(key, v, 1, &TxnOffsetCommitRequest::default()),
            ApiKey::DescribeTransactions => {
                frame(key, v, 1, &DescribeTransactionsRequest::default())
            }
            ApiKey::ListTransactions => frame(key, v, 1, &ListTransactionsRequest::default()),
            ApiKey::DescribeProducers => frame(key, v, 1, &DescribeProducersRequest::default()),
            ApiKey::WriteTxnMarkers => frame(key, v, 1, &WriteTxnMarkersRequest::default()),
            ApiKey::DescribeUserScramCredentials => {
                frame(key, v, 1, &DescribeUserScramCredentialsRequest::default())
            }
            ApiKey::AlterUserScramCredentials => {
                frame(key, v, 1, &AlterUserScramCredentialsRequest::default())
            }
            ApiKey::CreateAcls => frame(key, v, 1, &CreateAclsRequest::default()),
            ApiKey::DescribeAcls => frame(
                key,
                v,
                1,
                &DescribeAclsRequest::default()
                    .with_resource_type_filter(1)
                    .with_pattern_type_filter(1)
                    .with_operation(1)
                    .with_permission_type(1),
            ),
            ApiKey::DeleteAcls => frame(key, v, 1, &DeleteAclsRequest::default()),
            ApiKey::DescribeClientQuotas => {
                frame(key, v, 1, &DescribeClientQuotasRequest::default())
            }
            ApiKey::AlterClientQuotas => frame(key, v, 1, &AlterClientQuotasRequest::default()),
            other => panic!("no request body listed for {other:?}: add it here"),
        };
        out.push((key, v, f));
    }
    out
}

#[tokio::test]
async fn an_unauthenticated_connection_reaches_no_api_but_versions_and_sasl() {
    // Goal: on a SASL listener, every API but ApiVersions, SaslHandshake and
    // SaslAuthenticate closes the connection unanswered, while the same frame on the
    // PLAINTEXT listener of the same broker is answered (so the frame itself is valid).
    let b = TestBroker::start(|c| {
        c.listeners = listeners("PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0");
    })
    .await;
    let sasl = listener_addr(&b, "SASL_PLAINTEXT");
    let plain = listener_addr(&b, "PLAINTEXT");
    let requests = one_of_each();
    assert!(requests.len() >= 45, "{} APIs checked", requests.len());
    for (key, version, f) in requests {
        let mut s = TcpStream::connect(plain).await.unwrap();
        s.write_all(&f).await.unwrap();
        assert!(
            read_frame(&mut s).await.is_some(),
            "{key:?} v{version} is answered on PLAINTEXT"
        );

        let mut s = TcpStream::connect(sasl).await.unwrap();
        let v = api_versions(&mut s)
            .await
            .expect("ApiVersions is answered before authentication");
        assert!(v
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::SaslHandshake as i16));
        s.write_all(&f).await.unwrap();
        assert!(
            read_frame(&mut s).await.is_none(),
            "{key:?} v{version} before authentication closes the connection"
        );
    }
    b.stop().await;
}

#[tokio::test]
async fn sasl_handshake_refuses_a_mechanism_not_enabled_and_bounds_unauthenticated_frames() {
    // Goal: an unknown or disabled mechanism gets UNSUPPORTED_SASL_MECHANISM with the
    // enabled list, then a close; SaslAuthenticate before SaslHandshake closes; a frame
    // over 512 KiB before authentication closes; SaslHandshake on a PLAINTEXT listener is
    // ILLEGAL_SASL_STATE.
    let b = TestBroker::start(|c| {
        c.listeners = listeners("PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0");
    })
    .await;
    let sasl = listener_addr(&b, "SASL_PLAINTEXT");
    for mechanism in ["GSSAPI", "PLAIN", "scram-sha-256"] {
        let mut s = TcpStream::connect(sasl).await.unwrap();
        let r: SaslHandshakeResponse = call(
            &mut s,
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
        )
        .await
        .unwrap();
        assert_eq!(r.error_code, 33, "{mechanism}");
        let names: Vec<&str> = r.mechanisms.iter().map(|m| m.as_str()).collect();
        assert_eq!(names, ["SCRAM-SHA-512", "SCRAM-SHA-256"]);
        assert!(read_frame(&mut s).await.is_none());
    }
    let mut s = TcpStream::connect(sasl).await.unwrap();
    let r: Option<SaslAuthenticateResponse> = call(
        &mut s,
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"n,,n=a,r=b")),
    )
    .await;
    assert!(r.is_none(), "SaslAuthenticate before SaslHandshake closes");

    let mut s = TcpStream::connect(sasl).await.unwrap();
    let mut big = Vec::new();
    big.put_i32(600 * 1024);
    s.write_all(&big).await.unwrap();
    assert!(
        read_frame(&mut s).await.is_none(),
        "a 600 KiB frame before authentication closes"
    );

    let mut s = TcpStream::connect(listener_addr(&b, "PLAINTEXT"))
        .await
        .unwrap();
    let r: SaslHandshakeResponse = call(
        &mut s,
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
    )
    .await
    .unwrap();
    assert_eq!(r.error_code, 34);
    b.stop().await;
}

#[tokio::test]
async fn changed_certificate_files_are_picked_up_by_new_connections() {
    // Goal: replacing the broker's certificate and key on disk takes effect for the next
    // connection, without a restart.
    let files = tls_files(ClientAuth::None);
    let settings = files.settings.clone();
    let b = TestBroker::start(move |c| {
        c.listeners = listeners("SSL://127.0.0.1:0");
        c.security.tls = Some(settings);
    })
    .await;
    let ssl = listener_addr(&b, "SSL");
    assert!(tls_connect(ssl, &files.trusted.ca, None).await.is_ok());
    let other = Pki::new("a new CA");
    let (cert, key) = other.issue(&["localhost"], &[(DnType::CommonName, "localhost")]);
    std::fs::write(&files.settings.certificate, cert).unwrap();
    std::fs::write(&files.settings.key, key).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if tls_connect(ssl, &other.ca, None).await.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was not served within 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(tls_connect(ssl, &files.trusted.ca, None).await.is_err());
    b.stop().await;
}

#[tokio::test]
async fn listeners_take_their_own_client_auth_and_mechanisms() {
    // Goal: Kafka's listener.name.<name>. settings: of two SSL listeners only the one told
    // to require client certificates refuses a client without one; a SASL listener with its
    // own mechanisms offers those, another the broker's.
    use weir_broker::security::listener::{parse_protocol_map, SecurityProtocol};
    use weir_broker::security::listener_overrides::{
        parse_listener_setting, ListenerOverridesByName,
    };
    let files = tls_files(ClientAuth::None);
    let settings = files.settings.clone();
    let b = TestBroker::start(move |c| {
        let map = parse_protocol_map(
            "INTERNAL:SSL,EXTERNAL:SSL,CLIENTS:SASL_PLAINTEXT,OTHERS:SASL_PLAINTEXT",
        )
        .unwrap();
        c.listeners = parse_listeners(
            "INTERNAL://127.0.0.1:0,EXTERNAL://127.0.0.1:0,CLIENTS://127.0.0.1:0,OTHERS://127.0.0.1:0",
            &map,
        )
        .unwrap();
        assert!(c.listeners.iter().take(2).all(|l| l.protocol == SecurityProtocol::Ssl));
        c.security.tls = Some(settings);
        let mut overrides = ListenerOverridesByName::new();
        for entry in [
            "listener.name.internal.ssl.client.auth=required",
            "listener.name.clients.sasl.enabled.mechanisms=PLAIN",
        ] {
            parse_listener_setting(entry, &mut overrides).unwrap();
        }
        c.security.listener_overrides = overrides;
    })
    .await;
    let mut external = tls_connect(listener_addr(&b, "EXTERNAL"), &files.trusted.ca, None)
        .await
        .unwrap();
    assert!(api_versions(&mut external).await.is_some());
    let refused = match tls_connect(listener_addr(&b, "INTERNAL"), &files.trusted.ca, None).await {
        Err(_) => true,
        Ok(mut s) => api_versions(&mut s).await.is_none(),
    };
    assert!(refused, "INTERNAL served a client without a certificate");
    let alice = files.trusted.issue(&[], &[(DnType::CommonName, "alice")]);
    let mut internal = tls_connect(
        listener_addr(&b, "INTERNAL"),
        &files.trusted.ca,
        Some(alice),
    )
    .await
    .unwrap();
    assert!(api_versions(&mut internal).await.is_some());

    for (listener, offered) in [
        ("CLIENTS", vec!["PLAIN"]),
        ("OTHERS", vec!["SCRAM-SHA-512", "SCRAM-SHA-256"]),
    ] {
        let mut s = TcpStream::connect(listener_addr(&b, listener))
            .await
            .unwrap();
        let r: SaslHandshakeResponse = call(
            &mut s,
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("GSSAPI")),
        )
        .await
        .unwrap();
        let names: Vec<&str> = r.mechanisms.iter().map(|m| m.as_str()).collect();
        assert_eq!(names, offered, "{listener}");
    }
    b.stop().await;
}
