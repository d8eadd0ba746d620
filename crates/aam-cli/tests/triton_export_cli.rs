//! `aam export --triton`: the repository layout Triton loads (`<name>/config.pbtxt`,
//! `<name>/1/model.onnx`, `labels.txt`), the config's tensors against the exported
//! graph's, and the refusals. (`scripts/check_triton.py` in the test command parses the
//! config with Triton's own ModelConfig schema and runs the model.)

use std::path::Path;

mod common;
use common::{aam, repo, stderr};

fn export(dir: &Path, extra: &[&str]) -> std::process::Output {
    let out = dir.join("export").display().to_string();
    let tri = dir.join("triton").display().to_string();
    let checkpoint = repo("models/circadian-exposure");
    let mut args = vec![
        "export",
        "--checkpoint",
        &checkpoint,
        "--output",
        &out,
        "--triton",
        &tri,
    ];
    args.extend(extra);
    aam(&args)
}

#[test]
fn triton_repository_of_the_shipped_classifier() {
    let dir = tempfile::tempdir().unwrap();
    let o = export(
        dir.path(),
        &["--triton-name", "circadian", "--triton-max-batch", "16"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let model = dir.path().join("triton/circadian");
    // Triton serves the same bytes the export wrote.
    assert_eq!(
        std::fs::read(model.join("1/model.onnx")).unwrap(),
        std::fs::read(dir.path().join("export/model.onnx")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(model.join("labels.txt")).unwrap(),
        "Air\nIHC\n"
    );
    let config = std::fs::read_to_string(model.join("config.pbtxt")).unwrap();
    for line in [
        "name: \"circadian\"",
        "platform: \"onnxruntime_onnx\"",
        "max_batch_size: 16",
        "preferred_batch_size: [ 1, 8 ]",
        "kind: KIND_GPU",
    ] {
        assert!(config.contains(line), "{line}:\n{config}");
    }
    assert!(!config.contains("tensorrt"));
    // Tensors in graph order: tokens int64 [batch, n_asv, 91] in; the four outputs of a
    // classifier with D = 32 and 2 classes.
    let blocks: Vec<(String, String, String)> = config
        .split("\n    name: \"")
        .skip(1)
        .map(|b| {
            let name = b.split('"').next().unwrap().to_string();
            let dtype = b
                .split("data_type: ")
                .nth(1)
                .unwrap()
                .split('\n')
                .next()
                .unwrap()
                .to_string();
            let dims = b
                .split("dims: [ ")
                .nth(1)
                .unwrap()
                .split(" ]")
                .next()
                .unwrap()
                .to_string();
            (name, dtype, dims)
        })
        .collect();
    let want = [
        ("tokens", "TYPE_INT64", "-1, 91"),
        ("embeddings", "TYPE_FP32", "32"),
        ("target_prediction", "TYPE_FP32", "2"),
        ("class_probabilities", "TYPE_FP32", "2"),
        ("count_prediction", "TYPE_FP32", "-1, 1"),
    ];
    assert_eq!(
        blocks,
        want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    let labelled = config
        .split("name: \"class_probabilities\"")
        .nth(1)
        .unwrap();
    assert!(labelled
        .split('}')
        .next()
        .unwrap()
        .contains("label_filename: \"labels.txt\""));

    // An existing model is kept unless --overwrite; bad names and a zero batch refused.
    let o = export(dir.path(), &["--triton-name", "circadian", "--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_file(dir.path().join("export/model.onnx")).unwrap();
    let o = export(dir.path(), &["--triton-name", "circadian"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--overwrite"),
        "{}",
        stderr(&o)
    );
    for bad in ["../escape", "..", ".hidden"] {
        let o = export(dir.path(), &["--triton-name", bad, "--overwrite"]);
        assert!(
            !o.status.success() && stderr(&o).contains("--triton-name"),
            "{bad}: {}",
            stderr(&o)
        );
    }
    assert!(
        !dir.path().join("config.pbtxt").exists(),
        "nothing written above the repository"
    );
    let o = export(
        dir.path(),
        &[
            "--triton-name",
            "zero",
            "--triton-max-batch",
            "0",
            "--overwrite",
        ],
    );
    assert!(
        !o.status.success() && stderr(&o).contains("--triton-max-batch"),
        "{}",
        stderr(&o)
    );
    // TensorRT in FP16 on CPU instances is a contradiction.
    let o = export(
        dir.path(),
        &["--triton-tensorrt", "--triton-cpu", "--overwrite"],
    );
    assert!(!o.status.success(), "{}", stderr(&o));
    let o = export(
        dir.path(),
        &[
            "--triton-name",
            "trt",
            "--triton-tensorrt",
            "--triton-fp16",
            "--overwrite",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let trt = std::fs::read_to_string(dir.path().join("triton/trt/config.pbtxt")).unwrap();
    assert!(
        trt.contains("name: \"tensorrt\"") && trt.contains("value: \"FP16\""),
        "{trt}"
    );
}
