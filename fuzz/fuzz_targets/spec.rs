#![no_main]
// Errors are fine; panics, hangs and huge allocations are what we look for.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = nnrun::fuzz::spec(data);
});
