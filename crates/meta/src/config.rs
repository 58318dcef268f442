//! The topic configs weir accepts, with Kafka's names, defaults and value checks.
//!
//! Enforced by the log: `cleanup.policy` (delete and compact), `retention.ms`,
//! `retention.bytes`, `segment.bytes`, `segment.ms`, `max.message.bytes`,
//! `min.cleanable.dirty.ratio`, `delete.retention.ms`, `min.compaction.lag.ms`,
//! `max.compaction.lag.ms`. The others are stored, validated and described so tools
//! round-trip them, but do not change behaviour yet.

use crate::MetaError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Long,
    Int,
    Boolean,
    Double,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// A comma-separated list drawn from a fixed set.
    ListOf(&'static [&'static str]),
}

impl ConfigType {
    /// The type code DescribeConfigs v3+ reports (Kafka's `ConfigType`).
    pub fn describe_code(&self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::Choice(_) => 2,
            ConfigType::Int => 3,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::ListOf(_) => 7,
        }
    }
}

pub struct ConfigDef {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: ConfigType,
    /// Smallest allowed value for numeric configs.
    pub min: Option<i64>,
    /// The broker setting that gives this config its default, under Kafka's name
    /// (`log.cleanup.policy` for `cleanup.policy`), which DescribeConfigs names as the
    /// default's synonym. None where Kafka's broker setting of that name has no default
    /// of its own (`log.retention.ms` falls back to `log.retention.hours`), so Kafka
    /// lists no default synonym either.
    pub broker_synonym: Option<&'static str>,
}

const fn def(
    name: &'static str,
    default: &'static str,
    kind: ConfigType,
    min: Option<i64>,
    broker_synonym: Option<&'static str>,
) -> ConfigDef {
    ConfigDef {
        name,
        default,
        kind,
        min,
        broker_synonym,
    }
}

pub const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Every topic config weir knows, sorted by name.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    def(
        "cleanup.policy",
        "delete",
        ConfigType::ListOf(&["delete", "compact"]),
        None,
        Some("log.cleanup.policy"),
    ),
    def(
        "compression.type",
        "producer",
        ConfigType::Choice(COMPRESSION_TYPES),
        None,
        Some("compression.type"),
    ),
    def(
        "delete.retention.ms",
        "86400000",
        ConfigType::Long,
        Some(0),
        Some("log.cleaner.delete.retention.ms"),
    ),
    def(
        "file.delete.delay.ms",
        "60000",
        ConfigType::Long,
        Some(0),
        Some("log.segment.delete.delay.ms"),
    ),
    def(
        "flush.messages",
        "9223372036854775807",
        ConfigType::Long,
        Some(1),
        Some("log.flush.interval.messages"),
    ),
    def(
        "flush.ms",
        "9223372036854775807",
        ConfigType::Long,
        Some(0),
        None,
    ),
    def(
        "index.interval.bytes",
        "4096",
        ConfigType::Int,
        Some(0),
        Some("log.index.interval.bytes"),
    ),
    def(
        "max.compaction.lag.ms",
        "9223372036854775807",
        ConfigType::Long,
        Some(1),
        Some("log.cleaner.max.compaction.lag.ms"),
    ),
    def(
        "max.message.bytes",
        "1048588",
        ConfigType::Int,
        Some(0),
        Some("message.max.bytes"),
    ),
    def(
        "message.timestamp.after.max.ms",
        "3600000",
        ConfigType::Long,
        Some(0),
        Some("log.message.timestamp.after.max.ms"),
    ),
    def(
        "message.timestamp.before.max.ms",
        "9223372036854775807",
        ConfigType::Long,
        Some(0),
        Some("log.message.timestamp.before.max.ms"),
    ),
    def(
        "message.timestamp.type",
        "CreateTime",
        ConfigType::Choice(&["CreateTime", "LogAppendTime"]),
        None,
        Some("log.message.timestamp.type"),
    ),
    def(
        "min.cleanable.dirty.ratio",
        "0.5",
        ConfigType::Double,
        None,
        Some("log.cleaner.min.cleanable.ratio"),
    ),
    def(
        "min.compaction.lag.ms",
        "0",
        ConfigType::Long,
        Some(0),
        Some("log.cleaner.min.compaction.lag.ms"),
    ),
    def(
        "min.insync.replicas",
        "1",
        ConfigType::Int,
        Some(1),
        Some("min.insync.replicas"),
    ),
    def(
        "preallocate",
        "false",
        ConfigType::Boolean,
        None,
        Some("log.preallocate"),
    ),
    def(
        "retention.bytes",
        "-1",
        ConfigType::Long,
        None,
        Some("log.retention.bytes"),
    ),
    def(
        "retention.ms",
        "604800000",
        ConfigType::Long,
        Some(-1),
        None,
    ),
    def(
        "segment.bytes",
        "1073741824",
        ConfigType::Int,
        Some(14),
        Some("log.segment.bytes"),
    ),
    def(
        "segment.index.bytes",
        "10485760",
        ConfigType::Int,
        Some(4),
        Some("log.index.size.max.bytes"),
    ),
    def("segment.jitter.ms", "0", ConfigType::Long, Some(0), None),
    def("segment.ms", "604800000", ConfigType::Long, Some(1), None),
    def(
        "unclean.leader.election.enable",
        "false",
        ConfigType::Boolean,
        None,
        Some("unclean.leader.election.enable"),
    ),
];

pub fn find(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks one `name=value` pair; the error says which and why, as Kafka's INVALID_CONFIG
/// message does.
pub fn validate(name: &str, value: &str) -> Result<(), MetaError> {
    let def = find(name)
        .ok_or_else(|| MetaError::InvalidConfig(format!("unknown topic config '{name}'")))?;
    let bad = |why: &str| {
        MetaError::InvalidConfig(format!("invalid value '{value}' for '{name}': {why}"))
    };
    match def.kind {
        ConfigType::Long | ConfigType::Int => {
            let v: i64 = value.trim().parse().map_err(|_| bad("not a number"))?;
            if def.kind == ConfigType::Int && i32::try_from(v).is_err() {
                return Err(bad("out of range for an int"));
            }
            if let Some(min) = def.min {
                if v < min {
                    return Err(bad(&format!("must be at least {min}")));
                }
            }
        }
        ConfigType::Double => {
            value
                .trim()
                .parse::<f64>()
                .map_err(|_| bad("not a number"))?;
        }
        ConfigType::Boolean => {
            if !matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "false") {
                return Err(bad("must be true or false"));
            }
        }
        ConfigType::Choice(words) => {
            if !words.contains(&value.trim()) {
                return Err(bad(&format!("must be one of {}", words.join(", "))));
            }
        }
        ConfigType::ListOf(words) => {
            let items: Vec<&str> = value.split(',').map(str::trim).collect();
            if items.is_empty() || items.iter().any(|i| !words.contains(i)) {
                return Err(bad(&format!("must be a list of {}", words.join(", "))));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_types_and_bounds() {
        // Goal: each kind of config refuses what Kafka refuses.
        assert!(validate("retention.ms", "1000").is_ok());
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate("retention.ms", "-2").is_err());
        assert!(validate("retention.ms", "soon").is_err());
        assert!(validate("segment.bytes", "99999999999").is_err());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("cleanup.policy", "shred").is_err());
        assert!(validate("compression.type", "zstd").is_ok());
        assert!(validate("no.such.config", "1").is_err());
        assert!(validate("preallocate", "maybe").is_err());
        let mut names: Vec<_> = TOPIC_CONFIGS.iter().map(|d| d.name).collect();
        let sorted = {
            let mut s = names.clone();
            s.sort();
            s
        };
        assert_eq!(names, sorted);
        names.dedup();
        assert_eq!(names.len(), TOPIC_CONFIGS.len());
    }
}
