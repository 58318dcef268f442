//! Everything `weir serve` can be told, with Kafka's defaults where Kafka has one.

use std::net::SocketAddr;
use std::path::PathBuf;

use weir_log::FsyncPolicy;

use crate::security::listener::ListenerConfig;
use crate::security::SecurityConfig;

/// Most requests read ahead of their responses on one connection. Kafka handles one at a
/// time per connection; weir reads ahead so a pipelining producer keeps the disk busy,
/// and still answers strictly in order.
pub const REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX: usize = 32;
/// Connections accepted at once; more wait in the listen backlog.
pub const CONNECTIONS_MAX: usize = 10_000;

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Where clients connect, each listener with its security protocol and the address it
    /// advertises (Metadata, FindCoordinator and DescribeCluster answer a client with the
    /// listener it came in on). At least one.
    pub listeners: Vec<ListenerConfig>,
    /// TLS files, SASL mechanisms and credentials, principal mapping.
    pub security: SecurityConfig,
    pub data_dir: PathBuf,
    pub node_id: i32,
    pub fsync: FsyncPolicy,
    pub fsync_interval_ms: u64,
    /// Largest request accepted (Kafka's `socket.request.max.bytes`); larger closes the connection.
    pub request_bytes_max: usize,
    /// Kafka's `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// Kafka's `num.partitions`, for topics created without a count.
    pub default_partitions: i32,
    /// Kafka's `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// Kafka's `log.cleaner.backoff.ms`: how often compacted topics are checked for cleaning.
    pub log_cleaner_interval_ms: u64,
    /// Kafka's `offsets.topic.num.partitions`.
    pub offsets_topic_partitions: i32,
    /// Kafka's `offsets.topic.segment.bytes`: segments of `__consumer_offsets` roll (and
    /// become compactable) at this size.
    pub offsets_topic_segment_bytes: u64,
    /// Kafka's `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: i64,
    /// Kafka's `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: i32,
    /// Kafka's `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: i32,
    /// Kafka's `group.max.size`.
    pub group_max_size: usize,
    /// Kafka's `group.consumer.heartbeat.interval.ms`: how often consumer-protocol members
    /// heartbeat, unless a group's own config says otherwise.
    pub group_consumer_heartbeat_interval_ms: i32,
    /// Kafka's `group.consumer.session.timeout.ms`.
    pub group_consumer_session_timeout_ms: i32,
    /// Kafka's `group.consumer.min.heartbeat.interval.ms` and `max.heartbeat.interval.ms`:
    /// the bounds of a group's `consumer.heartbeat.interval.ms`.
    pub group_consumer_heartbeat_interval_bounds_ms: (i32, i32),
    /// Kafka's `group.consumer.min.session.timeout.ms` and `max.session.timeout.ms`.
    pub group_consumer_session_timeout_bounds_ms: (i32, i32),
    /// Kafka's `group.consumer.max.size`.
    pub group_consumer_max_size: usize,
    /// Kafka's `group.consumer.migration.policy`.
    pub group_consumer_migration_policy: weir_groups::MigrationPolicy,
    /// Kafka's `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: i64,
    /// Kafka's `transaction.state.log.num.partitions`.
    pub transaction_state_partitions: i32,
    /// Kafka's `transaction.state.log.segment.bytes`.
    pub transaction_state_segment_bytes: u64,
    /// Kafka's `transaction.max.timeout.ms`: longer transaction timeouts are refused.
    pub transaction_max_timeout_ms: i32,
}

impl BrokerConfig {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> BrokerConfig {
        BrokerConfig {
            listeners: vec![ListenerConfig::plaintext(listen)],
            security: SecurityConfig::default(),
            data_dir,
            node_id: 0,
            fsync: FsyncPolicy::Always,
            fsync_interval_ms: 1000,
            request_bytes_max: weir_wire::frame::REQUEST_BYTES_MAX_DEFAULT,
            auto_create_topics: true,
            default_partitions: 1,
            retention_check_interval_ms: 300_000,
            log_cleaner_interval_ms: 15_000,
            offsets_topic_partitions: 50,
            offsets_topic_segment_bytes: 104_857_600,
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_max_size: weir_groups::GROUP_MEMBERS_MAX,
            group_consumer_heartbeat_interval_ms: 5_000,
            group_consumer_session_timeout_ms: 45_000,
            group_consumer_heartbeat_interval_bounds_ms: (5_000, 15_000),
            group_consumer_session_timeout_bounds_ms: (45_000, 60_000),
            group_consumer_max_size: weir_groups::GROUP_MEMBERS_MAX,
            group_consumer_migration_policy: weir_groups::MigrationPolicy::Bidirectional,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            transaction_state_partitions: 50,
            transaction_state_segment_bytes: 104_857_600,
            transaction_max_timeout_ms: 900_000,
        }
    }

    /// The first listener: the address the CLI prints and the console shows.
    pub fn first_listener(&self) -> &ListenerConfig {
        self.listeners
            .first()
            .expect("a broker has at least one listener")
    }
}
