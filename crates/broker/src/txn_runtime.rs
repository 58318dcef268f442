//! The transaction coordinator (`weir-txn`) on the shared coordinator runtime
//! ([`crate::coordinator_runtime`]): its records go to `__transaction_state` through the
//! storage engine (the local engine makes them durable through its journal,
//! `meta/txn-journal`), and the broker itself writes each decided
//! transaction's markers (WriteTxnMarkers, in process).
//!
//! Marker writing runs after the PrepareCommit/PrepareAbort record is durable: a control
//! batch into every partition of the transaction, fsynced under `--fsync always`; for a
//! `__consumer_offsets` partition the group coordinator is told next, so the offsets
//! committed in the transaction become visible (or go). Then the coordinator completes the
//! transaction and the EndTxn answer is released. A marker that cannot be written now (an
//! I/O error) is tried again a second later; a partition whose topic is gone needs none.

use std::sync::Arc;

use futures::future::BoxFuture;
use weir_log::store::{MarkerWrite, StoreError};
use weir_log::LogError;
use weir_txn::{
    MarkerJob, ProducerIds, RequestContext, TxnConfig, TxnCoordinator, TxnError, TxnRequest,
    TxnResponse, TRANSACTION_STATE_TOPIC,
};

use crate::coordinator_runtime::{
    ensure_internal_topic, replay_topic, Caller, CoordinatorHandle, CoordinatorRecord, Persistence,
    Replayed, Shard, Step,
};
use crate::group_runtime::OFFSETS_TOPIC;
use crate::handlers::produce::now_ms;
use crate::state::BrokerState;

/// How long a marker that could not be written waits before it is tried again.
pub const MARKER_RETRY_MS: i64 = 1_000;
/// Marker jobs waiting to be retried; beyond it the oldest wait for the next start.
pub const MARKER_RETRIES_MAX: usize = 100_000;

/// New producer ids from the catalog's persisted blocks.
struct CatalogIds<'a>(&'a BrokerState);

impl ProducerIds for CatalogIds<'_> {
    fn next_producer_id(&mut self) -> Result<i64, TxnError> {
        self.0
            .allocate_producer_id()
            .map_err(|e| TxnError::ProducerIdsUnavailable(e.message))
    }
}

pub struct TxnShard {
    state: Arc<BrokerState>,
    coordinator: TxnCoordinator,
    /// Markers to write after the current step's records are durable.
    pending: Vec<MarkerJob>,
    /// Markers that failed, with when to try again.
    retry: Vec<(i64, MarkerJob)>,
}

fn step_of(shard: &mut TxnShard, out: weir_txn::Output) -> Step<TxnResponse> {
    shard.pending.extend(out.markers);
    Step {
        responses: out.responses,
        records: out
            .records
            .into_iter()
            .map(|r| CoordinatorRecord {
                partition: r.partition,
                key: r.key,
                value: r.value,
                producer: None,
            })
            .collect(),
    }
}

impl Shard for TxnShard {
    type Request = TxnRequest;
    type Response = TxnResponse;

    fn handle(&mut self, now_ms: i64, caller: Caller, request: TxnRequest) -> Step<TxnResponse> {
        let ctx = RequestContext {
            token: caller.token,
            api_version: caller.api_version,
        };
        let state = Arc::clone(&self.state);
        let out = self
            .coordinator
            .handle(now_ms, ctx, request, &mut CatalogIds(&state));
        step_of(self, out)
    }

    fn tick(&mut self, now_ms: i64) -> Step<TxnResponse> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retry)
            .into_iter()
            .partition(|(t, _)| *t <= now_ms);
        self.retry = later;
        self.pending.extend(due.into_iter().map(|(_, job)| job));
        let out = self.coordinator.tick(now_ms);
        step_of(self, out)
    }

    fn next_deadline_ms(&self) -> Option<i64> {
        self.coordinator
            .next_deadline_ms()
            .into_iter()
            .chain(self.retry.iter().map(|(t, _)| *t))
            .min()
    }

    fn after_durable<'a>(
        &'a mut self,
        state: &'a Arc<BrokerState>,
    ) -> BoxFuture<'a, Step<TxnResponse>> {
        Box::pin(async move {
            let jobs = std::mem::take(&mut self.pending);
            let mut step = Step::default();
            for job in jobs {
                let offsets_partitions = match write_markers(state, &job).await {
                    Ok(parts) => parts,
                    // This broker no longer runs the coordinators (a cluster's controller
                    // moved): the new controller replays the decision and writes them.
                    Err(StoreError::Log(LogError::NotCoordinator(why))) => {
                        tracing::info!(transactional_id = %job.transactional_id, %why, "transaction markers left to the new controller");
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(transactional_id = %job.transactional_id, error = %e, "could not write transaction markers; retrying");
                        if self.retry.len() < MARKER_RETRIES_MAX {
                            self.retry.push((now_ms() + MARKER_RETRY_MS, job));
                        }
                        continue;
                    }
                };
                // Offsets committed in the transaction become visible (or go) in the group
                // coordinator once its markers are durable.
                if let Some(groups) = state.groups() {
                    for p in offsets_partitions {
                        groups.marker_written(p, job.producer_id, job.commit).await;
                    }
                }
                let out = self.coordinator.markers_written(
                    now_ms(),
                    &job.transactional_id,
                    job.producer_id,
                    job.producer_epoch,
                );
                step.extend(step_of(self, out));
            }
            step
        })
    }
}

/// Writes one job's marker into each of its partitions and makes them durable. Returns the
/// `__consumer_offsets` partitions among them.
async fn write_markers(state: &BrokerState, job: &MarkerJob) -> Result<Vec<i32>, StoreError> {
    // A partition whose topic was deleted holds nothing that needs a marker.
    let markers: Vec<MarkerWrite> = job
        .partitions
        .iter()
        .filter_map(|(topic, p)| state.topic_partition(topic, *p))
        .map(|tp| MarkerWrite {
            tp,
            producer_id: job.producer_id,
            producer_epoch: job.producer_epoch,
            coordinator_epoch: job.coordinator_epoch,
            commit: job.commit,
            from_coordinator: true,
        })
        .collect();
    let outcomes = state
        .txn_log()
        .write_markers(markers.clone(), now_ms())
        .await;
    let mut offsets_partitions = Vec::new();
    for (m, outcome) in markers.iter().zip(outcomes) {
        match outcome {
            Ok(()) => {
                if m.tp.topic == OFFSETS_TOPIC {
                    offsets_partitions.push(m.tp.partition);
                }
            }
            // Deleted since it was looked up.
            Err(StoreError::UnknownPartition) => {}
            Err(StoreError::Log(
                e @ (LogError::InvalidProducerEpoch { .. }
                | LogError::TransactionCoordinatorFenced { .. }),
            )) => {
                // A newer epoch already ended this producer's work here; nothing to add.
                tracing::warn!(topic = %m.tp.topic, partition = m.tp.partition, error = %e, "transaction marker not written");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(offsets_partitions)
}

/// A handle for connections to reach the transaction coordinator task.
#[derive(Clone)]
pub struct TxnRuntime {
    handle: CoordinatorHandle<TxnShard>,
}

/// The coordinator after replaying `__transaction_state`, ready to be spawned.
pub struct LoadedTxns {
    shard: TxnShard,
    persistence: Persistence,
}

impl LoadedTxns {
    pub fn spawn(self, state: &Arc<BrokerState>) -> TxnRuntime {
        TxnRuntime {
            handle: CoordinatorHandle::spawn(state, self.shard, self.persistence),
        }
    }
}

impl TxnRuntime {
    /// Replays `__transaction_state`, if it exists, into a new coordinator, and queues the
    /// markers of every transaction that was decided but not completed. Blocking.
    pub fn start_blocking(state: &Arc<BrokerState>) -> anyhow::Result<LoadedTxns> {
        let existing = state.topic(TRANSACTION_STATE_TOPIC);
        let partitions = existing
            .as_ref()
            .map(|t| t.partitions)
            .unwrap_or(state.config.transaction_state_partitions);
        let config = TxnConfig {
            transaction_max_timeout_ms: state.config.transaction_max_timeout_ms,
            transaction_state_partitions: partitions,
            ..TxnConfig::default()
        };
        let mut coordinator = TxnCoordinator::new(config);
        if existing.is_some() {
            let replayed = replay_topic(state, TRANSACTION_STATE_TOPIC, partitions, |item| {
                if let Replayed::Record { key, value, .. } = item {
                    if let Err(e) = coordinator.replay(key, value) {
                        tracing::warn!(error = %e, "skipped an unreadable {TRANSACTION_STATE_TOPIC} record");
                    }
                }
            })?;
            tracing::debug!(records = replayed, "replayed {TRANSACTION_STATE_TOPIC}");
        }
        let pending = coordinator.pending_markers();
        if !pending.is_empty() {
            tracing::info!(
                transactions = pending.len(),
                "writing the markers of transactions decided before the restart"
            );
        }
        let persistence = Persistence {
            topic: TRANSACTION_STATE_TOPIC,
            partitions,
            ensure_topic: ensure_transaction_state_topic,
        };
        // Written at the first tick, which is due at once.
        let retry = pending.into_iter().map(|job| (0, job)).collect();
        Ok(LoadedTxns {
            shard: TxnShard {
                state: Arc::clone(state),
                coordinator,
                pending: Vec::new(),
                retry,
            },
            persistence,
        })
    }

    /// Ends the coordinator task (this broker is no longer the coordinator).
    pub fn stop(&self) {
        self.handle.stop();
    }

    /// Sends one request to the coordinator and waits for its response. `None` if the
    /// coordinator task has stopped (shutdown) or its write failed.
    pub async fn call(
        &self,
        api_version: i16,
        client_id: String,
        request: TxnRequest,
    ) -> Option<TxnResponse> {
        self.handle
            .call(api_version, client_id, String::new(), request)
            .await
    }
}

/// Creates `__transaction_state` (internal, compacted) unless it exists.
pub fn ensure_transaction_state_topic(
    state: &BrokerState,
) -> Result<weir_meta::catalog::Topic, crate::state::ApiError> {
    ensure_internal_topic(
        state,
        TRANSACTION_STATE_TOPIC,
        state.config.transaction_state_partitions,
        state.config.transaction_state_segment_bytes,
        &[],
    )
}
