//! Static members (KIP-345) restarting: the same `group.instance.id` joining again under a
//! new member id, in each group state, answered as Kafka's classic coordinator answers.

use crate::common;

use common::*;
use kafka_protocol::error::ResponseError as E;
use weir_groups::membership::FIRST_JOIN_MIN_MS;
use weir_groups::*;

fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        group_initial_rebalance_delay_ms: 3000,
        ..CoordinatorConfig::default()
    }
}

/// A stable group of two static members, `i-a` and `i-b`, synced with assignments `L`
/// (leader) and `F` (follower).
struct Pair {
    leader: String,
    leader_instance: &'static str,
    follower: String,
    follower_instance: &'static str,
    generation: i32,
}

fn stable_pair(x: &mut Ctx) -> Pair {
    let (t, out) = x.send(
        "a",
        join_req("g", "", Some("i-a"), 10_000, &[("range", b"sub")]),
    );
    assert!(
        join_of(&out, t).is_none(),
        "static members skip MEMBER_ID_REQUIRED and wait for the delay"
    );
    let (t2, out2) = x.send(
        "b",
        join_req("g", "", Some("i-b"), 10_000, &[("range", b"sub")]),
    );
    assert!(join_of(&out2, t2).is_none());
    let mut out = x.advance(3000);
    if out.responses.is_empty() {
        out = x.advance(3000);
    }
    let ra = join_of(&out, t).unwrap();
    let rb = join_of(&out, t2).unwrap();
    assert_eq!(ra.generation_id, rb.generation_id, "one first generation");
    let a_leads = ra.leader == ra.member_id;
    let (leader, follower) = if a_leads {
        (ra.member_id.to_string(), rb.member_id.to_string())
    } else {
        (rb.member_id.to_string(), ra.member_id.to_string())
    };
    let (leader_instance, follower_instance) = if a_leads {
        ("i-a", "i-b")
    } else {
        ("i-b", "i-a")
    };
    let generation = ra.generation_id;
    let (ft, _) = x.send(
        "c",
        sync_req("g", &follower, Some(follower_instance), generation, &[]),
    );
    let (_, out) = x.send(
        "c",
        sync_req(
            "g",
            &leader,
            Some(leader_instance),
            generation,
            &[(&follower, b"F"), (&leader, b"L")],
        ),
    );
    assert_eq!(sync_of(&out, ft).unwrap().assignment.as_ref(), b"F");
    Pair {
        leader,
        leader_instance,
        follower,
        follower_instance,
        generation,
    }
}

/// A static member's new instance joining as `client`, with no member id.
fn restart(
    x: &mut Ctx,
    client: &str,
    instance: &str,
    protocols: &[(&str, &[u8])],
) -> (u64, Output) {
    x.send(client, join_req("g", "", Some(instance), 10_000, protocols))
}

fn state(x: &Ctx) -> GroupState {
    x.c.group("g").unwrap().state()
}

#[test]
fn follower_restart_keeps_its_assignment_without_a_rebalance() {
    // Goal: the same instance rejoining with a new id while the group is Stable gets the
    // current generation and its old assignment; the old id is fenced; the new id is
    // persisted, so a coordinator rebuilt from the records knows it.
    let mut x = Ctx::new(config());
    let p = stable_pair(&mut x);
    let (t, out) = restart(&mut x, "a2", p.follower_instance, &[("range", b"sub")]);
    let r = join_of(&out, t).expect("answered at once");
    assert_eq!((r.error_code, r.generation_id), (0, p.generation));
    assert_eq!(r.leader.to_string(), p.leader);
    assert!(r.members.is_empty() && !r.skip_assignment);
    assert!(!out.records.is_empty(), "the new member id is written");
    let new_id = r.member_id.to_string();
    assert_ne!(new_id, p.follower);
    assert_eq!(state(&x), GroupState::Stable, "no rebalance");
    let (t, out) = x.send(
        "c",
        sync_req("g", &new_id, Some(p.follower_instance), p.generation, &[]),
    );
    assert_eq!(sync_of(&out, t).unwrap().assignment.as_ref(), b"F");
    let (t, out) = x.send(
        "c",
        heartbeat_req("g", &p.follower, Some(p.follower_instance), p.generation),
    );
    assert_eq!(code_of(&out, t), E::FencedInstanceId.code());
    let replayed = x.replayed();
    let g = replayed.group("g").unwrap();
    assert_eq!(
        g.static_members.get(p.follower_instance),
        Some(&new_id),
        "after a restart the coordinator knows the new id"
    );
}

#[test]
fn leader_restart_at_v9_skips_the_assignment() {
    // Goal: KIP-814. A restarted leader is told it leads, with the members, but to skip
    // computing assignments; nobody rebalances and it gets its own assignment back.
    let mut x = Ctx::new(config());
    let p = stable_pair(&mut x);
    let (t, out) = restart(&mut x, "a2", p.leader_instance, &[("range", b"sub")]);
    let r = join_of(&out, t).expect("answered at once");
    let new_id = r.member_id.to_string();
    assert_eq!((r.error_code, r.generation_id), (0, p.generation));
    assert_eq!(r.leader.to_string(), new_id, "it still leads");
    assert!(r.skip_assignment);
    assert_eq!(r.members.len(), 2);
    assert_eq!(state(&x), GroupState::Stable);
    let (t, out) = x.send(
        "c",
        sync_req("g", &new_id, Some(p.leader_instance), p.generation, &[]),
    );
    assert_eq!(sync_of(&out, t).unwrap().assignment.as_ref(), b"L");
    let (t, out) = x.send(
        "c",
        heartbeat_req("g", &p.follower, Some(p.follower_instance), p.generation),
    );
    assert_eq!(code_of(&out, t), 0, "the follower is not asked to rejoin");
}

#[test]
fn leader_restart_before_v9_is_answered_as_a_follower() {
    // Goal: a client that cannot skip the assignment is given the old leader id, so it
    // syncs as a follower and gets its assignment back; nobody rebalances (as in Kafka).
    let mut x = Ctx::new(config());
    let p = stable_pair(&mut x);
    x.version = 8;
    let (t, out) = restart(&mut x, "a2", p.leader_instance, &[("range", b"sub")]);
    let r = join_of(&out, t).expect("answered at once");
    let new_id = r.member_id.to_string();
    assert_eq!((r.error_code, r.generation_id), (0, p.generation));
    assert_eq!(r.leader.to_string(), p.leader, "named by its old id");
    assert!(r.members.is_empty() && !r.skip_assignment);
    assert_eq!(state(&x), GroupState::Stable);
    let (t, out) = x.send(
        "c",
        sync_req("g", &new_id, Some(p.leader_instance), p.generation, &[]),
    );
    assert_eq!(sync_of(&out, t).unwrap().assignment.as_ref(), b"L");
}

#[test]
fn changed_metadata_with_the_same_protocol_does_not_rebalance() {
    // Goal: Kafka rebalances a Stable group for a restarted static member only when the
    // protocol the group would select changes; new metadata alone waits for the next one.
    let mut x = Ctx::new(config());
    let p = stable_pair(&mut x);
    let (t, out) = restart(&mut x, "a2", p.follower_instance, &[("range", b"other")]);
    let r = join_of(&out, t).expect("answered at once");
    assert_eq!((r.error_code, r.generation_id), (0, p.generation));
    assert_eq!(state(&x), GroupState::Stable);
}

#[test]
fn changed_protocol_rebalances() {
    // Goal: a restarted static member whose protocols change the group's selection starts
    // a rebalance and waits in it.
    let mut x = Ctx::new(config());
    let p = stable_pair(&mut x);
    let (t, out) = restart(
        &mut x,
        "a2",
        p.follower_instance,
        &[("roundrobin", b"sub"), ("range", b"sub")],
    );
    // The leader offers range alone, so roundrobin cannot be selected: range stays, and
    // the new metadata alone does not rebalance.
    assert!(join_of(&out, t).is_some());
    assert_eq!(state(&x), GroupState::Stable);
    let (t, out) = restart(
        &mut x,
        "a3",
        p.leader_instance,
        &[("roundrobin", b"sub"), ("range", b"sub")],
    );
    // Now both prefer roundrobin: the selection changes, so the group rebalances.
    assert!(join_of(&out, t).is_none(), "waits in the new join phase");
    assert_eq!(state(&x), GroupState::PreparingRebalance);
}

#[test]
fn restart_while_completing_rebalance_rebalances_again() {
    // Goal: a static member replaced after the leader was given the member list (the
    // generation is formed, not yet assigned) makes the group rebalance, since the
    // leader may assign to the old id.
    let mut x = Ctx::new(config());
    let p = stable_pair(&mut x);
    // A new dynamic member starts a rebalance; both static members rejoin; the generation forms.
    let (t, out) = x.send("n", join_req("g", "", None, 10_000, &[("range", b"sub")]));
    let id = join_of(&out, t).unwrap().member_id.to_string();
    let (tn, _) = x.send("n", join_req("g", &id, None, 10_000, &[("range", b"sub")]));
    x.send(
        "c",
        join_req(
            "g",
            &p.leader,
            Some(p.leader_instance),
            10_000,
            &[("range", b"sub")],
        ),
    );
    let (_, out) = x.send(
        "c",
        join_req(
            "g",
            &p.follower,
            Some(p.follower_instance),
            10_000,
            &[("range", b"sub")],
        ),
    );
    assert!(join_of(&out, tn).is_some());
    assert_eq!(state(&x), GroupState::CompletingRebalance);
    let (t, out) = restart(&mut x, "a2", p.follower_instance, &[("range", b"sub")]);
    assert!(join_of(&out, t).is_none());
    assert_eq!(state(&x), GroupState::PreparingRebalance);
}

#[test]
fn members_arriving_together_share_the_first_generation_even_with_no_delay() {
    // Goal: with group.initial.rebalance.delay.ms=0, a second member joining an empty group
    // a few milliseconds after the first still lands in the first generation.
    let mut x = Ctx::new(CoordinatorConfig {
        group_initial_rebalance_delay_ms: 0,
        ..CoordinatorConfig::default()
    });
    let (ta, out) = x.send(
        "a",
        join_req("g", "", Some("i-a"), 10_000, &[("range", b"sub")]),
    );
    assert!(join_of(&out, ta).is_none());
    let out = x.advance(40);
    assert!(
        join_of(&out, ta).is_none(),
        "the first join phase is still open"
    );
    let (tb, _) = x.send(
        "b",
        join_req("g", "", Some("i-b"), 10_000, &[("range", b"sub")]),
    );
    let mut answered = Vec::new();
    for _ in 0..5 {
        let out = x.advance(FIRST_JOIN_MIN_MS);
        answered.extend(out.responses.iter().map(|(t, _)| *t));
        if answered.len() == 2 {
            break;
        }
    }
    assert!(answered.contains(&ta) && answered.contains(&tb));
    let g = x.c.group("g").unwrap();
    assert_eq!((g.generation_id, g.members.len()), (1, 2));
}
