//! Compaction of `cleanup.policy=compact` logs: random keyed appends with updates and
//! tombstones, cleaned and reopened at random, checked against a model of what a compacted
//! log must still hold.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::records::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use weir_log::batch::{encode_batch, BatchHeader, NewRecord};
use weir_log::cleaner::compact;
use weir_log::{LogConfig, LogError, PartitionLog};

/// (key, value) pairs; `None` is a tombstone.
fn batch(records: &[(String, Option<String>)], ts: i64, producer: Option<(i64, i16, i32)>, compression: Compression) -> Vec<u8> {
    let records: Vec<NewRecord> = records
        .iter()
        .map(|(k, v)| NewRecord { key: Some(Bytes::from(k.clone())), value: v.clone().map(Bytes::from), timestamp_ms: ts })
        .collect();
    encode_batch(&records, producer, compression).unwrap().to_vec()
}

/// Every record from the log start to the end: (offset, key, value).
fn read_all(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let mut out: Vec<(i64, String, Option<String>)> = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let Some(slice) = log.read(next, 64 * 1024).unwrap() else { break };
        let mut bytes = slice.load().unwrap();
        assert!(!bytes.is_empty(), "a planned read returns at least one batch");
        let mut last_batch_end = next;
        for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
            for r in set.records {
                if r.offset >= next {
                    let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
                    let value = r.value.map(|v| String::from_utf8(v.to_vec()).unwrap());
                    out.push((r.offset, key, value));
                    last_batch_end = last_batch_end.max(r.offset + 1);
                }
            }
        }
        // A batch whose trailing records were cleaned away ends before its header says; read
        // on from the last record seen, or from the batch end if the read found nothing new.
        if last_batch_end == next {
            let header = BatchHeader::parse(&slice.load().unwrap()).unwrap();
            next = header.last_offset() + 1;
        } else {
            next = last_batch_end;
        }
    }
    out
}

fn clean(log: &mut PartitionLog, now_ms: i64) -> Option<i64> {
    let plan = log.plan_compaction(now_ms)?;
    let output = compact(&plan, now_ms).unwrap();
    let through = output.clean_through;
    log.finish_compaction(output).unwrap();
    Some(through)
}

#[test]
fn random_updates_and_tombstones_compact_to_the_newest_record_per_key() {
    // Goal: after any sequence of appends, cleans and reopens, every record the log returns is
    // the one written at that offset; below the cleaned point each key appears once, as its
    // newest record (tombstones gone once past delete.retention.ms); the newest value of every
    // key is always there; offsets and the log end never move.
    let compressions = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
    for seed in 0..12u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1500,
            cleanup_compact: true,
            cleanup_delete: false,
            min_cleanable_dirty_ratio: 0.0,
            delete_retention_ms: 1000,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        let mut model: Vec<(String, Option<String>, i64)> = Vec::new(); // by offset: key, value, timestamp
        let mut now = 1_000_000i64;
        let mut clean_through = 0i64;
        for step in 0..150 {
            now += rng.gen_range(0..400);
            match rng.gen_range(0..10) {
                0..=7 => {
                    let n = rng.gen_range(1..6);
                    let recs: Vec<(String, Option<String>)> = (0..n)
                        .map(|i| {
                            let key = format!("key-{}", rng.gen_range(0..12));
                            let value = (rng.gen_range(0..6) != 0).then(|| format!("v{seed}-{step}-{i}"));
                            (key, value)
                        })
                        .collect();
                    let compression = compressions[rng.gen_range(0..compressions.len())];
                    let mut b = batch(&recs, now, None, compression);
                    log.append(&mut b, now).unwrap();
                    for (k, v) in recs {
                        model.push((k, v, now));
                    }
                }
                8 => {
                    if let Some(t) = clean(&mut log, now) {
                        clean_through = t;
                        // Keys below the cleaned point are unique.
                        let below: Vec<_> = read_all(&log).into_iter().filter(|r| r.0 < t).collect();
                        let mut seen = HashMap::new();
                        for r in &below {
                            assert!(seen.insert(r.1.clone(), r.0).is_none(), "seed {seed}: key {} twice below {t}", r.1);
                        }
                    }
                }
                _ => {
                    drop(log);
                    log = PartitionLog::open(dir.path(), config.clone()).unwrap();
                }
            }
            // Every record returned is the one written at its offset, and offsets only rise.
            let got = read_all(&log);
            assert_eq!(log.log_end_offset(), model.len() as i64, "seed {seed} step {step}");
            let mut prev = -1;
            for (offset, key, value) in &got {
                assert!(*offset > prev);
                prev = *offset;
                let (mk, mv, _) = &model[*offset as usize];
                assert_eq!((key, value), (mk, mv), "seed {seed} step {step}: offset {offset}");
            }
            let present: std::collections::HashSet<i64> = got.iter().map(|r| r.0).collect();
            // The newest record of each key is there (tombstones until delete.retention.ms).
            let mut newest: HashMap<&str, usize> = HashMap::new();
            for (i, (k, _, _)) in model.iter().enumerate() {
                newest.insert(k, i);
            }
            for (&key, &i) in &newest {
                let (_, value, _) = &model[i];
                if value.is_some() {
                    assert!(present.contains(&(i as i64)), "seed {seed} step {step}: newest {key} at {i} lost");
                }
            }
            // Everything at or past the cleaned point is untouched.
            for i in clean_through.max(0)..model.len() as i64 {
                assert!(present.contains(&i), "seed {seed} step {step}: uncleaned offset {i} lost");
            }
        }
        // With every segment cleaned and the tombstones old, only live keys remain below.
        now += 10_000;
        let mut b = batch(&[("roll".into(), Some("x".repeat(1600)))], now, None, Compression::None);
        log.append(&mut b, now).unwrap();
        let mut b = batch(&[("last".into(), Some("y".into()))], now, None, Compression::None);
        log.append(&mut b, now).unwrap();
        let through = clean(&mut log, now).unwrap_or(clean_through);
        let got = read_all(&log);
        for (offset, _, value) in got.iter().filter(|r| r.0 < through) {
            assert!(value.is_some(), "seed {seed}: tombstone at {offset} outlived delete.retention.ms");
        }
    }
}

#[test]
fn unchanged_batches_are_copied_byte_for_byte_and_partial_ones_keep_their_codec() {
    // Goal: a batch that loses nothing is stored exactly as before; a gzip batch that loses
    // records is rewritten as gzip with the kept records at their own offsets.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 400, cleanup_compact: true, min_cleanable_dirty_ratio: 0.0, ..LogConfig::default() };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    let recs = |ks: &[&str], v: &str| ks.iter().map(|k| (k.to_string(), Some(format!("{v}-{k}")))).collect::<Vec<_>>();
    let mut first = batch(&recs(&["a", "b", "c"], "1"), 1000, Some((7, 0, 0)), Compression::Gzip);
    log.append(&mut first, 1000).unwrap(); // offsets 0-2
    let mut second = batch(&recs(&["d", "e"], "2"), 1000, None, Compression::None);
    log.append(&mut second, 1000).unwrap(); // offsets 3-4
    let stored_second = second.clone();
    let mut third = batch(&recs(&["b"], "3"), 1000, None, Compression::None);
    log.append(&mut third, 1000).unwrap(); // offset 5
    let big = "z".repeat(500);
    let mut roll = batch(&[("f".into(), Some(big))], 1000, None, Compression::None);
    log.append(&mut roll, 1000).unwrap(); // offset 6, in a new segment
    let mut active = batch(&recs(&["g"], "4"), 1000, None, Compression::None);
    log.append(&mut active, 1000).unwrap();
    assert!(log.segment_count() >= 2);

    clean(&mut log, 2000).expect("a dirty closed segment is cleaned");
    let slice = log.read(0, 1 << 20).unwrap().unwrap();
    let mut bytes = slice.load().unwrap();
    let sets = RecordBatchDecoder::decode_all(&mut bytes.clone()).unwrap();
    assert_eq!(sets[0].compression, Compression::Gzip);
    let offsets: Vec<i64> = sets[0].records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![0, 2], "b at offset 1 was superseded by offset 5");
    assert_eq!(sets[0].records[0].producer_id, 7);
    let header = BatchHeader::parse(&bytes).unwrap();
    assert_eq!((header.base_offset, header.records_count, header.base_sequence), (0, 2, 0));
    // The second batch follows byte for byte.
    let at = header.size_bytes;
    let second_header = BatchHeader::parse(&bytes[at..]).unwrap();
    assert_eq!(&bytes.split_off(at)[..second_header.size_bytes], &stored_second[..]);
}

#[test]
fn a_compacted_log_refuses_records_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { cleanup_compact: true, ..LogConfig::default() };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    let records = vec![NewRecord { key: None, value: Some(Bytes::from("v")), timestamp_ms: 1 }];
    let mut b = encode_batch(&records, None, Compression::Lz4).unwrap().to_vec();
    assert!(matches!(log.append(&mut b, 1), Err(LogError::InvalidRecord(_))));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn an_interrupted_clean_leaves_the_log_as_it_was() {
    // Goal: a crash between writing the cleaned copy and swapping it in loses nothing; the
    // copy is removed on open. A plan whose segment retention removed meanwhile is dropped.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 300, cleanup_compact: true, cleanup_delete: true, retention_bytes: 1, min_cleanable_dirty_ratio: 0.0, ..LogConfig::default() };
    let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    for i in 0..6 {
        let mut b = batch(&[("k".into(), Some(format!("{i}-{}", "x".repeat(200))))], 1000, None, Compression::None);
        log.append(&mut b, 1000).unwrap();
    }
    let before = read_all(&log);
    let plan = log.plan_compaction(2000).unwrap();
    let output = compact(&plan, 2000).unwrap();
    assert!(std::fs::read_dir(dir.path()).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".log.cleaned")));
    drop(output);
    drop(log);
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".log.cleaned")));
    assert_eq!(read_all(&log), before);

    let plan = log.plan_compaction(2000).unwrap();
    let output = compact(&plan, 2000).unwrap();
    assert!(log.apply_retention(2000).unwrap() > 0);
    let report = log.finish_compaction(output).unwrap();
    assert_eq!(report.segments_rewritten + report.segments_removed, 0, "stale plans change nothing");
    assert_eq!(read_all(&log).last(), before.last());
}
