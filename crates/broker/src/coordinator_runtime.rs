//! The one runtime that drives the pure coordinators (`weir-groups`, `weir-txn`), in the
//! model of Kafka's `coordinator-common`.
//!
//! One task owns a coordinator ([`Shard`]). Each request reaches it over a bounded channel
//! with a token; the coordinator answers with responses (possibly for earlier, parked
//! requests) and records. The records are appended to the coordinator's internal topic
//! through the storage engine ([`weir_log::CoordinatorLog`]), which resolves once they are
//! durable (the local engine under `--fsync always`: one fsync of its journal however many
//! partitions a step touches), *before* any response of that step is released, so a client
//! never sees an acknowledgement the broker could forget. Then the shard's side effects run
//! ([`Shard::after_durable`], e.g. transaction markers), whose records are made durable the
//! same way, and only then do the responses go. Timers come back as a deadline; the task
//! sleeps until it and then ticks the coordinator.
//!
//! On start, every batch of the internal topic is read back through the engine and replayed
//! into the coordinator ([`replay_topic`]); the local engine has put back what its journal
//! held by then (`LocalLog::recover_journal`, when the broker opens its state). A task runs
//! until [`CoordinatorHandle::stop`] (this broker is no longer the coordinator, see
//! [`crate::coordinator_role`]) or until every handle is gone.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use tokio::sync::{mpsc, oneshot};
use weir_log::batch::{encode_batch, encode_transactional_batch, whole_batches, NewRecord};
use weir_log::store::{PartitionWrite, ReadSpec, StoreError};

use crate::handlers::produce::now_ms;
use crate::state::{partition_of, BrokerState};

/// Requests queued for a coordinator task; senders wait when it is full.
pub const COORDINATOR_REQUESTS_QUEUED_MAX: usize = 4096;
/// Queued requests handled together before one write of their records.
pub const COORDINATOR_CALLS_PER_WRITE_MAX: usize = 512;
/// Rounds of side effects after one write (each may lead to more records).
pub const EFFECT_ROUNDS_MAX: usize = 4;
/// Bytes read from an internal topic at a time when replaying it.
pub const REPLAY_READ_BYTES_MAX: usize = 1 << 20;

/// A record for a coordinator's internal topic.
#[derive(Debug, Clone)]
pub struct CoordinatorRecord {
    pub partition: i32,
    pub key: Bytes,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Written in a transactional batch of this producer (id, epoch).
    pub producer: Option<(i64, i16)>,
}

/// Who sent a request, as a coordinator needs it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: u64,
    pub api_version: i16,
    pub client_id: String,
    pub client_host: String,
}

/// What one step of a shard produced.
pub struct Step<R> {
    pub responses: Vec<(u64, R)>,
    pub records: Vec<CoordinatorRecord>,
}

impl<R> Default for Step<R> {
    fn default() -> Self {
        Step {
            responses: Vec::new(),
            records: Vec::new(),
        }
    }
}

impl<R> Step<R> {
    pub fn extend(&mut self, other: Step<R>) {
        self.responses.extend(other.responses);
        self.records.extend(other.records);
    }
}

/// A coordinator as the runtime sees it: requests and ticks in, steps out; and the side
/// effects that must follow a durable write.
pub trait Shard: Send + 'static {
    type Request: Send + 'static;
    type Response: Send + 'static;

    fn handle(
        &mut self,
        now_ms: i64,
        caller: Caller,
        request: Self::Request,
    ) -> Step<Self::Response>;
    fn tick(&mut self, now_ms: i64) -> Step<Self::Response>;
    fn next_deadline_ms(&self) -> Option<i64>;
    /// Runs once the records of the steps so far are durable and before their responses
    /// are released; returns what follows (empty when there is nothing to do).
    fn after_durable<'a>(
        &'a mut self,
        state: &'a Arc<BrokerState>,
    ) -> BoxFuture<'a, Step<Self::Response>>;
}

/// Where a shard's records go and how they are made durable.
pub struct Persistence {
    pub topic: &'static str,
    pub partitions: i32,
    /// Creates the topic on first use (or returns it).
    pub ensure_topic: fn(&BrokerState) -> Result<weir_meta::catalog::Topic, crate::state::ApiError>,
}

struct Call<S: Shard> {
    api_version: i16,
    client_id: String,
    client_host: String,
    request: S::Request,
    reply: oneshot::Sender<S::Response>,
}

/// A handle for connections to reach a coordinator task.
pub struct CoordinatorHandle<S: Shard> {
    tx: mpsc::Sender<Call<S>>,
    /// Ends the task between two steps ([`CoordinatorHandle::stop`]).
    stop: Arc<tokio::sync::Notify>,
}

impl<S: Shard> Clone for CoordinatorHandle<S> {
    fn clone(&self) -> Self {
        CoordinatorHandle {
            tx: self.tx.clone(),
            stop: Arc::clone(&self.stop),
        }
    }
}

impl<S: Shard> CoordinatorHandle<S> {
    /// Starts the task that owns `shard`.
    pub fn spawn(
        state: &Arc<BrokerState>,
        shard: S,
        persistence: Persistence,
    ) -> CoordinatorHandle<S> {
        let (tx, rx) = mpsc::channel(COORDINATOR_REQUESTS_QUEUED_MAX);
        let stop = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(run(
            Arc::clone(state),
            shard,
            rx,
            Arc::new(persistence),
            Arc::clone(&stop),
        ));
        CoordinatorHandle { tx, stop }
    }

    /// Ends the task once its current step is written (this broker stopped being the
    /// coordinator). Requests queued or parked then get no answer (`call` returns `None`),
    /// as from a coordinator that went away.
    pub fn stop(&self) {
        // A stored permit: the task sees it even when it is not waiting right now.
        self.stop.notify_one();
    }

    /// Sends one request and waits for its response. `None` if the task has stopped
    /// (shutdown) or the step's write failed.
    pub async fn call(
        &self,
        api_version: i16,
        client_id: String,
        client_host: String,
        request: S::Request,
    ) -> Option<S::Response> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Call {
                api_version,
                client_id,
                client_host,
                request,
                reply,
            })
            .await
            .ok()?;
        rx.await.ok()
    }
}

async fn run<S: Shard>(
    state: Arc<BrokerState>,
    mut shard: S,
    mut rx: mpsc::Receiver<Call<S>>,
    persistence: Arc<Persistence>,
    stop: Arc<tokio::sync::Notify>,
) {
    let mut parked: HashMap<u64, oneshot::Sender<S::Response>> = HashMap::new();
    let mut next_token: u64 = 0;
    loop {
        let sleep_ms = shard
            .next_deadline_ms()
            .map(|d| (d - now_ms()).clamp(0, 60_000) as u64)
            .unwrap_or(60_000);
        let mut step = tokio::select! {
            // Requests already queued go before a due timer, so a join phase that ends now
            // still takes in the joins that arrived with it.
            biased;
            _ = stop.notified() => return,
            call = rx.recv() => {
                let Some(call) = call else { return };
                handle_call(&mut shard, &mut parked, &mut next_token, call)
            }
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms)) => shard.tick(now_ms()),
        };
        // Group commit: take whatever else is already queued, so one append and one fsync
        // cover all of it. Responses are still released only after that write.
        for _ in 0..COORDINATOR_CALLS_PER_WRITE_MAX {
            let Ok(call) = rx.try_recv() else { break };
            step.extend(handle_call(&mut shard, &mut parked, &mut next_token, call));
        }
        let mut responses = Vec::new();
        let mut failed = false;
        for _ in 0..=EFFECT_ROUNDS_MAX {
            responses.extend(std::mem::take(&mut step.responses));
            if !step.records.is_empty()
                && !persist_logged(&state, &persistence, std::mem::take(&mut step.records)).await
            {
                failed = true;
                break;
            }
            step = shard.after_durable(&state).await;
            if step.records.is_empty() && step.responses.is_empty() {
                break;
            }
        }
        responses.extend(step.responses);
        for (token, response) in responses {
            if let Some(tx) = parked.remove(&token) {
                if failed {
                    // Dropping the sender makes the connection answer nothing for this
                    // request; the client times out and retries, as with a lost coordinator.
                    continue;
                }
                let _ = tx.send(response);
            }
        }
    }
}

fn handle_call<S: Shard>(
    shard: &mut S,
    parked: &mut HashMap<u64, oneshot::Sender<S::Response>>,
    next_token: &mut u64,
    call: Call<S>,
) -> Step<S::Response> {
    *next_token += 1;
    parked.insert(*next_token, call.reply);
    let caller = Caller {
        token: *next_token,
        api_version: call.api_version,
        client_id: call.client_id,
        client_host: call.client_host,
    };
    shard.handle(now_ms(), caller, call.request)
}

/// Persists records; false (logged) when that failed.
async fn persist_logged(
    state: &Arc<BrokerState>,
    persistence: &Persistence,
    records: Vec<CoordinatorRecord>,
) -> bool {
    match persist(state, persistence, records).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(topic = persistence.topic, error = %e, "could not persist coordinator records");
            false
        }
    }
}

/// Appends records to their partitions of the internal topic (one batch per partition and
/// producer) through the storage engine, which resolves once the step is durable.
pub async fn persist(
    state: &BrokerState,
    p: &Persistence,
    records: Vec<CoordinatorRecord>,
) -> anyhow::Result<()> {
    let now = now_ms();
    // The topic as it is: created on first use, or by a client with its own partition count.
    let topic = (p.ensure_topic)(state)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {}", p.topic, e.message))?;
    let partitions = p.partitions.min(topic.partitions).max(1);
    let mut batches: BTreeMap<(i32, Option<(i64, i16)>), Vec<NewRecord>> = BTreeMap::new();
    for r in records {
        let part = r.partition.clamp(0, partitions - 1);
        batches
            .entry((part, r.producer))
            .or_default()
            .push(NewRecord {
                key: Some(r.key),
                value: r.value,
                timestamp_ms: now,
            });
    }
    let mut writes = Vec::with_capacity(batches.len());
    for ((part, producer), records) in batches {
        let tp = partition_of(&topic, part)
            .ok_or_else(|| anyhow::anyhow!("{}-{part} is missing", p.topic))?;
        let batch = match producer {
            // As Kafka's coordinators write them: transactional, without a sequence.
            Some((pid, epoch)) => {
                encode_transactional_batch(&records, (pid, epoch, -1), Compression::None)?
            }
            None => encode_batch(&records, None, Compression::None)?,
        };
        writes.push(PartitionWrite {
            tp,
            records: BytesMut::from(&batch[..]),
        });
    }
    state
        .coordinator_log()
        .append_internal(p.topic, writes, now)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", p.topic))
}

/// Waits for an engine's future on the blocking thread a coordinator is loaded on.
fn wait<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Handle::current().block_on(f)
}

/// One replayed item of an internal topic.
pub enum Replayed<'a> {
    /// A record of a plain batch, or of a transactional batch of `producer_id`.
    Record {
        partition: i32,
        producer_id: Option<i64>,
        key: &'a [u8],
        value: Option<&'a [u8]>,
    },
    /// A commit or abort marker of `producer_id`.
    Marker {
        partition: i32,
        producer_id: i64,
        commit: bool,
    },
}

/// Feeds every batch of `topic` (partitions `0..partitions`) to `apply`, in offset order
/// per partition. Returns how many records were replayed.
pub fn replay_topic(
    state: &BrokerState,
    topic: &str,
    partitions: i32,
    mut apply: impl FnMut(Replayed<'_>),
) -> anyhow::Result<usize> {
    let Some(catalog_topic) = state.topic(topic) else {
        return Ok(0);
    };
    let mut count = 0usize;
    for p in 0..partitions {
        let Some(tp) = partition_of(&catalog_topic, p) else {
            continue;
        };
        let mut offset = match wait(state.log_admin().offsets(&tp)) {
            Ok(offsets) => offsets.log_start_offset,
            Err(StoreError::UnknownPartition) => continue,
            Err(e) => return Err(anyhow::anyhow!("{topic}-{p}: {e}")),
        };
        loop {
            let spec = ReadSpec {
                tp: tp.clone(),
                fetch_offset: offset,
                partition_max_bytes: REPLAY_READ_BYTES_MAX,
                read_committed: false,
            };
            let read = wait(
                state
                    .store()
                    .read(std::slice::from_ref(&spec), REPLAY_READ_BYTES_MAX),
            );
            let Some(Some(read)) = read.into_iter().next() else {
                break;
            };
            let bytes = read
                .records
                .map_err(|e| anyhow::anyhow!("{topic}-{p} at offset {offset}: {e}"))?;
            if bytes.is_empty() {
                break;
            }
            // Batch by batch: a compacted batch keeps its original last offset while its last
            // records may be gone, so the next read starts after the batch, not its last record.
            let mut next = offset;
            for batch in whole_batches(bytes) {
                let (header, mut batch) =
                    batch.map_err(|e| anyhow::anyhow!("{topic}-{p} at offset {offset}: {e}"))?;
                let set = RecordBatchDecoder::decode(&mut batch).map_err(|e| {
                    anyhow::anyhow!("{topic}-{p} at offset {}: {e}", header.base_offset)
                })?;
                for r in set.records {
                    if r.offset < offset {
                        continue;
                    }
                    if header.is_control() {
                        // Control record key: version i16, type i16 (0 abort, 1 commit).
                        if let Some(key) = r.key.as_deref().filter(|k| k.len() >= 4) {
                            let commit = i16::from_be_bytes([key[2], key[3]]) == 1;
                            apply(Replayed::Marker {
                                partition: p,
                                producer_id: header.producer_id,
                                commit,
                            });
                        }
                        continue;
                    }
                    if let Some(key) = &r.key {
                        let producer_id = header.is_transactional().then_some(header.producer_id);
                        apply(Replayed::Record {
                            partition: p,
                            producer_id,
                            key,
                            value: r.value.as_deref(),
                        });
                        count += 1;
                    }
                }
                next = next.max(header.last_offset() + 1);
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
    }
    Ok(count)
}

/// Creates an internal, compacted topic unless it exists; returns it either way.
/// `extra_configs` are set on it besides its cleanup policy and segment size.
pub fn ensure_internal_topic(
    state: &BrokerState,
    name: &str,
    partitions: i32,
    segment_bytes: u64,
    extra_configs: &[(&str, &str)],
) -> Result<weir_meta::catalog::Topic, crate::state::ApiError> {
    if let Some(t) = state.topic(name) {
        return Ok(t);
    }
    let mut configs = BTreeMap::new();
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    configs.insert("segment.bytes".to_string(), segment_bytes.to_string());
    for (key, value) in extra_configs {
        configs.insert(key.to_string(), value.to_string());
    }
    match state.create_topic(name, partitions, 1, configs, true, true) {
        Ok(t) => Ok(t),
        // Created meanwhile by another request.
        Err(e) => state.topic(name).ok_or(e),
    }
}
