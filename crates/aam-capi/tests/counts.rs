//! A model with a count embedding through the C ABI: `aam_model_uses_counts` says so,
//! `aam_predict_tokens` refuses it with `AAM_STATUS_INVALID_ARGUMENT`, and
//! `aam_predict_tokens_counts` gives the embeddings of the Burn model (the independent
//! implementation) within 1e-4; other counts give other embeddings. A model without a
//! count embedding reports 0 and ignores counts.

mod common;

use std::ptr;

use aam::model::{aam_model_free, aam_model_load_from_memory, aam_model_uses_counts, AamModel};
use aam::predictions::{
    aam_predict_tokens, aam_predict_tokens_counts, aam_predictions_embeddings,
    aam_predictions_free, AamPredictions,
};
use aam::status::AamStatus;
use aam_config::{CheckpointConfig, DataSettings, ModelKind, FORMAT_VERSION};
use aam_model::{
    AamModel as _, CountEmbeddingMethod, CpuBackend, ModelConfig, SequencePredictor, WeightSink,
};
use burn::prelude::*;
use burn::tensor::TensorData;

type B = CpuBackend;

const DTYPE_I64: u32 = 1;

fn config(count_embedding: bool) -> ModelConfig {
    ModelConfig {
        count_embedding,
        count_embedding_method: CountEmbeddingMethod::Film,
        ..common::tiny_config()
    }
}

/// The exported `model.onnx` bytes of a fresh predictor, and the predictor.
fn export(count_embedding: bool) -> (Vec<u8>, SequencePredictor<B>) {
    let model_config = config(count_embedding);
    let model = SequencePredictor::<B>::new(&model_config, &Default::default());
    let mut sink = WeightSink::default();
    model.save_weights(&mut sink);
    let checkpoint = CheckpointConfig {
        format_version: FORMAT_VERSION,
        kind: ModelKind::Predictor,
        data: DataSettings {
            max_bp: 10,
            token_limit: 8,
            token_limit_policy: Default::default(),
            rarefy_depth: None,
        },
        model: model_config,
        target: None,
    };
    let bytes = aam_export::onnx_bytes(&checkpoint, &sink.into_map(), 17).unwrap();
    (bytes, model)
}

/// Tokens `[2, 3, 11]`: START + a few nucleotides per slot, the last slot of sample 1
/// empty; counts `[2, 3]`.
fn inputs() -> (Vec<i64>, Vec<f32>) {
    let mut tokens = vec![0i64; 2 * 3 * 11];
    for (slot, len) in [(0, 10), (1, 4), (2, 7), (3, 10), (4, 6)] {
        tokens[slot * 11] = 5;
        for k in 1..=len {
            tokens[slot * 11 + k] = 1 + ((slot * 7 + k * 3) % 4) as i64;
        }
    }
    (tokens, vec![120.0, 30.0, 2.0, 500.0, 1.0, 0.0])
}

fn load(bytes: &[u8]) -> *mut AamModel {
    let mut model = ptr::null_mut();
    let status =
        unsafe { aam_model_load_from_memory(bytes.as_ptr(), bytes.len(), ptr::null(), &mut model) };
    assert_eq!(status, AamStatus::Ok);
    model
}

fn embeddings(p: *mut AamPredictions) -> Vec<f32> {
    let (mut values, mut dim) = (ptr::null(), 0usize);
    assert_eq!(
        unsafe { aam_predictions_embeddings(p, &mut values, &mut dim) },
        AamStatus::Ok
    );
    let v = unsafe { std::slice::from_raw_parts(values, 2 * dim) }.to_vec();
    unsafe { aam_predictions_free(p) };
    v
}

fn predict_counts(model: *mut AamModel, tokens: &[i64], counts: &[f32]) -> Vec<f32> {
    let mut out = ptr::null_mut();
    let status = unsafe {
        aam_predict_tokens_counts(
            model,
            tokens.as_ptr().cast(),
            DTYPE_I64,
            2,
            3,
            11,
            counts.as_ptr(),
            &mut out,
        )
    };
    assert_eq!(status, AamStatus::Ok);
    embeddings(out)
}

#[test]
fn a_count_model_needs_and_uses_the_counts() {
    let (bytes, burn_model) = export(true);
    let model = load(&bytes);
    let mut uses = 9u8;
    assert_eq!(
        unsafe { aam_model_uses_counts(model, &mut uses) },
        AamStatus::Ok
    );
    assert_eq!(uses, 1);
    let (tokens, counts) = inputs();
    let mut out = ptr::null_mut();
    let status =
        unsafe { aam_predict_tokens(model, tokens.as_ptr().cast(), DTYPE_I64, 2, 3, 11, &mut out) };
    assert_eq!(status, AamStatus::InvalidArgument);
    assert!(out.is_null());

    let got = predict_counts(model, &tokens, &counts);
    let device = Default::default();
    let want: Vec<f32> = burn_model
        .forward_all(
            Tensor::<B, 3, Int>::from_data(TensorData::new(tokens.clone(), [2, 3, 11]), &device),
            Some(Tensor::<B, 3>::from_data(
                TensorData::new(counts.clone(), [2, 3, 1]),
                &device,
            )),
        )
        .embeddings
        .into_data()
        .to_vec()
        .unwrap();
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "C ABI vs Burn: {worst}");

    let doubled: Vec<f32> = counts.iter().map(|c| c * 2.0).collect();
    let other = predict_counts(model, &tokens, &doubled);
    let moved = got
        .iter()
        .zip(&other)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        moved > 1e-3,
        "the counts did not reach the output ({moved})"
    );

    let negative = vec![-1.0f32; 6];
    let mut out = ptr::null_mut();
    let status = unsafe {
        aam_predict_tokens_counts(
            model,
            tokens.as_ptr().cast(),
            DTYPE_I64,
            2,
            3,
            11,
            negative.as_ptr(),
            &mut out,
        )
    };
    assert_eq!(status, AamStatus::InvalidArgument);
    unsafe { aam_model_free(model) };
}

#[test]
fn a_model_without_counts_reports_zero_and_ignores_them() {
    let (bytes, _) = export(false);
    let model = load(&bytes);
    let mut uses = 9u8;
    assert_eq!(
        unsafe { aam_model_uses_counts(model, &mut uses) },
        AamStatus::Ok
    );
    assert_eq!(uses, 0);
    let (tokens, counts) = inputs();
    let mut out = ptr::null_mut();
    assert_eq!(
        unsafe { aam_predict_tokens(model, tokens.as_ptr().cast(), DTYPE_I64, 2, 3, 11, &mut out) },
        AamStatus::Ok
    );
    let plain = embeddings(out);
    assert_eq!(predict_counts(model, &tokens, &counts), plain);
    unsafe { aam_model_free(model) };
}
