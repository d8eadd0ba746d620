//! Abundance-weighted attention pooling (`ModelConfig::abundance_pooling`): a hand-computed
//! case at a zero query (the abundance-weighted mean), and on the golden reference model
//! equal counts change nothing (softmax is shift-invariant) while unequal counts do.

use std::path::PathBuf;

use aam_model::attention_pooling::{abundance_bias, AttentionPooling};
use aam_model::{AamModel, CpuBackend, ModelConfig, SequencePredictor, WeightMap};
use burn::prelude::*;
use burn::tensor::TensorData;

type B = CpuBackend;

#[test]
fn zero_query_gives_the_layer_normed_abundance_weighted_mean() {
    let device = Default::default();
    let mut pooling = AttentionPooling::<B>::new(4, &device);
    pooling.query.weight = burn::module::Param::from_tensor(Tensor::zeros([4, 1], &device));
    let h = [
        [1.0, 2.0, 3.0, 4.0],
        [5.0, -1.0, 0.0, 2.0],
        [100.0, 100.0, 100.0, 100.0],
    ];
    let h_t = Tensor::<B, 3>::from_data(
        TensorData::new(h.iter().flatten().map(|&v| v as f32).collect(), [1, 3, 4]),
        &device,
    );
    let mask = Tensor::<B, 2>::from_data(TensorData::new(vec![1f32, 1.0, 0.0], [1, 3]), &device);
    // Counts 3 and 0 on the valid slots: weights (3 + 1) / 5 and (0 + 1) / 5; the padding
    // slot's large count and values must not matter.
    let counts =
        Tensor::<B, 3>::from_data(TensorData::new(vec![3f32, 0.0, 1e6], [1, 3, 1]), &device);
    let got: Vec<f32> = pooling
        .forward_with_bias(h_t, mask, Some(abundance_bias(counts)))
        .into_data()
        .to_vec()
        .unwrap();
    let mean: Vec<f64> = (0..4).map(|j| 0.8 * h[0][j] + 0.2 * h[1][j]).collect();
    let mu = mean.iter().sum::<f64>() / 4.0;
    let var = mean.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / 4.0;
    for (g, m) in got.iter().zip(&mean) {
        let want = (m - mu) / (var + 1e-5).sqrt();
        assert!((*g as f64 - want).abs() < 1e-5, "{got:?} vs {want}");
    }
}

#[test]
fn negative_and_zero_counts_give_finite_weights() {
    let device = Default::default();
    let counts =
        Tensor::<B, 3>::from_data(TensorData::new(vec![-5f32, 0.0, 7.0], [1, 3, 1]), &device);
    let bias: Vec<f32> = abundance_bias(counts).into_data().to_vec().unwrap();
    assert_eq!(bias[0], 0.0);
    assert_eq!(bias[1], 0.0);
    assert!((bias[2] - 8f32.ln()).abs() < 1e-6);
}

fn golden(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/golden/small-regressor")
        .join(file)
}

fn golden_model(abundance_pooling: bool) -> SequencePredictor<B> {
    let mut config: ModelConfig =
        serde_json::from_str(&std::fs::read_to_string(golden("config.json")).unwrap()).unwrap();
    config.abundance_pooling = abundance_pooling;
    config.dropout = 0.0;
    let weights = WeightMap::load(&golden("weights.safetensors")).unwrap();
    SequencePredictor::<B>::load_weights(&weights, &config, &Default::default()).unwrap()
}

fn flat<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn equal_counts_change_nothing_and_unequal_counts_reweight() {
    let tokens: ndarray::Array3<i64> = ndarray_npy::read_npy(golden("tokens.npy")).unwrap();
    let (b, s, l) = tokens.dim();
    let device = Default::default();
    let t = Tensor::<B, 3, Int>::from_data(
        TensorData::new(tokens.iter().copied().collect::<Vec<_>>(), [b, s, l]),
        &device,
    );
    let plain = golden_model(false).forward_all(t.clone(), None);
    let weighted = golden_model(true);
    assert!(weighted.uses_counts());
    let equal = weighted.forward_all(t.clone(), Some(Tensor::full([b, s, 1], 9.0, &device)));
    let e = max_diff(
        &flat(plain.embeddings.clone()),
        &flat(equal.embeddings.clone()),
    );
    let p = max_diff(
        &flat(plain.target_prediction.clone().unwrap()),
        &flat(equal.target_prediction.clone().unwrap()),
    );
    assert!(
        e < 1e-5 && p < 1e-5,
        "equal counts moved the outputs: {e} {p}"
    );
    let varied: Vec<f32> = (0..b * s).map(|i| ((i * 37) % 500) as f32).collect();
    let unequal = weighted.forward_all(
        t,
        Some(Tensor::from_data(
            TensorData::new(varied, [b, s, 1]),
            &device,
        )),
    );
    let e = max_diff(&flat(plain.embeddings), &flat(unequal.embeddings));
    let p = max_diff(
        &flat(plain.target_prediction.unwrap()),
        &flat(unequal.target_prediction.unwrap()),
    );
    assert!(
        e > 1e-2 && p > 1e-3,
        "unequal counts did not reweight: {e} {p}"
    );
}
