//! Training options shared by `aam pretrain` and `aam train`.

use serde::{Deserialize, Serialize};

use crate::batch_size::AutoBatchSize;
use crate::loss_scale::LossScaler;
use crate::prefetch::PrefetchOptions;
use crate::schedule::ScheduleKind;

/// Optimizer choice (spec §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum OptimizerKind {
    /// AdamW (decoupled weight decay), the default.
    #[cfg_attr(feature = "clap", value(name = "adamw"))]
    AdamW,
    /// Adam (L2 weight decay when set).
    Adam,
    /// SGD with momentum 0.9.
    Sgd,
}

/// The device a training run computes on (`--device`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ComputeDevice {
    /// The CPU: Burn's Flex backend (gemm on every core), or its single-threaded
    /// ndarray backend for bit-for-bit repeatable runs.
    #[default]
    #[cfg_attr(
        feature = "clap",
        value(help = "Burn's Flex backend on every CPU core (ndarray with --deterministic)")
    )]
    Cpu,
    /// NVIDIA GPUs through Burn's CUDA backend (a build with the `cuda` feature).
    #[cfg_attr(
        feature = "clap",
        value(help = "Burn's CUDA backend on NVIDIA GPUs (a build with --features cuda)")
    )]
    Cuda,
}

/// Weights of the loss terms in the total loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossWeights {
    /// Pairwise UniFrac loss on the sample embeddings.
    pub unifrac: f64,
    /// Masked-nucleotide cross-entropy.
    pub nucleotide: f64,
    /// Faith PD regression (faith_pd encoder type).
    pub faith_pd: f64,
    /// Target loss (train only).
    pub target: f64,
    /// Count loss (train only).
    pub count: f64,
}

/// Options of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Epochs.
    pub epochs: usize,
    /// Samples per batch (≥ 2).
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Weight decay (AdamW default 0.01).
    pub weight_decay: f64,
    /// Learning-rate schedule.
    pub schedule: ScheduleKind,
    /// Warm-up steps; `None`: min(10,000, 10% of total steps).
    pub warmup: Option<usize>,
    /// Gradient clipping by norm (per parameter tensor, Burn's clipping).
    pub grad_clip: Option<f64>,
    /// Batches per optimizer step.
    pub grad_accum: usize,
    /// Stop after this many epochs without a better validation loss.
    pub patience: Option<usize>,
    /// Seed of every RNG (init, shuffling, masking, dropout).
    pub seed: u64,
    /// Loss weights.
    pub weights: LossWeights,
    /// τ in `tanh(‖e_i − e_j‖ / τ)`.
    pub temperature: f64,
    /// Fraction of real nucleotides masked for the nucleotide loss.
    pub mask_ratio: f64,
    /// The regression target loss (`--loss-type`).
    #[serde(default)]
    pub regression: crate::RegressionLoss,
    /// The validation metric that picks the kept epoch and drives early stopping.
    #[serde(default)]
    pub best_metric: crate::BestMetric,
    /// Inverse-frequency class weights for classification.
    pub class_weights: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// Stop this invocation after this many epochs, leaving a resumable checkpoint (the
    /// schedule still spans `epochs`).
    pub stop_after_epochs: Option<usize>,
    /// Data pipeline: worker threads building batches ahead of the training step.
    #[serde(default)]
    pub prefetch: PrefetchOptions,
    /// Pick the batch size (and gradient accumulation) from a memory budget instead of
    /// `batch_size` (and `grad_accum`); see [`crate::batch_size`].
    #[serde(default)]
    pub auto_batch_size: Option<AutoBatchSize>,
    /// Dynamic loss scaling, for fp16 mixed precision (the model's
    /// `mixed_precision`): the scaler the run starts with; `None` for f32 and bf16.
    #[serde(default)]
    pub loss_scaling: Option<LossScaler>,
    /// Training-batch augmentation (`--augment`); validation batches are never augmented.
    pub augmentation: Option<aam_data::Augmentation>,
    /// The model's ASV encoder is frozen (`--freeze-base`): its embeddings are computed
    /// once per distinct ASV of the run in eval mode and reused by every step and epoch
    /// ([`crate::asv_embedding_cache`]); the masked-nucleotide loss, which would train
    /// only the frozen encoder, is off. Ignored (with a warning) for streamed tables,
    /// nucleotide-substitution augmentation and several devices.
    #[serde(default)]
    pub cache_asv_embeddings: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 10,
            batch_size: 8,
            lr: 1e-4,
            optimizer: OptimizerKind::AdamW,
            weight_decay: 0.01,
            schedule: ScheduleKind::WarmupCosine,
            warmup: None,
            grad_clip: Some(1.0),
            grad_accum: 1,
            patience: Some(10),
            seed: 42,
            weights: LossWeights {
                unifrac: 1.0,
                nucleotide: 1.0,
                faith_pd: 1.0,
                target: 1.0,
                count: 1.0,
            },
            temperature: 10.0,
            mask_ratio: 0.15,
            regression: crate::RegressionLoss::default(),
            best_metric: crate::BestMetric::default(),
            class_weights: false,
            progress: true,
            stop_after_epochs: None,
            prefetch: PrefetchOptions::default(),
            auto_batch_size: None,
            loss_scaling: None,
            augmentation: None,
            cache_asv_embeddings: false,
        }
    }
}
