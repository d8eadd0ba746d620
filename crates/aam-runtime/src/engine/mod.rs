//! The engines that run an exported ONNX graph: tract (always) and ONNX Runtime
//! (cargo feature `ort`). Both take int64 tokens `[batch, n_asv, max_bp + 1]` (and, for a
//! model with a count embedding, f32 read counts `[batch, n_asv, 1]`) and return the
//! graph's f32 outputs by name.

use std::collections::HashMap;
use std::path::Path;

use aam_config::ModelConfig;
use ndarray::{Array2, Array3, ArrayD};

use crate::error::{Result, RuntimeError};
use crate::options::{Backend, ExecutionProvider, LoadOptions};

#[cfg(feature = "ort")]
mod onnxruntime;
#[cfg(feature = "ort")]
mod probe;
mod tract;
mod tract_attention;
mod tract_softmax;

#[cfg(feature = "ort")]
pub use onnxruntime::{library_version, RECOMMENDED_ORT_VERSION, REQUIRED_ORT_VERSION};

/// Graph outputs by name, f32 of any rank.
pub(crate) type NamedOutputs = HashMap<String, ArrayD<f32>>;

/// One graph input: its name and value, in the graph's input order (tract goes by
/// order, ONNX Runtime by name).
#[cfg_attr(not(feature = "ort"), allow(dead_code))]
pub(crate) enum Input {
    /// int64 tokens.
    I64(&'static str, ArrayD<i64>),
    /// f32 embeddings or masks.
    F32(&'static str, ArrayD<f32>),
}

/// A prepared graph on one backend.
pub(crate) enum Engine {
    Tract(tract::TractEngine),
    #[cfg(feature = "ort")]
    Ort(onnxruntime::OrtEngine),
}

/// Where a model ended up running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Backend running the graph.
    pub backend: Backend,
    /// Execution provider actually used.
    pub provider: ExecutionProvider,
    /// Why the requested provider was not used (only after an allowed fallback).
    pub fallback_reason: Option<String>,
}

impl Engine {
    /// Prepares the graph in `bytes` (already parsed as `proto` for its metadata) as
    /// `options` ask.
    ///
    /// Errors: the backend cannot prepare the graph; the backend or provider is not
    /// available (see [`LoadOptions::allow_fallback`]).
    pub(crate) fn prepare(
        bytes: &[u8],
        proto: &tract_onnx::pb::ModelProto,
        path: &Path,
        model: &ModelConfig,
        options: &LoadOptions,
    ) -> Result<(Engine, Placement)> {
        match options.backend {
            Backend::Tract => {
                let fallback_reason = match options.provider {
                    ExecutionProvider::Cpu => None,
                    p if options.allow_fallback => Some(format!(
                        "the tract backend runs on the CPU only; use --backend ort for `{p}`"
                    )),
                    p => {
                        return Err(RuntimeError::ProviderUnavailable {
                            provider: p.to_string(),
                            missing: "the tract backend runs on the CPU only; use --backend ort"
                                .into(),
                        })
                    }
                };
                let engine = Engine::Tract(tract::TractEngine::prepare(proto, path)?);
                let placement = Placement {
                    backend: Backend::Tract,
                    provider: ExecutionProvider::Cpu,
                    fallback_reason,
                };
                Ok((engine, placement))
            }
            #[cfg(feature = "ort")]
            Backend::Ort => {
                let (engine, placement) =
                    onnxruntime::OrtEngine::prepare(bytes, path, model, options)?;
                Ok((Engine::Ort(engine), placement))
            }
            #[cfg(not(feature = "ort"))]
            Backend::Ort => {
                let _ = (bytes, model);
                Err(RuntimeError::Unsupported(
                    "this build of aam has no ONNX Runtime backend; rebuild with `--features ort` or use the tract backend".into(),
                ))
            }
        }
    }

    /// Runs the graph on checked `inputs` (in the graph's input order), returning the
    /// outputs in `names` (the graph's output order).
    pub(crate) fn run(&self, inputs: Vec<Input>, names: &[String]) -> Result<NamedOutputs> {
        match self {
            Engine::Tract(e) => e.run(inputs, names),
            #[cfg(feature = "ort")]
            Engine::Ort(e) => e.run(inputs, names),
        }
    }

    /// Runs the full graph on `tokens` and, for a model with a count embedding, the
    /// slots' read counts f32 `[batch, n_asv, 1]`, and for a model conditioned on
    /// categories, `categorical_ids` int64 `[batch, n_columns]`.
    pub(crate) fn run_tokens(
        &self,
        tokens: Array3<i64>,
        counts: Option<Array3<f32>>,
        ids: Option<Array2<i64>>,
        names: &[String],
    ) -> Result<NamedOutputs> {
        let mut inputs = vec![Input::I64("tokens", tokens.into_dyn())];
        if let Some(c) = counts {
            inputs.push(Input::F32("counts", c.into_dyn()));
        }
        if let Some(i) = ids {
            inputs.push(Input::I64("categorical_ids", i.into_dyn()));
        }
        self.run(inputs, names)
    }
}
