//! The in-memory feature table: samples × ASVs, stored sparse by sample.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{name_list, short_asv, DataError, Result};

/// A feature table (BIOM's observations × samples, stored sample-major).
///
/// Observation IDs are the ASV DNA sequences. Counts are `f64` as in BIOM
/// (`observation/matrix/data` is float64 in BIOM 2.1); rarefaction requires them to
/// be non-negative integers.
///
/// Storage is compressed sparse by sample (BIOM's CSC `sample/matrix` layout):
/// the non-zero entries of sample `s` are `indices[indptr[s]..indptr[s+1]]` (ASV
/// indices, strictly increasing, i.e. table order) with `values` alongside.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureTable {
    /// Sample IDs in table order, `[n_samples]`.
    pub sample_ids: Vec<String>,
    /// ASV IDs (sequences) in table order, `[n_asv]`.
    pub observation_ids: Vec<String>,
    /// Row pointer per sample, `[n_samples + 1]`.
    pub indptr: Vec<usize>,
    /// ASV index of each non-zero entry, `[nnz]`.
    pub indices: Vec<u32>,
    /// Count of each non-zero entry, `[nnz]`.
    pub values: Vec<f64>,
}

impl FeatureTable {
    /// Builds a table from `(sample, asv, count)` triplets, dropping zero counts and
    /// summing nothing: a duplicated `(sample, asv)` pair is an error.
    ///
    /// Errors: duplicate sample or ASV IDs, indices out of range, negative or
    /// non-finite counts, duplicated entries; each names `path` and the sample/ASV.
    pub fn from_triplets(
        path: &Path,
        sample_ids: Vec<String>,
        observation_ids: Vec<String>,
        mut triplets: Vec<(u32, u32, f64)>,
    ) -> Result<Self> {
        check_unique(path, &sample_ids, "sample")?;
        check_unique(path, &observation_ids, "ASV (observation)")?;
        let (n_s, n_o) = (sample_ids.len(), observation_ids.len());
        triplets.retain(|t| t.2 != 0.0);
        triplets.sort_unstable_by_key(|t| (t.0, t.1));
        let mut indptr = vec![0usize; n_s + 1];
        let mut indices = Vec::with_capacity(triplets.len());
        let mut values = Vec::with_capacity(triplets.len());
        for (k, &(s, o, v)) in triplets.iter().enumerate() {
            if s as usize >= n_s || o as usize >= n_o {
                return Err(DataError::format(
                    path,
                    format!(
                        "entry (sample index {s}, ASV index {o}) is outside the {n_s} samples × {n_o} ASVs the file declares; the file is corrupt, re-export it with `biom convert`"
                    ),
                ));
            }
            if k > 0 && triplets[k - 1].0 == s && triplets[k - 1].1 == o {
                return Err(DataError::format(
                    path,
                    format!(
                        "sample '{}' has two entries for ASV {}; each (sample, ASV) pair must appear once",
                        sample_ids[s as usize],
                        short_asv(&observation_ids[o as usize])
                    ),
                ));
            }
            check_count(
                path,
                v,
                &sample_ids[s as usize],
                &observation_ids[o as usize],
            )?;
            indptr[s as usize + 1] += 1;
            indices.push(o);
            values.push(v);
        }
        for s in 0..n_s {
            indptr[s + 1] += indptr[s];
        }
        Ok(FeatureTable {
            sample_ids,
            observation_ids,
            indptr,
            indices,
            values,
        })
    }

    /// Errors when no observation ID is a DNA sequence (every ID holds a character other
    /// than A, C, G, T), e.g. QIIME 2 feature hashes or OTU names: aam reads an ASV by
    /// its sequence. `path` names the table in the message.
    pub fn check_sequence_ids(&self, path: &Path) -> Result<()> {
        if self.observation_ids.is_empty()
            || self
                .observation_ids
                .iter()
                .any(|id| crate::tokenizer::is_dna(id))
        {
            return Ok(());
        }
        if self
            .observation_ids
            .iter()
            .all(|id| crate::sequences::is_md5_id(id))
        {
            return Err(DataError::format(
                path,
                format!(
                    "the feature IDs are MD5 hashes of the sequences (e.g. '{}', as QIIME 2's DADA2 names them); aam reads ASVs by their sequence: give the sequences with --sequences rep-seqs.qza (or a FASTA file)",
                    self.observation_ids[0]
                ),
            ));
        }
        Err(DataError::format(
            path,
            format!(
                "no observation ID is a DNA sequence (e.g. '{}'); aam reads ASVs by their sequence: use a table whose observation IDs are the ASV sequences, or map its feature IDs to them with --sequences (QIIME 2's rep-seqs.qza, or a FASTA file)",
                short_asv(&self.observation_ids[0])
            ),
        ))
    }

    /// Number of samples.
    pub fn n_samples(&self) -> usize {
        self.sample_ids.len()
    }

    /// Number of ASVs (observations).
    pub fn n_asv(&self) -> usize {
        self.observation_ids.len()
    }

    /// Number of non-zero entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// The non-zero `(asv_index, count)` entries of sample `s`, in table order.
    pub fn sample(&self, s: usize) -> impl Iterator<Item = (u32, f64)> + '_ {
        let r = self.indptr[s]..self.indptr[s + 1];
        self.indices[r.clone()]
            .iter()
            .copied()
            .zip(self.values[r].iter().copied())
    }

    /// Number of ASVs with a non-zero count in sample `s`.
    pub fn sample_nnz(&self, s: usize) -> usize {
        self.indptr[s + 1] - self.indptr[s]
    }

    /// Total reads (sequencing depth) of each sample, `[n_samples]`.
    pub fn depths(&self) -> Vec<f64> {
        (0..self.n_samples())
            .map(|s| self.sample(s).map(|(_, c)| c).sum())
            .collect()
    }

    /// Total reads in the table.
    pub fn total(&self) -> f64 {
        self.values.iter().sum()
    }

    /// Position of each sample ID.
    pub fn sample_index(&self) -> HashMap<&str, usize> {
        self.sample_ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect()
    }

    /// Keeps the samples at `keep` (in that order) and then removes ASVs that no
    /// kept sample contains, re-indexing the rest in table order.
    pub fn select_samples(&self, keep: &[usize]) -> FeatureTable {
        let mut used = vec![false; self.n_asv()];
        for &s in keep {
            for (o, _) in self.sample(s) {
                used[o as usize] = true;
            }
        }
        let mut remap = vec![u32::MAX; self.n_asv()];
        let mut observation_ids = Vec::new();
        for (o, &u) in used.iter().enumerate() {
            if u {
                remap[o] = observation_ids.len() as u32;
                observation_ids.push(self.observation_ids[o].clone());
            }
        }
        let mut indptr = vec![0];
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        for &s in keep {
            for (o, c) in self.sample(s) {
                indices.push(remap[o as usize]);
                values.push(c);
            }
            indptr.push(indices.len());
        }
        FeatureTable {
            sample_ids: keep.iter().map(|&s| self.sample_ids[s].clone()).collect(),
            observation_ids,
            indptr,
            indices,
            values,
        }
    }
}

/// Errors when `ids` holds an empty ID (naming its position) or a duplicate (naming up
/// to ten of them).
pub(crate) fn check_unique(path: &Path, ids: &[String], what: &str) -> Result<()> {
    if let Some(k) = ids.iter().position(|id| id.trim().is_empty()) {
        return Err(DataError::format(
            path,
            format!(
                "{what} number {} of {} has an empty ID; every {what} needs an ID{}",
                k + 1,
                ids.len(),
                if what.starts_with("ASV") {
                    ": its DNA sequence"
                } else {
                    ""
                }
            ),
        ));
    }
    let mut seen = HashMap::with_capacity(ids.len());
    let mut dups = Vec::new();
    for id in ids {
        if seen.insert(id.as_str(), ()).is_some() {
            dups.push(short_asv(id));
        }
    }
    if dups.is_empty() {
        return Ok(());
    }
    Err(DataError::format(
        path,
        format!(
            "{} duplicate {what} ID(s): {}. IDs must be unique; merge or rename the duplicates (e.g. `biom collapse` / `qiime feature-table group`)",
            dups.len(),
            name_list(&dups, 10)
        ),
    ))
}

fn check_count(path: &Path, v: f64, sample: &str, asv: &str) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        return Ok(());
    }
    Err(DataError::format(
        path,
        format!(
            "sample '{sample}', ASV {}: count {v} is not a finite non-negative number; a feature table holds read counts",
            short_asv(asv)
        ),
    ))
}
