//! The model shipped in `models/circadian-exposure` predicts the shipped table exactly as
//! recorded in its `predictions.tsv` (tract and Burn), and the burn-import round-trip
//! fixtures (`tests/burn-import-roundtrip/fixtures`) are its current outputs; streamed
//! in chunks of samples (`--streaming`), the table gives the same predictions.
//! `AAM_UPDATE_FIXTURES=1` rewrites the fixtures after the shipped model changes.

use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::{s, Array2, Array3, ArrayD};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn predict(backend: &str) -> String {
    predict_with(&["--backend", backend])
}

fn predict_with(extra: &[&str]) -> String {
    predict_model("models/circadian-exposure", extra)
}

fn predict_model(model: &str, extra: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_aam"))
        .args(["predict", "--model"])
        .arg(repo(model))
        .arg("--table")
        .arg(repo("data/circadian-ihc/table.biom"))
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// Same rows, same text cells, numbers within 1e-5.
fn assert_same_table(got: &str, want: &str) {
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    assert_eq!(g.len(), w.len(), "row count");
    assert_eq!(g[0], w[0], "header");
    for (gl, wl) in g.iter().zip(&w).skip(1) {
        for (gc, wc) in gl.split('\t').zip(wl.split('\t')) {
            match (gc.parse::<f64>(), wc.parse::<f64>()) {
                (Ok(a), Ok(b)) => assert!((a - b).abs() <= 1e-5, "{gl}\nvs\n{wl}"),
                _ => assert_eq!(gc, wc, "{gl}\nvs\n{wl}"),
            }
        }
    }
}

#[test]
fn shipped_model_reproduces_its_recorded_predictions() {
    let want = std::fs::read_to_string(repo("models/circadian-exposure/predictions.tsv")).unwrap();
    assert_same_table(&predict("tract"), &want);
    assert_same_table(&predict("burn"), &want);
    assert_eq!(want.lines().count(), 1 + 46);
}

/// The k-mer, abundance-pooling and count-embedding model shipped beside it reads the
/// table's counts (a second input) and reproduces its predictions on every backend.
#[test]
fn shipped_kmer_abundance_model_reproduces_its_recorded_predictions() {
    let model = "models/circadian-exposure-kmer-abundance";
    let want = std::fs::read_to_string(repo(&format!("{model}/predictions.tsv"))).unwrap();
    for extra in [&["--backend", "tract"][..], &["--backend", "burn"], &["--single-graph"]] {
        assert_same_table(&predict_model(model, extra), &want);
    }
    assert_eq!(want.lines().count(), 1 + 46);
}

#[test]
fn streaming_in_chunks_predicts_what_the_whole_table_does() {
    let want = std::fs::read_to_string(repo("models/circadian-exposure/predictions.tsv")).unwrap();
    // 46 samples in chunks of 7: six full chunks and one of 4.
    assert_same_table(
        &predict_with(&["--streaming", "--chunk-samples", "7"]),
        &want,
    );
    let o = Command::new(env!("CARGO_BIN_EXE_aam"))
        .args(["predict", "--streaming", "--table"])
        .arg(repo("tests/capi/tiny_table.tsv"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("tiny_table.tsv") && err.contains("BIOM 2.1 HDF5"),
        "{err}"
    );
}

fn write_or_compare<D: ndarray::Dimension>(
    dir: &Path,
    name: &str,
    a: &ndarray::Array<f32, D>,
    update: bool,
) {
    let path = dir.join(format!("{name}.npy"));
    if update {
        ndarray_npy::write_npy(&path, a).unwrap();
        return;
    }
    let want: ArrayD<f32> = ndarray_npy::read_npy(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (AAM_UPDATE_FIXTURES=1 writes it)", path.display()));
    assert_eq!(a.shape(), want.shape(), "{name}");
    let diff = a
        .iter()
        .zip(want.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(
        diff <= 1e-5,
        "{name}: fixture differs by {diff}; the shipped model changed (AAM_UPDATE_FIXTURES=1)"
    );
}

#[test]
fn burn_import_fixtures_are_the_shipped_models_outputs() {
    let update = std::env::var_os("AAM_UPDATE_FIXTURES").is_some();
    let dir = repo("tests/burn-import-roundtrip/fixtures");
    let model = aam_runtime::Model::load(repo("models/circadian-exposure")).unwrap();
    let (table, _) = aam_data::load_table(&repo("data/circadian-ihc/table.biom")).unwrap();
    let prepared = aam_runtime::prepare_table(table, model.config(), "table").unwrap();
    // Three real samples (first 20 ASV slots, one slot blanked) and an all-padding sample.
    let real = prepared.dataset.batch(&[0, 1, 2], None, 0).tokens;
    let (l, s_real) = (real.dim().2, 20);
    let mut tokens = Array3::<i64>::zeros((4, s_real, l));
    tokens
        .slice_mut(s![0..3, .., ..])
        .assign(&real.slice(s![.., 0..s_real, ..]));
    tokens.slice_mut(s![1, 7, ..]).fill(0);
    if update {
        ndarray_npy::write_npy(dir.join("tokens.npy"), &tokens).unwrap();
    } else {
        let want: Array3<i64> = ndarray_npy::read_npy(dir.join("tokens.npy")).unwrap();
        assert_eq!(tokens, want, "tokens fixture");
    }
    let out = model.run(tokens.view()).unwrap();
    write_or_compare(&dir, "embeddings", &out.embeddings, update);
    let target: Array2<f32> = out.target_prediction.unwrap();
    write_or_compare(&dir, "target_prediction", &target, update);
    write_or_compare(
        &dir,
        "class_probabilities",
        &out.class_probabilities.unwrap(),
        update,
    );
    write_or_compare(
        &dir,
        "count_prediction",
        &out.count_prediction.unwrap(),
        update,
    );
}
