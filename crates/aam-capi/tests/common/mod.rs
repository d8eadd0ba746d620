//! The small architecture the C ABI tests export: embedding dim 8, max bp 10, token
//! limit 8, one layer and two heads per stack, no dropout.

use aam_model::ModelConfig;

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
