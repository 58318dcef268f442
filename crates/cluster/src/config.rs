//! `ClusterConfig`: what a broker needs to join a cluster, checked before anything
//! connects.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ClusterError;

/// How long a broker's registration lives without a renewal (`--cluster-lease-ms`).
pub const LEASE_MS_DEFAULT: u64 = 10_000;
/// Below this, a renewal every lease/4 leaves too little room for one PostgreSQL round
/// trip under load; tests use 1000.
pub const LEASE_MS_MIN: u64 = 1_000;
/// Above this a dead broker stays listed (and its partitions led) for too long.
pub const LEASE_MS_MAX: u64 = 600_000;
/// How often a broker looks at PostgreSQL for changes a lost notification did not tell
/// it about (`--cluster-poll-ms`).
pub const POLL_MS_DEFAULT: u64 = 500;
/// Polling faster than this only loads PostgreSQL; notifications carry the fast path.
pub const POLL_MS_MIN: u64 = 10;
/// Kafka's node ids are non-negative `int32`s; PostgreSQL stores them as `int`.
pub const NODE_ID_MAX: i32 = i32::MAX;

/// Where clients reach a broker on one listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// A broker's settings for cluster mode (the `--cluster*` flags of `weir serve`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// libpq-style URL of the database (`--cluster`); the password may come from the URL
    /// or `PGPASSWORD`.
    pub postgres_url: String,
    /// The bucket and prefix of record data (`--object-store`); checked by its own module
    /// once it lands.
    pub object_store_url: String,
    pub lease_ms: u64,
    pub poll_ms: u64,
    /// `--node-id`; `None` takes the lowest id that no live broker holds.
    pub node_id: Option<i32>,
    /// Listener name → the endpoint other brokers and clients are told to use.
    pub advertised: BTreeMap<String, Endpoint>,
}

impl ClusterConfig {
    /// A config with the defaults for everything but the two URLs.
    pub fn new(
        postgres_url: impl Into<String>,
        object_store_url: impl Into<String>,
    ) -> ClusterConfig {
        ClusterConfig {
            postgres_url: postgres_url.into(),
            object_store_url: object_store_url.into(),
            lease_ms: LEASE_MS_DEFAULT,
            poll_ms: POLL_MS_DEFAULT,
            node_id: None,
            advertised: BTreeMap::new(),
        }
    }

    /// Checks every field; the error is one sentence naming the flag and the fix.
    pub fn validate(&self) -> Result<(), ClusterError> {
        let bad = |s: String| Err(ClusterError::Config(s));
        if !(self.postgres_url.starts_with("postgres://")
            || self.postgres_url.starts_with("postgresql://"))
        {
            return bad(format!(
                "--cluster must be a PostgreSQL URL such as postgresql://user@host:5432/weir, not {:?}",
                redact(&self.postgres_url)
            ));
        }
        if let Err(e) = tokio_postgres::Config::from_str(&self.postgres_url) {
            return bad(format!("--cluster is not a valid PostgreSQL URL ({e}); write it as postgresql://user@host:5432/database"));
        }
        if self.object_store_url.is_empty() {
            return bad("--object-store is required in cluster mode; give the bucket as s3://bucket/prefix?endpoint=...".into());
        }
        if !(LEASE_MS_MIN..=LEASE_MS_MAX).contains(&self.lease_ms) {
            return bad(format!(
                "--cluster-lease-ms is {} but must be between {LEASE_MS_MIN} and {LEASE_MS_MAX}; the default is {LEASE_MS_DEFAULT}",
                self.lease_ms
            ));
        }
        if self.poll_ms < POLL_MS_MIN || self.poll_ms > self.lease_ms {
            return bad(format!(
                "--cluster-poll-ms is {} but must be between {POLL_MS_MIN} and --cluster-lease-ms ({}); the default is {POLL_MS_DEFAULT}",
                self.poll_ms, self.lease_ms
            ));
        }
        if let Some(id) = self.node_id {
            if !(0..=NODE_ID_MAX).contains(&id) {
                return bad(format!(
                    "--node-id is {id} but must be 0 or more; omit it to take the lowest free id"
                ));
            }
        }
        if self.advertised.is_empty() {
            return bad("cluster mode needs at least one listener to advertise; give --listen or --listeners (and --advertised-address if clients reach this broker by another name)".into());
        }
        for (name, endpoint) in &self.advertised {
            if endpoint.host.is_empty() || endpoint.port == 0 {
                return bad(format!(
                    "the advertised endpoint of listener {name} is {}:{}, which other brokers and clients cannot reach; set --advertised-address to a host name and a port",
                    endpoint.host, endpoint.port
                ));
            }
        }
        Ok(())
    }

    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.lease_ms)
    }

    pub fn poll(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.poll_ms)
    }
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> ClusterConfig {
        let mut c = ClusterConfig::new("postgresql://weir@127.0.0.1:5432/weir", "s3://b/p");
        c.advertised.insert(
            "PLAINTEXT".into(),
            Endpoint {
                host: "b1".into(),
                port: 9092,
            },
        );
        c
    }

    #[test]
    fn defaults_are_valid_and_each_bad_field_names_its_flag() {
        // Goal: the defaults pass, and every refusal is one sentence naming the flag.
        assert_eq!(valid().validate().ok(), Some(()));
        type Breaks = fn(&mut ClusterConfig);
        let cases: Vec<(Breaks, &str)> = vec![
            (|c| c.postgres_url = "mysql://x".into(), "--cluster "),
            (
                |c| c.postgres_url = "postgresql://h:notaport/db".into(),
                "--cluster ",
            ),
            (|c| c.object_store_url.clear(), "--object-store"),
            (|c| c.lease_ms = 10, "--cluster-lease-ms"),
            (|c| c.lease_ms = LEASE_MS_MAX + 1, "--cluster-lease-ms"),
            (|c| c.poll_ms = 0, "--cluster-poll-ms"),
            (|c| c.poll_ms = c.lease_ms + 1, "--cluster-poll-ms"),
            (|c| c.node_id = Some(-1), "--node-id"),
            (|c| c.advertised.clear(), "--listeners"),
            (
                |c| c.advertised.get_mut("PLAINTEXT").unwrap().port = 0,
                "--advertised-address",
            ),
        ];
        for (break_it, flag) in cases {
            let mut c = valid();
            break_it(&mut c);
            let message = c.validate().unwrap_err().to_string();
            assert!(message.contains(flag), "{message:?} does not name {flag}");
            assert!(!message.contains('\n'), "{message:?} is not one line");
        }
    }

    #[test]
    fn redact_drops_the_password_only() {
        // Goal: messages never show a password from the URL, and keep the rest.
        assert_eq!(
            redact("postgresql://u:secret@h:5/db?x=1"),
            "postgresql://u@h:5/db?x=1"
        );
        assert_eq!(redact("postgresql://h/db"), "postgresql://h/db");
    }
}
