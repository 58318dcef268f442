//! Random append / roll / torn-write / reopen / delete-records sequences against an
//! in-memory model of what a partition must hold.

use std::fs::OpenOptions;

use bytes::Bytes;
use kafka_protocol::records::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use weir_log::batch::{encode_batch, NewRecord};
use weir_log::{LogConfig, LogError, PartitionLog};

fn batch(
    values: &[String],
    ts: i64,
    producer: Option<(i64, i16, i32)>,
    compression: Compression,
) -> Vec<u8> {
    let records: Vec<NewRecord> = values
        .iter()
        .enumerate()
        .map(|(i, v)| NewRecord {
            key: Some(Bytes::from(format!("key-{v}"))),
            value: Some(Bytes::from(v.clone())),
            timestamp_ms: ts + i as i64,
        })
        .collect();
    encode_batch(&records, producer, compression)
        .unwrap()
        .to_vec()
}

/// Reads every record from `from` to the end and returns (offset, value).
fn read_all(log: &PartitionLog, from: i64) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut next = from;
    loop {
        let Some(slice) = log.read(next, 64 * 1024).unwrap() else {
            break;
        };
        let mut bytes = slice.load().unwrap();
        assert!(
            !bytes.is_empty(),
            "a planned read returns at least one batch"
        );
        for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
            for r in set.records {
                if r.offset >= next {
                    out.push((
                        r.offset,
                        String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                    ));
                }
            }
        }
        let last = out.last().map(|x| x.0).unwrap_or(next - 1);
        if last + 1 == next {
            break;
        }
        next = last + 1;
    }
    out
}

#[test]
fn random_operations_match_the_model() {
    // Goal: across appends, segment rolls, torn tails, reopen and DeleteRecords, the log
    // returns exactly the records the model says, at the offsets it says.
    for seed in 0..20u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 2048,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        let mut model: Vec<(i64, String)> = Vec::new();
        let mut start = 0i64;
        for step in 0..200 {
            match rng.gen_range(0..100) {
                0..=69 => {
                    let n = rng.gen_range(1..8);
                    let values: Vec<String> =
                        (0..n).map(|i| format!("s{seed}-{step}-{i}")).collect();
                    let codec = [
                        Compression::None,
                        Compression::Gzip,
                        Compression::Snappy,
                        Compression::Lz4,
                        Compression::Zstd,
                    ][rng.gen_range(0..5)];
                    let mut b = batch(&values, 1_000 + step, None, codec);
                    let out = log.append(&mut b, 0).unwrap();
                    let base = model.last().map(|x| x.0 + 1).unwrap_or(0).max(start);
                    assert_eq!(
                        out.base_offset,
                        log.log_end_offset() - n as i64,
                        "seed {seed}"
                    );
                    for (i, v) in values.into_iter().enumerate() {
                        model.push((base + i as i64, v));
                    }
                }
                70..=79 => {
                    // Crash with a torn write: garbage after the last batch of the active segment.
                    drop(log);
                    let mut logs: Vec<_> = std::fs::read_dir(dir.path())
                        .unwrap()
                        .filter_map(|e| e.ok())
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "log"))
                        .collect();
                    logs.sort();
                    let f = OpenOptions::new()
                        .append(true)
                        .open(logs.last().unwrap())
                        .unwrap();
                    use std::io::Write;
                    let junk: Vec<u8> = (0..rng.gen_range(1..100)).map(|_| rng.gen()).collect();
                    (&f).write_all(&junk).unwrap();
                    log = PartitionLog::open(dir.path(), config.clone()).unwrap();
                }
                80..=89 => {
                    drop(log);
                    log = PartitionLog::open(dir.path(), config.clone()).unwrap();
                }
                _ => {
                    let end = log.log_end_offset();
                    if end > start {
                        let to = rng.gen_range(start..=end);
                        assert_eq!(log.delete_records_before(to).unwrap(), to);
                        start = to;
                        model.retain(|(o, _)| *o >= to);
                    }
                }
            }
            assert_eq!(log.log_start_offset(), start, "seed {seed} step {step}");
            assert_eq!(read_all(&log, start), model, "seed {seed} step {step}");
        }
        assert!(log.segment_count() >= 1);
    }
}

#[test]
fn idempotent_retries_are_stored_once() {
    // Goal: the same idempotent batch sent twice is stored once and acknowledged with its
    // first offset; a gap is refused with an out-of-order error, even after reopen.
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    let vals: Vec<String> = (0..3).map(|i| i.to_string()).collect();
    let first = batch(&vals, 1, Some((7, 0, 0)), Compression::None);
    let a = log.append(&mut first.clone(), 0).unwrap();
    let b = log.append(&mut first.clone(), 0).unwrap();
    assert_eq!((a.base_offset, a.duplicate), (0, false));
    assert_eq!((b.base_offset, b.duplicate), (0, true));
    assert_eq!(log.log_end_offset(), 3);
    drop(log);
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert!(log.append(&mut first.clone(), 0).unwrap().duplicate);
    let gap = batch(&vals, 1, Some((7, 0, 10)), Compression::None);
    assert!(matches!(
        log.append(&mut gap.clone(), 0),
        Err(LogError::OutOfOrderSequence {
            expected: 3,
            got: 10,
            ..
        })
    ));
    let next = batch(&vals, 1, Some((7, 0, 3)), Compression::None);
    assert_eq!(log.append(&mut next.clone(), 0).unwrap().base_offset, 3);
}

#[test]
fn timestamps_and_retention() {
    // Goal: lookups by timestamp return the first record at or after it; retention by
    // bytes and time removes old segments and moves the log start offset.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    for i in 0..20i64 {
        let vals: Vec<String> = (0..2).map(|j| format!("v{i}-{j}")).collect();
        log.append(
            &mut batch(&vals, 10_000 + i * 100, None, Compression::Gzip),
            0,
        )
        .unwrap();
    }
    assert_eq!(log.offset_for_timestamp(10_000).unwrap(), Some((0, 10_000)));
    assert_eq!(log.offset_for_timestamp(10_001).unwrap(), Some((1, 10_001)));
    assert_eq!(log.offset_for_timestamp(10_050).unwrap(), Some((2, 10_100)));
    assert_eq!(
        log.offset_for_timestamp(11_901).unwrap(),
        Some((39, 11_901))
    );
    assert_eq!(log.offset_for_timestamp(99_999).unwrap(), None);
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((39, 11_901)));
    assert!(log.segment_count() > 3);
    let mut c = config.clone();
    c.retention_bytes = 600;
    log.set_config(c);
    assert!(log.apply_retention(0).unwrap() > 0);
    assert!(log.size_bytes() <= 600 + 300);
    assert!(log.log_start_offset() > 0);
    let mut c = config;
    c.retention_ms = 1000;
    log.set_config(c);
    log.apply_retention(11_901 + 1001).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert!(matches!(
        log.read(0, 100),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn oversized_and_corrupt_batches_store_nothing() {
    // Goal: a refused append leaves the log untouched.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_message_bytes: 200,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    let big: Vec<String> = (0..50).map(|i| format!("value-{i}")).collect();
    assert!(matches!(
        log.append(&mut batch(&big, 0, None, Compression::None), 0),
        Err(LogError::RecordTooLarge { .. })
    ));
    let mut b = batch(&["x".to_string()], 0, None, Compression::None);
    let n = b.len();
    b[n - 2] ^= 1;
    assert!(matches!(
        log.append(&mut b, 0),
        Err(LogError::CorruptMessage(_))
    ));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}
