//! The one runtime that drives the pure coordinators (`weir-groups`, `weir-txn`), in the
//! model of Kafka's `coordinator-common`.
//!
//! One task owns a coordinator ([`Shard`]). Each request reaches it over a bounded channel
//! with a token; the coordinator answers with responses (possibly for earlier, parked
//! requests) and records. The records are appended to the coordinator's internal topic
//! and, under `--fsync always`, made durable through its journal (one fsync however many
//! partitions a step touches) *before* any response of that step is released, so a client
//! never sees an acknowledgement the broker could forget. Then the shard's side effects run
//! ([`Shard::after_durable`], e.g. transaction markers), whose records are made durable the
//! same way, and only then do the responses go. Timers come back as a deadline; the task
//! sleeps until it and then ticks the coordinator.
//!
//! On start, what the journal holds and a partition lacks is appended again
//! ([`recover_journal`]), then every batch of the internal topic is replayed into the
//! coordinator ([`replay_topic`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use tokio::sync::{mpsc, oneshot};
use weir_log::batch::{
    encode_batch, encode_transactional_batch, whole_batches, BatchHeader, NewRecord,
};
use weir_log::FsyncPolicy;

use crate::handlers::produce::now_ms;
use crate::offsets_journal::{OffsetsJournal, JOURNAL_BYTES_MAX};
use crate::state::BrokerState;

/// Requests queued for a coordinator task; senders wait when it is full.
pub const COORDINATOR_REQUESTS_QUEUED_MAX: usize = 4096;
/// Queued requests handled together before one write of their records.
pub const COORDINATOR_CALLS_PER_WRITE_MAX: usize = 512;
/// Rounds of side effects after one write (each may lead to more records).
pub const EFFECT_ROUNDS_MAX: usize = 4;

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
    pub journal: Arc<parking_lot::Mutex<OffsetsJournal>>,
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
}

impl<S: Shard> Clone for CoordinatorHandle<S> {
    fn clone(&self) -> Self {
        CoordinatorHandle {
            tx: self.tx.clone(),
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
        tokio::spawn(run(Arc::clone(state), shard, rx, Arc::new(persistence)));
        CoordinatorHandle { tx }
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
                && !persist_async(&state, &persistence, std::mem::take(&mut step.records)).await
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

/// Persists records on the blocking pool; false (logged) when that failed.
async fn persist_async(
    state: &Arc<BrokerState>,
    persistence: &Arc<Persistence>,
    records: Vec<CoordinatorRecord>,
) -> bool {
    let (s, p) = (Arc::clone(state), Arc::clone(persistence));
    match tokio::task::spawn_blocking(move || persist(&s, &p, records)).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::error!(topic = persistence.topic, error = %e, "could not persist coordinator records");
            false
        }
        Err(e) => {
            tracing::error!(topic = persistence.topic, error = %e, "coordinator persistence task failed");
            false
        }
    }
}

/// Appends records to their partitions of the internal topic (one batch per partition and
/// producer) and, under `--fsync always`, journals them with one fsync.
pub fn persist(
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
    let mut written = Vec::new();
    for ((part, producer), records) in batches {
        let handle = state
            .partition(p.topic, part)
            .ok_or_else(|| anyhow::anyhow!("{}-{part} is missing", p.topic))?;
        let mut buf = match producer {
            // As Kafka's coordinators write them: transactional, without a sequence.
            Some((pid, epoch)) => {
                encode_transactional_batch(&records, (pid, epoch, -1), Compression::None)?
            }
            None => encode_batch(&records, None, Compression::None)?,
        };
        handle.log.lock().append_internal(&mut buf, now)?;
        written.push((part, handle, buf));
    }
    if state.config.fsync == FsyncPolicy::Always {
        // One fsync makes the whole step durable, however many partitions it touched.
        let mut journal = p.journal.lock();
        let entries: Vec<(i32, &[u8])> = written
            .iter()
            .map(|(part, _, buf)| (*part, &buf[..]))
            .collect();
        state.metrics.timed_fsync(|| journal.append(&entries))?;
        if journal.len() > JOURNAL_BYTES_MAX {
            // Everything the journal covers goes to disk in its partitions; then it can go.
            let files: Vec<_> = (0..partitions)
                .filter_map(|i| state.partition(p.topic, i))
                .map(|h| h.log.lock().sync_handle())
                .collect();
            for r in state
                .metrics
                .timed_fsync(|| weir_log::sync_data_all(&files))
            {
                if let Err(e) = r {
                    // A failed fsync may not fail again: the journal stays as it is.
                    journal.mark_failed();
                    return Err(e.into());
                }
            }
            journal.reset()?;
        }
    }
    for (_, handle, _) in written {
        handle.appended.notify_waiters();
    }
    Ok(())
}

/// Opens a coordinator's journal and puts back into `topic` every journalled batch a
/// partition lacks (lost with the page cache in a crash), at the offset it had; then fsyncs
/// those partitions and empties the journal.
pub fn recover_journal(
    state: &BrokerState,
    topic: &str,
    path: &std::path::Path,
) -> anyhow::Result<OffsetsJournal> {
    let (mut journal, entries) =
        OffsetsJournal::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if entries.is_empty() {
        return Ok(journal);
    }
    let mut restored = 0usize;
    let mut named = std::collections::BTreeSet::new();
    for entry in entries {
        let Some(handle) = state.partition(topic, entry.partition) else {
            tracing::warn!(
                partition = entry.partition,
                "the journal names a partition {topic} lacks; skipped"
            );
            continue;
        };
        named.insert(entry.partition);
        let Ok(header) = BatchHeader::parse(&entry.batch) else {
            continue;
        };
        let mut log = handle.log.lock();
        if header.base_offset < log.log_end_offset() {
            continue; // the partition has it (maybe only in the page cache: synced below)
        }
        let mut batch = entry.batch;
        let outcome = log.append_internal(&mut batch, now_ms())?;
        if outcome.base_offset != header.base_offset {
            tracing::error!(
                partition = entry.partition,
                journalled = header.base_offset,
                appended = outcome.base_offset,
                missing_offsets = header.base_offset - outcome.base_offset,
                "a journalled batch went back at another offset: the partition lost data the journal does not hold"
            );
        }
        restored += 1;
    }
    // Every partition the journal covers goes to disk before the journal is emptied: after a
    // process crash its batches may still be only in the page cache.
    for p in named {
        if let Some(handle) = state.partition(topic, p) {
            state.metrics.timed_fsync(|| handle.log.lock().sync())?;
        }
    }
    journal.reset()?;
    if restored > 0 {
        tracing::info!(
            batches = restored,
            "restored coordinator writes to {topic} from its journal"
        );
    }
    Ok(journal)
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
    let mut count = 0usize;
    for p in 0..partitions {
        let Some(handle) = state.partition(topic, p) else {
            continue;
        };
        let mut offset = handle.log.lock().log_start_offset();
        loop {
            let slice = handle.log.lock().read(offset, 1 << 20)?;
            let Some(slice) = slice else { break };
            let bytes = slice.load()?;
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
