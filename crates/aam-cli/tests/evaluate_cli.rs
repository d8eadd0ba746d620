//! `aam evaluate` of the shipped classifier on the shipped data: accuracy and ROC-AUC
//! equal independent computations from the recorded predictions, the confusion matrix
//! and per-sample table add up, the plots are PNG and SVG, and an earlier evaluation is
//! never overwritten without `--overwrite`.

use std::collections::HashMap;
use std::path::Path;

mod common;
use common::{aam, repo, stderr, tsv_rows as tsv};

#[test]
fn shipped_classifier_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("eval");
    let args = [
        "evaluate",
        "--table",
        &repo("data/circadian-ihc/table.biom"),
        "--metadata",
        &repo("data/circadian-ihc/metadata.tsv"),
        "--metadata-column",
        "exposure_type",
        "--output",
        &out.display().to_string(),
        "--bootstrap",
        "500",
    ];
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));

    // Independent: the recorded predictions of the shipped model and the metadata.
    let truth: HashMap<String, String> = tsv(Path::new(&repo("data/circadian-ihc/metadata.tsv")))
        .into_iter()
        .map(|r| (r["sample_id"].clone(), r["exposure_type"].clone()))
        .collect();
    let recorded = tsv(Path::new(&repo(
        "models/circadian-exposure/predictions.tsv",
    )));
    let n = recorded.len();
    let correct = recorded
        .iter()
        .filter(|r| r["prediction"] == truth[&r["sample_id"]])
        .count();
    // ROC-AUC of P(IHC) as the fraction of (IHC, Air) pairs ranked right, ties half.
    let p_ihc = |r: &HashMap<String, String>| r["probability_IHC"].parse::<f64>().unwrap();
    let (pos, neg): (Vec<_>, Vec<_>) = recorded
        .iter()
        .partition(|r| truth[&r["sample_id"]] == "IHC");
    let mut wins = 0.0;
    for p in &pos {
        for q in &neg {
            wins += match p_ihc(p).total_cmp(&p_ihc(q)) {
                std::cmp::Ordering::Greater => 1.0,
                std::cmp::Ordering::Equal => 0.5,
                std::cmp::Ordering::Less => 0.0,
            };
        }
    }
    let auc = wins / (pos.len() * neg.len()) as f64;

    let metrics = tsv(&out.join("metrics.tsv"));
    let value = |name: &str| -> (f64, f64, f64) {
        let m = metrics.iter().find(|m| m["metric"] == name).unwrap();
        let f = |k: &str| m[k].parse::<f64>().unwrap();
        (f("value"), f("ci95_low"), f("ci95_high"))
    };
    let (acc, lo, hi) = value("accuracy");
    assert!((acc - correct as f64 / n as f64).abs() < 1e-12, "{acc}");
    assert!(lo <= acc && acc <= hi && hi - lo > 0.0);
    // The recorded probabilities have 7 significant digits; the evaluation's are f32.
    assert!(
        (value("roc_auc").0 - auc).abs() < 1e-6,
        "{} vs {auc}",
        value("roc_auc").0
    );
    assert!(metrics.iter().all(|m| m["n_samples"] == n.to_string()));

    let cm = tsv(&out.join("confusion_matrix.tsv"));
    let count = |t: &str, p: &str| -> usize {
        cm.iter().find(|r| r["true\\predicted"] == t).unwrap()[p]
            .parse()
            .unwrap()
    };
    assert_eq!(count("Air", "Air") + count("IHC", "IHC"), correct);
    assert_eq!(count("Air", "IHC") + count("IHC", "Air"), n - correct);
    let per_sample = tsv(&out.join("per_sample.tsv"));
    assert_eq!(per_sample.len(), n);
    assert_eq!(
        per_sample.iter().filter(|r| r["correct"] == "true").count(),
        correct
    );
    let correlations = tsv(&out.join("error_correlations.tsv"));
    for c in ["sequencing_depth", "asv_count", "metadata:zt"] {
        assert!(correlations.iter().any(|r| r["covariate"] == c), "{c}");
    }
    let png = std::fs::read(out.join("confusion_matrix.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(out.join("confusion_matrix.svg")).unwrap();
    assert!(svg.contains(&format!("confusion matrix (n = {n})")));

    // A second run refuses to replace the first.
    let o = aam(&args);
    assert!(
        !o.status.success() && stderr(&o).contains("--overwrite"),
        "{}",
        stderr(&o)
    );

    // --overwrite with --split: the counts are of the split's 12 validation samples, and
    // no file of the earlier evaluation is left (a regressor's plot stands in for one of
    // another target type).
    std::fs::write(out.join("residuals.png"), b"stale").unwrap();
    let mut again = args.to_vec();
    let split = repo("models/circadian-exposure/split.tsv");
    again.extend(["--overwrite", "--split", &split]);
    let o = aam(&again);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("12 of the 46 samples are in its validation set"),
        "{}",
        stderr(&o)
    );
    assert!(!out.join("residuals.png").exists());
    assert_eq!(tsv(&out.join("per_sample.tsv")).len(), 12);
}

#[test]
fn permutation_importance_of_the_shipped_classifier() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("importance");
    importance(&out, &["--top", "4", "--repeats", "2"]);
    let ranked = tsv(&out.join("importance.tsv"));
    assert_eq!(ranked.len(), 4);
    let per_sample = tsv(&out.join("per_sample_importance.tsv"));
    assert_eq!(per_sample.len(), 4 * 46);
    let value = |r: &HashMap<String, String>, k: &str| r[k].parse::<f64>().unwrap();
    for (i, r) in ranked.iter().enumerate() {
        // Scored ASVs are present in some samples and absent from others.
        let prevalence = value(r, "prevalence");
        assert!(prevalence > 0.0 && prevalence < 46.0, "{r:?}");
        // The importance is the mean of the per-sample increases of that ASV.
        let rows: Vec<f64> = per_sample
            .iter()
            .filter(|p| p["asv"] == r["asv"])
            .map(|p| value(p, "importance"))
            .collect();
        assert_eq!(rows.len(), 46);
        let mean = rows.iter().sum::<f64>() / 46.0;
        assert!(
            (mean - value(r, "importance")).abs() < 1e-9,
            "{mean} vs {r:?}"
        );
        if i > 0 {
            assert!(value(&ranked[i - 1], "importance") >= value(r, "importance"));
        }
    }
    let png = std::fs::read(out.join("importance.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // A model that reads counts also sees the abundance of an ASV present everywhere: the
    // candidates are the most abundant ASVs (on this table, three present in all 46).
    let out = dir.path().join("importance-counts");
    let model = repo("models/circadian-exposure-kmer-abundance");
    importance(&out, &["--model", &model, "--top", "3", "--repeats", "1"]);
    let ranked = tsv(&out.join("importance.tsv"));
    assert_eq!(ranked.len(), 3);
    assert!(ranked.iter().all(|r| value(r, "prevalence") == 46.0), "{ranked:?}");
}

/// `aam importance` on the shipped circadian-ihc table and its `exposure_type`, writing to
/// `out`, with `extra` arguments; asserts that it succeeds.
fn importance(out: &Path, extra: &[&str]) {
    let (table, metadata, out) = (
        repo("data/circadian-ihc/table.biom"),
        repo("data/circadian-ihc/metadata.tsv"),
        out.display().to_string(),
    );
    let mut args = vec![
        "importance",
        "--table",
        &table,
        "--metadata",
        &metadata,
        "--metadata-column",
        "exposure_type",
        "--output",
        &out,
    ];
    args.extend(extra);
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
}
