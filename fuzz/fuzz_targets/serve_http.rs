#![no_main]
// libFuzzer entry point of aam_fuzz::targets::serve_http (see crates/aam-fuzz).
libfuzzer_sys::fuzz_target!(|data: &[u8]| aam_fuzz::targets::serve_http::run(data));
