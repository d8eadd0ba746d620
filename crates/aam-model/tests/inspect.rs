//! Attention weights and integrated gradients on the golden reference model
//! (`shared/golden/small-regressor`, 2 layers × 4 heads per stack, token limit 32).

use std::path::PathBuf;

use aam_model::attention::MASKED_SCORE;
use aam_model::integrated_gradients::{integrated_gradients, AttributedOutput};
use aam_model::sample_encoder::asv_mask;
use aam_model::{CpuAutodiff, CpuBackend, ModelConfig, SequencePredictor, WeightMap};
use burn::prelude::*;
use burn::tensor::TensorData;

type B = CpuBackend;

fn golden(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/golden/small-regressor")
        .join(file)
}

fn config() -> ModelConfig {
    serde_json::from_str(&std::fs::read_to_string(golden("config.json")).unwrap()).unwrap()
}

fn tokens<BB: Backend>(device: &BB::Device) -> (Tensor<BB, 3, Int>, ndarray::Array3<i64>) {
    let tokens: ndarray::Array3<i64> = ndarray_npy::read_npy(golden("tokens.npy")).unwrap();
    let (b, s, l) = tokens.dim();
    let t = Tensor::from_data(
        TensorData::new(tokens.iter().copied().collect::<Vec<_>>(), [b, s, l]),
        device,
    );
    (t, tokens)
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

#[test]
fn attention_rows_are_distributions_over_valid_keys_and_reproduce_the_layer() {
    let config = config();
    let device = Default::default();
    let weights = WeightMap::load(&golden("weights.safetensors")).unwrap();
    let model = SequencePredictor::<B>::load(&weights, &config, &device).unwrap();
    let (input, raw) = tokens::<B>(&device);
    let (b, s, _) = raw.dim();
    let attention = model.sample_attention(input.clone(), None);
    let names: Vec<&str> = attention.stacks.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "sample_transformer",
            "encoder_transformer",
            "count_encoder",
            "target_encoder"
        ]
    );
    let valid = |i: usize, j: usize| raw.slice(ndarray::s![i, j, ..]).iter().any(|&t| t > 0);
    let n_valid: Vec<usize> = (0..b)
        .map(|i| (0..s).filter(|&j| valid(i, j)).count())
        .collect();
    assert!(
        n_valid.iter().any(|&n| n < s),
        "the golden batch has padded slots"
    );
    for (name, layers) in &attention.stacks {
        assert_eq!(layers.len(), 2, "{name}");
        for w in layers {
            assert_eq!(w.dims(), [b, 4, s, s]);
            let v = values(w.clone());
            for i in 0..b {
                for h in 0..4 {
                    for q in 0..s {
                        let row = &v[((i * 4 + h) * s + q) * s..][..s];
                        let total: f32 = row.iter().sum();
                        assert!((total - 1.0).abs() < 1e-5, "{name} row sum {total}");
                        for (k, &x) in row.iter().enumerate() {
                            if !valid(i, k) {
                                assert_eq!(x, 0.0, "{name}: padded key {k} has weight {x}");
                            }
                        }
                    }
                }
            }
        }
    }
    // The weights times the values, through out_proj, equal the layer's own attention
    // output (the forward pass's code path): first layer of the target encoder.
    let sample_embeddings = model.base_model.forward(input, None).sample_embeddings;
    let layer = &model.target_encoder.layers[0];
    let mask = attention.asv_mask.clone();
    let bias = (mask.clone().neg() + 1.0)
        .mul_scalar(MASKED_SCORE)
        .reshape([b, 1, 1, s]);
    let normed = layer.norm1.forward(sample_embeddings);
    let expected = layer.self_attn.forward(normed.clone(), Some(bias));
    let d = config.embedding_dim;
    let v = layer
        .self_attn
        .value
        .forward(normed)
        .reshape([b, s, 4, d / 4])
        .swap_dims(1, 2);
    let w = attention.stacks[3].1[0].clone();
    let mixed = w.matmul(v).swap_dims(1, 2).reshape([b, s, d]);
    let got = layer.self_attn.output.forward(mixed);
    let diff = values((got - expected).abs().max());
    assert!(diff[0] < 1e-5, "max |diff| {}", diff[0]);
    // Pooling weights: a distribution over the valid slots.
    for (name, p) in &attention.pooling {
        let p = values(p.clone());
        for i in 0..b {
            let total: f32 = p[i * s..(i + 1) * s].iter().sum();
            assert!((total - 1.0).abs() < 1e-5, "{name}: {total}");
            for j in (0..s).filter(|&j| !valid(i, j)) {
                assert_eq!(p[i * s + j], 0.0);
            }
        }
    }
    // Nucleotide level: rows of the first sample's first ASV sum to 1 over its bases.
    let l = raw.dim().2;
    let row = Tensor::<B, 2, Int>::from_data(
        TensorData::new(raw.slice(ndarray::s![0, 0, ..]).to_vec(), [1, l]),
        &device,
    );
    let nucleotide = model.base_model.sample_encoder.asv_encoder.attention(row);
    assert_eq!(nucleotide.layers.len(), 2);
    assert_eq!(nucleotide.layers[0].dims(), [1, 4, l, l]);
    let pooling = values(nucleotide.pooling);
    let total: f32 = pooling.iter().sum();
    assert!((total - 1.0).abs() < 1e-5);
    for (k, &t) in raw.slice(ndarray::s![0, 0, ..]).iter().enumerate() {
        if t == 0 {
            assert_eq!(pooling[k], 0.0);
        }
    }
}

#[test]
fn integrated_gradients_are_complete_and_start_from_the_model_output() {
    let mut config = config();
    // An autodiff backend draws dropout; attributions are of the eval-mode model.
    config.dropout = 0.0;
    let device = Default::default();
    let weights = WeightMap::load(&golden("weights.safetensors")).unwrap();
    let model = SequencePredictor::<CpuAutodiff>::load(&weights, &config, &device).unwrap();
    let (input, raw) = tokens::<CpuAutodiff>(&device);
    let (b, s, _) = raw.dim();
    let plain = model.forward(input.clone(), None).target_prediction.inner();
    let plain = plain.into_data().to_vec::<f32>().unwrap();
    let asv = model
        .base_model
        .sample_encoder
        .asv_encoder
        .forward(input.clone())
        .embeddings
        .inner();
    let mask = asv_mask(input.inner());
    let d = config.embedding_dim;
    for i in 0..b {
        let x = asv.clone().slice([i..i + 1, 0..s, 0..d]).reshape([s, d]);
        let m = mask.clone().slice([i..i + 1, 0..s]).reshape([s]);
        let a = integrated_gradients(&model, x, m.clone(), None, AttributedOutput::Raw(0), 64, 16);
        assert!(
            (a.output - f64::from(plain[i])).abs() < 1e-5,
            "f(x) {} vs forward {}",
            a.output,
            plain[i]
        );
        let gap = a.relative_completeness_gap();
        eprintln!(
            "sample {i}: f(x) {:.5}, f(x') {:.5}, Σ IG {:.5}, relative gap {gap:.2e}",
            a.output,
            a.baseline_output,
            a.per_asv.iter().sum::<f64>()
        );
        assert!(gap < 0.05, "completeness gap {gap}");
        let m = m.into_data().to_vec::<f32>().unwrap();
        for (j, &v) in m.iter().enumerate() {
            if v == 0.0 {
                assert_eq!(a.per_asv[j], 0.0, "empty slot {j} has an attribution");
            }
        }
        assert!(a.per_asv.iter().any(|&v| v != 0.0));
    }
}
