//! Any byte string given to the request decoder is refused cleanly or decoded; never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = weir_wire::request::decode_request(bytes::Bytes::copy_from_slice(data), true);
});
