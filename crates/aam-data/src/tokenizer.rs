//! Nucleotide tokenizer (reference `SequenceTokenizer`, spec §2.4).
//!
//! `[START] + map(sequence)` padded with 0 or truncated to `max_bp + 1` tokens:
//! pad 0, A 1, C 2, G 3, T 4 (case-insensitive), START 5; any other character
//! (N, IUPAC codes, `-`) becomes 0, a hole that attention masks out.

/// Padding token; also what non-ACGT characters become.
pub const PAD: u8 = 0;
/// Token placed first in every ASV row.
pub const START: u8 = 5;
/// Mask token used by masked-nucleotide pretraining (never produced here).
pub const MASK: u8 = 6;
/// Vocabulary size: pad, A, C, G, T, START, MASK.
pub const VOCAB_SIZE: usize = 7;

/// Token of one nucleotide character.
pub fn nucleotide_token(c: u8) -> u8 {
    match c {
        b'A' | b'a' => 1,
        b'C' | b'c' => 2,
        b'G' | b'g' => 3,
        b'T' | b't' => 4,
        _ => PAD,
    }
}

/// Whether `id` is a DNA sequence: every character A, C, G or T (either case), as the
/// tokenizer reads it; table IDs such as MD5 hashes or OTU names are not.
pub fn is_dna(id: &str) -> bool {
    id.bytes().all(|c| nucleotide_token(c) != PAD)
}

/// Writes the tokens of `sequence` into `row` (length `max_bp + 1`).
pub fn tokenize_into(sequence: &str, row: &mut [u8]) {
    row.fill(PAD);
    if let Some(first) = row.first_mut() {
        *first = START;
    }
    for (slot, c) in row[1..].iter_mut().zip(sequence.bytes()) {
        *slot = nucleotide_token(c);
    }
}

/// The tokens of one sequence, `[max_bp + 1]`.
///
/// ```
/// use aam_data::tokenizer::tokenize;
/// // START, A, C, G, T, then an N (a hole: 0) and padding up to max_bp + 1 = 8 tokens.
/// assert_eq!(tokenize("acgtN", 7), [5, 1, 2, 3, 4, 0, 0, 0]);
/// // Longer sequences are cut at max_bp.
/// assert_eq!(tokenize("ACGTACGT", 3), [5, 1, 2, 3]);
/// ```
pub fn tokenize(sequence: &str, max_bp: usize) -> Vec<u8> {
    let mut row = vec![PAD; max_bp + 1];
    tokenize_into(sequence, &mut row);
    row
}

/// Token rows of every ASV of a table, tokenized once per unique sequence.
///
/// `tokens` is `[n_asv, max_bp + 1]` row-major `u8`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenizedAsvs {
    /// `max_bp` the rows were built with.
    pub max_bp: usize,
    /// Row-major `[n_asv, max_bp + 1]` tokens.
    pub tokens: Vec<u8>,
    /// Indices of ASVs whose sequence holds a character other than A/C/G/T.
    pub non_acgt: Vec<usize>,
    /// Indices of ASVs longer than `max_bp` (truncated at the end).
    pub too_long: Vec<usize>,
}

impl TokenizedAsvs {
    /// Tokenizes `sequences` (a table's observation IDs) with `max_bp`.
    pub fn new(sequences: &[String], max_bp: usize) -> Self {
        let width = max_bp + 1;
        let mut tokens = vec![PAD; sequences.len() * width];
        let (mut non_acgt, mut too_long) = (Vec::new(), Vec::new());
        for (i, seq) in sequences.iter().enumerate() {
            tokenize_into(seq, &mut tokens[i * width..(i + 1) * width]);
            if seq.bytes().any(|c| nucleotide_token(c) == PAD) {
                non_acgt.push(i);
            }
            if seq.len() > max_bp {
                too_long.push(i);
            }
        }
        TokenizedAsvs {
            max_bp,
            tokens,
            non_acgt,
            too_long,
        }
    }

    /// Token row of ASV `i`, `[max_bp + 1]`.
    pub fn row(&self, i: usize) -> &[u8] {
        let w = self.max_bp + 1;
        &self.tokens[i * w..(i + 1) * w]
    }
}
