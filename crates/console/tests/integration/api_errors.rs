//! The API as a whole: its OpenAPI document lists exactly the routes the router serves,
//! every schema it names exists, and no bad input to any route gets a 5xx or a non-JSON
//! answer.

use crate::api_common;

use std::collections::BTreeSet;

use api_common::Api;
use axum::http::Method;
use serde_json::{json, Value};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// A documented path with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{topic}", "orders")
        .replace("{partition}", "0")
        .replace("{group}", "billing")
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.to_ascii_uppercase().as_bytes()).unwrap()
}

/// Whether the router has a route for this method and path: anything but the fallback's
/// 404 `not_found` and 405 `method_not_allowed`.
fn routed(answer: &api_common::Answer) -> bool {
    !matches!(
        (answer.status, answer.body["code"].as_str()),
        (404, Some("not_found")) | (405, Some("method_not_allowed"))
    )
}

/// Every endpoint the API promises is in the document, and for every documented path the
/// router serves exactly the documented methods, no more and no fewer.
#[tokio::test]
async fn openapi_document_matches_the_router() {
    let api = Api::start().await;
    api.create_topic("orders", 1).await;
    let doc = api.get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.content_type, "application/json");
    let doc = doc.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();

    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for m in METHODS {
            if item.get(m).is_some() {
                documented.insert((m.to_string(), path.clone()));
            }
        }
    }
    let promised = [
        ("get", "/api/v1/cluster"),
        ("get", "/api/v1/openapi.json"),
        ("get", "/api/v1/topics"),
        ("post", "/api/v1/topics"),
        ("get", "/api/v1/topics/{topic}"),
        ("delete", "/api/v1/topics/{topic}"),
        ("patch", "/api/v1/topics/{topic}/configs"),
        ("post", "/api/v1/topics/{topic}/partitions"),
        (
            "get",
            "/api/v1/topics/{topic}/partitions/{partition}/messages",
        ),
        ("post", "/api/v1/topics/{topic}/messages"),
        ("get", "/api/v1/groups"),
        ("get", "/api/v1/groups/{group}"),
        ("delete", "/api/v1/groups/{group}"),
        ("get", "/api/v1/groups/{group}/rebalances"),
        ("get", "/api/v1/groups/{group}/lag-history"),
        ("delete", "/api/v1/groups/{group}/offsets"),
        ("post", "/api/v1/groups/{group}/offsets/reset"),
        ("post", "/api/v1/groups/{group}/offsets/reset/undo"),
    ];
    for (m, p) in promised {
        assert!(
            documented.contains(&(m.to_string(), p.to_string())),
            "{m} {p} is not in the document"
        );
    }

    for path in paths.keys() {
        for m in METHODS {
            let answer = api.send(method(m), &concrete(path), Some(json!({}))).await;
            assert_eq!(
                routed(&answer),
                documented.contains(&(m.to_string(), path.clone())),
                "{m} {path}: {answer:?}"
            );
        }
    }
    // A path outside the document is not served.
    assert!(!routed(&api.get("/api/v1/brokers").await));
    api.stop().await;
}

/// Every `$ref` in the document names a schema the document holds, and every operation
/// documents its answers.
#[tokio::test]
async fn openapi_references_resolve() {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "$ref" {
                        out.push(v.as_str().unwrap().to_string());
                    } else {
                        refs(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
            _ => {}
        }
    }
    let doc = serde_json::to_value(weir_console::api::openapi()).unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 10, "{found:?}");
    for r in found {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(schemas.contains_key(name), "{r} is not in the document");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (m, op) in item.as_object().unwrap() {
            assert!(
                !op["responses"].as_object().unwrap().is_empty(),
                "{m} {path} documents no answer"
            );
        }
    }
    assert!(schemas.contains_key("ErrorBody"));
}

/// Bodies that are not what a route takes — not JSON, the wrong JSON, too large — are a
/// JSON 4xx on every route, never a 5xx, and the broker still answers afterwards.
#[tokio::test]
async fn bad_input_is_never_a_server_error() {
    let api = Api::start().await;
    api.create_topic("orders", 1).await;
    let doc = api.get("/api/v1/openapi.json").await.ok();
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"text\"".to_vec(),
        b"{\"spec\": {\"shift_by\": 99999999999999999999}}".to_vec(),
        b"{\"spec\": {\"to_offset\": -9223372036854775808}, \"all_topics\": true}".to_vec(),
        b"{\"name\": \"\", \"partitions\": -2147483648}".to_vec(),
        b"{\"count\": 2147483647}".to_vec(),
        b"{\"topics\": [{\"topic\": \"orders\", \"partitions\": [-1]}]}".to_vec(),
        vec![0xff, 0xfe, 0x00],
        b"{\"value\": \"\\ud800\"}".to_vec(),
    ];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            for body in &bodies {
                let answer = api.raw(method(m), &concrete(path), body.clone()).await;
                assert!(
                    answer.status < 500,
                    "{m} {path} with {:?}: {answer:?}",
                    String::from_utf8_lossy(body)
                );
                assert_eq!(answer.content_type, "application/json", "{m} {path}");
            }
        }
    }
    // Odd paths: a partition that is no number, huge or negative.
    for path in [
        "/api/v1/topics/orders/partitions/99999999999/messages",
        "/api/v1/topics/orders/partitions/-1/messages",
        "/api/v1/topics/orders/partitions/%ff/messages",
        "/api/v1/topics/%2e%2e/partitions/0/messages",
    ] {
        let answer = api.get(path).await;
        assert!((400..500).contains(&answer.status), "{path}: {answer:?}");
        assert_eq!(answer.content_type, "application/json", "{path}");
    }
    // (Among the requests above, a DELETE of the topic, which takes no body, deleted it.)
    assert!(api.broker.state.topic("orders").is_none());
    api.get("/api/v1/cluster").await.ok();
    api.stop().await;
}

/// The body bound, unknown paths and unserved methods answer with the JSON error body.
#[tokio::test]
async fn limits_and_routing_errors_are_json() {
    let api = Api::start().await;
    let bound = weir_console::api::API_BODY_BYTES_MAX;
    let mut huge = b"{\"name\": \"".to_vec();
    huge.resize(bound + 1, b'a');
    api.raw(Method::POST, "/api/v1/topics", huge)
        .await
        .assert_error(413, "body_too_large");
    api.get("/api/v1/nothing")
        .await
        .assert_error(404, "not_found");
    api.send(Method::PUT, "/api/v1/topics", None)
        .await
        .assert_error(405, "method_not_allowed");
    api.send(Method::DELETE, "/api/v1/cluster", None)
        .await
        .assert_error(405, "method_not_allowed");
    api.stop().await;
}
