//! The rebalances of one group, kept for people and dashboards: a bounded ring of the
//! latest ([`REBALANCE_HISTORY_MAX`]), and counters since the coordinator started.
//!
//! What counts as one rebalance:
//! - classic groups: from the moment the group enters PreparingRebalance to the moment it is
//!   Stable again (the leader's SyncGroup persisted the assignment) or Empty; a rebalance that
//!   starts again before that ends the previous one as [`RebalanceOutcome::Superseded`]. The
//!   join barrier's end is noted on the way (the generation it produced, and the members it
//!   was still waiting for when it completed or timed out).
//! - consumer groups (KIP-848): each bump of the group epoch, to the moment every member is
//!   reconciled to the new target assignment (the group is Stable) or the group is Empty; the
//!   next bump ends a running one as superseded.
//! - a group that changes protocol (migration) ends a running rebalance as
//!   [`RebalanceOutcome::ProtocolChanged`].
//!
//! This is observational state: it is not written to `__consumer_offsets`, is not rebuilt
//! by replay (a restarted coordinator starts with empty rings and zero counters), and no
//! protocol decision reads it. It changes only with the `now_ms` of the step that changed
//! the group, so it is as deterministic as the rest of the coordinator.

use std::collections::{BTreeMap, VecDeque};

use crate::group::RemovalReason;

/// Rebalances kept per group; older ones fall out of the ring (the counters keep counting).
pub const REBALANCE_HISTORY_MAX: usize = 32;
/// Member changes kept per rebalance (a fleet of a thousand consumers starting together
/// would otherwise make one entry a thousand long); the rest are counted.
pub const REBALANCE_MEMBER_CHANGES_MAX: usize = 64;
/// Members named as still awaited at the join barrier's end; the rest are counted.
pub const REBALANCE_WAITED_FOR_MAX: usize = 64;

/// What started a rebalance. [`RebalanceTrigger::name`] is the `reason` label of
/// `weir_group_rebalances_total`: a fixed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RebalanceTrigger {
    /// A new member joined (classic JoinGroup; a consumer-protocol member at epoch 0).
    MemberJoined,
    /// A member left on its own (LeaveGroup; a consumer heartbeat at epoch -1).
    MemberLeft,
    /// A member's session timed out and it was removed.
    SessionTimeout,
    /// A member was removed for not acting within its rebalance timeout: a classic member
    /// that did not rejoin or sync, a consumer member that did not revoke partitions.
    RebalanceTimeout,
    /// An administrator removed a member (LeaveGroup naming only an instance id).
    AdminRemoval,
    /// A static member came back with protocols that change the group's choice.
    StaticMemberProtocolChanged,
    /// A static member came back while the group waited for the leader's assignment.
    StaticMemberRejoinedDuringSync,
    /// A known member rejoined with new metadata (a classic subscription change), or a
    /// consumer member changed its subscription.
    SubscriptionChanged,
    /// The leader of a Stable classic group rejoined (it wants to reassign, for instance
    /// because the topics it follows changed).
    LeaderRejoined,
    /// The partitions of the subscribed topics changed (a consumer group's metadata).
    TopicMetadataChanged,
    /// The group changed protocol online (classic to consumer or back).
    ProtocolMigration,
}

impl RebalanceTrigger {
    /// Every trigger, in label order of the counters.
    pub const ALL: [RebalanceTrigger; 11] = [
        RebalanceTrigger::MemberJoined,
        RebalanceTrigger::MemberLeft,
        RebalanceTrigger::SessionTimeout,
        RebalanceTrigger::RebalanceTimeout,
        RebalanceTrigger::AdminRemoval,
        RebalanceTrigger::StaticMemberProtocolChanged,
        RebalanceTrigger::StaticMemberRejoinedDuringSync,
        RebalanceTrigger::SubscriptionChanged,
        RebalanceTrigger::LeaderRejoined,
        RebalanceTrigger::TopicMetadataChanged,
        RebalanceTrigger::ProtocolMigration,
    ];

    /// A short snake_case name, stable for metrics and the API.
    pub fn name(self) -> &'static str {
        match self {
            RebalanceTrigger::MemberJoined => "member_joined",
            RebalanceTrigger::MemberLeft => "member_left",
            RebalanceTrigger::SessionTimeout => "session_timeout",
            RebalanceTrigger::RebalanceTimeout => "rebalance_timeout",
            RebalanceTrigger::AdminRemoval => "admin_removal",
            RebalanceTrigger::StaticMemberProtocolChanged => "static_member_protocol_changed",
            RebalanceTrigger::StaticMemberRejoinedDuringSync => {
                "static_member_rejoined_during_sync"
            }
            RebalanceTrigger::SubscriptionChanged => "subscription_changed",
            RebalanceTrigger::LeaderRejoined => "leader_rejoined",
            RebalanceTrigger::TopicMetadataChanged => "topic_metadata_changed",
            RebalanceTrigger::ProtocolMigration => "protocol_migration",
        }
    }

    /// A sentence for people (the group's event history says it).
    pub fn description(self) -> &'static str {
        match self {
            RebalanceTrigger::MemberJoined => "a new member joined",
            RebalanceTrigger::MemberLeft => "a member left",
            RebalanceTrigger::SessionTimeout => "a member's session timed out",
            RebalanceTrigger::RebalanceTimeout => "a member did not rejoin in time",
            RebalanceTrigger::AdminRemoval => "an administrator removed a member",
            RebalanceTrigger::StaticMemberProtocolChanged => {
                "a static member rejoined with a protocol that changes the group's"
            }
            RebalanceTrigger::StaticMemberRejoinedDuringSync => {
                "a static member rejoined before the assignment was made"
            }
            RebalanceTrigger::SubscriptionChanged => "a member's subscription changed",
            RebalanceTrigger::LeaderRejoined => "the leader rejoined",
            RebalanceTrigger::TopicMetadataChanged => "the subscribed topics' partitions changed",
            RebalanceTrigger::ProtocolMigration => "the group changed protocol",
        }
    }

    /// The trigger of a rebalance that a member's removal for `reason` starts.
    pub fn of_removal(reason: RemovalReason) -> RebalanceTrigger {
        match reason {
            RemovalReason::Left => RebalanceTrigger::MemberLeft,
            RemovalReason::SessionTimeout => RebalanceTrigger::SessionTimeout,
            RemovalReason::RebalanceTimeout => RebalanceTrigger::RebalanceTimeout,
            // The static member's new instance took its place: the old one is gone as if it
            // had left.
            RemovalReason::FencedStaticInstance => RebalanceTrigger::MemberLeft,
            RemovalReason::AdminRemoval => RebalanceTrigger::AdminRemoval,
        }
    }
}

/// How a member entered or left the group during a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChangeKind {
    Joined,
    Removed(RemovalReason),
}

/// One member entering or leaving during a rebalance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    pub at_ms: i64,
    pub member_id: String,
    pub kind: MemberChangeKind,
}

/// How a rebalance ended, or that it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceOutcome {
    Running,
    /// The group is Stable (every member has its assignment) or Empty.
    Completed,
    /// Another rebalance started before this one completed.
    Superseded,
    /// The group changed protocol before this one completed.
    ProtocolChanged,
}

impl RebalanceOutcome {
    pub fn name(self) -> &'static str {
        match self {
            RebalanceOutcome::Running => "running",
            RebalanceOutcome::Completed => "completed",
            RebalanceOutcome::Superseded => "superseded",
            RebalanceOutcome::ProtocolChanged => "protocol_changed",
        }
    }
}

/// One rebalance of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebalance {
    pub started_ms: i64,
    /// `None` while it runs.
    pub ended_ms: Option<i64>,
    pub outcome: RebalanceOutcome,
    pub trigger: RebalanceTrigger,
    /// Members that joined or were removed while it ran, the one that started it included,
    /// at most [`REBALANCE_MEMBER_CHANGES_MAX`].
    pub member_changes: Vec<MemberChange>,
    /// Member changes beyond the bound, counted only.
    pub member_changes_dropped: usize,
    /// The classic generation it produced (set when the join barrier completes), or the
    /// consumer group epoch it bumped to.
    pub generation_id: Option<i32>,
    /// Classic only: when the join barrier completed (or its timeout ran out).
    pub join_completed_ms: Option<i64>,
    /// Classic only: the members the join barrier was still waiting for at that moment
    /// (known members that had not rejoined, and member ids handed out but not used), at
    /// most [`REBALANCE_WAITED_FOR_MAX`]; they were removed.
    pub waited_for: Vec<String>,
    /// Awaited members beyond the bound, counted only.
    pub waited_for_dropped: usize,
}

impl Rebalance {
    /// How long it ran, or has run by `now_ms` if it still runs.
    pub fn duration_ms(&self, now_ms: i64) -> i64 {
        self.ended_ms.unwrap_or(now_ms) - self.started_ms
    }

    pub fn is_running(&self) -> bool {
        self.outcome == RebalanceOutcome::Running
    }
}

/// The rebalances of one group: the ring and the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebalanceLog {
    ring: VecDeque<Rebalance>,
    /// Rebalances started, by trigger, since the coordinator started.
    counts: BTreeMap<RebalanceTrigger, u64>,
    /// Duration of the last rebalance that completed.
    last_completed_duration_ms: Option<i64>,
}

impl RebalanceLog {
    /// Starts a rebalance at `now_ms`; one still running ends as superseded.
    pub(crate) fn start(&mut self, now_ms: i64, trigger: RebalanceTrigger) {
        self.end(now_ms, RebalanceOutcome::Superseded);
        if self.ring.len() == REBALANCE_HISTORY_MAX {
            self.ring.pop_front();
        }
        self.ring.push_back(Rebalance {
            started_ms: now_ms,
            ended_ms: None,
            outcome: RebalanceOutcome::Running,
            trigger,
            member_changes: Vec::new(),
            member_changes_dropped: 0,
            generation_id: None,
            join_completed_ms: None,
            waited_for: Vec::new(),
            waited_for_dropped: 0,
        });
        *self.counts.entry(trigger).or_default() += 1;
        debug_assert!(self.ring.len() <= REBALANCE_HISTORY_MAX);
    }

    fn running(&mut self) -> Option<&mut Rebalance> {
        self.ring.back_mut().filter(|r| r.is_running())
    }

    /// Notes a member change in the running rebalance; nothing when none runs.
    pub(crate) fn note_member(&mut self, now_ms: i64, member_id: &str, kind: MemberChangeKind) {
        if let Some(r) = self.running() {
            if r.member_changes.len() < REBALANCE_MEMBER_CHANGES_MAX {
                r.member_changes.push(MemberChange {
                    at_ms: now_ms,
                    member_id: member_id.to_string(),
                    kind,
                });
            } else {
                r.member_changes_dropped += 1;
            }
        }
    }

    /// Classic: the join barrier of the running rebalance completed at `now_ms`, producing
    /// `generation_id`, with `waited_for` still missing.
    pub(crate) fn join_completed(
        &mut self,
        now_ms: i64,
        generation_id: i32,
        waited_for: Vec<String>,
    ) {
        if let Some(r) = self.running() {
            r.generation_id = Some(generation_id);
            r.join_completed_ms = Some(now_ms);
            r.waited_for_dropped = waited_for.len().saturating_sub(REBALANCE_WAITED_FOR_MAX);
            r.waited_for = waited_for;
            r.waited_for.truncate(REBALANCE_WAITED_FOR_MAX);
        }
    }

    /// Consumer groups: the epoch the running rebalance bumped to.
    pub(crate) fn set_epoch(&mut self, epoch: i32) {
        if let Some(r) = self.running() {
            r.generation_id = Some(epoch);
        }
    }

    /// Ends the running rebalance, if any, at `now_ms`.
    pub(crate) fn end(&mut self, now_ms: i64, outcome: RebalanceOutcome) {
        debug_assert!(outcome != RebalanceOutcome::Running);
        let Some(r) = self.running() else {
            return;
        };
        r.ended_ms = Some(now_ms);
        r.outcome = outcome;
        if outcome == RebalanceOutcome::Completed {
            self.last_completed_duration_ms = Some(now_ms - r.started_ms);
        }
    }

    /// The rebalances kept, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &Rebalance> {
        self.ring.iter()
    }

    /// The running rebalance, if one runs.
    pub fn current(&self) -> Option<&Rebalance> {
        self.ring.back().filter(|r| r.is_running())
    }

    /// Rebalances started since the coordinator started, by trigger (only triggers seen).
    pub fn counts(&self) -> &BTreeMap<RebalanceTrigger, u64> {
        &self.counts
    }

    /// Rebalances started since the coordinator started.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Duration of the last rebalance that completed.
    pub fn last_completed_duration_ms(&self) -> Option<i64> {
        self.last_completed_duration_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_latest_and_the_counters_keep_everything() {
        // Goal: past the bound the oldest rebalances fall out, the counters do not; a new
        // start supersedes a running one; only completed ones set the last duration.
        let mut log = RebalanceLog::default();
        for i in 0..(REBALANCE_HISTORY_MAX as i64 + 5) {
            log.start(i * 10, RebalanceTrigger::MemberJoined);
        }
        assert_eq!(log.history().count(), REBALANCE_HISTORY_MAX);
        assert_eq!(log.history().next().unwrap().started_ms, 50);
        assert_eq!(log.total(), REBALANCE_HISTORY_MAX as u64 + 5);
        assert!(log
            .history()
            .take(REBALANCE_HISTORY_MAX - 1)
            .all(|r| r.outcome == RebalanceOutcome::Superseded && r.duration_ms(0) == 10));
        assert_eq!(log.last_completed_duration_ms(), None);
        log.start(1_000, RebalanceTrigger::MemberLeft);
        for i in 0..(REBALANCE_MEMBER_CHANGES_MAX + 3) {
            log.note_member(1_001, &format!("m{i}"), MemberChangeKind::Joined);
        }
        log.end(1_250, RebalanceOutcome::Completed);
        log.note_member(1_300, "late", MemberChangeKind::Joined);
        let last = log.history().last().unwrap();
        assert_eq!(last.member_changes.len(), REBALANCE_MEMBER_CHANGES_MAX);
        assert_eq!(last.member_changes_dropped, 3);
        assert_eq!(last.duration_ms(99_999), 250);
        assert_eq!(log.last_completed_duration_ms(), Some(250));
        assert_eq!(log.counts()[&RebalanceTrigger::MemberLeft], 1);
        assert!(log.current().is_none());
    }
}
