//! The consumer group endpoints over HTTP: list, describe with members and lag, reset
//! offsets (plan, execute, undo), delete offsets, delete a group, and their refusals. Group
//! state is set up and checked through the group coordinator itself, as Kafka clients
//! reach it.

use crate::api_common;

use api_common::Api;
use bytes::BytesMut;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use serde_json::json;
use weir_groups::{GroupRequest, GroupResponse};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn coordinator(api: &Api, version: i16, request: GroupRequest) -> GroupResponse {
    api.broker
        .state
        .groups()
        .expect("the coordinator runs")
        .call(version, "test-client".into(), "/127.0.0.1".into(), request)
        .await
        .expect("an answer")
}

/// Commits offsets as an admin client does (generation -1).
async fn commit(api: &Api, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(p, o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(*o)
                    })
                    .collect(),
            )]);
    let GroupResponse::OffsetCommit(r) =
        coordinator(api, 9, GroupRequest::OffsetCommit(request)).await
    else {
        panic!("not an OffsetCommit answer")
    };
    for t in r.topics {
        for p in t.partitions {
            assert_eq!(p.error_code, 0);
        }
    }
}

/// The group's committed offsets as OffsetFetch answers them, (topic, partition, offset).
async fn fetched(api: &Api, group: &str) -> Vec<(String, i32, i64)> {
    let request =
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(None)]);
    let GroupResponse::OffsetFetch(r) =
        coordinator(api, 9, GroupRequest::OffsetFetch(request)).await
    else {
        panic!("not an OffsetFetch answer")
    };
    let mut out = Vec::new();
    for g in r.groups {
        for t in g.topics {
            for p in t.partitions {
                if p.committed_offset >= 0 {
                    out.push((t.name.0.to_string(), p.partition_index, p.committed_offset));
                }
            }
        }
    }
    out.sort();
    out
}

/// A classic member that joins the group through JoinGroup and, as its leader, assigns
/// itself `partitions` of `topic` through SyncGroup. Returns its member id.
async fn join_member(api: &Api, group: &str, topic: &str, partitions: &[i32]) -> String {
    let join = |member: String| {
        GroupRequest::JoinGroup(
            JoinGroupRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_session_timeout_ms(30_000)
                .with_rebalance_timeout_ms(30_000)
                .with_member_id(s(&member))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
                )
                .with_name(s("range"))]),
            api.broker.state.topic_image(),
        )
    };
    let GroupResponse::JoinGroup(first) = coordinator(api, 6, join(String::new())).await else {
        panic!("not a JoinGroup answer")
    };
    let member = first.member_id.to_string();
    let GroupResponse::JoinGroup(joined) = coordinator(api, 6, join(member.clone())).await else {
        panic!("not a JoinGroup answer")
    };
    assert_eq!(joined.error_code, 0);
    let mut assignment = BytesMut::new();
    assignment.extend_from_slice(&0i16.to_be_bytes());
    ConsumerProtocolAssignment::default()
        .with_assigned_partitions(vec![TopicPartition::default()
            .with_topic(TopicName(s(topic)))
            .with_partitions(partitions.to_vec())])
        .encode(&mut assignment, 0)
        .unwrap();
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(joined.generation_id)
        .with_member_id(s(&member))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(s(&member))
                .with_assignment(assignment.freeze()),
        ]);
    let GroupResponse::SyncGroup(synced) = coordinator(
        api,
        5,
        GroupRequest::SyncGroup(sync, api.broker.state.topic_image()),
    )
    .await
    else {
        panic!("not a SyncGroup answer")
    };
    assert_eq!(synced.error_code, 0);
    member
}

/// Listing and describing a group show its state, its member (client id, host,
/// partitions) and, per partition, the committed offset, high watermark and lag in records
/// and in time.
#[tokio::test]
async fn list_and_describe_show_members_and_lag() {
    let api = Api::start().await;
    api.create_topic("orders", 2).await;
    api.produce("orders", 0, &["a", "b", "c", "d", "e", "f"])
        .await;
    commit(&api, "billing", "orders", &[(0, 2)]).await;
    let member = join_member(&api, "billing", "orders", &[0, 1]).await;

    let list = api.get("/api/v1/groups").await.ok();
    let groups = list["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{list}");
    let g = &groups[0];
    assert_eq!(g["group_id"], "billing");
    assert_eq!(g["state"], "Stable");
    assert_eq!(g["group_type"], "classic");
    assert_eq!(g["protocol_type"], "consumer");
    assert_eq!(g["members"], 1);
    assert_eq!(g["total_lag"], 4);
    assert!(g["status"].is_string());

    let d = api.get("/api/v1/groups/billing").await.ok();
    assert_eq!(d["state"], "Stable");
    assert_eq!(d["protocol"], "range");
    assert_eq!(d["total_lag"], 4);
    let m = &d["members"][0];
    assert_eq!(m["member_id"], member);
    assert_eq!(m["client_id"], "test-client");
    assert_eq!(m["host"], "/127.0.0.1");
    assert_eq!(
        m["assignment"],
        json!([{"topic": "orders", "partitions": [0, 1]}])
    );
    let offsets = d["offsets"].as_array().unwrap();
    assert_eq!(offsets.len(), 2, "{d}");
    assert_eq!(offsets[0]["partition"], 0);
    assert_eq!(offsets[0]["committed_offset"], 2);
    assert_eq!(offsets[0]["high_watermark"], 6);
    assert_eq!(offsets[0]["lag"], 4);
    assert!(offsets[0]["lag_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(offsets[0]["member_id"], member);
    // Assigned, never committed: no lag to speak of.
    assert_eq!(offsets[1]["partition"], 1);
    assert_eq!(offsets[1]["committed_offset"], serde_json::Value::Null);
    assert_eq!(offsets[1]["high_watermark"], 0);

    api.get("/api/v1/groups/nobody")
        .await
        .assert_error(404, "unknown_group");
    assert_eq!(api.get("/api/v1/cluster").await.ok()["counts"]["groups"], 1);
    api.stop().await;
}

/// A member's join shows as a completed rebalance, with its trigger, the generation it
/// produced and the member that joined; an unknown group is 404.
#[tokio::test]
async fn rebalances_show_the_join() {
    let api = Api::start().await;
    api.create_topic("orders", 1).await;
    let member = join_member(&api, "billing", "orders", &[0]).await;
    let r = api.get("/api/v1/groups/billing/rebalances").await.ok();
    assert_eq!(r["group_id"], "billing");
    assert_eq!(r["state"], "Stable");
    assert_eq!(r["generation_id"], 1);
    let rebalances = r["rebalances"].as_array().unwrap();
    assert_eq!(rebalances.len(), 1, "{r}");
    let first = &rebalances[0];
    assert_eq!(first["trigger"], "member_joined");
    assert_eq!(first["outcome"], "completed");
    assert_eq!(first["generation_id"], 1);
    assert!(first["duration_ms"].as_i64().unwrap() >= 0);
    assert!(first["member_changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["member_id"] == member.as_str() && c["change"] == "joined"));
    assert_eq!(r["counts"]["member_joined"], 1);
    assert_eq!(r["current_rebalance_ms"], serde_json::Value::Null);
    api.get("/api/v1/groups/nobody/rebalances")
        .await
        .assert_error(404, "unknown_group");
    api.stop().await;
}

/// The console's lag samples of a group are served oldest first, each with its partitions
/// and total lag, and follow a commit; an unknown group is 404.
#[tokio::test]
async fn lag_history_follows_commits() {
    let api = Api::start().await;
    api.create_topic("orders", 1).await;
    api.produce("orders", 0, &["a", "b", "c", "d", "e"]).await;
    commit(&api, "billing", "orders", &[(0, 1)]).await;
    let latest_lag = |body: &serde_json::Value| {
        body["samples"]
            .as_array()
            .unwrap()
            .last()
            .map(|s| s["total_lag"].as_i64().unwrap())
    };
    let mut body = serde_json::Value::Null;
    for _ in 0..200 {
        body = api.get("/api/v1/groups/billing/lag-history").await.ok();
        if latest_lag(&body) == Some(4) {
            break;
        }
        tokio::time::sleep(api_common::LAG_SAMPLE_INTERVAL_TEST).await;
    }
    assert_eq!(latest_lag(&body), Some(4), "{body}");
    let sample = body["samples"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(sample["has_members"], false);
    assert_eq!(
        sample["partitions"],
        json!([{"topic": "orders", "partition": 0, "committed_offset": 1, "log_start_offset": 0, "high_watermark": 5, "lag": 4}])
    );
    assert_eq!(body["sample_interval_ms"], 10_000);
    // No members and a committed offset that never moves while records wait: stopped, once
    // enough samples show it, in the list as in the history.
    for _ in 0..200 {
        body = api.get("/api/v1/groups/billing/lag-history").await.ok();
        if body["status"] == "stopped" {
            break;
        }
        tokio::time::sleep(api_common::LAG_SAMPLE_INTERVAL_TEST).await;
    }
    assert_eq!(body["status"], "stopped", "{body}");
    assert_eq!(
        api.get("/api/v1/groups").await.ok()["groups"][0]["status"],
        "stopped"
    );

    commit(&api, "billing", "orders", &[(0, 5)]).await;
    for _ in 0..200 {
        body = api.get("/api/v1/groups/billing/lag-history").await.ok();
        if latest_lag(&body) == Some(0) {
            break;
        }
        tokio::time::sleep(api_common::LAG_SAMPLE_INTERVAL_TEST).await;
    }
    assert_eq!(latest_lag(&body), Some(0), "{body}");
    assert_eq!(body["status"], "ok");
    let at: Vec<i64> = body["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["at_ms"].as_i64().unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
    api.get("/api/v1/groups/nobody/lag-history")
        .await
        .assert_error(404, "unknown_group");
    api.stop().await;
}

/// A reset is a plan until executed; executed, it moves the committed offsets as planned
/// (checked with OffsetFetch) and saves an undo file, and undo puts them back.
#[tokio::test]
async fn reset_plan_execute_undo() {
    let api = Api::start().await;
    api.create_topic("orders", 2).await;
    api.produce("orders", 0, &["a", "b", "c", "d", "e", "f", "g", "h"])
        .await;
    api.produce("orders", 1, &["a", "b", "c"]).await;
    commit(&api, "billing", "orders", &[(0, 5), (1, 1)]).await;
    let before = fetched(&api, "billing").await;
    assert_eq!(
        before,
        vec![("orders".to_string(), 0, 5), ("orders".to_string(), 1, 1)]
    );
    let url = "/api/v1/groups/billing/offsets/reset";

    // 1. A plan changes nothing.
    let plan = api
        .post(
            url,
            json!({"spec": "to_earliest", "topics": [{"topic": "orders"}]}),
        )
        .await
        .ok();
    assert_eq!(plan["executed"], false);
    assert_eq!(plan["undo_file"], serde_json::Value::Null);
    assert_eq!(
        plan["partitions"],
        json!([
            {"topic": "orders", "partition": 0, "current": 5, "new": 0},
            {"topic": "orders", "partition": 1, "current": 1, "new": 0}
        ])
    );
    assert_eq!(fetched(&api, "billing").await, before);

    // 2. Shifts are clamped to the log.
    let plan = api
        .post(url, json!({"spec": {"shift_by": -3}, "all_topics": true}))
        .await
        .ok();
    assert_eq!(plan["partitions"][0]["new"], 2);
    assert_eq!(plan["partitions"][1]["new"], 0);
    let plan = api
        .post(
            url,
            json!({"spec": {"to_offset": 100}, "topics": [{"topic": "orders", "partitions": [1]}]}),
        )
        .await
        .ok();
    assert_eq!(
        plan["partitions"],
        json!([{"topic": "orders", "partition": 1, "current": 1, "new": 3}])
    );

    // 3. Executed: the coordinator has the new offsets, the undo file the old ones.
    let done = api
        .post(
            url,
            json!({"spec": "to_latest", "topics": [{"topic": "orders"}], "execute": true}),
        )
        .await
        .ok();
    assert_eq!(done["executed"], true);
    assert_eq!(
        fetched(&api, "billing").await,
        vec![("orders".to_string(), 0, 8), ("orders".to_string(), 1, 3)]
    );
    let undo_file = done["undo_file"].as_str().unwrap();
    assert!(
        undo_file.starts_with("console/undo/billing-"),
        "{undo_file}"
    );
    let saved = std::fs::read_to_string(api.broker.state.config.data_dir.join(undo_file)).unwrap();
    assert!(
        saved.starts_with("# committed offsets of group billing"),
        "{saved}"
    );
    assert!(saved.contains("\norders,0,5\norders,1,1\n"), "{saved}");

    // 4. Undo restores them, and there is nothing left to undo afterwards.
    let undone = api
        .post("/api/v1/groups/billing/offsets/reset/undo", json!({}))
        .await
        .ok();
    assert_eq!(undone["partitions"][0]["new"], 5);
    assert_eq!(fetched(&api, "billing").await, before);
    api.post("/api/v1/groups/billing/offsets/reset/undo", json!({}))
        .await
        .assert_error(404, "no_reset_to_undo");

    // 5. A time picks the first record at or after it; offsets given as CSV are applied.
    let plan = api
        .post(url, json!({"spec": {"to_timestamp": 0}, "topics": [{"topic": "orders", "partitions": [0]}]}))
        .await
        .ok();
    assert_eq!(plan["partitions"][0]["new"], 0);
    let plan = api
        .post(url, json!({"spec": {"to_datetime": "2999-01-01T00:00:00Z"}, "topics": [{"topic": "orders", "partitions": [0]}]}))
        .await
        .ok();
    assert_eq!(plan["partitions"][0]["new"], 8);
    api.post(
        url,
        json!({"spec": {"from_csv": "# saved\norders,0,6\n"}, "execute": true}),
    )
    .await
    .ok();
    assert_eq!(
        fetched(&api, "billing").await,
        vec![("orders".to_string(), 0, 6), ("orders".to_string(), 1, 1)]
    );
    api.stop().await;
}

/// A reset refuses a group with a live member (409) and bad input (400, 404), and changes
/// nothing then.
#[tokio::test]
async fn reset_refusals() {
    let api = Api::start().await;
    api.create_topic("orders", 1).await;
    api.produce("orders", 0, &["a", "b"]).await;
    commit(&api, "live", "orders", &[(0, 1)]).await;
    join_member(&api, "live", "orders", &[0]).await;
    let reset = |group: &'static str, body: serde_json::Value| {
        let api = &api;
        async move {
            api.post(&format!("/api/v1/groups/{group}/offsets/reset"), body)
                .await
        }
    };
    let execute = json!({"spec": "to_earliest", "topics": [{"topic": "orders"}], "execute": true});
    reset("live", execute.clone())
        .await
        .assert_error(409, "group_active");
    reset(
        "live",
        json!({"spec": "to_earliest", "topics": [{"topic": "orders"}]}),
    )
    .await
    .assert_error(409, "group_active");
    assert_eq!(
        fetched(&api, "live").await,
        vec![("orders".to_string(), 0, 1)]
    );

    reset("idle", json!({"spec": "to_earliest"}))
        .await
        .assert_error(400, "invalid_body");
    reset("idle", json!({"spec": "to_everywhere", "all_topics": true}))
        .await
        .assert_error(400, "invalid_body");
    reset("idle", json!({"topics": [{"topic": "orders"}]}))
        .await
        .assert_error(400, "invalid_body");
    reset(
        "idle",
        json!({"spec": {"to_datetime": "yesterday"}, "topics": [{"topic": "orders"}]}),
    )
    .await
    .assert_error(400, "invalid_body");
    reset("idle", json!({"spec": {"from_csv": "orders;0;1"}}))
        .await
        .assert_error(400, "invalid_body");
    reset(
        "idle",
        json!({"spec": "to_earliest", "topics": [{"topic": "nope"}]}),
    )
    .await
    .assert_error(404, "unknown_topic");
    reset(
        "idle",
        json!({"spec": "to_earliest", "topics": [{"topic": "orders", "partitions": [3]}]}),
    )
    .await
    .assert_error(404, "unknown_partition");
    // An unknown group with nothing named has nothing to reset.
    reset("idle", json!({"spec": "to_earliest", "all_topics": true}))
        .await
        .assert_error(400, "invalid_body");
    // An unknown group is created by an executed reset, as with Kafka's tool.
    reset("idle", execute).await.ok();
    assert_eq!(
        fetched(&api, "idle").await,
        vec![("orders".to_string(), 0, 0)]
    );
    api.stop().await;
}

/// Offsets are deleted per topic or partition; a group is deleted only without members.
#[tokio::test]
async fn delete_offsets_and_groups() {
    let api = Api::start().await;
    api.create_topic("orders", 2).await;
    api.create_topic("refunds", 1).await;
    commit(&api, "old", "orders", &[(0, 0), (1, 0)]).await;
    commit(&api, "old", "refunds", &[(0, 0)]).await;

    let deleted = api
        .delete(
            "/api/v1/groups/old/offsets",
            Some(json!({"topics": [{"topic": "orders", "partitions": [1]}, {"topic": "refunds"}]})),
        )
        .await
        .ok();
    assert_eq!(
        deleted["deleted"],
        json!([{"topic": "orders", "partitions": [1]}, {"topic": "refunds", "partitions": [0]}])
    );
    assert_eq!(
        fetched(&api, "old").await,
        vec![("orders".to_string(), 0, 0)]
    );
    api.delete("/api/v1/groups/old/offsets", Some(json!({"topics": []})))
        .await
        .assert_error(400, "invalid_body");
    api.delete("/api/v1/groups/old/offsets", None)
        .await
        .assert_error(400, "malformed_json");
    api.delete(
        "/api/v1/groups/old/offsets",
        Some(json!({"topics": [{"topic": "nope"}]})),
    )
    .await
    .assert_error(404, "unknown_topic");
    api.delete(
        "/api/v1/groups/ghost/offsets",
        Some(json!({"topics": [{"topic": "orders"}]})),
    )
    .await
    .assert_error(404, "unknown_group");

    // A live member keeps its group's offsets (its subscription is unknown to the
    // coordinator, so any of them may be in use), and its group.
    commit(&api, "live", "orders", &[(0, 0)]).await;
    join_member(&api, "live", "orders", &[0, 1]).await;
    api.delete(
        "/api/v1/groups/live/offsets",
        Some(json!({"topics": [{"topic": "orders"}]})),
    )
    .await
    .assert_error(409, "group_not_empty");
    assert_eq!(
        fetched(&api, "live").await,
        vec![("orders".to_string(), 0, 0)]
    );
    api.delete("/api/v1/groups/live", None)
        .await
        .assert_error(409, "group_not_empty");

    // The offsets topic exists now, and is the broker's own.
    api.delete("/api/v1/topics/__consumer_offsets", None)
        .await
        .assert_error(400, "invalid_topic");
    api.post(
        "/api/v1/topics/__consumer_offsets/messages",
        json!({"value": "v"}),
    )
    .await
    .assert_error(400, "invalid_topic");

    assert_eq!(
        api.delete("/api/v1/groups/old", None).await.ok()["group_id"],
        "old"
    );
    api.get("/api/v1/groups/old")
        .await
        .assert_error(404, "unknown_group");
    api.delete("/api/v1/groups/old", None)
        .await
        .assert_error(404, "unknown_group");
    api.stop().await;
}
