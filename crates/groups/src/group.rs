//! A classic group: its members, its state machine and its history (events, and the
//! rebalances in [`crate::rebalances`]).

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;

use crate::GROUP_HISTORY_EVENTS_MAX;

/// Classic group states, named as Kafka names them in DescribeGroups and ListGroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(&self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// The states a group may come from to enter `self`.
    fn valid_previous(&self) -> &'static [GroupState] {
        use GroupState::*;
        match self {
            Empty => &[PreparingRebalance],
            PreparingRebalance => &[Stable, CompletingRebalance, Empty],
            CompletingRebalance => &[PreparingRebalance],
            Stable => &[CompletingRebalance],
            Dead => &[Stable, PreparingRebalance, CompletingRebalance, Empty, Dead],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEventKind {
    RebalanceStarted {
        reason: String,
    },
    RebalanceCompleted {
        generation_id: i32,
        members: usize,
        duration_ms: i64,
    },
    MemberJoined {
        member_id: String,
        group_instance_id: Option<String>,
    },
    MemberRemoved {
        member_id: String,
        reason: RemovalReason,
    },
    StaticMemberReplaced {
        old_member_id: String,
        new_member_id: String,
        group_instance_id: String,
    },
    OffsetsExpired {
        partitions: usize,
    },
    /// The group changed protocol online (`consumer` or `classic`) with this many members.
    ProtocolChanged {
        to: String,
        members: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalReason {
    Left,
    SessionTimeout,
    RebalanceTimeout,
    FencedStaticInstance,
    AdminRemoval,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEvent {
    pub at_ms: i64,
    pub kind: GroupEventKind,
}

/// A parked JoinGroup or SyncGroup: the runtime's token and the version to answer at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parked {
    pub token: u64,
    pub api_version: i16,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub awaiting_join: Option<Parked>,
    pub awaiting_sync: Option<Parked>,
    pub session_deadline_ms: i64,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub group_id: String,
    state: GroupState,
    pub state_since_ms: i64,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    /// Ordered by member id so every iteration is deterministic.
    pub members: BTreeMap<String, Member>,
    /// group.instance.id -> member id.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the deadline to join by.
    pub pending_members: BTreeMap<String, i64>,
    /// When the current join phase ends at the latest.
    pub join_deadline_ms: Option<i64>,
    /// Start of the current rebalance, and whether it is still in its initial delay.
    pub rebalance_started_ms: Option<i64>,
    pub initial_delay_remaining_ms: i64,
    pub new_member_joined_in_delay: bool,
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Set when the group is a consumer group (KIP-848); the classic fields above are then
    /// unused.
    pub modern: Option<crate::consumer_group::ConsumerGroup>,
    history: VecDeque<GroupEvent>,
    /// The group's rebalances, whatever its protocol; observational, not replayed.
    rebalances: crate::rebalances::RebalanceLog,
}

impl Group {
    pub fn new(group_id: &str, now_ms: i64) -> Group {
        Group {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            state_since_ms: now_ms,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: BTreeMap::new(),
            join_deadline_ms: None,
            rebalance_started_ms: None,
            initial_delay_remaining_ms: 0,
            new_member_joined_in_delay: false,
            offsets: BTreeMap::new(),
            modern: None,
            history: VecDeque::new(),
            rebalances: crate::rebalances::RebalanceLog::default(),
        }
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    /// `consumer` for a consumer group (KIP-848), `classic` otherwise, as ListGroups says.
    pub fn group_type(&self) -> &'static str {
        if self.modern.is_some() {
            "consumer"
        } else {
            "classic"
        }
    }

    /// The state's name as Kafka reports it, whatever the protocol.
    pub fn state_name(&self) -> &'static str {
        match &self.modern {
            Some(cg) => cg.state().name(),
            None => self.state.name(),
        }
    }

    /// The one place a group changes state. An invalid transition is a coordinator bug.
    pub fn transition(&mut self, to: GroupState, now_ms: i64) {
        assert!(
            to.valid_previous().contains(&self.state),
            "group {} cannot go from {:?} to {:?}",
            self.group_id,
            self.state,
            to
        );
        self.state = to;
        self.state_since_ms = now_ms;
    }

    /// Forgets the classic members and protocol (the group's tombstone, or an upgrade to a
    /// consumer group); offsets and history stay.
    pub(crate) fn clear_classic(&mut self) {
        self.protocol_type = None;
        self.protocol_name = None;
        self.leader_id = None;
        self.members.clear();
        self.static_members.clear();
        self.pending_members.clear();
        self.join_deadline_ms = None;
        self.rebalance_started_ms = None;
        self.state = GroupState::Empty;
    }

    /// Used when loading a group from `__consumer_offsets`, and when a group changes
    /// protocol.
    pub(crate) fn force_state(&mut self, to: GroupState, now_ms: i64) {
        self.state = to;
        self.state_since_ms = now_ms;
    }

    pub fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    pub fn record(&mut self, at_ms: i64, kind: GroupEventKind) {
        if self.history.len() == GROUP_HISTORY_EVENTS_MAX {
            self.history.pop_front();
        }
        self.history.push_back(GroupEvent { at_ms, kind });
    }

    pub fn history(&self) -> impl Iterator<Item = &GroupEvent> {
        self.history.iter()
    }

    /// The group's rebalances: the latest ones and the counters.
    pub fn rebalances(&self) -> &crate::rebalances::RebalanceLog {
        &self.rebalances
    }

    pub(crate) fn rebalances_mut(&mut self) -> &mut crate::rebalances::RebalanceLog {
        &mut self.rebalances
    }

    /// Members a running join phase still waits for (known members not yet rejoined, and
    /// member ids handed out but not yet used).
    pub fn waiting_for(&self) -> Vec<String> {
        if !self.is(GroupState::PreparingRebalance) {
            return Vec::new();
        }
        self.members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.member_id.clone())
            .chain(self.pending_members.keys().cloned())
            .collect()
    }

    pub fn all_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// The protocol every member supports that gets the most votes, each member voting for
    /// the candidate it lists first. A tie goes to the candidate the first member (by
    /// member id) lists first.
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| self.members.values().all(|m| m.supports(n)))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let mut votes: Vec<(usize, &String)> = candidates.iter().map(|c| (0usize, *c)).collect();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n)) {
                if let Some(v) = votes.iter_mut().find(|(_, c)| *c == n) {
                    v.0 += 1;
                }
            }
        }
        let best = votes.iter().map(|v| v.0).max()?;
        votes.into_iter().find(|v| v.0 == best).map(|v| v.1.clone())
    }

    /// Whether a new member with these protocols can join: same protocol type, and at least
    /// one protocol every member (and it) supports.
    pub fn accepts(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols
            .iter()
            .any(|(n, _)| self.members.values().all(|m| m.supports(n)))
    }

    /// Topics the consumer-protocol members subscribe to (for OffsetDelete).
    pub fn subscribed_topics(&self) -> Option<Vec<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.clone()?;
        let mut topics = Vec::new();
        for m in self.members.values() {
            let meta = m.metadata_for(&protocol);
            let mut buf = meta.clone();
            if buf.len() < 2 {
                return None;
            }
            let version = bytes::Buf::get_i16(&mut buf);
            let sub = <kafka_protocol::messages::ConsumerProtocolSubscription as kafka_protocol::protocol::Decodable>::decode(&mut buf, version).ok()?;
            topics.extend(sub.topics.iter().map(|t| t.to_string()));
        }
        topics.sort();
        topics.dedup();
        Some(topics)
    }
}
