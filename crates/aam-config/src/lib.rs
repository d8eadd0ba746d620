//! # aam-config
//!
//! The configuration types every part of aam agrees on: the model architecture
//! ([`ModelConfig`], reference key names) and the checkpoint / export metadata
//! ([`CheckpointConfig`]). Serde only, so the Burn-free runtime and C ABI read them too.
//!
//! ```
//! use aam_config::{CheckpointConfig, ModelKind};
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/circadian-exposure/config.json");
//! let config = CheckpointConfig::from_json(&std::fs::read_to_string(path).unwrap(), path).unwrap();
//! // The shipped model: a classifier of `exposure_type` reading 90 bp of up to 128 ASVs.
//! assert_eq!(config.kind, ModelKind::Predictor);
//! assert_eq!((config.data.max_bp, config.data.token_limit), (90, 128));
//! let target = config.target.unwrap();
//! assert_eq!((target.column.as_str(), target.classes.len()), ("exposure_type", 2));
//! ```
#![deny(missing_docs)]

pub mod checkpoint_config;
pub mod model_config;

pub use checkpoint_config::{
    CheckpointConfig, DataSettings, ModelKind, TargetInfo, FORMAT_VERSION,
};
pub use model_config::{
    Activation, AttentionKind, CountEmbeddingMethod, EncoderType, MixedPrecision, ModelConfig,
    SizeLimits, Stack, StackConfig, SIZE_LIMITS,
};
