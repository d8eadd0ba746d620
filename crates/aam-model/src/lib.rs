//! # aam-model
//!
//! The AAM hierarchical transformer (nucleotide → ASV → sample) written once with
//! Burn and generic over the backend. One block per file, weights loaded and saved by
//! the reference PyTorch key path (`shared/docs/reference-aam.md` §3).
//!
//! Masking has no data-dependent branch (every ASV slot runs through the same ops, and
//! padding is removed by multiplication), so the same graph exports to ONNX and never
//! produces NaN.
#![warn(missing_docs)]

pub mod asv_encoder;
pub mod attention;
pub mod attention_pooling;
pub mod config;
pub mod encoder_layer;
pub mod model;
pub mod sample_encoder;
pub mod sequence_encoder;
pub mod sequence_predictor;
pub mod transformer;
pub mod weights;

pub use config::{Activation, EncoderType, ModelConfig};
pub use model::{AamModel, ModelOutputs};
pub use sequence_encoder::{EncoderOutput, SequenceEncoder};
pub use sequence_predictor::{PredictorOutput, SequencePredictor};
pub use weights::{WeightError, WeightMap, WeightSink};

/// CPU backend used by default (Burn's ndarray backend, f32).
pub type CpuBackend = burn::backend::NdArray<f32>;
/// CPU backend with autodiff, for training.
pub type CpuAutodiff = burn::backend::Autodiff<CpuBackend>;
/// NVIDIA GPU backend (CubeCL CUDA, NVRTC at run time; feature `cuda`).
#[cfg(feature = "cuda")]
pub type CudaBackend = burn::backend::Cuda<f32, i32>;
/// NVIDIA GPU backend with autodiff, for training (feature `cuda`).
#[cfg(feature = "cuda")]
pub type CudaAutodiff = burn::backend::Autodiff<CudaBackend>;
