//! BIOM feature tables in their three on-disk forms.
//!
//! The format is detected from the file's first bytes, not its extension: the HDF5
//! signature means BIOM 2.1, a `{` means BIOM 1.0 JSON, anything else is read as
//! classic tab-separated text. Observation IDs are the ASV sequences.

mod hdf5;
mod json;
mod stream;
mod tsv;
mod write;

pub use stream::BiomSampleChunks;
pub use write::{hdf5_bytes, write_hdf5, Hdf5Layout};

use std::path::Path;

use crate::error::{DataError, Result};
use crate::table::FeatureTable;

/// The on-disk form a table was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BiomFormat {
    /// BIOM 2.1 HDF5 (CSC `sample/matrix` or CSR `observation/matrix`).
    Hdf5,
    /// BIOM 1.0 JSON, sparse or dense.
    Json,
    /// Classic tab-separated text with an `#OTU ID` header.
    Tsv,
}

impl std::fmt::Display for BiomFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BiomFormat::Hdf5 => "BIOM 2.1 (HDF5)",
            BiomFormat::Json => "BIOM 1.0 (JSON)",
            BiomFormat::Tsv => "classic TSV",
        })
    }
}

const HDF5_SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";

/// Detects the format of `bytes` (the whole file).
pub fn detect_format(bytes: &[u8]) -> BiomFormat {
    if bytes.starts_with(HDF5_SIGNATURE) {
        return BiomFormat::Hdf5;
    }
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => BiomFormat::Json,
        _ => BiomFormat::Tsv,
    }
}

/// Loads a feature table from `path` in any supported format.
///
/// Errors: [`DataError::Io`] if the file cannot be read; [`DataError::Format`] naming
/// the file and the offending sample/ASV for malformed content, duplicate IDs,
/// negative or non-finite counts, or an empty table.
pub fn load_table(path: &Path) -> Result<(FeatureTable, BiomFormat)> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let format = detect_format(&bytes);
    let table = match format {
        BiomFormat::Hdf5 => hdf5::parse(path, bytes)?,
        BiomFormat::Json => json::parse(path, &bytes)?,
        BiomFormat::Tsv => tsv::parse(path, &bytes)?,
    };
    if table.n_samples() == 0 || table.n_asv() == 0 {
        return Err(DataError::format(
            path,
            format!(
                "the table is empty ({} samples × {} ASVs); export a table that holds samples and ASVs",
                table.n_samples(),
                table.n_asv()
            ),
        ));
    }
    Ok((table, format))
}
