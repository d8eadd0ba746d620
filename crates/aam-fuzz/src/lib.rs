//! Fuzz targets of aam, as plain functions `fn(&[u8])`.
//!
//! Each target feeds arbitrary bytes to one of aam's entry points for untrusted input
//! (BIOM tables in their three forms, distance matrices, metadata TSV, QIIME 2 artifacts, safetensors
//! weights, ONNX models, a model directory's configuration, the C ABI, `aam serve`'s
//! request bodies) and returns normally whatever the bytes are: a
//! malformed input must come back as an error, never as a panic, an abort or a result
//! that breaks the type's invariants (checked after every accepted input). A panic is a
//! finding.
//!
//! The same functions run under libFuzzer (`fuzz/`, `scripts/fuzz.sh`, coverage-guided)
//! and under `cargo test` (`tests/replay.rs`), which replays the committed seeds and
//! every finding kept in `fuzz/regressions/<target>/`.

#![deny(missing_docs)]

pub mod scratch;
pub mod seeds;
pub mod shipped;
pub mod targets;

/// A fuzz target: arbitrary bytes in, a panic on a finding.
pub type Target = fn(&[u8]);

/// Every target by its name (the name of its `fuzz/fuzz_targets/<name>.rs` and of its
/// folders under `fuzz/seeds/` and `fuzz/regressions/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("biom_table", targets::biom_table::run),
    ("distance_matrix", targets::distance_matrix::run),
    ("metadata_tsv", targets::metadata_tsv::run),
    ("qiime2_artifact", targets::qiime2_artifact::run),
    ("safetensors_weights", targets::safetensors_weights::run),
    ("onnx_model", targets::onnx_model::run),
    ("c_abi", targets::c_abi::run),
    ("serve_http", targets::serve_http::run),
    ("model_dir", targets::model_dir::run),
];
