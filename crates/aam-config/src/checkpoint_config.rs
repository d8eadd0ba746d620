//! `config.json` of a checkpoint and the metadata of an exported model: which model, its
//! architecture, how its inputs are prepared and what its target means.
//!
//! The same JSON travels in a checkpoint directory (`config.json`), in the safetensors
//! metadata (`aam_config`) and in the ONNX `metadata_props` (`aam_config`), so predict can
//! prepare a BIOM table exactly as training did.

use aam_data::{TargetKind, TokenLimitPolicy};
use serde::{Deserialize, Serialize};

use crate::model_config::ModelConfig;

/// Version of the checkpoint layout.
pub const FORMAT_VERSION: u32 = 1;

/// Which model a checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// A pretrained `SequenceEncoder` (from `aam pretrain`).
    Encoder,
    /// A `SequencePredictor` (from `aam train` or `aam import-torch`).
    Predictor,
}

/// The target a predictor was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// Metadata column.
    pub column: String,
    /// Regression or classification.
    pub kind: TargetKind,
    /// Class labels in index order (classification).
    pub classes: Vec<String>,
    /// Offset of the target transform (regression): the training targets' mean for
    /// z-score (predictions are `z·std + mean`), their minimum for min-max, of
    /// `ln(y + 1)` for the log transforms; see [`crate::TargetTransform`].
    pub mean: f64,
    /// Scale of the target transform (regression): the training targets' standard
    /// deviation for z-score, their range for min-max.
    pub std: f64,
    /// How a regression target was transformed (checkpoints written before the option
    /// existed: z-score).
    #[serde(default)]
    pub transform: crate::TargetTransform,
    /// The categorical column of a `zscore-category` transform (one of the model's
    /// categorical columns, so prediction has each sample's category).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize_by: Option<String>,
    /// `[offset, scale]` of a `zscore-category` transform per category index of
    /// `normalize_by` (0: unknown, the global `mean` and `std`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_category: Vec<[f64; 2]>,
    /// Quantile levels τ of a quantile regressor (`--loss-type quantile`), in the order
    /// of the output's last axis; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quantiles: Vec<f64>,
    /// Labels of the metadata categories the model is conditioned on, per column
    /// (sorted by name): label `k` of a column has index `k + 1`, 0 is unknown. Empty
    /// for a model without conditioning.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub categories: std::collections::BTreeMap<String, Vec<String>>,
    /// The regression target columns after `column` of a model trained on several
    /// (`--metadata-column a,b`), in output order: `target_prediction` column `k + 1` is
    /// `more_columns[k]`. Empty for one target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_columns: Vec<TargetColumn>,
}

/// A further regression target column of a model trained on several: its name and the
/// offset and scale of its transform (the same [`crate::TargetTransform`] as the first
/// column's, with its own training statistics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetColumn {
    /// Metadata column.
    pub column: String,
    /// Offset of the transform (see [`TargetInfo::mean`]).
    pub mean: f64,
    /// Scale of the transform (see [`TargetInfo::std`]).
    pub std: f64,
}

impl TargetInfo {
    /// The `(offset, scale)` of a sample's transform: by its category index of
    /// `normalize_by` for `zscore-category` (the global `mean`, `std` when the index is
    /// unknown or out of range), else `(mean, std)`.
    pub fn offset_scale(&self, category: Option<i64>) -> (f64, f64) {
        match category.and_then(|c| self.by_category.get(usize::try_from(c).ok()?)) {
            Some(&[offset, scale]) if self.normalize_by.is_some() => (offset, scale),
            _ => (self.mean, self.std),
        }
    }

    /// Every target column in output order: `column`, then `more_columns`.
    pub fn column_names(&self) -> Vec<&str> {
        std::iter::once(self.column.as_str())
            .chain(self.more_columns.iter().map(|c| c.column.as_str()))
            .collect()
    }

    /// The `(offset, scale)` of target column `k` (output order) for a sample in
    /// `category` ([`TargetInfo::offset_scale`] for the first column; a further column's
    /// own statistics). `None` when `k` is past the last column.
    pub fn column_offset_scale(&self, k: usize, category: Option<i64>) -> Option<(f64, f64)> {
        match k {
            0 => Some(self.offset_scale(category)),
            _ => self.more_columns.get(k - 1).map(|c| (c.mean, c.std)),
        }
    }
}

/// How inputs are prepared for this model (used by predict so a user cannot mismatch it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSettings {
    /// Longest sequence kept, bp.
    pub max_bp: usize,
    /// Maximum ASVs per sample.
    pub token_limit: usize,
    /// Which ASVs are kept beyond the token limit.
    pub token_limit_policy: TokenLimitPolicy,
    /// Rarefaction depth used in training (`None`: not rarefied).
    pub rarefy_depth: Option<u64>,
}

/// `config.json` of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointConfig {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Encoder or predictor.
    pub kind: ModelKind,
    /// Architecture.
    pub model: ModelConfig,
    /// Input preparation.
    pub data: DataSettings,
    /// Target (predictors trained on metadata).
    pub target: Option<TargetInfo>,
}

impl CheckpointConfig {
    /// The metadata columns whose category indices the model takes as `categorical_ids`
    /// (input order, sorted by name): a predictor's conditioning columns; empty for an
    /// encoder or a predictor without conditioning.
    pub fn conditioning_columns(&self) -> Vec<&str> {
        match self.kind {
            ModelKind::Predictor => self.model.head.categorical_columns(),
            ModelKind::Encoder => Vec::new(),
        }
    }

    /// Reads `<dir>/config.json` of a checkpoint directory, as [`CheckpointConfig::from_json`].
    ///
    /// Errors: the file cannot be read (the message says `dir` is not a checkpoint
    /// directory); as [`CheckpointConfig::from_json`].
    pub fn read_checkpoint_dir(dir: &std::path::Path) -> Result<Self, String> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read {}: {} is not an aam checkpoint directory: {e}",
                path.display(),
                dir.display()
            )
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// What of `other` differs from `self` such that the two models' outputs do not mean
    /// the same thing (members of an ensemble must agree): `None` when they agree, else
    /// the part that differs, in words.
    /// Dropout and the attention kernel are run-time choices, not compared.
    pub fn ensemble_difference(&self, other: &CheckpointConfig) -> Option<&'static str> {
        let run_time_choices = |m: &ModelConfig| ModelConfig {
            dropout: 0.0,
            attention: Default::default(),
            ..m.clone()
        };
        [
            (self.kind != other.kind, "kind (encoder or predictor)"),
            (
                run_time_choices(&self.model) != run_time_choices(&other.model),
                "architecture",
            ),
            (
                self.data != other.data,
                "input preparation (max bp, token limit, rarefaction)",
            ),
            (
                self.target != other.target,
                "target (column, classes or statistics)",
            ),
        ]
        .into_iter()
        .find_map(|(differs, what)| differs.then_some(what))
    }

    /// Parses the JSON and checks the format version. `origin` names the source in errors.
    ///
    /// Errors: not JSON of this shape, or another [`FORMAT_VERSION`].
    pub fn from_json(text: &str, origin: &str) -> Result<Self, String> {
        let c: CheckpointConfig = serde_json::from_str(text)
            .map_err(|e| format!("{origin}: not an aam model configuration ({e})"))?;
        if c.format_version != FORMAT_VERSION {
            return Err(format!(
                "{origin}: model format {} is not supported (this aam reads format {FORMAT_VERSION})",
                c.format_version
            ));
        }
        c.model
            .validate()
            .map_err(|e| format!("{origin}: model configuration: {e}"))?;
        Ok(c)
    }
}
