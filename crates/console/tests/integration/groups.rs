//! Consumer groups seen from the console: their lag in records and in time, read once by
//! `GroupLagReport` and shown in `/metrics`, against a running broker fed through the Kafka
//! protocol.

use crate::common;
use crate::scrape;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use weir_console::group_lag::GroupLagReport;
use weir_console::Console;

/// The value of the one sample of `name` whose labels contain every one of `labels`;
/// `None` when there is none, a panic when there are several.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let found = scrape::samples(text, name, labels);
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    found.first().copied()
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Commits `offset` for `group` on partition 0 of `topic`, as a consumer that assigns
/// itself partitions (no generation).
async fn commit(client: &mut common::Client, group: &str, topic: &str, offset: i64) {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset),
                ]),
        ]);
    let resp: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, 8, &req).await;
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
}

#[tokio::test]
async fn lag_in_records_and_time_follows_the_first_unconsumed_record() {
    // Goal: after N records with known timestamps and a commit at M, the lag is N − M
    // records, and the lag in time is the scrape's clock minus the timestamp of record M.
    // The console reads its own clock during the request, so the exact value lies between
    // what the test's clock says just before and just after the request: that bracket, not a
    // guessed slack, is the tolerance.
    const N: i64 = 10;
    const M: i64 = 4;
    let (broker, http) = scrape::start().await;
    let mut client = broker.client().await;
    assert_eq!(client.create_topic("clicks", 1, &[]).await, 0);
    // One record per batch, a second apart, ending a minute ago; every other batch gzip, so
    // the timestamp is read from compressed batches too.
    let first_ms = wall_clock_ms() - 60_000 - N * 1_000;
    let timestamp = |offset: i64| first_ms + offset * 1_000;
    for offset in 0..N {
        let codec = if offset % 2 == 0 {
            Compression::None
        } else {
            Compression::Gzip
        };
        let value = format!("click-{offset}");
        let resp = client
            .produce(
                "clicks",
                0,
                -1,
                common::batch(&[&value], None, codec, timestamp(offset)),
            )
            .await;
        assert_eq!(resp.error_code, 0);
    }
    commit(&mut client, "web", "clicks", M).await;
    // A group that has consumed everything has no lag in time.
    commit(&mut client, "caught-up", "clicks", N).await;

    let before_ms = wall_clock_ms();
    let text = scrape::scrape(http).await;
    let after_ms = wall_clock_ms();
    let web = &["group=\"web\"", "topic=\"clicks\"", "partition=\"0\""];
    assert_eq!(
        sample(&text, "weir_group_lag", web),
        Some((N - M) as f64),
        "{text}"
    );
    let seconds = sample(&text, "weir_group_lag_seconds", web).expect("a lag in time");
    let low = (before_ms - timestamp(M)) as f64 / 1000.0;
    let high = (after_ms - timestamp(M)) as f64 / 1000.0;
    assert!(
        low <= seconds && seconds <= high,
        "{low} <= {seconds} <= {high}"
    );
    assert_eq!(
        sample(&text, "weir_group_max_lag_seconds", &["group=\"web\""]),
        Some(seconds)
    );
    assert_eq!(
        sample(&text, "weir_group_total_lag", &["group=\"web\""]),
        Some((N - M) as f64)
    );
    let caught_up = &["group=\"caught-up\"", "topic=\"clicks\""];
    assert_eq!(sample(&text, "weir_group_lag", caught_up), Some(0.0));
    assert_eq!(
        sample(&text, "weir_group_lag_seconds", caught_up),
        Some(0.0)
    );

    // The same reading, as the REST API takes it, at a clock the test chooses.
    let now_ms = timestamp(M) + 12_345;
    let report = GroupLagReport::read(&broker.state, vec!["web".into()], now_ms).await;
    let web = report.group("web").expect("the group");
    assert_eq!(web.partitions.len(), 1);
    let p = &web.partitions[0];
    assert_eq!((p.topic.as_str(), p.partition), ("clicks", 0));
    assert_eq!(p.committed_offset, M);
    assert_eq!(p.log_start_offset, Some(0));
    assert_eq!(p.high_watermark, Some(N));
    assert_eq!(p.lag_records, Some(N - M));
    assert_eq!(p.first_unconsumed_timestamp_ms, Some(timestamp(M)));
    assert_eq!(p.lag_seconds, Some(12.345));
    assert!(!p.committed_below_log_start());
    broker.stop().await;
}

#[tokio::test]
async fn a_rebalance_counts_once_with_its_reason() {
    // Goal: a classic group formed by one member shows one rebalance, started by a member
    // joining, however often it is scraped; its state, members and generation follow; a
    // member leaving adds one rebalance of its own reason and leaves the other count alone.
    let (broker, http) = scrape::start_with(|c| c.group_initial_rebalance_delay_ms = 0).await;
    let mut client = broker.client().await;
    let join = |member_id: &str| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(StrBytes::from_string(member_id.to_string()))
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(bytes::Bytes::from_static(b"sub"))])
    };
    let r: JoinGroupResponse = client.call(ApiKey::JoinGroup, 5, &join("")).await;
    assert_eq!(r.error_code, 79, "MEMBER_ID_REQUIRED first");
    let member = r.member_id.to_string();
    let r: JoinGroupResponse = client.call(ApiKey::JoinGroup, 5, &join(&member)).await;
    assert_eq!((r.error_code, r.generation_id), (0, 1));
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_generation_id(1)
        .with_member_id(StrBytes::from_string(member.clone()))
        .with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(StrBytes::from_string(member.clone()))
                .with_assignment(bytes::Bytes::from_static(b"a")),
        ]);
    let r: SyncGroupResponse = client.call(ApiKey::SyncGroup, 3, &sync).await;
    assert_eq!(r.error_code, 0);

    let g = &["group=\"g\""];
    let joined = &["group=\"g\"", "reason=\"member_joined\""];
    for _ in 0..2 {
        let text = scrape::scrape(http).await;
        assert_eq!(
            sample(&text, "weir_group_rebalances_total", joined),
            Some(1.0),
            "{text}"
        );
        assert!(
            !text.contains("weir_group_rebalances_total{group=\"g\",reason=\"member_left\"}"),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                "weir_group_state",
                &["group=\"g\"", "state=\"Stable\""]
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "weir_group_state",
                &["group=\"g\"", "state=\"Empty\""]
            ),
            Some(0.0)
        );
        assert_eq!(sample(&text, "weir_group_members", g), Some(1.0));
        assert_eq!(sample(&text, "weir_group_generation", g), Some(1.0));
        // The join phase of a new group lasts at least the shortest first join (100 ms).
        let duration = sample(&text, "weir_group_last_rebalance_duration_seconds", g).unwrap();
        assert!((0.1..10.0).contains(&duration), "{duration}");
    }

    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_members(vec![leave_group_request::MemberIdentity::default()
            .with_member_id(StrBytes::from_string(member.clone()))]);
    let r: LeaveGroupResponse = client.call(ApiKey::LeaveGroup, 3, &leave).await;
    assert_eq!(r.error_code, 0);
    let text = scrape::scrape(http).await;
    assert_eq!(
        sample(&text, "weir_group_rebalances_total", joined),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "weir_group_rebalances_total",
            &["group=\"g\"", "reason=\"member_left\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "weir_group_state",
            &["group=\"g\"", "state=\"Empty\""]
        ),
        Some(1.0)
    );
    assert_eq!(sample(&text, "weir_group_members", g), Some(0.0));
    assert_eq!(sample(&text, "weir_group_generation", g), Some(2.0));
    broker.stop().await;
}

#[tokio::test]
async fn the_console_samples_lag_and_a_group_without_members_or_commits_is_stopped() {
    // Goal: the sampler the console starts fills each group's lag history, and a group with
    // lag, no members and no commit over the window is reported stopped in /metrics.
    let broker = common::TestBroker::start(|_| {}).await;
    let mut console = Console::bind("127.0.0.1:0".parse().unwrap(), &broker.state)
        .await
        .unwrap();
    console.set_lag_sample_interval(std::time::Duration::from_millis(20));
    let history = console.lag_history();
    let http = console.local_addr();
    tokio::spawn(console.run(std::future::pending()));

    let mut client = broker.client().await;
    assert_eq!(client.create_topic("jobs", 1, &[]).await, 0);
    let values: Vec<String> = (0..10).map(|i| format!("j{i}")).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let resp = client
        .produce(
            "jobs",
            0,
            -1,
            common::batch(&values, None, Compression::None, 1_000),
        )
        .await;
    assert_eq!(resp.error_code, 0);
    commit(&mut client, "idle", "jobs", 2).await;

    let mut samples = Vec::new();
    for _ in 0..200 {
        samples = history.samples("idle");
        if samples.len() >= weir_console::group_status::STATUS_SAMPLES_MIN {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(samples.len() >= weir_console::group_status::STATUS_SAMPLES_MIN);
    let last = samples.last().unwrap();
    assert!(!last.has_members);
    assert_eq!(
        (
            &*last.partitions[0].topic,
            last.partitions[0].committed_offset,
            last.partitions[0].high_watermark,
            last.partitions[0].lag
        ),
        ("jobs", 2, 10, 8)
    );
    assert!(samples.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));

    let text = scrape::scrape(http).await;
    let idle = |status: &str| {
        sample(
            &text,
            "weir_group_status",
            &["group=\"idle\"", &format!("status=\"{status}\"")],
        )
    };
    assert_eq!(idle("stopped"), Some(1.0), "{text}");
    assert_eq!(idle("ok"), Some(0.0));
    assert_eq!(idle("stalled"), Some(0.0));
    broker.stop().await;
}
