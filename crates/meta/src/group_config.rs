//! The group configs weir serves (Kafka's `GroupConfig`, resource type 32 of DescribeConfigs
//! and IncrementalAlterConfigs): a consumer group's own session timeout and heartbeat
//! interval, checked as Kafka 4.x checks them, against the broker's bounds.
//!
//! Kafka's other group configs (`share.*`, `streams.*`, `consumer.assignment.interval.ms`,
//! `errors.deadletterqueue.*`) belong to group types or features weir does not have, so
//! their names are refused as unknown.

use std::collections::BTreeMap;

use crate::MetaError;

/// A consumer group's session timeout: its members are removed after this long without a
/// heartbeat.
pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
/// How often a consumer group's members are told to heartbeat.
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";

/// One group config: its name, and the broker setting that gives its default.
pub struct GroupConfigDef {
    pub name: &'static str,
    /// The broker's setting (Kafka's name) a group without an override gets.
    pub broker_name: &'static str,
    /// Kafka's default of that broker setting.
    pub kafka_default: i32,
}

/// Every group config weir knows, sorted by name.
pub const GROUP_CONFIGS: &[GroupConfigDef] = &[
    GroupConfigDef {
        name: CONSUMER_HEARTBEAT_INTERVAL_MS,
        broker_name: "group.consumer.heartbeat.interval.ms",
        kafka_default: 5_000,
    },
    GroupConfigDef {
        name: CONSUMER_SESSION_TIMEOUT_MS,
        broker_name: "group.consumer.session.timeout.ms",
        kafka_default: 45_000,
    },
];

pub fn find(name: &str) -> Option<&'static GroupConfigDef> {
    GROUP_CONFIGS.iter().find(|d| d.name == name)
}

/// What the broker lets a group config be: its defaults and bounds (Kafka's
/// `group.consumer.*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfigLimits {
    pub consumer_session_timeout_ms: i32,
    /// Kafka's `group.consumer.min.session.timeout.ms` and `max.session.timeout.ms`.
    pub consumer_session_timeout_bounds_ms: (i32, i32),
    pub consumer_heartbeat_interval_ms: i32,
    /// Kafka's `group.consumer.min.heartbeat.interval.ms` and `max.heartbeat.interval.ms`.
    pub consumer_heartbeat_interval_bounds_ms: (i32, i32),
}

impl GroupConfigLimits {
    /// The broker's value of a group config, the one a group without an override gets.
    pub fn default_of(&self, name: &str) -> Option<i32> {
        match name {
            CONSUMER_SESSION_TIMEOUT_MS => Some(self.consumer_session_timeout_ms),
            CONSUMER_HEARTBEAT_INTERVAL_MS => Some(self.consumer_heartbeat_interval_ms),
            _ => None,
        }
    }
}

/// One group's overrides, typed; `None` where the group takes the broker's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupConfigOverrides {
    pub consumer_session_timeout_ms: Option<i32>,
    pub consumer_heartbeat_interval_ms: Option<i32>,
}

fn invalid(message: String) -> MetaError {
    MetaError::InvalidGroupConfig(message)
}

/// Parses one value as Kafka's `ConfigDef` parses an INT of at least 1: surrounding blanks
/// are ignored.
fn parse_int(name: &str, value: &str) -> Result<i32, MetaError> {
    let v: i32 = value.trim().parse().map_err(|_| {
        invalid(format!(
            "Invalid value {value} for configuration {name}: Not a number of type INT"
        ))
    })?;
    if v < 1 {
        return Err(invalid(format!(
            "Invalid value {v} for configuration {name}: Value must be at least 1"
        )));
    }
    Ok(v)
}

/// Checks a group's whole set of overrides as Kafka does, in Kafka's order, with Kafka's
/// messages: every name known, every value an INT of at least 1, each within the broker's
/// bounds (heartbeat interval first), and the session timeout, with the broker's value
/// where the group has none, longer than the heartbeat interval. Returns them typed.
pub fn validate(
    configs: &BTreeMap<String, String>,
    limits: &GroupConfigLimits,
) -> Result<GroupConfigOverrides, MetaError> {
    if let Some(name) = configs.keys().find(|n| find(n).is_none()) {
        return Err(invalid(format!("Unknown group config name: {name}")));
    }
    let mut overrides = GroupConfigOverrides::default();
    for (name, value) in configs {
        let v = parse_int(name, value)?;
        match name.as_str() {
            CONSUMER_SESSION_TIMEOUT_MS => overrides.consumer_session_timeout_ms = Some(v),
            CONSUMER_HEARTBEAT_INTERVAL_MS => overrides.consumer_heartbeat_interval_ms = Some(v),
            other => unreachable!("{other} was found among the group configs"),
        }
    }
    let heartbeat = overrides
        .consumer_heartbeat_interval_ms
        .unwrap_or(limits.consumer_heartbeat_interval_ms);
    let session = overrides
        .consumer_session_timeout_ms
        .unwrap_or(limits.consumer_session_timeout_ms);
    for (name, v, (min, max)) in [
        (
            CONSUMER_HEARTBEAT_INTERVAL_MS,
            heartbeat,
            limits.consumer_heartbeat_interval_bounds_ms,
        ),
        (
            CONSUMER_SESSION_TIMEOUT_MS,
            session,
            limits.consumer_session_timeout_bounds_ms,
        ),
    ] {
        if configs.contains_key(name) && !(min..=max).contains(&v) {
            return Err(invalid(format!(
                "{name} must be in the range {min} to {max} inclusive."
            )));
        }
    }
    if session <= heartbeat {
        return Err(invalid(format!(
            "{CONSUMER_SESSION_TIMEOUT_MS} must be greater than {CONSUMER_HEARTBEAT_INTERVAL_MS}"
        )));
    }
    Ok(overrides)
}

/// The overrides as they are stored: each value written the way it parsed (`" 7000 "` is
/// kept as `7000`, as Kafka keeps it).
pub fn normalized(overrides: &GroupConfigOverrides) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(v) = overrides.consumer_heartbeat_interval_ms {
        out.insert(CONSUMER_HEARTBEAT_INTERVAL_MS.to_string(), v.to_string());
    }
    if let Some(v) = overrides.consumer_session_timeout_ms {
        out.insert(CONSUMER_SESSION_TIMEOUT_MS.to_string(), v.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: GroupConfigLimits = GroupConfigLimits {
        consumer_session_timeout_ms: 6_000,
        consumer_session_timeout_bounds_ms: (6_000, 60_000),
        consumer_heartbeat_interval_ms: 500,
        consumer_heartbeat_interval_bounds_ms: (500, 15_000),
    };

    fn check(pairs: &[(&str, &str)]) -> Result<GroupConfigOverrides, String> {
        let configs = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        validate(&configs, &LIMITS).map_err(|e| e.to_string())
    }

    #[test]
    fn refuses_what_kafka_refuses_with_its_messages() {
        // Goal: each refusal of Kafka 4.4's GroupConfig validation, with the same sentence
        // (seen from a real Kafka 4.4 broker started with these limits).
        assert_eq!(
            check(&[("consumer.foo", "1")]).unwrap_err(),
            "Unknown group config name: consumer.foo"
        );
        assert_eq!(
            check(&[("share.session.timeout.ms", "45000")]).unwrap_err(),
            "Unknown group config name: share.session.timeout.ms"
        );
        assert_eq!(
            check(&[(CONSUMER_SESSION_TIMEOUT_MS, "abc")]).unwrap_err(),
            "Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT"
        );
        assert_eq!(
            check(&[(CONSUMER_SESSION_TIMEOUT_MS, "99999999999")]).unwrap_err(),
            "Invalid value 99999999999 for configuration consumer.session.timeout.ms: Not a number of type INT"
        );
        assert_eq!(
            check(&[(CONSUMER_SESSION_TIMEOUT_MS, "0")]).unwrap_err(),
            "Invalid value 0 for configuration consumer.session.timeout.ms: Value must be at least 1"
        );
        assert_eq!(
            check(&[(CONSUMER_SESSION_TIMEOUT_MS, "1000")]).unwrap_err(),
            "consumer.session.timeout.ms must be in the range 6000 to 60000 inclusive."
        );
        assert_eq!(
            check(&[(CONSUMER_SESSION_TIMEOUT_MS, "60001")]).unwrap_err(),
            "consumer.session.timeout.ms must be in the range 6000 to 60000 inclusive."
        );
        assert_eq!(
            check(&[(CONSUMER_HEARTBEAT_INTERVAL_MS, "20000")]).unwrap_err(),
            "consumer.heartbeat.interval.ms must be in the range 500 to 15000 inclusive."
        );
        // Both out of range: the heartbeat interval is named first, as in Kafka.
        assert_eq!(
            check(&[
                (CONSUMER_SESSION_TIMEOUT_MS, "1000"),
                (CONSUMER_HEARTBEAT_INTERVAL_MS, "100")
            ])
            .unwrap_err(),
            "consumer.heartbeat.interval.ms must be in the range 500 to 15000 inclusive."
        );
        // The broker's session timeout (6000) stands where the group sets none.
        assert_eq!(
            check(&[(CONSUMER_HEARTBEAT_INTERVAL_MS, "6000")]).unwrap_err(),
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
        );
        assert_eq!(
            check(&[
                (CONSUMER_SESSION_TIMEOUT_MS, "7000"),
                (CONSUMER_HEARTBEAT_INTERVAL_MS, "7000")
            ])
            .unwrap_err(),
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
        );
    }

    #[test]
    fn accepts_values_within_the_bounds() {
        // Goal: values within the bounds come back typed, blanks ignored, and are stored
        // the way they parsed.
        let o = check(&[
            (CONSUMER_SESSION_TIMEOUT_MS, " 7000 "),
            (CONSUMER_HEARTBEAT_INTERVAL_MS, "600"),
        ])
        .unwrap();
        assert_eq!(
            o,
            GroupConfigOverrides {
                consumer_session_timeout_ms: Some(7_000),
                consumer_heartbeat_interval_ms: Some(600),
            }
        );
        assert_eq!(normalized(&o)[CONSUMER_SESSION_TIMEOUT_MS], "7000");
        assert_eq!(check(&[]).unwrap(), GroupConfigOverrides::default());
        assert_eq!(
            check(&[(CONSUMER_SESSION_TIMEOUT_MS, "60000")])
                .unwrap()
                .consumer_session_timeout_ms,
            Some(60_000)
        );
        let names: Vec<_> = GROUP_CONFIGS.iter().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }
}
