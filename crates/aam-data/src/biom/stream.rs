//! A BIOM 2.1 HDF5 table read a chunk of samples at a time (`--streaming`), so that the
//! memory a table takes is bounded by the chunk, not by the table.
//!
//! The file is opened for streaming reads (`hdf5-pure` `File::open_streaming`: no
//! whole-file buffer) and only the per-sample CSC matrix (`sample/matrix`) is read in
//! windows: `indptr` once (`n_samples + 1` integers), then for each chunk the
//! `indices` and `data` rows between its first and last sample. Sample and observation
//! IDs are read whole (the ASV sequences are what tokenization needs).

use std::path::{Path, PathBuf};

use hdf5_pure::File;

use crate::error::{DataError, Result};
use crate::table::FeatureTable;

/// Samples of a BIOM 2.1 HDF5 table, `chunk_samples` at a time, each chunk a
/// [`FeatureTable`] with the chunk's samples and the ASVs they hold, both in file order
/// (so a chunk's memory follows the chunk, not the table).
pub struct BiomSampleChunks {
    path: PathBuf,
    file: File,
    /// Every sample ID of the file, `[n_samples]`.
    pub sample_ids: Vec<String>,
    /// Every observation ID (ASV sequence) of the file, `[n_asv]`.
    pub observation_ids: Vec<String>,
    indptr: Vec<i64>,
    chunk_samples: usize,
    next: usize,
}

impl BiomSampleChunks {
    /// Opens `path` for reading `chunk_samples` samples at a time (at least 1).
    ///
    /// Errors: [`DataError::Io`] / [`DataError::Format`] naming the file: not HDF5, no
    /// per-sample matrix `sample/matrix` (the fix: `biom convert --to-hdf5` writes it),
    /// or an `indptr` that does not fit the sample IDs.
    pub fn open(path: &Path, chunk_samples: usize) -> Result<Self> {
        let fail = |what: &str, e: hdf5_pure::Error| {
            DataError::format(
                path,
                format!("not a readable BIOM 2.1 HDF5 file ({what}: {e}); streaming reads BIOM 2.1 HDF5 with a per-sample matrix: {}", super::hdf5::REEXPORT),
            )
        };
        let file = File::open_streaming(path).map_err(|e| fail("HDF5 structure", e))?;
        let (sample_ids, observation_ids) = super::hdf5::read_ids(path, &file, &fail)?;
        // Chunks see their own samples only: duplicates across chunks are caught here.
        crate::table::check_unique(path, &sample_ids, "sample")?;
        // Shapes before values: indptr must fit the sample IDs, and no window may ask for
        // more entries than data and indices declare (each bounded by the file's size).
        let declared = |name: &str| {
            crate::hdf5_shape::declared_len(path, &file, name, &fail, super::hdf5::REEXPORT)
        };
        let n_indptr = declared("sample/matrix/indptr")?;
        let n_entries = declared("sample/matrix/data")?.min(declared("sample/matrix/indices")?);
        if n_indptr != sample_ids.len() + 1 {
            return Err(DataError::format(
                path,
                format!(
                    "sample/matrix/indptr has {n_indptr} entries for {} samples; the file is truncated or corrupt",
                    sample_ids.len()
                ),
            ));
        }
        let indptr = file
            .dataset("sample/matrix/indptr")
            .and_then(|d| d.read_i64())
            .map_err(|e| fail("sample/matrix/indptr", e))?;
        if indptr.len() != sample_ids.len() + 1
            || indptr.first() != Some(&0)
            || indptr.windows(2).any(|w| w[1] < w[0])
            || indptr.last().is_some_and(|&n| n as u64 > n_entries as u64)
        {
            return Err(DataError::format(
                path,
                format!(
                    "sample/matrix/indptr has {} entries for {} samples, is not increasing from 0, or points past the {n_entries} stored entries; the file is truncated or corrupt",
                    indptr.len(),
                    sample_ids.len()
                ),
            ));
        }
        Ok(BiomSampleChunks {
            path: path.to_path_buf(),
            file,
            sample_ids,
            observation_ids,
            indptr,
            chunk_samples: chunk_samples.max(1),
            next: 0,
        })
    }

    /// Samples in the file.
    pub fn n_samples(&self) -> usize {
        self.sample_ids.len()
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries (ASVs) stored for file sample `s` (from `indptr`, nothing read).
    pub fn sample_nnz(&self, s: usize) -> usize {
        (self.indptr[s + 1] - self.indptr[s]) as usize
    }

    /// Reads samples `first..first + count` (clamped to the table).
    ///
    /// Errors: [`DataError::Format`] naming the file and the sample for unreadable
    /// rows, an ASV index outside the observations, or a negative or non-finite count.
    pub fn read_samples(&self, first: usize, count: usize) -> Result<FeatureTable> {
        let end = first.saturating_add(count).min(self.n_samples());
        let first = first.min(end);
        let (lo, hi) = (self.indptr[first] as u64, self.indptr[end] as u64);
        let rows = |name: &str| {
            self.file.dataset(name).map_err(|e| {
                DataError::format(
                    &self.path,
                    format!("{name} cannot be read ({e}); the file is truncated or corrupt"),
                )
            })
        };
        let window_error = |name: &str, e: hdf5_pure::Error| {
            DataError::format(
                &self.path,
                format!("{name} rows {lo}..{hi} (samples {first}..{end}) cannot be read ({e}); the file is truncated or corrupt"),
            )
        };
        let indices = rows("sample/matrix/indices")?
            .read_i64_rows(lo, hi - lo)
            .map_err(|e| window_error("sample/matrix/indices", e))?;
        let data = rows("sample/matrix/data")?
            .read_f64_rows(lo, hi - lo)
            .map_err(|e| window_error("sample/matrix/data", e))?;
        if indices.len() as u64 != hi - lo || data.len() as u64 != hi - lo {
            return Err(DataError::format(
                &self.path,
                format!("sample/matrix holds fewer entries than its indptr says (samples {first}..{end}); the file is truncated"),
            ));
        }
        let n_asv = self.observation_ids.len();
        let mut triplets = Vec::with_capacity(data.len());
        for s in first..end {
            let range =
                (self.indptr[s] as u64 - lo) as usize..(self.indptr[s + 1] as u64 - lo) as usize;
            for k in range {
                let o = indices[k];
                if o < 0 || o as usize >= n_asv {
                    return Err(DataError::format(
                        &self.path,
                        format!(
                            "sample {}: ASV index {o} is outside 0..{n_asv}; the file is corrupt",
                            self.sample_ids[s]
                        ),
                    ));
                }
                triplets.push(((s - first) as u32, o as u32, data[k]));
            }
        }
        // The chunk keeps only its ASVs, in file order, renumbered.
        let mut present: Vec<u32> = triplets.iter().map(|t| t.1).collect();
        present.sort_unstable();
        present.dedup();
        for t in &mut triplets {
            t.1 = present.binary_search(&t.1).unwrap_or(0) as u32;
        }
        FeatureTable::from_triplets(
            &self.path,
            self.sample_ids[first..end].to_vec(),
            present
                .iter()
                .map(|&o| self.observation_ids[o as usize].clone())
                .collect(),
            triplets,
        )
    }
}

impl Iterator for BiomSampleChunks {
    type Item = Result<FeatureTable>;

    /// The next chunk of samples, `None` after the last.
    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.n_samples() {
            return None;
        }
        let first = self.next;
        self.next += self.chunk_samples;
        Some(self.read_samples(first, self.chunk_samples))
    }
}
