//! The consumer group protocol (KIP-848) through the coordinator: joins, incremental
//! reconciliation, leaves, timeouts and static members, with every step's records replayed
//! into a second coordinator that must end up identical.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{consumer_heartbeat_req, request_ctx};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;
use weir_groups::consumer_group::MemberState;
use weir_groups::*;

const TOPIC: Uuid = Uuid::from_u128(0xabc);

struct Ctx {
    c: Coordinator,
    /// Fed only with the records `c` emits.
    replica: Coordinator,
    now_ms: i64,
    token: u64,
    image: Arc<TopicImage>,
}

/// What a simulated client holds: its member id, epoch and owned partitions.
#[derive(Debug, Clone, Default)]
struct Client {
    member_id: String,
    instance_id: Option<String>,
    epoch: i32,
    owned: BTreeSet<i32>,
}

impl Ctx {
    fn new(partitions: i32) -> Ctx {
        let mut topics = BTreeMap::new();
        topics.insert(
            "t".to_string(),
            TopicInfo {
                id: TOPIC,
                partitions,
                partition_bytes_in_per_s: Vec::new(),
            },
        );
        Ctx {
            c: Coordinator::new(CoordinatorConfig::default()),
            replica: Coordinator::new(CoordinatorConfig::default()),
            now_ms: 1_000,
            token: 0,
            image: Arc::new(TopicImage { version: 1, topics }),
        }
    }

    fn apply(&mut self, out: &Output) {
        for r in &out.records {
            self.replica.replay(&r.key, r.value.as_deref()).unwrap();
        }
    }

    fn heartbeat(&mut self, req: ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
        self.token += 1;
        let ctx = request_ctx(self.token, 1, "client");
        let out = self.c.handle(
            self.now_ms,
            ctx,
            GroupRequest::ConsumerGroupHeartbeat(req, self.image.clone()),
        );
        self.apply(&out);
        match out.responses.into_iter().find(|(t, _)| *t == self.token) {
            Some((_, GroupResponse::ConsumerGroupHeartbeat(r))) => r,
            other => panic!("no heartbeat answer: {other:?}"),
        }
    }

    /// One heartbeat of `client`, which then does what a real client does with the answer:
    /// adopts the epoch and, when an assignment comes, owns exactly it.
    fn beat(&mut self, client: &mut Client) -> i16 {
        let req = consumer_heartbeat_req(
            &client.member_id,
            client.instance_id.as_deref(),
            client.epoch,
            TOPIC,
            &client.owned,
            60_000,
        );
        let r = self.heartbeat(req);
        if r.error_code == 0 {
            client.epoch = r.member_epoch;
            if let Some(a) = r.assignment {
                client.owned = a
                    .topic_partitions
                    .iter()
                    .flat_map(|t| t.partitions.iter().copied())
                    .collect();
            }
        }
        r.error_code
    }

    fn tick(&mut self, ms: i64) {
        self.now_ms += ms;
        let out = self.c.tick(self.now_ms);
        self.apply(&out);
    }

    fn check_replica(&self) {
        assert_eq!(
            self.c.group("g").and_then(|g| g.modern.clone()),
            self.replica.group("g").and_then(|g| g.modern.clone()),
            "replaying the records does not give the live group"
        );
    }
}

fn client(id: &str) -> Client {
    Client {
        member_id: id.into(),
        ..Client::default()
    }
}

/// Heartbeats every client until the group is stable, checking after every heartbeat that
/// no partition is owned by two clients.
fn converge(x: &mut Ctx, clients: &mut [Client]) {
    for _ in 0..20 {
        for i in 0..clients.len() {
            assert_eq!(x.beat(&mut clients[i]), 0);
            let mut seen = BTreeSet::new();
            for c in clients.iter() {
                for p in &c.owned {
                    assert!(seen.insert(*p), "partition {p} owned twice: {clients:?}");
                }
            }
            x.check_replica();
        }
        let g = x.c.group("g").unwrap();
        if g.state_name() == "Stable" {
            return;
        }
    }
    panic!(
        "group never became stable: {:?}",
        x.c.group("g").unwrap().modern
    );
}

fn counts(clients: &[Client]) -> Vec<usize> {
    let mut c: Vec<usize> = clients.iter().map(|c| c.owned.len()).collect();
    c.sort();
    c
}

#[test]
fn members_join_one_by_one_and_the_partitions_move_without_double_owners() {
    // Goal: three members joining one after another end with 2/2/2 of six partitions;
    // partitions move only after their previous owner gave them up; replay equals live.
    let mut x = Ctx::new(6);
    let mut clients = vec![client("a")];
    converge(&mut x, &mut clients);
    assert_eq!(counts(&clients), vec![6]);
    clients.push(client("b"));
    converge(&mut x, &mut clients);
    assert_eq!(counts(&clients), vec![3, 3]);
    clients.push(client("c"));
    converge(&mut x, &mut clients);
    assert_eq!(counts(&clients), vec![2, 2, 2]);
    let g = x.c.group("g").unwrap();
    assert_eq!(g.group_type(), "consumer");
    let cg = g.modern.as_ref().unwrap();
    assert_eq!(cg.group_epoch, cg.assignment_epoch);
    assert!(cg.members.values().all(|m| m.state == MemberState::Stable));
}

#[test]
fn a_leave_and_a_session_timeout_hand_the_partitions_to_the_others() {
    // Goal: a member that leaves (epoch -1) and one that goes silent past the session
    // timeout both lose their partitions to the remaining member; the silent one is then
    // unknown.
    let mut x = Ctx::new(6);
    let mut clients = vec![client("a"), client("b"), client("c")];
    converge(&mut x, &mut clients);
    let mut leaving = clients.remove(2);
    leaving.epoch = -1;
    assert_eq!(x.beat(&mut leaving), 0);
    converge(&mut x, &mut clients);
    assert_eq!(counts(&clients), vec![3, 3]);
    // b goes silent; a keeps heartbeating.
    let mut silent = clients.remove(1);
    for _ in 0..10 {
        x.tick(5_000);
        assert_eq!(x.beat(&mut clients[0]), 0);
    }
    converge(&mut x, &mut clients);
    assert_eq!(counts(&clients), vec![6]);
    assert_eq!(x.beat(&mut silent), E::UnknownMemberId.code());
    x.check_replica();
}

#[test]
fn epochs_are_checked_as_kafka_checks_them() {
    // Goal: an epoch ahead of the coordinator's, or behind it by more than the lost-answer
    // allowance, is FENCED_MEMBER_EPOCH; a missing member id is INVALID_REQUEST; an unknown
    // assignor is UNSUPPORTED_ASSIGNOR; a bad regex is INVALID_REGULAR_EXPRESSION.
    let mut x = Ctx::new(4);
    let mut clients = vec![client("a")];
    converge(&mut x, &mut clients);
    let mut ahead = clients[0].clone();
    ahead.epoch += 5;
    assert_eq!(x.beat(&mut ahead), E::FencedMemberEpoch.code());
    let base = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(StrBytes::from_static_str("g").into())
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(1000)
        .with_topic_partitions(Some(Vec::new()))
        .with_subscribed_topic_names(Some(vec![StrBytes::from_static_str("t").into()]));
    let r = x.heartbeat(base.clone());
    assert_eq!(r.error_code, E::InvalidRequest.code());
    let r = x.heartbeat(
        base.clone()
            .with_member_id(StrBytes::from_static_str("z"))
            .with_server_assignor(Some(StrBytes::from_static_str("nope"))),
    );
    assert_eq!(r.error_code, E::UnsupportedAssignor.code());
    let r = x.heartbeat(
        base.with_member_id(StrBytes::from_static_str("z"))
            .with_subscribed_topic_regex(Some(StrBytes::from_static_str("(unclosed"))),
    );
    assert_eq!(r.error_code, E::InvalidRegularExpression.code());
}

#[test]
fn a_static_member_that_steps_out_gets_its_partitions_back() {
    // Goal: a static member leaving with epoch -2 keeps its partitions; another instance
    // id cannot take its id (UNRELEASED_INSTANCE_ID while it is still in); its new
    // incarnation gets the same partitions and nobody else's change.
    let mut x = Ctx::new(6);
    let mut a = client("a");
    a.instance_id = Some("ia".into());
    let mut clients = vec![a, client("b")];
    converge(&mut x, &mut clients);
    let before: Vec<BTreeSet<i32>> = clients.iter().map(|c| c.owned.clone()).collect();
    // Another member with the same instance id while the first is in: refused.
    let mut twin = client("a2");
    twin.instance_id = Some("ia".into());
    assert_eq!(x.beat(&mut twin), E::UnreleasedInstanceId.code());
    let mut out = clients[0].clone();
    out.epoch = -2;
    assert_eq!(x.beat(&mut out), 0);
    // The new incarnation joins with a fresh member id.
    let mut back = client("a3");
    back.instance_id = Some("ia".into());
    clients[0] = back;
    converge(&mut x, &mut clients);
    let after: Vec<BTreeSet<i32>> = clients.iter().map(|c| c.owned.clone()).collect();
    assert_eq!(before, after);
    x.check_replica();
}

impl Ctx {
    fn call(&mut self, version: i16, req: GroupRequest) -> GroupResponse {
        self.token += 1;
        let ctx = request_ctx(self.token, version, "client");
        let out = self.c.handle(self.now_ms, ctx, req);
        self.apply(&out);
        out.responses
            .into_iter()
            .find(|(t, _)| *t == self.token)
            .map(|(_, r)| r)
            .expect("answered")
    }

    fn commit(&mut self, version: i16, member_id: &str, epoch: i32) -> i16 {
        use kafka_protocol::messages::offset_commit_request::*;
        let req = OffsetCommitRequest::default()
            .with_group_id(StrBytes::from_static_str("g").into())
            .with_member_id(StrBytes::from_string(member_id.to_string()))
            .with_generation_id_or_member_epoch(epoch)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(StrBytes::from_static_str("t").into())
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(42)])]);
        match self.call(version, GroupRequest::OffsetCommit(req)) {
            GroupResponse::OffsetCommit(r) => r.topics[0].partitions[0].error_code,
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn commits_carry_the_member_epoch() {
    // Goal: in a consumer group, OffsetCommit v9 with the member's epoch commits; a stale
    // epoch is STALE_MEMBER_EPOCH, an unknown member UNKNOWN_MEMBER_ID, a version before 9
    // UNSUPPORTED_VERSION, and an admin commit (epoch -1) is refused while members remain.
    let mut x = Ctx::new(2);
    let mut clients = vec![client("a")];
    converge(&mut x, &mut clients);
    let epoch = clients[0].epoch;
    assert_eq!(x.commit(9, "a", epoch), 0);
    assert_eq!(x.commit(9, "a", epoch - 1), E::StaleMemberEpoch.code());
    assert_eq!(x.commit(9, "nobody", epoch), E::UnknownMemberId.code());
    assert_eq!(x.commit(8, "a", epoch), E::UnsupportedVersion.code());
    assert_eq!(x.commit(9, "", -1), E::UnknownMemberId.code());
    assert_eq!(x.c.group("g").unwrap().offsets.len(), 1);
}

#[test]
fn transactional_commits_carry_the_member_epoch() {
    // Goal: a TxnOffsetCommit that names a consumer group's member is taken with its epoch
    // (an exactly-once application on the consumer protocol), and refused with a stale
    // epoch (STALE_MEMBER_EPOCH) or an unknown member (UNKNOWN_MEMBER_ID).
    let mut x = Ctx::new(2);
    let mut clients = vec![client("a")];
    converge(&mut x, &mut clients);
    let epoch = clients[0].epoch;
    let mut txn_commit = |member: &str, epoch: i32, producer_id: i64| {
        use kafka_protocol::messages::txn_offset_commit_request::*;
        let req = TxnOffsetCommitRequest::default()
            .with_transactional_id(StrBytes::from_static_str("tx").into())
            .with_group_id(StrBytes::from_static_str("g").into())
            .with_producer_id(producer_id.into())
            .with_producer_epoch(0)
            .with_generation_id(epoch)
            .with_member_id(StrBytes::from_string(member.to_string()))
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(StrBytes::from_static_str("t").into())
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(7)])]);
        match x.call(4, GroupRequest::TxnOffsetCommit(req)) {
            GroupResponse::TxnOffsetCommit(r) => r.topics[0].partitions[0].error_code,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(txn_commit("a", epoch, 1), 0);
    assert_eq!(txn_commit("a", epoch - 1, 2), E::StaleMemberEpoch.code());
    assert_eq!(txn_commit("nobody", epoch, 3), E::UnknownMemberId.code());
}

#[test]
fn list_describe_and_delete_know_the_group_type() {
    // Goal: ListGroups reports type "consumer" and filters by it; DescribeGroups v6 does not
    // find a consumer group; ConsumerGroupDescribe shows epochs and assignments;
    // DeleteGroups refuses while a member remains and removes the empty group.
    let mut x = Ctx::new(3);
    let mut clients = vec![client("a")];
    converge(&mut x, &mut clients);
    let list = |x: &mut Ctx, types: &[&'static str]| match x.call(
        5,
        GroupRequest::ListGroups(
            ListGroupsRequest::default()
                .with_types_filter(types.iter().map(|t| StrBytes::from_static_str(t)).collect()),
        ),
    ) {
        GroupResponse::ListGroups(r) => r
            .groups
            .iter()
            .map(|g| (g.group_type.to_string(), g.group_state.to_string()))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        list(&mut x, &[]),
        vec![("consumer".into(), "Stable".into())]
    );
    assert!(list(&mut x, &["classic"]).is_empty());
    match x.call(
        6,
        GroupRequest::DescribeGroups(
            DescribeGroupsRequest::default()
                .with_groups(vec![StrBytes::from_static_str("g").into()]),
        ),
    ) {
        GroupResponse::DescribeGroups(r) => {
            assert_eq!(r.groups[0].error_code, E::GroupIdNotFound.code())
        }
        other => panic!("{other:?}"),
    }
    let image = x.image.clone();
    match x.call(
        1,
        GroupRequest::ConsumerGroupDescribe(
            ConsumerGroupDescribeRequest::default()
                .with_group_ids(vec![StrBytes::from_static_str("g").into()]),
            image,
        ),
    ) {
        GroupResponse::ConsumerGroupDescribe(r) => {
            let g = &r.groups[0];
            assert_eq!(g.error_code, 0);
            assert_eq!(g.group_state.as_str(), "Stable");
            assert_eq!(g.assignor_name.as_str(), "uniform");
            assert_eq!(
                g.members[0].assignment.topic_partitions[0].partitions.len(),
                3
            );
            assert_eq!(
                g.members[0].assignment.topic_partitions[0]
                    .topic_name
                    .as_str(),
                "t"
            );
        }
        other => panic!("{other:?}"),
    }
    let delete = |x: &mut Ctx| match x.call(
        2,
        GroupRequest::DeleteGroups(
            DeleteGroupsRequest::default()
                .with_groups_names(vec![StrBytes::from_static_str("g").into()]),
        ),
    ) {
        GroupResponse::DeleteGroups(r) => r.results[0].error_code,
        other => panic!("{other:?}"),
    };
    assert_eq!(delete(&mut x), E::NonEmptyGroup.code());
    clients[0].epoch = -1;
    assert_eq!(x.beat(&mut clients[0]), 0);
    assert_eq!(delete(&mut x), 0);
    assert!(x.c.group("g").is_none());
    assert!(x.replica.group("g").is_none());
}

#[test]
fn a_classic_join_is_taken_in_while_consumers_remain_and_converts_an_empty_group() {
    // Goal: a classic JoinGroup to a consumer group with members is taken in as a classic
    // member of it (first asked for a member id, as any v4+ join); once the group is empty
    // the join turns it back into a classic group, its offsets kept, and replay agrees.
    let mut x = Ctx::new(2);
    let mut clients = vec![client("a")];
    converge(&mut x, &mut clients);
    let epoch = clients[0].epoch;
    assert_eq!(x.commit(9, "a", epoch), 0);
    let image = x.image.clone();
    let join = || {
        use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
        GroupRequest::JoinGroup(
            JoinGroupRequest::default()
                .with_group_id(StrBytes::from_static_str("g").into())
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(bytes::Bytes::from_static(b"sub"))]),
            image.clone(),
        )
    };
    match x.call(9, join()) {
        GroupResponse::JoinGroup(r) => {
            assert_eq!(r.error_code, E::MemberIdRequired.code());
            assert!(x.c.group("g").unwrap().modern.is_some());
        }
        other => panic!("{other:?}"),
    }
    clients[0].epoch = -1;
    assert_eq!(x.beat(&mut clients[0]), 0);
    match x.call(9, join()) {
        GroupResponse::JoinGroup(r) => assert_eq!(r.error_code, E::MemberIdRequired.code()),
        other => panic!("{other:?}"),
    }
    let g = x.c.group("g").unwrap();
    assert_eq!(g.group_type(), "classic");
    assert_eq!(g.offsets.len(), 1);
    assert!(x.replica.group("g").unwrap().modern.is_none());
}
