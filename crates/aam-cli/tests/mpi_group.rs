//! Training across processes (`mpirun -np 2 aam …`, cargo feature `mpi`), on one machine
//! (OpenMPI's shared-memory and loopback transports): two processes train the weights one
//! process trains on the same global batches (pretraining and fine-tuning, dropout 0,
//! within 1e-4); rank 1 writes nothing into the output; a killed peer ends the group with
//! an error within two minutes; a killed group resumed with `--resume` reaches the
//! uninterrupted group's weights.
#![cfg(feature = "mpi")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{committed_epoch, repo};

/// A model small enough that each run takes seconds; batch 8 is split 4 + 4.
const SMALL: [&str; 20] = [
    "--embedding-dim",
    "16",
    "--attention-heads",
    "2",
    "--attention-layers",
    "1",
    "--token-limit",
    "24",
    "--max-bp",
    "40",
    "--batch-size",
    "8",
    "--lr",
    "3e-3",
    "--patience",
    "0",
    "--seed",
    "5",
    "--dropout=0",
    "--quiet",
];

/// One group at a time: concurrent `mpirun`s race for OpenMPI's session folder in the
/// temporary directory ("A call to mkdir was unable to create the desired directory"), and
/// 2 cores run one group at a time anyway.
static ONE_GROUP_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_GROUP_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn inputs(command: &str) -> Vec<String> {
    let mut a: Vec<String> = [
        command,
        "--table",
        &repo("data/circadian-ihc/table.biom"),
        "--unifrac-matrix",
        &repo("data/circadian-ihc/unifrac_unweighted.npy"),
        "--unifrac-ids",
        &repo("data/circadian-ihc/unifrac_ids.txt"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(SMALL.iter().map(|s| s.to_string()));
    a
}

fn mpirun(np: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.args([
        "-np",
        &np.to_string(),
        "--oversubscribe",
        "--bind-to",
        "none",
    ])
    // Tests run as root in containers; OpenMPI refuses that unless told.
    .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
    .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    // Loopback and shared memory only: no network interface is needed.
    .env("OMPI_MCA_btl", "self,vader,tcp")
    .env("OMPI_MCA_btl_tcp_if_include", "lo")
    .env("OMPI_MCA_oob_tcp_if_include", "lo");
    c
}

fn run(mut c: Command, what: &str) -> Output {
    let out = c.output().expect("run");
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One process (`np` 0) or `mpirun -np N` of `aam args…`.
fn train(np: usize, args: &[String], extra: &[&str]) -> Output {
    let c = if np == 0 {
        let mut c = Command::new(env!("CARGO_BIN_EXE_aam"));
        c.args(args).args(extra);
        c
    } else {
        let mut c = mpirun(np);
        c.arg(env!("CARGO_BIN_EXE_aam")).args(args).args(extra);
        c
    };
    run(c, &format!("{np} process(es): {}", args.join(" ")))
}

/// Every float32 tensor of a safetensors file, by name.
fn weights(path: &Path) -> BTreeMap<String, Vec<f32>> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| {
            assert_eq!(v.dtype(), safetensors::Dtype::F32, "{n}");
            let values = v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (n, values)
        })
        .collect()
}

/// The largest absolute difference between two checkpoints' weights (same names).
fn max_difference(a: &Path, b: &Path) -> f32 {
    let (a, b) = (weights(a), weights(b));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "other tensors"
    );
    a.iter()
        .flat_map(|(n, x)| x.iter().zip(&b[n]).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

fn files(dir: &Path) -> Vec<String> {
    let mut f: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    f.sort();
    f
}

/// Pretraining (UniFrac + masked nucleotides) and fine-tuning from that encoder: 2
/// processes end within 1e-4 of 1 process, after weights that moved by more than that;
/// the group's output folder holds what one process writes, and nothing else.
#[test]
fn two_processes_train_the_weights_of_one() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name).display().to_string();
    let mut pretrain = inputs("pretrain");
    pretrain.extend(["--epochs", "2"].map(String::from));
    train(0, &pretrain, &["--output", &out("pre-1")]);
    train(2, &pretrain, &["--output", &out("pre-2")]);
    let encoder = |name: &str| dir.path().join(name).join("model.safetensors");
    let d = max_difference(&encoder("pre-1"), &encoder("pre-2"));
    eprintln!("pretraining: 1 and 2 processes differ by at most {d}");
    assert!(d < 1e-4, "pretraining: 2 processes differ by {d}");
    assert_eq!(
        files(&dir.path().join("pre-1")),
        files(&dir.path().join("pre-2"))
    );

    let mut fine_tune = inputs("train");
    fine_tune.extend(
        [
            "--metadata",
            &repo("data/circadian-ihc/metadata.tsv"),
            "--metadata-column",
            "exposure_type",
            "--group-column",
            "mouse_number",
            "--pretrained-encoder",
            &out("pre-1"),
            "--epochs",
            "2",
        ]
        .map(String::from),
    );
    train(0, &fine_tune, &["--output", &out("ft-1")]);
    train(2, &fine_tune, &["--output", &out("ft-2")]);
    let d = max_difference(&encoder("ft-1"), &encoder("ft-2"));
    eprintln!("fine-tuning: 1 and 2 processes differ by at most {d}");
    assert!(d < 1e-4, "fine-tuning: 2 processes differ by {d}");
    assert_eq!(
        files(&dir.path().join("ft-1")),
        files(&dir.path().join("ft-2"))
    );
    // The runs trained: the fine-tuned base moved away from the encoder by more than the
    // tolerance (else the comparison above could not fail).
    let pre = weights(&encoder("pre-1"));
    let moved = weights(&encoder("ft-1"))
        .iter()
        .filter_map(|(n, w)| {
            let key = n.strip_prefix("base_model.")?;
            pre.get(key).or_else(|| pre.get(n)).map(|p| (w, p))
        })
        .flat_map(|(w, p)| w.iter().zip(p).map(|(a, b)| (a - b).abs()))
        .fold(0.0, f32::max);
    eprintln!("fine-tuning moved the encoder's weights by up to {moved}");
    assert!(
        moved > 1e-3,
        "fine-tuning moved the encoder's weights by {moved}"
    );
}

/// Three processes on global batches of 6 (37 training samples: the last batch holds one
/// sample, so two ranks hold none of it) with 2 batches per optimizer step: the weights of
/// one process within 1e-4.
#[test]
fn three_processes_with_an_uneven_last_batch_and_accumulation_train_the_weights_of_one() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name).display().to_string();
    let mut args = inputs("pretrain");
    let at = args.iter().position(|a| a == "--batch-size").unwrap() + 1;
    args[at] = "6".into();
    args.extend(["--epochs", "2", "--grad-accum", "2"].map(String::from));
    train(0, &args, &["--output", &out("one")]);
    train(3, &args, &["--output", &out("three")]);
    let model = |name: &str| dir.path().join(name).join("model.safetensors");
    let d = max_difference(&model("one"), &model("three"));
    eprintln!("3 processes, batch 6, accumulation 2: 1 and 3 processes differ by at most {d}");
    assert!(d < 1e-4, "3 processes differ by {d}");
}

/// A rank that fails (here: started with another seed than rank 0) ends the whole group
/// with its error, within two minutes, and rank 0 writes no checkpoint.
#[test]
fn a_failing_rank_ends_the_group_with_its_error() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mut args = inputs("pretrain");
    let at = args.iter().position(|a| a == "--seed").unwrap();
    args.drain(at..at + 2);
    args.extend(["--epochs", "1000", "--output"].map(String::from));
    args.push(dir.path().join("run").display().to_string());
    let mut c = mpirun(2);
    c.args([
        "sh",
        "-c",
        r#"exec "$0" "$@" --seed $((5 + OMPI_COMM_WORLD_RANK))"#,
        env!("CARGO_BIN_EXE_aam"),
    ])
    .args(&args);
    let started = Instant::now();
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(120));
    assert!(
        stderr.contains("error: rank 1 of 2: rank 1 starts from other weights than rank 0"),
        "{stderr}"
    );
    assert!(!dir.path().join("run/model.safetensors").exists());
}

/// A peer killed (SIGKILL) mid-run ends the group with a non-zero status within two
/// minutes, and the launcher names the rank.
#[test]
fn a_killed_peer_ends_the_group() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mut args = inputs("pretrain");
    args.extend(["--epochs", "1000"].map(String::from));
    args.extend([
        "--output".into(),
        dir.path().join("run").display().to_string(),
    ]);
    // Rank 1 is SIGKILLed 4 s after it starts (its shell's PID is aam's after `exec`).
    let script = format!(
        r#"if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then (sleep 4; kill -9 $$) & fi; exec "$0" "$@""#
    );
    let mut c = mpirun(2);
    c.args(["sh", "-c", &script, env!("CARGO_BIN_EXE_aam")])
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = c.spawn().unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("the group still ran 120 s after a peer was killed");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("rank 1") && stderr.contains("signal 9"),
        "the launcher should name rank 1 and its signal:\n{stderr}"
    );
}

/// A group stopped mid-run (SIGTERM to `mpirun`, which ends both ranks) and started again
/// with `--resume` ends with the weights of a group that ran without a stop.
#[test]
fn a_resumed_group_reaches_the_uninterrupted_weights() {
    let _one = one_at_a_time();
    const EPOCHS: u64 = 30;
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name);
    let mut args = inputs("pretrain");
    args.extend(["--epochs".to_string(), EPOCHS.to_string()]);
    train(2, &args, &["--output", &out("full").display().to_string()]);

    let cut = out("cut").display().to_string();
    let mut c = mpirun(2);
    c.arg(env!("CARGO_BIN_EXE_aam"))
        .args(&args)
        .args(["--output", &cut])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let started = Instant::now();
    while committed_epoch(&out("cut")).is_none_or(|e| e < 3) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no third epoch within 120 s"
        );
        assert!(child.try_wait().unwrap().is_none(), "the group ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stop = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stop.success());
    child.wait().unwrap();
    let stopped_at = committed_epoch(&out("cut")).unwrap();
    assert!(
        stopped_at < EPOCHS,
        "the group finished before it was stopped"
    );

    train(2, &args, &["--output", &cut, "--resume"]);
    assert_eq!(committed_epoch(&out("cut")), Some(EPOCHS));
    for file in ["model.safetensors", "last.safetensors"] {
        let d = max_difference(&out("full").join(file), &out("cut").join(file));
        assert!(
            d < 1e-6,
            "{file}: resumed at epoch {stopped_at}, off by {d}"
        );
    }
}
