//! Input preparation from a feature table with the model's own stored settings
//! (max bp, token limit, token limit policy), so a table cannot be prepared differently
//! from how the model was trained.

use aam_config::CheckpointConfig;
use aam_data::{Dataset, FeatureTable, TokenLimitPolicy};

use crate::error::Result;

/// A table tokenized for one model, with what the user should know about it.
#[derive(Debug, Clone)]
pub struct PreparedTable {
    /// Tokens per ASV and the token-limit selection, as in training.
    pub dataset: Dataset,
    /// ASVs with reads in each sample, before the token limit, `[n_samples]`.
    pub asvs_with_reads: Vec<usize>,
    /// Notes for the user (truncated sequences, non-ACGT characters, token limit).
    pub warnings: Vec<String>,
}

/// Tokenizes `table` (read from `origin`) for the model of `config`.
///
/// Rarefaction is not applied: prediction is deterministic and sees every read (the
/// token limit policy is the model's; the random policy uses seed 0).
///
/// Errors: no observation ID is a DNA sequence (the table uses hashes or names; aam
/// reads ASV sequences).
pub fn prepare_table(
    table: FeatureTable,
    config: &CheckpointConfig,
    origin: &str,
) -> Result<PreparedTable> {
    prepare_table_with(table, config, origin, config.data.token_limit_policy)
}

/// [`prepare_table`] keeping the ASVs beyond the token limit by `policy` instead of the
/// model's own (`aam predict --asv-sampling`; the random policy then draws a new subset
/// for each `epoch` of [`Dataset::batch`]).
///
/// Errors: as [`prepare_table`].
pub fn prepare_table_with(
    table: FeatureTable,
    config: &CheckpointConfig,
    origin: &str,
    policy: TokenLimitPolicy,
) -> Result<PreparedTable> {
    let m = &config.model;
    let dataset = Dataset::new(table, m.max_bp, m.token_limit, policy, 0, None, None)?;
    let n_obs = dataset.table.observation_ids.len();
    let mut warnings = Vec::new();
    let non_acgt = &dataset.tokens.non_acgt;
    dataset
        .table
        .check_sequence_ids(std::path::Path::new(origin))?;
    if !non_acgt.is_empty() {
        warnings.push(format!(
            "{} of {n_obs} ASVs contain characters other than A, C, G, T (e.g. '{}'); those positions are masked",
            non_acgt.len(),
            aam_data::error::short_asv(&dataset.table.observation_ids[non_acgt[0]])
        ));
    }
    let too_long = &dataset.tokens.too_long;
    if !too_long.is_empty() {
        warnings.push(format!(
            "{} of {n_obs} ASVs are longer than the model's max bp {}; they are truncated as in training",
            too_long.len(),
            m.max_bp
        ));
    }
    let asvs_with_reads: Vec<usize> = (0..dataset.table.n_samples())
        .map(|s| dataset.table.sample(s).filter(|&(_, c)| c > 0.0).count())
        .collect();
    let over = asvs_with_reads
        .iter()
        .filter(|&&n| n > m.token_limit)
        .count();
    if over > 0 {
        warnings.push(format!(
            "{over} samples have more ASVs than the model's token limit {}; the '{}' policy keeps {} of them{}",
            m.token_limit,
            format!("{policy:?}").to_lowercase(),
            m.token_limit,
            if policy == config.data.token_limit_policy { ", as in training" } else { " (not the model's own policy)" }
        ));
    }
    Ok(PreparedTable {
        dataset,
        asvs_with_reads,
        warnings,
    })
}
