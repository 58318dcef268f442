//! The runtime that drives the pure group coordinator (`weir-groups`).
//!
//! One task owns the [`Coordinator`]. Each group request reaches it over a bounded
//! channel with a token; the coordinator answers with responses (possibly for earlier,
//! parked requests, such as every JoinGroup of a completed rebalance) and records. The
//! records are appended to `__consumer_offsets` (and, under `--fsync always`, made durable
//! through the offsets journal: one fsync however many partitions a step touches) *before*
//! any response of that step is released, so a client never sees an acknowledgement the
//! broker could forget. Timers come back as a deadline; the task sleeps until it and then
//! ticks the coordinator.
//!
//! On start, what the journal holds and a partition lacks is appended again, then every
//! record of `__consumer_offsets` is replayed into the coordinator.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::records::{Compression, RecordBatchDecoder};
use tokio::sync::{mpsc, oneshot};
use weir_groups::{Coordinator, CoordinatorConfig, GroupRequest, GroupResponse, Output, RequestContext};
use weir_log::batch::{encode_batch, whole_batches, BatchHeader, NewRecord};
use weir_log::FsyncPolicy;

use crate::handlers::produce::now_ms;
use crate::offsets_journal::{OffsetsJournal, JOURNAL_BYTES_MAX};
use crate::state::BrokerState;

/// The offsets journal, shared by the coordinator task's writes.
type Journal = Arc<parking_lot::Mutex<OffsetsJournal>>;

/// The internal topic holding group metadata and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Group requests queued for the coordinator task; senders wait when it is full.
pub const GROUP_REQUESTS_QUEUED_MAX: usize = 4096;
/// Queued group requests handled together before one write of their records.
pub const GROUP_CALLS_PER_WRITE_MAX: usize = 512;

struct Call {
    api_version: i16,
    client_id: String,
    client_host: String,
    request: GroupRequest,
    reply: oneshot::Sender<GroupResponse>,
}

/// A handle for connections to reach the coordinator task.
#[derive(Clone)]
pub struct GroupRuntime {
    tx: mpsc::Sender<Call>,
}

/// The coordinator after replaying `__consumer_offsets`, ready to be spawned.
pub struct LoadedGroups {
    coordinator: Coordinator,
    partitions: i32,
    journal: Journal,
}

impl LoadedGroups {
    /// Starts the coordinator task.
    pub fn spawn(self, state: &Arc<BrokerState>) -> GroupRuntime {
        let (tx, rx) = mpsc::channel(GROUP_REQUESTS_QUEUED_MAX);
        tokio::spawn(run(Arc::clone(state), self.coordinator, rx, self.partitions, self.journal));
        GroupRuntime { tx }
    }
}

impl GroupRuntime {
    /// Replays `__consumer_offsets`, if it exists, into a new coordinator. As in Kafka, the
    /// topic itself is created on first use, not at start-up. Blocking: reads the whole topic.
    pub fn start_blocking(state: &Arc<BrokerState>) -> anyhow::Result<LoadedGroups> {
        let existing = state.topic(OFFSETS_TOPIC);
        let partitions = existing.as_ref().map(|t| t.partitions).unwrap_or(state.config.offsets_topic_partitions);
        let config = CoordinatorConfig {
            group_initial_rebalance_delay_ms: state.config.group_initial_rebalance_delay_ms,
            group_min_session_timeout_ms: state.config.group_min_session_timeout_ms,
            group_max_session_timeout_ms: state.config.group_max_session_timeout_ms,
            group_max_size: state.config.group_max_size.min(weir_groups::GROUP_MEMBERS_MAX),
            offsets_retention_ms: state.config.offsets_retention_ms,
            offsets_topic_partitions: partitions,
            ..CoordinatorConfig::default()
        };
        let mut coordinator = Coordinator::new(config);
        let journal = recover_journal(state)?;
        if existing.is_some() {
            let replayed = replay(state, &mut coordinator, partitions)?;
            tracing::debug!(records = replayed, "replayed {OFFSETS_TOPIC}");
        }
        Ok(LoadedGroups { coordinator, partitions, journal: Arc::new(parking_lot::Mutex::new(journal)) })
    }

    /// Sends one request to the coordinator and waits for its response. `None` if the
    /// coordinator task has stopped (shutdown).
    pub async fn call(&self, api_version: i16, client_id: String, client_host: String, request: GroupRequest) -> Option<GroupResponse> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Call { api_version, client_id, client_host, request, reply }).await.ok()?;
        rx.await.ok()
    }
}

/// Creates `__consumer_offsets` (internal, compacted, `offsets_topic_partitions` partitions)
/// unless it exists; returns it either way.
pub fn ensure_offsets_topic(state: &BrokerState) -> Result<weir_meta::catalog::Topic, crate::state::ApiError> {
    if let Some(t) = state.topic(OFFSETS_TOPIC) {
        return Ok(t);
    }
    let mut configs = BTreeMap::new();
    configs.insert("cleanup.policy".to_string(), "compact".to_string());
    configs.insert("segment.bytes".to_string(), state.config.offsets_topic_segment_bytes.to_string());
    match state.create_topic(OFFSETS_TOPIC, state.config.offsets_topic_partitions, 1, configs, true, true) {
        Ok(t) => Ok(t),
        // Created meanwhile by another request.
        Err(e) => state.topic(OFFSETS_TOPIC).ok_or(e),
    }
}

/// Where the offsets journal lives.
fn journal_path(state: &BrokerState) -> std::path::PathBuf {
    state.config.data_dir.join("meta").join("offsets-journal")
}

/// Opens the offsets journal and puts back into `__consumer_offsets` every journalled batch
/// a partition lacks (lost with the page cache in a crash), at the offset it had; then
/// fsyncs those partitions and empties the journal.
fn recover_journal(state: &BrokerState) -> anyhow::Result<OffsetsJournal> {
    let path = journal_path(state);
    let (mut journal, entries) = OffsetsJournal::open(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if entries.is_empty() {
        return Ok(journal);
    }
    let mut restored = 0usize;
    let mut named = std::collections::BTreeSet::new();
    for entry in entries {
        let Some(handle) = state.partition(OFFSETS_TOPIC, entry.partition) else {
            tracing::warn!(partition = entry.partition, "the offsets journal names a partition {OFFSETS_TOPIC} lacks; skipped");
            continue;
        };
        named.insert(entry.partition);
        let Ok(header) = BatchHeader::parse(&entry.batch) else { continue };
        let mut log = handle.log.lock();
        if header.base_offset < log.log_end_offset() {
            continue; // the partition has it (maybe only in the page cache: synced below)
        }
        let mut batch = entry.batch;
        let outcome = log.append_accepted(&mut batch, now_ms())?;
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
        if let Some(handle) = state.partition(OFFSETS_TOPIC, p) {
            handle.log.lock().sync()?;
        }
    }
    journal.reset()?;
    if restored > 0 {
        tracing::info!(batches = restored, "restored group writes from the offsets journal");
    }
    Ok(journal)
}

fn replay(state: &BrokerState, coordinator: &mut Coordinator, partitions: i32) -> anyhow::Result<usize> {
    let mut count = 0usize;
    for p in 0..partitions {
        let Some(handle) = state.partition(OFFSETS_TOPIC, p) else { continue };
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
                let (header, mut batch) = batch.map_err(|e| anyhow::anyhow!("{OFFSETS_TOPIC}-{p} at offset {offset}: {e}"))?;
                let set = RecordBatchDecoder::decode(&mut batch)
                    .map_err(|e| anyhow::anyhow!("{OFFSETS_TOPIC}-{p} at offset {}: {e}", header.base_offset))?;
                for r in set.records {
                    if r.offset < offset {
                        continue;
                    }
                    if let Some(key) = &r.key {
                        if let Err(e) = coordinator.replay(key, r.value.as_deref()) {
                            tracing::warn!(partition = p, offset = r.offset, error = %e, "skipped an unreadable {OFFSETS_TOPIC} record");
                        }
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

async fn run(state: Arc<BrokerState>, mut coordinator: Coordinator, mut rx: mpsc::Receiver<Call>, partitions: i32, journal: Journal) {
    let mut parked: HashMap<u64, oneshot::Sender<GroupResponse>> = HashMap::new();
    let mut next_token: u64 = 0;
    loop {
        let sleep_ms = coordinator
            .next_deadline_ms()
            .map(|d| (d - now_ms()).clamp(0, 60_000) as u64)
            .unwrap_or(60_000);
        let mut output = tokio::select! {
            // Requests already queued go before a due timer, so a join phase that ends now
            // still takes in the joins that arrived with it.
            biased;
            call = rx.recv() => {
                let Some(call) = call else { return };
                handle_call(&mut coordinator, &mut parked, &mut next_token, call)
            }
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms)) => coordinator.tick(now_ms()),
        };
        // Group commit: take whatever else is already queued, so one append and one fsync
        // cover all of it. Responses are still released only after that write.
        for _ in 0..GROUP_CALLS_PER_WRITE_MAX {
            let Ok(call) = rx.try_recv() else { break };
            let more = handle_call(&mut coordinator, &mut parked, &mut next_token, call);
            output.responses.extend(more.responses);
            output.records.extend(more.records);
        }
        release(&state, output, &mut parked, partitions, &journal).await;
    }
}

fn handle_call(
    coordinator: &mut Coordinator,
    parked: &mut HashMap<u64, oneshot::Sender<GroupResponse>>,
    next_token: &mut u64,
    call: Call,
) -> Output {
    *next_token += 1;
    parked.insert(*next_token, call.reply);
    let ctx = RequestContext {
        token: *next_token,
        api_version: call.api_version,
        client_id: call.client_id,
        client_host: call.client_host,
    };
    coordinator.handle(now_ms(), ctx, call.request)
}

/// Persists an output's records, then releases its responses.
async fn release(
    state: &Arc<BrokerState>,
    output: Output,
    parked: &mut HashMap<u64, oneshot::Sender<GroupResponse>>,
    partitions: i32,
    journal: &Journal,
) {
    let mut failed = false;
    if !output.records.is_empty() {
        let (s, j) = (Arc::clone(state), Arc::clone(journal));
        let records = output.records;
        let result = tokio::task::spawn_blocking(move || persist(&s, records, partitions, &j)).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not persist group records");
                failed = true;
            }
            Err(e) => {
                tracing::error!(error = %e, "group persistence task failed");
                failed = true;
            }
        }
    }
    for (token, response) in output.responses {
        if let Some(tx) = parked.remove(&token) {
            if failed {
                // Dropping the sender makes the connection answer nothing for this request;
                // the client times out and retries, as with a lost coordinator.
                continue;
            }
            let _ = tx.send(response);
        }
    }
}

fn persist(state: &BrokerState, records: Vec<weir_groups::Record>, partitions: i32, journal: &Journal) -> anyhow::Result<()> {
    let now = now_ms();
    // The topic as it is: created on first use, or by a client with its own partition count.
    let topic = ensure_offsets_topic(state).map_err(|e| anyhow::anyhow!("cannot create {OFFSETS_TOPIC}: {}", e.message))?;
    let partitions = partitions.min(topic.partitions).max(1);
    let mut by_partition: BTreeMap<i32, Vec<NewRecord>> = BTreeMap::new();
    for r in records {
        let p = r.partition.clamp(0, partitions - 1);
        by_partition.entry(p).or_default().push(NewRecord { key: Some(r.key), value: r.value, timestamp_ms: now });
    }
    let mut written = Vec::new();
    for (p, records) in by_partition {
        let handle = state
            .partition(OFFSETS_TOPIC, p)
            .ok_or_else(|| anyhow::anyhow!("{OFFSETS_TOPIC}-{p} is missing"))?;
        let mut buf = encode_batch(&records, None, Compression::None)?;
        handle.log.lock().append(&mut buf, now)?;
        written.push((p, handle, buf));
    }
    if state.config.fsync == FsyncPolicy::Always {
        // One fsync makes the whole step durable, however many partitions it touched.
        let mut journal = journal.lock();
        let entries: Vec<(i32, &[u8])> = written.iter().map(|(p, _, buf)| (*p, &buf[..])).collect();
        journal.append(&entries)?;
        if journal.len() > JOURNAL_BYTES_MAX {
            // Everything the journal covers goes to disk in its partitions; then it can go.
            let files: Vec<_> = (0..partitions).filter_map(|p| state.partition(OFFSETS_TOPIC, p)).map(|h| h.log.lock().sync_handle()).collect();
            for r in weir_log::sync_data_all(&files) {
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
