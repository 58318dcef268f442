//! Transactions against an in-memory model: seeded random sequences of transactional and
//! plain appends from three producers, commits, aborts, fenced markers, segment rolls,
//! syncs and crashes (the log dropped and reopened, its unsynced tail possibly cut, its
//! active `.txnindex` possibly lost or torn, its newest producer snapshot possibly gone),
//! checked against what the surviving batches say the partition must hold.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use rand::{rngs::StdRng, Rng, SeedableRng};
use weir_log::batch::{
    encode_batch, encode_transactional_batch, end_txn_marker, whole_batches, BatchHeader,
    ControlRecordType, NewRecord,
};
use weir_log::{AbortedTxn, LogConfig, LogError, PartitionLog};

const PRODUCERS: [i64; 3] = [100, 101, 102];
const SEEDS: u64 = 20;
const STEPS: usize = 150;

#[derive(Debug, Clone)]
enum Kind {
    Data {
        transactional: bool,
        values: Vec<String>,
    },
    Marker {
        commit: bool,
        coordinator_epoch: i32,
    },
}

/// One batch the log acknowledged.
#[derive(Debug, Clone)]
struct ModelBatch {
    base: i64,
    pid: i64,
    epoch: i16,
    first_seq: i32,
    kind: Kind,
}

/// What the surviving batches say the partition holds.
#[derive(Debug, Default)]
struct Derived {
    /// Producer id → first offset of its open transaction.
    open: BTreeMap<i64, i64>,
    aborted: Vec<AbortedTxn>,
    epoch: HashMap<i64, i16>,
    coordinator_epoch: HashMap<i64, i32>,
    next_seq: HashMap<i64, i32>,
    last_stable_offset: i64,
    /// (offset, value) of every record a read_committed reader sees below the LSO.
    committed: Vec<(i64, String)>,
}

fn derive(batches: &[ModelBatch], log_end_offset: i64) -> Derived {
    let mut d = Derived::default();
    // (producer id, first offset) of each transaction → committed?
    let mut fate: HashMap<(i64, i64), bool> = HashMap::new();
    let mut txn_of: Vec<Option<(i64, i64)>> = Vec::new();
    for b in batches {
        let mut txn = None;
        match &b.kind {
            Kind::Data {
                transactional,
                values,
            } => {
                if b.pid >= 0 {
                    if d.epoch.insert(b.pid, b.epoch) != Some(b.epoch) {
                        d.next_seq.insert(b.pid, 0);
                    }
                    d.next_seq.insert(b.pid, b.first_seq + values.len() as i32);
                    if *transactional {
                        let first = *d.open.entry(b.pid).or_insert(b.base);
                        txn = Some((b.pid, first));
                    }
                }
            }
            Kind::Marker {
                commit,
                coordinator_epoch,
            } => {
                if d.epoch.insert(b.pid, b.epoch) != Some(b.epoch) {
                    d.next_seq.insert(b.pid, 0);
                }
                d.coordinator_epoch.insert(b.pid, *coordinator_epoch);
                if let Some(first) = d.open.remove(&b.pid) {
                    fate.insert((b.pid, first), *commit);
                    if !commit {
                        let lso = d.open.values().min().copied().unwrap_or(b.base + 1);
                        d.aborted.push(AbortedTxn {
                            producer_id: b.pid,
                            first_offset: first,
                            last_offset: b.base,
                            last_stable_offset: lso,
                        });
                    }
                }
            }
        }
        txn_of.push(txn);
    }
    d.last_stable_offset = d.open.values().min().copied().unwrap_or(log_end_offset);
    for (b, txn) in batches.iter().zip(&txn_of) {
        let Kind::Data { values, .. } = &b.kind else {
            continue;
        };
        let visible =
            b.base < d.last_stable_offset && txn.is_none_or(|t| fate.get(&t) == Some(&true));
        if visible {
            d.committed.extend(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (b.base + i as i64, v.clone())),
            );
        }
    }
    d.aborted.sort_by_key(|a| (a.first_offset, a.last_offset));
    d
}

fn records(values: &[String]) -> Vec<NewRecord> {
    values
        .iter()
        .map(|v| NewRecord {
            key: Some(Bytes::from(format!("k-{v}"))),
            value: Some(Bytes::from(v.clone())),
            timestamp_ms: 1_000,
        })
        .collect()
}

/// Reads like a read_committed consumer: up to the LSO with `read_bounded`, each fetch
/// carrying the aborted transactions of its range; skips control batches and the batches of
/// aborted transactions, as Kafka's consumer does.
fn read_committed(log: &PartitionLog, max_bytes: usize) -> Vec<(i64, String)> {
    let lso = log.last_stable_offset();
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < lso {
        let slice = log
            .read_bounded(next, max_bytes, lso)
            .unwrap()
            .expect("batches below the LSO");
        let mut aborted = log.aborted_transactions(next, lso).into_iter().peekable();
        let mut aborted_producers: HashSet<i64> = HashSet::new();
        let bytes = slice.load().unwrap();
        assert!(
            !bytes.is_empty(),
            "a planned read returns at least one batch"
        );
        for batch in whole_batches(bytes) {
            let (h, raw) = batch.unwrap();
            assert!(
                h.base_offset < lso,
                "read_bounded returned a batch at {} past the LSO {lso}",
                h.base_offset
            );
            while let Some(a) = aborted.next_if(|a| a.first_offset <= h.last_offset()) {
                aborted_producers.insert(a.producer_id);
            }
            next = h.last_offset() + 1;
            if h.is_control() {
                if end_txn_marker(&raw).map(|m| m.control_type) == Some(ControlRecordType::Abort) {
                    aborted_producers.remove(&h.producer_id);
                }
                continue;
            }
            if h.is_transactional() && aborted_producers.contains(&h.producer_id) {
                continue;
            }
            for r in RecordBatchDecoder::decode(&mut raw.clone())
                .unwrap()
                .records
            {
                out.push((
                    r.offset,
                    String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                ));
            }
        }
    }
    out
}

fn check(log: &PartitionLog, model: &[ModelBatch], max_bytes: usize, full: bool, at: &str) {
    let d = derive(model, log.log_end_offset());
    assert_eq!(log.last_stable_offset(), d.last_stable_offset, "{at}: LSO");
    let open: BTreeMap<i64, i64> = log
        .producer_states()
        .iter()
        .filter(|p| p.current_txn_start_offset >= 0)
        .map(|p| (p.producer_id, p.current_txn_start_offset))
        .collect();
    assert_eq!(open, d.open, "{at}: open transactions");
    assert_eq!(
        log.aborted_transactions(0, i64::MAX),
        d.aborted,
        "{at}: aborted transactions"
    );
    for p in log.producer_states() {
        assert_eq!(
            Some(&p.producer_epoch),
            d.epoch.get(&p.producer_id),
            "{at}: epoch of {}",
            p.producer_id
        );
        assert_eq!(
            p.coordinator_epoch,
            d.coordinator_epoch
                .get(&p.producer_id)
                .copied()
                .unwrap_or(-1),
            "{at}: coordinator epoch"
        );
    }
    if full {
        assert_eq!(
            read_committed(log, max_bytes),
            d.committed,
            "{at}: committed records"
        );
    }
}

fn files_with(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    out.sort();
    out
}

/// A crash: drops the log and damages what an fsync had not made durable. Returns the offset
/// the log was cut at, if it was.
fn crash(dir: &Path, durable_offset: i64, rng: &mut StdRng) -> Option<i64> {
    let active = files_with(dir, "log").pop().unwrap();
    let active_base: i64 = active
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let durable_offset = durable_offset.max(active_base);
    let mut cut = None;
    if rng.gen_bool(0.6) {
        // Batch starts at or past the durable point; cut at one, or tear the batch there.
        let bytes = fs::read(&active).unwrap();
        let mut starts = Vec::new();
        let mut at = 0usize;
        while at < bytes.len() {
            let h = BatchHeader::parse(&bytes[at..]).unwrap();
            if h.base_offset >= durable_offset {
                starts.push((at, h.base_offset, h.size_bytes));
            }
            at += h.size_bytes;
        }
        if !starts.is_empty() {
            let (position, base, size) = starts[rng.gen_range(0..starts.len())];
            let torn = if rng.gen_bool(0.5) {
                rng.gen_range(1..size)
            } else {
                0
            };
            OpenOptions::new()
                .write(true)
                .open(&active)
                .unwrap()
                .set_len((position + torn) as u64)
                .unwrap();
            cut = Some(base);
        }
    }
    // The active segment's .txnindex is never fsynced on its own: any prefix may be left.
    let index = active.with_extension("txnindex");
    if index.exists() {
        match rng.gen_range(0..3) {
            0 => fs::remove_file(&index).unwrap(),
            1 => {
                let len = fs::metadata(&index).unwrap().len();
                OpenOptions::new()
                    .write(true)
                    .open(&index)
                    .unwrap()
                    .set_len(rng.gen_range(0..=len))
                    .unwrap();
            }
            _ => {}
        }
    }
    // A crash between a roll's new segment and its snapshot leaves no snapshot for it.
    if rng.gen_bool(0.2) {
        if let Some(newest) = files_with(dir, "snapshot").pop() {
            fs::remove_file(newest).unwrap();
        }
    }
    cut
}

#[test]
fn random_transactions_crashes_and_reopens_match_the_model() {
    // Goal: after every step and every crash and reopen, the LSO, the open transactions, the
    // aborted transactions and the producers' epochs are what the acknowledged (and surviving)
    // batches say, and a read_committed reader sees exactly the committed records in order.
    for seed in 0..SEEDS {
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        let mut model: Vec<ModelBatch> = Vec::new();
        let mut synced_offset = 0i64;
        let mut crashes = 0;
        for step in 0..STEPS {
            let at = format!("seed {seed} step {step}");
            let d = derive(&model, log.log_end_offset());
            let p = PRODUCERS[rng.gen_range(0..PRODUCERS.len())];
            let epoch = d.epoch.get(&p).copied().unwrap_or(0);
            let seq = d.next_seq.get(&p).copied().unwrap_or(0);
            let coordinator_epoch = d.coordinator_epoch.get(&p).copied().unwrap_or(0);
            let values: Vec<String> = (0..rng.gen_range(1..5))
                .map(|i| format!("s{seed}-{step}-{i}"))
                .collect();
            let mut full_check = false;
            match rng.gen_range(0..100) {
                0..=34 => {
                    let mut b = encode_transactional_batch(
                        &records(&values),
                        (p, epoch, seq),
                        Compression::None,
                    )
                    .unwrap()
                    .to_vec();
                    let out = log.append(&mut b, 0).unwrap();
                    assert!(!out.duplicate, "{at}");
                    model.push(ModelBatch {
                        base: out.base_offset,
                        pid: p,
                        epoch,
                        first_seq: seq,
                        kind: Kind::Data {
                            transactional: true,
                            values,
                        },
                    });
                }
                35..=44 => {
                    let mut b = encode_batch(&records(&values), None, Compression::Lz4)
                        .unwrap()
                        .to_vec();
                    let out = log.append(&mut b, 0).unwrap();
                    model.push(ModelBatch {
                        base: out.base_offset,
                        pid: -1,
                        epoch: -1,
                        first_seq: -1,
                        kind: Kind::Data {
                            transactional: false,
                            values,
                        },
                    });
                }
                45..=52 => {
                    let mut b =
                        encode_batch(&records(&values), Some((p, epoch, seq)), Compression::None)
                            .unwrap()
                            .to_vec();
                    let end = log.log_end_offset();
                    if d.open.contains_key(&p) {
                        assert!(
                            matches!(log.append(&mut b, 0), Err(LogError::InvalidTxnState(_))),
                            "{at}"
                        );
                        assert_eq!(
                            log.log_end_offset(),
                            end,
                            "{at}: a refused batch stores nothing"
                        );
                    } else {
                        let out = log.append(&mut b, 0).unwrap();
                        model.push(ModelBatch {
                            base: out.base_offset,
                            pid: p,
                            epoch,
                            first_seq: seq,
                            kind: Kind::Data {
                                transactional: false,
                                values,
                            },
                        });
                    }
                }
                53..=69 => {
                    let commit = rng.gen_bool(0.5);
                    let end = log.log_end_offset();
                    match rng.gen_range(0..10) {
                        0 if epoch > 0 => {
                            assert!(
                                matches!(
                                    log.append_marker(p, epoch - 1, coordinator_epoch, commit, 0),
                                    Err(LogError::InvalidProducerEpoch { .. })
                                ),
                                "{at}"
                            );
                            assert_eq!(log.log_end_offset(), end, "{at}");
                        }
                        1 if d.coordinator_epoch.get(&p).is_some_and(|&c| c > 0) => {
                            assert!(
                                matches!(
                                    log.append_marker(p, epoch, coordinator_epoch - 1, commit, 0),
                                    Err(LogError::TransactionCoordinatorFenced { .. })
                                ),
                                "{at}"
                            );
                            assert_eq!(log.log_end_offset(), end, "{at}");
                        }
                        n => {
                            // Now and then a new producer epoch or a new coordinator.
                            let epoch = if n == 2 { epoch + 1 } else { epoch };
                            let coordinator_epoch = if n == 3 {
                                coordinator_epoch + 1
                            } else {
                                coordinator_epoch
                            };
                            let out = log
                                .append_marker(p, epoch, coordinator_epoch, commit, 0)
                                .unwrap();
                            model.push(ModelBatch {
                                base: out.base_offset,
                                pid: p,
                                epoch,
                                first_seq: -1,
                                kind: Kind::Marker {
                                    commit,
                                    coordinator_epoch,
                                },
                            });
                        }
                    }
                }
                70..=79 => {
                    log.sync().unwrap();
                    synced_offset = log.log_end_offset();
                }
                80..=91 => {
                    drop(log);
                    if let Some(cut) = crash(dir.path(), synced_offset, &mut rng) {
                        model.retain(|b| b.base < cut);
                    }
                    log = PartitionLog::open(dir.path(), config.clone()).unwrap();
                    crashes += 1;
                    full_check = true;
                }
                _ => {
                    drop(log);
                    log = PartitionLog::open(dir.path(), config.clone()).unwrap();
                    full_check = true;
                }
            }
            let expected_end = model.last().map_or(0, |b| match &b.kind {
                Kind::Data { values, .. } => b.base + values.len() as i64,
                Kind::Marker { .. } => b.base + 1,
            });
            assert_eq!(log.log_end_offset(), expected_end, "{at}: log end");
            check(
                &log,
                &model,
                rng.gen_range(200..4000),
                full_check || step + 1 == STEPS,
                &at,
            );
        }
        assert!(
            crashes > 5 && log.segment_count() > 3,
            "seed {seed}: the run crashed and rolled"
        );
        assert!(
            derive(&model, log.log_end_offset()).aborted.len() > 1,
            "seed {seed}: the run aborted transactions"
        );
    }
}
