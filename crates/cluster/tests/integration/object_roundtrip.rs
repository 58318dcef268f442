//! Objects of random chunks of real record batches, built, read back through their footer,
//! and patched as the fetch path will: nothing is lost, moved or left with a bad CRC.

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use rand::{rngs::StdRng, Rng, SeedableRng};
use uuid::Uuid;
use weir_cluster::object::{
    patch_offsets, set_leader_epoch, Footer, ObjectBuilder, PartitionKey, FOOTER_BYTES_MAX,
};
use weir_log::batch::{encode_batch, encode_transactional_batch, NewRecord};

const SEEDS: u64 = 60;

/// A record as a consumer sees it: key and value.
type Payload = (Option<Bytes>, Option<Bytes>);

/// One chunk as the test made it: its bytes and, in order, what its records hold.
struct MadeChunk {
    partition: PartitionKey,
    bytes: Vec<u8>,
    batch_count: u32,
    records: Vec<Payload>,
    max_timestamp: i64,
}

fn random_bytes(rng: &mut StdRng) -> Option<Bytes> {
    match rng.gen_range(0..10) {
        0 => None,
        // Repetitive values, so the codecs really compress.
        1..=4 => Some(Bytes::from(vec![
            b'a' + rng.gen_range(0..3);
            rng.gen_range(0..3000)
        ])),
        _ => Some(Bytes::from(
            (0..rng.gen_range(0..200))
                .map(|_| rng.gen())
                .collect::<Vec<u8>>(),
        )),
    }
}

/// One batch of random records, with a random codec and producer kind; returns its bytes,
/// its payloads and its largest timestamp.
fn random_batch(rng: &mut StdRng) -> (Vec<u8>, Vec<Payload>, i64) {
    let record_count = rng.gen_range(1..12);
    let base_timestamp_ms = rng.gen_range(1_600_000_000_000i64..1_800_000_000_000);
    let records: Vec<NewRecord> = (0..record_count)
        .map(|_| NewRecord {
            key: random_bytes(rng),
            value: random_bytes(rng),
            // Not sorted: max_timestamp is the largest, not the last.
            timestamp_ms: base_timestamp_ms + rng.gen_range(-5_000..5_000),
        })
        .collect();
    let compression = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ][rng.gen_range(0..5)];
    let producer = (
        rng.gen_range(0..1000),
        rng.gen_range(0..5),
        rng.gen_range(0..1000),
    );
    let bytes = match rng.gen_range(0..3) {
        0 => encode_batch(&records, None, compression),
        1 => encode_batch(&records, Some(producer), compression),
        _ => encode_transactional_batch(&records, producer, compression),
    }
    .unwrap()
    .to_vec();
    let max_timestamp = records.iter().map(|r| r.timestamp_ms).max().unwrap();
    let payloads = records.into_iter().map(|r| (r.key, r.value)).collect();
    (bytes, payloads, max_timestamp)
}

fn random_chunk(rng: &mut StdRng, topics: &[Uuid]) -> MadeChunk {
    let mut chunk = MadeChunk {
        partition: PartitionKey {
            topic_id: topics[rng.gen_range(0..topics.len())],
            partition: rng.gen_range(0..64),
        },
        bytes: Vec::new(),
        batch_count: 0,
        records: Vec::new(),
        max_timestamp: -1,
    };
    for _ in 0..rng.gen_range(1..6) {
        let (bytes, records, max_timestamp) = random_batch(rng);
        chunk.bytes.extend_from_slice(&bytes);
        chunk.batch_count += 1;
        chunk.records.extend(records);
        chunk.max_timestamp = chunk.max_timestamp.max(max_timestamp);
    }
    chunk
}

/// Decodes every batch of `chunk` (the decoder checks each CRC) and returns, per record,
/// its offset, leader epoch and payload.
fn decode(chunk: &[u8]) -> Vec<(i64, i32, Payload)> {
    let sets = RecordBatchDecoder::decode_all(&mut Bytes::copy_from_slice(chunk))
        .expect("every batch decodes with a valid CRC");
    sets.into_iter()
        .flat_map(|set| set.records)
        .map(|r| (r.offset, r.partition_leader_epoch, (r.key, r.value)))
        .collect()
}

#[test]
fn random_objects_read_back_byte_identical_and_patch_to_valid_batches() {
    // Goal: for objects of random chunks of real batches (every codec, plain, idempotent
    // and transactional producers), the footer parsed from the object's tail alone indexes
    // every chunk byte-identical to what went in, with the right counts and timestamps; and
    // after patch_offsets and set_leader_epoch every batch still decodes with a valid CRC,
    // its records at contiguous offsets from the chosen base and with the chosen epoch.
    for seed in 0..SEEDS {
        let mut rng = StdRng::seed_from_u64(seed);
        let topics: Vec<Uuid> = (0..3).map(|_| Uuid::from_u128(rng.gen())).collect();
        let made: Vec<MadeChunk> = (0..rng.gen_range(1..16))
            .map(|_| random_chunk(&mut rng, &topics))
            .collect();
        let mut builder = ObjectBuilder::new();
        for chunk in &made {
            builder.add_chunk(chunk.partition, &chunk.bytes).unwrap();
        }
        let (object, written) = builder.finish();

        // 1. One ranged GET of the tail is enough to read the footer.
        let tail_bytes = object.len().min(FOOTER_BYTES_MAX);
        let footer = Footer::parse(&object[object.len() - tail_bytes..], object.len() as u64)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(footer, written, "seed {seed}");
        assert_eq!(footer.chunks.len(), made.len(), "seed {seed}");

        let mut next_position = 0u64;
        for (index, (entry, chunk)) in footer.chunks.iter().zip(&made).enumerate() {
            let at = format!("seed {seed} chunk {index}");
            // 2. The chunk is where the footer says, byte for byte, in body order.
            let range = entry.range();
            assert_eq!(range.start, next_position, "{at}");
            next_position = range.end;
            let bytes = &object[range.start as usize..range.end as usize];
            assert_eq!(bytes, &chunk.bytes[..], "{at}");
            assert_eq!(entry.partition, chunk.partition, "{at}");
            assert_eq!(entry.batch_count, chunk.batch_count, "{at}");
            assert_eq!(entry.base_offset, 0, "{at}");
            assert_eq!(entry.offset_count(), chunk.records.len() as i64, "{at}");
            assert_eq!(entry.max_timestamp, chunk.max_timestamp, "{at}");
            assert!(!entry.offsets_in_object, "{at}");

            // 3. Patched, it is what a consumer must receive.
            let base_offset = rng.gen_range(0..1_000_000_000_000i64);
            let leader_epoch = rng.gen_range(0..1000);
            let mut patched = bytes.to_vec();
            let next_offset = patch_offsets(&mut patched, base_offset).unwrap();
            set_leader_epoch(&mut patched, leader_epoch).unwrap();
            assert_eq!(
                next_offset,
                base_offset + chunk.records.len() as i64,
                "{at}"
            );
            let expected: Vec<(i64, i32, Payload)> = chunk
                .records
                .iter()
                .enumerate()
                .map(|(i, p)| (base_offset + i as i64, leader_epoch, p.clone()))
                .collect();
            assert_eq!(decode(&patched), expected, "{at}");
            // Only the 12 bytes of each batch outside the CRC changed.
            assert_eq!(patched.len(), bytes.len(), "{at}");

            // 4. The same batches, their offsets now real, index as a compactor's chunk.
            let mut real = ObjectBuilder::new();
            let entry = *real
                .add_chunk_with_offsets(chunk.partition, &patched)
                .unwrap();
            assert!(entry.offsets_in_object, "{at}");
            assert_eq!(
                (entry.base_offset, entry.last_offset),
                (base_offset, next_offset - 1),
                "{at}"
            );
            let (object, _) = real.finish();
            let footer = Footer::parse(&object, object.len() as u64).unwrap();
            assert_eq!(footer.chunks, vec![entry], "{at}");
        }
        assert_eq!(next_position, footer.body_size_bytes, "seed {seed}");
    }
}
