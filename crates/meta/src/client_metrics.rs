//! Client-metrics subscriptions (KIP-714; Kafka's `ClientMetricsConfigs`, config resource
//! type 16): which metrics the clients that match a subscription are asked to push, and how
//! often. `kafka-client-metrics.sh` writes them with IncrementalAlterConfigs.
//!
//! A subscription has three configs, all optional:
//! - `metrics`: a comma-separated list of metric-name prefixes; empty asks for no metric,
//!   `*` for all of them;
//! - `interval.ms`: the push interval, 100 ms to one hour, five minutes by default;
//! - `match`: comma-separated `selector=regex` pairs, all of which a client must match in
//!   full (no pair matches every client). The selectors are [`MATCH_SELECTORS`].
//!
//! Checked as Kafka 4.x checks them, with its messages. Patterns are compiled with the
//! `regex` crate, whose syntax is RE2's, the syntax Kafka 4.x checks new patterns against.

use std::collections::BTreeMap;

use regex::Regex;

use crate::MetaError;

pub const METRICS: &str = "metrics";
pub const INTERVAL_MS: &str = "interval.ms";
pub const MATCH: &str = "match";

/// Every client-metrics config name, sorted.
pub const CLIENT_METRICS_CONFIGS: &[&str] = &[INTERVAL_MS, MATCH, METRICS];

/// The push interval of a client no subscription with an interval matches (Kafka's).
pub const INTERVAL_MS_DEFAULT: i32 = 5 * 60 * 1000;
/// The push intervals a subscription may ask for, inclusive (Kafka's).
pub const INTERVAL_MS_BOUNDS: (i32, i32) = (100, 3_600_000);
/// The `metrics` entry that asks for every metric.
pub const ALL_METRICS: &str = "*";

/// The client facts a `match` pattern may select, under Kafka's names.
pub const MATCH_SELECTORS: &[&str] = &[
    "client_instance_id",
    "client_id",
    "client_software_name",
    "client_software_version",
    "client_source_address",
    "client_source_port",
];

/// One subscription, checked and typed.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub name: String,
    /// Metric-name prefixes; empty asks for nothing.
    pub metrics: Vec<String>,
    pub interval_ms: i32,
    /// Selector (one of [`MATCH_SELECTORS`]) -> a pattern the whole value must match.
    pub matches: BTreeMap<String, Regex>,
}

impl Subscription {
    /// Whether a client with these facts (selector -> value) matches every pattern. A fact
    /// the client does not have matches no pattern.
    pub fn matches(&self, facts: &BTreeMap<&str, String>) -> bool {
        self.matches.iter().all(|(selector, pattern)| {
            facts
                .get(selector.as_str())
                .is_some_and(|v| pattern.is_match(v))
        })
    }
}

fn request(message: String) -> MetaError {
    MetaError::InvalidClientMetricsRequest(message)
}

fn config(message: String) -> MetaError {
    MetaError::InvalidClientMetricsConfig(message)
}

/// Splits a LIST config as Kafka's `ConfigDef` does: on commas, each item trimmed; a blank
/// value is the empty list. Duplicates are refused.
fn parse_list(name: &str, value: &str) -> Result<Vec<String>, MetaError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<String> = value.split(',').map(|s| s.trim().to_string()).collect();
    for (i, item) in items.iter().enumerate() {
        if items[..i].contains(item) {
            return Err(config(format!(
                "Configuration '{name}' values must not be duplicated."
            )));
        }
    }
    Ok(items)
}

/// Splits one `selector=pattern` at its first `=` and checks the selector.
fn split_match(pattern: &str) -> Result<(String, String), MetaError> {
    let illegal = || config(format!("Illegal client matching pattern: {pattern}"));
    let (selector, value) = pattern.split_once('=').ok_or_else(illegal)?;
    let selector = selector.trim();
    if !MATCH_SELECTORS.contains(&selector) {
        return Err(illegal());
    }
    Ok((selector.to_string(), value.trim().to_string()))
}

/// Compiles a pattern so that it must match a whole value, as Java's `Matcher.matches`.
fn compile_whole(selector: &str, pattern: &str) -> Result<Regex, MetaError> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        let reason = e.to_string();
        let reason = reason.lines().last().unwrap_or("").trim().to_string();
        config(format!(
            "Client match pattern `{selector}={pattern}` is not a valid regular expression: {reason}."
        ))
    })
}

/// Checks a subscription's whole set of configs, in Kafka's order: the name, every config
/// name known, each value parsed, the interval within its bounds, each match pattern a
/// known selector and a valid regular expression. Returns it typed.
pub fn validate(name: &str, configs: &BTreeMap<String, String>) -> Result<Subscription, MetaError> {
    if name.is_empty() {
        return Err(request("Subscription name can't be empty".to_string()));
    }
    if let Some(unknown) = configs
        .keys()
        .find(|k| !CLIENT_METRICS_CONFIGS.contains(&k.as_str()))
    {
        return Err(request(format!(
            "Unknown client metrics configuration: {unknown}"
        )));
    }
    let metrics = match configs.get(METRICS) {
        Some(v) => parse_list(METRICS, v)?,
        None => Vec::new(),
    };
    let patterns = match configs.get(MATCH) {
        Some(v) => parse_list(MATCH, v)?,
        None => Vec::new(),
    };
    let interval_ms = match configs.get(INTERVAL_MS) {
        Some(v) => {
            let ms: i32 = v.trim().parse().map_err(|_| {
                config(format!(
                    "Invalid value {v} for configuration {INTERVAL_MS}: Not a number of type INT"
                ))
            })?;
            let (min, max) = INTERVAL_MS_BOUNDS;
            if !(min..=max).contains(&ms) {
                return Err(request(format!(
                    "Invalid value {ms} for {INTERVAL_MS}, interval must be between 100 and 3600000 (1 hour)"
                )));
            }
            ms
        }
        None => INTERVAL_MS_DEFAULT,
    };
    let mut matches = BTreeMap::new();
    for p in &patterns {
        let (selector, pattern) = split_match(p)?;
        let regex = compile_whole(&selector, &pattern)?;
        matches.insert(selector, regex);
    }
    Ok(Subscription {
        name: name.to_string(),
        metrics,
        interval_ms,
        matches,
    })
}

/// Whether a config is a LIST (APPEND and SUBTRACT apply to it).
pub fn is_list(name: &str) -> bool {
    name == METRICS || name == MATCH
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pairs: &[(&str, &str)]) -> Result<Subscription, String> {
        let configs = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        validate("sub", &configs).map_err(|e| e.to_string())
    }

    #[test]
    fn refuses_what_kafka_refuses() {
        // Goal: each refusal of Kafka's client-metrics validation, with its error kind.
        let configs = BTreeMap::new();
        assert!(matches!(
            validate("", &configs),
            Err(MetaError::InvalidClientMetricsRequest(_))
        ));
        assert_eq!(
            check(&[("color", "red")]).unwrap_err(),
            "Unknown client metrics configuration: color"
        );
        assert_eq!(
            check(&[(INTERVAL_MS, "99")]).unwrap_err(),
            "Invalid value 99 for interval.ms, interval must be between 100 and 3600000 (1 hour)"
        );
        assert!(check(&[(INTERVAL_MS, "3600001")]).is_err());
        assert!(check(&[(INTERVAL_MS, "fast")])
            .unwrap_err()
            .contains("Not a number of type INT"));
        assert_eq!(
            check(&[(MATCH, "client_color=red")]).unwrap_err(),
            "Illegal client matching pattern: client_color=red"
        );
        assert_eq!(
            check(&[(MATCH, "client_id")]).unwrap_err(),
            "Illegal client matching pattern: client_id"
        );
        assert!(check(&[(MATCH, "client_id=(")])
            .unwrap_err()
            .starts_with("Client match pattern `client_id=(` is not a valid regular expression"));
        assert!(check(&[(METRICS, "a.,a.")])
            .unwrap_err()
            .contains("must not be duplicated"));
    }

    #[test]
    fn parses_and_matches_whole_values() {
        // Goal: lists are split and trimmed, the interval defaults, and a pattern must match
        // a client's whole value; a selector the client lacks matches nothing.
        let s = check(&[
            (
                METRICS,
                " org.apache.kafka.producer. , org.apache.kafka.consumer.",
            ),
            (
                MATCH,
                "client_id=app-.*, client_software_name=apache-kafka-java",
            ),
        ])
        .unwrap();
        assert_eq!(
            s.metrics,
            ["org.apache.kafka.producer.", "org.apache.kafka.consumer."]
        );
        assert_eq!(s.interval_ms, INTERVAL_MS_DEFAULT);
        let mut facts = BTreeMap::new();
        facts.insert("client_id", "app-1".to_string());
        assert!(!s.matches(&facts), "the software name is missing");
        facts.insert("client_software_name", "apache-kafka-java".to_string());
        assert!(s.matches(&facts));
        facts.insert("client_id", "my-app-1".to_string());
        assert!(!s.matches(&facts), "a pattern matches the whole value only");
        // An `=` inside the pattern belongs to the pattern.
        let s = check(&[(MATCH, "client_id=a=b"), (INTERVAL_MS, "1000")]).unwrap();
        assert_eq!(s.interval_ms, 1000);
        let facts = BTreeMap::from([("client_id", "a=b".to_string())]);
        assert!(s.matches(&facts));
        assert!(check(&[(METRICS, "")]).unwrap().metrics.is_empty());
        assert!(check(&[]).unwrap().matches(&BTreeMap::new()));
    }
}
