//! Arguments shared by `aam pretrain` and `aam train`, and the input preparation both do.

use std::path::{Path, PathBuf};

use aam_data::error::name_list;
use aam_data::{
    beta_diversity, distance, load_table, rarefy, split, BetaMetric, DistanceMatrix, FeatureTable,
    Metadata, SampleStream, TokenLimitPolicy,
};
use aam_model::{AttentionKind, CountEmbeddingMethod, MixedPrecision, ModelConfig};
use aam_train::{
    AutoBatchSize, DataSettings, LossScaler, LossWeights, MemorySource, OptimizerKind,
    PrefetchOptions, ScheduleKind, TrainOptions,
};
use anyhow::{bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, ValueEnum};

/// Inputs and output of a training run.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Feature table (BIOM 2.1 HDF5, BIOM 1.0 JSON or TSV); observation IDs are ASV sequences.
    #[arg(long)]
    pub table: PathBuf,
    /// UniFrac distance matrix (ssu .h5, .npy with *_ids.txt sidecar, labelled .csv/.tsv).
    #[arg(long)]
    pub unifrac_matrix: Option<PathBuf>,
    /// Sample order of a .npy matrix, one ID per line.
    #[arg(long)]
    pub unifrac_ids: Option<PathBuf>,
    /// Distance the sample embeddings learn: `unifrac` reads --unifrac-matrix (unweighted
    /// or weighted normalized UniFrac, or any user-supplied distance matrix in [0, 1]);
    /// braycurtis, jaccard (presence/absence) and aitchison (robust CLR, divided by its
    /// largest value to fit [0, 1]) are computed from the (rarefied) table.
    #[arg(long, value_enum, default_value_t = DistanceArg::Unifrac)]
    pub distance: DistanceArg,
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

/// Architecture arguments (ignored with --pretrained-encoder, which brings its own).
#[derive(Args, Debug, Clone)]
pub struct ArchArgs {
    /// Embedding dim D.
    #[arg(long, default_value_t = 128)]
    pub embedding_dim: usize,
    /// Attention heads in every stack.
    #[arg(long, default_value_t = 4)]
    pub attention_heads: usize,
    /// Layers in every transformer stack.
    #[arg(long, default_value_t = 2)]
    pub attention_layers: usize,
    /// Longest sequence kept, bp (token rows are max_bp + 1).
    #[arg(long, default_value_t = 150)]
    pub max_bp: usize,
    /// Maximum ASVs per sample.
    #[arg(long, default_value_t = 1024)]
    pub token_limit: usize,
    /// Which ASVs a sample keeps beyond the token limit: the most abundant by default
    /// (the reference keeps the first in table order: `first`).
    #[arg(long, value_enum, default_value_t = PolicyArg::Abundance)]
    pub token_limit_policy: PolicyArg,
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
    #[arg(long, default_value_t = 0.1)]
    pub dropout: f64,
}

/// Optimisation arguments.
#[derive(Args, Debug, Clone)]
pub struct OptimArgs {
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Samples per batch (at least 2).
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = OptimArg::Adamw)]
    pub optimizer: OptimArg,
    /// Weight decay.
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = SchedArg::WarmupCosine)]
    pub scheduler: SchedArg,
    /// Warm-up steps (default: min(10,000, 10% of all steps)).
    #[arg(long)]
    pub warmup_steps: Option<usize>,
    /// Clip each gradient tensor to this norm (0 turns clipping off).
    #[arg(long, default_value_t = 1.0)]
    pub grad_clip: f64,
    /// Batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Threads building batches (token rows, UniFrac block, nucleotide masking) while the
    /// model trains; 0 builds each batch on the training thread. Results do not depend on it.
    #[arg(long, default_value_t = 1)]
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
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub prefetch: u64,
    /// Stop after this many epochs without a better validation loss (0: never).
    #[arg(long, default_value_t = 10)]
    pub patience: usize,
    /// Seed of every random choice (split, init, shuffling, masking, dropout).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Augment the training batches, drawn afresh per sample and epoch from --seed:
    /// any of rarefy=DEPTH (re-rarefied every epoch; samples with fewer reads or
    /// non-integer counts kept as they are), subset=P (each ASV kept with
    /// probability P), noise=σ (counts × exp(σ·z)), substitution=R (nucleotides
    /// substituted at rate R), comma-separated, e.g. `subset=0.8,noise=0.1`.
    #[arg(long)]
    pub augment: Option<aam_data::Augmentation>,
    /// Weight of the UniFrac loss.
    #[arg(long, default_value_t = 1.0)]
    pub unifrac_weight: f64,
    /// Weight of the masked-nucleotide loss (0 turns masking off).
    #[arg(long, default_value_t = 1.0)]
    pub nuc_weight: f64,
    /// τ in tanh(‖e_i − e_j‖ / τ), the predicted UniFrac distance.
    #[arg(long, default_value_t = 10.0)]
    pub temperature: f64,
    /// Fraction of nucleotides masked for the nucleotide loss.
    #[arg(long, default_value_t = 0.15)]
    pub mask_ratio: f64,
    /// No progress bar or epoch lines.
    #[arg(long)]
    pub quiet: bool,
    /// Compute device: `cpu`, or `cuda` (NVIDIA GPU; needs a build with `--features cuda`).
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
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
    #[arg(long, value_enum, default_value_t = AttentionArg::Math)]
    pub attention: AttentionArg,
    /// Half-precision matrix products in the transformer stacks, f32 master weights:
    /// `bf16` (f32 range, no loss scaling), `fp16` (dynamic loss scaling from 2^16:
    /// steps whose gradients overflow are skipped and the scale halved; both reported
    /// per epoch) or `none`. On the CPU the run uses Burn's Flex backend (ndarray has no
    /// half types), which emulates them and is not faster; the gain is on GPUs. Attention
    /// runs the math path (softmax in f32) whatever --attention says.
    #[arg(long, value_enum, default_value_t = MixedPrecisionArg::None)]
    pub mixed_precision: MixedPrecisionArg,
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

/// `--mixed-precision` values.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum MixedPrecisionArg {
    /// f32 everywhere.
    None,
    /// bfloat16 matrix products.
    Bf16,
    /// IEEE half matrix products with dynamic loss scaling.
    Fp16,
}

impl From<MixedPrecisionArg> for MixedPrecision {
    fn from(a: MixedPrecisionArg) -> Self {
        match a {
            MixedPrecisionArg::None => MixedPrecision::None,
            MixedPrecisionArg::Bf16 => MixedPrecision::Bf16,
            MixedPrecisionArg::Fp16 => MixedPrecision::Fp16,
        }
    }
}

/// `--attention` values.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum AttentionArg {
    /// Separate matmul, softmax and matmul.
    Math,
    /// Burn's fused attention.
    Fused,
}

impl OptimArgs {
    /// The attention implementation, with a warning when dropout keeps training on the
    /// math path.
    pub fn attention_kind(&self, dropout: f64) -> AttentionKind {
        match self.attention {
            AttentionArg::Math => AttentionKind::Math,
            AttentionArg::Fused => {
                if dropout > 0.0 {
                    eprintln!("warning: --attention fused: training steps run the math attention while --dropout is {dropout} (the fused kernel has no attention-weight dropout); validation and inference use the fused one");
                }
                AttentionKind::Fused
            }
        }
    }
}

/// `--device` values.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum DeviceArg {
    /// Burn's Flex backend on the CPU (ndarray with --deterministic).
    Cpu,
    /// Burn's CUDA backend on the first NVIDIA GPU.
    Cuda,
}

/// Errors when `--device cuda` is asked of a build without the `cuda` feature, or a
/// GPU-only option (`--devices`, `--no-kernel-fusion`) with `--device cpu`.
pub fn check_device(optim: &OptimArgs) -> Result<()> {
    if optim.device == DeviceArg::Cuda && !cfg!(feature = "cuda") {
        bail!("--device cuda: this aam was built without CUDA support; rebuild with `cargo build --release -p aam-cli --features cuda`");
    }
    if optim.device == DeviceArg::Cpu && optim.no_kernel_fusion {
        bail!("--no-kernel-fusion applies to --device cuda; the CPU backends run every operation as its own kernel already, so drop the flag");
    }
    if optim.device == DeviceArg::Cpu && !optim.devices.is_empty() {
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
    if optim.deterministic && optim.device != DeviceArg::Cpu {
        bail!("--deterministic applies to --device cpu (Burn's single-threaded ndarray backend); GPU training does not repeat bit for bit, so drop the flag or train with --device cpu");
    }
    if optim.deterministic && optim.mixed_precision != MixedPrecisionArg::None {
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

/// `--token-limit-policy` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PolicyArg {
    /// First ASVs in table order (reference).
    First,
    /// Most abundant first; ties keep table order.
    Abundance,
    /// Seeded random subset.
    Random,
}

impl From<PolicyArg> for TokenLimitPolicy {
    fn from(p: PolicyArg) -> Self {
        match p {
            PolicyArg::First => TokenLimitPolicy::First,
            PolicyArg::Abundance => TokenLimitPolicy::Abundance,
            PolicyArg::Random => TokenLimitPolicy::Random,
        }
    }
}

/// `--optimizer` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OptimArg {
    /// AdamW.
    Adamw,
    /// Adam.
    Adam,
    /// SGD with momentum.
    Sgd,
}

/// `--scheduler` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SchedArg {
    /// Linear warm-up then cosine decay.
    WarmupCosine,
    /// Cosine decay.
    Cosine,
    /// Halve on validation-loss plateau.
    Plateau,
    /// One-cycle.
    OneCycle,
    /// Constant.
    Constant,
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
            token_limit_policy: self.token_limit_policy.into(),
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
        huber: bool,
        class_weights: bool,
    ) -> TrainOptions {
        TrainOptions {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            optimizer: match self.optimizer {
                OptimArg::Adamw => OptimizerKind::AdamW,
                OptimArg::Adam => OptimizerKind::Adam,
                OptimArg::Sgd => OptimizerKind::Sgd,
            },
            weight_decay: self.weight_decay,
            schedule: match self.scheduler {
                SchedArg::WarmupCosine => ScheduleKind::WarmupCosine,
                SchedArg::Cosine => ScheduleKind::Cosine,
                SchedArg::Plateau => ScheduleKind::Plateau,
                SchedArg::OneCycle => ScheduleKind::OneCycle,
                SchedArg::Constant => ScheduleKind::Constant,
            },
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
            huber,
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
                    DeviceArg::Cpu => MemorySource::Host,
                    DeviceArg::Cuda => MemorySource::Cuda {
                        ordinal: self.devices.first().copied().unwrap_or(0),
                    },
                },
            }),
            loss_scaling: (self.mixed_precision == MixedPrecisionArg::Fp16)
                .then(LossScaler::default),
            augmentation: self.augment.filter(|a| !a.is_none()),
            cache_asv_embeddings: false,
        }
    }
}

/// Refuses to overwrite a checkpoint unless asked; checks a resumable one exists.
pub fn check_output(input: &InputArgs) -> Result<()> {
    let has_checkpoint = input.output.join("config.json").exists();
    if input.resume {
        if !aam_train::resume_file::exists(&input.output) {
            bail!(
                "{}: nothing to resume (no resume.bin: the run was stopped before its first epoch ended); drop --resume and pass --overwrite to start it again",
                input.output.display()
            );
        }
    } else if has_checkpoint && !input.overwrite {
        bail!("{} already holds a checkpoint; pass --resume to continue it, --overwrite to replace it, or choose another --output", input.output.display());
    }
    Ok(())
}

/// Loads (and optionally rarefies) the table, printing what rarefaction dropped. With
/// `--streaming`: the table of the file's sample IDs without ASVs
/// ([`SampleStream::id_table`]) and the stream its batches are read from; select the
/// stream down to the table's samples once they are final
/// ([`SampleStream::select`]).
pub fn load_input_table(
    input: &InputArgs,
    seed: u64,
) -> Result<(FeatureTable, Option<SampleStream>)> {
    if input.streaming {
        let stream = SampleStream::open(&input.table, input.chunk_samples as usize)?;
        // A table of the file's ASVs and no samples, for the sequence-ID check.
        let sequences = FeatureTable {
            sample_ids: Vec::new(),
            observation_ids: stream.observation_ids(),
            indptr: vec![0],
            indices: Vec::new(),
            values: Vec::new(),
        };
        if stream.n_samples() == 0 || sequences.observation_ids.is_empty() {
            bail!(
                "{}: the table is empty ({} samples × {} ASVs); export a table that holds samples and ASVs",
                input.table.display(),
                stream.n_samples(),
                sequences.observation_ids.len()
            );
        }
        sequences.check_sequence_ids(&input.table)?;
        eprintln!(
            "table {} [BIOM 2.1 (HDF5), streaming {} samples at a time]: {} samples × {} ASVs",
            input.table.display(),
            input.chunk_samples,
            stream.n_samples(),
            sequences.observation_ids.len()
        );
        return Ok((stream.id_table(), Some(stream)));
    }
    Ok((load_whole_table(input, seed)?, None))
}

fn load_whole_table(input: &InputArgs, seed: u64) -> Result<FeatureTable> {
    let (table, format) = load_table(&input.table)?;
    table.check_sequence_ids(&input.table)?;
    eprintln!(
        "table {} [{format}]: {} samples × {} ASVs",
        input.table.display(),
        table.n_samples(),
        table.n_asv()
    );
    let Some(depth) = input.rarefy_depth else {
        return Ok(table);
    };
    let (t, report) = rarefy(&table, depth, seed, input.rarefy_with_replacement)?;
    if !report.dropped_samples.is_empty() {
        eprintln!(
            "warning: rarefaction to {depth} dropped {} samples below that depth: {}",
            report.dropped_samples.len(),
            name_list(&report.dropped_samples, 10)
        );
    }
    eprintln!(
        "rarefied to {depth}: {} samples × {} ASVs ({} ASVs left empty and removed)",
        t.n_samples(),
        t.n_asv(),
        report.removed_asvs
    );
    Ok(t)
}

/// `--distance` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DistanceArg {
    /// The matrix given with --unifrac-matrix.
    Unifrac,
    /// Bray-Curtis on counts, computed from the table.
    Braycurtis,
    /// Jaccard on presence/absence, computed from the table.
    Jaccard,
    /// Robust Aitchison (Euclidean on robust CLR), computed from the table.
    Aitchison,
}

impl DistanceArg {
    /// The table-computed metric (`None` for `unifrac`).
    pub fn metric(self) -> Option<BetaMetric> {
        match self {
            DistanceArg::Unifrac => None,
            DistanceArg::Braycurtis => Some(BetaMetric::BrayCurtis),
            DistanceArg::Jaccard => Some(BetaMetric::Jaccard),
            DistanceArg::Aitchison => Some(BetaMetric::RobustAitchison),
        }
    }
}

/// The distance targets of `--distance`: the --unifrac-matrix file aligned to the table
/// (see [`align_matrix`]; `None` without one), or the metric computed from `table`
/// (robust Aitchison divided by its largest value, the predicted distances being
/// `tanh(‖e_i − e_j‖/τ)` in [0, 1)). Returns the table restricted to the matrix's
/// samples and the matrix.
pub fn distance_targets(
    input: &InputArgs,
    table: FeatureTable,
) -> Result<(FeatureTable, Option<DistanceMatrix>)> {
    let Some(metric) = input.distance.metric() else {
        return match &input.unifrac_matrix {
            Some(path) => {
                let (t, m) = align_matrix(input, path, table)?;
                Ok((t, Some(m)))
            }
            None => Ok((table, None)),
        };
    };
    if input.streaming {
        bail!(
            "--distance {} is computed from the whole table, which --streaming does not hold; compute it once (`aam distance`) and pass it as --unifrac-matrix, or drop --streaming",
            metric.name()
        );
    }
    if let Some(path) = &input.unifrac_matrix {
        bail!(
            "--distance {} is computed from the table; drop --unifrac-matrix {} (or pass --distance unifrac to train on it)",
            metric.name(),
            path.display()
        );
    }
    let mut m = beta_diversity(&table, metric, &input.table.display().to_string())?;
    if !metric.is_bounded() {
        let max = m.values.iter().copied().fold(0.0f64, f64::max);
        if max > 0.0 {
            m.values.iter_mut().for_each(|v| *v /= max);
        }
        eprintln!(
            "distance targets: {} computed from the table, divided by its largest value {max:.4}",
            metric.name()
        );
    } else {
        eprintln!(
            "distance targets: {} computed from the table",
            metric.name()
        );
    }
    m.validate(true)?;
    Ok((table, Some(m)))
}

/// Loads, validates and aligns the distance matrix; returns the table restricted to the
/// matrix's samples (only with --allow-sample-subset) and the aligned matrix.
pub fn align_matrix(
    input: &InputArgs,
    path: &Path,
    table: FeatureTable,
) -> Result<(FeatureTable, DistanceMatrix)> {
    let m = distance::load_distance_matrix(path, input.unifrac_ids.as_deref(), &table.sample_ids)?;
    m.validate(true)?;
    let (aligned, missing) = m.align(&table.sample_ids, input.allow_sample_subset)?;
    if missing.is_empty() {
        return Ok((table, aligned));
    }
    eprintln!(
        "warning: {} table samples are not in {} and are left out: {}",
        missing.len(),
        path.display(),
        name_list(&missing, 10)
    );
    let index = table.sample_index();
    let keep: Vec<usize> = aligned.ids.iter().map(|s| index[s.as_str()]).collect();
    Ok((table.select_samples(&keep), aligned))
}

/// Group of each table sample from `--group-column` (error naming samples without one).
pub fn groups(
    input: &InputArgs,
    metadata: Option<&Metadata>,
    sample_ids: &[String],
) -> Result<Option<Vec<String>>> {
    let (Some(column), Some(md)) = (&input.group_column, metadata) else {
        return Ok(None);
    };
    let c = md.column_index(column)?;
    let pos = md
        .sample_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect::<std::collections::HashMap<_, _>>();
    let mut out = Vec::with_capacity(sample_ids.len());
    let mut missing = Vec::new();
    for s in sample_ids {
        match pos
            .get(s.as_str())
            .map(|&r| md.rows[r][c].clone())
            .filter(|v| !aam_data::metadata::is_missing(v))
        {
            Some(g) => out.push(g),
            None => missing.push(s.clone()),
        }
    }
    if !missing.is_empty() {
        bail!(
            "{}: {} samples have no value in group column '{column}': {}; fill them in or drop --group-column",
            md.path.display(),
            missing.len(),
            name_list(&missing, 10)
        );
    }
    Ok(Some(out))
}

/// Computes the split, or reads `--split`, the resumed run's split, or else the
/// pretrained encoder's split (`inherit`) when it covers every sample, so validation
/// samples stay unseen by both stages. Writes `split.tsv` into the output.
pub fn make_split(
    input: &InputArgs,
    sample_ids: &[String],
    groups: Option<&[String]>,
    classes: Option<&[usize]>,
    seed: u64,
    inherit: Option<&Path>,
) -> Result<split::Split> {
    let inherited = match inherit.filter(|p| p.exists() && input.split.is_none() && !input.resume) {
        Some(path) => {
            let s = split::read_split_tsv_covering(path, sample_ids)?;
            match &s {
                Some(_) => eprintln!(
                    "split: reusing the pretrained encoder's split {}",
                    path.display()
                ),
                // An encoder pretrained on every sample (`--validation-fraction 0`)
                // has no split to inherit: a new one is expected, not a surprise.
                None if split::read_split_tsv(path, sample_ids)
                    .is_ok_and(|s| s.validation.is_empty()) =>
                {
                    eprintln!(
                        "split: the pretrained encoder trained on every sample ({}); making a new split",
                        path.display()
                    )
                }
                None => eprintln!(
                    "warning: {} does not cover every sample of this run; making a new split",
                    path.display()
                ),
            }
            s
        }
        None => None,
    };
    let s = match (&input.split, inherited) {
        (Some(path), _) => split::read_split_tsv(path, sample_ids)?,
        (None, _) if input.resume => {
            split::read_split_tsv(&input.output.join("split.tsv"), sample_ids)
                .context("the run to resume has no usable split.tsv")?
        }
        (None, Some(s)) => s,
        (None, None) => split::split_samples(
            sample_ids.len(),
            input.validation_fraction,
            seed,
            groups,
            classes,
        )?,
    };
    std::fs::create_dir_all(&input.output)
        .with_context(|| format!("cannot create {}", input.output.display()))?;
    split::write_split_tsv(&input.output.join("split.tsv"), sample_ids, &s)?;
    eprintln!(
        "split: {} training, {} validation samples (written to {})",
        s.train.len(),
        s.validation.len(),
        input.output.join("split.tsv").display()
    );
    Ok(s)
}

/// Prints the end-of-run summary of `aam pretrain` / `aam train`.
pub fn report_done(report: &aam_train::FitReport, input: &InputArgs) {
    if report.epochs.last().is_some_and(|r| r.validation.is_empty()) {
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
    ($optim:expr, $fit:ident) => {
        // (device, gradient checkpointing, bit-exact CPU repetition, kernel fusion off)
        match (
            $optim.device,
            $optim.gradient_checkpointing,
            $optim.deterministic,
            $optim.no_kernel_fusion,
        ) {
            (DeviceArg::Cpu, false, false, false) => $fit!(aam_model::CpuFlexAutodiff),
            (DeviceArg::Cpu, true, false, false) => $fit!(aam_model::CpuFlexAutodiffCheckpointed),
            (DeviceArg::Cpu, false, true, false) => $fit!(aam_model::CpuAutodiff),
            (DeviceArg::Cpu, true, true, false) => $fit!(aam_model::CpuAutodiffCheckpointed),
            (DeviceArg::Cpu, _, _, _) => unreachable!("rejected by check_device"),
            #[cfg(feature = "cuda")]
            (DeviceArg::Cuda, false, _, false) => $fit!(aam_model::CudaAutodiff),
            #[cfg(feature = "cuda")]
            (DeviceArg::Cuda, true, _, false) => $fit!(aam_model::CudaAutodiffCheckpointed),
            #[cfg(feature = "cuda")]
            (DeviceArg::Cuda, false, _, true) => $fit!(aam_model::CudaUnfusedAutodiff),
            #[cfg(feature = "cuda")]
            (DeviceArg::Cuda, true, _, true) => {
                $fit!(aam_model::CudaUnfusedAutodiffCheckpointed)
            }
            #[cfg(not(feature = "cuda"))]
            (DeviceArg::Cuda, _, _, _) => unreachable!("rejected by check_device"),
        }
    };
}
pub(crate) use on_training_backend;
