//! A seeded simulation of the consumer group protocol (KIP-848): clients join, heartbeat,
//! leave, step out as static members, crash and come back; answers are lost; topics grow;
//! the coordinator restarts from its records. Checked after every step:
//! - no partition is held by two members (assigned or pending revocation), and no two
//!   clients that are members believe they own one partition;
//! - the group epoch and the target assignment epoch never go down;
//! - replaying every record emitted so far into an empty coordinator gives the live group.
//!
//! Checked at the end, after a quiet period without faults: the group is stable and every
//! partition is owned by exactly one client.
//!
//! A second run mixes in classic clients (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, as a
//! cooperative client does: it keeps what it owns across a rejoin and gives up what a
//! SyncGroup no longer lists) as members of the consumer group, under the same faults and
//! the same checks.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{consumer_heartbeat_req, request_ctx};
use kafka_protocol::error::ResponseError as E;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;
use weir_groups::*;

const TOPIC: Uuid = Uuid::from_u128(0x5151);
const CLIENTS: usize = 6;
const STEPS: usize = 400;
const SEEDS: u64 = 30;

#[derive(Debug, Clone, Default)]
struct Client {
    member_id: String,
    instance_id: Option<String>,
    epoch: i32,
    owned: BTreeSet<i32>,
    /// In the group (joined or joining), and not crashed.
    live: bool,
    incarnation: u32,
    /// Speaks the classic protocol; its epoch is the generation it last joined.
    classic: bool,
    /// A classic client that must send JoinGroup (and SyncGroup) before it heartbeats again.
    must_join: bool,
    /// Its last heartbeat went unanswered: as the Java client does after a timeout, the next
    /// one is a full request (subscription and rebalance timeout too), which brings back
    /// the assignment.
    send_full: bool,
}

struct Sim {
    rng: StdRng,
    c: Coordinator,
    log: Vec<(bytes::Bytes, Option<bytes::Bytes>)>,
    now_ms: i64,
    token: u64,
    image: Arc<TopicImage>,
    clients: Vec<Client>,
    group_epoch: i32,
    assignment_epoch: i32,
}

fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        consumer_session_timeout_ms: 10_000,
        // Classic clients here only join a consumer group: it is never downgraded, which
        // would need one of them to lead a classic rebalance (tests/migration.rs does that).
        consumer_migration_policy: MigrationPolicy::Upgrade,
        ..CoordinatorConfig::default()
    }
}

fn subscription(owned: &BTreeSet<i32>) -> bytes::Bytes {
    use bytes::BufMut;
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition;
    use kafka_protocol::protocol::Encodable;
    let s = kafka_protocol::messages::ConsumerProtocolSubscription::default()
        .with_topics(vec![common::sb("t")])
        .with_owned_partitions(vec![TopicPartition::default()
            .with_topic(kafka_protocol::messages::TopicName(common::sb("t")))
            .with_partitions(owned.iter().copied().collect())]);
    let mut b = bytes::BytesMut::new();
    b.put_i16(1);
    s.encode(&mut b, 1).unwrap();
    b.freeze()
}

fn assigned(bytes: &bytes::Bytes) -> BTreeSet<i32> {
    use kafka_protocol::protocol::Decodable;
    let mut b = bytes.clone();
    let version = bytes::Buf::get_i16(&mut b);
    kafka_protocol::messages::ConsumerProtocolAssignment::decode(&mut b, version)
        .unwrap()
        .assigned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().copied())
        .collect()
}

fn image(version: u64, partitions: i32) -> Arc<TopicImage> {
    let mut topics = BTreeMap::new();
    topics.insert(
        "t".to_string(),
        TopicInfo {
            id: TOPIC,
            partitions,
            partition_bytes_in_per_s: Vec::new(),
        },
    );
    Arc::new(TopicImage { version, topics })
}

impl Sim {
    fn new(seed: u64, mixed: bool) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let clients = (0..CLIENTS)
            .map(|i| Client {
                instance_id: (i % 3 == 0).then(|| format!("instance-{i}")),
                classic: mixed && i % 2 == 1,
                ..Client::default()
            })
            .collect();
        let partitions = rng.gen_range(1..12);
        Sim {
            rng,
            c: Coordinator::new(config()),
            log: Vec::new(),
            now_ms: 1_000,
            token: 0,
            image: image(1, partitions),
            clients,
            group_epoch: 0,
            assignment_epoch: 0,
        }
    }

    fn keep(&mut self, out: &Output) {
        for r in &out.records {
            self.log.push((r.key.clone(), r.value.clone()));
        }
    }

    fn beat(&mut self, i: usize, lose_answer: bool) {
        let cl = self.clients[i].clone();
        let mut req = consumer_heartbeat_req(
            &cl.member_id,
            cl.instance_id.as_deref(),
            cl.epoch,
            TOPIC,
            &cl.owned,
            20_000,
        );
        if cl.send_full && cl.epoch > 0 {
            req = req
                .with_rebalance_timeout_ms(20_000)
                .with_subscribed_topic_names(Some(vec![common::sb("t").into()]));
        }
        self.clients[i].send_full = lose_answer;
        self.token += 1;
        let ctx = request_ctx(self.token, 1, &format!("client-{i}"));
        let out = self.c.handle(
            self.now_ms,
            ctx,
            GroupRequest::ConsumerGroupHeartbeat(req, self.image.clone()),
        );
        self.keep(&out);
        if lose_answer {
            return;
        }
        let Some((_, GroupResponse::ConsumerGroupHeartbeat(r))) =
            out.responses.into_iter().find(|(t, _)| *t == self.token)
        else {
            panic!("no answer");
        };
        let cl = &mut self.clients[i];
        if r.error_code == 0 {
            cl.epoch = r.member_epoch;
            if let Some(a) = r.assignment {
                cl.owned = a
                    .topic_partitions
                    .iter()
                    .flat_map(|t| t.partitions.iter().copied())
                    .collect();
            }
        } else if r.error_code == E::FencedMemberEpoch.code()
            || r.error_code == E::UnknownMemberId.code()
        {
            // As the Java client does: give up everything and rejoin at epoch 0.
            cl.owned.clear();
            cl.epoch = 0;
        } else if r.error_code == E::UnreleasedInstanceId.code() {
            // The previous incarnation still holds the instance id: try again later.
        } else {
            panic!("unexpected error {} for {cl:?}", r.error_code);
        }
    }

    /// Sends one request of client `i` and returns the answer to it, unless it is lost.
    fn call(
        &mut self,
        i: usize,
        version: i16,
        req: GroupRequest,
        lose: bool,
    ) -> Option<GroupResponse> {
        self.token += 1;
        let ctx = request_ctx(self.token, version, &format!("client-{i}"));
        let out = self.c.handle(self.now_ms, ctx, req);
        self.keep(&out);
        if lose {
            return None;
        }
        out.responses
            .into_iter()
            .find(|(t, _)| *t == self.token)
            .map(|(_, r)| r)
    }

    /// A classic client's JoinGroup and SyncGroup, as a cooperative client sends them: it
    /// joins with what it owns, then owns what the SyncGroup lists; one that gave something
    /// up rejoins.
    fn classic_join(&mut self, i: usize, lose_answer: bool) {
        use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
        use kafka_protocol::messages::*;
        let cl = self.clients[i].clone();
        let join = JoinGroupRequest::default()
            .with_group_id(common::sb("g").into())
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(20_000)
            .with_member_id(common::sb(&cl.member_id))
            .with_protocol_type(common::sb("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(common::sb("cooperative-sticky"))
                .with_metadata(subscription(&cl.owned))]);
        let answer = self.call(
            i,
            9,
            GroupRequest::JoinGroup(join, self.image.clone()),
            lose_answer,
        );
        let Some(GroupResponse::JoinGroup(j)) = answer else {
            return;
        };
        let cl = &mut self.clients[i];
        if j.error_code == E::MemberIdRequired.code() {
            cl.member_id = j.member_id.to_string();
            return;
        }
        if j.error_code == E::UnknownMemberId.code()
            || j.error_code == E::GroupMaxSizeReached.code()
        {
            cl.owned.clear();
            cl.member_id.clear();
            return;
        }
        assert_eq!(j.error_code, 0, "join of {cl:?}");
        cl.epoch = j.generation_id;
        let sync = SyncGroupRequest::default()
            .with_group_id(common::sb("g").into())
            .with_generation_id(j.generation_id)
            .with_member_id(j.member_id.clone())
            .with_protocol_type(Some(common::sb("consumer")))
            .with_protocol_name(Some(common::sb("cooperative-sticky")));
        let answer = self.call(
            i,
            5,
            GroupRequest::SyncGroup(sync, self.image.clone()),
            false,
        );
        let Some(GroupResponse::SyncGroup(r)) = answer else {
            panic!("no SyncGroup answer");
        };
        let cl = &mut self.clients[i];
        if r.error_code == E::RebalanceInProgress.code() {
            return;
        }
        if r.error_code != 0 {
            // Fenced meanwhile (a timeout): lose everything and start over.
            cl.owned.clear();
            cl.member_id.clear();
            return;
        }
        let now = assigned(&r.assignment);
        let gave_up = cl.owned.iter().any(|p| !now.contains(p));
        cl.owned = now;
        cl.must_join = gave_up;
    }

    fn classic_beat(&mut self, i: usize, lose_answer: bool) {
        if self.clients[i].must_join || self.clients[i].member_id.is_empty() {
            self.clients[i].must_join = true;
            if !self.consumer_group_with_members() {
                // Its JoinGroup would make a classic group of the empty consumer group.
                return;
            }
            return self.classic_join(i, lose_answer);
        }
        let cl = self.clients[i].clone();
        let req = GroupRequest::Heartbeat(
            kafka_protocol::messages::HeartbeatRequest::default()
                .with_group_id(common::sb("g").into())
                .with_generation_id(cl.epoch)
                .with_member_id(common::sb(&cl.member_id)),
        );
        let Some(GroupResponse::Heartbeat(r)) = self.call(i, 4, req, lose_answer) else {
            return;
        };
        let cl = &mut self.clients[i];
        if r.error_code == E::RebalanceInProgress.code() {
            cl.must_join = true;
        } else if r.error_code == E::IllegalGeneration.code()
            || r.error_code == E::UnknownMemberId.code()
        {
            // As a cooperative client does: its partitions are lost; it rejoins.
            cl.owned.clear();
            if r.error_code == E::UnknownMemberId.code() {
                cl.member_id.clear();
            }
            cl.must_join = true;
        } else {
            assert_eq!(r.error_code, 0, "heartbeat of {cl:?}");
        }
    }

    fn classic_leave(&mut self, i: usize) {
        let cl = self.clients[i].clone();
        let req = GroupRequest::LeaveGroup(
            kafka_protocol::messages::LeaveGroupRequest::default()
                .with_group_id(common::sb("g").into())
                .with_members(vec![
                    kafka_protocol::messages::leave_group_request::MemberIdentity::default()
                        .with_member_id(common::sb(&cl.member_id)),
                ]),
        );
        self.call(i, 5, req, false);
        self.clients[i].live = false;
        self.clients[i].owned.clear();
    }

    /// Whether the group is a consumer group with members (the only group classic clients
    /// join here).
    fn consumer_group_with_members(&self) -> bool {
        self.c
            .group("g")
            .and_then(|g| g.modern.as_ref())
            .is_some_and(|cg| !cg.members.is_empty())
    }

    fn leave(&mut self, i: usize) {
        if self.clients[i].classic {
            return self.classic_leave(i);
        }
        let cl = self.clients[i].clone();
        let epoch = if cl.instance_id.is_some() && self.rng.gen_bool(0.5) {
            -2
        } else {
            -1
        };
        let req = consumer_heartbeat_req(
            &cl.member_id,
            cl.instance_id.as_deref(),
            epoch,
            TOPIC,
            &cl.owned,
            -1,
        );
        self.token += 1;
        let ctx = request_ctx(self.token, 1, &format!("client-{i}"));
        let out = self.c.handle(
            self.now_ms,
            ctx,
            GroupRequest::ConsumerGroupHeartbeat(req, self.image.clone()),
        );
        self.keep(&out);
        self.clients[i].live = false;
        self.clients[i].owned.clear();
    }

    fn start(&mut self, i: usize) {
        let cl = &mut self.clients[i];
        cl.incarnation += 1;
        cl.must_join = cl.classic;
        cl.member_id = if cl.classic {
            String::new()
        } else {
            format!("m{i}-{}", cl.incarnation)
        };
        cl.epoch = 0;
        cl.owned.clear();
        cl.live = true;
    }

    /// One heartbeat of client `i`, in its protocol.
    fn step(&mut self, i: usize, lose_answer: bool) {
        if self.clients[i].classic {
            self.classic_beat(i, lose_answer);
        } else {
            self.beat(i, lose_answer);
        }
    }

    fn restart_coordinator(&mut self) {
        let mut c = Coordinator::new(config());
        for (k, v) in &self.log {
            c.replay(k, v.as_deref()).unwrap();
        }
        self.c = c;
    }

    fn tick(&mut self, ms: i64) {
        self.now_ms += ms;
        let out = self.c.tick(self.now_ms);
        self.keep(&out);
    }

    fn check(&mut self, seed: u64, step: usize) {
        let live = self.c.group("g").and_then(|g| g.modern.clone());
        let mut replayed = Coordinator::new(config());
        for (k, v) in &self.log {
            replayed.replay(k, v.as_deref()).unwrap();
        }
        let replayed = replayed.group("g").and_then(|g| g.modern.clone());
        assert_eq!(
            live, replayed,
            "seed {seed} step {step}: replay differs from live"
        );
        if let Some(cg) = &live {
            let mut held = BTreeSet::new();
            for m in cg.members.values() {
                for (id, ps) in m.assigned.iter().chain(m.pending_revocation.iter()) {
                    for p in ps {
                        assert!(
                            held.insert((*id, *p)),
                            "seed {seed} step {step}: {p} held twice"
                        );
                    }
                }
            }
            assert!(
                cg.group_epoch >= self.group_epoch,
                "seed {seed} step {step}: group epoch went down"
            );
            assert!(
                cg.assignment_epoch >= self.assignment_epoch,
                "seed {seed} step {step}: assignment epoch went down"
            );
            self.group_epoch = cg.group_epoch;
            self.assignment_epoch = cg.assignment_epoch;
        }
        // A client whose session the coordinator ended believes it owns its partitions until
        // its next heartbeat tells it otherwise, as in Kafka; so does a classic client that
        // missed the answer to its JoinGroup (it is at an older generation, and its heartbeats
        // and commits are refused with ILLEGAL_GENERATION until it rejoins). The others must
        // never overlap.
        let epochs: BTreeMap<String, i32> = live
            .as_ref()
            .map(|cg| {
                cg.members
                    .values()
                    .map(|m| (m.member_id.clone(), m.member_epoch))
                    .collect()
            })
            .unwrap_or_default();
        let mut owned = BTreeSet::new();
        for cl in self.clients.iter().filter(|c| {
            c.live
                && epochs
                    .get(&c.member_id)
                    .is_some_and(|e| !c.classic || *e == c.epoch)
        }) {
            for p in &cl.owned {
                assert!(
                    owned.insert(*p),
                    "seed {seed} step {step}: two live clients own {p}: {:?}\nmembers: {:?}",
                    self.clients,
                    live.as_ref().map(|cg| cg
                        .members
                        .values()
                        .map(|m| (
                            m.member_id.clone(),
                            m.member_epoch,
                            m.state,
                            m.assigned.clone(),
                            m.pending_revocation.clone()
                        ))
                        .collect::<Vec<_>>())
                );
            }
        }
    }
}

fn run(seed: u64, mixed: bool) {
    let mut s = Sim::new(seed, mixed);
    for step in 0..STEPS {
        let i = s.rng.gen_range(0..CLIENTS);
        match s.rng.gen_range(0..100) {
            0..=59 => {
                if s.clients[i].live {
                    let lose = s.rng.gen_bool(0.05);
                    s.step(i, lose);
                } else if s.clients[i].classic && !s.consumer_group_with_members() {
                    // A classic client would make a classic group of an empty one.
                } else if s.rng.gen_bool(0.3) {
                    s.start(i);
                    s.step(i, false);
                }
            }
            60..=64 if s.clients[i].live => s.leave(i),
            65..=67 if s.clients[i].live => {
                // A crash: the client stops and forgets; the coordinator finds out by timeout.
                s.clients[i].live = false;
                s.clients[i].owned.clear();
            }
            68..=69 => s.restart_coordinator(),
            70..=71 => {
                let partitions = s.image.topics["t"].partitions + 1;
                s.image = image(s.image.version + 1, partitions);
            }
            _ => {
                let ms = s.rng.gen_range(100..3_000);
                s.tick(ms);
            }
        }
        s.check(seed, step);
    }
    // A quiet period: every live client heartbeats, time passes, no faults. Classic clients
    // wait for a consumer group with members to join, so one consumer client runs.
    if s.clients.iter().any(|c| c.live && c.classic)
        && !s.clients.iter().any(|c| c.live && !c.classic)
    {
        s.start(0);
    }
    for _ in 0..60 {
        for i in 0..CLIENTS {
            if s.clients[i].live {
                s.step(i, false);
            }
        }
        s.tick(1_000);
        s.check(seed, STEPS);
    }
    let live: Vec<&Client> = s.clients.iter().filter(|c| c.live).collect();
    if live.is_empty() {
        return;
    }
    let g = s.c.group("g").expect("group exists");
    assert_eq!(
        g.state_name(),
        "Stable",
        "seed {seed}: not stable: {:?}",
        g.modern
    );
    let partitions = s.image.topics["t"].partitions;
    let owned: BTreeSet<i32> = live.iter().flat_map(|c| c.owned.iter().copied()).collect();
    assert_eq!(
        owned,
        (0..partitions).collect::<BTreeSet<i32>>(),
        "seed {seed}: not every partition is owned: {live:?}\n{:?}",
        g.modern
    );
}

#[test]
fn consumer_protocol_keeps_its_invariants_under_faults() {
    // Goal: the invariants in this file's opening hold for every seed.
    for seed in 0..SEEDS {
        run(seed, false);
    }
}

#[test]
fn classic_members_of_a_consumer_group_keep_the_invariants_under_faults() {
    // Goal: with half the clients on the classic protocol inside the consumer group, the
    // same invariants hold for every seed.
    for seed in 0..SEEDS {
        run(seed, true);
    }
}
