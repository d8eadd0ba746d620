//! `aam pretrain` / `aam train` from the command line: a short real run and the
//! refusals that protect the user's files and settings.

mod common;
use common::{aam, stderr, TINY};

fn shared(file: &str) -> String {
    common::shared("moving-pictures", file)
}

/// Runs `aam args` and asserts that it is refused with `expected` in its message.
fn assert_refused(args: &[&str], expected: &str) {
    let o = aam(args);
    assert!(
        !o.status.success() && stderr(&o).contains(expected),
        "{args:?}: {}",
        stderr(&o)
    );
}

#[test]
fn train_classifier_writes_a_complete_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run").display().to_string();
    let (table, md, u) = (
        shared("table.biom"),
        shared("metadata.tsv"),
        shared("unifrac_unweighted.h5"),
    );
    let mut args = vec![
        "train",
        "--table",
        &table,
        "--metadata",
        &md,
        "--metadata-column",
        "body-site",
        "--unifrac-matrix",
        &u,
        "--output",
        &out,
        "--group-column",
        "subject",
    ];
    args.extend(TINY);
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["kind"], "predictor");
    assert_eq!(
        config["target"]["classes"],
        serde_json::json!(["gut", "left palm", "right palm", "tongue"])
    );
    assert_eq!(config["model"]["out_dim"], 4);
    assert_eq!(config["model"]["is_classifier"], true);
    let metrics = std::fs::read_to_string(dir.path().join("run/metrics.jsonl")).unwrap();
    let epoch: serde_json::Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
    for key in [
        "accuracy",
        "macro_f1",
        "loss",
        "target_loss",
        "count_loss",
        "unifrac_loss",
    ] {
        assert!(
            epoch["validation"][key]
                .as_f64()
                .is_some_and(f64::is_finite),
            "{key} in {epoch}"
        );
    }
    // Both subjects exist; grouping keeps each on one side.
    let split = std::fs::read_to_string(dir.path().join("run/split.tsv")).unwrap();
    assert_eq!(split.lines().count(), 35);
    // A second run into the same folder is refused.
    let again = aam(&args);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("--resume") && stderr(&again).contains("--overwrite"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn train_reuses_the_pretrained_encoders_split() {
    let dir = tempfile::tempdir().unwrap();
    let (pre, run) = (
        dir.path().join("pre").display().to_string(),
        dir.path().join("run").display().to_string(),
    );
    let (table, md, u) = (
        shared("table.biom"),
        shared("metadata.tsv"),
        shared("unifrac_unweighted.h5"),
    );
    let mut args = vec![
        "pretrain",
        "--table",
        &table,
        "--unifrac-matrix",
        &u,
        "--output",
        &pre,
        "--validation-fraction",
        "0.3",
    ];
    args.extend(TINY);
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = aam(&[
        "train",
        "--table",
        &table,
        "--metadata",
        &md,
        "--metadata-column",
        "body-site",
        "--pretrained-encoder",
        &pre,
        "--output",
        &run,
        "--epochs",
        "1",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("reusing the pretrained encoder's split"),
        "{}",
        stderr(&o)
    );
    let read =
        |p: &str| std::fs::read_to_string(std::path::Path::new(p).join("split.tsv")).unwrap();
    assert_eq!(read(&pre), read(&run));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/config.json")).unwrap())
            .unwrap();
    assert_eq!(
        config["model"]["embedding_dim"], 16,
        "architecture from the pretrained encoder"
    );
}

#[test]
fn refusals_name_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x").display().to_string();
    let table = shared("table.biom");
    let o = aam(&["pretrain", "--table", &table, "--output", &out]);
    assert!(
        !o.status.success()
            && stderr(&o).contains("--unifrac-matrix is required")
            && stderr(&o).contains("ssu"),
        "{}",
        stderr(&o)
    );
    if !cfg!(feature = "cuda") {
        let o = aam(&[
            "pretrain", "--table", &table, "--output", &out, "--device", "cuda",
        ]);
        assert!(
            !o.status.success() && stderr(&o).contains("--features cuda"),
            "{}",
            stderr(&o)
        );
    }
    let u = shared("unifrac_unweighted.h5");
    // `aam pretrain` on the shared table and UniFrac matrix with `extra`: refused, with
    // `needle` in the message.
    let pretrain_refused = |extra: &[&str], needle: &str| {
        let mut args = vec![
            "pretrain",
            "--table",
            &table,
            "--unifrac-matrix",
            &u,
            "--output",
            &out,
        ];
        args.extend(extra);
        assert_refused(&args, needle);
    };
    pretrain_refused(
        &["--mixed-precision", "bf16", "--deterministic"],
        "--deterministic trains in f32",
    );
    pretrain_refused(
        &["--devices", "0,1"],
        "--devices selects GPUs and needs --device cuda",
    );
    pretrain_refused(
        &["--no-kernel-fusion"],
        "--no-kernel-fusion applies to --device cuda",
    );
    pretrain_refused(
        &[&["--batch-size", "1"][..], &TINY[..]].concat(),
        "--batch-size must be at least 2",
    );
    let o = aam(&[
        "train",
        "--table",
        &table,
        "--output",
        &out,
        "--metadata",
        &shared("metadata.tsv"),
        "--metadata-column",
        "no-such-column",
    ]);
    assert!(
        !o.status.success()
            && stderr(&o).contains("no column 'no-such-column'")
            && stderr(&o).contains("body-site"),
        "{}",
        stderr(&o)
    );
    for o in [aam(&[
        "train",
        "--resume",
        "--table",
        &table,
        "--output",
        &out,
        "--metadata",
        &shared("metadata.tsv"),
        "--metadata-column",
        "subject",
    ])] {
        assert!(
            !o.status.success() && stderr(&o).contains("nothing to resume"),
            "{}",
            stderr(&o)
        );
    }
    assert!(!stderr(&o).contains("panicked"));
}

#[test]
fn pretraining_on_a_distance_computed_from_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pre").display().to_string();
    let table = shared("table.biom");
    // With every augmentation of the training batches on.
    let mut args = vec![
        "pretrain",
        "--table",
        &table,
        "--distance",
        "aitchison",
        "--output",
        &out,
        "--augment",
        "rarefy=500,subset=0.8,noise=0.1,substitution=0.01",
    ];
    args.extend(TINY);
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    // The robust Aitchison targets are scaled into [0, 1] by their largest value, which
    // `aam distance` (checked against scikit-bio in CI) reports unscaled.
    let npy = dir.path().join("a.npy");
    let o2 = aam(&[
        "distance",
        "--table",
        &table,
        "--metric",
        "aitchison",
        "--output",
        &npy.display().to_string(),
    ]);
    assert!(o2.status.success(), "{}", stderr(&o2));
    let m: ndarray::Array2<f64> = ndarray_npy::read_npy(&npy).unwrap();
    let max = m.iter().copied().fold(0.0, f64::max);
    assert!(
        stderr(&o).contains(&format!("divided by its largest value {max:.4}")),
        "{}",
        stderr(&o)
    );
    let ids = std::fs::read_to_string(dir.path().join("a_ids.txt")).unwrap();
    assert_eq!(ids.lines().count(), 34);
    let o = aam(&[
        "pretrain",
        "--table",
        &table,
        "--distance",
        "jaccard",
        "--augment",
        "shuffle=1",
        "--output",
        &dir.path().join("y").display().to_string(),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("unknown augmentation 'shuffle'"),
        "{}",
        stderr(&o)
    );
    // A matrix file and a computed distance are one or the other.
    let u = shared("unifrac_unweighted.h5");
    let o = aam(&[
        "pretrain",
        "--table",
        &table,
        "--distance",
        "braycurtis",
        "--unifrac-matrix",
        &u,
        "--output",
        &dir.path().join("x").display().to_string(),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("drop --unifrac-matrix"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn streamed_training_matches_the_in_memory_run_and_refuses_what_needs_the_whole_table() {
    let dir = tempfile::tempdir().unwrap();
    let (table, md, u) = (
        shared("table.biom"),
        shared("metadata.tsv"),
        shared("unifrac_unweighted.h5"),
    );
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name).display().to_string();
        let mut args = vec![
            "train",
            "--table",
            &table,
            "--metadata",
            &md,
            "--metadata-column",
            "body-site",
            "--unifrac-matrix",
            &u,
            "--output",
            &out,
        ];
        args.extend(TINY);
        args.extend(extra);
        let o = aam(&args);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        // The epoch's training and validation losses and metrics (not its timings).
        let metrics = std::fs::read_to_string(dir.path().join(name).join("metrics.jsonl")).unwrap();
        let epoch: serde_json::Value = serde_json::from_str(metrics.trim()).unwrap();
        (
            (epoch["train"].clone(), epoch["validation"].clone()),
            stderr(&o),
        )
    };
    let (in_memory, _) = run("memory", &[]);
    assert!(in_memory.0["total"].as_f64().is_some_and(f64::is_finite));
    // One chunk holding every sample: the in-memory batches, the same run.
    let (one_chunk, _) = run("one-chunk", &["--streaming"]);
    assert_eq!(one_chunk, in_memory, "one chunk → the in-memory run");
    let (chunks_of_5, log) = run("chunks", &["--streaming", "--chunk-samples", "5"]);
    assert!(log.contains("streaming 5 samples at a time"), "{log}");
    assert_ne!(chunks_of_5.0, in_memory.0, "other batches → other losses");
    assert!(chunks_of_5.1["loss"].as_f64().is_some_and(f64::is_finite));

    let refused = |extra: &[&str], expected: &str| {
        let out = dir.path().join("refused").display().to_string();
        let mut args = vec!["pretrain", "--output", &out, "--streaming"];
        args.extend(extra);
        args.extend(TINY);
        assert_refused(&args, expected);
    };
    refused(
        &["--table", &table, "--distance", "jaccard"],
        "aam distance",
    );
    refused(
        &[
            "--table",
            &table,
            "--unifrac-matrix",
            &u,
            "--rarefy-depth",
            "100",
        ],
        "--rarefy-depth",
    );
    let json = shared("table.json.biom");
    refused(
        &["--table", &json, "--unifrac-matrix", &u],
        "biom convert --to-hdf5",
    );
}

/// `--validation-fraction 0` pretrains on every sample (the last epoch is the checkpoint),
/// with the k-mer embedding and abundance-weighted pooling, and a classifier fine-tuned
/// on top is exported with the `counts` input and predicts from the table.
#[test]
fn pretraining_on_every_sample_with_kmers_and_abundance_pooling() {
    let dir = tempfile::tempdir().unwrap();
    let pre = dir.path().join("pre").display().to_string();
    let table = shared("table.biom");
    let (unifrac, ids, metadata) = (
        shared("unifrac_unweighted.npy"),
        shared("unifrac_ids.txt"),
        shared("metadata.tsv"),
    );
    let mut args = vec![
        "pretrain",
        "--table",
        &table,
        "--unifrac-matrix",
        &unifrac,
        "--unifrac-ids",
        &ids,
        "--validation-fraction",
        "0",
        "--kmer-size",
        "4",
        "--abundance-pooling",
        "--output",
        &pre,
    ];
    args.extend(common::tiny_with_epochs("2"));
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("34 training, 0 validation samples"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("the last epoch (2) is kept"),
        "{}",
        stderr(&o)
    );
    let best = std::fs::read(dir.path().join("pre/model.safetensors")).unwrap();
    let last = std::fs::read(dir.path().join("pre/last.safetensors")).unwrap();
    assert_eq!(
        best, last,
        "without validation the checkpoint is the last epoch"
    );
    // No validation metrics of an empty set (they would read as 0 or NaN).
    let metrics = std::fs::read_to_string(dir.path().join("pre/metrics.jsonl")).unwrap();
    assert!(
        metrics.lines().all(|l| l.contains("\"validation\":{}")),
        "{metrics}"
    );
    let config = std::fs::read_to_string(dir.path().join("pre/config.json")).unwrap();
    assert!(
        config.contains("\"kmer_size\": 4") && config.contains("\"abundance_pooling\": true"),
        "{config}"
    );

    let train = dir.path().join("train").display().to_string();
    let mut args = vec![
        "train",
        "--table",
        &table,
        "--unifrac-matrix",
        &unifrac,
        "--unifrac-ids",
        &ids,
        "--metadata",
        &metadata,
        "--metadata-column",
        "body-site",
        "--target-type",
        "categorical",
        "--group-column",
        "subject",
        "--validation-fraction",
        "0.5",
        "--pretrained-encoder",
        &pre,
        "--output",
        &train,
    ];
    args.extend(TINY);
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let export = dir.path().join("export").display().to_string();
    let o = aam(&["export", "--checkpoint", &train, "--output", &export]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The configuration travels in the ONNX metadata: the graph takes `counts`.
    let onnx = std::fs::read(dir.path().join("export/model.onnx")).unwrap();
    let has = |needle: &[u8]| onnx.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"abundance_pooling") && has(b"kmer_embedding"));
    let predictions = dir.path().join("p.tsv").display().to_string();
    let o = aam(&[
        "predict",
        "--model",
        &export,
        "--table",
        &table,
        "--output",
        &predictions,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&predictions).unwrap();
    assert_eq!(text.lines().count(), 35, "{text}");
}

/// `aam evaluate` of `export` against `column` on the validation samples of `split`
/// (written to `output`) gives the MAE and R² of `validation` (keys `mae<suffix>`,
/// `r2<suffix>`) within 1e-4; returns evaluate's stderr.
fn assert_evaluate_equals_validation(
    export: &str,
    column: &str,
    split: &str,
    output: &str,
    validation: &serde_json::Value,
    suffix: &str,
) -> String {
    let (table, md) = (shared("table.biom"), shared("metadata.tsv"));
    let o = aam(&[
        "evaluate",
        "--model",
        export,
        "--table",
        &table,
        "--metadata",
        &md,
        "--metadata-column",
        column,
        "--split",
        split,
        "--bootstrap",
        "0",
        "--output",
        output,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let evaluated = common::tsv_rows(&std::path::Path::new(output).join("metrics.tsv"));
    for metric in ["mae", "r2"] {
        let want: f64 = evaluated.iter().find(|r| r["metric"] == metric).unwrap()["value"]
            .parse()
            .unwrap();
        let got = validation[format!("{metric}{suffix}")].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
            "{column} {metric}: validation {got} against evaluate {want}"
        );
    }
    stderr(&o)
}

/// With nucleotide masking on (the default `--nuc-weight 1`), the validation metrics of
/// the last epoch are those of inference: `aam export --last` then `aam evaluate` on the
/// same validation samples gives the same MAE and R² (the k-mer embedding reads the
/// unmasked tokens in training, and validation predicts from them).
#[test]
fn validation_metrics_with_masked_nucleotides_equal_the_exported_models() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s).display().to_string();
    let (table, md, u) = (
        shared("table.biom"),
        shared("metadata.tsv"),
        shared("unifrac_unweighted.h5"),
    );
    let (run, export, evaluation) = (p("run"), p("export"), p("evaluate"));
    let mut args = vec![
        "train",
        "--table",
        &table,
        "--metadata",
        &md,
        "--metadata-column",
        "days-since-experiment-start",
        "--unifrac-matrix",
        &u,
        "--output",
        &run,
        "--group-column",
        "subject",
        "--kmer-size",
        "6",
        "--nuc-weight",
        "1",
        "--lr",
        "3e-3",
    ];
    args.extend(TINY);
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics = std::fs::read_to_string(dir.path().join("run/metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    let o = aam(&[
        "export",
        "--last",
        "--checkpoint",
        &run,
        "--output",
        &export,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let split = p("run/split.tsv");
    let log = assert_evaluate_equals_validation(
        &export,
        "days-since-experiment-start",
        &split,
        &evaluation,
        &last["validation"],
        "",
    );
    assert!(!log.contains("was trained on column"), "{log}");
}

#[test]
fn train_conditioned_on_categories_stores_them_and_exports() {
    // Regression of days-since-experiment-start conditioned on body-site and subject
    // (gmu fusion, MLP head, target_norm, scaling by subject). The split is by subject,
    // so every validation sample's subject is one training never saw: unknown (0).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run").display().to_string();
    let (table, md) = (shared("table.biom"), shared("metadata.tsv"));
    let mut args = vec![
        "train",
        "--table",
        &table,
        "--metadata",
        &md,
        "--metadata-column",
        "days-since-experiment-start",
        "--output",
        &out,
        "--group-column",
        "subject",
        "--categorical-columns",
        "subject,body-site",
        "--categorical-fusion",
        "gmu",
        "--categorical-embed-dim",
        "4",
        "--regressor-hidden-dims",
        "8",
        "--target-layer-norm",
        "--conditional-output-scaling",
        "subject",
        "--categorical-loss-weights",
        "auto",
        "--categorical-loss-weight-column",
        "body-site",
    ];
    args.extend(TINY);
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let log = stderr(&o);
    assert!(
        log.contains("target loss weights by 'body-site': "),
        "{log}"
    );
    assert!(
        log.contains("categorical column 'subject': 1 categories"),
        "{log}"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/config.json")).unwrap())
            .unwrap();
    let sites = config["target"]["categories"]["body-site"]
        .as_array()
        .unwrap()
        .clone();
    assert!(sites.len() >= 2, "{sites:?}");
    let mut sorted = sites.clone();
    sorted.sort_by_key(|v| v.as_str().unwrap().to_string());
    assert_eq!(sites, sorted, "labels in index order (sorted)");
    let model = &config["model"];
    assert_eq!(
        model["categorical_cardinalities"]["body-site"],
        sites.len() + 1
    );
    assert_eq!(model["categorical_cardinalities"]["subject"], 2);
    assert_eq!(model["categorical_fusion"], "gmu");
    assert_eq!(model["regressor_hidden_dims"], serde_json::json!([8]));
    assert_eq!(model["target_layer_norm"], true);

    // The export builds the conditioned head; `aam predict` without --metadata says
    // what it needs instead of predicting without categories.
    let export = dir.path().join("export").display().to_string();
    let o = aam(&["export", "--checkpoint", &out, "--output", &export]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = aam(&["predict", "--model", &export, "--table", &table]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("conditioned on the metadata categories body-site, subject"),
        "{}",
        stderr(&o)
    );

    // With --metadata: the split graphs, the single graph and Burn agree.
    let predict = |metadata: &str, extra: &[&str]| -> (Vec<(String, f64)>, String) {
        let mut a = vec![
            "predict",
            "--model",
            &export,
            "--table",
            &table,
            "--metadata",
            metadata,
        ];
        a.extend(extra);
        let o = aam(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = String::from_utf8(o.stdout.clone()).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
        let col = header.iter().position(|h| *h == "prediction").unwrap();
        let rows = lines
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0].to_string(), f[col].parse::<f64>().unwrap_or(f64::NAN))
            })
            .collect();
        (rows, stderr(&o))
    };
    let close = |a: &[(String, f64)], b: &[(String, f64)], what: &str| {
        assert_eq!(a.len(), b.len());
        for ((ia, va), (ib, vb)) in a.iter().zip(b) {
            assert_eq!(ia, ib);
            assert!(
                (va - vb).abs() <= 1e-4 * va.abs().max(1.0) || (va.is_nan() && vb.is_nan()),
                "{what}: sample {ia}: {va} vs {vb}"
            );
        }
    };
    let (split, _) = predict(&md, &[]);
    assert!(
        split.iter().filter(|(_, v)| v.is_finite()).count() > 20,
        "{split:?}"
    );
    close(&split, &predict(&md, &["--single-graph"]).0, "single graph");
    close(&split, &predict(&md, &["--backend", "burn"]).0, "burn");

    // A body-site that training never saw, or a missing one, is the unknown index 0:
    // both give the same prediction, with a warning, and it differs from the known
    // site's. Sample L1S105 is a gut sample.
    let text = std::fs::read_to_string(&md).unwrap();
    let edited = |site: &str| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let header: Vec<&str> = lines[0].split('\t').collect();
        let c = header.iter().position(|h| *h == "body-site").unwrap();
        for l in lines.iter_mut().skip(1) {
            let mut f: Vec<&str> = l.split('\t').collect();
            if f[0] == "L1S105" {
                f[c] = site;
                *l = f.join("\t");
            }
        }
        let path = dir.path().join(format!("md-{}.tsv", site.len()));
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path.display().to_string()
    };
    let (unseen, log) = predict(&edited("volcano"), &[]);
    assert!(
        log.contains("'volcano' (1)") && log.contains("never had"),
        "{log}"
    );
    let (missing, log) = predict(&edited(""), &[]);
    assert!(
        log.contains("1 samples have no value") && log.contains("L1S105"),
        "{log}"
    );
    let at = |rows: &[(String, f64)]| rows.iter().find(|(i, _)| i == "L1S105").unwrap().1;
    assert!(
        (at(&unseen) - at(&missing)).abs() < 1e-9,
        "{} vs {}",
        at(&unseen),
        at(&missing)
    );
    assert!(
        (at(&unseen) - at(&split)).abs() > 1e-6,
        "the category changes the prediction"
    );
    close(
        &unseen
            .iter()
            .filter(|(i, _)| i != "L1S105")
            .cloned()
            .collect::<Vec<_>>(),
        &split
            .iter()
            .filter(|(i, _)| i != "L1S105")
            .cloned()
            .collect::<Vec<_>>(),
        "other samples",
    );

    // A metadata file without one of the model's columns is an error naming it.
    let no_site = dir.path().join("no-site.tsv");
    std::fs::write(&no_site, "sample_id\tsubject\nL1S105\tsubject-1\n").unwrap();
    let o = aam(&[
        "predict",
        "--model",
        &export,
        "--table",
        &table,
        "--metadata",
        &no_site.display().to_string(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no column 'body-site'"),
        "{}",
        stderr(&o)
    );

    // Permutation importance reads each sample's categories from its --metadata; its
    // importances are mean increases of |prediction − days|, finite.
    let importance = dir.path().join("importance");
    let o = aam(&[
        "importance",
        "--model",
        &export,
        "--table",
        &table,
        "--metadata",
        &md,
        "--metadata-column",
        "days-since-experiment-start",
        "--method",
        "permutation",
        "--top",
        "3",
        "--repeats",
        "1",
        "--output",
        &importance.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ranked = common::tsv_rows(&importance.join("importance.tsv"));
    assert_eq!(ranked.len(), 3);
    assert!(
        ranked
            .iter()
            .all(|r| r["importance"].parse::<f64>().unwrap().is_finite()),
        "{ranked:?}"
    );

    // Integrated gradients do not read categories yet: refused, not run as unknown.
    let o = aam(&[
        "importance",
        "--model",
        &export,
        "--table",
        &table,
        "--output",
        &dir.path().join("ig").display().to_string(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--method permutation"), "{}", stderr(&o));

    // A scaling column outside the categorical columns is refused before any work.
    let mut bad = args.clone();
    let at = bad
        .iter()
        .position(|a| *a == "--conditional-output-scaling")
        .unwrap();
    bad[at + 1] = "year";
    assert_refused(&bad, "not in --categorical-columns");
}

/// The days-since-experiment-start of the training samples of the run in `run` (its
/// `split.tsv`), read from the metadata `md`; with `only = Some((column, label))` those
/// whose `column` is `label`.
fn training_values(run: &std::path::Path, md: &str, only: Option<(&str, &str)>) -> Vec<f64> {
    let split = std::fs::read_to_string(run.join("split.tsv")).unwrap();
    let train: std::collections::HashSet<&str> = split
        .lines()
        .filter(|l| l.ends_with("\ttrain"))
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    let text = std::fs::read_to_string(md).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split('\t').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let days = at("days-since-experiment-start");
    let only = only.map(|(c, l)| (at(c), l));
    text.lines()
        .skip(1)
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| train.contains(f[0]) && only.is_none_or(|(c, l)| f[c] == l))
        .map(|f| f[days].parse().unwrap())
        .collect()
}

#[test]
fn quantile_loss_and_target_transform_predict_in_the_targets_units() {
    // days-since-experiment-start (0…200 days) with the pinball loss at three levels,
    // a log z-score transform and the kept epoch chosen by validation MAE.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run").display().to_string();
    let (table, md) = (shared("table.biom"), shared("metadata.tsv"));
    let mut args = vec![
        "train",
        "--table",
        &table,
        "--metadata",
        &md,
        "--metadata-column",
        "days-since-experiment-start",
        "--output",
        &out,
        "--group-column",
        "subject",
        "--loss-type",
        "quantile",
        "--quantiles",
        "0.8,0.2,0.5",
        "--target-transform",
        "log-zscore",
        "--best-metric",
        "mae",
        "--lr",
        "3e-3",
    ];
    args.extend(common::tiny_with_epochs("3"));
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |f: &str| std::fs::read_to_string(dir.path().join("run").join(f)).unwrap();
    let config: serde_json::Value = serde_json::from_str(&read("config.json")).unwrap();
    assert_eq!(config["target"]["transform"], "log-zscore");
    assert_eq!(
        config["target"]["quantiles"],
        serde_json::json!([0.2, 0.5, 0.8])
    );
    assert_eq!(config["model"]["num_quantiles"], 3);
    // The offset and scale are the mean and population std of ln(y + 1) over the
    // training samples (split.tsv), computed here from the metadata.
    let logs: Vec<f64> = training_values(&dir.path().join("run"), &md, None)
        .into_iter()
        .map(f64::ln_1p)
        .collect();
    assert!(logs.len() >= 10, "{} training samples", logs.len());
    let mean = logs.iter().sum::<f64>() / logs.len() as f64;
    let std = (logs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / logs.len() as f64).sqrt();
    let got = |k: &str| config["target"][k].as_f64().unwrap();
    assert!((got("mean") - mean).abs() < 1e-9 && (got("std") - std).abs() < 1e-9);
    // The kept epoch is the one with the lowest validation MAE (in days).
    let maes: Vec<f64> = read("metrics.jsonl")
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["validation"]["mae"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(maes.len(), 3);
    let best = (0..3).min_by(|&a, &b| maes[a].total_cmp(&maes[b])).unwrap() + 1;
    let state: serde_json::Value = serde_json::from_str(&read("train_state.json")).unwrap();
    assert_eq!(state["best_epoch"], best, "{maes:?}");
    assert_eq!(state["best_score"].as_f64(), Some(maes[best - 1]));

    // Predictions: one column per level, in days; the point prediction is the median
    // level; the split graphs and Burn agree.
    let export = dir.path().join("export").display().to_string();
    let o = aam(&["export", "--checkpoint", &out, "--output", &export]);
    assert!(o.status.success(), "{}", stderr(&o));
    let predict = |backend: &str| -> Vec<Vec<f64>> {
        let o = aam(&[
            "predict",
            "--model",
            &export,
            "--table",
            &table,
            "--backend",
            backend,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = String::from_utf8(o.stdout.clone()).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(
            header.starts_with(
                "sample_id\tprediction\tquantile_0.2\tquantile_0.5\tquantile_0.8\tn_asv"
            ),
            "{header}"
        );
        lines
            .map(|l| {
                l.split('\t')
                    .skip(1)
                    .take(4)
                    .map(|v| v.parse().unwrap_or(f64::NAN))
                    .collect()
            })
            .collect()
    };
    let (tract, burn) = (predict("tract"), predict("burn"));
    let finite = tract.iter().filter(|r| r[0].is_finite()).count();
    assert!(finite > 20, "{tract:?}");
    for (t, b) in tract.iter().zip(&burn) {
        assert_eq!(
            t[0].to_bits(),
            t[2].to_bits(),
            "prediction = the 0.5 level: {t:?}"
        );
        for (x, y) in t.iter().zip(b) {
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(1.0) || (x.is_nan() && y.is_nan()),
                "{t:?} vs {b:?}"
            );
        }
        // ln(y + 1) back to days: never below −1.
        assert!(t.iter().all(|v| v.is_nan() || *v > -1.0), "{t:?}");
    }

    // Several passes over random ASV subsets (the model was trained with the abundance
    // policy; --asv-sampling overrides it): the mean and population std of the median
    // level over passes 0..4, recomputed here from the runtime's raw outputs.
    let o = aam(&[
        "predict",
        "--model",
        &export,
        "--table",
        &table,
        "--asv-sampling",
        "random",
        "--prediction-passes",
        "4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split('\t').collect();
    let (pc, sc) = (
        header.iter().position(|h| *h == "prediction").unwrap(),
        header.iter().position(|h| *h == "prediction_std").unwrap(),
    );
    let model = aam_runtime::Model::load(std::path::Path::new(&export)).unwrap();
    let config = model.config().clone();
    let (t, _) = aam_data::load_table(std::path::Path::new(&table)).unwrap();
    let prepared =
        aam_runtime::prepare_table_with(t, &config, "t", aam_data::TokenLimitPolicy::Random)
            .unwrap();
    let ds = &prepared.dataset;
    let target = config.target.as_ref().unwrap();
    let mut spread = 0.0f64;
    for (s, line) in text.lines().skip(1).enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        if prepared.asvs_with_reads[s] == 0 {
            continue;
        }
        let values: Vec<f64> = (0..4u64)
            .map(|pass| {
                let b = ds.batch(&[s], None, pass);
                let (n, k) = b.counts.dim();
                let counts = b.counts.clone().into_shape_with_order((n, k, 1)).unwrap();
                let out = model
                    .run_with_counts(b.tokens.view(), counts.view())
                    .unwrap();
                let z = out.target_prediction.unwrap()[[0, 1]];
                target
                    .transform
                    .inverse(f64::from(z), target.mean, target.std)
            })
            .collect();
        let mean = values.iter().sum::<f64>() / 4.0;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0).sqrt();
        let (got, got_std): (f64, f64) = (f[pc].parse().unwrap(), f[sc].parse().unwrap());
        assert!(
            (got - mean).abs() <= 1e-5 * mean.abs().max(1.0),
            "{}: {got} vs {mean}",
            f[0]
        );
        assert!(
            (got_std - std).abs() <= 1e-5 * mean.abs().max(1.0),
            "{}: {got_std} vs {std}",
            f[0]
        );
        spread = spread.max(std);
    }
    assert!(spread > 0.0, "random subsets change some prediction");

    // Refused before training: a classification column with a regression loss, quantiles
    // without the quantile loss, a metric of the other kind of target.
    let base = [
        "train",
        "--table",
        &table,
        "--metadata",
        &md,
        "--output",
        &out,
        "--overwrite",
    ];
    let refused = |extra: &[&str], expected: &str| {
        assert_refused(&[&base[..], extra, &TINY[..]].concat(), expected);
    };
    refused(
        &["--metadata-column", "body-site", "--loss-type", "mae"],
        "apply to regression",
    );
    refused(
        &["--metadata-column", "body-site", "--best-metric", "r2"],
        "does not apply",
    );
    refused(
        &["--metadata-column", "body-site", "--quantiles", "0.5"],
        "needs --loss-type quantile",
    );
}

#[test]
fn zscore_within_categories_is_fitted_on_training_samples_and_inverted_per_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run").display().to_string();
    let (table, md) = (shared("table.biom"), shared("metadata.tsv"));
    let mut args = vec![
        "train",
        "--table",
        &table,
        "--metadata",
        &md,
        "--metadata-column",
        "days-since-experiment-start",
        "--output",
        &out,
        "--group-column",
        "subject",
        "--categorical-columns",
        "reported-antibiotic-usage",
        "--target-transform",
        "zscore-category",
        "--normalize-by",
        "reported-antibiotic-usage",
    ];
    args.extend(TINY);
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |f: &str| std::fs::read_to_string(dir.path().join("run").join(f)).unwrap();
    let config: serde_json::Value = serde_json::from_str(&read("config.json")).unwrap();
    let target = &config["target"];
    assert_eq!(target["normalize_by"], "reported-antibiotic-usage");
    // Each category's mean and population std over its training samples (split.tsv),
    // computed here from the metadata.
    let labels: Vec<String> = target["categories"]["reported-antibiotic-usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for (k, label) in labels.iter().enumerate() {
        let v = training_values(
            &dir.path().join("run"),
            &md,
            Some(("reported-antibiotic-usage", label)),
        );
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        let got = &target["by_category"][k + 1];
        // Antibiotic users were sampled on day 0 only: a constant category takes the
        // global statistics; the others their own.
        let (mean, std) = if v.len() < 2 || std == 0.0 {
            (
                target["mean"].as_f64().unwrap(),
                target["std"].as_f64().unwrap(),
            )
        } else {
            (mean, std)
        };
        assert!(
            (got[0].as_f64().unwrap() - mean).abs() < 1e-9
                && (got[1].as_f64().unwrap() - std).abs() < 1e-9,
            "{label}: {got} vs [{mean}, {std}]"
        );
    }
    assert_eq!(
        target["by_category"][0][0], target["mean"],
        "unknown: the global statistics"
    );

    // Prediction inverts each sample's output with its own category's statistics.
    let export = dir.path().join("export");
    let o = aam(&[
        "export",
        "--checkpoint",
        &out,
        "--output",
        &export.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let model = aam_runtime::Model::load(&export).unwrap();
    let (t, _) = aam_data::load_table(std::path::Path::new(&table)).unwrap();
    let metadata = aam_data::Metadata::load(std::path::Path::new(&md)).unwrap();
    let categories = aam_runtime::SampleCategories::from_metadata(&metadata);
    let preds = model
        .predict_table_with_categories(t.clone(), "t", Default::default(), Some(&categories))
        .unwrap();
    let prepared = aam_runtime::prepare_table(t, model.config(), "t").unwrap();
    let (ids, _) = aam_runtime::category_ids(
        model.config(),
        &prepared.dataset.table.sample_ids,
        Some(&categories),
    )
    .unwrap();
    let ids = ids.unwrap();
    let info = model.config().target.clone().unwrap();
    // The category with its own statistics ("No": days 84 to 168) differs from the global.
    let own = (1..info.by_category.len())
        .find(|&k| info.by_category[k] != [info.mean, info.std])
        .expect("a category with its own statistics");
    let mut checked = [0, 0];
    for (s, p) in preds
        .samples
        .iter()
        .enumerate()
        .filter(|(_, p)| p.value.is_some())
    {
        let b = prepared.dataset.batch(&[s], None, 0);
        let (n, k) = b.counts.dim();
        let counts = b.counts.clone().into_shape_with_order((n, k, 1)).unwrap();
        let row = ids.slice(ndarray::s![s..s + 1, ..]);
        let z = model
            .run_with_categories(b.tokens.view(), Some(counts.view()), row)
            .unwrap();
        let z = f64::from(z.target_prediction.unwrap()[[0, 0]]);
        let [mean, std] = info.by_category[ids[[s, 0]] as usize];
        let want = z * std + mean;
        let got = p.value.unwrap();
        assert!(
            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
            "{}: {got} vs {want}",
            p.sample_id
        );
        checked[usize::from(ids[[s, 0]] as usize == own)] += 1;
    }
    assert!(checked[1] > 5 && checked[0] > 0, "{checked:?}");
    let o = aam(&[
        "train",
        "--table",
        &table,
        "--metadata",
        &md,
        "--metadata-column",
        "days-since-experiment-start",
        "--output",
        &out,
        "--overwrite",
        "--target-transform",
        "zscore-category",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("needs --normalize-by"),
        "{}",
        stderr(&o)
    );
}

/// Two numeric target columns in one regressor (`--metadata-column a,b`, a loss per
/// column): each column z-scored by its own training statistics (recomputed here from
/// the split), per-column validation metrics with their mean under the plain name, and
/// the exported model's predictions of the second column, evaluated by `aam evaluate`,
/// equal training's validation metrics of that column.
#[test]
fn several_target_columns_train_one_regressor() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s).display().to_string();
    let (table, md) = (shared("table.biom"), shared("metadata.tsv"));
    let (run, export, evaluation, predictions) = (p("run"), p("export"), p("evaluate"), p("p.tsv"));
    let mut args = vec![
        "train",
        "--table",
        &table,
        "--metadata",
        &md,
        "--metadata-column",
        "days-since-experiment-start,month",
        "--loss-config",
        r#"{"month": "mae", "0": "huber"}"#,
        "--output",
        &run,
        "--group-column",
        "subject",
        "--nuc-weight",
        "0",
    ];
    args.extend(TINY);
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("run/config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["out_dim"], 2);
    assert_eq!(config["target"]["column"], "days-since-experiment-start");
    let more = &config["target"]["more_columns"][0];
    assert_eq!(more["column"], "month");
    // Population mean and std of `month` over the training samples.
    let split = common::tsv_rows(&dir.path().join("run/split.tsv"));
    let train: Vec<&str> = split
        .iter()
        .filter(|r| r["set"] == "train")
        .map(|r| r["sample_id"].as_str())
        .collect();
    let month: Vec<f64> = common::tsv_rows(std::path::Path::new(&md))
        .iter()
        .filter(|r| train.contains(&r["sample_id"].as_str()))
        .map(|r| r["month"].parse().unwrap())
        .collect();
    assert_eq!(month.len(), train.len());
    let mean = month.iter().sum::<f64>() / month.len() as f64;
    let std = (month.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / month.len() as f64).sqrt();
    assert!(
        (more["mean"].as_f64().unwrap() - mean).abs() < 1e-9,
        "{more} vs {mean}"
    );
    assert!(
        (more["std"].as_f64().unwrap() - std).abs() < 1e-9,
        "{more} vs {std}"
    );

    let metrics = std::fs::read_to_string(p("run/metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    let v = &last["validation"];
    let (a, b) = (
        v["r2_days-since-experiment-start"].as_f64().unwrap(),
        v["r2_month"].as_f64().unwrap(),
    );
    assert!(
        (v["r2"].as_f64().unwrap() - (a + b) / 2.0).abs() < 1e-12,
        "{v}"
    );

    let o = aam(&[
        "export",
        "--last",
        "--checkpoint",
        &run,
        "--output",
        &export,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = aam(&[
        "predict",
        "--model",
        &export,
        "--table",
        &table,
        "--output",
        &predictions,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = common::tsv_rows(std::path::Path::new(&predictions));
    assert_eq!(rows.len(), 34);
    for r in &rows {
        for c in ["prediction_days-since-experiment-start", "prediction_month"] {
            assert!(r[c].parse::<f64>().unwrap().is_finite(), "{c} in {r:?}");
        }
    }
    // The second column's predictions of the export, evaluated, are training's.
    let log = assert_evaluate_equals_validation(
        &export,
        "month",
        &p("run/split.tsv"),
        &evaluation,
        v,
        "_month",
    );
    assert!(!log.contains("was trained on column"), "{log}");

    // What cannot be trained together is refused before anything is written.
    for (columns, extra, expected) in [
        ("body-site,month", "", "is categorical"),
        ("month,month", "", "names 'month' twice"),
        ("month,body-site", "", "'body-site'"),
        ("month,day", "--loss-type=quantile", "one target column"),
    ] {
        let out = p(&format!("refused-{}", columns.replace(',', "-")));
        let mut args = vec![
            "train",
            "--table",
            &table,
            "--metadata",
            &md,
            "--metadata-column",
            columns,
            "--output",
            &out,
        ];
        if !extra.is_empty() {
            args.push(extra);
        }
        args.extend(TINY);
        let o = aam(&args);
        assert!(!o.status.success(), "{columns} {extra}");
        assert!(stderr(&o).contains(expected), "{columns}: {}", stderr(&o));
    }
}
