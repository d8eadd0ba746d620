//! Malformed tables: each error names the file and the offending sample/ASV.

mod common;

use aam_data::biom::load_table;
use common::*;

fn write(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, content).unwrap();
    p
}

#[test]
fn missing_file() {
    let err = load_table(std::path::Path::new("/nonexistent/table.biom")).unwrap_err();
    assert_mentions(&err, &["/nonexistent/table.biom", "readable"]);
}

#[test]
fn truncated_hdf5() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(shared("moving-pictures", "table.biom")).unwrap();
    let p = write(&dir, "cut.biom", &full[..full.len() / 3]);
    let err = load_table(&p).unwrap_err();
    assert_mentions(&err, &["cut.biom", "BIOM 2.1 HDF5", "biom convert"]);
}

#[test]
fn duplicate_asv_ids() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "dup.tsv", b"#OTU ID\tS1\nACGT\t1\nACGT\t2\n");
    assert_mentions(
        &load_table(&p).unwrap_err(),
        &["dup.tsv", "duplicate ASV", "ACGT"],
    );
}

#[test]
fn duplicate_sample_ids() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "dups.tsv", b"#OTU ID\tS1\tS1\nACGT\t1\t2\n");
    assert_mentions(
        &load_table(&p).unwrap_err(),
        &["dups.tsv", "duplicate sample", "S1"],
    );
}

#[test]
fn negative_count_names_sample_and_asv() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "neg.tsv", b"#OTU ID\tS1\tS2\nACGT\t1\t-2\n");
    assert_mentions(
        &load_table(&p).unwrap_err(),
        &["neg.tsv", "S2", "ACGT", "-2"],
    );
}

#[test]
fn non_numeric_count() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "txt.tsv", b"#OTU ID\tS1\nACGT\tmany\n");
    assert_mentions(
        &load_table(&p).unwrap_err(),
        &["txt.tsv", "line 2", "S1", "many"],
    );
}

#[test]
fn nan_count_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "nan.json",
        br#"{"matrix_type": "sparse", "shape": [1, 1], "data": [[0, 0, "x"]], "rows": [{"id": "ACGT"}], "columns": [{"id": "S1"}]}"#,
    );
    assert_mentions(&load_table(&p).unwrap_err(), &["nan.json", "data[0] value"]);
}

#[test]
fn json_shape_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "shape.json", br#"{"matrix_type": "sparse", "shape": [2, 1], "data": [], "rows": [{"id": "ACGT"}], "columns": [{"id": "S1"}]}"#);
    assert_mentions(&load_table(&p).unwrap_err(), &["shape.json", "shape"]);
}

#[test]
fn empty_table() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "empty.tsv", b"#OTU ID\tS1\n");
    assert_mentions(
        &load_table(&p).unwrap_err(),
        &["empty.tsv", "empty", "0 ASVs"],
    );
}

#[test]
fn not_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "notes.txt", b"hello world\n");
    assert_mentions(&load_table(&p).unwrap_err(), &["notes.txt", "#OTU ID"]);
}

#[test]
fn ragged_tsv_row() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "ragged.tsv", b"#OTU ID\tS1\tS2\nACGT\t1\n");
    assert_mentions(
        &load_table(&p).unwrap_err(),
        &["ragged.tsv", "line 2", "ACGT", "1 counts for 2 samples"],
    );
}
