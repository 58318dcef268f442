//! The footer: its encoding, written by the builder, and its parser, which reads bytes from
//! the bucket and so refuses anything malformed with an error, never a panic.

use uuid::Uuid;

use super::{
    footer_size_bytes, ChunkEntry, ObjectError, PartitionKey, CHUNKS_PER_OBJECT_MAX, ENTRY_BYTES,
    FORMAT_VERSION, MAGIC, OBJECT_BYTES_MAX, TAIL_BYTES,
};
use weir_log::batch::BATCH_HEADER_BYTES;

/// Bit 0 of an entry's flags: the batches carry their real offsets.
const FLAG_OFFSETS_IN_OBJECT: u8 = 1;
/// From the tail's start: where the checksum is; it covers every footer byte before it.
const TAIL_CRC_AT: usize = 18;

/// The chunk table of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    /// Bytes before the footer; every chunk lies inside them.
    pub body_size_bytes: u64,
    /// In body order: each chunk starts at or after the previous one's end.
    pub chunks: Vec<ChunkEntry>,
}

impl Footer {
    /// The footer's own size.
    pub fn size_bytes(&self) -> usize {
        footer_size_bytes(self.chunks.len())
    }

    /// Appends the encoded footer to `out` (the object's body, so the footer ends it).
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        assert!(
            self.chunks.len() <= CHUNKS_PER_OBJECT_MAX,
            "the builder bounds chunks"
        );
        let start = out.len();
        for chunk in &self.chunks {
            out.extend_from_slice(chunk.partition.topic_id.as_bytes());
            out.extend_from_slice(&chunk.partition.partition.to_be_bytes());
            out.extend_from_slice(&chunk.position.to_be_bytes());
            out.extend_from_slice(&chunk.size_bytes.to_be_bytes());
            out.extend_from_slice(&chunk.batch_count.to_be_bytes());
            out.extend_from_slice(&chunk.base_offset.to_be_bytes());
            out.extend_from_slice(&chunk.last_offset.to_be_bytes());
            out.extend_from_slice(&chunk.max_timestamp.to_be_bytes());
            let flags = if chunk.offsets_in_object {
                FLAG_OFFSETS_IN_OBJECT
            } else {
                0
            };
            out.extend_from_slice(&[flags, 0, 0, 0]);
        }
        out.extend_from_slice(&(self.chunks.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.body_size_bytes.to_be_bytes());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        let crc = crc32c::crc32c(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
        out.extend_from_slice(&(self.size_bytes() as u32).to_be_bytes());
        assert_eq!(
            out.len() - start,
            self.size_bytes(),
            "entries and tail as laid out"
        );
    }

    /// Parses the footer from `tail`, the last `tail.len()` bytes of an object of
    /// `object_size_bytes`. Checks, in order: the bounds, magic and version from the fixed
    /// tail (so a reader learns from 26 bytes how many more to fetch), that `tail` holds
    /// the whole footer, its checksum, and each entry: inside the body, after the previous
    /// chunk, and consistent in itself.
    pub fn parse(tail: &[u8], object_size_bytes: u64) -> Result<Footer, ObjectError> {
        // 1. The fixed tail.
        if object_size_bytes > OBJECT_BYTES_MAX {
            return Err(ObjectError::ObjectTooLarge {
                size_bytes: object_size_bytes,
                limit_bytes: OBJECT_BYTES_MAX,
            });
        }
        let present_bytes = tail.len() as u64;
        if present_bytes > object_size_bytes {
            return Err(ObjectError::ObjectSizeMismatch {
                declared_bytes: present_bytes,
                actual_bytes: object_size_bytes,
            });
        }
        if tail.len() < TAIL_BYTES {
            return Err(ObjectError::FooterTruncated {
                needed_bytes: TAIL_BYTES as u64,
                present_bytes,
            });
        }
        let fixed = &tail[tail.len() - TAIL_BYTES..];
        let magic: [u8; 4] = fixed[12..16].try_into().expect("4 bytes");
        if magic != MAGIC {
            return Err(ObjectError::BadMagic { found: magic });
        }
        let version = be_u16(fixed, 16);
        if version != FORMAT_VERSION {
            return Err(ObjectError::UnsupportedVersion {
                version,
                supported: FORMAT_VERSION,
            });
        }
        let chunk_count = u64::from(be_u32(fixed, 0));
        if chunk_count > CHUNKS_PER_OBJECT_MAX as u64 {
            return Err(ObjectError::TooManyChunks {
                chunk_count,
                limit: CHUNKS_PER_OBJECT_MAX,
            });
        }
        let chunk_count = chunk_count as usize;
        let declared_bytes = u64::from(be_u32(fixed, 22));
        let expected_bytes = footer_size_bytes(chunk_count) as u64;
        if declared_bytes != expected_bytes {
            return Err(ObjectError::FooterSizeMismatch {
                declared_bytes,
                chunk_count: chunk_count as u64,
                expected_bytes,
            });
        }
        let body_size_bytes = be_u64(fixed, 4);
        let whole_bytes = body_size_bytes.saturating_add(expected_bytes);
        if whole_bytes != object_size_bytes {
            return Err(ObjectError::ObjectSizeMismatch {
                declared_bytes: whole_bytes,
                actual_bytes: object_size_bytes,
            });
        }
        // 2. The whole footer, under its checksum.
        if present_bytes < expected_bytes {
            return Err(ObjectError::FooterTruncated {
                needed_bytes: expected_bytes,
                present_bytes,
            });
        }
        let footer = &tail[tail.len() - expected_bytes as usize..];
        let crc_at = footer.len() - TAIL_BYTES + TAIL_CRC_AT;
        let stored = be_u32(footer, crc_at);
        let computed = crc32c::crc32c(&footer[..crc_at]);
        if stored != computed {
            return Err(ObjectError::FooterChecksum { stored, computed });
        }
        // 3. The entries.
        let mut chunks = Vec::with_capacity(chunk_count);
        let mut previous_end = 0u64;
        for (index, bytes) in footer[..chunk_count * ENTRY_BYTES]
            .chunks_exact(ENTRY_BYTES)
            .enumerate()
        {
            let chunk = parse_entry(index, bytes)?;
            let end = chunk.position.saturating_add(u64::from(chunk.size_bytes));
            if end > body_size_bytes {
                return Err(ObjectError::ChunkOutOfRange {
                    index,
                    position: chunk.position,
                    size_bytes: chunk.size_bytes,
                    body_size_bytes,
                });
            }
            if chunk.position < previous_end {
                return Err(ObjectError::ChunksOverlap {
                    index,
                    position: chunk.position,
                    previous_end,
                });
            }
            previous_end = end;
            chunks.push(chunk);
        }
        Ok(Footer {
            body_size_bytes,
            chunks,
        })
    }
}

/// One entry, checked for what it can say about itself alone.
fn parse_entry(index: usize, bytes: &[u8]) -> Result<ChunkEntry, ObjectError> {
    let bad = |reason| ObjectError::BadChunkEntry { index, reason };
    let flags = bytes[60];
    if flags & !FLAG_OFFSETS_IN_OBJECT != 0 || bytes[61..64] != [0, 0, 0] {
        return Err(bad("unknown flags"));
    }
    let chunk = ChunkEntry {
        partition: PartitionKey {
            topic_id: Uuid::from_bytes(bytes[0..16].try_into().expect("16 bytes")),
            partition: be_u32(bytes, 16) as i32,
        },
        position: be_u64(bytes, 20),
        size_bytes: be_u32(bytes, 28),
        batch_count: be_u32(bytes, 32),
        base_offset: be_u64(bytes, 36) as i64,
        last_offset: be_u64(bytes, 44) as i64,
        max_timestamp: be_u64(bytes, 52) as i64,
        offsets_in_object: flags & FLAG_OFFSETS_IN_OBJECT != 0,
    };
    if chunk.partition.partition < 0 {
        return Err(bad("negative partition index"));
    }
    if chunk.batch_count == 0 {
        return Err(bad("no batch"));
    }
    if u64::from(chunk.batch_count) * BATCH_HEADER_BYTES as u64 > u64::from(chunk.size_bytes) {
        return Err(bad("more batches than its bytes can hold"));
    }
    // The offset after the last must exist too, which also keeps `offset_count` in range.
    if chunk.base_offset < 0
        || chunk.last_offset < chunk.base_offset
        || chunk.last_offset == i64::MAX
    {
        return Err(bad("offsets out of order or out of range"));
    }
    if !chunk.offsets_in_object && chunk.base_offset != 0 {
        return Err(bad("relative offsets that do not start at 0"));
    }
    if chunk.offset_count() < i64::from(chunk.batch_count) {
        return Err(bad("fewer offsets than batches"));
    }
    Ok(chunk)
}

fn be_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(bytes[at..at + 2].try_into().expect("2 bytes"))
}
fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}
fn be_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests;
