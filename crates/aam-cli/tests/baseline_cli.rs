//! `aam baseline` on a constructed table whose targets are set by the ASV abundances:
//! the class is given by which of two ASVs dominates (accuracy and ROC-AUC 1 on the
//! validation samples), the numeric target is proportional to a third ASV's relative
//! abundance (R² near 1), the given split is the one scored, and the same seed gives the
//! same numbers.

use std::fmt::Write as _;
use std::path::Path;

mod common;
use common::{aam, stderr, tsv_rows as tsv};

const ASVS: [&str; 5] = [
    "TACGTAGGGTGCAAGCGTTAATCGGAATTACTGGGCGTAAAGCGCACGCAGGCGG",
    "TACGGAGGATCCGAGCGTTATCCGGATTTATTGGGTTTAAAGGGAGCGTAGGTGG",
    "TACGTAGGTGGCAAGCGTTGTCCGGATTTATTGGGCGTAAAGCGAGCGCAGGCGG",
    "TACGGAGGGTGCAAGCGTTAATCGGAATTACTGGGCGTAAAGCGCACGCAGGCGT",
    "TACGTAGGGGGCAAGCGTTATCCGGATTTACTGGGTGTAAAGGGAGCGTAGACGG",
];

/// 40 samples: class `a` when ASV 0 dominates ASV 1, `b` otherwise; `level` is 100 ×
/// the relative abundance of ASV 2; ASVs 3 and 4 are noise.
fn write_inputs(dir: &Path) -> (String, String) {
    let n = 40;
    let mut counts = vec![[0u32; 5]; n];
    let mut metadata = String::from("sample_id\tgroup\tlevel\n");
    for (i, c) in counts.iter_mut().enumerate() {
        let a = i % 2 == 0;
        *c = [
            if a { 60 + i as u32 } else { 5 },
            if a { 5 } else { 60 + i as u32 },
            (i as u32 * 7) % 50 + 1,
            (i as u32 * 13) % 17 + 3,
            (i as u32 * 5) % 11 + 2,
        ];
        let depth: u32 = c.iter().sum();
        let level = 100.0 * f64::from(c[2]) / f64::from(depth);
        let _ = writeln!(metadata, "S{i}\t{}\t{level}", if a { "a" } else { "b" });
    }
    let mut table = String::from("# Constructed from biom file\n#OTU ID");
    for i in 0..n {
        let _ = write!(table, "\tS{i}");
    }
    table.push('\n');
    for (k, asv) in ASVS.iter().enumerate() {
        table.push_str(asv);
        for c in &counts {
            let _ = write!(table, "\t{}", c[k]);
        }
        table.push('\n');
    }
    let (t, m) = (dir.join("table.tsv"), dir.join("metadata.tsv"));
    std::fs::write(&t, table).unwrap();
    std::fs::write(&m, metadata).unwrap();
    (t.display().to_string(), m.display().to_string())
}

fn metric(dir: &Path, name: &str) -> f64 {
    tsv(&dir.join("metrics.tsv"))
        .iter()
        .find(|m| m["metric"] == name)
        .unwrap()["value"]
        .parse()
        .unwrap()
}

fn baseline(table: &str, metadata: &str, column: &str, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "baseline",
        "--table",
        table,
        "--metadata",
        metadata,
        "--metadata-column",
        column,
        "--output",
        out.to_str().unwrap(),
        "--n-trees",
        "100",
        "--bootstrap",
        "200",
    ];
    args.extend(extra);
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn forest_finds_the_signal_on_the_given_split() {
    let dir = tempfile::tempdir().unwrap();
    let (table, metadata) = write_inputs(dir.path());
    // Validation: every fifth sample (both classes).
    let mut split = String::from("sample_id\tset\n");
    for i in 0..40 {
        let set = if i % 5 == 0 { "validation" } else { "train" };
        let _ = writeln!(split, "S{i}\t{set}");
    }
    let split_path = dir.path().join("split.tsv");
    std::fs::write(&split_path, &split).unwrap();
    let split_arg = split_path.display().to_string();

    let classes = dir.path().join("classes");
    baseline(
        &table,
        &metadata,
        "group",
        &classes,
        &["--split", &split_arg],
    );
    assert_eq!(metric(&classes, "accuracy"), 1.0);
    assert_eq!(metric(&classes, "roc_auc"), 1.0);
    let scored: Vec<String> = tsv(&classes.join("per_sample.tsv"))
        .iter()
        .map(|r| r["sample_id"].clone())
        .collect();
    let want: Vec<String> = (0..40).step_by(5).map(|i| format!("S{i}")).collect();
    assert_eq!(scored, want);
    assert_eq!(
        std::fs::read_to_string(classes.join("split.tsv")).unwrap(),
        split
    );

    let level = dir.path().join("level");
    baseline(
        &table,
        &metadata,
        "level",
        &level,
        &["--split", &split_arg, "--max-features", "all"],
    );
    let r2 = metric(&level, "r2");
    assert!(r2 > 0.8, "R² {r2}");
    // The same seed gives the same forest.
    let again = dir.path().join("again");
    baseline(
        &table,
        &metadata,
        "level",
        &again,
        &["--split", &split_arg, "--max-features", "all"],
    );
    assert_eq!(
        std::fs::read_to_string(level.join("metrics.tsv")).unwrap(),
        std::fs::read_to_string(again.join("metrics.tsv")).unwrap()
    );
    // A new split when none is given, written for `aam train --split`.
    let own = dir.path().join("own");
    baseline(&table, &metadata, "group", &own, &[]);
    let written = tsv(&own.join("split.tsv"));
    assert_eq!(written.len(), 40);
    assert_eq!(
        written.iter().filter(|r| r["set"] == "validation").count(),
        8
    );
}
