use kafka_protocol::records::Compression;
use weir_log::batch::{encode_batch, NewRecord};

use super::*;
use crate::object::{ObjectBuilder, FOOTER_BYTES_MAX};

fn batch(record_count: usize, timestamp_ms: i64) -> Vec<u8> {
    let records: Vec<NewRecord> = (0..record_count)
        .map(|i| NewRecord {
            key: Some(format!("k{i}").into()),
            value: Some(format!("v{i}").into()),
            timestamp_ms: timestamp_ms + i as i64,
        })
        .collect();
    encode_batch(&records, None, Compression::None)
        .unwrap()
        .to_vec()
}

fn key(partition: i32) -> PartitionKey {
    PartitionKey {
        topic_id: Uuid::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788),
        partition,
    }
}

/// An object of three chunks (one of two batches), and its footer.
fn object() -> (Vec<u8>, Footer) {
    let mut builder = ObjectBuilder::new();
    builder.add_chunk(key(0), &batch(3, 100)).unwrap();
    builder
        .add_chunk(key(1), &[batch(2, 200), batch(4, 300)].concat())
        .unwrap();
    builder.add_chunk(key(7), &batch(1, 50)).unwrap();
    builder.finish()
}

/// Where entry `index` starts in the object.
fn entry_at(footer: &Footer, index: usize) -> usize {
    footer.body_size_bytes as usize + index * ENTRY_BYTES
}

/// Writes a valid checksum over a footer changed by a test, so the check under test is
/// the one that refuses.
fn reseal(object: &mut [u8]) {
    let size = be_u32(object, object.len() - 4) as usize;
    let footer_at = object.len() - size;
    let crc_at = object.len() - TAIL_BYTES + TAIL_CRC_AT;
    let crc = crc32c::crc32c(&object[footer_at..crc_at]);
    object[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
}

fn parse(object: &[u8]) -> Result<Footer, ObjectError> {
    Footer::parse(object, object.len() as u64)
}

#[test]
fn a_built_footer_parses_back_from_the_whole_object_or_just_its_tail() {
    // Goal: the parser reads what the builder wrote, given the whole object or only the
    // footer's bytes (one ranged GET), and says how much it needs when given too little.
    let (object, footer) = object();
    assert_eq!(parse(&object).unwrap(), footer);
    let size = footer.size_bytes();
    assert_eq!(size, 3 * ENTRY_BYTES + TAIL_BYTES);
    let tail = &object[object.len() - size..];
    assert_eq!(Footer::parse(tail, object.len() as u64).unwrap(), footer);
    let short = &object[object.len() - size + 1..];
    assert_eq!(
        Footer::parse(short, object.len() as u64),
        Err(ObjectError::FooterTruncated {
            needed_bytes: size as u64,
            present_bytes: size as u64 - 1,
        })
    );
    let fixed = &object[object.len() - TAIL_BYTES + 1..];
    assert_eq!(
        Footer::parse(fixed, object.len() as u64),
        Err(ObjectError::FooterTruncated {
            needed_bytes: TAIL_BYTES as u64,
            present_bytes: TAIL_BYTES as u64 - 1,
        })
    );
    assert!(matches!(
        parse(&[]),
        Err(ObjectError::FooterTruncated { .. })
    ));
    assert_eq!(footer.chunks[1].batch_count, 2);
    assert_eq!(
        (footer.chunks[1].base_offset, footer.chunks[1].last_offset),
        (0, 5)
    );
    assert_eq!(footer.chunks[1].max_timestamp, 303);
}

#[test]
fn an_empty_object_is_a_footer_alone() {
    // Goal: zero chunks is a valid (if useless) object, so the parser has no special case.
    let (object, footer) = ObjectBuilder::new().finish();
    assert_eq!(object.len(), TAIL_BYTES);
    assert_eq!(parse(&object).unwrap(), footer);
}

#[test]
fn bad_magic_and_unknown_versions_are_refused() {
    // Goal: bytes that are not a weir object, or a format this build does not know, are
    // refused before any other field is trusted.
    let (object, _) = object();
    let tail_at = object.len() - TAIL_BYTES;
    let mut bad = object.clone();
    bad[tail_at + 12] = b'X';
    assert_eq!(parse(&bad), Err(ObjectError::BadMagic { found: *b"XOBJ" }));
    let mut newer = object.clone();
    newer[tail_at + 16..tail_at + 18].copy_from_slice(&2u16.to_be_bytes());
    reseal(&mut newer);
    assert_eq!(
        parse(&newer),
        Err(ObjectError::UnsupportedVersion {
            version: 2,
            supported: FORMAT_VERSION
        })
    );
}

#[test]
fn a_changed_byte_anywhere_in_the_footer_fails_the_checksum() {
    // Goal: every byte the checksum covers is covered: entries and the tail's fields.
    let (object, footer) = object();
    let footer_at = footer.body_size_bytes as usize;
    let crc_at = object.len() - TAIL_BYTES + TAIL_CRC_AT;
    for at in footer_at..crc_at {
        // Fields checked before the checksum (count, body size, magic, version) refuse
        // with their own errors; any refusal is right, acceptance is not.
        let mut bad = object.clone();
        bad[at] ^= 0x01;
        assert!(parse(&bad).is_err(), "flipped byte {at} accepted");
        if at < crc_at - 18 {
            assert!(
                matches!(parse(&bad), Err(ObjectError::FooterChecksum { .. })),
                "entry byte {at}"
            );
        }
    }
    let mut bad_crc = object.clone();
    bad_crc[crc_at] ^= 0x80;
    assert!(matches!(
        parse(&bad_crc),
        Err(ObjectError::FooterChecksum { .. })
    ));
}

#[test]
fn overlapping_out_of_order_and_out_of_range_chunks_are_refused() {
    // Goal: every chunk lies inside the body, after the one before it.
    let (object, footer) = object();
    let second = entry_at(&footer, 1);
    let mut overlap = object.clone();
    let into_first = footer.chunks[0].position + 1;
    overlap[second + 20..second + 28].copy_from_slice(&into_first.to_be_bytes());
    reseal(&mut overlap);
    assert_eq!(
        parse(&overlap),
        Err(ObjectError::ChunksOverlap {
            index: 1,
            position: into_first,
            previous_end: footer.chunks[0].range().end,
        })
    );
    let last = entry_at(&footer, 2);
    let mut past_end = object.clone();
    let size = footer.chunks[2].size_bytes + 1;
    past_end[last + 28..last + 32].copy_from_slice(&size.to_be_bytes());
    reseal(&mut past_end);
    assert!(matches!(
        parse(&past_end),
        Err(ObjectError::ChunkOutOfRange { index: 2, .. })
    ));
    // A position near u64::MAX must not wrap around into range.
    let mut wrapping = object.clone();
    wrapping[last + 20..last + 28].copy_from_slice(&(u64::MAX - 2).to_be_bytes());
    reseal(&mut wrapping);
    assert!(matches!(
        parse(&wrapping),
        Err(ObjectError::ChunkOutOfRange { index: 2, .. })
    ));
}

#[test]
fn counts_and_sizes_that_disagree_are_refused() {
    // Goal: the chunk count is bounded before anything is read by it, the footer size
    // matches the count, and body plus footer is the object.
    let (object, _) = object();
    let tail_at = object.len() - TAIL_BYTES;
    let mut too_many = object.clone();
    let count = CHUNKS_PER_OBJECT_MAX as u32 + 1;
    too_many[tail_at..tail_at + 4].copy_from_slice(&count.to_be_bytes());
    assert_eq!(
        parse(&too_many),
        Err(ObjectError::TooManyChunks {
            chunk_count: u64::from(count),
            limit: CHUNKS_PER_OBJECT_MAX
        })
    );
    let mut fewer = object.clone();
    fewer[tail_at..tail_at + 4].copy_from_slice(&2u32.to_be_bytes());
    assert!(matches!(
        parse(&fewer),
        Err(ObjectError::FooterSizeMismatch { .. })
    ));
    let mut longer = object.clone();
    let size = be_u32(&object, object.len() - 4) + ENTRY_BYTES as u32;
    let len = longer.len();
    longer[len - 4..].copy_from_slice(&size.to_be_bytes());
    assert!(matches!(
        parse(&longer),
        Err(ObjectError::FooterSizeMismatch { .. })
    ));
    assert!(matches!(
        Footer::parse(&object, object.len() as u64 + 1),
        Err(ObjectError::ObjectSizeMismatch { .. })
    ));
    assert!(matches!(
        Footer::parse(&object, object.len() as u64 - 1),
        Err(ObjectError::ObjectSizeMismatch { .. })
    ));
    assert!(matches!(
        Footer::parse(&object, OBJECT_BYTES_MAX + 1),
        Err(ObjectError::ObjectTooLarge { .. })
    ));
}

#[test]
fn entries_that_contradict_themselves_are_refused() {
    // Goal: flags, batch count and offsets are checked per entry, so a reader never
    // patches a chunk on the word of a nonsensical entry.
    let (object, footer) = object();
    let first = entry_at(&footer, 0);
    let cases: [(usize, Vec<u8>); 6] = [
        (first + 60, vec![0x02]),                     // unknown flag
        (first + 61, vec![0x01]),                     // reserved byte
        (first + 32, 0u32.to_be_bytes().to_vec()),    // no batch
        (first + 32, 1000u32.to_be_bytes().to_vec()), // more batches than bytes
        (first + 36, 5i64.to_be_bytes().to_vec()),    // relative, not from 0
        (first + 44, (-1i64).to_be_bytes().to_vec()), // last before base
    ];
    for (at, bytes) in cases {
        let mut bad = object.clone();
        bad[at..at + bytes.len()].copy_from_slice(&bytes);
        reseal(&mut bad);
        assert!(
            matches!(
                parse(&bad),
                Err(ObjectError::BadChunkEntry { index: 0, .. })
            ),
            "byte {at}: {:?}",
            parse(&bad)
        );
    }
}

#[test]
fn the_builder_stops_at_the_bounds() {
    // Goal: an object never holds more chunks or bytes than its bounds, and a full
    // object of the most chunks still parses (its footer is FOOTER_BYTES_MAX).
    let one = batch(1, 0);
    let mut builder = ObjectBuilder::new();
    for partition in 0..CHUNKS_PER_OBJECT_MAX as i32 {
        builder.add_chunk(key(partition), &one).unwrap();
    }
    assert!(!builder.fits(one.len()));
    assert_eq!(
        builder.add_chunk(key(0), &one).unwrap_err(),
        ObjectError::ObjectFull {
            reason: "chunks per object"
        }
    );
    let (object, footer) = builder.finish();
    assert_eq!(footer.size_bytes(), FOOTER_BYTES_MAX);
    assert_eq!(parse(&object).unwrap().chunks.len(), CHUNKS_PER_OBJECT_MAX);

    let fresh = ObjectBuilder::new();
    let room = OBJECT_BYTES_MAX as usize - footer_size_bytes(1);
    assert!(fresh.fits(room));
    assert!(!fresh.fits(room + 1));
    assert!(!fresh.fits(usize::MAX));
    assert_eq!(
        ObjectBuilder::new().add_chunk(key(0), &[]).unwrap_err(),
        ObjectError::EmptyChunk
    );
}
