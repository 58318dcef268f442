//! Reading stored records back decoded: `PartitionLog::read_records` and
//! `PartitionLog::timestamp_at` over plain, compressed and transactional batches, and
//! `records::decode_batch` over damaged ones, which must fail with an error, never a panic.

use std::os::unix::fs::FileExt;

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType as WireType,
};
use weir_log::batch::{encode_batch, encode_transactional_batch, NewRecord};
use weir_log::records::{decode_batch, BATCH_DECOMPRESSED_BYTES_MAX};
use weir_log::{LogConfig, LogError, PartitionLog, TimestampType};

/// One batch of `count` records keyed `k<first + i>`, value `v<first + i>`, timestamps
/// `ts + i`, and one header `h: <first + i>` on each.
fn batch_with_headers(first: usize, count: usize, ts: i64, compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let mut headers = IndexMap::new();
            headers.insert(
                StrBytes::from_static_str("h"),
                Some(Bytes::from((first + i).to_string())),
            );
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: WireType::Creation,
                offset: i as i64,
                sequence: i as i32 - 1,
                timestamp: ts + i as i64,
                key: Some(Bytes::from(format!("k{}", first + i))),
                value: Some(Bytes::from(format!("v{}", first + i))),
                headers,
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.to_vec()
}

fn text(b: &Option<Bytes>) -> String {
    String::from_utf8(b.clone().unwrap().to_vec()).unwrap()
}

#[test]
fn records_come_back_decoded_across_codecs_skipping_markers() {
    // Goal: every field of a record survives storage, whatever the batch's codec; a read
    // starting inside a batch leaves out the records before it; markers are not records; the
    // record and byte limits hold; timestamp_at names the first record not yet consumed.
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    // Offsets 0..3 plain, 3..6 gzip, 6..9 zstd, 9..12 lz4, 12..15 snappy.
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Zstd,
        Compression::Lz4,
        Compression::Snappy,
    ];
    for (i, codec) in codecs.into_iter().enumerate() {
        let mut b = batch_with_headers(i * 3, 3, 10_000 + 100 * i as i64, codec);
        log.append(&mut b, 0).unwrap();
    }
    // 15: a transactional record, 16: its commit marker, 17: a plain record.
    let txn = [NewRecord {
        key: None,
        value: Some(Bytes::from_static(b"in-txn")),
        timestamp_ms: 20_000,
    }];
    let mut t = encode_transactional_batch(&txn, (7, 0, 0), Compression::None)
        .unwrap()
        .to_vec();
    log.append(&mut t, 0).unwrap();
    log.append_marker(7, 0, 0, true, 20_500).unwrap();
    let last = [NewRecord {
        key: None,
        value: None,
        timestamp_ms: 30_000,
    }];
    let mut l = encode_batch(&last, None, Compression::None)
        .unwrap()
        .to_vec();
    log.append(&mut l, 0).unwrap();
    assert_eq!(log.high_watermark(), 18);

    let all = log.read_records(0, 100, usize::MAX).unwrap();
    let offsets: Vec<i64> = all.iter().map(|r| r.offset).collect();
    let expected: Vec<i64> = (0..16).chain([17]).collect();
    assert_eq!(offsets, expected, "the marker at 16 is not a record");
    for r in &all[..15] {
        let n = r.offset as usize;
        assert_eq!(text(&r.key), format!("k{n}"));
        assert_eq!(text(&r.value), format!("v{n}"));
        assert_eq!(r.headers.len(), 1);
        assert_eq!(&r.headers[0].key[..], b"h");
        assert_eq!(text(&r.headers[0].value), n.to_string());
        assert_eq!(
            r.timestamp_ms,
            10_000 + 100 * (n / 3) as i64 + (n % 3) as i64
        );
        assert_eq!(r.timestamp_type, TimestampType::CreateTime);
        assert!(!r.transactional && !r.control);
    }
    assert!(all[15].transactional && all[15].producer_id == 7);
    assert_eq!(all[16].key, None);
    assert_eq!(all[16].value, None);

    // Inside the gzip batch: offset 4 and 5, then on into the zstd one.
    let from_4: Vec<i64> = log
        .read_records(4, 3, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(from_4, vec![4, 5, 6]);
    // Each record here is 2 + 2 + 1 + 1 = 6 bytes: a budget of 7 stops after the second,
    // a budget of 0 still returns one.
    assert_eq!(log.read_records(0, 100, 7).unwrap().len(), 2);
    assert_eq!(log.read_records(0, 100, 0).unwrap().len(), 1);
    assert!(log.read_records(18, 10, 100).unwrap().is_empty());
    assert!(matches!(
        log.read_records(19, 10, 100),
        Err(LogError::OffsetOutOfRange { .. })
    ));

    assert_eq!(log.timestamp_at(0).unwrap(), Some(10_000));
    assert_eq!(log.timestamp_at(7).unwrap(), Some(10_201));
    assert_eq!(
        log.timestamp_at(16).unwrap(),
        Some(30_000),
        "past the marker"
    );
    assert_eq!(log.timestamp_at(17).unwrap(), Some(30_000));
    assert_eq!(log.timestamp_at(18).unwrap(), None);
    assert_eq!(log.timestamp_at(1_000).unwrap(), None);

    // Below the log start: the first record still stored.
    log.delete_records_before(5).unwrap();
    assert_eq!(log.timestamp_at(0).unwrap(), Some(10_102));
}

#[test]
fn a_log_append_time_batch_gives_every_record_the_batch_time() {
    // Goal: in a batch whose attributes say LogAppendTime, a record's timestamp is the
    // batch's max timestamp, not the one the record carries. (weir stores batches as sent
    // and refuses producers' LogAppendTime batches, so such a batch comes from elsewhere:
    // a log written by another broker, say.)
    let mut b = batch_with_headers(0, 2, 5, Compression::None);
    b[22] |= 0x08;
    b[35..43].copy_from_slice(&777_000i64.to_be_bytes());
    fix_crc(&mut b);
    let got = decode_batch(&b).unwrap();
    assert_eq!(got.len(), 2);
    for r in got {
        assert_eq!(r.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(r.timestamp_ms, 777_000);
    }
}

/// Sets the CRC of a hand-changed batch so only its inner damage is left.
fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn damaged_batches_fail_with_corrupt_message() {
    // Goal: a flipped byte, a record running past its batch, a compressed payload that is not
    // what its codec says, and a payload expanding past the bound each give CorruptMessage.
    let good = batch_with_headers(0, 3, 1, Compression::None);
    assert_eq!(decode_batch(&good).unwrap().len(), 3);

    let mut flipped = good.clone();
    let end = flipped.len() - 1;
    flipped[end] ^= 0x01;
    assert!(matches!(
        decode_batch(&flipped),
        Err(LogError::CorruptMessage(_))
    ));

    // The first record's length varint (just after the header) claims 63 bytes.
    let mut long = good.clone();
    long[61] = 126;
    fix_crc(&mut long);
    assert!(matches!(
        decode_batch(&long),
        Err(LogError::CorruptMessage(_))
    ));

    // Every byte cut off the end, CRC fixed each time: an error or fewer records, no panic.
    for cut in 61..good.len() {
        let mut short = good[..cut].to_vec();
        short[8..12].copy_from_slice(&((cut - 12) as i32).to_be_bytes());
        fix_crc(&mut short);
        assert!(decode_batch(&short).is_err(), "cut at {cut}");
    }

    // Marked gzip, but plain bytes inside.
    let mut not_gzip = good.clone();
    not_gzip[22] |= 0x01;
    fix_crc(&mut not_gzip);
    assert!(matches!(
        decode_batch(&not_gzip),
        Err(LogError::CorruptMessage(_))
    ));

    // A zstd payload of zeros one byte past the bound: refused, not expanded whole.
    let bomb = vec![0u8; BATCH_DECOMPRESSED_BYTES_MAX + 1];
    let packed = zstd::bulk::compress(&bomb, 1).unwrap();
    let mut batch = good[..61].to_vec();
    batch.extend_from_slice(&packed);
    let batch_length = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
    batch[22] = (batch[22] & !0x07) | 0x04;
    fix_crc(&mut batch);
    assert!(
        matches!(decode_batch(&batch), Err(LogError::CorruptMessage(m)) if m.contains("more than"))
    );
}

#[test]
fn a_damaged_stored_batch_is_an_error_for_the_reader() {
    // Goal: bytes changed on disk after the append reach read_records as an error.
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    let mut b = batch_with_headers(0, 2, 1, Compression::Gzip);
    log.append(&mut b, 0).unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("00000000000000000000.log"))
        .unwrap();
    file.write_all_at(&[0xff, 0xff], 70).unwrap();
    assert!(matches!(
        log.read_records(0, 10, usize::MAX),
        Err(LogError::CorruptMessage(_))
    ));
    assert!(log.timestamp_at(0).is_err());
}
