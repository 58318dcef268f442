//! The Kafka v2 record batch header, read in place.
//!
//! ```text
//! offset  size  field
//!  0       8    base_offset            (written by the broker)
//!  8       4    batch_length           (bytes after this field)
//! 12       4    partition_leader_epoch (written by the broker)
//! 16       1    magic (= 2)
//! 17       4    crc (CRC-32C of bytes 21..end)
//! 21       2    attributes
//! 23       4    last_offset_delta
//! 27       8    base_timestamp
//! 35       8    max_timestamp
//! 43       8    producer_id
//! 51       2    producer_epoch
//! 53       4    base_sequence
//! 57       4    records_count
//! ```

use crate::LogError;

mod control;
pub mod record_checks;
pub use control::{
    control_type, encode_end_txn_marker, end_txn_marker, ControlRecordType, EndTxnMarker,
};

/// Size of a batch header, up to and including `records_count`.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes in front of `batch_length`'s coverage: base offset and the length itself.
pub const LOG_OVERHEAD_BYTES: usize = 12;
const CRC_START: usize = 21;

/// The fields of a batch header weir needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Whole batch size on disk, `LOG_OVERHEAD_BYTES` included.
    pub size_bytes: usize,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

impl BatchHeader {
    /// Parses the header at the start of `bytes`, which must hold at least
    /// `BATCH_HEADER_BYTES`. Checks only that the declared length is sane.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, LogError> {
        if bytes.len() < BATCH_HEADER_BYTES {
            return Err(LogError::CorruptMessage(format!(
                "{} bytes is shorter than a batch header",
                bytes.len()
            )));
        }
        let batch_length = be_i32(bytes, 8);
        if batch_length < (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32 {
            return Err(LogError::CorruptMessage(format!(
                "batch length {batch_length} too small"
            )));
        }
        Ok(BatchHeader {
            base_offset: be_i64(bytes, 0),
            size_bytes: batch_length as usize + LOG_OVERHEAD_BYTES,
            magic: bytes[16] as i8,
            crc: be_i32(bytes, 17) as u32,
            attributes: be_i16(bytes, 21),
            last_offset_delta: be_i32(bytes, 23),
            base_timestamp: be_i64(bytes, 27),
            max_timestamp: be_i64(bytes, 35),
            producer_id: be_i64(bytes, 43),
            producer_epoch: be_i16(bytes, 51),
            base_sequence: be_i32(bytes, 53),
            records_count: be_i32(bytes, 57),
        })
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        // Sequences wrap at i32::MAX back to 0, as in Kafka.
        ((i64::from(self.base_sequence) + i64::from(self.last_offset_delta))
            % (i64::from(i32::MAX) + 1)) as i32
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    pub fn is_idempotent(&self) -> bool {
        self.producer_id >= 0 && self.base_sequence >= 0
    }
}

/// The whole batches at the front of a record set, each with its header; a partial batch at
/// the end (a fetch may stop inside one) is left out. A header that does not parse ends the
/// walk with its error.
pub fn whole_batches(
    mut bytes: bytes::Bytes,
) -> impl Iterator<Item = Result<(BatchHeader, bytes::Bytes), LogError>> {
    std::iter::from_fn(move || {
        if bytes.len() < BATCH_HEADER_BYTES {
            return None;
        }
        match BatchHeader::parse(&bytes) {
            Err(e) => {
                bytes.clear();
                Some(Err(e))
            }
            Ok(h) if h.size_bytes > bytes.len() => None,
            Ok(h) => Some(Ok((h, bytes.split_to(h.size_bytes)))),
        }
    })
}

/// Checks the CRC of one whole batch (`bytes` is exactly the batch).
pub fn crc_matches(header: &BatchHeader, bytes: &[u8]) -> bool {
    bytes.len() == header.size_bytes && crc32c::crc32c(&bytes[CRC_START..]) == header.crc
}

/// Who wrote a record set, which decides what it must carry (Kafka's `AppendOrigin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer: a batch with a producer id must carry a sequence.
    Client,
    /// The broker's own coordinators: their transactional batches (offsets committed in a
    /// transaction, say) carry the producer's id and epoch but no sequence.
    Coordinator,
}

/// Splits a produce request's record set into batches and validates each one as a
/// broker must before storing it: magic 2, sane length, CRC, a consistent record count,
/// and the size limit. Returns the headers in order.
pub fn validate_produce_batches(
    records: &[u8],
    max_message_bytes: usize,
) -> Result<Vec<BatchHeader>, LogError> {
    validate_batches(records, max_message_bytes, AppendOrigin::Client)
}

/// [`validate_produce_batches`] for batches from `origin`.
pub fn validate_batches(
    records: &[u8],
    max_message_bytes: usize,
    origin: AppendOrigin,
) -> Result<Vec<BatchHeader>, LogError> {
    let mut headers = Vec::new();
    let mut at = 0usize;
    if records.is_empty() {
        return Err(LogError::InvalidRecord("empty record set".into()));
    }
    while at < records.len() {
        let rest = &records[at..];
        if rest.len() < BATCH_HEADER_BYTES {
            return Err(LogError::CorruptMessage(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        let magic = rest[16] as i8;
        if magic != 2 {
            return Err(LogError::InvalidRecord(format!(
                "magic {magic} is not supported; only v2 batches"
            )));
        }
        let header = BatchHeader::parse(rest)?;
        if header.size_bytes > rest.len() {
            return Err(LogError::CorruptMessage(format!(
                "batch declares {} bytes, {} present",
                header.size_bytes,
                rest.len()
            )));
        }
        if header.size_bytes > max_message_bytes {
            return Err(LogError::RecordTooLarge {
                size_bytes: header.size_bytes,
                limit_bytes: max_message_bytes,
            });
        }
        if !crc_matches(&header, &rest[..header.size_bytes]) {
            return Err(LogError::CorruptMessage("CRC mismatch".into()));
        }
        if header.records_count <= 0 || header.last_offset_delta != header.records_count - 1 {
            return Err(LogError::InvalidRecord(format!(
                "records_count {} does not match last_offset_delta {}",
                header.records_count, header.last_offset_delta
            )));
        }
        // As Kafka: control records are the broker's own, and a batch with a producer id
        // must carry a sequence.
        if header.is_control() {
            return Err(LogError::InvalidRecord(
                "clients may not write control records".into(),
            ));
        }
        if header.is_transactional() && header.producer_id < 0 {
            return Err(LogError::InvalidRecord(
                "a transactional batch has no producer id".into(),
            ));
        }
        if origin == AppendOrigin::Client && header.producer_id >= 0 && header.base_sequence < 0 {
            return Err(LogError::InvalidRecord(format!(
                "batch of producer {} has no sequence number",
                header.producer_id
            )));
        }
        headers.push(header);
        at += header.size_bytes;
    }
    Ok(headers)
}

/// Writes the broker-owned fields of a batch in place: the base offset and the partition
/// leader epoch. Neither is covered by the CRC, so the stored batch stays valid.
pub fn assign_base_offset(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// One record to put in a batch built by [`encode_batch`].
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub key: Option<bytes::Bytes>,
    pub value: Option<bytes::Bytes>,
    pub timestamp_ms: i64,
}

/// Encodes records as one v2 batch (base offset 0), as a producer would send it. With
/// `producer` = (producer id, epoch, first sequence) the batch is idempotent.
pub fn encode_batch(
    records: &[NewRecord],
    producer: Option<(i64, i16, i32)>,
    compression: kafka_protocol::records::Compression,
) -> Result<bytes::BytesMut, LogError> {
    encode_records(
        records,
        producer.unwrap_or((-1, -1, -1)),
        false,
        compression,
    )
}

/// [`encode_batch`] for a transactional producer: the batch has the transactional attribute
/// (bit 4) and belongs to the producer's open transaction once stored.
pub fn encode_transactional_batch(
    records: &[NewRecord],
    producer: (i64, i16, i32),
    compression: kafka_protocol::records::Compression,
) -> Result<bytes::BytesMut, LogError> {
    encode_records(records, producer, true, compression)
}

fn encode_records(
    records: &[NewRecord],
    (pid, epoch, seq): (i64, i16, i32),
    transactional: bool,
    compression: kafka_protocol::records::Compression,
) -> Result<bytes::BytesMut, LogError> {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset minus sequence is constant.
            sequence: if seq < 0 {
                i as i32 - 1
            } else {
                seq + i as i32
            },
            timestamp: r.timestamp_ms,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| LogError::InvalidRecord(format!("cannot encode batch: {e}")))?;
    Ok(buf)
}

/// Reads a zigzag varint (Kafka's varint and varlong) at `*at`, moving `*at` past it.
pub(crate) fn read_varint(buf: &[u8], at: &mut usize) -> Result<i64, LogError> {
    let mut raw: u64 = 0;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = buf.get(*at) else {
            return Err(LogError::CorruptMessage(
                "a record ends inside a varint".into(),
            ));
        };
        *at += 1;
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err(LogError::CorruptMessage(
        "a varint longer than 10 bytes".into(),
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kafka_protocol::records::Compression;

    pub fn make_batch(count: usize, ts: i64, producer: Option<(i64, i16, i32)>) -> Vec<u8> {
        let records: Vec<NewRecord> = (0..count)
            .map(|i| NewRecord {
                key: Some(bytes::Bytes::from(format!("k{i}"))),
                value: Some(bytes::Bytes::from(format!("value-{i}"))),
                timestamp_ms: ts + i as i64,
            })
            .collect();
        encode_batch(&records, producer, Compression::None)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn valid_batch_passes_and_corruption_is_caught() {
        // Goal: a real batch validates; a flipped payload byte fails the CRC; size limit holds.
        let b = make_batch(3, 1000, None);
        let h = validate_produce_batches(&b, 1 << 20).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].records_count, 3);
        let mut bad = b.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(matches!(
            validate_produce_batches(&bad, 1 << 20),
            Err(LogError::CorruptMessage(_))
        ));
        assert!(matches!(
            validate_produce_batches(&b, 10),
            Err(LogError::RecordTooLarge { .. })
        ));
        // Control batches and producer batches without a sequence are refused, as Kafka does.
        let mut control = b.clone();
        control[22] |= 0x20;
        let crc = crc32c::crc32c(&control[21..]);
        control[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_produce_batches(&control, 1 << 20),
            Err(LogError::InvalidRecord(_))
        ));
        let mut no_sequence = b.clone();
        no_sequence[43..51].copy_from_slice(&7i64.to_be_bytes());
        let crc = crc32c::crc32c(&no_sequence[21..]);
        no_sequence[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_produce_batches(&no_sequence, 1 << 20),
            Err(LogError::InvalidRecord(_))
        ));
        let mut old_magic = b.clone();
        old_magic[16] = 1;
        assert!(matches!(
            validate_produce_batches(&old_magic, 1 << 20),
            Err(LogError::InvalidRecord(_))
        ));
        assert!(validate_produce_batches(&b[..b.len() - 1], 1 << 20).is_err());
    }

    #[test]
    fn whole_batches_leave_out_a_partial_tail_and_stop_at_a_bad_header() {
        // Goal: the walk yields each whole batch with its header, not a cut-off last one; a
        // header with an impossible length ends it with an error.
        let (mut a, mut b) = (make_batch(2, 1, None), make_batch(3, 1, None));
        assign_base_offset(&mut a, 0, 0);
        assign_base_offset(&mut b, 2, 0);
        let whole = [a.clone(), b.clone()].concat();
        let cut = [whole.clone(), b[..b.len() - 1].to_vec()].concat();
        let got: Vec<(i64, usize)> = whole_batches(bytes::Bytes::from(cut))
            .map(|r| r.map(|(h, bytes)| (h.base_offset, bytes.len())).unwrap())
            .collect();
        assert_eq!(got, vec![(0, a.len()), (2, b.len())]);
        let mut bad = a.clone();
        bad[8..12].copy_from_slice(&1i32.to_be_bytes());
        let mut walk = whole_batches(bytes::Bytes::from(bad));
        assert!(matches!(
            walk.next(),
            Some(Err(LogError::CorruptMessage(_)))
        ));
        assert!(walk.next().is_none());
    }

    #[test]
    fn assigning_offsets_keeps_crc_valid() {
        // Goal: the broker-written fields are outside the CRC.
        let mut b = make_batch(2, 5, None);
        assign_base_offset(&mut b, 12345, 7);
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.base_offset, 12345);
        assert_eq!(h.last_offset(), 12346);
        assert!(crc_matches(&h, &b));
    }
}
