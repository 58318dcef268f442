//! The broker over real sockets: error codes for bad input, restart, long-poll wake-up.

use crate::common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use weir_wire::ResponseError;

fn code(e: ResponseError) -> i16 {
    e.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_unknown_version_gets_v0_answer() {
    // Goal: a client asking ApiVersions at a version weir lacks gets UNSUPPORTED_VERSION
    // with the list, encoded as v0, and the connection stays open.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    let (_, mut frame) = c.encode(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    frame[6] = 0;
    frame[7] = 77; // version 77
    c.send_raw(&frame).await;
    let mut resp = c.read_frame().await.expect("an answer");
    let header = ResponseHeader::decode(&mut resp, 0).unwrap();
    assert_eq!(header.correlation_id, 1);
    let body =
        <ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut resp, 0).unwrap();
    assert_eq!(body.error_code, code(ResponseError::UnsupportedVersion));
    assert!(body
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Produce as i16));
    let ok: ApiVersionsResponse = c
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    assert_eq!(ok.error_code, 0);
}

use kafka_protocol::protocol::Decodable;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_the_connection_only() {
    // Goal: unknown API keys, unsupported versions, oversized and negative sizes and a
    // garbled body each close that connection; the broker keeps serving others.
    let broker = TestBroker::start(|c| c.request_bytes_max = 4096).await;

    let mut c = broker.client().await;
    c.send_raw(&[0, 0, 0, 8, 0x03, 0xe7, 0, 0, 0, 0, 0, 1])
        .await; // API key 999
    assert!(c.is_closed().await, "unknown API key");

    let mut c = broker.client().await;
    let (_, mut frame) = c.encode(ApiKey::Metadata, 12, &MetadataRequest::default());
    frame[7] = 99;
    c.send_raw(&frame).await;
    assert!(c.is_closed().await, "unsupported Metadata version");

    let mut c = broker.client().await;
    c.send_raw(&[0, 1, 0, 0]).await; // 65536 > 4096
    assert!(c.is_closed().await, "oversized frame");

    let mut c = broker.client().await;
    c.send_raw(&(-5i32).to_be_bytes()).await;
    assert!(c.is_closed().await, "negative size");

    let mut c = broker.client().await;
    let (_, frame) = c.encode(ApiKey::Metadata, 12, &MetadataRequest::default());
    let mut garbled = frame.clone();
    garbled.truncate(frame.len() - 1);
    let len = (garbled.len() - 4) as i32;
    garbled[0..4].copy_from_slice(&len.to_be_bytes());
    c.send_raw(&garbled).await;
    assert!(c.is_closed().await, "truncated body");

    // Trailing bytes after a complete body are ignored, as Kafka ignores them.
    let mut c = broker.client().await;
    let mut extra = frame.clone();
    extra.extend_from_slice(&[1, 0, 0]);
    let len = (extra.len() - 4) as i32;
    extra[0..4].copy_from_slice(&len.to_be_bytes());
    c.send_raw(&extra).await;
    assert!(c.read_frame().await.is_some(), "trailing bytes are ignored");

    let mut c = broker.client().await;
    let ok: MetadataResponse = c
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    assert_eq!(ok.brokers.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acks_0_produce_that_fails_closes_the_connection() {
    // Goal: acks=0 gets no answer; when a partition fails, the connection is closed, as
    // Kafka closes it, so the client learns; the good partition's batch is still stored.
    let broker = TestBroker::start(|c| c.auto_create_topics = false).await;
    let mut c = broker.client().await;
    assert_eq!(c.create_topic("t", 1, &[]).await, 0);
    let good = batch(&["a"], None, Compression::None, 1000);
    let request = |partitions: &[i32]| {
        ProduceRequest::default()
            .with_acks(0)
            .with_timeout_ms(5000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_data(
                    partitions
                        .iter()
                        .map(|p| {
                            produce_request::PartitionProduceData::default()
                                .with_index(*p)
                                .with_records(Some(good.clone()))
                        })
                        .collect(),
                )])
    };
    // Good: no answer, and the connection stays (the next request is answered).
    let (_, frame) = c.encode(ApiKey::Produce, 9, &request(&[0]));
    c.send_raw(&frame).await;
    assert_eq!(c.fetch("t", 0, 0, 0).await.high_watermark, 1);
    // One good, one unknown partition: closed.
    let (_, frame) = c.encode(ApiKey::Produce, 9, &request(&[0, 7]));
    c.send_raw(&frame).await;
    assert!(
        c.is_closed().await,
        "an acks=0 produce that failed leaves the connection open"
    );
    let mut again = broker.client().await;
    assert_eq!(again.fetch("t", 0, 0, 0).await.high_watermark, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_get_kafka_error_codes_and_store_nothing() {
    // Goal: bad CRC, oversized batch, bad acks, unknown topic (auto-create off) and a
    // sequence gap each get Kafka's code, and nothing bad is stored.
    let broker = TestBroker::start(|c| c.auto_create_topics = false).await;
    let mut c = broker.client().await;
    assert_eq!(
        c.create_topic("t", 1, &[("max.message.bytes", "300")])
            .await,
        0
    );

    let good = batch(&["a", "b"], None, Compression::None, 1000);
    let mut bad_crc = good.to_vec();
    let n = bad_crc.len();
    bad_crc[n - 1] ^= 0x55;
    assert_eq!(
        c.produce("t", 0, -1, Bytes::from(bad_crc)).await.error_code,
        code(ResponseError::CorruptMessage)
    );

    let big: Vec<String> = (0..40).map(|i| format!("value number {i}")).collect();
    let big_refs: Vec<&str> = big.iter().map(String::as_str).collect();
    assert_eq!(
        c.produce("t", 0, -1, batch(&big_refs, None, Compression::None, 0))
            .await
            .error_code,
        code(ResponseError::MessageTooLarge)
    );
    assert_eq!(
        c.produce("t", 0, 2, good.clone()).await.error_code,
        code(ResponseError::InvalidRequiredAcks)
    );
    // Produce v3 and later carries exactly one batch per partition; Kafka refuses two.
    let two = [good.to_vec(), good.to_vec()].concat();
    assert_eq!(
        c.produce("t", 0, -1, Bytes::from(two)).await.error_code,
        code(ResponseError::InvalidRecord)
    );
    assert_eq!(
        c.produce("missing", 0, -1, good.clone()).await.error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    assert_eq!(
        c.produce("t", 9, -1, good.clone()).await.error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );

    let meta: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default()
                .with_allow_auto_topic_creation(true)
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                )
                .with_name(Some(TopicName(StrBytes::from_static_str("missing"))))])),
        )
        .await;
    assert_eq!(
        meta.topics[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );

    // Idempotence: a retry is acknowledged with its first offset; a gap is refused.
    let b0 = batch(&["x", "y"], Some((42, 0, 0)), Compression::Lz4, 0);
    assert_eq!(c.produce("t", 0, -1, b0.clone()).await.base_offset, 0);
    let again = c.produce("t", 0, -1, b0.clone()).await;
    assert_eq!((again.error_code, again.base_offset), (0, 0));
    let gap = batch(&["z"], Some((42, 0, 5)), Compression::None, 0);
    assert_eq!(
        c.produce("t", 0, -1, gap).await.error_code,
        code(ResponseError::OutOfOrderSequenceNumber)
    );

    let data = c.fetch("t", 0, 0, 0).await;
    assert_eq!(data.high_watermark, 2);
    assert_eq!(
        values_of(data.records),
        vec![(0, "x".to_string()), (1, "y".to_string())]
    );
    assert_eq!(
        c.fetch("t", 0, 99, 0).await.error_code,
        code(ResponseError::OffsetOutOfRange)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_errors_match_kafka() {
    // Goal: each invalid creation gets Kafka's error code.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    assert_eq!(c.create_topic("ok", 2, &[]).await, 0);
    assert_eq!(
        c.create_topic("ok", 2, &[]).await,
        code(ResponseError::TopicAlreadyExists)
    );
    assert_eq!(
        c.create_topic("bad name!", 1, &[]).await,
        code(ResponseError::InvalidTopicException)
    );
    assert_eq!(
        c.create_topic("zero", 0, &[]).await,
        code(ResponseError::InvalidPartitions)
    );
    assert_eq!(
        c.create_topic("cfg", 1, &[("retention.ms", "soon")]).await,
        code(ResponseError::InvalidConfig)
    );
    assert_eq!(
        c.create_topic("cfg", 1, &[("no.such", "1")]).await,
        code(ResponseError::InvalidConfig)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_fetch_wakes_on_append() {
    // Goal: a fetch waiting with a long max_wait returns as soon as data is appended,
    // not when max_wait runs out.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    c.create_topic("w", 1, &[]).await;
    let mut fetcher = broker.client().await;
    let started = Instant::now();
    let waiting = tokio::spawn(async move { fetcher.fetch("w", 0, 0, 20_000).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "fetch should wait for data");
    c.produce("w", 0, 1, batch(&["hello"], None, Compression::None, 0))
        .await;
    let data = waiting.await.unwrap();
    assert_eq!(values_of(data.records), vec![(0, "hello".to_string())]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken by the append, not the 20 s timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_configs_and_records_survive_restart() {
    // Goal: after a clean stop and start, topics, configs and records are all there.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    c.create_topic("keep", 3, &[("retention.ms", "123456")])
        .await;
    for p in 0..3 {
        c.produce(
            "keep",
            p,
            -1,
            batch(&["a", "b", "c"], None, Compression::Zstd, 0),
        )
        .await;
    }
    drop(c);
    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, |_| {}).await;
    let mut c = broker.client().await;
    for p in 0..3 {
        let data = c.fetch("keep", p, 0, 0).await;
        assert_eq!(values_of(data.records).len(), 3);
    }
    let resp: DescribeConfigsResponse = c
        .call(
            ApiKey::DescribeConfigs,
            4,
            &DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("keep"))
                    .with_configuration_keys(Some(vec![StrBytes::from_static_str("retention.ms")])),
            ]),
        )
        .await;
    assert_eq!(
        resp.results[0].configs[0].value.as_ref().unwrap().as_str(),
        "123456"
    );
    assert_eq!(resp.results[0].configs[0].config_source, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_by_time_and_delete_records() {
    // Goal: earliest/latest/by-timestamp/max-timestamp offsets, and DeleteRecords moving
    // the log start offset.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    c.create_topic("lo", 1, &[]).await;
    c.produce(
        "lo",
        0,
        -1,
        batch(&["a", "b"], None, Compression::Gzip, 1000),
    )
    .await;
    c.produce(
        "lo",
        0,
        -1,
        batch(&["c", "d"], None, Compression::None, 5000),
    )
    .await;
    let ask = |ts: i64| {
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("lo")))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default().with_timestamp(ts),
                ])])
    };
    let mut offsets = Vec::new();
    for ts in [-2, -1, 1001, 4000, 5001, -3, 9999] {
        let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 8, &ask(ts)).await;
        offsets.push(r.topics[0].partitions[0].offset);
    }
    assert_eq!(offsets, vec![0, 4, 1, 2, 3, 3, -1]);
    // Latest tiered (-5): nothing is tiered, so no offset and no error, as Kafka answers
    // for a topic without tiered storage.
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 9, &ask(-5)).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.offset, p.timestamp), (0, -1, -1));
    let del: DeleteRecordsResponse = c
        .call(
            ApiKey::DeleteRecords,
            2,
            &DeleteRecordsRequest::default().with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("lo")))
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default().with_offset(3),
                    ]),
            ]),
        )
        .await;
    assert_eq!(del.topics[0].partitions[0].low_watermark, 3);
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 1, &ask(-2)).await;
    assert_eq!(r.topics[0].partitions[0].offset, 3);
    assert_eq!(
        c.fetch("lo", 0, 0, 0).await.error_code,
        code(ResponseError::OffsetOutOfRange)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_fetch_sessions_send_only_news() {
    // Goal: a session opened with a full fetch answers later fetches with only the
    // partitions that changed; stale epochs and unknown ids get Kafka's errors.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    c.create_topic("s", 3, &[]).await;
    for p in 0..3 {
        c.produce("s", p, 1, batch(&["a"], None, Compression::None, 0))
            .await;
    }
    let part = |p: i32, offset: i64| {
        fetch_request::FetchPartition::default()
            .with_partition(p)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(1 << 20)
    };
    let topic = |parts: Vec<fetch_request::FetchPartition>| {
        fetch_request::FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("s")))
            .with_partitions(parts)
    };
    let req = |id: i32, epoch: i32, topics: Vec<fetch_request::FetchTopic>| {
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_session_id(id)
            .with_session_epoch(epoch)
            .with_topics(topics)
    };
    let full: FetchResponse = c
        .call(
            ApiKey::Fetch,
            12,
            &req(0, 0, vec![topic(vec![part(0, 0), part(1, 0), part(2, 0)])]),
        )
        .await;
    assert_ne!(full.session_id, 0);
    assert_eq!(full.responses[0].partitions.len(), 3);
    let id = full.session_id;
    // The client moved to offset 1 everywhere; nothing new: an empty incremental answer.
    let inc: FetchResponse = c
        .call(
            ApiKey::Fetch,
            12,
            &req(id, 1, vec![topic(vec![part(0, 1), part(1, 1), part(2, 1)])]),
        )
        .await;
    assert_eq!(inc.error_code, 0);
    assert!(
        inc.responses.iter().all(|t| t.partitions.is_empty()),
        "{inc:?}"
    );
    // One partition gets data: only it comes back, although the request names none.
    c.produce("s", 2, 1, batch(&["b"], None, Compression::None, 0))
        .await;
    let inc: FetchResponse = c.call(ApiKey::Fetch, 12, &req(id, 2, vec![])).await;
    let parts: Vec<i32> = inc
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
        .collect();
    assert_eq!(parts, vec![2]);
    assert_eq!(
        values_of(inc.responses[0].partitions[0].records.clone()),
        vec![(1, "b".to_string())]
    );
    let stale: FetchResponse = c.call(ApiKey::Fetch, 12, &req(id, 2, vec![])).await;
    assert_eq!(
        stale.error_code,
        code(ResponseError::InvalidFetchSessionEpoch)
    );
    let unknown: FetchResponse = c.call(ApiKey::Fetch, 12, &req(id + 100, 1, vec![])).await;
    assert_eq!(
        unknown.error_code,
        code(ResponseError::FetchSessionIdNotFound)
    );
    // Epoch 0 with the old id (franz-go does this after a rebalance): the old session is
    // closed and a new one opened with a full answer.
    let reopened: FetchResponse = c
        .call(
            ApiKey::Fetch,
            12,
            &req(id, 0, vec![topic(vec![part(0, 1), part(2, 1)])]),
        )
        .await;
    assert_eq!(reopened.error_code, 0);
    assert_ne!(reopened.session_id, 0);
    assert_ne!(reopened.session_id, id);
    assert_eq!(reopened.responses[0].partitions.len(), 2);
    let old: FetchResponse = c.call(ApiKey::Fetch, 12, &req(id, 3, vec![])).await;
    assert_eq!(old.error_code, code(ResponseError::FetchSessionIdNotFound));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_admin_apis() {
    // Goal: CreatePartitions, IncrementalAlterConfigs (SET, DELETE, APPEND), AlterConfigs,
    // DescribeCluster and DeleteTopics behave as in Kafka, with Kafka's error codes.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    c.create_topic("adm", 2, &[("retention.ms", "1000")]).await;
    let grow = |count: i32| {
        CreatePartitionsRequest::default().with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("adm")))
                .with_count(count)
                .with_assignments(None),
        ])
    };
    // Assignments, when given, must name each added partition (Kafka's rule).
    let mut empty = grow(4);
    empty.topics[0].assignments = Some(vec![]);
    let r: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, 3, &empty).await;
    assert_eq!(
        r.results[0].error_code,
        code(ResponseError::InvalidReplicaAssignment)
    );
    let r: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, 3, &grow(4)).await;
    assert_eq!(r.results[0].error_code, 0);
    let r: CreatePartitionsResponse = c.call(ApiKey::CreatePartitions, 3, &grow(3)).await;
    assert_eq!(
        r.results[0].error_code,
        code(ResponseError::InvalidPartitions)
    );
    assert_eq!(
        c.produce("adm", 3, -1, batch(&["p3"], None, Compression::None, 0))
            .await
            .error_code,
        0
    );
    // DescribeLogDirs: one directory; the written partition has bytes, the others none.
    let dirs: DescribeLogDirsResponse = c
        .call(
            ApiKey::DescribeLogDirs,
            4,
            &DescribeLogDirsRequest::default().with_topics(Some(vec![
                describe_log_dirs_request::DescribableLogDirTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("adm")))
                    .with_partitions(vec![0, 3, 9]),
            ])),
        )
        .await;
    let sizes: Vec<(i32, bool)> = dirs.results[0].topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.partition_size > 0))
        .collect();
    assert_eq!(
        (dirs.results.len(), sizes),
        (1, vec![(0, false), (3, true)])
    );

    let op = |name: &'static str, op: i8, value: Option<&'static str>| {
        incremental_alter_configs_request::AlterableConfig::default()
            .with_name(StrBytes::from_static_str(name))
            .with_config_operation(op)
            .with_value(value.map(StrBytes::from_static_str))
    };
    let inc = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("adm"))
            .with_configs(vec![
                op("segment.bytes", 0, Some("1048576")),
                op("retention.ms", 1, None),
                op("cleanup.policy", 2, Some("compact")),
            ]),
    ]);
    let r: IncrementalAlterConfigsResponse = c.call(ApiKey::IncrementalAlterConfigs, 1, &inc).await;
    assert_eq!(r.responses[0].error_code, 0);
    let describe = |keys: Vec<&'static str>| {
        DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("adm"))
                .with_configuration_keys(Some(
                    keys.into_iter().map(StrBytes::from_static_str).collect(),
                )),
        ])
    };
    let d: DescribeConfigsResponse = c
        .call(
            ApiKey::DescribeConfigs,
            4,
            &describe(vec!["cleanup.policy", "retention.ms", "segment.bytes"]),
        )
        .await;
    let values: Vec<(String, String, i8)> = d.results[0]
        .configs
        .iter()
        .map(|e| {
            (
                e.name.to_string(),
                e.value.as_ref().unwrap().to_string(),
                e.config_source,
            )
        })
        .collect();
    assert_eq!(
        values,
        vec![
            ("cleanup.policy".into(), "delete,compact".into(), 1),
            ("retention.ms".into(), "604800000".into(), 5),
            ("segment.bytes".into(), "1048576".into(), 1),
        ]
    );
    // With synonyms, a value names where it comes from: the topic's own value, then the
    // broker setting its default comes from under Kafka's name; retention.ms's broker
    // setting has no default of its own (Kafka falls back to log.retention.hours), so none.
    let d: DescribeConfigsResponse = c
        .call(
            ApiKey::DescribeConfigs,
            4,
            &describe(vec!["cleanup.policy", "retention.ms", "segment.bytes"])
                .with_include_synonyms(true),
        )
        .await;
    let synonyms: Vec<Vec<(String, String, i8)>> = d.results[0]
        .configs
        .iter()
        .map(|e| {
            e.synonyms
                .iter()
                .map(|s| {
                    (
                        s.name.to_string(),
                        s.value.as_ref().unwrap().to_string(),
                        s.source,
                    )
                })
                .collect()
        })
        .collect();
    assert_eq!(
        synonyms,
        vec![
            vec![
                ("cleanup.policy".into(), "delete,compact".into(), 1),
                ("log.cleanup.policy".into(), "delete".into(), 5)
            ],
            vec![],
            vec![
                ("segment.bytes".into(), "1048576".into(), 1),
                ("log.segment.bytes".into(), "1073741824".into(), 5)
            ],
        ]
    );
    let bad = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("adm"))
            .with_configs(vec![op("retention.ms", 0, Some("later"))]),
    ]);
    let r: IncrementalAlterConfigsResponse = c.call(ApiKey::IncrementalAlterConfigs, 1, &bad).await;
    assert_eq!(
        r.responses[0].error_code,
        code(ResponseError::InvalidConfig)
    );
    let alter = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("adm"))
            .with_configs(vec![alter_configs_request::AlterableConfig::default()
                .with_name(StrBytes::from_static_str("max.message.bytes"))
                .with_value(Some(StrBytes::from_static_str("2000")))]),
    ]);
    let r: AlterConfigsResponse = c.call(ApiKey::AlterConfigs, 2, &alter).await;
    assert_eq!(r.responses[0].error_code, 0);
    let d: DescribeConfigsResponse = c
        .call(
            ApiKey::DescribeConfigs,
            4,
            &describe(vec!["segment.bytes", "max.message.bytes"]),
        )
        .await;
    let sources: Vec<i8> = d.results[0]
        .configs
        .iter()
        .map(|e| e.config_source)
        .collect();
    assert_eq!(sources, vec![1, 5], "AlterConfigs replaces every override");

    let cluster: DescribeClusterResponse = c
        .call(
            ApiKey::DescribeCluster,
            1,
            &DescribeClusterRequest::default().with_endpoint_type(1),
        )
        .await;
    assert_eq!((cluster.brokers.len(), cluster.controller_id.0), (1, 0));
    assert_eq!(cluster.cluster_id.len(), 22);

    let del = |name: &'static str| {
        DeleteTopicsRequest::default()
            .with_topic_names(vec![TopicName(StrBytes::from_static_str(name))])
    };
    let r: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 5, &del("adm")).await;
    assert_eq!(r.responses[0].error_code, 0);
    let r: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 5, &del("adm")).await;
    assert_eq!(
        r.responses[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    // The offsets topic exists only once groups use it or a client asks for it by name, as in
    // Kafka; then it is internal and cannot be deleted.
    let offsets = || {
        MetadataRequest::default()
            .with_allow_auto_topic_creation(true)
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(TopicName(StrBytes::from_static_str(
                "__consumer_offsets",
            ))))]))
    };
    let all: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        )
        .await;
    assert!(all.topics.iter().all(|t| t
        .name
        .as_ref()
        .is_none_or(|n| n.as_str() != "__consumer_offsets")));
    let r: DeleteTopicsResponse = c
        .call(ApiKey::DeleteTopics, 5, &del("__consumer_offsets"))
        .await;
    assert_eq!(
        r.responses[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    let m: MetadataResponse = c.call(ApiKey::Metadata, 12, &offsets()).await;
    assert_eq!(
        (
            m.topics[0].error_code,
            m.topics[0].is_internal,
            m.topics[0].partitions.len()
        ),
        (0, true, 50)
    );
    // Once it exists, a request for every topic lists it too, marked internal, as Kafka does.
    let all: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        )
        .await;
    assert!(all.topics.iter().any(|t| t.is_internal
        && t.name
            .as_ref()
            .is_some_and(|n| n.as_str() == "__consumer_offsets")));
    let r: DeleteTopicsResponse = c
        .call(ApiKey::DeleteTopics, 5, &del("__consumer_offsets"))
        .await;
    assert_eq!(
        r.responses[0].error_code,
        code(ResponseError::InvalidTopicException)
    );
    // A topic created again under the same name starts empty.
    assert_eq!(c.create_topic("adm", 1, &[]).await, 0);
    assert_eq!(c.fetch("adm", 0, 0, 0).await.high_watermark, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_settings_reach_the_coordinator() {
    // Goal: `group.max.size` and the session timeout bounds set on the broker are what the
    // coordinator enforces, over a real connection.
    let broker = TestBroker::start(|c| {
        c.group_max_size = 1;
        c.group_max_session_timeout_ms = 20_000;
        c.group_initial_rebalance_delay_ms = 0;
    })
    .await;
    let mut c = broker.client().await;
    let join = |member: &str, session_ms: i32| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_session_timeout_ms(session_ms)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(StrBytes::from_string(member.to_string()))
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(StrBytes::from_static_str("range"))])
    };
    let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, 6, &join("", 30_000)).await;
    assert_eq!(r.error_code, code(ResponseError::InvalidSessionTimeout));
    let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, 6, &join("", 10_000)).await;
    assert_eq!(r.error_code, code(ResponseError::MemberIdRequired));
    let first = r.member_id.to_string();
    let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, 6, &join(&first, 10_000)).await;
    assert_eq!((r.error_code, r.generation_id), (0, 1));
    let mut other = broker.client().await;
    let r: JoinGroupResponse = other.call(ApiKey::JoinGroup, 6, &join("", 10_000)).await;
    assert_eq!(r.error_code, code(ResponseError::GroupMaxSizeReached));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_fetches_at_every_version_keep_the_connection_usable() {
    // Goal: a Fetch answer bigger than the write buffer, whose frame may end right after its
    // records (versions before 12 have no trailing fields), arrives whole, and the same
    // connection answers the next request.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    assert_eq!(c.create_topic("big", 1, &[]).await, 0);
    let values: Vec<String> = (0..200)
        .map(|i| format!("{i:04}{}", "x".repeat(1000)))
        .collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    assert_eq!(
        c.produce("big", 0, -1, batch(&refs, None, Compression::None, 0))
            .await
            .error_code,
        0
    );
    for version in [4i16, 11, 12] {
        let topic = fetch_request::FetchTopic::default().with_partitions(vec![
            fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20),
        ]);
        let topic = topic.with_topic(TopicName(StrBytes::from_static_str("big")));
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_bytes(1 << 20)
            .with_topics(vec![topic]);
        let resp: FetchResponse = c.call(ApiKey::Fetch, version, &req).await;
        assert_eq!(
            values_of(resp.responses[0].partitions[0].records.clone()).len(),
            200,
            "version {version}"
        );
        let again: FetchResponse = c.call(ApiKey::Fetch, version, &req).await;
        assert_eq!(
            again.responses[0].partitions[0].high_watermark, 200,
            "version {version}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_runs_in_the_background_and_moves_the_log_start() {
    // Goal: the broker's retention check deletes closed segments older than retention.ms on
    // its own, and readers see the log start offset move while the high watermark stays.
    let broker = TestBroker::start(|c| c.retention_check_interval_ms = 100).await;
    let mut c = broker.client().await;
    assert_eq!(
        c.create_topic(
            "old",
            1,
            &[("retention.ms", "1000"), ("segment.bytes", "300")]
        )
        .await,
        0
    );
    // Timestamps from 1970: everything in a closed segment is past retention.
    for n in 0..20 {
        let (a, b) = (format!("a{n}"), format!("b{n}"));
        let r = c
            .produce(
                "old",
                0,
                -1,
                batch(&[&a, &b], None, Compression::None, 1000 + n),
            )
            .await;
        assert_eq!((r.error_code, r.base_offset), (0, 2 * n));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log_start = 0;
    while Instant::now() < deadline && log_start == 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let data = c.fetch("old", 0, 39, 0).await;
        assert_eq!((data.error_code, data.high_watermark), (0, 40));
        log_start = data.log_start_offset;
    }
    assert!(
        log_start > 0 && log_start < 40,
        "retention moved the log start to {log_start}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_topics_keep_the_newest_record_per_key() {
    // Goal: with `cleanup.policy=compact`, the cleaner rewrites closed segments to the newest
    // record of each key, offsets and the high watermark unchanged; a record without a key is
    // refused with INVALID_RECORD as Kafka does.
    let broker = TestBroker::start(|c| c.log_cleaner_interval_ms = 100).await;
    let mut c = broker.client().await;
    assert_eq!(
        c.create_topic(
            "c",
            1,
            &[("cleanup.policy", "compact"), ("segment.bytes", "300")]
        )
        .await,
        0
    );
    for n in 0..20 {
        let (a, b) = (format!("a{n}"), format!("b{n}"));
        let r = c
            .produce(
                "c",
                0,
                -1,
                batch(&[&a, &b], None, Compression::Gzip, 1000 + n),
            )
            .await;
        assert_eq!((r.error_code, r.base_offset), (0, 2 * n));
    }
    let keyless = weir_log::batch::encode_batch(
        &[weir_log::batch::NewRecord {
            key: None,
            value: Some(Bytes::from("v")),
            timestamp_ms: 0,
        }],
        None,
        Compression::None,
    )
    .unwrap()
    .freeze();
    // The answer names the keyless record by its index in the batch, as Kafka's does (KIP-467).
    let refused = c.produce("c", 0, -1, keyless).await;
    assert_eq!(refused.error_code, code(ResponseError::InvalidRecord));
    let named: Vec<(i32, Option<String>)> = refused
        .record_errors
        .iter()
        .map(|e| {
            (
                e.batch_index,
                e.batch_index_error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    assert_eq!(
        named,
        vec![(
            0,
            Some("Compacted topic cannot accept message without key in topic partition c-0".into())
        )]
    );
    assert!(refused
        .error_message
        .is_some_and(|m| m.starts_with("One or more records have been rejected due to 1 record")));

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut records = Vec::new();
    while Instant::now() < deadline {
        // Fetch returns one segment's worth at a time: read on to the high watermark.
        records.clear();
        let mut next = 0;
        while next < 40 {
            let data = c.fetch("c", 0, next, 0).await;
            assert_eq!((data.error_code, data.high_watermark), (0, 40));
            // A cleaned batch keeps its last offset: read on after the batch, as clients do.
            let raw = data.records.clone().unwrap_or_default();
            let (mut at, mut after) = (0usize, next);
            while at + 61 <= raw.len() {
                let h = weir_log::batch::BatchHeader::parse(&raw[at..]).unwrap();
                if at + h.size_bytes > raw.len() {
                    break;
                }
                after = after.max(h.last_offset() + 1);
                at += h.size_bytes;
            }
            assert!(
                after > next,
                "a fetch at {next} below the high watermark returned no batch"
            );
            records.extend(values_of(data.records).into_iter().filter(|r| r.0 >= next));
            next = after;
        }
        if records.len() < 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(records.len() < 10, "not compacted within 20 s: {records:?}");
    let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets rise: {offsets:?}"
    );
    assert_eq!(records.last(), Some(&(39, "b19".to_string())));
    assert!(records.contains(&(38, "a19".to_string())));
    // A fetch at an offset compacted away starts at the next record kept.
    let data = c.fetch("c", 0, 1, 0).await;
    assert_eq!(data.error_code, 0);
    assert!(values_of(data.records).iter().all(|r| r.0 >= 1));
}

/// Commits `offset` for partition 0 of topic "t" as a simple consumer of `group`.
async fn commit(c: &mut Client, group: &str, offset: i64) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset),
                ]),
        ]);
    let resp: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &req).await;
    resp.topics[0].partitions[0].error_code
}

async fn committed(c: &mut Client, group: &str) -> i64 {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_topics(None);
    let resp: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 7, &req).await;
    resp.topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.committed_offset)
        .next()
        .unwrap_or(-1)
}

/// Cuts the last batch off every non-empty `__consumer_offsets` segment: what a power loss
/// does to writes that reached the page cache but not the disk.
fn lose_last_batch_of_offsets_topic(data: &std::path::Path) -> usize {
    let mut cut = 0;
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("__consumer_offsets-")
        {
            continue;
        }
        for seg in std::fs::read_dir(&path).unwrap() {
            let seg = seg.unwrap().path();
            if seg.extension().is_none_or(|e| e != "log") {
                continue;
            }
            let bytes = std::fs::read(&seg).unwrap();
            let (mut at, mut last) = (0usize, None);
            while at + 61 <= bytes.len() {
                last = Some(at);
                at += weir_log::batch::BatchHeader::parse(&bytes[at..])
                    .unwrap()
                    .size_bytes;
            }
            if let Some(last) = last {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&seg)
                    .unwrap()
                    .set_len(last as u64)
                    .unwrap();
                cut += 1;
            }
        }
    }
    cut
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commits_survive_the_loss_of_unsynced_offsets_topic_data() {
    // Goal: under --fsync always a commit is durable through the offsets journal even when
    // its `__consumer_offsets` copy is lost (simulated by cutting the partition's last batch
    // after a stop); without the journal the same loss takes the newest commit back.
    for keep_journal in [true, false] {
        let broker = TestBroker::start(|c| c.offsets_topic_partitions = 1).await;
        let mut c = broker.client().await;
        assert_eq!(c.create_topic("t", 1, &[]).await, 0);
        // As in Kafka, offsets of a topic that does not exist are refused.
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("jg")))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("missing")))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_committed_offset(1),
                    ]),
            ]);
        let resp: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &req).await;
        assert_eq!(
            resp.topics[0].partitions[0].error_code,
            code(ResponseError::UnknownTopicOrPartition)
        );
        // ...and so are partitions a topic does not have, next to one it has.
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("other")))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(1),
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(5)
                            .with_committed_offset(1),
                    ]),
            ]);
        let resp: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &req).await;
        let mut codes: Vec<(i32, i16)> = resp
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
            })
            .collect();
        codes.sort();
        assert_eq!(
            (resp.topics.len(), codes),
            (
                1,
                vec![(0, 0), (5, code(ResponseError::UnknownTopicOrPartition))]
            )
        );
        for offset in [10, 20, 30] {
            assert_eq!(commit(&mut c, "jg", offset).await, 0);
        }
        assert_eq!(committed(&mut c, "jg").await, 30);
        drop(c);
        let dir = broker.stop().await;
        assert_eq!(lose_last_batch_of_offsets_topic(dir.path()), 1);
        if !keep_journal {
            std::fs::remove_file(dir.path().join("meta").join("offsets-journal")).unwrap();
        }
        let broker = TestBroker::start_in(dir, |c| c.offsets_topic_partitions = 1).await;
        let mut c = broker.client().await;
        let expected = if keep_journal { 30 } else { 20 };
        assert_eq!(
            committed(&mut c, "jg").await,
            expected,
            "journal kept: {keep_journal}"
        );
        // The restored data is in the partition now: a second restart needs no journal.
        drop(c);
        let dir = broker.stop().await;
        let _ = std::fs::remove_file(dir.path().join("meta").join("offsets-journal"));
        let broker = TestBroker::start_in(dir, |c| c.offsets_topic_partitions = 1).await;
        let mut c = broker.client().await;
        assert_eq!(committed(&mut c, "jg").await, expected);
    }
}
