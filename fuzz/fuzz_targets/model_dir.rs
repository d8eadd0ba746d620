#![no_main]
// libFuzzer entry point of aam_fuzz::targets::model_dir (see crates/aam-fuzz).
libfuzzer_sys::fuzz_target!(|data: &[u8]| aam_fuzz::targets::model_dir::run(data));
