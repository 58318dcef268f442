//! `GET /metrics` against a running broker fed through the Kafka protocol, and the JSON 404
//! for any other path.

use crate::common;
use crate::scrape;

use kafka_protocol::records::Compression;
use scrape::{get, sample_sum, start};

/// Records produced over Kafka show up as the partition's high watermark, and each Produce
/// request moves the request counter by one.
#[tokio::test]
async fn scrape_reflects_produced_records_and_requests() {
    let (broker, http) = start().await;
    let before = get(http, "/metrics").await;
    assert_eq!(before.status, 200);
    assert_eq!(
        before.content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(before.body.ends_with("# EOF\n"), "{}", before.body);
    let produce_before = sample_sum(&before.body, "weir_requests_total", &["api=\"Produce\""]);

    let mut client = broker.client().await;
    assert_eq!(client.create_topic("orders", 2, &[]).await, 0);
    let sizes = [4usize, 3, 5];
    for (i, n) in sizes.iter().enumerate() {
        let values: Vec<String> = (0..*n).map(|j| format!("order-{i}-{j}")).collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let resp = client
            .produce(
                "orders",
                1,
                -1,
                common::batch(&values, None, Compression::None, 1_000),
            )
            .await;
        assert_eq!(resp.error_code, 0);
    }
    let records: usize = sizes.iter().sum();

    let after = get(http, "/metrics").await;
    assert_eq!(after.status, 200);
    let text = &after.body;
    let hw = |p: &str| {
        sample_sum(
            text,
            "weir_partition_high_watermark",
            &["topic=\"orders\"", &format!("partition=\"{p}\"")],
        )
    };
    assert_eq!(hw("1"), records as f64, "{text}");
    assert_eq!(hw("0"), 0.0, "{text}");
    assert!(
        text.contains("weir_partition_high_watermark{topic=\"orders\",partition=\"0\"} 0"),
        "an empty partition is still reported: {text}"
    );
    let lso = &["topic=\"orders\"", "partition=\"1\""];
    assert_eq!(
        sample_sum(text, "weir_partition_last_stable_offset", lso),
        records as f64
    );
    assert_eq!(
        sample_sum(text, "weir_partition_log_start_offset", lso),
        0.0
    );
    assert_eq!(sample_sum(text, "weir_partition_segments", lso), 1.0);
    assert!(sample_sum(text, "weir_partition_size_bytes", lso) > 0.0);
    assert_eq!(sample_sum(text, "weir_partitions_unreported", &[]), 0.0);

    let produce_after = sample_sum(text, "weir_requests_total", &["api=\"Produce\""]);
    assert_eq!(produce_after - produce_before, sizes.len() as f64, "{text}");
    assert_eq!(
        sample_sum(
            text,
            "weir_requests_total",
            &["api=\"Produce\"", "version=\"9\""]
        ),
        produce_after
    );
    assert!(sample_sum(text, "weir_requests_total", &["api=\"CreateTopics\""]) >= 1.0);
    assert_eq!(
        sample_sum(
            text,
            "weir_request_duration_seconds_count",
            &["api=\"Produce\""]
        ),
        produce_after
    );
    assert!(sample_sum(text, "weir_connections_open", &[]) >= 1.0);
    assert!(sample_sum(text, "weir_bytes_received_total", &[]) > 0.0);
    assert!(sample_sum(text, "weir_bytes_sent_total", &[]) > 0.0);

    // A closed connection is counted once the broker notices it.
    drop(client);
    let mut closed = 0.0;
    for _ in 0..100 {
        let text = get(http, "/metrics").await.body;
        closed = sample_sum(&text, "weir_connections_closed_total", &[]);
        if closed >= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(closed >= 1.0);
    broker.stop().await;
}

/// A path nothing serves is a 404 with a JSON error a program can branch on.
#[tokio::test]
async fn unknown_path_is_json_not_found() {
    let (broker, http) = start().await;
    let resp = get(http, "/no/such/page").await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.content_type, "application/json");
    let body: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
    assert_eq!(body["code"], "not_found");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("/no/such/page"), "{message}");
    assert_eq!(body.as_object().unwrap().len(), 2);
    broker.stop().await;
}

/// A group's committed offset is reported with its lag behind the high watermark, and the
/// lag follows records produced after the commit.
#[tokio::test]
async fn scrape_reports_group_committed_offset_and_lag() {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;

    let (broker, http) = start().await;
    let mut client = broker.client().await;
    assert_eq!(client.create_topic("events", 1, &[]).await, 0);
    let values: Vec<String> = (0..8).map(|i| format!("e{i}")).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let resp = client
        .produce(
            "events",
            0,
            -1,
            common::batch(&values, None, Compression::None, 1_000),
        )
        .await;
    assert_eq!(resp.error_code, 0);
    // Committed as a consumer that assigns itself partitions (no generation).
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("billing")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("events")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(5),
                ]),
        ]);
    let resp: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, 8, &req).await;
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);

    let labels = &["group=\"billing\"", "topic=\"events\"", "partition=\"0\""];
    let text = get(http, "/metrics").await.body;
    assert_eq!(
        sample_sum(&text, "weir_group_committed_offset", labels),
        5.0,
        "{text}"
    );
    assert_eq!(sample_sum(&text, "weir_group_lag", labels), 3.0, "{text}");
    assert!(text.contains("weir_group_lag{group=\"billing\",topic=\"events\",partition=\"0\"} 3"));
    assert_eq!(sample_sum(&text, "weir_groups_unreported", &[]), 0.0);

    let resp = client
        .produce(
            "events",
            0,
            -1,
            common::batch(&["e8", "e9"], None, Compression::None, 2_000),
        )
        .await;
    assert_eq!(resp.error_code, 0);
    let text = get(http, "/metrics").await.body;
    assert_eq!(
        sample_sum(&text, "weir_group_committed_offset", labels),
        5.0
    );
    assert_eq!(sample_sum(&text, "weir_group_lag", labels), 5.0, "{text}");
    broker.stop().await;
}
