//! QIIME 2 artifacts (`.qza`) read where aam reads the same data as plain files.
//!
//! A `.qza` is a zip archive holding one top-level folder named by the artifact's UUID:
//! `metadata.yaml` (`uuid`, `type` = the semantic type, `format`), `VERSION`, `data/`
//! and `provenance/`. The provenance holds the `metadata.yaml` of every ancestor too,
//! so only the top-level one says what the artifact is. Source: the QIIME 2 archive
//! format (`qiime2/core/archive/format/v*.py`), checked on the artifacts of
//! `shared/data/moving-pictures/qiime2/`.
//!
//! The archive is read in memory: no path from inside it ever reaches the file system,
//! and every entry read is bounded ([`MAX_ENTRY_BYTES`]) before it is decompressed.

use std::io::{Cursor, Read};
use std::path::Path;

use crate::error::{DataError, Result};

/// The first bytes of a zip archive (a local file header), hence of every `.qza`.
pub const ZIP_SIGNATURE: &[u8] = b"PK\x03\x04";

/// Largest decompressed entry read from an artifact, in bytes (4 GiB): larger ones are
/// refused before decompressing, so a small archive cannot claim unbounded memory.
pub const MAX_ENTRY_BYTES: u64 = 4 << 30;

/// Largest `metadata.yaml` read, in bytes (it holds three short lines).
const MAX_METADATA_BYTES: u64 = 64 << 10;

/// Largest number of entries in an archive (provenance adds a few files per ancestor).
const MAX_ENTRIES: usize = 1_000_000;

/// Whether `bytes` (the start of a file) is a zip archive, hence possibly a `.qza`.
pub fn is_artifact(bytes: &[u8]) -> bool {
    bytes.starts_with(ZIP_SIGNATURE)
}

/// What aam reads from an artifact: each kind has the semantic types it accepts, the
/// file of `data/` that holds the data, and the option it is given to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// `FeatureTable[Frequency]`: `data/feature-table.biom` (BIOM 2.1 HDF5, or BIOM 1.0
    /// JSON in artifacts older than QIIME 2 2017.x).
    FeatureTable,
    /// `FeatureData[Sequence]`: `data/dna-sequences.fasta` (feature ID → sequence).
    Sequences,
    /// `DistanceMatrix`: `data/distance-matrix.tsv` (labelled square TSV).
    DistanceMatrix,
    /// `SampleData[AlphaDiversity]`: `data/alpha-diversity.tsv` (sample → value).
    AlphaDiversity,
    /// `FeatureData[Taxonomy]`: `data/taxonomy.tsv` (`Feature ID`, `Taxon`, …).
    Taxonomy,
}

impl ArtifactKind {
    /// The semantic type (`metadata.yaml`'s `type`) this kind accepts.
    pub fn semantic_type(self) -> &'static str {
        match self {
            ArtifactKind::FeatureTable => "FeatureTable[Frequency]",
            ArtifactKind::Sequences => "FeatureData[Sequence]",
            ArtifactKind::DistanceMatrix => "DistanceMatrix",
            ArtifactKind::AlphaDiversity => "SampleData[AlphaDiversity]",
            ArtifactKind::Taxonomy => "FeatureData[Taxonomy]",
        }
    }

    /// The file inside `data/` that holds the data.
    pub fn data_file(self) -> &'static str {
        match self {
            ArtifactKind::FeatureTable => "feature-table.biom",
            ArtifactKind::Sequences => "dna-sequences.fasta",
            ArtifactKind::DistanceMatrix => "distance-matrix.tsv",
            ArtifactKind::AlphaDiversity => "alpha-diversity.tsv",
            ArtifactKind::Taxonomy => "taxonomy.tsv",
        }
    }

    /// The command-line option that reads this kind, for messages.
    pub fn option(self) -> &'static str {
        match self {
            ArtifactKind::FeatureTable => "--table",
            ArtifactKind::Sequences => "--sequences",
            ArtifactKind::DistanceMatrix => "--unifrac-matrix",
            ArtifactKind::AlphaDiversity => "--faith-pd",
            ArtifactKind::Taxonomy => "--taxonomy",
        }
    }
}

/// The top-level `metadata.yaml` of an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactMetadata {
    /// The name of its top-level folder (QIIME 2 names it by the artifact's UUID).
    pub uuid: String,
    /// Its semantic type, e.g. `FeatureTable[Frequency]`, or
    /// `DistanceMatrix % Properties('phylogenetic')` (a type with properties).
    pub semantic_type: String,
    /// Its directory format, e.g. `BIOMV210DirFmt`.
    pub format: String,
}

/// Reads the semantic type of the artifact whose whole file is `bytes`.
///
/// Errors ([`DataError::Format`], naming `path`): not a zip archive, no top-level
/// `metadata.yaml` (or more than one), one without a `type`, or one over 64 KiB.
pub fn read_metadata(path: &Path, bytes: &[u8]) -> Result<ArtifactMetadata> {
    let mut archive = open(path, bytes)?;
    metadata_of(path, &mut archive)
}

/// Reads the data file of an artifact of `kind` whose whole file is `bytes`, after
/// checking its semantic type.
///
/// Errors ([`DataError::Format`], naming `path`): as [`read_metadata`]; a semantic type
/// other than `kind`'s (naming both); no `data/<file>` entry; an entry over
/// [`MAX_ENTRY_BYTES`], a corrupt or encrypted entry, or one whose size differs from
/// the size its header declares.
pub fn read_data(path: &Path, bytes: &[u8], kind: ArtifactKind) -> Result<Vec<u8>> {
    let mut archive = open(path, bytes)?;
    let meta = metadata_of(path, &mut archive)?;
    // `DistanceMatrix % Properties('phylogenetic')` is a DistanceMatrix: q2-diversity marks
    // its UniFrac matrices and Faith PD vectors so.
    let base = meta.semantic_type.split(" % ").next().unwrap_or("").trim();
    if base != kind.semantic_type() {
        return Err(DataError::format(
            path,
            format!(
                "this QIIME 2 artifact is a `{}`, but {} reads a `{}`; give {} the artifact of that type{}",
                meta.semantic_type,
                kind.option(),
                kind.semantic_type(),
                kind.option(),
                type_hint(kind, &meta.semantic_type),
            ),
        ));
    }
    let name = format!("{}/data/{}", meta.uuid, kind.data_file());
    read_entry(path, &mut archive, &name, MAX_ENTRY_BYTES)?.ok_or_else(|| {
        DataError::format(
            path,
            format!(
                "this `{}` artifact has no `data/{}` (format `{}`); export the data with `qiime tools export` and give aam the exported file",
                meta.semantic_type,
                kind.data_file(),
                meta.format
            ),
        )
    })
}

/// Reads the file at `path` whole (refused over `max_bytes`, the error naming `what` it
/// was read as), or, when it is an artifact, the data file of `kind` inside it (its type
/// checked as [`read_data`] does): the one way the readers of plain-or-artifact files
/// (sequences, taxonomy) take their bytes.
///
/// Errors: [`DataError::Io`] when the file cannot be read; [`DataError::Format`] for a
/// file over `max_bytes`, and those of [`read_data`].
pub fn read_file_or_artifact(
    path: &Path,
    kind: ArtifactKind,
    max_bytes: u64,
    what: &str,
) -> Result<Vec<u8>> {
    let size = std::fs::metadata(path)
        .map_err(|e| DataError::io(path, e))?
        .len();
    if size > max_bytes {
        return Err(DataError::format(
            path,
            format!("the file has {size} bytes, more than the {max_bytes} aam reads as {what}"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if is_artifact(&bytes) {
        read_data(path, &bytes, kind)
    } else {
        Ok(bytes)
    }
}

/// A hint for the commonest wrong type of each kind.
fn type_hint(kind: ArtifactKind, found: &str) -> &'static str {
    match (kind, found) {
        (ArtifactKind::FeatureTable, "FeatureTable[RelativeFrequency]") => {
            " (aam needs the counts: use the table before `qiime feature-table relative-frequency`)"
        }
        (ArtifactKind::FeatureTable, "FeatureData[Sequence]") => {
            " (the sequences go to --sequences)"
        }
        (ArtifactKind::Sequences, "FeatureData[AlignedSequence]") => {
            " (use the unaligned rep-seqs, not the alignment)"
        }
        _ => "",
    }
}

type Archive<'a> = zip::ZipArchive<Cursor<&'a [u8]>>;

fn open<'a>(path: &Path, bytes: &'a [u8]) -> Result<Archive<'a>> {
    if !is_artifact(bytes) {
        return Err(DataError::format(
            path,
            "not a QIIME 2 artifact (a .qza is a zip archive); give the .qza as QIIME 2 wrote it, or the exported file",
        ));
    }
    let archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        DataError::format(
            path,
            format!("cannot read the zip archive ({e}); the .qza is damaged: copy it again from where QIIME 2 wrote it"),
        )
    })?;
    if archive.len() > MAX_ENTRIES {
        return Err(DataError::format(
            path,
            format!(
                "the archive holds {} entries, more than the {MAX_ENTRIES} a QIIME 2 artifact needs; export its data with `qiime tools export`",
                archive.len()
            ),
        ));
    }
    Ok(archive)
}

fn metadata_of(path: &Path, archive: &mut Archive<'_>) -> Result<ArtifactMetadata> {
    // The top-level metadata.yaml is the one entry `<folder>/metadata.yaml`; the
    // provenance's lie deeper.
    let candidates: Vec<String> = archive
        .file_names()
        .filter(|n| matches!(n.split_once('/'), Some((top, "metadata.yaml")) if !top.is_empty()))
        .map(str::to_string)
        .collect();
    let name = match candidates.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(DataError::format(
                path,
                "this zip archive has no top-level `<uuid>/metadata.yaml`, so it is not a QIIME 2 artifact",
            ))
        }
        _ => {
            return Err(DataError::format(
                path,
                format!(
                    "this zip archive has {} top-level folders with a metadata.yaml; a QIIME 2 artifact has one",
                    candidates.len()
                ),
            ))
        }
    };
    let yaml = read_entry(path, archive, &name, MAX_METADATA_BYTES)?.unwrap_or_default();
    let text = String::from_utf8_lossy(&yaml);
    let field = |key: &str| {
        text.lines().find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix(':')?.trim();
            Some(value.trim_matches(|c| c == '\'' || c == '"').to_string())
        })
    };
    let semantic_type = field("type").filter(|t| !t.is_empty()).ok_or_else(|| {
        DataError::format(
            path,
            format!("`{name}` gives no `type`; the artifact is damaged"),
        )
    })?;
    let folder = name.trim_end_matches("/metadata.yaml").to_string();
    Ok(ArtifactMetadata {
        uuid: folder,
        semantic_type,
        format: field("format").unwrap_or_default(),
    })
}

/// Reads entry `name` whole, or `None` when the archive has no such entry.
fn read_entry(
    path: &Path,
    archive: &mut Archive<'_>,
    name: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>> {
    let mut entry = match archive.by_name(name) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => {
            return Err(DataError::format(
                path,
                format!(
                    "cannot read `{name}` from the archive ({e}); the .qza is damaged or encrypted"
                ),
            ))
        }
    };
    let declared = entry.size();
    if declared > limit {
        return Err(DataError::format(
            path,
            format!(
                "`{name}` declares {declared} bytes, more than the {limit} aam reads from an artifact; export it with `qiime tools export` and give aam the exported file"
            ),
        ));
    }
    // The declared size bounds the read; the allocation grows with the data actually
    // inflated (a header may claim 4 GiB in a few bytes). Reading one byte past the
    // declared size catches an entry whose data is longer than its header says.
    let mut out = Vec::with_capacity(declared.min(64 << 20) as usize);
    (&mut entry)
        .take(declared + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            DataError::format(
                path,
                format!("cannot decompress `{name}` ({e}); the .qza is damaged: copy it again"),
            )
        })?;
    if out.len() as u64 != declared {
        return Err(DataError::format(
            path,
            format!(
                "`{name}` holds {} bytes but its header declares {declared}; the .qza is damaged: copy it again",
                out.len()
            ),
        ));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn an_entry_larger_than_the_limit_is_refused_before_it_is_read() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("u/data/x", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(&[b'A'; 100]).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        let path = Path::new("x.qza");
        let mut archive = open(path, &bytes).unwrap();
        let e = read_entry(path, &mut archive, "u/data/x", 99)
            .unwrap_err()
            .to_string();
        assert!(e.contains("declares 100 bytes, more than the 99"), "{e}");
        let whole = read_entry(path, &mut archive, "u/data/x", 100).unwrap();
        assert_eq!(whole.map(|v| v.len()), Some(100));
    }
}
