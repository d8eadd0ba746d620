//! Golden parity through the CLI: `aam import-torch` on the reference state dict, then
//! `aam forward` reproduces all five reference outputs within 1e-4 on every non-padding
//! position.

use std::path::PathBuf;
use std::process::Command;

use aam_model::WeightMap;

fn golden(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/golden/small-regressor")
        .join(file)
}

fn aam(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_aam"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aam {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn import_torch_then_forward_matches_reference() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    let outputs = dir.path().join("out.safetensors");
    let s = |p: &PathBuf| p.display().to_string();
    let msg = aam(&[
        "import-torch",
        "--state-dict",
        &s(&golden("weights.safetensors")),
        "--config",
        &s(&golden("config.json")),
        "--output",
        &s(&ckpt),
    ]);
    assert!(msg.contains("Predictor"), "{msg}");
    aam(&[
        "forward",
        "--checkpoint",
        &s(&ckpt),
        "--tokens",
        &s(&golden("tokens.npy")),
        "--output",
        &s(&outputs),
    ]);

    let tokens: ndarray::Array3<i64> = ndarray_npy::read_npy(golden("tokens.npy")).unwrap();
    let (b, sl, l) = tokens.dim();
    let got = WeightMap::load(&outputs).unwrap();
    let want = WeightMap::load(&golden("outputs.safetensors")).unwrap();
    let valid_slot = |i: usize, j: usize| (0..l).any(|k| tokens[[i, j, k]] > 0);
    let cases: [(&str, Vec<usize>); 5] = [
        ("target_prediction", vec![b, 1]),
        ("embeddings", vec![b, 64]),
        ("count_prediction", vec![b, sl, 1]),
        ("base_embeddings", vec![b, sl, 64]),
        ("nuc_predictions", vec![b, sl, l, 6]),
    ];
    for (name, shape) in cases {
        let (g, w) = (
            got.get(name, &shape).unwrap(),
            want.get(name, &shape).unwrap(),
        );
        let mut max_diff = 0f32;
        for (k, (a, e)) in g.iter().zip(w).enumerate() {
            assert!(a.is_finite(), "{name}[{k}] is not finite");
            let counted = match shape.len() {
                2 => true,
                3 => valid_slot(k / (sl * shape[2]), (k / shape[2]) % sl),
                _ => {
                    let (i, j, t) = (k / (sl * l * 6), (k / (l * 6)) % sl, (k / 6) % l);
                    tokens[[i, j, t]] > 0
                }
            };
            if counted {
                max_diff = max_diff.max((a - e).abs());
            }
        }
        assert!(max_diff <= 1e-4, "{name}: max |diff| {max_diff}");
    }
}

#[test]
fn import_refuses_to_overwrite_and_mismatched_config() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt").display().to_string();
    let w = golden("weights.safetensors").display().to_string();
    let c = golden("config.json").display().to_string();
    aam(&[
        "import-torch",
        "--state-dict",
        &w,
        "--config",
        &c,
        "--output",
        &ckpt,
    ]);
    let again = Command::new(env!("CARGO_BIN_EXE_aam"))
        .args([
            "import-torch",
            "--state-dict",
            &w,
            "--config",
            &c,
            "--output",
            &ckpt,
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));
    // A config with another embedding dim names the first mismatching tensor.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        std::fs::read_to_string(golden("config.json"))
            .unwrap()
            .replace("\"embedding_dim\": 64", "\"embedding_dim\": 32"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aam"))
        .args([
            "import-torch",
            "--state-dict",
            &w,
            "--config",
            &bad.display().to_string(),
            "--output",
            &dir.path().join("x").display().to_string(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("has shape") && err.contains("bad.json") && !err.contains("panicked"),
        "{err}"
    );
}

/// `aam import-torch` then `aam forward --counts --categorical-ids` on the reference's
/// latest head options reproduce its outputs within 1e-4 (valid slots), including the
/// fusion's own output (`gmu_gate` or `perceiver_attn_weights`).
#[test]
fn head_options_through_import_and_forward_match_reference() {
    let cases: [(&str, Vec<(&str, Vec<usize>)>); 2] = [
        (
            "head-gmu-count-quantile",
            vec![
                ("target_prediction", vec![4, 1, 3]),
                ("count_prediction", vec![4, 24, 1]),
                ("embeddings", vec![4, 32]),
                ("gmu_gate", vec![4, 32]),
            ],
        ),
        (
            "head-perceiver-film-classifier",
            vec![
                ("target_prediction", vec![4, 4]),
                ("count_prediction", vec![4, 24, 1]),
                ("embeddings", vec![4, 32]),
                ("perceiver_attn_weights", vec![4, 2, 6, 25]),
            ],
        ),
    ];
    for (name, outputs) in cases {
        let file = |f: &str| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/golden")
                .join(name)
                .join(f)
                .display()
                .to_string()
        };
        let dir = tempfile::tempdir().unwrap();
        let ckpt = dir.path().join("ckpt").display().to_string();
        let out = dir.path().join("out.safetensors");
        aam(&[
            "import-torch",
            "--state-dict",
            &file("weights.safetensors"),
            "--config",
            &file("config.json"),
            "--output",
            &ckpt,
        ]);
        let forward = |ids: Option<&str>| {
            let mut args = vec![
                "forward",
                "--checkpoint",
                &ckpt,
                "--output",
                out.to_str().unwrap(),
            ];
            let (tokens, counts) = (file("tokens.npy"), file("counts.npy"));
            args.extend(["--tokens", &tokens, "--counts", &counts]);
            let ids_arg;
            if let Some(i) = ids {
                ids_arg = i.to_string();
                args.extend(["--categorical-ids", &ids_arg]);
            }
            Command::new(env!("CARGO_BIN_EXE_aam"))
                .args(&args)
                .output()
                .unwrap()
        };
        // Without the ids: an error that names the columns and the flag.
        let refused = forward(None);
        assert!(!refused.status.success());
        let msg = String::from_utf8_lossy(&refused.stderr);
        assert!(
            msg.contains("--categorical-ids") && msg.contains("subject"),
            "{msg}"
        );
        // The export's single graph, on tract, gives the reference's outputs too.
        let export = dir.path().join("export");
        aam(&[
            "export",
            "--checkpoint",
            &ckpt,
            "--output",
            export.to_str().unwrap(),
        ]);
        let onnx_path = export.join("model.onnx");
        let onnx = aam_runtime::Model::from_bytes(&std::fs::read(&onnx_path).unwrap(), &onnx_path)
            .unwrap();
        let tokens: ndarray::Array3<i64> = ndarray_npy::read_npy(file("tokens.npy")).unwrap();
        let counts: ndarray::Array3<f32> = ndarray_npy::read_npy(file("counts.npy")).unwrap();
        let ids: ndarray::Array2<i64> = ndarray_npy::read_npy(file("categorical_ids.npy")).unwrap();
        let raw = onnx
            .run_with_categories(tokens.view(), Some(counts.view()), ids.view())
            .unwrap();
        let want = WeightMap::load(&PathBuf::from(file("outputs.safetensors"))).unwrap();
        let target = raw.target_prediction.unwrap();
        let expected = want.get("target_prediction", &outputs[0].1).unwrap();
        let d = target
            .iter()
            .zip(expected)
            .map(|(a, e)| (a - e).abs())
            .fold(0f32, f32::max);
        assert!(d <= 1e-4, "{name} ONNX target_prediction: max |diff| {d}");
        let run = forward(Some(&file("categorical_ids.npy")));
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );

        let tokens: ndarray::Array3<i64> = ndarray_npy::read_npy(file("tokens.npy")).unwrap();
        let (_, sl, l) = tokens.dim();
        let got = WeightMap::load(&out).unwrap();
        let want = WeightMap::load(&PathBuf::from(file("outputs.safetensors"))).unwrap();
        for (output, shape) in outputs {
            let (g, w) = (
                got.get(output, &shape).unwrap(),
                want.get(output, &shape).unwrap(),
            );
            let per_slot = output == "count_prediction";
            let max_diff = g
                .iter()
                .zip(w)
                .enumerate()
                .filter(|(k, _)| !per_slot || (0..l).any(|t| tokens[[k / sl, k % sl, t]] > 0))
                .map(|(_, (a, e))| (a - e).abs())
                .fold(0f32, f32::max);
            assert!(max_diff <= 1e-4, "{name} {output}: max |diff| {max_diff}");
        }
    }
}
