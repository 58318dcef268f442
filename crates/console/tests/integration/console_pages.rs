//! The web console's pages over HTTP against a running broker: each page is HTML and names
//! what it shows, an unknown topic or group is a 404 page with the API's sentence, and the
//! embedded assets are served with their media types. (tests/console drives the same pages
//! in Chromium.)

use crate::api_common;

use api_common::Api;

/// Every page answers HTML naming its subject; unknown subjects answer 404 pages.
#[tokio::test]
async fn pages_render_and_refuse_unknown_subjects() {
    let api = Api::start().await;
    api.create_topic("orders", 2).await;
    api.post(
        "/api/v1/topics/orders/messages",
        serde_json::json!({"partition": 1, "key": "k", "value": "{\"amount\":3}"}),
    )
    .await
    .ok();
    for (path, text) in [
        ("/", "Overview"),
        ("/topics", "orders"),
        ("/topics/orders", "Partitions"),
        ("/topics/orders/messages?partition=1", "amount"),
        ("/groups", "Consumer groups"),
    ] {
        let answer = api.get(path).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        assert!(
            answer.content_type.starts_with("text/html"),
            "{path}: {answer:?}"
        );
        let html = answer.body.as_str().unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"), "{path}");
        assert!(html.contains(text), "{path} does not show {text}");
    }
    for (path, sentence) in [
        ("/topics/nope", "Topic 'nope' does not exist"),
        ("/groups/nope", "Group 'nope' does not exist"),
        ("/topics/orders/messages?partition=7", "has no partition 7"),
    ] {
        let answer = api.get(path).await;
        assert_eq!(answer.status, 404, "{path}: {answer:?}");
        let html = answer.body.as_str().unwrap();
        assert!(html.contains(sentence), "{path}: {html}");
    }
    let bad_time = api.get("/topics/orders/messages?time=yesterday").await;
    assert_eq!(bad_time.status, 400, "{bad_time:?}");
    for (asset, media_type) in [
        ("console.css", "text/css"),
        ("console.js", "text/javascript"),
        ("uPlot.iife.min.js", "text/javascript"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let answer = api.get(&format!("/assets/{asset}")).await;
        assert_eq!(answer.status, 200, "{asset}");
        assert!(
            answer.content_type.starts_with(media_type),
            "{asset}: {answer:?}"
        );
    }
    api.get("/assets/nope.js")
        .await
        .assert_error(404, "not_found");
    api.stop().await;
}
