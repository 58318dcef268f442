//! A seeded simulation of the transaction coordinator together with real partition logs:
//! producers open transactions, add partitions, write transactional batches (after the
//! broker-style verification), commit or abort, get fenced by new instances and time out;
//! the coordinator crashes (it is rebuilt from the records it wrote), answers get lost, and
//! markers are written late. Checked at every step: replaying the records from empty gives
//! the live state; no producer id and epoch is ever handed to two instances; each log's last
//! stable offset is exactly the first offset of its earliest open transaction. Checked at
//! the end, once everything has settled: every transaction is committed in all its
//! partitions or aborted in all, as its EndTxn said, as a read_committed reader sees it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use kafka_protocol::ResponseError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weir_log::batch::{encode_transactional_batch, whole_batches, NewRecord};
use weir_log::{LogConfig, PartitionLog};
use weir_txn::*;

const SEEDS: u64 = 40;
const STEPS: usize = 400;
const PARTITIONS: i32 = 4;
const TOPIC: &str = "t";
const TIMEOUT_MS: i32 = 10_000;

struct Counter(i64);
impl ProducerIds for Counter {
    fn next_producer_id(&mut self) -> Result<i64, TxnError> {
        self.0 += 1;
        Ok(self.0)
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// One instance of a producer (a process with a transactional id).
struct Instance {
    tid: String,
    id: usize,
    /// The id and epoch the instance last heard; None before InitProducerId succeeds.
    producer: Option<(i64, i16)>,
    /// EndTxn version: 4 for transactions V1, 5 for V2.
    end_version: i16,
    /// The open transaction's number and partitions, with the next sequence per partition.
    txn: Option<(usize, BTreeSet<i32>)>,
    sequences: HashMap<i32, i32>,
    /// A decision sent whose answer was lost: retried as is.
    ending: Option<bool>,
    txn_counter: usize,
}

/// What the clients learned of a transaction's end: (instance, txn number) -> committed.
type Outcomes = HashMap<(usize, usize), bool>;

struct World {
    rng: StdRng,
    now_ms: i64,
    coordinator: TxnCoordinator,
    records: Vec<Record>,
    ids: Counter,
    token: u64,
    markers: Vec<MarkerJob>,
    logs: Vec<PartitionLog>,
    /// Per partition, producer id -> first offset of its open transaction there.
    open: Vec<BTreeMap<i64, i64>>,
    /// (pid, epoch) -> the instance it was given to.
    owners: HashMap<(i64, i16), usize>,
    outcomes: Outcomes,
    /// Which transaction each written batch belongs to: (partition, offset) -> (instance, txn).
    written: BTreeMap<(i32, i64), (usize, usize)>,
}

impl World {
    fn config() -> TxnConfig {
        TxnConfig {
            transaction_max_timeout_ms: 60_000,
            ..TxnConfig::default()
        }
    }

    fn step(&mut self, version: i16, request: TxnRequest) -> Option<TxnResponse> {
        self.token += 1;
        let out = self.coordinator.handle(
            self.now_ms,
            RequestContext {
                token: self.token,
                api_version: version,
            },
            request,
            &mut self.ids,
        );
        let mut responses = self.absorb(out);
        // Markers are usually written at once, as the runtime does; sometimes later.
        if self.rng.gen_bool(0.8) {
            responses.extend(self.write_markers());
        }
        // An answer lost on the way back (or a crash after the write).
        if self.rng.gen_bool(0.05) {
            return None;
        }
        responses
            .into_iter()
            .find(|(t, _)| *t == self.token)
            .map(|(_, r)| r)
    }

    fn absorb(&mut self, out: Output) -> Vec<(u64, TxnResponse)> {
        self.records.extend(out.records);
        self.markers.extend(out.markers);
        out.responses
    }

    fn write_markers(&mut self) -> Vec<(u64, TxnResponse)> {
        let mut responses = Vec::new();
        for job in std::mem::take(&mut self.markers) {
            for (_, p) in &job.partitions {
                let log = &mut self.logs[*p as usize];
                match log.append_marker(
                    job.producer_id,
                    job.producer_epoch,
                    job.coordinator_epoch,
                    job.commit,
                    self.now_ms,
                ) {
                    Ok(_) => {
                        self.open[*p as usize].remove(&job.producer_id);
                    }
                    Err(weir_log::LogError::InvalidProducerEpoch { .. }) => {}
                    Err(e) => panic!("marker refused: {e}"),
                }
            }
            let out = self.coordinator.markers_written(
                self.now_ms,
                &job.transactional_id,
                job.producer_id,
                job.producer_epoch,
            );
            responses.extend(self.absorb(out));
        }
        responses
    }

    fn crash(&mut self) {
        let mut fresh = TxnCoordinator::new(Self::config());
        for r in &self.records {
            fresh.replay(&r.key, r.value.as_deref()).unwrap();
        }
        self.coordinator = fresh;
        // Markers not yet written are lost with the process, and found again from the state.
        self.markers = self.coordinator.pending_markers();
    }

    fn check(&self) {
        let mut fresh = TxnCoordinator::new(Self::config());
        for r in &self.records {
            fresh.replay(&r.key, r.value.as_deref()).unwrap();
        }
        let live: Vec<_> = self.coordinator.transactions().cloned().collect();
        let replayed: Vec<_> = fresh.transactions().cloned().collect();
        assert_eq!(live, replayed, "replay differs from the live state");
        for (p, log) in self.logs.iter().enumerate() {
            let expected = self.open[p]
                .values()
                .min()
                .copied()
                .unwrap_or(log.high_watermark());
            assert_eq!(
                log.last_stable_offset(),
                expected,
                "partition {p}: the LSO must be the first open transaction's first offset"
            );
        }
    }

    fn hand_out(&mut self, inst: &mut Instance, pid: i64, epoch: i16) {
        if let Some(owner) = self.owners.insert((pid, epoch), inst.id) {
            assert_eq!(
                owner, inst.id,
                "producer {pid} epoch {epoch} given to two instances"
            );
        }
        inst.producer = Some((pid, epoch));
    }
}

fn run(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 4096,
        ..LogConfig::default()
    };
    let logs = (0..PARTITIONS)
        .map(|p| {
            PartitionLog::open(&dir.path().join(format!("{TOPIC}-{p}")), config.clone()).unwrap()
        })
        .collect();
    let mut w = World {
        rng: StdRng::seed_from_u64(seed),
        now_ms: 1_000,
        coordinator: TxnCoordinator::new(World::config()),
        records: Vec::new(),
        ids: Counter(100),
        token: 0,
        markers: Vec::new(),
        logs,
        open: vec![BTreeMap::new(); PARTITIONS as usize],
        owners: HashMap::new(),
        outcomes: HashMap::new(),
        written: BTreeMap::new(),
    };
    let mut next_instance = 0usize;
    let mut new_instance = |tid: &str, end_version: i16| {
        next_instance += 1;
        Instance {
            tid: tid.to_string(),
            id: next_instance,
            producer: None,
            end_version,
            txn: None,
            sequences: HashMap::new(),
            ending: None,
            txn_counter: 0,
        }
    };
    let mut clients: Vec<Instance> = vec![
        new_instance("a", 4),
        new_instance("b", 5),
        new_instance("c", 5),
    ];

    for _ in 0..STEPS {
        let which = w.rng.gen_range(0..clients.len());
        let roll = w.rng.gen_range(0..100);
        if roll < 4 {
            w.crash();
        } else if roll < 12 {
            w.now_ms += w.rng.gen_range(0..4_000);
            let out = w.coordinator.tick(w.now_ms);
            w.absorb(out);
            w.write_markers();
        } else if roll < 18 {
            w.write_markers();
        } else if roll < 24 || clients[which].producer.is_none() {
            // A new instance of this transactional id (a restart), which fences the old.
            let (tid, v) = (clients[which].tid.clone(), clients[which].end_version);
            let mut inst = new_instance(&tid, v);
            let r = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(s(&tid))))
                .with_transaction_timeout_ms(TIMEOUT_MS)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            if let Some(TxnResponse::InitProducerId(b)) = w.step(4, TxnRequest::InitProducerId(r)) {
                if b.error_code == 0 {
                    w.hand_out(&mut inst, b.producer_id.0, b.producer_epoch);
                    clients[which] = inst;
                }
            }
        } else {
            let inst = &mut clients[which];
            let Some((pid, epoch)) = inst.producer else {
                continue;
            };
            if let Some(commit) = inst.ending {
                end(&mut w, inst, pid, epoch, commit);
            } else if inst.txn.is_none() || roll < 50 {
                // Add a partition (V1 clients) and write a batch to it.
                let p = w.rng.gen_range(0..PARTITIONS);
                if inst.txn.is_none() {
                    inst.txn_counter += 1;
                    inst.txn = Some((inst.txn_counter, BTreeSet::new()));
                }
                let added = if inst.end_version < 5 {
                    let r = AddPartitionsToTxnRequest::default()
                        .with_v3_and_below_transactional_id(TransactionalId(s(&inst.tid)))
                        .with_v3_and_below_producer_id(ProducerId(pid))
                        .with_v3_and_below_producer_epoch(epoch)
                        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                            .with_name(TopicName(s(TOPIC)))
                            .with_partitions(vec![p])]);
                    matches!(w.step(3, TxnRequest::AddPartitionsToTxn(r)), Some(TxnResponse::AddPartitionsToTxn(b)) if b.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code == 0)
                } else {
                    true
                };
                if added {
                    produce(&mut w, inst, pid, epoch, p);
                }
            } else {
                let commit = w.rng.gen_bool(0.6);
                end(&mut w, inst, pid, epoch, commit);
            }
        }
        w.check();
    }

    // Settle: past every timeout, every marker written.
    for _ in 0..10 {
        w.now_ms += i64::from(TIMEOUT_MS) + 1;
        let out = w.coordinator.tick(w.now_ms);
        w.absorb(out);
        w.write_markers();
        w.check();
    }
    assert!(
        w.coordinator.transactions().all(|m| !matches!(
            m.state,
            TxnState::Ongoing | TxnState::PrepareCommit | TxnState::PrepareAbort
        )),
        "seed {seed}: something stayed open"
    );

    // What a read_committed reader sees, per transaction: visible in all its partitions or none.
    let mut visible: HashMap<(usize, usize), BTreeSet<bool>> = HashMap::new();
    for (p, log) in w.logs.iter().enumerate() {
        let lso = log.last_stable_offset();
        let aborted = log.aborted_transactions(0, lso);
        let mut offset = log.log_start_offset();
        while offset < lso {
            let Some(slice) = log.read_bounded(offset, 1 << 20, lso).unwrap() else {
                break;
            };
            let bytes = slice.load().unwrap();
            if bytes.is_empty() {
                break;
            }
            for batch in whole_batches(bytes) {
                let (header, mut b) = batch.unwrap();
                offset = header.last_offset() + 1;
                if header.is_control() {
                    continue;
                }
                let _ = RecordBatchDecoder::decode(&mut b).unwrap();
                let dropped = aborted.iter().any(|a| {
                    a.producer_id == header.producer_id
                        && a.first_offset <= header.base_offset
                        && header.base_offset <= a.last_offset
                });
                if let Some(txn) = w.written.get(&(p as i32, header.base_offset)) {
                    visible.entry(*txn).or_default().insert(!dropped);
                }
            }
        }
    }
    for (txn, seen) in &visible {
        assert_eq!(seen.len(), 1, "seed {seed}: transaction {txn:?} is committed in some partitions and aborted in others");
        if let Some(&committed) = w.outcomes.get(txn) {
            assert_eq!(
                seen.contains(&true),
                committed,
                "seed {seed}: transaction {txn:?} was answered committed={committed}"
            );
        }
    }
}

fn produce(w: &mut World, inst: &mut Instance, pid: i64, epoch: i16, p: i32) {
    // The broker's check first (KIP-890): verify for V1 clients, add for V2 ones.
    let txn = AddPartitionsToTxnTransaction::default()
        .with_transactional_id(TransactionalId(s(&inst.tid)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_verify_only(inst.end_version < 5)
        .with_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(TopicName(s(TOPIC)))
            .with_partitions(vec![p])]);
    let r = AddPartitionsToTxnRequest::default().with_transactions(vec![txn]);
    let ok = matches!(w.step(5, TxnRequest::AddPartitionsToTxn(r)), Some(TxnResponse::AddPartitionsToTxn(b)) if b.results_by_transaction[0].topic_results[0].results_by_partition[0].partition_error_code == 0);
    if !ok {
        return;
    }
    let (txn_no, parts) = inst.txn.as_mut().expect("open");
    let seq = inst.sequences.entry(p).or_insert(0);
    let records: Vec<NewRecord> = (0..3)
        .map(|i| NewRecord {
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from("v")),
            timestamp_ms: w.now_ms,
        })
        .collect();
    let mut batch =
        encode_transactional_batch(&records, (pid, epoch, *seq), Compression::None).unwrap();
    match w.logs[p as usize].append(&mut batch, w.now_ms) {
        Ok(outcome) => {
            *seq += 3;
            parts.insert(p);
            w.open[p as usize].entry(pid).or_insert(outcome.base_offset);
            w.written
                .insert((p, outcome.base_offset), (inst.id, *txn_no));
        }
        // Fenced by a marker of a newer epoch: this instance is done.
        Err(weir_log::LogError::InvalidProducerEpoch { .. }) => inst.producer = None,
        Err(e) => panic!("append refused: {e}"),
    }
}

fn end(w: &mut World, inst: &mut Instance, pid: i64, epoch: i16, commit: bool) {
    let r = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(s(&inst.tid)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    inst.ending = Some(commit);
    let Some(TxnResponse::EndTxn(b)) = w.step(inst.end_version, TxnRequest::EndTxn(r)) else {
        return;
    };
    inst.ending = None;
    let txn = inst.txn.take();
    if b.error_code == 0 {
        if let Some((no, _)) = txn {
            w.outcomes.insert((inst.id, no), commit);
        }
        if inst.end_version >= 5 {
            w.hand_out(inst, b.producer_id.0, b.producer_epoch);
            inst.sequences.clear();
        }
    } else if b.error_code == ResponseError::ProducerFenced.code()
        || b.error_code == ResponseError::InvalidProducerEpoch.code()
    {
        inst.producer = None;
    }
}

#[test]
fn seeded_simulation_keeps_transactions_atomic() {
    for seed in 0..SEEDS {
        run(seed);
    }
}
