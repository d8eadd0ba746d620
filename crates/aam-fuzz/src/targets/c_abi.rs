//! The C ABI with random buffers and shapes, against the shipped model. The first byte
//! picks the call:
//!
//! - 0: `aam_predict_tokens` with a dtype (byte 1: U8, I64 or byte 1 itself), a batch
//!   (byte 2 % 4), an n_asv (byte 3 % 6, or the token limit + 1 when byte 3 is 255), a
//!   row width (the model's token width - 1, + 0 or + 1: byte 4 % 3) and tokens from the
//!   remaining bytes, repeated to fill the buffer that the shape says;
//! - 1: `aam_model_load_from_memory` on the remaining bytes;
//! - 2: `aam_predict_biom` on the remaining bytes as a table file.
//!
//! Every call must return a status other than `AAM_STATUS_INTERNAL` (a caught panic),
//! set `*out` to NULL on failure with a message in `aam_last_error()`, and on success
//! give finite embeddings of the model's dimension, one row per sample; no handle may
//! outlive the call.

use std::ffi::{c_void, CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use aam::handles::aam_live_handles;
use aam::model::{aam_model_free, aam_model_info, aam_model_load, aam_model_load_from_memory, AamModel, AamModelInfo};
use aam::predictions::{
    aam_predict_biom, aam_predict_tokens, aam_predictions_count, aam_predictions_embeddings, aam_predictions_free,
    aam_predictions_probabilities, aam_predictions_sample_id, AamPredictions, AAM_DTYPE_I64, AAM_DTYPE_U8,
};
use aam::status::{aam_last_error, AamStatus};

/// The shipped model, loaded once through the C ABI (its handle's address).
static MODEL: OnceLock<usize> = OnceLock::new();
/// Inputs run one at a time: the live-handle count is checked after each.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// Calls made (for the replay test's report).
pub static CALLS: AtomicUsize = AtomicUsize::new(0);

fn model() -> *const AamModel {
    *MODEL.get_or_init(|| {
        let path = CString::new(crate::shipped::model_dir().to_str().expect("UTF-8 model path")).unwrap();
        let mut m = std::ptr::null_mut();
        let status = unsafe { aam_model_load(path.as_ptr(), std::ptr::null(), &mut m) };
        assert_eq!(status, AamStatus::Ok, "the shipped model loads");
        m as usize
    }) as *const AamModel
}

fn info() -> AamModelInfo {
    let mut info = unsafe { std::mem::zeroed::<AamModelInfo>() };
    assert_eq!(unsafe { aam_model_info(model(), &mut info) }, AamStatus::Ok);
    info
}

/// A failed call: a status that is not a caught panic, a message, nothing published.
fn check_failure(status: AamStatus, out: *const c_void) {
    let message = aam_last_error();
    let text = if message.is_null() { String::new() } else { unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned() };
    assert_ne!(status, AamStatus::Internal, "a caught panic: {text}");
    assert!(out.is_null(), "{status:?} but *out was set");
    assert!(!text.is_empty(), "{status:?} without a message");
}

/// A successful prediction: `expected_count` samples (if known), finite embeddings of the
/// model's dimension, probabilities that sum to 1, a sample ID per sample; then freed.
fn check_predictions(p: *mut AamPredictions, expected_count: Option<usize>) {
    let info = info();
    let mut count = 0;
    assert_eq!(unsafe { aam_predictions_count(p, &mut count) }, AamStatus::Ok);
    if let Some(n) = expected_count {
        assert_eq!(count, n, "one prediction per sample");
    }
    let (mut emb, mut dim) = (std::ptr::null(), 0);
    assert_eq!(unsafe { aam_predictions_embeddings(p, &mut emb, &mut dim) }, AamStatus::Ok);
    assert_eq!(dim, info.embedding_dim);
    let emb = unsafe { std::slice::from_raw_parts(emb, count * dim) };
    assert!(emb.iter().all(|v| v.is_finite()), "a non-finite embedding");
    let (mut probs, mut k) = (std::ptr::null(), 0);
    assert_eq!(unsafe { aam_predictions_probabilities(p, &mut probs, &mut k) }, AamStatus::Ok);
    if k > 0 {
        let probs = unsafe { std::slice::from_raw_parts(probs, count * k) };
        for row in probs.chunks(k) {
            let sum: f32 = row.iter().sum();
            assert!(row.iter().all(|v| v.is_finite() && *v >= 0.0) && (sum - 1.0).abs() < 1e-4, "probabilities {row:?}");
        }
    }
    for i in 0..count {
        let mut id = std::ptr::null();
        assert_eq!(unsafe { aam_predictions_sample_id(p, i, &mut id) }, AamStatus::Ok);
        assert!(!id.is_null());
    }
    unsafe { aam_predictions_free(p) };
}

/// Runs one C ABI call chosen and shaped by `data`.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let model = model();
    CALLS.fetch_add(1, Ordering::Relaxed);
    match mode % 3 {
        0 => predict_tokens(model, rest),
        1 => {
            let mut loaded = std::ptr::null_mut();
            let status = unsafe { aam_model_load_from_memory(rest.as_ptr(), rest.len(), std::ptr::null(), &mut loaded) };
            if status == AamStatus::Ok {
                unsafe { aam_model_free(loaded) };
            } else {
                check_failure(status, loaded.cast());
            }
        }
        _ => {
            let path = crate::scratch::write("c_abi_table.biom", rest);
            let path = CString::new(path.to_str().expect("UTF-8 scratch path")).unwrap();
            let mut out = std::ptr::null_mut();
            let status = unsafe { aam_predict_biom(model, path.as_ptr(), &mut out) };
            if status == AamStatus::Ok {
                check_predictions(out, None);
            } else {
                check_failure(status, out.cast());
            }
        }
    }
    assert_eq!(aam_live_handles(), 1, "a handle outlived its call");
}

fn predict_tokens(model: *const AamModel, rest: &[u8]) {
    let info = info();
    let byte = |i: usize| rest.get(i).copied().unwrap_or(0);
    let dtype = match byte(0) % 4 {
        0 | 1 => AAM_DTYPE_U8,
        2 => AAM_DTYPE_I64,
        _ => u32::from(byte(0)),
    };
    let batch = usize::from(byte(1) % 4);
    let n_asv = if byte(2) == 255 { info.token_limit + 1 } else { usize::from(byte(2) % 6) };
    let width = info.token_width - 1 + usize::from(byte(3) % 3);
    let values = rest.get(4..).filter(|v| !v.is_empty()).unwrap_or(&[0]);
    let n = batch * n_asv * width;
    let u8s: Vec<u8> = values.iter().copied().cycle().take(n.max(1)).collect();
    let i64s: Vec<i64> = u8s.iter().map(|&v| i64::from(v as i8)).collect();
    let tokens: *const c_void = if dtype == AAM_DTYPE_I64 { i64s.as_ptr().cast() } else { u8s.as_ptr().cast() };
    let mut out = std::ptr::null_mut();
    let status = unsafe { aam_predict_tokens(model, tokens, dtype, batch, n_asv, width, &mut out) };
    if status == AamStatus::Ok {
        check_predictions(out, Some(batch));
    } else {
        check_failure(status, out.cast());
    }
}
