//! [`Catalog`]: every topic with its id, partition count and config overrides, the groups'
//! config overrides, the client-metrics subscriptions, the users' SCRAM credentials, the
//! client quotas, plus
//! the cluster id and the producer-id allocator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::scram::{self, ScramCredential, ScramMechanism};
use crate::{config, MetaError};

/// Kafka's limit on topic name length.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Upper bound on partitions per topic, so one request cannot create millions of files.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;
/// Producer ids are handed out in blocks; a restart skips to the next block so an id is
/// never reused even though each id is not written down.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;
/// Groups that may have configs of their own. Each change rewrites the catalog, so the
/// count is kept to what one write handles quickly.
pub const GROUPS_WITH_CONFIGS_MAX: usize = 100_000;
/// Client-metrics subscriptions one broker keeps. Every telemetry request of a new client
/// instance is matched against all of them, so the count stays small.
pub const CLIENT_METRICS_MAX: usize = 1_000;
/// Users that may have SCRAM credentials (each has at most one per mechanism). Each change
/// rewrites the catalog, and a credential is a few hundred bytes.
pub const SCRAM_USERS_MAX: usize = 10_000;
/// Longest user name a SCRAM credential is kept for. Kafka sets none; RFC 4616 asks a
/// server to accept 255 bytes.
pub const SCRAM_USER_NAME_BYTES_MAX: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    /// Only the configs set explicitly; defaults come from [`config::TOPIC_CONFIGS`].
    pub configs: BTreeMap<String, String>,
    pub internal: bool,
}

impl Topic {
    /// The effective value of a config: the override, else the default.
    pub fn config(&self, name: &str) -> Option<&str> {
        self.configs
            .get(name)
            .map(String::as_str)
            .or_else(|| config::find(name).map(|d| d.default))
    }

    pub fn config_i64(&self, name: &str) -> i64 {
        self.config(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub cluster_id: String,
    /// The version this catalog was committed under ([`crate::CatalogStore`]); 0 before the
    /// first commit.
    #[serde(default)]
    pub version: u64,
    pub topics: BTreeMap<String, Topic>,
    /// Group id -> its group config overrides (only groups that have some), as Kafka keeps
    /// them: independent of the group itself, so they outlive its deletion.
    #[serde(default)]
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Subscription name -> its client-metrics configs (KIP-714), as set (checked by
    /// [`crate::client_metrics::validate`]).
    #[serde(default)]
    pub client_metrics: BTreeMap<String, BTreeMap<String, String>>,
    /// User name -> its SCRAM credentials, one per mechanism (never an empty map).
    #[serde(default)]
    pub scram_credentials: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// The client quotas (AlterClientQuotas), per user / client id / IP entity.
    #[serde(default)]
    pub client_quotas: crate::client_quotas::ClientQuotas,
    /// The cluster's ACLs (CreateAcls / DeleteAcls), with their index for decisions.
    #[serde(default)]
    pub acls: crate::acls::Acls,
    /// First producer id of the next block to hand out.
    pub producer_id_block_next: i64,
    #[serde(skip)]
    producer_id_next: i64,
    #[serde(skip)]
    producer_id_block_end: i64,
}

/// Checks a topic name as Kafka does: 1..=249 chars of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), MetaError> {
    let bad = |reason: &str| MetaError::InvalidTopicName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("the name is empty"));
    }
    if name == "." || name == ".." {
        return Err(bad("'.' and '..' are not allowed"));
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(bad("longer than 249 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(bad(
            "only ASCII letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    Ok(())
}

/// Checks a SCRAM credential for `user` as Kafka does (a name, the iteration bounds) and
/// against weir's size bounds.
pub fn check_scram_credential(user: &str, credential: &ScramCredential) -> Result<(), MetaError> {
    if user.is_empty() {
        return Err(MetaError::UnacceptableCredential(
            "Username must not be empty".to_string(),
        ));
    }
    if user.len() > SCRAM_USER_NAME_BYTES_MAX {
        return Err(MetaError::UnacceptableCredential(format!(
            "Username must not be longer than {SCRAM_USER_NAME_BYTES_MAX} bytes"
        )));
    }
    scram::check_iterations(credential.iterations)?;
    if credential.salt.len() > scram::SALT_BYTES_MAX {
        return Err(MetaError::UnacceptableCredential(format!(
            "Salt must not be longer than {} bytes",
            scram::SALT_BYTES_MAX
        )));
    }
    Ok(())
}

impl Catalog {
    pub fn new(cluster_id: String) -> Catalog {
        Catalog {
            cluster_id,
            version: 0,
            topics: BTreeMap::new(),
            group_configs: BTreeMap::new(),
            client_metrics: BTreeMap::new(),
            scram_credentials: BTreeMap::new(),
            client_quotas: Default::default(),
            acls: Default::default(),
            producer_id_block_next: 0,
            producer_id_next: 0,
            producer_id_block_end: 0,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("catalog serializes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Catalog, MetaError> {
        serde_json::from_slice(bytes).map_err(|e| MetaError::Corrupt(e.to_string()))
    }

    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<&Topic> {
        self.topics.values().find(|t| t.id == id)
    }

    /// Checks a creation request without applying it (CreateTopics `validate_only` uses
    /// this alone).
    pub fn check_create(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), MetaError> {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return Err(MetaError::TopicExists(name.to_string()));
        }
        if partitions < 1 || partitions > PARTITIONS_PER_TOPIC_MAX {
            return Err(MetaError::InvalidPartitions(format!(
                "{partitions}; must be between 1 and {PARTITIONS_PER_TOPIC_MAX}"
            )));
        }
        if replication_factor != 1 {
            return Err(MetaError::InvalidReplicationFactor(replication_factor));
        }
        for (k, v) in configs {
            config::validate(k, v)?;
        }
        Ok(())
    }

    /// Creates a topic with a fresh id. `id` is supplied by the caller so this stays pure.
    pub fn create_topic(
        &mut self,
        name: &str,
        id: Uuid,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        internal: bool,
    ) -> Result<&Topic, MetaError> {
        self.check_create(name, partitions, replication_factor, &configs)?;
        self.topics.insert(
            name.to_string(),
            Topic {
                name: name.to_string(),
                id,
                partitions,
                configs,
                internal,
            },
        );
        Ok(&self.topics[name])
    }

    pub fn delete_topic(&mut self, name: &str) -> Result<Topic, MetaError> {
        self.topics
            .remove(name)
            .ok_or_else(|| MetaError::UnknownTopic(name.to_string()))
    }

    /// CreatePartitions: the count may only grow.
    pub fn check_partitions(&self, name: &str, count: i32) -> Result<i32, MetaError> {
        let topic = self
            .topics
            .get(name)
            .ok_or_else(|| MetaError::UnknownTopic(name.to_string()))?;
        if count <= topic.partitions {
            return Err(MetaError::InvalidPartitions(format!(
                "topic currently has {} partitions, {count} would not be an increase",
                topic.partitions
            )));
        }
        if count > PARTITIONS_PER_TOPIC_MAX {
            return Err(MetaError::InvalidPartitions(format!(
                "{count} is above {PARTITIONS_PER_TOPIC_MAX}"
            )));
        }
        Ok(topic.partitions)
    }

    pub fn set_partitions(&mut self, name: &str, count: i32) -> Result<i32, MetaError> {
        let old = self.check_partitions(name, count)?;
        self.topics.get_mut(name).expect("checked").partitions = count;
        Ok(old)
    }

    /// Replaces all overrides (AlterConfigs) after validating every one.
    pub fn replace_configs(
        &mut self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), MetaError> {
        for (k, v) in &configs {
            config::validate(k, v)?;
        }
        let topic = self
            .topics
            .get_mut(name)
            .ok_or_else(|| MetaError::UnknownTopic(name.to_string()))?;
        topic.configs = configs;
        Ok(())
    }

    /// A group's config overrides; empty when it has none.
    pub fn group_configs(&self, group_id: &str) -> BTreeMap<String, String> {
        self.group_configs
            .get(group_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces a group's config overrides (validated by the caller with
    /// [`crate::group_config::validate`]); an empty set removes the group's entry.
    pub fn replace_group_configs(
        &mut self,
        group_id: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), MetaError> {
        if configs.is_empty() {
            self.group_configs.remove(group_id);
            return Ok(());
        }
        if !self.group_configs.contains_key(group_id)
            && self.group_configs.len() >= GROUPS_WITH_CONFIGS_MAX
        {
            return Err(MetaError::TooManyGroupConfigs(GROUPS_WITH_CONFIGS_MAX));
        }
        self.group_configs.insert(group_id.to_string(), configs);
        Ok(())
    }

    /// A client-metrics subscription's configs; empty when it does not exist.
    pub fn client_metrics(&self, name: &str) -> BTreeMap<String, String> {
        self.client_metrics.get(name).cloned().unwrap_or_default()
    }

    /// Replaces a subscription's configs (validated by the caller with
    /// [`crate::client_metrics::validate`]); an empty set deletes the subscription, as
    /// `kafka-client-metrics.sh --delete` does by deleting each config.
    pub fn replace_client_metrics(
        &mut self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), MetaError> {
        if configs.is_empty() {
            self.client_metrics.remove(name);
            return Ok(());
        }
        if !self.client_metrics.contains_key(name)
            && self.client_metrics.len() >= CLIENT_METRICS_MAX
        {
            return Err(MetaError::TooManyClientMetrics(CLIENT_METRICS_MAX));
        }
        self.client_metrics.insert(name.to_string(), configs);
        Ok(())
    }

    /// A user's credential for one mechanism.
    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Option<&ScramCredential> {
        self.scram_credentials.get(user)?.get(&mechanism)
    }

    /// Checks a credential for `user` without storing it: [`check_scram_credential`], and
    /// room for one more user.
    pub fn check_scram_credential(
        &self,
        user: &str,
        credential: &ScramCredential,
    ) -> Result<(), MetaError> {
        check_scram_credential(user, credential)?;
        if !self.scram_credentials.contains_key(user)
            && self.scram_credentials.len() >= SCRAM_USERS_MAX
        {
            return Err(MetaError::TooManyScramUsers(SCRAM_USERS_MAX));
        }
        Ok(())
    }

    /// Adds or replaces a user's credential for one mechanism, after
    /// [`Catalog::check_scram_credential`].
    pub fn set_scram_credential(
        &mut self,
        user: &str,
        mechanism: ScramMechanism,
        credential: ScramCredential,
    ) -> Result<(), MetaError> {
        self.check_scram_credential(user, &credential)?;
        self.scram_credentials
            .entry(user.to_string())
            .or_default()
            .insert(mechanism, credential);
        Ok(())
    }

    /// Removes a user's credential for one mechanism; false if there was none. A user
    /// left without credentials leaves the catalog.
    pub fn delete_scram_credential(&mut self, user: &str, mechanism: ScramMechanism) -> bool {
        let Some(credentials) = self.scram_credentials.get_mut(user) else {
            return false;
        };
        let removed = credentials.remove(&mechanism).is_some();
        if credentials.is_empty() {
            self.scram_credentials.remove(user);
        }
        removed
    }

    /// Every user with SCRAM credentials, sorted, with each mechanism it has and that
    /// credential's iteration count (what DescribeUserScramCredentials shows).
    pub fn scram_users(&self) -> BTreeMap<String, Vec<(ScramMechanism, i32)>> {
        self.scram_credentials
            .iter()
            .map(|(user, credentials)| {
                let infos = credentials
                    .iter()
                    .map(|(m, c)| (*m, c.iterations))
                    .collect();
                (user.clone(), infos)
            })
            .collect()
    }

    /// Hands out the next producer id. Returns the id, and whether a new block was
    /// started (the caller must persist the catalog before using the id).
    /// Carries this broker's producer id block (the ids it has taken but not handed out,
    /// which no catalog stores) over from `previous`, when a newer catalog committed by
    /// another broker replaces it: blocks are disjoint, so the rest of it stays this
    /// broker's to hand out.
    pub fn keep_producer_id_block_of(&mut self, previous: &Catalog) {
        self.producer_id_next = previous.producer_id_next;
        self.producer_id_block_end = previous.producer_id_block_end;
    }

    pub fn allocate_producer_id(&mut self) -> (i64, bool) {
        let mut new_block = false;
        if self.producer_id_next >= self.producer_id_block_end {
            self.producer_id_next = self.producer_id_block_next;
            self.producer_id_block_end = self.producer_id_block_next + PRODUCER_ID_BLOCK_SIZE;
            self.producer_id_block_next = self.producer_id_block_end;
            new_block = true;
        }
        let id = self.producer_id_next;
        self.producer_id_next += 1;
        (id, new_block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_delete_and_persist() {
        // Goal: topics survive a serialize/deserialize round trip; rules are enforced.
        let mut c = Catalog::new("c1".into());
        let id = Uuid::from_u128(1);
        c.create_topic("orders", id, 3, 1, BTreeMap::new(), false)
            .unwrap();
        assert!(matches!(
            c.create_topic("orders", id, 3, 1, BTreeMap::new(), false),
            Err(MetaError::TopicExists(_))
        ));
        assert!(matches!(
            c.check_create("bad name", 1, 1, &BTreeMap::new()),
            Err(MetaError::InvalidTopicName { .. })
        ));
        assert!(matches!(
            c.check_create("x", 0, 1, &BTreeMap::new()),
            Err(MetaError::InvalidPartitions(_))
        ));
        assert!(matches!(
            c.check_create("x", 1, 3, &BTreeMap::new()),
            Err(MetaError::InvalidReplicationFactor(3))
        ));
        let mut cfg = BTreeMap::new();
        cfg.insert("retention.ms".to_string(), "abc".to_string());
        assert!(matches!(
            c.check_create("x", 1, 1, &cfg),
            Err(MetaError::InvalidConfig(_))
        ));
        assert_eq!(c.set_partitions("orders", 5).unwrap(), 3);
        assert!(c.set_partitions("orders", 5).is_err());
        let back = Catalog::from_bytes(&c.to_bytes()).unwrap();
        assert_eq!(back.topic("orders").unwrap().partitions, 5);
        assert_eq!(back.topic_by_id(id).unwrap().name, "orders");
        assert_eq!(
            back.topic("orders").unwrap().config("retention.ms"),
            Some("604800000")
        );
        c.delete_topic("orders").unwrap();
        assert!(c.topic("orders").is_none());
    }

    #[test]
    fn group_configs_persist_and_an_empty_set_removes_them() {
        // Goal: group overrides survive a round trip, an empty set leaves no entry, and a
        // catalog written before group configs existed still loads.
        let mut c = Catalog::new("c".into());
        let mut cfg = BTreeMap::new();
        cfg.insert(
            "consumer.session.timeout.ms".to_string(),
            "7000".to_string(),
        );
        c.replace_group_configs("billing", cfg.clone()).unwrap();
        let back = Catalog::from_bytes(&c.to_bytes()).unwrap();
        assert_eq!(back.group_configs("billing"), cfg);
        assert!(back.group_configs("other").is_empty());
        c.replace_group_configs("billing", BTreeMap::new()).unwrap();
        assert!(c.group_configs.is_empty());
        let old = br#"{"cluster_id":"c","topics":{},"producer_id_block_next":0}"#;
        assert!(Catalog::from_bytes(old).unwrap().group_configs.is_empty());
    }

    #[test]
    fn client_metrics_persist_are_bounded_and_an_empty_set_deletes() {
        // Goal: subscriptions survive a round trip, an empty set deletes one, the count is
        // capped, and a catalog written before subscriptions existed still loads.
        let mut c = Catalog::new("c".into());
        let cfg = BTreeMap::from([("interval.ms".to_string(), "1000".to_string())]);
        c.replace_client_metrics("sub", cfg.clone()).unwrap();
        let back = Catalog::from_bytes(&c.to_bytes()).unwrap();
        assert_eq!(back.client_metrics("sub"), cfg);
        c.replace_client_metrics("sub", BTreeMap::new()).unwrap();
        assert!(c.client_metrics.is_empty());
        for i in 0..CLIENT_METRICS_MAX {
            c.replace_client_metrics(&format!("s{i}"), cfg.clone())
                .unwrap();
        }
        assert_eq!(
            c.replace_client_metrics("one-more", cfg.clone()),
            Err(MetaError::TooManyClientMetrics(CLIENT_METRICS_MAX))
        );
        c.replace_client_metrics("s0", cfg).unwrap();
        let old = br#"{"cluster_id":"c","topics":{},"producer_id_block_next":0}"#;
        assert!(Catalog::from_bytes(old).unwrap().client_metrics.is_empty());
    }

    #[test]
    fn scram_credentials_persist_are_checked_and_bounded() {
        // Goal: credentials survive a round trip, deleting the last one removes the user,
        // bad credentials are refused with Kafka's words, the user count is capped, and a
        // catalog written before credentials existed still loads.
        let mut c = Catalog::new("c".into());
        let m = ScramMechanism::Sha256;
        let cred = ScramCredential::from_password(m, "alice-secret", b"salt", 4096);
        c.set_scram_credential("alice", m, cred.clone()).unwrap();
        c.set_scram_credential(
            "alice",
            ScramMechanism::Sha512,
            ScramCredential::from_password(ScramMechanism::Sha512, "x", b"salt", 8192),
        )
        .unwrap();
        let back = Catalog::from_bytes(&c.to_bytes()).unwrap();
        assert_eq!(back.scram_credential("alice", m), Some(&cred));
        assert!(back
            .scram_credential("alice", m)
            .unwrap()
            .verify_password(m, "alice-secret"));
        assert_eq!(
            back.scram_users()["alice"],
            vec![
                (ScramMechanism::Sha256, 4096),
                (ScramMechanism::Sha512, 8192)
            ]
        );
        assert!(c.delete_scram_credential("alice", m));
        assert!(!c.delete_scram_credential("alice", m));
        assert!(c.delete_scram_credential("alice", ScramMechanism::Sha512));
        assert!(c.scram_credentials.is_empty(), "no credentials, no user");
        assert!(!c.delete_scram_credential("nobody", m));

        let few = ScramCredential::from_salted_password(m, b"s", b"p", 4095);
        assert_eq!(
            c.set_scram_credential("bob", m, few),
            Err(MetaError::UnacceptableCredential(
                "Too few iterations".into()
            ))
        );
        assert!(matches!(
            c.set_scram_credential("", m, cred.clone()),
            Err(MetaError::UnacceptableCredential(_))
        ));
        let salty =
            ScramCredential::from_salted_password(m, &[0; scram::SALT_BYTES_MAX + 1], b"p", 4096);
        assert!(matches!(
            c.set_scram_credential("bob", m, salty),
            Err(MetaError::UnacceptableCredential(_))
        ));
        for i in 0..SCRAM_USERS_MAX {
            c.scram_credentials
                .entry(format!("u{i}"))
                .or_default()
                .insert(m, cred.clone());
        }
        assert_eq!(
            c.set_scram_credential("one-more", m, cred.clone()),
            Err(MetaError::TooManyScramUsers(SCRAM_USERS_MAX))
        );
        c.set_scram_credential("u0", ScramMechanism::Sha512, cred)
            .unwrap();
        let old = br#"{"cluster_id":"c","topics":{},"producer_id_block_next":0}"#;
        assert!(Catalog::from_bytes(old)
            .unwrap()
            .scram_credentials
            .is_empty());
    }

    #[test]
    fn producer_ids_never_repeat_across_restarts() {
        // Goal: after a reload, ids continue from a fresh block, never reusing one.
        let mut c = Catalog::new("c".into());
        let (a, new_block) = c.allocate_producer_id();
        assert!(new_block);
        let (b, new_block) = c.allocate_producer_id();
        assert!(!new_block);
        assert_eq!((a, b), (0, 1));
        let mut reloaded = Catalog::from_bytes(&c.to_bytes()).unwrap();
        let (d, _) = reloaded.allocate_producer_id();
        assert_eq!(d, PRODUCER_ID_BLOCK_SIZE);
    }
}
