//! A softmax for tract over rows of any length at the speed of rows whose length is a
//! multiple of 64: each row is copied into an aligned scratch row padded to that length,
//! where tract-linalg's vector kernels (max, exp-and-sum, scale) run without their
//! ragged-end fallback, and copied back.
//!
//! Why: tract 0.23.9 runs each softmax row through kernels that take 64 floats at a time
//! from 64-byte aligned memory; a row of another length, or one that starts unaligned,
//! has its ends copied one at a time through a scratch buffer around every kernel call.
//! The ASV encoder's rows are `max_bp + 1 = 151` scores, and a `[16, 151, 151]` softmax
//! took 3.4 ms against 0.85 ms for `[16, 151, 192]`: a third of the encoder's time. The
//! rewrite [`pad_softmax_rows`] swaps tract's softmax for [`PaddedRowSoftmax`] where
//! the row length is not already a multiple of 64; the exported graphs stay as they are
//! (ONNX Runtime has no such cost).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::nn::{Softmax, SoftmaxKind};
use tract_onnx::tract_core::tract_linalg::element_wise::ElementWise;
use tract_onnx::tract_core::tract_linalg::reduce::{MapReduce, Reduce};
use tract_onnx::tract_core::tract_linalg::routines::Func;

/// Floats per kernel step and per padded row: the x86-64 AVX-512 max and exp-sum kernels
/// take 64 at a time, and 64 f32 are one 256-byte aligned block.
const ROW_MULTIPLE: usize = 64;

/// Bytes of alignment the kernels want for their input.
const ROW_ALIGN_BYTES: usize = 64;

/// Softmax over the last axis of an f32 tensor `[…, row_len]` (same shape out), each
/// row computed in a padded aligned scratch row. The padding takes no weight: it holds
/// `f32::MIN` for the max, then `max - 1e9`, which the exp kernel sends to 0 exactly as
/// it does a masked score (`MASKED_SCORE`, -1e9) — also in a row whose scores are all
/// masked, which stays uniform over its `row_len` entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PaddedRowSoftmax;

impl Op for PaddedRowSoftmax {
    fn name(&self) -> StaticName {
        "PaddedRowSoftmax".into()
    }
    op_as_typed_op!();
}

impl EvalOp for PaddedRowSoftmax {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let mut output = input.into_tensor();
        let row_len = *output.shape().last().context("softmax of a scalar")?;
        if row_len > 0 {
            let mut plain = output.try_as_plain_ram_mut()?;
            softmax_rows(plain.as_slice_mut::<f32>()?, row_len)?;
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for PaddedRowSoftmax {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].datum_type == f32::datum_type());
        Ok(tvec!(inputs[0].without_value()))
    }
    as_op!();
}

/// Softmax of every `row_len` run of `data` (rows back to back), in place.
fn softmax_rows(data: &mut [f32], row_len: usize) -> TractResult<()> {
    let kernels = RowSoftmax::new()?;
    let mut scratch = AlignedRows::new(1, padded_len(row_len));
    let scratch = scratch.as_mut_slice();
    for row in data.chunks_exact_mut(row_len) {
        scratch[..row_len].copy_from_slice(row);
        kernels.padded_row(scratch, row_len)?;
        row.copy_from_slice(&scratch[..row_len]);
    }
    Ok(())
}

/// Floats in a padded row of `row_len` scores: the next multiple of 64.
pub(crate) fn padded_len(row_len: usize) -> usize {
    row_len.div_ceil(ROW_MULTIPLE) * ROW_MULTIPLE
}

/// `rows` rows of `row_floats` f32 each (a multiple of 64), back to back from a 64-byte
/// aligned start, so every row starts aligned; zero-initialized.
pub(crate) struct AlignedRows {
    storage: Vec<f32>,
    offset: usize,
    len: usize,
}

impl AlignedRows {
    pub(crate) fn new(rows: usize, row_floats: usize) -> Self {
        let len = rows * row_floats;
        let storage = vec![0f32; len + ROW_ALIGN_BYTES / 4];
        let offset = storage.as_ptr().align_offset(ROW_ALIGN_BYTES);
        AlignedRows {
            storage,
            offset,
            len,
        }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.storage[self.offset..self.offset + self.len]
    }
}

/// tract-linalg's softmax kernels (max, exp-and-sum, scale), built once per evaluation.
pub(crate) struct RowSoftmax {
    max: Box<dyn Reduce<f32>>,
    exp_sum: Box<dyn MapReduce<f32, f32>>,
    scale: Box<dyn ElementWise<f32, f32>>,
}

impl RowSoftmax {
    pub(crate) fn new() -> TractResult<Self> {
        Ok(RowSoftmax {
            max: Func::ReduceMax.reduce_f32()?,
            exp_sum: Func::Softmax2.map_reduce_f32()?,
            scale: Func::MulByScalar.ew_f32_param()?,
        })
    }

    /// Softmax of the scores `row[..row_len]`, in place, where `row` is
    /// [`padded_len`]`(row_len)` floats from a 64-byte aligned start. The padding takes
    /// no weight and ends as 0: it holds `f32::MIN` for the max, then `max - 1e9`.
    pub(crate) fn padded_row(&self, row: &mut [f32], row_len: usize) -> TractResult<()> {
        row[row_len..].fill(f32::MIN);
        let max = self.max.run(row)?;
        row[row_len..].fill(max - 1.0e9);
        let sum = self.exp_sum.run_with_params(row, max)?;
        self.scale.run_with_params(row, sum.recip())?;
        Ok(())
    }
}

/// Replaces every f32 softmax of `model` over its last axis whose row length is not a
/// known multiple of 64 (151 in the ASV encoder; the slot count in the sample graph)
/// by [`PaddedRowSoftmax`]. Run on the optimized model, before `into_runnable`.
pub(crate) fn pad_softmax_rows(model: &mut TypedModel) -> TractResult<()> {
    let candidates: Vec<usize> = model
        .nodes()
        .iter()
        .filter(|node| {
            let Some(op) = node.op_as::<Softmax>() else {
                return false;
            };
            let Ok(fact) = model.outlet_fact(node.inputs[0]) else {
                return false;
            };
            let rank = fact.rank();
            let aligned = fact
                .shape
                .last()
                .and_then(|d| d.to_usize().ok())
                .is_some_and(|n| n % ROW_MULTIPLE == 0);
            // `rank >= 1` first: a softmax of a scalar (an untrusted graph) is left to tract.
            rank >= 1
                && op.kind == SoftmaxKind::Softmax
                && op.quant_output_dt.is_none()
                && op.axes.as_slice() == [rank - 1]
                && fact.datum_type == f32::datum_type()
                && !aligned
        })
        .map(|node| node.id)
        .collect();
    for id in candidates {
        let node = model.node(id);
        let patch =
            TypedModelPatch::replace_single_op(model, node, &node.inputs, PaddedRowSoftmax)?;
        patch.apply(model)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Softmax of one row in f64 with the max subtracted: the independent reference.
    fn reference(row: &[f32]) -> Vec<f64> {
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let e: Vec<f64> = row.iter().map(|&x| (x as f64 - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        e.iter().map(|v| v / sum).collect()
    }

    fn scores(rows: usize, len: usize) -> Vec<f32> {
        (0..rows * len)
            .map(|i| {
                let (r, j) = (i / len, i % len);
                if r == 1 || (r == 2 && j >= len / 2) {
                    // A row whose scores are all masked, and a half-masked one.
                    MASKED_SCORE + (j % 3) as f32
                } else {
                    ((i * 37 % 101) as f32 - 50.0) / 7.0
                }
            })
            .collect()
    }

    /// The exported graphs' score of a masked key (`aam_model::attention::MASKED_SCORE`).
    const MASKED_SCORE: f32 = -1.0e9;

    #[test]
    fn rows_of_any_length_match_an_f64_softmax() {
        for len in [1, 5, 64, 151, 200, 320] {
            let mut data = scores(4, len);
            let expected: Vec<f64> = data.chunks(len).flat_map(reference).collect();
            softmax_rows(&mut data, len).unwrap();
            for (i, (&got, want)) in data.iter().zip(&expected).enumerate() {
                assert!(
                    (got as f64 - want).abs() < 1e-6,
                    "row length {len}, entry {i}: {got} vs {want}"
                );
            }
            // The all-masked row is uniform over its own entries, not the padding's.
            let masked = &data[len..2 * len];
            let uniform = 1.0 / len as f32;
            assert!(masked.iter().all(|&p| (p - uniform).abs() < 1e-6), "{len}");
        }
    }

    fn softmax_model(row_len: usize) -> TypedModel {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([3, row_len])).unwrap();
        let softmax = Softmax {
            axes: tvec!(1),
            quant_output_dt: None,
            kind: SoftmaxKind::Softmax,
        };
        let y = model.wire_node("softmax", softmax, &[x]).unwrap();
        model.select_output_outlets(&y).unwrap();
        model
    }

    #[test]
    fn only_rows_that_are_not_a_multiple_of_64_are_rewritten() {
        for (len, rewritten) in [(151, true), (192, false), (64, false), (10, true)] {
            let mut model = softmax_model(len);
            pad_softmax_rows(&mut model).unwrap();
            let ours = model
                .nodes()
                .iter()
                .filter(|n| n.op_is::<PaddedRowSoftmax>())
                .count();
            let tracts = model
                .nodes()
                .iter()
                .filter(|n| n.op_is::<Softmax>())
                .count();
            assert_eq!(
                (ours, tracts),
                if rewritten { (1, 0) } else { (0, 1) },
                "{len}"
            );
            // Same values as tract's own softmax.
            let input = tract_ndarray::Array2::from_shape_fn((3, len), |(i, j)| {
                ((i * 31 + j * 7) % 23) as f32 / 3.0
            })
            .into_tensor();
            let plain = softmax_model(len).into_runnable().unwrap();
            let want = plain.run(tvec!(input.clone().into_tvalue())).unwrap();
            let got = model
                .into_runnable()
                .unwrap()
                .run(tvec!(input.into_tvalue()))
                .unwrap();
            want[0].close_enough(&got[0], true).unwrap();
        }
    }
}
