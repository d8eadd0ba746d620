//! A regressor's outputs through the C ABI.
//!
//! A quantile regressor: `aam_predictions_quantiles` gives its levels and, per sample,
//! the runtime's predictions at each level in the target's units (log z-score inverted),
//! with `aam_predictions_values` the middle level; other models report no levels.
//! A regressor of several target columns: `aam_predictions_targets` gives the runtime's
//! prediction of each column in its units, `aam_predictions_target_name` their names, and
//! `aam_predictions_values` the first column's.

mod common;

use std::ffi::{CStr, CString};
use std::ptr;

use aam::model::{aam_model_free, aam_model_load_from_memory, AamModel};
use aam::predictions::{
    aam_predict_biom, aam_predictions_count, aam_predictions_free, aam_predictions_quantiles,
    aam_predictions_target_name, aam_predictions_targets, aam_predictions_values, AamPredictions,
};
use aam::status::AamStatus;
use aam_config::{TargetColumn, TargetInfo, TargetTransform};

fn export(num_quantiles: Option<usize>) -> Vec<u8> {
    let mut model = common::tiny_config();
    model.head.num_quantiles = num_quantiles;
    let target = TargetInfo {
        transform: TargetTransform::LogZscore,
        quantiles: if num_quantiles.is_some() {
            vec![0.1, 0.5, 0.9]
        } else {
            Vec::new()
        },
        ..common::numeric_target("age", 2.0, 0.5)
    };
    common::export_predictor(model, target).1
}

/// The runtime's predictions of the circadian-ihc table by `bytes`.
fn runtime_predictions(bytes: &[u8]) -> aam_runtime::Predictions {
    let runtime = aam_runtime::Model::from_bytes(bytes, std::path::Path::new("m.onnx")).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/circadian-ihc/table.biom");
    let (table, _) = aam_data::load_table(&path).unwrap();
    runtime
        .predict_table(table, "t", aam_runtime::PredictOptions::default())
        .unwrap()
}

fn predict(bytes: &[u8]) -> *mut AamPredictions {
    let mut model: *mut AamModel = ptr::null_mut();
    let status =
        unsafe { aam_model_load_from_memory(bytes.as_ptr(), bytes.len(), ptr::null(), &mut model) };
    assert_eq!(status, AamStatus::Ok);
    let table = CString::new(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/circadian-ihc/table.biom"
        )
        .to_string(),
    )
    .unwrap();
    let mut out = ptr::null_mut();
    assert_eq!(
        unsafe { aam_predict_biom(model, table.as_ptr(), &mut out) },
        AamStatus::Ok
    );
    unsafe { aam_model_free(model) };
    out
}

#[test]
fn quantile_predictions_per_level() {
    let bytes = export(Some(3));
    let p = predict(&bytes);
    let mut n = 0usize;
    assert_eq!(unsafe { aam_predictions_count(p, &mut n) }, AamStatus::Ok);
    let (mut levels, mut values, mut k) = (ptr::null(), ptr::null(), 0usize);
    assert_eq!(
        unsafe { aam_predictions_quantiles(p, &mut levels, &mut values, &mut k) },
        AamStatus::Ok
    );
    assert_eq!(k, 3);
    assert_eq!(
        unsafe { std::slice::from_raw_parts(levels, k) },
        [0.1, 0.5, 0.9]
    );
    let got = unsafe { std::slice::from_raw_parts(values, n * k) }.to_vec();
    let (mut v, mut has) = (ptr::null(), ptr::null());
    assert_eq!(
        unsafe { aam_predictions_values(p, &mut v, &mut has) },
        AamStatus::Ok
    );
    let point = unsafe { std::slice::from_raw_parts(v, n) }.to_vec();

    let want = runtime_predictions(&bytes);
    assert_eq!(want.samples.len(), n);
    for (i, s) in want.samples.iter().enumerate() {
        assert_eq!(&got[i * k..(i + 1) * k], s.quantiles.as_slice());
        assert_eq!(
            point[i], s.quantiles[1],
            "the point prediction is the 0.5 level"
        );
        // ln(y + 1) inverted: every prediction is above −1.
        assert!(s.quantiles.iter().all(|&q| q > -1.0 && q.is_finite()));
    }
    unsafe { aam_predictions_free(p) };

    let p = predict(&export(None));
    assert_eq!(
        unsafe { aam_predictions_quantiles(p, &mut levels, &mut values, &mut k) },
        AamStatus::Ok
    );
    assert!(levels.is_null() && values.is_null() && k == 0);
    unsafe { aam_predictions_free(p) };
}

#[test]
fn several_target_columns_each_in_their_units() {
    let model = aam_config::ModelConfig {
        out_dim: 3,
        ..common::tiny_config()
    };
    let target = TargetInfo {
        more_columns: vec![
            TargetColumn {
                column: "ph".into(),
                mean: 6.0,
                std: 0.5,
            },
            TargetColumn {
                column: "bmi".into(),
                mean: 25.0,
                std: 4.0,
            },
        ],
        ..common::numeric_target("age", 40.0, 10.0)
    };
    let (_, bytes) = common::export_predictor(model, target);
    let p = predict(&bytes);
    let mut n = 0usize;
    assert_eq!(unsafe { aam_predictions_count(p, &mut n) }, AamStatus::Ok);
    let (mut values, mut k) = (ptr::null(), 0usize);
    assert_eq!(
        unsafe { aam_predictions_targets(p, &mut values, &mut k) },
        AamStatus::Ok
    );
    assert_eq!(k, 3);
    let got = unsafe { std::slice::from_raw_parts(values, n * k) }.to_vec();
    let names: Vec<String> = (0..k)
        .map(|j| {
            let mut s = ptr::null();
            assert_eq!(
                unsafe { aam_predictions_target_name(p, j, &mut s) },
                AamStatus::Ok
            );
            unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(names, ["age", "ph", "bmi"]);
    let mut s = ptr::null();
    assert_eq!(
        unsafe { aam_predictions_target_name(p, 3, &mut s) },
        AamStatus::InvalidArgument
    );
    let (mut v, mut has) = (ptr::null(), ptr::null());
    assert_eq!(
        unsafe { aam_predictions_values(p, &mut v, &mut has) },
        AamStatus::Ok
    );
    let first = unsafe { std::slice::from_raw_parts(v, n) }.to_vec();
    let want = runtime_predictions(&bytes);
    assert_eq!(want.target_columns, names);
    for (i, s) in want.samples.iter().enumerate() {
        assert_eq!(&got[i * k..(i + 1) * k], s.values.as_slice());
        assert_eq!(first[i], s.values[0]);
    }
    // Each column is inverted by its own statistics: the spread of the predictions of
    // `bmi` (std 4) is 8 times that of `ph` (std 0.5) only if the raw outputs agree, so
    // check the inversion on the raw outputs instead.
    let runtime = aam_runtime::Model::from_bytes(&bytes, std::path::Path::new("m.onnx")).unwrap();
    let raw = runtime
        .run(ndarray::Array3::<i64>::zeros((1, 1, 11)).view())
        .unwrap();
    let z = raw.target_prediction.unwrap();
    let one = runtime
        .predict_tokens(ndarray::Array3::<i64>::zeros((1, 1, 11)).view())
        .unwrap();
    let (z0, z1, z2) = (
        f64::from(z[[0, 0]]),
        f64::from(z[[0, 1]]),
        f64::from(z[[0, 2]]),
    );
    let want = [z0 * 10.0 + 40.0, z1 * 0.5 + 6.0, z2 * 4.0 + 25.0];
    for (g, w) in one.samples[0].values.iter().zip(want) {
        assert!((g - w).abs() < 1e-9 * w.abs().max(1.0), "{g} vs {w}");
    }
    unsafe { aam_predictions_free(p) };

    // A model of one target reports none.
    let p = predict(&export(None));
    assert_eq!(
        unsafe { aam_predictions_targets(p, &mut values, &mut k) },
        AamStatus::Ok
    );
    assert!(values.is_null() && k == 0);
    unsafe { aam_predictions_free(p) };
}
