//! The HTTP API and the console with security on: a login against the broker's SCRAM users,
//! and the ACLs applied to the caller as the Kafka APIs apply them.

use crate::api_common;

use api_common::Api;
use serde_json::json;
use weir_meta::acls::{AclBinding, Operation, PatternType, PermissionType, ResourceType};
use weir_meta::user_scram_credentials::ScramDeletion;

const ADMIN: (&str, &str) = ("admin", "admin-secret");
const ALICE: (&str, &str) = ("alice", "alice-secret");
const BOB: (&str, &str) = ("bob", "bob-secret");

async fn secured() -> Api {
    Api::start_with(|c| {
        c.security.authorizer = true;
        c.security.super_users = vec!["User:admin".to_string()];
        c.security.add_scram = [ADMIN, ALICE, BOB]
            .iter()
            .map(|(user, password)| format!("SCRAM-SHA-256=[name={user},password={password}]"))
            .collect();
    })
    .await
}

fn allow(resource_type: ResourceType, name: &str, principal: &str, op: Operation) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.to_string(),
        pattern_type: PatternType::Literal,
        principal: principal.to_string(),
        host: "*".to_string(),
        operation: op,
        permission: PermissionType::Allow,
    }
}

fn names(list: &serde_json::Value, key: &str, field: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[field].as_str().unwrap().to_string())
        .collect()
}

/// Goal: with security on, no route answers without a valid login, and a browser is asked
/// for one.
#[tokio::test]
async fn every_route_asks_for_a_login() {
    let mut api = secured().await;
    for path in [
        "/api/v1/topics",
        "/api/v1/cluster",
        "/api/v1/groups",
        "/metrics",
        "/",
        "/topics",
        "/api/v1/openapi.json",
    ] {
        let answer = api.get(path).await;
        answer.assert_error(401, "login_required");
        let challenge = answer.www_authenticate.expect("a Basic challenge");
        assert!(challenge.starts_with("Basic realm=\"weir\""), "{challenge}");
    }
    for login in [("alice", "wrong"), ("nobody", "alice-secret"), ("", "x")] {
        api.log_in(Some(login));
        api.get("/api/v1/topics")
            .await
            .assert_error(401, "login_failed");
    }
    api.set_authorization("Basic not-base64!");
    api.get("/api/v1/topics")
        .await
        .assert_error(401, "login_failed");
    // Another scheme is no login at all.
    api.set_authorization("Bearer abc");
    api.get("/api/v1/topics")
        .await
        .assert_error(401, "login_required");
    api.log_in(Some(ALICE));
    assert_eq!(api.get("/api/v1/topics").await.status, 200);
}

/// Goal: each route checks what the Kafka API doing the same work checks: lists leave out
/// what the caller may not describe, and a refusal is a 403 naming the ACL that is missing.
#[tokio::test]
async fn routes_apply_the_acls() {
    let mut api = secured().await;
    api.log_in(Some(ADMIN));
    api.create_topic("orders", 1).await;
    api.create_topic("secret", 1).await;
    api.produce("orders", 0, &["a", "b"]).await;
    api.produce("secret", 0, &["x"]).await;
    for group in ["billing", "audit"] {
        api.post(
            &format!("/api/v1/groups/{group}/offsets/reset"),
            json!({"spec": "to_latest", "topics": [{"topic": "orders"}, {"topic": "secret"}], "execute": true}),
        )
        .await
        .ok();
    }
    let created = api.broker.state.create_acls(vec![
        allow(ResourceType::Topic, "orders", "User:alice", Operation::Read),
        allow(
            ResourceType::Group,
            "billing",
            "User:alice",
            Operation::Describe,
        ),
    ]);
    assert!(created.iter().all(Result::is_ok));

    // alice: READ on orders (DESCRIBE implied), DESCRIBE on group billing.
    api.log_in(Some(ALICE));
    let topics = api.get("/api/v1/topics").await.ok();
    assert_eq!(names(&topics, "topics", "name"), vec!["orders"]);
    let cluster = api.get("/api/v1/cluster").await.ok();
    assert_eq!(cluster["counts"]["topics"], 1);
    assert_eq!(cluster["counts"]["internal_topics"], 0);
    assert_eq!(cluster["counts"]["groups"], 1);
    let orders = api.get("/api/v1/topics/orders").await.ok();
    assert_eq!(orders["name"], "orders");
    // Its configs are DescribeConfigs' answer, which alice may not have.
    assert_eq!(orders["configs"], json!([]));
    let refused = api.get("/api/v1/topics/secret").await;
    refused.assert_error(403, "topic_authorization_failed");
    let message = refused.body["error"].as_str().unwrap();
    assert!(
        message.contains("User:alice may not DESCRIBE topic 'secret'")
            && message.contains("kafka-acls --add --allow-principal User:alice --operation Describe --topic 'secret'"),
        "{message}"
    );
    // Refused whether the topic exists or not, as Metadata refuses.
    api.get("/api/v1/topics/nothing")
        .await
        .assert_error(403, "topic_authorization_failed");
    let read = api
        .get("/api/v1/topics/orders/partitions/0/messages")
        .await
        .ok();
    assert_eq!(read["records"].as_array().unwrap().len(), 2);
    api.get("/api/v1/topics/secret/partitions/0/messages")
        .await
        .assert_error(403, "topic_authorization_failed");
    api.post("/api/v1/topics/orders/messages", json!({"value": "c"}))
        .await
        .assert_error(403, "topic_authorization_failed");
    api.post("/api/v1/topics", json!({"name": "new", "partitions": 1}))
        .await
        .assert_error(403, "topic_authorization_failed");
    api.delete("/api/v1/topics/orders", None)
        .await
        .assert_error(403, "topic_authorization_failed");
    api.patch(
        "/api/v1/topics/orders/configs",
        json!({"set": {"retention.ms": "1000"}}),
    )
    .await
    .assert_error(403, "topic_authorization_failed");
    api.post("/api/v1/topics/orders/partitions", json!({"count": 2}))
        .await
        .assert_error(403, "topic_authorization_failed");

    let groups = api.get("/api/v1/groups").await.ok();
    assert_eq!(names(&groups, "groups", "group_id"), vec!["billing"]);
    let billing = api.get("/api/v1/groups/billing").await.ok();
    let offsets: Vec<&str> = billing["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["topic"].as_str().unwrap())
        .collect();
    assert_eq!(offsets, vec!["orders"], "{billing}");
    api.get("/api/v1/groups/audit")
        .await
        .assert_error(403, "group_authorization_failed");
    api.get("/api/v1/groups/audit/rebalances")
        .await
        .assert_error(403, "group_authorization_failed");
    api.get("/api/v1/groups/audit/lag-history")
        .await
        .assert_error(403, "group_authorization_failed");
    api.delete("/api/v1/groups/billing", None)
        .await
        .assert_error(403, "group_authorization_failed");
    // A dry run reads (DESCRIBE); executing commits (READ on the group).
    let url = "/api/v1/groups/billing/offsets/reset";
    let plan = api
        .post(
            url,
            json!({"spec": "to_earliest", "topics": [{"topic": "orders"}]}),
        )
        .await
        .ok();
    assert_eq!(plan["executed"], false);
    api.post(
        url,
        json!({"spec": "to_earliest", "topics": [{"topic": "orders"}], "execute": true}),
    )
    .await
    .assert_error(403, "group_authorization_failed");
    api.post(
        url,
        json!({"spec": "to_earliest", "topics": [{"topic": "secret"}]}),
    )
    .await
    .assert_error(403, "topic_authorization_failed");
    api.get("/metrics")
        .await
        .assert_error(403, "cluster_authorization_failed");

    // The console's pages show what the API shows.
    let page = api.get("/topics").await;
    assert_eq!(page.status, 200);
    let html = page.body.as_str().unwrap();
    assert!(
        html.contains("orders") && !html.contains("secret"),
        "{html}"
    );
    assert_eq!(api.get("/topics/secret").await.status, 403);

    // With READ on the group, alice resets; bob, with no ACL, sees nothing.
    let created = api.broker.state.create_acls(vec![allow(
        ResourceType::Group,
        "billing",
        "User:alice",
        Operation::Read,
    )]);
    assert!(created.iter().all(Result::is_ok));
    let done = api
        .post(
            url,
            json!({"spec": "to_earliest", "topics": [{"topic": "orders"}], "execute": true}),
        )
        .await
        .ok();
    assert_eq!(done["executed"], true);
    api.log_in(Some(BOB));
    assert_eq!(
        names(&api.get("/api/v1/topics").await.ok(), "topics", "name"),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&api.get("/api/v1/groups").await.ok(), "groups", "group_id"),
        Vec::<String>::new()
    );
    // The super user sees everything, /metrics included.
    api.log_in(Some(ADMIN));
    assert_eq!(api.get("/metrics").await.status, 200);
    assert_eq!(
        api.get("/api/v1/groups").await.ok()["groups"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// Goal: a password remembered after its first check stops working the moment the user's
/// credential is deleted.
#[tokio::test]
async fn a_deleted_credential_logs_out_at_once() {
    let mut api = secured().await;
    api.log_in(Some(ALICE));
    assert_eq!(api.get("/api/v1/topics").await.status, 200);
    assert_eq!(api.get("/api/v1/topics").await.status, 200);
    let results = api
        .broker
        .state
        .alter_scram_credentials(
            &[ScramDeletion {
                user: "alice".to_string(),
                mechanism: 1,
            }],
            &[],
        )
        .unwrap();
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    api.get("/api/v1/topics")
        .await
        .assert_error(401, "login_failed");
}

/// Goal: without security nobody logs in, and everything is allowed.
#[tokio::test]
async fn no_login_without_security() {
    let api = Api::start().await;
    api.create_topic("orders", 1).await;
    let topics = api.get("/api/v1/topics").await.ok();
    assert!(names(&topics, "topics", "name").contains(&"orders".to_string()));
    assert_eq!(api.get("/metrics").await.status, 200);
}
