//! The small architecture the C ABI tests export (embedding dim 8, max bp 10, token
//! limit 8, one layer and two heads per stack, no dropout) and regressors of it.

#![allow(dead_code)] // each test binary uses part of it

use aam_config::{CheckpointConfig, DataSettings, ModelKind, TargetInfo, FORMAT_VERSION};
use aam_model::{AamModel as _, CpuBackend, ModelConfig, SequencePredictor, WeightSink};

/// The tests' architecture (a plain regressor head; each test adds its options).
pub fn tiny_config() -> ModelConfig {
    ModelConfig {
        embedding_dim: 8,
        max_bp: 10,
        token_limit: 8,
        asv_num_layers: 1,
        sample_num_layers: 1,
        encoder_num_layers: 1,
        count_num_layers: 1,
        target_num_layers: 1,
        asv_num_heads: 2,
        sample_num_heads: 2,
        encoder_num_heads: 2,
        count_num_heads: 2,
        target_num_heads: 2,
        intermediate_size: Some(16),
        dropout: 0.0,
        ..ModelConfig::default()
    }
}

/// A numeric target `column` z-scored with `mean` and `std`, with no other option.
pub fn numeric_target(column: &str, mean: f64, std: f64) -> TargetInfo {
    TargetInfo {
        column: column.into(),
        kind: aam_data::TargetKind::Numeric,
        classes: Vec::new(),
        mean,
        std,
        transform: Default::default(),
        normalize_by: None,
        by_category: Vec::new(),
        quantiles: Vec::new(),
        categories: Default::default(),
        more_columns: Vec::new(),
    }
}

/// A fresh predictor of `model` (the data settings of [`tiny_config`]) and `target`: its
/// configuration and exported `model.onnx` bytes (ONNX opset 17).
pub fn export_predictor(model: ModelConfig, target: TargetInfo) -> (CheckpointConfig, Vec<u8>) {
    let net = SequencePredictor::<CpuBackend>::new(&model, &Default::default());
    let mut sink = WeightSink::default();
    net.save_weights(&mut sink);
    let config = CheckpointConfig {
        format_version: FORMAT_VERSION,
        kind: ModelKind::Predictor,
        data: DataSettings {
            max_bp: model.max_bp,
            token_limit: model.token_limit,
            token_limit_policy: Default::default(),
            rarefy_depth: None,
        },
        model,
        target: Some(target),
    };
    let bytes = aam_export::onnx_bytes(&config, &sink.into_map(), 17).unwrap();
    (config, bytes)
}
