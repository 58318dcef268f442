//! A test context: drives a coordinator with a fake clock, keeps every record it emits,
//! and builds requests the way clients send them.
#![allow(dead_code)]

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use weir_groups::*;

pub fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub struct Ctx {
    pub c: Coordinator,
    pub now: i64,
    next_token: u64,
    pub records: Vec<Record>,
    pub version: i16,
}

impl Ctx {
    pub fn new(config: CoordinatorConfig) -> Ctx {
        Ctx {
            c: Coordinator::new(config),
            now: 1_000_000,
            next_token: 0,
            records: Vec::new(),
            version: 9,
        }
    }

    /// The token the next `send` will use.
    pub fn next_token(&self) -> u64 {
        self.next_token + 1
    }

    pub fn send(&mut self, client: &str, req: GroupRequest) -> (u64, Output) {
        self.next_token += 1;
        let token = self.next_token;
        let ctx = RequestContext {
            token,
            api_version: self.version,
            client_id: client.to_string(),
            client_host: "/127.0.0.1".into(),
        };
        let out = self.c.handle(self.now, ctx, req);
        self.records.extend(out.records.iter().cloned());
        (token, out)
    }

    pub fn advance(&mut self, ms: i64) -> Output {
        self.now += ms;
        let out = self.c.tick(self.now);
        self.records.extend(out.records.iter().cloned());
        out
    }

    /// Replays every record emitted so far into a fresh coordinator.
    pub fn replayed(&self) -> Coordinator {
        let mut fresh = Coordinator::new(self.c.config().clone());
        for r in &self.records {
            fresh.replay(&r.key, r.value.as_deref()).unwrap();
        }
        fresh
    }
}

pub fn join_req(
    group: &str,
    member_id: &str,
    instance: Option<&str>,
    session_ms: i32,
    protocols: &[(&str, &[u8])],
) -> GroupRequest {
    GroupRequest::JoinGroup(
        JoinGroupRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_session_timeout_ms(session_ms)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(sb(member_id))
            .with_group_instance_id(instance.map(sb))
            .with_protocol_type(sb("consumer"))
            .with_protocols(
                protocols
                    .iter()
                    .map(|(n, m)| {
                        join_group_request::JoinGroupRequestProtocol::default()
                            .with_name(sb(n))
                            .with_metadata(Bytes::copy_from_slice(m))
                    })
                    .collect(),
            ),
        Default::default(),
    )
}

pub fn sync_req(
    group: &str,
    member_id: &str,
    instance: Option<&str>,
    generation: i32,
    assignments: &[(&str, &[u8])],
) -> GroupRequest {
    GroupRequest::SyncGroup(
        SyncGroupRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_generation_id(generation)
            .with_member_id(sb(member_id))
            .with_group_instance_id(instance.map(sb))
            .with_protocol_type(Some(sb("consumer")))
            .with_protocol_name(Some(sb("range")))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(m, a)| {
                        sync_group_request::SyncGroupRequestAssignment::default()
                            .with_member_id(sb(m))
                            .with_assignment(Bytes::copy_from_slice(a))
                    })
                    .collect(),
            ),
        Default::default(),
    )
}

pub fn heartbeat_req(
    group: &str,
    member_id: &str,
    instance: Option<&str>,
    generation: i32,
) -> GroupRequest {
    GroupRequest::Heartbeat(
        HeartbeatRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_generation_id(generation)
            .with_member_id(sb(member_id))
            .with_group_instance_id(instance.map(sb)),
    )
}

pub fn leave_req(group: &str, members: &[(&str, Option<&str>)]) -> GroupRequest {
    GroupRequest::LeaveGroup(
        LeaveGroupRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_members(
                members
                    .iter()
                    .map(|(m, i)| {
                        leave_group_request::MemberIdentity::default()
                            .with_member_id(sb(m))
                            .with_group_instance_id(i.map(sb))
                    })
                    .collect(),
            ),
    )
}

pub fn commit_req(
    group: &str,
    member_id: &str,
    generation: i32,
    offsets: &[(&str, i32, i64)],
) -> GroupRequest {
    let mut topics: Vec<offset_commit_request::OffsetCommitRequestTopic> = Vec::new();
    for (t, p, o) in offsets {
        let part = offset_commit_request::OffsetCommitRequestPartition::default()
            .with_partition_index(*p)
            .with_committed_offset(*o)
            .with_committed_leader_epoch(-1)
            .with_committed_metadata(Some(sb("")));
        match topics.iter_mut().find(|x| x.name.0.as_str() == *t) {
            Some(x) => x.partitions.push(part),
            None => topics.push(
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(TopicName(sb(t)))
                    .with_partitions(vec![part]),
            ),
        }
    }
    GroupRequest::OffsetCommit(
        OffsetCommitRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(sb(member_id))
            .with_topics(topics),
    )
}

/// The single response for `token` in `out`, if any.
pub fn response_for(out: &Output, token: u64) -> Option<&GroupResponse> {
    out.responses
        .iter()
        .find(|(t, _)| *t == token)
        .map(|(_, r)| r)
}

pub fn join_of(out: &Output, token: u64) -> Option<JoinGroupResponse> {
    match response_for(out, token)? {
        GroupResponse::JoinGroup(r) => Some(r.clone()),
        other => panic!("expected JoinGroup, got {other:?}"),
    }
}

pub fn sync_of(out: &Output, token: u64) -> Option<SyncGroupResponse> {
    match response_for(out, token)? {
        GroupResponse::SyncGroup(r) => Some(r.clone()),
        other => panic!("expected SyncGroup, got {other:?}"),
    }
}

pub fn code_of(out: &Output, token: u64) -> i16 {
    match response_for(out, token).expect("a response") {
        GroupResponse::JoinGroup(r) => r.error_code,
        GroupResponse::SyncGroup(r) => r.error_code,
        GroupResponse::Heartbeat(r) => r.error_code,
        GroupResponse::LeaveGroup(r) => {
            if r.error_code != 0 {
                r.error_code
            } else {
                r.members.first().map(|m| m.error_code).unwrap_or(0)
            }
        }
        GroupResponse::OffsetCommit(r) => r.topics[0].partitions[0].error_code,
        other => panic!("no single code in {other:?}"),
    }
}

/// Joins `n` dynamic members into a fresh group and syncs them; returns their ids and the generation.
pub fn stable_group(x: &mut Ctx, group: &str, n: usize) -> (Vec<String>, i32) {
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..n {
        let (t, out) = x.send(
            &format!("c{i}"),
            join_req(group, "", None, 10_000, &[("range", b"sub")]),
        );
        let r = join_of(&out, t).unwrap();
        assert_eq!(
            r.error_code,
            kafka_protocol::error::ResponseError::MemberIdRequired.code()
        );
        let id = r.member_id.to_string();
        let (t, out) = x.send(
            &format!("c{i}"),
            join_req(group, &id, None, 10_000, &[("range", b"sub")]),
        );
        assert!(join_of(&out, t).is_none(), "join is parked");
        ids.push(id);
        tokens.push(t);
    }
    // The initial delay repeats while new members keep arriving, as in Kafka.
    let mut out = Output::default();
    for _ in 0..10 {
        let step = x.advance(x.c.config().group_initial_rebalance_delay_ms);
        let done = !step.responses.is_empty();
        out.responses.extend(step.responses);
        if done {
            break;
        }
    }
    let mut generation = -1;
    let mut leader = String::new();
    for t in &tokens {
        let r = join_of(&out, *t).expect("every parked join answered");
        assert_eq!(r.error_code, 0);
        generation = r.generation_id;
        leader = r.leader.to_string();
    }
    let assignments: Vec<(String, Vec<u8>)> = ids
        .iter()
        .map(|m| (m.clone(), m.as_bytes().to_vec()))
        .collect();
    let mut sync_tokens = Vec::new();
    for id in &ids {
        if *id != leader {
            let (t, out) = x.send("c", sync_req(group, id, None, generation, &[]));
            assert!(
                sync_of(&out, t).is_none(),
                "follower sync parked until the leader syncs"
            );
            sync_tokens.push((t, id.clone()));
        }
    }
    let a: Vec<(&str, &[u8])> = assignments
        .iter()
        .map(|(m, a)| (m.as_str(), a.as_slice()))
        .collect();
    let (lt, out) = x.send("c", sync_req(group, &leader, None, generation, &a));
    assert_eq!(
        sync_of(&out, lt).unwrap().assignment.as_ref(),
        leader.as_bytes()
    );
    for (t, id) in sync_tokens {
        assert_eq!(sync_of(&out, t).unwrap().assignment.as_ref(), id.as_bytes());
    }
    (ids, generation)
}

/// A ConsumerGroupHeartbeat of group "g" on topic "t" as a consumer-protocol client sends
/// it: at epoch 0 a full join (subscription, rebalance timeout, no partitions); otherwise
/// only the partitions it owns of `topic_id`; for a leave (epoch -1 or -2) nothing more.
pub fn consumer_heartbeat_req(
    member_id: &str,
    instance_id: Option<&str>,
    epoch: i32,
    topic_id: uuid::Uuid,
    owned: &std::collections::BTreeSet<i32>,
    rebalance_timeout_ms: i32,
) -> ConsumerGroupHeartbeatRequest {
    use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(StrBytes::from_static_str("g").into())
        .with_member_id(sb(member_id))
        .with_member_epoch(epoch)
        .with_instance_id(instance_id.map(sb));
    if epoch < 0 {
        return req;
    }
    let joining = epoch == 0;
    req.with_rebalance_timeout_ms(if joining { rebalance_timeout_ms } else { -1 })
        .with_subscribed_topic_names(joining.then(|| vec![StrBytes::from_static_str("t").into()]))
        .with_topic_partitions(Some(if joining {
            Vec::new()
        } else {
            vec![TopicPartitions::default()
                .with_topic_id(topic_id)
                .with_partitions(owned.iter().copied().collect())]
        }))
}

/// The context of a request from `client_id` on 127.0.0.1.
pub fn request_ctx(token: u64, api_version: i16, client_id: &str) -> RequestContext {
    RequestContext {
        token,
        api_version,
        client_id: client_id.into(),
        client_host: "/127.0.0.1".into(),
    }
}
