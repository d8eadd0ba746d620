//! # aam-runtime
//!
//! Runs a model exported by `aam export` (`model.onnx`) on CPU with the pure-Rust
//! `tract-onnx`, or (cargo feature `ort`) on ONNX Runtime with the CPU, CUDA or TensorRT
//! execution provider, without Burn. [`Model::load`] reads the graph and its stored
//! configuration; [`Model::predict_table`] prepares a feature table with that
//! configuration (max bp, token limit and its policy) and returns predictions in the
//! target's original units; [`Model::run`] runs raw token batches.
#![warn(missing_docs)]

pub mod asv_cache;
mod engine;
pub mod error;
pub mod flops;
pub mod model;
pub mod options;
pub mod predict;
pub mod prepare;
mod split;
pub mod tsv;

pub use aam_config::{CheckpointConfig, ModelKind};
pub use asv_cache::{AsvCacheOptions, AsvCacheStats, AUTO_CHUNK_ROWS_ORT, AUTO_CHUNK_ROWS_TRACT};
pub use engine::Placement;
#[cfg(feature = "ort")]
pub use engine::{library_version, RECOMMENDED_ORT_VERSION, REQUIRED_ORT_VERSION};
pub use error::{Result, RuntimeError};
pub use model::{Model, RawOutputs, ONNX_FILE};
pub use options::{Backend, ExecutionProvider, LoadOptions, TensorRtOptions};
pub use predict::{predict_with, PredictOptions, Predictions, Runner, SamplePrediction};
pub use prepare::{prepare_table, PreparedTable};
pub use split::{sample_graph_slots, split_graphs_present, ASV_ENCODER_FILE, SAMPLE_MODEL_FILE};
