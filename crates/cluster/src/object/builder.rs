//! Gathering chunks into one object: the body as the chunks arrive, the footer at the end.

use weir_log::batch::BatchHeader;

use super::patch::batches;
use super::{
    footer_size_bytes, ChunkEntry, Footer, ObjectError, PartitionKey, CHUNKS_PER_OBJECT_MAX,
    OBJECT_BYTES_MAX,
};

/// Builds one object. Chunks hold batches the broker has already validated (CRC, record
/// count, size), so the builder only walks their headers; it refuses a chunk that is not a
/// run of whole v2 batches, or one that would take the object past a bound.
#[derive(Debug, Default)]
pub struct ObjectBuilder {
    body: Vec<u8>,
    chunks: Vec<ChunkEntry>,
}

impl ObjectBuilder {
    pub fn new() -> ObjectBuilder {
        ObjectBuilder::default()
    }

    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// The object's size if it were finished now.
    pub fn object_size_bytes(&self) -> u64 {
        (self.body.len() + footer_size_bytes(self.chunks.len())) as u64
    }

    /// Whether one more chunk of `chunk_size_bytes` fits under the bounds; a batcher asks
    /// before adding, and finishes the object when it would not.
    pub fn fits(&self, chunk_size_bytes: usize) -> bool {
        let object_size_bytes = self
            .body
            .len()
            .saturating_add(chunk_size_bytes)
            .saturating_add(footer_size_bytes(self.chunks.len() + 1));
        self.chunks.len() < CHUNKS_PER_OBJECT_MAX && object_size_bytes as u64 <= OBJECT_BYTES_MAX
    }

    /// Adds the batches of one partition as the producer sent them: offsets relative, each
    /// batch's base offset whatever the producer wrote (0), to be assigned at commit and
    /// patched by readers.
    pub fn add_chunk(
        &mut self,
        partition: PartitionKey,
        batches_bytes: &[u8],
    ) -> Result<&ChunkEntry, ObjectError> {
        let mut offset_count = 0i64;
        let (batch_count, max_timestamp) = self.walk(batches_bytes, |header| {
            offset_count += i64::from(header.last_offset_delta) + 1;
            Ok(())
        })?;
        Ok(self.push(
            batches_bytes,
            ChunkEntry {
                partition,
                position: 0,
                size_bytes: 0,
                batch_count,
                base_offset: 0,
                last_offset: offset_count - 1,
                max_timestamp,
                offsets_in_object: false,
            },
        ))
    }

    /// Adds batches that carry their real offsets (the compactor's output), which may leave
    /// gaps between batches but must increase.
    pub fn add_chunk_with_offsets(
        &mut self,
        partition: PartitionKey,
        batches_bytes: &[u8],
    ) -> Result<&ChunkEntry, ObjectError> {
        let mut first: Option<i64> = None;
        let mut last = -1i64;
        let (batch_count, max_timestamp) = self.walk(batches_bytes, |header| {
            let reason = if header.base_offset < 0 {
                Some("a negative base offset")
            } else if header.base_offset <= last {
                Some("offsets that do not increase")
            } else if header.base_offset > i64::MAX - 1 - i64::from(header.last_offset_delta) {
                Some("offsets past the largest")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(reason);
            }
            first.get_or_insert(header.base_offset);
            last = header.last_offset();
            Ok(())
        })?;
        Ok(self.push(
            batches_bytes,
            ChunkEntry {
                partition,
                position: 0,
                size_bytes: 0,
                batch_count,
                base_offset: first.unwrap_or(0),
                last_offset: last,
                max_timestamp,
                offsets_in_object: true,
            },
        ))
    }

    /// The object's bytes, footer last, and the footer as written.
    pub fn finish(self) -> (Vec<u8>, Footer) {
        let footer = Footer {
            body_size_bytes: self.body.len() as u64,
            chunks: self.chunks,
        };
        let mut object = self.body;
        object.reserve_exact(footer.size_bytes());
        footer.encode_into(&mut object);
        assert!(
            object.len() as u64 <= OBJECT_BYTES_MAX,
            "add_chunk checks fits"
        );
        (object, footer)
    }

    /// Walks the batches, handing each header to `each` (which refuses with a reason), and
    /// returns the batch count and the largest `max_timestamp`.
    fn walk(
        &self,
        batches_bytes: &[u8],
        mut each: impl FnMut(&BatchHeader) -> Result<(), &'static str>,
    ) -> Result<(u32, i64), ObjectError> {
        if batches_bytes.is_empty() {
            return Err(ObjectError::EmptyChunk);
        }
        if !self.fits(batches_bytes.len()) {
            return Err(ObjectError::ObjectFull {
                reason: if self.chunks.len() >= CHUNKS_PER_OBJECT_MAX {
                    "chunks per object"
                } else {
                    "object bytes"
                },
            });
        }
        let mut batch_count = 0u32;
        let mut max_timestamp = -1i64;
        for batch in batches(batches_bytes) {
            let (position, header) = batch?;
            each(&header).map_err(|reason| ObjectError::bad_batch(position, reason))?;
            batch_count += 1;
            max_timestamp = max_timestamp.max(header.max_timestamp);
        }
        Ok((batch_count, max_timestamp))
    }

    /// Appends the chunk's bytes to the body and its entry, placed there, to the footer.
    fn push(&mut self, batches_bytes: &[u8], entry: ChunkEntry) -> &ChunkEntry {
        self.chunks.push(ChunkEntry {
            position: self.body.len() as u64,
            // `fits` bounded the object below u32::MAX bytes.
            size_bytes: batches_bytes.len() as u32,
            ..entry
        });
        self.body.extend_from_slice(batches_bytes);
        self.chunks.last().expect("just pushed")
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;
    use uuid::Uuid;
    use weir_log::batch::{assign_base_offset, encode_batch, NewRecord};

    use super::*;

    fn batch(record_count: usize, base_offset: i64) -> Vec<u8> {
        let records: Vec<NewRecord> = (0..record_count)
            .map(|i| NewRecord {
                key: None,
                value: Some(format!("v{i}").into()),
                timestamp_ms: 1000 + i as i64,
            })
            .collect();
        let mut batch = encode_batch(&records, None, Compression::None)
            .unwrap()
            .to_vec();
        assign_base_offset(&mut batch, base_offset, 0);
        batch
    }

    const KEY: PartitionKey = PartitionKey {
        topic_id: Uuid::from_u128(7),
        partition: 3,
    };

    #[test]
    fn real_offsets_may_leave_gaps_but_must_increase() {
        // Goal: a compactor's chunk keeps its offsets, gaps included; batches out of order
        // or overlapping are refused and leave the object as it was.
        let mut builder = ObjectBuilder::new();
        let gapped = [batch(2, 10), batch(3, 40)].concat();
        let entry = *builder.add_chunk_with_offsets(KEY, &gapped).unwrap();
        assert_eq!((entry.base_offset, entry.last_offset), (10, 42));
        assert_eq!((entry.batch_count, entry.max_timestamp), (2, 1002));
        let size_bytes = builder.object_size_bytes();
        for (first, second) in [(40, 10), (10, 11), (10, 10)] {
            let bad = [batch(2, first), batch(3, second)].concat();
            assert!(matches!(
                builder.add_chunk_with_offsets(KEY, &bad),
                Err(ObjectError::BadBatch { .. })
            ));
        }
        assert!(builder.add_chunk_with_offsets(KEY, &batch(1, -5)).is_err());
        assert!(builder.add_chunk(KEY, &gapped[..gapped.len() - 1]).is_err());
        assert_eq!(builder.object_size_bytes(), size_bytes);
        assert_eq!(builder.chunk_count(), 1);
    }
}
