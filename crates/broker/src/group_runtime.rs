//! The group coordinator (`weir-groups`) on the shared coordinator runtime
//! ([`crate::coordinator_runtime`]): its records go to `__consumer_offsets` through the
//! storage engine (the local engine makes them durable through its journal,
//! `meta/offsets-journal`).
//!
//! On start, every record of `__consumer_offsets` is replayed into the coordinator,
//! transactional offset commits and the markers that end them included.
//!
//! Group configs (`consumer.session.timeout.ms`, `consumer.heartbeat.interval.ms` of one
//! group) are kept in the catalog, not in `__consumer_offsets`: they are handed to the
//! coordinator at start and after each change ([`GroupRuntime::alter_group_configs`]).
//!
//! The console asks for overviews of groups (state, members, rebalances) through the same
//! task ([`GroupRuntime::inspect`]); that is not a Kafka API and writes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use weir_groups::inspect::{InspectQuery, Inspection};
use weir_groups::{
    Coordinator, CoordinatorConfig, GroupConfig, GroupRequest, GroupResponse, RequestContext,
};
use weir_meta::group_config::GroupConfigOverrides;

use crate::coordinator_runtime::{
    ensure_internal_topic, replay_topic, Caller, CoordinatorHandle, CoordinatorRecord, Persistence,
    Replayed, Shard, Step,
};
use crate::state::{ApiError, BrokerState};

/// The internal topic holding group metadata and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// What reaches the group coordinator task.
pub enum GroupCall {
    Api(GroupRequest),
    /// A commit or abort marker of `producer_id` was written (and made durable) into
    /// `__consumer_offsets` partition `offsets_partition`.
    MarkerWritten {
        offsets_partition: i32,
        producer_id: i64,
        commit: bool,
    },
    /// Group `group_id`'s configs are now `config` (already persisted in the catalog).
    Configure {
        group_id: String,
        config: GroupConfig,
    },
    /// Overviews of groups for the console; `image` names consumer groups' topics.
    Inspect {
        query: InspectQuery,
        image: Arc<weir_groups::TopicImage>,
    },
}

/// What the group coordinator task answers.
pub enum GroupAnswer {
    Api(GroupResponse),
    MarkerApplied,
    Configured,
    Inspected(Inspection),
}

/// The coordinator's form of a group's overrides from the catalog.
fn group_config_of(o: GroupConfigOverrides) -> GroupConfig {
    GroupConfig {
        consumer_session_timeout_ms: o.consumer_session_timeout_ms,
        consumer_heartbeat_interval_ms: o.consumer_heartbeat_interval_ms,
    }
}

/// The group coordinator as a [`Shard`].
pub struct GroupShard {
    coordinator: Coordinator,
}

fn records_of(records: Vec<weir_groups::Record>) -> Vec<CoordinatorRecord> {
    records
        .into_iter()
        .map(|r| CoordinatorRecord {
            partition: r.partition,
            key: r.key,
            value: r.value,
            producer: r.producer,
        })
        .collect()
}

fn step_of(out: weir_groups::Output) -> Step<GroupAnswer> {
    Step {
        responses: out
            .responses
            .into_iter()
            .map(|(t, r)| (t, GroupAnswer::Api(r)))
            .collect(),
        records: records_of(out.records),
    }
}

impl Shard for GroupShard {
    type Request = GroupCall;
    type Response = GroupAnswer;

    fn handle(&mut self, now_ms: i64, caller: Caller, request: GroupCall) -> Step<GroupAnswer> {
        match request {
            GroupCall::Api(r) => {
                let ctx = RequestContext {
                    token: caller.token,
                    api_version: caller.api_version,
                    client_id: caller.client_id,
                    client_host: caller.client_host,
                };
                step_of(self.coordinator.handle(now_ms, ctx, r))
            }
            GroupCall::MarkerWritten {
                offsets_partition,
                producer_id,
                commit,
            } => {
                self.coordinator
                    .replay_end_txn(offsets_partition, producer_id, commit);
                Step {
                    responses: vec![(caller.token, GroupAnswer::MarkerApplied)],
                    records: Vec::new(),
                }
            }
            GroupCall::Configure { group_id, config } => {
                self.coordinator.set_group_config(&group_id, config);
                Step {
                    responses: vec![(caller.token, GroupAnswer::Configured)],
                    records: Vec::new(),
                }
            }
            GroupCall::Inspect { query, image } => Step {
                responses: vec![(
                    caller.token,
                    GroupAnswer::Inspected(self.coordinator.inspect(now_ms, &query, &image)),
                )],
                records: Vec::new(),
            },
        }
    }

    fn tick(&mut self, now_ms: i64) -> Step<GroupAnswer> {
        step_of(self.coordinator.tick(now_ms))
    }

    fn next_deadline_ms(&self) -> Option<i64> {
        self.coordinator.next_deadline_ms()
    }

    fn after_durable<'a>(
        &'a mut self,
        _state: &'a Arc<BrokerState>,
    ) -> BoxFuture<'a, Step<GroupAnswer>> {
        Box::pin(async { Step::default() })
    }
}

/// A handle for connections to reach the group coordinator task.
#[derive(Clone)]
pub struct GroupRuntime {
    handle: CoordinatorHandle<GroupShard>,
    /// Held from a group config's write to the catalog until the coordinator has it, so
    /// concurrent changes reach the coordinator in the order the catalog took them.
    config_writes: Arc<tokio::sync::Mutex<()>>,
}

/// The coordinator after replaying `__consumer_offsets`, ready to be spawned.
pub struct LoadedGroups {
    coordinator: Coordinator,
    partitions: i32,
}

impl LoadedGroups {
    /// Starts the coordinator task.
    pub fn spawn(self, state: &Arc<BrokerState>) -> GroupRuntime {
        let persistence = Persistence {
            topic: OFFSETS_TOPIC,
            partitions: self.partitions,
            ensure_topic: ensure_offsets_topic,
        };
        GroupRuntime {
            handle: CoordinatorHandle::spawn(
                state,
                GroupShard {
                    coordinator: self.coordinator,
                },
                persistence,
            ),
            config_writes: Arc::new(tokio::sync::Mutex::new(())),
        }
    }
}

/// A seed for the member ids the coordinator hands out, new at every start: ids from a
/// fixed seed would repeat after a restart, and a member loaded from the log could then share
/// its id with one that joins later (two Java consumers in different processes often have
/// the same client id, which prefixes the id).
fn member_id_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

impl GroupRuntime {
    /// Replays `__consumer_offsets`, if it exists, into a new coordinator. As in Kafka, the
    /// topic itself is created on first use, not at start-up. Blocking: reads the whole topic.
    pub fn start_blocking(state: &Arc<BrokerState>) -> anyhow::Result<LoadedGroups> {
        let existing = state.topic(OFFSETS_TOPIC);
        let partitions = existing
            .as_ref()
            .map(|t| t.partitions)
            .unwrap_or(state.config.offsets_topic_partitions);
        let config = CoordinatorConfig {
            group_initial_rebalance_delay_ms: state.config.group_initial_rebalance_delay_ms,
            group_min_session_timeout_ms: state.config.group_min_session_timeout_ms,
            group_max_session_timeout_ms: state.config.group_max_session_timeout_ms,
            group_max_size: state
                .config
                .group_max_size
                .min(weir_groups::GROUP_MEMBERS_MAX),
            offsets_retention_ms: state.config.offsets_retention_ms,
            offsets_topic_partitions: partitions,
            consumer_heartbeat_interval_ms: state.config.group_consumer_heartbeat_interval_ms,
            consumer_session_timeout_ms: state.config.group_consumer_session_timeout_ms,
            consumer_heartbeat_interval_bounds_ms: state
                .config
                .group_consumer_heartbeat_interval_bounds_ms,
            consumer_session_timeout_bounds_ms: state
                .config
                .group_consumer_session_timeout_bounds_ms,
            consumer_max_size: state
                .config
                .group_consumer_max_size
                .min(weir_groups::GROUP_MEMBERS_MAX),
            consumer_migration_policy: state.config.group_consumer_migration_policy,
            member_id_seed: member_id_seed(),
            ..CoordinatorConfig::default()
        };
        let mut coordinator = Coordinator::new(config);
        for (group_id, overrides) in state.all_group_configs() {
            coordinator.set_group_config(&group_id, group_config_of(overrides));
        }
        if existing.is_some() {
            let replayed = replay_topic(state, OFFSETS_TOPIC, partitions, |item| {
                let result = match item {
                    Replayed::Record {
                        producer_id: None,
                        key,
                        value,
                        ..
                    } => coordinator.replay(key, value),
                    Replayed::Record {
                        partition,
                        producer_id: Some(pid),
                        key,
                        value,
                    } => coordinator.replay_transactional(partition, pid, key, value),
                    Replayed::Marker {
                        partition,
                        producer_id,
                        commit,
                    } => {
                        coordinator.replay_end_txn(partition, producer_id, commit);
                        Ok(())
                    }
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "skipped an unreadable {OFFSETS_TOPIC} record");
                }
            })?;
            tracing::debug!(records = replayed, "replayed {OFFSETS_TOPIC}");
        }
        Ok(LoadedGroups {
            coordinator,
            partitions,
        })
    }

    /// Sends one request to the coordinator and waits for its response. `None` if the
    /// coordinator task has stopped (shutdown).
    pub async fn call(
        &self,
        api_version: i16,
        client_id: String,
        client_host: String,
        request: GroupRequest,
    ) -> Option<GroupResponse> {
        match self
            .handle
            .call(api_version, client_id, client_host, GroupCall::Api(request))
            .await?
        {
            GroupAnswer::Api(r) => Some(r),
            GroupAnswer::MarkerApplied | GroupAnswer::Configured | GroupAnswer::Inspected(_) => {
                None
            }
        }
    }

    /// Changes group `group_id`'s configs: `change` turns the current overrides into the
    /// new ones, which the catalog checks and (with `apply`) persists; then the coordinator
    /// is handed them, and only then does this return. Changes are serialized, so the
    /// coordinator always ends with what the catalog holds.
    pub async fn alter_group_configs(
        &self,
        state: &Arc<BrokerState>,
        group_id: &str,
        apply: bool,
        change: impl FnOnce(BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError>,
    ) -> Result<(), ApiError> {
        let _serialized = self.config_writes.lock().await;
        let overrides = state.set_group_configs(group_id, apply, change)?;
        if !apply {
            return Ok(());
        }
        let call = GroupCall::Configure {
            group_id: group_id.to_string(),
            config: group_config_of(overrides),
        };
        match self.handle.call(0, String::new(), String::new(), call).await {
            Some(_) => Ok(()),
            None => Err(ApiError::new(
                weir_wire::ResponseError::CoordinatorNotAvailable,
                "the group coordinator is shutting down; the config is stored and applies at the next start",
            )),
        }
    }

    /// Hands the coordinator group `group_id`'s configs as the catalog holds them when the
    /// hand-over runs (a catalog committed by another broker changed them). Runs in the
    /// background, serialized with this broker's own changes; reading the catalog at that
    /// moment means the last hand-over always carries the newest configs.
    pub fn push_group_config(&self, state: &Arc<BrokerState>, group_id: String) {
        let (state, handle, writes) = (
            Arc::clone(state),
            self.handle.clone(),
            Arc::clone(&self.config_writes),
        );
        tokio::spawn(async move {
            let _serialized = writes.lock().await;
            let limits = state.group_config_limits();
            let overrides =
                weir_meta::group_config::validate(&state.group_configs(&group_id), &limits);
            let overrides = match overrides {
                Ok(overrides) => overrides,
                Err(e) => {
                    tracing::warn!(group = %group_id, error = %e, "group configs outside the broker's bounds are not applied");
                    return;
                }
            };
            let call = GroupCall::Configure {
                group_id,
                config: group_config_of(overrides),
            };
            let _ = handle.call(0, String::new(), String::new(), call).await;
        });
    }

    /// Overviews of the groups `query` names (or all, bounded): state, protocol, generation
    /// or epoch, members, the latest rebalances and counters by trigger. `None` if the
    /// coordinator task has stopped (shutdown). Read-only; answered in turn with the
    /// coordinator's other work, so it sees every step before it.
    pub async fn inspect(
        &self,
        query: InspectQuery,
        image: Arc<weir_groups::TopicImage>,
    ) -> Option<Inspection> {
        match self
            .handle
            .call(
                0,
                String::new(),
                String::new(),
                GroupCall::Inspect { query, image },
            )
            .await?
        {
            GroupAnswer::Inspected(i) => Some(i),
            GroupAnswer::Api(_) | GroupAnswer::MarkerApplied | GroupAnswer::Configured => None,
        }
    }

    /// Ends the coordinator task (this broker is no longer the coordinator).
    pub fn stop(&self) {
        self.handle.stop();
    }

    /// Tells the coordinator a transaction's marker is durable in an offsets partition.
    pub async fn marker_written(
        &self,
        offsets_partition: i32,
        producer_id: i64,
        commit: bool,
    ) -> bool {
        let call = GroupCall::MarkerWritten {
            offsets_partition,
            producer_id,
            commit,
        };
        self.handle
            .call(0, String::new(), String::new(), call)
            .await
            .is_some()
    }
}

/// Creates `__consumer_offsets` (internal, compacted, `offsets_topic_partitions` partitions)
/// unless it exists; returns it either way. Its configs are the ones Kafka gives it
/// (compaction, the segment size, and `compression.type=producer`: commits are stored as
/// the coordinator wrote them), so tools describe it alike.
pub fn ensure_offsets_topic(
    state: &BrokerState,
) -> Result<weir_meta::catalog::Topic, crate::state::ApiError> {
    ensure_internal_topic(
        state,
        OFFSETS_TOPIC,
        state.config.offsets_topic_partitions,
        state.config.offsets_topic_segment_bytes,
        &[("compression.type", "producer")],
    )
}
