//! The cluster, topics and messages endpoints over HTTP against a running broker, with the
//! refusals each one owes bad input.

use crate::api_common;

use api_common::Api;
use serde_json::json;

/// The cluster answer names this broker, its listeners and counts that follow topics.
#[tokio::test]
async fn cluster_reports_node_listeners_and_counts() {
    let api = Api::start().await;
    let before = api.get("/api/v1/cluster").await.ok();
    assert_eq!(before["cluster_id"], api.broker.state.cluster_id());
    assert_eq!(before["node_id"], api.broker.state.config.node_id);
    assert_eq!(before["version"], env!("CARGO_PKG_VERSION"));
    let listeners = before["listeners"].as_array().unwrap();
    let http = listeners.iter().find(|l| l["name"] == "http").unwrap();
    assert_eq!(http["address"], api.addr.to_string());
    let kafka = listeners.iter().find(|l| l["name"] == "PLAINTEXT").unwrap();
    assert_eq!(kafka["protocol"], "PLAINTEXT");
    assert_eq!(kafka["address"], kafka["advertised"]);
    let topics_before = before["counts"]["topics"].as_u64().unwrap();

    api.create_topic("orders", 3).await;
    let after = api.get("/api/v1/cluster").await.ok();
    assert_eq!(
        after["counts"]["topics"].as_u64().unwrap(),
        topics_before + 1
    );
    assert_eq!(
        after["counts"]["partitions"].as_u64().unwrap(),
        before["counts"]["partitions"].as_u64().unwrap() + 3
    );
    assert_eq!(after["counts"]["groups"], 0);
    api.stop().await;
}

/// The throughput history fills as the console samples: records produced through the API
/// show as produce rates, and a sample's rates are never negative.
#[tokio::test]
async fn throughput_history_shows_produced_records() {
    let api = Api::start().await;
    api.create_topic("orders", 1).await;
    let first = api.get("/api/v1/cluster/throughput").await.ok();
    assert_eq!(first["sample_interval_s"], 10.0);
    for i in 0..5 {
        api.post(
            "/api/v1/topics/orders/messages",
            serde_json::json!({"key": format!("k{i}"), "value": "v"}),
        )
        .await
        .ok();
    }
    let mut produced = 0.0;
    for _ in 0..100 {
        let answer = api.get("/api/v1/cluster/throughput").await.ok();
        let samples = answer["samples"].as_array().unwrap().clone();
        for s in &samples {
            for rate in [
                "records_in_per_second",
                "bytes_in_per_second",
                "bytes_out_per_second",
            ] {
                assert!(s[rate].as_f64().unwrap() >= 0.0, "{s}");
            }
        }
        // Each sample's rate times the time since the one before adds up to what was
        // produced; the first sample's span is unknown, so only a positive rate is asked.
        produced = samples
            .iter()
            .map(|s| s["records_in_per_second"].as_f64().unwrap())
            .sum::<f64>();
        if produced > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(produced > 0.0, "no produce rate was sampled");
    api.stop().await;
}

/// A topic is created with its partitions and configs, listed, described with its
/// partitions' offsets and its configs' sources, and deleted.
#[tokio::test]
async fn topic_lifecycle() {
    let api = Api::start().await;
    let created = api
        .post(
            "/api/v1/topics",
            json!({"name": "orders", "partitions": 2, "configs": {"retention.ms": "3600000"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["name"], "orders");
    assert_eq!(created.body["partitions"].as_array().unwrap().len(), 2);

    api.produce("orders", 1, &["a", "b", "c"]).await;
    let list = api.get("/api/v1/topics").await.ok();
    let orders = list["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "orders")
        .unwrap()
        .clone();
    assert_eq!(orders["partitions"], 2);
    assert_eq!(orders["records"], 3);
    assert_eq!(orders["high_watermark_sum"], 3);
    assert!(orders["size_bytes"].as_u64().unwrap() > 0);
    assert_eq!(orders["internal"], false);
    assert_eq!(list["truncated"], 0);

    let topic = api.get("/api/v1/topics/orders").await.ok();
    let p1 = &topic["partitions"][1];
    assert_eq!(p1["partition"], 1);
    assert_eq!(p1["log_start_offset"], 0);
    assert_eq!(p1["high_watermark"], 3);
    assert_eq!(p1["last_stable_offset"], 3);
    assert_eq!(p1["segments"], 1);
    assert!(p1["size_bytes"].as_u64().unwrap() > 0);
    assert_eq!(topic["partitions"][0]["high_watermark"], 0);
    let config = |body: &serde_json::Value, name: &str| {
        body["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    let retention = config(&topic, "retention.ms");
    assert_eq!(retention["value"], "3600000");
    assert_eq!(retention["source"], "topic");
    assert_eq!(config(&topic, "cleanup.policy")["source"], "default");

    let deleted = api.delete("/api/v1/topics/orders", None).await.ok();
    assert_eq!(deleted["name"], "orders");
    assert_eq!(deleted["topic_id"], topic["topic_id"]);
    api.get("/api/v1/topics/orders")
        .await
        .assert_error(404, "unknown_topic");
    assert!(api.broker.state.topic("orders").is_none());
    api.stop().await;
}

/// Creating refuses an existing name (409), a bad name, partition count or config (400),
/// and a body that is not JSON or lacks the name (400).
#[tokio::test]
async fn create_refuses_bad_input() {
    let api = Api::start().await;
    api.create_topic("orders", 1).await;
    api.post("/api/v1/topics", json!({"name": "orders"}))
        .await
        .assert_error(409, "topic_exists");
    api.post("/api/v1/topics", json!({"name": "bad/name"}))
        .await
        .assert_error(400, "invalid_topic");
    api.post("/api/v1/topics", json!({"name": "t", "partitions": 0}))
        .await
        .assert_error(400, "invalid_partitions");
    api.post(
        "/api/v1/topics",
        json!({"name": "t", "configs": {"retention.ms": "soon"}}),
    )
    .await
    .assert_error(400, "invalid_config");
    api.post(
        "/api/v1/topics",
        json!({"name": "t", "configs": {"no.such.config": "1"}}),
    )
    .await
    .assert_error(400, "invalid_config");
    api.post("/api/v1/topics", json!({"partitions": 1}))
        .await
        .assert_error(400, "invalid_body");
    api.post("/api/v1/topics", json!({"name": "t", "partitions": "two"}))
        .await
        .assert_error(400, "invalid_body");
    api.post("/api/v1/topics", json!({"name": "t", "replicas": 3}))
        .await
        .assert_error(400, "invalid_body");
    api.raw(
        axum::http::Method::POST,
        "/api/v1/topics",
        b"{\"name\": ".to_vec(),
    )
    .await
    .assert_error(400, "malformed_json");
    api.raw(axum::http::Method::POST, "/api/v1/topics", Vec::new())
        .await
        .assert_error(400, "malformed_json");
    assert!(api.broker.state.topic("t").is_none());
    api.stop().await;
}

/// Configs are set and removed through the API, and the logs' settings follow; bad names,
/// values and empty changes are 400, an unknown topic 404.
#[tokio::test]
async fn alter_configs_sets_and_deletes() {
    let api = Api::start().await;
    api.create_topic("orders", 1).await;
    let configs = api
        .patch(
            "/api/v1/topics/orders/configs",
            json!({"set": {"retention.ms": "1000", "cleanup.policy": "compact"}}),
        )
        .await
        .ok();
    let find = |configs: &serde_json::Value, name: &str| {
        configs
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(find(&configs, "retention.ms")["value"], "1000");
    assert_eq!(find(&configs, "cleanup.policy")["source"], "topic");
    assert_eq!(
        api.broker.state.topic("orders").unwrap().configs["retention.ms"],
        "1000"
    );
    let configs = api
        .patch(
            "/api/v1/topics/orders/configs",
            json!({"delete": ["cleanup.policy"]}),
        )
        .await
        .ok();
    assert_eq!(find(&configs, "cleanup.policy")["source"], "default");
    assert_eq!(find(&configs, "retention.ms")["source"], "topic");

    api.patch(
        "/api/v1/topics/orders/configs",
        json!({"set": {"retention.ms": "-7x"}}),
    )
    .await
    .assert_error(400, "invalid_config");
    api.patch(
        "/api/v1/topics/orders/configs",
        json!({"set": {"nope": "1"}}),
    )
    .await
    .assert_error(400, "invalid_config");
    api.patch("/api/v1/topics/orders/configs", json!({}))
        .await
        .assert_error(400, "invalid_body");
    api.patch(
        "/api/v1/topics/missing/configs",
        json!({"set": {"retention.ms": "1"}}),
    )
    .await
    .assert_error(404, "unknown_topic");
    api.stop().await;
}

/// Partitions are added, never removed; an unknown topic is 404.
#[tokio::test]
async fn add_partitions_grows_only() {
    let api = Api::start().await;
    api.create_topic("orders", 2).await;
    let topic = api
        .post("/api/v1/topics/orders/partitions", json!({"count": 5}))
        .await
        .ok();
    assert_eq!(topic["partitions"].as_array().unwrap().len(), 5);
    let state = &api.broker.state;
    let tp = state.topic_partition("orders", 4).unwrap();
    assert!(state.log_admin().status(&tp).is_some());
    api.post("/api/v1/topics/orders/partitions", json!({"count": 3}))
        .await
        .assert_error(400, "invalid_partitions");
    api.post("/api/v1/topics/orders/partitions", json!({"count": 5}))
        .await
        .assert_error(400, "invalid_partitions");
    api.post("/api/v1/topics/orders/partitions", json!({}))
        .await
        .assert_error(400, "invalid_body");
    api.post("/api/v1/topics/missing/partitions", json!({"count": 3}))
        .await
        .assert_error(404, "unknown_topic");
    api.delete("/api/v1/topics/missing", None)
        .await
        .assert_error(404, "unknown_topic");
    api.stop().await;
}

/// A produced message reads back with its key, value and headers: text as text, bytes
/// that are not UTF-8 as base64, each with its encoding named.
#[tokio::test]
async fn produce_then_read_messages() {
    let api = Api::start().await;
    api.create_topic("events", 2).await;
    let first = api
        .post(
            "/api/v1/topics/events/messages",
            json!({
                "partition": 1, "key": "k1", "value": "hello",
                "headers": [{"key": "trace", "value": "abc"}, {"key": "empty", "value": null}],
                "timestamp_ms": 1_700_000_000_000i64
            }),
        )
        .await
        .ok();
    assert_eq!(first["partition"], 1);
    assert_eq!(first["offset"], 0);
    // 0xff 0xfe is not UTF-8.
    let second = api
        .post(
            "/api/v1/topics/events/messages",
            json!({"partition": 1, "value": "//4=", "encoding": "base64", "timestamp_ms": 1_700_000_001_000i64}),
        )
        .await
        .ok();
    assert_eq!(second["offset"], 1);
    let third = api
        .post(
            "/api/v1/topics/events/messages",
            json!({"partition": 1, "key": "bytes", "timestamp_ms": 1_700_000_002_000i64}),
        )
        .await
        .ok();
    assert_eq!(third["offset"], 2);

    let read = api
        .get("/api/v1/topics/events/partitions/1/messages?offset=0")
        .await
        .ok();
    assert_eq!(read["high_watermark"], 3);
    assert_eq!(read["next_offset"], 3);
    let records = read["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["key"], "k1");
    assert_eq!(records[0]["key_encoding"], "text");
    assert_eq!(records[0]["value"], "hello");
    assert_eq!(records[0]["value_encoding"], "text");
    assert_eq!(records[0]["timestamp_ms"], 1_700_000_000_000i64);
    assert_eq!(records[0]["timestamp_type"], "create_time");
    assert_eq!(
        records[0]["headers"],
        json!([
            {"key": "trace", "value": "abc", "value_encoding": "text"},
            {"key": "empty", "value": null, "value_encoding": null}
        ])
    );
    assert_eq!(records[1]["key"], serde_json::Value::Null);
    assert_eq!(records[1]["value"], "//4=");
    assert_eq!(records[1]["value_encoding"], "base64");
    assert_eq!(records[2]["value"], serde_json::Value::Null);

    // Bounded by count, then resumed from next_offset.
    let page = api
        .get("/api/v1/topics/events/partitions/1/messages?offset=0&max_records=2")
        .await
        .ok();
    assert_eq!(page["records"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_offset"], 2);
    let rest = api
        .get("/api/v1/topics/events/partitions/1/messages?offset=2")
        .await
        .ok();
    assert_eq!(rest["records"][0]["offset"], 2);
    // Bounded by bytes: the first record always comes.
    let small = api
        .get("/api/v1/topics/events/partitions/1/messages?max_bytes=1")
        .await
        .ok();
    assert_eq!(small["records"].as_array().unwrap().len(), 1);
    // From a time: the first record at or after it.
    let timed = api
        .get("/api/v1/topics/events/partitions/1/messages?timestamp_ms=1700000000500")
        .await
        .ok();
    assert_eq!(timed["records"][0]["offset"], 1);
    let future = api
        .get("/api/v1/topics/events/partitions/1/messages?timestamp_ms=1800000000000")
        .await
        .ok();
    assert_eq!(future["records"].as_array().unwrap().len(), 0);
    assert_eq!(future["next_offset"], 3);
    api.stop().await;
}

/// Without a partition, a keyed message goes where Kafka's clients put its key, and a
/// keyless one to every partition in turn.
#[tokio::test]
async fn produce_picks_partitions_like_kafka_clients() {
    let api = Api::start().await;
    api.create_topic("spread", 4).await;
    let keyed = api
        .post(
            "/api/v1/topics/spread/messages",
            json!({"key": "foobar", "value": "v"}),
        )
        .await
        .ok();
    assert_eq!(
        keyed["partition"],
        weir_console::partitioner::partition_for_key(b"foobar", 4)
    );
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let body = api
            .post("/api/v1/topics/spread/messages", json!({"value": "v"}))
            .await
            .ok();
        seen.insert(body["partition"].as_i64().unwrap());
    }
    assert_eq!(seen.len(), 4);
    api.stop().await;
}

/// Reads and produces refuse what they cannot serve, each with its status and code.
#[tokio::test]
async fn messages_refuse_bad_input() {
    let api = Api::start().await;
    api.create_topic("events", 1).await;
    api.produce("events", 0, &["a"]).await;
    let read = |q: &'static str| {
        let api = &api;
        async move {
            api.get(&format!("/api/v1/topics/events/partitions/0/messages{q}"))
                .await
        }
    };
    read("?offset=5")
        .await
        .assert_error(400, "offset_out_of_range");
    read("?offset=-1")
        .await
        .assert_error(400, "offset_out_of_range");
    read("?max_records=0")
        .await
        .assert_error(400, "invalid_query");
    read("?max_records=1001")
        .await
        .assert_error(400, "invalid_query");
    read("?max_bytes=99999999")
        .await
        .assert_error(400, "invalid_query");
    read("?offset=x").await.assert_error(400, "invalid_query");
    read("?offset=0&timestamp_ms=0")
        .await
        .assert_error(400, "invalid_query");
    read("?colour=red").await.assert_error(400, "invalid_query");
    api.get("/api/v1/topics/events/partitions/7/messages")
        .await
        .assert_error(404, "unknown_partition");
    api.get("/api/v1/topics/events/partitions/zero/messages")
        .await
        .assert_error(400, "invalid_path");
    api.get("/api/v1/topics/nope/partitions/0/messages")
        .await
        .assert_error(404, "unknown_topic");

    let produce = |body: serde_json::Value| {
        let api = &api;
        async move { api.post("/api/v1/topics/events/messages", body).await }
    };
    produce(json!({"partition": 3, "value": "v"}))
        .await
        .assert_error(404, "unknown_partition");
    produce(json!({"value": "***", "encoding": "base64"}))
        .await
        .assert_error(400, "invalid_body");
    produce(json!({"value": "v", "encoding": "hex"}))
        .await
        .assert_error(400, "invalid_body");
    produce(
        json!({"value": "v", "headers": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}),
    )
    .await
    .assert_error(400, "invalid_body");
    produce(json!({"value": 5}))
        .await
        .assert_error(400, "invalid_body");
    api.post("/api/v1/topics/nope/messages", json!({"value": "v"}))
        .await
        .assert_error(404, "unknown_topic");
    // A record larger than the topic allows is refused, not stored.
    api.patch(
        "/api/v1/topics/events/configs",
        json!({"set": {"max.message.bytes": "100"}}),
    )
    .await
    .ok();
    produce(json!({"partition": 0, "value": "x".repeat(500)}))
        .await
        .assert_error(413, "too_large");
    let topic = api.get("/api/v1/topics/events").await.ok();
    assert_eq!(topic["partitions"][0]["high_watermark"], 1);
    // A body over the API's bound is 413 before it is parsed.
    let huge = json!({"value": "x".repeat(weir_console::api::API_BODY_BYTES_MAX)});
    produce(huge).await.assert_error(413, "body_too_large");
    api.stop().await;
}
