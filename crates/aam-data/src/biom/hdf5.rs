//! BIOM 2.1 HDF5 reader (pure Rust, `hdf5-pure`).
//!
//! Layout (biom-format.org, "The BIOM File Format Version 2.1"):
//! `observation/ids`, `sample/ids` (variable- or fixed-length strings),
//! `sample/matrix/{data,indices,indptr}` (CSC: one column per sample) and the same
//! under `observation/matrix` (CSR). CSC is preferred; CSR is the fallback.

use std::path::Path;

use hdf5_pure::File;

use crate::error::{DataError, Result};
use crate::hdf5_shape::declared_len;
use crate::table::FeatureTable;

/// How to rewrite an unreadable BIOM 2.1 HDF5 table.
pub(super) const REEXPORT: &str = "re-export it with `biom convert --to-hdf5`";

/// `sample/ids` and `observation/ids` of an open BIOM 2.1 file; `fail` turns a read
/// error of the named dataset into the caller's message.
///
/// Errors: [`DataError::Format`] naming `path` when a declared ID count is larger than
/// the file can hold ([`declared_len`]), or from `fail`.
pub(super) fn read_ids(
    path: &Path,
    file: &File,
    fail: &dyn Fn(&str, hdf5_pure::Error) -> DataError,
) -> Result<(Vec<String>, Vec<String>)> {
    let strings = |name: &str| -> Result<Vec<String>> {
        declared_len(path, file, name, fail, REEXPORT)?;
        file.dataset(name)
            .and_then(|d| d.read_string())
            .map_err(|e| fail(name, e))
    };
    Ok((strings("sample/ids")?, strings("observation/ids")?))
}

pub(super) fn parse(path: &Path, bytes: Vec<u8>) -> Result<FeatureTable> {
    let fail = |what: &str, e: hdf5_pure::Error| {
        DataError::format(
            path,
            format!("not a readable BIOM 2.1 HDF5 file ({what}: {e}); {REEXPORT}"),
        )
    };
    let file = File::from_bytes(bytes).map_err(|e| fail("HDF5 structure", e))?;
    let (sample_ids, observation_ids) = read_ids(path, &file, &fail)?;
    let (by_sample, group) = if file.dataset("sample/matrix/indptr").is_ok() {
        (true, "sample/matrix")
    } else {
        (false, "observation/matrix")
    };
    let (n_major, n_minor) = if by_sample {
        (sample_ids.len(), observation_ids.len())
    } else {
        (observation_ids.len(), sample_ids.len())
    };
    // Shapes first, values after: nothing is read whose declared size the IDs rule out.
    let n_indptr = declared_len(path, &file, &format!("{group}/indptr"), &fail, REEXPORT)?;
    let n_data = declared_len(path, &file, &format!("{group}/data"), &fail, REEXPORT)?;
    let n_indices = declared_len(path, &file, &format!("{group}/indices"), &fail, REEXPORT)?;
    let inconsistent = |n_indptr: usize, n_data: usize, n_indices: usize| {
        DataError::format(
            path,
            format!(
                "{group} is inconsistent: indptr has {n_indptr} entries for {n_major} IDs (expected {}), data has {n_data} and indices {n_indices} entries; the file is truncated or corrupt",
                n_major + 1,
            ),
        )
    };
    // A sparse matrix holds at most one entry per cell.
    if n_indptr != n_major + 1 || n_data != n_indices || n_data > n_major.saturating_mul(n_minor) {
        return Err(inconsistent(n_indptr, n_data, n_indices));
    }
    let read_f64 = |name: String| {
        file.dataset(&name)
            .and_then(|d| d.read_f64())
            .map_err(|e| fail(&name, e))
    };
    let read_i64 = |name: String| {
        file.dataset(&name)
            .and_then(|d| d.read_i64())
            .map_err(|e| fail(&name, e))
    };
    let data = read_f64(format!("{group}/data"))?;
    let indices = read_i64(format!("{group}/indices"))?;
    let indptr = read_i64(format!("{group}/indptr"))?;
    if indptr.len() != n_major + 1 || data.len() != indices.len() {
        return Err(inconsistent(indptr.len(), data.len(), indices.len()));
    }
    let mut triplets = Vec::with_capacity(data.len());
    for major in 0..n_major {
        let (a, b) = (indptr[major], indptr[major + 1]);
        if a < 0 || b < a || b as usize > data.len() {
            return Err(DataError::format(
                path,
                format!("{group}/indptr is not monotonic at position {major} ({a} → {b}); the file is corrupt"),
            ));
        }
        for k in a as usize..b as usize {
            let minor = indices[k];
            if minor < 0 || minor as usize >= n_minor {
                return Err(DataError::format(
                    path,
                    format!("{group}/indices[{k}] = {minor} is outside 0..{n_minor}; the file is corrupt"),
                ));
            }
            let (s, o) = if by_sample {
                (major as u32, minor as u32)
            } else {
                (minor as u32, major as u32)
            };
            triplets.push((s, o, data[k]));
        }
    }
    FeatureTable::from_triplets(path, sample_ids, observation_ids, triplets)
}
