//! The tract engine: the graph optimized once with symbolic `batch` and `n_asv`, shared
//! read-only by every thread.

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::{Input, NamedOutputs};
use crate::error::{Result, RuntimeError};

pub(crate) struct TractEngine {
    plan: Arc<TypedRunnableModel>,
}

impl TractEngine {
    pub(crate) fn prepare(proto: &tract_onnx::pb::ModelProto, path: &Path) -> Result<Self> {
        let plan = tract_onnx::onnx()
            .model_for_proto_model(proto)
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
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
                let t: Tensor = match i {
                    Input::I64(_, a) => a.into(),
                    Input::F32(_, a) => a.into(),
                };
                t.into_tvalue()
            })
            .collect();
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
