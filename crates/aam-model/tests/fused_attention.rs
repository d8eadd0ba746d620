//! `--attention fused` (Burn's fused attention) equals the math attention within 1e-5 on
//! every output of the golden reference model, also for a sample without ASVs (all keys
//! padding: uniform weights on both paths), and on the gradients of a training step.

use std::path::PathBuf;

use aam_model::{
    AamModel, AttentionKind, CpuAutodiff, CpuBackend, ModelConfig, SequencePredictor, WeightMap,
};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;

fn golden(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/golden/small-regressor")
        .join(file)
}

/// The golden model with `attention`, dropout off.
fn model<B: Backend>(attention: AttentionKind) -> SequencePredictor<B> {
    let mut config: ModelConfig =
        serde_json::from_str(&std::fs::read_to_string(golden("config.json")).unwrap()).unwrap();
    config.attention = attention;
    config.dropout = 0.0;
    let weights = WeightMap::load(&golden("weights.safetensors")).unwrap();
    SequencePredictor::<B>::load_weights(&weights, &config, &Default::default()).unwrap()
}

/// The golden tokens `[b, n_asv, L]`, with `empty_sample` one more sample without ASVs
/// (its rows have no valid key: the fused path passes the bias for that batch, the
/// boolean mask otherwise).
fn tokens<B: Backend>(empty_sample: bool) -> Tensor<B, 3, Int> {
    let tokens: ndarray::Array3<i64> = ndarray_npy::read_npy(golden("tokens.npy")).unwrap();
    let (b, s, l) = tokens.dim();
    let mut values: Vec<i64> = tokens.iter().copied().collect();
    if empty_sample {
        values.extend(std::iter::repeat_n(0, s * l));
    }
    let b = b + usize::from(empty_sample);
    Tensor::from_data(TensorData::new(values, [b, s, l]), &Default::default())
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

fn assert_close(name: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{name}");
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            assert!(x.is_finite() && y.is_finite(), "{name}: {x} vs {y}");
            (x - y).abs()
        })
        .fold(0.0f32, f32::max);
    eprintln!("{name}: max |math − fused| = {worst:e}");
    assert!(worst <= 1e-5, "{name}: math and fused differ by {worst}");
}

#[test]
fn fused_outputs_equal_the_math_ones() {
    let (math, fused) = (
        model::<CpuBackend>(AttentionKind::Math),
        model::<CpuBackend>(AttentionKind::Fused),
    );
    for empty_sample in [false, true] {
        compare_outputs(
            math.forward(tokens(empty_sample), None),
            fused.forward(tokens(empty_sample), None),
        );
    }
}

fn compare_outputs<B: Backend>(a: aam_model::PredictorOutput<B>, b: aam_model::PredictorOutput<B>) {
    assert_close(
        "embeddings",
        &values(a.base.embeddings),
        &values(b.base.embeddings),
    );
    assert_close(
        "target_prediction",
        &values(a.target_prediction),
        &values(b.target_prediction),
    );
    assert_close(
        "count_prediction",
        &values(a.count_prediction),
        &values(b.count_prediction),
    );
    assert_close(
        "nuc_predictions",
        &values(a.base.nuc_predictions.unwrap()),
        &values(b.base.nuc_predictions.unwrap()),
    );
}

/// Gradient of a loss touching every output, as the weights after one SGD step of lr 1.
fn stepped<B: AutodiffBackend>(attention: AttentionKind) -> Vec<f32> {
    use burn::optim::{GradientsParams, Optimizer, SgdConfig};
    let m = model::<B>(attention);
    let out = m.forward_all(tokens(true), None);
    let loss = out.target_prediction.unwrap().powf_scalar(2.0).sum()
        + out.count_prediction.unwrap().sum()
        + out.embeddings.powf_scalar(2.0).mean();
    let grads = GradientsParams::from_grads(loss.backward(), &m);
    let after = SgdConfig::new().init().step(1.0, m, grads);
    let mut sink = aam_model::WeightSink::default();
    after.save_weights(&mut sink);
    sink.entries.into_iter().flat_map(|e| e.2).collect()
}

#[test]
fn fused_gradients_equal_the_math_ones() {
    assert_close(
        "weights after one SGD step",
        &stepped::<CpuAutodiff>(AttentionKind::Math),
        &stepped::<CpuAutodiff>(AttentionKind::Fused),
    );
}
