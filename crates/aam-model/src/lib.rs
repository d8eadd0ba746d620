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
pub mod config;
pub mod encoder_layer;
pub mod inspect;
pub mod integrated_gradients;
pub mod mixed_precision;
pub mod model;
pub mod sample_encoder;
pub mod sequence_encoder;
pub mod sequence_predictor;
pub mod transformer;
pub mod weights;

pub use config::{Activation, AttentionKind, EncoderType, MixedPrecision, ModelConfig};
pub use model::{AamModel, ModelOutputs};
pub use sequence_encoder::{EncoderOutput, SequenceEncoder};
pub use sequence_predictor::{PredictorOutput, SequencePredictor};
pub use weights::{WeightError, WeightMap, WeightSink};

/// CPU backend used by default (Burn's ndarray backend, f32).
pub type CpuBackend = burn::backend::NdArray<f32>;
/// CPU backend with autodiff, for training.
pub type CpuAutodiff = burn::backend::Autodiff<CpuBackend>;
/// Burn's gradient checkpointing strategy (`--gradient-checkpointing`): the results of
/// memory-bound operations (element-wise ops, softmax, normalisation) are recomputed
/// in the backward pass from their inputs instead of being kept from the forward pass;
/// compute-bound ones (matmuls) stay kept. Gradients are unchanged.
pub type Checkpointing = burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
/// CPU backend with autodiff and gradient checkpointing ([`Checkpointing`]).
pub type CpuAutodiffCheckpointed = burn::backend::Autodiff<CpuBackend, Checkpointing>;
/// CPU backend with half-precision tensors (Burn's Flex backend; f32 by default,
/// bf16/fp16 where `--mixed-precision` casts), used only for mixed-precision training
/// on the CPU: the ndarray backend has no half types.
pub type CpuMixedBackend = burn::backend::Flex;
/// [`CpuMixedBackend`] with autodiff.
pub type CpuMixedAutodiff = burn::backend::Autodiff<CpuMixedBackend>;
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
