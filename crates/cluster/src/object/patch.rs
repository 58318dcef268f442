//! Walking the batches of a chunk and writing the broker-owned fields the CRC leaves out:
//! the base offset (bytes 0..8) and the partition leader epoch (bytes 12..16).
//!
//! A chunk written by the produce path holds batches as the producer sent them, each with
//! base offset 0, because offsets are assigned by the PostgreSQL commit after the PUT. The
//! fetch path patches them in its copy before serving, exactly as `PartitionLog` does at
//! append; since the CRC covers bytes 21.. only, the batches stay valid.

use weir_log::batch::{BatchHeader, BATCH_HEADER_BYTES};

use super::ObjectError;

/// Kafka's record batch format version, the only one a chunk may hold.
const BATCH_MAGIC: i8 = 2;

/// Parses and checks the batch header at `position`, which must be inside `chunk`: a whole
/// v2 batch with a non-negative `last_offset_delta`.
pub(crate) fn header_at(chunk: &[u8], position: usize) -> Result<BatchHeader, ObjectError> {
    let rest = &chunk[position..];
    if rest.len() < BATCH_HEADER_BYTES {
        return Err(ObjectError::bad_batch(
            position,
            format!(
                "{} bytes left, a batch header needs {BATCH_HEADER_BYTES}",
                rest.len()
            ),
        ));
    }
    let header = BatchHeader::parse(rest).map_err(|e| ObjectError::from_log(position, e))?;
    if header.magic != BATCH_MAGIC {
        return Err(ObjectError::bad_batch(
            position,
            format!("magic {} is not {BATCH_MAGIC}", header.magic),
        ));
    }
    if header.size_bytes > rest.len() {
        return Err(ObjectError::bad_batch(
            position,
            format!(
                "declares {} bytes, {} present",
                header.size_bytes,
                rest.len()
            ),
        ));
    }
    if header.last_offset_delta < 0 {
        return Err(ObjectError::bad_batch(
            position,
            format!("last offset delta {} is negative", header.last_offset_delta),
        ));
    }
    Ok(header)
}

/// Every batch of `chunk` with its position, in order; the first malformed one ends the walk
/// with its error.
pub(crate) fn batches(
    chunk: &[u8],
) -> impl Iterator<Item = Result<(usize, BatchHeader), ObjectError>> + '_ {
    let mut position = 0usize;
    std::iter::from_fn(move || {
        if position >= chunk.len() {
            return None;
        }
        match header_at(chunk, position) {
            Ok(header) => {
                let at = position;
                position += header.size_bytes;
                Some(Ok((at, header)))
            }
            Err(e) => {
                position = chunk.len();
                Some(Err(e))
            }
        }
    })
}

/// The offsets a batch occupies: `last_offset_delta + 1` (Kafka keeps the delta even when
/// compaction removed records, so this, not `records_count`, is what offsets advance by).
fn offset_count(header: &BatchHeader) -> i64 {
    i64::from(header.last_offset_delta) + 1
}

/// Writes each batch's real base offset, contiguous from `base_offset`, and returns the
/// offset after the last batch (the partition's next offset). The chunk is checked whole
/// before the first write, so a refused chunk is left as it was.
pub fn patch_offsets(chunk_bytes: &mut [u8], base_offset: i64) -> Result<i64, ObjectError> {
    if base_offset < 0 {
        return Err(ObjectError::NegativeBaseOffset { base_offset });
    }
    // 1. Check every batch, and that the offsets stay below i64::MAX.
    let mut next_offset = base_offset;
    for batch in batches(chunk_bytes) {
        let (_, header) = batch?;
        next_offset =
            next_offset
                .checked_add(offset_count(&header))
                .ok_or(ObjectError::OffsetOverflow {
                    base_offset,
                    offset_count: offset_count(&header),
                })?;
    }
    // 2. Write.
    let mut batch_offset = base_offset;
    rewrite_checked(chunk_bytes, |header, batch| {
        batch[0..8].copy_from_slice(&batch_offset.to_be_bytes());
        batch_offset += offset_count(header);
    })?;
    debug_assert_eq!(batch_offset, next_offset);
    Ok(next_offset)
}

/// Writes `leader_epoch` into every batch of the chunk, as a leader does at append; checked
/// whole before the first write, like [`patch_offsets`].
pub fn set_leader_epoch(chunk_bytes: &mut [u8], leader_epoch: i32) -> Result<(), ObjectError> {
    for batch in batches(chunk_bytes) {
        batch?;
    }
    rewrite_checked(chunk_bytes, |_, batch| {
        batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    })
}

/// Hands each batch's header and bytes to `write`. The caller has walked the chunk with
/// [`batches`] already, so this walk meets no error and `write` never sees a partial chunk
/// change; the `?` only keeps a broken caller from panicking.
fn rewrite_checked(
    chunk: &mut [u8],
    mut write: impl FnMut(&BatchHeader, &mut [u8]),
) -> Result<(), ObjectError> {
    let mut position = 0usize;
    while position < chunk.len() {
        let header = header_at(chunk, position)?;
        write(&header, &mut chunk[position..position + header.size_bytes]);
        position += header.size_bytes;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;
    use weir_log::batch::{encode_batch, NewRecord};

    use super::*;

    fn batch(record_count: usize) -> Vec<u8> {
        let records: Vec<NewRecord> = (0..record_count)
            .map(|i| NewRecord {
                key: None,
                value: Some(format!("v{i}").into()),
                timestamp_ms: i as i64,
            })
            .collect();
        encode_batch(&records, None, Compression::None)
            .unwrap()
            .to_vec()
    }

    /// Two batches (3 and 2 records) and where the second starts.
    fn chunk() -> (Vec<u8>, usize) {
        let first = batch(3);
        let second_at = first.len();
        ([first, batch(2)].concat(), second_at)
    }

    fn base_offset_at(chunk: &[u8], position: usize) -> i64 {
        i64::from_be_bytes(chunk[position..position + 8].try_into().unwrap())
    }

    #[test]
    fn offsets_follow_each_batchs_last_offset_delta() {
        // Goal: batch k starts where batch k-1's offsets end, and the next offset follows
        // the last batch.
        let (mut chunk, second_at) = chunk();
        assert_eq!(patch_offsets(&mut chunk, 100).unwrap(), 105);
        assert_eq!(base_offset_at(&chunk, 0), 100);
        assert_eq!(base_offset_at(&chunk, second_at), 103);
        set_leader_epoch(&mut chunk, 9).unwrap();
        assert_eq!(chunk[second_at + 12..second_at + 16], 9i32.to_be_bytes());
        assert_eq!(patch_offsets(&mut [], 7).unwrap(), 7);
    }

    #[test]
    fn a_malformed_chunk_is_refused_and_left_as_it_was() {
        // Goal: a cut, a wrong magic, an impossible length or delta anywhere in the chunk
        // refuses it before the first write, so no batch is half patched.
        let (whole, second_at) = chunk();
        let mut cases: Vec<(Vec<u8>, usize)> = vec![(whole[..whole.len() - 1].to_vec(), second_at)];
        cases.push((whole[..second_at + 30].to_vec(), second_at));
        let mut magic = whole.clone();
        magic[second_at + 16] = 1;
        cases.push((magic, second_at));
        let mut length = whole.clone();
        length[second_at + 8..second_at + 12].copy_from_slice(&10i32.to_be_bytes());
        cases.push((length, second_at));
        let mut delta = whole.clone();
        delta[second_at + 23..second_at + 27].copy_from_slice(&(-1i32).to_be_bytes());
        cases.push((delta, second_at));
        for (case, (bad, position)) in cases.into_iter().enumerate() {
            let mut patched = bad.clone();
            let refused = patch_offsets(&mut patched, 100).unwrap_err();
            assert!(
                matches!(refused, ObjectError::BadBatch { position: p, .. } if p == position),
                "case {case}: {refused:?}"
            );
            assert!(set_leader_epoch(&mut patched, 3).is_err(), "case {case}");
            assert_eq!(patched, bad, "case {case}: changed though refused");
        }
    }

    #[test]
    fn offsets_past_i64_max_and_negative_bases_are_refused() {
        // Goal: an offset that would wrap is an error, not a negative offset served.
        let (mut chunk, _) = chunk();
        let before = chunk.clone();
        assert_eq!(
            patch_offsets(&mut chunk, i64::MAX - 4),
            Err(ObjectError::OffsetOverflow {
                base_offset: i64::MAX - 4,
                offset_count: 2
            })
        );
        assert_eq!(
            patch_offsets(&mut chunk, -1),
            Err(ObjectError::NegativeBaseOffset { base_offset: -1 })
        );
        assert_eq!(chunk, before);
        assert_eq!(patch_offsets(&mut chunk, i64::MAX - 5), Ok(i64::MAX));
    }
}
