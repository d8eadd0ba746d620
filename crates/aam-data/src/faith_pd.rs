//! Faith's phylogenetic diversity per sample (target of the `faith_pd` encoder type).
//!
//! Sources: a `.tsv` with a sample-ID column and a value column (as written by
//! `qiime diversity alpha-phylogenetic` exports or scikit-bio), the QIIME 2 artifact
//! itself (`.qza`, `SampleData[AlphaDiversity]`), or a 1-D `.npy` in table sample order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::distance::{extension, read_npy_1d};
use crate::error::{name_list, DataError, Result};

/// Faith PD value per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct FaithPd {
    /// File it was read from.
    pub path: PathBuf,
    /// Sample ID → Faith PD (branch-length units of the tree).
    pub values: HashMap<String, f64>,
}

impl FaithPd {
    /// Values in `sample_ids` order; samples without a value are an error that counts
    /// and names them.
    pub fn aligned(&self, sample_ids: &[String]) -> Result<Vec<f64>> {
        let missing: Vec<&String> = sample_ids
            .iter()
            .filter(|s| !self.values.contains_key(*s))
            .collect();
        if !missing.is_empty() {
            return Err(DataError::mismatch(
                &self.path,
                format!("{} of the table's samples have no Faith PD value: {}; recompute Faith PD on this table", missing.len(), name_list(&missing, 10)),
            ));
        }
        Ok(sample_ids.iter().map(|s| self.values[s]).collect())
    }
}

/// Loads Faith PD from `.tsv`/`.csv` (sample → value), a `SampleData[AlphaDiversity]`
/// `.qza` (its `alpha-diversity.tsv`) or `.npy` (table order).
///
/// Errors: unreadable file, non-numeric, negative or non-finite values (naming the
/// sample), duplicate samples, a `.npy` whose length differs from the table.
pub fn load_faith_pd(path: &Path, table_ids: &[String]) -> Result<FaithPd> {
    let ext = extension(path);
    let pairs: Vec<(String, f64)> = if ext == "npy" {
        let v = read_npy_1d(path)?;
        if v.len() != table_ids.len() {
            return Err(DataError::mismatch(path, format!("has {} values but the table has {} samples; a .npy Faith PD vector is in table order", v.len(), table_ids.len())));
        }
        table_ids.iter().cloned().zip(v).collect()
    } else {
        let delimiter = if ext == "csv" { b',' } else { b'\t' };
        let mut bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        if crate::qiime2::is_artifact(&bytes) {
            bytes = crate::qiime2::read_data(
                path,
                &bytes,
                crate::qiime2::ArtifactKind::AlphaDiversity,
            )?;
        }
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .from_reader(bytes.as_slice());
        let mut out = Vec::new();
        for (line, rec) in reader.records().enumerate() {
            let rec =
                rec.map_err(|e| DataError::format(path, format!("line {}: {e}", line + 2)))?;
            if rec.len() < 2 {
                return Err(DataError::format(
                    path,
                    format!(
                        "line {} has {} cell(s); expected `sample_id<TAB>faith_pd`",
                        line + 2,
                        rec.len()
                    ),
                ));
            }
            let id = rec[0].trim().to_string();
            let v: f64 = rec[1].trim().parse().map_err(|_| {
                DataError::format(
                    path,
                    format!("sample '{id}': '{}' is not a number", &rec[1]),
                )
            })?;
            out.push((id, v));
        }
        out
    };
    let mut values = HashMap::with_capacity(pairs.len());
    for (id, v) in pairs {
        if !v.is_finite() || v < 0.0 {
            return Err(DataError::format(
                path,
                format!("sample '{id}' has Faith PD {v}; it must be a finite non-negative number"),
            ));
        }
        if values.insert(id.clone(), v).is_some() {
            return Err(DataError::format(
                path,
                format!("sample '{id}' appears twice"),
            ));
        }
    }
    Ok(FaithPd {
        path: path.to_path_buf(),
        values,
    })
}
