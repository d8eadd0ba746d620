//! Metadata TSV parsing, missing values and targets.

mod common;

use aam_data::metadata::is_missing;
use aam_data::{load_table, Metadata, TargetKind};
use common::*;

fn write(dir: &tempfile::TempDir, name: &str, content: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn ibd_metadata_keeps_string_ids_and_counts_classes() {
    let (t, _) = load_table(&shared("ibd-2538", "table.biom")).unwrap();
    let md = Metadata::load(&shared("ibd-2538", "metadata.tsv")).unwrap();
    assert_eq!(md.sample_ids, t.sample_ids);
    let ibd = md.target("ibd", &t.sample_ids, None).unwrap();
    assert_eq!(ibd.kind, TargetKind::Categorical);
    assert_eq!(ibd.classes, ids(&["Control", "Crohns"]));
    let counts = ibd.class_counts();
    assert_eq!((counts["Control"], counts["Crohns"]), (269, 180));
    let sex = md.target("sex", &t.sample_ids, None).unwrap();
    assert_eq!(
        sex.missing_samples.len(),
        19,
        "SOURCE.md: sex has 19 missing"
    );
    let age = md.target("age", &t.sample_ids, None).unwrap();
    assert_eq!(age.kind, TargetKind::Numeric);
    // A numeric target has no classes to count (it used to index `classes` and panic).
    assert!(age.class_counts().is_empty());
    let ages: Vec<f64> = age.values.iter().flatten().copied().collect();
    let (lo, hi) = ages
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    assert_eq!((lo, hi), (18.0, 63.0));
}

#[test]
fn bom_crlf_q2_types_and_id_column_names() {
    let dir = tempfile::tempdir().unwrap();
    for header in ["sample-id", "#SampleID", "sample_id", "id"] {
        let p = write(
            &dir,
            "m.tsv",
            &format!("\u{feff}{header}\tph\tsite\r\n#q2:types\tnumeric\tcategorical\r\n2538.10\t7.5\tgut\r\n2538.1\tNA\tMissing: Not provided\r\n"),
        );
        let md = Metadata::load(&p).unwrap();
        assert_eq!(md.sample_ids, ids(&["2538.10", "2538.1"]), "{header}");
        assert_eq!(md.columns, ids(&["ph", "site"]));
        let ph = md.target("ph", &md.sample_ids, None).unwrap();
        assert_eq!(ph.values, vec![Some(7.5), None]);
        assert_eq!(ph.missing_samples, ids(&["2538.1"]));
    }
}

#[test]
fn id_column_not_first_and_fallback_to_first() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "m.tsv", "x\tsample_id\na\tS1\n");
    assert_eq!(Metadata::load(&p).unwrap().sample_ids, ids(&["S1"]));
    let p = write(&dir, "m2.tsv", "Run\tx\nS7\t1\n");
    assert_eq!(Metadata::load(&p).unwrap().sample_ids, ids(&["S7"]));
}

#[test]
fn missing_value_spellings() {
    for v in [
        "",
        "NA",
        "nan",
        "NaN",
        "not applicable",
        "Missing: Not provided",
        "Missing: Not collected",
    ] {
        assert!(is_missing(v), "{v:?}");
    }
    for v in ["0", "Control", "Missingness", "na-1"] {
        assert!(!is_missing(v), "{v:?}");
    }
}

#[test]
fn categorical_targets_sorted_and_forced_types() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "m.tsv",
        "sample_id\tsite\tcode\nA\ttongue\t2\nB\tgut\t10\nC\tpalm\t2\nD\t\t3\n",
    );
    let md = Metadata::load(&p).unwrap();
    let s = ids(&["A", "B", "C", "D", "E"]);
    let site = md.target("site", &s, None).unwrap();
    assert_eq!(site.classes, ids(&["gut", "palm", "tongue"]));
    assert_eq!(
        site.values,
        vec![Some(2.0), Some(0.0), Some(1.0), None, None]
    );
    assert_eq!(site.missing_samples, ids(&["D"]));
    assert_eq!(site.absent_samples, ids(&["E"]));
    let code = md
        .target("code", &s[..3], Some(TargetKind::Categorical))
        .unwrap();
    assert_eq!(code.classes, ids(&["10", "2"]), "string order");
    assert_mentions(
        &md.target("site", &s, Some(TargetKind::Numeric))
            .unwrap_err(),
        &["m.tsv", "sample 'A'", "tongue", "not a number"],
    );
}

#[test]
fn metadata_errors_name_file_line_and_sample() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "dup.tsv", "sample_id\tx\nS1\t1\nS1\t2\n");
    assert_mentions(
        &Metadata::load(&p).unwrap_err(),
        &["dup.tsv", "'S1'", "twice", "lines 2 and 3"],
    );
    let p = write(&dir, "ragged.tsv", "sample_id\tx\ty\nS1\t1\n");
    assert_mentions(
        &Metadata::load(&p).unwrap_err(),
        &["ragged.tsv", "line 2", "'S1'", "2 cells", "3"],
    );
    let p = write(&dir, "empty.tsv", "");
    assert_mentions(&Metadata::load(&p).unwrap_err(), &["empty.tsv", "header"]);
    let p = write(&dir, "ok.tsv", "sample_id\tbody-site\nS1\tgut\n");
    let md = Metadata::load(&p).unwrap();
    assert_mentions(
        &md.target("body_site", &ids(&["S1"]), None).unwrap_err(),
        &["ok.tsv", "'body_site'", "body-site"],
    );
    assert_mentions(
        &md.target("body-site", &ids(&["S2"]), None).unwrap_err(),
        &["ok.tsv", "no value", "1 absent"],
    );
}
