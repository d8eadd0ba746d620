//! `aam_predict_table` reads a QIIME 2 `table.qza` whose feature IDs are MD5 hashes with
//! its `rep-seqs.qza`, and predicts each sample as `aam_predict_biom` does from the
//! exported BIOM table (`shared/data/moving-pictures`, whose IDs were replaced the same
//! way); without the sequences it is refused, saying to give them.

mod common;

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::ptr;

use aam::model::{aam_model_free, aam_model_load_from_memory, AamModel};
use aam::predictions::{
    aam_predict_biom, aam_predict_table, aam_predictions_count, aam_predictions_free,
    aam_predictions_sample_id, aam_predictions_values, AamPredictions,
};
use aam::status::{aam_last_error, AamStatus};

fn shared(file: &str) -> CString {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/moving-pictures")
        .join(file);
    CString::new(p.to_str().unwrap()).unwrap()
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(aam_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Sample ID → predicted value, then frees `p`.
fn by_sample(p: *mut AamPredictions) -> HashMap<String, f64> {
    let mut n = 0usize;
    assert_eq!(unsafe { aam_predictions_count(p, &mut n) }, AamStatus::Ok);
    let (mut v, mut has) = (ptr::null(), ptr::null());
    assert_eq!(
        unsafe { aam_predictions_values(p, &mut v, &mut has) },
        AamStatus::Ok
    );
    let values = unsafe { std::slice::from_raw_parts(v, n) };
    let mut out = HashMap::new();
    for (i, value) in values.iter().enumerate() {
        let mut id = ptr::null();
        assert_eq!(
            unsafe { aam_predictions_sample_id(p, i, &mut id) },
            AamStatus::Ok
        );
        let id = unsafe { CStr::from_ptr(id) }.to_string_lossy().into_owned();
        out.insert(id, *value);
    }
    unsafe { aam_predictions_free(p) };
    out
}

#[test]
fn a_hashed_artifact_with_its_sequences_predicts_as_the_exported_table() {
    let (_, bytes) = common::export_predictor(
        common::tiny_config(),
        common::numeric_target("age", 40.0, 10.0),
    );
    let mut model: *mut AamModel = ptr::null_mut();
    let status =
        unsafe { aam_model_load_from_memory(bytes.as_ptr(), bytes.len(), ptr::null(), &mut model) };
    assert_eq!(status, AamStatus::Ok);

    let biom = shared("table.biom");
    let mut out = ptr::null_mut();
    let status = unsafe { aam_predict_biom(model, biom.as_ptr(), &mut out) };
    assert_eq!(status, AamStatus::Ok, "{}", last_error());
    let want = by_sample(out);
    assert_eq!(want.len(), 34);

    let (qza, seqs) = (shared("qiime2/table.qza"), shared("qiime2/rep-seqs.qza"));
    let mut out = ptr::null_mut();
    let status =
        unsafe { aam_predict_table(model, qza.as_ptr(), seqs.as_ptr(), ptr::null(), &mut out) };
    assert_eq!(status, AamStatus::Ok, "{}", last_error());
    assert_eq!(by_sample(out), want);

    // Without the sequences: refused, saying what to give.
    let mut out = ptr::null_mut();
    let status = unsafe { aam_predict_biom(model, qza.as_ptr(), &mut out) };
    assert_eq!(status, AamStatus::Data);
    assert!(out.is_null());
    assert!(
        last_error().contains("--sequences rep-seqs.qza"),
        "{}",
        last_error()
    );
    unsafe { aam_model_free(model) };
}
