//! # aam-export
//!
//! A trained model leaves Burn as two files, both carrying the model's configuration
//! (`aam_config`, the checkpoint's `config.json`) so predict prepares inputs exactly as
//! training did:
//! - `model.safetensors`: every weight under its reference (PyTorch state-dict) name,
//!   f32; metadata `aam_config`, `format_version`, `class_labels`, `target_mean`,
//!   `target_std`, `target_column`;
//! - `model.onnx`: the forward pass written with `onnx-protobuf` ([`onnx::graph`]),
//!   opset ≥ 17, the same metadata in `metadata_props`.
//!
//! Export reads weights by key path, so any reference state dict with a matching
//! configuration exports too.
#![deny(missing_docs)]

pub mod export_dir;
pub mod onnx;
pub mod triton;
pub use export_dir::{write_ensemble, write_export, ExportOptions, WrittenExport};
pub use onnx::graph::GraphPart;

use std::collections::HashMap;

use aam_config::WeightMap;
use aam_config::{CheckpointConfig, FORMAT_VERSION};
use anyhow::{bail, Context, Result};
use onnx_protobuf::{Message, ModelProto, OperatorSetIdProto, StringStringEntryProto};

/// Lowest opset the graph needs (LayerNormalization).
pub const MIN_OPSET: i64 = 17;
/// Highest opset the exporter has been checked against.
pub const MAX_OPSET: i64 = 21;
/// Default opset.
pub const DEFAULT_OPSET: i64 = 17;

/// The key/value metadata written into both files.
///
/// Keys: `aam_config` (checkpoint configuration JSON), `format_version`, and when the
/// model has a target: `target_column`, `target_kind`, `class_labels` (JSON array, index
/// order), `target_mean`, `target_std` (regression: prediction = z·std + mean).
pub fn model_metadata(config: &CheckpointConfig) -> Result<HashMap<String, String>> {
    let mut m = HashMap::new();
    m.insert("aam_config".into(), serde_json::to_string(config)?);
    m.insert("format_version".into(), FORMAT_VERSION.to_string());
    if let Some(t) = &config.target {
        m.insert("target_column".into(), t.column.clone());
        m.insert(
            "target_kind".into(),
            serde_json::to_value(t.kind)?
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        m.insert("class_labels".into(), serde_json::to_string(&t.classes)?);
        m.insert("target_mean".into(), t.mean.to_string());
        m.insert("target_std".into(), t.std.to_string());
    }
    Ok(m)
}

/// The ONNX IR version that goes with an opset (onnx's versioning table).
fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=18 => 8,
        19 | 20 => 9,
        _ => 10,
    }
}

/// Serialises the model of `config` with weights `w` as one ONNX `ModelProto`
/// (`model.onnx`, [`GraphPart::Full`]).
///
/// Errors: `opset` outside [`MIN_OPSET`]..=[`MAX_OPSET`]; a weight missing or of
/// another shape than the configuration implies.
pub fn onnx_bytes(config: &CheckpointConfig, w: &WeightMap, opset: i64) -> Result<Vec<u8>> {
    onnx_part_bytes(config, w, opset, GraphPart::Full)
}

/// Serialises graph `part` of the model (see [`GraphPart`]) as an ONNX `ModelProto` with
/// the same metadata as `model.onnx`.
///
/// Errors: as [`onnx_bytes`].
pub fn onnx_part_bytes(
    config: &CheckpointConfig,
    w: &WeightMap,
    opset: i64,
    part: GraphPart,
) -> Result<Vec<u8>> {
    if !(MIN_OPSET..=MAX_OPSET).contains(&opset) {
        bail!("opset {opset} is not supported: use {MIN_OPSET}..={MAX_OPSET} (LayerNormalization needs 17)");
    }
    config
        .model
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid model configuration: {e}"))?;
    let graph = onnx::graph::model_graph(&config.model, config.kind, w, part)?;
    let mut model = ModelProto::new();
    model.ir_version = ir_version(opset);
    let mut op = OperatorSetIdProto::new();
    op.version = opset;
    model.opset_import = vec![op];
    model.producer_name = "aam".into();
    model.producer_version = env!("CARGO_PKG_VERSION").into();
    model.doc_string = match part {
        GraphPart::Full => {
            "Attention All Microbes: hierarchical transformer for 16S ASV tables. \
                            Input tokens int64 [batch, n_asv, max_bp + 1] (0 pad, 1-4 ACGT)."
        }
        GraphPart::AsvEncoder => {
            "Attention All Microbes, ASV encoder: asv_tokens int64 \
                                  [n, max_bp + 1] (0 pad, 1-4 ACGT) to asv_embeddings [n, D]."
        }
        GraphPart::SampleModel => {
            "Attention All Microbes, sample model: asv_embeddings \
                                   [batch, n_asv, D] and asv_mask [batch, n_asv] to the outputs."
        }
    }
    .into();
    model.graph = Some(graph).into();
    let mut meta: Vec<_> = model_metadata(config)?.into_iter().collect();
    meta.sort();
    model.metadata_props = meta
        .into_iter()
        .map(|(key, value)| {
            let mut e = StringStringEntryProto::new();
            e.key = key;
            e.value = value;
            e
        })
        .collect();
    model
        .write_to_bytes()
        .context("cannot serialise the ONNX model")
}

/// Serialises the weights with the export metadata as safetensors.
pub fn safetensors_bytes(config: &CheckpointConfig, w: &WeightMap) -> Result<Vec<u8>> {
    Ok(w.to_safetensors(Some(model_metadata(config)?))?)
}
