//! Any byte string taken as one record batch (its length field made to match) is walked
//! record by record, as the compaction key check and the cleaner do: an error or a count,
//! never a panic. The CRC is not checked there, so every mutation reaches the records.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut batch = data.to_vec();
    if batch.len() >= 12 {
        let length = (batch.len() - 12) as i32;
        batch[8..12].copy_from_slice(&length.to_be_bytes());
    }
    let _ = weir_log::cleaner::keyless_records(&batch);
});
