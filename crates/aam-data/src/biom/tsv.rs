//! Classic tab-separated feature tables, as written by `biom convert --to-tsv`:
//! an optional `# Constructed from biom file` line, then a header whose first cell is
//! `#OTU ID` (or `OTU ID`, `#OTUID`, `Feature ID`), one column per sample, and an
//! optional trailing `taxonomy` metadata column that is ignored.

use std::path::Path;

use crate::error::{short_asv, DataError, Result};
use crate::table::FeatureTable;

const METADATA_COLUMNS: [&str; 3] = ["taxonomy", "taxon", "consensus lineage"];

pub(super) fn parse(path: &Path, bytes: &[u8]) -> Result<FeatureTable> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        DataError::format(
            path,
            format!("not UTF-8 text ({e}) and not HDF5 or JSON either: not a BIOM table"),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let header =
        loop {
            match lines.next() {
                None => return Err(DataError::format(
                    path,
                    "no `#OTU ID` header line found; a TSV table starts with `#OTU ID<TAB>sample…`",
                )),
                Some((_, l)) if l.trim().is_empty() => continue,
                // A comment line; a lone `#OTU ID` is the header of a table without samples.
                Some((_, l))
                    if l.starts_with("# Constructed")
                        || (l.starts_with('#') && !l.contains('\t') && !is_id_header(l)) =>
                {
                    continue
                }
                Some((n, l)) => break (n, l),
            }
        };
    let cells: Vec<&str> = header.1.split('\t').collect();
    if !is_id_header(cells[0]) {
        return Err(DataError::format(
            path,
            format!("line {}: first header cell is '{}', expected `#OTU ID`; this is not a BIOM TSV table", header.0, cells[0]),
        ));
    }
    let header_columns = cells.len();
    let mut n_samples = cells.len() - 1;
    if n_samples > 0
        && METADATA_COLUMNS.contains(&cells[n_samples].trim().to_ascii_lowercase().as_str())
    {
        n_samples -= 1;
    }
    let sample_ids: Vec<String> = cells[1..=n_samples]
        .iter()
        .map(|s| s.trim().to_string())
        .collect();
    let mut observation_ids = Vec::new();
    let mut triplets = Vec::new();
    for (line_no, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() < n_samples + 1 {
            return Err(DataError::format(
                path,
                format!(
                    "line {line_no} (ASV {}) has {} counts for {n_samples} samples; every row needs one count per sample column of the header",
                    short_asv(fields[0]),
                    fields.len() - 1
                ),
            ));
        }
        // Cells beyond the header's columns (a taxonomy column is a header column).
        if fields[header_columns.min(fields.len())..]
            .iter()
            .any(|c| !c.trim().is_empty())
        {
            return Err(DataError::format(
                path,
                format!(
                    "line {line_no} (ASV {}) has {} counts for {n_samples} samples; every row needs one count per sample column of the header",
                    short_asv(fields[0]),
                    fields.len() - 1
                ),
            ));
        }
        let o = observation_ids.len() as u32;
        for (s, cell) in fields[1..=n_samples].iter().enumerate() {
            let v: f64 = cell.trim().parse().map_err(|_| {
                DataError::format(
                    path,
                    format!(
                        "line {line_no}, sample '{}', ASV {}: '{cell}' is not a number",
                        sample_ids[s],
                        short_asv(fields[0])
                    ),
                )
            })?;
            triplets.push((s as u32, o, v));
        }
        observation_ids.push(fields[0].trim().to_string());
    }
    FeatureTable::from_triplets(path, sample_ids, observation_ids, triplets)
}

/// Whether `cell` is the first header cell of a TSV table (`#OTU ID` and its variants).
fn is_id_header(cell: &str) -> bool {
    let first = cell.trim_start_matches('#').trim().to_ascii_lowercase();
    ["otu id", "otuid", "feature id", "featureid", "asv id"].contains(&first.as_str())
}
