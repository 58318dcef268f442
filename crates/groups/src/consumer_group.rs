//! A consumer group of the KIP-848 protocol: its members, epochs, target assignment and
//! the owner of every partition, changed only by replaying its records
//! ([`ConsumerGroup::replay`]), live and at start alike.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::consumer_records::{
    Assignment, ClassicMemberMetadata, ConsumerKey, CurrentMemberAssignmentValue,
    GroupMetadataValue, MemberMetadataValue, PartitionMetadataValue, TargetAssignmentMemberValue,
    TargetAssignmentMetadataValue, TopicMetadata,
};
use crate::GroupsError;

/// The epoch a member sends to leave the group.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// The epoch a static member sends to leave for now, keeping its partitions.
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// Where a member is in reconciling towards its target, with Kafka's stored values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Holds exactly its target at the target epoch.
    Stable,
    /// Must give up partitions before it may move to the next epoch.
    UnrevokedPartitions,
    /// Is at the target epoch but waits for partitions others still hold.
    UnreleasedPartitions,
    /// A state from a newer version: the member is fenced and starts over.
    Unknown,
}

impl MemberState {
    pub fn code(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }

    pub fn from_code(code: i8) -> MemberState {
        match code {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MemberState::Stable => "STABLE",
            MemberState::UnrevokedPartitions => "UNREVOKED_PARTITIONS",
            MemberState::UnreleasedPartitions => "UNRELEASED_PARTITIONS",
            MemberState::Unknown => "UNKNOWN",
        }
    }
}

/// Consumer group states, named as Kafka names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Sorted.
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    /// Set while the member speaks the classic protocol (JoinGroup, SyncGroup, Heartbeat)
    /// in this consumer group: its session timeout and the protocols it joined with.
    pub classic: Option<ClassicMemberMetadata>,
}

impl ConsumerMember {
    pub fn new(member_id: &str) -> ConsumerMember {
        ConsumerMember {
            member_id: member_id.to_string(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            rebalance_timeout_ms: -1,
            server_assignor: None,
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            classic: None,
        }
    }

    pub fn uses_classic_protocol(&self) -> bool {
        self.classic.is_some()
    }

    pub fn is_reconciled_to(&self, epoch: i32) -> bool {
        self.state == MemberState::Stable && self.member_epoch == epoch
    }

    pub fn metadata_value(&self) -> MemberMetadataValue {
        MemberMetadataValue {
            instance_id: self.instance_id.clone(),
            rack_id: self.rack_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            subscribed_topic_names: self.subscribed_topic_names.clone(),
            subscribed_topic_regex: self.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            server_assignor: self.server_assignor.clone(),
            classic: self.classic.clone(),
        }
    }

    pub fn assignment_value(&self) -> CurrentMemberAssignmentValue {
        CurrentMemberAssignmentValue {
            member_epoch: self.member_epoch,
            previous_member_epoch: self.previous_member_epoch,
            state: self.state.code(),
            assigned: self.assigned.clone(),
            pending_revocation: self.pending_revocation.clone(),
        }
    }

    /// Whether the subscription (what decides the target assignment) differs.
    pub fn subscription_differs(&self, other: &ConsumerMember) -> bool {
        self.subscribed_topic_names != other.subscribed_topic_names
            || self.subscribed_topic_regex != other.subscribed_topic_regex
    }
}

/// The server assignor most of `members` ask for (ties to the first name), if any asks.
pub fn assignor_by_votes<'a>(members: impl Iterator<Item = &'a ConsumerMember>) -> Option<String> {
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for m in members {
        if let Some(a) = &m.server_assignor {
            *votes.entry(a.as_str()).or_default() += 1;
        }
    }
    let best = votes.values().copied().max()?;
    votes
        .into_iter()
        .find(|(_, n)| *n == best)
        .map(|(a, _)| a.to_string())
}

/// Deadlines of one member; not persisted (a loaded member gets fresh ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberTimers {
    pub session_deadline_ms: i64,
    /// The member must have revoked by then, while at this epoch.
    pub revocation_deadline: Option<(i64, i32)>,
    /// A classic member told to rejoin must send JoinGroup by then (its rebalance timeout).
    pub join_deadline_ms: Option<i64>,
    /// A classic member that joined must send SyncGroup by then (its rebalance timeout).
    pub sync_deadline_ms: Option<i64>,
}

impl MemberTimers {
    /// Timers of a member whose session starts at `now_ms`.
    pub fn starting(now_ms: i64, session_timeout_ms: i32) -> MemberTimers {
        MemberTimers {
            session_deadline_ms: now_ms + i64::from(session_timeout_ms),
            revocation_deadline: None,
            join_deadline_ms: None,
            sync_deadline_ms: None,
        }
    }

    /// The earliest of the deadlines.
    pub fn next_ms(&self) -> i64 {
        [
            Some(self.session_deadline_ms),
            self.revocation_deadline.map(|d| d.0),
            self.join_deadline_ms,
            self.sync_deadline_ms,
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("the session deadline is always set")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    /// The subscribed topics as last computed, by name.
    pub subscription_metadata: BTreeMap<String, TopicMetadata>,
    pub members: BTreeMap<String, ConsumerMember>,
    /// instance id -> member id.
    pub static_members: BTreeMap<String, String>,
    /// The target assignment, by member id.
    pub target: BTreeMap<String, Assignment>,
    /// The member holding each partition (assigned or pending revocation) and its epoch.
    pub owners: BTreeMap<(Uuid, i32), (String, i32)>,
}

impl ConsumerGroup {
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.assignment_epoch))
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The epoch of the member that holds a partition, or -1 when it is free.
    pub fn partition_epoch(&self, topic_id: Uuid, partition: i32) -> i32 {
        self.owners.get(&(topic_id, partition)).map_or(-1, |o| o.1)
    }

    pub fn target_of(&self, member_id: &str) -> Assignment {
        self.target.get(member_id).cloned().unwrap_or_default()
    }

    /// The server assignor most members ask for (ties to the first name), if any asks.
    pub fn preferred_assignor(&self) -> Option<String> {
        assignor_by_votes(self.members.values())
    }

    fn release(&mut self, member_id: &str) {
        if let Some(m) = self.members.get(member_id) {
            for (id, ps) in m.assigned.iter().chain(m.pending_revocation.iter()) {
                for p in ps {
                    if self
                        .owners
                        .get(&(*id, *p))
                        .is_some_and(|o| o.0 == member_id)
                    {
                        self.owners.remove(&(*id, *p));
                    }
                }
            }
        }
    }

    fn claim(&mut self, member_id: &str) {
        let Some(m) = self.members.get(member_id) else {
            return;
        };
        let epoch = m.member_epoch;
        let held: Vec<(Uuid, i32)> = m
            .assigned
            .iter()
            .chain(m.pending_revocation.iter())
            .flat_map(|(id, ps)| ps.iter().map(move |p| (*id, *p)))
            .collect();
        for tp in held {
            if let Some(prev) = self.owners.insert(tp, (member_id.to_string(), epoch)) {
                assert!(
                    prev.0 == member_id,
                    "partition {tp:?} of {member_id} is still held by {}",
                    prev.0
                );
            }
        }
    }

    /// Applies one consumer-group record. Returns whether the group is gone (its epoch
    /// record was deleted).
    pub fn replay(&mut self, key: &ConsumerKey, value: Option<&[u8]>) -> Result<bool, GroupsError> {
        match key {
            ConsumerKey::GroupMetadata { .. } => match value {
                Some(v) => self.group_epoch = GroupMetadataValue::decode(v)?.epoch,
                None => return Ok(true),
            },
            ConsumerKey::PartitionMetadata { .. } => {
                self.subscription_metadata = match value {
                    Some(v) => PartitionMetadataValue::decode(v)?
                        .topics
                        .into_iter()
                        .map(|t| (t.topic_name.clone(), t))
                        .collect(),
                    None => BTreeMap::new(),
                };
            }
            ConsumerKey::MemberMetadata { member, .. } => match value {
                Some(v) => {
                    let v = MemberMetadataValue::decode(v)?;
                    let m = self
                        .members
                        .entry(member.clone())
                        .or_insert_with(|| ConsumerMember::new(member));
                    if let Some(old) = &m.instance_id {
                        if v.instance_id.as_ref() != Some(old) {
                            self.static_members.remove(old);
                        }
                    }
                    if let Some(iid) = &v.instance_id {
                        self.static_members.insert(iid.clone(), member.clone());
                    }
                    m.instance_id = v.instance_id;
                    m.rack_id = v.rack_id;
                    m.client_id = v.client_id;
                    m.client_host = v.client_host;
                    let mut names = v.subscribed_topic_names;
                    names.sort();
                    m.subscribed_topic_names = names;
                    m.subscribed_topic_regex = v.subscribed_topic_regex;
                    m.rebalance_timeout_ms = v.rebalance_timeout_ms;
                    m.server_assignor = v.server_assignor;
                    m.classic = v.classic;
                }
                None => {
                    self.release(member);
                    if let Some(m) = self.members.remove(member) {
                        if let Some(iid) = m.instance_id {
                            if self.static_members.get(&iid) == Some(member) {
                                self.static_members.remove(&iid);
                            }
                        }
                    }
                }
            },
            ConsumerKey::TargetAssignmentMetadata { .. } => {
                if let Some(v) = value {
                    self.assignment_epoch =
                        TargetAssignmentMetadataValue::decode(v)?.assignment_epoch;
                }
            }
            ConsumerKey::TargetAssignmentMember { member, .. } => match value {
                Some(v) => {
                    let v = TargetAssignmentMemberValue::decode(v)?;
                    self.target.insert(member.clone(), v.partitions);
                }
                None => {
                    self.target.remove(member);
                }
            },
            ConsumerKey::CurrentMemberAssignment { member, .. } => {
                self.release(member);
                match value {
                    Some(v) => {
                        let v = CurrentMemberAssignmentValue::decode(v)?;
                        let m = self
                            .members
                            .entry(member.clone())
                            .or_insert_with(|| ConsumerMember::new(member));
                        m.member_epoch = v.member_epoch;
                        m.previous_member_epoch = v.previous_member_epoch;
                        m.state = MemberState::from_code(v.state);
                        m.assigned = v.assigned;
                        m.pending_revocation = v.pending_revocation;
                        self.claim(member);
                    }
                    None => {
                        if let Some(m) = self.members.get_mut(member) {
                            m.assigned.clear();
                            m.pending_revocation.clear();
                            m.member_epoch = 0;
                            m.previous_member_epoch = 0;
                            m.state = MemberState::Stable;
                        }
                    }
                }
            }
        }
        Ok(false)
    }
}
