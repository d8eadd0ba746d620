//! `aam benchmark --preset smoke` on the repository's copy of circadian-ihc: the report's
//! numbers are those `aam evaluate` and `aam baseline` wrote, both scored exactly the
//! validation samples of the pretraining split, every step's command is recorded, and a
//! finished benchmark is kept unless resumed.

use std::collections::{HashMap, HashSet};
use std::path::Path;

mod common;
use common::{aam, repo, stderr, tsv_rows as tsv};

fn ids_of(path: &Path, filter: &dyn Fn(&HashMap<String, String>) -> bool) -> HashSet<String> {
    tsv(path)
        .into_iter()
        .filter(|r| filter(r))
        .map(|r| r["sample_id"].clone())
        .collect()
}

#[test]
fn smoke_benchmark_on_circadian_ihc() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("benchmark");
    let out_s = out.display().to_string();
    let data = repo("data");
    let args = [
        "benchmark",
        "--data-root",
        &data,
        "--datasets",
        "circadian-ihc",
        "--preset",
        "smoke",
        "--output",
        &out_s,
    ];
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let task = out.join("circadian-ihc/exposure_type");
    let validation = ids_of(&out.join("circadian-ihc/pretrain/split.tsv"), &|r| {
        r["set"] == "validation"
    });
    assert_eq!(validation.len(), 12);
    for step in ["evaluate", "baseline"] {
        let scored = ids_of(&task.join(step).join("per_sample.tsv"), &|_| true);
        assert_eq!(scored, validation, "{step} scored other samples");
    }
    // The summary rows carry the metrics files' values.
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    let metrics = |step: &str| -> HashMap<String, f64> {
        tsv(&task.join(step).join("metrics.tsv"))
            .into_iter()
            .map(|r| (r["metric"].clone(), r["value"].parse().unwrap()))
            .collect()
    };
    let (model, forest) = (metrics("evaluate"), metrics("baseline"));
    for m in ["accuracy", "macro_f1", "roc_auc"] {
        let row = report
            .lines()
            .find(|l| l.starts_with("| circadian-ihc |") && l.contains(&format!("| {m} |")))
            .unwrap_or_else(|| panic!("no summary row for {m}:\n{report}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let value = |c: &str| c.split(' ').next().unwrap().parse::<f64>().unwrap();
        assert!((value(cells[5]) - model[m]).abs() < 5e-4, "{row}");
        assert!((value(cells[6]) - forest[m]).abs() < 5e-4, "{row}");
    }
    // summary.tsv: the same values, with the intervals of the metrics files.
    let summary = tsv(&out.join("summary.tsv"));
    assert_eq!(summary.len(), 3, "one row per headline metric");
    let bounds = |step: &str, m: &str| -> (f64, f64) {
        let rows = tsv(&task.join(step).join("metrics.tsv"));
        let r = rows.iter().find(|r| r["metric"] == m).unwrap();
        (r["ci95_low"].parse().unwrap(), r["ci95_high"].parse().unwrap())
    };
    for row in &summary {
        assert_eq!((row["dataset"].as_str(), row["target"].as_str()), ("circadian-ihc", "exposure_type"));
        let m = row["metric"].as_str();
        let num = |k: &str| row[k].parse::<f64>().unwrap();
        assert_eq!(num("aam"), model[m], "{m}");
        assert_eq!(num("random_forest"), forest[m], "{m}");
        assert_eq!((num("aam_low"), num("aam_high")), bounds("evaluate", m), "{m}");
        assert_eq!((num("rf_low"), num("rf_high")), bounds("baseline", m), "{m}");
    }
    assert!(report.contains("(circadian-ihc/exposure_type/curves.png)"));
    assert!(
        task.join("curves.png").exists() && task.join("evaluate/confusion_matrix.png").exists()
    );
    let commands = std::fs::read_to_string(out.join("commands.sh")).unwrap();
    let steps: Vec<&str> = commands
        .lines()
        .filter(|l| l.starts_with("aam "))
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(
        steps,
        ["pretrain", "train", "export", "evaluate", "baseline"]
    );

    // Kept unless resumed; a resumed benchmark keeps every finished step.
    let o = aam(&args);
    assert!(
        !o.status.success() && stderr(&o).contains("--resume"),
        "{}",
        stderr(&o)
    );
    let mut resumed = args.to_vec();
    resumed.push("--resume");
    let o = aam(&resumed);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o).matches(": kept").count(), 5, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(out.join("report.md"))
            .unwrap()
            .lines()
            .count(),
        report.lines().count()
    );
    // A resume must use the settings the kept steps ran with.
    let mut other_seed = resumed.clone();
    other_seed.extend(["--seed", "7"]);
    let o = aam(&other_seed);
    assert!(
        !o.status.success() && stderr(&o).contains("same --preset and --seed"),
        "{}",
        stderr(&o)
    );

    let o = aam(&[
        "benchmark",
        "--data-root",
        &data,
        "--datasets",
        "no-such",
        "--output",
        &out_s,
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("unknown dataset 'no-such'"),
        "{}",
        stderr(&o)
    );
}
