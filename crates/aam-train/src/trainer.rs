//! The training loop shared by pretraining (encoder) and fine-tuning (predictor).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use aam_data::{Batch, Dataset, SampleStream, Split, TargetKind};
use aam_model::{AamModel, ModelOutputs};
use anyhow::{bail, Context, Result};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsAccumulator, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::asv_embedding_cache::AsvEmbeddingCache;
use crate::batch_size::{self, AutoBatchSize, MemoryMeter};
use crate::checkpoint::{self, CheckpointConfig, TrainState};
use crate::data_parallel;
use crate::loss_scale::unscale_gradients;
use crate::losses;
use crate::masking::{mask_nucleotides, MaskedTokens};
use crate::metrics;
use crate::options::{OptimizerKind, TrainOptions};
use crate::prefetch::run_in_order;
use crate::resume_file;
use crate::schedule::Schedule;
use crate::tracking::{NoTracking, RunStart, Tracker};

/// What the run trains on, beyond the dataset.
#[derive(Debug, Clone)]
pub struct TrainData {
    /// Table (aligned), tokens, distances and targets. For regression the targets are
    /// standardized with `target_mean`/`target_std`; for classification they are class indices.
    /// With `stream`, the table holds the sample IDs only ([`SampleStream::id_table`]).
    pub dataset: Dataset,
    /// `--streaming`: the samples' ASVs and counts, read from the BIOM file a chunk of
    /// samples at a time as batches need them; each epoch then visits the chunks in a
    /// random order and the samples of a chunk in a random order. `None`: all in
    /// `dataset`.
    pub stream: Option<Arc<SampleStream>>,
    /// Train/validation split (positions in the dataset's table).
    pub split: Split,
    /// Standardized Faith PD per table sample (faith_pd encoder type).
    pub faith_pd: Option<Vec<f32>>,
    /// Target kind, if fine-tuning.
    pub target_kind: Option<TargetKind>,
    /// Number of classes (classification).
    pub n_classes: usize,
    /// Mean and std used to standardize regression targets.
    pub target_mean: f64,
    /// See `target_mean`.
    pub target_std: f64,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub step: usize,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Mean training loss and its terms.
    pub train: BTreeMap<String, f64>,
    /// Validation loss, its terms and metrics.
    pub validation: BTreeMap<String, f64>,
    /// Wall time of the epoch, s.
    pub seconds: f64,
    /// Training throughput, samples/s.
    pub samples_per_second: f64,
    /// Time the training steps waited for their batches, s (building them, when
    /// `--data-workers 0`).
    pub data_wait_seconds: f64,
    /// `data_wait_seconds` as a share of the epoch's training time (0–1).
    pub data_wait_share: f64,
    /// Peak resident memory of the process so far, MiB (Linux; `None` elsewhere).
    pub peak_rss_mib: Option<f64>,
    /// fp16 loss scale at the end of the epoch (runs with loss scaling only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<f64>,
    /// Optimizer steps skipped for overflowed gradients so far in the run (runs with
    /// loss scaling only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_steps: Option<usize>,
}

/// Summary of a finished run.
#[derive(Debug, Clone)]
pub struct FitReport {
    /// Every epoch's record (this invocation only).
    pub epochs: Vec<EpochRecord>,
    /// Training loss of every optimizer step (this invocation only).
    pub step_losses: Vec<f64>,
    /// Best validation loss and its epoch.
    pub best: (f64, usize),
}

pub(crate) struct Tensors<B: Backend> {
    pub(crate) tokens: Tensor<B, 3, Int>,
    /// `tokens` before nucleotide masking, when masked: what the k-mer embedding reads.
    pub(crate) unmasked: Option<Tensor<B, 3, Int>>,
    counts: Tensor<B, 2>,
    asv_mask: Tensor<B, 2>,
    unifrac: Option<Tensor<B, 2>>,
    targets: Option<Vec<f32>>,
    nuc_targets: Option<(Tensor<B, 3, Int>, Tensor<B, 3>)>,
    faith: Option<Tensor<B, 2>>,
}

impl<B: Backend> Tensors<B> {
    /// The read counts as the model takes them, `[batch, n_asv, 1]` (read only by a
    /// model with a count embedding).
    pub(crate) fn model_counts(&self) -> Tensor<B, 3> {
        self.counts.clone().unsqueeze_dim(2)
    }

    /// The model's forward pass on this batch; with nucleotide masking the k-mer
    /// embedding reads the unmasked tokens ([`AamModel::forward_masked`]).
    pub(crate) fn forward<M: AamModel<B>>(&self, model: &M) -> ModelOutputs<B> {
        model.forward_masked(
            self.tokens.clone(),
            self.unmasked.clone(),
            Some(self.model_counts()),
        )
    }
}

/// A batch as built on a data worker: host arrays only, so it crosses threads.
pub(crate) struct HostBatch {
    /// Table positions of the batch's samples.
    pub(crate) samples: Vec<usize>,
    pub(crate) batch: Batch,
    /// The masked-nucleotide input and targets, when the nucleotide loss is on.
    pub(crate) masked: Option<MaskedTokens>,
}

/// Builds the batch of `samples` (epoch `epoch` of the random token-limit policy) and,
/// with `mask = Some((ratio, seed))`, its masked-nucleotide input. Errors: a streamed
/// chunk that cannot be read.
pub(crate) fn host_batch(
    data: &TrainData,
    samples: &[usize],
    epoch: u64,
    mask: Option<(f64, u64)>,
    augmentation: Option<(&aam_data::Augmentation, u64)>,
) -> Result<HostBatch> {
    let batch = match (&data.stream, augmentation) {
        (Some(stream), _) => stream.batch(&data.dataset, samples, None, epoch, augmentation)?,
        (None, Some((a, seed))) => data.dataset.augmented_batch(samples, None, epoch, a, seed),
        (None, None) => data.dataset.batch(samples, None, epoch),
    };
    let masked = mask.map(|(ratio, seed)| mask_nucleotides(&batch.tokens, ratio, seed));
    Ok(HostBatch {
        samples: samples.to_vec(),
        batch,
        masked,
    })
}

pub(crate) fn to_tensors<B: Backend>(
    host: &HostBatch,
    faith: Option<&[f32]>,
    device: &B::Device,
) -> Tensors<B> {
    let (batch, samples) = (&host.batch, &host.samples);
    let (b, s, l) = batch.tokens.dim();
    let int3 = |a: &ndarray::Array3<i64>| {
        Tensor::<B, 3, Int>::from_data(
            TensorData::new(a.iter().copied().collect::<Vec<_>>(), [b, s, l]),
            device,
        )
    };
    let (tokens, unmasked, nuc_targets) = match &host.masked {
        Some(m) => {
            let mask_t = Tensor::<B, 3>::from_data(
                TensorData::new(m.mask.iter().copied().collect::<Vec<_>>(), [b, s, l]),
                device,
            );
            (int3(&m.tokens), Some(int3(&batch.tokens)), Some((int3(&m.targets), mask_t)))
        }
        None => (int3(&batch.tokens), None, None),
    };
    let f2 = |v: Vec<f32>, shape: [usize; 2]| {
        Tensor::<B, 2>::from_data(TensorData::new(v, shape), device)
    };
    Tensors {
        tokens,
        unmasked,
        counts: f2(batch.counts.iter().copied().collect(), [b, s]),
        asv_mask: f2(
            batch
                .asv_mask
                .iter()
                .map(|&m| if m { 1.0 } else { 0.0 })
                .collect(),
            [b, s],
        ),
        unifrac: batch
            .unifrac
            .as_ref()
            .map(|u| f2(u.iter().copied().collect(), [b, b])),
        targets: batch.targets.as_ref().map(|t| t.to_vec()),
        nuc_targets,
        faith: faith.map(|f| f2(samples.iter().map(|&i| f[i]).collect(), [b, 1])),
    }
}

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    f64::from(t.into_scalar().elem::<f32>())
}

/// Computes the weighted total loss and its terms.
/// Index of the largest of `v` (the last on ties), 0 when empty: a classifier's class.
fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// The training metric of an epoch from the target predictions `preds` (one row per
/// training sample, as trained) and their targets `truth`: `accuracy` for a classifier
/// (argmax of the log-probabilities), `r2` for a regressor (on the standardized scale, to
/// which R² is invariant); `None` without a target or predictions.
pub(crate) fn training_metric(
    kind: Option<TargetKind>,
    preds: &[Vec<f32>],
    truth: &[f32],
) -> Option<(&'static str, f64)> {
    if preds.is_empty() || preds.len() != truth.len() {
        return None;
    }
    match kind? {
        TargetKind::Categorical => {
            let p: Vec<usize> = preds.iter().map(|v| argmax(v)).collect();
            let t: Vec<usize> = truth.iter().map(|&v| v as usize).collect();
            Some(("accuracy", metrics::accuracy(&p, &t)))
        }
        TargetKind::Numeric => {
            let p: Vec<f64> = preds.iter().map(|v| f64::from(v[0])).collect();
            let t: Vec<f64> = truth.iter().map(|&v| f64::from(v)).collect();
            Some(("r2", metrics::r2(&p, &t)))
        }
    }
}

pub(crate) fn loss_terms<B: Backend>(
    out: &ModelOutputs<B>,
    t: &Tensors<B>,
    data: &TrainData,
    opts: &TrainOptions,
    class_weights: Option<&Tensor<B, 1>>,
) -> (Tensor<B, 1>, BTreeMap<String, f64>) {
    let device = out.embeddings.device();
    let mut total = Tensor::<B, 1>::zeros([1], &device);
    let mut parts = BTreeMap::new();
    let w = &opts.weights;
    let mut add = |name: &str, weight: f64, l: Tensor<B, 1>, total: &mut Tensor<B, 1>| {
        parts.insert(name.to_string(), scalar(l.clone()));
        *total = total.clone() + l.mul_scalar(weight);
    };
    if w.unifrac > 0.0 {
        if let Some(u) = &t.unifrac {
            add(
                "unifrac",
                w.unifrac,
                losses::unifrac_loss(out.embeddings.clone(), u.clone(), opts.temperature),
                &mut total,
            );
        }
    }
    if let (Some(logits), Some((targets, mask))) = (&out.nuc_predictions, &t.nuc_targets) {
        add(
            "nucleotide",
            w.nucleotide,
            losses::nucleotide_loss(logits.clone(), targets.clone(), mask.clone()),
            &mut total,
        );
    }
    if let (Some(pred), Some(f)) = (&out.base_prediction, &t.faith) {
        add(
            "faith_pd",
            w.faith_pd,
            (pred.clone() - f.clone()).powf_scalar(2.0).mean(),
            &mut total,
        );
    }
    if let (Some(pred), Some(y), Some(kind)) =
        (&out.target_prediction, &t.targets, data.target_kind)
    {
        let l = match kind {
            TargetKind::Numeric => {
                let y = Tensor::<B, 1>::from_data(TensorData::new(y.clone(), [y.len()]), &device);
                losses::regression_loss(pred.clone(), y, opts.huber)
            }
            TargetKind::Categorical => {
                let y = Tensor::<B, 1, Int>::from_data(
                    TensorData::new(y.iter().map(|&v| v as i64).collect::<Vec<_>>(), [y.len()]),
                    &device,
                );
                losses::classification_loss(pred.clone(), y, class_weights.cloned())
            }
        };
        add("target", w.target, l, &mut total);
    }
    if w.count > 0.0 {
        if let Some(cp) = &out.count_prediction {
            add(
                "count",
                w.count,
                losses::count_loss(cp.clone(), t.counts.clone(), t.asv_mask.clone()),
                &mut total,
            );
        }
    }
    parts.insert("total".into(), scalar(total.clone()));
    (total, parts)
}

/// Batches of `samples` (in the given order) of at most `batch_size`, merging a
/// trailing batch of one into the previous one (pairwise losses need two samples).
pub fn batches(samples: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = samples
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    if out.len() > 1 && out.last().is_some_and(|b| b.len() == 1) {
        let last = out.pop().expect("non-empty");
        out.last_mut().expect("non-empty").extend(last);
    }
    out
}

fn epoch_order(train: &[usize], seed: u64, epoch: usize) -> Vec<usize> {
    let mut order = train.to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_0000_0000);
    rng.set_stream(epoch as u64);
    order.shuffle(&mut rng);
    order
}

/// The batches of an epoch over `train`: [`batches`] of the shuffled samples in memory;
/// with a stream, the chunks in a shuffled order, each chunk's samples shuffled and cut
/// into its own batches, so that a batch reads one chunk. Chunks holding a single
/// training sample (a pairwise loss needs two) pool those samples into batches of their
/// own at the end; a pool of one sample joins the smallest batch. Every batch holds at
/// most `batch_size + 1` samples ([`batches`] merges a trailing sample), `batch_size + 2`
/// when a lone pooled sample has to join such a batch.
pub fn epoch_batches(
    train: &[usize],
    stream: Option<&SampleStream>,
    batch_size: usize,
    seed: u64,
    epoch: usize,
) -> Vec<Vec<usize>> {
    let order = epoch_order(train, seed, epoch);
    let Some(stream) = stream else {
        return batches(&order, batch_size);
    };
    let mut by_chunk: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for s in order {
        by_chunk.entry(stream.chunk_of(s)).or_default().push(s);
    }
    let mut groups: Vec<Vec<usize>> = by_chunk.into_values().collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xC4_0000_0000);
    rng.set_stream(epoch as u64);
    groups.shuffle(&mut rng);
    let (singles, groups): (Vec<Vec<usize>>, Vec<Vec<usize>>) =
        groups.into_iter().partition(|g| g.len() == 1);
    let mut out: Vec<Vec<usize>> = groups.iter().flat_map(|g| batches(g, batch_size)).collect();
    let pool: Vec<usize> = singles.into_iter().flatten().collect();
    match pool.as_slice() {
        [] => {}
        [lone] => match out.iter_mut().min_by_key(|b| b.len()) {
            Some(smallest) => smallest.push(*lone),
            None => out.push(vec![*lone]),
        },
        _ => out.extend(batches(&pool, batch_size)),
    }
    out
}

/// Samples in the order their batches are read: chunk by chunk with a stream (stable
/// within a chunk), as given otherwise.
fn read_order(samples: &[usize], stream: Option<&SampleStream>) -> Vec<usize> {
    let mut order = samples.to_vec();
    if let Some(stream) = stream {
        order.sort_by_key(|&s| stream.chunk_of(s));
    }
    order
}

/// Trains `model` (on `device`) and writes checkpoints into `dir`.
///
/// `resume`: continue from `dir`'s `resume.bin` (loop state, model and optimizer records
/// of the last completed epoch, written atomically as one file; checkpoints older than
/// it resume from `train_state.json`, `last_model.bin` and `optimizer.bin`). Errors: invalid options, I/O failures, a non-finite loss (the
/// run stops and names the epoch and step).
pub fn fit<B, M>(
    model: M,
    data: &TrainData,
    opts: &TrainOptions,
    dir: &Path,
    config: &CheckpointConfig,
    resume: bool,
    device: &B::Device,
) -> Result<FitReport>
where
    B: AutodiffBackend,
    M: AamModel<B> + AutodiffModule<B>,
    M::InnerModule: AamModel<B::InnerBackend>,
{
    fit_data_parallel(
        model,
        data,
        opts,
        dir,
        config,
        resume,
        std::slice::from_ref(device),
        &mut NoTracking,
    )
}

/// [`fit`] with every batch split across `devices` (data parallel, see
/// [`crate::data_parallel`]): `model` lives on `devices[0]`, where the losses, the
/// optimizer step, validation and checkpoints run; every step and epoch is reported to
/// `tracker` ([`crate::tracking`]). Sets the process's allocator to keep freed memory
/// for reuse ([`crate::memory::keep_freed_memory`]). Errors: as [`fit`], an empty device list, and the
/// tracker's errors.
#[allow(clippy::too_many_arguments)]
pub fn fit_data_parallel<B, M>(
    model: M,
    data: &TrainData,
    opts: &TrainOptions,
    dir: &Path,
    config: &CheckpointConfig,
    resume: bool,
    devices: &[B::Device],
    tracker: &mut dyn Tracker,
) -> Result<FitReport>
where
    B: AutodiffBackend,
    M: AamModel<B> + AutodiffModule<B>,
    M::InnerModule: AamModel<B::InnerBackend>,
{
    let device = devices.first().context("no training device given")?;
    // Host tensors of every step reuse freed memory instead of mapping it afresh.
    crate::memory::keep_freed_memory();
    data_parallel::materialize(&model);
    if resume && opts.auto_batch_size.is_none() {
        check_resumed_batch_size(dir, opts)?;
    }
    let chosen;
    let opts = match &opts.auto_batch_size {
        Some(auto) => {
            chosen = choose_batch_size::<B, M>(&model, data, opts, auto, dir, resume, device)?;
            &chosen
        }
        None => opts,
    };
    if let Some(stream) = data
        .stream
        .as_deref()
        .filter(|s| opts.batch_size > s.chunk_samples())
    {
        eprintln!(
            "warning: batches of {} samples asked for, but a streamed batch holds the training samples of one chunk of {}: raise --chunk-samples",
            opts.batch_size,
            stream.chunk_samples()
        );
    }
    if opts.batch_size < 2 {
        bail!("--batch-size must be at least 2 (pairwise UniFrac needs two samples per batch), got {}", opts.batch_size);
    }
    let clip = opts
        .grad_clip
        .map(|c| GradientClippingConfig::Norm(c as f32));
    match opts.optimizer {
        OptimizerKind::AdamW => {
            let o = AdamWConfig::new()
                .with_weight_decay(opts.weight_decay as f32)
                .with_grad_clipping(clip)
                .init();
            fit_with(model, o, data, opts, dir, config, resume, devices, tracker)
        }
        OptimizerKind::Adam => {
            let wd =
                (opts.weight_decay > 0.0).then(|| WeightDecayConfig::new(opts.weight_decay as f32));
            let o = AdamConfig::new()
                .with_weight_decay(wd)
                .with_grad_clipping(clip)
                .init();
            fit_with(model, o, data, opts, dir, config, resume, devices, tracker)
        }
        OptimizerKind::Sgd => {
            let wd =
                (opts.weight_decay > 0.0).then(|| WeightDecayConfig::new(opts.weight_decay as f32));
            let o = SgdConfig::new()
                .with_weight_decay(wd)
                .with_momentum(Some(MomentumConfig::new()))
                .with_gradient_clipping(clip)
                .init();
            fit_with(model, o, data, opts, dir, config, resume, devices, tracker)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn fit_with<B, M, O>(
    mut model: M,
    mut optim: O,
    data: &TrainData,
    opts: &TrainOptions,
    dir: &Path,
    config: &CheckpointConfig,
    resume: bool,
    devices: &[B::Device],
    tracker: &mut dyn Tracker,
) -> Result<FitReport>
where
    B: AutodiffBackend,
    M: AamModel<B> + AutodiffModule<B>,
    M::InnerModule: AamModel<B::InnerBackend>,
    O: Optimizer<M, B>,
{
    let device = &devices[0];
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let train_batches_per_epoch = epoch_batches(
        &data.split.train,
        data.stream.as_deref(),
        opts.batch_size,
        opts.seed,
        0,
    )
    .len();
    let steps_per_epoch = train_batches_per_epoch.div_ceil(opts.grad_accum.max(1));
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let paths = |f: &str| -> PathBuf { dir.join(f) };
    // A run killed while writing leaves `.name.tmp` files; what they were to replace is intact.
    resume_file::remove_stale_temporaries(dir);
    let mut state = if resume {
        let point = resume_file::read(dir)?;
        // The Burn record keeps the parameter IDs that the optimizer state is keyed by.
        let record = recorder.load(point.model, device).with_context(|| {
            format!(
                "the model record in {} does not match this model",
                dir.display()
            )
        })?;
        model = model.load_record(record);
        let record = recorder.load(point.optimizer, device).with_context(|| {
            format!("the optimizer state in {} is not this run's", dir.display())
        })?;
        // Epochs logged but not committed before the run was killed are logged again.
        resume_file::trim_metrics(dir, point.state.epoch)?;
        let state = point.state;
        optim = optim.load_record(record);
        let mut state: TrainState = state;
        // The precision of this invocation decides: a run resumed in fp16 scales (with
        // the saved scale when it scaled before), one resumed in f32/bf16 does not.
        state.loss_scaler = match (state.loss_scaler.take(), &opts.loss_scaling) {
            (Some(saved), Some(_)) => Some(saved),
            (None, Some(fresh)) => Some(fresh.clone()),
            (_, None) => None,
        };
        state
    } else {
        // A new run (or --overwrite) starts its own log.
        resume_file::trim_metrics(dir, 0)?;
        TrainState {
            epoch: 0,
            step: 0,
            seed: opts.seed,
            best_val_loss: f64::MAX,
            best_epoch: 0,
            bad_epochs: 0,
            schedule: Schedule::new(
                opts.schedule,
                opts.lr,
                steps_per_epoch * opts.epochs,
                opts.warmup,
            ),
            batch_size: Some(opts.batch_size),
            grad_accum: Some(opts.grad_accum.max(1)),
            loss_scaler: opts.loss_scaling.clone(),
        }
    };
    checkpoint::write_json(&paths("config.json"), config)?;
    tracker.start(&RunStart {
        config,
        options: opts,
        first_step: state.step,
        resumed: resume,
    })?;
    let class_weights = class_weight_tensor::<B>(data, opts, device);
    // A frozen ASV encoder's embeddings, computed once per distinct ASV of the run.
    let substitutes = opts
        .augmentation
        .as_ref()
        .is_some_and(|a| a.substitution.is_some_and(|r| r > 0.0));
    let cached = opts.cache_asv_embeddings
        && data.stream.is_none()
        && devices.len() == 1
        && !substitutes;
    if opts.cache_asv_embeddings && !cached && opts.progress {
        eprintln!("warning: the frozen ASV encoder's embeddings are not cached (streamed table, nucleotide substitution or several devices): every step runs the ASV encoder");
    }
    let frozen = cached.then(|| model.valid());
    let mut asv_cache = AsvEmbeddingCache::new(config.model.embedding_dim);
    // With a cached (frozen) ASV encoder the nucleotide head is frozen too: no masking.
    let mask_ratio = (opts.weights.nucleotide > 0.0 && config.model.predict_nucleotides && !cached)
        .then_some(opts.mask_ratio);
    let mut report = FitReport {
        epochs: Vec::new(),
        step_losses: Vec::new(),
        best: (state.best_val_loss, state.best_epoch),
    };

    let first_epoch = state.epoch;
    // fp16: optimizer steps skipped in a row because their forward pass overflowed.
    let mut forward_skips_in_a_row = 0usize;
    while state.epoch < opts.epochs
        && opts
            .stop_after_epochs
            .is_none_or(|n| state.epoch < first_epoch + n)
    {
        let epoch = state.epoch;
        let started = Instant::now();
        B::seed(device, opts.seed.wrapping_add(epoch as u64 * 7919));
        let chunks = epoch_batches(
            &data.split.train,
            data.stream.as_deref(),
            opts.batch_size,
            opts.seed,
            epoch,
        );
        let bar = progress_bar(opts.progress, chunks.len() as u64, epoch + 1, opts.epochs);
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        // The training samples' target predictions (as trained: dropout on) and truths,
        // for the training metric of the learning curve.
        let mut fitted: (Vec<Vec<f32>>, Vec<f32>) = (Vec::new(), Vec::new());
        let mut accumulator = GradientsAccumulator::<M>::new();
        let mut pending = 0usize;
        let mut seen = 0usize;
        // fp16: the current accumulation window holds a batch whose forward overflowed.
        let mut window_overflow = false;
        // Batch k is consumed at optimizer step `first_step + k / grad_accum`; its masking
        // seed is fixed here so that workers can build it ahead of that step.
        let first_step = state.step;
        let grad_accum = opts.grad_accum.max(1);
        let make = |k: usize| {
            let mask_seed = opts.seed ^ (((first_step + k / grad_accum) as u64) << 20) ^ k as u64;
            host_batch(
                data,
                &chunks[k],
                epoch as u64,
                mask_ratio.map(|r| (r, mask_seed)),
                opts.augmentation.as_ref().map(|a| (a, opts.seed)),
            )
        };
        // The model moves through `optim.step` by value; it sits here between steps.
        let mut current = Some(model);
        let consume = |k: usize, host: Result<HostBatch>| -> Result<()> {
            let host = host?;
            let chunk = &host.samples;
            let t = to_tensors::<B>(&host, data.faith_pd.as_deref(), device);
            let model = current
                .as_ref()
                .context("the model was lost in an optimizer step")?;
            let (out, replicas) = match &frozen {
                Some(encoder) => {
                    let e = cached_embeddings::<B, B::InnerBackend, _>(&mut asv_cache, encoder, &host, device)?;
                    (
                        model.forward_from_asv_embeddings(
                            e,
                            t.asv_mask.clone(),
                            Some(t.model_counts()),
                        ),
                        None,
                    )
                }
                None => {
                    data_parallel::forward(model, &t, devices)
                }
            };
            let (loss, parts) = loss_terms(&out, &t, data, opts, class_weights.as_ref());
            let value = parts["total"];
            // Under fp16 loss scaling a forward pass that overflows skips its optimizer
            // step (the scale is kept: it cannot cure a forward overflow). Without fp16 a
            // non-finite loss means divergence.
            let forward_overflow = !value.is_finite() && state.loss_scaler.is_some();
            if !value.is_finite() && !forward_overflow {
                bail!("the training loss became {value} at epoch {}, batch {}; lower --lr or enable --grad-clip", epoch + 1, k + 1);
            }
            if forward_overflow {
                window_overflow = true;
            } else {
                for (name, v) in &parts {
                    *sums.entry(name.clone()).or_default() += v * chunk.len() as f64;
                }
                if let (Some(pred), Some(y)) = (&out.target_prediction, &t.targets) {
                    let [b, k] = pred.dims();
                    let values = pred.clone().into_data().to_vec::<f32>().unwrap_or_default();
                    fitted.0.extend(values.chunks(k.max(1)).take(b).map(<[f32]>::to_vec));
                    fitted.1.extend_from_slice(y);
                }
                seen += chunk.len();
                let loss = match &state.loss_scaler {
                    Some(scaler) => loss.mul_scalar(scaler.scale),
                    None => loss,
                };
                data_parallel::accumulate_gradients(
                    &mut accumulator,
                    model,
                    loss.backward(),
                    replicas.as_deref(),
                    device,
                );
            }
            pending += 1;
            if pending == grad_accum || k + 1 == chunks.len() {
                let lr = state.schedule.lr(state.step);
                let model = current
                    .take()
                    .context("the model was lost in an optimizer step")?;
                let grads = accumulator.grads();
                current = Some(match &mut state.loss_scaler {
                    Some(scaler) => {
                        // An overflowed step is skipped; the step counter still moves so
                        // the schedule and the masking seeds do not depend on overflows.
                        if window_overflow {
                            scaler.skip_forward_overflow();
                            forward_skips_in_a_row += 1;
                            model
                        } else {
                            forward_skips_in_a_row = 0;
                            let (grads, finite) = unscale_gradients(&model, grads, scaler.scale);
                            scaler.update(!finite);
                            if finite {
                                optim.step(lr, model, grads)
                            } else {
                                model
                            }
                        }
                    }
                    None => optim.step(lr, model, grads),
                });
                state.step += 1;
                tracker.step(state.step, lr, &parts)?;
                pending = 0;
                window_overflow = false;
                if value.is_finite() {
                    report.step_losses.push(value);
                }
            }
            if let Some(b) = &bar {
                b.set_message(format!(
                    "loss {value:.4} {} lr {:.2e} {:.1} samples/s",
                    parts
                        .iter()
                        .filter(|(n, _)| *n != "total")
                        .map(|(n, v)| format!("{n} {v:.4}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    state.schedule.lr(state.step),
                    seen as f64 / started.elapsed().as_secs_f64()
                ));
                b.inc(1);
            }
            Ok(())
        };
        let pipeline = run_in_order(chunks.len(), opts.prefetch, make, consume, |k| {
            anyhow::anyhow!(
                "building batch {} of epoch {} failed (a bug: please report it)",
                k + 1,
                epoch + 1
            )
        })?;
        model = current.context("the model was lost in an optimizer step")?;
        // An epoch's worth of optimizer steps in a row lost to forward overflows: the
        // model no longer trains in fp16.
        let steps_per_epoch = chunks.len().div_ceil(grad_accum).max(1);
        if forward_skips_in_a_row >= steps_per_epoch {
            bail!(
                "the last {forward_skips_in_a_row} optimizer steps (up to epoch {}) were skipped: their forward pass overflowed fp16; train with --mixed-precision bf16 (f32's range in half the bits) or none",
                epoch + 1
            );
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let train_seconds = started.elapsed().as_secs_f64();
        let validation = validate::<B, M>(
            &model.valid(),
            data,
            opts,
            mask_ratio,
            class_weights.as_ref().map(|w| w.clone().inner()),
            frozen.is_some().then_some(&mut asv_cache),
        )?;
        let mut train: BTreeMap<String, f64> = sums
            .into_iter()
            .map(|(k, v)| (k, v / seen.max(1) as f64))
            .collect();
        if let Some((name, value)) = training_metric(data.target_kind, &fitted.0, &fitted.1) {
            train.insert(name.into(), value);
        }
        // Without validation samples (`--validation-fraction 0`) the training loss drives
        // the schedule and every epoch is the best: the last one is kept.
        let val_loss = match validation.get("loss") {
            Some(&v) => v,
            None => train.get("total").copied().unwrap_or(f64::NAN),
        };
        let no_validation = data.split.validation.is_empty();
        if !val_loss.is_finite() {
            bail!(
                "the {} loss became {val_loss} at epoch {}{}",
                if no_validation { "training" } else { "validation" },
                epoch + 1,
                if state.loss_scaler.is_some() {
                    " (the forward pass overflowed fp16); train with --mixed-precision bf16 or none"
                } else {
                    "; lower --lr or enable --grad-clip"
                }
            );
        }
        state.schedule.on_validation(val_loss);
        state.epoch += 1;
        let improved = no_validation || val_loss < state.best_val_loss;
        // The weights are copied out of the model once per epoch: for the checkpoint
        // files (the same bytes when this epoch is the best) and for the trackers.
        let mut weights = aam_model::WeightSink::default();
        model.save_weights(&mut weights);
        let bytes = checkpoint::sink_bytes(&weights, config)?;
        if improved {
            state.best_val_loss = val_loss;
            state.best_epoch = state.epoch;
            state.bad_epochs = 0;
            checkpoint::write_atomic(&paths("model.safetensors"), &bytes)?;
        } else {
            state.bad_epochs += 1;
        }
        checkpoint::write_atomic(&paths("last.safetensors"), &bytes)?;
        let record = EpochRecord {
            epoch: state.epoch,
            step: state.step,
            lr: state.schedule.lr(state.step),
            train,
            validation,
            seconds: started.elapsed().as_secs_f64(),
            samples_per_second: seen as f64 / train_seconds,
            data_wait_seconds: pipeline.wait.as_secs_f64(),
            data_wait_share: pipeline.wait.as_secs_f64() / train_seconds.max(f64::MIN_POSITIVE),
            peak_rss_mib: crate::memory::peak_rss_mib(),
            loss_scale: state.loss_scaler.as_ref().map(|s| s.scale),
            skipped_steps: state.loss_scaler.as_ref().map(|s| s.skipped_steps),
        };
        // Logged first, then committed: a kill in between leaves a log line of an epoch
        // that `--resume` drops and logs again (see `resume_file::trim_metrics`).
        checkpoint::append_line(&paths("metrics.jsonl"), &serde_json::to_string(&record)?)?;
        // Trackers too: TensorBoard drops what a killed invocation logged past its last
        // commit when the resumed one starts (`tracking::tensorboard`).
        tracker.epoch(&record, tracker.wants_weights().then_some(&weights))?;
        // The commit point of the epoch: one file, renamed into place.
        resume_file::write(
            dir,
            &state,
            &recorder
                .record(model.clone().into_record(), ())
                .context("cannot serialise the model record")?,
            &recorder
                .record(optim.to_record(), ())
                .context("cannot serialise the optimizer state")?,
        )?;
        if opts.progress {
            eprintln!("{}", summary_line(&record, opts.epochs, improved));
        }
        report.epochs.push(record);
        report.best = (state.best_val_loss, state.best_epoch);
        if opts.patience.is_some_and(|p| state.bad_epochs >= p) {
            if opts.progress {
                eprintln!("early stopping: no better validation loss for {} epochs (best {:.4} at epoch {})", state.bad_epochs, state.best_val_loss, state.best_epoch);
            }
            break;
        }
    }
    Ok(report)
}

fn summary_line(r: &EpochRecord, epochs: usize, improved: bool) -> String {
    let fmt = |m: &BTreeMap<String, f64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "epoch {}/{epochs} ({:.1} s, {:.1} samples/s, {:.1}% waiting for data{}{}) train: {} | validation: {}{}",
        r.epoch,
        r.seconds,
        r.samples_per_second,
        100.0 * r.data_wait_share,
        r.peak_rss_mib
            .map_or(String::new(), |m| format!(", peak RSS {m:.0} MiB")),
        match (r.loss_scale, r.skipped_steps) {
            (Some(scale), Some(skipped)) => format!(", loss scale {scale}, {skipped} overflowed steps skipped"),
            _ => String::new(),
        },
        fmt(&r.train),
        fmt(&r.validation),
        if improved { " *" } else { "" }
    )
}

fn progress_bar(
    enabled: bool,
    len: u64,
    epoch: usize,
    epochs: usize,
) -> Option<indicatif::ProgressBar> {
    if !enabled {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    Some(bar)
}

pub(crate) fn class_weight_tensor<B: Backend>(
    data: &TrainData,
    opts: &TrainOptions,
    device: &B::Device,
) -> Option<Tensor<B, 1>> {
    if !opts.class_weights || data.target_kind != Some(TargetKind::Categorical) {
        return None;
    }
    let targets = data.dataset.targets.as_ref()?;
    let mut counts = vec![0f32; data.n_classes];
    for &i in &data.split.train {
        counts[targets[i] as usize] += 1.0;
    }
    let n: f32 = counts.iter().sum();
    // sklearn "balanced": n / (C · n_c); an absent class gets weight 0.
    let w: Vec<f32> = counts
        .iter()
        .map(|&c| {
            if c > 0.0 {
                n / (data.n_classes as f32 * c)
            } else {
                0.0
            }
        })
        .collect();
    Some(Tensor::from_data(
        TensorData::new(w, [data.n_classes]),
        device,
    ))
}

/// `opts` with the batch size and gradient accumulation of `--auto-batch-size`: on a
/// resumed run those recorded in `dir`'s `train_state.json`, else the largest batch whose
/// training step (forward, losses, backward on the training samples with the most ASVs)
/// stays within [`batch_size::SAFETY`] of the memory budget, and the accumulation that
/// reaches the target effective batch size. Prints the search when `opts.progress`.
///
/// Errors: nothing fits the budget, no memory report on this system, a failed step.
fn choose_batch_size<B, M>(
    model: &M,
    data: &TrainData,
    opts: &TrainOptions,
    auto: &AutoBatchSize,
    dir: &Path,
    resume: bool,
    device: &B::Device,
) -> Result<TrainOptions>
where
    B: AutodiffBackend,
    M: AamModel<B> + AutodiffModule<B>,
{
    let accumulate = |b: usize| {
        auto.target_effective_batch_size
            .map_or(opts.grad_accum, |t| batch_size::grad_accum_for(t, b))
    };
    if resume {
        let path = dir.join("train_state.json");
        let state: TrainState = resume_file::read_state(dir)?;
        let Some(b) = state.batch_size else {
            bail!("{}: this checkpoint records no batch size (an older aam wrote it); resume it with the --batch-size and --grad-accum it started with instead of --auto-batch-size", path.display());
        };
        return Ok(TrainOptions {
            batch_size: b,
            grad_accum: state.grad_accum.unwrap_or_else(|| accumulate(b)),
            ..opts.clone()
        });
    }
    let meter = MemoryMeter::open(auto.memory)?;
    // Burn's GPU backends keep freed pages in their memory pool: release them so that
    // what is measured is this run's, not an earlier candidate's. Synced first: the
    // fusion backend queues the drops of the last step's tensors.
    let sync = || B::sync(device).map_err(|e| anyhow::anyhow!("the training device failed: {e:?}"));
    let release = || -> Result<()> {
        sync()?;
        B::memory_cleanup(device);
        // Host memory a trial freed is handed back, so the next trial's peak is its own.
        crate::memory::return_freed_memory();
        sync()
    };
    release()?;
    let budget = match auto.budget_mib {
        Some(m) => m,
        None => meter.default_budget_mib()?,
    };
    if data.split.train.len() < 2 {
        bail!(
            "--auto-batch-size needs at least 2 training samples, the split has {}",
            data.split.train.len()
        );
    }
    let largest: Vec<usize> = match &data.stream {
        // Streamed: the training sample with the most ASVs, repeated (a batch of distinct
        // large samples would read, and hold, a chunk for each); its batch is at least as
        // wide as any real one.
        Some(stream) => {
            let top = data
                .split
                .train
                .iter()
                .copied()
                .max_by_key(|&s| stream.sample_nnz(s))
                .context("no training sample")?;
            vec![top; data.split.train.len()]
        }
        None => {
            let mut largest = data.split.train.clone();
            largest.sort_by_key(|&s| std::cmp::Reverse(data.dataset.table.sample_nnz(s)));
            largest
        }
    };
    let mask_ratio = (opts.weights.nucleotide > 0.0).then_some(opts.mask_ratio);
    let class_weights = class_weight_tensor::<B>(data, opts, device);
    // A size whose peak, extrapolated linearly from the largest size that fitted, is over
    // the budget is not run: doubling from just under the budget would ask for about
    // twice the memory there is.
    let in_use_before = meter.in_use_mib()?;
    let mut largest_fit: Option<(usize, f64)> = None;
    let (batch, tried) = batch_size::search(2, largest.len(), |b| {
        if let Some((g, peak_g)) = largest_fit {
            let predicted = in_use_before + (peak_g - in_use_before).max(0.0) / g as f64 * b as f64;
            if predicted > budget {
                if opts.progress {
                    eprintln!("auto batch size: {b} samples → about {predicted:.0} MiB predicted, over the {budget:.0} MiB budget (not run)");
                }
                return Ok(false);
            }
        }
        release()?;
        let peak = meter.peak_during(|| {
            let host = host_batch(
                data,
                &largest[..b],
                0,
                mask_ratio.map(|r| (r, opts.seed)),
                None,
            )?;
            {
                // The step's tensors dropped before the sync, so that it waits for their
                // release too.
                let t = to_tensors::<B>(&host, data.faith_pd.as_deref(), device);
                let out = t.forward(model);
                let (loss, _) = loss_terms(&out, &t, data, opts, class_weights.as_ref());
                drop(loss.backward());
            }
            sync()
        })?;
        let fits = meter.fits(peak, in_use_before, budget);
        if fits && largest_fit.is_none_or(|(g, _)| b > g) {
            largest_fit = Some((b, peak));
        }
        if opts.progress {
            eprintln!(
                "auto batch size: {b} samples → peak {peak:.0} MiB of {budget:.0} MiB budget of {} ({})",
                meter.name(),
                if fits { "fits" } else { "too large" }
            );
        }
        Ok(fits)
    })?;
    let grad_accum = accumulate(batch);
    if opts.progress {
        eprintln!(
            "auto batch size: {batch} samples per batch, {grad_accum} batches per optimizer step (effective batch {}), after {} trial steps",
            batch * grad_accum,
            tried.len()
        );
    }
    Ok(TrainOptions {
        batch_size: batch,
        grad_accum,
        ..opts.clone()
    })
}

/// Errors when a resumed run is given another batch size or accumulation than the one
/// its `train_state.json` records (the schedule was laid out for those), naming both.
fn check_resumed_batch_size(dir: &Path, opts: &TrainOptions) -> Result<()> {
    let path = dir.join("train_state.json");
    let Ok(state) = resume_file::read_state(dir) else {
        return Ok(()); // unreadable: the resume itself reports it
    };
    let (b, g) = (state.batch_size, state.grad_accum.unwrap_or(1));
    match b {
        Some(b) if b != opts.batch_size || g != opts.grad_accum.max(1) => bail!(
            "{}: this run trains with --batch-size {b} --grad-accum {g}; resume it with those \
             (or with --auto-batch-size, which keeps them), not --batch-size {} --grad-accum {}",
            path.display(),
            opts.batch_size,
            opts.grad_accum.max(1)
        ),
        _ => Ok(()),
    }
}

/// The ASV embeddings `[batch, n_asv, D]` of `host`'s slots on `device`, from `cache`
/// (rows it lacks encoded by `encoder`'s ASV encoder and kept).
fn cached_embeddings<B: Backend, I: Backend<Device = B::Device>, E: AamModel<I>>(
    cache: &mut AsvEmbeddingCache,
    encoder: &E,
    host: &HostBatch,
    device: &B::Device,
) -> Result<Tensor<B, 3>> {
    let (b, s, _) = host.batch.tokens.dim();
    let values = cache.batch::<I, E>(encoder, &host.batch.tokens, device)?;
    let d = cache.dim();
    Ok(Tensor::from_data(TensorData::new(values, [b, s, d]), device))
}

/// Validation loss and metrics in eval mode (dropout off) over all validation samples.
fn validate<B, M>(
    model: &M::InnerModule,
    data: &TrainData,
    opts: &TrainOptions,
    mask_ratio: Option<f64>,
    class_weights: Option<Tensor<B::InnerBackend, 1>>,
    mut asv_cache: Option<&mut AsvEmbeddingCache>,
) -> Result<BTreeMap<String, f64>>
where
    B: AutodiffBackend,
    M: AamModel<B> + AutodiffModule<B>,
    M::InnerModule: AamModel<B::InnerBackend>,
{
    let device = model
        .devices()
        .into_iter()
        .next()
        .context("model has no device")?;
    // Chunk by chunk when streamed; the metrics below follow this order.
    let val = &read_order(&data.split.validation, data.stream.as_deref());
    // Without validation samples (`--validation-fraction 0`) there is nothing to report:
    // metrics of an empty set would read as 0 or NaN.
    if val.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    let (mut embeddings, mut preds) = (Vec::<f32>::new(), Vec::<Vec<f32>>::new());
    let (mut hits, mut masked) = (0.0, 0.0);
    for (k, chunk) in batches(val, opts.batch_size).iter().enumerate() {
        // Fixed masking seed: the validation loss is comparable across epochs.
        let host = host_batch(
            data,
            chunk,
            0,
            mask_ratio.map(|r| (r, opts.seed ^ 0xA11D ^ k as u64)),
            None,
        )?;
        let t = to_tensors::<B::InnerBackend>(&host, data.faith_pd.as_deref(), &device);
        let out = match asv_cache.as_deref_mut() {
            Some(cache) => {
                let e = cached_embeddings::<B::InnerBackend, B::InnerBackend, _>(cache, model, &host, &device)?;
                model.forward_from_asv_embeddings(e, t.asv_mask.clone(), Some(t.model_counts()))
            }
            None => t.forward(model),
        };
        let (_, parts) = loss_terms(&out, &t, data, opts, class_weights.as_ref());
        // The metrics of the predictions and embeddings come from the unmasked tokens,
        // what inference sees, so that they equal `aam evaluate`'s on the same samples.
        let clean = t
            .unmasked
            .as_ref()
            .map(|u| model.forward_all(u.clone(), Some(t.model_counts())));
        let (out_embeddings, out_target) = match clean {
            Some(c) => (c.embeddings, c.target_prediction),
            None => (out.embeddings, out.target_prediction),
        };
        for (name, v) in parts {
            *sums.entry(name).or_default() += v * chunk.len() as f64;
        }
        if let (Some(logits), Some((targets, mask))) = (&out.nuc_predictions, &t.nuc_targets) {
            let (h, n) = losses::nucleotide_hits(logits.clone(), targets.clone(), mask.clone());
            hits += h;
            masked += n;
        }
        embeddings.extend(
            out_embeddings
                .into_data()
                .to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        );
        if let Some(p) = out_target {
            let width = p.dims()[1];
            let flat = p
                .into_data()
                .to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            preds.extend(flat.chunks(width).map(<[f32]>::to_vec));
        }
    }
    let n = val.len().max(1) as f64;
    let mut out: BTreeMap<String, f64> = sums
        .into_iter()
        .map(|(k, v)| {
            (
                if k == "total" {
                    "loss".to_string()
                } else {
                    format!("{k}_loss")
                },
                v / n,
            )
        })
        .collect();
    if masked > 0.0 {
        out.insert("nucleotide_accuracy".into(), hits / masked);
    }
    if let Some(dm) = &data.dataset.distances {
        if opts.weights.unifrac > 0.0 && val.len() >= 2 {
            let d = embeddings.len() / val.len();
            let (mut p, mut t) = (Vec::new(), Vec::new());
            for i in 0..val.len() {
                for j in i + 1..val.len() {
                    let dist: f64 = (0..d)
                        .map(|k| f64::from(embeddings[i * d + k] - embeddings[j * d + k]).powi(2))
                        .sum::<f64>()
                        .sqrt();
                    p.push((dist / opts.temperature).tanh());
                    t.push(dm.get(val[i], val[j]));
                }
            }
            out.insert("unifrac_mae".into(), metrics::mae(&p, &t));
            out.insert("unifrac_r2".into(), metrics::r2(&p, &t));
        }
    }
    if let (Some(kind), Some(targets)) = (data.target_kind, &data.dataset.targets) {
        let truth: Vec<f64> = val.iter().map(|&i| f64::from(targets[i])).collect();
        match kind {
            TargetKind::Numeric => {
                let (m, s) = (data.target_mean, data.target_std);
                let p: Vec<f64> = preds.iter().map(|v| f64::from(v[0]) * s + m).collect();
                let t: Vec<f64> = truth.iter().map(|v| v * s + m).collect();
                out.insert("mae".into(), metrics::mae(&p, &t));
                out.insert("rmse".into(), metrics::rmse(&p, &t));
                out.insert("r2".into(), metrics::r2(&p, &t));
                out.insert("pearson".into(), metrics::pearson(&p, &t));
            }
            TargetKind::Categorical => {
                let p: Vec<usize> = preds.iter().map(|v| argmax(v)).collect();
                let t: Vec<usize> = truth.iter().map(|&v| v as usize).collect();
                out.insert("accuracy".into(), metrics::accuracy(&p, &t));
                out.insert("macro_f1".into(), metrics::macro_f1(&p, &t, data.n_classes));
                if data.n_classes == 2 {
                    let score: Vec<f64> = preds.iter().map(|v| f64::from(v[1]).exp()).collect();
                    let pos: Vec<bool> = t.iter().map(|&c| c == 1).collect();
                    out.insert("roc_auc".into(), metrics::roc_auc(&score, &pos));
                }
            }
        }
    }
    Ok(out)
}
