//! Client quotas (KIP-13, KIP-55, KIP-124, KIP-546): the limits set on users, client ids
//! and IP addresses, decided as Kafka's controller decides AlterClientQuotas and as its
//! brokers answer DescribeClientQuotas, plus the lookup that tells the broker which limit a
//! connection's (user, client id) falls under.
//!
//! Kafka's rules, kept here:
//! - An entity is a map of entity type (`user`, `client-id`, `ip`) to a name, where no name
//!   means the type's default (`--entity-default`). `ip` is never combined with the others.
//! - `user` and `client-id` entities take `producer_byte_rate`, `consumer_byte_rate`
//!   (whole numbers), `request_percentage` and `controller_mutation_rate`; `ip` entities take
//!   `connection_creation_rate` (a whole number). Every value must be greater than 0.
//! - An alteration is checked as a whole: one bad key or value fails its entity, and none
//!   of that entity's changes apply; other entities of the request still apply. Removing a
//!   key that is not set is not an error. An entity with no key left is forgotten.
//! - A describe filter names each entity type at most once, matching an exact name, the
//!   default, or any name of that type; `strict` also requires the entity to have no other
//!   type. No components and not strict describes every entity.
//! - The limit for a connection follows Kafka's precedence, most specific first:
//!   /users/u/clients/c, /users/u/clients/<default>, /users/u, /users/<default>/clients/c,
//!   /users/<default>/clients/<default>, /users/<default>, /clients/c, /clients/<default>.
//!   Connections that fall under the same entry share one measured rate, as Kafka's metric
//!   tags make them share one sensor.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::MetaError;

/// Kafka's entity type names.
pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// The quota keys Kafka knows.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

/// DescribeClientQuotas match types.
pub const MATCH_TYPE_EXACT: i8 = 0;
pub const MATCH_TYPE_DEFAULT: i8 = 1;
pub const MATCH_TYPE_SPECIFIED: i8 = 2;

/// Entities that may have quotas. Each change rewrites the catalog, and each produce or
/// fetch looks its limit up among them, so the count stays bounded.
pub const CLIENT_QUOTA_ENTITIES_MAX: usize = 10_000;

/// How a key's value is checked: Kafka's config types for the quota keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Long,
    Int,
    Double,
}

const USER_AND_CLIENT_KEYS: &[(&str, KeyType)] = &[
    (PRODUCER_BYTE_RATE, KeyType::Long),
    (CONSUMER_BYTE_RATE, KeyType::Long),
    (REQUEST_PERCENTAGE, KeyType::Double),
    (CONTROLLER_MUTATION_RATE, KeyType::Double),
];

const IP_KEYS: &[(&str, KeyType)] = &[(CONNECTION_CREATION_RATE, KeyType::Int)];

/// One part of an entity: a name, or the type's default.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityName {
    Default,
    Named(String),
}

impl EntityName {
    fn from_wire(name: Option<&str>) -> EntityName {
        match name {
            None => EntityName::Default,
            Some(n) => EntityName::Named(n.to_string()),
        }
    }

    /// The wire form: `None` for the default.
    pub fn as_wire(&self) -> Option<&str> {
        match self {
            EntityName::Default => None,
            EntityName::Named(n) => Some(n),
        }
    }
}

/// A checked quota entity: `user` and/or `client-id`, or `ip` alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<EntityName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<EntityName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<EntityName>,
}

impl QuotaEntity {
    pub fn user(name: EntityName) -> QuotaEntity {
        QuotaEntity {
            user: Some(name),
            client_id: None,
            ip: None,
        }
    }

    pub fn client_id(name: EntityName) -> QuotaEntity {
        QuotaEntity {
            user: None,
            client_id: Some(name),
            ip: None,
        }
    }

    pub fn ip(name: EntityName) -> QuotaEntity {
        QuotaEntity {
            user: None,
            client_id: None,
            ip: Some(name),
        }
    }

    pub fn user_client_id(user: EntityName, client_id: EntityName) -> QuotaEntity {
        QuotaEntity {
            user: Some(user),
            client_id: Some(client_id),
            ip: None,
        }
    }

    /// (entity type, name) pairs, as the wire carries them.
    pub fn parts(&self) -> Vec<(&'static str, Option<&str>)> {
        [
            (USER, &self.user),
            (CLIENT_ID, &self.client_id),
            (IP, &self.ip),
        ]
        .into_iter()
        .filter_map(|(t, n)| n.as_ref().map(|n| (t, n.as_wire())))
        .collect()
    }

    fn part(&self, entity_type: &str) -> Option<&EntityName> {
        match entity_type {
            USER => self.user.as_ref(),
            CLIENT_ID => self.client_id.as_ref(),
            IP => self.ip.as_ref(),
            _ => None,
        }
    }

    fn part_count(&self) -> usize {
        self.parts().len()
    }
}

/// An entity as a request names it: entity type -> name (`None`: the default). Kafka keeps
/// it as a map, so a type named twice keeps its last name.
pub type RequestEntity = BTreeMap<String, Option<String>>;

/// Kafka's rendering of an entity in its messages: `ClientQuotaEntity(entries={user=a})`.
fn entity_text(entity: &RequestEntity) -> String {
    let entries: Vec<String> = entity
        .iter()
        .map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("null")))
        .collect();
    format!("ClientQuotaEntity(entries={{{}}})", entries.join(", "))
}

/// Every entity's quotas, never an empty map of keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<StoredQuotas>", into = "Vec<StoredQuotas>")]
pub struct ClientQuotas {
    entities: BTreeMap<QuotaEntity, BTreeMap<String, f64>>,
}

/// The catalog's form of one entity's quotas (JSON maps need string keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredQuotas {
    entity: QuotaEntity,
    quotas: BTreeMap<String, f64>,
}

impl From<Vec<StoredQuotas>> for ClientQuotas {
    fn from(stored: Vec<StoredQuotas>) -> ClientQuotas {
        ClientQuotas {
            entities: stored
                .into_iter()
                .filter(|s| !s.quotas.is_empty())
                .map(|s| (s.entity, s.quotas))
                .collect(),
        }
    }
}

impl From<ClientQuotas> for Vec<StoredQuotas> {
    fn from(quotas: ClientQuotas) -> Vec<StoredQuotas> {
        quotas
            .entities
            .into_iter()
            .map(|(entity, quotas)| StoredQuotas { entity, quotas })
            .collect()
    }
}

/// One component of a DescribeClientQuotas filter, as the request carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterComponent {
    pub entity_type: String,
    pub match_type: i8,
    pub name: Option<String>,
}

/// One alteration of AlterClientQuotas: its entity and its operations, `None` removing
/// the key.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaAlteration {
    pub entity: RequestEntity,
    pub ops: Vec<(String, Option<f64>)>,
}

/// The limit a connection falls under for one key: the measured rate is shared by every
/// connection with the same `user_tag` and `client_id_tag` (Kafka's sensor tags; empty
/// when the matched entry does not name that part).
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaLimit {
    pub user_tag: String,
    pub client_id_tag: String,
    pub limit: f64,
}

impl ClientQuotas {
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entities.len()
    }

    pub fn get(&self, entity: &QuotaEntity) -> Option<&BTreeMap<String, f64>> {
        self.entities.get(entity)
    }

    /// Whether any entity sets `key`.
    pub fn has_key(&self, key: &str) -> bool {
        self.entities.values().any(|q| q.contains_key(key))
    }

    fn value(&self, entity: QuotaEntity, key: &str) -> Option<f64> {
        self.entities.get(&entity)?.get(key).copied()
    }

    fn is_set(&self, entity: QuotaEntity, key: &str) -> bool {
        self.value(entity, key).is_some()
    }

    /// The limit on `key` for a connection of `user` (the principal's name) with
    /// `client_id`, with the tags of the rate it is measured by; `None` when no entity
    /// limits it. Kafka's DefaultQuotaCallback: first the tags, then the limit for them.
    pub fn limit_for(&self, key: &str, user: &str, client_id: &str) -> Option<QuotaLimit> {
        use EntityName::{Default, Named};
        let u = || Named(user.to_string());
        let c = || Named(client_id.to_string());
        let set = |e: QuotaEntity| self.is_set(e, key);
        // 1. Which parts the rate is measured by: the most specific entity set.
        let (user_tag, client_id_tag) = if set(QuotaEntity::user_client_id(u(), c()))
            || set(QuotaEntity::user_client_id(u(), Default))
        {
            (user, client_id)
        } else if set(QuotaEntity::user(u())) {
            (user, "")
        } else if set(QuotaEntity::user_client_id(Default, c()))
            || set(QuotaEntity::user_client_id(Default, Default))
        {
            (user, client_id)
        } else if set(QuotaEntity::user(Default)) {
            (user, "")
        } else {
            ("", client_id)
        };
        // 2. The limit for those tags.
        let get = |e: QuotaEntity| self.value(e, key);
        let limit = if !user_tag.is_empty() && !client_id_tag.is_empty() {
            get(QuotaEntity::user_client_id(u(), c()))
                .or_else(|| get(QuotaEntity::user_client_id(u(), Default)))
                .or_else(|| get(QuotaEntity::user_client_id(Default, c())))
                .or_else(|| get(QuotaEntity::user_client_id(Default, Default)))
        } else if !user_tag.is_empty() {
            get(QuotaEntity::user(u())).or_else(|| get(QuotaEntity::user(Default)))
        } else {
            get(QuotaEntity::client_id(c())).or_else(|| get(QuotaEntity::client_id(Default)))
        }?;
        Some(QuotaLimit {
            user_tag: user_tag.to_string(),
            client_id_tag: client_id_tag.to_string(),
            limit,
        })
    }
}

impl ClientQuotas {
    /// The `connection_creation_rate` limit on connections from `ip` (KIP-612):
    /// `/ips/<ip>`, else `/ips/<default>`. Each address is its own rate, also under the
    /// default, so the tag is the address. A named entity matches the address however it
    /// was spelled (`::1` and `0:0:0:0:0:0:0:1` are one address).
    pub fn ip_limit(&self, ip: IpAddr) -> Option<QuotaLimit> {
        let key = CONNECTION_CREATION_RATE;
        let named = self
            .value(QuotaEntity::ip(EntityName::Named(ip.to_string())), key)
            .or_else(|| {
                self.entities.iter().find_map(|(e, q)| match &e.ip {
                    Some(EntityName::Named(n)) if n.parse::<IpAddr>() == Ok(ip) => {
                        q.get(key).copied()
                    }
                    _ => None,
                })
            });
        let limit = named.or_else(|| self.value(QuotaEntity::ip(EntityName::Default), key))?;
        Some(QuotaLimit {
            user_tag: String::new(),
            client_id_tag: ip.to_string(),
            limit,
        })
    }
}

/// DescribeClientQuotas: the entities the filter matches, with their quotas, in the
/// catalog's order. A bad filter is one error for the whole request, as in Kafka.
pub fn describe(
    quotas: &ClientQuotas,
    components: &[FilterComponent],
    strict: bool,
) -> Result<Vec<(QuotaEntity, BTreeMap<String, f64>)>, MetaError> {
    // 1. Check the filter: each type once, a known type, a match consistent with its type.
    let mut exact: BTreeMap<&str, EntityName> = BTreeMap::new();
    let mut specified: Vec<&str> = Vec::new();
    for component in components {
        let entity_type = component.entity_type.as_str();
        if entity_type.is_empty() {
            return Err(MetaError::InvalidQuotaRequest(
                "Invalid empty entity type.".to_string(),
            ));
        }
        if exact.contains_key(entity_type) || specified.contains(&entity_type) {
            return Err(MetaError::InvalidQuotaRequest(format!(
                "Entity type {entity_type} cannot appear more than once in the filter."
            )));
        }
        if ![USER, CLIENT_ID, IP].contains(&entity_type) {
            return Err(MetaError::UnsupportedQuotaEntity(format!(
                "Unsupported entity type {entity_type}"
            )));
        }
        match component.match_type {
            MATCH_TYPE_EXACT => {
                let Some(name) = &component.name else {
                    return Err(MetaError::InvalidQuotaRequest(
                        "Request specified MATCH_TYPE_EXACT, but set match string to null."
                            .to_string(),
                    ));
                };
                exact.insert(entity_type, EntityName::Named(name.clone()));
            }
            MATCH_TYPE_DEFAULT => {
                if component.name.is_some() {
                    return Err(MetaError::InvalidQuotaRequest(
                        "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."
                            .to_string(),
                    ));
                }
                exact.insert(entity_type, EntityName::Default);
            }
            MATCH_TYPE_SPECIFIED => {
                if component.name.is_some() {
                    return Err(MetaError::InvalidQuotaRequest(
                        "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."
                            .to_string(),
                    ));
                }
                specified.push(entity_type);
            }
            other => {
                return Err(MetaError::UnsupportedQuotaEntity(format!(
                    "Unsupported match type {other}"
                )))
            }
        }
    }
    let names = |t: &str| exact.contains_key(t) || specified.contains(&t);
    if names(IP) && (names(USER) || names(CLIENT_ID)) {
        return Err(MetaError::InvalidQuotaRequest(
            "Invalid entity filter component combination. IP filter component should not be \
             used with user or clientId filter component."
                .to_string(),
        ));
    }
    // 2. Match every entity.
    let matches = |entity: &QuotaEntity| {
        if strict && entity.part_count() != exact.len() + specified.len() {
            return false;
        }
        exact.iter().all(|(t, n)| entity.part(t) == Some(n))
            && specified.iter().all(|t| entity.part(t).is_some())
    };
    Ok(quotas
        .entities
        .iter()
        .filter(|(e, _)| matches(e))
        .map(|(e, q)| (e.clone(), q.clone()))
        .collect())
}

/// AlterClientQuotas: checks each alteration, applies those that pass unless
/// `validate_only`, and returns one result per distinct entity, in the order first named.
pub fn alter(
    quotas: &mut ClientQuotas,
    alterations: &[QuotaAlteration],
    validate_only: bool,
) -> Vec<(RequestEntity, Result<(), MetaError>)> {
    let mut results: Vec<(RequestEntity, Result<(), MetaError>)> = Vec::new();
    for alteration in alterations {
        let entity = &alteration.entity;
        // 1. A key named twice fails the entity, and (as in Kafka, whose result map then
        //    already holds the entity) is reported as a duplicate entity.
        let mut ops: BTreeMap<&str, Option<f64>> = BTreeMap::new();
        let mut duplicate_key = false;
        for (key, value) in &alteration.ops {
            if ops.insert(key.as_str(), *value).is_some() {
                duplicate_key = true;
            }
        }
        let seen = results.iter().position(|(e, _)| e == entity);
        if duplicate_key || seen.is_some() {
            let error = Err(MetaError::InvalidQuotaRequest(format!(
                "Ignoring duplicate entity {}",
                entity_text(entity)
            )));
            match seen {
                Some(i) => results[i].1 = error,
                None => results.push((entity.clone(), error)),
            }
            continue;
        }
        // 2. Check, then apply.
        let result = check_alteration(quotas, entity, &ops).map(|(checked, changes)| {
            if !validate_only {
                apply(quotas, checked, changes);
            }
        });
        results.push((entity.clone(), result));
    }
    results
}

type Changes = Vec<(String, Option<f64>)>;

/// Checks one entity's alteration as Kafka's controller does; returns the checked entity
/// and the changes to make (values already set and removals of keys not set dropped).
fn check_alteration(
    quotas: &ClientQuotas,
    entity: &RequestEntity,
    ops: &BTreeMap<&str, Option<f64>>,
) -> Result<(QuotaEntity, Changes), MetaError> {
    let checked = check_entity(entity)?;
    let keys = if checked.ip.is_some() {
        if checked.user.is_some() || checked.client_id.is_some() {
            return Err(MetaError::InvalidQuotaRequest(
                "Invalid quota entity combination, IP entity shouldnot be combined with User \
                 or ClientId"
                    .to_string(),
            ));
        }
        if let Some(EntityName::Named(ip)) = &checked.ip {
            if ip.parse::<IpAddr>().is_err() {
                return Err(MetaError::InvalidQuotaRequest(format!(
                    "{ip} is not a valid IP or resolvable host."
                )));
            }
        }
        IP_KEYS
    } else {
        USER_AND_CLIENT_KEYS
    };
    let current = quotas.entities.get(&checked);
    let mut changes = Vec::new();
    for (key, value) in ops {
        let old = current.and_then(|q| q.get(*key)).copied();
        match value {
            None => {
                if old.is_some() {
                    changes.push((key.to_string(), None));
                }
            }
            Some(v) => {
                check_value(keys, key, *v)?;
                if old != Some(*v) {
                    changes.push((key.to_string(), Some(*v)));
                }
            }
        }
    }
    if current.is_none()
        && changes.iter().any(|(_, v)| v.is_some())
        && quotas.entities.len() >= CLIENT_QUOTA_ENTITIES_MAX
    {
        return Err(MetaError::TooManyClientQuotaEntities(
            CLIENT_QUOTA_ENTITIES_MAX,
        ));
    }
    Ok((checked, changes))
}

fn apply(quotas: &mut ClientQuotas, entity: QuotaEntity, changes: Changes) {
    let values = quotas.entities.entry(entity.clone()).or_default();
    for (key, value) in changes {
        match value {
            Some(v) => values.insert(key, v),
            None => values.remove(&key),
        };
    }
    if values.is_empty() {
        quotas.entities.remove(&entity);
    }
}

/// Kafka's validateEntity: known types, no empty names, not empty.
fn check_entity(entity: &RequestEntity) -> Result<QuotaEntity, MetaError> {
    if entity.is_empty() {
        return Err(MetaError::InvalidQuotaRequest(
            "Invalid empty client quota entity".to_string(),
        ));
    }
    let mut checked = QuotaEntity {
        user: None,
        client_id: None,
        ip: None,
    };
    for (entity_type, name) in entity {
        let name_of = EntityName::from_wire(name.as_deref());
        match entity_type.as_str() {
            USER => checked.user = Some(name_of),
            CLIENT_ID => checked.client_id = Some(name_of),
            IP => checked.ip = Some(name_of),
            other => {
                return Err(MetaError::InvalidQuotaRequest(format!(
                    "Unhandled client quota entity type: {other}"
                )))
            }
        }
        if name.as_deref() == Some("") {
            return Err(MetaError::InvalidQuotaRequest(format!(
                "Empty {entity_type} not supported"
            )));
        }
    }
    Ok(checked)
}

/// Kafka's validateQuotaKeyValue.
fn check_value(keys: &[(&str, KeyType)], key: &str, value: f64) -> Result<(), MetaError> {
    let Some((_, key_type)) = keys.iter().find(|(k, _)| *k == key) else {
        return Err(MetaError::InvalidQuotaRequest(format!(
            "Invalid configuration key {key}"
        )));
    };
    // `!(value > 0)` also refuses NaN, which Kafka's `value <= 0.0` lets through only to
    // store a quota no rate can be measured against.
    if value.is_nan() || value <= 0.0 {
        return Err(MetaError::InvalidQuotaRequest(format!(
            "Quota {key} must be greater than 0"
        )));
    }
    let integral = |max: f64, type_name: &str| {
        if value > max {
            return Err(MetaError::InvalidQuotaRequest(format!(
                "Proposed value for {key} is too large for {type_name}."
            )));
        }
        if (value % 1.0).abs() > 1e-6 {
            return Err(MetaError::InvalidQuotaRequest(format!(
                "{key} cannot be a fractional value."
            )));
        }
        Ok(())
    };
    match key_type {
        KeyType::Double => Ok(()),
        KeyType::Int => integral(i32::MAX as f64, "an INT"),
        KeyType::Long => integral(i64::MAX as f64, "a LONG"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EntityName::{Default, Named};

    fn entity(parts: &[(&str, Option<&str>)]) -> RequestEntity {
        parts
            .iter()
            .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
            .collect()
    }

    fn set(entity_parts: &[(&str, Option<&str>)], key: &str, value: f64) -> QuotaAlteration {
        QuotaAlteration {
            entity: entity(entity_parts),
            ops: vec![(key.to_string(), Some(value))],
        }
    }

    fn message(r: &Result<(), MetaError>) -> String {
        r.as_ref().unwrap_err().to_string()
    }

    #[test]
    fn alter_checks_keys_values_and_entities_as_kafka() {
        // Goal: each refusal Kafka's controller makes, with its sentence, and nothing
        // applied for a refused entity.
        let mut q = ClientQuotas::default();
        let cases: Vec<(QuotaAlteration, &str)> = vec![
            (
                set(&[(USER, Some("a"))], "foo", 1.0),
                "Invalid configuration key foo",
            ),
            (
                set(&[(USER, Some("a"))], PRODUCER_BYTE_RATE, 0.0),
                "Quota producer_byte_rate must be greater than 0",
            ),
            (
                set(&[(CLIENT_ID, None)], CONSUMER_BYTE_RATE, -5.0),
                "Quota consumer_byte_rate must be greater than 0",
            ),
            (
                set(&[(USER, Some("a"))], PRODUCER_BYTE_RATE, 1.5),
                "producer_byte_rate cannot be a fractional value.",
            ),
            (
                set(&[(USER, Some("a"))], CONNECTION_CREATION_RATE, 1.0),
                "Invalid configuration key connection_creation_rate",
            ),
            (
                set(&[(IP, Some("1.2.3.4"))], PRODUCER_BYTE_RATE, 1.0),
                "Invalid configuration key producer_byte_rate",
            ),
            (
                set(&[(IP, Some("x")), (USER, None)], CONNECTION_CREATION_RATE, 1.0),
                "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId",
            ),
            (
                set(&[("group", Some("g"))], PRODUCER_BYTE_RATE, 1.0),
                "Unhandled client quota entity type: group",
            ),
            (
                set(&[(USER, Some(""))], PRODUCER_BYTE_RATE, 1.0),
                "Empty user not supported",
            ),
            (
                set(&[], PRODUCER_BYTE_RATE, 1.0),
                "Invalid empty client quota entity",
            ),
        ];
        for (alteration, expected) in cases {
            let results = alter(&mut q, &[alteration], false);
            assert_eq!(results.len(), 1);
            assert_eq!(message(&results[0].1), expected);
        }
        assert!(q.is_empty(), "nothing applied");

        // One bad key fails the whole entity.
        let mixed = QuotaAlteration {
            entity: entity(&[(USER, Some("a"))]),
            ops: vec![
                (PRODUCER_BYTE_RATE.to_string(), Some(1024.0)),
                (REQUEST_PERCENTAGE.to_string(), Some(-1.0)),
            ],
        };
        assert!(alter(&mut q, &[mixed], false)[0].1.is_err());
        assert!(q.is_empty());
    }

    #[test]
    fn alter_sets_removes_and_forgets_and_validate_only_changes_nothing() {
        // Goal: set, change, remove; an entity without keys disappears; validate_only
        // answers the same without changing anything.
        let mut q = ClientQuotas::default();
        let a = &[(USER, Some("alice")), (CLIENT_ID, None)];
        let r = alter(&mut q, &[set(a, PRODUCER_BYTE_RATE, 1024.0)], true);
        assert!(r[0].1.is_ok());
        assert!(q.is_empty());
        alter(&mut q, &[set(a, PRODUCER_BYTE_RATE, 1024.0)], false);
        alter(&mut q, &[set(a, REQUEST_PERCENTAGE, 12.5)], false);
        let key = QuotaEntity::user_client_id(Named("alice".into()), Default);
        assert_eq!(q.get(&key).unwrap().len(), 2);
        let remove = |k: &str| QuotaAlteration {
            entity: entity(a),
            ops: vec![(k.to_string(), None)],
        };
        assert!(alter(&mut q, &[remove("never-set")], false)[0].1.is_ok());
        alter(&mut q, &[remove(PRODUCER_BYTE_RATE)], false);
        assert_eq!(q.get(&key).unwrap().len(), 1);
        alter(&mut q, &[remove(REQUEST_PERCENTAGE)], false);
        assert!(q.is_empty(), "an entity without keys is forgotten");

        // The same entity twice: the second is refused, the first stays applied.
        let r = alter(
            &mut q,
            &[
                set(a, PRODUCER_BYTE_RATE, 1.0),
                set(a, CONSUMER_BYTE_RATE, 2.0),
            ],
            false,
        );
        assert_eq!(r.len(), 1);
        assert!(message(&r[0].1).starts_with("Ignoring duplicate entity ClientQuotaEntity"));
        assert_eq!(q.get(&key).unwrap()[PRODUCER_BYTE_RATE], 1.0);
    }

    #[test]
    fn quotas_survive_a_round_trip_through_json() {
        // Goal: the catalog's form keeps defaults and names apart.
        let mut q = ClientQuotas::default();
        alter(
            &mut q,
            &[
                set(&[(USER, None)], PRODUCER_BYTE_RATE, 10.0),
                set(&[(USER, Some("<default>"))], PRODUCER_BYTE_RATE, 20.0),
                set(&[(IP, Some("10.0.0.1"))], CONNECTION_CREATION_RATE, 5.0),
            ],
            false,
        );
        let back: ClientQuotas = serde_json::from_slice(&serde_json::to_vec(&q).unwrap()).unwrap();
        assert_eq!(back, q);
        assert_eq!(back.len(), 3);
    }

    fn filter(t: &str, match_type: i8, name: Option<&str>) -> FilterComponent {
        FilterComponent {
            entity_type: t.to_string(),
            match_type,
            name: name.map(str::to_string),
        }
    }

    #[test]
    fn describe_matches_exact_default_and_specified_strict_or_not() {
        // Goal: Kafka's filter semantics over user, client-id and combined entities.
        let mut q = ClientQuotas::default();
        alter(
            &mut q,
            &[
                set(&[(USER, Some("alice"))], PRODUCER_BYTE_RATE, 1.0),
                set(&[(USER, None)], PRODUCER_BYTE_RATE, 2.0),
                set(&[(CLIENT_ID, Some("c"))], PRODUCER_BYTE_RATE, 3.0),
                set(
                    &[(USER, Some("alice")), (CLIENT_ID, Some("c"))],
                    PRODUCER_BYTE_RATE,
                    4.0,
                ),
            ],
            false,
        );
        let values = |components: &[FilterComponent], strict: bool| -> Vec<f64> {
            describe(&q, components, strict)
                .unwrap()
                .into_iter()
                .map(|(_, v)| v[PRODUCER_BYTE_RATE])
                .collect::<Vec<_>>()
        };
        let mut all = values(&[], false);
        all.sort_by(f64::total_cmp);
        assert_eq!(all, vec![1.0, 2.0, 3.0, 4.0]);
        assert!(values(&[], true).is_empty());
        let alice = filter(USER, MATCH_TYPE_EXACT, Some("alice"));
        let mut v = values(&[alice.clone()], false);
        v.sort_by(f64::total_cmp);
        assert_eq!(v, vec![1.0, 4.0]);
        assert_eq!(values(&[alice.clone()], true), vec![1.0]);
        assert_eq!(
            values(&[filter(USER, MATCH_TYPE_DEFAULT, None)], true),
            vec![2.0]
        );
        let mut v = values(&[filter(USER, MATCH_TYPE_SPECIFIED, None)], true);
        v.sort_by(f64::total_cmp);
        assert_eq!(v, vec![1.0, 2.0]);
        assert_eq!(
            values(
                &[alice, filter(CLIENT_ID, MATCH_TYPE_SPECIFIED, None)],
                true
            ),
            vec![4.0]
        );
        let err = |components: &[FilterComponent]| {
            describe(&q, components, false).unwrap_err().to_string()
        };
        assert_eq!(
            err(&[filter(USER, MATCH_TYPE_EXACT, None)]),
            "Request specified MATCH_TYPE_EXACT, but set match string to null."
        );
        assert_eq!(
            err(&[
                filter(USER, MATCH_TYPE_SPECIFIED, None),
                filter(USER, MATCH_TYPE_DEFAULT, None)
            ]),
            "Entity type user cannot appear more than once in the filter."
        );
        assert!(matches!(
            describe(&q, &[filter("group", MATCH_TYPE_SPECIFIED, None)], false),
            Err(MetaError::UnsupportedQuotaEntity(_))
        ));
        assert!(err(&[
            filter(IP, MATCH_TYPE_SPECIFIED, None),
            filter(USER, MATCH_TYPE_SPECIFIED, None)
        ])
        .starts_with("Invalid entity filter component combination"));
    }

    #[test]
    fn limit_for_follows_kafkas_precedence_and_tags() {
        // Goal: the eight levels in order, and the tags that decide which connections share
        // one measured rate.
        let mut q = ClientQuotas::default();
        let key = PRODUCER_BYTE_RATE;
        let limit = |q: &ClientQuotas| {
            q.limit_for(key, "alice", "c")
                .map(|l| (l.limit, l.user_tag, l.client_id_tag))
        };
        assert_eq!(limit(&q), None);
        let levels: Vec<(Vec<(&str, Option<&str>)>, (&str, &str))> = vec![
            (vec![(CLIENT_ID, None)], ("", "c")),
            (vec![(CLIENT_ID, Some("c"))], ("", "c")),
            (vec![(USER, None)], ("alice", "")),
            (vec![(USER, None), (CLIENT_ID, None)], ("alice", "c")),
            (vec![(USER, None), (CLIENT_ID, Some("c"))], ("alice", "c")),
            (vec![(USER, Some("alice"))], ("alice", "")),
            (
                vec![(USER, Some("alice")), (CLIENT_ID, None)],
                ("alice", "c"),
            ),
            (
                vec![(USER, Some("alice")), (CLIENT_ID, Some("c"))],
                ("alice", "c"),
            ),
        ];
        // Added least specific first, each new level wins.
        for (i, (parts, (user_tag, client_tag))) in levels.iter().enumerate() {
            let value = (i + 1) as f64;
            alter(&mut q, &[set(parts, key, value)], false);
            assert_eq!(
                limit(&q),
                Some((value, user_tag.to_string(), client_tag.to_string())),
                "level {parts:?}"
            );
        }
        // Another key is not limited by these.
        assert_eq!(q.limit_for(CONSUMER_BYTE_RATE, "alice", "c"), None);
        // Another user with another client falls to /users/<default>/clients/<default>.
        let other = q.limit_for(key, "bob", "d").unwrap();
        assert_eq!(
            (
                other.limit,
                other.user_tag.as_str(),
                other.client_id_tag.as_str()
            ),
            (4.0, "bob", "d")
        );
    }

    #[test]
    fn ip_limit_prefers_the_address_then_the_default() {
        // Goal: KIP-612's two levels; an address spelled differently still matches; another
        // key or no entity is no limit.
        let mut q = ClientQuotas::default();
        let v6: IpAddr = "::1".parse().unwrap();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(q.ip_limit(v4), None);
        alter(
            &mut q,
            &[set(&[(IP, None)], CONNECTION_CREATION_RATE, 5.0)],
            false,
        );
        let l = q.ip_limit(v4).unwrap();
        assert_eq!((l.limit, l.client_id_tag.as_str()), (5.0, "10.0.0.1"));
        alter(
            &mut q,
            &[set(
                &[(IP, Some("0:0:0:0:0:0:0:1"))],
                CONNECTION_CREATION_RATE,
                2.0,
            )],
            false,
        );
        assert_eq!(q.ip_limit(v6).unwrap().limit, 2.0);
        assert_eq!(q.ip_limit(v4).unwrap().limit, 5.0);
        alter(
            &mut q,
            &[set(
                &[(IP, Some("10.0.0.1"))],
                CONNECTION_CREATION_RATE,
                1.0,
            )],
            false,
        );
        assert_eq!(q.ip_limit(v4).unwrap().limit, 1.0);
        assert_eq!(q.limit_for(CONNECTION_CREATION_RATE, "u", "c"), None);
    }
}
