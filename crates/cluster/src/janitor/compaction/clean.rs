//! One compaction's work on chunk bytes, with no I/O: batches given their real offsets,
//! the key map of the dirty chunks, and each chunk cleaned against it, by weir-log's
//! cleaner rules (`weir_log::cleaner`), which the local engine follows too.

use weir_log::cleaner::{clean_batch, AbortedRanges, BatchFate, CleanedBatch, KeyMap};

use super::plan::ChunkInfo;
use crate::error::ClusterError;
use crate::object::{batches, patch_offsets};

/// What the compactor knows of a partition's transactions while it cleans.
pub struct Transactions {
    pub aborted: AbortedRanges,
    /// The partition's last stable offset when the plan was made.
    pub last_stable_offset: i64,
}

/// One chunk cleaned.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CleanedChunk {
    /// The batches kept, their offsets real.
    pub bytes: Vec<u8>,
    /// Some record or batch was left out.
    pub changed: bool,
    pub records_kept: u64,
    /// Of `records_kept`, the tombstones.
    pub tombstones_kept: u64,
}

fn corrupt(chunk: &ChunkInfo, why: impl std::fmt::Display) -> ClusterError {
    ClusterError::Corrupt(format!(
        "the chunk at {} of object {} (offsets {}..={}): {why}",
        chunk.position, chunk.object_id, chunk.base_offset, chunk.last_offset
    ))
}

/// The chunk's batches with their real offsets: a produce chunk's written in (its batches
/// hold offsets relative to the chunk), a compactor's as stored.
pub fn with_offsets(chunk: &ChunkInfo, raw: &[u8]) -> Result<Vec<u8>, ClusterError> {
    let mut bytes = raw.to_vec();
    if !chunk.offsets_in_object {
        let next = patch_offsets(&mut bytes, chunk.base_offset).map_err(|e| corrupt(chunk, e))?;
        if next != chunk.last_offset + 1 {
            return Err(corrupt(
                chunk,
                format!("its batches end at offset {}", next - 1),
            ));
        }
    }
    Ok(bytes)
}

/// Adds the newest offset of every key in `bytes` (one chunk, offsets real) to `keys`,
/// from the batches that compact (plain data and committed transactions).
pub fn add_keys(
    chunk: &ChunkInfo,
    bytes: &[u8],
    txns: &Transactions,
    keys: &mut KeyMap,
) -> Result<(), ClusterError> {
    for batch in batches(bytes) {
        let (at, header) = batch.map_err(|e| corrupt(chunk, e))?;
        if txns.aborted.fate(&header, txns.last_stable_offset) == BatchFate::Compact {
            keys.add_batch(&header, &bytes[at..at + header.size_bytes])
                .map_err(|e| corrupt(chunk, e))?;
        }
    }
    Ok(())
}

/// Cleans one chunk (offsets real) against `keys`: markers and possibly open
/// transactions copied, aborted transactions left out, the rest compacted by key;
/// tombstones kept only if `keep_tombstones`.
pub fn clean_chunk(
    chunk: &ChunkInfo,
    bytes: &[u8],
    txns: &Transactions,
    keys: &KeyMap,
    keep_tombstones: bool,
) -> Result<CleanedChunk, ClusterError> {
    let mut out = CleanedChunk {
        bytes: Vec::with_capacity(bytes.len()),
        ..CleanedChunk::default()
    };
    for batch in batches(bytes) {
        let (at, header) = batch.map_err(|e| corrupt(chunk, e))?;
        let whole = &bytes[at..at + header.size_bytes];
        match txns.aborted.fate(&header, txns.last_stable_offset) {
            BatchFate::Keep => out.bytes.extend_from_slice(whole),
            BatchFate::Drop => out.changed = true,
            BatchFate::Compact => {
                let kept = clean_batch(&header, whole, keys, keep_tombstones)
                    .map_err(|e| corrupt(chunk, e))?;
                out.records_kept += kept.records;
                out.tombstones_kept += kept.tombstones;
                match kept.batch {
                    CleanedBatch::Whole => out.bytes.extend_from_slice(whole),
                    CleanedBatch::Rewritten(rewritten) => {
                        out.changed = true;
                        out.bytes.extend_from_slice(&rewritten);
                    }
                    CleanedBatch::Empty => out.changed = true,
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::records::Compression;
    use weir_log::batch::{encode_batch, NewRecord};
    use weir_log::records::decode_batch;
    use weir_log::AbortedTxn;

    /// A chunk as the produce path stores it: batches of (key, value) records, offsets
    /// relative.
    fn produced(batches: &[&[(&str, Option<&str>)]]) -> Vec<u8> {
        let mut out = Vec::new();
        for records in batches {
            let records: Vec<NewRecord> = records
                .iter()
                .map(|(k, v)| NewRecord {
                    key: Some(Bytes::from(k.to_string())),
                    value: v.map(|v| Bytes::from(v.to_string())),
                    timestamp_ms: 1,
                })
                .collect();
            out.extend_from_slice(&encode_batch(&records, None, Compression::Lz4).unwrap());
        }
        out
    }

    fn info(base_offset: i64, last_offset: i64) -> ChunkInfo {
        ChunkInfo {
            base_offset,
            last_offset,
            object_id: 1,
            position: 0,
            size_bytes: 0,
            max_timestamp: 1,
            offsets_in_object: false,
            tombstones_since_ms: None,
        }
    }

    fn records(bytes: &[u8]) -> Vec<(i64, String, Option<String>)> {
        let mut out = Vec::new();
        for batch in batches(bytes) {
            let (at, header) = batch.unwrap();
            for r in decode_batch(&bytes[at..at + header.size_bytes]).unwrap() {
                out.push((
                    r.offset,
                    String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                    r.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
                ));
            }
        }
        out
    }

    fn no_txns() -> Transactions {
        Transactions {
            aborted: AbortedRanges::new(&[]),
            last_stable_offset: i64::MAX,
        }
    }

    #[test]
    fn the_newest_of_each_key_stays_with_its_offset() {
        // Goal: a produce chunk gets its real offsets; after a key map over a later chunk,
        // the earlier chunk keeps only the records no later one supersedes, at their
        // offsets; tombstones stay or go as asked; an untouched chunk is not "changed".
        let first = info(10, 14);
        let raw = produced(&[
            &[("a", Some("1")), ("b", Some("1"))],
            &[("c", Some("1")), ("a", Some("2")), ("d", None)],
        ]);
        let first_bytes = with_offsets(&first, &raw).unwrap();
        let second = info(15, 16);
        let second_bytes =
            with_offsets(&second, &produced(&[&[("b", Some("3")), ("e", Some("3"))]])).unwrap();
        assert!(
            with_offsets(&info(10, 20), &raw).is_err(),
            "a row that disagrees is refused"
        );

        let mut keys = KeyMap::new();
        let txns = no_txns();
        add_keys(&first, &first_bytes, &txns, &mut keys).unwrap();
        add_keys(&second, &second_bytes, &txns, &mut keys).unwrap();
        assert_eq!(keys.len(), 5);

        let cleaned = clean_chunk(&first, &first_bytes, &txns, &keys, true).unwrap();
        assert!(cleaned.changed);
        assert_eq!((cleaned.records_kept, cleaned.tombstones_kept), (3, 1));
        assert_eq!(
            records(&cleaned.bytes),
            [
                (12, "c".into(), Some("1".into())),
                (13, "a".into(), Some("2".into())),
                (14, "d".into(), None)
            ]
        );
        let cleaned = clean_chunk(&first, &first_bytes, &txns, &keys, false).unwrap();
        assert_eq!(records(&cleaned.bytes).len(), 2, "the tombstone goes");
        let cleaned = clean_chunk(&second, &second_bytes, &txns, &keys, true).unwrap();
        assert!(!cleaned.changed);
        assert_eq!(cleaned.bytes, second_bytes);
    }

    #[test]
    fn aborted_batches_go_and_their_keys_supersede_nothing() {
        // Goal: a batch inside an aborted transaction is dropped and its keys never enter
        // the map, so the older committed value of the same key stays.
        let chunk = info(0, 1);
        let mut bytes = with_offsets(&info(0, 0), &produced(&[&[("a", Some("old"))]])).unwrap();
        let mut aborted = encode_batch(
            &[NewRecord {
                key: Some(Bytes::from("a")),
                value: Some(Bytes::from("aborted")),
                timestamp_ms: 1,
            }],
            Some((7, 0, 0)),
            Compression::None,
        )
        .unwrap()
        .to_vec();
        // Transactional (attribute bit 4), at offset 1.
        aborted[22] |= 0x10;
        aborted[0..8].copy_from_slice(&1i64.to_be_bytes());
        let crc = crc32c::crc32c(&aborted[21..]);
        aborted[17..21].copy_from_slice(&crc.to_be_bytes());
        bytes.extend_from_slice(&aborted);
        let txns = Transactions {
            aborted: AbortedRanges::new(&[AbortedTxn {
                producer_id: 7,
                first_offset: 1,
                last_offset: 2,
                last_stable_offset: 3,
            }]),
            last_stable_offset: 3,
        };
        let mut keys = KeyMap::new();
        add_keys(&chunk, &bytes, &txns, &mut keys).unwrap();
        let cleaned = clean_chunk(&chunk, &bytes, &txns, &keys, true).unwrap();
        assert!(cleaned.changed);
        assert_eq!(
            records(&cleaned.bytes),
            [(0, "a".into(), Some("old".into()))]
        );
    }
}
