//! `weir serve`'s listener and security flags, named after Kafka's settings.

use std::path::PathBuf;

use weir_broker::security::listener::{apply_advertised, parse_listeners, parse_protocol_map};
use weir_broker::security::listener_overrides::{
    parse_listener_setting, parse_mechanisms, ListenerOverridesByName,
};
use weir_broker::security::oauthbearer::OAuthSettings;
use weir_broker::security::principal::PrincipalMapping;
use weir_broker::security::tls::{ClientAuth, TlsSettings};
use weir_broker::BrokerConfig;

#[derive(clap::Args)]
pub struct SecurityArgs {
    /// Listeners, Kafka style: NAME://host:port,... where NAME is PLAINTEXT, SSL,
    /// SASL_PLAINTEXT or SASL_SSL, or a name mapped to one. Replaces --listen.
    #[arg(long, env = "WEIR_LISTENERS")]
    listeners: Option<String>,
    /// NAME:PROTOCOL,... for listeners whose name is not a security protocol.
    #[arg(long, env = "WEIR_LISTENER_SECURITY_PROTOCOL_MAP")]
    listener_security_protocol_map: Option<String>,
    /// NAME://host:port,... that clients are told to connect to, per listener.
    #[arg(long, env = "WEIR_ADVERTISED_LISTENERS")]
    advertised_listeners: Option<String>,
    /// The broker's certificate chain, PEM (SSL and SASL_SSL listeners).
    #[arg(long, env = "WEIR_SSL_CERTIFICATE_LOCATION", value_name = "FILE")]
    ssl_certificate_location: Option<PathBuf>,
    /// The broker's private key, PEM.
    #[arg(long, env = "WEIR_SSL_KEY_LOCATION", value_name = "FILE")]
    ssl_key_location: Option<PathBuf>,
    /// CA certificates trusted for client certificates, PEM.
    #[arg(long, env = "WEIR_SSL_TRUSTSTORE_LOCATION", value_name = "FILE")]
    ssl_truststore_location: Option<PathBuf>,
    /// Client certificates on SSL listeners: none, requested or required (mTLS).
    #[arg(long, env = "WEIR_SSL_CLIENT_AUTH", default_value = "none")]
    ssl_client_auth: String,
    /// How a client certificate's subject becomes a principal name (Kafka's
    /// ssl.principal.mapping.rules), e.g. 'RULE:^CN=([^,]+),.*$/$1/L,DEFAULT'.
    #[arg(
        long,
        env = "WEIR_SSL_PRINCIPAL_MAPPING_RULES",
        default_value = "DEFAULT"
    )]
    ssl_principal_mapping_rules: String,
    /// SASL mechanisms offered on SASL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512,
    /// OAUTHBEARER.
    #[arg(
        long,
        env = "WEIR_SASL_ENABLED_MECHANISMS",
        default_value = "SCRAM-SHA-512,SCRAM-SHA-256"
    )]
    sasl_enabled_mechanisms: String,
    /// One listener's own setting, as Kafka names it:
    /// 'listener.name.internal.ssl.client.auth=required' or
    /// 'listener.name.external.sasl.enabled.mechanisms=SCRAM-SHA-512'. Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    listener_config: Vec<String>,
    /// A SCRAM credential to create at start if the user has none for that mechanism,
    /// as kafka-storage's --add-scram takes it: 'SCRAM-SHA-256=[name=alice,password=…]'.
    /// Repeatable.
    #[arg(long, value_name = "CREDENTIAL")]
    add_scram: Vec<String>,
    /// JWKS file whose keys sign OAUTHBEARER tokens (Kafka's
    /// sasl.oauthbearer.jwks.endpoint.url, as a file); reread when it changes.
    #[arg(long, env = "WEIR_SASL_OAUTHBEARER_JWKS_FILE", value_name = "FILE")]
    sasl_oauthbearer_jwks_file: Option<PathBuf>,
    /// The issuer (`iss`) OAUTHBEARER tokens must name.
    #[arg(long, env = "WEIR_SASL_OAUTHBEARER_EXPECTED_ISSUER")]
    sasl_oauthbearer_expected_issuer: Option<String>,
    /// Audiences (`aud`), comma-separated: a token must name one of them.
    #[arg(long, env = "WEIR_SASL_OAUTHBEARER_EXPECTED_AUDIENCE")]
    sasl_oauthbearer_expected_audience: Option<String>,
    /// The claim holding the principal's name.
    #[arg(
        long,
        env = "WEIR_SASL_OAUTHBEARER_SUB_CLAIM_NAME",
        default_value = "sub"
    )]
    sasl_oauthbearer_sub_claim_name: String,
    /// Clock difference allowed when checking a token's exp and nbf, in seconds.
    #[arg(
        long,
        env = "WEIR_SASL_OAUTHBEARER_CLOCK_SKEW_SECONDS",
        default_value_t = 30
    )]
    sasl_oauthbearer_clock_skew_seconds: u32,
    /// How long a SASL authentication lasts before the client must re-authenticate on its
    /// connection (Kafka's connections.max.reauth.ms, KIP-368); 0 for as long as it is open.
    #[arg(long, env = "WEIR_CONNECTIONS_MAX_REAUTH_MS", default_value_t = 0)]
    connections_max_reauth_ms: u64,
    /// `acl` checks every request against the ACLs, as Kafka's StandardAuthorizer does
    /// (no matching ACL means deny); `none` allows everything.
    #[arg(long, env = "WEIR_AUTHORIZER", default_value = "none", value_parser = ["none", "acl"])]
    authorizer: String,
    /// Principals allowed everything, separated by semicolons as in Kafka's super.users:
    /// 'User:admin;User:CN=ops'.
    #[arg(long, env = "WEIR_SUPER_USERS", value_name = "PRINCIPALS")]
    super_users: Option<String>,
    /// Lets everyone act on a resource that has no ACL at all (Kafka's
    /// allow.everyone.if.no.acl.found).
    #[arg(long, env = "WEIR_ALLOW_EVERYONE_IF_NO_ACL_FOUND")]
    allow_everyone_if_no_acl_found: bool,
}

impl SecurityArgs {
    /// Sets the listeners and security of `config`. `advertised_address` is the older
    /// single-listener flag, which goes with --listen only.
    pub fn apply(
        &self,
        advertised_address: Option<(String, i32)>,
        config: &mut BrokerConfig,
    ) -> anyhow::Result<()> {
        if let Some(listeners) = &self.listeners {
            if advertised_address.is_some() {
                anyhow::bail!("--advertised-address goes with --listen; with --listeners give --advertised-listeners");
            }
            let map = match &self.listener_security_protocol_map {
                Some(m) => parse_protocol_map(m).map_err(anyhow::Error::msg)?,
                None => Default::default(),
            };
            config.listeners = parse_listeners(listeners, &map).map_err(anyhow::Error::msg)?;
        } else if let Some((host, port)) = advertised_address {
            let first = &mut config.listeners[0];
            first.advertised_host = host;
            first.advertised_port = port;
        }
        if let Some(advertised) = &self.advertised_listeners {
            if self.listeners.is_none() {
                anyhow::bail!("--advertised-listeners goes with --listeners; with --listen give --advertised-address");
            }
            apply_advertised(&mut config.listeners, advertised).map_err(anyhow::Error::msg)?;
        }
        let client_auth = ClientAuth::from_name(&self.ssl_client_auth).ok_or_else(|| {
            anyhow::anyhow!(
                "--ssl-client-auth '{}' must be none, requested or required",
                self.ssl_client_auth
            )
        })?;
        config.security.tls = match (&self.ssl_certificate_location, &self.ssl_key_location) {
            (Some(certificate), Some(key)) => Some(TlsSettings {
                certificate: certificate.clone(),
                key: key.clone(),
                truststore: self.ssl_truststore_location.clone(),
                client_auth,
            }),
            (None, None) => None,
            _ => anyhow::bail!(
                "give both --ssl-certificate-location and --ssl-key-location, or neither"
            ),
        };
        config.security.sasl_mechanisms =
            parse_mechanisms(&self.sasl_enabled_mechanisms).map_err(anyhow::Error::msg)?;
        let mut overrides = ListenerOverridesByName::new();
        for entry in &self.listener_config {
            parse_listener_setting(entry, &mut overrides).map_err(anyhow::Error::msg)?;
        }
        if let Some(name) = overrides
            .keys()
            .find(|name| !config.listeners.iter().any(|l| &l.name == *name))
        {
            let known: Vec<&str> = config.listeners.iter().map(|l| l.name.as_str()).collect();
            anyhow::bail!(
                "--listener-config names listener '{}', which --listeners does not have ({})",
                name.to_ascii_lowercase(),
                known.join(", ")
            );
        }
        config.security.listener_overrides = overrides;
        config.security.principal_mapping =
            PrincipalMapping::parse(&self.ssl_principal_mapping_rules)
                .map_err(anyhow::Error::msg)?;
        config.security.add_scram = self.add_scram.clone();
        config.security.connections_max_reauth_ms = self.connections_max_reauth_ms;
        config.security.authorizer = self.authorizer == "acl";
        config.security.super_users = match &self.super_users {
            Some(list) => parse_super_users(list)?,
            None => Vec::new(),
        };
        config.security.allow_everyone_if_no_acl_found = self.allow_everyone_if_no_acl_found;
        config.security.oauth = self.sasl_oauthbearer_jwks_file.as_ref().map(|jwks| {
            let mut o = OAuthSettings::new(jwks.clone());
            o.expected_issuer = self.sasl_oauthbearer_expected_issuer.clone();
            o.expected_audience = self
                .sasl_oauthbearer_expected_audience
                .iter()
                .flat_map(|a| a.split(','))
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect();
            o.sub_claim = self.sasl_oauthbearer_sub_claim_name.clone();
            o.clock_skew_ms = i64::from(self.sasl_oauthbearer_clock_skew_seconds) * 1000;
            o
        });
        Ok(())
    }
}

/// Kafka's super.users: `User:name` entries separated by semicolons.
fn parse_super_users(list: &str) -> anyhow::Result<Vec<String>> {
    list.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(p.to_string()),
            _ => anyhow::bail!(
                "--super-users entry '{p}' is not a principal: write it as User:name, entries separated by ';'"
            ),
        })
        .collect()
}
