//! `--taxonomy` / `--rank` of `aam importance` and `aam attention`: each ASV's lineage in
//! the tables, and values summed per taxon at a rank.

use std::collections::HashMap;
use std::path::PathBuf;

use aam_data::taxonomy::{load_taxonomy, TaxonRank, Taxonomy};
use anyhow::Result;
use clap::Args;

/// The taxonomy options.
#[derive(Args, Debug, Clone)]
pub struct TaxonomyArgs {
    /// ASV taxonomy: QIIME 2 taxonomy.qza (FeatureData[Taxonomy]) or its TSV (Feature ID,
    /// Taxon), keyed by sequence or by DADA2's MD5 feature ID. Adds each ASV's lineage to
    /// the tables and sums the values per taxon at --rank (permutation importance: over
    /// the --top ASVs it scores).
    #[arg(long)]
    pub taxonomy: Option<PathBuf>,
    /// Rank at which values are summed per taxon (lineages cut at the rank, missing
    /// levels as `__`, as `qiime taxa collapse` groups them).
    #[arg(long, value_enum, default_value_t = TaxonRank::Genus, requires = "taxonomy")]
    pub rank: TaxonRank,
}

impl TaxonomyArgs {
    /// The taxonomy, when --taxonomy is given.
    pub fn load(&self) -> Result<Option<Taxonomy>> {
        Ok(match &self.taxonomy {
            Some(p) => Some(load_taxonomy(p)?),
            None => None,
        })
    }
}

/// One taxon's sum: its lineage cut at the rank, how many ASVs fell in it, their sum.
pub struct TaxonSum {
    /// Lineage cut at the rank, or `Unassigned`.
    pub taxon: String,
    /// ASVs summed.
    pub asvs: usize,
    /// Sum of their values.
    pub value: f64,
}

/// Sums each `(ASV sequence, value)` into its taxon at `rank`, largest sum first (ties by
/// taxon name).
pub fn sum_by_taxon<'a>(
    taxonomy: &Taxonomy,
    rank: TaxonRank,
    values: impl IntoIterator<Item = (&'a str, f64)>,
) -> Vec<TaxonSum> {
    let mut sums: HashMap<String, (usize, f64)> = HashMap::new();
    for (asv, v) in values {
        let e = sums.entry(taxonomy.at_rank(asv, rank)).or_default();
        e.0 += 1;
        e.1 += v;
    }
    let mut out: Vec<TaxonSum> = sums
        .into_iter()
        .map(|(taxon, (asvs, value))| TaxonSum { taxon, asvs, value })
        .collect();
    out.sort_by(|a, b| {
        b.value
            .total_cmp(&a.value)
            .then_with(|| a.taxon.cmp(&b.taxon))
    });
    out
}
