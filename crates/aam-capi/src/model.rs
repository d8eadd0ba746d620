//! Loading a model (`model.onnx` from `aam export`) and reading what it expects.

use std::ffi::{c_char, CString};
use std::path::Path;

use aam_runtime::{ExecutionProvider, Model};

use crate::handles::{borrow, register, release, Kind};
use crate::params::{aam_default_params, AamParams};
use crate::status::{c_string, guard, name_at, non_null, utf8_arg, AamStatus, Failure};

/// A loaded model (opaque). Immutable: usable from many threads at once.
pub struct AamModel {
    pub(crate) inner: Model,
    pub(crate) params: AamParams,
    labels: Vec<CString>,
    /// The metadata columns of `categorical_ids` (input order), for a conditioned model.
    pub(crate) categorical_columns: Vec<CString>,
    fallback_reason: Option<CString>,
}

/// What a model expects and returns.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct AamModelInfo {
    /// Longest sequence in bp; token rows are `max_bp + 1` long.
    pub max_bp: usize,
    /// Width of a token row (`max_bp + 1`): the last dim of every token buffer.
    pub token_width: usize,
    /// Most ASVs per sample (`n_asv` of a token buffer is at most this).
    pub token_limit: usize,
    /// Token vocabulary size (tokens are 0 ≤ t < vocab_size).
    pub vocab_size: usize,
    /// Length of each sample embedding (D).
    pub embedding_dim: usize,
    /// Number of classes (classifiers), else 0.
    pub n_classes: usize,
    /// 1 for a predictor (has a target), 0 for a pretrained encoder (embeddings only).
    pub is_predictor: u8,
    /// 1 for a classifier, 0 otherwise.
    pub is_classifier: u8,
}

fn params_or_default(params: *const AamParams) -> Result<AamParams, Failure> {
    let p = if params.is_null() {
        aam_default_params()
    } else {
        unsafe { *params }
    };
    p.validate()?;
    Ok(p)
}

fn finish_load(model: Model, params: AamParams, out: *mut *mut AamModel) -> Result<(), Failure> {
    let labels = model
        .config()
        .target
        .as_ref()
        .map(|t| t.classes.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|l| c_string(&l))
        .collect();
    let fallback_reason = model.placement().fallback_reason.as_deref().map(c_string);
    let categorical_columns = model
        .config()
        .conditioning_columns()
        .into_iter()
        .map(c_string)
        .collect();
    let handle = register(
        AamModel {
            categorical_columns,
            inner: model,
            params: params.detached(),
            labels,
            fallback_reason,
        },
        Kind::Model,
    );
    unsafe { *out = handle };
    Ok(())
}

/// Loads `path` (a `model.onnx` written by `aam export`, or its directory; or an ensemble
/// directory holding `ensemble.json`, whose members all run on every call and are
/// averaged) with `params` (NULL: defaults) into `*out`. On failure `*out` is set to NULL.
#[no_mangle]
pub unsafe extern "C" fn aam_model_load(
    path: *const c_char,
    params: *const AamParams,
    out: *mut *mut AamModel,
) -> AamStatus {
    guard(|| {
        non_null(out, "out")?;
        unsafe { *out = std::ptr::null_mut() };
        non_null(path, "path")?;
        let path = utf8_arg(path, "path")?;
        let params = params_or_default(params)?;
        let model = Model::load_with(
            Path::new(path),
            &params.load_options(Some(Path::new(path)))?,
        )?;
        finish_load(model, params, out)
    })
}

/// Loads a model from the `len` bytes of a `model.onnx` at `data` (copied; the buffer
/// may be freed afterwards) with `params` (NULL: defaults) into `*out`.
#[no_mangle]
pub unsafe extern "C" fn aam_model_load_from_memory(
    data: *const u8,
    len: usize,
    params: *const AamParams,
    out: *mut *mut AamModel,
) -> AamStatus {
    guard(|| {
        non_null(out, "out")?;
        unsafe { *out = std::ptr::null_mut() };
        non_null(data, "data")?;
        if len == 0 {
            return Err(Failure::new(AamStatus::InvalidArgument, "len is 0"));
        }
        let params = params_or_default(params)?;
        let bytes = unsafe { std::slice::from_raw_parts(data, len) };
        let model =
            Model::from_bytes_with(bytes, Path::new("<memory>"), &params.load_options(None)?)?;
        finish_load(model, params, out)
    })
}

/// Frees a model. NULL, and a model already freed, are ignored.
#[no_mangle]
pub unsafe extern "C" fn aam_model_free(model: *mut AamModel) {
    let _ = guard(|| {
        release(model, Kind::Model);
        Ok(())
    });
}

/// Writes what `model` expects and returns into `*out`.
#[no_mangle]
pub unsafe extern "C" fn aam_model_info(
    model: *const AamModel,
    out: *mut AamModelInfo,
) -> AamStatus {
    guard(|| {
        non_null(out, "out")?;
        let m = borrow(model, Kind::Model, "model")?;
        let c = m.inner.config();
        let info = AamModelInfo {
            max_bp: c.model.max_bp,
            token_width: c.model.max_bp + 1,
            token_limit: c.model.token_limit,
            vocab_size: c.model.vocab_size,
            embedding_dim: c.model.embedding_dim,
            n_classes: if c.model.is_classifier {
                c.model.out_dim
            } else {
                0
            },
            is_predictor: u8::from(c.kind == aam_runtime::ModelKind::Predictor),
            is_classifier: u8::from(c.model.is_classifier),
        };
        unsafe { *out = info };
        Ok(())
    })
}

/// Sets `*out` to 1 when `model` reads each ASV slot's read count (it was trained with a
/// count embedding or abundance-weighted pooling: predict token buffers with
/// `aam_predict_tokens_counts`), else 0.
#[no_mangle]
pub unsafe extern "C" fn aam_model_uses_counts(model: *const AamModel, out: *mut u8) -> AamStatus {
    guard(|| {
        non_null(out, "out")?;
        let m = borrow(model, Kind::Model, "model")?;
        unsafe { *out = u8::from(m.inner.uses_counts()) };
        Ok(())
    })
}

/// Sets `*out` to the label of class `index` (borrowed from the model; valid until it is
/// freed).
#[no_mangle]
pub unsafe extern "C" fn aam_model_class_label(
    model: *const AamModel,
    index: usize,
    out: *mut *const c_char,
) -> AamStatus {
    guard(|| {
        non_null(out, "out")?;
        let m = borrow(model, Kind::Model, "model")?;
        name_at(&m.labels, index, "class", out)
    })
}

/// The execution provider `model` runs on (`"cpu"`, `"cuda"` or `"tensorrt"`), a static
/// string; NULL for an invalid handle.
#[no_mangle]
pub unsafe extern "C" fn aam_model_execution_provider(model: *const AamModel) -> *const c_char {
    let mut name: *const c_char = std::ptr::null();
    let _ = guard(|| {
        let m = borrow(model, Kind::Model, "model")?;
        name = match m.inner.placement().provider {
            ExecutionProvider::Cpu => c"cpu".as_ptr(),
            ExecutionProvider::Cuda => c"cuda".as_ptr(),
            ExecutionProvider::TensorRt => c"tensorrt".as_ptr(),
        };
        Ok(())
    });
    name
}

/// Why the requested execution provider was not used (after `allow_fallback`), valid
/// until the model is freed; NULL when the requested provider runs, or for an invalid
/// handle.
#[no_mangle]
pub unsafe extern "C" fn aam_model_fallback_reason(model: *const AamModel) -> *const c_char {
    let mut reason: *const c_char = std::ptr::null();
    let _ = guard(|| {
        let m = borrow(model, Kind::Model, "model")?;
        if let Some(r) = &m.fallback_reason {
            reason = r.as_ptr();
        }
        Ok(())
    });
    reason
}

/// Counts of the ASV-embedding path of a model running the split graphs.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct AamAsvCacheStats {
    /// ASV slots (non-empty) given to the sample model.
    pub asv_slots: u64,
    /// Unique ASVs of a call found in the cache (not encoded).
    pub hits: u64,
    /// Unique ASVs of a call encoded.
    pub misses: u64,
    /// Entries in the cache now.
    pub entries: usize,
    /// Capacity of the cache (0: within a call only).
    pub capacity: usize,
}

/// Writes the ASV-embedding cache counts of `model` into `*out`;
/// `AAM_STATUS_INVALID_ARGUMENT` when the model runs the single `model.onnx` (loaded from
/// memory, with `AAM_ASV_SINGLE_GRAPH`, or from an export without the split graphs).
#[no_mangle]
pub unsafe extern "C" fn aam_model_asv_cache_stats(
    model: *const AamModel,
    out: *mut AamAsvCacheStats,
) -> AamStatus {
    guard(|| {
        non_null(out, "out")?;
        let m = borrow(model, Kind::Model, "model")?;
        let s = m.inner.asv_cache_stats().ok_or_else(|| {
            Failure::new(
                AamStatus::InvalidArgument,
                "the model runs the single model.onnx, not the split graphs (load the export directory with params.asv_cache AAM_ASV_PER_CALL or AAM_ASV_CACHE)",
            )
        })?;
        unsafe {
            *out = AamAsvCacheStats {
                asv_slots: s.asv_slots,
                hits: s.hits,
                misses: s.misses,
                entries: s.entries,
                capacity: s.capacity,
            }
        };
        Ok(())
    })
}
