//! One target per entry point for untrusted input.

pub mod biom_table;
pub mod c_abi;
pub mod distance_matrix;
pub mod metadata_tsv;
pub mod model_dir;
pub mod onnx_model;
pub mod qiime2_artifact;
pub mod safetensors_weights;
pub mod serve_http;
