//! Control batches: the transaction markers (commit or abort) the broker writes into a
//! partition when a transaction ends, in Kafka's layout.
//!
//! A marker is a v2 batch with the control (bit 5) and transactional (bit 4) attributes, the
//! producer's id and epoch, base sequence -1, and one uncompressed record:
//!
//! ```text
//! key:   int16 version (0), int16 type (0 = abort, 1 = commit)
//! value: int16 version (0), int32 coordinator epoch
//! ```

use bytes::{Bytes, BytesMut};

use super::{read_varint, BatchHeader, BATCH_HEADER_BYTES};
use crate::LogError;

/// Version of the control record key and of the end-transaction marker value we write.
const CONTROL_RECORD_VERSION: i16 = 0;
/// Bytes of a control record key: version and type.
const CONTROL_KEY_BYTES: usize = 4;
/// Bytes of an end-transaction marker value: version and coordinator epoch.
const END_TXN_MARKER_VALUE_BYTES: usize = 6;
/// The compression codec bits of a batch's attributes.
const CODEC_MASK: i16 = 0x07;

/// What a control record says, as far as transactions care (Kafka's `ControlRecordType`;
/// other types, such as KRaft's, are not transaction markers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRecordType {
    Abort,
    Commit,
}

impl ControlRecordType {
    fn code(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
        }
    }

    fn from_code(code: i16) -> Option<ControlRecordType> {
        match code {
            0 => Some(ControlRecordType::Abort),
            1 => Some(ControlRecordType::Commit),
            _ => None,
        }
    }
}

/// The content of one end-transaction marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    pub control_type: ControlRecordType,
    pub coordinator_epoch: i32,
}

/// Encodes a marker batch (base offset 0, to be assigned) for the producer's transaction.
pub fn encode_end_txn_marker(
    producer_id: i64,
    producer_epoch: i16,
    marker: EndTxnMarker,
    timestamp_ms: i64,
) -> Result<BytesMut, LogError> {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let mut key = Vec::with_capacity(CONTROL_KEY_BYTES);
    key.extend_from_slice(&CONTROL_RECORD_VERSION.to_be_bytes());
    key.extend_from_slice(&marker.control_type.code().to_be_bytes());
    let mut value = Vec::with_capacity(END_TXN_MARKER_VALUE_BYTES);
    value.extend_from_slice(&CONTROL_RECORD_VERSION.to_be_bytes());
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        // Markers carry no sequence: the encoder derives base sequence -1 from this.
        sequence: -1,
        timestamp: timestamp_ms,
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from(value)),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| LogError::InvalidRecord(format!("cannot encode a transaction marker: {e}")))?;
    Ok(buf)
}

/// The marker one whole stored batch holds, or `None` when the batch is not a control batch,
/// is some other control record, or cannot be read (it comes from disk: nothing here panics).
pub fn end_txn_marker(batch: &[u8]) -> Option<EndTxnMarker> {
    let header = BatchHeader::parse(batch).ok()?;
    if !header.is_control() || header.size_bytes > batch.len() || header.records_count < 1 {
        return None;
    }
    // Kafka writes markers uncompressed; a compressed control batch is not one of ours.
    if header.attributes & CODEC_MASK != 0 {
        return None;
    }
    let records = &batch[BATCH_HEADER_BYTES..header.size_bytes];
    let mut at = 0usize;
    let len = usize::try_from(read_varint(records, &mut at).ok()?).ok()?;
    let record = records.get(..at.checked_add(len)?)?;
    at += 1; // attributes
    read_varint(record, &mut at).ok()?; // timestamp delta
    read_varint(record, &mut at).ok()?; // offset delta
    let key = length_prefixed(record, &mut at)?;
    let value = length_prefixed(record, &mut at)?;
    if key.len() < CONTROL_KEY_BYTES {
        return None;
    }
    let control_type = ControlRecordType::from_code(i16::from_be_bytes([key[2], key[3]]))?;
    // A marker whose value is missing or short still ends its transaction; its coordinator
    // epoch is then unknown (-1), as for a producer no coordinator has written for.
    let coordinator_epoch = match value {
        v if v.len() >= END_TXN_MARKER_VALUE_BYTES => i32::from_be_bytes([v[2], v[3], v[4], v[5]]),
        _ => -1,
    };
    Some(EndTxnMarker {
        control_type,
        coordinator_epoch,
    })
}

/// [`end_txn_marker`]'s type alone.
pub fn control_type(batch: &[u8]) -> Option<ControlRecordType> {
    end_txn_marker(batch).map(|m| m.control_type)
}

/// A varint-length-prefixed byte string at `*at` (a null one reads as empty).
fn length_prefixed<'a>(record: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = read_varint(record, at).ok()?;
    if len < 0 {
        return Some(&[]);
    }
    let end = at.checked_add(usize::try_from(len).ok()?)?;
    let bytes = record.get(*at..end)?;
    *at = end;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{crc_matches, validate_produce_batches};

    #[test]
    fn a_marker_is_a_valid_control_batch_kafka_decoders_read() {
        // Goal: the encoded marker has Kafka's attributes, sequence and record layout, a
        // valid CRC, and decodes with kafka-protocol's decoder as a control batch whose key
        // and value are the marker's.
        for (control_type, code) in [
            (ControlRecordType::Abort, 0i16),
            (ControlRecordType::Commit, 1),
        ] {
            let marker = EndTxnMarker {
                control_type,
                coordinator_epoch: 7,
            };
            let bytes = encode_end_txn_marker(42, 3, marker, 1_234).unwrap();
            let header = BatchHeader::parse(&bytes).unwrap();
            assert!(crc_matches(&header, &bytes), "CRC-32C covers the batch");
            assert!(header.is_control() && header.is_transactional());
            assert_eq!(
                (
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence
                ),
                (42, 3, -1)
            );
            assert_eq!(
                (
                    header.records_count,
                    header.base_timestamp,
                    header.max_timestamp
                ),
                (1, 1_234, 1_234)
            );

            let mut buf = Bytes::copy_from_slice(&bytes);
            let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).unwrap();
            assert_eq!(set.records.len(), 1);
            let r = &set.records[0];
            assert!(r.control && r.transactional);
            assert_eq!(
                (r.producer_id, r.producer_epoch, r.timestamp),
                (42, 3, 1_234)
            );
            let key = r.key.as_ref().unwrap();
            assert_eq!(&key[..], &[0, 0, 0, code as u8][..]);
            assert_eq!(&r.value.as_ref().unwrap()[..], &[0, 0, 0, 0, 0, 7][..]);

            assert_eq!(end_txn_marker(&bytes), Some(marker));
            assert_eq!(super::control_type(&bytes), Some(control_type));
            // Clients may not write one.
            assert!(validate_produce_batches(&bytes, 1 << 20).is_err());
        }
    }

    #[test]
    fn only_markers_parse_as_markers_and_damage_never_panics() {
        // Goal: a data batch is no marker; every truncation and every single-byte change of a
        // marker is read without a panic.
        let data = crate::batch::tests::make_batch(2, 5, None);
        assert_eq!(end_txn_marker(&data), None);
        let marker = encode_end_txn_marker(
            1,
            0,
            EndTxnMarker {
                control_type: ControlRecordType::Commit,
                coordinator_epoch: 2,
            },
            9,
        )
        .unwrap();
        for cut in 0..marker.len() {
            let _ = end_txn_marker(&marker[..cut]);
        }
        for at in 0..marker.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = marker.to_vec();
                bad[at] ^= flip;
                let _ = end_txn_marker(&bad);
            }
        }
    }
}
