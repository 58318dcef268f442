//! Any byte string, taken as the tail of an object, is refused cleanly by the footer parser
//! or parsed into chunks that lie inside it; taken as a chunk, `patch_offsets` and
//! `set_leader_epoch` refuse it or patch it in place. Never a panic.
//!
//! Random bytes rarely carry a valid footer checksum, so each input is also parsed once
//! with the checksum rewritten to match, which lets mutations reach the entry checks.
#![no_main]
use weir_cluster::object::{patch_offsets, set_leader_epoch, Footer, TAIL_BYTES};

fn parse(object: &[u8]) {
    if let Ok(footer) = Footer::parse(object, object.len() as u64) {
        for chunk in &footer.chunks {
            let range = chunk.range();
            assert!(range.end <= footer.body_size_bytes);
            let _ = &object[range.start as usize..range.end as usize];
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    parse(data);
    if data.len() >= TAIL_BYTES {
        // The checksum is the 4 bytes before the footer size, which ends the object; it
        // covers the footer up to itself.
        let mut resealed = data.to_vec();
        let len = resealed.len();
        let declared = u32::from_be_bytes(resealed[len - 4..].try_into().unwrap()) as usize;
        let footer_at = len - declared.clamp(TAIL_BYTES, len);
        let crc = crc32c::crc32c(&resealed[footer_at..len - 8]);
        resealed[len - 8..len - 4].copy_from_slice(&crc.to_be_bytes());
        parse(&resealed);
    }
    let mut chunk = data.to_vec();
    if let Ok(next_offset) = patch_offsets(&mut chunk, 1000) {
        assert!(next_offset >= 1000);
    }
    let _ = set_leader_epoch(&mut chunk, 7);
    assert_eq!(chunk.len(), data.len());
});
