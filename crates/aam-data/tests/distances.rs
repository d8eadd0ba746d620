//! Distance matrices: ssu HDF5, .npy + sidecar, labelled CSV/TSV, Faith PD; their
//! checks and alignment to the table's sample order.

mod common;

use aam_data::distance::{find_sidecar_ids, load_distance_matrix};
use aam_data::{load_faith_pd, load_table};
use common::*;

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A valid 3 × 3 matrix over a, b, c: d(a,b)=0.1, d(a,c)=0.2, d(b,c)=0.3.
const ABC: [f32; 9] = [0.0, 0.1, 0.2, 0.1, 0.0, 0.3, 0.2, 0.3, 0.0];

#[test]
fn shared_h5_and_npy_agree_and_follow_table_order() {
    for ds in ["moving-pictures", "circadian-ihc", "ibd-2538"] {
        let (t, _) = load_table(&shared(ds, "table.biom")).unwrap();
        let h5 = load_distance_matrix(&shared(ds, "unifrac_unweighted.h5"), None, &t.sample_ids)
            .unwrap();
        let npy = load_distance_matrix(&shared(ds, "unifrac_unweighted.npy"), None, &t.sample_ids)
            .unwrap();
        h5.validate(true).unwrap();
        assert!(
            npy.order_source.contains("unifrac_ids.txt"),
            "{}",
            npy.order_source
        );
        assert_eq!(h5.ids, npy.ids);
        assert_eq!(h5.values, npy.values);
        let (aligned, missing) = h5.align(&t.sample_ids, false).unwrap();
        assert!(missing.is_empty());
        assert_eq!(aligned.ids, t.sample_ids);
    }
}

#[test]
fn ssu_order_is_reordered_to_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("u.h5");
    // Stored in order c, a, b.
    let perm = [2usize, 0, 1];
    let stored: Vec<f32> = (0..9).map(|k| ABC[perm[k / 3] * 3 + perm[k % 3]]).collect();
    write_ssu_h5(&p, &["c", "a", "b"], &stored);
    let table_ids = ids(&["a", "b", "c"]);
    let m = load_distance_matrix(&p, None, &table_ids).unwrap();
    let (aligned, _) = m.align(&table_ids, false).unwrap();
    assert_eq!(
        aligned.values,
        ABC.iter().map(|&v| v as f64).collect::<Vec<_>>()
    );
    // The batch block follows the batch order: (c, a).
    let block = aligned.block(&[2, 0]);
    assert_eq!(block[[0, 1]], 0.2);
    assert_eq!(block[[1, 1]], 0.0);
}

#[test]
fn labelled_csv_matched_by_label_on_both_axes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.csv");
    // Rows b, a, c; columns c, a, b.
    std::fs::write(&p, ",c,a,b\nb,0.3,0.1,0\na,0.2,0,0.1\nc,0,0.2,0.3\n").unwrap();
    let table_ids = ids(&["a", "b", "c"]);
    let (aligned, _) = load_distance_matrix(&p, None, &table_ids)
        .unwrap()
        .align(&table_ids, false)
        .unwrap();
    let expect: Vec<f64> = ABC.iter().map(|&v| v as f64).collect();
    for (x, y) in aligned.values.iter().zip(&expect) {
        assert!((x - y).abs() < 1e-7, "{x} vs {y}");
    }
}

#[test]
fn npy_sidecar_lookup_and_explicit_ids() {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("unifrac_unweighted.npy");
    ndarray_npy::write_npy(
        &npy,
        &ndarray::Array2::from_shape_vec((3, 3), ABC.to_vec()).unwrap(),
    )
    .unwrap();
    // No sidecar: table order, with a size check.
    assert!(find_sidecar_ids(&npy).is_none());
    let err = load_distance_matrix(&npy, None, &ids(&["a", "b"])).unwrap_err();
    assert_mentions(
        &err,
        &[
            "unifrac_unweighted.npy",
            "3 rows",
            "2 samples",
            "--unifrac-ids",
        ],
    );
    // Prefix sidecar.
    std::fs::write(dir.path().join("unifrac_ids.txt"), "c\nb\na\n").unwrap();
    assert_eq!(
        find_sidecar_ids(&npy).unwrap(),
        dir.path().join("unifrac_ids.txt")
    );
    let m = load_distance_matrix(&npy, None, &ids(&["a", "b", "c"])).unwrap();
    assert_eq!(m.ids, ids(&["c", "b", "a"]));
    // An ID file of the wrong length.
    let bad = dir.path().join("two.txt");
    std::fs::write(&bad, "a\nb\n").unwrap();
    assert_mentions(
        &load_distance_matrix(&npy, Some(&bad), &[]).unwrap_err(),
        &["two.txt", "2 sample IDs", "3 × 3"],
    );
}

#[test]
fn float64_npy_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("d.npy");
    let v: Vec<f64> = ABC.iter().map(|&x| x as f64).collect();
    ndarray_npy::write_npy(
        &npy,
        &ndarray::Array2::from_shape_vec((3, 3), v.clone()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        load_distance_matrix(&npy, None, &ids(&["a", "b", "c"]))
            .unwrap()
            .values,
        v
    );
}

fn matrix_with(dir: &tempfile::TempDir, name: &str, values: [f32; 9]) -> std::path::PathBuf {
    let p = dir.path().join(name);
    write_ssu_h5(&p, &["a", "b", "c"], &values);
    p
}

#[test]
fn matrix_checks_name_the_file_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    let abc = ids(&["a", "b", "c"]);
    let mut asym = ABC;
    asym[1] = 0.15;
    let mut hollow = ABC;
    hollow[4] = 0.5;
    let mut nan = ABC;
    nan[5] = f32::NAN;
    nan[7] = f32::NAN;
    let mut range = ABC;
    range[2] = 1.5;
    range[6] = 1.5;
    let cases: [(&str, [f32; 9], &[&str]); 4] = [
        ("asym.h5", asym, &["asym.h5", "not symmetric", "'a'", "'b'"]),
        (
            "hollow.h5",
            hollow,
            &["hollow.h5", "diagonal", "'b'", "hollow"],
        ),
        ("nan.h5", nan, &["nan.h5", "'b'", "'c'", "NaN", "finite"]),
        (
            "range.h5",
            range,
            &["range.h5", "'a'", "'c'", "outside [0, 1]"],
        ),
    ];
    for (name, values, needles) in cases {
        let m = load_distance_matrix(&matrix_with(&dir, name, values), None, &abc).unwrap();
        assert_mentions(&m.validate(true).unwrap_err(), needles);
    }
    // Out-of-range values are fine for non-UniFrac distances.
    let m = load_distance_matrix(&matrix_with(&dir, "r2.h5", range), None, &abc).unwrap();
    m.validate(false).unwrap();
}

#[test]
fn non_square_and_unsupported_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rect.h5");
    let mut b = hdf5_pure::FileBuilder::new();
    b.create_dataset("matrix")
        .with_f32_data(&[0.0; 6])
        .with_shape(&[2, 3]);
    b.write(&p).unwrap();
    assert_mentions(
        &load_distance_matrix(&p, None, &[]).unwrap_err(),
        &["rect.h5", "[2, 3]", "square"],
    );
    let q = dir.path().join("m.parquet");
    std::fs::write(&q, b"x").unwrap();
    assert_mentions(
        &load_distance_matrix(&q, None, &[]).unwrap_err(),
        &["m.parquet", "unsupported"],
    );
    let c = dir.path().join("rect.csv");
    std::fs::write(&c, ",a,b\na,0,1\n").unwrap();
    assert_mentions(
        &load_distance_matrix(&c, None, &[]).unwrap_err(),
        &["rect.csv", "'b'"],
    );
}

#[test]
fn missing_samples_are_counted_and_named_or_subset() {
    let dir = tempfile::tempdir().unwrap();
    let p = matrix_with(&dir, "u.h5", ABC);
    let table: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|s| s.to_string())
        .chain((0..12).map(|i| format!("x{i}")))
        .collect();
    let m = load_distance_matrix(&p, None, &table).unwrap();
    let err = m.align(&table, false).unwrap_err();
    assert_mentions(
        &err,
        &[
            "u.h5",
            "12 of the table's 15 samples",
            "x0",
            "x9",
            "and 2 more",
            "--allow-sample-subset",
        ],
    );
    assert!(!err.to_string().contains("x10,"), "at most ten names");
    let (aligned, missing) = m.align(&table, true).unwrap();
    assert_eq!(aligned.ids, ids(&["a", "b", "c"]));
    assert_eq!(missing.len(), 12);
}

#[test]
fn faith_pd_tsv_and_npy() {
    let (t, _) = load_table(&shared("moving-pictures", "table.biom")).unwrap();
    let fp = load_faith_pd(&shared("moving-pictures", "faith_pd.tsv"), &t.sample_ids).unwrap();
    let v = fp.aligned(&t.sample_ids).unwrap();
    let (min, max) = v
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    assert!(
        (min - 4.14).abs() < 0.01 && (max - 37.71).abs() < 0.01,
        "SOURCE.md: 4.1–37.7, got {min}–{max}"
    );
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("fp.npy");
    ndarray_npy::write_npy(&npy, &ndarray::Array1::from(vec![1.5f32, 2.0])).unwrap();
    let ab = ids(&["a", "b"]);
    assert_eq!(
        load_faith_pd(&npy, &ab).unwrap().aligned(&ab).unwrap(),
        vec![1.5, 2.0]
    );
    assert_mentions(
        &load_faith_pd(&npy, &ids(&["a"])).unwrap_err(),
        &["fp.npy", "2 values", "1 samples"],
    );
    let neg = dir.path().join("neg.tsv");
    std::fs::write(&neg, "sample_id\tfaith_pd\na\t-1\n").unwrap();
    assert_mentions(
        &load_faith_pd(&neg, &ab).unwrap_err(),
        &["neg.tsv", "'a'", "-1"],
    );
    let part = dir.path().join("part.tsv");
    std::fs::write(&part, "sample_id\tfaith_pd\na\t1\n").unwrap();
    assert_mentions(
        &load_faith_pd(&part, &ab).unwrap().aligned(&ab).unwrap_err(),
        &["part.tsv", "1 of the table's samples", "b"],
    );
}
