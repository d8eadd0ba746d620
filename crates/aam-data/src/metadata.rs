//! Sample metadata TSV (QIIME 2 / Qiita style) and target columns.
//!
//! Sample IDs stay strings (`2538.1000101` is not a number). The ID column is
//! `sample_id`, `sample-id`, `#SampleID` (and the other QIIME 2 spellings) or else
//! the first column. A `#q2:types` row is skipped; BOM and CRLF are tolerated.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::error::{name_list, DataError, Result};

/// Header names accepted for the sample-ID column (case-insensitive), as QIIME 2.
const ID_COLUMNS: [&str; 8] = [
    "sample_id",
    "sample-id",
    "#sampleid",
    "sampleid",
    "#sample id",
    "sample id",
    "#sample-id",
    "id",
];

/// A parsed metadata table.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// File it was read from.
    pub path: PathBuf,
    /// Column names after the ID column.
    pub columns: Vec<String>,
    /// Sample IDs in file order.
    pub sample_ids: Vec<String>,
    /// `rows[i][c]`: raw cell of sample `i`, column `c` (trimmed).
    pub rows: Vec<Vec<String>>,
}

/// True for the missing-value spellings of QIIME 2 / Qiita: empty, `NA`, `nan`,
/// `not applicable`, and anything starting with `Missing:`.
pub fn is_missing(value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || ["na", "nan", "n/a", "not applicable", "none", "null"]
            .contains(&v.to_ascii_lowercase().as_str())
        || v.starts_with("Missing:")
        || v.eq_ignore_ascii_case("not provided")
        || v.eq_ignore_ascii_case("not collected")
}

/// How a target column is interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum TargetKind {
    /// Every non-missing value is a finite number: regression.
    Numeric,
    /// Class labels (strings), mapped to indices in sorted order: classification.
    Categorical,
}

/// A target column resolved against a list of samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Column name.
    pub column: String,
    /// Numeric or categorical.
    pub kind: TargetKind,
    /// Sorted class labels (categorical only); class index = position.
    pub classes: Vec<String>,
    /// Per requested sample: the value (number, or class index as `f64`), or `None`
    /// when the value is missing.
    pub values: Vec<Option<f64>>,
    /// Requested samples that have no row in the metadata at all.
    pub absent_samples: Vec<String>,
    /// Requested samples whose value is missing.
    pub missing_samples: Vec<String>,
}

impl Metadata {
    /// Reads a metadata TSV.
    ///
    /// Errors: unreadable file, no header, rows with the wrong number of cells
    /// (naming the line and sample), duplicate sample IDs, duplicate column names.
    pub fn load(path: &Path) -> Result<Metadata> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(b'\t')
            .has_headers(false)
            .flexible(true)
            .quoting(false)
            .from_reader(bytes);
        let mut records = reader.records();
        let header: Vec<String> =
            match records.next() {
                Some(Ok(h)) => h.iter().map(|s| s.trim().to_string()).collect(),
                Some(Err(e)) => {
                    return Err(DataError::format(
                        path,
                        format!("cannot read the header: {e}"),
                    ))
                }
                None => return Err(DataError::format(
                    path,
                    "empty file; a metadata TSV starts with a header row (`sample_id<TAB>column…`)",
                )),
            };
        let mut column_seen = HashMap::new();
        for (i, h) in header.iter().enumerate() {
            if let Some(first) = column_seen.insert(h.as_str(), i) {
                return Err(DataError::format(
                    path,
                    format!(
                        "column '{h}' appears twice in the header (columns {} and {}); rename or remove one of them",
                        first + 1,
                        i + 1
                    ),
                ));
            }
        }
        let id_col = header
            .iter()
            .position(|h| ID_COLUMNS.contains(&h.to_ascii_lowercase().as_str()))
            .unwrap_or(0);
        let columns: Vec<String> = header
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != id_col)
            .map(|(_, h)| h.clone())
            .collect();
        let (mut sample_ids, mut rows) = (Vec::new(), Vec::new());
        let mut seen = HashMap::new();
        for (k, rec) in records.enumerate() {
            let line = k + 2;
            let rec = rec.map_err(|e| DataError::format(path, format!("line {line}: {e}")))?;
            if rec.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            let id = rec.get(id_col).unwrap_or("").trim().to_string();
            if id.starts_with('#') {
                continue; // `#q2:types` row or a QIIME 2 comment line
            }
            if rec.len() != header.len() {
                return Err(DataError::format(
                    path,
                    format!("line {line} (sample '{id}') has {} cells but the header has {}; every row needs one cell per column (use an empty cell for missing)", rec.len(), header.len()),
                ));
            }
            if id.is_empty() {
                return Err(DataError::format(
                    path,
                    format!(
                        "line {line} has an empty sample ID in column '{}'",
                        header[id_col]
                    ),
                ));
            }
            if let Some(prev) = seen.insert(id.clone(), line) {
                return Err(DataError::format(path, format!("sample '{id}' appears twice (lines {prev} and {line}); sample IDs must be unique")));
            }
            rows.push(
                rec.iter()
                    .enumerate()
                    .filter(|(i, _)| *i != id_col)
                    .map(|(_, c)| c.trim().to_string())
                    .collect(),
            );
            sample_ids.push(id);
        }
        Ok(Metadata {
            path: path.to_path_buf(),
            columns,
            sample_ids,
            rows,
        })
    }

    /// Index of column `name`; the error lists the available columns.
    pub fn column_index(&self, name: &str) -> Result<usize> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            DataError::format(
                &self.path,
                format!(
                    "no column '{name}'; available columns: {}",
                    name_list(&self.columns, 30)
                ),
            )
        })
    }

    /// Resolves column `name` for `sample_ids`.
    ///
    /// `kind` forces numeric or categorical; `None` picks numeric when every
    /// non-missing value parses as a finite number. Samples without a metadata row
    /// or with a missing value get `None` and are listed (to be excluded and counted
    /// by the caller). Errors: unknown column; a forced numeric column holding a
    /// non-number (naming the sample); no usable value at all.
    pub fn target(
        &self,
        name: &str,
        sample_ids: &[String],
        kind: Option<TargetKind>,
    ) -> Result<Target> {
        let c = self.column_index(name)?;
        let pos: HashMap<&str, usize> = self
            .sample_ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        let mut raw: Vec<Option<&str>> = Vec::with_capacity(sample_ids.len());
        let (mut absent_samples, mut missing_samples) = (Vec::new(), Vec::new());
        for id in sample_ids {
            match pos.get(id.as_str()) {
                None => {
                    absent_samples.push(id.clone());
                    raw.push(None);
                }
                Some(&r) if is_missing(&self.rows[r][c]) => {
                    missing_samples.push(id.clone());
                    raw.push(None);
                }
                Some(&r) => raw.push(Some(self.rows[r][c].as_str())),
            }
        }
        if raw.iter().all(Option::is_none) {
            return Err(DataError::mismatch(
                &self.path,
                format!("column '{name}' has no value for any of the {} samples ({} absent from the metadata, {} missing); check the sample IDs and the column", sample_ids.len(), absent_samples.len(), missing_samples.len()),
            ));
        }
        let parse = |v: &str| v.parse::<f64>().ok().filter(|x| x.is_finite());
        let all_numeric = raw.iter().flatten().all(|v| parse(v).is_some());
        let kind = kind.unwrap_or(if all_numeric {
            TargetKind::Numeric
        } else {
            TargetKind::Categorical
        });
        let (classes, values) = match kind {
            TargetKind::Numeric => {
                let mut values = Vec::with_capacity(raw.len());
                for (i, v) in raw.iter().enumerate() {
                    values.push(match v {
                        None => None,
                        Some(s) => Some(parse(s).ok_or_else(|| {
                            DataError::format(&self.path, format!("sample '{}', column '{name}': '{s}' is not a number; use --target-type categorical or fix the value", sample_ids[i]))
                        })?),
                    });
                }
                (Vec::new(), values)
            }
            TargetKind::Categorical => {
                let classes: Vec<String> = raw
                    .iter()
                    .flatten()
                    .map(|s| s.to_string())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let index: HashMap<&str, usize> = classes
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.as_str(), i))
                    .collect();
                let values = raw.iter().map(|v| v.map(|s| index[s] as f64)).collect();
                (classes, values)
            }
        };
        Ok(Target {
            column: name.to_string(),
            kind,
            classes,
            values,
            absent_samples,
            missing_samples,
        })
    }
}

impl Target {
    /// Count per class label (categorical targets; empty for a numeric target, whose
    /// values are not class indices).
    pub fn class_counts(&self) -> BTreeMap<String, usize> {
        let mut counts: BTreeMap<String, usize> =
            self.classes.iter().map(|c| (c.clone(), 0)).collect();
        if self.kind != TargetKind::Categorical {
            return counts;
        }
        for v in self.values.iter().flatten() {
            if let Some(n) = self.classes.get(*v as usize).and_then(|c| counts.get_mut(c)) {
                *n += 1;
            }
        }
        counts
    }
}
