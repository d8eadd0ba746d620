//! Declared HDF5 dataset shapes, checked before a dataset is read (BIOM 2.1 tables, ssu
//! distance matrices): `hdf5-pure` reads what a shape declares, so a crafted shape would
//! size memory by the declaration instead of by the file.

use std::path::Path;

use hdf5_pure::File;

use crate::error::{DataError, Result};

/// Deflate's largest expansion, about 1032:1 (zlib technical details: a 258-byte match
/// coded in about 2 bits), the most a BIOM file's datasets (deflate, shuffle, Fletcher-32)
/// can grow when read.
const MAX_EXPANSION: u64 = 1032;

/// Bytes each element read takes in memory at least (`f64`, `i64`, a `String`).
const MIN_ELEMENT_BYTES: u64 = 8;

/// The element count dataset `name` declares, checked before anything is read: a crafted
/// shape (a chunked dataset with no chunks stored reads back as fill values) or a crafted
/// element size (a 43,000-element dataset of 200 kB elements, found by fuzzing) would
/// otherwise take memory in proportion to the declaration, not to the file.
///
/// `fix` ends the message (how to rewrite the file).
///
/// Errors: `fail`'s error when the dataset cannot be opened; [`DataError::Format`] naming
/// `path` when elements × element size (at least 8 bytes) overflows `u64` or exceeds what
/// a file of this size can hold at deflate's largest expansion (`file_size × 1032`
/// bytes).
pub(crate) fn declared_len(
    path: &Path,
    file: &File,
    name: &str,
    fail: &dyn Fn(&str, hdf5_pure::Error) -> DataError,
    fix: &str,
) -> Result<usize> {
    let dataset = file.dataset(name).map_err(|e| fail(name, e))?;
    let shape = dataset.shape().map_err(|e| fail(name, e))?;
    let element = dataset
        .element_size()
        .map_err(|e| fail(name, e))?
        .max(MIN_ELEMENT_BYTES);
    let limit = file.file_size().saturating_mul(MAX_EXPANSION);
    let elements = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
    match elements.and_then(|n| Some((n, n.checked_mul(element)?))) {
        Some((n, bytes)) if bytes <= limit => usize::try_from(n)
            .map_err(|_| DataError::format(path, format!("{name} is too large for this platform"))),
        _ => Err(DataError::format(
            path,
            format!(
                "{name} declares shape {shape:?} of {element}-byte elements, more than a {}-byte file can hold even compressed (at most {limit} bytes); the file is corrupt: {fix}",
                file.file_size()
            ),
        )),
    }
}
