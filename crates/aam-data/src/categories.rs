//! Metadata categories as model inputs (`--categorical-columns`): each column's labels
//! seen in the training samples, and every sample's category indices, so a model can be
//! conditioned on them (spec §3.11 "CategoricalEmbedder"). Index 0 is the unknown
//! category: a missing value, a sample without a metadata row, or a label the training
//! samples never had (a model cannot have learnt it).

use std::collections::BTreeMap;

use ndarray::Array2;

use crate::error::Result;
use crate::metadata::{Metadata, TargetKind};

/// The categories of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryIndices {
    /// Per column (sorted by name): its labels in the training samples, sorted; label
    /// `labels[k]` has index `k + 1`.
    pub labels: BTreeMap<String, Vec<String>>,
    /// Category index of each requested sample and column, int64 `[n_samples,
    /// n_columns]`, columns in the order of `labels`.
    pub ids: Array2<i64>,
    /// Per column: how many samples got the unknown index 0 (missing, absent from the
    /// metadata, or a label not seen in training).
    pub unknown: BTreeMap<String, usize>,
}

impl CategoryIndices {
    /// The labels of `columns` among the samples `train` (positions in `sample_ids`)
    /// and the indices of every sample of `sample_ids`.
    ///
    /// Errors: an unknown column (listing the available ones); a column without any value
    /// in the training samples.
    pub fn from_training(
        metadata: &Metadata,
        columns: &[String],
        sample_ids: &[String],
        train: &[usize],
    ) -> Result<CategoryIndices> {
        let columns: std::collections::BTreeSet<&String> = columns.iter().collect();
        let train_ids: Vec<String> = train.iter().map(|&i| sample_ids[i].clone()).collect();
        let mut labels = BTreeMap::new();
        let mut unknown = BTreeMap::new();
        let mut ids = Array2::<i64>::zeros((sample_ids.len(), columns.len()));
        for (c, column) in columns.into_iter().enumerate() {
            let seen = metadata.target(column, &train_ids, Some(TargetKind::Categorical))?;
            let all = metadata.target(column, sample_ids, Some(TargetKind::Categorical))?;
            let mut n_unknown = 0;
            for (row, value) in all.values.iter().enumerate() {
                let index = value
                    .map(|v| all.classes[v as usize].as_str())
                    .and_then(|label| {
                        seen.classes
                            .binary_search_by(|l| l.as_str().cmp(label))
                            .ok()
                    })
                    .map_or(0, |k| k as i64 + 1);
                n_unknown += usize::from(index == 0);
                ids[[row, c]] = index;
            }
            unknown.insert(column.clone(), n_unknown);
            labels.insert(column.clone(), seen.classes);
        }
        Ok(CategoryIndices {
            labels,
            ids,
            unknown,
        })
    }

    /// Rows of each column's embedding table: its labels plus the unknown index 0.
    pub fn cardinalities(&self) -> BTreeMap<String, usize> {
        self.labels
            .iter()
            .map(|(c, l)| (c.clone(), l.len() + 1))
            .collect()
    }
}
