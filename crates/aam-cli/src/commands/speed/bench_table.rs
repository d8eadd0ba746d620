//! The feature table that fills `aam bench`'s batches, inference and training alike.

use std::path::Path;

use aam_config::CheckpointConfig;
use anyhow::{bail, Result};
use ndarray::{s, Array3};

/// The table tokenized once with the model's settings, and its samples with reads.
pub(super) struct BenchTable {
    pub(super) prepared: aam_runtime::PreparedTable,
    /// Indices of the samples with at least one ASV with reads, in table order.
    pub(super) usable: Vec<usize>,
}

impl BenchTable {
    /// Loads `table` (feature IDs mapped to ASV sequences by `sequences` when given) and
    /// tokenizes it with `config`'s settings.
    ///
    /// # Errors
    /// The table or sequences cannot be read, a feature has no sequence, or no sample
    /// has reads.
    pub(super) fn load(
        config: &CheckpointConfig,
        table: &Path,
        sequences: Option<&Path>,
    ) -> Result<Self> {
        let (t, _) = aam_data::load_table_with_sequences(table, sequences)?;
        let prepared = aam_runtime::prepare_table(t, config, &table.display().to_string())?;
        let usable: Vec<usize> = (0..prepared.dataset.table.n_samples())
            .filter(|&s| prepared.asvs_with_reads[s] > 0)
            .collect();
        if usable.is_empty() {
            bail!("{}: no sample has reads", table.display());
        }
        Ok(BenchTable { prepared, usable })
    }

    /// Tokens `[batch, n_asv, max_bp + 1]` of the samples with reads (cycled); samples
    /// with fewer ASVs are padded.
    pub(super) fn tokens(&self, width: usize, n_asv: usize, batch: usize) -> Array3<i64> {
        let chosen: Vec<usize> = (0..batch)
            .map(|i| self.usable[i % self.usable.len()])
            .collect();
        let tokens = self.prepared.dataset.batch(&chosen, None, 0).tokens;
        let mut out = Array3::<i64>::zeros((batch, n_asv, width));
        let take = n_asv.min(tokens.dim().1);
        out.slice_mut(s![.., ..take, ..])
            .assign(&tokens.slice(s![.., ..take, ..]));
        out
    }
}
