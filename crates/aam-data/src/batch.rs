//! Model-ready batches (spec §2.10): tokens, counts, ASV mask, UniFrac block, targets.

use ndarray::{Array1, Array2, Array3};

use crate::augment::Augmentation;
use crate::distance::DistanceMatrix;
use crate::error::{DataError, Result};
use crate::table::FeatureTable;
use crate::token_limit::{select_asvs, TokenLimitPolicy};
use crate::tokenizer::TokenizedAsvs;

/// One batch of samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Sample IDs, `[batch]`.
    pub sample_ids: Vec<String>,
    /// Nucleotide tokens, int64 `[batch, n_asv, max_bp + 1]` (0 in empty ASV slots).
    pub tokens: Array3<i64>,
    /// Read counts of each ASV slot, float32 `[batch, n_asv]` (0 in empty slots).
    pub counts: Array2<f32>,
    /// True where the ASV slot holds a real ASV, `[batch, n_asv]`.
    pub asv_mask: Array2<bool>,
    /// UniFrac distances between the batch's samples, float32 `[batch, batch]`, in
    /// batch order.
    pub unifrac: Option<Array2<f32>>,
    /// Targets, float32 `[batch · target_width]`, row-major `[batch, target_width]`
    /// (class index for classifiers; one column per target of a regressor trained on
    /// several, [`Dataset::with_targets`]).
    pub targets: Option<Array1<f32>>,
}

/// A table with everything needed to build batches: tokens computed once per
/// unique sequence, and optional distances and targets aligned to its samples.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The (rarefied, aligned) table.
    pub table: FeatureTable,
    /// One token row per ASV of `table`.
    pub tokens: TokenizedAsvs,
    /// Distance matrix whose `ids` equal `table.sample_ids`.
    pub distances: Option<DistanceMatrix>,
    /// Targets of each sample of `table`, `[n_samples · target_width]`, row-major
    /// `[n_samples, target_width]`.
    pub targets: Option<Vec<f32>>,
    /// Targets per sample (1 but for a regressor of several metadata columns).
    pub target_width: usize,
    /// Maximum ASVs per sample.
    pub token_limit: usize,
    /// Which ASVs are kept beyond `token_limit`.
    pub policy: TokenLimitPolicy,
    /// Seed for [`TokenLimitPolicy::Random`].
    pub seed: u64,
}

impl Dataset {
    /// Tokenizes `table`'s ASVs with `max_bp`.
    ///
    /// Errors: `token_limit == 0`; `distances` not aligned to the table (see
    /// [`DistanceMatrix::align`]); `targets` of the wrong length or not finite.
    pub fn new(
        table: FeatureTable,
        max_bp: usize,
        token_limit: usize,
        policy: TokenLimitPolicy,
        seed: u64,
        distances: Option<DistanceMatrix>,
        targets: Option<Vec<f32>>,
    ) -> Result<Self> {
        if token_limit == 0 {
            return Err(DataError::Parameter {
                name: "--token-limit",
                message: "must be at least 1".into(),
            });
        }
        if let Some(d) = &distances {
            if d.ids != table.sample_ids {
                return Err(DataError::mismatch(&d.path, "the distance matrix is not aligned to the table's samples; align it with DistanceMatrix::align first"));
            }
        }
        let tokens = TokenizedAsvs::new(&table.observation_ids, max_bp);
        let dataset = Dataset {
            table,
            tokens,
            distances,
            targets: None,
            target_width: 1,
            token_limit,
            policy,
            seed,
        };
        match targets {
            Some(t) => dataset.with_targets(t, 1),
            None => Ok(dataset),
        }
    }

    /// Sets the targets, `[n_samples, width]` row-major: `width` per sample for a
    /// regressor of `width` metadata columns (1 otherwise).
    ///
    /// Errors: `width` is 0, the targets are not `n_samples · width`, or one is not
    /// finite.
    pub fn with_targets(mut self, targets: Vec<f32>, width: usize) -> Result<Self> {
        let n = self.table.n_samples();
        if width == 0 || Some(targets.len()) != n.checked_mul(width) {
            return Err(DataError::Parameter {
                name: "--metadata-column",
                message: format!(
                    "{} targets are not {width} per sample of {n} samples",
                    targets.len()
                ),
            });
        }
        if let Some(k) = targets.iter().position(|v| !v.is_finite()) {
            return Err(DataError::Parameter {
                name: "--metadata-column",
                message: format!(
                    "sample '{}': target {} is not finite",
                    self.table.sample_ids[k / width],
                    k % width + 1
                ),
            });
        }
        self.targets = Some(targets);
        self.target_width = width;
        Ok(self)
    }

    /// The ASVs (table observation index, count) that sample `sample` (table position)
    /// keeps under the token limit, in ASV-slot order: what [`Dataset::batch`] puts in
    /// the sample's slots 0, 1, … at `epoch`.
    pub fn kept_asvs(&self, sample: usize, epoch: u64) -> Vec<(u32, f64)> {
        let entries: Vec<(u32, f64)> = self.table.sample(sample).collect();
        self.select(sample, &entries, epoch)
    }

    /// The token-limit selection of `entries` (sample `sample`'s, possibly augmented).
    fn select(&self, sample: usize, entries: &[(u32, f64)], epoch: u64) -> Vec<(u32, f64)> {
        let seed =
            self.seed ^ (sample as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ epoch.rotate_left(32);
        select_asvs(entries, self.token_limit, self.policy, seed)
    }

    /// [`Dataset::batch`] of augmented samples (training only): each sample's entries
    /// augmented (rarefaction, ASV subset, count noise) before the token-limit
    /// selection, and its tokens substituted after, from the sample's own stream of
    /// `(seed, epoch, sample)` ([`Augmentation::rng`]). Sample IDs, UniFrac block and
    /// targets are those of the samples; mask, counts and tokens come from the augmented
    /// entries.
    pub fn augmented_batch(
        &self,
        samples: &[usize],
        pad_to: Option<usize>,
        epoch: u64,
        augmentation: &Augmentation,
        seed: u64,
    ) -> Batch {
        self.batch_from(
            samples,
            pad_to,
            epoch,
            Some((augmentation, seed)),
            |i| self.table.sample(samples[i]).collect(),
            |_, o| self.tokens.row(o as usize),
        )
    }

    /// Builds the batch of samples `samples` (table positions, in batch order).
    ///
    /// `n_asv` is the largest number of kept ASVs in the batch, or `pad_to` when given
    /// (the reference always pads to `token_limit`). `epoch` varies the random policy.
    pub fn batch(&self, samples: &[usize], pad_to: Option<usize>, epoch: u64) -> Batch {
        self.batch_from(
            samples,
            pad_to,
            epoch,
            None,
            |i| self.table.sample(samples[i]).collect(),
            |_, o| self.tokens.row(o as usize),
        )
    }

    /// The batch of `samples` (this dataset's sample positions, in batch order) whose
    /// sample `i` holds the entries `entries(i)` (ASV handle, count, in table order) and
    /// whose ASV handle `o` of sample `i` has the token row `token_row(i, o)`
    /// (`[max_bp + 1]`). The token-limit selection and the augmentation are drawn from
    /// the samples' positions in this dataset, so where the entries come from (the
    /// in-memory table, or a chunk read by [`crate::SampleStream`]) does not change
    /// the batch.
    pub(crate) fn batch_from<'a>(
        &self,
        samples: &[usize],
        pad_to: Option<usize>,
        epoch: u64,
        augmentation: Option<(&Augmentation, u64)>,
        entries: impl Fn(usize) -> Vec<(u32, f64)>,
        token_row: impl Fn(usize, u32) -> &'a [u8],
    ) -> Batch {
        let mut rngs: Vec<_> = match augmentation {
            Some((_, seed)) => samples
                .iter()
                .map(|&s| Augmentation::rng(seed, epoch, s))
                .collect(),
            None => Vec::new(),
        };
        let chosen: Vec<Vec<(u32, f64)>> = samples
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let e = entries(i);
                match augmentation {
                    Some((a, _)) => self.select(s, &a.entries(&e, &mut rngs[i]), epoch),
                    None => self.select(s, &e, epoch),
                }
            })
            .collect();
        let mut batch = self.assemble(samples, &chosen, pad_to, token_row);
        if let Some((a, _)) = augmentation.filter(|(a, _)| a.substitution.is_some()) {
            let (b, n_asv, _) = batch.tokens.dim();
            for (i, rng) in rngs.iter_mut().enumerate().take(b) {
                for slot in 0..n_asv {
                    if batch.asv_mask[[i, slot]] {
                        let mut row = batch.tokens.slice_mut(ndarray::s![i, slot, ..]);
                        if let Some(row) = row.as_slice_mut() {
                            a.substitute(row, rng);
                        }
                    }
                }
            }
        }
        batch
    }

    /// The batch of `samples` whose sample `i` has the slots `chosen[i]` (ASV handle,
    /// count) in order, with the token rows of `token_row`.
    fn assemble<'a>(
        &self,
        samples: &[usize],
        chosen: &[Vec<(u32, f64)>],
        pad_to: Option<usize>,
        token_row: impl Fn(usize, u32) -> &'a [u8],
    ) -> Batch {
        let width = self.tokens.max_bp + 1;
        let n_asv = pad_to.unwrap_or_else(|| chosen.iter().map(Vec::len).max().unwrap_or(0).max(1));
        let b = samples.len();
        let mut tokens = Array3::<i64>::zeros((b, n_asv, width));
        let mut counts = Array2::<f32>::zeros((b, n_asv));
        let mut asv_mask = Array2::from_elem((b, n_asv), false);
        for (i, entries) in chosen.iter().enumerate() {
            for (slot, &(o, c)) in entries.iter().take(n_asv).enumerate() {
                for (t, &tok) in token_row(i, o).iter().enumerate() {
                    tokens[[i, slot, t]] = i64::from(tok);
                }
                counts[[i, slot]] = c as f32;
                asv_mask[[i, slot]] = true;
            }
        }
        Batch {
            sample_ids: samples
                .iter()
                .map(|&s| self.table.sample_ids[s].clone())
                .collect(),
            tokens,
            counts,
            asv_mask,
            unifrac: self.distances.as_ref().map(|d| d.block(samples)),
            targets: self.targets.as_ref().map(|t| {
                let w = self.target_width;
                samples
                    .iter()
                    .flat_map(|&s| t[s * w..(s + 1) * w].iter().copied())
                    .collect()
            }),
        }
    }
}
