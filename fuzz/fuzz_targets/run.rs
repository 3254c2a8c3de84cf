#![no_main]
// Errors are fine; panics, hangs and huge allocations are what we look for.
// Input: model-file bytes, 0xFF 0x00 0xFF, CSV bytes (nnrun::fuzz::RUN_SEPARATOR).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = nnrun::fuzz::run(data);
});
