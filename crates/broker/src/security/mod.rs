//! Who may connect and who they are: listeners with their security protocol, TLS,
//! SASL authentication, and the principal a connection acts as.
//!
//! Layout:
//! - [`listener`]: `--listeners` and the security protocol of each.
//! - [`listener_overrides`]: Kafka's `listener.name.<name>.` settings (client
//!   certificates and SASL mechanisms per listener).
//! - [`tls`]: rustls acceptors built from PEM files, reloaded when they change, and the
//!   subject of a client certificate.
//! - [`oauthbearer`]: OAUTHBEARER's JSON Web Tokens, checked against a JWKS file (the
//!   `weir-auth` crate's, re-exported).
//! - [`principal`]: Kafka's principal (`User:alice`) and the certificate mapping rules.
//! - [`sasl`]: the SASL mechanisms, as exchanges without I/O (`weir-auth`'s, re-exported).
//! - [`session`]: one connection's authentication state: what it may send before it has
//!   authenticated, and the SaslHandshake and SaslAuthenticate answers.

pub mod listener;
pub mod listener_overrides;
pub mod principal;

pub use weir_auth::{oauthbearer, sasl};
pub mod session;
pub mod tls;

use listener::{ListenerConfig, SecurityProtocol};
use listener_overrides::ListenerOverridesByName;
use principal::PrincipalMapping;
use sasl::Mechanism;
use tls::{ClientAuth, TlsContext, TlsSettings};

/// The security settings of `weir serve`.
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// The broker's TLS files and `ssl.client.auth`; needed by SSL and SASL_SSL listeners.
    pub tls: Option<TlsSettings>,
    /// Kafka's `sasl.enabled.mechanisms`, in the order the handshake lists them.
    pub sasl_mechanisms: Vec<Mechanism>,
    /// Kafka's `ssl.principal.mapping.rules`.
    pub principal_mapping: PrincipalMapping,
    /// SCRAM credentials to create at start when the user has none for that mechanism,
    /// in the syntax of `kafka-storage format --add-scram`.
    pub add_scram: Vec<String>,
    /// OAUTHBEARER's token checks (Kafka's `sasl.oauthbearer.*`); needed when OAUTHBEARER
    /// is among the SASL mechanisms.
    pub oauth: Option<oauthbearer::OAuthSettings>,
    /// Kafka's `connections.max.reauth.ms`: how long a SASL authentication lasts before the
    /// client must authenticate again on the same connection (KIP-368); 0 for ever.
    pub connections_max_reauth_ms: u64,
    /// Whether requests are checked against the ACLs (Kafka's `authorizer.class.name`
    /// set to its StandardAuthorizer); off by default, when everything is allowed.
    pub authorizer: bool,
    /// Kafka's `super.users`: principals (`User:admin`) allowed everything.
    pub super_users: Vec<String>,
    /// Kafka's `allow.everyone.if.no.acl.found`.
    pub allow_everyone_if_no_acl_found: bool,
    /// Per-listener settings, by listener name.
    pub listener_overrides: ListenerOverridesByName,
}

impl Default for SecurityConfig {
    fn default() -> SecurityConfig {
        SecurityConfig {
            tls: None,
            // PLAIN sends the password itself; it is offered only when asked for.
            sasl_mechanisms: vec![Mechanism::ScramSha512, Mechanism::ScramSha256],
            principal_mapping: PrincipalMapping::default(),
            add_scram: Vec::new(),
            connections_max_reauth_ms: 0,
            oauth: None,
            authorizer: false,
            super_users: Vec::new(),
            allow_everyone_if_no_acl_found: false,
            listener_overrides: ListenerOverridesByName::new(),
        }
    }
}

/// A bound listener, as its connections see it.
#[derive(Debug)]
pub struct Listener {
    pub config: ListenerConfig,
    /// Present on SSL and SASL_SSL listeners.
    pub tls: Option<TlsContext>,
    pub sasl_mechanisms: Vec<Mechanism>,
    pub principal_mapping: PrincipalMapping,
    /// See [`SecurityConfig::connections_max_reauth_ms`].
    pub reauth_ms: u64,
    /// Checks OAUTHBEARER tokens, when OAUTHBEARER is enabled.
    pub oauth: Option<oauthbearer::OAuthValidator>,
}

impl Listener {
    /// Prepares a listener's TLS; `config.advertised_port` must already be the bound port.
    ///
    /// Kafka applies `ssl.client.auth` to SSL listeners; a SASL_SSL listener authenticates
    /// with SASL and asks for no certificate unless its own `listener.name.<name>.`
    /// setting asks for one. A listener's own mechanisms replace the broker's.
    pub fn new(config: ListenerConfig, security: &SecurityConfig) -> anyhow::Result<Listener> {
        let overrides = security
            .listener_overrides
            .get(&config.name)
            .cloned()
            .unwrap_or_default();
        let sasl_mechanisms = overrides
            .sasl_mechanisms
            .unwrap_or_else(|| security.sasl_mechanisms.clone());
        let tls = if config.protocol.uses_tls() {
            let settings = security.tls.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "listener {} is {} but no certificate is given: set --ssl-certificate-location and --ssl-key-location",
                    config.name,
                    config.protocol
                )
            })?;
            let client_auth = match overrides.ssl_client_auth {
                Some(own) => own,
                None if config.protocol == SecurityProtocol::Ssl => settings.client_auth,
                None => ClientAuth::None,
            };
            Some(TlsContext::new(settings, client_auth)?)
        } else {
            None
        };
        if config.protocol.uses_sasl() && sasl_mechanisms.is_empty() {
            anyhow::bail!(
                "listener {} is {} but no SASL mechanism is enabled: set --sasl-enabled-mechanisms",
                config.name,
                config.protocol
            );
        }
        let oauth = if config.protocol.uses_sasl()
            && sasl_mechanisms.contains(&Mechanism::OAuthBearer)
        {
            let settings = security.oauth.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "OAUTHBEARER is enabled but no key set is given: set --sasl-oauthbearer-jwks-file"
                )
            })?;
            Some(oauthbearer::OAuthValidator::new(settings)?)
        } else {
            None
        };
        Ok(Listener {
            config,
            tls,
            oauth,
            sasl_mechanisms,
            principal_mapping: security.principal_mapping.clone(),
            reauth_ms: security.connections_max_reauth_ms,
        })
    }
}
