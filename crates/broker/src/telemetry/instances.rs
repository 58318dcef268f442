//! [`ClientInstances`]: the client instances that asked for a telemetry subscription, each
//! with the subscription it was given and when it last asked and pushed, and the rules of
//! GetTelemetrySubscriptions and PushTelemetry as Kafka 4.x applies them (KIP-714).
//!
//! Pure: time comes in as `now_ms`, new instance ids as arguments.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;
use weir_log::codec::{
    COMPRESSION_GZIP, COMPRESSION_LZ4, COMPRESSION_NONE, COMPRESSION_SNAPPY, COMPRESSION_ZSTD,
};
use weir_meta::client_metrics::{Subscription, ALL_METRICS, INTERVAL_MS_DEFAULT};
use weir_wire::ResponseError;

use crate::state::ApiError;

/// Client instances remembered at once (Kafka's cache size): past this, the instance heard
/// from longest ago is forgotten, and asks again after an UNKNOWN_SUBSCRIPTION_ID.
pub const CLIENT_INSTANCES_MAX: usize = 16_384;
/// An instance silent for this long, or three push intervals if longer, is forgotten.
pub const INSTANCE_EXPIRY_MS_MIN: i64 = 60_000;
/// How often silent instances are looked for.
const EXPIRY_SWEEP_INTERVAL_MS: i64 = 1_000;
/// The largest push payload accepted, compressed and decompressed (Kafka's
/// `telemetry.max.bytes` default).
pub const TELEMETRY_MAX_BYTES: i32 = 1024 * 1024;
/// The compression types offered to clients, preferred first (Kafka's order).
pub const ACCEPTED_COMPRESSION_TYPES: [i8; 4] = [
    COMPRESSION_ZSTD,
    COMPRESSION_LZ4,
    COMPRESSION_GZIP,
    COMPRESSION_SNAPPY,
];

/// Kafka's text form of a UUID: URL-safe base64 of its 16 bytes, without padding.
pub fn kafka_uuid_string(id: Uuid) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = id.as_u128();
    // 128 bits are 22 digits of 6 bits, the last one holding the final 2 bits shifted left.
    (0..22)
        .map(|i| {
            let shift = 128i32 - 6 * (i + 1);
            let digit = if shift >= 0 {
                (bits >> shift) & 63
            } else {
                (bits << -shift) & 63
            };
            ALPHABET[digit as usize] as char
        })
        .collect()
}

/// What the broker knows of a client from its connection (the `match` selectors).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFacts {
    pub client_id: String,
    pub client_software_name: String,
    pub client_software_version: String,
    pub client_source_address: String,
    pub client_source_port: String,
}

impl ClientFacts {
    fn selectors(&self, id: Uuid) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("client_instance_id", kafka_uuid_string(id)),
            ("client_id", self.client_id.clone()),
            ("client_software_name", self.client_software_name.clone()),
            (
                "client_software_version",
                self.client_software_version.clone(),
            ),
            ("client_source_address", self.client_source_address.clone()),
            ("client_source_port", self.client_source_port.clone()),
        ])
    }
}

/// The subscription an instance was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenSubscription {
    pub client_instance_id: Uuid,
    pub subscription_id: i32,
    /// Metric-name prefixes, sorted; empty asks for no metric, `*` for all.
    pub requested_metrics: Vec<String>,
    pub push_interval_ms: i32,
}

/// The last refusal an instance got, which lets it ask for a subscription again at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LastError {
    None,
    UnknownSubscriptionId,
    UnsupportedCompressionType,
    Other,
}

#[derive(Debug, Clone)]
struct Instance {
    facts: ClientFacts,
    given: GivenSubscription,
    /// The subscriptions version the instance's subscription was computed from.
    subscriptions_version: u64,
    last_get_ms: Option<i64>,
    last_push_ms: Option<i64>,
    last_seen_ms: i64,
    terminating: bool,
    last_error: LastError,
}

impl Instance {
    fn expiry_ms(&self) -> i64 {
        INSTANCE_EXPIRY_MS_MIN.max(3 * i64::from(self.given.push_interval_ms))
    }

    /// Kafka's rule: a subscription may be asked once a push interval after the last
    /// request of either kind.
    fn may_get(&mut self, now_ms: i64) -> bool {
        let last = self.last_get_ms.max(self.last_push_ms);
        let ok = last.is_none_or(|t| now_ms - t >= i64::from(self.given.push_interval_ms));
        if ok {
            self.last_get_ms = Some(now_ms);
        }
        ok
    }

    /// Kafka's rule: the first push after a subscription is fetched is accepted at once
    /// (clients add jitter to the interval), later ones a push interval apart.
    fn may_push(&mut self, now_ms: i64) -> bool {
        let after_get = match (self.last_get_ms, self.last_push_ms) {
            (Some(g), Some(p)) => g > p,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let ok = after_get
            || self
                .last_push_ms
                .is_none_or(|t| now_ms - t >= i64::from(self.given.push_interval_ms));
        if ok {
            self.last_push_ms = Some(now_ms);
        }
        ok
    }
}

/// A push the rules accept: what to decompress and who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedPush {
    pub facts: ClientFacts,
    pub push_interval_ms: i32,
}

/// The instances and the subscriptions they are matched against.
#[derive(Debug, Default)]
pub struct ClientInstances {
    instances: HashMap<Uuid, Instance>,
    subscriptions: Vec<Subscription>,
    /// Bumped at each change of the subscriptions; an instance given an older version's
    /// subscription is given a new one at its next request.
    subscriptions_version: u64,
    last_sweep_ms: i64,
}

fn refuse(e: ResponseError, message: String) -> ApiError {
    ApiError::new(e, message)
}

impl ClientInstances {
    /// Replaces the subscriptions (at start and after each client-metrics change).
    pub fn set_subscriptions(&mut self, subscriptions: Vec<Subscription>) {
        self.subscriptions = subscriptions;
        self.subscriptions_version += 1;
    }

    pub fn contains(&self, id: Uuid) -> bool {
        self.instances.contains_key(&id)
    }

    /// The subscription of a client with these facts: the union of the metrics of every
    /// subscription it matches (`*` alone when one asks for all) and the shortest interval.
    fn subscription_for(&self, id: Uuid, facts: &ClientFacts) -> GivenSubscription {
        let selectors = facts.selectors(id);
        let mut metrics = std::collections::BTreeSet::new();
        let mut push_interval_ms = INTERVAL_MS_DEFAULT;
        for s in self.subscriptions.iter().filter(|s| s.matches(&selectors)) {
            metrics.extend(s.metrics.iter().cloned());
            push_interval_ms = push_interval_ms.min(s.interval_ms);
        }
        let requested_metrics: Vec<String> = if metrics.contains(ALL_METRICS) {
            vec![ALL_METRICS.to_string()]
        } else {
            metrics.into_iter().collect()
        };
        // Like Kafka's: a checksum of the metrics and interval, mixed with the instance id,
        // so a changed subscription gets another id.
        let text = format!("{requested_metrics:?}{push_interval_ms}");
        let bits = id.as_u128();
        let id_hash = (bits as u64 ^ (bits >> 64) as u64) as i32;
        GivenSubscription {
            client_instance_id: id,
            subscription_id: crc32c::crc32c(text.as_bytes()) as i32 ^ id_hash,
            requested_metrics,
            push_interval_ms,
        }
    }

    /// Forgets instances silent past their expiry, at most once a second.
    fn sweep(&mut self, now_ms: i64) {
        if now_ms - self.last_sweep_ms < EXPIRY_SWEEP_INTERVAL_MS {
            return;
        }
        self.last_sweep_ms = now_ms;
        self.instances
            .retain(|_, i| now_ms - i.last_seen_ms < i.expiry_ms());
    }

    /// The instance `id`, made (or remade, when the subscriptions changed since it was
    /// given one) with a fresh subscription.
    fn instance(&mut self, id: Uuid, facts: &ClientFacts, now_ms: i64) -> &mut Instance {
        self.sweep(now_ms);
        let current = self
            .instances
            .get(&id)
            .is_some_and(|i| i.subscriptions_version == self.subscriptions_version);
        if !current {
            let facts = self
                .instances
                .get(&id)
                .map(|i| i.facts.clone())
                .unwrap_or_else(|| facts.clone());
            if !self.instances.contains_key(&id) && self.instances.len() >= CLIENT_INSTANCES_MAX {
                let oldest = *self
                    .instances
                    .iter()
                    .min_by_key(|(_, i)| i.last_seen_ms)
                    .map(|(k, _)| k)
                    .expect("full, so not empty");
                self.instances.remove(&oldest);
            }
            let given = self.subscription_for(id, &facts);
            self.instances.insert(
                id,
                Instance {
                    facts,
                    given,
                    subscriptions_version: self.subscriptions_version,
                    last_get_ms: None,
                    last_push_ms: None,
                    last_seen_ms: now_ms,
                    terminating: false,
                    last_error: LastError::None,
                },
            );
        }
        assert!(self.instances.len() <= CLIENT_INSTANCES_MAX);
        let instance = self.instances.get_mut(&id).expect("just made");
        instance.last_seen_ms = now_ms;
        instance
    }

    /// GetTelemetrySubscriptions. `requested` is the request's instance id; the zero UUID
    /// asks for a new one, `fresh` (unused by any instance).
    pub fn get_subscription(
        &mut self,
        requested: Uuid,
        fresh: Uuid,
        facts: &ClientFacts,
        now_ms: i64,
    ) -> Result<GivenSubscription, ApiError> {
        let id = if requested.is_nil() { fresh } else { requested };
        let instance = self.instance(id, facts, now_ms);
        if !instance.may_get(now_ms)
            && !matches!(
                instance.last_error,
                LastError::UnknownSubscriptionId | LastError::UnsupportedCompressionType
            )
        {
            return Err(refuse(
                ResponseError::ThrottlingQuotaExceeded,
                format!(
                    "Request from the client [{}] arrived before the next push interval time",
                    kafka_uuid_string(id)
                ),
            ));
        }
        instance.last_error = LastError::None;
        Ok(instance.given.clone())
    }

    /// The rules of PushTelemetry before its payload is read, in Kafka's order: an id that
    /// is no instance's, a push after a terminating one, a push before the interval (a
    /// terminating push may come early), another subscription's id, an unknown compression
    /// type, a payload over [`TELEMETRY_MAX_BYTES`].
    #[allow(clippy::too_many_arguments)] // the request's fields, as they come
    pub fn check_push(
        &mut self,
        id: Uuid,
        subscription_id: i32,
        terminating: bool,
        compression_type: i8,
        payload_bytes: usize,
        facts: &ClientFacts,
        now_ms: i64,
    ) -> Result<AcceptedPush, ApiError> {
        let who = kafka_uuid_string(id);
        // Kafka's reserved ids: zero, and one (also the metadata topic's id).
        if id.is_nil() || id.as_u128() == 1 {
            return Err(refuse(
                ResponseError::InvalidRequest,
                format!("Invalid request from the client [{who}], invalid client instance id"),
            ));
        }
        let instance = self.instance(id, facts, now_ms);
        let outcome = check_push_rules(
            instance,
            &who,
            subscription_id,
            terminating,
            compression_type,
            payload_bytes,
            now_ms,
        );
        instance.terminating = terminating;
        instance.last_error = match &outcome {
            Ok(()) => LastError::None,
            Err(e) if e.code == ResponseError::UnknownSubscriptionId.code() => {
                LastError::UnknownSubscriptionId
            }
            Err(e) if e.code == ResponseError::UnsupportedCompressionType.code() => {
                LastError::UnsupportedCompressionType
            }
            Err(_) => LastError::Other,
        };
        outcome.map(|()| AcceptedPush {
            facts: instance.facts.clone(),
            push_interval_ms: instance.given.push_interval_ms,
        })
    }

    /// Notes that an accepted push's payload was refused (it did not decompress or decode).
    pub fn payload_refused(&mut self, id: Uuid) {
        if let Some(i) = self.instances.get_mut(&id) {
            i.last_error = LastError::Other;
        }
    }
}

fn check_push_rules(
    instance: &mut Instance,
    who: &str,
    subscription_id: i32,
    terminating: bool,
    compression_type: i8,
    payload_bytes: usize,
    now_ms: i64,
) -> Result<(), ApiError> {
    if instance.terminating {
        return Err(refuse(
            ResponseError::InvalidRequest,
            format!(
                "Client [{who}] sent the previous request with state terminating to TRUE, can not accept any requests after that"
            ),
        ));
    }
    if !instance.may_push(now_ms) && !terminating {
        return Err(refuse(
            ResponseError::ThrottlingQuotaExceeded,
            format!("Request from the client [{who}] arrived before the next push interval time"),
        ));
    }
    if subscription_id != instance.given.subscription_id {
        return Err(refuse(
            ResponseError::UnknownSubscriptionId,
            format!("Unknown client subscription id for the client [{who}]"),
        ));
    }
    if !(COMPRESSION_NONE..=COMPRESSION_ZSTD).contains(&compression_type) {
        return Err(refuse(
            ResponseError::UnsupportedCompressionType,
            format!(
                "Unknown compression type [{compression_type}] is received in telemetry request from [{who}]"
            ),
        ));
    }
    if payload_bytes > TELEMETRY_MAX_BYTES as usize {
        return Err(refuse(
            ResponseError::TelemetryTooLarge,
            format!(
                "Telemetry request from [{who}] is larger than the maximum allowed size [{TELEMETRY_MAX_BYTES}]"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_meta::client_metrics::validate;

    fn subscription(name: &str, pairs: &[(&str, &str)]) -> Subscription {
        let configs = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        validate(name, &configs).unwrap()
    }

    fn facts(client_id: &str) -> ClientFacts {
        ClientFacts {
            client_id: client_id.to_string(),
            client_software_name: "apache-kafka-java".into(),
            client_software_version: "4.4.0".into(),
            client_source_address: "127.0.0.1".into(),
            client_source_port: "50000".into(),
        }
    }

    fn code(r: Result<impl std::fmt::Debug, ApiError>) -> i16 {
        r.err().map_or(0, |e| e.code)
    }

    #[test]
    fn kafka_uuid_text_is_url_safe_base64() {
        // Goal: ids print as Kafka prints them (the form `match` patterns select on).
        assert_eq!(kafka_uuid_string(Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            kafka_uuid_string(Uuid::from_u128(1)),
            "AAAAAAAAAAAAAAAAAAAAAQ"
        );
        assert_eq!(kafka_uuid_string(Uuid::max()), "_____________________w");
    }

    #[test]
    fn no_subscription_asks_for_nothing_every_five_minutes() {
        // Goal: with no client-metrics subscriptions, as on a fresh Kafka, a client gets a
        // new instance id, no metrics and the default interval.
        let mut c = ClientInstances::default();
        let fresh = Uuid::from_u128(42);
        let g = c
            .get_subscription(Uuid::nil(), fresh, &facts("app"), 0)
            .unwrap();
        assert_eq!(g.client_instance_id, fresh);
        assert!(g.requested_metrics.is_empty());
        assert_eq!(g.push_interval_ms, INTERVAL_MS_DEFAULT);
    }

    #[test]
    fn matching_subscriptions_are_merged() {
        // Goal: a client gets the union of the metrics of the subscriptions it matches and
        // the shortest interval; `*` stands alone; one that does not match adds nothing.
        let mut c = ClientInstances::default();
        c.set_subscriptions(vec![
            subscription(
                "a",
                &[
                    ("metrics", "org.apache.kafka.producer."),
                    ("interval.ms", "1000"),
                    ("match", "client_id=app.*"),
                ],
            ),
            subscription(
                "b",
                &[
                    ("metrics", "org.apache.kafka.consumer."),
                    ("interval.ms", "2000"),
                ],
            ),
            subscription("c", &[("metrics", "*"), ("match", "client_id=other")]),
        ]);
        let id = Uuid::from_u128(7);
        let g = c
            .get_subscription(id, Uuid::from_u128(8), &facts("app-1"), 0)
            .unwrap();
        assert_eq!(g.client_instance_id, id);
        assert_eq!(
            g.requested_metrics,
            ["org.apache.kafka.consumer.", "org.apache.kafka.producer."]
        );
        assert_eq!(g.push_interval_ms, 1000);
        let g = c
            .get_subscription(Uuid::from_u128(9), Uuid::from_u128(10), &facts("other"), 0)
            .unwrap();
        assert_eq!(g.requested_metrics, ["*"]);
        assert_eq!(g.push_interval_ms, 2000);
        // The instance id itself can be matched, in Kafka's text form.
        let pattern = format!(
            "client_instance_id={}",
            kafka_uuid_string(Uuid::from_u128(11))
        );
        c.set_subscriptions(vec![subscription(
            "d",
            &[("metrics", "x."), ("match", &pattern)],
        )]);
        let g = c
            .get_subscription(Uuid::from_u128(11), Uuid::nil(), &facts("z"), 0)
            .unwrap();
        assert_eq!(g.requested_metrics, ["x."]);
    }

    #[test]
    fn push_rules_follow_kafka() {
        // Goal: each refusal of PushTelemetry and GetTelemetrySubscriptions, in Kafka's order.
        let mut c = ClientInstances::default();
        c.set_subscriptions(vec![subscription(
            "a",
            &[("metrics", "m."), ("interval.ms", "1000")],
        )]);
        let f = facts("app");
        let id = Uuid::from_u128(100);
        let g = c.get_subscription(id, Uuid::nil(), &f, 10_000).unwrap();
        let sub = g.subscription_id;
        let push = |c: &mut ClientInstances, sub, term, comp, bytes, now| {
            code(c.check_push(id, sub, term, comp, bytes, &f, now))
        };
        // Asking again before the interval is throttled.
        assert_eq!(
            code(c.get_subscription(id, Uuid::nil(), &f, 10_500)),
            ResponseError::ThrottlingQuotaExceeded.code()
        );
        // The first push after a get is accepted at once; the next one waits an interval.
        assert_eq!(push(&mut c, sub, false, COMPRESSION_ZSTD, 10, 10_100), 0);
        assert_eq!(
            push(&mut c, sub, false, COMPRESSION_ZSTD, 10, 10_600),
            ResponseError::ThrottlingQuotaExceeded.code()
        );
        assert_eq!(push(&mut c, sub, false, COMPRESSION_NONE, 10, 11_100), 0);
        assert_eq!(
            push(&mut c, sub + 1, false, COMPRESSION_NONE, 10, 12_100),
            ResponseError::UnknownSubscriptionId.code()
        );
        // After an unknown subscription id the client may ask again at once (its
        // subscription is unchanged, so its pushes still wait the interval).
        assert_eq!(code(c.get_subscription(id, Uuid::nil(), &f, 12_200)), 0);
        assert_eq!(
            push(&mut c, sub, false, COMPRESSION_NONE, 10, 12_300),
            ResponseError::ThrottlingQuotaExceeded.code()
        );
        assert_eq!(
            push(&mut c, sub, false, 9, 10, 13_100),
            ResponseError::UnsupportedCompressionType.code()
        );
        assert_eq!(
            push(
                &mut c,
                sub,
                false,
                COMPRESSION_GZIP,
                TELEMETRY_MAX_BYTES as usize + 1,
                14_200
            ),
            ResponseError::TelemetryTooLarge.code()
        );
        // A terminating push may come early; nothing is accepted after it.
        assert_eq!(push(&mut c, sub, true, COMPRESSION_GZIP, 10, 14_300), 0);
        assert_eq!(
            push(&mut c, sub, false, COMPRESSION_GZIP, 10, 20_000),
            ResponseError::InvalidRequest.code()
        );
        // Reserved ids are refused.
        assert_eq!(
            code(c.check_push(Uuid::nil(), sub, false, 0, 0, &f, 0)),
            ResponseError::InvalidRequest.code()
        );
    }

    #[test]
    fn a_changed_subscription_gets_a_new_id_and_old_pushes_are_refused() {
        // Goal: after the subscriptions change, a push with the old subscription id is
        // UNKNOWN_SUBSCRIPTION_ID and the next get returns the new subscription at once.
        let mut c = ClientInstances::default();
        let f = facts("app");
        let id = Uuid::from_u128(5);
        let old = c.get_subscription(id, Uuid::nil(), &f, 0).unwrap();
        c.set_subscriptions(vec![subscription(
            "a",
            &[("metrics", "m."), ("interval.ms", "100")],
        )]);
        assert_eq!(
            code(c.check_push(id, old.subscription_id, false, 0, 1, &f, 10)),
            ResponseError::UnknownSubscriptionId.code()
        );
        let new = c.get_subscription(id, Uuid::nil(), &f, 20).unwrap();
        assert_ne!(new.subscription_id, old.subscription_id);
        assert_eq!(new.requested_metrics, ["m."]);
    }

    #[test]
    fn instances_are_bounded_and_expire() {
        // Goal: at most CLIENT_INSTANCES_MAX instances; a silent one is forgotten after its
        // expiry (at least a minute).
        let mut c = ClientInstances::default();
        let f = facts("app");
        for i in 0..CLIENT_INSTANCES_MAX as u128 + 10 {
            c.get_subscription(Uuid::from_u128(i + 1000), Uuid::nil(), &f, 0)
                .unwrap();
        }
        assert_eq!(c.instances.len(), CLIENT_INSTANCES_MAX);
        c.get_subscription(
            Uuid::from_u128(1),
            Uuid::nil(),
            &f,
            INSTANCE_EXPIRY_MS_MIN - 1,
        )
        .unwrap();
        assert_eq!(c.instances.len(), CLIENT_INSTANCES_MAX);
        // Five-minute interval: expiry is three intervals.
        c.get_subscription(Uuid::from_u128(2), Uuid::nil(), &f, 4 * 300_000)
            .unwrap();
        assert_eq!(c.instances.len(), 1);
        assert!(c.contains(Uuid::from_u128(2)));
    }
}
