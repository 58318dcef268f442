//! Any byte string given as a produce record set is refused cleanly or validated; never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = weir_log::batch::validate_produce_batches(data, 1 << 20);
});
