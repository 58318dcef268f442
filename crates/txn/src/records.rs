//! Kafka's own key and value schemas for `__transaction_state`, so a restart replays them
//! and tools that read the topic understand them.
//!
//! ```text
//! TransactionLogKey    v0: version i16 | transactional_id string
//! TransactionLogValue  v0: version i16 | producer_id i64 | producer_epoch i16 | timeout_ms i32 |
//!                          status i8 | partitions [topic string | partition_ids [i32]]? |
//!                          last_update_timestamp_ms i64 | start_timestamp_ms i64
//! TransactionLogValue  v1: the same fields, flexible (compact strings and arrays, tagged
//!                          fields), plus tags 0 previous_producer_id i64, 1 next_producer_id
//!                          i64, 2 client_transaction_version i16
//! ```
//! weir writes value v1 (what Kafka writes once `transaction.version` is 1 or more) and reads
//! both. A tombstone (no value) removes a transactional id that expired.

use std::collections::BTreeSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::metadata::{TxnMetadata, TxnState};
use crate::TxnError;

pub const KEY_VERSION: i16 = 0;
pub const VALUE_VERSION: i16 = 1;

pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + transactional_id.len());
    b.put_i16(KEY_VERSION);
    put_string(&mut b, transactional_id);
    b.freeze()
}

pub fn decode_key(mut key: &[u8]) -> Result<String, TxnError> {
    let version = get_i16(&mut key)?;
    if version != KEY_VERSION {
        return Err(TxnError::BadRecord(format!(
            "unknown transaction log key version {version}"
        )));
    }
    get_string(&mut key)
}

/// The value of a transaction log record: the whole metadata of one transactional id.
pub fn encode_value(m: &TxnMetadata) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(VALUE_VERSION);
    b.put_i64(m.producer_id);
    b.put_i16(m.producer_epoch);
    b.put_i32(m.txn_timeout_ms);
    b.put_i8(m.state.id());
    if m.state == TxnState::Empty {
        put_uvarint(&mut b, 0); // null
    } else {
        let topics = m.topics();
        put_uvarint(&mut b, topics.len() as u64 + 1);
        for (topic, partitions) in topics {
            put_compact_string(&mut b, &topic);
            put_uvarint(&mut b, partitions.len() as u64 + 1);
            for p in partitions {
                b.put_i32(p);
            }
            put_uvarint(&mut b, 0); // the struct's tagged fields
        }
    }
    b.put_i64(m.txn_last_update_timestamp_ms);
    b.put_i64(m.txn_start_timestamp_ms);
    let mut tags: Vec<(u64, Vec<u8>)> = Vec::new();
    if m.previous_producer_id != -1 {
        tags.push((0, m.previous_producer_id.to_be_bytes().to_vec()));
    }
    if m.next_producer_id != -1 {
        tags.push((1, m.next_producer_id.to_be_bytes().to_vec()));
    }
    if m.client_transaction_version != 0 {
        tags.push((2, m.client_transaction_version.to_be_bytes().to_vec()));
    }
    put_uvarint(&mut b, tags.len() as u64);
    for (tag, data) in tags {
        put_uvarint(&mut b, tag);
        put_uvarint(&mut b, data.len() as u64);
        b.put_slice(&data);
    }
    b.freeze()
}

pub fn decode_value(transactional_id: &str, mut v: &[u8]) -> Result<TxnMetadata, TxnError> {
    let version = get_i16(&mut v)?;
    if !(0..=1).contains(&version) {
        return Err(TxnError::BadRecord(format!(
            "unknown transaction log value version {version}"
        )));
    }
    let flexible = version >= 1;
    let producer_id = get_i64(&mut v)?;
    let producer_epoch = get_i16(&mut v)?;
    let txn_timeout_ms = get_i32(&mut v)?;
    let status = get_i8(&mut v)?;
    let state = TxnState::from_id(status)
        .ok_or_else(|| TxnError::BadRecord(format!("unknown transaction status {status}")))?;
    let mut partitions = BTreeSet::new();
    let count: Option<usize> = if flexible {
        match get_uvarint(&mut v)? {
            0 => None,
            n => Some((n - 1) as usize),
        }
    } else {
        let n = get_i32(&mut v)?;
        (n >= 0).then_some(n as usize)
    };
    for _ in 0..count.unwrap_or(0) {
        let topic = if flexible {
            get_compact_string(&mut v)?
        } else {
            get_string(&mut v)?
        };
        let n = if flexible {
            get_uvarint(&mut v)?.saturating_sub(1) as usize
        } else {
            get_i32(&mut v)?.max(0) as usize
        };
        for _ in 0..n {
            partitions.insert((topic.clone(), get_i32(&mut v)?));
        }
        if flexible {
            skip_tags(&mut v)?;
        }
    }
    let txn_last_update_timestamp_ms = get_i64(&mut v)?;
    let txn_start_timestamp_ms = get_i64(&mut v)?;
    let mut m = TxnMetadata {
        transactional_id: transactional_id.to_string(),
        producer_id,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch,
        txn_timeout_ms,
        state,
        partitions,
        txn_start_timestamp_ms,
        txn_last_update_timestamp_ms,
        client_transaction_version: 0,
    };
    if flexible {
        let n = get_uvarint(&mut v)?;
        for _ in 0..n {
            let tag = get_uvarint(&mut v)?;
            let size = get_uvarint(&mut v)? as usize;
            if v.remaining() < size {
                return Err(TxnError::BadRecord(
                    "a tagged field runs past the record".into(),
                ));
            }
            let mut data = &v[..size];
            match tag {
                0 => m.previous_producer_id = get_i64(&mut data)?,
                1 => m.next_producer_id = get_i64(&mut data)?,
                2 => m.client_transaction_version = get_i16(&mut data)?,
                _ => {}
            }
            v.advance(size);
        }
    }
    Ok(m)
}

fn short(what: &str) -> TxnError {
    TxnError::BadRecord(format!("transaction log record ends inside {what}"))
}

fn get_i8(b: &mut &[u8]) -> Result<i8, TxnError> {
    if b.remaining() < 1 {
        return Err(short("an int8"));
    }
    Ok(b.get_i8())
}
fn get_i16(b: &mut &[u8]) -> Result<i16, TxnError> {
    if b.remaining() < 2 {
        return Err(short("an int16"));
    }
    Ok(b.get_i16())
}
fn get_i32(b: &mut &[u8]) -> Result<i32, TxnError> {
    if b.remaining() < 4 {
        return Err(short("an int32"));
    }
    Ok(b.get_i32())
}
fn get_i64(b: &mut &[u8]) -> Result<i64, TxnError> {
    if b.remaining() < 8 {
        return Err(short("an int64"));
    }
    Ok(b.get_i64())
}
fn get_uvarint(b: &mut &[u8]) -> Result<u64, TxnError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        if b.remaining() < 1 {
            return Err(short("a varint"));
        }
        let byte = b.get_u8();
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(TxnError::BadRecord("a varint longer than 64 bits".into()))
}
fn get_bytes(b: &mut &[u8], len: usize) -> Result<String, TxnError> {
    if b.remaining() < len {
        return Err(short("a string"));
    }
    let s = std::str::from_utf8(&b[..len])
        .map_err(|_| TxnError::BadRecord("a string is not UTF-8".into()))?
        .to_string();
    b.advance(len);
    Ok(s)
}
fn get_string(b: &mut &[u8]) -> Result<String, TxnError> {
    let len = get_i16(b)?;
    if len < 0 {
        return Err(TxnError::BadRecord(
            "a null string where one is required".into(),
        ));
    }
    get_bytes(b, len as usize)
}
fn get_compact_string(b: &mut &[u8]) -> Result<String, TxnError> {
    match get_uvarint(b)? {
        0 => Err(TxnError::BadRecord(
            "a null string where one is required".into(),
        )),
        n => get_bytes(b, (n - 1) as usize),
    }
}
fn skip_tags(b: &mut &[u8]) -> Result<(), TxnError> {
    for _ in 0..get_uvarint(b)? {
        get_uvarint(b)?;
        let size = get_uvarint(b)? as usize;
        if b.remaining() < size {
            return Err(short("a tagged field"));
        }
        b.advance(size);
    }
    Ok(())
}
fn put_uvarint(b: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}
fn put_string(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}
fn put_compact_string(b: &mut BytesMut, s: &str) {
    put_uvarint(b, s.len() as u64 + 1);
    b.put_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(state: TxnState) -> TxnMetadata {
        let mut m = TxnMetadata::new("app-1", 4000, 60_000, 10);
        m.producer_epoch = 7;
        m.state = state;
        m.previous_producer_id = 3999;
        m.client_transaction_version = 2;
        if state != TxnState::Empty {
            m.partitions.insert(("orders".into(), 0));
            m.partitions.insert(("orders".into(), 2));
            m.partitions.insert(("__consumer_offsets".into(), 17));
            m.txn_start_timestamp_ms = 5;
        }
        m
    }

    #[test]
    fn values_round_trip_in_every_state() {
        // Goal: what weir writes, it reads back unchanged, tagged fields included.
        for state in TxnState::ALL {
            let m = sample(state);
            let back = decode_value("app-1", &encode_value(&m)).unwrap();
            assert_eq!(back, m, "{state:?}");
        }
        assert_eq!(decode_key(&encode_key("app-1")).unwrap(), "app-1");
    }

    #[test]
    fn reads_version_0_values_as_kafka_writes_them() {
        // Goal: a value in the non-flexible v0 layout (Kafka with transaction.version 0) is read.
        let mut b = BytesMut::new();
        b.put_i16(0);
        b.put_i64(12);
        b.put_i16(3);
        b.put_i32(60_000);
        b.put_i8(TxnState::Ongoing.id());
        b.put_i32(1);
        put_string(&mut b, "t");
        b.put_i32(2);
        b.put_i32(0);
        b.put_i32(1);
        b.put_i64(99);
        b.put_i64(98);
        let m = decode_value("x", &b).unwrap();
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.state),
            (12, 3, TxnState::Ongoing)
        );
        assert_eq!(m.partitions.len(), 2);
        assert_eq!(
            (m.txn_last_update_timestamp_ms, m.txn_start_timestamp_ms),
            (99, 98)
        );
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        // Goal: every prefix of a valid value is refused cleanly.
        let v = encode_value(&sample(TxnState::PrepareCommit));
        for cut in 0..v.len() {
            assert!(
                decode_value("a", &v[..cut]).is_err(),
                "prefix of {cut} bytes"
            );
        }
    }
}
