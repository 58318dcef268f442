//! TLS for SSL and SASL_SSL listeners, through rustls.
//!
//! The broker's certificate chain and key come from PEM files, as do the CAs it trusts for
//! client certificates. The files are checked for changes at most once every
//! [`RELOAD_CHECK_INTERVAL`]; a new connection after a change gets the new certificate,
//! while a file that no longer loads keeps the old one in use and is logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// How often the PEM files are checked for a change.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Kafka's `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// One is asked for; a client without one is still accepted, as ANONYMOUS.
    Requested,
    /// A client without a trusted certificate is refused.
    Required,
}

impl ClientAuth {
    pub fn from_name(s: &str) -> Option<ClientAuth> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Some(ClientAuth::None),
            "requested" => Some(ClientAuth::Requested),
            "required" => Some(ClientAuth::Required),
            _ => None,
        }
    }
}

/// The TLS files and policy, as `weir serve` was told them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The broker's certificate, then its chain, in PEM.
    pub certificate: PathBuf,
    /// The broker's private key in PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The CAs trusted for client certificates, in PEM.
    pub truststore: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

fn modified(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl TlsSettings {
    fn files(&self) -> Vec<&Path> {
        let mut files = vec![self.certificate.as_path(), self.key.as_path()];
        files.extend(self.truststore.as_deref());
        files
    }

    fn stamps(&self) -> Vec<Option<(SystemTime, u64)>> {
        self.files().into_iter().map(modified).collect()
    }

    /// Builds a rustls configuration from the files, with the given client policy.
    pub fn load(&self, client_auth: ClientAuth) -> anyhow::Result<ServerConfig> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.certificate)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot read the certificate chain {}: {e}; give a PEM file with --ssl-certificate-location",
                    self.certificate.display()
                )
            })?;
        if certs.is_empty() {
            anyhow::bail!(
                "{} holds no PEM certificate; give the broker's certificate with --ssl-certificate-location",
                self.certificate.display()
            );
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the private key {}: {e}; give a PEM key with --ssl-key-location",
                self.key.display()
            )
        })?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
        let builder = match client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Requested | ClientAuth::Required => {
                let path = self.truststore.as_ref().ok_or_else(|| {
                    anyhow::anyhow!(
                        "client certificates are asked for but no CA is trusted: give --ssl-truststore-location"
                    )
                })?;
                let mut roots = RootCertStore::empty();
                let cas = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        anyhow::anyhow!("cannot read the truststore {}: {e}", path.display())
                    })?;
                let (added, _) = roots.add_parsable_certificates(cas);
                if added == 0 {
                    anyhow::bail!(
                        "the truststore {} holds no usable CA certificate",
                        path.display()
                    );
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if client_auth == ClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(Arc::new(KafkaAlerts(verifier.build()?)))
            }
        };
        builder.with_single_cert(certs, key).map_err(|e| {
            anyhow::anyhow!(
                "the key {} does not go with the certificate {}: {e}",
                self.key.display(),
                self.certificate.display()
            )
        })
    }
}

/// Client certificate checks as webpki makes them, with the alert Kafka's brokers send for
/// a certificate from a CA they do not trust: `certificate_unknown` rather than rustls's
/// `unknown_ca`, so clients report the refusal as they do against Kafka.
#[derive(Debug)]
struct KafkaAlerts(Arc<dyn rustls::server::danger::ClientCertVerifier>);

impl rustls::server::danger::ClientCertVerifier for KafkaAlerts {
    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        self.0
            .verify_client_cert(end_entity, intermediates, now)
            .map_err(|e| match e {
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
                        rustls::OtherError(Arc::new(UntrustedIssuer)),
                    ))
                }
                other => other,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A client certificate not issued by a trusted CA.
#[derive(Debug)]
struct UntrustedIssuer;

impl std::fmt::Display for UntrustedIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the client certificate's issuer is not in the truststore")
    }
}

impl std::error::Error for UntrustedIssuer {}

struct Loaded {
    acceptor: TlsAcceptor,
    stamps: Vec<Option<(SystemTime, u64)>>,
    checked: Instant,
}

/// One TLS listener's acceptor, rebuilt when its files change.
pub struct TlsContext {
    settings: TlsSettings,
    client_auth: ClientAuth,
    loaded: Mutex<Loaded>,
}

impl TlsContext {
    /// Loads the files now: a listener does not start with TLS files that do not load.
    pub fn new(settings: TlsSettings, client_auth: ClientAuth) -> anyhow::Result<TlsContext> {
        let stamps = settings.stamps();
        let config = settings.load(client_auth)?;
        Ok(TlsContext {
            loaded: Mutex::new(Loaded {
                acceptor: TlsAcceptor::from(Arc::new(config)),
                stamps,
                checked: Instant::now(),
            }),
            settings,
            client_auth,
        })
    }

    /// The acceptor for a new connection, reloaded first if a file changed.
    pub fn acceptor(&self) -> TlsAcceptor {
        let mut loaded = self.loaded.lock();
        if loaded.checked.elapsed() >= RELOAD_CHECK_INTERVAL {
            loaded.checked = Instant::now();
            let stamps = self.settings.stamps();
            if stamps != loaded.stamps {
                loaded.stamps = stamps;
                match self.settings.load(self.client_auth) {
                    Ok(config) => {
                        loaded.acceptor = TlsAcceptor::from(Arc::new(config));
                        tracing::info!(certificate = %self.settings.certificate.display(), "TLS files changed: reloaded");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS files changed but do not load: keeping the previous ones");
                    }
                }
            }
        }
        loaded.acceptor.clone()
    }
}

/// RFC 2253 keywords for the attribute types that have one.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// Escapes an attribute value as RFC 2253 section 2.4 asks.
fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A certificate's subject as RFC 2253 writes it: the last RDN first, `type=value` pairs
/// separated by commas, with `+` inside a multi-valued RDN. Attributes without a keyword
/// are written as their OID and the hex of their encoded value. None if the certificate
/// does not parse.
pub fn subject_rfc2253(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter() {
        let mut parts = Vec::new();
        for attr in rdn.iter() {
            let oid = attr.attr_type().to_id_string();
            let part = match (keyword(&oid), attr.as_str()) {
                (Some(k), Ok(v)) => format!("{k}={}", escape_value(v)),
                (_, _) => {
                    let raw = attr.attr_value();
                    let mut hex = format!("{:02x}", raw.header.tag().0 as u8);
                    let len = raw.data.len();
                    hex.push_str(&der_length_hex(len));
                    for b in raw.data {
                        hex.push_str(&format!("{b:02x}"));
                    }
                    format!("{oid}=#{hex}")
                }
            };
            parts.push(part);
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// A DER length in hex.
fn der_length_hex(len: usize) -> String {
    if len < 0x80 {
        return format!("{len:02x}");
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut s = format!("{:02x}", 0x80 | bytes.len() as u8);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_as_rfc_2253_says() {
        // Goal: specials are escaped; a leading '#' or space and a trailing space too.
        assert_eq!(escape_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_value("#x "), "\\#x\\ ");
        assert_eq!(escape_value("plain"), "plain");
        assert_eq!(der_length_hex(5), "05");
        assert_eq!(der_length_hex(300), "82012c");
    }
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("certificate", &self.settings.certificate)
            .field("client_auth", &self.client_auth)
            .finish()
    }
}
