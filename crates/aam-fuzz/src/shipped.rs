//! The shipped model (`models/circadian-exposure`), which the model-facing targets use:
//! its configuration for table preparation, its weights' names and shapes for the
//! safetensors target, its ONNX export for the C ABI target.

use std::path::PathBuf;
use std::sync::OnceLock;

use aam_config::CheckpointConfig;

/// The shipped model's folder (`AAM_FUZZ_MODEL` overrides it).
pub fn model_dir() -> PathBuf {
    std::env::var_os("AAM_FUZZ_MODEL").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/circadian-exposure")
    })
}

/// The shipped model's `config.json`, read once.
///
/// Panics if it cannot be read (the fuzzer is run from a checkout with `models/`).
pub fn config() -> &'static CheckpointConfig {
    static CONFIG: OnceLock<CheckpointConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let path = model_dir().join("config.json");
        let text = std::fs::read_to_string(&path).expect("read the shipped config.json");
        CheckpointConfig::from_json(&text, &path.display().to_string()).expect("parse it")
    })
}
