//! A tiny model trained for a few steps on `moving-pictures`: the loss decreases, the
//! same seed gives the identical loss sequence, and `--resume` continues a run to the
//! same weights as an uninterrupted one.

use std::path::Path;

use std::sync::Arc;

use aam_data::{Dataset, SampleStream};
use aam_model::{CpuAutodiff, SequenceEncoder};
use aam_train::batch_order::epoch_batches;
use aam_train::{fit, AutoBatchSize, MemorySource, PrefetchOptions, TrainData, TrainOptions};
use burn::prelude::*;

mod common;
use common::{data, tiny_config, worst_difference};

static RUN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn options(epochs: usize) -> TrainOptions {
    TrainOptions {
        epochs,
        batch_size: 8,
        lr: 3e-3,
        warmup: Some(2),
        patience: None,
        seed: 7,
        progress: false,
        ..TrainOptions::default()
    }
}

/// Trains the tiny encoder for a 3-epoch run; `stop_after` interrupts it, `resume` continues it.
fn run(dir: &Path, stop_after: Option<usize>, resume: bool) -> aam_train::FitReport {
    run_with(dir, stop_after, resume, PrefetchOptions::default())
}

/// [`run`] with the given data pipeline.
fn run_with(
    dir: &Path,
    stop_after: Option<usize>,
    resume: bool,
    prefetch: PrefetchOptions,
) -> aam_train::FitReport {
    let opts = TrainOptions {
        stop_after_epochs: stop_after,
        prefetch,
        ..options(3)
    };
    try_run(dir, resume, &opts).unwrap()
}

/// Trains the tiny encoder with `opts`.
fn try_run(dir: &Path, resume: bool, opts: &TrainOptions) -> anyhow::Result<aam_train::FitReport> {
    try_run_on(dir, resume, opts, &data())
}

/// Trains the tiny encoder with `opts` on `data`.
fn try_run_on(
    dir: &Path,
    resume: bool,
    opts: &TrainOptions,
    data: &TrainData,
) -> anyhow::Result<aam_train::FitReport> {
    // The backend RNG is process-wide: runs in parallel test threads would share it.
    let _guard = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let config = common::encoder_checkpoint_config(tiny_config());
    let device = Default::default();
    CpuAutodiff::seed(&device, 7);
    let model = SequenceEncoder::<CpuAutodiff>::new(&tiny_config(), &device);
    fit::<CpuAutodiff, _>(model, data, opts, dir, &config, resume, &device)
}

/// [`data`] with its table streamed from the file `chunk_samples` samples at a time.
fn streamed_data(chunk_samples: usize) -> (TrainData, Arc<SampleStream>) {
    let mut d = data();
    let stream = SampleStream::open(&common::shared("table.biom"), chunk_samples)
        .unwrap()
        .select(&d.dataset.table.sample_ids)
        .unwrap();
    d.dataset = Dataset::new(
        stream.id_table(),
        d.dataset.tokens.max_bp,
        d.dataset.token_limit,
        d.dataset.policy,
        d.dataset.seed,
        d.dataset.distances.clone(),
        None,
    )
    .unwrap();
    let stream = Arc::new(stream);
    d.stream = Some(stream.clone());
    (d, stream)
}

#[test]
fn streamed_training_reads_chunk_by_chunk_and_one_chunk_equals_the_in_memory_run() {
    let opts = TrainOptions {
        prefetch: PrefetchOptions {
            workers: 2,
            depth: 3,
        },
        ..options(3)
    };
    let (whole, one, sevens) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let in_memory = try_run(whole.path(), false, &opts).unwrap();
    // One chunk holding every sample: the same batches as in memory, the same run.
    let (data_one, _) = streamed_data(10_000);
    let streamed = try_run_on(one.path(), false, &opts, &data_one).unwrap();
    assert_eq!(streamed.step_losses, in_memory.step_losses);
    assert_eq!(worst_difference(one.path(), whole.path()), None);

    // Every training sample once per epoch, batches of at most 8 + 1, and a batch reads
    // one chunk apart from samples of chunks holding a single training sample, whatever
    // the chunking (chunks of 1: every chunk holds one sample).
    for chunk_samples in [1, 2, 7] {
        let (d, stream) = streamed_data(chunk_samples);
        let train = &d.split.train;
        let train_in_chunk = |c: usize| train.iter().filter(|&&s| stream.chunk_of(s) == c).count();
        for epoch in 0..3 {
            let batches = epoch_batches(train, Some(&stream), 8, 7, epoch);
            let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
            seen.sort_unstable();
            let mut expected = train.clone();
            expected.sort_unstable();
            assert_eq!(seen, expected, "chunks of {chunk_samples}, epoch {epoch}");
            for b in &batches {
                assert!((2..=9).contains(&b.len()), "{b:?}");
                let mut shared: Vec<usize> = b
                    .iter()
                    .map(|&s| stream.chunk_of(s))
                    .filter(|&c| train_in_chunk(c) > 1)
                    .collect();
                shared.sort_unstable();
                shared.dedup();
                assert!(shared.len() <= 1, "batch {b:?} reads chunks {shared:?}");
            }
        }
    }
    let (data_7, stream) = streamed_data(7);
    let report = try_run_on(sevens.path(), false, &opts, &data_7).unwrap();
    assert_eq!(report.epochs.len(), 3);
    assert!(report.step_losses.iter().all(|l| l.is_finite()));
    assert!(report
        .epochs
        .iter()
        .all(|e| e.validation["loss"].is_finite()));
    // Each epoch reads every chunk at most once for training and once for validation
    // (batches in a random sample order would read about one chunk per sample).
    let n_chunks = data_7.dataset.table.n_samples().div_ceil(7);
    assert!(
        stream.chunks_read() <= 3 * 2 * n_chunks,
        "{} chunk reads for {n_chunks} chunks over 3 epochs",
        stream.chunks_read()
    );
}

#[test]
fn loss_decreases_and_same_seed_repeats_exactly_whatever_the_data_pipeline() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Batches built ahead by three workers, then on the training thread.
    let ahead = PrefetchOptions {
        workers: 3,
        depth: 4,
    };
    let inline = PrefetchOptions {
        workers: 0,
        depth: 1,
    };
    let first = run_with(a.path(), None, false, ahead);
    let second = run_with(b.path(), None, false, inline);
    assert_eq!(
        first.step_losses, second.step_losses,
        "same seed → identical loss sequence"
    );
    for e in first.epochs.iter().chain(&second.epochs) {
        assert!(
            (0.0..=1.0).contains(&e.data_wait_share) && e.data_wait_seconds >= 0.0,
            "epoch {}: data wait {} s, share {}",
            e.epoch,
            e.data_wait_seconds,
            e.data_wait_share
        );
    }
    assert_eq!(
        first.step_losses.len(),
        9,
        "25 training samples in batches of 8 (the single last one merged): 3 steps × 3 epochs"
    );
    let epoch_loss = |r: &aam_train::FitReport, e: usize| r.epochs[e].train["total"];
    assert!(
        epoch_loss(&first, 2) < epoch_loss(&first, 0),
        "training loss fell: {} → {}",
        epoch_loss(&first, 0),
        epoch_loss(&first, 2)
    );
    assert!(first
        .epochs
        .iter()
        .all(|e| e.validation["loss"].is_finite()));
    assert!(first.epochs[0].validation.contains_key("unifrac_r2"));
    for f in [
        "config.json",
        "model.safetensors",
        "last.safetensors",
        "resume.bin",
        "train_state.json",
        "metrics.jsonl",
    ] {
        assert!(a.path().join(f).exists(), "{f}");
    }
    assert_eq!(
        std::fs::read_to_string(a.path().join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    assert_eq!(
        worst_difference(a.path(), b.path()),
        None,
        "same seed → identical weights"
    );
}

#[test]
fn resume_reaches_the_same_weights_as_an_uninterrupted_run() {
    let (full, parts) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let whole = run(full.path(), None, false);
    let interrupted = run(parts.path(), Some(1), false);
    assert_eq!(interrupted.epochs.len(), 1);
    let resumed = run(parts.path(), None, true);
    assert_eq!(resumed.epochs.len(), 2);
    assert_eq!(resumed.step_losses, whole.step_losses[3..].to_vec());
    assert_eq!(
        worst_difference(parts.path(), full.path()),
        None,
        "resumed run → the uninterrupted run's weights"
    );
}

#[test]
fn auto_batch_size_takes_what_fits_and_resume_keeps_it() {
    let auto = |budget_mib: f64| TrainOptions {
        auto_batch_size: Some(AutoBatchSize {
            budget_mib: Some(budget_mib),
            target_effective_batch_size: Some(40),
            memory: MemorySource::Host,
        }),
        batch_size: 0, // ignored: chosen by the search
        ..options(2)
    };
    // A budget far above any step: every training sample in one batch, and the
    // accumulation that reaches 40 samples per step.
    let dir = tempfile::tempdir().unwrap();
    let report = try_run(
        dir.path(),
        false,
        &TrainOptions {
            stop_after_epochs: Some(1),
            ..auto(1e9)
        },
    )
    .unwrap();
    assert_eq!(
        report.step_losses.len(),
        1,
        "every sample in one batch, one step per epoch"
    );
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("train_state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["batch_size"], 25, "the 25 training samples");
    assert_eq!(state["grad_accum"], 2, "ceil(40 / 25)");
    // Resumed with another batch size: refused, naming the one to use.
    let err = try_run(dir.path(), true, &options(2))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--batch-size 25 --grad-accum 2"), "{err}");
    // Resumed with a budget nothing fits: the recorded choice is kept, no search runs.
    let resumed = try_run(dir.path(), true, &auto(1.0)).unwrap();
    assert_eq!(resumed.step_losses.len(), 1);
    // A fresh run with that budget is refused with the option to change.
    let err = try_run(tempfile::tempdir().unwrap().path(), false, &auto(1.0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--memory-budget-mib"), "{err}");
}

#[test]
fn augmentation_reaches_the_training_batches_reproducibly() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let augmented = TrainOptions {
        augmentation: Some("subset=0.5,substitution=0.05".parse().unwrap()),
        ..options(1)
    };
    let a = try_run(dirs[0].path(), false, &augmented).unwrap();
    let b = try_run(dirs[1].path(), false, &augmented).unwrap();
    let plain = try_run(dirs[2].path(), false, &options(1)).unwrap();
    // Same seed, same augmented batches; the plain run trains on other batches.
    assert_eq!(a.step_losses, b.step_losses);
    assert_ne!(a.step_losses, plain.step_losses);
    // The first step's loss is computed before any update: only the batch differs.
    assert_ne!(a.step_losses[0], plain.step_losses[0]);
    // Validation batches are never augmented: with a learning rate of 0 (weights never
    // change) the validation loss is the same with and without augmentation.
    let frozen = |aug: Option<aam_data::Augmentation>, dir: &Path| {
        let opts = TrainOptions {
            lr: 0.0,
            augmentation: aug,
            ..options(1)
        };
        try_run(dir, false, &opts).unwrap().epochs[0].validation["loss"]
    };
    let (c, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(
        frozen(augmented.augmentation, c.path()),
        frozen(None, d.path())
    );
}
