//! The files of a `--dataset DIR` folder: the standard layout (`table.biom` of sequence
//! IDs, `unifrac_unweighted.npy` + `unifrac_ids.txt`, `metadata.tsv`) or QIIME 2's
//! (`table.qza` + `rep-seqs.qza`, `unweighted_unifrac_distance_matrix.qza` from
//! `core-metrics-phylogenetic`, `sample-metadata.tsv`), and the one table every step of
//! the benchmark reads.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use aam_data::FeatureTable;

/// File names looked for, in order of preference, per input.
const TABLES: &[&str] = &["table.biom", "table.qza", "feature-table.biom"];
/// Sequences of hashed feature IDs (`qiime tools export` writes `dna-sequences.fasta`).
const SEQUENCES: &[&str] = &["rep-seqs.qza", "rep-seqs.fasta", "dna-sequences.fasta"];
/// Unweighted UniFrac, as `ssu`/aam write it or as `core-metrics-phylogenetic` does.
const MATRICES: &[&str] = &[
    "unifrac_unweighted.npy",
    "unifrac_unweighted.h5",
    "unweighted_unifrac_distance_matrix.qza",
];
/// Sample order of a `.npy` matrix.
const MATRIX_IDS: &str = "unifrac_ids.txt";
const METADATA: &[&str] = &["metadata.tsv", "sample-metadata.tsv"];

/// The input files every step of a dataset's benchmark reads.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetFiles {
    /// Feature table whose observation IDs are the ASV sequences (BIOM).
    pub table: PathBuf,
    /// Unweighted UniFrac distances between the table's samples.
    pub unifrac_matrix: PathBuf,
    /// Sample order of a `.npy` matrix (`None` for labelled formats).
    pub unifrac_ids: Option<PathBuf>,
    /// Sample metadata (TSV, QIIME 2 metadata included).
    pub metadata: PathBuf,
}

impl DatasetFiles {
    /// The standard layout of `../shared/data/<name>/`.
    pub fn standard(dir: &Path) -> Self {
        Self {
            table: dir.join("table.biom"),
            unifrac_matrix: dir.join("unifrac_unweighted.npy"),
            unifrac_ids: Some(dir.join(MATRIX_IDS)),
            metadata: dir.join("metadata.tsv"),
        }
    }
}

/// A `--dataset` folder read: the table with sequence IDs and only the samples the
/// UniFrac matrix holds, and where it came from.
pub struct FoundDataset {
    /// The files as found (the table may need [`FoundDataset::files_for_steps`]).
    pub files: DatasetFiles,
    /// Sequences that replaced hashed feature IDs, when the folder has them.
    pub sequences: Option<PathBuf>,
    /// The table as the benchmark uses it: sequence IDs, samples in the matrix.
    pub table: FeatureTable,
    /// Samples of the table missing from the UniFrac matrix (e.g. rarefied out by
    /// `core-metrics-phylogenetic`), left out of every step.
    pub left_out: Vec<String>,
}

fn first(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

fn missing(dir: &Path, what: &str, names: &[&str]) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: no {what} ({}); --dataset takes a folder laid out like ../shared/data/<name>/ (table.biom of sequence IDs, unifrac_unweighted.npy + unifrac_ids.txt, metadata.tsv) or as QIIME 2 leaves it (table.qza + rep-seqs.qza, unweighted_unifrac_distance_matrix.qza from core-metrics-phylogenetic, sample-metadata.tsv)",
        dir.display(),
        names.join(" or ")
    )
}

/// Finds and reads a `--dataset` folder's inputs.
///
/// Errors: a folder without one of the inputs (naming the file names looked for); the
/// errors of the table, sequences and matrix readers; a table with hashed feature IDs
/// and no sequences; a matrix that shares no sample with the table.
pub fn find(dir: &Path) -> Result<FoundDataset> {
    if !dir.is_dir() {
        bail!("{}: --dataset must name a folder", dir.display());
    }
    let table_path = first(dir, TABLES).ok_or_else(|| missing(dir, "feature table", TABLES))?;
    let matrix =
        first(dir, MATRICES).ok_or_else(|| missing(dir, "unweighted UniFrac matrix", MATRICES))?;
    let metadata = first(dir, METADATA).ok_or_else(|| missing(dir, "metadata", METADATA))?;
    let unifrac_ids = match matrix.extension().and_then(|e| e.to_str()) {
        Some("npy") => {
            let ids = dir.join(MATRIX_IDS);
            if !ids.is_file() {
                bail!(
                    "{} is missing: the sample order of {} (one sample ID per line)",
                    ids.display(),
                    matrix.display()
                );
            }
            Some(ids)
        }
        _ => None,
    };
    let sequences = first(dir, SEQUENCES);
    let (mut table, _) = aam_data::load_table(&table_path)?;
    // Sequences only where the IDs are not already sequences (a folder may hold both).
    let sequences = sequences.filter(|_| {
        !table
            .observation_ids
            .iter()
            .all(|id| aam_data::tokenizer::is_dna(id))
    });
    if let Some(seqs) = &sequences {
        aam_data::load_sequences(seqs)?.apply(&mut table, &table_path)?;
    }
    table.check_sequence_ids(&table_path)?;
    let m = aam_data::load_distance_matrix(&matrix, unifrac_ids.as_deref(), &table.sample_ids)?;
    let in_matrix: std::collections::HashSet<&str> = m.ids.iter().map(String::as_str).collect();
    let (keep, left_out): (Vec<usize>, Vec<usize>) =
        (0..table.n_samples()).partition(|&s| in_matrix.contains(table.sample_ids[s].as_str()));
    if keep.is_empty() {
        bail!(
            "{}: none of the {} samples of {} is in this distance matrix; compute it on this table",
            matrix.display(),
            table.n_samples(),
            table_path.display()
        );
    }
    let left_out: Vec<String> = left_out
        .into_iter()
        .map(|s| table.sample_ids[s].clone())
        .collect();
    let table = if left_out.is_empty() {
        table
    } else {
        table.select_samples(&keep)
    };
    Ok(FoundDataset {
        files: DatasetFiles {
            table: table_path,
            unifrac_matrix: matrix,
            unifrac_ids,
            metadata,
        },
        sequences,
        table,
        left_out,
    })
}

impl FoundDataset {
    /// Whether the steps can read the folder's table as it is (BIOM of sequence IDs,
    /// every sample in the matrix); otherwise they read the table written by
    /// [`FoundDataset::files_for_steps`].
    pub fn table_as_is(&self) -> bool {
        self.sequences.is_none()
            && self.left_out.is_empty()
            && self.files.table.extension().and_then(|e| e.to_str()) != Some("qza")
    }

    /// The files the steps read: the folder's, with the table replaced, unless
    /// [`FoundDataset::table_as_is`], by `<root>/table.biom` (written atomically, BIOM 2.1
    /// HDF5): sequence IDs and only the samples in the matrix, so that the model and
    /// the forest see the same samples.
    ///
    /// Errors: the table cannot be encoded or written.
    pub fn files_for_steps(&self, root: &Path) -> Result<DatasetFiles> {
        if self.table_as_is() {
            return Ok(self.files.clone());
        }
        let path = root.join("table.biom");
        let bytes = aam_data::biom::hdf5_bytes(&self.table, aam_data::biom::Hdf5Layout::default())?;
        aam_data::files::write_atomic(&path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(DatasetFiles {
            table: path,
            ..self.files.clone()
        })
    }

    /// One line on what was read, for the log and the report's dataset description.
    pub fn origin(&self) -> String {
        let name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let mut out = name(&self.files.table);
        if let Some(s) = &self.sequences {
            out += &format!(" + {}", name(s));
        }
        out += &format!(", {}", name(&self.files.unifrac_matrix));
        if !self.left_out.is_empty() {
            out += &format!(
                "; {} samples not in the UniFrac matrix left out ({})",
                self.left_out.len(),
                aam_data::error::name_list(&self.left_out, 5)
            );
        }
        out
    }
}
