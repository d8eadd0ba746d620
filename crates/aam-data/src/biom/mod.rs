//! BIOM feature tables in their three on-disk forms.
//!
//! The format is detected from the file's first bytes, not its extension: the HDF5
//! signature means BIOM 2.1, a `{` means BIOM 1.0 JSON, a zip archive means a QIIME 2
//! artifact (`FeatureTable[Frequency]`, holding a BIOM file), anything else is read as
//! classic tab-separated text. Observation IDs are the ASV sequences, or feature IDs
//! that [`load_table_with_sequences`] maps to them.

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
    /// A QIIME 2 artifact (`.qza`) of type `FeatureTable[Frequency]`, holding BIOM 2.1
    /// HDF5 (or BIOM 1.0 JSON in old artifacts).
    Qza,
}

impl std::fmt::Display for BiomFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BiomFormat::Hdf5 => "BIOM 2.1 (HDF5)",
            BiomFormat::Json => "BIOM 1.0 (JSON)",
            BiomFormat::Tsv => "classic TSV",
            BiomFormat::Qza => "QIIME 2 artifact, FeatureTable[Frequency]",
        })
    }
}

const HDF5_SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";

/// Detects the format of `bytes` (the whole file).
pub fn detect_format(bytes: &[u8]) -> BiomFormat {
    if bytes.starts_with(HDF5_SIGNATURE) {
        return BiomFormat::Hdf5;
    }
    if crate::qiime2::is_artifact(bytes) {
        return BiomFormat::Qza;
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
/// negative or non-finite counts, or an empty table; for a `.qza`, also an artifact
/// of another semantic type than `FeatureTable[Frequency]` (naming both).
pub fn load_table(path: &Path) -> Result<(FeatureTable, BiomFormat)> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let format = detect_format(&bytes);
    let table = match format {
        BiomFormat::Hdf5 => hdf5::parse(path, bytes)?,
        BiomFormat::Json => json::parse(path, &bytes)?,
        BiomFormat::Tsv => tsv::parse(path, &bytes)?,
        BiomFormat::Qza => {
            let inner =
                crate::qiime2::read_data(path, &bytes, crate::qiime2::ArtifactKind::FeatureTable)?;
            drop(bytes);
            match detect_format(&inner) {
                BiomFormat::Hdf5 => hdf5::parse(path, inner)?,
                BiomFormat::Json => json::parse(path, &inner)?,
                _ => {
                    return Err(DataError::format(
                        path,
                        "the artifact's data/feature-table.biom is neither BIOM 2.1 (HDF5) nor BIOM 1.0 (JSON); export it with `qiime tools export` and convert it with `biom convert --to-hdf5`",
                    ))
                }
            }
        }
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

/// Loads a feature table as [`load_table`] does, then, when `sequences` is given (a
/// FASTA file or a `FeatureData[Sequence]` `.qza`), replaces its feature IDs by their
/// sequences ([`crate::sequences::FeatureSequences::apply`]).
///
/// Errors: those of [`load_table`] and [`crate::sequences::load_sequences`]; a feature
/// without a sequence, or a hash ID that is not its sequence's MD5 (naming it).
pub fn load_table_with_sequences(
    path: &Path,
    sequences: Option<&Path>,
) -> Result<(FeatureTable, BiomFormat)> {
    let (mut table, format) = load_table(path)?;
    if let Some(seqs) = sequences {
        crate::sequences::load_sequences(seqs)?.apply(&mut table, path)?;
    }
    Ok((table, format))
}
