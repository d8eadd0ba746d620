//! `aam bench` on the shipped model and the 2-sample C test table: one row per backend,
//! cache setting, ASV count and batch size, with consistent numbers.

use std::path::PathBuf;
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// `aam bench` on the shipped model and the 2-sample C test table.
fn bench_on_the_shipped_model() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aam"));
    c.args(["bench", "--model"])
        .arg(repo("models/circadian-exposure"))
        .arg("--table")
        .arg(repo("tests/capi/tiny_table.tsv"));
    c
}

/// The GEMM rate `aam bench` printed: "GEMM (…): X GFLOP/s".
fn gemm_rate(stderr: &str) -> f64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("GEMM (f32, 2048²"))
        .unwrap_or_else(|| panic!("no GEMM line in:\n{stderr}"));
    let rate: f64 = line
        .split("): ")
        .nth(1)
        .and_then(|x| x.split_whitespace().next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("unreadable GEMM line {line}"));
    // 2 cores reach tens to hundreds of GFLOP/s; a bad FLOP count would be far off.
    assert!((1.0..20_000.0).contains(&rate), "{line}");
    rate
}

#[test]
fn bench_writes_one_consistent_row_per_configuration() {
    let o = bench_on_the_shipped_model()
        .args([
            "--n-asv",
            "4,10",
            "--batch",
            "1,3",
            "--backends",
            "tract",
            "--iterations",
            "2",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The roofline is this machine's GEMM rate, measured at the start of the run.
    let peak = gemm_rate(&String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(
        rows[0],
        [
            "backend",
            "asv_cache",
            "n_asv",
            "batch",
            "samples_per_s",
            "p50_ms",
            "p99_ms",
            "peak_rss_mib",
            "gflop_per_pass",
            "gflop_per_s",
            "roofline_pct",
            "vs_pytorch"
        ]
    );
    assert_eq!(
        rows.len(),
        1 + 3 * 2 * 2,
        "tract × single-graph/off/warm × 2 n_asv × 2 batch"
    );
    let num = |r: &Vec<&str>, i: usize| r[i].parse::<f64>().unwrap();
    for r in &rows[1..] {
        assert_eq!(r[0], "tract");
        assert!(
            num(r, 4) > 0.0 && num(r, 5) > 0.0 && num(r, 5) <= num(r, 6),
            "{r:?}"
        );
        let gflops = num(r, 9);
        let share = 100.0 * gflops / peak;
        // The printed GFLOP/s is rounded to 0.01: up to 0.5 / peak points of share.
        assert!(
            (num(r, 10) - share).abs() < 0.06 + 0.5 / peak + 0.01 * share,
            "{r:?} against {peak} GFLOP/s"
        );
        assert_eq!(r[11], "NA", "no reference was run");
    }
    // The same configuration: the warm cache encodes nothing, so far fewer FLOPs per pass;
    // within a pass, the 3 samples (2 distinct, cycled) repeat ASVs, which the split
    // graphs encode once even without the cache.
    let find = |cache: &str, n: &str, b: &str| {
        rows.iter()
            .find(|r| r[1] == cache && r[2] == n && r[3] == b)
            .unwrap()
            .clone()
    };
    let (single, off, warm) = (
        find("single-graph", "10", "3"),
        find("off", "10", "3"),
        find("warm", "10", "3"),
    );
    assert!(
        num(&warm, 8) < num(&single, 8) / 10.0,
        "{single:?} vs {warm:?}"
    );
    assert!(
        num(&off, 8) < num(&single, 8) && num(&off, 8) > num(&warm, 8),
        "{off:?}"
    );
    // The single graph encodes every slot: FLOPs grow with the batch (2 samples cycled:
    // 1 vs 3 samples); the split graphs encode the 2 distinct samples' ASVs once (at most
    // twice the ASVs of one sample, plus the small sample-level part of 3 samples).
    assert!(
        num(&find("single-graph", "10", "3"), 8) > 2.0 * num(&find("single-graph", "10", "1"), 8)
    );
    assert!(num(&find("off", "10", "3"), 8) < 2.2 * num(&find("off", "10", "1"), 8));
}

#[test]
fn bench_refuses_an_n_asv_beyond_the_token_limit() {
    let o = bench_on_the_shipped_model()
        .args(["--n-asv", "129"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("--n-asv 129 is outside 1..=128 (the model's token limit)"));
}

/// `--reference-python` runs the reference script on the same weights and tokens and
/// checks its embeddings against ours: a stand-in reference that reports zero embeddings
/// (after checking it was given the exported weights and the token batch) is caught.
#[test]
fn bench_checks_the_reference_embeddings_against_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fake_reference.py");
    std::fs::write(
        &script,
        r#"import json, os, sys
a = sys.argv
weights, tokens = a[a.index("--weights") + 1], a[a.index("--tokens") + 1]
assert a[1] == "bench" and os.path.getsize(weights) > 1000 and os.path.getsize(tokens) > 128
print(json.dumps({"samples_per_s": 10.0, "p50_ms": 100.0, "p99_ms": 100.0,
                  "latencies_ms": [100.0, 100.0], "peak_rss_mib": 50.0,
                  "embeddings": [[0.0] * 32]}))
"#,
    )
    .unwrap();
    let o = bench_on_the_shipped_model()
        .args([
            "--n-asv",
            "4",
            "--batch",
            "1",
            "--backends",
            "tract",
            "--modes",
            "off",
        ])
        .args(["--reference-python", "python3", "--reference-script"])
        .arg(&script)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tract (off) differs from the PyTorch reference by")
            && err.contains("on the same weights and tokens"),
        "{err}"
    );
    // The reference row itself was measured and printed before the check.
    assert!(err.contains("pytorch  -  4  1  10.000"), "{err}");
}

/// `--save-model DIR` writes the model under test byte for byte, and refuses a directory
/// that already exists rather than writing into it.
#[test]
fn bench_saves_the_model_under_test_to_a_new_directory() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("saved");
    let run = |dir: &PathBuf| {
        bench_on_the_shipped_model()
            .args(["--n-asv", "4", "--batch", "1", "--backends", "tract"])
            .args(["--modes", "off", "--iterations", "1", "--save-model"])
            .arg(dir)
            .output()
            .unwrap()
    };
    let o = run(&dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in [
        "model.onnx",
        "asv_encoder.onnx",
        "sample_model.onnx",
        "model.safetensors",
    ] {
        let saved = std::fs::read(dir.join(name)).unwrap();
        let shipped = std::fs::read(repo("models/circadian-exposure").join(name)).unwrap();
        assert!(saved == shipped, "{name} differs from the shipped file");
    }
    let o = run(&dir);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("it must not exist yet"));
}

/// `aam bench --train`: one row per CPU training backend, the same first-step loss on
/// both (same weights and batch, dropout 0), throughput and the share of the measured
/// GEMM rate consistent with the FLOP count.
#[test]
fn bench_train_times_both_cpu_backends_on_the_same_step() {
    let o = Command::new(env!("CARGO_BIN_EXE_aam"))
        .args(["bench", "--train", "--table"])
        .arg(repo("tests/capi/tiny_table.tsv"))
        .args([
            "--embedding-dim",
            "8",
            "--attention-layers",
            "1",
            "--attention-heads",
            "2",
            "--max-bp",
            "40",
            "--token-limit",
            "8",
            "--dropout",
            "0",
            "--batch",
            "2",
            "--iterations",
            "2",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let peak = gemm_rate(&stderr);
    let out = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(
        rows[0],
        [
            "backend",
            "n_asv",
            "batch",
            "samples_per_s",
            "p50_ms",
            "peak_rss_mib",
            "gflop_per_step",
            "gflops",
            "pct_of_peak",
            "vs_pytorch",
            "first_loss"
        ]
    );
    assert_eq!(rows.len(), 3, "{out}");
    let num = |r: &Vec<&str>, i: usize| r[i].parse::<f64>().unwrap();
    for (r, name) in rows[1..].iter().zip(["flex", "ndarray"]) {
        assert_eq!((r[0], r[1], r[2]), (name, "8", "2"), "{r:?}");
        assert!(num(r, 3) > 0.0 && num(r, 6) > 0.0, "{r:?}");
        let share = 100.0 * num(r, 7) / peak;
        // The printed GFLOP/s is rounded to 0.01: up to 0.5 / peak points of share.
        assert!(
            (num(r, 8) - share).abs() < 0.006 + 0.5 / peak + 0.01 * share,
            "{r:?} against {peak}"
        );
        assert_eq!(r[9], "NA", "no reference was run");
    }
    // 3 × the forward FLOPs of 2 samples × 8 slots at D 8, one layer per stack.
    let (d, f, l, s) = (8.0, 32.0, 41.0, 8.0);
    let layer = |n: f64| 8.0 * n * d * d + 4.0 * n * d * f + 4.0 * n * n * d;
    let step = 3.0 * (2.0 * s * layer(l) + 2.0 * 4.0 * layer(s)) / 1e9;
    assert!(
        (num(&rows[1], 6) - step).abs() < 2e-6,
        "{} GFLOP, {step} expected",
        rows[1][6]
    );
    let (a, b) = (num(&rows[1], 10), num(&rows[2], 10));
    assert!(
        a > 0.0 && (a - b).abs() <= 1e-4 * a,
        "first losses {a} (flex) and {b} (ndarray)"
    );
}

/// A model that reads read counts (the k-mer, abundance-pooling model shipped beside the
/// default) is timed on every backend with counts fed beside the tokens; the PyTorch
/// reference, which takes no counts, is refused with the reason.
#[test]
fn bench_times_a_model_that_reads_counts() {
    let o = Command::new(env!("CARGO_BIN_EXE_aam"))
        .args(["bench", "--model"])
        .arg(repo("models/circadian-exposure-kmer-abundance"))
        .arg("--table")
        .arg(repo("tests/capi/tiny_table.tsv"))
        .args(["--n-asv", "4", "--batch", "2", "--backends", "tract,burn"])
        .args(["--iterations", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    for row in [
        "tract\tsingle-graph\t4\t2",
        "tract\twarm\t4\t2",
        "burn\tsingle-graph\t4\t2",
    ] {
        assert!(out.contains(row), "{row}: {out}{err}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_aam"))
        .args(["bench", "--model"])
        .arg(repo("models/circadian-exposure-kmer-abundance"))
        .arg("--table")
        .arg(repo("tests/capi/tiny_table.tsv"))
        .args([
            "--n-asv",
            "4",
            "--batch",
            "1",
            "--backends",
            "tract",
            "--modes",
            "off",
        ])
        .args(["--reference-python", "python3"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("does not feed"),
        "{err}"
    );
}
