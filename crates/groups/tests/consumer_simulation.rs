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

mod common;

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
        ..CoordinatorConfig::default()
    }
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
    fn new(seed: u64) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let clients = (0..CLIENTS)
            .map(|i| Client {
                instance_id: (i % 3 == 0).then(|| format!("instance-{i}")),
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
        let req = consumer_heartbeat_req(
            &cl.member_id,
            cl.instance_id.as_deref(),
            cl.epoch,
            TOPIC,
            &cl.owned,
            20_000,
        );
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

    fn leave(&mut self, i: usize) {
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
        cl.member_id = format!("m{i}-{}", cl.incarnation);
        cl.epoch = 0;
        cl.owned.clear();
        cl.live = true;
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
        // its next heartbeat tells it otherwise, as in Kafka; the others must never overlap.
        let members: BTreeSet<String> = live
            .as_ref()
            .map(|cg| cg.members.keys().cloned().collect())
            .unwrap_or_default();
        let mut owned = BTreeSet::new();
        for cl in self
            .clients
            .iter()
            .filter(|c| c.live && members.contains(&c.member_id))
        {
            for p in &cl.owned {
                assert!(
                    owned.insert(*p),
                    "seed {seed} step {step}: two live clients own {p}: {:?}",
                    self.clients
                );
            }
        }
    }
}

fn run(seed: u64) {
    let mut s = Sim::new(seed);
    for step in 0..STEPS {
        let i = s.rng.gen_range(0..CLIENTS);
        match s.rng.gen_range(0..100) {
            0..=59 => {
                if s.clients[i].live {
                    let lose = s.rng.gen_bool(0.05);
                    s.beat(i, lose);
                } else if s.rng.gen_bool(0.3) {
                    s.start(i);
                    s.beat(i, false);
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
    // A quiet period: every live client heartbeats, time passes, no faults.
    for _ in 0..60 {
        for i in 0..CLIENTS {
            if s.clients[i].live {
                s.beat(i, false);
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
        "seed {seed}: not every partition is owned: {live:?}"
    );
}

#[test]
fn consumer_protocol_keeps_its_invariants_under_faults() {
    // Goal: the invariants in this file's opening hold for every seed.
    for seed in 0..SEEDS {
        run(seed);
    }
}
