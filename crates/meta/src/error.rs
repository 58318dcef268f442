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
    /// An ACL refused by CreateAcls, with Kafka's sentence (Kafka's
    /// InvalidRequestException).
    #[error("{0}")]
    InvalidAcl(String),
    #[error("{0} ACLs already exist, the most one cluster keeps")]
    TooManyAcls(usize),
    /// Kafka's sentence for a DeleteAcls past its bound.
    #[error("Cannot remove more than {0} acls in a single delete operation.")]
    TooManyAclDeletions(usize),
    #[error("catalog file is unreadable: {0}")]
    Corrupt(String),
}
