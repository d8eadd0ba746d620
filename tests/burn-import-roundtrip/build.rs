//! Generates Burn code from the shipped model's ONNX graph with burn-import.
#![allow(deprecated)] // burn-import 0.21 re-exports burn-onnx under its old name.

fn main() {
    let onnx = "../../models/circadian-exposure/model.onnx";
    println!("cargo:rerun-if-changed={onnx}");
    burn_import::onnx::ModelGen::new()
        .input(onnx)
        .out_dir("model/")
        .run_from_script();
}
