//! Golden parity with the reference PyTorch model (`shared/golden/small-regressor`):
//! all five outputs within 1e-4 absolute on every non-padding position.

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

fn flat(t: Tensor<B, 4>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

#[test]
fn small_regressor_matches_reference_outputs() {
    let config: ModelConfig =
        serde_json::from_str(&std::fs::read_to_string(golden("config.json")).unwrap()).unwrap();
    config.validate().unwrap();
    let device = Default::default();
    let weights = WeightMap::load(&golden("weights.safetensors")).unwrap();
    let model = SequencePredictor::<B>::load(&weights, &config, &device).unwrap();
    weights.check_all_used("").unwrap();

    let tokens: ndarray::Array3<i64> = ndarray_npy::read_npy(golden("tokens.npy")).unwrap();
    let (b, s, l) = tokens.dim();
    let input = Tensor::<B, 3, Int>::from_data(
        TensorData::new(tokens.iter().copied().collect::<Vec<_>>(), [b, s, l]),
        &device,
    );
    let out = model.forward(input, None);
    let expected = WeightMap::load(&golden("outputs.safetensors")).unwrap();
    let d = config.embedding_dim;
    let v = config.vocab_size;

    let slot_valid = |i: usize, j: usize| (0..l).any(|k| tokens[[i, j, k]] > 0);
    let mut worst: Vec<(&str, f32)> = Vec::new();
    let mut check =
        |name: &'static str, got: Vec<f32>, shape: &[usize], include: &dyn Fn(&[usize]) -> bool| {
            let want = expected.get(name, shape).unwrap();
            let mut max_diff = 0.0f32;
            let mut idx = vec![0usize; shape.len()];
            for (k, (g, w)) in got.iter().zip(want).enumerate() {
                let mut r = k;
                for a in (0..shape.len()).rev() {
                    idx[a] = r % shape[a];
                    r /= shape[a];
                }
                assert!(g.is_finite(), "{name} has a non-finite value at {idx:?}");
                if include(&idx) {
                    max_diff = max_diff.max((g - w).abs());
                }
            }
            worst.push((name, max_diff));
        };
    check(
        "target_prediction",
        out.target_prediction.into_data().to_vec().unwrap(),
        &[b, 1],
        &|_| true,
    );
    check(
        "embeddings",
        out.base.embeddings.into_data().to_vec().unwrap(),
        &[b, d],
        &|_| true,
    );
    check(
        "count_prediction",
        out.count_prediction.into_data().to_vec().unwrap(),
        &[b, s, 1],
        &|i| slot_valid(i[0], i[1]),
    );
    check(
        "base_embeddings",
        out.base.sample_embeddings.into_data().to_vec().unwrap(),
        &[b, s, d],
        &|i| slot_valid(i[0], i[1]),
    );
    check(
        "nuc_predictions",
        flat(out.base.nuc_predictions.unwrap()),
        &[b, s, l, v],
        &|i| tokens[[i[0], i[1], i[2]]] > 0,
    );
    for (name, diff) in &worst {
        eprintln!("{name}: max |diff| = {diff:e}");
    }
    for (name, diff) in worst {
        assert!(diff <= 1e-4, "{name}: max |diff| {diff} > 1e-4");
    }
}
