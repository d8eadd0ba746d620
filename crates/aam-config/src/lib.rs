//! # aam-config
//!
//! The configuration types every part of aam agrees on: the model architecture
//! ([`ModelConfig`], reference key names) and the checkpoint / export metadata
//! ([`CheckpointConfig`]). Serde only, so the Burn-free runtime and C ABI read them too.
#![warn(missing_docs)]

pub mod checkpoint_config;
pub mod model_config;

pub use checkpoint_config::{
    CheckpointConfig, DataSettings, ModelKind, TargetInfo, FORMAT_VERSION,
};
pub use model_config::{
    Activation, AttentionKind, EncoderType, MixedPrecision, ModelConfig, Stack, StackConfig,
};
