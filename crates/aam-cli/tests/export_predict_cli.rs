//! `aam export` and `aam predict` from the command line: a checkpoint exported, predicted
//! with tract (ONNX) and with Burn (safetensors), regression values in original units,
//! samples without reads kept with a note, and the refusals that protect the user.

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

/// Trains a tiny one-epoch predictor of `column` into `dir/run` and exports it to `dir/export`.
fn trained_export(dir: &Path, column: &str) -> (String, String) {
    let run = dir.join("run").display().to_string();
    let export = dir.join("export").display().to_string();
    let (table, md) = (shared("table.biom"), shared("metadata.tsv"));
    ok(&[
        "train",
        "--table",
        &table,
        "--metadata",
        &md,
        "--metadata-column",
        column,
        "--output",
        &run,
        "--group-column",
        "subject",
    ]
    .into_iter()
    .chain(common::TINY)
    .collect::<Vec<_>>());
    let o = ok(&["export", "--checkpoint", &run, "--output", &export]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("opset 17"));
    (run, export)
}

/// Rows of a TSV as maps from column name to cell, plus the header.
fn read_tsv(text: &str) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split('\t')
        .map(String::from)
        .collect();
    let rows = lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split('\t').map(String::from))
                .collect()
        })
        .collect();
    (header, rows)
}

fn num(row: &HashMap<String, String>, key: &str) -> f64 {
    row[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key}: {:?}", row[key]))
}

#[test]
fn classifier_predictions_agree_between_tract_and_burn() {
    let dir = tempfile::tempdir().unwrap();
    let (_, export) = trained_export(dir.path(), "body-site");
    let table = shared("table.biom");
    let tract = ok(&[
        "predict",
        "--model",
        &export,
        "--table",
        &table,
        "--batch-size",
        "5",
        "--threads",
        "2",
    ]);
    let burn_out = dir.path().join("burn.tsv").display().to_string();
    ok(&[
        "predict",
        "--model",
        &export,
        "--table",
        &table,
        "--backend",
        "burn",
        "--output",
        &burn_out,
    ]);
    let (header, rows) = read_tsv(&String::from_utf8(tract.stdout).unwrap());
    let (header_b, rows_b) = read_tsv(&std::fs::read_to_string(&burn_out).unwrap());
    assert_eq!(header, header_b);
    assert_eq!(
        header,
        [
            "sample_id",
            "prediction",
            "probability_gut",
            "probability_left palm",
            "probability_right palm",
            "probability_tongue",
            "n_asv",
            "note"
        ]
    );
    assert_eq!(rows.len(), 34);
    let ids: Vec<String> = std::fs::read_to_string(shared("unifrac_ids.txt"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let classes = ["gut", "left palm", "right palm", "tongue"];
    for ((r, b), id) in rows.iter().zip(&rows_b).zip(&ids) {
        assert_eq!(&r["sample_id"], id, "table sample order");
        assert_eq!(r["sample_id"], b["sample_id"]);
        let p: Vec<f64> = classes
            .iter()
            .map(|c| num(r, &format!("probability_{c}")))
            .collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{p:?}");
        let best = (0..4).max_by(|&i, &j| p[i].total_cmp(&p[j])).unwrap();
        assert_eq!(r["prediction"], classes[best]);
        for c in classes {
            let key = format!("probability_{c}");
            assert!(
                (num(r, &key) - num(b, &key)).abs() <= 1e-4,
                "{id} {key}: tract vs burn"
            );
        }
        assert_eq!(r["n_asv"], b["n_asv"]);
        let n: usize = r["n_asv"].parse().unwrap();
        assert!((1..=12).contains(&n), "token limit 12: {n}");
        assert_eq!(r["note"], "");
    }
}

#[test]
fn regression_predictions_are_in_original_units() {
    let dir = tempfile::tempdir().unwrap();
    let (_, export) = trained_export(dir.path(), "days-since-experiment-start");
    let table_path = shared("table.biom");
    let emb = dir.path().join("emb.tsv").display().to_string();
    let o = ok(&[
        "predict",
        "--model",
        &export,
        "--table",
        &table_path,
        "--embeddings",
        &emb,
    ]);
    let (header, rows) = read_tsv(&String::from_utf8(o.stdout).unwrap());
    assert_eq!(header, ["sample_id", "prediction", "n_asv", "note"]);

    // Independent path: the runtime's raw standardized output, un-standardized by hand.
    let model = aam_runtime::Model::load(Path::new(&export)).unwrap();
    let target = model.config().target.clone().unwrap();
    assert!(target.std > 0.0);
    let (table, _) = aam_data::load_table(Path::new(&table_path)).unwrap();
    let prepared = aam_runtime::prepare_table(table, model.config(), "t").unwrap();
    let all: Vec<usize> = (0..34).collect();
    let batch = prepared.dataset.batch(&all, None, 0);
    // The default model pools by abundance: it reads the slots' counts.
    assert!(model.uses_counts());
    let (b, s) = batch.counts.dim();
    let counts = batch.counts.clone().into_shape_with_order((b, s, 1)).unwrap();
    let raw = model
        .run_with_counts(batch.tokens.view(), counts.view())
        .unwrap();
    let z = raw.target_prediction.unwrap();
    for (i, r) in rows.iter().enumerate() {
        let want = f64::from(z[[i, 0]]) * target.std + target.mean;
        assert!(
            (num(r, "prediction") - want).abs() <= 1e-4 * want.abs().max(1.0),
            "{}",
            r["sample_id"]
        );
    }
    evaluation_matches_the_predictions(dir.path(), &export, &rows);
    let (emb_header, emb_rows) = read_tsv(&std::fs::read_to_string(&emb).unwrap());
    assert_eq!(emb_header.len(), 1 + 16);
    assert_eq!(emb_rows.len(), 34);
    for (i, r) in emb_rows.iter().enumerate() {
        for k in 0..16 {
            let want = raw.embeddings[[i, k]];
            assert!((num(r, &format!("embedding_{k}")) as f32 - want).abs() <= 1e-5);
        }
    }
}

/// `aam evaluate` of the regressor: MAE and RMSE equal those computed here from the
/// predictions and the metadata, intervals contain them, the plots are written.
fn evaluation_matches_the_predictions(
    dir: &Path,
    export: &str,
    predictions: &[HashMap<String, String>],
) {
    let out = dir.join("eval");
    let column = "days-since-experiment-start";
    ok(&[
        "evaluate",
        "--model",
        export,
        "--table",
        &shared("table.biom"),
        "--metadata",
        &shared("metadata.tsv"),
        "--metadata-column",
        column,
        "--output",
        &out.display().to_string(),
        "--bootstrap",
        "300",
    ]);
    let (_, md) = read_tsv(&std::fs::read_to_string(shared("metadata.tsv")).unwrap());
    let truth: HashMap<&str, f64> = md
        .iter()
        .map(|r| (r["sample_id"].as_str(), r[column].parse::<f64>().unwrap()))
        .collect();
    let errors: Vec<f64> = predictions
        .iter()
        .map(|r| num(r, "prediction") - truth[r["sample_id"].as_str()])
        .collect();
    let n = errors.len() as f64;
    let mae = errors.iter().map(|e| e.abs()).sum::<f64>() / n;
    let rmse = (errors.iter().map(|e| e * e).sum::<f64>() / n).sqrt();
    let (_, metrics) = read_tsv(&std::fs::read_to_string(out.join("metrics.tsv")).unwrap());
    let metric = |name: &str| {
        metrics
            .iter()
            .find(|m| m["metric"] == name)
            .unwrap()
            .clone()
    };
    for (name, want) in [("mae", mae), ("rmse", rmse)] {
        let m = metric(name);
        let got = num(&m, "value");
        assert!(
            (got - want).abs() <= 1e-4 * want.max(1.0),
            "{name}: {got} vs {want}"
        );
        assert!(
            num(&m, "ci95_low") <= got && got <= num(&m, "ci95_high"),
            "{m:?}"
        );
        assert_eq!(m["n_samples"], "34");
    }
    let (_, per_sample) = read_tsv(&std::fs::read_to_string(out.join("per_sample.tsv")).unwrap());
    assert_eq!(per_sample.len(), 34);
    for f in ["predicted_vs_true.png", "residuals.png"] {
        let bytes = std::fs::read(out.join(f)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{f}");
    }
    let svg = std::fs::read_to_string(out.join("predicted_vs_true.svg")).unwrap();
    assert!(svg.contains("predicted vs true (n = 34)"));
}

/// A classic TSV table: two sequence ASVs, one sample without reads.
fn tsv_table(dir: &Path, ids: [&str; 2]) -> String {
    let p = dir.join("table.tsv");
    std::fs::write(
        &p,
        format!(
            "# Constructed from biom file\n#OTU ID\tS1\tEMPTY\tS3\n{}\t10\t0\t3\n{}\t0\t0\t7\n",
            ids[0], ids[1]
        ),
    )
    .unwrap();
    p.display().to_string()
}

#[test]
fn sample_without_reads_is_kept_with_a_note_and_bad_inputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (run, export) = trained_export(dir.path(), "body-site");
    let table = tsv_table(dir.path(), ["ACGTACGTTTGACCA", "GGGTACCATTGACAN"]);
    let out = dir.path().join("p.tsv").display().to_string();
    let o = ok(&[
        "predict", "--model", &export, "--table", &table, "--output", &out,
    ]);
    let err = stderr(&o);
    assert!(
        err.contains("1 samples have no ASV with reads") && err.contains("EMPTY"),
        "{err}"
    );
    assert!(err.contains("other than A, C, G, T"), "{err}");
    let (_, rows) = read_tsv(&std::fs::read_to_string(&out).unwrap());
    let ids: Vec<&str> = rows.iter().map(|r| r["sample_id"].as_str()).collect();
    assert_eq!(ids, ["S1", "EMPTY", "S3"]);
    assert_eq!(rows[1]["prediction"], "");
    assert_eq!(rows[1]["n_asv"], "0");
    assert!(rows[1]["note"].contains("no ASV with reads"));
    assert_eq!(
        (rows[0]["n_asv"].as_str(), rows[2]["n_asv"].as_str()),
        ("1", "2")
    );
    assert!(!rows[0]["prediction"].is_empty());

    // The predictions file is not replaced without --overwrite.
    let again = aam(&[
        "predict", "--model", &export, "--table", &table, "--output", &out,
    ]);
    assert!(!again.status.success() && stderr(&again).contains("--overwrite"));
    ok(&[
        "predict",
        "--model",
        &export,
        "--table",
        &table,
        "--output",
        &out,
        "--overwrite",
    ]);
    // Nor is an export.
    let again = aam(&["export", "--checkpoint", &run, "--output", &export]);
    assert!(
        !again.status.success() && stderr(&again).contains("--overwrite"),
        "{}",
        stderr(&again)
    );
    // Unsupported opset.
    let other = dir.path().join("other").display().to_string();
    let o = aam(&[
        "export",
        "--checkpoint",
        &run,
        "--output",
        &other,
        "--opset",
        "16",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("17"),
        "{}",
        stderr(&o)
    );
    // Hash observation IDs instead of sequences.
    let hashes = tsv_table(
        dir.path(),
        [
            "4b5eeb300368260019c1fbc7a3c718fc",
            "fe30ff0f71a38a39cf1717ec2be3a2fc",
        ],
    );
    let o = aam(&["predict", "--model", &export, "--table", &hashes]);
    assert!(
        !o.status.success() && stderr(&o).contains("MD5 hashes of the sequences"),
        "{}",
        stderr(&o)
    );
    // A missing model names the fix.
    let o = aam(&["predict", "--model", "nowhere", "--table", &table]);
    assert!(
        !o.status.success() && stderr(&o).contains("aam export"),
        "{}",
        stderr(&o)
    );
}
