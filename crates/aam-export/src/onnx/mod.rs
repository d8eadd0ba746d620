//! The ONNX exporter: the model written node by node with `onnx-protobuf` (Burn's own
//! ONNX export cannot express this transformer; see `shared/docs/rust-stack.md`).

pub mod attention;
pub mod builder;
pub mod graph;
pub mod head;
pub mod layers;
pub mod names;
pub mod pooling;
pub mod transformer;
