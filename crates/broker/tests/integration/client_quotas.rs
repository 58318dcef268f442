//! DescribeClientQuotas and AlterClientQuotas over real sockets, quotas kept across a
//! restart, and requests throttled by them: Produce and Fetch bytes, any request's handler
//! time (`request_percentage`), `throttle_time_ms` in the response and the connection muted
//! for that long; topic changes charged to `controller_mutation_rate`, refused with
//! THROTTLING_QUOTA_EXCEEDED from the versions Kafka refuses them; and connections over an
//! address's `connection_creation_rate` closed unserved.

use crate::common;

use std::time::{Duration, Instant};

use common::{batch, TestBroker};
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

const INVALID_REQUEST: i16 = 42;
const THROTTLING_QUOTA_EXCEEDED: i16 = 89;
/// The client id the test client sends.
const CLIENT_ID: &str = "weir-test";

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn entity(parts: &[(&str, Option<&str>)]) -> Vec<EntityData> {
    parts
        .iter()
        .map(|(t, n)| {
            EntityData::default()
                .with_entity_type(s(t))
                .with_entity_name(n.map(s))
        })
        .collect()
}

fn set(parts: &[(&str, Option<&str>)], key: &str, value: f64) -> EntryData {
    EntryData::default()
        .with_entity(entity(parts))
        .with_ops(vec![OpData::default().with_key(s(key)).with_value(value)])
}

async fn alter(
    c: &mut common::Client,
    entries: Vec<EntryData>,
    validate_only: bool,
) -> AlterClientQuotasResponse {
    c.call(
        ApiKey::AlterClientQuotas,
        1,
        &AlterClientQuotasRequest::default()
            .with_entries(entries)
            .with_validate_only(validate_only),
    )
    .await
}

/// Every entity with its quotas, as (parts, [(key, value)]), sorted.
async fn describe_all(
    c: &mut common::Client,
) -> Vec<(Vec<(String, Option<String>)>, Vec<(String, f64)>)> {
    let r: DescribeClientQuotasResponse = c
        .call(
            ApiKey::DescribeClientQuotas,
            1,
            &DescribeClientQuotasRequest::default().with_strict(false),
        )
        .await;
    assert_eq!(r.error_code, 0);
    let mut out: Vec<_> = r
        .entries
        .unwrap()
        .into_iter()
        .map(|e| {
            let mut parts: Vec<_> = e
                .entity
                .iter()
                .map(|p| {
                    (
                        p.entity_type.to_string(),
                        p.entity_name.as_ref().map(|n| n.to_string()),
                    )
                })
                .collect();
            parts.sort();
            let mut values: Vec<_> = e
                .values
                .iter()
                .map(|v| (v.key.to_string(), v.value))
                .collect();
            values.sort_by(|a, b| a.0.cmp(&b.0));
            (parts, values)
        })
        .collect();
    out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    out
}

#[tokio::test]
async fn quotas_are_altered_described_refused_and_kept_across_a_restart() {
    // Goal: Kafka's answers for a good and a bad alteration, validate_only changing
    // nothing, a filter's error, and the quotas read back after a restart.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    let r = alter(
        &mut c,
        vec![set(
            &[("user", Some("alice"))],
            "producer_byte_rate",
            1024.0,
        )],
        true,
    )
    .await;
    assert_eq!(r.entries[0].error_code, 0);
    assert!(
        describe_all(&mut c).await.is_empty(),
        "validate_only changes nothing"
    );

    let r = alter(
        &mut c,
        vec![
            set(&[("user", Some("alice"))], "producer_byte_rate", 1024.0),
            set(&[("client-id", None)], "consumer_byte_rate", 2048.0),
            set(&[("client-id", Some("c"))], "producer_byte_rate", -1.0),
        ],
        false,
    )
    .await;
    let codes: Vec<i16> = r.entries.iter().map(|e| e.error_code).collect();
    assert_eq!(codes, vec![0, 0, INVALID_REQUEST]);
    assert_eq!(
        r.entries[2].error_message.as_deref(),
        Some("Quota producer_byte_rate must be greater than 0")
    );
    let described = describe_all(&mut c).await;
    assert_eq!(described.len(), 2);

    let bad: DescribeClientQuotasResponse = c
        .call(
            ApiKey::DescribeClientQuotas,
            0,
            &DescribeClientQuotasRequest::default().with_components(vec![ComponentData::default()
                .with_entity_type(s("user"))
                .with_match_type(0)
                .with_match(None)]),
        )
        .await;
    assert_eq!(bad.error_code, INVALID_REQUEST);
    assert!(bad.entries.is_none());

    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, |_| {}).await;
    let mut c = broker.client().await;
    assert_eq!(
        describe_all(&mut c).await,
        described,
        "kept across a restart"
    );
}

#[tokio::test]
async fn a_produce_over_its_quota_is_told_to_wait_and_its_connection_waits() {
    // Goal: a produce past producer_byte_rate gets Kafka's throttle time, and the
    // connection's next request is not started before it has passed.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    assert_eq!(c.create_topic("q", 1, &[]).await, 0);
    // A quota of 1000 B/s: the first 10 s window holds 10,000 bytes.
    let r = alter(
        &mut c,
        vec![set(
            &[("client-id", Some(CLIENT_ID))],
            "producer_byte_rate",
            1000.0,
        )],
        false,
    )
    .await;
    assert_eq!(r.entries[0].error_code, 0);
    let value = "x".repeat(11_000);
    let records = batch(&[value.as_str()], None, Compression::None, 0);
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(s("q")))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records)),
            ])]);
    let resp: ProduceResponse = c.call(ApiKey::Produce, 9, &req).await;
    assert_eq!(
        resp.responses[0].partition_responses[0].error_code, 0,
        "appended all the same"
    );
    // A bit over 11,000 bytes over 10 s against 1000 B/s: over 1 s of throttle.
    let throttle_ms = resp.throttle_time_ms;
    assert!(
        (1_000..3_000).contains(&throttle_ms),
        "throttle {throttle_ms} ms"
    );
    let started = Instant::now();
    let _: ApiVersionsResponse = c
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(throttle_ms as u64 - 100),
        "the next request waited {waited:?} of {throttle_ms} ms"
    );
    // Another connection of the same client id shares the rate: still over it.
    let mut other = broker.client().await;
    let resp: ProduceResponse = other.call(ApiKey::Produce, 9, &req).await;
    assert!(resp.throttle_time_ms > throttle_ms);
}

#[tokio::test]
async fn a_fetch_over_its_quota_carries_a_throttle_time() {
    // Goal: fetched bytes count against consumer_byte_rate; a client without a quota is
    // never throttled.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    assert_eq!(c.create_topic("f", 1, &[]).await, 0);
    let value = "y".repeat(20_000);
    c.produce(
        "f",
        0,
        1,
        batch(&[value.as_str()], None, Compression::None, 0),
    )
    .await;
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(s("f")))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch).await;
    assert_eq!(resp.throttle_time_ms, 0, "no quota, no throttle");
    let r = alter(
        &mut c,
        vec![set(&[("user", None)], "consumer_byte_rate", 1000.0)],
        false,
    )
    .await;
    assert_eq!(r.entries[0].error_code, 0);
    // The user entity is the principal's name: ANONYMOUS here, under /users/<default>.
    let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch).await;
    assert!(resp.responses[0].partitions[0]
        .records
        .as_ref()
        .is_some_and(|r| !r.is_empty()));
    assert!(
        resp.throttle_time_ms > 5_000,
        "throttle {} ms",
        resp.throttle_time_ms
    );
}

#[tokio::test]
async fn quotas_need_describe_configs_and_alter_configs_on_the_cluster() {
    // Goal: with the authorizer on and no ACL, both APIs are refused as Kafka refuses them
    // (CLUSTER_AUTHORIZATION_FAILED, each entity named back) and nothing changes; a super
    // user may do both.
    const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    let broker = TestBroker::start(|_| {}).await;
    broker.state.set_authorizer_enabled(true);
    let mut c = broker.client().await;
    let r = alter(
        &mut c,
        vec![set(
            &[("user", Some("alice"))],
            "producer_byte_rate",
            1024.0,
        )],
        false,
    )
    .await;
    assert_eq!(r.entries.len(), 1);
    assert_eq!(r.entries[0].error_code, CLUSTER_AUTHORIZATION_FAILED);
    assert_eq!(r.entries[0].entity[0].entity_name.as_deref(), Some("alice"));
    let d: DescribeClientQuotasResponse = c
        .call(
            ApiKey::DescribeClientQuotas,
            1,
            &DescribeClientQuotasRequest::default(),
        )
        .await;
    assert_eq!(d.error_code, CLUSTER_AUTHORIZATION_FAILED);
    assert!(d.entries.is_none());

    broker
        .state
        .set_super_users(vec!["User:ANONYMOUS".to_string()]);
    let r = alter(
        &mut c,
        vec![set(
            &[("user", Some("alice"))],
            "producer_byte_rate",
            1024.0,
        )],
        false,
    )
    .await;
    assert_eq!(r.entries[0].error_code, 0);
    assert_eq!(describe_all(&mut c).await.len(), 1);
}

#[tokio::test]
async fn requests_over_the_request_percentage_are_throttled_and_waited() {
    // Goal: handler time counts against request_percentage: a client sending Metadata in a
    // loop under a tiny quota soon gets a throttle time, at most one window (1 s) as Kafka
    // bounds it, and its next request waits it out; without the quota, none.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    assert_eq!(c.create_topic("m", 4, &[]).await, 0);
    let metadata = MetadataRequest::default().with_topics(None);
    for _ in 0..50 {
        let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &metadata).await;
        assert_eq!(r.throttle_time_ms, 0, "no quota, no throttle");
    }
    let r = alter(
        &mut c,
        vec![set(
            &[("client-id", Some(CLIENT_ID))],
            "request_percentage",
            0.01,
        )],
        false,
    )
    .await;
    assert_eq!(r.entries[0].error_code, 0);
    // 0.01 % of a thread over the 10 s window is 1 ms of handler time.
    let mut throttle_ms = 0;
    for _ in 0..5_000 {
        let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &metadata).await;
        if r.throttle_time_ms > 0 {
            throttle_ms = r.throttle_time_ms;
            break;
        }
    }
    assert!(
        (1..=1_000).contains(&throttle_ms),
        "throttle {throttle_ms} ms"
    );
    let started = Instant::now();
    let _: MetadataResponse = c.call(ApiKey::Metadata, 12, &metadata).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis((throttle_ms as u64).saturating_sub(100)),
        "the next request waited {waited:?} of {throttle_ms} ms"
    );
}

fn create_topics(names: &[(&str, i32)]) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_timeout_ms(5_000)
        .with_topics(
            names
                .iter()
                .map(|(name, partitions)| {
                    create_topics_request::CreatableTopic::default()
                        .with_name(TopicName(s(name)))
                        .with_num_partitions(*partitions)
                        .with_replication_factor(1)
                })
                .collect(),
        )
}

#[tokio::test]
async fn topic_mutations_over_the_controller_mutation_rate_are_refused_or_throttled() {
    // Goal: KIP-599 with a quota of 2 partitions/s (a burst of 22): the topic that
    // overdraws the bucket is created, the next one in debt is refused with
    // THROTTLING_QUOTA_EXCEEDED at CreateTopics v6+ and DeleteTopics v5+, and only
    // throttled at older versions; the response carries the throttle time.
    let broker = TestBroker::start(|_| {}).await;
    let mut admin = broker.client().await;
    assert_eq!(admin.create_topic("doomed", 3, &[]).await, 0);
    let r = alter(
        &mut admin,
        vec![set(
            &[("client-id", Some(CLIENT_ID))],
            "controller_mutation_rate",
            2.0,
        )],
        false,
    )
    .await;
    assert_eq!(r.entries[0].error_code, 0);

    // 1. Strict: 30 partitions fit the full bucket (22 -> -8); the next topic does not.
    let mut c = broker.client().await;
    let r: CreateTopicsResponse = c
        .call(
            ApiKey::CreateTopics,
            7,
            &create_topics(&[("big", 30), ("next", 1)]),
        )
        .await;
    let codes: Vec<_> = r
        .topics
        .iter()
        .map(|t| (t.name.0.to_string(), t.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("big".to_string(), 0),
            ("next".to_string(), THROTTLING_QUOTA_EXCEEDED)
        ]
    );
    // -8 tokens at 2/s: 4 s.
    assert!(
        (3_500..=4_000).contains(&r.throttle_time_ms),
        "throttle {} ms",
        r.throttle_time_ms
    );

    // 2. Strict DeleteTopics (v6) is refused while in debt; the topic stays.
    let mut d = broker.client().await;
    let r: DeleteTopicsResponse = d
        .call(
            ApiKey::DeleteTopics,
            6,
            &DeleteTopicsRequest::default()
                .with_timeout_ms(5_000)
                .with_topics(vec![delete_topics_request::DeleteTopicState::default()
                    .with_name(Some(TopicName(s("doomed"))))]),
        )
        .await;
    assert_eq!(r.responses[0].error_code, THROTTLING_QUOTA_EXCEEDED);
    assert!(
        r.throttle_time_ms > 3_000,
        "throttle {}",
        r.throttle_time_ms
    );

    // 3. Permissive CreateTopics (v5): created all the same, and throttled.
    let mut p = broker.client().await;
    let r: CreateTopicsResponse = p
        .call(ApiKey::CreateTopics, 5, &create_topics(&[("old", 2)]))
        .await;
    assert_eq!(r.topics[0].error_code, 0);
    assert!(
        r.throttle_time_ms > 3_000,
        "throttle {}",
        r.throttle_time_ms
    );

    // 4. Exactly the accepted changes were made.
    let meta: MetadataResponse = admin
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        )
        .await;
    let mut names: Vec<_> = meta
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    names.sort();
    assert_eq!(names, vec!["big", "doomed", "old"]);
}

#[tokio::test]
async fn connections_over_the_connection_creation_rate_are_closed_unserved() {
    // Goal: KIP-612: with connection_creation_rate 2 for every address, the first ten
    // seconds' worth of connections are served, the next is held unanswered and closed
    // within one quota window (1 s); a second later connections are served again.
    let broker = TestBroker::start(|_| {}).await;
    let mut admin = broker.client().await;
    let r = alter(
        &mut admin,
        vec![set(&[("ip", None)], "connection_creation_rate", 2.0)],
        false,
    )
    .await;
    assert_eq!(r.entries[0].error_code, 0);
    let mut served = 0;
    let mut refused_after = None;
    for _ in 0..30 {
        let mut c = broker.client().await;
        let (_, frame) = c.encode(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        c.send_raw(&frame).await;
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(5), c.read_frame())
            .await
            .expect("closed or answered within 5 s");
        match answer {
            Some(_) => served += 1,
            None => {
                refused_after = Some(started.elapsed());
                break;
            }
        }
    }
    // 2 per second over the 10 s a new rate counts: 20, a little more as time passes.
    assert!((20..=22).contains(&served), "served {served}");
    let refused_after = refused_after.expect("a connection past the quota was closed");
    assert!(
        refused_after <= Duration::from_millis(1_500),
        "closed after {refused_after:?}"
    );
    // One more second of the window allows more.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let mut c = broker.client().await;
    let (_, frame) = c.encode(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    c.send_raw(&frame).await;
    assert!(c.read_frame().await.is_some(), "served again");
}
