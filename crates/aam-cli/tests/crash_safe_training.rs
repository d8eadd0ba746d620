//! Crash-safe training: `aam pretrain` killed with SIGKILL at random moments, then
//! resumed (`--resume`, or started again with `--overwrite` when it was killed before
//! its first epoch ended), ends with the weights of an uninterrupted run of the same
//! seed, bit for bit; and whatever the moment of the kill, every checkpoint file on
//! disk is complete.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Instant;

use common::{committed_epoch, repo};
use rand::{Rng, SeedableRng};

const EPOCHS: &str = "4";

fn pretrain(output: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aam"));
    c.args(["pretrain", "--table"])
        .arg(repo("data/circadian-ihc/table.biom"))
        .arg("--unifrac-matrix")
        .arg(repo("data/circadian-ihc/unifrac_unweighted.npy"))
        .arg("--unifrac-ids")
        .arg(repo("data/circadian-ihc/unifrac_ids.txt"))
        .arg("--output")
        .arg(output)
        .args([
            "--epochs",
            EPOCHS,
            "--batch-size",
            "8",
            "--embedding-dim",
            "16",
            "--attention-heads",
            "2",
            "--attention-layers",
            "1",
            "--token-limit",
            "32",
            // Short reads keep each of the 21 runs quick; the moment of the kill, not the
            // model's size, is what this test is about.
            "--max-bp",
            "40",
            "--lr",
            "3e-3",
            "--patience",
            "0",
            "--seed",
            "11",
            "--quiet",
        ])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    c
}

/// Every tensor of a safetensors file (name → dtype, shape, bytes) and its metadata: the
/// header's JSON order follows a hash map, so files are compared by content.
type Weights = (
    std::collections::BTreeMap<String, (String, Vec<usize>, Vec<u8>)>,
    Option<std::collections::BTreeMap<String, String>>,
);

fn weights(path: &Path) -> Weights {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let tensors = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            (
                n,
                (
                    format!("{:?}", v.dtype()),
                    v.shape().to_vec(),
                    v.data().to_vec(),
                ),
            )
        })
        .collect();
    let meta = meta.metadata().clone().map(|m| m.into_iter().collect());
    (tensors, meta)
}

fn finish(child: Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file a kill may have left is either absent or complete.
fn assert_complete(dir: &Path, trial: usize) {
    for f in ["model.safetensors", "last.safetensors"] {
        if let Ok(bytes) = std::fs::read(dir.join(f)) {
            safetensors::SafeTensors::deserialize(&bytes)
                .unwrap_or_else(|e| panic!("trial {trial}: {f} is partial: {e}"));
        }
    }
    for f in ["config.json", "train_state.json"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(f)) {
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("trial {trial}: {f} is partial: {e}"));
        }
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("metrics.jsonl")) {
        for l in text.lines() {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("trial {trial}: metrics.jsonl line {l:?}: {e}"));
        }
    }
}

#[test]
fn sigkill_then_resume_reaches_the_uninterrupted_weights() {
    let root = tempfile::tempdir().unwrap();
    let reference = root.path().join("reference");
    let started = Instant::now();
    finish(
        pretrain(&reference, &[]).spawn().unwrap(),
        "the reference run",
    );
    let full = started.elapsed();
    let want_last = weights(&reference.join("last.safetensors"));
    let want_best = weights(&reference.join("model.safetensors"));
    let want_metrics = std::fs::read_to_string(reference.join("metrics.jsonl")).unwrap();
    let epochs_of = |text: &str| -> Vec<u64> {
        text.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let mut resumed = 0;
    for trial in 0..10 {
        let dir = root.path().join(format!("trial{trial}"));
        let mut child = pretrain(&dir, &[]).spawn().unwrap();
        let spawned = Instant::now();
        // Every third trial is killed at a random moment of the whole run (often before its
        // first checkpoint: the restart path); the others at a random moment after their
        // first checkpoint appeared, so they resume whatever the machine's speed: once
        // epoch k (1 to EPOCHS - 1) is committed, at a random moment of the next epoch.
        // (Sleeping a fraction of the reference run's time after the first checkpoint let
        // fast machines finish before the kill.)
        if trial % 3 == 2 {
            std::thread::sleep(full.mul_f64(rng.random_range(0.05..0.98)));
        } else {
            let epochs: u64 = EPOCHS.parse().unwrap();
            let k = rng.random_range(1..epochs);
            let one_epoch = full.div_f64(epochs as f64);
            while committed_epoch(&dir).is_none_or(|e| e < k) && child.try_wait().unwrap().is_none()
            {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            // A quarter of a mean epoch at most: the reference run's time also holds its
            // start-up and final writes, so its epochs are shorter than full / epochs.
            std::thread::sleep(one_epoch.mul_f64(rng.random_range(0.0..0.25)));
        }
        let at = spawned.elapsed();
        // A run that ended before the kill resumes nothing: it is not counted below.
        let finished_first = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert_complete(&dir, trial);
        // Resume from the last completed epoch, or start again if none completed.
        let can_resume = dir.join("resume.bin").exists();
        let committed = committed_epoch(&dir);
        eprintln!(
            "trial {trial}: killed after {:.1} s of {:.1} s; epochs committed: {committed:?}",
            at.as_secs_f64(),
            full.as_secs_f64()
        );
        let extra: &[&str] = if can_resume {
            &["--resume"]
        } else {
            &["--overwrite"]
        };
        resumed += usize::from(can_resume && !finished_first);
        finish(
            pretrain(&dir, extra).spawn().unwrap(),
            &format!("trial {trial} ({extra:?})"),
        );
        assert!(
            weights(&dir.join("last.safetensors")) == want_last,
            "trial {trial} (killed after {at:?}, {extra:?}): last.safetensors differs from the uninterrupted run"
        );
        assert!(
            weights(&dir.join("model.safetensors")) == want_best,
            "trial {trial}: model.safetensors differs from the uninterrupted run"
        );
        assert_eq!(
            epochs_of(&std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap()),
            epochs_of(&want_metrics),
            "trial {trial}: every epoch logged once"
        );
        let leftovers: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "trial {trial}: {leftovers:?} left behind"
        );
    }
    // The seven trials killed after their first checkpoint all resumed (killed while
    // still running, with an epoch to resume).
    assert!(
        resumed >= 7,
        "only {resumed} of 10 trials were killed mid-run with an epoch to resume"
    );
}
