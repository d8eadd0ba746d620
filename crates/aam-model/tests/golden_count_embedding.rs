//! Golden parity of the count embedding with the reference PyTorch AAM at its latest
//! version (`shared/golden/head-gmu-count-quantile`: method `add`;
//! `shared/golden/head-perceiver-film-classifier`: method `film`): the base model's
//! `base_embeddings` and `embeddings` within 1e-4 on every non-padding position. The
//! categorical conditioning and the heads of those configurations act after the base
//! model, so the base outputs pin the count embedding alone.

use std::path::PathBuf;

use aam_model::{CountEmbeddingMethod, CpuBackend, ModelConfig, SequenceEncoder, WeightMap};
use burn::prelude::*;
use burn::tensor::TensorData;

type B = CpuBackend;

fn golden(config: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/golden")
        .join(config)
        .join(file)
}

/// Largest |ours − reference| of `base_embeddings` over valid slots and of
/// `embeddings`, for the golden configuration `name`, with `counts` scaled by `scale`
/// (1 for the real inputs).
fn max_diffs(name: &str, expected_method: CountEmbeddingMethod, scale: f32) -> (f32, f32) {
    let config: ModelConfig =
        serde_json::from_str(&std::fs::read_to_string(golden(name, "config.json")).unwrap())
            .unwrap();
    assert!(config.count_embedding, "{name}: count_embedding not read");
    assert_eq!(config.count_embedding_method, expected_method);
    let device = Default::default();
    let weights = WeightMap::load(&golden(name, "weights.safetensors")).unwrap();
    let model = SequenceEncoder::<B>::load(&weights, "base_model.", &config, &device).unwrap();
    // Every key of the base model was read, count layers included.
    weights.check_all_used("base_model.").unwrap();
    assert!(model.uses_counts());

    let tokens: ndarray::Array3<i64> = ndarray_npy::read_npy(golden(name, "tokens.npy")).unwrap();
    let counts: ndarray::Array3<f32> = ndarray_npy::read_npy(golden(name, "counts.npy")).unwrap();
    let (b, s, l) = tokens.dim();
    assert_eq!(counts.dim(), (b, s, 1));
    let input = Tensor::<B, 3, Int>::from_data(
        TensorData::new(tokens.iter().copied().collect::<Vec<_>>(), [b, s, l]),
        &device,
    );
    let count_input = Tensor::<B, 3>::from_data(
        TensorData::new(
            counts.iter().map(|c| c * scale).collect::<Vec<_>>(),
            [b, s, 1],
        ),
        &device,
    );
    let out = model.forward(input, Some(count_input));
    let expected = WeightMap::load(&golden(name, "outputs.safetensors")).unwrap();
    let d = config.embedding_dim;
    let slot_valid = |i: usize, j: usize| (0..l).any(|k| tokens[[i, j, k]] > 0);

    let got: Vec<f32> = out.sample_embeddings.into_data().to_vec().unwrap();
    let want = expected.get("base_embeddings", &[b, s, d]).unwrap();
    let mut base = 0.0f32;
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g.is_finite());
        if slot_valid(k / (s * d), (k / d) % s) {
            base = base.max((g - w).abs());
        }
    }
    let got: Vec<f32> = out.embeddings.into_data().to_vec().unwrap();
    let want = expected.get("embeddings", &[b, d]).unwrap();
    let pooled = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0f32, f32::max);
    eprintln!("{name} (counts × {scale}): base_embeddings {base:e}, embeddings {pooled:e}");
    (base, pooled)
}

#[test]
fn count_embedding_add_matches_reference() {
    let (base, pooled) = max_diffs("head-gmu-count-quantile", CountEmbeddingMethod::Add, 1.0);
    assert!(base <= 1e-4, "base_embeddings: {base}");
    assert!(pooled <= 1e-4, "embeddings: {pooled}");
}

#[test]
fn count_embedding_film_matches_reference() {
    let (base, pooled) = max_diffs(
        "head-perceiver-film-classifier",
        CountEmbeddingMethod::Film,
        1.0,
    );
    assert!(base <= 1e-4, "base_embeddings: {base}");
    assert!(pooled <= 1e-4, "embeddings: {pooled}");
}

#[test]
fn the_counts_change_the_output() {
    // Proves the counts reach the output: doubled counts move it well past the tolerance.
    for (name, m) in [
        ("head-gmu-count-quantile", CountEmbeddingMethod::Add),
        ("head-perceiver-film-classifier", CountEmbeddingMethod::Film),
    ] {
        let (base, _) = max_diffs(name, m, 2.0);
        assert!(
            base > 1e-2,
            "{name}: doubling the counts moved the output by {base}"
        );
    }
}
