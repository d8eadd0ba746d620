//! `--augment` batches on moving-pictures: sample IDs, targets and the UniFrac block are
//! those of the plain batch; mask, counts and tokens agree with each other slot by slot;
//! every slot holds one of the sample's own ASVs (its sequence up to the substitutions);
//! the same (seed, epoch) gives the same batch and another epoch another one.

mod common;
use common::moving_pictures_with_unifrac;

use aam_data::{Augmentation, Dataset, TokenLimitPolicy};

#[test]
fn augmented_batches_stay_consistent() {
    let (t, m) = moving_pictures_with_unifrac();
    let targets: Vec<f32> = (0..t.n_samples()).map(|i| i as f32 * 0.5).collect();
    let ds = Dataset::new(
        t.clone(),
        150,
        32,
        TokenLimitPolicy::Abundance,
        0,
        Some(m),
        Some(targets),
    )
    .unwrap();
    let samples = [3usize, 0, 17, 9, 33];
    let plain = ds.batch(&samples, None, 2);
    let all: Augmentation = "rarefy=1000,subset=0.7,noise=0.3,substitution=0.02"
        .parse()
        .unwrap();
    let aug = ds.augmented_batch(&samples, None, 2, &all, 11);
    assert_eq!(aug.sample_ids, plain.sample_ids);
    assert_eq!(aug.targets, plain.targets);
    assert_eq!(aug.unifrac, plain.unifrac);
    assert_eq!(
        aug,
        ds.augmented_batch(&samples, None, 2, &all, 11),
        "reproducible"
    );
    assert_ne!(
        aug,
        ds.augmented_batch(&samples, None, 3, &all, 11),
        "varies by epoch"
    );

    let (b, n_asv, width) = aug.tokens.dim();
    let mut substituted = 0usize;
    let mut bases = 0usize;
    for i in 0..b {
        let s = samples[i];
        for slot in 0..n_asv {
            let row = aug.tokens.slice(ndarray::s![i, slot, ..]);
            let filled = row.iter().any(|&x| x != 0);
            assert_eq!(aug.asv_mask[[i, slot]], filled, "mask of {i},{slot}");
            assert_eq!(aug.counts[[i, slot]] > 0.0, filled, "count of {i},{slot}");
            if !filled {
                continue;
            }
            // The closest of the sample's own ASVs differs only at a few bases.
            let best = t
                .sample(s)
                .map(|(a, _)| {
                    let own = ds.tokens.row(a as usize);
                    (0..width).filter(|&k| i64::from(own[k]) != row[k]).count()
                })
                .min()
                .unwrap();
            substituted += best;
            bases += row.iter().filter(|&&x| (1..=4).contains(&x)).count();
        }
    }
    let rate = substituted as f64 / bases as f64;
    assert!(rate > 0.005 && rate < 0.04, "substitution rate {rate}");

    // Rarefaction alone: each sample's counts sum to at most the depth (the token limit
    // keeps the most abundant 32), and are whole numbers.
    let rarefy = Augmentation {
        rarefy: Some(1000),
        ..Default::default()
    };
    let r = ds.augmented_batch(&samples, None, 0, &rarefy, 11);
    for i in 0..b {
        let total: f32 = r.counts.row(i).sum();
        assert!(total <= 1000.0 && total > 0.0);
        assert!(r.counts.row(i).iter().all(|c| c.fract() == 0.0));
    }
}
