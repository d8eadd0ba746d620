//! Export of trained AAM models to safetensors and ONNX.
//!
//! Not implemented yet: this crate is filled in by the issues that follow the data layer
//! (model: issue 3, train: issue 3, export and runtime: issue 4, C ABI: issue 5).
#![warn(missing_docs)]
