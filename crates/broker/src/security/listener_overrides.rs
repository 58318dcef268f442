//! Kafka's per-listener settings (`listener.name.<name>.<setting>`): what one listener does
//! differently from the broker-wide defaults. Two settings are taken, as
//! `weir serve --listener-config KEY=VALUE`:
//!
//! - `listener.name.<name>.ssl.client.auth`: none, requested or required. On an SSL
//!   listener it replaces `--ssl-client-auth`; on a SASL_SSL listener it is the only way to
//!   ask for client certificates, as in Kafka (the principal still comes from SASL).
//! - `listener.name.<name>.sasl.enabled.mechanisms`: the mechanisms that listener offers,
//!   in place of `--sasl-enabled-mechanisms`.

use std::collections::BTreeMap;

use super::sasl::Mechanism;
use super::tls::ClientAuth;

/// One listener's settings that differ from the broker's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerOverrides {
    pub ssl_client_auth: Option<ClientAuth>,
    pub sasl_mechanisms: Option<Vec<Mechanism>>,
}

/// Listener name (upper case, as listeners are named) → its settings.
pub type ListenerOverridesByName = BTreeMap<String, ListenerOverrides>;

/// `PLAIN,SCRAM-SHA-256`: the mechanisms, in order, each once.
pub fn parse_mechanisms(list: &str) -> Result<Vec<Mechanism>, String> {
    let mut mechanisms = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let m = Mechanism::from_name(name).ok_or_else(|| {
            format!("SASL mechanism '{name}' is not one weir offers: choose from PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER")
        })?;
        if !mechanisms.contains(&m) {
            mechanisms.push(m);
        }
    }
    Ok(mechanisms)
}

/// Reads one `listener.name.<name>.<setting>=<value>` into `into`.
pub fn parse_listener_setting(
    entry: &str,
    into: &mut ListenerOverridesByName,
) -> Result<(), String> {
    let (key, value) = entry
        .split_once('=')
        .ok_or_else(|| format!("--listener-config '{entry}' must be KEY=VALUE, such as listener.name.internal.ssl.client.auth=required"))?;
    let rest = key.trim().strip_prefix("listener.name.").ok_or_else(|| {
        format!("--listener-config key '{key}' must start with listener.name.<listener>.")
    })?;
    let (name, setting) = rest
        .split_once('.')
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| format!("--listener-config key '{key}' names no listener: write listener.name.<listener>.<setting>"))?;
    let overrides = into.entry(name.to_ascii_uppercase()).or_default();
    let value = value.trim();
    match setting {
        "ssl.client.auth" => {
            overrides.ssl_client_auth = Some(ClientAuth::from_name(value).ok_or_else(|| {
                format!("{key} '{value}' must be none, requested or required")
            })?);
        }
        "sasl.enabled.mechanisms" => {
            let mechanisms = parse_mechanisms(value)?;
            if mechanisms.is_empty() {
                return Err(format!("{key} names no mechanism"));
            }
            overrides.sasl_mechanisms = Some(mechanisms);
        }
        _ => {
            return Err(format!(
                "--listener-config '{key}': weir takes ssl.client.auth and sasl.enabled.mechanisms per listener"
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_per_listener_and_bad_ones_named() {
        let mut by_name = ListenerOverridesByName::new();
        parse_listener_setting(
            "listener.name.internal.ssl.client.auth=required",
            &mut by_name,
        )
        .unwrap();
        parse_listener_setting(
            "listener.name.internal.sasl.enabled.mechanisms=PLAIN, SCRAM-SHA-256,PLAIN",
            &mut by_name,
        )
        .unwrap();
        assert_eq!(
            by_name["INTERNAL"],
            ListenerOverrides {
                ssl_client_auth: Some(ClientAuth::Required),
                sasl_mechanisms: Some(vec![Mechanism::Plain, Mechanism::ScramSha256]),
            }
        );
        for (bad, says) in [
            ("listener.name.x.ssl.client.auth", "KEY=VALUE"),
            ("ssl.client.auth=required", "must start with listener.name."),
            ("listener.name..ssl.client.auth=none", "names no listener"),
            (
                "listener.name.x.ssl.client.auth=maybe",
                "none, requested or required",
            ),
            ("listener.name.x.sasl.enabled.mechanisms=GSSAPI", "GSSAPI"),
            (
                "listener.name.x.sasl.enabled.mechanisms=",
                "names no mechanism",
            ),
            ("listener.name.x.ssl.keystore.location=/k", "per listener"),
        ] {
            let e = parse_listener_setting(bad, &mut by_name).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
