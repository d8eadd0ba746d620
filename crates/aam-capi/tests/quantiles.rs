//! A quantile regressor through the C ABI: `aam_predictions_quantiles` gives its levels
//! and, per sample, the runtime's predictions at each level in the target's units (log
//! z-score inverted), with `aam_predictions_values` the middle level; other models
//! report no levels.

mod common;

use std::ffi::CString;
use std::ptr;

use aam::model::{aam_model_free, aam_model_load_from_memory, AamModel};
use aam::predictions::{
    aam_predict_biom, aam_predictions_count, aam_predictions_free, aam_predictions_quantiles,
    aam_predictions_values, AamPredictions,
};
use aam::status::AamStatus;
use aam_config::{CheckpointConfig, DataSettings, ModelKind, TargetInfo, TargetTransform};
use aam_model::{AamModel as _, CpuBackend, SequencePredictor, WeightSink};

fn export(num_quantiles: Option<usize>) -> Vec<u8> {
    let mut model = common::tiny_config();
    model.head.num_quantiles = num_quantiles;
    let net = SequencePredictor::<CpuBackend>::new(&model, &Default::default());
    let mut sink = WeightSink::default();
    net.save_weights(&mut sink);
    let config = CheckpointConfig {
        format_version: aam_config::FORMAT_VERSION,
        kind: ModelKind::Predictor,
        data: DataSettings {
            max_bp: 10,
            token_limit: 8,
            token_limit_policy: Default::default(),
            rarefy_depth: None,
        },
        model,
        target: Some(TargetInfo {
            column: "age".into(),
            kind: aam_data::TargetKind::Numeric,
            classes: Vec::new(),
            mean: 2.0,
            std: 0.5,
            transform: TargetTransform::LogZscore,
            normalize_by: None,
            by_category: Vec::new(),
            quantiles: if num_quantiles.is_some() {
                vec![0.1, 0.5, 0.9]
            } else {
                Vec::new()
            },
            categories: Default::default(),
        }),
    };
    aam_export::onnx_bytes(&config, &sink.into_map(), 17).unwrap()
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

    let runtime = aam_runtime::Model::from_bytes(&bytes, std::path::Path::new("q.onnx")).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/circadian-ihc/table.biom");
    let (table, _) = aam_data::load_table(&path).unwrap();
    let want = runtime
        .predict_table(table, "t", aam_runtime::PredictOptions::default())
        .unwrap();
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
