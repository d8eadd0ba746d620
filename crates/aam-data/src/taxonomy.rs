//! ASV taxonomy: `--taxonomy taxonomy.qza|TSV`, and lineages cut at a rank.
//!
//! The file is QIIME 2's `FeatureData[Taxonomy]` (`Feature ID`, `Taxon`, `Confidence`), as
//! an artifact or exported TSV. Its feature IDs may be the sequences or, as DADA2 names
//! them, the MD5 hashes of the sequences: an ASV is looked up by its sequence, then by the
//! MD5 of its sequence. Cutting a lineage at a rank groups ASVs as `qiime taxa collapse`
//! does (the levels down to the rank, missing ones filled in as `__`), with two
//! differences: a level with a `k__`/`p__`/… prefix is placed by its prefix (q2-taxa goes
//! by position), and levels are joined with `; ` as the taxonomy writes them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::qiime2::{self, ArtifactKind};

/// The label of an ASV that the taxonomy does not hold (QIIME 2's word).
pub const UNASSIGNED: &str = "Unassigned";

/// Largest taxonomy file read, in bytes (1 GiB).
const MAX_TAXONOMY_BYTES: u64 = 1 << 30;

/// A taxonomic rank, from the top of a lineage (level 1) to species (level 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum TaxonRank {
    /// Level 1: kingdom (Greengenes `k__`) or domain (SILVA `d__`).
    Kingdom,
    /// Level 2 (`p__`).
    Phylum,
    /// Level 3 (`c__`).
    Class,
    /// Level 4 (`o__`).
    Order,
    /// Level 5 (`f__`).
    Family,
    /// Level 6 (`g__`).
    Genus,
    /// Level 7 (`s__`).
    Species,
}

impl TaxonRank {
    /// 0-based level of this rank in a lineage.
    pub fn level(self) -> usize {
        self as usize
    }

    fn from_prefix(c: char) -> Option<Self> {
        Some(match c.to_ascii_lowercase() {
            'k' | 'd' => TaxonRank::Kingdom,
            'p' => TaxonRank::Phylum,
            'c' => TaxonRank::Class,
            'o' => TaxonRank::Order,
            'f' => TaxonRank::Family,
            'g' => TaxonRank::Genus,
            's' => TaxonRank::Species,
            _ => return None,
        })
    }
}

impl std::fmt::Display for TaxonRank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TaxonRank::Kingdom => "kingdom",
            TaxonRank::Phylum => "phylum",
            TaxonRank::Class => "class",
            TaxonRank::Order => "order",
            TaxonRank::Family => "family",
            TaxonRank::Genus => "genus",
            TaxonRank::Species => "species",
        })
    }
}

/// Feature ID → lineage (`k__Bacteria; p__Firmicutes; …`), as the file gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Taxonomy {
    /// File it was read from.
    pub path: PathBuf,
    /// Feature ID → lineage.
    pub taxa: HashMap<String, String>,
}

/// Loads a taxonomy TSV or a `FeatureData[Taxonomy]` `.qza` (detected from the bytes).
///
/// The first column holds the feature IDs; the lineage is the column named `Taxon` (or
/// `taxonomy`, any case), else the second. A header row is required.
///
/// Errors: unreadable file ([`DataError::Io`]); an artifact of another type, a file
/// over 1 GiB, no lineage column, a row without a lineage, or a feature ID given twice
/// ([`DataError::Format`], naming the line and feature).
pub fn load_taxonomy(path: &Path) -> Result<Taxonomy> {
    let bytes = qiime2::read_file_or_artifact(
        path,
        ArtifactKind::Taxonomy,
        MAX_TAXONOMY_BYTES,
        "a taxonomy",
    )?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(DataError::format(
            path,
            "empty file; a taxonomy TSV has a header (`Feature ID<TAB>Taxon`) and a row per feature",
        ));
    };
    let header: Vec<&str> = header
        .trim_start_matches('\u{feff}')
        .split('\t')
        .map(str::trim)
        .collect();
    // A first row whose second cell is a lineage is data, not a header.
    if header
        .get(1)
        .is_some_and(|c| c.contains(';') || c.contains("__"))
    {
        return Err(DataError::format(
            path,
            format!(
                "the first row ('{}') is a feature, not a header; a taxonomy TSV starts with `Feature ID<TAB>Taxon`",
                header[0]
            ),
        ));
    }
    let column = header
        .iter()
        .position(|h| h.eq_ignore_ascii_case("taxon") || h.eq_ignore_ascii_case("taxonomy"))
        .or(if header.len() >= 2 { Some(1) } else { None })
        .ok_or_else(|| {
            DataError::format(
                path,
                "the header has one column; a taxonomy TSV has `Feature ID<TAB>Taxon`",
            )
        })?;
    let mut taxa = HashMap::new();
    for (k, line) in lines {
        let cells: Vec<&str> = line.split('\t').map(str::trim).collect();
        let id = cells[0];
        if id.starts_with('#') {
            continue; // `#q2:types` or a comment
        }
        let lineage = cells.get(column).copied().unwrap_or("");
        if id.is_empty() || lineage.is_empty() {
            return Err(DataError::format(
                path,
                format!(
                    "line {}: {}; every row gives a feature ID and its lineage",
                    k + 1,
                    if id.is_empty() {
                        "no feature ID".to_string()
                    } else {
                        format!("feature '{id}' has no lineage")
                    }
                ),
            ));
        }
        if taxa.insert(id.to_string(), lineage.to_string()).is_some() {
            return Err(DataError::format(
                path,
                format!("line {}: feature '{id}' appears twice", k + 1),
            ));
        }
    }
    Ok(Taxonomy {
        path: path.to_path_buf(),
        taxa,
    })
}

impl Taxonomy {
    /// The lineage of the ASV whose sequence is `asv`: by the sequence itself, else by its
    /// MD5 (QIIME 2's DADA2 feature ID); `None` when the taxonomy has neither.
    pub fn lineage(&self, asv: &str) -> Option<&str> {
        let digest = format!("{:x}", md5::compute(asv.as_bytes()));
        self.taxa
            .get(asv)
            .or_else(|| self.taxa.get(&digest))
            .or_else(|| self.taxa.get(&digest.to_ascii_uppercase()))
            .map(String::as_str)
    }

    /// The lineage of `asv` cut at `rank` ([`lineage_at`]), or [`UNASSIGNED`].
    pub fn at_rank(&self, asv: &str, rank: TaxonRank) -> String {
        self.lineage(asv)
            .map_or_else(|| UNASSIGNED.to_string(), |l| lineage_at(l, rank))
    }
}

/// `lineage` (levels separated by `;`) cut at `rank`: the levels down to `rank`, each in
/// its place (by its `k__`/`p__`/… prefix where it has one, else by position), missing
/// ones filled in as `__` (as `qiime taxa collapse` fills them), joined with `; `.
/// `"k__Bacteria; p__Firmicutes"` at family gives
/// `"k__Bacteria; p__Firmicutes; __; __; __"`. A lineage of [`UNASSIGNED`] stays so.
pub fn lineage_at(lineage: &str, rank: TaxonRank) -> String {
    if lineage.trim() == UNASSIGNED {
        return UNASSIGNED.to_string();
    }
    let mut levels: Vec<Option<String>> = vec![None; rank.level() + 1];
    for (position, level) in lineage.split(';').map(str::trim).enumerate() {
        let mut chars = level.chars();
        let place = match (chars.next(), chars.next(), chars.next()) {
            (Some(c), Some('_'), Some('_')) => TaxonRank::from_prefix(c).map(TaxonRank::level),
            _ => None,
        }
        .unwrap_or(position);
        if place <= rank.level() && !level.is_empty() {
            levels[place] = Some(level.to_string());
        }
    }
    levels
        .into_iter()
        .map(|l| l.unwrap_or_else(|| "__".to_string()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A short label of a cut lineage for plots: its deepest named level, with the level
/// above it when the deepest is not at the rank itself (e.g. `f__Lachnospiraceae; g__`).
pub fn short_label(cut: &str) -> String {
    let levels: Vec<&str> = cut.split("; ").collect();
    let named = |l: &&str| l.len() > 3 || (!l.ends_with("__") && !l.is_empty());
    match levels.iter().rposition(|l| named(l)) {
        None => cut.to_string(),
        Some(k) if k + 1 == levels.len() => levels[k].to_string(),
        Some(k) => format!("{}; {}", levels[k], levels[levels.len() - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineages_cut_at_a_rank_as_taxa_collapse_labels_them() {
        let gg = "k__Bacteria; p__Firmicutes; c__Clostridia; o__Clostridiales; f__Lachnospiraceae; g__Blautia; s__";
        assert_eq!(
            lineage_at(gg, TaxonRank::Genus),
            "k__Bacteria; p__Firmicutes; c__Clostridia; o__Clostridiales; f__Lachnospiraceae; g__Blautia"
        );
        assert_eq!(
            lineage_at(gg, TaxonRank::Phylum),
            "k__Bacteria; p__Firmicutes"
        );
        assert_eq!(
            lineage_at("k__Bacteria; p__Firmicutes", TaxonRank::Family),
            "k__Bacteria; p__Firmicutes; __; __; __"
        );
        // SILVA's d__, and a level placed by its prefix, not its position.
        assert_eq!(
            lineage_at("d__Bacteria; f__Muribaculaceae", TaxonRank::Family),
            "d__Bacteria; __; __; __; f__Muribaculaceae"
        );
        // Without prefixes, by position.
        assert_eq!(
            lineage_at("Bacteria;Bacteroidota;Bacteroidia", TaxonRank::Class),
            "Bacteria; Bacteroidota; Bacteroidia"
        );
        assert_eq!(lineage_at("Unassigned", TaxonRank::Genus), UNASSIGNED);
        assert_eq!(
            short_label("k__Bacteria; p__Firmicutes; f__Lachnospiraceae; g__"),
            "f__Lachnospiraceae; g__"
        );
        assert_eq!(short_label("k__Bacteria; g__Blautia"), "g__Blautia");
        assert_eq!(short_label(UNASSIGNED), UNASSIGNED);
    }
}
