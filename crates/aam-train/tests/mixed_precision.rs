//! `--mixed-precision` on the CPU (Burn's Flex backend, which has bf16/fp16 tensors):
//! a fixed short pretraining run in bf16 and in fp16 (with dynamic loss scaling) ends
//! close to the same run in f32, the checkpoints hold f32 weights, and fp16 steps whose
//! gradients overflow are skipped with the scale halved.

use std::path::Path;

use aam_model::{
    AamModel, CpuFlexAutodiff, MixedPrecision, ModelConfig, SequenceEncoder, WeightSink,
};
use aam_train::{checkpoint, fit, FitReport, LossScaler, TrainOptions};
use burn::prelude::*;

mod common;
use common::data;

/// Largest relative difference of a training-step loss between a half-precision run and
/// the f32 run (9 steps). Measured on this run: bf16 2.4e-4, fp16 1e-5 (a D = 16 model;
/// wider models accumulate more rounding, hence the margin).
const STEP_LOSS_TOLERANCE: f64 = 0.01;

static RUN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn tiny_config(mixed_precision: MixedPrecision) -> ModelConfig {
    ModelConfig {
        dropout: 0.0,
        mixed_precision,
        ..common::tiny_config()
    }
}

/// Three epochs (9 optimizer steps) of the tiny encoder from the same initial weights.
fn run(dir: &Path, mixed_precision: MixedPrecision, loss_scaling: Option<LossScaler>) -> FitReport {
    run_with(dir, mixed_precision, loss_scaling, |m| m).unwrap()
}

/// [`run`] with the initial model changed by `modify`.
fn run_with(
    dir: &Path,
    mixed_precision: MixedPrecision,
    loss_scaling: Option<LossScaler>,
    modify: impl FnOnce(SequenceEncoder<CpuFlexAutodiff>) -> SequenceEncoder<CpuFlexAutodiff>,
) -> anyhow::Result<FitReport> {
    let _guard = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let model_config = tiny_config(mixed_precision);
    let config = common::encoder_checkpoint_config(model_config.clone());
    let opts = TrainOptions {
        epochs: 3,
        batch_size: 8,
        lr: 3e-3,
        warmup: Some(2),
        patience: None,
        seed: 7,
        progress: false,
        loss_scaling,
        ..TrainOptions::default()
    };
    let device = Default::default();
    CpuFlexAutodiff::seed(&device, 7);
    let model = modify(SequenceEncoder::<CpuFlexAutodiff>::new(
        &model_config,
        &device,
    ));
    fit::<CpuFlexAutodiff, _>(model, &data(), &opts, dir, &config, false, &device)
}

fn max_relative_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1e-6))
        .fold(0.0, f64::max)
}

fn saved_weights(dir: &Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let m: SequenceEncoder<CpuFlexAutodiff> = checkpoint::load_model(
        dir,
        "last.safetensors",
        &tiny_config(MixedPrecision::None),
        &Default::default(),
    )
    .unwrap();
    let mut sink = WeightSink::default();
    m.save_weights(&mut sink);
    sink.entries
}

#[test]
fn bf16_and_fp16_runs_end_within_tolerance_of_f32() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| tmp.path().join(name);
    let f32_run = run(&dir("f32"), MixedPrecision::None, None);
    let bf16_run = run(&dir("bf16"), MixedPrecision::Bf16, None);
    let fp16_run = run(
        &dir("fp16"),
        MixedPrecision::Fp16,
        Some(LossScaler::default()),
    );
    assert_eq!(f32_run.step_losses.len(), 9);
    // The half-precision runs really computed in half precision.
    assert_ne!(bf16_run.step_losses, f32_run.step_losses);
    assert_ne!(fp16_run.step_losses, f32_run.step_losses);
    let bf16 = max_relative_difference(&bf16_run.step_losses, &f32_run.step_losses);
    let fp16 = max_relative_difference(&fp16_run.step_losses, &f32_run.step_losses);
    eprintln!("max relative step-loss difference to f32: bf16 {bf16:.5}, fp16 {fp16:.5}");
    assert!(bf16 < STEP_LOSS_TOLERANCE, "bf16 {bf16}");
    assert!(fp16 < STEP_LOSS_TOLERANCE, "fp16 {fp16}");
    // No overflow at the default scale on this run, so no step was skipped.
    let last = fp16_run.epochs.last().unwrap();
    assert_eq!(last.skipped_steps, Some(0));
    assert_eq!(last.loss_scale, Some(65_536.0));
    assert_eq!(bf16_run.epochs.last().unwrap().loss_scale, None);
    // The checkpoint holds finite f32 master weights, equal in layout to the f32 run's.
    let (a, b) = (saved_weights(&dir("bf16")), saved_weights(&dir("f32")));
    assert_eq!(a.len(), b.len());
    for ((name, shape, values), (name_f32, shape_f32, _)) in a.iter().zip(&b) {
        assert_eq!((name, shape), (name_f32, shape_f32));
        assert!(values.iter().all(|v| v.is_finite()), "{name}");
    }
}

#[test]
fn fp16_overflow_skips_the_step_and_halves_the_scale() {
    let tmp = tempfile::tempdir().unwrap();
    // 2⁴⁰ times any gradient of order 1e-7 or more is beyond fp16's 65,504.
    let start = 2f64.powi(40);
    let report = run(
        tmp.path(),
        MixedPrecision::Fp16,
        Some(LossScaler::new(start, 1_000)),
    );
    let last = report.epochs.last().unwrap();
    let skipped = last.skipped_steps.unwrap();
    let scale = last.loss_scale.unwrap();
    assert!(skipped >= 1, "no step was skipped");
    // Every skipped step halved the scale, and no clean run was long enough to grow it.
    assert_eq!(scale, start / 2f64.powi(skipped as i32));
    assert!(report.step_losses.iter().all(|l| l.is_finite()));
    let state: checkpoint::TrainState =
        aam_data::files::read_json(&tmp.path().join("train_state.json")).unwrap();
    assert_eq!(state.loss_scaler.unwrap().skipped_steps, skipped);
}

#[test]
fn fp16_forward_overflow_skips_steps_and_stops_when_every_batch_overflows() {
    // Query and key projections of the first nucleotide layer scaled by 10³: their
    // products pass fp16's 65,504 (the scores become inf and the loss NaN) but stay far
    // inside f32's range.
    let amplify = |mut m: SequenceEncoder<CpuFlexAutodiff>| {
        let attention = &mut m.sample_encoder.asv_encoder.transformer.layers[0].self_attn;
        for lin in [&mut attention.query, &mut attention.key] {
            lin.weight = burn::module::Param::from_tensor(Tensor::from_inner(
                lin.weight.val().inner().mul_scalar(1e3),
            ));
        }
        m
    };
    let f32_dir = tempfile::tempdir().unwrap();
    let report = run_with(f32_dir.path(), MixedPrecision::None, None, amplify).unwrap();
    assert!(report.step_losses.iter().all(|l| l.is_finite()));
    let tmp = tempfile::tempdir().unwrap();
    let e = run_with(
        tmp.path(),
        MixedPrecision::Fp16,
        Some(LossScaler::new(65_536.0, 2_000)),
        amplify,
    )
    .unwrap_err()
    .to_string();
    // An epoch's worth of steps (3 batches) skipped in a row, then the run stops with
    // the fix instead of training on nothing.
    assert!(
        e.contains("the last 3 optimizer steps (up to epoch 1) were skipped")
            && e.contains("overflowed fp16")
            && e.contains("bf16"),
        "{e}"
    );
}
