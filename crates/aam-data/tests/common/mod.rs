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

/// How strings are stored in a written BIOM HDF5.
#[derive(Clone, Copy)]
pub enum Strings {
    Vlen,
    Fixed,
}

/// Writes `table` as BIOM 2.1 HDF5. `with_csc`: include `sample/matrix`; the CSR
/// `observation/matrix` is always written.
pub fn write_biom_h5(path: &Path, table: &FeatureTable, with_csc: bool, strings: Strings) {
    let mut b = FileBuilder::new();
    // CSR by observation.
    let n_o = table.n_asv();
    let mut rows: Vec<Vec<(i64, f64)>> = vec![Vec::new(); n_o];
    for s in 0..table.n_samples() {
        for (o, c) in table.sample(s) {
            rows[o as usize].push((s as i64, c));
        }
    }
    let mut csr = (vec![0i64], Vec::new(), Vec::new());
    for r in rows {
        for (s, c) in r {
            csr.1.push(s);
            csr.2.push(c);
        }
        csr.0.push(csr.1.len() as i64);
    }
    let put_ids = |g: &mut hdf5_pure::GroupBuilder, ids: &[String]| {
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        match strings {
            Strings::Vlen => {
                g.create_dataset("ids").with_vlen_strings(&refs);
            }
            Strings::Fixed => {
                g.create_dataset("ids").with_ascii_strings(&refs).unwrap();
            }
        }
    };
    let mut obs = b.create_group("observation");
    put_ids(&mut obs, &table.observation_ids);
    let mut m = obs.create_group("matrix");
    m.create_dataset("indptr").with_i64_data(&csr.0);
    m.create_dataset("indices").with_i64_data(&csr.1);
    m.create_dataset("data").with_f64_data(&csr.2);
    obs.add_group(m.finish());
    b.add_group(obs.finish());
    let mut smp = b.create_group("sample");
    put_ids(&mut smp, &table.sample_ids);
    if with_csc {
        let mut m = smp.create_group("matrix");
        let indptr: Vec<i64> = table.indptr.iter().map(|&v| v as i64).collect();
        let indices: Vec<i64> = table.indices.iter().map(|&v| v as i64).collect();
        m.create_dataset("indptr").with_i64_data(&indptr);
        m.create_dataset("indices").with_i64_data(&indices);
        m.create_dataset("data").with_f64_data(&table.values);
        smp.add_group(m.finish());
    }
    b.add_group(smp.finish());
    b.write(path).unwrap();
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
