//! Group configs (Kafka's `GroupConfig`): a consumer group's own session timeout and
//! heartbeat interval, overriding the coordinator's defaults.
//!
//! The runtime owns them (the broker's catalog keeps them, validated against the bounds in
//! [`crate::CoordinatorConfig`]) and hands them in with [`Coordinator::set_group_config`], at
//! start and whenever one changes. They are not records of `__consumer_offsets` and live
//! apart from the groups themselves, as in Kafka: a group may have configs before it exists
//! and keeps them after it is deleted. As in Kafka, a change reaches a member at its next
//! heartbeat: the response carries the new interval and its session is timed anew.

use crate::coordinator::Coordinator;

/// One group's overrides; `None` takes the coordinator's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupConfig {
    /// Kafka's `consumer.session.timeout.ms`.
    pub consumer_session_timeout_ms: Option<i32>,
    /// Kafka's `consumer.heartbeat.interval.ms`.
    pub consumer_heartbeat_interval_ms: Option<i32>,
}

impl Coordinator {
    /// Replaces the overrides of `group_id`; [`GroupConfig::default`] removes them.
    pub fn set_group_config(&mut self, group_id: &str, config: GroupConfig) {
        if config == GroupConfig::default() {
            self.group_configs.remove(group_id);
        } else {
            self.group_configs.insert(group_id.to_string(), config);
        }
    }

    /// The overrides of `group_id` (none set: all `None`).
    pub fn group_config(&self, group_id: &str) -> GroupConfig {
        self.group_configs
            .get(group_id)
            .copied()
            .unwrap_or_default()
    }

    /// How long a consumer-protocol member of `group_id` may go without a heartbeat.
    pub(crate) fn consumer_session_timeout_ms(&self, group_id: &str) -> i32 {
        self.group_config(group_id)
            .consumer_session_timeout_ms
            .unwrap_or(self.config.consumer_session_timeout_ms)
    }

    /// How often a consumer-protocol member of `group_id` is told to heartbeat.
    pub(crate) fn consumer_heartbeat_interval_ms(&self, group_id: &str) -> i32 {
        self.group_config(group_id)
            .consumer_heartbeat_interval_ms
            .unwrap_or(self.config.consumer_heartbeat_interval_ms)
    }
}
