//! Checkpoint directories, written atomically ([`write_atomic`]).
//!
//! Layout: `config.json` ([`CheckpointConfig`]), `model.safetensors` (best weights by
//! validation loss, reference key names), `last.safetensors` (the latest epoch's
//! weights), `resume.bin` (what `--resume` continues from: the loop state and the Burn
//! records of the latest model and optimizer, whose parameter IDs match, in one atomic
//! file; see [`crate::resume_file`]) with its readable copy `train_state.json`,
//! `split.tsv`, `metrics.jsonl`.

use std::path::Path;

use aam_model::{AamModel, ModelConfig, WeightMap, WeightSink};
use anyhow::{Context, Result};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::schedule::Schedule;

use aam_config::{CheckpointConfig, FORMAT_VERSION};
#[cfg(doc)]
use aam_data::files::write_atomic;

/// `train_state.json`: where a run stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// Run seed; every RNG stream is derived from (seed, epoch, step).
    pub seed: u64,
    /// Validation loss of the kept (best) epoch (`f64::MAX` before the first epoch: JSON
    /// has no infinity).
    pub best_val_loss: f64,
    /// Value of `--best-metric` at the kept epoch (`None` before the first epoch, or
    /// without validation).
    #[serde(default)]
    pub best_score: Option<f64>,
    /// Epoch of the best validation loss.
    pub best_epoch: usize,
    /// Epochs since the best (early stopping).
    pub bad_epochs: usize,
    /// Learning-rate schedule with its state.
    pub schedule: Schedule,
    /// Samples per batch and batches per optimizer step of the run (what
    /// `--auto-batch-size` chose), so that `--resume` continues with the same.
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// See `batch_size`.
    #[serde(default)]
    pub grad_accum: Option<usize>,
    /// The fp16 loss scaler (scale, clean steps, skipped steps), when the run scales.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scaler: Option<crate::loss_scale::LossScaler>,
}

/// Reads a checkpoint's `config.json`, checking the format version and the model
/// configuration's sizes ([`aam_config::ModelConfig::validate`]) before anything is
/// sized from them.
pub fn load_config(dir: &Path) -> Result<CheckpointConfig> {
    CheckpointConfig::read_checkpoint_dir(dir).map_err(anyhow::Error::msg)
}

/// Serialises a model's weights to safetensors bytes with the checkpoint config as metadata.
pub fn weights_bytes<B: Backend, M: AamModel<B>>(
    model: &M,
    config: &CheckpointConfig,
) -> Result<Vec<u8>> {
    let mut sink = WeightSink::default();
    model.save_weights(&mut sink);
    sink_bytes(&sink, config)
}

/// [`weights_bytes`] of weights already copied out of the model.
pub fn sink_bytes(sink: &WeightSink, config: &CheckpointConfig) -> Result<Vec<u8>> {
    let mut meta = std::collections::HashMap::new();
    meta.insert("aam_config".to_string(), serde_json::to_string(config)?);
    meta.insert("format_version".to_string(), FORMAT_VERSION.to_string());
    Ok(sink.to_safetensors(Some(meta))?)
}

/// Loads `file` of checkpoint `dir` into a model of the checkpoint's configuration.
pub fn load_model<B: Backend, M: AamModel<B>>(
    dir: &Path,
    file: &str,
    config: &ModelConfig,
    device: &B::Device,
) -> Result<M> {
    let path = dir.join(file);
    let w = WeightMap::load(&path)?;
    M::load_weights(&w, config, device).with_context(|| {
        format!(
            "{} does not match {}",
            path.display(),
            dir.join("config.json").display()
        )
    })
}
