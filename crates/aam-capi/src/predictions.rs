//! Predicting from a token buffer or a BIOM file, and reading the results.

use std::ffi::{c_char, c_void, CString};
use std::path::Path;

use aam_runtime::{PredictOptions, Predictions};
use ndarray::{Array3, ArrayView3};

use crate::handles::{borrow, register, release, Kind};
use crate::model::AamModel;
use crate::status::{c_string, guard, name_at, non_null, utf8_arg, AamStatus, Failure};

/// Token buffer dtype: `uint8_t`.
pub const AAM_DTYPE_U8: u32 = 0;
/// Token buffer dtype: `int64_t`.
pub const AAM_DTYPE_I64: u32 = 1;

/// Predictions for a batch of samples (opaque, read-only).
pub struct AamPredictions {
    count: usize,
    embedding_dim: usize,
    embeddings: Vec<f32>,
    n_classes: usize,
    probabilities: Vec<f32>,
    is_regression: bool,
    values: Vec<f64>,
    has_value: Vec<u8>,
    quantile_levels: Vec<f64>,
    /// `[count, levels]`, row-major; 0 where a sample has no prediction.
    quantiles: Vec<f64>,
    /// Target columns of a regressor of several (empty otherwise).
    target_names: Vec<CString>,
    /// `[count, target_names.len()]`, row-major; 0 where a sample has no prediction.
    target_values: Vec<f64>,
    sample_ids: Vec<CString>,
    labels: Vec<Option<CString>>,
    notes: Vec<Option<CString>>,
}

impl AamPredictions {
    fn from_runtime(p: &Predictions, embedding_dim: usize) -> Self {
        let n_classes = p.classes.len();
        let count = p.samples.len();
        let levels = p.quantile_levels.len();
        let k = p.target_columns.len();
        let quantiles = row_major(p, levels, |s| &s.quantiles);
        let target_values = row_major(p, k, |s| &s.values);
        let embeddings = row_major(p, embedding_dim, |s| &s.embedding);
        let probabilities = row_major(p, n_classes, |s| &s.probabilities);
        AamPredictions {
            count,
            embedding_dim,
            embeddings,
            n_classes,
            probabilities,
            is_regression: p.target_kind == Some(aam_data::TargetKind::Numeric),
            values: p.samples.iter().map(|s| s.value.unwrap_or(0.0)).collect(),
            has_value: p
                .samples
                .iter()
                .map(|s| u8::from(s.value.is_some() || s.label.is_some()))
                .collect(),
            quantile_levels: p.quantile_levels.clone(),
            quantiles,
            target_names: p.target_columns.iter().map(|c| c_string(c)).collect(),
            target_values,
            sample_ids: p.samples.iter().map(|s| c_string(&s.sample_id)).collect(),
            labels: p
                .samples
                .iter()
                .map(|s| s.label.as_deref().map(c_string))
                .collect(),
            notes: p
                .samples
                .iter()
                .map(|s| s.note.as_deref().map(c_string))
                .collect(),
        }
    }
}

/// `[count, width]` row-major of each sample's `pick` row; 0 where a sample's row has
/// another length (no prediction).
fn row_major<T: Copy + Default>(
    p: &Predictions,
    width: usize,
    pick: impl Fn(&aam_runtime::SamplePrediction) -> &Vec<T>,
) -> Vec<T> {
    let mut out = vec![T::default(); p.samples.len() * width];
    for (i, s) in p.samples.iter().enumerate() {
        let row = pick(s);
        if row.len() == width {
            out[i * width..(i + 1) * width].copy_from_slice(row);
        }
    }
    out
}

fn publish(model: &AamModel, p: &Predictions, out: *mut *mut AamPredictions) {
    let d = model.inner.config().model.embedding_dim;
    let handle = register(AamPredictions::from_runtime(p, d), Kind::Predictions);
    unsafe { *out = handle };
}

/// Predicts a token buffer `[batch, n_asv, width]` (row-major, `width` = the model's
/// `token_width`, `1 ≤ n_asv ≤ token_limit`) of dtype `AAM_DTYPE_U8` or `AAM_DTYPE_I64`
/// into `*out` (NULL on failure). Sample IDs are the row numbers `"0"`, `"1"`, ….
/// A model that reads counts (a count embedding or abundance-weighted pooling) (`aam_model_uses_counts`) needs
/// `aam_predict_tokens_counts` instead: here it fails with `AAM_STATUS_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn aam_predict_tokens(
    model: *const AamModel,
    tokens: *const c_void,
    dtype: u32,
    batch: usize,
    n_asv: usize,
    width: usize,
    out: *mut *mut AamPredictions,
) -> AamStatus {
    guard(|| predict_buffer(model, tokens, dtype, [batch, n_asv, width], None, None, out))
}

/// Like `aam_predict_tokens`, with each ASV slot's read count: `counts` is a row-major f32
/// buffer `[batch, n_asv]` (finite, ≥ 0; 0 in empty slots). A model without a count
/// embedding ignores the counts.
#[no_mangle]
pub unsafe extern "C" fn aam_predict_tokens_counts(
    model: *const AamModel,
    tokens: *const c_void,
    dtype: u32,
    batch: usize,
    n_asv: usize,
    width: usize,
    counts: *const f32,
    out: *mut *mut AamPredictions,
) -> AamStatus {
    guard(|| {
        non_null(counts, "counts")?;
        predict_buffer(
            model,
            tokens,
            dtype,
            [batch, n_asv, width],
            Some(counts),
            None,
            out,
        )
    })
}

/// The body of the token entry points: `ids` is each sample's category indices
/// `int64_t[batch][n_columns]` and `n_columns`, for a conditioned model.
pub(crate) fn predict_buffer(
    model: *const AamModel,
    tokens: *const c_void,
    dtype: u32,
    [batch, n_asv, width]: [usize; 3],
    counts: Option<*const f32>,
    ids: Option<(*const i64, usize)>,
    out: *mut *mut AamPredictions,
) -> Result<(), Failure> {
    non_null(out, "out")?;
    unsafe { *out = std::ptr::null_mut() };
    let m = borrow(model, Kind::Model, "model")?;
    non_null(tokens, "tokens")?;
    let n = batch
        .checked_mul(n_asv)
        .and_then(|x| x.checked_mul(width))
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            Failure::new(
                AamStatus::InvalidArgument,
                format!("tokens shape [{batch}, {n_asv}, {width}] is empty or too large"),
            )
        })?;
    let owned: Array3<i64>;
    let view: ArrayView3<'_, i64> = match dtype {
        AAM_DTYPE_I64 => {
            let s = unsafe { std::slice::from_raw_parts(tokens.cast::<i64>(), n) };
            ArrayView3::from_shape((batch, n_asv, width), s)
                .map_err(|e| Failure::new(AamStatus::InvalidArgument, e.to_string()))?
        }
        AAM_DTYPE_U8 => {
            let s = unsafe { std::slice::from_raw_parts(tokens.cast::<u8>(), n) };
            owned = Array3::from_shape_vec(
                (batch, n_asv, width),
                s.iter().map(|&t| i64::from(t)).collect(),
            )
            .map_err(|e| Failure::new(AamStatus::InvalidArgument, e.to_string()))?;
            owned.view()
        }
        other => {
            return Err(Failure::new(
                AamStatus::InvalidArgument,
                format!("dtype {other} is not AAM_DTYPE_U8 (0) or AAM_DTYPE_I64 (1)"),
            ))
        }
    };
    let counts = match counts {
        None => None,
        Some(c) => {
            // batch · n_asv ≤ n, checked above.
            let s = unsafe { std::slice::from_raw_parts(c, batch * n_asv) };
            Some(
                ArrayView3::from_shape((batch, n_asv, 1), s)
                    .map_err(|e| Failure::new(AamStatus::InvalidArgument, e.to_string()))?,
            )
        }
    };
    let p = match (counts, ids) {
        (None, None) => m.inner.predict_tokens(view)?,
        (Some(c), None) => m.inner.predict_tokens_with_counts(view, c)?,
        (c, Some((ids, n_columns))) => {
            let len = batch.checked_mul(n_columns).ok_or_else(|| {
                Failure::new(
                    AamStatus::InvalidArgument,
                    format!("categorical ids [{batch}, {n_columns}] are too large"),
                )
            })?;
            // The runtime checks n_columns against the model's columns.
            let s = unsafe { std::slice::from_raw_parts(ids, len) };
            let ids = ndarray::ArrayView2::from_shape((batch, n_columns), s)
                .map_err(|e| Failure::new(AamStatus::InvalidArgument, e.to_string()))?;
            m.inner.predict_tokens_with_categories(view, c, ids)?
        }
    };
    publish(m, &p, out);
    Ok(())
}

/// Predicts every sample of a feature table (BIOM 2.1 / 1.0 JSON / TSV, or a QIIME 2
/// `.qza`, whose observation IDs are ASV sequences; else see [`aam_predict_table`]) at
/// `table_path`, prepared with the model's own settings, into
/// `*out` (NULL on failure). Samples without reads are kept, with a note and no value.
/// A model conditioned on metadata categories needs [`aam_predict_biom_metadata`].
#[no_mangle]
pub unsafe extern "C" fn aam_predict_biom(
    model: *const AamModel,
    table_path: *const c_char,
    out: *mut *mut AamPredictions,
) -> AamStatus {
    unsafe { aam_predict_biom_metadata(model, table_path, std::ptr::null(), out) }
}

/// [`aam_predict_biom`] with a metadata TSV at `metadata_path` (NULL: none) that gives
/// each sample's values of the metadata categories a model is conditioned on (`aam train
/// --categorical-columns`). A missing value, a sample absent from the metadata, or a
/// value the training samples never had is the unknown category. Errors
/// (`AAM_STATUS_INVALID_ARGUMENT`, see `aam_last_error`): the model is conditioned and
/// `metadata_path` is NULL, or the metadata lacks one of its columns (named).
#[no_mangle]
pub unsafe extern "C" fn aam_predict_biom_metadata(
    model: *const AamModel,
    table_path: *const c_char,
    metadata_path: *const c_char,
    out: *mut *mut AamPredictions,
) -> AamStatus {
    unsafe { aam_predict_table(model, table_path, std::ptr::null(), metadata_path, out) }
}

/// Predicts every sample of the feature table at `table_path` (BIOM 2.1 / 1.0 JSON / TSV,
/// or a QIIME 2 `FeatureTable[Frequency]` `.qza`) into `*out` (NULL on failure), as
/// [`aam_predict_biom_metadata`] does. `sequences_path` (NULL: none) gives the sequences
/// of feature IDs that are not sequences, such as QIIME 2's DADA2 MD5 hashes: a
/// `rep-seqs.qza` (`FeatureData[Sequence]`) or a FASTA file. Errors (see
/// `aam_last_error`): as [`aam_predict_biom_metadata`]; `AAM_STATUS_DATA` for an artifact
/// of another semantic type (both named), MD5 feature IDs without `sequences_path`, a
/// feature without a sequence, or an MD5 ID that is not its sequence's (named).
#[no_mangle]
pub unsafe extern "C" fn aam_predict_table(
    model: *const AamModel,
    table_path: *const c_char,
    sequences_path: *const c_char,
    metadata_path: *const c_char,
    out: *mut *mut AamPredictions,
) -> AamStatus {
    guard(|| {
        non_null(out, "out")?;
        unsafe { *out = std::ptr::null_mut() };
        let m = borrow(model, Kind::Model, "model")?;
        non_null(table_path, "table_path")?;
        let path = utf8_arg(table_path, "table_path")?;
        let sequences = match sequences_path.is_null() {
            true => None,
            false => Some(Path::new(utf8_arg(sequences_path, "sequences_path")?)),
        };
        let categories = match metadata_path.is_null() {
            true => None,
            false => {
                let meta = utf8_arg(metadata_path, "metadata_path")?;
                let metadata = aam_data::Metadata::load(Path::new(meta))
                    .map_err(aam_runtime::RuntimeError::from)?;
                Some(aam_runtime::SampleCategories::from_metadata(&metadata))
            }
        };
        let (table, _) = aam_data::load_table_with_sequences(Path::new(path), sequences)
            .map_err(aam_runtime::RuntimeError::from)?;
        let options = PredictOptions {
            batch_size: m.params.batch_size as usize,
            threads: m.params.threads as usize,
            ..Default::default()
        };
        let p = m
            .inner
            .predict_table_with_categories(table, path, options, categories.as_ref())?;
        publish(m, &p, out);
        Ok(())
    })
}

/// Frees predictions. NULL, and predictions already freed, are ignored.
#[no_mangle]
pub unsafe extern "C" fn aam_predictions_free(predictions: *mut AamPredictions) {
    let _ = guard(|| {
        release(predictions, Kind::Predictions);
        Ok(())
    });
}

fn get<'a>(p: *const AamPredictions) -> Result<&'a AamPredictions, Failure> {
    borrow(p, Kind::Predictions, "predictions")
}

/// Sets `*count` to the number of samples.
#[no_mangle]
pub unsafe extern "C" fn aam_predictions_count(
    predictions: *const AamPredictions,
    count: *mut usize,
) -> AamStatus {
    guard(|| {
        non_null(count, "count")?;
        let p = get(predictions)?;
        unsafe { *count = p.count };
        Ok(())
    })
}

/// Sets `*values` to the sample embeddings `float[count][dim]` (row-major, borrowed from
/// `predictions`) and `*dim` to D. Rows of samples without a prediction are 0.
#[no_mangle]
pub unsafe extern "C" fn aam_predictions_embeddings(
    predictions: *const AamPredictions,
    values: *mut *const f32,
    dim: *mut usize,
) -> AamStatus {
    guard(|| {
        non_null(values, "values")?;
        non_null(dim, "dim")?;
        let p = get(predictions)?;
        unsafe {
            *values = p.embeddings.as_ptr();
            *dim = p.embedding_dim;
        }
        Ok(())
    })
}

/// Classifiers: sets `*values` to the class probabilities `float[count][n_classes]`
/// (class order of `aam_model_class_label`) and `*n_classes`. Other models: NULL and 0.
#[no_mangle]
pub unsafe extern "C" fn aam_predictions_probabilities(
    predictions: *const AamPredictions,
    values: *mut *const f32,
    n_classes: *mut usize,
) -> AamStatus {
    guard(|| {
        non_null(values, "values")?;
        non_null(n_classes, "n_classes")?;
        let p = get(predictions)?;
        unsafe {
            *values = if p.n_classes > 0 {
                p.probabilities.as_ptr()
            } else {
                std::ptr::null()
            };
            *n_classes = p.n_classes;
        }
        Ok(())
    })
}

/// Regressors: sets `*values` to the predictions in the target's original units
/// `double[count]` (0 where there is none) and `*has_value` to `uint8_t[count]` (1 where
/// a sample has a prediction). Other models: both NULL.
#[no_mangle]
pub unsafe extern "C" fn aam_predictions_values(
    predictions: *const AamPredictions,
    values: *mut *const f64,
    has_value: *mut *const u8,
) -> AamStatus {
    guard(|| {
        non_null(values, "values")?;
        non_null(has_value, "has_value")?;
        let p = get(predictions)?;
        unsafe {
            if p.is_regression {
                *values = p.values.as_ptr();
                *has_value = p.has_value.as_ptr();
            } else {
                *values = std::ptr::null();
                *has_value = std::ptr::null();
            }
        }
        Ok(())
    })
}

/// Quantile regressors (`aam train --loss-type quantile`): sets `*levels` to the quantile
/// levels τ `double[n_levels]`, `*values` to the predictions at each level in the target's
/// original units `double[count][n_levels]` (row-major; 0 where a sample has no
/// prediction, see `aam_predictions_values`) and `*n_levels` to their number; all
/// borrowed from `predictions`. Other models: NULL, NULL and 0.
#[no_mangle]
pub unsafe extern "C" fn aam_predictions_quantiles(
    predictions: *const AamPredictions,
    levels: *mut *const f64,
    values: *mut *const f64,
    n_levels: *mut usize,
) -> AamStatus {
    guard(|| {
        non_null(levels, "levels")?;
        non_null(values, "values")?;
        non_null(n_levels, "n_levels")?;
        let p = get(predictions)?;
        let none = p.quantile_levels.is_empty();
        unsafe {
            *levels = if none {
                std::ptr::null()
            } else {
                p.quantile_levels.as_ptr()
            };
            *values = if none {
                std::ptr::null()
            } else {
                p.quantiles.as_ptr()
            };
            *n_levels = p.quantile_levels.len();
        }
        Ok(())
    })
}

/// Regressors of several target columns (`aam train --metadata-column a,b`): sets
/// `*values` to the predictions `double[count][n_targets]` (row-major, each column in its
/// own units; 0 where a sample has no prediction, see `aam_predictions_values`, which
/// holds the first column) and `*n_targets` to their number; borrowed from
/// `predictions`. Other models: NULL and 0. `aam_predictions_target_name` names them.
#[no_mangle]
pub unsafe extern "C" fn aam_predictions_targets(
    predictions: *const AamPredictions,
    values: *mut *const f64,
    n_targets: *mut usize,
) -> AamStatus {
    guard(|| {
        non_null(values, "values")?;
        non_null(n_targets, "n_targets")?;
        let p = get(predictions)?;
        let none = p.target_names.is_empty();
        unsafe {
            *values = if none {
                std::ptr::null()
            } else {
                p.target_values.as_ptr()
            };
            *n_targets = p.target_names.len();
        }
        Ok(())
    })
}

/// Sets `*out` to the metadata column of target `index` (`< n_targets` of
/// `aam_predictions_targets`), borrowed from `predictions`.
#[no_mangle]
pub unsafe extern "C" fn aam_predictions_target_name(
    predictions: *const AamPredictions,
    index: usize,
    out: *mut *const c_char,
) -> AamStatus {
    guard(|| {
        non_null(out, "out")?;
        let p = get(predictions)?;
        name_at(&p.target_names, index, "target column", out)
    })
}

fn string_at(
    predictions: *const AamPredictions,
    index: usize,
    out: *mut *const c_char,
    pick: impl Fn(&AamPredictions, usize) -> Option<&CString>,
) -> AamStatus {
    guard(|| {
        non_null(out, "out")?;
        let p = get(predictions)?;
        if index >= p.count {
            return Err(Failure::new(
                AamStatus::InvalidArgument,
                format!("sample index {index} is out of range (count {})", p.count),
            ));
        }
        unsafe { *out = pick(p, index).map_or(std::ptr::null(), |s| s.as_ptr()) };
        Ok(())
    })
}

/// Sets `*out` to the ID of sample `index` (borrowed from `predictions`).
#[no_mangle]
pub unsafe extern "C" fn aam_predictions_sample_id(
    predictions: *const AamPredictions,
    index: usize,
    out: *mut *const c_char,
) -> AamStatus {
    string_at(predictions, index, out, |p, i| Some(&p.sample_ids[i]))
}

/// Classifiers: sets `*out` to the predicted class label of sample `index`; NULL for
/// other models and for samples without a prediction.
#[no_mangle]
pub unsafe extern "C" fn aam_predictions_label(
    predictions: *const AamPredictions,
    index: usize,
    out: *mut *const c_char,
) -> AamStatus {
    string_at(predictions, index, out, |p, i| p.labels[i].as_ref())
}

/// Sets `*out` to why sample `index` has no prediction, or NULL when it has one.
#[no_mangle]
pub unsafe extern "C" fn aam_predictions_note(
    predictions: *const AamPredictions,
    index: usize,
    out: *mut *const c_char,
) -> AamStatus {
    string_at(predictions, index, out, |p, i| p.notes[i].as_ref())
}
