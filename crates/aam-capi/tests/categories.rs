//! A model conditioned on a metadata category through the C ABI:
//! `aam_predict_biom_metadata` reads each sample's value from a metadata TSV and gives
//! the values of the runtime fed the same categories; a different category gives a
//! different value; no metadata, or metadata without the model's column, is refused
//! with `AAM_STATUS_INVALID_ARGUMENT` and a message naming the column. From tokens,
//! `aam_predict_tokens_categories` takes the indices that `aam_model_category_index`
//! gives each label, and its values are the model's raw outputs inverted.

mod common;

use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::ptr;

use aam::categories::{
    aam_model_categorical_column, aam_model_categorical_column_count, aam_model_category_index,
    aam_predict_tokens_categories,
};
use aam::model::{aam_model_free, aam_model_load_from_memory, AamModel};
use aam::predictions::{
    aam_predict_biom, aam_predict_biom_metadata, aam_predict_tokens, aam_predictions_count,
    aam_predictions_free, aam_predictions_values, AamPredictions, AAM_DTYPE_I64,
};
use aam::status::{aam_last_error, AamStatus};
use aam_config::{CategoricalFusion, CheckpointConfig, TargetInfo};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh regressor conditioned on `site` (labels gut, skin; gmu fusion): its
/// configuration and exported `model.onnx` bytes.
fn export() -> (CheckpointConfig, Vec<u8>) {
    let mut model = common::tiny_config();
    model.head.categorical_cardinalities = [("site".to_string(), 3)].into();
    model.head.categorical_fusion = CategoricalFusion::Gmu;
    let target = TargetInfo {
        categories: [(
            "site".to_string(),
            vec!["gut".to_string(), "skin".to_string()],
        )]
        .into(),
        ..common::numeric_target("age", 40.0, 10.0)
    };
    common::export_predictor(model, target)
}

fn values(p: *mut AamPredictions) -> Vec<f64> {
    let mut n = 0usize;
    assert_eq!(unsafe { aam_predictions_count(p, &mut n) }, AamStatus::Ok);
    let (mut v, mut has) = (ptr::null(), ptr::null());
    assert_eq!(
        unsafe { aam_predictions_values(p, &mut v, &mut has) },
        AamStatus::Ok
    );
    let out = unsafe { std::slice::from_raw_parts(v, n) }.to_vec();
    unsafe { aam_predictions_free(p) };
    out
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(aam_last_error()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn predict_biom_metadata_feeds_each_samples_category() {
    let (_, bytes) = export();
    let mut model: *mut AamModel = ptr::null_mut();
    let status =
        unsafe { aam_model_load_from_memory(bytes.as_ptr(), bytes.len(), ptr::null(), &mut model) };
    assert_eq!(status, AamStatus::Ok);
    let table_path = repo().join("data/circadian-ihc/table.biom");
    let (table, _) = aam_data::load_table(&table_path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Samples 0..10 gut, 10..20 skin, the rest absent from the metadata (unknown).
    let write = |name: &str, header: &str, first: &str, second: &str| {
        let mut text = format!("sample_id\t{header}\n");
        for (i, s) in table.sample_ids.iter().enumerate().take(20) {
            text += &format!("{s}\t{}\n", if i < 10 { first } else { second });
        }
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        CString::new(path.to_str().unwrap()).unwrap()
    };
    let table_c = CString::new(table_path.to_str().unwrap()).unwrap();
    let predict = |metadata: &CString| {
        let mut out = ptr::null_mut();
        let status = unsafe {
            aam_predict_biom_metadata(model, table_c.as_ptr(), metadata.as_ptr(), &mut out)
        };
        assert_eq!(status, AamStatus::Ok, "{}", last_error());
        values(out)
    };
    let got = predict(&write("md.tsv", "site", "gut", "skin"));

    // The runtime fed the same categories (it equals Burn: crates/aam-cli/tests/train_cli.rs).
    let runtime = aam_runtime::Model::from_bytes(&bytes, std::path::Path::new("m.onnx")).unwrap();
    let mut categories = aam_runtime::SampleCategories::new("metadata", ["site".to_string()]);
    for (i, s) in table.sample_ids.iter().enumerate().take(20) {
        categories.insert(s, "site", if i < 10 { "gut" } else { "skin" });
    }
    let want = runtime
        .predict_table_with_categories(
            table.clone(),
            "t",
            aam_runtime::PredictOptions::default(),
            Some(&categories),
        )
        .unwrap();
    assert_eq!(got.len(), want.samples.len());
    for (g, w) in got.iter().zip(&want.samples) {
        let w = w.value.unwrap();
        assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{g} vs {w}");
    }
    // Swapping the sites moves the first 20 samples' values, not the others'.
    let swapped = predict(&write("swapped.tsv", "site", "skin", "gut"));
    assert!(
        got[..20]
            .iter()
            .zip(&swapped[..20])
            .all(|(a, b)| (a - b).abs() > 1e-9),
        "{got:?} vs {swapped:?}"
    );
    assert_eq!(got[20..], swapped[20..]);

    // No metadata, or metadata without the column: refused, naming it.
    let mut out = ptr::null_mut();
    let status = unsafe { aam_predict_biom(model, table_c.as_ptr(), &mut out) };
    assert_eq!(status, AamStatus::InvalidArgument);
    assert!(out.is_null());
    assert!(
        last_error().contains("conditioned on the metadata categories site"),
        "{}",
        last_error()
    );
    let other = write("other.tsv", "body-site", "gut", "skin");
    let status =
        unsafe { aam_predict_biom_metadata(model, table_c.as_ptr(), other.as_ptr(), &mut out) };
    assert_eq!(status, AamStatus::InvalidArgument);
    assert!(
        last_error().contains("no column 'site'"),
        "{}",
        last_error()
    );
    unsafe { aam_model_free(model) };
}

#[test]
fn tokens_with_category_indices() {
    let (_, bytes) = export();
    let mut model: *mut AamModel = ptr::null_mut();
    let status =
        unsafe { aam_model_load_from_memory(bytes.as_ptr(), bytes.len(), ptr::null(), &mut model) };
    assert_eq!(status, AamStatus::Ok);
    let mut n = 0usize;
    assert_eq!(
        unsafe { aam_model_categorical_column_count(model, &mut n) },
        AamStatus::Ok
    );
    assert_eq!(n, 1);
    let mut name = ptr::null();
    assert_eq!(
        unsafe { aam_model_categorical_column(model, 0, &mut name) },
        AamStatus::Ok
    );
    assert_eq!(unsafe { CStr::from_ptr(name) }.to_str().unwrap(), "site");
    assert_eq!(
        unsafe { aam_model_categorical_column(model, 1, &mut name) },
        AamStatus::InvalidArgument
    );
    let index = |column: &str, label: &str| {
        let (c, l) = (CString::new(column).unwrap(), CString::new(label).unwrap());
        let mut k = -1i64;
        let status = unsafe { aam_model_category_index(model, c.as_ptr(), l.as_ptr(), &mut k) };
        (status, k)
    };
    // Labels in sorted order from 1; a label training never saw is 0.
    assert_eq!(index("site", "gut"), (AamStatus::Ok, 1));
    assert_eq!(index("site", "skin"), (AamStatus::Ok, 2));
    assert_eq!(index("site", "volcano"), (AamStatus::Ok, 0));
    assert_eq!(index("host", "gut").0, AamStatus::InvalidArgument);
    assert!(last_error().contains("'host'") && last_error().contains("site"), "{}", last_error());

    // Two samples with the same two ASVs (width max bp + 1 = 11), gut and skin.
    let row: Vec<i64> = (0..11).map(|k| if k == 0 { 5 } else { 1 + (k % 4) }).collect();
    let tokens: Vec<i64> = row.iter().chain(&row).chain(&row).chain(&row).copied().collect();
    let ids = [index("site", "gut").1, index("site", "skin").1];
    let predict = |ids: &[i64], n_columns: usize| {
        let mut out = ptr::null_mut();
        let status = unsafe {
            aam_predict_tokens_categories(
                model,
                tokens.as_ptr().cast(),
                AAM_DTYPE_I64,
                2,
                2,
                11,
                ptr::null(),
                ids.as_ptr(),
                n_columns,
                &mut out,
            )
        };
        (status, out)
    };
    let (status, out) = predict(&ids, 1);
    assert_eq!(status, AamStatus::Ok, "{}", last_error());
    let got = values(out);
    // The model's raw outputs for the same indices, z-score inverted (mean 40, std 10).
    let runtime = aam_runtime::Model::from_bytes(&bytes, std::path::Path::new("m.onnx")).unwrap();
    let t = ndarray::Array3::from_shape_vec((2, 2, 11), tokens.clone()).unwrap();
    let i = ndarray::Array2::from_shape_vec((2, 1), ids.to_vec()).unwrap();
    let raw = runtime
        .run_with_categories(t.view(), None, i.view())
        .unwrap()
        .target_prediction
        .unwrap();
    for (g, z) in got.iter().zip(raw.column(0)) {
        let w = f64::from(*z) * 10.0 + 40.0;
        assert!((g - w).abs() <= 1e-9 * w.abs(), "{g} vs {w}");
    }
    assert!((got[0] - got[1]).abs() > 1e-9, "gut and skin give {got:?}");
    // Another width, an index outside the column, or no indices at all: refused.
    assert_eq!(predict(&[1, 1, 1, 1], 2).0, AamStatus::InvalidArgument);
    assert_eq!(predict(&[1, 3], 1).0, AamStatus::InvalidArgument);
    let mut out = ptr::null_mut();
    let status =
        unsafe { aam_predict_tokens(model, tokens.as_ptr().cast(), AAM_DTYPE_I64, 2, 2, 11, &mut out) };
    assert_eq!(status, AamStatus::InvalidArgument);
    assert!(out.is_null());
    unsafe { aam_model_free(model) };
}
