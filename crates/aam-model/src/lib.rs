//! # aam-model
//!
//! The AAM hierarchical transformer (nucleotide → ASV → sample) written once with
//! Burn and generic over the backend. One block per file, weights loaded and saved by
//! the reference PyTorch key path (`shared/docs/reference-aam.md` §3).
//!
//! Masking has no data-dependent branch (every ASV slot runs through the same ops, and
//! padding is removed by multiplication), so the same graph exports to ONNX and never
//! produces NaN.
#![deny(missing_docs)]

pub mod asv_encoder;
pub mod attention;
pub mod attention_pooling;
pub mod categorical_embedder;
pub mod categorical_projection;
pub mod config;
pub mod count_embedding;
pub mod cross_attention_fusion;
pub mod dropout;
pub mod encoder_layer;
pub mod gmu;
pub mod inspect;
pub mod integrated_gradients;
pub mod kmer_embedding;
pub mod mixed_precision;
pub mod model;
pub mod output_transform;
pub mod perceiver_fusion;
pub mod random_weights;
pub mod sample_encoder;
pub mod sequence_encoder;
pub mod sequence_predictor;
pub mod target_head;
pub mod transformer;
pub mod weights;

pub use config::{
    Activation, AttentionKind, CategoricalFusion, CountEmbeddingMethod, EncoderType, HeadConfig,
    MixedPrecision, ModelConfig, OutputActivation,
};
pub use model::{AamModel, ModelOutputs};
pub use sequence_encoder::{EncoderOutput, SequenceEncoder};
pub use sequence_predictor::{PredictorOutput, SequencePredictor};
pub use weights::{WeightError, WeightMap, WeightSink};

/// CPU backend of inference and of `--deterministic` training (Burn's ndarray backend,
/// f32): one thread, the same float summation order on every run and machine, so a seed
/// repeats a training run bit for bit.
pub type CpuBackend = burn::backend::NdArray<f32>;
/// [`CpuBackend`] with autodiff (`--deterministic` training).
pub type CpuAutodiff = burn::backend::Autodiff<CpuBackend>;
/// Burn's gradient checkpointing strategy (`--gradient-checkpointing`): the results of
/// memory-bound operations (element-wise ops, softmax, normalisation) are recomputed
/// in the backward pass from their inputs instead of being kept from the forward pass;
/// compute-bound ones (matmuls) stay kept. Gradients are unchanged.
pub type Checkpointing = burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
/// [`CpuAutodiff`] with gradient checkpointing ([`Checkpointing`]).
pub type CpuAutodiffCheckpointed = burn::backend::Autodiff<CpuBackend, Checkpointing>;
/// The CPU training backend (Burn's Flex): matrix products through `gemm` on every core
/// (AVX-512 kernels where the CPU has them), SIMD element-wise kernels, f32 by default
/// and bf16/fp16 where `--mixed-precision` casts (ndarray has no half types). Its
/// parallel reductions may sum in another order from run to run, so repetition is exact
/// only with `--deterministic` ([`CpuAutodiff`]).
pub type CpuFlexBackend = burn::backend::Flex;
/// [`CpuFlexBackend`] with autodiff: `aam pretrain` / `aam train` on the CPU.
pub type CpuFlexAutodiff = burn::backend::Autodiff<CpuFlexBackend>;
/// [`CpuFlexAutodiff`] with gradient checkpointing ([`Checkpointing`]).
pub type CpuFlexAutodiffCheckpointed = burn::backend::Autodiff<CpuFlexBackend, Checkpointing>;
/// NVIDIA GPU backend (CubeCL CUDA, NVRTC at run time; feature `cuda`), with Burn's
/// kernel fusion (element-wise chains and reductions fused into the kernels around
/// them, Burn's counterpart of `torch.compile`) and kernel autotuning.
#[cfg(feature = "cuda")]
pub type CudaBackend = burn::backend::Cuda<f32, i32>;
/// [`CudaBackend`] without kernel fusion: every tensor operation is its own kernel
/// (`--no-kernel-fusion`), to measure what fusion gains and as a fallback should a
/// fused kernel misbehave on some GPU (feature `cuda`).
#[cfg(feature = "cuda")]
pub type CudaUnfusedBackend = burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, f32, i32, u8>;
/// [`CudaUnfusedBackend`] with autodiff (feature `cuda`).
#[cfg(feature = "cuda")]
pub type CudaUnfusedAutodiff = burn::backend::Autodiff<CudaUnfusedBackend>;
/// [`CudaUnfusedBackend`] with autodiff and gradient checkpointing (feature `cuda`).
#[cfg(feature = "cuda")]
pub type CudaUnfusedAutodiffCheckpointed =
    burn::backend::Autodiff<CudaUnfusedBackend, Checkpointing>;
/// NVIDIA GPU backend with autodiff, for training (feature `cuda`).
#[cfg(feature = "cuda")]
pub type CudaAutodiff = burn::backend::Autodiff<CudaBackend>;
/// NVIDIA GPU backend with autodiff and gradient checkpointing ([`Checkpointing`];
/// feature `cuda`).
#[cfg(feature = "cuda")]
pub type CudaAutodiffCheckpointed = burn::backend::Autodiff<CudaBackend, Checkpointing>;
