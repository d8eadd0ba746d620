//! The category indices a model conditioned on metadata categories takes beside its
//! tokens (`categorical_ids`): one check for every entry point, so every caller gets the
//! same errors, and no index reaches an ONNX `Gather` out of its table. Also each
//! sample's category labels ([`SampleCategories`], from a metadata TSV or a request) and
//! their indices under the labels a model recorded in training ([`category_ids`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aam_config::{CheckpointConfig, ModelConfig};
use aam_data::error::name_list;
use ndarray::{Array2, ArrayView2};

use crate::error::{Result, RuntimeError};

/// Each sample's labels of metadata categories, to condition a model on them: read from
/// a metadata TSV ([`SampleCategories::from_metadata`]: `aam predict --metadata`, the C
/// ABI, Python) or built from a request ([`SampleCategories::insert`]: `aam serve`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleCategories {
    /// Where the labels come from, for messages (a file path, `request`).
    origin: String,
    /// The columns the source has: one a model needs and the source lacks is an error.
    columns: BTreeSet<String>,
    /// Sample ID → column → label; an absent entry is a missing value.
    labels: HashMap<String, HashMap<String, String>>,
}

impl SampleCategories {
    /// No sample yet, from a source (`origin`, named in messages) that has `columns`.
    pub fn new(origin: impl Into<String>, columns: impl IntoIterator<Item = String>) -> Self {
        SampleCategories {
            origin: origin.into(),
            columns: columns.into_iter().collect(),
            labels: HashMap::new(),
        }
    }

    /// Every column and sample of a metadata TSV; values spelt as missing
    /// ([`aam_data::metadata::is_missing`]) are missing.
    pub fn from_metadata(metadata: &aam_data::Metadata) -> Self {
        let mut c = SampleCategories::new(
            metadata.path.display().to_string(),
            metadata.columns.iter().cloned(),
        );
        for (sample, row) in metadata.sample_ids.iter().zip(&metadata.rows) {
            for (column, value) in metadata.columns.iter().zip(row) {
                if !aam_data::metadata::is_missing(value) {
                    c.insert(sample, column, value);
                }
            }
        }
        c
    }

    /// Records `label` as `sample`'s value of `column` (a column not yet known is added).
    pub fn insert(&mut self, sample: &str, column: &str, label: &str) {
        self.columns.insert(column.to_string());
        self.labels
            .entry(sample.to_string())
            .or_default()
            .insert(column.to_string(), label.to_string());
    }

    /// The columns the source has, sorted.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(String::as_str)
    }

    /// Where the labels come from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn label(&self, sample: &str, column: &str) -> Option<&str> {
        self.labels.get(sample)?.get(column).map(String::as_str)
    }
}

/// The category indices int64 `[n_samples, n_columns]` of `sample_ids` for the model of
/// `config` (columns sorted by name, as `HeadConfig::categorical_columns`): label `k` of
/// a column's training labels (`TargetInfo::categories`) has index `k + 1`; a missing
/// value, a sample absent from `categories` or a label training never saw has index 0,
/// the unknown category, with a warning (returned, for the caller to show). `None` for a
/// model not conditioned on categories (`categories` is then not read).
///
/// Errors ([`RuntimeError::Input`]): the model is conditioned and `categories` is `None`;
/// a column the model needs that `categories` lacks (naming it and the columns there);
/// a model that records no labels for a column (imported from PyTorch: feed
/// `categorical_ids` to [`crate::Model::run_with_categories`] instead).
pub fn category_ids(
    config: &CheckpointConfig,
    sample_ids: &[String],
    categories: Option<&SampleCategories>,
) -> Result<(Option<Array2<i64>>, Vec<String>)> {
    let columns = config.conditioning_columns();
    if columns.is_empty() {
        return Ok((None, Vec::new()));
    }
    let Some(categories) = categories else {
        return Err(RuntimeError::Input(format!(
            "this model is conditioned on the metadata categories {}: give each sample's values (aam predict --metadata M; a `categories` object per sample in a request)",
            columns.join(", ")
        )));
    };
    let mut ids = Array2::<i64>::zeros((sample_ids.len(), columns.len()));
    let mut warnings = Vec::new();
    for (c, column) in columns.iter().enumerate() {
        if !categories.columns.contains(*column) {
            return Err(RuntimeError::Input(format!(
                "{}: no column '{column}', which this model is conditioned on; columns there: {}",
                categories.origin,
                name_list(&categories.columns.iter().collect::<Vec<_>>(), 30)
            )));
        }
        let labels = recorded_labels(config, column)?;
        let (mut missing, mut unseen) = (Vec::new(), BTreeMap::<&str, usize>::new());
        for (row, sample) in sample_ids.iter().enumerate() {
            match categories.label(sample, column) {
                None => missing.push(sample.as_str()),
                Some(label) => match known_index(labels, label) {
                    Some(k) => ids[[row, c]] = k,
                    None => *unseen.entry(label).or_default() += 1,
                },
            }
        }
        if !missing.is_empty() {
            warnings.push(format!(
                "column '{column}': {} samples have no value in {} and get the unknown category: {}",
                missing.len(),
                categories.origin,
                name_list(&missing, 10)
            ));
        }
        if !unseen.is_empty() {
            let shown: Vec<String> = unseen.iter().map(|(l, n)| format!("'{l}' ({n})")).collect();
            warnings.push(format!(
                "column '{column}': values the training samples never had map to the unknown category: {} (known: {})",
                name_list(&shown, 10),
                name_list(labels, 10)
            ));
        }
    }
    Ok((Some(ids), warnings))
}

/// The labels the model of `config` recorded in training for its categorical column
/// `column`, sorted (label `k` has index `k + 1`).
///
/// Errors ([`RuntimeError::Input`]): the model records none for it (imported from
/// PyTorch, or exported before labels were stored).
fn recorded_labels<'a>(config: &'a CheckpointConfig, column: &str) -> Result<&'a [String]> {
    config
        .target
        .as_ref()
        .and_then(|t| t.categories.get(column))
        .map(Vec::as_slice)
        .ok_or_else(|| {
            RuntimeError::Input(format!(
                "the model records no labels for its categorical column '{column}' (imported, or exported before labels were stored); pass category indices `categorical_ids` directly"
            ))
        })
}

/// The index of `label` among a column's sorted training `labels`: `k + 1` for label
/// `k`; `None` for a label training never saw (the unknown category, 0).
fn known_index(labels: &[String], label: &str) -> Option<i64> {
    labels
        .binary_search_by(|l| l.as_str().cmp(label))
        .ok()
        .map(|k| k as i64 + 1)
}

/// The index training gave `label` in categorical column `column` of the model of
/// `config`, as [`category_ids`] numbers them: `k + 1` for label `k` of the column's
/// sorted training labels, 0 (the unknown category) for a label training never saw.
///
/// Errors ([`RuntimeError::Input`]): `column` is not one of the model's categorical
/// columns (listing them); the model records no labels for it.
pub fn category_index(config: &CheckpointConfig, column: &str, label: &str) -> Result<i64> {
    let columns = config.conditioning_columns();
    if !columns.contains(&column) {
        return Err(RuntimeError::Input(format!(
            "'{column}' is not a categorical column of this model ({})",
            if columns.is_empty() {
                "it has none".to_string()
            } else {
                columns.join(", ")
            }
        )));
    }
    Ok(known_index(recorded_labels(config, column)?, label).unwrap_or(0))
}

/// The `categorical_ids` to feed a model for `batch` samples: `None` when the model is
/// not conditioned on categories (given ids are then an error, not ignored), else
/// `ids` int64 `[batch, n_columns]` once checked, columns in the order of
/// `HeadConfig::categorical_columns` (sorted by name).
///
/// Errors ([`RuntimeError::Input`]): the model is conditioned and no ids were given, or
/// the reverse; a shape other than `[batch, n_columns]`; an index outside
/// `0..cardinality` of its column (naming the sample row and the column).
pub fn checked_categorical_ids<'a>(
    m: &ModelConfig,
    ids: Option<ArrayView2<'a, i64>>,
    batch: usize,
) -> Result<Option<ArrayView2<'a, i64>>> {
    let columns = m.head.categorical_columns();
    let ids = match (m.head.is_conditioned(), ids) {
        (false, None) => return Ok(None),
        (false, Some(_)) => {
            return Err(RuntimeError::Input(
                "categorical ids were given, but this model is not conditioned on metadata categories; drop them".into(),
            ))
        }
        (true, None) => {
            return Err(RuntimeError::Input(format!(
                "this model is conditioned on the metadata categories {}: pass each sample's category indices `categorical_ids` int64 [batch, {}] (0: unknown or missing)",
                columns.join(", "),
                columns.len()
            )))
        }
        (true, Some(ids)) => ids,
    };
    if ids.dim() != (batch, columns.len()) {
        return Err(RuntimeError::Input(format!(
            "categorical_ids have shape {:?}; the tokens need [{batch}, {}] (one index per sample and column: {})",
            ids.shape(),
            columns.len(),
            columns.join(", ")
        )));
    }
    for ((row, col), &id) in ids.indexed_iter() {
        let card = m.head.categorical_cardinalities[columns[col]];
        if id < 0 || id as usize >= card {
            return Err(RuntimeError::Input(format!(
                "categorical_ids: sample row {row}, column `{}`: index {id} is outside 0..{card} (0 is the unknown category)",
                columns[col]
            )));
        }
    }
    Ok(Some(ids))
}
