//! `aam attention` and `aam importance --method integrated-gradients|attention` on the
//! shipped classifier: attention rows and pooling weights are distributions, the
//! integrated-gradients output equals the recorded predictions of the ONNX model
//! (`models/circadian-exposure/predictions.tsv`, an independent engine) and the
//! attributions are complete; attention importance equals `aam attention`'s pooling.

use std::collections::HashMap;
use std::path::Path;

mod common;
use common::{aam, repo, stderr, tsv_rows as tsv};

fn num(row: &HashMap<String, String>, column: &str) -> f64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column}: {}", row[column]))
}

const SAMPLE: &str = "11548.132.133.1a";

#[test]
fn attention_maps_of_one_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("attention");
    let args = [
        "attention",
        "--table",
        &repo("data/circadian-ihc/table.biom"),
        "--samples",
        SAMPLE,
        "--output",
        &out.display().to_string(),
        "--top-asvs",
        "2",
    ];
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    // The shipped predictions record 109 ASVs for this sample.
    let ranking = tsv(&out.join("asv_ranking.tsv"));
    assert_eq!(ranking.len(), 109);
    for pooling in ["attention_pooling", "target_pooling"] {
        let total: f64 = ranking.iter().map(|r| num(r, pooling)).sum();
        assert!((total - 1.0).abs() < 1e-4, "{pooling} sums to {total}");
    }
    for (i, r) in ranking.iter().enumerate() {
        assert_eq!(num(r, "rank") as usize, i + 1);
        if i > 0 {
            assert!(num(&ranking[i - 1], "target_pooling") >= num(r, "target_pooling"));
        }
        assert!(r["asv"].len() >= 80 && r["asv"].bytes().all(|b| b"ACGT".contains(&b)));
    }
    // Every query row of every stack, layer and head sums to 1 over the 109 keys.
    let attention = tsv(&out.join("asv_attention.tsv"));
    let stacks = [
        "sample_transformer",
        "encoder_transformer",
        "count_encoder",
        "target_encoder",
    ];
    assert_eq!(attention.len(), stacks.len() * 2 * 109 * 109); // 1 layer × 2 heads each
    let mut rows: HashMap<(String, String, String, String), f64> = HashMap::new();
    for r in &attention {
        let key = (
            r["stack"].clone(),
            r["layer"].clone(),
            r["head"].clone(),
            r["query_slot"].clone(),
        );
        *rows.entry(key).or_default() += num(r, "weight");
    }
    assert_eq!(rows.len(), stacks.len() * 2 * 109);
    for (key, total) in rows {
        assert!((total - 1.0).abs() < 1e-4, "{key:?} sums to {total}");
    }
    // Nucleotide level: the two top ASVs, 91 positions (start token + 90 bp).
    let pooling = tsv(&out.join("nucleotide_pooling.tsv"));
    assert_eq!(pooling.len(), 2 * 91);
    assert_eq!(pooling[0]["nucleotide"], "^");
    assert_eq!(pooling[0]["asv"], ranking[0]["asv"]);
    let seq: String = pooling[1..91]
        .iter()
        .map(|r| r["nucleotide"].clone())
        .collect();
    assert_eq!(seq, ranking[0]["asv"]);
    let total: f64 = pooling[..91].iter().map(|r| num(r, "weight")).sum();
    assert!((total - 1.0).abs() < 1e-4);
    assert_eq!(
        tsv(&out.join("nucleotide_attention.tsv")).len(),
        2 * 2 * 91 * 91
    );
    for stem in [
        format!("{SAMPLE}.target_encoder.layer0"),
        format!("{SAMPLE}.slot{}.nucleotide.layer0", ranking[0]["slot"]),
    ] {
        let png = std::fs::read(out.join("heatmaps").join(format!("{stem}.png"))).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
        let svg =
            std::fs::read_to_string(out.join("heatmaps").join(format!("{stem}.svg"))).unwrap();
        assert!(svg.contains("<svg"));
    }
    // The streamed tables leave no temporary file behind.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "asv_attention.tsv",
            "asv_ranking.tsv",
            "heatmaps",
            "nucleotide_attention.tsv",
            "nucleotide_pooling.tsv"
        ]
    );
    // Never overwritten without --overwrite; an unknown sample is named.
    let o = aam(&args);
    assert!(
        !o.status.success() && stderr(&o).contains("--overwrite"),
        "{}",
        stderr(&o)
    );
    let o = aam(&[
        "attention",
        "--table",
        &repo("data/circadian-ihc/table.biom"),
        "--samples",
        "no-such-sample",
        "--output",
        &dir.path().join("other").display().to_string(),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("'no-such-sample'"),
        "{}",
        stderr(&o)
    );

    // Attention importance is the target pooling weight: equal for this sample.
    let imp = dir.path().join("importance");
    let o = aam(&[
        "importance",
        "--method",
        "attention",
        "--table",
        &repo("data/circadian-ihc/table.biom"),
        "--output",
        &imp.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let per_sample: HashMap<String, f64> = tsv(&imp.join("per_sample_importance.tsv"))
        .iter()
        .filter(|r| r["sample_id"] == SAMPLE)
        .map(|r| (r["asv"].clone(), num(r, "importance")))
        .collect();
    assert_eq!(per_sample.len(), 109);
    for r in &ranking {
        assert!((per_sample[&r["asv"]] - num(r, "target_pooling")).abs() < 1e-6);
    }
}

#[test]
fn integrated_gradients_of_the_validation_samples() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ig");
    let o = aam(&[
        "importance",
        "--method",
        "integrated-gradients",
        "--table",
        &repo("data/circadian-ihc/table.biom"),
        "--metadata",
        &repo("data/circadian-ihc/metadata.tsv"),
        "--metadata-column",
        "exposure_type",
        "--split",
        &repo("models/circadian-exposure/split.tsv"),
        "--steps",
        "32",
        "--output",
        &out.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let recorded: HashMap<String, HashMap<String, String>> = tsv(&Path::new(&repo(
        "models/circadian-exposure/predictions.tsv",
    )))
    .into_iter()
    .map(|r| (r["sample_id"].clone(), r))
    .collect();
    let truth: HashMap<String, String> = tsv(Path::new(&repo("data/circadian-ihc/metadata.tsv")))
        .into_iter()
        .map(|r| (r["sample_id"].clone(), r["exposure_type"].clone()))
        .collect();
    let validation = tsv(Path::new(&repo("models/circadian-exposure/split.tsv")))
        .iter()
        .filter(|r| r["set"] == "validation")
        .count();
    let completeness = tsv(&out.join("completeness.tsv"));
    assert_eq!(completeness.len(), validation);
    let per_sample = tsv(&out.join("per_sample_importance.tsv"));
    for c in &completeness {
        let id = &c["sample_id"];
        // The attributed output is p(true class), as the ONNX model recorded it.
        let class = &truth[id];
        assert_eq!(c["output"], format!("p({class})"));
        let recorded_p = num(&recorded[id], &format!("probability_{class}"));
        assert!(
            (num(c, "f_sample") - recorded_p).abs() < 1e-4,
            "{id}: {} vs {recorded_p}",
            c["f_sample"]
        );
        // Completeness, recomputed from the per-sample attributions.
        let sum: f64 = per_sample
            .iter()
            .filter(|r| &r["sample_id"] == id)
            .map(|r| num(r, "importance"))
            .sum();
        let delta = num(c, "f_sample") - num(c, "f_baseline");
        assert!((sum - num(c, "sum_attributions")).abs() < 1e-9);
        assert!(
            (sum - delta).abs() <= 0.05 * delta.abs(),
            "{id}: Σ {sum} vs Δ {delta}"
        );
    }
    let ranked = tsv(&out.join("importance.tsv"));
    for w in ranked.windows(2) {
        assert!(num(&w[0], "importance") >= num(&w[1], "importance"));
    }
}
