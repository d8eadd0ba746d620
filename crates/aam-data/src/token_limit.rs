//! Choosing at most `token_limit` ASVs per sample (spec §2.3).

use rand::seq::index::sample as sample_indices;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Which ASVs a sample keeps when it has more than the token limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum TokenLimitPolicy {
    /// The first `token_limit` ASVs in table order (the reference behaviour).
    #[default]
    First,
    /// The `token_limit` most abundant, in decreasing count; ties keep table order.
    Abundance,
    /// A seeded uniform subset, returned in table order.
    Random,
}

impl std::str::FromStr for TokenLimitPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "first" => Ok(Self::First),
            "abundance" => Ok(Self::Abundance),
            "random" => Ok(Self::Random),
            _ => Err(format!(
                "unknown token limit policy '{s}'; use first, abundance or random"
            )),
        }
    }
}

/// Selects at most `token_limit` of a sample's `(asv_index, count)` entries.
///
/// `seed` is used by [`TokenLimitPolicy::Random`] only (combine it with the sample's
/// index so samples get independent subsets). Entries are returned in the order the
/// model will see them: table order, except `Abundance`, which orders by count.
pub fn select_asvs(
    entries: &[(u32, f64)],
    token_limit: usize,
    policy: TokenLimitPolicy,
    seed: u64,
) -> Vec<(u32, f64)> {
    if entries.len() <= token_limit && policy != TokenLimitPolicy::Abundance {
        return entries.to_vec();
    }
    match policy {
        TokenLimitPolicy::First => entries[..token_limit].to_vec(),
        TokenLimitPolicy::Abundance => {
            let mut sorted = entries.to_vec();
            // `sort_by` is stable: equal counts keep table order.
            sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
            sorted.truncate(token_limit);
            sorted
        }
        TokenLimitPolicy::Random => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut picked = sample_indices(&mut rng, entries.len(), token_limit).into_vec();
            picked.sort_unstable();
            picked.into_iter().map(|i| entries[i]).collect()
        }
    }
}
