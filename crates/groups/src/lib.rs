//! `weir-groups`: the group coordinator (classic groups and KIP-848 consumer groups) as a
//! pure, deterministic state machine.
//!
//! Requests and clock ticks go in; responses, records for `__consumer_offsets` and the
//! next deadline come out. Nothing here touches a socket, a file, a thread or the wall
//! clock: time arrives as `now_ms`, and member ids come from a seeded generator, so the
//! same inputs always give the same outputs.
//!
//! The runtime (in `weir-broker`) must append [`Output::records`] durably *before* it
//! releases [`Output::responses`], call [`Coordinator::tick`] at
//! [`Coordinator::next_deadline_ms`], and on start feed every record of
//! `__consumer_offsets` to [`Coordinator::replay`].
//!
//! Layout:
//! - [`records`]: Kafka's key/value schemas for `__consumer_offsets`.
//! - [`group`]: [`group::Group`], its members, the state enum and its one checked transition,
//!   and the bounded history of what happened to the group.
//! - [`rebalances`]: each group's latest rebalances (trigger, members in and out, the
//!   generation or epoch produced, whom the join barrier waited for) and counters by trigger;
//!   observational, neither persisted nor replayed.
//! - [`inspect`]: [`inspect::GroupOverview`], what the HTTP side asks of groups (state,
//!   protocol, generation, members, rebalances) through the runtime; not a Kafka API.
//! - [`coordinator`]: [`Coordinator`]: dispatch, timers, replay.
//! - [`membership`]: JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the rebalance itself.
//! - [`offsets`]: OffsetCommit, OffsetFetch, OffsetDelete, offset retention.
//! - [`txn_offsets`]: TxnOffsetCommit, and pending offsets made visible by a commit marker.
//! - [`admin`]: ListGroups, DescribeGroups, DeleteGroups.
//! - [`refusal`]: any group API answered with one error (NOT_COORDINATOR on a broker that
//!   is not the coordinator, COORDINATOR_LOAD_IN_PROGRESS while it loads).
//!
//! The consumer protocol (KIP-848), a protocol of its own next to the classic one:
//! - [`consumer_records`]: Kafka's key/value schemas for consumer groups.
//! - [`consumer_group`]: [`consumer_group::ConsumerGroup`], its members and partition
//!   owners, changed only by replaying its records.
//! - [`topics`]: the topic image the runtime hands in (ids, partition counts, load).
//! - [`assignors`]: the server-side `uniform`, `range` and `load-aware` assignors.
//! - [`reconcile`]: one member's step towards its target without double ownership.
//! - [`consumer_group_heartbeat`]: ConsumerGroupHeartbeat, leaves and member timeouts.
//! - [`consumer_group_describe`]: ConsumerGroupDescribe.
//! - [`group_configs`]: a group's own session timeout and heartbeat interval, handed in by
//!   the runtime.
//!
//! Between the two, online migration (KIP-848):
//! - [`embedded_protocol`]: the consumer protocol embedded in classic JoinGroup and
//!   SyncGroup (subscriptions with owned partitions, assignments).
//! - [`migration`]: a classic group upgraded when a consumer-protocol member joins, and a
//!   consumer group downgraded when its last consumer-protocol member leaves.
//! - [`classic_members`]: JoinGroup, SyncGroup, Heartbeat and LeaveGroup of classic members
//!   in a consumer group.

pub mod admin;
pub mod assignors;
pub mod classic_members;
pub mod consumer_group;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod consumer_records;
pub mod coordinator;
pub mod embedded_protocol;
pub mod group;
pub mod group_configs;
pub mod inspect;
pub mod membership;
pub mod migration;
pub mod offsets;
pub mod rebalances;
pub mod reconcile;
pub mod records;
pub mod refusal;
pub mod topics;
pub mod txn_offsets;

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::*;

pub use coordinator::Coordinator;
pub use group::{GroupEvent, GroupEventKind, GroupState};
pub use group_configs::GroupConfig;
pub use topics::{TopicImage, TopicInfo};

/// Chosen by the runtime; identifies a request whose response may come later.
pub type RequestToken = u64;

#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Kafka's `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: i32,
    /// Kafka's `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: i32,
    /// Kafka's `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: i64,
    /// Kafka's `group.max.size`.
    pub group_max_size: usize,
    /// Kafka's `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: i64,
    /// How often expired offsets are looked for (Kafka's `offsets.retention.check.interval.ms`).
    pub offsets_retention_check_interval_ms: i64,
    /// Kafka's `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// Kafka's `offsets.topic.num.partitions`.
    pub offsets_topic_partitions: i32,
    /// Seed of the member id generator.
    pub member_id_seed: u64,
    /// Kafka's `group.consumer.heartbeat.interval.ms`.
    pub consumer_heartbeat_interval_ms: i32,
    /// Kafka's `group.consumer.session.timeout.ms`.
    pub consumer_session_timeout_ms: i32,
    /// Kafka's `group.consumer.min/max.heartbeat.interval.ms`: what a group config may set.
    pub consumer_heartbeat_interval_bounds_ms: (i32, i32),
    /// Kafka's `group.consumer.min/max.session.timeout.ms`.
    pub consumer_session_timeout_bounds_ms: (i32, i32),
    /// Kafka's `group.consumer.max.size`.
    pub consumer_max_size: usize,
    /// Kafka's `group.consumer.migration.policy`.
    pub consumer_migration_policy: MigrationPolicy,
}

/// Which way a group may change protocol when its members roll over (Kafka's
/// `group.consumer.migration.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationPolicy {
    /// Classic to consumer and back.
    Bidirectional,
    /// Classic to consumer only.
    Upgrade,
    /// Consumer to classic only.
    Downgrade,
    /// Neither.
    Disabled,
}

impl MigrationPolicy {
    /// Parses Kafka's names, in any case.
    pub fn parse(s: &str) -> Option<MigrationPolicy> {
        match s.to_ascii_lowercase().as_str() {
            "bidirectional" => Some(MigrationPolicy::Bidirectional),
            "upgrade" => Some(MigrationPolicy::Upgrade),
            "downgrade" => Some(MigrationPolicy::Downgrade),
            "disabled" => Some(MigrationPolicy::Disabled),
            _ => None,
        }
    }

    pub fn upgrades(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Bidirectional | MigrationPolicy::Upgrade
        )
    }

    pub fn downgrades(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Bidirectional | MigrationPolicy::Downgrade
        )
    }
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_max_size: GROUP_MEMBERS_MAX,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            offsets_topic_partitions: 50,
            member_id_seed: 0x5eed,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_bounds_ms: (5_000, 15_000),
            consumer_session_timeout_bounds_ms: (45_000, 60_000),
            consumer_max_size: GROUP_MEMBERS_MAX,
            consumer_migration_policy: MigrationPolicy::Bidirectional,
        }
    }
}

/// Hard upper bound on members per group, whatever `group.max.size` says.
pub const GROUP_MEMBERS_MAX: usize = 10_000;
/// Events kept per group in its history ring.
pub const GROUP_HISTORY_EVENTS_MAX: usize = 256;
/// Offsets held pending in open transactions, over all producers; beyond it a TxnOffsetCommit
/// is asked to retry.
pub const TXN_PENDING_OFFSETS_MAX: usize = 1_000_000;
/// Groups one coordinator holds; new groups beyond it are refused.
pub const GROUPS_MAX: usize = 1_000_000;

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub token: RequestToken,
    pub api_version: i16,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone)]
pub enum GroupRequest {
    /// The image names the topics a consumer group assigns to its classic members.
    JoinGroup(JoinGroupRequest, Arc<TopicImage>),
    SyncGroup(SyncGroupRequest, Arc<TopicImage>),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    OffsetDelete(OffsetDeleteRequest),
    ListGroups(ListGroupsRequest),
    DescribeGroups(DescribeGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
    TxnOffsetCommit(TxnOffsetCommitRequest),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest, Arc<TopicImage>),
    ConsumerGroupDescribe(ConsumerGroupDescribeRequest, Arc<TopicImage>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum GroupResponse {
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    OffsetDelete(OffsetDeleteResponse),
    ListGroups(ListGroupsResponse),
    DescribeGroups(DescribeGroupsResponse),
    DeleteGroups(DeleteGroupsResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse),
    ConsumerGroupDescribe(ConsumerGroupDescribeResponse),
}

/// A record for `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub key: Bytes,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Written in a transactional batch of this producer (id, epoch): TxnOffsetCommit.
    pub producer: Option<(i64, i16)>,
}

/// What one step of the coordinator produced.
#[derive(Debug, Default)]
pub struct Output {
    /// Responses to release, possibly for requests parked earlier.
    pub responses: Vec<(RequestToken, GroupResponse)>,
    /// Records to append durably before any response of this output is released.
    pub records: Vec<Record>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GroupsError {
    #[error("unreadable __consumer_offsets record: {0}")]
    BadRecord(String),
}
