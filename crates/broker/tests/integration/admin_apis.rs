//! The admin APIs one node answers without doing anything, over real sockets:
//! OffsetForLeaderEpoch, DescribeTopicPartitions with its paging, ElectLeaders, and
//! AlterPartitionReassignments / ListPartitionReassignments, each with Kafka 4.4's answers
//! (tests/compat/admin_apis.py checks the same against Apache Kafka itself).

use crate::common;

use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use weir_wire::ResponseError;

fn code(e: ResponseError) -> i16 {
    e.code()
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// One OffsetForLeaderEpoch question: (topic, partition, current leader epoch, epoch).
async fn end_offset(
    c: &mut Client,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    leader_epoch: i32,
) -> (i16, i32, i64) {
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_partition(partition)
                        .with_current_leader_epoch(current_leader_epoch)
                        .with_leader_epoch(leader_epoch),
                ]),
        ]);
    let resp: OffsetForLeaderEpochResponse = c.call(ApiKey::OffsetForLeaderEpoch, 4, &req).await;
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_for_leader_epoch_answers_from_one_epoch() {
    // Goal: epoch 0 ends at the log end offset, a newer epoch is unknown, an older one ends
    // at the log start offset; the asker's current epoch is checked first.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    c.create_topic("ep", 1, &[]).await;
    let empty = end_offset(&mut c, "ep", 0, -1, 0).await;
    assert_eq!(empty, (0, 0, 0), "an empty log's epoch 0 ends at 0");
    c.produce(
        "ep",
        0,
        -1,
        batch(&["a", "b", "c"], None, Compression::None, 1000),
    )
    .await;
    assert_eq!(end_offset(&mut c, "ep", 0, 0, 0).await, (0, 0, 3));
    assert_eq!(end_offset(&mut c, "ep", 0, -1, 0).await, (0, 0, 3));
    assert_eq!(
        end_offset(&mut c, "ep", 0, -1, 4).await,
        (0, -1, -1),
        "newer epoch"
    );
    assert_eq!(
        end_offset(&mut c, "ep", 0, -1, -1).await,
        (0, -1, -1),
        "undefined epoch"
    );
    assert_eq!(
        end_offset(&mut c, "ep", 0, -1, -5).await,
        (0, -5, 0),
        "older epoch"
    );
    assert_eq!(
        end_offset(&mut c, "ep", 0, 3, 0).await,
        (code(ResponseError::UnknownLeaderEpoch), -1, -1)
    );
    assert_eq!(
        end_offset(&mut c, "ep", 0, -2, 0).await,
        (code(ResponseError::FencedLeaderEpoch), -1, -1)
    );
    assert_eq!(
        end_offset(&mut c, "ep", 1, -1, 0).await,
        (code(ResponseError::UnknownTopicOrPartition), -1, -1)
    );
    assert_eq!(
        end_offset(&mut c, "nope", 0, -1, 0).await,
        (code(ResponseError::UnknownTopicOrPartition), -1, -1)
    );
}

async fn describe_page(
    c: &mut Client,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsResponse {
    let req = DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    describe_topic_partitions_request::TopicRequest::default().with_name(name(t))
                })
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, p)| {
            describe_topic_partitions_request::Cursor::default()
                .with_topic_name(name(t))
                .with_partition_index(p)
        }));
    c.call(ApiKey::DescribeTopicPartitions, 0, &req).await
}

/// A page as (topic, error code, partition indexes) per topic, and its next cursor.
type Page = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

/// A page's topics and next cursor, for comparing with what Kafka would answer.
fn page_of(r: &DescribeTopicPartitionsResponse) -> Page {
    let topics = r
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                t.error_code,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let cursor = r
        .next_cursor
        .as_ref()
        .map(|c| (c.topic_name.0.to_string(), c.partition_index));
    (topics, cursor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_topic_partitions_pages_as_kafka() {
    // Goal: topics in name order, a page of at most the limit's partitions, the cursor at
    // the first partition left out (or at the next topic when a page ends with one), and
    // unknown topics answered only when named.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    c.create_topic("dt-b", 1, &[]).await;
    c.create_topic("dt-a", 3, &[]).await;

    let r = describe_page(&mut c, &["dt-b", "dt-a", "dt-none"], 2000, None).await;
    let t = &r.topics[0];
    let p = &t.partitions[0];
    assert_eq!((p.leader_id, p.leader_epoch), (BrokerId(0), 0));
    assert_eq!(
        (p.replica_nodes.clone(), p.isr_nodes.clone()),
        (vec![BrokerId(0)], vec![BrokerId(0)])
    );
    assert_eq!(p.eligible_leader_replicas, Some(vec![]));
    assert_eq!(p.last_known_elr, Some(vec![]));
    assert!(p.offline_replicas.is_empty());
    assert_eq!(
        t.topic_authorized_operations, 3576,
        "every topic operation, as with no authorizer"
    );
    let unknown = code(ResponseError::UnknownTopicOrPartition);
    assert_eq!(
        page_of(&r),
        (
            vec![
                ("dt-a".into(), 0, vec![0, 1, 2]),
                ("dt-b".into(), 0, vec![0]),
                ("dt-none".into(), unknown, vec![])
            ],
            None
        )
    );

    // Two partitions a page: dt-a 0,1 | dt-a 2, dt-b 0 | then the cursor-less end.
    let r = describe_page(&mut c, &["dt-a", "dt-b"], 2, None).await;
    assert_eq!(
        page_of(&r),
        (
            vec![("dt-a".into(), 0, vec![0, 1])],
            Some(("dt-a".into(), 2))
        )
    );
    let r = describe_page(&mut c, &["dt-a", "dt-b"], 2, Some(("dt-a", 2))).await;
    assert_eq!(
        page_of(&r),
        (
            vec![("dt-a".into(), 0, vec![2]), ("dt-b".into(), 0, vec![0])],
            None
        )
    );
    // A page that ends with a topic points at the next topic's first partition.
    let r = describe_page(&mut c, &["dt-a", "dt-b"], 3, None).await;
    assert_eq!(
        page_of(&r),
        (
            vec![("dt-a".into(), 0, vec![0, 1, 2])],
            Some(("dt-b".into(), 0))
        )
    );
    // Every topic (an empty list): only those that exist, from the cursor on.
    let r = describe_page(&mut c, &[], 2000, Some(("dt-b", 0))).await;
    assert_eq!(page_of(&r), (vec![("dt-b".into(), 0, vec![0])], None));
    // The cursor's topic must be one of those named.
    let r = describe_page(&mut c, &["dt-b"], 2000, Some(("dt-a", 0))).await;
    assert_eq!(r.topics[0].error_code, code(ResponseError::InvalidRequest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elections_and_reassignments_are_never_needed() {
    // Goal: ElectLeaders says ELECTION_NOT_NEEDED for a partition and lists none for every
    // partition; a reassignment to this node alone succeeds, to any other broker is
    // INVALID_REPLICA_ASSIGNMENT, a cancellation NO_REASSIGNMENT_IN_PROGRESS; none is listed.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    c.create_topic("el", 2, &[]).await;

    let elect = |topics: Option<Vec<(&str, Vec<i32>)>>| {
        ElectLeadersRequest::default()
            .with_election_type(0)
            .with_timeout_ms(5000)
            .with_topic_partitions(topics.map(|ts| {
                ts.into_iter()
                    .map(|(t, ps)| {
                        elect_leaders_request::TopicPartitions::default()
                            .with_topic(name(t))
                            .with_partitions(ps)
                    })
                    .collect()
            }))
    };
    let r: ElectLeadersResponse = c
        .call(
            ApiKey::ElectLeaders,
            2,
            &elect(Some(vec![("el", vec![0, 7]), ("nope", vec![0])])),
        )
        .await;
    let codes: Vec<(String, i32, i16)> = r
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result
                .iter()
                .map(move |p| (t.topic.0.to_string(), p.partition_id, p.error_code))
        })
        .collect();
    let unknown = code(ResponseError::UnknownTopicOrPartition);
    assert_eq!(
        codes,
        vec![
            ("el".into(), 0, code(ResponseError::ElectionNotNeeded)),
            ("el".into(), 7, unknown),
            ("nope".into(), 0, unknown)
        ]
    );
    let r: ElectLeadersResponse = c.call(ApiKey::ElectLeaders, 2, &elect(None)).await;
    assert_eq!(r.error_code, 0);
    assert!(r
        .replica_election_results
        .iter()
        .all(|t| t.partition_result.is_empty()));

    let reassign = |replicas: Option<Vec<i32>>| {
        AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(5000)
            .with_allow_replication_factor_change(true)
            .with_topics(vec![
                alter_partition_reassignments_request::ReassignableTopic::default()
                    .with_name(name("el"))
                    .with_partitions(vec![
                        alter_partition_reassignments_request::ReassignablePartition::default()
                            .with_partition_index(0)
                            .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect())),
                    ]),
            ])
    };
    for (replicas, want) in [
        (Some(vec![0]), 0),
        (Some(vec![7]), code(ResponseError::InvalidReplicaAssignment)),
        (
            Some(vec![0, 0]),
            code(ResponseError::InvalidReplicaAssignment),
        ),
        (Some(vec![]), code(ResponseError::InvalidReplicaAssignment)),
        (None, code(ResponseError::NoReassignmentInProgress)),
    ] {
        let r: AlterPartitionReassignmentsResponse = c
            .call(
                ApiKey::AlterPartitionReassignments,
                1,
                &reassign(replicas.clone()),
            )
            .await;
        assert_eq!(r.error_code, 0);
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, want, "reassign to {replicas:?}");
        assert_eq!(p.error_message.is_none(), want == 0);
    }
    let r: ListPartitionReassignmentsResponse = c
        .call(
            ApiKey::ListPartitionReassignments,
            0,
            &ListPartitionReassignmentsRequest::default().with_timeout_ms(5000),
        )
        .await;
    assert_eq!((r.error_code, r.topics.len()), (0, 0));
}
