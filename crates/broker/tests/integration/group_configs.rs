//! Group configs (resource type 32) over real sockets: DescribeConfigs, IncrementalAlterConfigs,
//! AlterConfigs and ListConfigResources with Kafka 4.4's answers, a consumer-protocol member
//! told its group's heartbeat interval, and the configs kept across a restart.

use crate::common;

use common::TestBroker;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use weir_broker::BrokerConfig;

const GROUP: i8 = 32;

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// The limits the compatibility harness starts both brokers with.
fn limits(c: &mut BrokerConfig) {
    c.group_consumer_session_timeout_ms = 6_000;
    c.group_consumer_session_timeout_bounds_ms = (6_000, 60_000);
    c.group_consumer_heartbeat_interval_ms = 500;
    c.group_consumer_heartbeat_interval_bounds_ms = (500, 15_000);
    c.group_initial_rebalance_delay_ms = 0;
}

fn op(
    name: &str,
    op: i8,
    value: Option<&str>,
) -> incremental_alter_configs_request::AlterableConfig {
    incremental_alter_configs_request::AlterableConfig::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_config_operation(op)
        .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
}

async fn incremental(
    c: &mut common::Client,
    group: &str,
    ops: Vec<incremental_alter_configs_request::AlterableConfig>,
) -> (i16, Option<String>) {
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(GROUP)
            .with_resource_name(StrBytes::from_string(group.to_string()))
            .with_configs(ops),
    ]);
    let r: IncrementalAlterConfigsResponse = c.call(ApiKey::IncrementalAlterConfigs, 1, &req).await;
    let r = &r.responses[0];
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// (name, value, source, synonyms as (name, value, source)) of each group config.
async fn describe(
    c: &mut common::Client,
    group: &str,
) -> (i16, Vec<(String, String, i8, Vec<(String, String, i8)>)>) {
    let req = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(GROUP)
                .with_resource_name(StrBytes::from_string(group.to_string()))
                .with_configuration_keys(None),
        ]);
    let r: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &req).await;
    let res = &r.results[0];
    let configs = res
        .configs
        .iter()
        .map(|e| {
            (
                e.name.to_string(),
                e.value.as_ref().unwrap().to_string(),
                e.config_source,
                e.synonyms
                    .iter()
                    .map(|s| {
                        (
                            s.name.to_string(),
                            s.value.as_ref().unwrap().to_string(),
                            s.source,
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    (res.error_code, configs)
}

fn entry(
    name: &str,
    value: &str,
    source: i8,
    synonyms: &[(&str, &str, i8)],
) -> (String, String, i8, Vec<(String, String, i8)>) {
    (
        name.into(),
        value.into(),
        source,
        synonyms
            .iter()
            .map(|(n, v, s)| (n.to_string(), v.to_string(), *s))
            .collect(),
    )
}

/// A consumer-protocol member joining group `group` on topic "t": (error, heartbeat interval).
async fn join(c: &mut common::Client, group: &str, member: &str) -> (i16, i32) {
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(StrBytes::from_string(group.to_string()).into())
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![StrBytes::from_static_str("t").into()]))
        .with_topic_partitions(Some(Vec::new()));
    let r: ConsumerGroupHeartbeatResponse = c.call(ApiKey::ConsumerGroupHeartbeat, 1, &req).await;
    (r.error_code, r.heartbeat_interval_ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_configs_are_checked_described_and_applied_as_kafka_does() {
    // Goal: every answer below is what a Kafka 4.4 broker with the same limits gives
    // (checked against one): defaults described from the broker's settings, overrides
    // checked against its bounds with Kafka's codes and messages, a member told its group's
    // heartbeat interval, and the overrides kept across a restart.
    let broker = TestBroker::start(limits).await;
    let mut c = broker.client().await;
    assert_eq!(c.create_topic("t", 2, &[]).await, 0);

    // 1. A group with no configs (existing or not) has the broker's.
    let (err, configs) = describe(&mut c, "billing").await;
    assert_eq!(err, 0);
    assert_eq!(
        configs,
        vec![
            entry(
                "consumer.heartbeat.interval.ms",
                "500",
                4,
                &[
                    ("group.consumer.heartbeat.interval.ms", "500", 4),
                    ("group.consumer.heartbeat.interval.ms", "5000", 5)
                ]
            ),
            entry(
                "consumer.session.timeout.ms",
                "6000",
                4,
                &[
                    ("group.consumer.session.timeout.ms", "6000", 4),
                    ("group.consumer.session.timeout.ms", "45000", 5)
                ]
            ),
        ]
    );
    assert_eq!(
        describe(&mut c, "").await.0,
        code(ResponseError::InvalidRequest)
    );

    // 2. Refusals, each with Kafka's code and sentence; none changes anything.
    let refusals: Vec<(Vec<_>, ResponseError, &str)> = vec![
        (
            vec![op("consumer.session.timeout.ms", 0, Some("1000"))],
            ResponseError::InvalidConfig,
            "consumer.session.timeout.ms must be in the range 6000 to 60000 inclusive.",
        ),
        (
            vec![op("consumer.heartbeat.interval.ms", 0, Some("20000"))],
            ResponseError::InvalidConfig,
            "consumer.heartbeat.interval.ms must be in the range 500 to 15000 inclusive.",
        ),
        (
            vec![op("consumer.heartbeat.interval.ms", 0, Some("6000"))],
            ResponseError::InvalidConfig,
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms",
        ),
        (
            vec![op("consumer.session.timeout.ms", 0, Some("abc"))],
            ResponseError::InvalidConfig,
            "Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT",
        ),
        (
            vec![op("consumer.foo", 0, Some("1"))],
            ResponseError::InvalidConfig,
            "Unknown group config name: consumer.foo",
        ),
        (
            vec![op("consumer.session.timeout.ms", 0, None)],
            ResponseError::InvalidRequest,
            "Null value not supported for : consumer.session.timeout.ms",
        ),
        (
            vec![op("consumer.session.timeout.ms", 2, Some("7000"))],
            ResponseError::InvalidConfig,
            "Can't APPEND to key consumer.session.timeout.ms because its type is not LIST.",
        ),
        (
            vec![
                op("consumer.session.timeout.ms", 0, Some("7000")),
                op("consumer.session.timeout.ms", 0, Some("8000")),
            ],
            ResponseError::InvalidRequest,
            "Error due to duplicate config keys",
        ),
    ];
    for (ops, e, message) in refusals {
        assert_eq!(
            incremental(&mut c, "billing", ops).await,
            (code(e), Some(message.to_string()))
        );
    }
    assert_eq!(
        incremental(
            &mut c,
            "",
            vec![op("consumer.session.timeout.ms", 0, Some("7000"))]
        )
        .await,
        (
            code(ResponseError::InvalidRequest),
            Some("Default group resources are not allowed.".into())
        )
    );
    assert_eq!(describe(&mut c, "billing").await.1[1].1, "6000");

    // 3. Set: described as the group's, and the next member is told the interval.
    assert_eq!(
        incremental(
            &mut c,
            "billing",
            vec![
                op("consumer.session.timeout.ms", 0, Some(" 7000 ")),
                op("consumer.heartbeat.interval.ms", 0, Some("1500")),
                op("consumer.nothing", 1, None),
            ]
        )
        .await,
        (0, None)
    );
    let (_, configs) = describe(&mut c, "billing").await;
    assert_eq!(
        configs[1],
        entry(
            "consumer.session.timeout.ms",
            "7000",
            8,
            &[
                ("consumer.session.timeout.ms", "7000", 8),
                ("group.consumer.session.timeout.ms", "6000", 4),
                ("group.consumer.session.timeout.ms", "45000", 5)
            ]
        )
    );
    assert_eq!(
        join(&mut c, "billing", "m1-aaaaaaaaaaaaaaaaaaaa").await,
        (0, 1500)
    );
    assert_eq!(
        join(&mut c, "other", "m2-aaaaaaaaaaaaaaaaaaaa").await,
        (0, 500)
    );

    // 4. ListConfigResources names the groups that have configs.
    let req = ListConfigResourcesRequest::default().with_resource_types(vec![GROUP]);
    let r: ListConfigResourcesResponse = c.call(ApiKey::ListConfigResources, 1, &req).await;
    let listed: Vec<String> = r
        .config_resources
        .iter()
        .map(|x| x.resource_name.to_string())
        .collect();
    assert_eq!((r.error_code, listed), (0, vec!["billing".to_string()]));
    let req = ListConfigResourcesRequest::default().with_resource_types(vec![99]);
    let r: ListConfigResourcesResponse = c.call(ApiKey::ListConfigResources, 1, &req).await;
    assert_eq!(r.error_code, code(ResponseError::UnsupportedVersion));

    // 5. After a restart the overrides are back, in the catalog and in the coordinator.
    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, limits).await;
    let mut c = broker.client().await;
    let (_, configs) = describe(&mut c, "billing").await;
    assert_eq!(
        configs
            .iter()
            .map(|e| (e.1.as_str(), e.2))
            .collect::<Vec<_>>(),
        vec![("1500", 8), ("7000", 8)]
    );
    assert_eq!(
        join(&mut c, "billing", "m3-aaaaaaaaaaaaaaaaaaaa").await,
        (0, 1500)
    );

    // 6. AlterConfigs replaces the whole set; DELETE returns to the broker's value.
    let req = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(GROUP)
            .with_resource_name(StrBytes::from_static_str("billing"))
            .with_configs(vec![alter_configs_request::AlterableConfig::default()
                .with_name(StrBytes::from_static_str("consumer.session.timeout.ms"))
                .with_value(Some(StrBytes::from_static_str("8000")))]),
    ]);
    let r: AlterConfigsResponse = c.call(ApiKey::AlterConfigs, 2, &req).await;
    assert_eq!(r.responses[0].error_code, 0);
    let (_, configs) = describe(&mut c, "billing").await;
    assert_eq!(
        configs
            .iter()
            .map(|e| (e.1.as_str(), e.2))
            .collect::<Vec<_>>(),
        vec![("500", 4), ("8000", 8)]
    );
    assert_eq!(
        incremental(
            &mut c,
            "billing",
            vec![op("consumer.session.timeout.ms", 1, None)]
        )
        .await,
        (0, None)
    );
    let (_, configs) = describe(&mut c, "billing").await;
    assert_eq!(
        configs
            .iter()
            .map(|e| (e.1.as_str(), e.2))
            .collect::<Vec<_>>(),
        vec![("500", 4), ("6000", 4)]
    );
}
