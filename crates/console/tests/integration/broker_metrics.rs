//! The broker's own metrics in `GET /metrics`: error codes by API, connections closed by
//! reason, fsync latency, parked fetches, start-up and per-partition traffic, each driven
//! through the Kafka protocol and read back from a scrape.

use crate::common;
use crate::scrape;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use scrape::{sample_sum, scrape, start, start_with};

/// Scrapes until `done` holds for the text (the broker notices some events a moment after
/// the client acts), and returns that text; fails after about two seconds.
async fn scrape_until(http: SocketAddr, what: &str, done: impl Fn(&str) -> bool) -> String {
    for _ in 0..100 {
        let text = scrape(http).await;
        if done(&text) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not seen in /metrics:\n{}", scrape(http).await);
}

fn closed(text: &str, reason: &str) -> f64 {
    sample_sum(
        text,
        "weir_connections_closed_total",
        &[&format!("reason=\"{reason}\"")],
    )
}

fn errors(text: &str, api: &str, code: &str) -> f64 {
    sample_sum(
        text,
        "weir_request_errors_total",
        &[&format!("api=\"{api}\""), &format!("code=\"{code}\"")],
    )
}

fn unix_now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Each error code a response carries is counted once under its API and Kafka's error name:
/// one per partition for Produce, one per topic for Metadata; a response without errors
/// counts nothing.
#[tokio::test]
async fn error_codes_are_counted_by_api_and_name() {
    let (broker, http) = start().await;
    let mut client = broker.client().await;
    assert_eq!(client.create_topic("known", 1, &[]).await, 0);
    let before = scrape(http).await;
    assert_eq!(
        sample_sum(&before, "weir_request_errors_total", &["api=\"Produce\""]),
        0.0
    );

    let ok = client
        .produce(
            "known",
            0,
            -1,
            common::batch(&["a"], None, Compression::None, 1),
        )
        .await;
    assert_eq!(ok.error_code, 0);
    let missing = client
        .produce(
            "missing",
            0,
            -1,
            common::batch(&["a"], None, Compression::None, 1),
        )
        .await;
    assert_eq!(missing.error_code, 3);
    let topic = |name: &'static str| {
        metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(name))))
    };
    let request = MetadataRequest::default()
        .with_topics(Some(vec![topic("nope-1"), topic("nope-2"), topic("known")]))
        .with_allow_auto_topic_creation(false);
    let metadata: MetadataResponse = client.call(ApiKey::Metadata, 12, &request).await;
    let codes: Vec<i16> = metadata.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, vec![3, 3, 0]);

    let text = scrape(http).await;
    assert_eq!(
        errors(&text, "Produce", "UNKNOWN_TOPIC_OR_PARTITION"),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample_sum(&text, "weir_request_errors_total", &["api=\"Produce\""]),
        1.0
    );
    assert_eq!(errors(&text, "Metadata", "UNKNOWN_TOPIC_OR_PARTITION"), 2.0);
    assert!(!text.contains("code=\"NONE\""), "{text}");
    broker.stop().await;
}

/// A client that hangs up, a frame over the size limit, an undecodable request and a
/// connection still open at shutdown each count under their own reason.
#[tokio::test]
async fn closed_connections_are_counted_by_reason() {
    let (broker, http) = start_with(|c| c.request_bytes_max = 1024).await;
    let text = scrape(http).await;
    for reason in [
        "client_closed",
        "bad_request",
        "broker_closed",
        "io_error",
        "shutdown",
    ] {
        assert!(
            text.contains(&format!(
                "weir_connections_closed_total{{reason=\"{reason}\"}} 0"
            )),
            "{reason} present at 0 from the start: {text}"
        );
    }

    // 1. The client closes.
    let client = broker.client().await;
    drop(client);
    scrape_until(http, "client_closed", |t| closed(t, "client_closed") == 1.0).await;

    // 2. A size prefix above request_bytes_max.
    let mut client = broker.client().await;
    client.send_raw(&4096i32.to_be_bytes()).await;
    assert!(client.is_closed().await);
    scrape_until(http, "oversize frame", |t| closed(t, "bad_request") == 1.0).await;

    // 3. A request with an API key no one defined.
    let mut client = broker.client().await;
    let mut frame = 10i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
    client.send_raw(&frame).await;
    assert!(client.is_closed().await);
    let text = scrape_until(http, "undecodable", |t| closed(t, "bad_request") == 2.0).await;
    assert_eq!(closed(&text, "client_closed"), 1.0, "{text}");
    assert_eq!(closed(&text, "shutdown"), 0.0);

    // 4. Open at shutdown; the console outlives the broker here, so it can still be asked.
    let _open = broker.client().await;
    scrape_until(http, "connection open", |t| {
        sample_sum(t, "weir_connections_open", &[]) == 1.0
    })
    .await;
    broker.stop().await;
    let text = scrape_until(http, "shutdown", |t| closed(t, "shutdown") == 1.0).await;
    assert_eq!(sample_sum(&text, "weir_connections_open", &[]), 0.0);
    assert_eq!(closed(&text, "io_error"), 0.0, "{text}");
}

/// Under `--fsync always` an acks=all produce waits on an fsync, and that wait is observed.
#[tokio::test]
async fn fsyncs_the_broker_waits_on_are_timed() {
    let (broker, http) = start_with(|c| c.fsync = weir_log::FsyncPolicy::Always).await;
    let mut client = broker.client().await;
    assert_eq!(client.create_topic("durable", 1, &[]).await, 0);
    let before = sample_sum(
        &scrape(http).await,
        "weir_log_fsync_duration_seconds_count",
        &[],
    );
    for i in 0..3 {
        let resp = client
            .produce(
                "durable",
                0,
                -1,
                common::batch(&["x"], None, Compression::None, i),
            )
            .await;
        assert_eq!(resp.error_code, 0);
    }
    let text = scrape(http).await;
    let count = sample_sum(&text, "weir_log_fsync_duration_seconds_count", &[]);
    assert!(count >= before + 3.0, "{before} -> {count}: {text}");
    assert!(sample_sum(&text, "weir_log_fsync_duration_seconds_sum", &[]) > 0.0);
    assert_eq!(
        sample_sum(
            &text,
            "weir_log_fsync_duration_seconds_bucket",
            &["le=\"+Inf\""]
        ),
        count
    );
    broker.stop().await;
}

/// The fsync a log makes as its segment rolls is observed too: with `--fsync never` the
/// broker itself waits on none, so every observation here is a roll.
#[tokio::test]
async fn fsyncs_of_rolling_segments_are_timed() {
    let (broker, http) = start_with(|c| c.fsync = weir_log::FsyncPolicy::Never).await;
    let mut client = broker.client().await;
    assert_eq!(
        client
            .create_topic("rolling", 1, &[("segment.bytes", "100")])
            .await,
        0
    );
    let count = |text: &str| sample_sum(text, "weir_log_fsync_duration_seconds_count", &[]);
    let before = count(&scrape(http).await);
    for i in 0..4 {
        let values = ["a value long enough to fill a hundred-byte segment by itself, or nearly"];
        let batch = common::batch(&values, None, Compression::None, i);
        assert!(batch.len() > 100);
        let resp = client.produce("rolling", 0, 1, batch).await;
        assert_eq!(resp.error_code, 0);
    }
    let text = scrape(http).await;
    let segments = sample_sum(&text, "weir_partition_segments", &["topic=\"rolling\""]);
    assert_eq!(segments, 4.0, "{text}");
    assert_eq!(count(&text) - before, 3.0, "one fsync per roll: {text}");
    broker.stop().await;
}

/// A Fetch that finds nothing waits, counted as parked; a produce releases it and it leaves
/// the gauge. What it then carries is counted as the partition's bytes out.
#[tokio::test]
async fn a_waiting_fetch_is_parked_until_data_arrives() {
    let (broker, http) = start().await;
    let mut producer = broker.client().await;
    assert_eq!(producer.create_topic("quiet", 1, &[]).await, 0);
    assert_eq!(
        sample_sum(&scrape(http).await, "weir_fetches_parked", &[]),
        0.0
    );

    let mut consumer = broker.client().await;
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(30_000)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("quiet")))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let (_, frame) = consumer.encode(ApiKey::Fetch, 12, &request);
    consumer.send_raw(&frame).await;
    scrape_until(http, "parked fetch", |t| {
        sample_sum(t, "weir_fetches_parked", &[]) == 1.0
    })
    .await;

    let batch = common::batch(&["wake", "up"], None, Compression::None, 5);
    let resp = producer.produce("quiet", 0, -1, batch.clone()).await;
    assert_eq!(resp.error_code, 0);
    let answer = tokio::time::timeout(Duration::from_secs(10), consumer.read_frame())
        .await
        .expect("the fetch is answered once data arrives")
        .expect("a frame");
    assert!(answer.len() > batch.len());
    let text = scrape_until(http, "fetch released", |t| {
        sample_sum(t, "weir_fetches_parked", &[]) == 0.0
    })
    .await;
    let labels = &["topic=\"quiet\"", "partition=\"0\""];
    assert_eq!(
        sample_sum(&text, "weir_partition_bytes_out_total", labels),
        batch.len() as f64,
        "{text}"
    );
    broker.stop().await;
}

/// Records and bytes produced, and bytes fetched, are counted per partition, exactly, and
/// only on the partition they went to.
#[tokio::test]
async fn partition_traffic_is_counted_per_partition() {
    let (broker, http) = start().await;
    let mut client = broker.client().await;
    assert_eq!(client.create_topic("traffic", 2, &[]).await, 0);
    let mut bytes_in = 0usize;
    for (i, n) in [4usize, 3, 5].iter().enumerate() {
        let values: Vec<String> = (0..*n).map(|j| format!("value-{i}-{j}")).collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let batch = common::batch(&values, None, Compression::None, 1_000);
        bytes_in += batch.len();
        assert_eq!(client.produce("traffic", 1, -1, batch).await.error_code, 0);
    }
    let p1 = &["topic=\"traffic\"", "partition=\"1\""];
    let p0 = &["topic=\"traffic\"", "partition=\"0\""];
    let text = scrape(http).await;
    assert_eq!(
        sample_sum(&text, "weir_partition_records_in_total", p1),
        12.0,
        "{text}"
    );
    assert_eq!(
        sample_sum(&text, "weir_partition_bytes_in_total", p1),
        bytes_in as f64
    );
    assert_eq!(sample_sum(&text, "weir_partition_bytes_out_total", p1), 0.0);
    assert_eq!(
        sample_sum(&text, "weir_partition_records_in_total", p0),
        0.0
    );
    assert!(
        text.contains("weir_partition_records_in_total{topic=\"traffic\",partition=\"0\"} 0"),
        "an idle partition is still reported: {text}"
    );

    // Read it all twice: each response's bytes count.
    for _ in 0..2 {
        let data = client.fetch("traffic", 1, 0, 0).await;
        assert_eq!(data.records.as_ref().map_or(0, |r| r.len()), bytes_in);
    }
    let text = scrape(http).await;
    assert_eq!(
        sample_sum(&text, "weir_partition_bytes_out_total", p1),
        2.0 * bytes_in as f64
    );
    assert_eq!(sample_sum(&text, "weir_partition_bytes_out_total", p0), 0.0);
    broker.stop().await;
}

/// The start time is when the broker started, and the recovery time is measured, not zero.
#[tokio::test]
async fn start_time_and_recovery_are_reported() {
    let before = unix_now_seconds();
    let (broker, http) = start().await;
    let after = unix_now_seconds();
    let text = scrape(http).await;
    let started = sample_sum(&text, "weir_start_time_seconds", &[]);
    assert!(
        before - 1.0 <= started && started <= after + 1.0,
        "{before} <= {started} <= {after}"
    );
    let recovery = sample_sum(&text, "weir_startup_recovery_seconds", &[]);
    assert!(recovery > 0.0, "{text}");
    assert!(recovery <= after - before + 1.0, "{recovery}");
    broker.stop().await;
}

/// An open transaction holds the last stable offset at its first record while the high
/// watermark moves past it.
#[tokio::test]
async fn an_open_transaction_holds_the_last_stable_offset() {
    let (broker, http) = start().await;
    let mut client = broker.client().await;
    assert_eq!(client.create_topic("ledger", 1, &[]).await, 0);
    let plain = common::batch(&["a", "b"], None, Compression::None, 1);
    assert_eq!(client.produce("ledger", 0, -1, plain).await.error_code, 0);

    let tid = TransactionalId(StrBytes::from_static_str("lso-txn"));
    let init: InitProducerIdResponse = client
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(tid.clone()))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert_eq!(init.error_code, 0);
    let records: Vec<weir_log::batch::NewRecord> = (0..3)
        .map(|i| weir_log::batch::NewRecord {
            key: None,
            value: Some(bytes::Bytes::from(format!("t{i}"))),
            timestamp_ms: 10 + i,
        })
        .collect();
    let batch = weir_log::batch::encode_transactional_batch(
        &records,
        (init.producer_id.0, init.producer_epoch, 0),
        Compression::None,
    )
    .unwrap()
    .freeze();
    // Produce v12 adds the partition to the transaction itself (transactions V2).
    let request = ProduceRequest::default()
        .with_transactional_id(Some(tid))
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("ledger")))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch)),
            ])]);
    let resp: ProduceResponse = client.call(ApiKey::Produce, 12, &request).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);

    let labels = &["topic=\"ledger\"", "partition=\"0\""];
    let text = scrape(http).await;
    assert_eq!(
        sample_sum(&text, "weir_partition_high_watermark", labels),
        5.0
    );
    assert_eq!(
        sample_sum(&text, "weir_partition_last_stable_offset", labels),
        2.0,
        "{text}"
    );
    assert_eq!(
        sample_sum(&text, "weir_partition_records_in_total", labels),
        5.0
    );
    broker.stop().await;
}
