//! Checkpoint directories, written atomically (temp file + fsync + rename).
//!
//! Layout: `config.json` ([`CheckpointConfig`]), `model.safetensors` (best weights by
//! validation loss, reference key names), `last.safetensors` (the latest epoch's
//! weights), `resume.bin` (what `--resume` continues from: the loop state and the Burn
//! records of the latest model and optimizer, whose parameter IDs match, in one atomic
//! file; see [`crate::resume_file`]) with its readable copy `train_state.json`,
//! `split.tsv`, `metrics.jsonl`.

use std::io::Write;
use std::path::Path;

use aam_model::{AamModel, ModelConfig, WeightMap, WeightSink};
use anyhow::{Context, Result};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::schedule::Schedule;

pub use aam_config::checkpoint_config::{
    CheckpointConfig, DataSettings, ModelKind, TargetInfo, FORMAT_VERSION,
};

/// `train_state.json`: where a run stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// Run seed; every RNG stream is derived from (seed, epoch, step).
    pub seed: u64,
    /// Best validation loss so far (`f64::MAX` before the first epoch: JSON has no infinity).
    pub best_val_loss: f64,
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

/// Writes `bytes` to `path` atomically: a temp file in the same folder, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Appends one line to `path` (metrics log).
pub fn append_line(path: &Path, line: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot append to {}", path.display()))?;
    writeln!(f, "{line}")
        .and_then(|_| f.sync_data())
        .with_context(|| format!("cannot append to {}", path.display()))
}

/// The epoch records of a `metrics.jsonl` log, in order. A last line without its newline
/// (being written by a running training) is left out. Errors: the file cannot be read, a
/// line is not JSON (the message names the file and line).
pub fn read_metrics_log(path: &Path) -> Result<Vec<serde_json::Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}: line {} is not JSON", path.display(), i + 1))
        })
        .collect()
}

/// Writes a JSON value atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, serde_json::to_string_pretty(value)?.as_bytes())
}

/// Reads a JSON file.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid file of this kind", path.display()))
}

/// Reads a checkpoint's `config.json`, checking the format version and the model
/// configuration's sizes ([`aam_config::ModelConfig::validate`]) before anything is
/// sized from them.
pub fn load_config(dir: &Path) -> Result<CheckpointConfig> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}: {} is not an aam checkpoint directory",
            path.display(),
            dir.display()
        )
    })?;
    CheckpointConfig::from_json(&text, &path.display().to_string()).map_err(anyhow::Error::msg)
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
