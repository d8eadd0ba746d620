//! Reading an ONNX file that may come from anywhere: parsed without touching other files,
//! its declared shapes checked against the configuration stored beside it. Shared by the
//! single graph (`model.rs`) and the split graphs (`split_graphs.rs`).

use std::path::Path;

use tract_onnx::prelude::Framework;

use crate::error::{Result, RuntimeError};

/// Parses ONNX `bytes` read from `path`.
///
/// Errors: not ONNX; an initializer that keeps its data in an external file (never
/// read: `aam export` writes every weight into the graph, and a path inside an
/// untrusted model must not make the loader open other files).
pub(crate) fn parse_onnx(bytes: &[u8], path: &Path) -> Result<tract_onnx::pb::ModelProto> {
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut std::io::Cursor::new(bytes))
        .map_err(|e| load_err(path, format!("not a readable ONNX model ({e})")))?;
    let initializers = proto.graph.iter().flat_map(|g| g.initializer.iter());
    if let Some(t) = initializers
        .into_iter()
        .find(|t| t.data_location == Some(1) || !t.external_data.is_empty())
    {
        return Err(load_err(
            path,
            format!(
                "initializer '{}' keeps its data in an external file; aam never reads external data (`aam export` writes every weight into model.onnx): re-export the model with `aam export`",
                t.name
            ),
        ));
    }
    Ok(proto)
}

/// The graph's output names, in order.
pub(crate) fn output_names(proto: &tract_onnx::pb::ModelProto) -> Vec<String> {
    proto
        .graph
        .as_ref()
        .map(|g| g.output.iter().map(|o| o.name.clone()).collect())
        .unwrap_or_default()
}

/// The dimensions graph value `name` declares (`None` for a symbolic one), or `None`
/// when the graph has no such input or output or gives it no shape.
fn declared_shape(proto: &tract_onnx::pb::ModelProto, name: &str) -> Option<Vec<Option<i64>>> {
    use tract_onnx::pb::tensor_shape_proto::dimension::Value as Dim;
    use tract_onnx::pb::type_proto::Value as Type;
    let g = proto.graph.as_ref()?;
    let v = g.input.iter().chain(&g.output).find(|v| v.name == name)?;
    let Some(Type::TensorType(t)) = v.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    Some(
        t.shape
            .as_ref()?
            .dim
            .iter()
            .map(|d| match d.value {
                Some(Dim::DimValue(n)) => Some(n),
                _ => None,
            })
            .collect(),
    )
}

/// Checks the sizes of the stored configuration (already within
/// [`aam_config::SIZE_LIMITS`]) against the graph's own `tokens` input
/// `[batch, n_asv, max_bp + 1]` and `target_prediction` output `[batch, out_dim]`, so
/// an edited configuration cannot size buffers the graph does not take.
///
/// Errors: a declared width that differs from the configuration's, naming both.
pub(crate) fn check_declared_shapes(
    proto: &tract_onnx::pb::ModelProto,
    m: &aam_config::ModelConfig,
    path: &Path,
) -> Result<()> {
    let checks = [
        ("tokens", "max_bp + 1", m.max_bp + 1),
        (
            "target_prediction",
            match m.head.num_quantiles {
                Some(_) => "out_dim · num_quantiles",
                None => "out_dim",
            },
            m.head.output_width(m.out_dim),
        ),
    ];
    for (name, field, want) in checks {
        let Some(dims) = declared_shape(proto, name) else {
            continue;
        };
        if let Some(Some(n)) = dims.last() {
            if usize::try_from(*n).ok() != Some(want) {
                return Err(load_err(
                    path,
                    format!(
                        "the stored configuration says {field} = {want}, but the graph's `{name}` is {n} wide: the `aam_config` metadata was edited or belongs to another model (re-export it with `aam export`)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    if !path.is_file() {
        return Err(load_err(path, format!("no such file; {what}")));
    }
    std::fs::read(path).map_err(|e| load_err(path, format!("cannot read the model ({e})")))
}

pub(crate) fn load_err(path: &Path, message: impl Into<String>) -> RuntimeError {
    RuntimeError::Load {
        path: path.display().to_string(),
        message: message.into(),
    }
}
