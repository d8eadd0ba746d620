//! Metadata categories of a conditioned model (`aam train --categorical-columns`) from C:
//! its columns, the index of a label, and prediction from tokens with each sample's
//! category indices (`categorical_ids`).

use std::ffi::{c_char, c_void};

use crate::handles::{borrow, Kind};
use crate::model::AamModel;
use crate::predictions::{predict_buffer, AamPredictions};
use crate::status::{guard, name_at, non_null, utf8_arg, AamStatus};

/// Sets `*n_columns` to the number of metadata columns `model` is conditioned on (0 for
/// a model without conditioning): the width of `categorical_ids`.
#[no_mangle]
pub unsafe extern "C" fn aam_model_categorical_column_count(
    model: *const AamModel,
    n_columns: *mut usize,
) -> AamStatus {
    guard(|| {
        non_null(n_columns, "n_columns")?;
        let m = borrow(model, Kind::Model, "model")?;
        unsafe { *n_columns = m.categorical_columns.len() };
        Ok(())
    })
}

/// Sets `*out` to the name of categorical column `index` (`< n_columns`, in
/// `categorical_ids` order; borrowed from the model, valid until it is freed).
#[no_mangle]
pub unsafe extern "C" fn aam_model_categorical_column(
    model: *const AamModel,
    index: usize,
    out: *mut *const c_char,
) -> AamStatus {
    guard(|| {
        non_null(out, "out")?;
        let m = borrow(model, Kind::Model, "model")?;
        name_at(&m.categorical_columns, index, "categorical column", out)
    })
}

/// Sets `*index` to the category index of `label` in categorical column `column`, as
/// training numbered them: label `k` of the column's sorted training labels is `k + 1`;
/// a label training never saw is 0, the unknown category. Errors
/// (`AAM_STATUS_INVALID_ARGUMENT`): `column` is not one of the model's categorical
/// columns (the message lists them); the model records no labels for it (imported).
#[no_mangle]
pub unsafe extern "C" fn aam_model_category_index(
    model: *const AamModel,
    column: *const c_char,
    label: *const c_char,
    index: *mut i64,
) -> AamStatus {
    guard(|| {
        non_null(index, "index")?;
        non_null(column, "column")?;
        non_null(label, "label")?;
        let m = borrow(model, Kind::Model, "model")?;
        let column = utf8_arg(column, "column")?;
        let label = utf8_arg(label, "label")?;
        let k = aam_runtime::category_index(m.inner.config(), column, label)?;
        unsafe { *index = k };
        Ok(())
    })
}

/// Like `aam_predict_tokens_counts` for a model conditioned on metadata categories:
/// `categorical_ids` is each sample's category index per column, row-major
/// `int64_t[batch][n_columns]` (`n_columns` from `aam_model_categorical_column_count`,
/// indices from `aam_model_category_index`; 0 is the unknown category); `counts`
/// `float[batch][n_asv]` may be NULL for a model that reads no counts. Errors
/// (`AAM_STATUS_INVALID_ARGUMENT`): another `n_columns`, an index outside its column's
/// categories (naming the sample row and column), and those of `aam_predict_tokens`.
#[no_mangle]
pub unsafe extern "C" fn aam_predict_tokens_categories(
    model: *const AamModel,
    tokens: *const c_void,
    dtype: u32,
    batch: usize,
    n_asv: usize,
    width: usize,
    counts: *const f32,
    categorical_ids: *const i64,
    n_columns: usize,
    out: *mut *mut AamPredictions,
) -> AamStatus {
    guard(|| {
        non_null(categorical_ids, "categorical_ids")?;
        predict_buffer(
            model,
            tokens,
            dtype,
            [batch, n_asv, width],
            (!counts.is_null()).then_some(counts),
            Some((categorical_ids, n_columns)),
            out,
        )
    })
}
