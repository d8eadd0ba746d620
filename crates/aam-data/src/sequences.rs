//! Sequences for hashed feature IDs: `--sequences rep-seqs.qza|FASTA`.
//!
//! DADA2 in QIIME 2 names each feature by the MD5 hash of its sequence (32 lowercase
//! hex digits) and keeps the sequences in `rep-seqs.qza` (`FeatureData[Sequence]`).
//! aam reads an ASV by its sequence, so such a table's observation IDs are replaced by
//! the sequences before anything else reads them; a hash ID is checked against the
//! MD5 of its sequence.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{name_list, short_asv, DataError, Result};
use crate::qiime2::{self, ArtifactKind};
use crate::table::FeatureTable;

/// Largest FASTA file read, in bytes (4 GiB).
const MAX_FASTA_BYTES: u64 = 4 << 30;

/// Feature ID → DNA sequence, from a FASTA file or a `FeatureData[Sequence]` artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSequences {
    /// File it was read from.
    pub path: PathBuf,
    /// Feature ID (the FASTA header up to the first whitespace) → sequence (uppercase).
    pub sequences: HashMap<String, String>,
}

/// Whether `id` has the form of a QIIME 2 feature hash: 32 hex digits (an MD5).
pub fn is_md5_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit())
}

/// Loads feature sequences from a FASTA file or a `.qza` of type
/// `FeatureData[Sequence]` (detected from the file's first bytes).
///
/// Errors: unreadable file ([`DataError::Io`]); a wrong artifact type, a FASTA with a
/// sequence before its first header, an empty header or sequence, a character other
/// than a nucleotide code (IUPAC, `-` and `.` refused), or a feature ID given twice
/// ([`DataError::Format`], naming the line and feature).
pub fn load_sequences(path: &Path) -> Result<FeatureSequences> {
    let fasta =
        qiime2::read_file_or_artifact(path, ArtifactKind::Sequences, MAX_FASTA_BYTES, "sequences")?;
    Ok(FeatureSequences {
        path: path.to_path_buf(),
        sequences: parse_fasta(path, &fasta)?,
    })
}

fn parse_fasta(path: &Path, bytes: &[u8]) -> Result<HashMap<String, String>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        DataError::format(
            path,
            format!(
                "not UTF-8 text at byte {}; a FASTA file is plain text",
                e.valid_up_to()
            ),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out: HashMap<String, String> = HashMap::new();
    let mut current: Option<(String, usize, String)> = None;
    let finish = |entry: Option<(String, usize, String)>, out: &mut HashMap<String, String>| {
        if let Some((id, line, seq)) = entry {
            if seq.is_empty() {
                return Err(DataError::format(
                    path,
                    format!("line {line}: feature '{id}' has an empty sequence"),
                ));
            }
            if out.insert(id.clone(), seq).is_some() {
                return Err(DataError::format(
                    path,
                    format!("line {line}: feature '{id}' appears twice; each feature ID names one sequence"),
                ));
            }
        }
        Ok(())
    };
    for (k, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('>') {
            finish(current.take(), &mut out)?;
            let id = header.split_whitespace().next().unwrap_or("").to_string();
            if id.is_empty() {
                return Err(DataError::format(
                    path,
                    format!("line {}: a `>` header without a feature ID", k + 1),
                ));
            }
            current = Some((id, k + 1, String::new()));
        } else {
            let Some((id, _, seq)) = current.as_mut() else {
                return Err(DataError::format(
                    path,
                    format!(
                        "line {}: sequence before the first `>` header; is this a FASTA file?",
                        k + 1
                    ),
                ));
            };
            if let Some(c) = line.chars().find(|c| !is_nucleotide_code(*c)) {
                return Err(DataError::format(
                    path,
                    format!(
                        "line {}: feature '{id}' holds '{c}', which is not a nucleotide code; give unaligned DNA sequences",
                        k + 1
                    ),
                ));
            }
            seq.push_str(&line.to_ascii_uppercase());
        }
    }
    finish(current.take(), &mut out)?;
    if out.is_empty() {
        return Err(DataError::format(
            path,
            "no sequences; a FASTA file holds `>feature-id` lines, each followed by its sequence",
        ));
    }
    Ok(out)
}

/// The IUPAC nucleotide codes (either case); gaps are refused.
fn is_nucleotide_code(c: char) -> bool {
    matches!(
        c.to_ascii_uppercase(),
        'A' | 'C'
            | 'G'
            | 'T'
            | 'U'
            | 'R'
            | 'Y'
            | 'S'
            | 'W'
            | 'K'
            | 'M'
            | 'B'
            | 'D'
            | 'H'
            | 'V'
            | 'N'
    )
}

impl FeatureSequences {
    /// Replaces every observation ID of `table` (read from `table_path`) by its sequence.
    ///
    /// An ID of the form of an MD5 hash ([`is_md5_id`]) must be the MD5 of its sequence
    /// (as QIIME 2's DADA2 writes them); other IDs (e.g. `ASV_1`) are mapped as given.
    ///
    /// Errors ([`DataError::Mismatch`], naming this file): features without a sequence
    /// (counted, the first ten named), a hash that is not its sequence's MD5, or two
    /// features with the same sequence.
    pub fn apply(&self, table: &mut FeatureTable, table_path: &Path) -> Result<()> {
        let missing: Vec<&String> = table
            .observation_ids
            .iter()
            .filter(|id| !self.sequences.contains_key(*id))
            .collect();
        if missing.len() == table.n_asv()
            && table
                .observation_ids
                .iter()
                .all(|id| crate::tokenizer::is_dna(id))
        {
            return Err(DataError::mismatch(
                &self.path,
                format!(
                    "the feature IDs of {} are already DNA sequences, and none of them is named here; drop --sequences",
                    table_path.display()
                ),
            ));
        }
        if !missing.is_empty() {
            return Err(DataError::mismatch(
                &self.path,
                format!(
                    "{} of the {} features of {} have no sequence here: {}; give the rep-seqs of the same QIIME 2 run as the table",
                    missing.len(),
                    table.n_asv(),
                    table_path.display(),
                    name_list(&missing, 10)
                ),
            ));
        }
        let mut seen: HashMap<&str, &str> = HashMap::with_capacity(table.n_asv());
        for id in &table.observation_ids {
            let seq = &self.sequences[id];
            if is_md5_id(id) {
                // DADA2 hashes the sequence as written (upper case); a FASTA in lower case
                // was hashed so too.
                let digest = format!("{:x}", md5::compute(seq.as_bytes()));
                let lower = format!("{:x}", md5::compute(seq.to_ascii_lowercase().as_bytes()));
                if !digest.eq_ignore_ascii_case(id) && !lower.eq_ignore_ascii_case(id) {
                    return Err(DataError::mismatch(
                        &self.path,
                        format!(
                            "feature '{id}' is the MD5 hash of another sequence than the one given here ({}, MD5 {digest}); give the rep-seqs of the same QIIME 2 run as the table",
                            short_asv(seq)
                        ),
                    ));
                }
            }
            if let Some(other) = seen.insert(seq, id) {
                return Err(DataError::mismatch(
                    &self.path,
                    format!(
                        "features '{other}' and '{id}' have the same sequence ({}); merge them in the table first",
                        short_asv(seq)
                    ),
                ));
            }
        }
        for id in table.observation_ids.iter_mut() {
            *id = self.sequences[id.as_str()].clone();
        }
        Ok(())
    }
}
