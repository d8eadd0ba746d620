//! One training step timed on its own (`aam bench --train`): the trainer's own batch
//! building, nucleotide masking, losses, backward pass, gradient clipping and optimizer
//! step on one batch, repeated, so that the figures are those of `aam train` without
//! data loading, validation or checkpoints.

use std::time::Instant;

use anyhow::{bail, Result};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use ndarray::{Array1, Array2, Array3};

use aam_model::AamModel;

use crate::batch_tensors::{class_weight_tensor, host_batch, to_tensors};
use crate::options::{OptimizerKind, TrainOptions};
use crate::step_loss::loss_terms;
use crate::train_data::TrainData;

/// The host arrays of the timed batch, for a second implementation (the PyTorch
/// reference) to train on exactly the same input.
#[derive(Debug, Clone)]
pub struct StepBatch {
    /// Model input: tokens with MASK at the masked nucleotides, int64
    /// `[batch, n_asv, max_bp + 1]` (the plain tokens when the nucleotide loss is off).
    pub masked_tokens: Array3<i64>,
    /// Original token at masked positions, 0 elsewhere, int64 `[batch, n_asv, max_bp + 1]`.
    pub nuc_targets: Array3<i64>,
    /// 1.0 at masked positions, float32 `[batch, n_asv, max_bp + 1]`.
    pub nuc_mask: Array3<f32>,
    /// Read counts per ASV slot, float32 `[batch, n_asv]` (0 in empty slots).
    pub counts: Array2<f32>,
    /// Targets, float32 `[batch]` (class index for classifiers), when fine-tuning.
    pub targets: Option<Array1<f32>>,
}

/// What [`time_training_steps`] measured.
#[derive(Debug, Clone)]
pub struct StepTimings {
    /// Total loss of the first (warm-up) step, before any update: the same weights and
    /// batch give the same value in any correct implementation.
    pub first_loss: f64,
    /// Wall time of each timed step after the warm-up, ms: host batch to tensors,
    /// forward, losses, backward, clipping, AdamW update.
    pub latencies_ms: Vec<f64>,
}

fn mask_ratio(data_predicts_nucleotides: bool, opts: &TrainOptions) -> Option<f64> {
    (opts.weights.nucleotide > 0.0 && data_predicts_nucleotides).then_some(opts.mask_ratio)
}

/// The batch of `samples` as the first training step of a run with `opts` builds it
/// (epoch 0, masking seed `opts.seed`). `predict_nucleotides`: whether the model has
/// the nucleotide head (masking is on only then). Errors: a streamed chunk that cannot
/// be read.
pub fn step_batch(
    data: &TrainData,
    samples: &[usize],
    opts: &TrainOptions,
    predict_nucleotides: bool,
) -> Result<StepBatch> {
    let ratio = mask_ratio(predict_nucleotides, opts);
    let host = host_batch(data, samples, 0, ratio.map(|r| (r, opts.seed)), None)?;
    let (tokens, targets, mask) = match host.masked {
        Some(m) => (m.tokens, m.targets, m.mask),
        None => {
            let dim = host.batch.tokens.raw_dim();
            (
                host.batch.tokens,
                Array3::zeros(dim.clone()),
                Array3::zeros(dim),
            )
        }
    };
    Ok(StepBatch {
        masked_tokens: tokens,
        nuc_targets: targets,
        nuc_mask: mask,
        counts: host.batch.counts,
        targets: host.batch.targets,
    })
}

/// Runs `1 + iterations` training steps of `model` on the batch of `samples` (built once,
/// as [`step_batch`]) with AdamW at `opts.lr`, `opts.weight_decay` and `opts.grad_clip`,
/// and times the last `iterations`. `predict_nucleotides` as in [`step_batch`].
///
/// Errors: `iterations == 0`, an optimizer other than AdamW, a non-finite loss.
pub fn time_training_steps<B, M>(
    mut model: M,
    data: &TrainData,
    samples: &[usize],
    opts: &TrainOptions,
    predict_nucleotides: bool,
    iterations: usize,
    device: &B::Device,
) -> Result<StepTimings>
where
    B: AutodiffBackend,
    M: AamModel<B> + AutodiffModule<B>,
{
    if iterations == 0 {
        bail!("at least one timed training step is needed");
    }
    if opts.optimizer != OptimizerKind::AdamW {
        bail!("the training-step benchmark runs AdamW, as the PyTorch reference does");
    }
    B::seed(device, opts.seed);
    // As `fit` does.
    crate::allocator::keep_freed_memory();
    let ratio = mask_ratio(predict_nucleotides, opts);
    let host = host_batch(data, samples, 0, ratio.map(|r| (r, opts.seed)), None)?;
    let class_weights = class_weight_tensor::<B>(data, opts, device);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(opts.weight_decay as f32)
        .with_grad_clipping(
            opts.grad_clip
                .map(|c| GradientClippingConfig::Norm(c as f32)),
        )
        .init::<B, M>();
    let mut first_loss = None;
    let mut latencies_ms = Vec::with_capacity(iterations);
    for _ in 0..=iterations {
        let started = Instant::now();
        let t = to_tensors::<B>(&host, data, device);
        let out = t.forward(&model);
        let (loss, parts) = loss_terms(&out, &t, data, opts, class_weights.as_ref());
        let value = parts["total"];
        if !value.is_finite() {
            bail!("the training loss became {value} in the step benchmark");
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(opts.lr, model, grads);
        B::sync(device).map_err(|e| anyhow::anyhow!("the training device failed: {e:?}"))?;
        match first_loss {
            None => first_loss = Some(value),
            Some(_) => latencies_ms.push(started.elapsed().as_secs_f64() * 1e3),
        }
    }
    Ok(StepTimings {
        first_loss: first_loss.unwrap_or(f64::NAN),
        latencies_ms,
    })
}

/// This machine's f32 GEMM rate, GFLOP/s: the best of `reps` products of two `n × n`
/// matrices on the Flex backend (gemm on every core; FLOPs = 2n³ per product), after a
/// warm-up product. The roofline of the benchmarks' "share of peak" columns.
pub fn gemm_gflops(n: usize, reps: usize) -> f64 {
    use burn::tensor::{Distribution, Tensor};
    let device = Default::default();
    let a = Tensor::<aam_model::CpuFlexBackend, 2>::random([n, n], Distribution::Default, &device);
    let b = Tensor::<aam_model::CpuFlexBackend, 2>::random([n, n], Distribution::Default, &device);
    let _ = a.clone().matmul(b.clone()).into_data();
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let started = Instant::now();
        let _ = a.clone().matmul(b.clone()).into_data();
        best = best.min(started.elapsed().as_secs_f64());
    }
    2.0 * (n as f64).powi(3) / best / 1e9
}
