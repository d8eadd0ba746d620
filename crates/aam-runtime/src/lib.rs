//! # aam-runtime
//!
//! Runs a model exported by `aam export` (`model.onnx`) on CPU with the pure-Rust
//! `tract-onnx`, or (cargo feature `ort`) on ONNX Runtime with the CPU, CUDA or TensorRT
//! execution provider, without Burn. [`Model::load`] reads the graph and its stored
//! configuration; [`Model::predict_table`] prepares a feature table with that
//! configuration (max bp, token limit and its policy) and returns predictions in the
//! target's original units; [`Model::run`] runs raw token batches.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::path::Path;
//! use aam_runtime::{Model, PredictOptions};
//! let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
//! // The shipped model predicts the circadian exposure of each sample of the example table.
//! let model = Model::load(repo.join("models/circadian-exposure"))?;
//! let table_path = repo.join("data/circadian-ihc/table.biom");
//! let (table, _) = aam_data::load_table(&table_path)?;
//! let predictions = model.predict_table(table, "table.biom", PredictOptions::default())?;
//! assert_eq!(predictions.samples.len(), 46);
//! let first = &predictions.samples[0];
//! assert_eq!(first.embedding.len(), model.config().model.embedding_dim);
//! assert!(first.label.is_some() || first.value.is_some());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod asv_cache;
pub mod categories;
pub mod counts;
mod engine;
pub mod ensemble;
pub mod error;
pub mod export_dir;
pub mod flops;
pub mod model;
mod onnx_file;
pub mod options;
pub mod predict;
pub mod prepare;
mod split_graphs;
pub mod tsv;

pub use aam_config::{CheckpointConfig, ModelKind};
pub use asv_cache::{AsvCacheOptions, AsvCacheStats, AUTO_CHUNK_ROWS_ORT, AUTO_CHUNK_ROWS_TRACT};
pub use categories::{category_ids, category_index, checked_categorical_ids, SampleCategories};
pub use counts::checked_counts;
pub use engine::Placement;
#[cfg(feature = "ort")]
pub use engine::{library_version, RECOMMENDED_ORT_VERSION, REQUIRED_ORT_VERSION};
pub use ensemble::{ensemble_manifest, is_ensemble};
pub use error::{Result, RuntimeError};
pub use export_dir::{export_file, SAFETENSORS_FILE};
pub use model::{Model, RawOutputs, ONNX_FILE};
pub use options::{Backend, ExecutionProvider, LoadOptions, TensorRtOptions};
pub use predict::{predict_with, PredictOptions, Predictions, Runner, SamplePrediction};
pub use prepare::{prepare_table, prepare_table_with, PreparedTable};
pub use split_graphs::{
    sample_graph_slots, split_graphs_present, ASV_ENCODER_FILE, SAMPLE_MODEL_FILE,
};
