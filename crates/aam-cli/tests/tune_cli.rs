//! `aam tune` on the shipped example table: trials are pruned exactly when the median rule,
//! recomputed here from their own `metrics.jsonl`, says so; the best trial is the best
//! completed one and `best.sh` retrains it to the same validation loss; a study of parallel
//! trials stopped (Ctrl-C, a scheduler's SIGTERM) continues with `--resume` (unfinished
//! trials from their last epoch).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{aam, repo, stderr, tsv_rows};

fn study_toml(trials: usize, parallel: usize, sampler: &str, seed: u64, pruner: &str) -> String {
    format!(
        r#"
command = "train"
trials = {trials}
parallel = {parallel}
sampler = "{sampler}"
seed = {seed}
[pruner]
kind = "{pruner}"
startup_trials = 2
warmup_epochs = 1
[args]
table = "{table}"
metadata = "{metadata}"
metadata-column = "exposure_type"
epochs = 3
attention-heads = 2
attention-layers = 1
max-bp = 40
token-limit = 16
batch-size = 8
seed = 1
[space]
lr = {{ log_uniform = [1e-7, 1e-2] }}
dropout = {{ uniform = [0.0, 0.3] }}
embedding-dim = {{ choice = [8, 16] }}
"#,
        table = repo("data/circadian-ihc/table.biom"),
        metadata = repo("data/circadian-ihc/metadata.tsv"),
    )
}

/// Validation loss of every epoch in `dir/metrics.jsonl`.
fn losses(dir: &Path) -> Vec<f64> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["validation"]["loss"].as_f64().unwrap()
        })
        .collect()
}

fn state(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("study.json")).unwrap()).unwrap()
}

fn best_so_far(values: &[f64], epoch: usize) -> f64 {
    values[..=epoch].iter().copied().fold(f64::INFINITY, f64::min)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[test]
fn trials_pruned_by_the_median_rule_and_the_best_reproduced() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("study.toml");
    // One trial at a time, random sampler: the lr range reaches rates too small to learn
    // in three epochs, and this seed draws such trials after two completed ones.
    std::fs::write(&file, study_toml(4, 1, "random", 1, "median")).unwrap();
    let out = tmp.path().join("study");
    let o = aam(&["tune", "--study", file.to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    let study = state(&out);
    let trials = study["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4);
    let mut complete: Vec<(usize, Vec<f64>)> = Vec::new();
    let mut pruned = 0;
    for (i, t) in trials.iter().enumerate() {
        assert_eq!(t["number"], i);
        let logged = losses(&out.join("trials").join(format!("{i:04}")));
        let recorded: Vec<f64> = serde_json::from_value(t["values"].clone()).unwrap();
        assert_eq!(recorded, logged, "trial {i}: study.json = its metrics.jsonl");
        // The rule (startup 2 completed trials, warm-up 1 epoch) at each logged epoch,
        // against the trials completed before this one.
        let prune_at = (1..logged.len()).find(|&e| {
            let before: Vec<f64> = complete
                .iter()
                .filter(|(_, c)| c.len() > e)
                .map(|(_, c)| best_so_far(c, e))
                .collect();
            complete.len() >= 2 && best_so_far(&logged, e) > median(before)
        });
        match t["state"].as_str().unwrap() {
            "complete" => {
                assert_eq!((logged.len(), prune_at), (3, None), "trial {i}");
                complete.push((i, logged));
            }
            "pruned" => {
                assert_eq!(prune_at, Some(logged.len() - 1), "trial {i} pruned at its last epoch");
                pruned += 1;
            }
            other => panic!("trial {i} ended {other}: {}", t["message"]),
        }
    }
    assert!(pruned >= 1, "this seed prunes a trial");

    let (best_number, best_value) = complete
        .iter()
        .map(|(i, v)| (*i, best_so_far(v, 2)))
        .reduce(|a, b| if b.1 < a.1 { b } else { a })
        .unwrap();
    let rows = tsv_rows(&out.join("results.tsv"));
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[best_number]["validation_loss"].parse::<f64>().unwrap(), best_value);
    let best_toml = std::fs::read_to_string(out.join("best.toml")).unwrap();
    assert!(best_toml.contains(&format!("trial {best_number},")), "{best_toml}");

    // best.sh retrains the best trial to the same validation loss, bit for bit.
    let again = tmp.path().join("again");
    let o = Command::new("sh")
        .arg(out.join("best.sh"))
        .arg(&again)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(best_so_far(&losses(&again), 2), best_value);
}

#[test]
fn a_stopped_study_resumes() {
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("study.toml");
    // 12 epochs per trial (about 50 ms each here): trial 1 must still be running when the
    // stop arrives after its first epoch; with 3 it sometimes finished first.
    std::fs::write(
        &file,
        study_toml(4, 2, "tpe", 3, "none").replace("epochs = 3", "epochs = 12"),
    )
    .unwrap();
    let out = tmp.path().join("study");
    // Its own process group, stopped as a job scheduler (or a terminal's Ctrl-C) stops it:
    // a terminating signal to the whole group. SIGTERM, not SIGINT: a shell starts
    // background jobs with SIGINT ignored, and the children of a CI run started that way
    // would inherit it and never stop.
    let mut tune = Command::new(env!("CARGO_BIN_EXE_aam"))
        .args(["tune", "--study", file.to_str().unwrap(), "--output", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    // Stop once trial 1 (running beside trial 0) has a completed epoch and its resume
    // point (written just after the epoch's metrics line).
    let started = Instant::now();
    let trial_1 = out.join("trials/0001");
    while losses(&trial_1).is_empty() || !trial_1.join("resume.bin").exists() {
        assert!(started.elapsed() < Duration::from_secs(300), "trial 1 never logged an epoch");
        assert!(tune.try_wait().unwrap().is_none(), "the study ended before it was stopped");
        std::thread::sleep(Duration::from_millis(10));
    }
    let group = format!("-{}", tune.id());
    assert!(Command::new("kill").args(["-TERM", "--", &group]).status().unwrap().success());
    tune.wait().unwrap();
    let stopped = state(&out);
    assert_eq!(stopped["trials"][1]["state"], "running");
    let before = stopped["trials"].as_array().unwrap().clone();

    let o = aam(&["tune", "--output", out.to_str().unwrap(), "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Every trial left running restarts; trial 1 (with an epoch) from its checkpoint.
    assert!(stderr(&o).contains("trial 1 resumed"), "{}", stderr(&o));
    let study = state(&out);
    let trials = study["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4);
    assert!(trials.iter().all(|t| t["state"] == "complete"));
    for (t, b) in trials.iter().zip(&before) {
        assert_eq!(t["params"], b["params"], "trial {}: its parameters are kept", b["number"]);
    }
    for (i, t) in trials.iter().enumerate() {
        let dir = out.join("trials").join(format!("{i:04}"));
        let recorded: Vec<f64> = serde_json::from_value(t["values"].clone()).unwrap();
        assert_eq!(recorded, losses(&dir));
        assert_eq!(recorded.len(), 12);
    }
    // Starting again over it is refused; the study is kept.
    let o = aam(&["tune", "--study", file.to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("--resume to continue it"));
}
