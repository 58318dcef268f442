//! How the CLI's connections are secured: TLS and SASL settings, given as librdkafka's
//! client properties (`-X security.protocol=SASL_SSL`, or a profile's `[profiles.NAME.client]`
//! table), set once when the command starts.
//!
//! Known properties: `security.protocol` (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL),
//! `ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location` (PEM files),
//! `sasl.mechanism` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), `sasl.username`,
//! `sasl.password` (also from the `WEIR_SASL_PASSWORD` environment variable, which keeps it
//! out of the process list and shell history).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use anyhow::{anyhow, bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use weir_broker::security::listener::SecurityProtocol;
use weir_broker::security::sasl::Mechanism;

/// The properties weir's CLI understands.
pub const KNOWN_PROPERTIES: &[&str] = &[
    "security.protocol",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
];

/// A SASL identity to authenticate with.
#[derive(Clone)]
pub struct SaslLogin {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: String,
}

/// The settings every connection of this command uses.
#[derive(Clone)]
pub struct ClientSecurity {
    tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<SaslLogin>,
}

impl Default for ClientSecurity {
    fn default() -> ClientSecurity {
        ClientSecurity {
            tls: None,
            sasl: None,
        }
    }
}

static SETTINGS: OnceLock<ClientSecurity> = OnceLock::new();

/// The settings configured for this process (plaintext if none were).
pub fn settings() -> &'static ClientSecurity {
    SETTINGS.get_or_init(ClientSecurity::default)
}

/// Sets this process's settings from client properties; only the first call counts.
pub fn configure(properties: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let security = ClientSecurity::from_properties(properties)?;
    let _ = SETTINGS.set(security);
    Ok(())
}

/// Parses `KEY=VALUE` from `-X`.
pub fn parse_property(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("client property '{s}' must be KEY=VALUE"))?;
    Ok((k.trim().to_string(), v.to_string()))
}

fn load_tls(properties: &BTreeMap<String, String>) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match properties.get("ssl.ca.location") {
        Some(path) => {
            let cas = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| anyhow!("cannot read ssl.ca.location {path}: {e}"))?;
            let (added, _) = roots.add_parsable_certificates(cas);
            if added == 0 {
                bail!("ssl.ca.location {path} holds no CA certificate");
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                bail!("no system CA certificates found: give the broker's CA with -X ssl.ca.location=FILE");
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let cert = properties.get("ssl.certificate.location");
    let key = properties.get("ssl.key.location");
    Ok(match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| anyhow!("cannot read ssl.certificate.location {cert}: {e}"))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| anyhow!("cannot read ssl.key.location {key}: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("the client key does not go with its certificate")?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => bail!("give both ssl.certificate.location and ssl.key.location, or neither"),
    })
}

impl ClientSecurity {
    pub fn from_properties(
        properties: &BTreeMap<String, String>,
    ) -> anyhow::Result<ClientSecurity> {
        for key in properties.keys() {
            if !KNOWN_PROPERTIES.contains(&key.as_str()) {
                bail!(
                    "unknown client property '{key}'; weir knows {}",
                    KNOWN_PROPERTIES.join(", ")
                );
            }
        }
        let protocol = match properties.get("security.protocol") {
            Some(p) => SecurityProtocol::from_name(p).ok_or_else(|| {
                anyhow!(
                    "security.protocol '{p}' must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                )
            })?,
            None => SecurityProtocol::Plaintext,
        };
        let tls = if protocol.uses_tls() {
            Some(Arc::new(load_tls(properties)?))
        } else {
            None
        };
        let sasl = if protocol.uses_sasl() {
            let name = properties
                .get("sasl.mechanism")
                .or_else(|| properties.get("sasl.mechanisms"))
                .map(String::as_str)
                .unwrap_or("PLAIN");
            let mechanism = Mechanism::from_name(&name.to_ascii_uppercase())
                .filter(|m| *m != Mechanism::OAuthBearer)
                .ok_or_else(|| {
                    anyhow!("sasl.mechanism '{name}' must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
                })?;
            let username = properties
                .get("sasl.username")
                .cloned()
                .ok_or_else(|| anyhow!("{protocol} needs -X sasl.username=NAME"))?;
            let password = properties
                .get("sasl.password")
                .cloned()
                .or_else(|| std::env::var("WEIR_SASL_PASSWORD").ok())
                .ok_or_else(|| {
                    anyhow!(
                        "{protocol} needs a password: set WEIR_SASL_PASSWORD or -X sasl.password=…"
                    )
                })?;
            Some(SaslLogin {
                mechanism,
                username,
                password,
            })
        } else {
            None
        };
        Ok(ClientSecurity { tls, sasl })
    }
}

/// A connection's two halves, whatever carries them.
pub type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
pub type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// Wraps a connected socket in TLS when the settings ask for it.
pub async fn wrap(stream: TcpStream, address: &str) -> anyhow::Result<(ReadHalf, WriteHalf)> {
    let Some(tls) = &settings().tls else {
        let (r, w) = stream.into_split();
        return Ok((Box::new(r), Box::new(w)));
    };
    let host = address
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(address)
        .trim_matches(['[', ']']);
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| anyhow!("'{host}' is not a host name TLS can check"))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
        .connect(name, stream)
        .await
        .with_context(|| format!("TLS handshake with {address} failed; check ssl.ca.location and that the broker's listener is SSL or SASL_SSL"))?;
    let (r, w) = tokio::io::split(stream);
    Ok((Box::new(r), Box::new(w)))
}
