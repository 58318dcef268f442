//! Group configs (Kafka's `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms`
//! of one group) applied by the coordinator: the heartbeat interval a member is told, and
//! the session timeout that removes it, live and for members loaded by replay.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{consumer_heartbeat_req, request_ctx};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::*;
use uuid::Uuid;
use weir_groups::*;

const TOPIC: Uuid = Uuid::from_u128(0xabc);
const DEFAULT_SESSION_MS: i32 = 10_000;
const DEFAULT_HEARTBEAT_MS: i32 = 1_000;

struct Ctx {
    c: Coordinator,
    records: Vec<Record>,
    now_ms: i64,
    token: u64,
    image: Arc<TopicImage>,
}

fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        consumer_session_timeout_ms: DEFAULT_SESSION_MS,
        consumer_heartbeat_interval_ms: DEFAULT_HEARTBEAT_MS,
        ..CoordinatorConfig::default()
    }
}

impl Ctx {
    fn new() -> Ctx {
        let mut topics = BTreeMap::new();
        topics.insert(
            "t".to_string(),
            TopicInfo {
                id: TOPIC,
                partitions: 4,
                partition_bytes_in_per_s: Vec::new(),
            },
        );
        Ctx {
            c: Coordinator::new(config()),
            records: Vec::new(),
            now_ms: 1_000,
            token: 0,
            image: Arc::new(TopicImage { version: 1, topics }),
        }
    }

    /// One heartbeat of member `id` of group "g" at `epoch` owning nothing; its answer.
    fn heartbeat(&mut self, id: &str, epoch: i32) -> ConsumerGroupHeartbeatResponse {
        self.token += 1;
        let req = consumer_heartbeat_req(id, None, epoch, TOPIC, &BTreeSet::new(), 60_000);
        let out = self.c.handle(
            self.now_ms,
            request_ctx(self.token, 1, "client"),
            GroupRequest::ConsumerGroupHeartbeat(req, self.image.clone()),
        );
        self.records.extend(out.records.iter().cloned());
        match out.responses.into_iter().find(|(t, _)| *t == self.token) {
            Some((_, GroupResponse::ConsumerGroupHeartbeat(r))) => r,
            other => panic!("no heartbeat answer: {other:?}"),
        }
    }

    fn tick(&mut self, ms: i64) {
        self.now_ms += ms;
        let out = self.c.tick(self.now_ms);
        self.records.extend(out.records.iter().cloned());
    }

    fn members(&self) -> Vec<String> {
        self.c
            .group("g")
            .and_then(|g| g.modern.as_ref())
            .map(|cg| cg.members.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn overrides(session_ms: Option<i32>, heartbeat_ms: Option<i32>) -> GroupConfig {
    GroupConfig {
        consumer_session_timeout_ms: session_ms,
        consumer_heartbeat_interval_ms: heartbeat_ms,
    }
}

#[test]
fn a_member_is_told_its_groups_heartbeat_interval_from_its_next_heartbeat_on() {
    // Goal: the heartbeat interval in a ConsumerGroupHeartbeat answer is the group's own
    // when it has one, the coordinator's otherwise, and a change (or its removal) shows at
    // the member's next heartbeat.
    let mut x = Ctx::new();
    let r = x.heartbeat("a", 0);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.heartbeat_interval_ms, DEFAULT_HEARTBEAT_MS);
    let epoch = r.member_epoch;
    x.c.set_group_config("g", overrides(None, Some(2_500)));
    assert_eq!(x.c.group_config("g"), overrides(None, Some(2_500)));
    assert_eq!(x.heartbeat("a", epoch).heartbeat_interval_ms, 2_500);
    // Another group's config changes nothing here.
    x.c.set_group_config("other", overrides(None, Some(7_000)));
    assert_eq!(x.heartbeat("a", epoch).heartbeat_interval_ms, 2_500);
    x.c.set_group_config("g", GroupConfig::default());
    assert_eq!(x.c.group_config("g"), GroupConfig::default());
    assert_eq!(
        x.heartbeat("a", epoch).heartbeat_interval_ms,
        DEFAULT_HEARTBEAT_MS
    );
}

#[test]
fn a_silent_member_is_removed_after_its_groups_session_timeout() {
    // Goal: with a group session timeout longer than the default, a member silent for
    // longer than the default but shorter than the group's stays; once the group's timeout
    // passes it is removed and its next heartbeat is refused as unknown. A shorter one
    // removes it sooner than the default would.
    let mut x = Ctx::new();
    x.c.set_group_config("g", overrides(Some(30_000), None));
    let epoch = x.heartbeat("a", 0).member_epoch;
    x.tick(i64::from(DEFAULT_SESSION_MS) + 5_000);
    assert_eq!(x.members(), vec!["a".to_string()], "still within 30 s");
    x.tick(15_000);
    assert!(x.members().is_empty(), "removed after 30 s of silence");
    assert_eq!(
        x.heartbeat("a", epoch).error_code,
        E::UnknownMemberId.code()
    );

    let mut y = Ctx::new();
    y.c.set_group_config("g", overrides(Some(4_000), None));
    y.heartbeat("b", 0);
    y.tick(4_500);
    assert!(y.members().is_empty(), "removed after 4 s of silence");
}

#[test]
fn a_changed_session_timeout_counts_from_the_members_next_heartbeat() {
    // Goal: as in Kafka, the session a member is in keeps the timeout it was given; its
    // next heartbeat is timed with the group's new one.
    let mut x = Ctx::new();
    let epoch = x.heartbeat("a", 0).member_epoch;
    x.c.set_group_config("g", overrides(Some(30_000), None));
    x.tick(3_000);
    assert_eq!(x.heartbeat("a", epoch).error_code, 0);
    x.tick(i64::from(DEFAULT_SESSION_MS) + 5_000);
    assert_eq!(x.members(), vec!["a".to_string()]);
    x.tick(15_000);
    assert!(x.members().is_empty());
}

#[test]
fn members_loaded_by_replay_get_their_groups_session_timeout() {
    // Goal: after a restart (records replayed, configs handed in again) a loaded member's
    // first session runs for its group's timeout, not the coordinator's default.
    let mut x = Ctx::new();
    x.heartbeat("a", 0);
    let mut loaded = Coordinator::new(config());
    for r in &x.records {
        loaded.replay(&r.key, r.value.as_deref()).unwrap();
    }
    loaded.set_group_config("g", overrides(Some(30_000), None));
    let start = x.now_ms;
    loaded.tick(start);
    loaded.tick(start + i64::from(DEFAULT_SESSION_MS) + 5_000);
    let members = |c: &Coordinator| {
        c.group("g")
            .and_then(|g| g.modern.as_ref())
            .map_or(0, |cg| cg.members.len())
    };
    assert_eq!(members(&loaded), 1, "still within 30 s");
    loaded.tick(start + 30_000);
    assert_eq!(members(&loaded), 0, "removed after 30 s");
}
