//! The read counts a model takes beside its tokens: one check for every entry point (the
//! ONNX runtimes, the Burn runner, `aam forward`), so every caller gets the same errors.

use ndarray::ArrayView3;

use crate::error::{Result, RuntimeError};

/// The counts to feed a model for tokens of `batch` samples × `n_asv` slots: `None` when
/// the model reads none (`uses_counts` false; given counts are then ignored), else
/// `counts` float32 `[batch, n_asv, 1]` once checked.
///
/// Errors ([`RuntimeError::Input`]): the model reads counts and none were given; a shape
/// other than `[batch, n_asv, 1]`; a negative, NaN or infinite count.
pub fn checked_counts<'a>(
    uses_counts: bool,
    counts: Option<ArrayView3<'a, f32>>,
    batch: usize,
    n_asv: usize,
) -> Result<Option<ArrayView3<'a, f32>>> {
    let c = match (uses_counts, counts) {
        (false, _) => return Ok(None),
        (true, None) => {
            return Err(RuntimeError::Input(
                "this model reads each ASV's read count (a count embedding or abundance-weighted pooling): pass the counts `[batch, n_asv, 1]` beside the tokens (predicting from a table does so)".into(),
            ))
        }
        (true, Some(c)) => c,
    };
    if c.dim() != (batch, n_asv, 1) {
        return Err(RuntimeError::Input(format!(
            "counts have shape {:?}; the tokens need [{batch}, {n_asv}, 1] (one read count per ASV slot)",
            c.shape()
        )));
    }
    if let Some((idx, v)) = c.indexed_iter().find(|(_, v)| !v.is_finite() || **v < 0.0) {
        return Err(RuntimeError::Input(format!(
            "read count {v} at {idx:?} is negative or not finite; counts must be finite and ≥ 0"
        )));
    }
    Ok(Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn message(r: Result<Option<ArrayView3<'_, f32>>>) -> String {
        match r {
            Err(RuntimeError::Input(m)) => m,
            other => panic!(
                "expected an input error, got {:?}",
                other.map(|c| c.map(|c| c.dim()))
            ),
        }
    }

    #[test]
    fn counts_are_checked_only_for_a_model_that_reads_them() {
        let ok = Array3::<f32>::from_elem((2, 3, 1), 4.0);
        assert!(checked_counts(false, None, 2, 3).unwrap().is_none());
        assert!(checked_counts(false, Some(ok.view()), 2, 3)
            .unwrap()
            .is_none());
        assert_eq!(
            checked_counts(true, Some(ok.view()), 2, 3)
                .unwrap()
                .unwrap()
                .dim(),
            (2, 3, 1)
        );
        assert!(message(checked_counts(true, None, 2, 3)).contains("pass the counts"));
        assert!(message(checked_counts(true, Some(ok.view()), 2, 4)).contains("[2, 4, 1]"));
        let mut bad = ok.clone();
        bad[[1, 2, 0]] = f32::NAN;
        assert!(message(checked_counts(true, Some(bad.view()), 2, 3)).contains("at (1, 2, 0)"));
        bad[[1, 2, 0]] = -1.0;
        assert!(message(checked_counts(true, Some(bad.view()), 2, 3)).contains("read count -1"));
    }
}
