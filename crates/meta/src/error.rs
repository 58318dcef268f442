//! Catalog errors; the broker maps each to one Kafka error code.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetaError {
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName { name: String, reason: String },
    #[error("invalid partition count: {0}")]
    InvalidPartitions(String),
    #[error("invalid replication factor {0}: this cluster has one broker")]
    InvalidReplicationFactor(i16),
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// A group config refused, with Kafka's own sentence.
    #[error("{0}")]
    InvalidGroupConfig(String),
    #[error("{0} groups already have configs of their own, the most one broker keeps")]
    TooManyGroupConfigs(usize),
    /// A client-metrics subscription refused as a bad request (Kafka's
    /// InvalidRequestException), with Kafka's sentence.
    #[error("{0}")]
    InvalidClientMetricsRequest(String),
    /// A client-metrics config value refused (Kafka's InvalidConfigurationException).
    #[error("{0}")]
    InvalidClientMetricsConfig(String),
    #[error("{0} client-metrics subscriptions already exist, the most one broker keeps")]
    TooManyClientMetrics(usize),
    /// A SCRAM credential refused (Kafka's UNACCEPTABLE_CREDENTIAL), with Kafka's words.
    #[error("{0}")]
    UnacceptableCredential(String),
    /// A SCRAM mechanism type number Kafka calls UNKNOWN.
    #[error("Unknown SCRAM mechanism")]
    UnknownScramMechanism(i8),
    /// A deletion of a credential the user does not have.
    #[error("Attempt to delete a user credential that does not exist")]
    UnknownScramCredential {
        user: String,
        mechanism: &'static str,
    },
    /// A user named by more than one alteration of one AlterUserScramCredentials request.
    #[error("A user credential cannot be altered twice in the same request")]
    ScramUserAlteredTwice(String),
    /// A user named twice in one DescribeUserScramCredentials request.
    #[error("Cannot describe SCRAM credentials for the same user twice in a single request: {0}")]
    ScramUserDescribedTwice(String),
    /// A user without SCRAM credentials named in DescribeUserScramCredentials.
    #[error("Attempt to describe a user credential that does not exist: {0}")]
    UnknownScramUser(String),
    #[error("{0} users already have SCRAM credentials, the most one broker keeps")]
    TooManyScramUsers(usize),
    /// A `--add-scram` argument that does not parse, with Kafka's tool's words.
    #[error("{0}")]
    InvalidScramBootstrap(String),
    /// An ACL refused by CreateAcls, with Kafka's sentence (Kafka's
    /// InvalidRequestException).
    #[error("{0}")]
    InvalidAcl(String),
    #[error("{0} ACLs already exist, the most one cluster keeps")]
    TooManyAcls(usize),
    /// Kafka's sentence for a DeleteAcls past its bound.
    #[error("Cannot remove more than {0} acls in a single delete operation.")]
    TooManyAclDeletions(usize),
    /// A client-quota request refused (Kafka's INVALID_REQUEST), with Kafka's sentence.
    #[error("{0}")]
    InvalidQuotaRequest(String),
    /// A client-quota entity type or match type Kafka does not know (UNSUPPORTED_VERSION).
    #[error("{0}")]
    UnsupportedQuotaEntity(String),
    #[error("{0} entities already have client quotas, the most one broker keeps")]
    TooManyClientQuotaEntities(usize),
    #[error("catalog file is unreadable: {0}")]
    Corrupt(String),
    /// Another broker committed a newer catalog since this change was decided.
    #[error("the catalog changed on another broker meanwhile; retry")]
    CatalogConflict,
    /// The catalog could not be stored (its store unreachable or failing).
    #[error("the catalog could not be stored: {0}")]
    CatalogUnavailable(String),
    /// No producer id could be taken (the cluster's sequence unreachable).
    #[error("no producer id could be allocated: {0}")]
    ProducerIdsUnavailable(String),
}
