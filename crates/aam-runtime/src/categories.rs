//! The category indices a model conditioned on metadata categories takes beside its
//! tokens (`categorical_ids`): one check for every entry point, so every caller gets the
//! same errors, and no index reaches an ONNX `Gather` out of its table.

use aam_config::ModelConfig;
use ndarray::ArrayView2;

use crate::error::{Result, RuntimeError};

/// The `categorical_ids` to feed a model for `batch` samples: `None` when the model is
/// not conditioned on categories (given ids are then an error, not ignored), else
/// `ids` int64 `[batch, n_columns]` once checked, columns in the order of
/// `HeadConfig::categorical_columns` (sorted by name).
///
/// Errors ([`RuntimeError::Input`]): the model is conditioned and no ids were given, or
/// the reverse; a shape other than `[batch, n_columns]`; an index outside
/// `0..cardinality` of its column (naming the sample row and the column).
pub fn checked_categorical_ids<'a>(
    m: &ModelConfig,
    ids: Option<ArrayView2<'a, i64>>,
    batch: usize,
) -> Result<Option<ArrayView2<'a, i64>>> {
    let columns = m.head.categorical_columns();
    let ids = match (m.head.is_conditioned(), ids) {
        (false, None) => return Ok(None),
        (false, Some(_)) => {
            return Err(RuntimeError::Input(
                "categorical ids were given, but this model is not conditioned on metadata categories; drop them".into(),
            ))
        }
        (true, None) => {
            return Err(RuntimeError::Input(format!(
                "this model is conditioned on the metadata categories {}: pass each sample's category indices `categorical_ids` int64 [batch, {}] (0: unknown or missing)",
                columns.join(", "),
                columns.len()
            )))
        }
        (true, Some(ids)) => ids,
    };
    if ids.dim() != (batch, columns.len()) {
        return Err(RuntimeError::Input(format!(
            "categorical_ids have shape {:?}; the tokens need [{batch}, {}] (one index per sample and column: {})",
            ids.shape(),
            columns.len(),
            columns.join(", ")
        )));
    }
    for ((row, col), &id) in ids.indexed_iter() {
        let card = m.head.categorical_cardinalities[columns[col]];
        if id < 0 || id as usize >= card {
            return Err(RuntimeError::Input(format!(
                "categorical_ids: sample row {row}, column `{}`: index {id} is outside 0..{card} (0 is the unknown category)",
                columns[col]
            )));
        }
    }
    Ok(Some(ids))
}
