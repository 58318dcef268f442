//! The rebalance history of groups, driven through the coordinator: what started each
//! rebalance, who came and went, whom a classic join barrier waited for, the epoch bumps of
//! consumer groups, the ring's bound, and the read-only inspection that reports them.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::*;
use kafka_protocol::error::ResponseError as E;
use uuid::Uuid;
use weir_groups::group::RemovalReason;
use weir_groups::inspect::InspectQuery;
use weir_groups::rebalances::{
    MemberChangeKind, RebalanceOutcome, RebalanceTrigger, REBALANCE_HISTORY_MAX,
};
use weir_groups::*;

fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        group_initial_rebalance_delay_ms: 3000,
        ..CoordinatorConfig::default()
    }
}

const PROTOCOLS: &[(&str, &[u8])] = &[("range", b"sub")];

/// Joins a new dynamic member into group `g` (member id first, then the parked join);
/// returns its id and the token of the parked join.
fn join_new(x: &mut Ctx, client: &str) -> (String, u64) {
    let (t, out) = x.send(client, join_req("g", "", None, 10_000, PROTOCOLS));
    let r = join_of(&out, t).unwrap();
    assert_eq!(r.error_code, E::MemberIdRequired.code());
    let id = r.member_id.to_string();
    let (t, out) = x.send(client, join_req("g", &id, None, 10_000, PROTOCOLS));
    assert!(join_of(&out, t).is_none(), "the join is parked");
    (id, t)
}

/// The leader's SyncGroup for `generation`, which makes the group Stable.
fn leader_sync(x: &mut Ctx, leader: &str, generation: i32) {
    let (t, out) = x.send("c", sync_req("g", leader, None, generation, &[]));
    assert_eq!(sync_of(&out, t).unwrap().error_code, 0);
    assert_eq!(x.c.group("g").unwrap().state(), GroupState::Stable);
}

fn removed(reason: RemovalReason) -> MemberChangeKind {
    MemberChangeKind::Removed(reason)
}

#[test]
fn a_join_a_leave_and_a_timeout_are_three_rebalances_with_their_triggers() {
    // Goal: after the group forms, a member joining (while another never rejoins), a member
    // leaving and a member's session running out each add one rebalance with that trigger,
    // the members that came and went, the generation it produced and, for the join whose
    // barrier ran out, the member it was still waiting for.
    let mut x = Ctx::new(config());
    let (ids, generation) = stable_group(&mut x, "g", 2);
    assert_eq!(generation, 1);
    let first =
        x.c.group("g")
            .unwrap()
            .rebalances()
            .history()
            .cloned()
            .collect::<Vec<_>>();
    assert_eq!(first.len(), 1, "forming the group was one rebalance");
    assert_eq!(first[0].trigger, RebalanceTrigger::MemberJoined);
    assert_eq!(first[0].outcome, RebalanceOutcome::Completed);
    assert_eq!(first[0].generation_id, Some(1));
    let (a, b) = (ids[0].clone(), ids[1].clone());

    // 1. C joins; A rejoins; B only heartbeats (its session stays alive) and never rejoins,
    //    so the barrier runs out after the rebalance timeout and removes B.
    let joined_at = x.now;
    let (c, c_join) = join_new(&mut x, "c");
    let (a_join, out) = x.send("a", join_req("g", &a, None, 10_000, PROTOCOLS));
    assert!(join_of(&out, a_join).is_none());
    assert_eq!(x.c.waiting_for("g"), vec![b.clone()]);
    x.advance(5_000);
    let (t, out) = x.send("b", heartbeat_req("g", &b, None, generation));
    assert_eq!(code_of(&out, t), E::RebalanceInProgress.code());
    let out = x.advance(5_000);
    let r = join_of(&out, c_join).expect("the barrier ran out and answered");
    assert_eq!((r.error_code, r.generation_id), (0, 2));
    assert!(join_of(&out, a_join).is_some());
    let leader = r.leader.to_string();
    leader_sync(&mut x, &leader, 2);
    let ended_at = x.now;

    // 2. C leaves; A rejoins at once and alone forms generation 3.
    x.advance(1_000);
    let (t, out) = x.send("c", leave_req("g", &[(&c, None)]));
    assert_eq!(code_of(&out, t), 0);
    let (t, out) = x.send("a", join_req("g", &a, None, 10_000, PROTOCOLS));
    assert_eq!(join_of(&out, t).unwrap().generation_id, 3);
    leader_sync(&mut x, &a, 3);

    // 3. A goes silent: its session ends, and the group rebalances to Empty.
    x.advance(10_001);
    let g = x.c.group("g").unwrap();
    assert_eq!(g.state(), GroupState::Empty);

    let history: Vec<_> = g.rebalances().history().cloned().collect();
    assert_eq!(history.len(), 4);
    let triggers: Vec<RebalanceTrigger> = history[1..].iter().map(|r| r.trigger).collect();
    assert_eq!(
        triggers,
        vec![
            RebalanceTrigger::MemberJoined,
            RebalanceTrigger::MemberLeft,
            RebalanceTrigger::SessionTimeout
        ]
    );
    let join = &history[1];
    assert_eq!(join.waited_for, vec![b.clone()], "the barrier waited for B");
    assert_eq!(
        join.member_changes
            .iter()
            .map(|m| (m.member_id.clone(), m.kind))
            .collect::<Vec<_>>(),
        vec![
            (c.clone(), MemberChangeKind::Joined),
            (b.clone(), removed(RemovalReason::RebalanceTimeout)),
        ]
    );
    assert_eq!(join.generation_id, Some(2));
    assert_eq!(
        (join.started_ms, join.ended_ms),
        (joined_at, Some(ended_at))
    );
    assert_eq!(join.join_completed_ms, Some(joined_at + 10_000));
    let leave = &history[2];
    assert!(leave.waited_for.is_empty(), "everyone left rejoined");
    assert_eq!(leave.member_changes[0].member_id, c);
    assert_eq!(leave.member_changes[0].kind, removed(RemovalReason::Left));
    assert_eq!(leave.generation_id, Some(3));
    let timeout = &history[3];
    assert_eq!(timeout.member_changes[0].member_id, a);
    assert_eq!(
        timeout.member_changes[0].kind,
        removed(RemovalReason::SessionTimeout)
    );
    assert_eq!(timeout.generation_id, Some(4));
    assert!(history
        .iter()
        .all(|r| r.outcome == RebalanceOutcome::Completed));
    assert_eq!(
        timeout.duration_ms(i64::MAX),
        0,
        "an empty group settles at once"
    );

    let counts = g.rebalances().counts();
    assert_eq!(counts[&RebalanceTrigger::MemberJoined], 2);
    assert_eq!(counts[&RebalanceTrigger::MemberLeft], 1);
    assert_eq!(counts[&RebalanceTrigger::SessionTimeout], 1);
    assert_eq!(g.rebalances().total(), 4);
    assert_eq!(g.rebalances().last_completed_duration_ms(), Some(0));

    // Observational only: the records do not carry it, so a replayed coordinator has none.
    assert_eq!(x.replayed().group("g").unwrap().rebalances().total(), 0);
}

#[test]
fn the_ring_keeps_the_latest_rebalances_and_the_counters_all() {
    // Goal: a group that rebalances more often than the ring holds keeps the newest
    // REBALANCE_HISTORY_MAX, while its counters count every one; a running rebalance is
    // reported as such with its age.
    let mut x = Ctx::new(config());
    let (ids, mut generation) = stable_group(&mut x, "g", 1);
    let me = ids[0].clone();
    let rounds = REBALANCE_HISTORY_MAX + 8;
    for i in 0..rounds {
        // The same member with new metadata: a subscription change.
        let meta = format!("sub-{i}");
        let (t, out) = x.send(
            "c",
            join_req("g", &me, None, 10_000, &[("range", meta.as_bytes())]),
        );
        generation = join_of(&out, t).unwrap().generation_id;
        x.advance(7);
        leader_sync(&mut x, &me, generation);
    }
    let g = x.c.group("g").unwrap();
    let history: Vec<_> = g.rebalances().history().collect();
    assert_eq!(history.len(), REBALANCE_HISTORY_MAX);
    assert!(history
        .iter()
        .all(|r| r.trigger == RebalanceTrigger::SubscriptionChanged));
    assert_eq!(history.last().unwrap().generation_id, Some(generation));
    assert_eq!(
        g.rebalances().counts()[&RebalanceTrigger::SubscriptionChanged],
        rounds as u64
    );
    assert_eq!(g.rebalances().total(), rounds as u64 + 1);
    assert_eq!(g.rebalances().last_completed_duration_ms(), Some(7));

    // One more, left running: the inspection shows it with its age.
    let (t, out) = x.send("c", join_req("g", &me, None, 10_000, &[("range", b"x")]));
    let generation = join_of(&out, t).unwrap().generation_id;
    x.now += 250;
    let seen = x.c.inspect(
        x.now,
        &InspectQuery {
            group_ids: Some(vec!["g".into(), "missing".into()]),
            include_members: true,
        },
        &TopicImage::default(),
    );
    assert_eq!(
        seen.groups.len(),
        1,
        "a group that does not exist is left out"
    );
    let o = &seen.groups[0];
    assert_eq!(
        (o.group_type, o.state, o.generation_id),
        ("classic", "CompletingRebalance", generation)
    );
    assert_eq!(o.protocol.as_deref(), Some("range"));
    assert_eq!(o.member_count, 1);
    assert_eq!(o.members[0].member_id, me);
    assert_eq!(o.members[0].client_id, "c");
    assert_eq!(o.current_rebalance_ms, Some(250));
    assert_eq!(o.rebalances.len(), REBALANCE_HISTORY_MAX);
    assert_eq!(
        o.rebalance_counts,
        vec![
            (RebalanceTrigger::MemberJoined, 1),
            (RebalanceTrigger::SubscriptionChanged, rounds as u64 + 1)
        ]
    );
}

const TOPIC: Uuid = Uuid::from_u128(0xabc);

/// A consumer-protocol client of group `g`: its member id, epoch and owned partitions.
#[derive(Debug, Clone, Default)]
struct Client {
    member_id: String,
    epoch: i32,
    owned: BTreeSet<i32>,
}

struct Modern {
    c: Coordinator,
    now_ms: i64,
    token: u64,
    image: Arc<TopicImage>,
}

impl Modern {
    fn new() -> Modern {
        let mut topics = BTreeMap::new();
        topics.insert(
            "t".to_string(),
            TopicInfo {
                id: TOPIC,
                partitions: 4,
                partition_bytes_in_per_s: Vec::new(),
            },
        );
        Modern {
            c: Coordinator::new(CoordinatorConfig::default()),
            now_ms: 1_000,
            token: 0,
            image: Arc::new(TopicImage { version: 1, topics }),
        }
    }

    /// One heartbeat; the client adopts the epoch and assignment it is given.
    fn beat(&mut self, client: &mut Client) {
        self.token += 1;
        let req = consumer_heartbeat_req(
            &client.member_id,
            None,
            client.epoch,
            TOPIC,
            &client.owned,
            60_000,
        );
        let out = self.c.handle(
            self.now_ms,
            request_ctx(self.token, 1, "client"),
            GroupRequest::ConsumerGroupHeartbeat(req, self.image.clone()),
        );
        let Some((_, GroupResponse::ConsumerGroupHeartbeat(r))) =
            out.responses.into_iter().find(|(t, _)| *t == self.token)
        else {
            panic!("no heartbeat answer");
        };
        assert_eq!(r.error_code, 0, "{r:?}");
        client.epoch = r.member_epoch;
        if let Some(a) = r.assignment {
            client.owned = a
                .topic_partitions
                .iter()
                .flat_map(|t| t.partitions.iter().copied())
                .collect();
        }
    }

    /// Heartbeats every client until the group is Stable.
    fn converge(&mut self, clients: &mut [Client]) {
        for _ in 0..20 {
            for c in clients.iter_mut() {
                self.beat(c);
            }
            if self.c.group("g").unwrap().state_name() == "Stable" {
                return;
            }
        }
        panic!("the group never became stable");
    }
}

#[test]
fn consumer_group_epoch_bumps_are_rebalances_with_their_reason() {
    // Goal: in a consumer group each bump of the group epoch is one rebalance, with the
    // reason it was bumped (a member joined, left, or was fenced when its session ran out)
    // and the epoch it bumped to; it ends when every member has reconciled.
    let mut x = Modern::new();
    let mut a = Client {
        member_id: "a".into(),
        ..Client::default()
    };
    let mut b = Client {
        member_id: "b".into(),
        ..Client::default()
    };
    x.beat(&mut a);
    x.converge(std::slice::from_mut(&mut a));
    x.now_ms += 100;
    x.beat(&mut b);
    let started = x.now_ms;
    x.now_ms += 100;
    let mut both = [a, b];
    x.converge(&mut both);
    let [mut a, _b] = both;
    let settled =
        x.c.group("g")
            .unwrap()
            .rebalances()
            .history()
            .nth(1)
            .cloned()
            .unwrap();
    assert_eq!(settled.trigger, RebalanceTrigger::MemberJoined);
    assert_eq!(settled.generation_id, Some(2));
    assert_eq!(settled.started_ms, started);
    assert_eq!(settled.outcome, RebalanceOutcome::Completed);
    assert!(settled.ended_ms.unwrap() >= started + 100);
    assert_eq!(settled.member_changes[0].member_id, "b");

    // b leaves; a takes everything back.
    let leave = consumer_heartbeat_req("b", None, -1, TOPIC, &BTreeSet::new(), 60_000);
    x.token += 1;
    x.c.handle(
        x.now_ms,
        request_ctx(x.token, 1, "client"),
        GroupRequest::ConsumerGroupHeartbeat(leave, x.image.clone()),
    );
    x.converge(std::slice::from_mut(&mut a));

    // c joins and goes silent: its session runs out while a keeps beating.
    let mut c = Client {
        member_id: "c".into(),
        ..Client::default()
    };
    x.beat(&mut c);
    for _ in 0..10 {
        x.now_ms += 5_000;
        x.c.tick(x.now_ms);
        x.beat(&mut a);
    }
    x.converge(std::slice::from_mut(&mut a));
    let g = x.c.group("g").unwrap();
    assert!(
        g.modern.as_ref().unwrap().members.get("c").is_none(),
        "c was fenced"
    );
    let history: Vec<_> = g.rebalances().history().cloned().collect();
    let reasons: Vec<(RebalanceTrigger, Option<i32>)> = history
        .iter()
        .map(|r| (r.trigger, r.generation_id))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (RebalanceTrigger::MemberJoined, Some(1)),
            (RebalanceTrigger::MemberJoined, Some(2)),
            (RebalanceTrigger::MemberLeft, Some(3)),
            (RebalanceTrigger::MemberJoined, Some(4)),
            (RebalanceTrigger::SessionTimeout, Some(5)),
        ]
    );
    let fenced = history.last().unwrap();
    assert_eq!(fenced.member_changes[0].member_id, "c");
    assert_eq!(
        fenced.member_changes[0].kind,
        removed(RemovalReason::SessionTimeout)
    );
    assert_eq!(fenced.outcome, RebalanceOutcome::Completed);

    let seen = x.c.inspect(x.now_ms, &InspectQuery::default(), &x.image);
    let o = &seen.groups[0];
    assert_eq!(
        (o.group_type, o.state, o.generation_id),
        ("consumer", "Stable", 5)
    );
    assert_eq!(o.assignment_epoch, Some(5));
    assert!(o.members.is_empty(), "members only when asked");
    assert_eq!(o.member_count, 1);
}
