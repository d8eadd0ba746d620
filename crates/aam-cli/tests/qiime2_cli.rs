//! QIIME 2 artifacts on the command line: the real moving-pictures artifacts
//! (`shared/data/moving-pictures/qiime2/`) read by `inspect`, `train`, `pretrain` and
//! `predict` as their exported files are.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{aam, shared, stderr, tsv_rows, TINY};

fn q2(file: &str) -> String {
    shared("moving-pictures", &format!("qiime2/{file}"))
}

#[test]
fn inspect_says_a_hashed_table_needs_its_sequences_and_writes_the_sequence_table() {
    let o = aam(&["inspect", "--table", &q2("table.qza")]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success());
    assert!(
        out.contains("[QIIME 2 artifact, FeatureTable[Frequency]]"),
        "{out}"
    );
    assert!(out.contains("MD5 hashes of the sequences"), "{out}");
    assert!(
        stderr(&o).contains("--sequences rep-seqs.qza"),
        "{}",
        stderr(&o)
    );

    let dir = tempfile::tempdir().unwrap();
    let written = dir.path().join("table.biom").display().to_string();
    let args = [
        "inspect",
        "--table",
        &q2("table.qza"),
        "--sequences",
        &q2("rep-seqs.qza"),
        "--unifrac-matrix",
        &q2("unweighted_unifrac_distance_matrix.qza"),
        "--faith-pd",
        &q2("faith_pd_vector.qza"),
        "--metadata",
        &q2("sample-metadata.tsv"),
        "--metadata-column",
        "body-site",
        "--allow-sample-subset",
        "--write-table",
        &written,
    ];
    let o = aam(&args);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}\n{out}", stderr(&o));
    assert!(out.contains("120 bp: 770"), "{out}");
    assert!(out.contains("31 × 31"), "{out}");
    assert!(
        out.contains("gut 8, left palm 8, right palm 9, tongue 9"),
        "{out}"
    );
    // The written table is the shared one, whose IDs were replaced the same way.
    let (a, _) = aam_data::load_table(Path::new(&written)).unwrap();
    let (b, _) = aam_data::load_table(Path::new(&shared("moving-pictures", "table.biom"))).unwrap();
    let entries = |t: &aam_data::FeatureTable| {
        let mut m = HashMap::new();
        for s in 0..t.n_samples() {
            for (k, v) in t.sample(s) {
                m.insert(
                    (
                        t.sample_ids[s].clone(),
                        t.observation_ids[k as usize].clone(),
                    ),
                    v,
                );
            }
        }
        m
    };
    assert_eq!(entries(&a), entries(&b));
    // Not overwritten without --overwrite.
    let o = aam(&args);
    assert!(
        !o.status.success() && stderr(&o).contains("already exists"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn predictions_from_the_artifacts_equal_those_from_the_exported_table() {
    let dir = tempfile::tempdir().unwrap();
    let run = |table: &str, extra: &[&str], name: &str| {
        let out = dir.path().join(name).display().to_string();
        let mut args = vec!["predict", "--table", table, "--output", &out];
        args.extend(extra);
        let o = aam(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let mut rows: Vec<Vec<(String, String)>> = tsv_rows(Path::new(&out))
            .into_iter()
            .map(|r| {
                let mut r: Vec<_> = r.into_iter().collect();
                r.sort();
                r
            })
            .collect();
        rows.sort();
        rows
    };
    let from_biom = run(&shared("moving-pictures", "table.biom"), &[], "a.tsv");
    let seqs = q2("rep-seqs.qza");
    let from_qza = run(&q2("table.qza"), &["--sequences", &seqs], "b.tsv");
    assert_eq!(from_biom.len(), 34);
    assert_eq!(from_biom, from_qza);
    let o = aam(&["predict", "--table", &q2("table.qza")]);
    assert!(
        !o.status.success() && stderr(&o).contains("--sequences"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn training_reads_the_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let (table, seqs, matrix, md) = (
        q2("table.qza"),
        q2("rep-seqs.qza"),
        q2("unweighted_unifrac_distance_matrix.qza"),
        q2("sample-metadata.tsv"),
    );
    let enc = dir.path().join("enc").display().to_string();
    let mut args = vec![
        "pretrain",
        "--table",
        &table,
        "--sequences",
        &seqs,
        "--unifrac-matrix",
        &matrix,
        "--allow-sample-subset",
        "--output",
        &enc,
    ];
    args.extend(TINY);
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    // The matrix, computed on the rarefied table, covers 31 of the 34 samples.
    let err = stderr(&o);
    assert!(
        err.contains("3 table samples are not in") && err.contains("25 training, 6 validation"),
        "{err}"
    );

    let out = dir.path().join("clf").display().to_string();
    let mut args = vec![
        "train",
        "--table",
        &table,
        "--sequences",
        &seqs,
        "--metadata",
        &md,
        "--metadata-column",
        "body-site",
        "--group-column",
        "subject",
        "--output",
        &out,
    ];
    args.extend(TINY);
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("clf/config.json")).unwrap())
            .unwrap();
    assert_eq!(
        config["target"]["classes"],
        serde_json::json!(["gut", "left palm", "right palm", "tongue"])
    );
    importance_and_attention_name_each_asvs_taxon(dir.path(), &out, &table, &seqs);
}

/// The lineage cut at the first `levels` levels, as the taxonomy writes them.
fn cut(lineage: &str, levels: usize) -> String {
    let mut parts: Vec<&str> = lineage.split("; ").collect();
    parts.resize(levels, "__");
    parts.join("; ")
}

fn importance_and_attention_name_each_asvs_taxon(dir: &Path, model: &str, table: &str, seqs: &str) {
    let taxonomy = q2("taxonomy.qza");
    let imp = dir.join("imp").display().to_string();
    let o = aam(&[
        "importance",
        "--method",
        "attention",
        "--model",
        model,
        "--table",
        table,
        "--sequences",
        seqs,
        "--taxonomy",
        &taxonomy,
        "--rank",
        "family",
        "--output",
        &imp,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The first ASV of the taxonomy (by its MD5 feature ID) carries its lineage.
    let first = "TACGGAGGATCCGAGCGTTATCCGGATTTATTGGGTTTAAAGGGAGCGTAGATGGATGTTTAAGTCAGTTGTGAAAGTTTGCGGCTCAACCGTAAAATTGCAGTTGATACTGGATATCTT";
    let rows = tsv_rows(&dir.join("imp/importance.tsv"));
    let row = rows
        .iter()
        .find(|r| r["asv"] == first)
        .expect("the first ASV is scored");
    assert_eq!(
        row["taxon"],
        "k__Bacteria; p__Bacteroidetes; c__Bacteroidia; o__Bacteroidales; f__Bacteroidaceae; g__Bacteroides; s__"
    );
    // Each family's importance is the sum of its ASVs' (lineages cut at 5 levels).
    let mut want: HashMap<String, (usize, f64)> = HashMap::new();
    for r in &rows {
        let e = want.entry(cut(&r["taxon"], 5)).or_default();
        e.0 += 1;
        e.1 += r["importance"].parse::<f64>().unwrap();
    }
    let by_taxon = tsv_rows(&dir.join("imp/importance_by_taxon.tsv"));
    assert_eq!(by_taxon.len(), want.len());
    for r in &by_taxon {
        let (n, sum) = want[&r["family"]];
        assert_eq!(r["asvs"].parse::<usize>().unwrap(), n, "{}", r["family"]);
        assert!((r["importance"].parse::<f64>().unwrap() - sum).abs() < 1e-9);
    }
    assert!(dir.join("imp/importance_by_taxon.svg").exists());

    let att = dir.join("att").display().to_string();
    let o = aam(&[
        "attention",
        "--model",
        model,
        "--table",
        table,
        "--sequences",
        seqs,
        "--samples",
        "L1S8",
        "--taxonomy",
        &taxonomy,
        "--output",
        &att,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let asvs = tsv_rows(&dir.join("att/asv_ranking.tsv"));
    let mut want: HashMap<String, f64> = HashMap::new();
    for r in &asvs {
        *want.entry(cut(&r["taxon"], 6)).or_default() +=
            r["target_pooling"].parse::<f64>().unwrap();
    }
    let taxa = tsv_rows(&dir.join("att/taxon_ranking.tsv"));
    let total: f64 = taxa
        .iter()
        .map(|r| r["target_pooling"].parse::<f64>().unwrap())
        .sum();
    assert!(
        (total - 1.0).abs() < 1e-5,
        "a sample's pooling weights sum to 1: {total}"
    );
    assert_eq!(taxa.len(), want.len());
    for r in &taxa {
        let got = r["target_pooling"].parse::<f64>().unwrap();
        assert!((got - want[&r["genus"]]).abs() < 1e-6, "{}", r["genus"]);
    }
}

/// `aam bench` times a model on a hashed table given its sequences: the same ASVs reach
/// the model as from the exported BIOM, so every sample's FLOPs are the same.
#[test]
fn bench_reads_a_hashed_table_with_its_sequences() {
    let model = common::repo("models/circadian-exposure");
    let bench = |table: &str, extra: &[&str]| {
        let mut args = vec!["bench", "--model", &model, "--table", table];
        args.extend(["--n-asv", "16", "--batch", "34", "--backends", "tract"]);
        args.extend(["--modes", "off", "--iterations", "1"]);
        args.extend(extra);
        aam(&args)
    };
    let o = bench(&q2("table.qza"), &[]);
    assert!(
        !o.status.success() && stderr(&o).contains("--sequences"),
        "{}",
        stderr(&o)
    );
    // gflop_per_pass (column 8) counts the unique ASVs the split graphs encode.
    let gflop = |o: &std::process::Output| {
        assert!(o.status.success(), "{}", stderr(o));
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        let rows: Vec<Vec<String>> = out
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect();
        assert_eq!(rows.len(), 2, "{out}");
        assert_eq!(rows[0][8], "gflop_per_pass");
        rows[1][8].parse::<f64>().unwrap()
    };
    let seqs = q2("rep-seqs.qza");
    let from_qza = gflop(&bench(&q2("table.qza"), &["--sequences", &seqs]));
    let from_biom = gflop(&bench(&shared("moving-pictures", "table.biom"), &[]));
    assert!(from_qza > 0.0);
    assert_eq!(from_qza, from_biom);
}
