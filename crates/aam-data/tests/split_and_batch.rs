//! Train/validation splits and model-ready batches.

mod common;

use std::collections::HashSet;

use aam_data::split::{read_split_tsv, write_split_tsv};
use aam_data::tokenizer::START;
use aam_data::{
    load_distance_matrix, load_table, split_samples, Dataset, Metadata, TokenLimitPolicy,
};
use common::*;

#[test]
fn grouped_split_keeps_subjects_on_one_side() {
    let (t, _) = load_table(&shared("ibd-2538", "table.biom")).unwrap();
    let md = Metadata::load(&shared("ibd-2538", "metadata.tsv")).unwrap();
    let subj = md.target("host_subject_id", &t.sample_ids, None).unwrap();
    let groups: Vec<String> = subj
        .values
        .iter()
        .map(|v| subj.classes[v.unwrap() as usize].clone())
        .collect();
    let ibd = md.target("ibd", &t.sample_ids, None).unwrap();
    let classes: Vec<usize> = ibd.values.iter().map(|v| v.unwrap() as usize).collect();
    let split = split_samples(t.n_samples(), 0.2, 42, Some(&groups), Some(&classes)).unwrap();
    let tg: HashSet<&String> = split.train.iter().map(|&i| &groups[i]).collect();
    let vg: HashSet<&String> = split.validation.iter().map(|&i| &groups[i]).collect();
    assert!(tg.is_disjoint(&vg));
    assert_eq!(split.train.len() + split.validation.len(), t.n_samples());
    // Stratified: both classes on both sides.
    for side in [&split.train, &split.validation] {
        let c: HashSet<usize> = side.iter().map(|&i| classes[i]).collect();
        assert_eq!(c.len(), 2);
    }
    let frac = split.validation.len() as f64 / t.n_samples() as f64;
    assert!((0.1..0.3).contains(&frac), "validation fraction {frac}");
    assert_eq!(
        split,
        split_samples(t.n_samples(), 0.2, 42, Some(&groups), Some(&classes)).unwrap()
    );
    assert_ne!(
        split,
        split_samples(t.n_samples(), 0.2, 43, Some(&groups), Some(&classes)).unwrap()
    );
}

#[test]
fn stratified_split_counts_per_class() {
    // 10 of class 0, 20 of class 1: 20% → 2 and 4.
    let classes: Vec<usize> = (0..30).map(|i| usize::from(i >= 10)).collect();
    let s = split_samples(30, 0.2, 1, None, Some(&classes)).unwrap();
    let per = |c| s.validation.iter().filter(|&&i| classes[i] == c).count();
    assert_eq!((per(0), per(1)), (2, 4));
}

#[test]
fn two_groups_of_different_majority_class_still_split() {
    // Group a: mostly class 0, group b: mostly class 1. Each stratum holds one group.
    let groups: Vec<String> = (0..10)
        .map(|i| {
            if i < 5 {
                "a".to_string()
            } else {
                "b".to_string()
            }
        })
        .collect();
    let classes = [0, 0, 0, 1, 2, 1, 1, 1, 0, 2];
    let s = split_samples(10, 0.3, 3, Some(&groups), Some(&classes)).unwrap();
    assert_eq!(s.validation.len(), 5);
    assert_eq!(s.train.len(), 5);
    let vg: HashSet<&String> = s.validation.iter().map(|&i| &groups[i]).collect();
    assert_eq!(vg.len(), 1);
}

#[test]
fn split_round_trips_through_tsv_and_rejects_bad_fractions() {
    let ids: Vec<String> = (0..10).map(|i| format!("S{i}")).collect();
    let s = split_samples(10, 0.3, 5, None, None).unwrap();
    assert_eq!(s.validation.len(), 3);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("split.tsv");
    write_split_tsv(&p, &ids, &s).unwrap();
    assert_eq!(read_split_tsv(&p, &ids).unwrap(), s);
    assert_mentions(
        &read_split_tsv(&p, &ids[..5]).unwrap_err(),
        &["split.tsv", "'S5'", "not in the table"],
    );
    for f in [1.0, -0.1, f64::NAN] {
        assert_mentions(
            &split_samples(10, f, 0, None, None).unwrap_err(),
            &["--validation-fraction"],
        );
    }
    // 0: every sample trains (pretraining on the whole table), even with one group.
    let all = split_samples(10, 0.0, 0, Some(&vec!["g".to_string(); 10]), None).unwrap();
    assert_eq!((all.train, all.validation), ((0..10).collect(), Vec::new()));
    let one_group = vec!["g".to_string(); 10];
    assert_mentions(
        &split_samples(10, 0.2, 0, Some(&one_group), None).unwrap_err(),
        &["1 group(s)"],
    );
}

#[test]
fn batch_tensors_follow_batch_order() {
    let (t, m) = moving_pictures_with_unifrac();
    let targets: Vec<f32> = (0..t.n_samples()).map(|i| i as f32).collect();
    let ds = Dataset::new(
        t.clone(),
        150,
        16,
        TokenLimitPolicy::First,
        0,
        Some(m.clone()),
        Some(targets),
    )
    .unwrap();
    let order = [5usize, 0, 17];
    let b = ds.batch(&order, None, 0);
    let n_asv = order
        .iter()
        .map(|&s| t.sample_nnz(s).min(16))
        .max()
        .unwrap();
    assert_eq!(b.tokens.shape(), &[3, n_asv, 151]);
    assert_eq!(b.counts.shape(), &[3, n_asv]);
    assert_eq!(
        b.sample_ids,
        vec![
            t.sample_ids[5].clone(),
            t.sample_ids[0].clone(),
            t.sample_ids[17].clone()
        ]
    );
    let u = b.unifrac.as_ref().unwrap();
    assert_eq!(u[[0, 2]], m.get(5, 17) as f32);
    assert_eq!(u[[1, 1]], 0.0);
    assert_eq!(b.targets.as_ref().unwrap().to_vec(), vec![5.0, 0.0, 17.0]);
    // Slot 0 of sample 5 is its first ASV in table order.
    let (o, c) = t.sample(5).next().unwrap();
    assert_eq!(b.counts[[0, 0]], c as f32);
    assert_eq!(b.tokens[[0, 0, 0]], START as i64);
    let seq = t.observation_ids[o as usize].as_bytes();
    let expect = match seq[0] {
        b'A' => 1,
        b'C' => 2,
        b'G' => 3,
        b'T' => 4,
        _ => 0,
    };
    assert_eq!(b.tokens[[0, 0, 1]], expect);
    assert_eq!(b.tokens[[0, 0, 121]], 0, "120 bp then padding");
    // Mask marks exactly the filled slots.
    for (i, &s) in order.iter().enumerate() {
        let k = t.sample_nnz(s).min(16);
        for slot in 0..n_asv {
            assert_eq!(b.asv_mask[[i, slot]], slot < k);
            assert_eq!(b.tokens[[i, slot, 0]] == START as i64, slot < k);
        }
    }
    // Padding to a fixed size.
    assert_eq!(ds.batch(&order, Some(32), 0).tokens.shape(), &[3, 32, 151]);
}

#[test]
fn dataset_rejects_unaligned_matrix_and_zero_token_limit() {
    let t = tiny_table();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("u.h5");
    write_ssu_h5(
        &p,
        &["S3", "S2", "S1"],
        &[0.0, 0.1, 0.2, 0.1, 0.0, 0.3, 0.2, 0.3, 0.0],
    );
    let m = load_distance_matrix(&p, None, &t.sample_ids).unwrap();
    let err =
        Dataset::new(t.clone(), 10, 4, TokenLimitPolicy::First, 0, Some(m), None).unwrap_err();
    assert_mentions(&err, &["u.h5", "not aligned"]);
    assert_mentions(
        &Dataset::new(t, 10, 0, TokenLimitPolicy::First, 0, None, None).unwrap_err(),
        &["--token-limit"],
    );
}

#[test]
fn group_kfold_partitions_the_samples_and_keeps_groups_together() {
    use aam_data::split::group_kfold;
    // 10 samples of 5 subjects (sizes 3, 1, 2, 2, 2), 3 folds.
    let g: Vec<String> = ["a", "a", "a", "b", "c", "c", "d", "d", "e", "e"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let folds = group_kfold(10, 3, 9, Some(&g), None).unwrap();
    assert_eq!(folds.len(), 3);
    let mut seen = vec![0; 10];
    for f in &folds {
        assert_eq!(f.train.len() + f.validation.len(), 10);
        for &i in &f.validation {
            seen[i] += 1;
            assert!(f.train.iter().all(|&t| g[t] != g[i]), "group {} on both sides", g[i]);
        }
    }
    assert_eq!(seen, vec![1; 10], "each sample validates exactly once");
    let sizes: Vec<usize> = folds.iter().map(|f| f.validation.len()).collect();
    assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 3, "{sizes:?}");
    assert!(group_kfold(10, 6, 9, Some(&g), None).is_err(), "6 folds of 5 subjects");
    assert!(group_kfold(10, 1, 9, None, None).is_err());
    let singles = group_kfold(4, 4, 1, None, None).unwrap();
    assert!(singles.iter().all(|f| f.validation.len() == 1 && f.train.len() == 3));
}

#[test]
fn group_kfold_with_classes_gives_every_fold_each_class() {
    use aam_data::split::group_kfold;
    // 12 subjects of 2 samples; subjects 0–5 are class 0, 6–11 class 1.
    let g: Vec<String> = (0..24).map(|i| format!("s{}", i / 2)).collect();
    let c: Vec<usize> = (0..24).map(|i| usize::from(i >= 12)).collect();
    for seed in 0..20 {
        let folds = group_kfold(24, 3, seed, Some(&g), Some(&c)).unwrap();
        for f in &folds {
            let ones = f.validation.iter().filter(|&&i| c[i] == 1).count();
            assert_eq!((f.validation.len(), ones), (8, 4), "seed {seed}: {:?}", f.validation);
        }
    }
    // Without classes some seed puts one class alone in a fold (what stratifying prevents).
    let unbalanced = (0..20).any(|seed| {
        group_kfold(24, 3, seed, Some(&g), None)
            .unwrap()
            .iter()
            .any(|f| f.validation.iter().all(|&i| c[i] == c[f.validation[0]]))
    });
    assert!(unbalanced);
}
