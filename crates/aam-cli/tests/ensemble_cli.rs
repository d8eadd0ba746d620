//! An ensemble from the command line: two fine-tunings (other seeds, one split) exported
//! together with `aam export --checkpoint A --checkpoint B`, predicted as one model whose
//! outputs are the members' means (checked against each member predicted on its own),
//! scored by `aam evaluate`, and the refusals (members that differ, a manifest that
//! reaches outside its directory, the Burn runner).

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

mod common;
use common::{aam, stderr};

fn shared(file: &str) -> String {
    common::shared("moving-pictures", file)
}

fn ok(args: &[&str]) -> Output {
    let o = aam(args);
    assert!(o.status.success(), "aam {}: {}", args.join(" "), stderr(&o));
    o
}

/// Trains a tiny one-epoch predictor of `column` with `seed` into `dir/<name>`, on
/// `split` when given (else split by subject).
fn train(dir: &Path, name: &str, column: &str, seed: &str, split: Option<&str>) -> String {
    let run = dir.join(name).display().to_string();
    let (table, md) = (shared("table.biom"), shared("metadata.tsv"));
    let mut args = vec![
        "train",
        "--table",
        &table,
        "--metadata",
        &md,
        "--metadata-column",
        column,
        "--output",
        &run,
        "--seed",
        seed,
    ];
    args.extend(common::tiny_with_epochs("2"));
    match split {
        Some(s) => args.extend(["--split", s]),
        None => args.extend(["--group-column", "subject"]),
    }
    ok(&args);
    run
}

/// `aam predict` of `model` on the table: the TSV's rows by sample.
fn predict(model: &str, out: &Path) -> (Vec<String>, HashMap<String, HashMap<String, f64>>) {
    let out = out.display().to_string();
    let o = ok(&[
        "predict",
        "--model",
        model,
        "--table",
        &shared("table.biom"),
        "--output",
        &out,
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split('\t')
        .map(String::from)
        .collect();
    let rows = lines
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            let values = header
                .iter()
                .zip(&cells)
                .filter_map(|(h, c)| Some((h.clone(), c.parse::<f64>().ok()?)))
                .collect();
            (cells[0].to_string(), values)
        })
        .collect();
    let mut header = header;
    header.push(stderr(&o));
    (header, rows)
}

/// Each numeric column of `ensemble` equals the mean of the members' within `tol`.
fn assert_mean(
    ensemble: &HashMap<String, HashMap<String, f64>>,
    members: &[HashMap<String, HashMap<String, f64>>],
    columns: &[String],
    tol: f64,
) {
    assert_eq!(ensemble.len(), 34);
    for (sample, row) in ensemble {
        for c in columns {
            let mean = members.iter().map(|m| m[sample][c]).sum::<f64>() / members.len() as f64;
            assert!(
                (row[c] - mean).abs() <= tol * mean.abs().max(1.0),
                "{sample} {c}: ensemble {} against the members' mean {mean}",
                row[c]
            );
        }
    }
}

#[test]
fn an_ensemble_of_classifiers_averages_its_members_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = train(d, "a", "body-site", "1", None);
    let split = format!("{a}/split.tsv");
    let b = train(d, "b", "body-site", "2", Some(&split));
    let ens = d.join("ens").display().to_string();
    let o = ok(&[
        "export",
        "--checkpoint",
        &a,
        "--checkpoint",
        &b,
        "--output",
        &ens,
    ]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ensemble of 2 members"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let (header, whole) = predict(&ens, &d.join("ens.tsv"));
    assert!(
        header.last().unwrap().contains("ensemble of 2 members"),
        "{header:?}"
    );
    let m1 = predict(&format!("{ens}/member-1"), &d.join("m1.tsv")).1;
    let m2 = predict(&format!("{ens}/member-2"), &d.join("m2.tsv")).1;
    let probs: Vec<String> = header
        .iter()
        .filter(|h| h.starts_with("probability_"))
        .cloned()
        .collect();
    assert_eq!(probs.len(), 4, "{header:?}");
    assert_mean(&whole, &[m1.clone(), m2.clone()], &probs, 2e-5);
    // The members differ (other seeds), so the mean is not one of them.
    let differ = whole
        .keys()
        .any(|s| (m1[s][&probs[0]] - m2[s][&probs[0]]).abs() > 1e-3);
    assert!(differ, "two seeds gave the same probabilities");

    // aam evaluate scores the ensemble as one model.
    let eval = d.join("eval").display().to_string();
    ok(&[
        "evaluate",
        "--model",
        &ens,
        "--table",
        &shared("table.biom"),
        "--metadata",
        &shared("metadata.tsv"),
        "--metadata-column",
        "body-site",
        "--split",
        &split,
        "--output",
        &eval,
    ]);
    assert!(Path::new(&eval).join("metrics.tsv").exists());

    // The Burn runner reads one export's weights.
    let o = aam(&[
        "predict",
        "--model",
        &ens,
        "--table",
        &shared("table.biom"),
        "--backend",
        "burn",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("an ensemble of exports has no model.safetensors"),
        "{}",
        stderr(&o)
    );

    // `aam bench` measures one model.
    let o = aam(&["bench", "--model", &ens, "--table", &shared("table.biom")]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("an ensemble of exports; `aam bench` measures one model"),
        "{}",
        stderr(&o)
    );

    // A member of another target (a regressor: one output, not four) is refused before
    // anything is written.
    let c = train(d, "c", "days-since-experiment-start", "1", Some(&split));
    let mixed = d.join("mixed");
    let o = aam(&[
        "export",
        "--checkpoint",
        &a,
        "--checkpoint",
        &c,
        "--output",
        &mixed.display().to_string(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("differs from"), "{}", stderr(&o));
    assert!(stderr(&o).contains("in its architecture"), "{}", stderr(&o));
    assert!(!mixed.exists());

    // A manifest naming a directory outside the ensemble is refused.
    std::fs::write(
        Path::new(&ens).join("ensemble.json"),
        r#"{"format":1,"members":["member-1","../a"]}"#,
    )
    .unwrap();
    let o = aam(&["predict", "--model", &ens, "--table", &shared("table.biom")]);
    assert!(!o.status.success());
    assert!(
        stderr(&o)
            .contains("ensemble.json: member \"../a\" is not a directory name inside the ensemble"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_ensemble_of_regressors_averages_its_members_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let column = "days-since-experiment-start";
    let a = train(d, "a", column, "3", None);
    let split = format!("{a}/split.tsv");
    let b = train(d, "b", column, "4", Some(&split));
    let c = train(d, "c", column, "5", Some(&split));
    let ens = d.join("ens").display().to_string();
    ok(&[
        "export",
        "--checkpoint",
        &a,
        "--checkpoint",
        &b,
        "--checkpoint",
        &c,
        "--output",
        &ens,
    ]);
    let whole = predict(&ens, &d.join("ens.tsv")).1;
    let members: Vec<_> = (1..=3)
        .map(|k| predict(&format!("{ens}/member-{k}"), &d.join(format!("m{k}.tsv"))).1)
        .collect();
    // Values are un-standardized by the shared statistics, so the mean of the transformed
    // outputs is the mean of the values.
    assert_mean(&whole, &members, &["prediction".to_string()], 1e-5);
    // From Rust: one model of three members, whose ASV-cache counts are their sums.
    let model = aam_runtime::Model::load(Path::new(&ens)).unwrap();
    let one = aam_runtime::Model::load(Path::new(&format!("{ens}/member-1"))).unwrap();
    assert_eq!((model.ensemble_size(), one.ensemble_size()), (3, 1));
    for m in [&model, &one] {
        let (table, _) = aam_data::load_table(Path::new(&shared("table.biom"))).unwrap();
        m.predict_table(table, "t", Default::default()).unwrap();
    }
    let slots = |m: &aam_runtime::Model| m.asv_cache_stats().unwrap().asv_slots;
    assert!(slots(&one) > 0);
    assert_eq!(slots(&model), 3 * slots(&one));
    // Each member encodes every unique ASV of the table once, up front, as one model does
    // (not again in every batch that holds it).
    let misses = |m: &aam_runtime::Model| m.asv_cache_stats().unwrap().misses;
    assert_eq!(misses(&model), 3 * misses(&one));
    // Exporting one checkpoint over the ensemble replaces it (its manifest would shadow it).
    let o = aam(&["export", "--checkpoint", &a, "--output", &ens]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("ensemble.json already exists"),
        "{}",
        stderr(&o)
    );
    ok(&[
        "export",
        "--checkpoint",
        &a,
        "--output",
        &ens,
        "--overwrite",
    ]);
    let single = predict(&ens, &d.join("single.tsv")).1;
    assert_mean(&single, &members[..1], &["prediction".to_string()], 1e-6);
    // Any file of a single export in the output is the user's: not removed without
    // --overwrite (here a lone model.safetensors).
    let lone = d.join("lone");
    std::fs::create_dir(&lone).unwrap();
    std::fs::write(lone.join("model.safetensors"), b"mine").unwrap();
    let lone = lone.display().to_string();
    let o = aam(&["export", "--checkpoint", &a, &b, "--output", &lone]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("model.safetensors already exists"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(format!("{lone}/model.safetensors")).unwrap(),
        b"mine"
    );
    // ... and back: the ensemble (checkpoints given after one flag, as Python passes a
    // list) replaces the single export's own files, which would otherwise still load.
    ok(&[
        "export",
        "--checkpoint",
        &a,
        &b,
        &c,
        "--output",
        &ens,
        "--overwrite",
    ]);
    assert!(!Path::new(&ens).join("model.onnx").exists());
    assert!(!Path::new(&ens).join("model.safetensors").exists());
    let again = predict(&ens, &d.join("again.tsv")).1;
    assert_mean(&again, &[whole], &["prediction".to_string()], 1e-6);

    // Pretrained encoders embed samples in unaligned spaces: no ensemble of them.
    let enc = d.join("enc").display().to_string();
    ok(&[
        "pretrain",
        "--table",
        &shared("table.biom"),
        "--unifrac-matrix",
        &shared("unifrac_unweighted.h5"),
        "--output",
        &enc,
    ]
    .into_iter()
    .chain(common::TINY)
    .collect::<Vec<_>>());
    let o = aam(&[
        "export",
        "--checkpoint",
        &enc,
        "--checkpoint",
        &enc,
        "--output",
        &d.join("enc-ens").display().to_string(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("is a pretrained encoder"),
        "{}",
        stderr(&o)
    );
}
