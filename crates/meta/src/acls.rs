//! Kafka's access control lists: the bindings a cluster keeps (`kafka-acls --add`), the
//! filters that describe and delete them, and the decision the authorizer takes on every
//! request.
//!
//! The rules are those of Kafka 4.x's `StandardAuthorizer`:
//! - a super user may do anything;
//! - the ACLs that apply to a resource are the literal ones with its exact name, the literal
//!   wildcard `*`, and the prefixed ones whose name starts the resource's name;
//! - of those, an ACL applies to a request when its principal is the caller's or `User:*`,
//!   its host is the caller's address, `*` or a CIDR range holding it, and its operation is
//!   the one asked, `ALL`, or (for ALLOW only) one that implies it: READ, WRITE, DELETE and
//!   ALTER imply DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS;
//! - one applying DENY refuses, whatever else allows; otherwise one applying ALLOW allows;
//! - with no applying ACL the answer is no, unless the resource has no ACL at all and
//!   `allow.everyone.if.no.acl.found` is set.
//!
//! Creation is checked as Kafka checks it (the broker's checks, then the controller's), with
//! Kafka's sentences. Creating a binding that exists succeeds without a second copy.
//!
//! [`Acls`] keeps the bindings in a sorted set (what is persisted) and an index by resource
//! type and name, so one decision looks at only the ACLs of that resource: one lookup for the
//! literal name, one for `*`, and one per distinct length of the prefixed patterns.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::MetaError;

/// Most ACLs one cluster keeps. Every change rewrites the catalog, so the count stays at
/// what one write handles quickly; Kafka itself has no such bound.
pub const ACLS_MAX: usize = 100_000;
/// Most ACLs one DeleteAcls request removes, Kafka's bound on the records of one
/// controller operation.
pub const ACL_DELETIONS_PER_REQUEST_MAX: usize = 10_000;
/// The only name a CLUSTER resource may have.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";
/// The literal resource name, and the host, that match any.
pub const WILDCARD: &str = "*";
/// The principal that matches any user.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// The wire code no value has (Kafka's UNKNOWN), in every ACL enum.
pub const CODE_UNKNOWN: i8 = 0;
/// The wire code of ANY, a filter's "whatever the value", in every ACL enum.
pub const CODE_ANY: i8 = 1;
/// The wire code of MATCH, a pattern-type filter that finds every pattern applying to a
/// name.
pub const CODE_MATCH: i8 = 2;

/// Kafka's `ResourceType`, without its filter-only values (ANY) and UNKNOWN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
    User,
}

impl ResourceType {
    pub const ALL: [ResourceType; 6] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
        ResourceType::DelegationToken,
        ResourceType::User,
    ];

    pub const fn code(self) -> i8 {
        match self {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
            ResourceType::DelegationToken => 6,
            ResourceType::User => 7,
        }
    }

    pub fn from_code(code: i8) -> Option<ResourceType> {
        ResourceType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Kafka's name, as `kafka-acls` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
            ResourceType::DelegationToken => "DELEGATION_TOKEN",
            ResourceType::User => "USER",
        }
    }
}

/// Kafka's `PatternType` of a stored binding: LITERAL or PREFIXED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PatternType {
    Literal,
    Prefixed,
}

impl PatternType {
    pub const ALL: [PatternType; 2] = [PatternType::Literal, PatternType::Prefixed];

    pub const fn code(self) -> i8 {
        match self {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    pub fn from_code(code: i8) -> Option<PatternType> {
        PatternType::ALL.into_iter().find(|t| t.code() == code)
    }

    pub const fn name(self) -> &'static str {
        match self {
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        }
    }
}

/// Kafka's `AclOperation`, without ANY and UNKNOWN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
    TwoPhaseCommit,
}

impl Operation {
    pub const ALL: [Operation; 14] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
        Operation::CreateTokens,
        Operation::DescribeTokens,
        Operation::TwoPhaseCommit,
    ];

    pub const fn code(self) -> i8 {
        match self {
            Operation::All => 2,
            Operation::Read => 3,
            Operation::Write => 4,
            Operation::Create => 5,
            Operation::Delete => 6,
            Operation::Alter => 7,
            Operation::Describe => 8,
            Operation::ClusterAction => 9,
            Operation::DescribeConfigs => 10,
            Operation::AlterConfigs => 11,
            Operation::IdempotentWrite => 12,
            Operation::CreateTokens => 13,
            Operation::DescribeTokens => 14,
            Operation::TwoPhaseCommit => 15,
        }
    }

    pub fn from_code(code: i8) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.code() == code)
    }

    pub const fn name(self) -> &'static str {
        match self {
            Operation::All => "ALL",
            Operation::Read => "READ",
            Operation::Write => "WRITE",
            Operation::Create => "CREATE",
            Operation::Delete => "DELETE",
            Operation::Alter => "ALTER",
            Operation::Describe => "DESCRIBE",
            Operation::ClusterAction => "CLUSTER_ACTION",
            Operation::DescribeConfigs => "DESCRIBE_CONFIGS",
            Operation::AlterConfigs => "ALTER_CONFIGS",
            Operation::IdempotentWrite => "IDEMPOTENT_WRITE",
            Operation::CreateTokens => "CREATE_TOKENS",
            Operation::DescribeTokens => "DESCRIBE_TOKENS",
            Operation::TwoPhaseCommit => "TWO_PHASE_COMMIT",
        }
    }

    /// Whether an ALLOW of `self` also allows `requested`: ALL allows everything, and
    /// READ, WRITE, DELETE and ALTER imply DESCRIBE, ALTER_CONFIGS implies
    /// DESCRIBE_CONFIGS. A DENY never implies: it refuses its own operation (or, as ALL,
    /// every one) and nothing else, so a DENY of READ leaves DESCRIBE to the other ACLs.
    pub fn allow_covers(self, requested: Operation) -> bool {
        self == Operation::All
            || self == requested
            || match requested {
                Operation::Describe => matches!(
                    self,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ),
                Operation::DescribeConfigs => self == Operation::AlterConfigs,
                _ => false,
            }
    }

    /// Whether a DENY of `self` refuses `requested`.
    pub fn deny_covers(self, requested: Operation) -> bool {
        self == Operation::All || self == requested
    }
}

/// Kafka's `AclPermissionType`, without ANY and UNKNOWN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PermissionType {
    Deny,
    Allow,
}

impl PermissionType {
    pub const ALL: [PermissionType; 2] = [PermissionType::Deny, PermissionType::Allow];

    pub const fn code(self) -> i8 {
        match self {
            PermissionType::Deny => 2,
            PermissionType::Allow => 3,
        }
    }

    pub fn from_code(code: i8) -> Option<PermissionType> {
        PermissionType::ALL.into_iter().find(|p| p.code() == code)
    }

    pub const fn name(self) -> &'static str {
        match self {
            PermissionType::Deny => "DENY",
            PermissionType::Allow => "ALLOW",
        }
    }
}

/// The name Kafka prints for a code that is no concrete value: ANY, MATCH (pattern types
/// only) or UNKNOWN.
fn filter_code_name(code: i8, has_match: bool) -> &'static str {
    match code {
        CODE_ANY => "ANY",
        CODE_MATCH if has_match => "MATCH",
        _ => "UNKNOWN",
    }
}

/// Whether a resource-type code is one Kafka knows (a value or ANY).
pub fn is_known_resource_type(code: i8) -> bool {
    code == CODE_ANY || ResourceType::from_code(code).is_some()
}

/// Whether a pattern-type code is one Kafka knows (a value, ANY or MATCH).
pub fn is_known_pattern_type(code: i8) -> bool {
    code == CODE_ANY || code == CODE_MATCH || PatternType::from_code(code).is_some()
}

/// Whether an operation code is one Kafka knows (a value or ANY).
pub fn is_known_operation(code: i8) -> bool {
    code == CODE_ANY || Operation::from_code(code).is_some()
}

/// Whether a permission-type code is one Kafka knows (a value or ANY).
pub fn is_known_permission(code: i8) -> bool {
    code == CODE_ANY || PermissionType::from_code(code).is_some()
}

/// One ACL: who (principal, host) may or may not (permission) do what (operation) to which
/// resources (type, name, pattern).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `Type:name`, as `User:alice`; `User:*` is every user.
    pub principal: String,
    /// `*`, an IP address, or (Kafka 4.4, KIP-1276) a CIDR range.
    pub host: String,
    pub operation: Operation,
    pub permission: PermissionType,
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{} {} {} from {} {}",
            self.resource_type.name(),
            self.pattern_type.name(),
            self.resource_name,
            self.principal,
            self.permission.name(),
            self.host,
            self.operation.name()
        )
    }
}

fn invalid(message: impl Into<String>) -> MetaError {
    MetaError::InvalidAcl(message.into())
}

impl AclBinding {
    /// A binding from the codes of a CreateAcls creation, checked in Kafka's order: the
    /// broker's checks (the cluster's name, an empty name), then the controller's (each
    /// code a concrete value, the principal, the host). The caller has already refused a
    /// code Kafka does not know at all (see [`is_known_resource_type`] and its siblings).
    pub fn from_codes(
        resource_type: i8,
        resource_name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<AclBinding, MetaError> {
        if resource_type == ResourceType::Cluster.code() && resource_name != CLUSTER_RESOURCE_NAME {
            return Err(invalid(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_RESOURCE_NAME}"
            )));
        }
        if resource_name.is_empty() {
            return Err(invalid("Invalid empty resource name"));
        }
        let resource_type = ResourceType::from_code(resource_type).ok_or_else(|| {
            invalid(format!(
                "Invalid resourceType {}",
                filter_code_name(resource_type, false)
            ))
        })?;
        let pattern_type = PatternType::from_code(pattern_type).ok_or_else(|| {
            invalid(format!(
                "Invalid patternType {}",
                filter_code_name(pattern_type, true)
            ))
        })?;
        let operation = Operation::from_code(operation).ok_or_else(|| {
            invalid(format!(
                "Invalid operation {}",
                filter_code_name(operation, false)
            ))
        })?;
        let permission = PermissionType::from_code(permission).ok_or_else(|| {
            invalid(format!(
                "Invalid permissionType {}",
                filter_code_name(permission, false)
            ))
        })?;
        let binding = AclBinding {
            resource_type,
            resource_name: resource_name.to_string(),
            pattern_type,
            principal: principal.to_string(),
            host: host.to_string(),
            operation,
            permission,
        };
        binding.validate()?;
        Ok(binding)
    }

    /// The checks a binding with concrete values must still pass.
    pub fn validate(&self) -> Result<(), MetaError> {
        if self.resource_type == ResourceType::Cluster
            && self.resource_name != CLUSTER_RESOURCE_NAME
        {
            return Err(invalid(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_RESOURCE_NAME}"
            )));
        }
        if self.resource_name.is_empty() {
            return Err(invalid("Resource name should not be empty"));
        }
        if !self.principal.contains(':') {
            return Err(invalid(format!(
                "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
                self.principal
            )));
        }
        validate_host(&self.host)
    }
}

/// Kafka 4.4's host check: not empty; `*` or any text without `/` is taken as it is (only
/// an address can ever match); with `/` it must be a CIDR range.
fn validate_host(host: &str) -> Result<(), MetaError> {
    if host.is_empty() {
        return Err(invalid("Host pattern cannot be null or empty"));
    }
    if host == WILDCARD || !host.contains('/') {
        return Ok(());
    }
    Cidr::parse(host)
        .map(|_| ())
        .map_err(|reason| invalid(format!("Invalid CIDR notation '{host}': {reason}")))
}

/// An address range written `address/prefix-length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    /// Reads `address/length`; a refusal is worded as the library Kafka uses words it.
    fn parse(text: &str) -> Result<Cidr, String> {
        let unparsable = || format!("Could not parse [{text}]");
        let (address, length) = text.split_once('/').ok_or_else(unparsable)?;
        let network: IpAddr = address.parse().map_err(|_| unparsable())?;
        let bits_max: u8 = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len: u32 = length
            .parse()
            .ok()
            .filter(|_| length.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(unparsable)?;
        if prefix_len > u32::from(bits_max) {
            return Err(format!("Value [{prefix_len}] not in range [0,{bits_max}]"));
        }
        Ok(Cidr {
            network,
            prefix_len: prefix_len as u8,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A pattern-type filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternFilter {
    /// Any pattern type; a name must then equal the binding's.
    Any,
    /// Every binding that applies to the filter's name: literal equal, literal `*`, and
    /// prefixed ones that start it.
    Match,
    Only(PatternType),
}

/// Kafka's `AclBindingFilter`: each field `None` (or [`PatternFilter::Any`]) matches any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    pub pattern_type: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<PermissionType>,
}

impl AclBindingFilter {
    /// The filter that matches every binding.
    pub fn any() -> AclBindingFilter {
        AclBindingFilter {
            resource_type: None,
            resource_name: None,
            pattern_type: PatternFilter::Any,
            principal: None,
            host: None,
            operation: None,
            permission: None,
        }
    }

    /// A filter from the codes of a DescribeAcls request or a DeleteAcls filter; `None`
    /// when a code is one Kafka does not know (Kafka then refuses to read the request and
    /// closes the connection).
    pub fn from_codes(
        resource_type: i8,
        resource_name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Option<AclBindingFilter> {
        let resource_type = match resource_type {
            CODE_ANY => None,
            code => Some(ResourceType::from_code(code)?),
        };
        let pattern_type = match pattern_type {
            CODE_ANY => PatternFilter::Any,
            CODE_MATCH => PatternFilter::Match,
            code => PatternFilter::Only(PatternType::from_code(code)?),
        };
        let operation = match operation {
            CODE_ANY => None,
            code => Some(Operation::from_code(code)?),
        };
        let permission = match permission {
            CODE_ANY => None,
            code => Some(PermissionType::from_code(code)?),
        };
        Some(AclBindingFilter {
            resource_type,
            resource_name: resource_name.map(str::to_string),
            pattern_type,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation,
            permission,
        })
    }

    /// Kafka's `AclBindingFilter.matches`.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(binding) && self.matches_entry(binding)
    }

    fn matches_pattern(&self, b: &AclBinding) -> bool {
        if self.resource_type.is_some_and(|t| t != b.resource_type) {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return match self.pattern_type {
                PatternFilter::Any | PatternFilter::Match => true,
                PatternFilter::Only(p) => p == b.pattern_type,
            };
        };
        match self.pattern_type {
            PatternFilter::Any => *name == b.resource_name,
            PatternFilter::Only(p) => p == b.pattern_type && *name == b.resource_name,
            PatternFilter::Match => match b.pattern_type {
                PatternType::Literal => *name == b.resource_name || b.resource_name == WILDCARD,
                PatternType::Prefixed => name.starts_with(b.resource_name.as_str()),
            },
        }
    }

    fn matches_entry(&self, b: &AclBinding) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && self.operation.is_none_or(|o| o == b.operation)
            && self.permission.is_none_or(|p| p == b.permission)
    }
}

/// Which client addresses an ACL's host matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Address(IpAddr),
    Range(Cidr),
    /// Text that is no address: Kafka compares it with the client's address as text, which
    /// never equals it.
    Nothing,
}

impl HostMatch {
    fn of(host: &str) -> HostMatch {
        if host == WILDCARD {
            return HostMatch::Any;
        }
        if let Ok(ip) = host.parse() {
            return HostMatch::Address(ip);
        }
        match Cidr::parse(host) {
            Ok(range) => HostMatch::Range(range),
            Err(_) => HostMatch::Nothing,
        }
    }

    fn matches(&self, ip: IpAddr) -> bool {
        match self {
            HostMatch::Any => true,
            HostMatch::Address(a) => *a == ip,
            HostMatch::Range(r) => r.contains(ip),
            HostMatch::Nothing => false,
        }
    }
}

/// The part of a binding the decision reads once the resource has matched.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    principal: String,
    host: String,
    host_match: HostMatch,
    operation: Operation,
    permission: PermissionType,
}

impl Entry {
    fn of(b: &AclBinding) -> Entry {
        Entry {
            principal: b.principal.clone(),
            host: b.host.clone(),
            host_match: HostMatch::of(&b.host),
            operation: b.operation,
            permission: b.permission,
        }
    }

    fn applies(&self, principal: &str, host: IpAddr) -> bool {
        (self.principal == principal || self.principal == WILDCARD_PRINCIPAL)
            && self.host_match.matches(host)
    }
}

/// The ACLs of one resource type, by name.
#[derive(Debug, Clone, Default)]
struct Section {
    literal: HashMap<String, Vec<Entry>>,
    prefixed: HashMap<String, Vec<Entry>>,
    /// Length in bytes of each prefixed name -> how many prefixed names have it, so a
    /// decision tries only the lengths that exist.
    prefix_lengths: BTreeMap<usize, usize>,
}

impl Section {
    fn names(&mut self, pattern: PatternType) -> &mut HashMap<String, Vec<Entry>> {
        match pattern {
            PatternType::Literal => &mut self.literal,
            PatternType::Prefixed => &mut self.prefixed,
        }
    }
}

/// What the ACLs of one resource say about one request.
#[derive(Debug, Default)]
struct Verdict {
    /// The resource has at least one ACL, whoever it is for.
    resource_has_acls: bool,
    allowed: bool,
    denied: bool,
}

impl Verdict {
    fn weigh(&mut self, entries: &[Entry], principal: &str, host: IpAddr, operation: Operation) {
        self.resource_has_acls |= !entries.is_empty();
        for e in entries {
            if !e.applies(principal, host) {
                continue;
            }
            match e.permission {
                PermissionType::Deny if e.operation.deny_covers(operation) => {
                    self.denied = true;
                    return;
                }
                PermissionType::Allow if e.operation.allow_covers(operation) => {
                    self.allowed = true;
                }
                PermissionType::Deny | PermissionType::Allow => {}
            }
        }
    }
}

/// Every ACL of the cluster, indexed for decisions. Persisted (in the catalog) as the
/// sorted list of its bindings; the index is rebuilt on load.
#[derive(Debug, Clone, Default)]
pub struct Acls {
    bindings: BTreeSet<AclBinding>,
    index: HashMap<ResourceType, Section>,
    /// Kafka's `allow.everyone.if.no.acl.found`: a configuration, never persisted.
    allow_everyone_if_no_acl_found: bool,
}

impl PartialEq for Acls {
    fn eq(&self, other: &Acls) -> bool {
        self.bindings == other.bindings
            && self.allow_everyone_if_no_acl_found == other.allow_everyone_if_no_acl_found
    }
}

impl Serialize for Acls {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.bindings.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Acls {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Acls, D::Error> {
        let bindings = Vec::<AclBinding>::deserialize(deserializer)?;
        let mut acls = Acls::default();
        for b in bindings {
            acls.insert(b);
        }
        Ok(acls)
    }
}

impl Acls {
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Every binding, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &AclBinding> {
        self.bindings.iter()
    }

    pub fn allow_everyone_if_no_acl_found(&self) -> bool {
        self.allow_everyone_if_no_acl_found
    }

    /// Kafka's `allow.everyone.if.no.acl.found` (false by default): whether a resource
    /// without any ACL is open to everyone.
    pub fn set_allow_everyone_if_no_acl_found(&mut self, allow: bool) {
        self.allow_everyone_if_no_acl_found = allow;
    }

    /// Adds a checked binding; returns whether it is new (an existing one is not added
    /// twice, and creating it again succeeds, as in Kafka).
    pub fn create(&mut self, binding: AclBinding) -> Result<bool, MetaError> {
        binding.validate()?;
        if self.bindings.contains(&binding) {
            return Ok(false);
        }
        if self.bindings.len() >= ACLS_MAX {
            return Err(MetaError::TooManyAcls(ACLS_MAX));
        }
        self.insert(binding);
        Ok(true)
    }

    /// Removes one binding; returns whether it was there.
    pub fn remove(&mut self, binding: &AclBinding) -> bool {
        if !self.bindings.remove(binding) {
            return false;
        }
        let section = self
            .index
            .get_mut(&binding.resource_type)
            .expect("an indexed binding has a section");
        let names = section.names(binding.pattern_type);
        let entries = names
            .get_mut(&binding.resource_name)
            .expect("an indexed binding has a name entry");
        let entry = Entry::of(binding);
        let at = entries
            .iter()
            .position(|e| *e == entry)
            .expect("an indexed binding has an entry");
        entries.swap_remove(at);
        if entries.is_empty() {
            names.remove(&binding.resource_name);
            if binding.pattern_type == PatternType::Prefixed {
                let len = binding.resource_name.len();
                let count = section
                    .prefix_lengths
                    .get_mut(&len)
                    .expect("a prefixed name's length is counted");
                *count -= 1;
                if *count == 0 {
                    section.prefix_lengths.remove(&len);
                }
            }
        }
        true
    }

    /// Adds to the set and the index, unchecked (bindings read back from the catalog were
    /// checked when created).
    fn insert(&mut self, binding: AclBinding) {
        let section = self.index.entry(binding.resource_type).or_default();
        let names = section.names(binding.pattern_type);
        let entries = names.entry(binding.resource_name.clone()).or_default();
        if entries.is_empty() && binding.pattern_type == PatternType::Prefixed {
            *section
                .prefix_lengths
                .entry(binding.resource_name.len())
                .or_default() += 1;
        }
        let section = self.index.get_mut(&binding.resource_type).expect("added");
        section
            .names(binding.pattern_type)
            .get_mut(&binding.resource_name)
            .expect("added")
            .push(Entry::of(&binding));
        self.bindings.insert(binding);
    }

    /// The bindings a filter matches, sorted.
    pub fn describe(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        self.bindings
            .iter()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    /// DeleteAcls: each filter is matched against the ACLs as they were before the request
    /// (a binding two filters match is listed under both) and gets the bindings it removed.
    /// A filter that would take the request past [`ACL_DELETIONS_PER_REQUEST_MAX`] removes
    /// nothing and fails.
    pub fn delete(
        &mut self,
        filters: &[AclBindingFilter],
    ) -> Vec<Result<Vec<AclBinding>, MetaError>> {
        let mut removed: BTreeSet<AclBinding> = BTreeSet::new();
        let results: Vec<Result<Vec<AclBinding>, MetaError>> = filters
            .iter()
            .map(|filter| {
                let matched = self.describe(filter);
                let new_count = matched.iter().filter(|b| !removed.contains(*b)).count();
                if removed.len() + new_count > ACL_DELETIONS_PER_REQUEST_MAX {
                    return Err(MetaError::TooManyAclDeletions(
                        ACL_DELETIONS_PER_REQUEST_MAX,
                    ));
                }
                removed.extend(matched.iter().cloned());
                Ok(matched)
            })
            .collect();
        for b in &removed {
            self.remove(b);
        }
        results
    }

    /// Whether `principal` (`User:alice`) connected from `host` may perform `operation` on
    /// the resource, by the rules in this module's opening. `super_users` holds principals
    /// as `super.users` lists them.
    pub fn authorize(
        &self,
        super_users: &HashSet<String>,
        principal: &str,
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        if super_users.contains(principal) {
            return true;
        }
        // An IPv4 client of a dual-stack listener arrives as `::ffff:a.b.c.d`; Java hands
        // Kafka's authorizer the IPv4 address, and so does this.
        let host = host.to_canonical();
        let mut verdict = Verdict::default();
        if let Some(section) = self.index.get(&resource_type) {
            // 1. The literal ACLs of the name itself.
            if let Some(entries) = section.literal.get(resource_name) {
                verdict.weigh(entries, principal, host, operation);
            }
            // 2. The prefixed ACLs whose name starts this one: one lookup per length a
            //    prefixed name has, at most one per byte of the name.
            for &len in section
                .prefix_lengths
                .range(1..=resource_name.len())
                .map(|(l, _)| l)
            {
                if verdict.denied {
                    break;
                }
                if !resource_name.is_char_boundary(len) {
                    continue;
                }
                if let Some(entries) = section.prefixed.get(&resource_name[..len]) {
                    verdict.weigh(entries, principal, host, operation);
                }
            }
            // 3. The literal wildcard, which applies to every name of the type.
            if !verdict.denied && resource_name != WILDCARD {
                if let Some(entries) = section.literal.get(WILDCARD) {
                    verdict.weigh(entries, principal, host, operation);
                }
            }
        }
        if verdict.denied {
            return false;
        }
        verdict.allowed || (!verdict.resource_has_acls && self.allow_everyone_if_no_acl_found)
    }

    /// Whether `principal` may perform `operation` on at least one resource of the type:
    /// Kafka's `authorizeByResourceType`, which InitProducerId without a transactional id
    /// asks for WRITE on some topic. True when an ALLOW (literal or prefixed) names a
    /// pattern that no DENY covers: a DENY on the wildcard covers everything, a literal
    /// DENY covers its own name, a prefixed DENY every pattern that starts with it.
    pub fn authorize_any(
        &self,
        super_users: &HashSet<String>,
        principal: &str,
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if super_users.contains(principal) {
            return true;
        }
        let host = host.to_canonical();
        let Some(section) = self.index.get(&resource_type) else {
            return self.allow_everyone_if_no_acl_found;
        };
        let denies = |entries: &[Entry]| {
            entries.iter().any(|e| {
                e.applies(principal, host)
                    && e.permission == PermissionType::Deny
                    && e.operation.deny_covers(operation)
            })
        };
        let allows = |entries: &[Entry]| {
            entries.iter().any(|e| {
                e.applies(principal, host)
                    && e.permission == PermissionType::Allow
                    && (e.operation == operation || e.operation == Operation::All)
            })
        };
        if section.literal.get(WILDCARD).is_some_and(|e| denies(e)) {
            return false;
        }
        let denied_by_prefix = |name: &str| {
            section
                .prefixed
                .iter()
                .any(|(p, e)| name.starts_with(p.as_str()) && denies(e))
        };
        let literal_ok = section
            .literal
            .iter()
            .any(|(name, entries)| allows(entries) && !denies(entries) && !denied_by_prefix(name));
        literal_ok
            || section
                .prefixed
                .iter()
                .any(|(name, entries)| allows(entries) && !denied_by_prefix(name))
    }
}

#[cfg(test)]
mod tests;
