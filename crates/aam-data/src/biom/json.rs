//! BIOM 1.0 JSON reader (sparse and dense `matrix_type`).
//!
//! Spec: biom-format.org, "The BIOM File Format Version 1.0". `shape` is
//! `[n_observations, n_samples]`; sparse `data` holds `[row, column, value]`
//! triplets, dense `data` holds one row per observation.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{DataError, Result};
use crate::table::FeatureTable;

#[derive(Deserialize)]
struct Entry {
    id: Value,
}

#[derive(Deserialize)]
struct Biom1 {
    matrix_type: String,
    shape: [usize; 2],
    data: Vec<Vec<Value>>,
    rows: Vec<Entry>,
    columns: Vec<Entry>,
}

fn id_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn parse(path: &Path, bytes: &[u8]) -> Result<FeatureTable> {
    let doc: Biom1 = serde_json::from_slice(bytes).map_err(|e| {
        DataError::format(
            path,
            format!(
                "not a valid BIOM 1.0 JSON table ({e}); re-export it with `biom convert --to-json`"
            ),
        )
    })?;
    let observation_ids: Vec<String> = doc.rows.iter().map(|r| id_string(&r.id)).collect();
    let sample_ids: Vec<String> = doc.columns.iter().map(|c| id_string(&c.id)).collect();
    if doc.shape != [observation_ids.len(), sample_ids.len()] {
        return Err(DataError::format(
            path,
            format!(
                "`shape` says {:?} but there are {} rows (ASVs) and {} columns (samples); the file is corrupt",
                doc.shape,
                observation_ids.len(),
                sample_ids.len()
            ),
        ));
    }
    let num = |v: &Value, what: &str| -> Result<f64> {
        v.as_f64()
            .ok_or_else(|| DataError::format(path, format!("{what} is {v}, not a number")))
    };
    let mut triplets = Vec::new();
    match doc.matrix_type.as_str() {
        "sparse" => {
            for (k, t) in doc.data.iter().enumerate() {
                if t.len() != 3 {
                    return Err(DataError::format(
                        path,
                        format!(
                            "sparse data entry {k} has {} values; expected [row, column, value]",
                            t.len()
                        ),
                    ));
                }
                let r = num(&t[0], &format!("data[{k}] row"))?;
                let c = num(&t[1], &format!("data[{k}] column"))?;
                if r < 0.0 || c < 0.0 || r.fract() != 0.0 || c.fract() != 0.0 {
                    return Err(DataError::format(
                        path,
                        format!("data[{k}] has a non-integer or negative index ({r}, {c})"),
                    ));
                }
                triplets.push((c as u32, r as u32, num(&t[2], &format!("data[{k}] value"))?));
            }
        }
        "dense" => {
            if doc.data.len() != observation_ids.len() {
                return Err(DataError::format(
                    path,
                    format!(
                        "dense data has {} rows for {} ASVs",
                        doc.data.len(),
                        observation_ids.len()
                    ),
                ));
            }
            for (r, row) in doc.data.iter().enumerate() {
                if row.len() != sample_ids.len() {
                    return Err(DataError::format(
                        path,
                        format!(
                            "dense row {r} (ASV '{}') has {} values for {} samples",
                            crate::error::short_asv(&observation_ids[r]),
                            row.len(),
                            sample_ids.len()
                        ),
                    ));
                }
                for (c, v) in row.iter().enumerate() {
                    triplets.push((c as u32, r as u32, num(v, &format!("data[{r}][{c}]"))?));
                }
            }
        }
        other => {
            return Err(DataError::format(
                path,
                format!("matrix_type '{other}' is not 'sparse' or 'dense'"),
            ));
        }
    }
    FeatureTable::from_triplets(path, sample_ids, observation_ids, triplets)
}
