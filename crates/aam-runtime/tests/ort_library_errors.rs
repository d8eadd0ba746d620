//! A missing, foreign or absent ONNX Runtime library is a typed error naming what was
//! found and how to fix it, never a panic. Its own test binary: no library is ever
//! loaded successfully in this process.
#![cfg(feature = "ort")]

use std::path::PathBuf;

use aam_runtime::{Backend, LoadOptions, Model, RuntimeError};

fn model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/circadian-exposure/model.onnx")
}

fn load(library: Option<PathBuf>) -> RuntimeError {
    let options = LoadOptions {
        backend: Backend::Ort,
        ort_library: library,
        ..LoadOptions::default()
    };
    Model::load_with(model(), &options).unwrap_err()
}

#[test]
fn a_missing_library_file_is_named() {
    let err = load(Some(PathBuf::from("/nonexistent/libonnxruntime.so")));
    match &err {
        RuntimeError::OrtLibrary { path, message } => {
            assert_eq!(path, "/nonexistent/libonnxruntime.so");
            assert!(message.contains("no such file"), "{message}");
        }
        other => panic!("expected OrtLibrary, got {other:?}"),
    }
}

#[test]
fn a_library_that_is_not_onnx_runtime_is_refused() {
    // libm: a real shared library without OrtGetApiBase.
    let libm = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .expect("libm.so.6");
    let err = load(Some(libm));
    assert!(
        matches!(&err, RuntimeError::OrtLibrary { message, .. } if message.contains("is not ONNX Runtime")),
        "{err}"
    );
}

#[test]
fn a_file_that_is_no_library_is_refused() {
    let err = load(Some(model()));
    assert!(
        matches!(&err, RuntimeError::OrtLibrary { message, .. } if message.contains("cannot be loaded")),
        "{err}"
    );
}
