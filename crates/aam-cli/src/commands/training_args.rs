//! Arguments shared by `aam pretrain` and `aam train` (as `aam_train::job_inputs::JobInputs`,
//! `ModelConfig` and `TrainOptions`), and the training backend that `--device` selects.

use std::path::PathBuf;

use aam_config::DataSettings;
use aam_config::{AttentionKind, CountEmbeddingMethod, MixedPrecision, ModelConfig};
use aam_data::TokenLimitPolicy;
use aam_train::job_inputs::{DistanceTarget, JobInputs};
use aam_train::{
    AutoBatchSize, ComputeDevice, LossScaler, LossWeights, MemorySource, OptimizerKind,
    PrefetchOptions, ScheduleKind, TrainOptions,
};
use anyhow::{bail, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;

/// Inputs and output of a training run.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Feature table (BIOM 2.1 HDF5, BIOM 1.0 JSON, TSV or a QIIME 2
    /// FeatureTable[Frequency] .qza); observation IDs are ASV sequences, or feature IDs
    /// that --sequences maps to them.
    #[arg(long)]
    pub table: PathBuf,
    /// Sequences of the table's feature IDs when those are not sequences (QIIME 2's
    /// DADA2 hashes): rep-seqs.qza (FeatureData[Sequence]) or a FASTA file.
    #[arg(long)]
    pub sequences: Option<PathBuf>,
    /// UniFrac distance matrix (ssu .h5, .npy with *_ids.txt sidecar, labelled .csv/.tsv,
    /// or a QIIME 2 DistanceMatrix .qza).
    #[arg(long)]
    pub unifrac_matrix: Option<PathBuf>,
    /// Sample order of a .npy matrix, one ID per line.
    #[arg(long)]
    pub unifrac_ids: Option<PathBuf>,
    /// Distance the sample embeddings learn: `unifrac` reads --unifrac-matrix (unweighted
    /// or weighted normalized UniFrac, or any user-supplied distance matrix in [0, 1]);
    /// braycurtis, jaccard (presence/absence) and aitchison (robust CLR, divided by its
    /// largest value to fit [0, 1]) are computed from the (rarefied) table.
    #[arg(long, value_enum, default_value_t = DistanceTarget::Unifrac)]
    pub distance: DistanceTarget,
    /// Keep the samples shared by the table and the matrix/metadata instead of failing.
    #[arg(long)]
    pub allow_sample_subset: bool,
    /// Rarefy to this depth (without replacement) before training; off by default.
    #[arg(long)]
    pub rarefy_depth: Option<u64>,
    /// Rarefy with replacement.
    #[arg(long, requires = "rarefy_depth")]
    pub rarefy_with_replacement: bool,
    /// Sample metadata TSV (needed for --metadata-column and --group-column).
    #[arg(long)]
    pub metadata: Option<PathBuf>,
    /// Metadata column whose values keep a group (e.g. host_subject_id) on one side of the split.
    #[arg(long, requires = "metadata")]
    pub group_column: Option<String>,
    /// Fraction of samples (or groups) held out for validation. 0: none (e.g. pretraining
    /// the encoder on every sample of the table, which reads no target): the training
    /// loss then drives the schedule, and the last epoch is kept (no early stopping).
    #[arg(long, default_value_t = 0.2)]
    pub validation_fraction: f64,
    /// Re-use a split written by an earlier run (`split.tsv`).
    #[arg(long)]
    pub split: Option<PathBuf>,
    /// Checkpoint directory to write.
    #[arg(long)]
    pub output: PathBuf,
    /// Continue the run in --output from its last epoch.
    #[arg(long)]
    pub resume: bool,
    /// Replace an existing checkpoint in --output.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Read the table (BIOM 2.1 HDF5) --chunk-samples samples at a time while training,
    /// instead of whole: the counts and ASV tokens held follow the chunk, not the table.
    /// Each epoch visits the chunks in a random order and a chunk's samples in a random
    /// order; a batch (and so every pair of the UniFrac loss) comes from one chunk, so a
    /// file sorted by study, subject or body site should be shuffled first, or read in
    /// large chunks. The distance matrix is still read whole.
    #[arg(long, conflicts_with = "rarefy_depth")]
    pub streaming: bool,
    /// Samples per chunk with --streaming.
    #[arg(long, default_value_t = 10_000, requires = "streaming", value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_samples: u64,
}

impl InputArgs {
    /// These arguments as the library's job inputs.
    pub fn job_inputs(&self) -> JobInputs {
        JobInputs {
            table: self.table.clone(),
            sequences: self.sequences.clone(),
            unifrac_matrix: self.unifrac_matrix.clone(),
            unifrac_ids: self.unifrac_ids.clone(),
            distance: self.distance,
            allow_sample_subset: self.allow_sample_subset,
            rarefy_depth: self.rarefy_depth,
            rarefy_with_replacement: self.rarefy_with_replacement,
            metadata: self.metadata.clone(),
            group_column: self.group_column.clone(),
            validation_fraction: self.validation_fraction,
            split: self.split.clone(),
            output: self.output.clone(),
            resume: self.resume,
            overwrite: self.overwrite,
            streaming: self.streaming,
            chunk_samples: self.chunk_samples as usize,
        }
    }
}

/// Architecture arguments (ignored with --pretrained-encoder, which brings its own). The
/// sizes default to [`ModelConfig::default`]'s (the reference's); the k-mer embedding,
/// count embedding, abundance pooling and token-limit policy default to aam's own choices.
#[derive(Args, Debug, Clone)]
pub struct ArchArgs {
    /// Embedding dim D.
    #[arg(long, default_value_t = ModelConfig::default().embedding_dim)]
    pub embedding_dim: usize,
    /// Attention heads in every stack.
    #[arg(long, default_value_t = ModelConfig::default().asv_num_heads)]
    pub attention_heads: usize,
    /// Layers in every transformer stack.
    #[arg(long, default_value_t = ModelConfig::default().asv_num_layers)]
    pub attention_layers: usize,
    /// Longest sequence kept, bp (token rows are max_bp + 1).
    #[arg(long, default_value_t = ModelConfig::default().max_bp)]
    pub max_bp: usize,
    /// Maximum ASVs per sample.
    #[arg(long, default_value_t = ModelConfig::default().token_limit)]
    pub token_limit: usize,
    /// Which ASVs a sample keeps beyond the token limit: the most abundant by default
    /// (the reference keeps the first in table order: `first`; its `--asv-sampling`).
    #[arg(long, value_enum, default_value_t = TokenLimitPolicy::Abundance, alias = "asv-sampling")]
    pub token_limit_policy: TokenLimitPolicy,
    /// Feed each ASV's read count to the sample encoder as c = ln(count + 1): `add`
    /// (a + Linear(c), the default), `concat` (Linear([a ; Linear(c)])) or `film`
    /// (a·(1 + γ(c)) + β(c)), as the reference's --count-embedding; `none`: the model
    /// sees which ASVs a sample holds, not how abundant they are (the reference's
    /// default). With --pretrained-encoder that has none, fresh count layers are added
    /// (and train even with --freeze-base). The exported model then takes `counts` beside
    /// `tokens`
    #[arg(
        long,
        value_parser = parse_count_embedding,
        value_name = "none|add|concat|film",
        default_value = "add"
    )]
    pub count_embedding: CountEmbeddingArg,
    /// Abundance-weighted attention pooling (on by default; `--abundance-pooling false`:
    /// the reference's attention pooling): the poolings to the sample embedding and to
    /// the target weight each ASV by its read count + 1 besides the learnt attention score
    /// (α ∝ (count + 1)·exp(q·h/√D); at initialisation the abundance-weighted mean of the
    /// ASVs). Not in the reference. Has no weights, so it can be added on top of a
    /// --pretrained-encoder. The exported model then takes `counts` beside `tokens`
    #[arg(
        long,
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_name = "true|false"
    )]
    pub abundance_pooling: bool,
    /// K-mer embedding of each ASV (0: none, the reference's model): the sum of one
    /// learnt vector per k-mer over the sequence's windows of K nucleotides, divided by
    /// the square root of their number, is added to the ASV encoder's pooled embedding,
    /// so related sequences start with related embeddings instead of waiting for the
    /// nucleotide transformer to learn them. Not in the reference. At most 8 (a table of
    /// 4^K × embedding-dim weights). An encoder given by --pretrained-encoder keeps its own
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(0..=8))]
    pub kmer_size: u64,
    /// Dropout probability.
    #[arg(long, default_value_t = ModelConfig::default().dropout)]
    pub dropout: f64,
}

/// Optimisation arguments; their defaults are [`TrainOptions::default`]'s.
#[derive(Args, Debug, Clone)]
pub struct OptimArgs {
    /// Epochs.
    #[arg(long, default_value_t = TrainOptions::default().epochs)]
    pub epochs: usize,
    /// Samples per batch (at least 2).
    #[arg(long, default_value_t = TrainOptions::default().batch_size)]
    pub batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = TrainOptions::default().lr)]
    pub lr: f64,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = TrainOptions::default().optimizer)]
    pub optimizer: OptimizerKind,
    /// Weight decay.
    #[arg(long, default_value_t = TrainOptions::default().weight_decay)]
    pub weight_decay: f64,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = TrainOptions::default().schedule)]
    pub scheduler: ScheduleKind,
    /// Warm-up steps (default: min(10,000, 10% of all steps)).
    #[arg(long)]
    pub warmup_steps: Option<usize>,
    /// Clip each gradient tensor to this norm (0 turns clipping off).
    #[arg(long, default_value_t = TrainOptions::default().grad_clip.unwrap_or(0.0))]
    pub grad_clip: f64,
    /// Batches per optimizer step.
    #[arg(long, default_value_t = TrainOptions::default().grad_accum)]
    pub grad_accum: usize,
    /// Threads building batches (token rows, UniFrac block, nucleotide masking) while the
    /// model trains; 0 builds each batch on the training thread. Results do not depend on it.
    #[arg(long, default_value_t = TrainOptions::default().prefetch.workers)]
    pub data_workers: usize,
    /// Pick --batch-size as the largest whose training step fits --memory-budget-mib
    /// (doubling, then bisection, on the training samples with the most ASVs): host
    /// memory on the CPU, GPU memory with --device cuda (as the CUDA driver reports it;
    /// with several --devices, sized for the first GPU alone).
    #[arg(long)]
    pub auto_batch_size: bool,
    /// Memory that may be in use in all, MiB, for --auto-batch-size: the training
    /// process's resident memory on the CPU, the GPU's memory in use (every process's)
    /// with --device cuda. Default: what is in use now plus 80% of what is free.
    #[arg(long, requires = "auto_batch_size")]
    pub memory_budget_mib: Option<f64>,
    /// With --auto-batch-size: gradient accumulation steps chosen so that each optimizer
    /// step sees at least this many samples (instead of --grad-accum).
    #[arg(long, requires = "auto_batch_size", value_parser = clap::value_parser!(u64).range(1..))]
    pub target_effective_batch_size: Option<u64>,
    /// Batches queued ahead of the training step (memory: at most
    /// data-workers · (⌈prefetch / data-workers⌉ + 1) batches).
    #[arg(long, default_value_t = TrainOptions::default().prefetch.depth as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub prefetch: u64,
    /// Stop after this many epochs without a better validation loss (0: never).
    #[arg(long, default_value_t = TrainOptions::default().patience.unwrap_or(0))]
    pub patience: usize,
    /// Seed of every random choice (split, init, shuffling, masking, dropout).
    #[arg(long, default_value_t = TrainOptions::default().seed)]
    pub seed: u64,
    /// Augment the training batches, drawn afresh per sample and epoch from --seed:
    /// any of rarefy=DEPTH (re-rarefied every epoch; samples with fewer reads or
    /// non-integer counts kept as they are), subset=P (each ASV kept with
    /// probability P), noise=σ (counts × exp(σ·z)), substitution=R (nucleotides
    /// substituted at rate R), comma-separated, e.g. `subset=0.8,noise=0.1`.
    #[arg(long)]
    pub augment: Option<aam_data::Augmentation>,
    /// Weight of the UniFrac loss.
    #[arg(long, default_value_t = TrainOptions::default().weights.unifrac)]
    pub unifrac_weight: f64,
    /// Weight of the masked-nucleotide loss (0 turns masking off).
    #[arg(long, default_value_t = TrainOptions::default().weights.nucleotide)]
    pub nuc_weight: f64,
    /// τ in tanh(‖e_i − e_j‖ / τ), the predicted UniFrac distance.
    #[arg(long, default_value_t = TrainOptions::default().temperature)]
    pub temperature: f64,
    /// Fraction of nucleotides masked for the nucleotide loss.
    #[arg(long, default_value_t = TrainOptions::default().mask_ratio)]
    pub mask_ratio: f64,
    /// No progress bar or epoch lines.
    #[arg(long)]
    pub quiet: bool,
    /// Compute device (`cuda` needs a build with `--features cuda`).
    #[arg(long, value_enum, default_value_t = ComputeDevice::default())]
    pub device: ComputeDevice,
    /// Gradient checkpointing in every transformer stack (Burn's balanced strategy):
    /// element-wise results are recomputed in the backward pass instead of kept, which
    /// lowers peak memory for some extra compute; gradients are unchanged.
    #[arg(long)]
    pub gradient_checkpointing: bool,
    /// With --device cuda: run every tensor operation as its own kernel, without Burn's
    /// kernel fusion (on by default on GPUs: chains of element-wise operations and
    /// reductions fused into one kernel). Slower; for measuring what fusion gains, or
    /// as a fallback. The CPU backends do not fuse kernels.
    #[arg(long)]
    pub no_kernel_fusion: bool,
    /// Self-attention implementation: `math` (separate ops, scores materialised) or
    /// `fused` (Burn's fused attention: FlashAttention on GPU backends in inference and
    /// validation; Burn 0.21 trains it with unfused ops). Equal results; training steps
    /// with --dropout > 0 run the math path (no attention-weight dropout in the kernel).
    #[arg(long, value_enum, default_value_t = AttentionKind::default())]
    pub attention: AttentionKind,
    /// Half-precision matrix products in the transformer stacks, f32 master weights:
    /// `bf16` (f32 range, no loss scaling), `fp16` (dynamic loss scaling from 2^16:
    /// steps whose gradients overflow are skipped and the scale halved; both reported
    /// per epoch) or `none`. On the CPU the run uses Burn's Flex backend (ndarray has no
    /// half types), which emulates them and is not faster; the gain is on GPUs. Attention
    /// runs the math path (softmax in f32) whatever --attention says.
    #[arg(long, value_enum, default_value_t = MixedPrecision::default())]
    pub mixed_precision: MixedPrecision,
    /// Train on the CPU with Burn's single-threaded ndarray backend, whose float sums
    /// run in the same order every time: a seed then repeats a run bit for bit, on any
    /// machine. Without it the CPU backend is Burn's Flex (gemm on every core, SIMD),
    /// several times faster, whose parallel reductions may differ in the last bits from
    /// run to run. f32 only.
    #[arg(long)]
    pub deterministic: bool,
    /// GPUs to train on, data parallel (with `--device cuda`; e.g. `0,1`): every batch is
    /// split across them, the UniFrac loss is computed over the whole batch gathered on
    /// the first, and the gradients are summed there. Default: the first GPU.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub devices: Vec<usize>,
}

/// The devices a training backend runs on, from `--devices`.
pub trait TrainingDevices: AutodiffBackend {
    /// The device of each index (the backend's default device when none is given).
    fn training_devices(indices: &[usize]) -> Vec<Self::Device>;
}

macro_rules! one_cpu_device {
    ($($backend:ty),*) => {$(
        impl TrainingDevices for $backend {
            /// The CPU backends have one device (ops use all its threads); `check_device`
            /// refuses `--devices` with `--device cpu`.
            fn training_devices(_: &[usize]) -> Vec<Self::Device> {
                vec![Default::default()]
            }
        }
    )*};
}
one_cpu_device!(
    aam_model::CpuAutodiff,
    aam_model::CpuAutodiffCheckpointed,
    aam_model::CpuFlexAutodiff,
    aam_model::CpuFlexAutodiffCheckpointed
);

#[cfg(feature = "cuda")]
macro_rules! cuda_devices {
    ($($backend:ty),*) => {$(
        impl TrainingDevices for $backend {
            fn training_devices(indices: &[usize]) -> Vec<Self::Device> {
                if indices.is_empty() {
                    return vec![Default::default()];
                }
                indices
                    .iter()
                    .map(|&index| burn::backend::cuda::CudaDevice { index })
                    .collect()
            }
        }
    )*};
}
#[cfg(feature = "cuda")]
cuda_devices!(
    aam_model::CudaAutodiff,
    aam_model::CudaAutodiffCheckpointed,
    aam_model::CudaUnfusedAutodiff,
    aam_model::CudaUnfusedAutodiffCheckpointed
);

/// Errors when `--device cuda` is asked of a build without the `cuda` feature, or a
/// GPU-only option (`--devices`, `--no-kernel-fusion`) with `--device cpu`.
pub fn check_device(optim: &OptimArgs) -> Result<()> {
    if optim.device == ComputeDevice::Cuda && !cfg!(feature = "cuda") {
        bail!("--device cuda: this aam was built without CUDA support; rebuild with `cargo build --release -p aam-cli --features cuda`");
    }
    if optim.device == ComputeDevice::Cpu && optim.no_kernel_fusion {
        bail!("--no-kernel-fusion applies to --device cuda; the CPU backends run every operation as its own kernel already, so drop the flag");
    }
    if optim.device == ComputeDevice::Cpu && !optim.devices.is_empty() {
        bail!("--devices selects GPUs and needs --device cuda; on the CPU every operation already uses all threads (--threads)");
    }
    if let Some(dup) = optim
        .devices
        .iter()
        .enumerate()
        .find_map(|(i, d)| optim.devices[..i].contains(d).then_some(d))
    {
        bail!("--devices lists GPU {dup} twice; give each GPU index once");
    }
    if optim.deterministic && optim.device != ComputeDevice::Cpu {
        bail!("--deterministic applies to --device cpu (Burn's single-threaded ndarray backend); GPU training does not repeat bit for bit, so drop the flag or train with --device cpu");
    }
    if optim.deterministic && optim.mixed_precision != MixedPrecision::None {
        bail!("--deterministic trains in f32 (the ndarray backend has no half types); drop --mixed-precision, or drop --deterministic to train in half precision on the Flex backend");
    }
    Ok(())
}

/// Errors when a numeric training setting is out of its range, naming the flag: checked
/// before anything is read or written.
pub fn check_numbers(optim: &OptimArgs) -> Result<()> {
    let checks: [(&str, f64, bool, &str); 7] = [
        (
            "--lr",
            optim.lr,
            optim.lr > 0.0,
            "a positive number, e.g. 1e-4",
        ),
        (
            "--weight-decay",
            optim.weight_decay,
            optim.weight_decay >= 0.0,
            "0 or more",
        ),
        (
            "--grad-clip",
            optim.grad_clip,
            optim.grad_clip >= 0.0,
            "0 (off) or more",
        ),
        (
            "--temperature",
            optim.temperature,
            optim.temperature > 0.0,
            "a positive number",
        ),
        (
            "--mask-ratio",
            optim.mask_ratio,
            (0.0..1.0).contains(&optim.mask_ratio),
            "in [0, 1)",
        ),
        (
            "--unifrac-weight",
            optim.unifrac_weight,
            optim.unifrac_weight >= 0.0,
            "0 or more",
        ),
        (
            "--nuc-weight",
            optim.nuc_weight,
            optim.nuc_weight >= 0.0,
            "0 or more",
        ),
    ];
    for (flag, value, ok, range) in checks {
        if !value.is_finite() || !ok {
            bail!("{flag} {value}: must be {range}");
        }
    }
    if optim.epochs == 0 {
        bail!("--epochs 0: must be at least 1");
    }
    if !optim.auto_batch_size && optim.batch_size < 2 {
        bail!("--batch-size must be at least 2 (pairwise UniFrac needs two samples per batch), got {}", optim.batch_size);
    }
    Ok(())
}

/// Parses a `--count-embedding` value.
/// `--count-embedding`: a method, or `none` (`None`).
#[derive(Clone, Copy, Debug)]
pub struct CountEmbeddingArg(pub Option<CountEmbeddingMethod>);

fn parse_count_embedding(s: &str) -> std::result::Result<CountEmbeddingArg, String> {
    if s == "none" {
        return Ok(CountEmbeddingArg(None));
    }
    [
        CountEmbeddingMethod::Add,
        CountEmbeddingMethod::Concat,
        CountEmbeddingMethod::Film,
    ]
    .into_iter()
    .find(|m| m.name() == s)
    .map(|m| CountEmbeddingArg(Some(m)))
    .ok_or_else(|| format!("`{s}` is not a count embedding; use none, add, concat or film"))
}

impl ArchArgs {
    /// The model configuration these arguments describe (every stack gets the same
    /// depth and head count, as the reference CLI does).
    pub fn model_config(&self, predict_nucleotides: bool) -> ModelConfig {
        let (layers, heads) = (self.attention_layers, self.attention_heads);
        ModelConfig {
            embedding_dim: self.embedding_dim,
            max_bp: self.max_bp,
            token_limit: self.token_limit,
            asv_num_layers: layers,
            sample_num_layers: layers,
            encoder_num_layers: layers,
            count_num_layers: layers,
            target_num_layers: layers,
            asv_num_heads: heads,
            sample_num_heads: heads,
            encoder_num_heads: heads,
            count_num_heads: heads,
            target_num_heads: heads,
            dropout: self.dropout,
            predict_nucleotides,
            count_embedding: self.count_embedding.0.is_some(),
            count_embedding_method: self.count_embedding.0.unwrap_or_default(),
            abundance_pooling: self.abundance_pooling,
            kmer_size: self.kmer_size as usize,
            ..ModelConfig::default()
        }
    }

    /// Input preparation for these arguments.
    pub fn data_settings(&self, rarefy_depth: Option<u64>) -> DataSettings {
        DataSettings {
            max_bp: self.max_bp,
            token_limit: self.token_limit,
            token_limit_policy: self.token_limit_policy,
            rarefy_depth,
        }
    }
}

impl OptimArgs {
    /// Training options with the given loss weights for target and count terms.
    pub fn options(
        &self,
        target_weight: f64,
        count_weight: f64,
        class_weights: bool,
    ) -> TrainOptions {
        TrainOptions {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            optimizer: self.optimizer,
            weight_decay: self.weight_decay,
            schedule: self.scheduler,
            warmup: self.warmup_steps,
            grad_clip: (self.grad_clip > 0.0).then_some(self.grad_clip),
            grad_accum: self.grad_accum.max(1),
            patience: (self.patience > 0).then_some(self.patience),
            seed: self.seed,
            weights: LossWeights {
                unifrac: self.unifrac_weight,
                nucleotide: self.nuc_weight,
                faith_pd: 1.0,
                target: target_weight,
                count: count_weight,
            },
            temperature: self.temperature,
            mask_ratio: self.mask_ratio,
            regression: Default::default(),
            best_metric: Default::default(),
            class_weights,
            progress: !self.quiet,
            stop_after_epochs: None,
            prefetch: PrefetchOptions {
                workers: self.data_workers,
                depth: self.prefetch as usize,
            },
            auto_batch_size: self.auto_batch_size.then_some(AutoBatchSize {
                budget_mib: self.memory_budget_mib,
                target_effective_batch_size: self.target_effective_batch_size.map(|t| t as usize),
                memory: match self.device {
                    ComputeDevice::Cpu => MemorySource::Host,
                    ComputeDevice::Cuda => MemorySource::Cuda {
                        ordinal: self.devices.first().copied().unwrap_or(0),
                    },
                },
            }),
            loss_scaling: (self.mixed_precision == MixedPrecision::Fp16).then(LossScaler::default),
            augmentation: self.augment.filter(|a| !a.is_none()),
            cache_asv_embeddings: false,
        }
    }
}

/// Prints the end-of-run summary of `aam pretrain` / `aam train`.
pub fn report_done(report: &aam_train::FitReport, input: &InputArgs) {
    if report
        .epochs
        .last()
        .is_some_and(|r| r.validation.is_empty())
    {
        eprintln!(
            "done: no validation samples, the last epoch ({}) is kept; checkpoint in {}",
            report.best.1,
            input.output.display()
        );
        return;
    }
    eprintln!(
        "done: best validation loss {:.4} at epoch {}; checkpoint in {}",
        report.best.0,
        report.best.1,
        input.output.display()
    );
}

/// Expands to `$fit!(B)` with `B` the autodiff backend that `--device` and
/// `--gradient-checkpointing` of `$optim` (an [`OptimArgs`]) select; one match for
/// `pretrain` and `train`.
macro_rules! on_training_backend {
    ($optim:expr, $fit:ident) => {{
        use aam_train::ComputeDevice as D;
        // (device, gradient checkpointing, bit-exact CPU repetition, kernel fusion off)
        match (
            $optim.device,
            $optim.gradient_checkpointing,
            $optim.deterministic,
            $optim.no_kernel_fusion,
        ) {
            (D::Cpu, false, false, false) => $fit!(aam_model::CpuFlexAutodiff),
            (D::Cpu, true, false, false) => $fit!(aam_model::CpuFlexAutodiffCheckpointed),
            (D::Cpu, false, true, false) => $fit!(aam_model::CpuAutodiff),
            (D::Cpu, true, true, false) => $fit!(aam_model::CpuAutodiffCheckpointed),
            (D::Cpu, _, _, _) => unreachable!("rejected by check_device"),
            #[cfg(feature = "cuda")]
            (D::Cuda, false, _, false) => $fit!(aam_model::CudaAutodiff),
            #[cfg(feature = "cuda")]
            (D::Cuda, true, _, false) => $fit!(aam_model::CudaAutodiffCheckpointed),
            #[cfg(feature = "cuda")]
            (D::Cuda, false, _, true) => $fit!(aam_model::CudaUnfusedAutodiff),
            #[cfg(feature = "cuda")]
            (D::Cuda, true, _, true) => {
                $fit!(aam_model::CudaUnfusedAutodiffCheckpointed)
            }
            #[cfg(not(feature = "cuda"))]
            (D::Cuda, _, _, _) => unreachable!("rejected by check_device"),
        }
    }};
}
pub(crate) use on_training_backend;
