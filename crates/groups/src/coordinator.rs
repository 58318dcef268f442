//! [`Coordinator`]: owns every group; routes requests; fires timers; replays records.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::consumer_group::{ConsumerGroup, ConsumerGroupState, MemberTimers};
use crate::consumer_records::ConsumerKey;
use crate::group::{CommittedOffset, Group, GroupEvent, GroupState, Member};
use crate::rebalances::{RebalanceOutcome, RebalanceTrigger};
use crate::records::{GroupMetadataValue, MemberMetadata, OffsetCommitValue, RecordKey};
use crate::topics::TopicImage;
use crate::{
    admin, consumer_group_describe, consumer_group_heartbeat, membership, offsets, txn_offsets,
    CoordinatorConfig, GroupRequest, GroupsError, Output, Record, RequestContext,
};

pub struct Coordinator {
    pub(crate) config: CoordinatorConfig,
    pub(crate) groups: BTreeMap<String, Group>,
    member_id_counter: u64,
    next_retention_check_ms: Option<i64>,
    /// Members loaded by replay get their session timers at the first step with a clock.
    sessions_need_start: bool,
    /// Offsets committed in transactions not yet ended, by producer id.
    pub(crate) pending_txn_offsets: BTreeMap<i64, Vec<crate::txn_offsets::PendingOffset>>,
    /// Session and revocation deadlines of consumer-protocol members, by group then member.
    pub(crate) modern_timers: BTreeMap<String, BTreeMap<String, MemberTimers>>,
    /// The topic image version each consumer group last computed its subscription with.
    pub(crate) modern_image_versions: BTreeMap<String, u64>,
    /// The newest topic image a request brought.
    pub(crate) last_image: Arc<TopicImage>,
    /// Groups' own configs, by group id ([`crate::group_configs`]); as many as the runtime
    /// keeps (its catalog bounds them).
    pub(crate) group_configs: BTreeMap<String, crate::group_configs::GroupConfig>,
}

/// SplitMix64: a small, well-mixed, seedable generator for member ids.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Coordinator {
    pub fn new(config: CoordinatorConfig) -> Coordinator {
        Coordinator {
            config,
            groups: BTreeMap::new(),
            member_id_counter: 0,
            next_retention_check_ms: None,
            sessions_need_start: false,
            pending_txn_offsets: BTreeMap::new(),
            modern_timers: BTreeMap::new(),
            modern_image_versions: BTreeMap::new(),
            last_image: Arc::new(TopicImage::default()),
            group_configs: BTreeMap::new(),
        }
    }

    /// A member id for a consumer-protocol member that did not bring one (version 0): 22
    /// URL-safe base64 characters, the shape of Kafka's, from the seeded generator.
    pub(crate) fn new_consumer_member_id(&mut self) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        self.member_id_counter += 1;
        let a = splitmix64(self.config.member_id_seed ^ self.member_id_counter);
        let b = splitmix64(a);
        let bits = (u128::from(a) << 64) | u128::from(b);
        (0..22)
            .map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char)
            .collect()
    }

    /// Applies records this coordinator just emitted for a consumer group, through the same
    /// replay that loads them. When they bump the group epoch, a rebalance starts in the
    /// group's history with `cause` as its trigger; one running ends once the group is
    /// Stable or Empty (see [`crate::rebalances`]).
    pub(crate) fn apply_consumer_records(
        &mut self,
        group_id: &str,
        now_ms: i64,
        records: &[Record],
        cause: RebalanceTrigger,
    ) {
        let epoch_before = self
            .groups
            .get(group_id)
            .and_then(|g| g.modern.as_ref())
            .map(|cg| cg.group_epoch);
        for r in records {
            let key = RecordKey::decode(&r.key).expect("a record this coordinator encoded");
            let RecordKey::Consumer(k) = key else {
                panic!("group {group_id}: a classic record among consumer records");
            };
            self.replay_consumer(&k, r.value.as_deref())
                .expect("a record this coordinator encoded");
        }
        self.observe_consumer_rebalance(group_id, now_ms, epoch_before, cause);
    }

    /// Notes an epoch bump of a consumer group as a rebalance, and the end of the running
    /// one when every member is reconciled. Observational: reads the group, changes only its
    /// rebalance log.
    fn observe_consumer_rebalance(
        &mut self,
        group_id: &str,
        now_ms: i64,
        epoch_before: Option<i32>,
        cause: RebalanceTrigger,
    ) {
        let Some(g) = self.groups.get_mut(group_id) else {
            return;
        };
        let Some(cg) = &g.modern else {
            return;
        };
        let epoch = cg.group_epoch;
        let settled = matches!(
            cg.state(),
            ConsumerGroupState::Stable | ConsumerGroupState::Empty
        );
        if epoch > epoch_before.unwrap_or(0) {
            g.rebalances_mut().start(now_ms, cause);
            g.rebalances_mut().set_epoch(epoch);
        }
        if settled {
            g.rebalances_mut().end(now_ms, RebalanceOutcome::Completed);
        }
    }

    fn replay_consumer(
        &mut self,
        key: &ConsumerKey,
        value: Option<&[u8]>,
    ) -> Result<(), GroupsError> {
        let group_id = key.group();
        if value.is_none()
            && !self
                .groups
                .get(group_id)
                .is_some_and(|g| g.modern.is_some())
        {
            return Ok(());
        }
        let g = self
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id, 0));
        let cg = g.modern.get_or_insert_with(ConsumerGroup::default);
        if cg.replay(key, value)? {
            g.modern = None;
            self.modern_timers.remove(group_id);
            self.modern_image_versions.remove(group_id);
        } else if let ConsumerKey::MemberMetadata { member, .. } = key {
            if value.is_none() {
                if let Some(t) = self.modern_timers.get_mut(group_id) {
                    t.remove(member);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn modern_timers_entry(
        &mut self,
        group_id: &str,
        member_id: &str,
    ) -> &mut MemberTimers {
        self.modern_timers
            .entry(group_id.to_string())
            .or_default()
            .entry(member_id.to_string())
            .or_insert(MemberTimers {
                session_deadline_ms: i64::MAX,
                revocation_deadline: None,
                join_deadline_ms: None,
                sync_deadline_ms: None,
            })
    }

    pub(crate) fn modern_timers_get(
        &mut self,
        group_id: &str,
        member_id: &str,
    ) -> Option<&mut MemberTimers> {
        self.modern_timers.get_mut(group_id)?.get_mut(member_id)
    }

    pub(crate) fn modern_timers_remove(&mut self, group_id: &str, member_id: &str) {
        if let Some(t) = self.modern_timers.get_mut(group_id) {
            t.remove(member_id);
            if t.is_empty() {
                self.modern_timers.remove(group_id);
            }
        }
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// The `__consumer_offsets` partition that holds `group_id`, as Kafka computes it.
    pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
        weir_meta::placement::partition_for(group_id, partitions)
    }

    pub(crate) fn partition_of(&self, group_id: &str) -> i32 {
        Self::partition_for(group_id, self.config.offsets_topic_partitions)
    }

    /// A new member id: the client id, a dash, and a UUID-shaped value from the seeded
    /// generator, as Kafka forms member ids.
    pub(crate) fn new_member_id(&mut self, client_id: &str) -> String {
        self.member_id_counter += 1;
        let a = splitmix64(self.config.member_id_seed ^ self.member_id_counter);
        let b = splitmix64(a);
        format!(
            "{}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            client_id,
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    fn start_loaded_sessions(&mut self, now_ms: i64) {
        if !self.sessions_need_start {
            return;
        }
        self.sessions_need_start = false;
        let group_configs = &self.group_configs;
        let default_session_ms = self.config.consumer_session_timeout_ms;
        for g in self.groups.values_mut() {
            for m in g.members.values_mut() {
                m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
            }
            if let Some(cg) = &g.modern {
                let consumer_session_ms = group_configs
                    .get(&g.group_id)
                    .and_then(|c| c.consumer_session_timeout_ms)
                    .unwrap_or(default_session_ms);
                let timers = self.modern_timers.entry(g.group_id.clone()).or_default();
                for (id, m) in &cg.members {
                    // A classic member's session is its own, as it asked in JoinGroup.
                    let session_ms = m
                        .classic
                        .as_ref()
                        .map_or(consumer_session_ms, |x| x.session_timeout_ms);
                    timers
                        .entry(id.clone())
                        .or_insert(MemberTimers::starting(now_ms, session_ms));
                }
            }
        }
    }

    /// Handles one request. Responses may be for this request or for parked ones.
    pub fn handle(&mut self, now_ms: i64, ctx: RequestContext, request: GroupRequest) -> Output {
        self.start_loaded_sessions(now_ms);
        let mut out = Output::default();
        match request {
            GroupRequest::JoinGroup(r, image) => {
                membership::join(self, now_ms, &ctx, r, &image, &mut out)
            }
            GroupRequest::SyncGroup(r, image) => {
                membership::sync(self, now_ms, &ctx, r, &image, &mut out)
            }
            GroupRequest::Heartbeat(r) => membership::heartbeat(self, now_ms, &ctx, r, &mut out),
            GroupRequest::LeaveGroup(r) => membership::leave(self, now_ms, &ctx, r, &mut out),
            GroupRequest::OffsetCommit(r) => offsets::commit(self, now_ms, &ctx, r, &mut out),
            GroupRequest::OffsetFetch(r) => offsets::fetch(self, &ctx, r, &mut out),
            GroupRequest::OffsetDelete(r) => offsets::delete(self, &ctx, r, &mut out),
            GroupRequest::ListGroups(r) => admin::list(self, &ctx, r, &mut out),
            GroupRequest::DescribeGroups(r) => admin::describe(self, &ctx, r, &mut out),
            GroupRequest::DeleteGroups(r) => admin::delete(self, now_ms, &ctx, r, &mut out),
            GroupRequest::TxnOffsetCommit(r) => {
                txn_offsets::commit(self, now_ms, &ctx, r, &mut out)
            }
            GroupRequest::ConsumerGroupHeartbeat(r, image) => {
                consumer_group_heartbeat::heartbeat(self, now_ms, &ctx, r, &image, &mut out)
            }
            GroupRequest::ConsumerGroupDescribe(r, image) => {
                consumer_group_describe::describe(self, &ctx, r, &image, &mut out)
            }
        }
        out
    }

    /// Fires every timer due at `now_ms`: pending member ids, sessions, join phases, and
    /// offset retention.
    pub fn tick(&mut self, now_ms: i64) -> Output {
        self.start_loaded_sessions(now_ms);
        let mut out = Output::default();
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in ids {
            membership::expire(self, now_ms, &id, &mut out);
        }
        let modern: Vec<String> = self
            .modern_timers
            .iter()
            .filter(|(_, t)| {
                consumer_group_heartbeat::next_deadline(t).is_some_and(|d| d <= now_ms)
            })
            .map(|(g, _)| g.clone())
            .collect();
        for id in modern {
            consumer_group_heartbeat::expire(self, now_ms, &id, &mut out);
        }
        if self.next_retention_check_ms.is_none_or(|t| now_ms >= t) {
            offsets::expire_offsets(self, now_ms, &mut out);
            self.next_retention_check_ms =
                Some(now_ms + self.config.offsets_retention_check_interval_ms.max(1));
        }
        out
    }

    /// The earliest time `tick` has work to do.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let mut next = self.next_retention_check_ms;
        let mut consider = |t: i64| next = Some(next.map_or(t, |n| n.min(t)));
        if self.sessions_need_start {
            consider(0);
        }
        for timers in self.modern_timers.values() {
            if let Some(t) = consumer_group_heartbeat::next_deadline(timers) {
                consider(t);
            }
        }
        for g in self.groups.values() {
            if let Some(t) = g.join_deadline_ms {
                consider(t);
            }
            for &t in g.pending_members.values() {
                consider(t);
            }
            for m in g.members.values() {
                if m.awaiting_join.is_none() && m.awaiting_sync.is_none() {
                    consider(m.session_deadline_ms);
                }
            }
        }
        next
    }

    /// Applies one `__consumer_offsets` record. Used on load for every record, and live for
    /// the offset records `handle` emits, so live and replayed offsets cannot differ.
    pub fn replay(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), GroupsError> {
        match RecordKey::decode(key)? {
            RecordKey::Consumer(k) => {
                if matches!(k, ConsumerKey::MemberMetadata { .. }) && value.is_some() {
                    self.sessions_need_start = true;
                }
                self.replay_consumer(&k, value)
            }
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                match value {
                    Some(v) => {
                        let v = OffsetCommitValue::decode(v)?;
                        let g = self
                            .groups
                            .entry(group.clone())
                            .or_insert_with(|| Group::new(&group, v.commit_timestamp_ms));
                        g.offsets.insert(
                            (topic, partition),
                            CommittedOffset {
                                offset: v.offset,
                                leader_epoch: v.leader_epoch,
                                metadata: v.metadata,
                                commit_timestamp_ms: v.commit_timestamp_ms,
                            },
                        );
                    }
                    None => {
                        if let Some(g) = self.groups.get_mut(&group) {
                            g.offsets.remove(&(topic, partition));
                        }
                    }
                }
                Ok(())
            }
            RecordKey::GroupMetadata { group } => {
                let Some(v) = value else {
                    // The classic group ends; its offsets (and a consumer group an upgrade
                    // made of it) stay until their own tombstones.
                    if let Some(g) = self.groups.get_mut(&group) {
                        if g.offsets.is_empty() && g.modern.is_none() {
                            self.groups.remove(&group);
                        } else {
                            g.clear_classic();
                        }
                    }
                    return Ok(());
                };
                let v = GroupMetadataValue::decode(v)?;
                let g = self
                    .groups
                    .entry(group.clone())
                    .or_insert_with(|| Group::new(&group, v.current_state_timestamp_ms));
                g.generation_id = v.generation;
                g.protocol_type = if v.protocol_type.is_empty() {
                    None
                } else {
                    Some(v.protocol_type)
                };
                g.protocol_name = v.protocol;
                g.leader_id = v.leader;
                g.members.clear();
                g.static_members.clear();
                g.pending_members.clear();
                g.join_deadline_ms = None;
                let protocol = g.protocol_name.clone().unwrap_or_default();
                for m in v.members {
                    if let Some(iid) = &m.group_instance_id {
                        g.static_members.insert(iid.clone(), m.member_id.clone());
                    }
                    g.members.insert(
                        m.member_id.clone(),
                        Member {
                            member_id: m.member_id,
                            group_instance_id: m.group_instance_id,
                            client_id: m.client_id,
                            client_host: m.client_host,
                            session_timeout_ms: m.session_timeout_ms,
                            rebalance_timeout_ms: m.rebalance_timeout_ms,
                            protocol_type: g.protocol_type.clone().unwrap_or_default(),
                            protocols: vec![(protocol.clone(), m.subscription)],
                            assignment: m.assignment,
                            awaiting_join: None,
                            awaiting_sync: None,
                            session_deadline_ms: i64::MAX,
                        },
                    );
                }
                let state = if g.members.is_empty() {
                    GroupState::Empty
                } else {
                    GroupState::Stable
                };
                g.force_state(state, v.current_state_timestamp_ms);
                if !g.members.is_empty() {
                    self.sessions_need_start = true;
                }
                Ok(())
            }
        }
    }

    /// Applies one offset record written in a transactional batch of `producer_id` to
    /// `__consumer_offsets` partition `offsets_partition`: it stays pending until that
    /// partition sees the producer's marker ([`Coordinator::replay_end_txn`]).
    pub fn replay_transactional(
        &mut self,
        offsets_partition: i32,
        producer_id: i64,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), GroupsError> {
        let RecordKey::OffsetCommit {
            group,
            topic,
            partition,
        } = RecordKey::decode(key)?
        else {
            return Err(GroupsError::BadRecord(
                "a transactional batch holds a record other than an offset commit".into(),
            ));
        };
        let Some(v) = value else {
            return Err(GroupsError::BadRecord(
                "a transactional batch holds an offset tombstone".into(),
            ));
        };
        let v = OffsetCommitValue::decode(v)?;
        let offset = CommittedOffset {
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata,
            commit_timestamp_ms: v.commit_timestamp_ms,
        };
        let pending = self.pending_txn_offsets.entry(producer_id).or_default();
        // A later commit of the same partition in the same transaction replaces the earlier.
        pending.retain(|p| !(p.group == group && p.topic == topic && p.partition == partition));
        pending.push(txn_offsets::PendingOffset {
            offsets_partition,
            group,
            topic,
            partition,
            offset,
        });
        Ok(())
    }

    /// A commit or abort marker of `producer_id` in `__consumer_offsets` partition
    /// `offsets_partition`, live (written by the transaction coordinator) or on load.
    pub fn replay_end_txn(&mut self, offsets_partition: i32, producer_id: i64, commit: bool) {
        txn_offsets::complete(self, offsets_partition, producer_id, commit);
    }

    /// The group `group_id`, created empty if it is new.
    pub(crate) fn group_or_new(&mut self, group_id: &str, now_ms: i64) -> &mut Group {
        self.groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id, now_ms))
    }

    /// The group metadata record for a group's current generation.
    pub(crate) fn group_metadata_record(&self, group: &Group, now_ms: i64) -> Record {
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let value = GroupMetadataValue {
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            generation: group.generation_id,
            protocol: group.protocol_name.clone(),
            leader: group.leader_id.clone(),
            current_state_timestamp_ms: now_ms,
            members: group
                .members
                .values()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        };
        Record {
            partition: self.partition_of(&group.group_id),
            key: RecordKey::GroupMetadata {
                group: group.group_id.clone(),
            }
            .encode(),
            value: Some(value.encode()),
            producer: None,
        }
    }

    pub fn group(&self, group_id: &str) -> Option<&Group> {
        self.groups.get(group_id)
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// What happened to a group recently, oldest first.
    pub fn group_history(&self, group_id: &str) -> Vec<GroupEvent> {
        self.groups
            .get(group_id)
            .map(|g| g.history().cloned().collect())
            .unwrap_or_default()
    }

    /// Members a running rebalance of `group_id` still waits for.
    pub fn waiting_for(&self, group_id: &str) -> Vec<String> {
        self.groups
            .get(group_id)
            .map(|g| g.waiting_for())
            .unwrap_or_default()
    }
}
