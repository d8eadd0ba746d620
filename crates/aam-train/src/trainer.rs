//! The training loop shared by pretraining (encoder) and fine-tuning (predictor).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use aam_data::TargetKind;
use aam_model::AamModel;
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

use crate::asv_embedding_cache::AsvEmbeddingCache;
use crate::batch_order::{batches, epoch_batches, read_order};
use crate::batch_size_choice::{check_resumed_batch_size, choose_batch_size};
use crate::batch_tensors::{class_weight_tensor, host_batch, to_tensors, HostBatch};
use crate::checkpoint::{self, TrainState};
use crate::collective::{Collective, SingleProcess};
use crate::data_parallel;
use crate::epoch_record::{summary_line, EpochRecord, FitReport};
use crate::gradient_buffer;
use crate::loss_scale::unscale_gradients;
use crate::losses;
use crate::options::{OptimizerKind, TrainOptions};
use crate::prefetch::run_in_order;
use crate::rank_share;
use crate::resume_file;
use crate::schedule::Schedule;
use crate::step_loss::{argmax, loss_terms, median_column, training_metric};
use crate::tracking::{NoTracking, RunStart, Tracker};
use crate::train_data::TrainData;
use aam_config::CheckpointConfig;
use aam_data::metrics;

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
/// for reuse ([`crate::allocator::keep_freed_memory`]). Errors: as [`fit`], an empty device list, and the
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
    fit_in_group(
        model,
        data,
        opts,
        dir,
        config,
        resume,
        devices,
        tracker,
        &SingleProcess,
    )
}

/// [`fit_data_parallel`] in one process of a training group across processes or
/// machines (`docs/multi-device.md`, "Several machines"): every global batch is split
/// over the ranks of `group` (and within a rank over `devices`), the losses see the
/// whole global batch (`rank_share::forward_share`) and the gradients are summed over
/// the ranks before every optimizer step, so the group trains the model one process
/// would on the same global batches. Every rank must be given the same data, options
/// and configuration; rank 0's `resume` decides, and its resume point is sent to the
/// others. Every rank writes `dir` as one process would: the caller gives the ranks
/// other than 0 a private folder (rank 0's is the output).
///
/// Errors: as [`fit_data_parallel`]; `--auto-batch-size` in a group of several
/// processes; a rank whose initial weights or training samples differ from rank 0's
/// (named); the transport's.
#[allow(clippy::too_many_arguments)]
pub fn fit_in_group<B, M>(
    model: M,
    data: &TrainData,
    opts: &TrainOptions,
    dir: &Path,
    config: &CheckpointConfig,
    resume: bool,
    devices: &[B::Device],
    tracker: &mut dyn Tracker,
    group: &dyn Collective,
) -> Result<FitReport>
where
    B: AutodiffBackend,
    M: AamModel<B> + AutodiffModule<B>,
    M::InnerModule: AamModel<B::InnerBackend>,
{
    let device = devices.first().context("no training device given")?;
    if group.group().world_size > 1 && opts.auto_batch_size.is_some() {
        bail!("--auto-batch-size picks a batch size from one process's memory; in a group of {} processes give --batch-size (the global batch, split over the processes)", group.group().world_size);
    }
    // Host tensors of every step reuse freed memory instead of mapping it afresh.
    crate::allocator::keep_freed_memory();
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
            fit_with(
                model, o, data, opts, dir, config, resume, devices, tracker, group,
            )
        }
        OptimizerKind::Adam => {
            let wd =
                (opts.weight_decay > 0.0).then(|| WeightDecayConfig::new(opts.weight_decay as f32));
            let o = AdamConfig::new()
                .with_weight_decay(wd)
                .with_grad_clipping(clip)
                .init();
            fit_with(
                model, o, data, opts, dir, config, resume, devices, tracker, group,
            )
        }
        OptimizerKind::Sgd => {
            let wd =
                (opts.weight_decay > 0.0).then(|| WeightDecayConfig::new(opts.weight_decay as f32));
            let o = SgdConfig::new()
                .with_weight_decay(wd)
                .with_momentum(Some(MomentumConfig::new()))
                .with_gradient_clipping(clip)
                .init();
            fit_with(
                model, o, data, opts, dir, config, resume, devices, tracker, group,
            )
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
    group: &dyn Collective,
) -> Result<FitReport>
where
    B: AutodiffBackend,
    M: AamModel<B> + AutodiffModule<B>,
    M::InnerModule: AamModel<B::InnerBackend>,
    O: Optimizer<M, B>,
{
    let in_group = group.group().world_size > 1;
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
    let point = if resume {
        Some(resume_file::read(dir)?)
    } else {
        None
    };
    // In a group, every rank resumes from rank 0's point (the others may write to a
    // folder of their own, which holds none).
    let point = if in_group {
        let bytes = match &point {
            Some(p) => resume_file::encode(&p.state, &p.model, &p.optimizer)?,
            None => Vec::new(),
        };
        let bytes = group.broadcast_from_rank0(bytes)?;
        (!bytes.is_empty())
            .then(|| resume_file::decode(&bytes))
            .transpose()
            .context("the resume point rank 0 sent")?
    } else {
        point
    };
    let mut state = if let Some(point) = point {
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
        if resume {
            resume_file::trim_metrics(dir, point.state.epoch)?;
        }
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
            best_score: None,
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
    if in_group {
        rank_share::check_same_start(&model, data, opts, config, group)?;
    }
    aam_data::files::write_json(&paths("config.json"), config)?;
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
        && !substitutes
        && !in_group;
    if opts.cache_asv_embeddings && !cached && opts.progress {
        eprintln!("warning: the frozen ASV encoder's embeddings are not cached (streamed table, nucleotide substitution, several devices or processes): every step runs the ASV encoder");
    }
    let frozen = cached.then(|| model.valid());
    let mut asv_cache = AsvEmbeddingCache::new(config.model.embedding_dim);
    // With a cached (frozen) ASV encoder the nucleotide head is frozen too: no masking.
    // (In a group the cache is off, but the base is frozen as on one device: no masking.)
    let frozen_base = cached || (in_group && opts.cache_asv_embeddings);
    let mask_ratio =
        (opts.weights.nucleotide > 0.0 && config.model.predict_nucleotides && !frozen_base)
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
        // Each rank of a group draws its own dropout masks (rank 0 those of one process).
        let rank_seed = u64::from(group.group().rank).wrapping_mul(104_729);
        B::seed(
            device,
            opts.seed
                .wrapping_add(epoch as u64 * 7919)
                .wrapping_add(rank_seed),
        );
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
            let t = to_tensors::<B>(&host, data, device);
            let model = current
                .as_ref()
                .context("the model was lost in an optimizer step")?;
            let (out, replicas, live) = match &frozen {
                Some(encoder) => {
                    let e = cached_embeddings::<B, B::InnerBackend, _>(
                        &mut asv_cache,
                        encoder,
                        &host,
                        device,
                    )?;
                    (
                        model.forward_from_asv_embeddings(
                            e,
                            t.asv_mask.clone(),
                            Some(t.model_counts()),
                            t.categorical_ids.clone(),
                        ),
                        None,
                        true,
                    )
                }
                None if in_group => rank_share::forward_share(model, &t, devices, group)?,
                None => {
                    let (out, replicas) = data_parallel::forward(model, &t, devices);
                    (out, replicas, true)
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
                    fitted
                        .0
                        .extend(values.chunks(k.max(1)).take(b).map(<[f32]>::to_vec));
                    fitted.1.extend_from_slice(y);
                }
                seen += chunk.len();
                let loss = match &state.loss_scaler {
                    Some(scaler) => loss.mul_scalar(scaler.scale),
                    None => loss,
                };
                // A rank with no sample of this (small, last) batch has no gradient.
                if live {
                    data_parallel::accumulate_gradients(
                        &mut accumulator,
                        model,
                        loss.backward(),
                        replicas.as_deref(),
                        device,
                    );
                }
            }
            pending += 1;
            if pending == grad_accum || k + 1 == chunks.len() {
                let lr = state.schedule.lr(state.step);
                let model = current
                    .take()
                    .context("the model was lost in an optimizer step")?;
                let grads = accumulator.grads();
                let grads = if in_group {
                    let mut sum = gradient_buffer::to_buffer::<B, M>(&model, &grads);
                    group.all_reduce_sum(&mut sum)?;
                    gradient_buffer::from_buffer::<B, M>(&model, &sum)
                        .map_err(anyhow::Error::msg)?
                } else {
                    grads
                };
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
        if let Some((name, value)) = training_metric(
            data.target_kind,
            &fitted.0,
            &fitted.1,
            data.dataset.target_width,
        ) {
            train.insert(name.into(), value);
        }
        // Every rank decides (schedule, kept epoch, early stopping) on rank 0's numbers:
        // ranks whose sums round differently (GPU kernels are chosen per process) must
        // still take the same branches, or they would wait for each other forever.
        let (train, validation) = if in_group {
            rank_share::rank0_metrics(group, train, validation)?
        } else {
            (train, validation)
        };
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
                if no_validation {
                    "training"
                } else {
                    "validation"
                },
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
        // The kept epoch: the best of `--best-metric` (the validation loss by default).
        let improved = no_validation
            || match opts.best_metric {
                crate::BestMetric::ValLoss => val_loss < state.best_val_loss,
                m => validation
                    .get(m.key())
                    .is_some_and(|&v| v.is_finite() && m.improves(v, state.best_score)),
            };
        // The weights are copied out of the model once per epoch: for the checkpoint
        // files (the same bytes when this epoch is the best) and for the trackers.
        let mut weights = aam_model::WeightSink::default();
        model.save_weights(&mut weights);
        let bytes = checkpoint::sink_bytes(&weights, config)?;
        if improved {
            state.best_val_loss = val_loss;
            state.best_score = validation.get(opts.best_metric.key()).copied();
            state.best_epoch = state.epoch;
            state.bad_epochs = 0;
            aam_data::files::write_atomic(&paths("model.safetensors"), &bytes)?;
        } else {
            state.bad_epochs += 1;
        }
        aam_data::files::write_atomic(&paths("last.safetensors"), &bytes)?;
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
            peak_rss_mib: aam_data::process_memory::peak_rss_mib(),
            loss_scale: state.loss_scaler.as_ref().map(|s| s.scale),
            skipped_steps: state.loss_scaler.as_ref().map(|s| s.skipped_steps),
        };
        // Logged first, then committed: a kill in between leaves a log line of an epoch
        // that `--resume` drops and logs again (see `resume_file::trim_metrics`).
        aam_data::files::append_line(&paths("metrics.jsonl"), &serde_json::to_string(&record)?)?;
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
                eprintln!(
                    "early stopping: no better validation {} for {} epochs (best {:.4} at epoch {})",
                    opts.best_metric.key(),
                    state.bad_epochs,
                    state.best_score.unwrap_or(state.best_val_loss),
                    state.best_epoch
                );
            }
            break;
        }
    }
    Ok(report)
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
    Ok(Tensor::from_data(
        TensorData::new(values, [b, s, d]),
        device,
    ))
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
        let mut t = to_tensors::<B::InnerBackend>(&host, data, &device);
        // The validation loss is unweighted (comparable between runs and weightings).
        t.sample_weights = None;
        let out = match asv_cache.as_deref_mut() {
            Some(cache) => {
                let e = cached_embeddings::<B::InnerBackend, B::InnerBackend, _>(
                    cache, model, &host, &device,
                )?;
                model.forward_from_asv_embeddings(
                    e,
                    t.asv_mask.clone(),
                    Some(t.model_counts()),
                    t.categorical_ids.clone(),
                )
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
        match kind {
            TargetKind::Numeric => {
                let tr = data.target_transform;
                let k = data.dataset.target_width.max(1);
                let mut by_column: Vec<[(&str, f64); 4]> = Vec::with_capacity(k);
                for j in 0..k {
                    // Each validation sample's offset and scale of column j (by category
                    // for zscore-category).
                    let os: Vec<(f64, f64)> = val
                        .iter()
                        .map(|&i| match (j, &data.target_offset_scale) {
                            (0, Some(v)) => (v[i][0], v[i][1]),
                            (0, None) => (data.target_mean, data.target_std),
                            _ => (data.more_targets[j - 1].mean, data.more_targets[j - 1].std),
                        })
                        .collect();
                    let p: Vec<f64> = preds
                        .iter()
                        .zip(&os)
                        .map(|(v, &(m, s))| {
                            let z = if k == 1 { median_column(v) } else { v[j] };
                            tr.inverse(f64::from(z), m, s)
                        })
                        .collect();
                    let t: Vec<f64> = val
                        .iter()
                        .zip(&os)
                        .map(|(&i, &(m, s))| tr.inverse(f64::from(targets[i * k + j]), m, s))
                        .collect();
                    by_column.push([
                        ("mae", metrics::mae(&p, &t)),
                        ("rmse", metrics::rmse(&p, &t)),
                        ("r2", metrics::r2(&p, &t)),
                        ("pearson", metrics::pearson(&p, &t)),
                    ]);
                }
                // Several targets: each column's metrics under `<metric>_<column>`, and
                // their mean under the plain name (what --best-metric reads).
                for m in 0..4 {
                    let name = by_column[0][m].0;
                    let mean = by_column.iter().map(|c| c[m].1).sum::<f64>() / k as f64;
                    out.insert(name.into(), mean);
                    if k > 1 {
                        for (j, c) in by_column.iter().enumerate() {
                            let column = match j {
                                0 => data.target_column.as_str(),
                                _ => data.more_targets[j - 1].column.as_str(),
                            };
                            out.insert(format!("{name}_{column}"), c[m].1);
                        }
                    }
                }
            }
            TargetKind::Categorical => {
                let p: Vec<usize> = preds.iter().map(|v| argmax(v)).collect();
                let t: Vec<usize> = val.iter().map(|&i| targets[i] as usize).collect();
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
