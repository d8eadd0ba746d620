//! The classifier path (`is_classifier`: `log_softmax` over the target head, reference
//! §3.8) anchored to the reference's own outputs: the `small-regressor` golden model with
//! its `target_head` `Linear(D → 1)` (weight `w`, bias `b`) widened to three classes with
//! rows `(w, b)`, `(0, 0)` and `(2w, 2b)`. Its logits are then `[y, 0, 2y]` for the
//! reference's regression output `y` of each sample, so the expected log-probabilities
//! follow by hand: `log_softmax([y, 0, 2y])`.

use std::path::PathBuf;

use aam_model::{CpuBackend, ModelConfig, SequencePredictor, WeightMap};
use burn::prelude::*;
use burn::tensor::TensorData;

type B = CpuBackend;

fn golden(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/golden/small-regressor")
        .join(file)
}

/// `log_softmax(x)` in f64: `x − ln Σ exp(x)`, shifted by the maximum.
fn log_softmax(x: &[f64]) -> Vec<f64> {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    x.iter().map(|v| v - lse).collect()
}

#[test]
fn three_class_head_from_the_golden_regressor_gives_log_softmax_of_its_logits() {
    let mut config: ModelConfig =
        serde_json::from_str(&std::fs::read_to_string(golden("config.json")).unwrap()).unwrap();
    let d = config.embedding_dim;
    config.out_dim = 3;
    config.is_classifier = true;
    config.validate().unwrap();
    let mut weights = WeightMap::load(&golden("weights.safetensors")).unwrap();
    let w = weights.get("target_head.weight", &[1, d]).unwrap().to_vec();
    let b = weights.get("target_head.bias", &[1]).unwrap()[0];
    let mut rows = w.clone();
    rows.extend(std::iter::repeat_n(0.0, d));
    rows.extend(w.iter().map(|v| 2.0 * v));
    weights.insert("target_head.weight", vec![3, d], rows);
    weights.insert("target_head.bias", vec![3], vec![b, 0.0, 2.0 * b]);
    let device = Default::default();
    let model = SequencePredictor::<B>::load(&weights, &config, &device).unwrap();

    let tokens: ndarray::Array3<i64> = ndarray_npy::read_npy(golden("tokens.npy")).unwrap();
    let (n, s, l) = tokens.dim();
    let input = Tensor::<B, 3, Int>::from_data(
        TensorData::new(tokens.iter().copied().collect::<Vec<_>>(), [n, s, l]),
        &device,
    );
    let got = model
        .forward(input, None)
        .target_prediction
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let expected = WeightMap::load(&golden("outputs.safetensors")).unwrap();
    let y = expected.get("target_prediction", &[n, 1]).unwrap();
    assert_eq!(got.len(), n * 3);
    for i in 0..n {
        let yi = f64::from(y[i]);
        let want = log_softmax(&[yi, 0.0, 2.0 * yi]);
        let row = &got[i * 3..i * 3 + 3];
        for k in 0..3 {
            assert!(
                (f64::from(row[k]) - want[k]).abs() < 1e-4,
                "sample {i}, class {k}: log-probability {} against {} (reference y = {yi})",
                row[k],
                want[k]
            );
        }
        // Probabilities: exp of the log-probabilities, summing to 1.
        let total: f64 = row.iter().map(|&v| f64::from(v).exp()).sum();
        assert!(
            (total - 1.0).abs() < 1e-5,
            "sample {i}: probabilities sum to {total}"
        );
    }
    // The check means something only if the classes differ: y is not near 0.
    assert!(
        y.iter().any(|v| v.abs() > 0.05),
        "reference outputs too close to 0: {y:?}"
    );
}
