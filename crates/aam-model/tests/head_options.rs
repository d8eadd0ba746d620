//! The head options of the reference's latest version beyond its two golden
//! configurations: every fusion mode, MLP and residual heads, quantiles, conditional
//! scaling and the output transforms save under the keys they load from (a fresh model
//! round-trips to the same outputs), reach the output, and compute what spec §3.11 says
//! (hand-computed cases for the cross-attention fusion and the output transform).

use std::collections::BTreeMap;

use aam_model::random_weights::{normal_values, random_predictor_weights};
use aam_model::{
    CategoricalFusion, CpuBackend, HeadConfig, ModelConfig, OutputActivation, SequencePredictor,
    WeightSink,
};
use burn::prelude::*;
use burn::tensor::TensorData;

type B = CpuBackend;

/// Seeds the parameter draws: 42, or `AAM_TEST_SEED` to sweep many draws.
fn seed() -> u64 {
    std::env::var("AAM_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(42)
}

fn config(head: HeadConfig) -> ModelConfig {
    ModelConfig {
        embedding_dim: 16,
        max_bp: 12,
        token_limit: 6,
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
        out_dim: 2,
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

fn inputs(device: &burn::backend::ndarray::NdArrayDevice) -> Tensor<B, 3, Int> {
    // Two samples of three ASV slots; the second's last slot is empty.
    let mut tokens = vec![0i64; 2 * 3 * 13];
    for (k, t) in tokens.iter_mut().enumerate() {
        let (sample, slot, pos) = (k / 39, (k / 13) % 3, k % 13);
        if !(sample == 1 && slot == 2) {
            *t = if pos == 0 {
                5
            } else {
                1 + ((k * 7 + slot) % 4) as i64
            };
        }
    }
    Tensor::from_data(TensorData::new(tokens, [2, 3, 13]), device)
}

fn ids(values: [i64; 4], device: &burn::backend::ndarray::NdArrayDevice) -> Tensor<B, 2, Int> {
    // Columns sorted by name: host, site.
    Tensor::from_data(TensorData::new(values.to_vec(), [2, 2]), device)
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Randomises every parameter, the same way on every run.
fn perturbed(c: &ModelConfig) -> SequencePredictor<B> {
    let map = random_predictor_weights::<B>(c, seed(), 0.5);
    SequencePredictor::load(&map, c, &Default::default()).unwrap()
}

#[test]
fn every_head_option_round_trips_and_reads_the_categories() {
    let heads = [
        HeadConfig {
            categorical_fusion: CategoricalFusion::Concat,
            ..Default::default()
        },
        HeadConfig {
            categorical_fusion: CategoricalFusion::Add,
            target_layer_norm: true,
            ..Default::default()
        },
        HeadConfig {
            categorical_fusion: CategoricalFusion::CrossAttention,
            regressor_hidden_dims: vec![16, 8],
            regressor_dropout: 0.2,
            ..Default::default()
        },
        HeadConfig {
            categorical_fusion: CategoricalFusion::Gmu,
            regressor_hidden_dims: vec![8],
            residual_regression_head: true,
            num_quantiles: Some(3),
            ..Default::default()
        },
        HeadConfig {
            categorical_fusion: CategoricalFusion::Perceiver,
            conditional_scaling_columns: vec!["site".into()],
            learnable_output_scale: true,
            output_activation: OutputActivation::Softplus,
            bounded_count_prediction: true,
            ..Default::default()
        },
    ];
    let device = Default::default();
    for head in heads {
        let c = config(head);
        c.validate().unwrap();
        let name = c.head.categorical_fusion.name();
        let model = perturbed(&c);
        let mut sink = WeightSink::default();
        model.save(&mut sink);
        let map = sink.into_map();
        let loaded = SequencePredictor::<B>::load(&map, &c, &device).unwrap();
        map.check_all_used("").unwrap();

        let run = |m: &SequencePredictor<B>, v| {
            m.forward_with_categories(inputs(&device), None, Some(ids(v, &device)))
        };
        let a = run(&model, [1, 2, 2, 3]);
        let b = run(&loaded, [1, 2, 2, 3]);
        let width = c.head.output_width(c.out_dim);
        assert_eq!(a.target_prediction.dims(), [2, width], "{name}");
        let (ta, tb) = (values(a.target_prediction), values(b.target_prediction));
        assert!(max_diff(&ta, &tb) == 0.0, "{name}: reloaded model differs");
        assert!(ta.iter().all(|v| v.is_finite()), "{name}");
        let other = values(run(&model, [0, 1, 1, 0]).target_prediction);
        assert!(
            max_diff(&ta, &other) > 1e-3,
            "{name}: the categories do not reach the output: {ta:?} {other:?}"
        );
        if c.head.bounded_count_prediction {
            assert!(values(a.count_prediction)
                .iter()
                .all(|&v| v > 0.0 && v < 1.0));
        }
        if c.head.output_activation == OutputActivation::Softplus {
            assert!(
                ta.iter().all(|&v| v > 0.0),
                "{name}: softplus output not positive"
            );
        }
    }
}

#[test]
fn cross_attention_fusion_is_a_per_sample_shift() {
    // One key: every weight is 1 and the fused vector is LN(s + W_o(W_v m + b_v) + b_o)
    // with m = Linear(C → D)(c), computed here step by step.
    let device = Default::default();
    let c = config(HeadConfig {
        categorical_fusion: CategoricalFusion::CrossAttention,
        ..Default::default()
    });
    let model = perturbed(&c);
    let fusion = model.cross_attn_fusion.as_ref().unwrap();
    let s = Tensor::<B, 3>::from_data(
        TensorData::new(normal_values(96, 1, 1.0), [2, 3, 16]),
        &device,
    );
    let cat =
        Tensor::<B, 2>::from_data(TensorData::new(normal_values(16, 2, 1.0), [2, 8]), &device);
    let (fused, weights) = fusion.forward(s.clone(), cat.clone());
    assert!(values(weights).iter().all(|&w| (w - 1.0).abs() < 1e-6));
    let m = fusion.projection.forward(cat);
    let shift = fusion
        .attention
        .output
        .forward(fusion.attention.value.forward(m));
    let expected = fusion.norm.forward(s + shift.reshape([2, 1, 16]));
    assert!(max_diff(&values(fused), &values(expected)) < 1e-5);
}

#[test]
fn output_transform_scales_by_category_then_learned_scale() {
    // pred · scale[site][id] + bias[site][id], then · output_scale + output_bias, with
    // hand-set tables: sample 0 (site 2): (y · 2 + 1) · 3 − 1; sample 1 (site 0): unchanged
    // by the table (row 0: 1, 0), then · 3 − 1.
    let device = Default::default();
    let c = config(HeadConfig {
        conditional_scaling_columns: vec!["site".into()],
        learnable_output_scale: true,
        ..Default::default()
    });
    let model = SequencePredictor::<B>::new(&c, &device);
    let mut sink = WeightSink::default();
    model.save(&mut sink);
    let mut map = sink.into_map();
    let mut scale = vec![1.0f32; 4 * 2];
    scale[2 * 2] = 2.0;
    scale[2 * 2 + 1] = 2.0;
    let mut bias = vec![0.0f32; 4 * 2];
    bias[2 * 2] = 1.0;
    bias[2 * 2 + 1] = 1.0;
    map.insert("output_scales.site.weight", vec![4, 2], scale);
    map.insert("output_biases.site.weight", vec![4, 2], bias);
    map.insert("output_scale", vec![2], vec![3.0, 3.0]);
    map.insert("output_bias", vec![2], vec![-1.0, -1.0]);
    let scaled = SequencePredictor::<B>::load(&map, &c, &device).unwrap();
    let ids = ids([1, 2, 1, 0], &device);
    // y: the same model with unit tables and scales.
    let raw = {
        let mut unit = map.clone();
        unit.insert("output_scales.site.weight", vec![4, 2], vec![1.0; 8]);
        unit.insert("output_biases.site.weight", vec![4, 2], vec![0.0; 8]);
        unit.insert("output_scale", vec![2], vec![1.0, 1.0]);
        unit.insert("output_bias", vec![2], vec![0.0, 0.0]);
        SequencePredictor::<B>::load(&unit, &c, &device).unwrap()
    };
    let y = values(
        raw.forward_with_categories(inputs(&device), None, Some(ids.clone()))
            .target_prediction,
    );
    let got = values(
        scaled
            .forward_with_categories(inputs(&device), None, Some(ids))
            .target_prediction,
    );
    let want = [
        (y[0] * 2.0 + 1.0) * 3.0 - 1.0,
        (y[1] * 2.0 + 1.0) * 3.0 - 1.0,
        y[2] * 3.0 - 1.0,
        y[3] * 3.0 - 1.0,
    ];
    assert!(max_diff(&got, &want) < 1e-5, "{got:?} vs {want:?}");
}

#[test]
fn softplus_output_is_finite_and_positive_far_from_zero() {
    // With output_scale 0 the pre-activation is output_bias: softplus(200) = 200 (the
    // naive ln(e^y + 1) is infinite) and softplus(-40) = e^-40 (the naive one is 0).
    let device = Default::default();
    let c = config(HeadConfig {
        learnable_output_scale: true,
        output_activation: OutputActivation::Softplus,
        ..Default::default()
    });
    let mut sink = WeightSink::default();
    SequencePredictor::<B>::new(&c, &device).save(&mut sink);
    let mut map = sink.into_map();
    map.insert("output_scale", vec![2], vec![0.0, 0.0]);
    map.insert("output_bias", vec![2], vec![200.0, -40.0]);
    let model = SequencePredictor::<B>::load(&map, &c, &device).unwrap();
    let got = values(
        model
            .forward_with_categories(inputs(&device), None, None)
            .target_prediction,
    );
    let tiny = (-40.0f64).exp() as f32;
    for sample in got.chunks(2) {
        assert_eq!(sample[0], 200.0, "{got:?}");
        assert!((sample[1] / tiny - 1.0).abs() < 1e-4, "{got:?}");
    }
}

#[test]
fn perceiver_ignores_empty_slots_unless_imported_from_the_reference() {
    // The same samples padded to 3 and to 5 ASV slots: aam's Perceiver masks the empty
    // slots out (same prediction); the reference's attends to them (it moves).
    let device = Default::default();
    for attends in [false, true] {
        let c = config(HeadConfig {
            categorical_fusion: CategoricalFusion::Perceiver,
            perceiver_attends_padding: attends,
            ..Default::default()
        });
        let model = perturbed(&c);
        let short = inputs(&device);
        let long = Tensor::cat(vec![short.clone(), Tensor::zeros([2, 2, 13], &device)], 1);
        let run = |t| {
            values(
                model
                    .forward_with_categories(t, None, Some(ids([1, 2, 2, 3], &device)))
                    .target_prediction,
            )
        };
        let d = max_diff(&run(short), &run(long));
        if attends {
            assert!(
                d > 1e-3,
                "the reference's Perceiver did not read the empty slots: {d}"
            );
        } else {
            assert!(d < 1e-5, "empty slots moved the masked Perceiver by {d}");
        }
    }
}
