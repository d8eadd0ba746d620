//! `aam predict --backend ort` and `--provider`: ONNX Runtime reproduces the shipped
//! model's recorded predictions; unavailable providers are refused with the reason, or
//! fall back to the CPU with a warning when allowed; a missing library is named. The
//! ONNX Runtime tests need the `ort` feature and ORT_DYLIB_PATH (scripts/test.sh).

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn predict(extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aam"));
    c.args(["predict", "--model"])
        .arg(repo("models/circadian-exposure"))
        .arg("--table")
        .arg(repo("data/circadian-ihc/table.biom"))
        .args(extra);
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn tract_refuses_a_gpu_provider_unless_fallback_is_allowed() {
    let o = predict(&["--provider", "cuda"]).output().unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("execution provider `cuda` is not available: the tract backend runs on the CPU only; use --backend ort"),
        "{err}"
    );
    let o = predict(&["--provider", "cuda", "--allow-fallback"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning: execution provider `cuda` is not available, running on the CPU")
            && err.contains("(tract backend, execution provider cpu)"),
        "{err}"
    );
    let o = predict(&["--provider", "gpu"]).output().unwrap();
    assert!(
        stderr(&o).contains("unknown execution provider `gpu`; use `cpu`, `cuda` or `tensorrt`")
    );
}

#[cfg(feature = "ort")]
mod onnx_runtime {
    use super::*;

    fn rows(tsv: &str) -> Vec<Vec<String>> {
        tsv.lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn ort_reproduces_the_recorded_predictions() {
        assert!(
            std::env::var_os("ORT_DYLIB_PATH").is_some(),
            "set ORT_DYLIB_PATH"
        );
        let o = predict(&["--backend", "ort", "--ort-threads", "2"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("(ort backend, execution provider cpu)"),
            "{}",
            stderr(&o)
        );
        let got = rows(&String::from_utf8(o.stdout).unwrap());
        let want = rows(
            &std::fs::read_to_string(repo("models/circadian-exposure/predictions.tsv")).unwrap(),
        );
        assert_eq!(got.len(), 47);
        assert_eq!(got[0], want[0]);
        for (g, w) in got.iter().zip(&want).skip(1) {
            assert_eq!((&g[0], &g[1]), (&w[0], &w[1]), "sample id and label");
            for (a, b) in g[2..4].iter().zip(&w[2..4]) {
                let (a, b): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
                // Printed with 4 decimals: within 1e-4 plus one rounding step.
                assert!((a - b).abs() <= 2e-4, "{g:?} vs {w:?}");
            }
        }
    }

    #[test]
    fn unavailable_gpu_providers_name_what_is_missing() {
        for provider in ["cuda", "tensorrt"] {
            let o = predict(&["--backend", "ort", "--provider", provider])
                .output()
                .unwrap();
            assert!(!o.status.success());
            let err = stderr(&o);
            assert!(
                err.contains(&format!("execution provider `{provider}` is not available"))
                    && err.contains("onnxruntime-gpu")
                    && err.contains("--allow-fallback"),
                "{err}"
            );
        }
        let o = predict(&[
            "--backend",
            "ort",
            "--provider",
            "tensorrt",
            "--allow-fallback",
        ])
        .output()
        .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(
                "warning: execution provider `tensorrt` is not available, running on the CPU"
            ) && err.contains("(ort backend, execution provider cpu)"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_library_is_named_with_the_fix() {
        let o = predict(&["--backend", "ort"])
            .env_remove("ORT_DYLIB_PATH")
            .output()
            .unwrap();
        assert!(!o.status.success());
        let err = stderr(&o);
        assert!(
            err.contains("pass --ort-lib PATH or set ORT_DYLIB_PATH")
                && err.contains("pip install onnxruntime==1.31.1"),
            "{err}"
        );
        let o = predict(&[
            "--backend",
            "ort",
            "--ort-lib",
            "/nonexistent/libonnxruntime.so",
        ])
        .output()
        .unwrap();
        let err = stderr(&o);
        assert!(
            err.contains("ONNX Runtime library /nonexistent/libonnxruntime.so: no such file"),
            "{err}"
        );
    }
}
