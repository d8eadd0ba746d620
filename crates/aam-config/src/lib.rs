//! # aam-config
//!
//! The configuration types every part of aam agrees on: the model architecture
//! ([`ModelConfig`], reference key names, the [`architecture`] constants), the
//! checkpoint / export metadata ([`CheckpointConfig`]) and the weights by key path
//! ([`WeightMap`], safetensors). Burn-free, so the ONNX export, the runtime and the
//! C ABI read them too.
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

pub mod architecture;
pub mod checkpoint_config;
pub mod ensemble;
pub mod head_config;
pub mod model_config;
pub mod target_transform;
pub mod weight_map;

pub use checkpoint_config::{
    CheckpointConfig, DataSettings, ModelKind, TargetColumn, TargetInfo, FORMAT_VERSION,
};
pub use ensemble::{EnsembleManifest, ENSEMBLE_FILE};
pub use head_config::{CategoricalFusion, HeadConfig, OutputActivation};
pub use model_config::{
    Activation, AttentionKind, CountEmbeddingMethod, EncoderType, MixedPrecision, ModelConfig,
    SizeLimits, Stack, StackConfig, SIZE_LIMITS,
};
pub use target_transform::TargetTransform;
pub use weight_map::{WeightError, WeightMap};
