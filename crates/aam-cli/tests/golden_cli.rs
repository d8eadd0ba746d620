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
