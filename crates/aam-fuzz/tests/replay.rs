//! Every fuzz target on its seeds (cut from the real datasets and the shipped model), on
//! deterministic damage of each seed (truncations and byte flips at spread positions), and
//! on every finding kept in `fuzz/regressions/<target>/`: the regression tests of the
//! fuzzers' findings, and a small fuzz run that needs no nightly toolchain.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use aam_fuzz::{seeds, TARGETS};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The kept findings of `name`, by file name.
fn regressions(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = repo().join("fuzz/regressions").join(name);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.expect("a readable regressions folder").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .map(|p| {
            (
                format!(
                    "regressions/{name}/{}",
                    p.file_name().unwrap().to_string_lossy()
                ),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// `bytes` cut at 8 spread lengths, and with one byte inverted at 24 spread positions.
fn damaged(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let n = bytes.len();
    let mut out = Vec::new();
    for k in 0..8 {
        let len = n * k / 8;
        out.push((format!("cut at {len}"), bytes[..len].to_vec()));
    }
    for k in 0..24 {
        // Denser near the start, where headers are.
        let at = if k < 12 { k * 7 } else { n * (k - 11) / 14 };
        if at < n {
            let mut b = bytes.to_vec();
            b[at] ^= 0xFF;
            out.push((format!("byte {at} inverted"), b));
        }
    }
    out
}

fn replay(name: &str) {
    let target = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a known target")
        .1;
    let seeds = seeds::seeds(name);
    assert!(!seeds.is_empty(), "{name} has no seeds");
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    for (seed, bytes) in &seeds {
        inputs.push((seed.clone(), bytes.clone()));
        inputs.extend(
            damaged(bytes)
                .into_iter()
                .map(|(how, b)| (format!("{seed}, {how}"), b)),
        );
    }
    inputs.extend(regressions(name));
    let mut failures = Vec::new();
    for (what, bytes) in &inputs {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(bytes))) {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{what}: {text}"));
        }
    }
    println!(
        "{name}: {} inputs ({} seeds), {} failed",
        inputs.len(),
        seeds.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{name} failed on:\n{}",
        failures.join("\n")
    );
}

#[test]
fn biom_table() {
    replay("biom_table");
}

#[test]
fn distance_matrix() {
    replay("distance_matrix");
}

#[test]
fn metadata_tsv() {
    replay("metadata_tsv");
}

#[test]
fn qiime2_artifact() {
    replay("qiime2_artifact");
}

#[test]
fn safetensors_weights() {
    replay("safetensors_weights");
}

#[test]
fn onnx_model() {
    replay("onnx_model");
}

#[test]
fn c_abi() {
    replay("c_abi");
}

#[test]
fn serve_http() {
    replay("serve_http");
}

#[test]
fn model_dir() {
    replay("model_dir");
}

/// Each target has its libFuzzer entry point in `fuzz/fuzz_targets/` and a test above.
#[test]
fn every_target_has_a_cargo_fuzz_entry_point() {
    for (name, _) in TARGETS {
        let file = repo().join("fuzz/fuzz_targets").join(format!("{name}.rs"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            text.contains(&format!("aam_fuzz::targets::{name}::run")),
            "{} does not call its target",
            file.display()
        );
    }
    let source =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/replay.rs"))
            .unwrap();
    for (name, _) in TARGETS {
        assert!(
            source.contains(&format!("replay(\"{name}\")")),
            "no replay test for {name}"
        );
    }
}
