#![no_main]
// libFuzzer entry point of aam_fuzz::targets::distance_matrix (see crates/aam-fuzz).
libfuzzer_sys::fuzz_target!(|data: &[u8]| aam_fuzz::targets::distance_matrix::run(data));
