//! Helpers shared by the CLI tests: paths to the shared datasets and running `aam`.
#![allow(dead_code)] // each test file uses its own subset

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The smallest model that trains on `moving-pictures` in about a second: one epoch,
/// quiet, dropout 0 (so two runs with one seed are equal).
pub const TINY: [&str; 14] = [
    "--embedding-dim",
    "16",
    "--attention-layers",
    "1",
    "--attention-heads",
    "2",
    "--max-bp",
    "120",
    "--token-limit",
    "12",
    "--epochs",
    "1",
    "--quiet",
    "--dropout=0",
];

/// [`TINY`] with `epochs` epochs instead of one.
pub fn tiny_with_epochs(epochs: &'static str) -> Vec<&'static str> {
    let at = TINY.iter().position(|a| *a == "--epochs").unwrap() + 1;
    let mut args = TINY.to_vec();
    args[at] = epochs;
    args
}

/// `shared/data/<dataset>/<file>` beside the repository.
pub fn shared(dataset: &str, file: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(dataset)
        .join(file)
        .display()
        .to_string()
}

/// `path` relative to the repository root.
pub fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
        .display()
        .to_string()
}

/// Runs the `aam` binary built for these tests.
pub fn aam(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aam"))
        .args(args)
        .output()
        .expect("run aam")
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The rows of a TSV file as maps from column name to cell.
pub fn tsv_rows(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split('\t'))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The last epoch a training run in `dir` committed (its `train_state.json`), if any.
pub fn committed_epoch(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join("train_state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["epoch"].as_u64())
}
