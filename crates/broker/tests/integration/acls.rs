//! CreateAcls, DescribeAcls and DeleteAcls over real sockets: Kafka's answers, its error
//! codes for refused creations, ACLs kept across a restart, and the authorizer reading them.

use crate::common;

use common::TestBroker;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use weir_broker::security::principal::Principal;
use weir_meta::acls::{Operation, ResourceType};

const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const ANY: i8 = 1;
const MATCH: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const ALLOW: i8 = 3;
const DENY: i8 = 2;
const INVALID_REQUEST: i16 = 42;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn creation(rt: i8, name: &str, pt: i8, principal: &str, op: i8, perm: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(rt)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pt)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(op)
        .with_permission_type(perm)
}

fn describe_filter(rt: i8, name: Option<&str>, pt: i8) -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(rt)
        .with_resource_name_filter(name.map(s))
        .with_pattern_type_filter(pt)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(ANY)
}

fn delete_filter(rt: i8, name: Option<&str>, pt: i8, principal: Option<&str>) -> DeleteAclsFilter {
    DeleteAclsFilter::default()
        .with_resource_type_filter(rt)
        .with_resource_name_filter(name.map(s))
        .with_pattern_type_filter(pt)
        .with_principal_filter(principal.map(s))
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(ANY)
}

/// (resource type, name, pattern type, [(principal, operation, permission)]) per resource.
type Described = Vec<(i8, String, i8, Vec<(String, i8, i8)>)>;

fn described(r: &DescribeAclsResponse) -> Described {
    r.resources
        .iter()
        .map(|res| {
            (
                res.resource_type,
                res.resource_name.to_string(),
                res.pattern_type,
                res.acls
                    .iter()
                    .map(|a| (a.principal.to_string(), a.operation, a.permission_type))
                    .collect(),
            )
        })
        .collect()
}

fn topic_acl(
    name: &str,
    pt: i8,
    principal: &str,
    op: i8,
    perm: i8,
) -> (i8, String, i8, Vec<(String, i8, i8)>) {
    (
        TOPIC,
        name.to_string(),
        pt,
        vec![(principal.to_string(), op, perm)],
    )
}

#[tokio::test]
async fn acls_are_created_described_deleted_and_kept_across_a_restart() {
    // Goal: the three APIs answer as Kafka does for literal, prefixed and MATCH filters,
    // creations are idempotent, and the ACLs survive a restart.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    for version in [1, 3] {
        let r: CreateAclsResponse = c
            .call(
                ApiKey::CreateAcls,
                version,
                &CreateAclsRequest::default().with_creations(vec![
                    creation(TOPIC, "orders", LITERAL, "User:alice", READ, ALLOW),
                    creation(TOPIC, "ord", PREFIXED, "User:bob", WRITE, ALLOW),
                    creation(TOPIC, "*", LITERAL, "User:carol", READ, DENY),
                    creation(GROUP, "billing", LITERAL, "User:alice", READ, ALLOW),
                ]),
            )
            .await;
        assert_eq!(r.results.len(), 4);
        for res in &r.results {
            assert_eq!(res.error_code, 0, "{res:?}");
            assert_eq!(
                res.error_message.as_deref(),
                Some(""),
                "Kafka's empty message"
            );
        }
    }

    // Everything, grouped by resource pattern; the repeated creation left one copy.
    let all: DescribeAclsResponse = c
        .call(ApiKey::DescribeAcls, 3, &describe_filter(ANY, None, ANY))
        .await;
    assert_eq!(all.error_code, 0);
    assert_eq!(
        described(&all),
        vec![
            topic_acl("*", LITERAL, "User:carol", READ, DENY),
            topic_acl("ord", PREFIXED, "User:bob", WRITE, ALLOW),
            topic_acl("orders", LITERAL, "User:alice", READ, ALLOW),
            (
                GROUP,
                "billing".to_string(),
                LITERAL,
                vec![("User:alice".to_string(), READ, ALLOW)]
            ),
        ]
    );
    // A literal filter names one pattern; a prefixed one another; MATCH finds all three
    // topic patterns that apply to "orders".
    let literal: DescribeAclsResponse = c
        .call(
            ApiKey::DescribeAcls,
            2,
            &describe_filter(TOPIC, Some("orders"), LITERAL),
        )
        .await;
    assert_eq!(
        described(&literal),
        vec![topic_acl("orders", LITERAL, "User:alice", READ, ALLOW)]
    );
    let prefixed: DescribeAclsResponse = c
        .call(
            ApiKey::DescribeAcls,
            1,
            &describe_filter(TOPIC, None, PREFIXED),
        )
        .await;
    assert_eq!(
        described(&prefixed),
        vec![topic_acl("ord", PREFIXED, "User:bob", WRITE, ALLOW)]
    );
    let matched: DescribeAclsResponse = c
        .call(
            ApiKey::DescribeAcls,
            3,
            &describe_filter(TOPIC, Some("orders"), MATCH),
        )
        .await;
    assert_eq!(described(&matched).len(), 3);
    let none: DescribeAclsResponse = c
        .call(
            ApiKey::DescribeAcls,
            3,
            &describe_filter(TOPIC, Some("payments"), LITERAL),
        )
        .await;
    assert!(none.resources.is_empty());

    // The authorizer reads them once it is on.
    let state = &broker.state;
    let local = "127.0.0.1".parse().unwrap();
    let alice = Principal::user("alice");
    assert!(state.authorize(&alice, local, Operation::Write, ResourceType::Topic, "x"));
    state.set_authorizer_enabled(true);
    assert!(state.authorize(
        &alice,
        local,
        Operation::Read,
        ResourceType::Topic,
        "orders"
    ));
    assert!(state.authorize(
        &alice,
        local,
        Operation::Describe,
        ResourceType::Topic,
        "orders"
    ));
    assert!(!state.authorize(
        &alice,
        local,
        Operation::Write,
        ResourceType::Topic,
        "orders"
    ));
    assert!(state.authorize(
        &Principal::user("bob"),
        local,
        Operation::Write,
        ResourceType::Topic,
        "orders-eu"
    ));
    assert!(!state.authorize(
        &Principal::user("carol"),
        local,
        Operation::Read,
        ResourceType::Topic,
        "orders"
    ));
    state.set_super_users(vec!["User:carol".to_string()]);
    assert!(state.authorize(
        &Principal::user("carol"),
        local,
        Operation::Read,
        ResourceType::Topic,
        "orders"
    ));
    state.set_authorizer_enabled(false);

    // Restart: the same ACLs come back.
    drop(c);
    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, |_| {}).await;
    let mut c = broker.client().await;
    let again: DescribeAclsResponse = c
        .call(ApiKey::DescribeAcls, 3, &describe_filter(ANY, None, ANY))
        .await;
    assert_eq!(described(&again), described(&all));

    // Delete: each filter lists what it matched; one matching nothing lists nothing.
    let r: DeleteAclsResponse = c
        .call(
            ApiKey::DeleteAcls,
            3,
            &DeleteAclsRequest::default().with_filters(vec![
                delete_filter(TOPIC, Some("orders"), MATCH, Some("User:alice")),
                delete_filter(ANY, None, PREFIXED, None),
                delete_filter(TOPIC, Some("nothing"), LITERAL, None),
            ]),
        )
        .await;
    assert_eq!(r.filter_results.len(), 3);
    let first = &r.filter_results[0];
    assert_eq!((first.error_code, first.error_message.as_ref()), (0, None));
    assert_eq!(first.matching_acls.len(), 1);
    let m = &first.matching_acls[0];
    assert_eq!(
        (
            m.error_code,
            m.resource_type,
            m.resource_name.as_str(),
            m.pattern_type
        ),
        (0, TOPIC, "orders", LITERAL)
    );
    assert_eq!(
        (
            m.principal.as_str(),
            m.host.as_str(),
            m.operation,
            m.permission_type
        ),
        ("User:alice", "*", READ, ALLOW)
    );
    assert_eq!(r.filter_results[1].matching_acls.len(), 1);
    assert_eq!(
        r.filter_results[1].matching_acls[0].resource_name.as_str(),
        "ord"
    );
    assert!(r.filter_results[2].matching_acls.is_empty());
    let left: DescribeAclsResponse = c
        .call(ApiKey::DescribeAcls, 3, &describe_filter(ANY, None, ANY))
        .await;
    assert_eq!(
        described(&left),
        vec![
            topic_acl("*", LITERAL, "User:carol", READ, DENY),
            (
                GROUP,
                "billing".to_string(),
                LITERAL,
                vec![("User:alice".to_string(), READ, ALLOW)]
            ),
        ]
    );
    // Deletions are persisted too.
    drop(c);
    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, |_| {}).await;
    let mut c = broker.client().await;
    let after: DescribeAclsResponse = c
        .call(ApiKey::DescribeAcls, 3, &describe_filter(ANY, None, ANY))
        .await;
    assert_eq!(described(&after), described(&left));
}

#[tokio::test]
async fn invalid_creations_get_kafkas_error_codes_and_messages() {
    // Goal: each refused creation gets INVALID_REQUEST with Kafka's sentence, while the
    // valid ones beside it are created.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    let mut bad_host = creation(TOPIC, "t", LITERAL, "User:a", READ, ALLOW);
    bad_host.host = s("");
    let mut bad_cidr = creation(TOPIC, "t", LITERAL, "User:a", READ, ALLOW);
    bad_cidr.host = s("10.0.0.0/40");
    let r: CreateAclsResponse = c
        .call(
            ApiKey::CreateAcls,
            3,
            &CreateAclsRequest::default().with_creations(vec![
                creation(CLUSTER, "other", LITERAL, "User:a", READ, ALLOW),
                creation(TOPIC, "", LITERAL, "User:a", READ, ALLOW),
                creation(TOPIC, "t", LITERAL, "alice", READ, ALLOW),
                bad_host,
                bad_cidr,
                creation(TOPIC, "ok", LITERAL, "User:*", READ, ALLOW),
                creation(CLUSTER, "kafka-cluster", LITERAL, "User:a", 7, ALLOW),
            ]),
        )
        .await;
    let got: Vec<(i16, Option<String>)> = r
        .results
        .iter()
        .map(|x| {
            (
                x.error_code,
                x.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    let invalid = |m: &str| (INVALID_REQUEST, Some(m.to_string()));
    assert_eq!(
        got[0],
        invalid("The only valid name for the CLUSTER resource is kafka-cluster")
    );
    assert_eq!(got[1], invalid("Invalid empty resource name"));
    assert_eq!(got[2], invalid("Could not parse principal from `alice` (no colon is present separating the principal type from the principal name)"));
    assert_eq!(got[3], invalid("Host pattern cannot be null or empty"));
    assert_eq!(got[4].0, INVALID_REQUEST);
    assert_eq!(
        got[4].1.as_deref(),
        Some("Invalid CIDR notation '10.0.0.0/40': Value [40] not in range [0,32]")
    );
    assert_eq!(got[5], (0, Some(String::new())));
    assert_eq!(got[6], (0, Some(String::new())));
    let all: DescribeAclsResponse = c
        .call(ApiKey::DescribeAcls, 3, &describe_filter(ANY, None, ANY))
        .await;
    assert_eq!(all.resources.len(), 2);

    // A filter-only code (ANY, MATCH) in one creation fails them all, as in Kafka.
    for bad in [
        creation(ANY, "t2", LITERAL, "User:a", READ, ALLOW),
        creation(TOPIC, "t2", ANY, "User:a", READ, ALLOW),
        creation(TOPIC, "t2", MATCH, "User:a", READ, ALLOW),
        creation(TOPIC, "t2", LITERAL, "User:a", ANY, ALLOW),
        creation(TOPIC, "t2", LITERAL, "User:a", READ, ANY),
    ] {
        let r: CreateAclsResponse = c
            .call(
                ApiKey::CreateAcls,
                3,
                &CreateAclsRequest::default().with_creations(vec![
                    creation(TOPIC, "t3", LITERAL, "User:a", READ, ALLOW),
                    bad,
                ]),
            )
            .await;
        for res in &r.results {
            assert_eq!((res.error_code, res.error_message.as_ref()), (-1, None));
        }
        assert_eq!(r.results.len(), 2);
    }
    let all: DescribeAclsResponse = c
        .call(ApiKey::DescribeAcls, 3, &describe_filter(ANY, None, ANY))
        .await;
    assert_eq!(all.resources.len(), 2, "nothing more was created");
}

#[tokio::test]
async fn a_code_kafka_does_not_know_closes_the_connection() {
    // Goal: UNKNOWN (0) or a code past the last value makes the request unreadable, as in
    // Kafka: the connection is closed without an answer.
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    let (_, frame) = c.encode(
        ApiKey::CreateAcls,
        3,
        &CreateAclsRequest::default()
            .with_creations(vec![creation(TOPIC, "t", LITERAL, "User:a", 16, ALLOW)]),
    );
    c.send_raw(&frame).await;
    assert!(c.is_closed().await);
    let mut c = broker.client().await;
    let (_, frame) = c.encode(ApiKey::DescribeAcls, 3, &describe_filter(0, None, ANY));
    c.send_raw(&frame).await;
    assert!(c.is_closed().await);
    let mut c = broker.client().await;
    let (_, frame) = c.encode(
        ApiKey::DeleteAcls,
        3,
        &DeleteAclsRequest::default().with_filters(vec![delete_filter(ANY, None, 0, None)]),
    );
    c.send_raw(&frame).await;
    assert!(c.is_closed().await);
}

#[tokio::test]
async fn requests_are_checked_once_the_authorizer_is_on() {
    // Goal: with the authorizer on, a principal (here User:ANONYMOUS on PLAINTEXT) is
    // refused with Kafka's codes until the ACL it needs exists, and a DENY wins; the ACL
    // APIs themselves need ALTER on the cluster.
    const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    let broker = TestBroker::start(|_| {}).await;
    let mut c = broker.client().await;
    let metadata = |topic: &str| {
        MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s(topic)))),
        ]))
    };
    let created: CreateTopicsResponse = c
        .call(
            ApiKey::CreateTopics,
            7,
            &CreateTopicsRequest::default().with_topics(vec![
                create_topics_request::CreatableTopic::default()
                    .with_name(TopicName(s("orders")))
                    .with_num_partitions(1)
                    .with_replication_factor(1),
            ]),
        )
        .await;
    assert_eq!(created.topics[0].error_code, 0);
    broker.state.set_authorizer_enabled(true);

    let refused: MetadataResponse = c.call(ApiKey::Metadata, 12, &metadata("orders")).await;
    assert_eq!(refused.topics[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    // Whether it exists or not.
    let missing: MetadataResponse = c.call(ApiKey::Metadata, 12, &metadata("nothing")).await;
    assert_eq!(missing.topics[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    // The every-topic form leaves it out.
    let all: MetadataResponse = c
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        )
        .await;
    assert!(all.topics.is_empty(), "{:?}", all.topics);
    let acl: CreateAclsResponse = c
        .call(
            ApiKey::CreateAcls,
            3,
            &CreateAclsRequest::default().with_creations(vec![creation(
                TOPIC,
                "orders",
                LITERAL,
                "User:ANONYMOUS",
                READ,
                ALLOW,
            )]),
        )
        .await;
    assert_eq!(acl.results[0].error_code, CLUSTER_AUTHORIZATION_FAILED);

    // As a super user would: create the ACL; READ implies DESCRIBE.
    broker
        .state
        .set_super_users(vec!["User:ANONYMOUS".to_string()]);
    let acl: CreateAclsResponse = c
        .call(
            ApiKey::CreateAcls,
            3,
            &CreateAclsRequest::default().with_creations(vec![creation(
                TOPIC,
                "ord",
                PREFIXED,
                "User:ANONYMOUS",
                READ,
                ALLOW,
            )]),
        )
        .await;
    assert_eq!(acl.results[0].error_code, 0);
    broker.state.set_super_users(Vec::new());
    let allowed: MetadataResponse = c.call(ApiKey::Metadata, 12, &metadata("orders")).await;
    assert_eq!(allowed.topics[0].error_code, 0);
    assert_eq!(allowed.topics[0].partitions.len(), 1);

    // A DENY wins over the ALLOW.
    broker
        .state
        .set_super_users(vec!["User:ANONYMOUS".to_string()]);
    let _: CreateAclsResponse = c
        .call(
            ApiKey::CreateAcls,
            3,
            &CreateAclsRequest::default().with_creations(vec![creation(
                TOPIC, "orders", LITERAL, "User:*", READ, DENY,
            )]),
        )
        .await;
    broker.state.set_super_users(Vec::new());
    let denied: MetadataResponse = c.call(ApiKey::Metadata, 12, &metadata("orders")).await;
    // A DENY of READ leaves DESCRIBE, which READ's ALLOW implied, standing.
    assert_eq!(denied.topics[0].error_code, 0);
    let list: ListOffsetsResponse = c
        .call(
            ApiKey::ListOffsets,
            7,
            &ListOffsetsRequest::default().with_topics(vec![
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(TopicName(s("orders")))
                    .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1)]),
            ]),
        )
        .await;
    assert_eq!(list.topics[0].partitions[0].error_code, 0);
    let fetch: FetchResponse = c
        .call(
            ApiKey::Fetch,
            12,
            &FetchRequest::default()
                .with_max_wait_ms(0)
                .with_session_epoch(-1)
                .with_topics(vec![fetch_request::FetchTopic::default()
                    .with_topic(TopicName(s("orders")))
                    .with_partitions(vec![fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1024)])]),
        )
        .await;
    assert_eq!(
        fetch.responses[0].partitions[0].error_code,
        TOPIC_AUTHORIZATION_FAILED
    );
}
