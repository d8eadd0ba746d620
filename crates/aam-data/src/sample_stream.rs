//! Training batches from a BIOM 2.1 HDF5 table read a chunk of samples at a time
//! (`aam pretrain/train --streaming`): the table's counts and the tokens of its ASVs are
//! held for the chunks in use only (the [`CACHED_CHUNKS`] cached, and those of batches
//! being built), never for the whole table.
//!
//! A [`SampleStream`] stands in for a [`Dataset`]'s table. The dataset itself is built on
//! [`SampleStream::id_table`] (the sample IDs, no ASVs), so the alignment to distances
//! and metadata, the split and the targets work on sample IDs as they do in memory; a
//! batch is then built with [`SampleStream::batch`], which reads the chunks its samples
//! are in (at most [`CACHED_CHUNKS`] kept) and tokenizes only their ASVs. The token-limit
//! selection and the augmentation are drawn from each sample's position in the dataset,
//! so a batch equals the one [`Dataset::batch`] builds from the whole table.
//!
//! Batches should be drawn chunk by chunk ([`SampleStream::chunk_of`]): a batch whose
//! samples are spread over many chunks reads each of them.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::augment::Augmentation;
use crate::batch::{Batch, Dataset};
use crate::biom::BiomSampleChunks;
use crate::error::{DataError, Result};
use crate::table::FeatureTable;
use crate::tokenizer::TokenizedAsvs;

/// Chunks kept decoded at a time: the one being trained on and the next, which data
/// workers may already be building batches from.
pub const CACHED_CHUNKS: usize = 2;

/// One chunk of the file as read: its samples, their ASVs and those ASVs' tokens.
struct LoadedChunk {
    /// Chunk number: file samples `index * chunk_samples ..`.
    index: usize,
    /// `max_bp` of `tokens`.
    max_bp: usize,
    table: FeatureTable,
    tokens: TokenizedAsvs,
}

/// A BIOM 2.1 HDF5 table streamed in chunks of consecutive samples, for the samples of a
/// dataset (see the module documentation).
pub struct SampleStream {
    reader: Mutex<BiomSampleChunks>,
    /// File position of each dataset sample, `[n_samples]`.
    positions: Vec<usize>,
    chunk_samples: usize,
    cache: Mutex<VecDeque<Arc<LoadedChunk>>>,
    chunks_read: Mutex<usize>,
}

impl std::fmt::Debug for SampleStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleStream")
            .field("samples", &self.positions.len())
            .field("chunk_samples", &self.chunk_samples)
            .finish_non_exhaustive()
    }
}

impl SampleStream {
    /// Opens `path` to stream `chunk_samples` samples at a time (at least 1); the stream
    /// covers every sample of the file until [`SampleStream::select`].
    ///
    /// Errors: as [`BiomSampleChunks::open`] (not BIOM 2.1 HDF5, no per-sample matrix,
    /// duplicate sample IDs), naming the file.
    pub fn open(path: &Path, chunk_samples: usize) -> Result<Self> {
        let reader = BiomSampleChunks::open(path, chunk_samples)?;
        Ok(SampleStream {
            positions: (0..reader.n_samples()).collect(),
            reader: Mutex::new(reader),
            chunk_samples: chunk_samples.max(1),
            cache: Mutex::new(VecDeque::new()),
            chunks_read: Mutex::new(0),
        })
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, BiomSampleChunks> {
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stream's samples as a table without ASVs: their IDs in stream order, what a
    /// [`Dataset`] paired with this stream is built on.
    pub fn id_table(&self) -> FeatureTable {
        let reader = self.reader();
        let sample_ids: Vec<String> = self
            .positions
            .iter()
            .map(|&p| reader.sample_ids[p].clone())
            .collect();
        FeatureTable {
            indptr: vec![0; sample_ids.len() + 1],
            sample_ids,
            observation_ids: Vec::new(),
            indices: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Every ASV (observation ID) of the file, `[n_asv]`.
    pub fn observation_ids(&self) -> Vec<String> {
        self.reader().observation_ids.clone()
    }

    /// The stream restricted to (and ordered as) `sample_ids`, for a dataset whose table
    /// was restricted by ID (alignment, missing targets).
    ///
    /// Errors: a sample ID that is not in the file, named with the file.
    pub fn select(mut self, sample_ids: &[String]) -> Result<Self> {
        let positions = {
            let reader = self.reader();
            let index: HashMap<&str, usize> = reader
                .sample_ids
                .iter()
                .enumerate()
                .map(|(i, s)| (s.as_str(), i))
                .collect();
            sample_ids
                .iter()
                .map(|s| {
                    index.get(s.as_str()).copied().ok_or_else(|| {
                        DataError::mismatch(
                            reader.path(),
                            format!("sample '{s}' is not in the streamed table"),
                        )
                    })
                })
                .collect::<Result<Vec<usize>>>()?
        };
        self.positions = positions;
        Ok(self)
    }

    /// Samples in the stream.
    pub fn n_samples(&self) -> usize {
        self.positions.len()
    }

    /// Samples per chunk.
    pub fn chunk_samples(&self) -> usize {
        self.chunk_samples
    }

    /// The chunk dataset sample `s` is read with (samples of one chunk are read
    /// together).
    pub fn chunk_of(&self, s: usize) -> usize {
        self.positions[s] / self.chunk_samples
    }

    /// Entries (ASVs) the file stores for dataset sample `s` (from its index, nothing
    /// read).
    pub fn sample_nnz(&self, s: usize) -> usize {
        self.reader().sample_nnz(self.positions[s])
    }

    /// Chunks read from the file so far (a chunk read again after it left the cache
    /// counts again).
    pub fn chunks_read(&self) -> usize {
        *self
            .chunks_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The decoded chunk `index` tokenized with `max_bp`, from the cache or read now.
    fn chunk(&self, index: usize, max_bp: usize) -> Result<Arc<LoadedChunk>> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(k) = cache
            .iter()
            .position(|c| c.index == index && c.max_bp == max_bp)
        {
            let c = cache.remove(k).expect("found");
            cache.push_back(c.clone());
            return Ok(c);
        }
        // Read under the cache lock: two workers wanting the same chunk read it once.
        let table = self
            .reader()
            .read_samples(index * self.chunk_samples, self.chunk_samples)?;
        let tokens = TokenizedAsvs::new(&table.observation_ids, max_bp);
        let c = Arc::new(LoadedChunk {
            index,
            max_bp,
            table,
            tokens,
        });
        if cache.len() >= CACHED_CHUNKS {
            cache.pop_front();
        }
        cache.push_back(c.clone());
        *self
            .chunks_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += 1;
        Ok(c)
    }

    /// The batch of `samples` (positions in `dataset`, which must be built on this
    /// stream's [`SampleStream::id_table`]), as [`Dataset::batch`] (or, with
    /// `augmentation = Some((a, seed))`, [`Dataset::augmented_batch`]) would build it from
    /// the whole table: tokens int64 `[batch, n_asv, max_bp + 1]`, counts and mask
    /// `[batch, n_asv]`, the UniFrac block and targets from `dataset`.
    ///
    /// The ASVs are tokenized with the dataset's max bp. Errors: a chunk that cannot be
    /// read (see [`BiomSampleChunks::read_samples`]); `dataset` not built on this stream
    /// (its sample count differs).
    pub fn batch(
        &self,
        dataset: &Dataset,
        samples: &[usize],
        pad_to: Option<usize>,
        epoch: u64,
        augmentation: Option<(&Augmentation, u64)>,
    ) -> Result<Batch> {
        if dataset.table.n_samples() != self.n_samples() {
            return Err(DataError::Parameter {
                name: "--streaming",
                message: format!(
                    "the dataset ({} samples) is not built on this stream ({} samples); build it on SampleStream::id_table",
                    dataset.table.n_samples(),
                    self.n_samples()
                ),
            });
        }
        let max_bp = dataset.tokens.max_bp;
        // Each chunk fetched once and held for the whole batch: fetched per sample, a
        // chunk could leave the cache between two of its samples while another worker
        // reads, and be read again.
        let mut chunks: Vec<Arc<LoadedChunk>> = Vec::with_capacity(samples.len());
        for &s in samples {
            let index = self.chunk_of(s);
            let chunk = match chunks.iter().find(|c| c.index == index) {
                Some(c) => c.clone(),
                None => self.chunk(index, max_bp)?,
            };
            chunks.push(chunk);
        }
        let local: Vec<usize> = samples
            .iter()
            .map(|&s| self.positions[s] % self.chunk_samples)
            .collect();
        Ok(dataset.batch_from(
            samples,
            pad_to,
            epoch,
            augmentation,
            |i| chunks[i].table.sample(local[i]).collect(),
            |i, o| chunks[i].tokens.row(o as usize),
        ))
    }
}
