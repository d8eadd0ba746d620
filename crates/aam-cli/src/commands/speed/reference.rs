//! The reference PyTorch AAM (`benches/reference/torch_reference.py`) run beside aam by
//! `aam bench`: its scratch directory and its JSON answer.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::BenchArgs;

/// A scratch directory for the reference runner's inputs, removed when dropped.
pub(super) struct Scratch(pub(super) PathBuf);

impl Scratch {
    pub(super) fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("aam-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the reference runner (`--reference-script`) with `python`, the subcommand and
/// arguments `command`, and `--iterations` / `--threads`; its last output line, a JSON
/// object. Errors: no script, a failed run (with its standard error), no JSON line.
pub(super) fn reference_json(
    python: &Path,
    args: &BenchArgs,
    command: &[&std::ffi::OsStr],
) -> Result<serde_json::Value> {
    if !args.reference_script.is_file() {
        bail!(
            "{}: no such file; run from the repository root or pass --reference-script",
            args.reference_script.display()
        );
    }
    let out = std::process::Command::new(python)
        .arg(&args.reference_script)
        .args(command)
        .args(["--iterations", &args.iterations.to_string()])
        .args(["--threads", &args.threads.to_string()])
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "the PyTorch reference failed ({}): {}",
            args.reference_script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .with_context(|| format!("the PyTorch reference printed no JSON line: {stdout}"))
}

/// The `latencies_ms` of the reference runner's JSON `v`, ms, in the order timed.
/// Errors: none given, naming what was timed (`what`: "pass", "step").
pub(super) fn reference_latencies(v: &serde_json::Value, what: &str) -> Result<Vec<f64>> {
    let latencies: Vec<f64> = v["latencies_ms"]
        .as_array()
        .context("reference JSON lacks `latencies_ms`")?
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    if latencies.is_empty() {
        bail!("the PyTorch reference timed no {what}");
    }
    Ok(latencies)
}
