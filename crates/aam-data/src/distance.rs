//! Pairwise distance matrices (UniFrac and others) and their alignment to a table.
//!
//! Sources: `ssu` HDF5 (`matrix` `[N, N]` + `order` `[N]` sample IDs), `.npy`
//! (float32/float64 `[N, N]`, sample order from a `*_ids.txt` sidecar or the table),
//! and labelled `.csv`/`.tsv` (first row and first column are sample IDs, matched by
//! label on both axes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hdf5_pure::File;
use ndarray::{Array1, Array2};

use crate::error::{name_list, DataError, Result};

/// Tolerance of the symmetry and zero-diagonal checks (float32 storage).
pub const SYMMETRY_TOLERANCE: f64 = 1e-6;

/// A square distance matrix with its sample IDs.
#[derive(Debug, Clone, PartialEq)]
pub struct DistanceMatrix {
    /// File it was read from (for messages).
    pub path: PathBuf,
    /// Sample ID of each row/column, `[n]`.
    pub ids: Vec<String>,
    /// Row-major distances, `[n, n]`, as `f64`.
    pub values: Vec<f64>,
    /// Where the sample order came from (e.g. "`order` dataset", "sidecar x_ids.txt").
    pub order_source: String,
}

impl DistanceMatrix {
    /// Number of samples.
    pub fn n(&self) -> usize {
        self.ids.len()
    }

    /// Distance between rows `i` and `j`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.values[i * self.n() + j]
    }

    /// Checks: finite, symmetric within [`SYMMETRY_TOLERANCE`], zero diagonal, and for
    /// UniFrac (`unit_interval`) every value in [0, 1]. Errors name the file and the
    /// first offending pair of samples.
    pub fn validate(&self, unit_interval: bool) -> Result<()> {
        let n = self.n();
        let bad = |msg: String| Err(DataError::format(&self.path, msg));
        for i in 0..n {
            for j in 0..n {
                let v = self.get(i, j);
                let (a, b) = (&self.ids[i], &self.ids[j]);
                if !v.is_finite() {
                    return bad(format!("distance between samples '{a}' and '{b}' is {v}; recompute the matrix (all distances must be finite)"));
                }
                if i == j && v.abs() > SYMMETRY_TOLERANCE {
                    return bad(format!("diagonal entry of sample '{a}' is {v}, not 0; a distance matrix must be hollow — is this a similarity matrix?"));
                }
                if j > i && (v - self.get(j, i)).abs() > SYMMETRY_TOLERANCE {
                    return bad(format!(
                        "not symmetric: d('{a}','{b}') = {v} but d('{b}','{a}') = {}; a distance matrix must be symmetric",
                        self.get(j, i)
                    ));
                }
                if unit_interval && !(0.0..=1.0).contains(&v) {
                    return bad(format!(
                        "UniFrac distance between samples '{a}' and '{b}' is {v}, outside [0, 1]; use unweighted or weighted normalized UniFrac"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reorders the matrix to `sample_ids` (the table's order).
    ///
    /// Samples of the table absent from the matrix are an error that counts them and
    /// names up to ten, unless `allow_subset`, in which case only the shared samples
    /// are kept (in table order) and the missing ones are returned.
    pub fn align(
        &self,
        sample_ids: &[String],
        allow_subset: bool,
    ) -> Result<(DistanceMatrix, Vec<String>)> {
        let pos: HashMap<&str, usize> = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        let (mut rows, mut ids, mut missing) = (Vec::new(), Vec::new(), Vec::new());
        for id in sample_ids {
            match pos.get(id.as_str()) {
                Some(&r) => {
                    rows.push(r);
                    ids.push(id.clone());
                }
                None => missing.push(id.clone()),
            }
        }
        if !missing.is_empty() && !allow_subset {
            return Err(DataError::mismatch(
                &self.path,
                format!(
                    "{} of the table's {} samples are missing from this distance matrix: {}. Recompute the matrix on this table (e.g. `ssu -i table.biom -t tree.nwk -m unweighted_fp32 -o out.h5 --format hdf5_fp32`), or pass --allow-sample-subset to keep the {} shared samples",
                    missing.len(),
                    sample_ids.len(),
                    name_list(&missing, 10),
                    ids.len()
                ),
            ));
        }
        if ids.is_empty() {
            return Err(DataError::mismatch(&self.path, "no sample of the table is in this distance matrix; check that the matrix was computed on this table"));
        }
        let n = rows.len();
        let mut values = Vec::with_capacity(n * n);
        for &r in &rows {
            for &c in &rows {
                values.push(self.get(r, c));
            }
        }
        let aligned = DistanceMatrix {
            path: self.path.clone(),
            ids,
            values,
            order_source: self.order_source.clone(),
        };
        Ok((aligned, missing))
    }

    /// The `[batch, batch]` block for rows `idx` (positions in this matrix), in that order.
    pub fn block(&self, idx: &[usize]) -> Array2<f32> {
        Array2::from_shape_fn((idx.len(), idx.len()), |(a, b)| {
            self.get(idx[a], idx[b]) as f32
        })
    }
}

/// Loads a distance matrix by extension: `.h5`/`.hdf5` (ssu), `.npy`, `.csv`, `.tsv`,
/// `.qza` (a QIIME 2 `DistanceMatrix` artifact, read in memory).
///
/// `ids_file` overrides the sample order of a `.npy`; without it a sidecar
/// `*_ids.txt` next to the file is used, else `table_ids` (with a size check).
///
/// Errors: unsupported extension, unreadable file, non-square matrix, an ID count
/// that does not match the matrix size, duplicate IDs, a `.qza` of another semantic type.
pub fn load_distance_matrix(
    path: &Path,
    ids_file: Option<&Path>,
    table_ids: &[String],
) -> Result<DistanceMatrix> {
    let ext = extension(path);
    let (ids, values, order_source) = match ext.as_str() {
        "h5" | "hdf5" => read_ssu_h5(path, table_ids)?,
        "npy" => {
            let m = read_npy_2d(path)?;
            let (ids, source) = npy_ids(path, ids_file, table_ids, m.nrows())?;
            (ids, m.into_raw_vec_and_offset().0, source)
        }
        "csv" | "tsv" | "txt" => {
            let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
            read_labelled(path, &bytes, if ext == "csv" { b',' } else { b'\t' })?
        }
        "qza" => {
            let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
            let tsv = crate::qiime2::read_data(path, &bytes, crate::qiime2::ArtifactKind::DistanceMatrix)?;
            let (ids, values, _) = read_labelled(path, &tsv, b'\t')?;
            (ids, values, "QIIME 2 DistanceMatrix labels".into())
        }
        _ => {
            return Err(DataError::format(
                path,
                format!("unsupported distance matrix extension '.{ext}'; use ssu .h5, .npy (with a *_ids.txt sidecar), a labelled .csv/.tsv or a QIIME 2 DistanceMatrix .qza"),
            ))
        }
    };
    let n = ids.len();
    if values.len() != n * n {
        return Err(DataError::format(
            path,
            format!(
                "matrix has {} values for {n} sample IDs; expected a square {n} × {n} matrix",
                values.len()
            ),
        ));
    }
    crate::table::check_unique(path, &ids, "sample")?;
    Ok(DistanceMatrix {
        path: path.to_path_buf(),
        ids,
        values,
        order_source,
    })
}

pub(crate) fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// How to rewrite an unreadable ssu distance matrix.
const RECOMPUTE: &str = "recompute it with `ssu ... --format hdf5_fp32` (or save it as .npy)";

fn read_ssu_h5(path: &Path, table_ids: &[String]) -> Result<(Vec<String>, Vec<f64>, String)> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let fail = |what: &str, e: hdf5_pure::Error| {
        DataError::format(path, format!("cannot read {what} ({e}); expected the ssu layout (datasets `matrix` [N, N] and `order` [N])"))
    };
    let file = File::from_bytes(bytes).map_err(|e| fail("the HDF5 file", e))?;
    let matrix = file
        .dataset("matrix")
        .map_err(|e| fail("dataset `matrix`", e))?;
    let shape = matrix.shape().map_err(|e| fail("shape of `matrix`", e))?;
    if shape.len() != 2 || shape[0] != shape[1] {
        return Err(DataError::format(
            path,
            format!("`matrix` has shape {shape:?}; a distance matrix is square [N, N]"),
        ));
    }
    // Declared sizes against the file's before reading (see `hdf5_shape`).
    crate::hdf5_shape::declared_len(path, &file, "matrix", &fail, RECOMPUTE)?;
    let order = file.dataset("order").ok();
    if order.is_some() {
        let n_order = crate::hdf5_shape::declared_len(path, &file, "order", &fail, RECOMPUTE)?;
        if n_order as u64 != shape[0] {
            return Err(DataError::format(
                path,
                format!("`order` holds {n_order} sample IDs for a [{0}, {0}] matrix; the file is corrupt", shape[0]),
            ));
        }
    }
    let values = matrix.read_f64().map_err(|e| fail("dataset `matrix`", e))?;
    match order {
        Some(order) => {
            let ids = order
                .read_string()
                .map_err(|e| fail("dataset `order`", e))?;
            Ok((
                ids.into_iter().map(|s| unwrap_bytes_repr(&s)).collect(),
                values,
                "ssu `order` dataset".into(),
            ))
        }
        None => {
            let ids = table_order(path, table_ids, shape[0] as usize)?;
            Ok((ids, values, "table order (no `order` dataset)".into()))
        }
    }
}

/// Some writers store Python `bytes` reprs (`b'S1'`) as IDs; unwrap them.
fn unwrap_bytes_repr(s: &str) -> String {
    let t = s.trim();
    if t.len() >= 3
        && (t.starts_with("b'") && t.ends_with('\'') || t.starts_with("b\"") && t.ends_with('"'))
    {
        t[2..t.len() - 1].to_string()
    } else {
        t.to_string()
    }
}

fn read_npy_2d(path: &Path) -> Result<Array2<f64>> {
    crate::npy::check_npy_size(path)?;
    // float32 first; only a file of another dtype is read again as float64, so that a
    // truncated or misshapen float32 file reports its own fault, not a dtype mismatch.
    match ndarray_npy::read_npy::<_, Array2<f32>>(path) {
        Ok(a) => return Ok(a.mapv(f64::from)),
        Err(ndarray_npy::ReadNpyError::WrongDescriptor(_)) => {}
        Err(e) => return Err(DataError::format(path, format!("not a 2-D float32/float64 .npy array ({e}); save the matrix with numpy.save as float32 or float64"))),
    }
    ndarray_npy::read_npy::<_, Array2<f64>>(path).map_err(|e| {
        DataError::format(path, format!("not a 2-D float32/float64 .npy array ({e}); save the matrix with numpy.save as float32 or float64"))
    })
}

/// Reads a 1-D (or `[N, 1]`) float32/float64 `.npy` vector.
pub(crate) fn read_npy_1d(path: &Path) -> Result<Vec<f64>> {
    crate::npy::check_npy_size(path)?;
    if let Ok(a) = ndarray_npy::read_npy::<_, Array1<f32>>(path) {
        return Ok(a.iter().map(|&v| f64::from(v)).collect());
    }
    if let Ok(a) = ndarray_npy::read_npy::<_, Array1<f64>>(path) {
        return Ok(a.to_vec());
    }
    match read_npy_2d(path) {
        Ok(a) if a.ncols() == 1 => Ok(a.iter().copied().collect()),
        _ => Err(DataError::format(
            path,
            "not a 1-D (or [N, 1]) float32/float64 .npy vector; save it with numpy.save",
        )),
    }
}

fn table_order(path: &Path, table_ids: &[String], n: usize) -> Result<Vec<String>> {
    if n != table_ids.len() {
        return Err(DataError::mismatch(
            path,
            format!(
                "this file carries no sample IDs and has {n} rows, but the table has {} samples; give the sample order with --unifrac-ids (one ID per line) or use an ssu .h5 with an `order` dataset",
                table_ids.len()
            ),
        ));
    }
    Ok(table_ids.to_vec())
}

/// Finds the sidecar ID file of a `.npy`: `<stem>_ids.txt`, else the `<prefix>_ids.txt`
/// in the same folder with the longest `<prefix>` that starts the stem
/// (`unifrac_ids.txt` for `unifrac_unweighted.npy`).
pub fn find_sidecar_ids(path: &Path) -> Option<PathBuf> {
    let stem = path.file_stem()?.to_str()?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let exact = dir.join(format!("{stem}_ids.txt"));
    if exact.is_file() {
        return Some(exact);
    }
    let mut best: Option<(usize, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        let Some(prefix) = name.to_str().and_then(|n| n.strip_suffix("_ids.txt")) else {
            continue;
        };
        if !prefix.is_empty()
            && stem.starts_with(prefix)
            && best.as_ref().is_none_or(|b| prefix.len() > b.0)
        {
            best = Some((prefix.len(), entry.path()));
        }
    }
    best.map(|b| b.1)
}

/// Reads one sample ID per line (blank lines skipped).
pub fn read_id_list(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    Ok(text
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

fn npy_ids(
    path: &Path,
    ids_file: Option<&Path>,
    table_ids: &[String],
    n: usize,
) -> Result<(Vec<String>, String)> {
    let sidecar = ids_file
        .map(Path::to_path_buf)
        .or_else(|| find_sidecar_ids(path));
    match sidecar {
        Some(f) => {
            let ids = read_id_list(&f)?;
            if ids.len() != n {
                return Err(DataError::mismatch(
                    &f,
                    format!("lists {} sample IDs but the matrix {} is {n} × {n}; the ID file must give one ID per matrix row", ids.len(), path.display()),
                ));
            }
            Ok((ids, format!("ID file {}", f.display())))
        }
        None => Ok((
            table_order(path, table_ids, n)?,
            "table order (no ID file)".into(),
        )),
    }
}

fn read_labelled(
    path: &Path,
    bytes: &[u8],
    delimiter: u8,
) -> Result<(Vec<String>, Vec<f64>, String)> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rows = reader.records();
    let header = match rows.next() {
        Some(Ok(h)) => h,
        _ => {
            return Err(DataError::format(
                path,
                "empty file; a labelled matrix has a header row of sample IDs",
            ))
        }
    };
    let col_ids: Vec<String> = header
        .iter()
        .skip(1)
        .map(|s| s.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let mut row_ids = Vec::new();
    let mut rows_values: Vec<Vec<f64>> = Vec::new();
    for (line, rec) in rows.enumerate() {
        let rec = rec.map_err(|e| DataError::format(path, format!("line {}: {e}", line + 2)))?;
        if rec.len() != col_ids.len() + 1 {
            return Err(DataError::format(
                path,
                format!(
                    "line {} has {} cells; expected a label and {} distances",
                    line + 2,
                    rec.len(),
                    col_ids.len()
                ),
            ));
        }
        let label = rec[0].trim().to_string();
        let vals = rec
            .iter()
            .skip(1)
            .enumerate()
            .map(|(c, v)| {
                v.trim().parse::<f64>().map_err(|_| {
                    DataError::format(
                        path,
                        format!(
                            "line {}, sample '{label}', column '{}': '{v}' is not a number",
                            line + 2,
                            col_ids[c]
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        row_ids.push(label);
        rows_values.push(vals);
    }
    crate::table::check_unique(path, &col_ids, "column sample")?;
    crate::table::check_unique(path, &row_ids, "row sample")?;
    let col_pos: HashMap<&str, usize> = col_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let row_set: std::collections::HashSet<&str> = row_ids.iter().map(String::as_str).collect();
    let rows_only: Vec<String> = row_ids
        .iter()
        .filter(|r| !col_pos.contains_key(r.as_str()))
        .map(|r| format!("'{r}'"))
        .collect();
    let cols_only: Vec<String> = col_ids
        .iter()
        .filter(|c| !row_set.contains(c.as_str()))
        .map(|c| format!("'{c}'"))
        .collect();
    if !rows_only.is_empty() || !cols_only.is_empty() {
        return Err(DataError::format(
            path,
            format!(
                "rows and columns must hold the same samples: {} only label a row ({}), {} only label a column ({}); a distance matrix is square",
                rows_only.len(),
                name_list(&rows_only, 10),
                cols_only.len(),
                name_list(&cols_only, 10)
            ),
        ));
    }
    let mut values = Vec::with_capacity(row_ids.len() * row_ids.len());
    for row in &rows_values {
        for other in &row_ids {
            values.push(row[col_pos[other.as_str()]]);
        }
    }
    Ok((row_ids, values, "row and column labels".into()))
}
