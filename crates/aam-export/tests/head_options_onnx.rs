//! The ONNX export of the reference's latest head options: for each categorical fusion
//! (`concat`, `add`, `cross-attention`, `gmu`, `perceiver`, the last also as the
//! reference's padding-attending Perceiver) and with an MLP or residual head, quantiles,
//! conditional scaling, a learned scale, bounded counts and an output activation, the
//! graph (a `categorical_ids` input) run by tract equals the Burn model within 1e-4 on
//! batches with empty ASV slots; out-of-range ids are refused before they reach the graph.
//! Each case is also written under `$CARGO_TARGET_TMPDIR/onnx-fixtures` for
//! `scripts/check_onnx.py` (onnx checker and ONNX Runtime).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aam_config::{CheckpointConfig, DataSettings, ModelKind, FORMAT_VERSION};
use aam_data::TokenLimitPolicy;
use aam_model::{
    CategoricalFusion, CpuBackend, HeadConfig, ModelConfig, OutputActivation, SequencePredictor,
    WeightMap,
};
use aam_runtime::Model;
use burn::prelude::*;
use burn::tensor::TensorData;
use ndarray::{Array2, Array3};

type B = CpuBackend;

fn config(head: HeadConfig, is_classifier: bool) -> ModelConfig {
    ModelConfig {
        embedding_dim: 16,
        max_bp: 12,
        token_limit: 32,
        asv_num_layers: 1,
        asv_num_heads: 2,
        sample_num_layers: 1,
        sample_num_heads: 2,
        encoder_num_layers: 1,
        encoder_num_heads: 2,
        count_num_layers: 1,
        count_num_heads: 2,
        target_num_layers: 1,
        target_num_heads: 2,
        predict_nucleotides: false,
        out_dim: if is_classifier { 3 } else { 2 },
        is_classifier,
        head: HeadConfig {
            categorical_cardinalities: BTreeMap::from([("site".into(), 4), ("host".into(), 3)]),
            categorical_embed_dim: 4,
            cross_attn_heads: 2,
            perceiver_num_latents: 3,
            perceiver_num_layers: 1,
            ..head
        },
        ..ModelConfig::default()
    }
}

/// `b` samples of `s` slots; sample i holds `s − i` ASVs (the rest empty slots).
fn tokens(b: usize, s: usize, l: usize) -> Array3<i64> {
    Array3::from_shape_fn((b, s, l), |(i, j, k)| {
        if j + i >= s {
            0
        } else if k == 0 {
            5
        } else {
            1 + ((i * 31 + j * 7 + k * 3) % 4) as i64
        }
    })
}

fn ids(b: usize) -> Array2<i64> {
    // Columns sorted by name: host (3), site (4); sample 0 has an unknown host.
    Array2::from_shape_fn((b, 2), |(i, c)| {
        if i == 0 && c == 0 {
            0
        } else {
            ((i + c) % (3 + c)) as i64
        }
    })
}

/// A predictor with every parameter drawn N(0, 0.5) (fresh tables start at 1 and 0 and
/// would hide a mix-up), the same on every run, as its weight map.
fn weights(c: &ModelConfig) -> WeightMap {
    aam_model::random_weights::random_predictor_weights::<B>(c, 7, 0.5)
}

fn check(name: &str, c: ModelConfig) {
    c.validate().unwrap();
    let w = weights(&c);
    let device = Default::default();
    let model = SequencePredictor::<B>::load(&w, &c, &device).unwrap();
    let config = CheckpointConfig {
        format_version: FORMAT_VERSION,
        kind: ModelKind::Predictor,
        data: DataSettings {
            max_bp: c.max_bp,
            token_limit: c.token_limit,
            token_limit_policy: TokenLimitPolicy::First,
            rarefy_depth: None,
        },
        model: c.clone(),
        target: None,
    };
    let bytes = aam_export::onnx_bytes(&config, &w, 17).unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("onnx-fixtures")
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.onnx"), &bytes).unwrap();
    let onnx = Model::from_bytes(&bytes, Path::new(name)).unwrap();
    let (b, s, l) = (3, 6, c.max_bp + 1);
    let t = tokens(b, s, l);
    let i = ids(b);
    // Without its ids a conditioned model is refused, not run on unknown categories.
    assert!(
        onnx.run(t.view()).is_err(),
        "{name}: ran without categorical ids"
    );
    let mut bad = i.clone();
    bad[[1, 1]] = 4;
    let msg = onnx
        .run_with_categories(t.view(), None, bad.view())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`site`") && msg.contains("0..4"),
        "{name}: {msg}"
    );
    let got = onnx.run_with_categories(t.view(), None, i.view()).unwrap();
    let out = model.forward_with_categories(
        Tensor::from_data(
            TensorData::new(t.iter().copied().collect::<Vec<_>>(), [b, s, l]),
            &device,
        ),
        None,
        Some(Tensor::from_data(
            TensorData::new(i.iter().copied().collect::<Vec<_>>(), [b, 2]),
            &device,
        )),
    );
    let width = c.head.output_width(c.out_dim);
    let want_target = Array2::from_shape_vec(
        (b, width),
        out.target_prediction.into_data().to_vec::<f32>().unwrap(),
    )
    .unwrap();
    let want_count = Array3::from_shape_vec(
        (b, s, 1),
        out.count_prediction.into_data().to_vec::<f32>().unwrap(),
    )
    .unwrap();
    let got_target = got.target_prediction.expect("target_prediction");
    let diff = |a: &[f32], e: &[f32]| {
        a.iter()
            .zip(e)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    };
    let d = diff(
        got_target.as_slice().unwrap(),
        want_target.as_slice().unwrap(),
    );
    assert!(d <= 1e-4, "{name} target_prediction: tract vs burn {d}");
    // count_prediction at ASV slots (an empty slot's value is not a prediction).
    let got_count = got.count_prediction.expect("count_prediction");
    let mut dc = 0f32;
    for ((idx, g), e) in got_count.indexed_iter().zip(want_count.iter()) {
        if t[[idx.0, idx.1, 0]] != 0 {
            dc = dc.max((g - e).abs());
        }
    }
    assert!(dc <= 1e-4, "{name} count_prediction: tract vs burn {dc}");
    if c.is_classifier {
        let p = got.class_probabilities.expect("class_probabilities");
        let dp = diff(
            p.as_slice().unwrap(),
            &want_target.mapv(f32::exp).into_raw_vec_and_offset().0,
        );
        assert!(dp <= 1e-4, "{name} class_probabilities {dp}");
    }
    // The split graphs (each ASV encoded once, each sample on its own slots): the same
    // outputs, except for the reference's Perceiver, which reads the empty slots the split
    // graphs cut.
    if !c.head.perceiver_attends_padding {
        let part = |p| aam_export::onnx_part_bytes(&config, &w, 17, p).unwrap();
        let split = Model::from_split_bytes(
            &bytes,
            &part(aam_export::GraphPart::AsvEncoder),
            &part(aam_export::GraphPart::SampleModel),
            &dir.join("model.onnx"),
            &Default::default(),
        )
        .unwrap();
        let got = split.run_with_categories(t.view(), None, i.view()).unwrap();
        let target = got.target_prediction.expect("target_prediction");
        let d = diff(target.as_slice().unwrap(), want_target.as_slice().unwrap());
        assert!(d <= 1e-4, "{name} split graphs target_prediction: {d}");
    }
    ndarray_npy::write_npy(dir.join("case.tokens.npy"), &t).unwrap();
    ndarray_npy::write_npy(dir.join("case.categorical_ids.npy"), &i).unwrap();
    ndarray_npy::write_npy(dir.join("case.target_prediction.npy"), &want_target).unwrap();
    if c.is_classifier {
        ndarray_npy::write_npy(
            dir.join("case.class_probabilities.npy"),
            &want_target.mapv(f32::exp),
        )
        .unwrap();
    }
}

#[test]
fn concat_fusion_with_mlp_head_matches_burn() {
    check(
        "head-concat-mlp",
        config(
            HeadConfig {
                categorical_fusion: CategoricalFusion::Concat,
                regressor_hidden_dims: vec![8, 4],
                target_layer_norm: true,
                ..Default::default()
            },
            false,
        ),
    );
}

#[test]
fn add_fusion_classifier_with_scaling_matches_burn() {
    check(
        "head-add-classifier",
        config(
            HeadConfig {
                categorical_fusion: CategoricalFusion::Add,
                conditional_scaling_columns: vec!["site".into()],
                learnable_output_scale: true,
                bounded_count_prediction: true,
                ..Default::default()
            },
            true,
        ),
    );
}

#[test]
fn cross_attention_fusion_with_residual_head_matches_burn() {
    check(
        "head-cross-attention-residual",
        config(
            HeadConfig {
                categorical_fusion: CategoricalFusion::CrossAttention,
                regressor_hidden_dims: vec![8],
                regressor_dropout: 0.2,
                residual_regression_head: true,
                output_activation: OutputActivation::Softplus,
                ..Default::default()
            },
            false,
        ),
    );
}

#[test]
fn gmu_fusion_with_quantiles_matches_burn() {
    check(
        "head-gmu-quantiles",
        config(
            HeadConfig {
                categorical_fusion: CategoricalFusion::Gmu,
                target_layer_norm: true,
                num_quantiles: Some(3),
                ..Default::default()
            },
            false,
        ),
    );
}

#[test]
fn perceiver_fusion_matches_burn_with_and_without_padding_keys() {
    for (name, attends) in [
        ("head-perceiver", false),
        ("head-perceiver-reference", true),
    ] {
        check(
            name,
            config(
                HeadConfig {
                    categorical_fusion: CategoricalFusion::Perceiver,
                    perceiver_attends_padding: attends,
                    bounded_targets: true,
                    ..Default::default()
                },
                false,
            ),
        );
    }
}
