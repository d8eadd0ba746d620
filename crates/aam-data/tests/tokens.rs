//! Tokenizer and token-limit policies against hand-computed expectations.

mod common;

use aam_data::token_limit::{select_asvs, TokenLimitPolicy};
use aam_data::tokenizer::{tokenize, TokenizedAsvs, START};
use common::tiny_table;

#[test]
fn tokenizer_maps_pads_and_truncates() {
    assert_eq!(tokenize("ACGT", 6), vec![START, 1, 2, 3, 4, 0, 0]);
    assert_eq!(tokenize("acgtn-R", 7), vec![START, 1, 2, 3, 4, 0, 0, 0]);
    assert_eq!(tokenize("ACGTACGT", 3), vec![START, 1, 2, 3]);
    assert_eq!(tokenize("", 2), vec![START, 0, 0]);
}

#[test]
fn tokenized_table_reports_non_acgt_and_long_asvs() {
    let t = tiny_table();
    let tok = TokenizedAsvs::new(&t.observation_ids, 6);
    assert_eq!(tok.non_acgt, vec![2], "TTNA has an N");
    assert_eq!(tok.too_long, vec![3], "acgtacgt is 8 bp > 6");
    assert_eq!(tok.row(2), &[START, 4, 4, 0, 1, 0, 0]);
    assert_eq!(tok.row(3), &[START, 1, 2, 3, 4, 1, 2]);
}

#[test]
fn token_limit_policies() {
    let e = [(0u32, 3.0), (1, 9.0), (2, 3.0), (3, 1.0), (4, 9.0)];
    assert_eq!(
        select_asvs(&e, 3, TokenLimitPolicy::First, 0),
        e[..3].to_vec()
    );
    // Stable ties: 1 before 4 (both 9), 0 before 2 (both 3).
    assert_eq!(
        select_asvs(&e, 3, TokenLimitPolicy::Abundance, 0),
        vec![(1, 9.0), (4, 9.0), (0, 3.0)]
    );
    assert_eq!(
        select_asvs(&e, 10, TokenLimitPolicy::Abundance, 0),
        vec![(1, 9.0), (4, 9.0), (0, 3.0), (2, 3.0), (3, 1.0)]
    );
    let r1 = select_asvs(&e, 3, TokenLimitPolicy::Random, 11);
    assert_eq!(
        r1,
        select_asvs(&e, 3, TokenLimitPolicy::Random, 11),
        "seeded"
    );
    assert_eq!(r1.len(), 3);
    assert!(r1.windows(2).all(|w| w[0].0 < w[1].0), "table order");
    let distinct: std::collections::HashSet<Vec<u32>> = (0..50)
        .map(|s| {
            select_asvs(&e, 3, TokenLimitPolicy::Random, s)
                .iter()
                .map(|x| x.0)
                .collect()
        })
        .collect();
    assert!(distinct.len() > 3, "different seeds give different subsets");
    assert_eq!(select_asvs(&e, 9, TokenLimitPolicy::Random, 1), e.to_vec());
}
