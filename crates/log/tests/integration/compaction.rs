//! Compaction of `cleanup.policy=compact` logs: random keyed appends with updates and
//! tombstones, cleaned and reopened at random, checked against a model of what a compacted
//! log must still hold.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::records::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use weir_log::batch::{encode_batch, BatchHeader, NewRecord};
use weir_log::cleaner::compact;
use weir_log::{CompactionReport, LogConfig, LogError, PartitionLog};

/// (key, value) pairs; `None` is a tombstone.
fn batch(
    records: &[(String, Option<String>)],
    ts: i64,
    producer: Option<(i64, i16, i32)>,
    compression: Compression,
) -> Vec<u8> {
    let records: Vec<NewRecord> = records
        .iter()
        .map(|(k, v)| NewRecord {
            key: Some(Bytes::from(k.clone())),
            value: v.clone().map(Bytes::from),
            timestamp_ms: ts,
        })
        .collect();
    encode_batch(&records, producer, compression)
        .unwrap()
        .to_vec()
}

/// Every record from the log start to the end: (offset, key, value).
fn read_all(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let mut out: Vec<(i64, String, Option<String>)> = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let Some(slice) = log.read(next, 64 * 1024).unwrap() else {
            break;
        };
        let mut bytes = slice.load().unwrap();
        assert!(
            !bytes.is_empty(),
            "a planned read returns at least one batch"
        );
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

fn clean_with(log: &mut PartitionLog, plan: weir_log::cleaner::CompactionPlan, now_ms: i64) -> i64 {
    let mut report = CompactionReport::default();
    let output = compact(&plan, now_ms, &|| false, &mut |c| {
        log.swap_cleaned(c, now_ms, &mut report)
    })
    .unwrap()
    .expect("not stopped");
    log.finish_compaction(&output).unwrap();
    output.clean_through
}

fn clean(log: &mut PartitionLog, now_ms: i64) -> Option<i64> {
    let plan = log.plan_compaction(now_ms)?;
    Some(clean_with(log, plan, now_ms))
}

#[test]
fn random_updates_and_tombstones_compact_to_the_newest_record_per_key() {
    // Goal: after any sequence of appends, cleans and reopens, every record the log returns is
    // the one written at that offset; below the cleaned point each key appears once, as its
    // newest record (tombstones gone once past delete.retention.ms); the newest value of every
    // key is always there; offsets and the log end never move.
    let compressions = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
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
                            let value =
                                (rng.gen_range(0..6) != 0).then(|| format!("v{seed}-{step}-{i}"));
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
                        let below: Vec<_> =
                            read_all(&log).into_iter().filter(|r| r.0 < t).collect();
                        let mut seen = HashMap::new();
                        for r in &below {
                            assert!(
                                seen.insert(r.1.clone(), r.0).is_none(),
                                "seed {seed}: key {} twice below {t}",
                                r.1
                            );
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
            assert_eq!(
                log.log_end_offset(),
                model.len() as i64,
                "seed {seed} step {step}"
            );
            let mut prev = -1;
            for (offset, key, value) in &got {
                assert!(*offset > prev);
                prev = *offset;
                let (mk, mv, _) = &model[*offset as usize];
                assert_eq!(
                    (key, value),
                    (mk, mv),
                    "seed {seed} step {step}: offset {offset}"
                );
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
                    assert!(
                        present.contains(&(i as i64)),
                        "seed {seed} step {step}: newest {key} at {i} lost"
                    );
                }
            }
            // Everything at or past the cleaned point is untouched.
            for i in clean_through.max(0)..model.len() as i64 {
                assert!(
                    present.contains(&i),
                    "seed {seed} step {step}: uncleaned offset {i} lost"
                );
            }
        }
        // Once every segment has been cleaned and delete.retention.ms has passed since, only
        // live keys remain below the cleaned point.
        now += 10_000;
        let mut b = batch(
            &[("roll".into(), Some("x".repeat(1600)))],
            now,
            None,
            Compression::None,
        );
        log.append(&mut b, now).unwrap();
        let mut b = batch(
            &[("last".into(), Some("y".into()))],
            now,
            None,
            Compression::None,
        );
        log.append(&mut b, now).unwrap();
        let mut through = clean(&mut log, now).unwrap_or(clean_through);
        now += 2_000;
        through = clean(&mut log, now).unwrap_or(through);
        let got = read_all(&log);
        for (offset, _, value) in got.iter().filter(|r| r.0 < through) {
            assert!(
                value.is_some(),
                "seed {seed}: tombstone at {offset} outlived delete.retention.ms"
            );
        }
    }
}

#[test]
fn unchanged_batches_are_copied_byte_for_byte_and_partial_ones_keep_their_codec() {
    // Goal: a batch that loses nothing is stored exactly as before; a gzip batch that loses
    // records is rewritten as gzip with the kept records at their own offsets.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 400,
        cleanup_compact: true,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    let recs = |ks: &[&str], v: &str| {
        ks.iter()
            .map(|k| (k.to_string(), Some(format!("{v}-{k}"))))
            .collect::<Vec<_>>()
    };
    let mut first = batch(
        &recs(&["a", "b", "c"], "1"),
        1000,
        Some((7, 0, 0)),
        Compression::Gzip,
    );
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
    assert_eq!(
        offsets,
        vec![0, 2],
        "b at offset 1 was superseded by offset 5"
    );
    assert_eq!(sets[0].records[0].producer_id, 7);
    let header = BatchHeader::parse(&bytes).unwrap();
    // As Kafka's cleaner does, the batch keeps its base and last offset and base sequence.
    assert_eq!(
        (
            header.base_offset,
            header.last_offset(),
            header.records_count,
            header.base_sequence
        ),
        (0, 2, 2, 0)
    );
    // The second batch follows byte for byte.
    let at = header.size_bytes;
    let second_header = BatchHeader::parse(&bytes[at..]).unwrap();
    assert_eq!(
        &bytes.split_off(at)[..second_header.size_bytes],
        &stored_second[..]
    );
}

#[test]
fn a_compacted_log_refuses_records_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_compact: true,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    let records = vec![NewRecord {
        key: None,
        value: Some(Bytes::from("v")),
        timestamp_ms: 1,
    }];
    let mut b = encode_batch(&records, None, Compression::Lz4)
        .unwrap()
        .to_vec();
    // The error names the keyless record by its index in the batch (KIP-467).
    match log.append(&mut b, 1) {
        Err(LogError::InvalidRecords(errors)) => {
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].batch_index, 0);
        }
        other => panic!("expected InvalidRecords, got {other:?}"),
    }
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn an_interrupted_clean_leaves_the_log_as_it_was() {
    // Goal: a crash between writing the cleaned copy and swapping it in loses nothing; the
    // copy is removed on open. A plan whose segment retention removed meanwhile is dropped.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 300,
        cleanup_compact: true,
        cleanup_delete: true,
        retention_bytes: 1,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    for i in 0..6 {
        let mut b = batch(
            &[("k".into(), Some(format!("{i}-{}", "x".repeat(200))))],
            1000,
            None,
            Compression::None,
        );
        log.append(&mut b, 1000).unwrap();
    }
    let before = read_all(&log);
    let plan = log.plan_compaction(2000).unwrap();
    // A crash right after the first copy is written: it is never swapped in.
    let crashed = std::cell::Cell::new(false);
    let output = compact(&plan, 2000, &|| crashed.get(), &mut |_| {
        crashed.set(true);
        Ok(false)
    });
    assert!(output.unwrap().is_none(), "stopped after the first segment");
    assert!(std::fs::read_dir(dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".log.cleaned")));
    drop(log);
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".log.cleaned")));
    assert_eq!(read_all(&log), before);

    let plan = log.plan_compaction(2000).unwrap();
    assert!(log.apply_retention(2000).unwrap() > 0);
    let mut report = CompactionReport::default();
    let output = compact(&plan, 2000, &|| false, &mut |c| {
        log.swap_cleaned(c, 2000, &mut report)
    })
    .unwrap()
    .unwrap();
    log.finish_compaction(&output).unwrap();
    assert!(!output.all_swapped);
    assert_eq!(
        report.segments_rewritten + report.segments_removed,
        0,
        "stale plans change nothing"
    );
    assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".log.cleaned")));
    assert_eq!(read_all(&log).last(), before.last());
}

/// (key, value, headers) of one record for [`raw_batch`].
type RawRecord<'a> = (&'a [u8], Option<&'a [u8]>, Vec<(&'a [u8], &'a [u8])>);

/// A v2 batch built byte by byte, so records can carry what the encoder cannot express
/// (repeated header keys, header keys that are not UTF-8): (key, value, headers) per record.
fn raw_batch(records: &[RawRecord], ts: i64) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            if z < 0x80 {
                out.push(z as u8);
                return;
            }
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
    }
    let mut payload = Vec::new();
    for (i, (k, v, headers)) in records.iter().enumerate() {
        let mut body = vec![0u8];
        varint(&mut body, 0);
        varint(&mut body, i as i64);
        varint(&mut body, k.len() as i64);
        body.extend_from_slice(k);
        match v {
            Some(v) => {
                varint(&mut body, v.len() as i64);
                body.extend_from_slice(v);
            }
            None => varint(&mut body, -1),
        }
        varint(&mut body, headers.len() as i64);
        for (hk, hv) in headers {
            varint(&mut body, hk.len() as i64);
            body.extend_from_slice(hk);
            varint(&mut body, hv.len() as i64);
            body.extend_from_slice(hv);
        }
        varint(&mut payload, body.len() as i64);
        payload.extend_from_slice(&body);
    }
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((49 + payload.len()) as i32).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&((records.len() - 1) as i32).to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&(records.len() as i32).to_be_bytes());
    b.extend_from_slice(&payload);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn cleaned_config() -> LogConfig {
    LogConfig {
        segment_bytes: 200,
        cleanup_compact: true,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 1000,
        ..LogConfig::default()
    }
}

#[test]
fn kept_records_keep_their_bytes_repeated_and_binary_header_keys_included() {
    // Goal: a partially kept batch carries the kept records' bytes unchanged: two headers
    // with the same key, and a header key that is not UTF-8, survive.
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), cleaned_config()).unwrap();
    let headers = vec![
        (&b"h"[..], &b"A"[..]),
        (&b"h"[..], &b"B"[..]),
        (&[0xff, 0xfe][..], &b"C"[..]),
    ];
    let mut first = raw_batch(
        &[(b"a", Some(b"old"), vec![]), (b"b", Some(b"keep"), headers)],
        1000,
    );
    // The second record's bytes, length prefix included: what follows a one-record batch's
    // worth of bytes.
    let kept_record_bytes =
        first[raw_batch(&[(b"a", Some(b"old"), vec![])], 1000).len()..].to_vec();
    log.append(&mut first, 1000).unwrap();
    let mut newer = batch(
        &[("a".into(), Some("new".repeat(80)))],
        1000,
        None,
        Compression::None,
    );
    log.append(&mut newer, 1000).unwrap();
    let mut active = batch(
        &[("z".into(), Some("z".repeat(200)))],
        1000,
        None,
        Compression::None,
    );
    log.append(&mut active, 1000).unwrap();
    clean(&mut log, 2000).expect("cleaned");
    let bytes = log.read(0, 1 << 20).unwrap().unwrap().load().unwrap();
    let header = BatchHeader::parse(&bytes).unwrap();
    assert_eq!(
        (
            header.base_offset,
            header.last_offset(),
            header.records_count
        ),
        (0, 1, 1)
    );
    let stored = &bytes[61..header.size_bytes];
    assert_eq!(
        stored,
        &kept_record_bytes[..],
        "the kept record is stored byte for byte"
    );
}

#[test]
fn tombstones_last_delete_retention_ms_of_broker_time_after_the_first_clean() {
    // Goal: a tombstone whose producer timestamp is long past is still there after the first
    // clean, and gone after a clean more than delete.retention.ms later; a record stamped in
    // the future does not hold compaction back.
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), cleaned_config()).unwrap();
    let now = 1_000_000_000i64;
    let mut old_put = batch(
        &[("k".into(), Some("v".repeat(150)))],
        0,
        None,
        Compression::None,
    );
    log.append(&mut old_put, now).unwrap();
    let mut delete = batch(
        &[("k".into(), None), ("x".into(), Some("x".repeat(150)))],
        0,
        None,
        Compression::None,
    );
    log.append(&mut delete, now).unwrap();
    let mut future = batch(
        &[("f".into(), Some("f".repeat(150)))],
        now + 1_000_000_000_000,
        None,
        Compression::Lz4,
    );
    log.append(&mut future, now).unwrap();
    let mut active = batch(
        &[("z".into(), Some("z".repeat(150)))],
        now,
        None,
        Compression::None,
    );
    log.append(&mut active, now).unwrap();
    let has_tombstone =
        |log: &PartitionLog| read_all(log).iter().any(|r| r.1 == "k" && r.2.is_none());
    clean(&mut log, now).expect("cleaned despite the future timestamp");
    assert!(has_tombstone(&log), "kept at the first clean");
    assert!(
        !read_all(&log).iter().any(|r| r.1 == "k" && r.2.is_some()),
        "the value it deletes is gone"
    );
    assert!(
        log.plan_compaction(now + 500).is_none(),
        "nothing to do within delete.retention.ms"
    );
    clean(&mut log, now + 1500).expect("due: a tombstone may go");
    assert!(!has_tombstone(&log), "gone after delete.retention.ms");
    drop(log);
    let log = PartitionLog::open(dir.path(), cleaned_config()).unwrap();
    assert!(
        log.plan_compaction(now + 3000).is_none(),
        "the checkpoint remembers the purge"
    );
}

#[test]
fn a_small_key_map_cleans_over_several_passes() {
    // Goal: with room for the keys of one segment per pass, repeated cleans still end with
    // one record per key, and every pass makes progress.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 300,
        cleanup_compact: true,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    for round in 0..6 {
        for k in 0..4 {
            let mut b = batch(
                &[(
                    format!("k{k}"),
                    Some(format!("r{round}-{}", "p".repeat(100))),
                )],
                1000,
                None,
                Compression::Snappy,
            );
            log.append(&mut b, 1000).unwrap();
        }
    }
    let mut passes = 0;
    while let Some(plan) = log.plan_compaction(2000) {
        let mut report = CompactionReport::default();
        let output = compact(&plan.with_key_map_limit(1), 2000, &|| false, &mut |c| {
            log.swap_cleaned(c, 2000, &mut report)
        })
        .unwrap()
        .unwrap();
        log.finish_compaction(&output).unwrap();
        passes += 1;
        assert!(passes < 100, "compaction does not converge");
    }
    assert!(
        passes > 1,
        "one key per pass takes several passes, took {passes}"
    );
    // The active segment (never cleaned) holds the last two records; before it every key
    // appears once, and every key's last-round value is there.
    let got = read_all(&log);
    let closed = &got[..got.len() - 2];
    let keys: std::collections::HashSet<&str> = closed.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(
        keys.len(),
        closed.len(),
        "one record per key before the active segment: {got:?}"
    );
    for k in 0..4 {
        let last = got.iter().rev().find(|r| r.1 == format!("k{k}")).unwrap();
        assert!(last.2.as_deref().unwrap().starts_with("r5"), "{got:?}");
    }
}

#[test]
fn retention_removes_a_first_segment_compaction_emptied() {
    // Goal: with `compact,delete`, an emptied first segment does not stop time retention.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_delete: true,
        retention_ms: 1000,
        ..cleaned_config()
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    for i in 0..4 {
        let mut b = batch(
            &[("k".into(), Some(format!("{i}{}", "v".repeat(150))))],
            5000 + i,
            None,
            Compression::None,
        );
        log.append(&mut b, 5000).unwrap();
    }
    clean(&mut log, 5000).unwrap();
    let before = log.segment_count();
    assert!(
        log.apply_retention(5000 + 500).unwrap() >= 1,
        "the empty first segment goes"
    );
    assert!(log.segment_count() < before);
    assert_eq!(
        read_all(&log).last().map(|r| r.2.clone()),
        Some(Some(format!("3{}", "v".repeat(150))))
    );
}

#[test]
fn walking_hostile_batches_fails_cleanly() {
    // Goal: the two inputs fuzzing found (a record count of 2^31-1 over a few bytes, and
    // offsets at the edge of i64) end in an error or a count, not a huge allocation or an
    // overflow; a well-formed batch is counted right.
    let good = raw_batch(&[(b"k", Some(b"v"), vec![]), (b"", None, vec![])], 5);
    assert_eq!(weir_log::cleaner::keyless_records(&good).unwrap(), 0);
    let mut many = good.clone();
    many[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(weir_log::cleaner::keyless_records(&many).is_err());
    let mut edge = good.clone();
    edge[0..8].copy_from_slice(&i64::MAX.to_be_bytes());
    edge[27..35].copy_from_slice(&i64::MAX.to_be_bytes());
    let _ = weir_log::cleaner::keyless_records(&edge);
    let keyless = encode_batch(
        &[NewRecord {
            key: None,
            value: Some(Bytes::from("v")),
            timestamp_ms: 1,
        }],
        None,
        Compression::Zstd,
    )
    .unwrap();
    assert_eq!(weir_log::cleaner::keyless_records(&keyless).unwrap(), 1);
}

#[test]
fn max_compaction_lag_rolls_the_active_segment_and_forces_a_clean() {
    // Goal: with max.compaction.lag.ms, records past it get cleaned even when the dirty ratio
    // would not start a clean, and the active segment rolls to let them; without it, not.
    let run = |max_lag: i64| {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1 << 20,
            cleanup_compact: true,
            min_cleanable_dirty_ratio: 0.9,
            max_compaction_lag_ms: max_lag,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(dir.path(), config).unwrap();
        let put = |log: &mut PartitionLog, key: &str, now: i64| {
            let mut b = batch(
                &[(key.into(), Some(format!("{key}@{now}")))],
                now,
                None,
                Compression::None,
            );
            log.append(&mut b, now).unwrap();
        };
        for _ in 0..20 {
            put(&mut log, "a", 0);
        }
        put(&mut log, "b", 1500);
        if let Some(plan) = log.plan_compaction(1500) {
            clean_with(&mut log, plan, 1500);
        }
        put(&mut log, "b", 1600);
        put(&mut log, "d", 2600);
        (
            log.segment_count(),
            log.plan_compaction(2600).is_some(),
            read_all(&log).len(),
        )
    };
    let (segments, due, records) = run(1000);
    assert_eq!(
        (segments, due),
        (3, true),
        "rolled twice, and the overdue segment is due"
    );
    assert_eq!(records, 4, "the first clean left one 'a'");
    let (segments, due, records) = run(i64::MAX);
    assert_eq!(
        (segments, due, records),
        (1, false, 23),
        "without the setting nothing rolls or cleans"
    );
}

#[test]
fn compaction_keeps_markers_drops_aborted_transactions_and_waits_for_open_ones() {
    // Goal: a marker is never compacted and its key bytes never supersede a user record with
    // the same bytes; an aborted transaction's batches go; a committed transaction's records
    // are compacted like plain ones; nothing from the segment holding the LSO on is cleaned
    // or used to supersede older records; the newest value a read_committed reader sees for each key is the same before and
    // after the clean.
    use weir_log::batch::{encode_transactional_batch, end_txn_marker, whole_batches};
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 400,
        ..cleaned_config()
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    let txn = |pid: i64, seq: i32, key: &str, value: &str| {
        let r = [NewRecord {
            key: Some(Bytes::from(key.to_string())),
            value: Some(Bytes::from(value.to_string())),
            timestamp_ms: 1000,
        }];
        encode_transactional_batch(&r, (pid, 0, seq), Compression::None)
            .unwrap()
            .to_vec()
    };
    let commit_key = String::from_utf8(vec![0, 0, 0, 1]).unwrap();
    let abort_key = String::from_utf8(vec![0, 0, 0, 0]).unwrap();
    log.append(
        &mut batch(
            &[
                (commit_key.clone(), Some("user-1".into())),
                (abort_key.clone(), Some("user-0".into())),
            ],
            1000,
            None,
            Compression::None,
        ),
        1000,
    )
    .unwrap();
    log.append(&mut txn(1, 0, "a", "aborted"), 1000).unwrap();
    log.append(&mut txn(2, 0, "b", "committed-old"), 1000)
        .unwrap();
    log.append_marker(1, 0, 0, false, 1000).unwrap();
    log.append(&mut txn(2, 1, "d", "committed"), 1000).unwrap();
    log.append_marker(2, 0, 0, true, 1000).unwrap();
    log.append(
        &mut batch(
            &[
                ("b".into(), Some("plain-new".into())),
                ("c".into(), Some("plain-c".into())),
            ],
            1000,
            None,
            Compression::None,
        ),
        1000,
    )
    .unwrap();
    let filler = |log: &mut PartitionLog, segments: usize| {
        while log.segment_count() < segments {
            log.append(
                &mut batch(
                    &[("filler".into(), Some("x".repeat(100)))],
                    1000,
                    None,
                    Compression::None,
                ),
                1000,
            )
            .unwrap();
        }
    };
    filler(&mut log, 5);
    // A transaction left open, and a plain record of its key after it: neither may be
    // compacted yet, nor may that plain record supersede the "c" before the open one.
    log.append(&mut txn(3, 0, "c", "open"), 1000).unwrap();
    log.append(
        &mut batch(
            &[("c".into(), Some("plain-c2".into()))],
            1000,
            None,
            Compression::None,
        ),
        1000,
    )
    .unwrap();
    filler(&mut log, 8);

    // (offset, key, value, producer id) of every data record, and the marker offsets.
    let dump = |log: &PartitionLog| {
        let (mut data, mut markers) = (Vec::new(), Vec::new());
        let mut next = 0;
        while next < log.log_end_offset() {
            let slice = log.read(next, 1 << 24).unwrap().unwrap().load().unwrap();
            for b in whole_batches(slice) {
                let (h, raw) = b.unwrap();
                next = h.last_offset() + 1;
                if h.is_control() {
                    markers.push((h.base_offset, end_txn_marker(&raw).unwrap().control_type));
                    continue;
                }
                for r in RecordBatchDecoder::decode(&mut raw.clone())
                    .unwrap()
                    .records
                {
                    let s = |b: Option<Bytes>| String::from_utf8(b.unwrap().to_vec()).unwrap();
                    data.push((r.offset, s(r.key), s(r.value), h.producer_id));
                }
            }
        }
        (data, markers)
    };
    let (before, markers_before) = dump(&log);
    assert_eq!(markers_before.len(), 2);
    clean(&mut log, 2000).expect("the closed segments are dirty");
    let (after, markers_after) = dump(&log);
    assert_eq!(markers_after, markers_before, "markers stay, unchanged");
    let values: Vec<&str> = after
        .iter()
        .filter(|r| r.1 != "filler")
        .map(|r| r.2.as_str())
        .collect();
    assert_eq!(
        values,
        vec![
            "user-1",
            "user-0",
            "committed",
            "plain-new",
            "plain-c",
            "open",
            "plain-c2"
        ]
    );
    let lso = log.last_stable_offset();
    let fillers = |records: &[(i64, String, String, i64)], below: bool| {
        records
            .iter()
            .filter(|r| r.1 == "filler" && (r.0 < lso) == below)
            .count()
    };
    assert!(
        fillers(&after, true) < fillers(&before, true),
        "below the LSO, plain records are compacted"
    );
    assert!(
        fillers(&after, false) == fillers(&before, false) && fillers(&after, false) > 1,
        "past it, not"
    );
    assert_eq!(
        log.aborted_transactions(0, i64::MAX).len(),
        1,
        "the aborted index is unchanged"
    );
    let newest_committed = |records: &[(i64, String, String, i64)]| {
        let visible = records.iter().filter(|r| r.3 != 1 && r.0 < lso);
        visible
            .map(|r| (r.1.clone(), r.2.clone()))
            .collect::<HashMap<String, String>>()
    };
    assert_eq!(newest_committed(&after), newest_committed(&before));
}
