//! Shared fixtures: paths into `../shared/data` and writers of small BIOM / ssu files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use aam_data::FeatureTable;
use hdf5_pure::FileBuilder;

/// `shared/data/<dataset>/<file>`.
pub fn shared(dataset: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(dataset)
        .join(file)
}

/// moving-pictures' table and its unweighted UniFrac matrix aligned to it.
pub fn moving_pictures_with_unifrac() -> (FeatureTable, aam_data::DistanceMatrix) {
    let (t, _) = aam_data::load_table(&shared("moving-pictures", "table.biom")).unwrap();
    let m = aam_data::load_distance_matrix(
        &shared("moving-pictures", "unifrac_unweighted.h5"),
        None,
        &t.sample_ids,
    )
    .unwrap();
    let (m, _) = m.align(&t.sample_ids, false).unwrap();
    (t, m)
}

/// A small hand-made table: 3 samples × 4 ASVs.
pub fn tiny_table() -> FeatureTable {
    FeatureTable::from_triplets(
        Path::new("tiny"),
        vec!["S1".into(), "S2".into(), "S3".into()],
        vec![
            "ACGT".into(),
            "GGGA".into(),
            "TTNA".into(),
            "acgtacgt".into(),
        ],
        vec![
            (0, 0, 5.0),
            (0, 1, 3.0),
            (1, 1, 10.0),
            (1, 3, 2.0),
            (2, 0, 1.0),
            (2, 2, 7.0),
            (2, 3, 7.0),
        ],
    )
    .unwrap()
}

/// Writes an ssu-layout distance matrix (`matrix` float32 [n, n], `order` vlen strings).
pub fn write_ssu_h5(path: &Path, ids: &[&str], values: &[f32]) {
    let mut b = FileBuilder::new();
    b.create_dataset("matrix")
        .with_f32_data(values)
        .with_shape(&[ids.len() as u64, ids.len() as u64]);
    b.create_dataset("order").with_vlen_strings(ids);
    b.write(path).unwrap();
}

/// Asserts that `err`'s message contains every needle.
pub fn assert_mentions(err: &impl std::fmt::Display, needles: &[&str]) {
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "error message lacks '{n}':\n{msg}");
    }
}
