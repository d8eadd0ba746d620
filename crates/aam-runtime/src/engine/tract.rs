//! The tract engine: the graph optimized once with symbolic `batch` and `n_asv`, shared
//! read-only by every thread; its attentions fused into one op each
//! ([`super::tract_attention`]) and its ragged softmaxes padded ([`super::tract_softmax`]).

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::tract_attention::{fuse_head_attention, onnx_with_head_attention};
use super::tract_softmax::pad_softmax_rows;
use super::{Input, NamedOutputs};
use crate::error::{Result, RuntimeError};

pub(crate) struct TractEngine {
    plan: Arc<TypedRunnableModel>,
}

impl TractEngine {
    pub(crate) fn prepare(proto: &tract_onnx::pb::ModelProto, path: &Path) -> Result<Self> {
        let mut proto = proto.clone();
        if let Some(graph) = proto.graph.as_mut() {
            fuse_head_attention(graph);
        }
        let plan = onnx_with_head_attention()
            .model_for_proto_model(&proto)
            .and_then(assert_dims_positive)
            .and_then(|m| m.into_optimized())
            .and_then(|mut m| {
                pad_softmax_rows(&mut m)?;
                m.into_runnable()
            })
            .map_err(|e| RuntimeError::Load {
                path: path.display().to_string(),
                message: format!("tract cannot prepare the graph: {e:#}"),
            })?;
        Ok(TractEngine { plan })
    }

    pub(crate) fn run(&self, inputs: Vec<Input>, names: &[String]) -> Result<NamedOutputs> {
        let inputs: TVec<TValue> = inputs
            .into_iter()
            .map(|i| {
                let (name, t): (&str, Tensor) = match i {
                    Input::I64(name, a) => (name, a.into()),
                    Input::F32(name, a) => (name, a.into()),
                };
                check_dims_asserted(name, t.shape())?;
                Ok(t.into_tvalue())
            })
            .collect::<Result<_>>()?;
        let out = self
            .plan
            .run(inputs)
            .map_err(|e| RuntimeError::Run(format!("{e:#}")))?;
        names
            .iter()
            .zip(out.iter())
            .map(|(name, value)| {
                let array = value
                    .to_plain_array_view::<f32>()
                    .map_err(|e| RuntimeError::Run(format!("output {name}: {e}")))?
                    .to_owned();
                Ok((name.clone(), array))
            })
            .collect()
    }
}

/// Largest value of a symbolic dimension (`batch`, `n_asv`, the ASV count `n` of the ASV
/// encoder) that the prepared plan accepts: 2^24, far beyond what fits in memory (2^24 ASVs
/// of 151 int64 tokens are 20 GB), small enough that a product of two dimensions and the
/// embedding dim stays within i64.
const MAX_SYMBOLIC_DIM: usize = 1 << 24;

/// Tells tract that every symbolic dimension lies in `1..=MAX_SYMBOLIC_DIM`. tract bounds a
/// product of dimensions only when every factor has both bounds; without them it cannot
/// prove a `[batch, n_asv, D]` tensor larger than its vector width and keeps element-wise
/// Adds and Muls on its generic ndarray path (~15% of a forward pass) instead of its unicast
/// and by-scalar kernels. [`check_dims_asserted`] holds every run to the assertion.
fn assert_dims_positive(model: InferenceModel) -> TractResult<InferenceModel> {
    for symbol in model.symbols.all_symbols() {
        model.symbols.add_assertion(format!("{symbol} >= 1"))?;
        model
            .symbols
            .add_assertion(format!("{symbol} <= {MAX_SYMBOLIC_DIM}"))?;
    }
    Ok(model)
}

/// Rejects an input with an empty or oversized axis before tract runs a plan prepared
/// under [`assert_dims_positive`]'s assumption.
///
/// Errors: [`RuntimeError::Input`] naming the input, its shape and the fix.
fn check_dims_asserted(name: &str, shape: &[usize]) -> Result<()> {
    if shape.iter().all(|&d| (1..=MAX_SYMBOLIC_DIM).contains(&d)) {
        return Ok(());
    }
    Err(RuntimeError::Input(format!(
        "graph input `{name}` has shape {shape:?}: tract runs axes of 1 to {MAX_SYMBOLIC_DIM} \
         entries; pass at least one sample and one ASV, and split larger batches into \
         several calls"
    )))
}
