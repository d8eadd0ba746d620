//! Data parallel training (`fit_data_parallel`): the same global batches split across
//! two devices (here two replicas on Burn's one ndarray CPU device, which exercises the
//! sharding, the gathered pairwise UniFrac loss and the gradient reduction) train to the
//! same losses and weights as one device.

use std::path::Path;

use aam_model::{CpuAutodiff, ModelConfig, SequenceEncoder};
use aam_train::{fit_data_parallel, FitReport, TrainOptions};
use burn::backend::ndarray::NdArrayDevice;
use burn::prelude::*;

mod common;
use common::{data, encoder_checkpoint_config, tiny_config, worst_difference};

/// Two or three replicas versus one: largest weight difference after 9 steps. Measured
/// here: 2.1e-6 and 1.9e-6 (only the order of float sums differs).
const WEIGHT_TOLERANCE: f32 = 1e-5;

static RUN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(dir: &Path, devices: &[NdArrayDevice], batch_size: usize) -> FitReport {
    // The backend RNG is process-wide: runs in parallel test threads would share it.
    let _guard = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let config = ModelConfig {
        dropout: 0.0,
        ..tiny_config()
    };
    let opts = TrainOptions {
        epochs: 3,
        batch_size,
        lr: 3e-3,
        warmup: Some(2),
        patience: None,
        seed: 7,
        progress: false,
        ..TrainOptions::default()
    };
    let device = devices[0];
    CpuAutodiff::seed(&device, 7);
    let model = SequenceEncoder::<CpuAutodiff>::new(&config, &device);
    let checkpoint = encoder_checkpoint_config(config);
    fit_data_parallel::<CpuAutodiff, _>(
        model,
        &data(),
        &opts,
        dir,
        &checkpoint,
        false,
        devices,
        &mut aam_train::NoTracking,
    )
        .unwrap()
}

#[test]
fn two_devices_train_like_one_on_the_same_global_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two, three) = (
        tmp.path().join("one"),
        tmp.path().join("two"),
        tmp.path().join("three"),
    );
    let cpu = NdArrayDevice::Cpu;
    let single = run(&one, &[cpu], 8);
    let split = run(&two, &[cpu, cpu], 8);
    // Three shards of 3, 3 and 2 samples (the last batch of each epoch is smaller).
    let uneven = run(&three, &[cpu, cpu, cpu], 8);
    assert_eq!(single.step_losses.len(), 9);
    for other in [&split, &uneven] {
        assert_eq!(other.step_losses.len(), single.step_losses.len());
        assert_eq!(other.epochs.len(), single.epochs.len());
        for (a, b) in single.step_losses.iter().zip(&other.step_losses) {
            assert!((a - b).abs() <= 1e-5 * a.abs(), "{a} vs {b}");
        }
        let (a, b) = (single.epochs.last().unwrap(), other.epochs.last().unwrap());
        assert!((a.validation["loss"] - b.validation["loss"]).abs() < 1e-5);
    }
    for dir in [&two, &three] {
        if let Some((name, diff)) = worst_difference(&one, dir) {
            eprintln!("largest weight difference to one device: {diff:e} ({name})");
            assert!(diff < WEIGHT_TOLERANCE, "{name} differs by {diff}");
        }
    }
}

#[test]
fn the_unifrac_loss_spans_devices() {
    // Four devices with one sample each: a pairwise loss computed per device would have
    // no pair at all; the gathered loss equals the one-device loss over all 6 pairs.
    let tmp = tempfile::tempdir().unwrap();
    let cpu = NdArrayDevice::Cpu;
    let single = run(&tmp.path().join("a"), &[cpu], 4);
    let split = run(&tmp.path().join("b"), &[cpu, cpu, cpu, cpu], 4);
    let (a, b) = (&single.epochs[0].train, &split.epochs[0].train);
    assert!(
        (a["unifrac"] - b["unifrac"]).abs() <= 1e-6 * a["unifrac"],
        "{a:?} vs {b:?}"
    );
}
