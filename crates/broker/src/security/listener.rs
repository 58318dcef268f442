//! Listeners: where weir accepts connections, and with which security protocol.
//!
//! Spelled as Kafka spells them: `--listeners NAME://host:port,...` where NAME is a
//! security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) or any name mapped to
//! one by `--listener-security-protocol-map NAME:PROTOCOL,...`; `--advertised-listeners`
//! in the same syntax tells clients where to connect, per listener.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

/// Most listeners one broker opens.
pub const LISTENERS_MAX: usize = 16;

/// How a listener's connections are secured (Kafka's `SecurityProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn from_name(name: &str) -> Option<SecurityProtocol> {
        SecurityProtocol::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One listener: its name, protocol, the address it binds and the one it advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub name: String,
    pub protocol: SecurityProtocol,
    pub bind: SocketAddr,
    pub advertised_host: String,
    /// 0 until bound: then the port the listener got (for binds to port 0).
    pub advertised_port: i32,
}

impl ListenerConfig {
    /// A PLAINTEXT listener advertising the address it binds.
    pub fn plaintext(bind: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            name: SecurityProtocol::Plaintext.name().to_string(),
            protocol: SecurityProtocol::Plaintext,
            bind,
            advertised_host: bind.ip().to_string(),
            advertised_port: i32::from(bind.port()),
        }
    }
}

/// Splits `NAME://host:port`; an empty host means all interfaces, as in Kafka.
fn split_endpoint(s: &str) -> Result<(String, String, u16), String> {
    let (name, rest) = s
        .split_once("://")
        .ok_or_else(|| format!("listener '{s}' must look like NAME://host:port"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("listener '{s}' has no port: give NAME://host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("listener '{s}' has a bad port '{port}'"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() {
        return Err(format!("listener '{s}' has no name"));
    }
    Ok((name.to_ascii_uppercase(), host.to_string(), port))
}

/// `--listener-security-protocol-map`: `NAME:PROTOCOL,...`.
pub fn parse_protocol_map(s: &str) -> Result<BTreeMap<String, SecurityProtocol>, String> {
    let mut map = BTreeMap::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, protocol) = entry
            .split_once(':')
            .ok_or_else(|| format!("protocol map entry '{entry}' must be NAME:PROTOCOL"))?;
        let protocol = SecurityProtocol::from_name(protocol).ok_or_else(|| {
            format!("protocol map entry '{entry}': '{protocol}' is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
        })?;
        map.insert(name.to_ascii_uppercase(), protocol);
    }
    Ok(map)
}

/// `--listeners`: each listener's protocol comes from the map, or from its name when the
/// name is a protocol's.
pub fn parse_listeners(
    s: &str,
    protocol_map: &BTreeMap<String, SecurityProtocol>,
) -> Result<Vec<ListenerConfig>, String> {
    let mut listeners: Vec<ListenerConfig> = Vec::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, host, port) = split_endpoint(entry)?;
        let protocol = protocol_map
            .get(&name)
            .copied()
            .or_else(|| SecurityProtocol::from_name(&name))
            .ok_or_else(|| {
                format!("listener '{name}' has no security protocol: name it after one (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) or map it with --listener-security-protocol-map {name}:PROTOCOL")
            })?;
        let bind_host = if host.is_empty() { "0.0.0.0" } else { &host };
        let bind = (bind_host, port)
            .to_socket_addrs()
            .map_err(|e| format!("listener '{entry}': cannot resolve '{bind_host}': {e}"))?
            .next()
            .ok_or_else(|| format!("listener '{entry}': '{bind_host}' resolves to nothing"))?;
        if listeners.iter().any(|l| l.name == name) {
            return Err(format!(
                "listener name '{name}' appears twice in --listeners"
            ));
        }
        if port != 0 && listeners.iter().any(|l| l.bind == bind) {
            return Err(format!("two listeners bind {bind}"));
        }
        let advertised_host = if host.is_empty() {
            "localhost".to_string()
        } else {
            host.clone()
        };
        listeners.push(ListenerConfig {
            name,
            protocol,
            bind,
            advertised_host,
            advertised_port: i32::from(port),
        });
    }
    if listeners.is_empty() {
        return Err("--listeners names no listener".to_string());
    }
    if listeners.len() > LISTENERS_MAX {
        return Err(format!("at most {LISTENERS_MAX} listeners are allowed"));
    }
    Ok(listeners)
}

/// `--advertised-listeners`: replaces the advertised address of each listener it names.
pub fn apply_advertised(listeners: &mut [ListenerConfig], s: &str) -> Result<(), String> {
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, host, port) = split_endpoint(entry)?;
        let listener = listeners
            .iter_mut()
            .find(|l| l.name == name)
            .ok_or_else(|| format!("advertised listener '{name}' is not one of --listeners"))?;
        if host.is_empty() {
            return Err(format!("advertised listener '{entry}' needs a host"));
        }
        listener.advertised_host = host;
        listener.advertised_port = i32::from(port);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_take_their_protocol_from_the_name_or_the_map() {
        // Goal: Kafka's spellings parse, and a listener without a protocol is one clear error.
        let map = parse_protocol_map("INTERNAL:SASL_SSL").unwrap();
        let l = parse_listeners(
            "PLAINTEXT://127.0.0.1:9092, ssl://127.0.0.1:9093,INTERNAL://127.0.0.1:9094",
            &map,
        )
        .unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].protocol, SecurityProtocol::Plaintext);
        assert_eq!(l[1].name, "SSL");
        assert_eq!(l[1].protocol, SecurityProtocol::Ssl);
        assert_eq!(l[2].protocol, SecurityProtocol::SaslSsl);
        let e = parse_listeners("OTHER://127.0.0.1:1", &BTreeMap::new()).unwrap_err();
        assert!(
            e.contains("--listener-security-protocol-map OTHER:PROTOCOL"),
            "{e}"
        );
        assert!(parse_listeners("PLAINTEXT://127.0.0.1", &map).is_err());
        assert!(parse_listeners("PLAINTEXT://a:1,PLAINTEXT://b:2", &map).is_err());
    }

    #[test]
    fn advertised_listeners_replace_by_name() {
        // Goal: each listener advertises its own address; an unknown name is refused.
        let mut l = parse_listeners("PLAINTEXT://:9092,SSL://:9093", &BTreeMap::new()).unwrap();
        assert_eq!(l[0].bind.ip().to_string(), "0.0.0.0");
        apply_advertised(&mut l, "SSL://broker1.example.com:19093").unwrap();
        assert_eq!(l[1].advertised_host, "broker1.example.com");
        assert_eq!(l[1].advertised_port, 19093);
        assert_eq!(l[0].advertised_port, 9092);
        assert!(apply_advertised(&mut l, "SASL_SSL://x:1").is_err());
    }
}
