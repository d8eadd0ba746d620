#![no_main]
// libFuzzer entry point of aam_fuzz::targets::qiime2_artifact (see crates/aam-fuzz).
libfuzzer_sys::fuzz_target!(|data: &[u8]| aam_fuzz::targets::qiime2_artifact::run(data));
