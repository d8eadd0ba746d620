//! Golden parity of the reference's latest head options (spec §3.11 "Target path",
//! "CategoricalEmbedder", "Fusion …") on `shared/golden/head-gmu-count-quantile`
//! (categorical conditioning on two columns with `gmu` fusion, `target_norm`, an MLP
//! head `[16, 8]`, 3 quantiles) and `shared/golden/head-perceiver-film-classifier`
//! (`perceiver` fusion, 4-class classifier): `target_prediction`, `count_prediction`
//! (sigmoid-bounded), `gmu_gate` and `perceiver_attn_weights` within 1e-4 on every
//! non-padding position, from the reference's own weights and inputs.

use std::path::PathBuf;

use aam_model::{CategoricalFusion, CpuBackend, ModelConfig, SequencePredictor, WeightMap};
use burn::prelude::*;
use burn::tensor::TensorData;

type B = CpuBackend;

fn golden(config: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/golden")
        .join(config)
        .join(file)
}

fn max_diff(got: &[f32], want: &[f32], valid: impl Fn(usize) -> bool) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .enumerate()
        .filter(|(k, _)| valid(*k))
        .map(|(_, (g, w))| {
            assert!(g.is_finite());
            (g - w).abs()
        })
        .fold(0.0, f32::max)
}

struct Run {
    config: ModelConfig,
    out: aam_model::PredictorOutput<B>,
    expected: WeightMap,
    slot_valid: Vec<bool>,
    dims: (usize, usize),
}

/// The reference model `name` run on its golden inputs; `ids` replaces the golden
/// `categorical_ids` when given.
fn run(name: &str, ids: Option<Vec<i64>>) -> Run {
    let text = std::fs::read_to_string(golden(name, "config.json")).unwrap();
    let config = ModelConfig::from_reference_json(&text).unwrap();
    config.validate().unwrap();
    let columns: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(golden(name, "categorical_columns.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config.head.categorical_columns(), columns);
    let device = Default::default();
    let weights = WeightMap::load(&golden(name, "weights.safetensors")).unwrap();
    let model = SequencePredictor::<B>::load(&weights, &config, &device).unwrap();
    // Every tensor of the reference state dict was read.
    weights.check_all_used("").unwrap();
    assert_eq!(model.categorical_columns(), columns.as_slice());

    let tokens: ndarray::Array3<i64> = ndarray_npy::read_npy(golden(name, "tokens.npy")).unwrap();
    let counts: ndarray::Array3<f32> = ndarray_npy::read_npy(golden(name, "counts.npy")).unwrap();
    let golden_ids: ndarray::Array2<i64> =
        ndarray_npy::read_npy(golden(name, "categorical_ids.npy")).unwrap();
    let (b, s, l) = tokens.dim();
    let n_cols = golden_ids.dim().1;
    let ids = ids.unwrap_or_else(|| golden_ids.iter().copied().collect());
    let out = model.forward_with_categories(
        Tensor::from_data(
            TensorData::new(tokens.iter().copied().collect::<Vec<_>>(), [b, s, l]),
            &device,
        ),
        Some(Tensor::from_data(
            TensorData::new(counts.iter().copied().collect::<Vec<_>>(), [b, s, 1]),
            &device,
        )),
        Some(Tensor::from_data(
            TensorData::new(ids, [b, n_cols]),
            &device,
        )),
    );
    let slot_valid = (0..b * s)
        .map(|k| (0..l).any(|t| tokens[[k / s, k % s, t]] > 0))
        .collect();
    Run {
        config,
        out,
        expected: WeightMap::load(&golden(name, "outputs.safetensors")).unwrap(),
        slot_valid,
        dims: (b, s),
    }
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

/// (target, count) differences to the reference.
fn target_and_count(r: &Run, target_shape: &[usize]) -> (f32, f32) {
    let (b, s) = r.dims;
    let target = max_diff(
        &values(r.out.target_prediction.clone()),
        r.expected.get("target_prediction", target_shape).unwrap(),
        |_| true,
    );
    let count = max_diff(
        &values(r.out.count_prediction.clone()),
        r.expected.get("count_prediction", &[b, s, 1]).unwrap(),
        |k| r.slot_valid[k],
    );
    (target, count)
}

#[test]
fn gmu_quantile_head_matches_reference() {
    let r = run("head-gmu-count-quantile", None);
    assert_eq!(r.config.head.categorical_fusion, CategoricalFusion::Gmu);
    assert_eq!(r.config.head.num_quantiles, Some(3));
    assert!(r.config.head.target_layer_norm);
    let (b, _) = r.dims;
    let (target, count) = target_and_count(&r, &[b, 1, 3]);
    let gate = max_diff(
        &values(
            r.out
                .gmu_gate
                .clone()
                .expect("a gmu model returns its gate"),
        ),
        r.expected.get("gmu_gate", &[b, 32]).unwrap(),
        |_| true,
    );
    eprintln!("gmu: target {target:e}, count {count:e}, gate {gate:e}");
    assert!(target <= 1e-4, "target_prediction: {target}");
    assert!(count <= 1e-4, "count_prediction: {count}");
    assert!(gate <= 1e-4, "gmu_gate: {gate}");
}

#[test]
fn perceiver_classifier_matches_reference() {
    let r = run("head-perceiver-film-classifier", None);
    assert_eq!(
        r.config.head.categorical_fusion,
        CategoricalFusion::Perceiver
    );
    let (b, s) = r.dims;
    let (target, count) = target_and_count(&r, &[b, 4]);
    let attention = max_diff(
        &values(
            r.out
                .fusion_attention
                .clone()
                .expect("the perceiver's weights"),
        ),
        r.expected
            .get("perceiver_attn_weights", &[b, 2, 6, s + 1])
            .unwrap(),
        |_| true,
    );
    eprintln!("perceiver: target {target:e}, count {count:e}, attention {attention:e}");
    assert!(target <= 1e-4, "target_prediction: {target}");
    assert!(count <= 1e-4, "count_prediction: {count}");
    assert!(attention <= 1e-4, "perceiver_attn_weights: {attention}");
}

#[test]
fn the_categories_change_the_output() {
    // Proves the categorical ids reach the output: every sample's categories set to
    // unknown (0) move the prediction well past the tolerance.
    for (name, shape) in [
        ("head-gmu-count-quantile", vec![4, 1, 3]),
        ("head-perceiver-film-classifier", vec![4, 4]),
    ] {
        let n: usize = if name.contains("gmu") { 2 } else { 1 };
        let r = run(name, Some(vec![0; 4 * n]));
        let (target, _) = target_and_count(&r, &shape);
        assert!(
            target > 1e-2,
            "{name}: unknown categories moved the output by {target}"
        );
    }
}
