//! Writes an export directory from a checkpoint directory (`aam export`): `model.onnx`,
//! the same model split as `asv_encoder.onnx` + `sample_model.onnx`, and
//! `model.safetensors`; or an ensemble of several checkpoints ([`write_ensemble`]).

use std::path::{Path, PathBuf};

use aam_config::{CheckpointConfig, EnsembleManifest, WeightMap, ENSEMBLE_FILE};
use anyhow::{bail, Context, Result};

use crate::GraphPart;

/// How a checkpoint is exported.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    /// ONNX opset (17 to 21, [`crate::DEFAULT_OPSET`]).
    pub opset: i64,
    /// Export `last.safetensors` (the latest epoch) instead of the best `model.safetensors`.
    pub last: bool,
    /// Replace files of an earlier export in the output directory.
    pub overwrite: bool,
}

/// What [`write_export`] wrote.
pub struct WrittenExport {
    /// The checkpoint's configuration.
    pub config: CheckpointConfig,
    /// The weights file read.
    pub weights: PathBuf,
    /// `model.onnx` written, and its bytes.
    pub onnx: (PathBuf, Vec<u8>),
    /// `model.safetensors` written, and its size in bytes.
    pub safetensors: (PathBuf, usize),
}

/// The graphs of one export, in the order they are written: `model.onnx`, then the same
/// model split for the ASV-embedding cache.
const GRAPH_PARTS: [GraphPart; 3] = [
    GraphPart::Full,
    GraphPart::AsvEncoder,
    GraphPart::SampleModel,
];

/// The weights file of one export.
const SAFETENSORS_FILE: &str = "model.safetensors";

/// Every file of one export in `dir`: its graphs ([`GRAPH_PARTS`]), then its weights.
fn export_files(dir: &Path) -> Vec<PathBuf> {
    GRAPH_PARTS
        .iter()
        .map(|part| part.file_name())
        .chain([SAFETENSORS_FILE])
        .map(|name| dir.join(name))
        .collect()
}

/// The weights file of `checkpoint` that `options` export.
fn weights_file(checkpoint: &Path, options: &ExportOptions) -> PathBuf {
    checkpoint.join(if options.last {
        "last.safetensors"
    } else {
        "model.safetensors"
    })
}

/// Exports the checkpoint directory `checkpoint` into `output` (created if absent).
///
/// Errors: `checkpoint` has no readable `config.json` or weights; the graph cannot be
/// built (the opset is out of range, the weights do not fit the configuration); a file
/// of the export already exists in `output` and `options.overwrite` is false; a write
/// fails (each file is written atomically).
pub fn write_export(
    checkpoint: &Path,
    output: &Path,
    options: &ExportOptions,
) -> Result<WrittenExport> {
    let config = CheckpointConfig::read_checkpoint_dir(checkpoint).map_err(anyhow::Error::msg)?;
    let weights = weights_file(checkpoint, options);
    let w = WeightMap::load(&weights)?;
    let mut graphs = Vec::new();
    for part in GRAPH_PARTS {
        let bytes = crate::onnx_part_bytes(&config, &w, options.opset, part)
            .with_context(|| format!("cannot export {}", weights.display()))?;
        graphs.push((output.join(part.file_name()), bytes));
    }
    let st = crate::safetensors_bytes(&config, &w)?;
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let st_path = output.join(SAFETENSORS_FILE);
    // An ensemble's manifest left in `output` would be loaded instead of this export.
    let manifest = output.join(ENSEMBLE_FILE);
    if !options.overwrite {
        let mut targets = export_files(output).into_iter().chain([manifest.clone()]);
        if let Some(p) = targets.find(|p| p.exists()) {
            bail!(
                "{} already exists; pass --overwrite to replace it or choose another --output",
                p.display()
            );
        }
    }
    for (path, bytes) in &graphs {
        aam_data::files::write_atomic(path, bytes)?;
    }
    aam_data::files::write_atomic(&st_path, &st)?;
    if manifest.exists() {
        std::fs::remove_file(&manifest)
            .with_context(|| format!("cannot remove {}", manifest.display()))?;
    }
    // GRAPH_PARTS[0] is the full model: model.onnx.
    let onnx = graphs.swap_remove(0);
    Ok(WrittenExport {
        config,
        weights,
        onnx,
        safetensors: (st_path, st.len()),
    })
}

/// Directory name of member `k` (from 1) of an ensemble written by [`write_ensemble`].
pub fn member_name(k: usize) -> String {
    format!("member-{k}")
}

/// Exports every checkpoint of `checkpoints` (at least two) into `output/member-K/`
/// and writes `output/ensemble.json` listing them (last, so a stopped export is never
/// read as a whole ensemble). The runtime loads the directory as one model that
/// averages its members (see [`aam_config::EnsembleManifest`]).
///
/// Errors: fewer than two or more than [`aam_config::ensemble::MAX_MEMBERS`]
/// checkpoints; pretrained encoders; a checkpoint whose configuration differs from the
/// first's (named, before anything is written); `output` already holds an export or an ensemble and
/// `options.overwrite` is false; as [`write_export`].
pub fn write_ensemble(
    checkpoints: &[PathBuf],
    output: &Path,
    options: &ExportOptions,
) -> Result<Vec<WrittenExport>> {
    let max = aam_config::ensemble::MAX_MEMBERS;
    if checkpoints.len() < 2 || checkpoints.len() > max {
        bail!(
            "an ensemble exports 2 to {max} checkpoints; {} given",
            checkpoints.len()
        );
    }
    let configs = checkpoints
        .iter()
        .map(|c| CheckpointConfig::read_checkpoint_dir(c).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    if configs[0].kind == aam_config::ModelKind::Encoder {
        bail!(
            "checkpoint {} is a pretrained encoder; an ensemble averages predictors from `aam train` (encoders of other seeds embed samples in unaligned spaces)",
            checkpoints[0].display()
        );
    }
    for (c, config) in checkpoints.iter().zip(&configs).skip(1) {
        if let Some(what) = configs[0].ensemble_difference(config) {
            bail!(
                "checkpoint {} differs from {} in its {what}; an ensemble's members are trained with the same settings and split (`aam train --split <first run>/split.tsv`), differing only in --seed",
                c.display(),
                checkpoints[0].display()
            );
        }
    }
    let manifest_path = output.join(ENSEMBLE_FILE);
    let names: Vec<String> = (1..=checkpoints.len()).map(member_name).collect();
    if !options.overwrite {
        let taken = std::iter::once(manifest_path.clone())
            .chain(names.iter().map(|n| output.join(n)))
            .chain(export_files(output))
            .find(|p| p.exists());
        if let Some(p) = taken {
            bail!(
                "{} already exists; pass --overwrite to replace it or choose another --output",
                p.display()
            );
        }
    }
    let written = checkpoints
        .iter()
        .zip(&names)
        .map(|(c, name)| write_export(c, &output.join(name), options))
        .collect::<Result<Vec<_>>>()?;
    let manifest = EnsembleManifest::new(names);
    aam_data::files::write_atomic(
        &manifest_path,
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    // A single export written here before (replaced with --overwrite) would still answer
    // for its own files (`--model DIR/model.onnx`).
    for stale in export_files(output) {
        if stale.exists() {
            std::fs::remove_file(&stale)
                .with_context(|| format!("cannot remove {}", stale.display()))?;
        }
    }
    Ok(written)
}
