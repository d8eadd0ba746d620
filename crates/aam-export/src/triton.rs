//! A Triton Inference Server model repository for an exported `model.onnx`
//! (Triton `docs/user_guide/model_repository.md` and `model_configuration.md`):
//!
//! ```text
//! <repository>/<name>/config.pbtxt
//! <repository>/<name>/1/model.onnx
//! <repository>/<name>/labels.txt        (classifiers: one class label per line)
//! ```
//!
//! `config.pbtxt` is written from the graph's own inputs and outputs (names, element
//! types, shapes), so it cannot drift from the model: with `max_batch_size > 0` the
//! leading batch axis is implicit and every other dynamic axis (`n_asv`) is `-1`.
//! Dynamic batching is on; the optional TensorRT accelerator goes in
//! `optimization.execution_accelerators` (ONNX Runtime's TensorRT execution provider
//! inside Triton's onnxruntime backend).

use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::dimension::Value;
use onnx_protobuf::{Message, ModelProto, ValueInfoProto};
use protobuf::Enum;

/// Settings of the generated `config.pbtxt`.
#[derive(Debug, Clone, PartialEq)]
pub struct TritonOptions {
    /// Model name (the repository folder).
    pub name: String,
    /// Largest batch Triton forms (`max_batch_size`).
    pub max_batch_size: usize,
    /// Longest wait to fill a batch, in microseconds (`max_queue_delay_microseconds`).
    pub max_queue_delay_us: u64,
    /// Add the TensorRT accelerator (GPU instances).
    pub tensorrt: bool,
    /// TensorRT precision FP16 instead of FP32.
    pub tensorrt_fp16: bool,
    /// Instance kind: `KIND_GPU` when true, else `KIND_CPU`.
    pub gpu: bool,
}

impl Default for TritonOptions {
    fn default() -> Self {
        TritonOptions {
            name: "aam".into(),
            max_batch_size: 64,
            max_queue_delay_us: 500,
            tensorrt: false,
            tensorrt_fp16: false,
            gpu: true,
        }
    }
}

/// One graph input or output as Triton sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TritonTensor {
    /// Tensor name in the graph.
    pub name: String,
    /// Triton data type (`TYPE_FP32`, `TYPE_INT64`, …).
    pub data_type: &'static str,
    /// Dimensions after the batch axis; `-1` for a dynamic one.
    pub dims: Vec<i64>,
}

fn triton_type(elem_type: i32) -> Result<&'static str> {
    Ok(match DataType::from_i32(elem_type) {
        Some(DataType::FLOAT) => "TYPE_FP32",
        Some(DataType::FLOAT16) => "TYPE_FP16",
        Some(DataType::BFLOAT16) => "TYPE_BF16",
        Some(DataType::DOUBLE) => "TYPE_FP64",
        Some(DataType::INT64) => "TYPE_INT64",
        Some(DataType::INT32) => "TYPE_INT32",
        Some(DataType::BOOL) => "TYPE_BOOL",
        _ => bail!("ONNX element type {elem_type} has no Triton counterpart here"),
    })
}

fn tensor(v: &ValueInfoProto) -> Result<TritonTensor> {
    let t = v.type_.tensor_type();
    let dims: Vec<&onnx_protobuf::tensor_shape_proto::Dimension> = t.shape.dim.iter().collect();
    let Some(first) = dims.first() else {
        bail!("{}: a scalar has no batch axis for Triton", v.name);
    };
    if !matches!(first.value, Some(Value::DimParam(_))) {
        bail!("{}: the first axis is not a dynamic batch axis", v.name);
    }
    Ok(TritonTensor {
        name: v.name.clone(),
        data_type: triton_type(t.elem_type)?,
        dims: dims[1..]
            .iter()
            .map(|d| match d.value {
                Some(Value::DimValue(n)) => n,
                _ => -1,
            })
            .collect(),
    })
}

/// The inputs and outputs of an ONNX model as Triton tensors (batch axis removed).
///
/// Errors: not an ONNX model; a tensor without a leading dynamic batch axis, or of an
/// element type Triton has no name for.
pub fn triton_tensors(onnx: &[u8]) -> Result<(Vec<TritonTensor>, Vec<TritonTensor>)> {
    let model = ModelProto::parse_from_bytes(onnx).context("not an ONNX model")?;
    let g = &model.graph;
    let initializers: std::collections::HashSet<&str> =
        g.initializer.iter().map(|i| i.name.as_str()).collect();
    let inputs = g
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_str()))
        .map(tensor)
        .collect::<Result<_>>()?;
    let outputs = g.output.iter().map(tensor).collect::<Result<_>>()?;
    Ok((inputs, outputs))
}

fn dims(d: &[i64]) -> String {
    d.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// The `config.pbtxt` text for `onnx`; `labels` (a classifier's classes) are attached to
/// the `class_probabilities` output as `labels.txt`.
///
/// Errors: as [`triton_tensors`]; `max_batch_size` 0.
pub fn config_pbtxt(onnx: &[u8], options: &TritonOptions, labels: bool) -> Result<String> {
    if options.max_batch_size == 0 {
        bail!("max_batch_size must be at least 1 (the graph has a dynamic batch axis)");
    }
    let (inputs, outputs) = triton_tensors(onnx)?;
    let mut s = String::new();
    let _ = writeln!(s, "name: \"{}\"", options.name);
    s.push_str("platform: \"onnxruntime_onnx\"\n");
    let _ = writeln!(s, "max_batch_size: {}", options.max_batch_size);
    let block = |s: &mut String, key: &str, tensors: &[TritonTensor], labelled: bool| {
        let _ = writeln!(s, "{key} [");
        for (k, t) in tensors.iter().enumerate() {
            let _ = write!(
                s,
                "  {{\n    name: \"{}\"\n    data_type: {}\n    dims: [ {} ]\n",
                t.name,
                t.data_type,
                dims(&t.dims)
            );
            if labelled && t.name == "class_probabilities" {
                s.push_str("    label_filename: \"labels.txt\"\n");
            }
            s.push_str(if k + 1 < tensors.len() {
                "  },\n"
            } else {
                "  }\n"
            });
        }
        s.push_str("]\n");
    };
    block(&mut s, "input", &inputs, false);
    block(&mut s, "output", &outputs, labels);
    let preferred: Vec<String> = [1usize, 8, 32]
        .iter()
        .filter(|&&b| b <= options.max_batch_size)
        .map(usize::to_string)
        .collect();
    let _ = writeln!(
        s,
        "dynamic_batching {{\n  preferred_batch_size: [ {} ]\n  max_queue_delay_microseconds: {}\n}}",
        preferred.join(", "),
        options.max_queue_delay_us
    );
    let _ = writeln!(
        s,
        "instance_group [\n  {{\n    count: 1\n    kind: {}\n  }}\n]",
        if options.gpu { "KIND_GPU" } else { "KIND_CPU" }
    );
    if options.tensorrt {
        let _ = writeln!(
            s,
            "optimization {{\n  execution_accelerators {{\n    gpu_execution_accelerator: [\n      {{\n        name: \"tensorrt\"\n        parameters {{ key: \"precision_mode\" value: \"{}\" }}\n      }}\n    ]\n  }}\n}}",
            if options.tensorrt_fp16 { "FP16" } else { "FP32" }
        );
    }
    Ok(s)
}
