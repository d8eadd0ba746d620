//! The exported ONNX graph, run by tract, equals the Burn model within 1e-4 at batch 1,
//! 3, 8 and n_asv 1, 17, 256, with all-padding ASV rows and all-padding samples, for a
//! regressor, a classifier (ReLU stacks), an encoder, and predictors with each count
//! embedding (`add`, `concat`, `film`: a `counts` input); and reproduces the reference
//! PyTorch golden outputs. Each case is also written under
//! `$CARGO_TARGET_TMPDIR/onnx-fixtures` for `scripts/check_onnx.py` (onnx checker and
//! onnxruntime).

use std::path::{Path, PathBuf};

use aam_config::{CheckpointConfig, DataSettings, ModelConfig, ModelKind, FORMAT_VERSION};
use aam_data::TokenLimitPolicy;
use aam_model::config::Activation;
use aam_model::{AamModel, CpuBackend, SequenceEncoder, SequencePredictor, WeightMap, WeightSink};
use aam_runtime::{Model, RawOutputs};
use burn::prelude::*;
use burn::tensor::TensorData;
use ndarray::{Array2, Array3, ArrayD};

type B = CpuBackend;

const TOLERANCE: f32 = 1e-4;

fn small_config(is_classifier: bool, activation: Activation) -> ModelConfig {
    ModelConfig {
        embedding_dim: 16,
        max_bp: 24,
        token_limit: 256,
        asv_num_layers: 1,
        asv_num_heads: 2,
        asv_activation: activation,
        sample_num_layers: 1,
        sample_num_heads: 2,
        sample_activation: activation,
        encoder_num_layers: 1,
        encoder_num_heads: 4,
        encoder_activation: activation,
        count_num_layers: 1,
        count_num_heads: 2,
        count_activation: activation,
        target_num_layers: 2,
        target_num_heads: 2,
        target_activation: activation,
        intermediate_size: Some(24),
        out_dim: if is_classifier { 3 } else { 1 },
        is_classifier,
        ..ModelConfig::default()
    }
}

fn checkpoint_config(model: ModelConfig, kind: ModelKind) -> CheckpointConfig {
    CheckpointConfig {
        format_version: FORMAT_VERSION,
        kind,
        data: DataSettings {
            max_bp: model.max_bp,
            token_limit: model.token_limit,
            token_limit_policy: TokenLimitPolicy::First,
            rarefy_depth: None,
        },
        model,
        target: None,
    }
}

/// Deterministic tokens `[b, s, max_bp + 1]`: sample 1 (when b > 1) is all padding,
/// every 5th ASV slot is an all-padding row, the rest START + 1..=max_bp nucleotides.
fn tokens(b: usize, s: usize, max_bp: usize, seed: u64) -> Array3<i64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let mut t = Array3::<i64>::zeros((b, s, max_bp + 1));
    for i in 0..b {
        if b > 1 && i == 1 {
            continue;
        }
        for j in 0..s {
            if j % 5 == 4 {
                continue;
            }
            t[[i, j, 0]] = 5;
            let len = 1 + next(max_bp as u64) as usize;
            for k in 1..=len {
                t[[i, j, k]] = 1 + next(4) as i64;
            }
        }
    }
    t
}

/// Read counts `[b, s, 1]` for `tokens`: 0 in empty slots, 1 to ~3000 elsewhere (so
/// ln(count + 1) spans 0.7 to 8).
fn counts_for(tokens: &Array3<i64>) -> Array3<f32> {
    let (b, s, _) = tokens.dim();
    Array3::from_shape_fn((b, s, 1), |(i, j, _)| {
        if tokens[[i, j, 0]] == 0 {
            0.0
        } else {
            ((i * 7919 + j * 104_729) % 3000 + 1) as f32
        }
    })
}

fn burn_outputs<M: AamModel<B>>(model: &M, tokens: &Array3<i64>, counts: &Array3<f32>) -> RawOutputs {
    let (b, s, l) = tokens.dim();
    let input = Tensor::<B, 3, Int>::from_data(
        TensorData::new(tokens.iter().copied().collect::<Vec<_>>(), [b, s, l]),
        &Default::default(),
    );
    let counts = Tensor::<B, 3>::from_data(
        TensorData::new(counts.iter().copied().collect::<Vec<_>>(), [b, s, 1]),
        &Default::default(),
    );
    let out = model.forward_all(input, Some(counts));
    let two = |t: Tensor<B, 2>| {
        let [a, c] = t.dims();
        Array2::from_shape_vec((a, c), t.into_data().to_vec::<f32>().unwrap()).unwrap()
    };
    let target = out.target_prediction.map(two);
    RawOutputs {
        embeddings: two(out.embeddings),
        class_probabilities: None,
        target_prediction: target,
        count_prediction: out.count_prediction.map(|t| {
            let [a, c, d] = t.dims();
            Array3::from_shape_vec((a, c, d), t.into_data().to_vec::<f32>().unwrap()).unwrap()
        }),
    }
}

fn max_diff(name: &str, got: &ArrayD<f32>, want: &ArrayD<f32>) -> f32 {
    assert_eq!(got.shape(), want.shape(), "{name}: shape");
    assert!(
        got.iter().all(|v| v.is_finite()),
        "{name}: non-finite output"
    );
    got.iter()
        .zip(want.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn fixture_dir(model: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("onnx-fixtures")
        .join(model);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_npy<A: ndarray_npy::WritableElement, D: ndarray::Dimension>(
    dir: &Path,
    name: &str,
    a: &ndarray::Array<A, D>,
) {
    ndarray_npy::write_npy(dir.join(format!("{name}.npy")), a).unwrap();
}

/// Exports `model`, then compares tract with Burn on every case; writes the fixtures.
fn check_model<M: AamModel<B>>(name: &str, model: &M, config: CheckpointConfig) {
    let mut sink = WeightSink::default();
    model.save_weights(&mut sink);
    let weights: WeightMap = sink.into_map();
    let bytes = aam_export::onnx_bytes(&config, &weights, 17).unwrap();
    let dir = fixture_dir(name);
    std::fs::write(dir.join("model.onnx"), &bytes).unwrap();
    let onnx = Model::from_bytes(&bytes, Path::new(name)).unwrap();
    assert_eq!(
        onnx.config(),
        &config,
        "configuration stored in metadata_props"
    );

    for b in [1usize, 3, 8] {
        for s in [1usize, 17, 256] {
            let t = tokens(b, s, config.model.max_bp, (b * 1000 + s) as u64);
            let c = counts_for(&t);
            let want = burn_outputs(model, &t, &c);
            let got = if config.model.uses_counts() {
                // Without its counts, a count model is refused, not run on zeros.
                assert!(onnx.run(t.view()).is_err(), "{name}: ran without counts");
                onnx.run_with_counts(t.view(), c.view()).unwrap()
            } else {
                onnx.run(t.view()).unwrap()
            };
            let case = format!("b{b}_s{s}");
            write_npy(&dir, &format!("{case}.tokens"), &t);
            if config.model.uses_counts() {
                write_npy(&dir, &format!("{case}.counts"), &c);
            }
            let mut pairs = vec![(
                "embeddings",
                got.embeddings.clone().into_dyn(),
                want.embeddings.clone().into_dyn(),
            )];
            // An output on one side only is a mismatch, not a skipped comparison.
            assert_eq!(
                got.target_prediction.is_some(),
                want.target_prediction.is_some(),
                "{case}: target_prediction in ONNX / Burn"
            );
            assert_eq!(
                got.count_prediction.is_some(),
                want.count_prediction.is_some(),
                "{case}: count_prediction in ONNX / Burn"
            );
            if let (Some(g), Some(w)) = (&got.target_prediction, &want.target_prediction) {
                pairs.push((
                    "target_prediction",
                    g.clone().into_dyn(),
                    w.clone().into_dyn(),
                ));
            }
            if let (Some(g), Some(w)) = (&got.count_prediction, &want.count_prediction) {
                pairs.push((
                    "count_prediction",
                    g.clone().into_dyn(),
                    w.clone().into_dyn(),
                ));
            }
            if config.model.is_classifier {
                let g = got
                    .class_probabilities
                    .clone()
                    .expect("class_probabilities output");
                let w = want.target_prediction.clone().unwrap().mapv(f32::exp);
                pairs.push(("class_probabilities", g.into_dyn(), w.into_dyn()));
            } else {
                assert!(got.class_probabilities.is_none());
            }
            assert_eq!(
                got.target_prediction.is_some(),
                config.kind == ModelKind::Predictor,
                "{name}: outputs of a {:?}",
                config.kind
            );
            for (out, g, w) in pairs {
                write_npy(&dir, &format!("{case}.{out}"), &w);
                let d = max_diff(out, &g, &w);
                assert!(
                    d <= TOLERANCE,
                    "{name} {case} {out}: tract vs burn max |diff| {d}"
                );
            }
        }
    }
}

#[test]
fn regressor_matches_burn() {
    let c = small_config(false, Activation::Gelu);
    let model = SequencePredictor::<B>::new(&c, &Default::default());
    check_model(
        "regressor",
        &model,
        checkpoint_config(c, ModelKind::Predictor),
    );
}

#[test]
fn classifier_with_relu_matches_burn() {
    let c = small_config(true, Activation::Relu);
    let model = SequencePredictor::<B>::new(&c, &Default::default());
    check_model(
        "classifier",
        &model,
        checkpoint_config(c, ModelKind::Predictor),
    );
}

#[test]
fn count_embeddings_match_burn() {
    use aam_model::CountEmbeddingMethod;
    for method in [
        CountEmbeddingMethod::Add,
        CountEmbeddingMethod::Concat,
        CountEmbeddingMethod::Film,
    ] {
        let c = ModelConfig {
            count_embedding: true,
            count_embedding_method: method,
            ..small_config(true, Activation::Gelu)
        };
        let model = SequencePredictor::<B>::new(&c, &Default::default());
        check_model(
            &format!("counts-{}", method.name()),
            &model,
            checkpoint_config(c, ModelKind::Predictor),
        );
    }
}

/// Abundance-weighted pooling, alone and with a count embedding, predictor and encoder.
#[test]
fn abundance_pooling_matches_burn() {
    for count_embedding in [false, true] {
        let c = ModelConfig {
            abundance_pooling: true,
            count_embedding,
            ..small_config(true, Activation::Gelu)
        };
        let model = SequencePredictor::<B>::new(&c, &Default::default());
        check_model(
            &format!("abundance-pooling-counts-{count_embedding}"),
            &model,
            checkpoint_config(c, ModelKind::Predictor),
        );
    }
    let c = ModelConfig {
        abundance_pooling: true,
        ..small_config(false, Activation::Gelu)
    };
    let model = SequenceEncoder::<B>::new(&c, &Default::default());
    check_model(
        "abundance-pooling-encoder",
        &model,
        checkpoint_config(c, ModelKind::Encoder),
    );
}

/// The k-mer embedding (k 1, 3 and 6) in the ASV encoder.
#[test]
fn kmer_embeddings_match_burn() {
    for k in [1, 3, 6] {
        let c = ModelConfig {
            kmer_size: k,
            ..small_config(true, Activation::Gelu)
        };
        let model = SequencePredictor::<B>::new(&c, &Default::default());
        check_model(
            &format!("kmer-{k}"),
            &model,
            checkpoint_config(c, ModelKind::Predictor),
        );
    }
}

#[test]
fn encoder_exports_embeddings_only() {
    let c = ModelConfig {
        predict_nucleotides: true,
        ..small_config(false, Activation::Gelu)
    };
    let model = SequenceEncoder::<B>::new(&c, &Default::default());
    check_model("encoder", &model, checkpoint_config(c, ModelKind::Encoder));
}

fn golden(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/golden/small-regressor")
        .join(file)
}

/// The reference PyTorch weights exported and run by tract reproduce the reference
/// outputs (valid ASV slots for per-ASV outputs).
#[test]
fn golden_reference_weights_reproduce_reference_outputs() {
    let model: ModelConfig =
        serde_json::from_str(&std::fs::read_to_string(golden("config.json")).unwrap()).unwrap();
    let config = checkpoint_config(model, ModelKind::Predictor);
    let weights = WeightMap::load(&golden("weights.safetensors")).unwrap();
    let bytes = aam_export::onnx_bytes(&config, &weights, 17).unwrap();
    let dir = fixture_dir("golden");
    std::fs::write(dir.join("model.onnx"), &bytes).unwrap();
    let onnx = Model::from_bytes(&bytes, Path::new("golden")).unwrap();

    let tokens: Array3<i64> = ndarray_npy::read_npy(golden("tokens.npy")).unwrap();
    let (b, s, l) = tokens.dim();
    assert_eq!(l, config.model.max_bp + 1);
    let got = onnx.run(tokens.view()).unwrap();
    let expected = WeightMap::load(&golden("outputs.safetensors")).unwrap();
    let d = config.model.embedding_dim;
    write_npy(&dir, "golden.tokens", &tokens);

    let target = expected.get("target_prediction", &[b, 1]).unwrap();
    let t = Array2::from_shape_vec((b, 1), target.to_vec()).unwrap();
    write_npy(&dir, "golden.target_prediction", &t);
    let diff = max_diff(
        "target_prediction",
        &got.target_prediction.clone().unwrap().into_dyn(),
        &t.into_dyn(),
    );
    assert!(diff <= TOLERANCE, "target_prediction: {diff}");

    let emb = expected.get("embeddings", &[b, d]).unwrap();
    let e = Array2::from_shape_vec((b, d), emb.to_vec()).unwrap();
    write_npy(&dir, "golden.embeddings", &e);
    let diff = max_diff(
        "embeddings",
        &got.embeddings.clone().into_dyn(),
        &e.into_dyn(),
    );
    assert!(diff <= TOLERANCE, "embeddings: {diff}");

    let counts = expected.get("count_prediction", &[b, s, 1]).unwrap();
    let got_counts = got.count_prediction.unwrap();
    let mut worst = 0.0f32;
    for i in 0..b {
        for j in 0..s {
            if (0..l).any(|k| tokens[[i, j, k]] > 0) {
                worst = worst.max((got_counts[[i, j, 0]] - counts[i * s + j]).abs());
            }
        }
    }
    assert!(
        worst <= TOLERANCE,
        "count_prediction on valid slots: {worst}"
    );
}
