//! The tiny encoder and the `moving-pictures` training data shared by the training tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use aam_config::{CheckpointConfig, DataSettings, ModelKind};
use aam_data::{load_distance_matrix, load_table, split_samples, Dataset, TokenLimitPolicy};
use aam_model::{AamModel, CpuAutodiff, ModelConfig, SequenceEncoder, WeightSink};
use aam_train::{checkpoint, TrainData};

/// `file` of `shared/data/moving-pictures`.
pub fn shared(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/moving-pictures")
        .join(file)
}

/// D 16, one layer of two heads per stack, max bp 120, token limit 12.
pub fn tiny_config() -> ModelConfig {
    ModelConfig {
        embedding_dim: 16,
        max_bp: 120,
        token_limit: 12,
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
        ..ModelConfig::default()
    }
}

/// The checkpoint configuration of an encoder `model` trained on [`data`].
pub fn encoder_checkpoint_config(model: ModelConfig) -> CheckpointConfig {
    CheckpointConfig {
        format_version: aam_config::FORMAT_VERSION,
        kind: ModelKind::Encoder,
        model,
        data: DataSettings {
            max_bp: 120,
            token_limit: 12,
            token_limit_policy: TokenLimitPolicy::Abundance,
            rarefy_depth: None,
        },
        target: None,
    }
}

/// `moving-pictures` with its unweighted UniFrac matrix, 25% of samples for validation.
pub fn data() -> TrainData {
    let (table, _) = load_table(&shared("table.biom")).unwrap();
    let m =
        load_distance_matrix(&shared("unifrac_unweighted.h5"), None, &table.sample_ids).unwrap();
    let (m, _) = m.align(&table.sample_ids, false).unwrap();
    let split = split_samples(table.n_samples(), 0.25, 1, None, None).unwrap();
    let dataset = Dataset::new(
        table,
        120,
        12,
        TokenLimitPolicy::Abundance,
        1,
        Some(m),
        None,
    )
    .unwrap();
    TrainData {
        dataset,
        stream: None,
        split,
        faith_pd: None,
        target_kind: None,
        n_classes: 0,
        target_mean: 0.0,
        target_std: 1.0,
        target_transform: Default::default(),
        sample_weights: None,
        target_offset_scale: None,
        target_column: String::new(),
        more_targets: Vec::new(),
        categorical_ids: None,
    }
}

/// The weights of `dir/file` (the tiny encoder) by reference key: name, shape, values.
pub fn weights(dir: &Path, file: &str) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let m: SequenceEncoder<CpuAutodiff> =
        checkpoint::load_model(dir, file, &tiny_config(), &Default::default()).unwrap();
    let mut sink = WeightSink::default();
    m.save_weights(&mut sink);
    sink.entries
}

/// The parameter whose `last.safetensors` values differ most between two runs, if any.
pub fn worst_difference(a: &Path, b: &Path) -> Option<(String, f32)> {
    let (wa, wb) = (
        weights(a, "last.safetensors"),
        weights(b, "last.safetensors"),
    );
    assert_eq!(wa.len(), wb.len());
    wa.iter()
        .zip(&wb)
        .map(|(x, y)| {
            (
                x.0.clone(),
                x.2.iter()
                    .zip(&y.2)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0.0f32, f32::max),
            )
        })
        .filter(|(_, d)| *d > 0.0)
        .max_by(|p, q| p.1.total_cmp(&q.1))
}
