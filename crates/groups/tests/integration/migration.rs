//! Online migration between the classic and the consumer protocol through the coordinator:
//! a classic group upgraded by a consumer-protocol member, its classic members carried on
//! by the server-side assignment, and the group downgraded when the consumer-protocol member
//! leaves; after every step the records replayed into a second coordinator give the same
//! group.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use common::{consumer_heartbeat_req, heartbeat_req, request_ctx, sb};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use uuid::Uuid;
use weir_groups::*;

const TOPIC: Uuid = Uuid::from_u128(0x7070);
const SESSION_MS: i32 = 10_000;

struct Ctx {
    c: Coordinator,
    replica: Coordinator,
    now_ms: i64,
    token: u64,
    image: Arc<TopicImage>,
}

impl Ctx {
    fn new() -> Ctx {
        let mut topics = BTreeMap::new();
        topics.insert(
            "t".to_string(),
            TopicInfo {
                id: TOPIC,
                partitions: 6,
                partition_bytes_in_per_s: Vec::new(),
            },
        );
        Ctx {
            c: Coordinator::new(CoordinatorConfig {
                group_initial_rebalance_delay_ms: 0,
                ..CoordinatorConfig::default()
            }),
            replica: Coordinator::new(CoordinatorConfig::default()),
            now_ms: 1_000,
            token: 0,
            image: Arc::new(TopicImage { version: 1, topics }),
        }
    }

    /// Sends one request; returns its token and everything that step answered.
    fn send(&mut self, version: i16, req: GroupRequest) -> (u64, Output) {
        self.token += 1;
        let out = self
            .c
            .handle(self.now_ms, request_ctx(self.token, version, "client"), req);
        for r in &out.records {
            self.replica.replay(&r.key, r.value.as_deref()).unwrap();
        }
        (self.token, out)
    }

    fn tick(&mut self, ms: i64) -> Output {
        self.now_ms += ms;
        let out = self.c.tick(self.now_ms);
        for r in &out.records {
            self.replica.replay(&r.key, r.value.as_deref()).unwrap();
        }
        out
    }

    /// The live group and the replayed one agree on what the log holds.
    fn check_replica(&self) {
        let live = self.c.group("g").unwrap();
        let loaded = self.replica.group("g").unwrap();
        assert_eq!(live.modern, loaded.modern, "the consumer group differs");
        assert_eq!(live.offsets, loaded.offsets, "the offsets differ");
        if live.modern.is_none() && live.is(GroupState::Stable) {
            assert_eq!(live.generation_id, loaded.generation_id);
            let ids = |g: &group::Group| g.members.keys().cloned().collect::<Vec<_>>();
            assert_eq!(ids(live), ids(loaded));
        }
    }
}

fn subscription(owned: &[i32]) -> Bytes {
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition;
    let s = ConsumerProtocolSubscription::default()
        .with_topics(vec![sb("t")])
        .with_owned_partitions(vec![TopicPartition::default()
            .with_topic(TopicName(sb("t")))
            .with_partitions(owned.to_vec())]);
    let mut b = BytesMut::new();
    b.put_i16(1);
    s.encode(&mut b, 1).unwrap();
    b.freeze()
}

fn assignment(partitions: &[i32]) -> Bytes {
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
        TopicPartition::default()
            .with_topic(TopicName(sb("t")))
            .with_partitions(partitions.to_vec()),
    ]);
    let mut b = BytesMut::new();
    b.put_i16(1);
    a.encode(&mut b, 1).unwrap();
    b.freeze()
}

fn assigned_partitions(bytes: &Bytes) -> Vec<i32> {
    let mut b = bytes.clone();
    let version = bytes::Buf::get_i16(&mut b);
    let a = ConsumerProtocolAssignment::decode(&mut b, version).unwrap();
    a.assigned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().copied())
        .collect()
}

fn join(x: &Ctx, member_id: &str, owned: &[i32]) -> GroupRequest {
    GroupRequest::JoinGroup(
        JoinGroupRequest::default()
            .with_group_id(GroupId(sb("g")))
            .with_session_timeout_ms(SESSION_MS)
            .with_rebalance_timeout_ms(20_000)
            .with_member_id(sb(member_id))
            .with_protocol_type(sb("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(sb("range"))
            .with_metadata(subscription(owned))]),
        x.image.clone(),
    )
}

fn sync(x: &Ctx, member_id: &str, generation: i32, assignments: &[(&str, Bytes)]) -> GroupRequest {
    GroupRequest::SyncGroup(
        SyncGroupRequest::default()
            .with_group_id(GroupId(sb("g")))
            .with_generation_id(generation)
            .with_member_id(sb(member_id))
            .with_protocol_type(Some(sb("consumer")))
            .with_protocol_name(Some(sb("range")))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(m, a)| {
                        sync_group_request::SyncGroupRequestAssignment::default()
                            .with_member_id(sb(m))
                            .with_assignment(a.clone())
                    })
                    .collect(),
            ),
        x.image.clone(),
    )
}

fn answer(out: &Output, token: u64) -> &GroupResponse {
    &out.responses
        .iter()
        .find(|(t, _)| *t == token)
        .expect("an answer")
        .1
}

/// Three classic members joined and synced (2 partitions each): their ids and generation.
fn classic_group(x: &mut Ctx) -> (Vec<String>, i32) {
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let (t, out) = x.send(9, join(x, "", &[]));
        let GroupResponse::JoinGroup(r) = answer(&out, t) else {
            panic!()
        };
        assert_eq!(r.error_code, E::MemberIdRequired.code());
        ids.push(r.member_id.to_string());
    }
    for id in &ids {
        let (t, _) = x.send(9, join(x, id, &[]));
        tokens.push(t);
    }
    // The first join phase ends on a later tick (the initial delay, here 0, still lasts
    // FIRST_JOIN_MIN_MS, and runs in steps).
    let mut out = Output::default();
    for _ in 0..10 {
        out = x.tick(weir_groups::membership::FIRST_JOIN_MIN_MS);
        if !out.responses.is_empty() {
            break;
        }
    }
    let GroupResponse::JoinGroup(r) = answer(&out, tokens[0]) else {
        panic!()
    };
    let generation = r.generation_id;
    let leader = r.leader.to_string();
    let mut sorted = ids.clone();
    sorted.sort();
    let plan: Vec<(&str, Bytes)> = sorted
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), assignment(&[2 * i as i32, 2 * i as i32 + 1])))
        .collect();
    for id in &ids {
        let assignments = if *id == leader {
            plan.clone()
        } else {
            Vec::new()
        };
        let (t, out) = x.send(5, sync(x, id, generation, &assignments));
        if *id == leader {
            let GroupResponse::SyncGroup(r) = answer(&out, t) else {
                panic!()
            };
            assert_eq!(r.error_code, 0);
        }
    }
    assert!(x.c.group("g").unwrap().is(GroupState::Stable));
    (sorted, generation)
}

#[test]
fn a_classic_group_is_upgraded_carried_on_and_downgraded() {
    // Goal: a consumer-protocol member joining a stable classic group turns it into a
    // consumer group (members kept at the classic generation with their partitions, offsets
    // kept); classic members rejoin through JoinGroup and SyncGroup and get server-side
    // assignments without a partition owned twice; when the consumer-protocol member
    // leaves, the group is classic again and rebalances; replay agrees at every step.
    let mut x = Ctx::new();
    let (ids, generation) = classic_group(&mut x);
    let commit = common::commit_req("g", &ids[0], generation, &[("t", 0, 42)]);
    let (t, out) = x.send(8, commit);
    assert!(matches!(answer(&out, t), GroupResponse::OffsetCommit(_)));
    assert_eq!(x.c.group("g").unwrap().offsets.len(), 1);

    // 1. The upgrade.
    let hb = consumer_heartbeat_req(
        "new-member-id-000000a",
        None,
        0,
        TOPIC,
        &BTreeSet::new(),
        20_000,
    )
    .with_group_id(sb("g").into());
    let (t, out) = x.send(1, GroupRequest::ConsumerGroupHeartbeat(hb, x.image.clone()));
    let GroupResponse::ConsumerGroupHeartbeat(r) = answer(&out, t) else {
        panic!()
    };
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let g = x.c.group("g").unwrap();
    assert_eq!(g.group_type(), "consumer");
    assert_eq!(g.offsets.len(), 1, "the offsets stay");
    let cg = g.modern.as_ref().unwrap();
    assert_eq!(cg.members.len(), 4);
    for (i, id) in ids.iter().enumerate() {
        let m = &cg.members[id];
        assert!(m.uses_classic_protocol());
        assert_eq!(m.member_epoch, generation);
        let want: BTreeSet<i32> = [2 * i as i32, 2 * i as i32 + 1].into();
        assert_eq!(m.assigned.get(&TOPIC), Some(&want));
    }
    assert!(cg.group_epoch > generation);
    x.check_replica();

    // 2. Each classic member is told to rejoin, rejoins as an eager client does (owning
    //    nothing), syncs, and gets part of the new target; no partition is owned twice.
    let mut owned: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for round in 0..4 {
        for id in &ids {
            let epoch = x.c.group("g").unwrap().modern.as_ref().unwrap().members[id].member_epoch;
            let (t, out) = x.send(4, heartbeat_req("g", id, None, epoch));
            let code = match answer(&out, t) {
                GroupResponse::Heartbeat(r) => r.error_code,
                other => panic!("{other:?}"),
            };
            if code == 0 {
                continue;
            }
            assert_eq!(code, E::RebalanceInProgress.code(), "round {round}");
            let mine = owned.get(id).cloned().unwrap_or_default();
            let (t, out) = x.send(9, join(&x, id, &mine));
            let GroupResponse::JoinGroup(j) = answer(&out, t).clone() else {
                panic!()
            };
            assert_eq!(j.error_code, 0);
            assert_eq!(
                j.leader.as_str(),
                "",
                "no classic member leads a consumer group"
            );
            let (t, out) = x.send(5, sync(&x, id, j.generation_id, &[]));
            let GroupResponse::SyncGroup(s) = answer(&out, t) else {
                panic!()
            };
            if s.error_code == E::RebalanceInProgress.code() {
                continue;
            }
            assert_eq!(s.error_code, 0);
            owned.insert(id.clone(), assigned_partitions(&s.assignment));
            let mut seen = BTreeSet::new();
            for ps in owned.values() {
                for p in ps {
                    assert!(seen.insert(*p), "partition {p} owned twice: {owned:?}");
                }
            }
            x.check_replica();
        }
        // The consumer-protocol member heartbeats too, owning what it was given.
        let cg = x.c.group("g").unwrap().modern.clone().unwrap();
        let me = &cg.members["new-member-id-000000a"];
        let mine: BTreeSet<i32> = me.assigned.get(&TOPIC).cloned().unwrap_or_default();
        let hb = consumer_heartbeat_req(
            "new-member-id-000000a",
            None,
            me.member_epoch,
            TOPIC,
            &mine,
            20_000,
        )
        .with_group_id(sb("g").into());
        x.send(1, GroupRequest::ConsumerGroupHeartbeat(hb, x.image.clone()));
    }
    let cg = x.c.group("g").unwrap().modern.clone().unwrap();
    assert_eq!(
        cg.state(),
        consumer_group::ConsumerGroupState::Stable,
        "{cg:?}"
    );
    let total: usize = cg
        .members
        .values()
        .map(|m| m.assigned.get(&TOPIC).map_or(0, |s| s.len()))
        .sum();
    assert_eq!(total, 6);
    x.check_replica();

    // A classic member commits with its generation at any version; a wrong one is
    // ILLEGAL_GENERATION, the error a classic client knows.
    let m0 = cg.members[&ids[0]].member_epoch;
    for (generation, want) in [(m0, 0), (m0 - 1, E::IllegalGeneration.code())] {
        let (t, out) = x.send(
            7,
            common::commit_req("g", &ids[0], generation, &[("t", 0, 50)]),
        );
        let GroupResponse::OffsetCommit(r) = answer(&out, t) else {
            panic!()
        };
        assert_eq!(r.topics[0].partitions[0].error_code, want);
    }

    // 3. The consumer-protocol member leaves: the group is classic again, rebalancing, with
    //    the three classic members at a generation equal to the group epoch.
    let epoch = cg.members["new-member-id-000000a"].member_epoch;
    let leave = consumer_heartbeat_req(
        "new-member-id-000000a",
        None,
        -1,
        TOPIC,
        &BTreeSet::new(),
        20_000,
    )
    .with_group_id(sb("g").into());
    let _ = epoch;
    x.send(
        1,
        GroupRequest::ConsumerGroupHeartbeat(leave, x.image.clone()),
    );
    let g = x.c.group("g").unwrap();
    assert_eq!(g.group_type(), "classic");
    assert!(g.is(GroupState::PreparingRebalance));
    assert_eq!(g.generation_id, cg.group_epoch);
    assert_eq!(g.members.len(), 3);
    assert_eq!(g.offsets.len(), 1);
    let loaded = x.replica.group("g").unwrap();
    assert!(loaded.modern.is_none());
    assert_eq!(loaded.generation_id, cg.group_epoch);
    assert_eq!(loaded.members.len(), 3);

    // 4. The classic members hear of the rebalance and rejoin; the join completes with a
    //    leader, as in any classic group.
    let (t, out) = x.send(4, heartbeat_req("g", &ids[0], None, cg.group_epoch));
    assert!(
        matches!(answer(&out, t), GroupResponse::Heartbeat(r) if r.error_code == E::RebalanceInProgress.code())
    );
    let mut last = (0, Output::default());
    for id in &ids {
        last = x.send(9, join(&x, id, &[]));
    }
    let GroupResponse::JoinGroup(j) = answer(&last.1, last.0) else {
        panic!()
    };
    assert_eq!(j.error_code, 0);
    assert_eq!(j.generation_id, cg.group_epoch + 1);
    assert!(ids.contains(&j.leader.to_string()));
}

#[test]
fn the_migration_policy_can_refuse_the_upgrade() {
    // Goal: with group.consumer.migration.policy=downgrade, a consumer-protocol member
    // cannot join a classic group with members (GROUP_ID_NOT_FOUND), and the group stays
    // classic and stable.
    let mut x = Ctx::new();
    x.c = Coordinator::new(CoordinatorConfig {
        group_initial_rebalance_delay_ms: 0,
        consumer_migration_policy: MigrationPolicy::Downgrade,
        ..CoordinatorConfig::default()
    });
    classic_group(&mut x);
    let hb = consumer_heartbeat_req(
        "new-member-id-000000a",
        None,
        0,
        TOPIC,
        &BTreeSet::new(),
        20_000,
    )
    .with_group_id(sb("g").into());
    let (t, out) = x.send(1, GroupRequest::ConsumerGroupHeartbeat(hb, x.image.clone()));
    let GroupResponse::ConsumerGroupHeartbeat(r) = answer(&out, t) else {
        panic!()
    };
    assert_eq!(r.error_code, E::GroupIdNotFound.code());
    let g = x.c.group("g").unwrap();
    assert_eq!(g.group_type(), "classic");
    assert!(g.is(GroupState::Stable));
}
