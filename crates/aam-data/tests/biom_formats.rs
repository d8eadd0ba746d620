//! BIOM 2.1 HDF5, BIOM 1.0 JSON (sparse and dense) and TSV load to identical tables.

mod common;

use aam_data::biom::{load_table, BiomFormat};
use common::*;

#[test]
fn moving_pictures_three_formats_are_identical() {
    let (h5, f1) = load_table(&shared("moving-pictures", "table.biom")).unwrap();
    let (json, f2) = load_table(&shared("moving-pictures", "table.json.biom")).unwrap();
    let (tsv, f3) = load_table(&shared("moving-pictures", "table.tsv")).unwrap();
    assert_eq!(
        (f1, f2, f3),
        (BiomFormat::Hdf5, BiomFormat::Json, BiomFormat::Tsv)
    );
    // Counts from SOURCE.md.
    assert_eq!((h5.n_samples(), h5.n_asv(), h5.nnz()), (34, 770, 2327));
    assert_eq!(h5.total(), 153_807.0);
    assert!(h5.observation_ids.iter().all(|s| s.len() == 120));
    assert_eq!(h5, json);
    assert_eq!(h5, tsv);
}

#[test]
fn source_md_counts_of_every_dataset() {
    for (ds, n_s, n_o, nnz) in [
        ("circadian-ihc", 46, 500, 5233),
        ("ibd-2538", 449, 9946, 77_700),
    ] {
        let (t, _) = load_table(&shared(ds, "table.biom")).unwrap();
        assert_eq!((t.n_samples(), t.n_asv(), t.nnz()), (n_s, n_o, nnz), "{ds}");
    }
    let (ibd, _) = load_table(&shared("ibd-2538", "table.biom")).unwrap();
    let d = ibd.depths();
    let min = d.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = d.iter().cloned().fold(0.0, f64::max);
    assert_eq!((min, max), (1006.0, 259_248.0));
    assert_eq!(
        ibd.sample_ids[7], "2538.1000110",
        "numeric-looking IDs stay strings (a float would drop the trailing 0)"
    );
}

#[test]
fn csr_only_and_fixed_length_strings_hdf5() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny_table();
    for (sample_matrix, fixed_length_ids) in [(false, false), (true, true), (false, true)] {
        let p = dir.path().join("t.biom");
        let layout = aam_data::biom::Hdf5Layout {
            sample_matrix,
            fixed_length_ids,
        };
        aam_data::biom::write_hdf5(&p, &t, layout).unwrap();
        let (back, fmt) = load_table(&p).unwrap();
        assert_eq!(fmt, BiomFormat::Hdf5);
        assert_eq!(back, t);
    }
}

#[test]
fn dense_json_equals_sparse() {
    let dir = tempfile::tempdir().unwrap();
    let dense = r#"{"id": "x", "format": "Biological Observation Matrix 1.0.0", "type": "OTU table",
        "matrix_type": "dense", "shape": [2, 3],
        "data": [[1, 0, 2], [0, 0, 4]],
        "rows": [{"id": "ACGT", "metadata": null}, {"id": "TTTT", "metadata": null}],
        "columns": [{"id": "a", "metadata": null}, {"id": "b", "metadata": null}, {"id": "c", "metadata": null}]}"#;
    let sparse = dense.replace(r#""dense""#, r#""sparse""#).replace(
        "[[1, 0, 2], [0, 0, 4]]",
        "[[0, 0, 1], [0, 2, 2], [1, 2, 4]]",
    );
    let (p1, p2) = (dir.path().join("d.json"), dir.path().join("s.json"));
    std::fs::write(&p1, dense).unwrap();
    std::fs::write(&p2, sparse).unwrap();
    let (d, _) = load_table(&p1).unwrap();
    let (s, _) = load_table(&p2).unwrap();
    assert_eq!(d, s);
    assert_eq!(d.sample(2).collect::<Vec<_>>(), vec![(0, 2.0), (1, 4.0)]);
    assert_eq!(d.sample_nnz(1), 0);
}

#[test]
fn tsv_with_taxonomy_column_and_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.tsv");
    std::fs::write(&p, "# Constructed from biom file\r\n#OTU ID\tS1\tS2\ttaxonomy\r\nACGT\t1.0\t0\tk__Bacteria\r\nGGCC\t0\t3\tk__Bacteria\r\n").unwrap();
    let (t, fmt) = load_table(&p).unwrap();
    assert_eq!(fmt, BiomFormat::Tsv);
    assert_eq!(t.sample_ids, vec!["S1", "S2"]);
    assert_eq!(t.sample(1).collect::<Vec<_>>(), vec![(1, 3.0)]);
}
