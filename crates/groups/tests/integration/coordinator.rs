//! The coordinator API by API, with the error codes Kafka returns in each situation.

use crate::common;

use common::*;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::*;
use weir_groups::*;

fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        group_initial_rebalance_delay_ms: 3000,
        ..CoordinatorConfig::default()
    }
}

#[test]
fn first_join_waits_for_the_initial_delay_then_forms_generation_one() {
    // Goal: KIP-394 member id first, then one generation for members arriving together,
    // answered as soon as the initial delay ends; the leader alone gets the member list.
    let mut x = Ctx::new(config());
    let (ids, generation) = stable_group(&mut x, "g", 3);
    assert_eq!(generation, 1);
    assert_eq!(ids.len(), 3);
    assert_eq!(x.c.group("g").unwrap().state(), GroupState::Stable);
}

#[test]
fn heartbeat_errors_match_kafka() {
    // Goal: unknown member, wrong generation, unknown group and a running rebalance each get Kafka's code.
    let mut x = Ctx::new(config());
    let (ids, generation) = stable_group(&mut x, "g", 2);
    let (t, out) = x.send("c", heartbeat_req("g", &ids[0], None, generation));
    assert_eq!(code_of(&out, t), 0);
    let (t, out) = x.send("c", heartbeat_req("g", "nobody", None, generation));
    assert_eq!(code_of(&out, t), E::UnknownMemberId.code());
    let (t, out) = x.send("c", heartbeat_req("g", &ids[0], None, generation + 1));
    assert_eq!(code_of(&out, t), E::IllegalGeneration.code());
    let (t, out) = x.send("c", heartbeat_req("missing", &ids[0], None, 1));
    assert_eq!(code_of(&out, t), E::UnknownMemberId.code());
    // A member leaves: the other is told to rejoin.
    let (t, out) = x.send("c", leave_req("g", &[(&ids[1], None)]));
    assert_eq!(code_of(&out, t), 0);
    let (t, out) = x.send("c", heartbeat_req("g", &ids[0], None, generation));
    assert_eq!(code_of(&out, t), E::RebalanceInProgress.code());
    // It rejoins and, being the only member, forms the next generation at once.
    let (t, out) = x.send(
        "c",
        join_req("g", &ids[0], None, 10_000, &[("range", b"sub")]),
    );
    let r = join_of(&out, t).expect("answered without waiting for the departed member");
    assert_eq!((r.error_code, r.generation_id), (0, generation + 1));
}

#[test]
fn session_timeout_removes_a_silent_member() {
    // Goal: a member that stops heartbeating is removed after its session timeout and the
    // others rebalance without it; its later requests get UNKNOWN_MEMBER_ID.
    let mut x = Ctx::new(config());
    let (ids, generation) = stable_group(&mut x, "g", 2);
    for _ in 0..4 {
        x.advance(3_000);
        let (t, out) = x.send("c", heartbeat_req("g", &ids[0], None, generation));
        assert!(code_of(&out, t) == 0 || code_of(&out, t) == E::RebalanceInProgress.code());
    }
    assert!(
        x.c.group("g").unwrap().members.get(&ids[1]).is_none(),
        "silent member removed"
    );
    let (t, out) = x.send("c", heartbeat_req("g", &ids[1], None, generation));
    assert_eq!(code_of(&out, t), E::UnknownMemberId.code());
    assert!(x.c.group_history("g").iter().any(|e| matches!(
        &e.kind,
        GroupEventKind::MemberRemoved {
            reason: weir_groups::group::RemovalReason::SessionTimeout,
            ..
        }
    )));
}

#[test]
fn join_guards() {
    // Goal: bad session timeouts, mismatched protocols, unknown ids and a full group are refused.
    let mut x = Ctx::new(CoordinatorConfig {
        group_max_size: 1,
        ..config()
    });
    let (t, out) = x.send("c", join_req("g", "", None, 10, &[("range", b"")]));
    assert_eq!(code_of(&out, t), E::InvalidSessionTimeout.code());
    let (t, out) = x.send("c", join_req("", "", None, 10_000, &[("range", b"")]));
    assert_eq!(code_of(&out, t), E::InvalidGroupId.code());
    let (t, out) = x.send("c", join_req("g", "ghost", None, 10_000, &[("range", b"")]));
    assert_eq!(code_of(&out, t), E::UnknownMemberId.code());
    let (ids, _) = stable_group(&mut x, "g", 1);
    let (t, out) = x.send("c", join_req("g", "", None, 10_000, &[("roundrobin", b"")]));
    assert_eq!(code_of(&out, t), E::InconsistentGroupProtocol.code());
    let (t, out) = x.send("c", join_req("g", "", None, 10_000, &[("range", b"")]));
    assert_eq!(code_of(&out, t), E::GroupMaxSizeReached.code());
    assert_eq!(ids.len(), 1);
}

#[test]
fn offsets_commit_fetch_delete_and_survive_replay() {
    // Goal: member and simple commits, their guards, OffsetFetch, DeleteGroups rules, and
    // a replay of the emitted records reproducing every offset.
    let mut x = Ctx::new(config());
    let (ids, generation) = stable_group(&mut x, "g", 2);
    let (t, out) = x.send(
        "c",
        commit_req("g", &ids[0], generation, &[("t", 0, 10), ("t", 1, 20)]),
    );
    assert_eq!(code_of(&out, t), 0);
    assert_eq!(out.records.len(), 2);
    let (t, out) = x.send(
        "c",
        commit_req("g", &ids[0], generation + 5, &[("t", 0, 11)]),
    );
    assert_eq!(code_of(&out, t), E::IllegalGeneration.code());
    let (t, out) = x.send("c", commit_req("g", "", -1, &[("t", 0, 11)]));
    assert_eq!(
        code_of(&out, t),
        E::UnknownMemberId.code(),
        "simple commits only to groups without members"
    );
    let (t, out) = x.send("c", commit_req("solo", "", -1, &[("t", 0, 5)]));
    assert_eq!(code_of(&out, t), 0);
    let fetch = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(sb("g")))
            .with_topics(None),
    ]);
    let (t, out) = x.send("c", GroupRequest::OffsetFetch(fetch));
    let GroupResponse::OffsetFetch(f) = response_for(&out, t).unwrap() else {
        panic!()
    };
    let got: Vec<(i32, i64)> = f.groups[0].topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    assert_eq!(got, vec![(0, 10), (1, 20)]);
    let del = |g: &str| {
        GroupRequest::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb(g))]),
        )
    };
    let (t, out) = x.send("c", del("g"));
    let GroupResponse::DeleteGroups(d) = response_for(&out, t).unwrap() else {
        panic!()
    };
    assert_eq!(d.results[0].error_code, E::NonEmptyGroup.code());
    let (t, out) = x.send("c", del("nope"));
    let GroupResponse::DeleteGroups(d) = response_for(&out, t).unwrap() else {
        panic!()
    };
    assert_eq!(d.results[0].error_code, E::GroupIdNotFound.code());
    let replayed = x.replayed();
    for g in ["g", "solo"] {
        assert_eq!(
            replayed.group(g).unwrap().offsets,
            x.c.group(g).unwrap().offsets,
            "offsets of {g} after replay"
        );
    }
    let (g1, g2) = (replayed.group("g").unwrap(), x.c.group("g").unwrap());
    assert_eq!(
        (g1.generation_id, &g1.leader_id, g1.members.len()),
        (g2.generation_id, &g2.leader_id, g2.members.len())
    );
    let (t, out) = x.send("c", del("solo"));
    let GroupResponse::DeleteGroups(d) = response_for(&out, t).unwrap() else {
        panic!()
    };
    assert_eq!(d.results[0].error_code, 0);
    assert!(
        x.replayed().group("solo").is_none(),
        "tombstones delete it on replay too"
    );
}

#[test]
fn empty_group_offsets_expire_after_retention() {
    // Goal: offsets of a group with no members are removed after offsets.retention, with
    // tombstones, and the group goes with them.
    let mut x = Ctx::new(CoordinatorConfig {
        offsets_retention_ms: 60_000,
        offsets_retention_check_interval_ms: 1_000,
        ..config()
    });
    let (t, out) = x.send("c", commit_req("solo", "", -1, &[("t", 0, 5)]));
    assert_eq!(code_of(&out, t), 0);
    x.advance(30_000);
    assert!(x.c.group("solo").is_some());
    let out = x.advance(31_000);
    assert!(out.records.iter().any(|r| r.value.is_none()));
    assert!(x.c.group("solo").is_none());
    assert!(x.replayed().group("solo").is_none());
}

#[test]
fn describe_and_list_show_kafka_states() {
    // Goal: DescribeGroups and ListGroups report Kafka's state names and member details.
    let mut x = Ctx::new(config());
    let (ids, _) = stable_group(&mut x, "g", 2);
    let (t, out) = x.send(
        "c",
        GroupRequest::DescribeGroups(
            DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(sb("g")), GroupId(sb("none"))]),
        ),
    );
    let GroupResponse::DescribeGroups(d) = response_for(&out, t).unwrap() else {
        panic!()
    };
    assert_eq!(d.groups[0].group_state.as_str(), "Stable");
    assert_eq!(d.groups[0].protocol_data.as_str(), "range");
    assert_eq!(d.groups[0].members.len(), 2);
    assert!(d.groups[0]
        .members
        .iter()
        .all(|m| ids.contains(&m.member_id.to_string()) && m.client_host.as_str() == "/127.0.0.1"));
    assert_eq!(d.groups[1].error_code, E::GroupIdNotFound.code());
    let (t, out) = x.send(
        "c",
        GroupRequest::ListGroups(
            ListGroupsRequest::default().with_states_filter(vec![sb("Empty")]),
        ),
    );
    let GroupResponse::ListGroups(l) = response_for(&out, t).unwrap() else {
        panic!()
    };
    assert!(l.groups.is_empty());

    // Once every member has left, the group is Empty and keeps its protocol type, as in Kafka.
    let members: Vec<(&str, Option<&str>)> = ids.iter().map(|id| (id.as_str(), None)).collect();
    x.send("c", leave_req("g", &members));
    let (t, out) = x.send("c", GroupRequest::ListGroups(ListGroupsRequest::default()));
    let GroupResponse::ListGroups(l) = response_for(&out, t).unwrap() else {
        panic!()
    };
    assert_eq!(
        (
            l.groups[0].group_state.as_str(),
            l.groups[0].protocol_type.as_str()
        ),
        ("Empty", "consumer")
    );
    let (t, out) = x.send(
        "c",
        GroupRequest::DescribeGroups(
            DescribeGroupsRequest::default().with_groups(vec![GroupId(sb("g"))]),
        ),
    );
    let GroupResponse::DescribeGroups(d) = response_for(&out, t).unwrap() else {
        panic!()
    };
    assert_eq!(
        (
            d.groups[0].group_state.as_str(),
            d.groups[0].protocol_type.as_str(),
            d.groups[0].protocol_data.as_str()
        ),
        ("Empty", "consumer", "")
    );
}
