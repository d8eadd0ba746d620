//! `--streaming` training on a generated table larger than the memory budget: an epoch
//! (training and validation) streamed 200 samples at a time stays within the budget
//! above the resident memory before it, while the table alone takes more than the budget
//! in memory. Alone in its test binary, so no other test moves the process's peak.

use std::path::Path;
use std::sync::Arc;

use aam_data::biom::{write_hdf5, Hdf5Layout};
use aam_data::process_memory::{peak_rss_mib, reset_peak_rss};
use aam_data::{split_samples, Dataset, FeatureTable, SampleStream, TokenLimitPolicy};
use aam_model::{CpuAutodiff, ModelConfig, SequenceEncoder};
use aam_train::{fit, PrefetchOptions, TrainData, TrainOptions};
use burn::prelude::*;

mod common;
use common::{encoder_checkpoint_config, tiny_config};

/// `n_samples` samples of `per_sample` ASVs each, drawn from `n_asv` 24-bp ASVs.
fn large_table(n_samples: usize, n_asv: usize, per_sample: usize) -> FeatureTable {
    let asvs: Vec<String> = (0..n_asv)
        .map(|o| {
            (0..12)
                .map(|k| ['A', 'C', 'G', 'T'][(o >> (2 * k)) & 3])
                .collect::<String>()
                + "ACGTACGTACGT"
        })
        .collect();
    let mut triplets = Vec::with_capacity(n_samples * per_sample);
    for s in 0..n_samples {
        for k in 0..per_sample {
            let o = (s * 7 + k * 2) % n_asv;
            triplets.push((s as u32, o as u32, (1 + (s + k) % 50) as f64));
        }
    }
    FeatureTable::from_triplets(
        Path::new("generated"),
        (0..n_samples).map(|s| format!("S{s}")).collect(),
        asvs,
        triplets,
    )
    .unwrap()
}

const TABLE_VAR: &str = "AAM_STREAMED_TABLE";
const TEST_NAME: &str = "a_streamed_epoch_stays_within_the_budget_the_whole_table_exceeds";
const N_SAMPLES: usize = 10_000;
const PER_SAMPLE: usize = 1_000;

/// Writes the table, then trains on it in a child process of this test binary: the
/// memory that building the table took and freed would otherwise be reused by the
/// training without showing in its peak.
#[test]
fn a_streamed_epoch_stays_within_the_budget_the_whole_table_exceeds() {
    if let Some(path) = std::env::var_os(TABLE_VAR) {
        return train_streamed(Path::new(&path));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.biom");
    write_hdf5(
        &path,
        &large_table(N_SAMPLES, 2_000, PER_SAMPLE),
        Hdf5Layout::default(),
    )
    .unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--test-threads=1", "--nocapture"])
        .env(TABLE_VAR, &path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    eprintln!("{text}");
    assert!(
        out.status.success(),
        "the streamed training failed:\n{text}"
    );
    assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
}

/// One epoch on the table at `path`, streamed 200 samples at a time, within the budget.
fn train_streamed(path: &Path) {
    let (n_samples, per_sample) = (N_SAMPLES, PER_SAMPLE);
    // The run's own memory (Burn, the model, the prefetch worker, checkpoints) and two
    // decoded chunks.
    let budget_mib = 60.0;
    // The counts and ASV indices of the whole table, without any other bookkeeping.
    let whole_table_mib = (n_samples * per_sample * 12) as f64 / (1 << 20) as f64;
    assert!(whole_table_mib > 1.5 * budget_mib);

    let config = ModelConfig {
        max_bp: 24,
        token_limit: 4,
        ..tiny_config()
    };
    let stream = SampleStream::open(path, 200).unwrap();
    let dataset = Dataset::new(
        stream.id_table(),
        config.max_bp,
        config.token_limit,
        TokenLimitPolicy::Abundance,
        1,
        None,
        None,
    )
    .unwrap();
    let stream = Arc::new(stream);
    let data = TrainData {
        split: split_samples(n_samples, 0.1, 1, None, None).unwrap(),
        dataset,
        stream: Some(stream.clone()),
        faith_pd: None,
        target_kind: None,
        n_classes: 0,
        target_mean: 0.0,
        target_std: 1.0,
        target_transform: Default::default(),
        sample_weights: None,
        target_offset_scale: None,
        target_column: String::new(),
        more_targets: Vec::new(),
        categorical_ids: None,
    };
    let opts = TrainOptions {
        epochs: 1,
        batch_size: 16,
        lr: 1e-3,
        seed: 3,
        progress: false,
        prefetch: PrefetchOptions {
            workers: 1,
            depth: 2,
        },
        ..TrainOptions::default()
    };
    let device = Default::default();
    CpuAutodiff::seed(&device, 3);
    let model = SequenceEncoder::<CpuAutodiff>::new(&config, &device);
    let out = tempfile::tempdir().unwrap();
    reset_peak_rss();
    let Some(before) = peak_rss_mib() else {
        assert!(!cfg!(target_os = "linux"), "Linux reports the peak RSS");
        return; // elsewhere: no memory report
    };
    let report = fit::<CpuAutodiff, _>(
        model,
        &data,
        &opts,
        out.path(),
        &encoder_checkpoint_config(config),
        false,
        &device,
    )
    .unwrap();
    let peak = peak_rss_mib().unwrap();
    eprintln!(
        "streamed one epoch of {n_samples} samples ({whole_table_mib:.0} MiB of counts and indices in memory) in chunks of 200: RSS {before:.0} MiB before, peak {peak:.0} MiB (+{:.0} MiB); {} chunk reads; the epoch reports a peak RSS of {:?} MiB",
        peak - before,
        stream.chunks_read(),
        report.epochs[0].peak_rss_mib
    );
    assert!(report.step_losses.iter().all(|l| l.is_finite()));
    assert_eq!(
        report.step_losses.len(),
        aam_train::batch_order::epoch_batches(&data.split.train, Some(&stream), 16, 3, 0).len()
    );
    // Every chunk read once for training and once for validation.
    assert!(
        stream.chunks_read() <= 2 * n_samples.div_ceil(200),
        "{} chunk reads",
        stream.chunks_read()
    );
    assert!(
        peak - before < budget_mib,
        "streamed training took {:.0} MiB over a {budget_mib} MiB budget",
        peak - before
    );
}
