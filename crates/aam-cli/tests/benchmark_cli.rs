//! `aam benchmark --preset smoke` on the repository's copy of circadian-ihc: the report's
//! numbers are those `aam evaluate` and `aam baseline` wrote, both scored exactly the
//! validation samples of the pretraining split, every step's command is recorded, and a
//! finished benchmark is kept unless resumed. With `--folds 3` on the shared datasets: the
//! folds keep subjects apart and hold every sample out once, each fold's steps score its
//! held-out samples, and `summary.tsv` averages the folds.

use std::collections::{HashMap, HashSet};
use std::path::Path;

mod common;
use common::{aam, repo, shared, stderr, tsv_rows as tsv};

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
    // The encoder pretrains on every sample; fine-tuning splits by subject.
    let pretrained = ids_of(&out.join("circadian-ihc/pretrain/split.tsv"), &|r| r["set"] == "train");
    assert_eq!(pretrained.len(), 46);
    let validation = ids_of(&task.join("train/split.tsv"), &|r| r["set"] == "validation");
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
        // The report rounds to 3 decimals: 0.4375 is written 0.438.
        let value = |c: &str| c.split(' ').next().unwrap().parse::<f64>().unwrap();
        assert!((value(cells[5]) - model[m]).abs() <= 5e-4 + 1e-9, "{row}");
        assert!((value(cells[6]) - forest[m]).abs() <= 5e-4 + 1e-9, "{row}");
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
    // The model is scored at its last epoch, not at one chosen on the scored samples.
    assert!(commands.contains("aam export --last"), "{commands}");
    assert!(commands.contains("--kmer-size 6 --abundance-pooling"), "{commands}");
    // Fine-tuning never stops early on the samples it is scored on.
    assert!(commands.contains("--patience 0"), "{commands}");

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
    // A step stopped mid-way (a resume point, no `.done` marker: here the fine-tuning)
    // continues from its last epoch; the steps after it run again.
    std::fs::remove_file(task.join("train.done")).unwrap();
    let o = aam(&resumed);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o).matches(": kept").count(), 1, "{}", stderr(&o));
    let commands = std::fs::read_to_string(out.join("commands.sh")).unwrap();
    let train = commands.lines().find(|l| l.starts_with("aam train")).unwrap();
    assert!(train.ends_with("--resume"), "{train}");
    let pretrain = commands.lines().find(|l| l.starts_with("aam pretrain")).unwrap();
    assert!(pretrain.ends_with("--overwrite"), "{pretrain}");
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
        !o.status.success() && stderr(&o).contains("same --preset, --seed"),
        "{}",
        stderr(&o)
    );
    // ... and the same pipeline: steps kept from an older aam (here pipeline 1, before
    // fine-tuning ran without early stopping) are not mixed with new ones.
    let settings_path = out.join("benchmark.json");
    let mut settings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&settings_path).unwrap()).unwrap();
    assert_eq!(settings["pipeline"], 3, "{settings}");
    settings["pipeline"] = 1.into();
    std::fs::write(&settings_path, settings.to_string()).unwrap();
    let o = aam(&resumed);
    assert!(
        !o.status.success() && stderr(&o).contains("\"pipeline\":1"),
        "{}",
        stderr(&o)
    );
    // ... and the preset's size: a preset whose values changed between versions (the
    // quick preset went from embedding dim 32 to 64) does not resume the other's runs.
    settings["pipeline"] = 3.into();
    assert_eq!(settings["size"]["embedding_dim"], 8, "{settings}");
    settings["size"]["embedding_dim"] = 32.into();
    std::fs::write(&settings_path, settings.to_string()).unwrap();
    let o = aam(&resumed);
    assert!(
        !o.status.success() && stderr(&o).contains("\"embedding_dim\":32"),
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

/// `--ensemble 2`: the second member fine-tunes from the same encoder with the next seed
/// on the first member's split, both export as one ensemble, and a resume keeps them.
#[test]
fn an_ensemble_fine_tunes_each_seed_on_the_first_members_split() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("benchmark");
    let out_s = out.display().to_string();
    let data = repo("data");
    let args = [
        "benchmark", "--data-root", &data, "--datasets", "circadian-ihc", "--preset", "smoke",
        "--ensemble", "2", "--output", &out_s,
    ];
    let o = aam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let task = out.join("circadian-ihc/exposure_type");
    let commands = std::fs::read_to_string(out.join("commands.sh")).unwrap();
    let lines: Vec<&str> = commands.lines().filter(|l| l.starts_with("aam ")).collect();
    let steps: Vec<&str> = lines.iter().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(steps, ["pretrain", "train", "train", "export", "evaluate", "baseline"]);
    let (first, second) = (lines[1], lines[2]);
    assert!(first.contains("--seed 42") && first.contains("--group-column"), "{first}");
    let member = format!(
        "--seed 43 --split {}",
        task.join("train/split.tsv").display()
    );
    assert!(second.contains(&member), "{second}");
    assert!(second.contains(&format!("--output {}", task.join("train-2").display())), "{second}");
    assert!(!second.contains("--group-column"), "{second}");
    assert!(second.contains("--pretrained-encoder"), "{second}");
    let both = format!(
        "--checkpoint {} --checkpoint {}",
        task.join("train").display(),
        task.join("train-2").display()
    );
    assert!(lines[3].contains(&both), "{}", lines[3]);
    let read = |p: &str| std::fs::read_to_string(task.join(p)).unwrap();
    assert_eq!(read("train/split.tsv"), read("train-2/split.tsv"));
    assert!(task.join("export/ensemble.json").exists());
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("an ensemble of 2 fine-tunings"), "{report}");
    assert!(report.contains("\n| train | ") && report.contains("\n| train-2 | "), "{report}");
    // Resumed: every step kept; a member stopped mid-way continues, the steps after it
    // run again.
    let mut resumed = args.to_vec();
    resumed.push("--resume");
    let o = aam(&resumed);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o).matches(": kept").count(), 6, "{}", stderr(&o));
    std::fs::remove_file(task.join("train-2.done")).unwrap();
    let o = aam(&resumed);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o).matches(": kept").count(), 2, "{}", stderr(&o));
    let commands = std::fs::read_to_string(out.join("commands.sh")).unwrap();
    let second = commands.lines().filter(|l| l.starts_with("aam train")).nth(1).unwrap();
    assert!(second.ends_with("--resume"), "{second}");
}

/// `--dataset DIR --target … --group-column G`: any folder laid out like the standard
/// datasets; the target's kind comes from its values, the max bp from the sequences.
#[test]
fn any_dataset_folder_with_its_targets_and_group_column() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("b");
    let dir = tmp.path().join("mouse-study");
    std::fs::create_dir(&dir).unwrap();
    let data = std::path::PathBuf::from(repo("data")).join("circadian-ihc");
    for f in ["table.biom", "metadata.tsv", "unifrac_unweighted.npy", "unifrac_ids.txt"] {
        std::fs::copy(data.join(f), dir.join(f)).unwrap();
    }
    let (dir_s, out_s) = (dir.display().to_string(), out.display().to_string());
    let o = aam(&[
        "benchmark", "--dataset", &dir_s, "--target", "exposure_type", "--group-column",
        "host_subject_id", "--preset", "smoke", "--output", &out_s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = tsv(&out.join("summary.tsv"));
    assert_eq!(summary.len(), 3, "accuracy, macro-F1 and ROC-AUC of a categorical target");
    assert!(summary.iter().all(|r| r["dataset"] == "mouse-study" && r["target"] == "exposure_type"));
    let commands = std::fs::read_to_string(out.join("commands.sh")).unwrap();
    assert!(commands.contains("--max-bp 90 ") && commands.contains("--target-type categorical"), "{commands}");
    let held = ids_of(&out.join("mouse-study/exposure_type/train/split.tsv"), &|r| r["set"] == "validation");
    let scored = ids_of(&out.join("mouse-study/exposure_type/baseline/per_sample.tsv"), &|_| true);
    assert_eq!(held, scored);
    // --target and --group-column come with --dataset.
    let o = aam(&["benchmark", "--dataset", &dir_s, "--target", "exposure_type", "--output", &out_s]);
    assert!(!o.status.success() && stderr(&o).contains("--group-column"), "{}", stderr(&o));
    let o = aam(&[
        "benchmark", "--dataset", &dir_s, "--target", "no_such_column", "--group-column",
        "host_subject_id", "--output", &tmp.path().join("c").display().to_string(),
    ]);
    assert!(!o.status.success() && stderr(&o).contains("no_such_column"), "{}", stderr(&o));
}

/// `--dataset DIR` on a folder as QIIME 2 leaves it (the real moving-pictures artifacts):
/// the hashed table gets its sequences from `rep-seqs.qza`, the samples that
/// `core-metrics-phylogenetic` rarefied out of the distance matrix are left out of every
/// step, and the table the steps read equals the shared `table.biom` on the kept samples.
#[test]
fn a_qiime2_folder_is_a_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mp-q2");
    std::fs::create_dir(&dir).unwrap();
    let q2 = std::path::PathBuf::from(shared("moving-pictures", "qiime2"));
    for f in [
        "table.qza",
        "rep-seqs.qza",
        "unweighted_unifrac_distance_matrix.qza",
        "sample-metadata.tsv",
    ] {
        std::fs::copy(q2.join(f), dir.join(f)).unwrap();
    }
    let out = tmp.path().join("b");
    let (dir_s, out_s) = (dir.display().to_string(), out.display().to_string());
    let o = aam(&[
        "benchmark", "--dataset", &dir_s, "--target", "body-site", "--group-column", "subject",
        "--preset", "smoke", "--output", &out_s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let left_out = ["L3S242", "L3S341", "L3S360"];
    assert!(stderr(&o).contains("3 samples not in the UniFrac matrix left out (L3S242, L3S341, L3S360)"), "{}", stderr(&o));
    let written = out.join("mp-q2/table.biom");
    let commands = std::fs::read_to_string(out.join("commands.sh")).unwrap();
    let pretrain = commands.lines().find(|l| l.starts_with("aam pretrain")).unwrap();
    assert!(pretrain.contains(&format!("--table {} ", written.display())), "{pretrain}");
    assert!(pretrain.contains("unweighted_unifrac_distance_matrix.qza --metadata") && !pretrain.contains("--unifrac-ids"), "{pretrain}");
    assert!(commands.lines().filter(|l| l.contains("--table ")).all(|l| l.contains(&format!("--table {} ", written.display()))), "{commands}");
    // The written table: the shared table.biom (sequence IDs) without the left-out samples.
    let (table, _) = aam_data::load_table(&written).unwrap();
    let (full, _) = aam_data::load_table(Path::new(&shared("moving-pictures", "table.biom"))).unwrap();
    let kept: Vec<usize> = (0..full.n_samples())
        .filter(|&s| !left_out.contains(&full.sample_ids[s].as_str()))
        .collect();
    assert_eq!(kept.len(), 31);
    let expected = full.select_samples(&kept);
    assert_eq!(table.sample_ids, expected.sample_ids);
    assert_eq!(table.observation_ids, expected.observation_ids);
    for s in 0..table.n_samples() {
        assert_eq!(table.sample(s).collect::<Vec<_>>(), expected.sample(s).collect::<Vec<_>>());
    }
    // The model and the forest scored the same held-out samples, none of them left out.
    let task = out.join("mp-q2/body-site");
    let held = ids_of(&task.join("train/split.tsv"), &|r| r["set"] == "validation");
    let all = ids_of(&task.join("train/split.tsv"), &|_| true);
    assert_eq!(all.len(), 31);
    assert!(left_out.iter().all(|id| !all.contains(*id)));
    for step in ["evaluate", "baseline"] {
        assert_eq!(ids_of(&task.join(step).join("per_sample.tsv"), &|_| true), held, "{step}");
    }
    // A folder without a distance matrix names the files looked for.
    std::fs::remove_file(dir.join("unweighted_unifrac_distance_matrix.qza")).unwrap();
    let o = aam(&[
        "benchmark", "--dataset", &dir_s, "--target", "body-site", "--group-column", "subject",
        "--preset", "smoke", "--output", &tmp.path().join("c").display().to_string(),
    ]);
    assert!(!o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no unweighted UniFrac matrix (unifrac_unweighted.npy or unifrac_unweighted.h5 or unweighted_unifrac_distance_matrix.qza)"), "{}", stderr(&o));
}

#[test]
fn cross_validation_folds_keep_subjects_apart_and_average_into_the_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cv");
    let out_s = out.display().to_string();
    // The shared datasets (moving-pictures is not in the repository's data/).
    let data_root = shared("", "");
    let o = aam(&[
        "benchmark",
        "--data-root",
        &data_root,
        "--datasets",
        "circadian-ihc,moving-pictures",
        "--preset",
        "smoke",
        "--folds",
        "3",
        "--output",
        &out_s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // moving-pictures has two subjects: two folds.
    assert!(stderr(&o).contains("moving-pictures has 2 subjects"), "{}", stderr(&o));
    let subject_of: HashMap<String, String> = tsv(Path::new(&data_root).join("circadian-ihc/metadata.tsv").as_path())
        .into_iter()
        .map(|r| (r["sample_id"].clone(), r["host_subject_id"].clone()))
        .collect();
    let mut validated = Vec::new();
    for k in 1..=3 {
        let split = tsv(&out.join(format!("circadian-ihc/folds/fold-{k}.tsv")));
        let side = |set: &str| -> HashSet<String> {
            split.iter().filter(|r| r["set"] == set).map(|r| subject_of[&r["sample_id"]].clone()).collect()
        };
        assert!(side("train").is_disjoint(&side("validation")), "fold {k} splits a subject");
        validated.extend(split.iter().filter(|r| r["set"] == "validation").map(|r| r["sample_id"].clone()));
        // Every step of the fold scored exactly its held-out samples.
        let held: HashSet<String> = split.iter().filter(|r| r["set"] == "validation").map(|r| r["sample_id"].clone()).collect();
        let scored = ids_of(&out.join(format!("circadian-ihc/fold-{k}/exposure_type/baseline/per_sample.tsv")), &|_| true);
        assert_eq!(scored, held, "fold {k}");
    }
    validated.sort();
    let before = validated.len();
    validated.dedup();
    assert_eq!((before, validated.len()), (46, 46), "every sample held out exactly once");
    // summary.tsv: the mean over folds, the fold range, the paired difference.
    let fold_value = |k: usize, step: &str, m: &str| -> f64 {
        tsv(&out.join(format!("circadian-ihc/fold-{k}/exposure_type/{step}/metrics.tsv")))
            .into_iter()
            .find(|r| r["metric"] == m)
            .unwrap()["value"]
            .parse()
            .unwrap()
    };
    let summary = tsv(&out.join("summary.tsv"));
    let row = summary.iter().find(|r| r["dataset"] == "circadian-ihc" && r["metric"] == "accuracy").unwrap();
    let num = |k: &str| row[k].parse::<f64>().unwrap();
    let aam: Vec<f64> = (1..=3).map(|k| fold_value(k, "evaluate", "accuracy")).collect();
    let rf: Vec<f64> = (1..=3).map(|k| fold_value(k, "baseline", "accuracy")).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert_eq!(row["folds"], "3");
    assert!((num("aam") - mean(&aam)).abs() < 1e-12);
    assert!((num("random_forest") - mean(&rf)).abs() < 1e-12);
    assert_eq!(num("aam_low"), aam.iter().copied().fold(f64::INFINITY, f64::min));
    assert_eq!(num("rf_high"), rf.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    assert!((num("difference") - (mean(&aam) - mean(&rf))).abs() < 1e-12);
    let mp = summary.iter().find(|r| r["dataset"] == "moving-pictures").unwrap();
    assert_eq!(mp["folds"], "2");
    // Pooled over the folds: every held-out sample once, counted here from the folds'
    // per_sample.tsv.
    let pooled = |step: &str| -> f64 {
        let correct: usize = (1..=3)
            .map(|k| {
                tsv(&out.join(format!("circadian-ihc/fold-{k}/exposure_type/{step}/per_sample.tsv")))
                    .iter()
                    .filter(|r| r["correct"] == "true")
                    .count()
            })
            .sum();
        correct as f64 / 46.0
    };
    let row = summary.iter().find(|r| r["dataset"] == "circadian-ihc" && r["metric"] == "accuracy_pooled").unwrap();
    assert!((row["aam"].parse::<f64>().unwrap() - pooled("evaluate")).abs() < 1e-12, "{row:?}");
    assert!((row["random_forest"].parse::<f64>().unwrap() - pooled("baseline")).abs() < 1e-12, "{row:?}");
    let auc = summary.iter().find(|r| r["dataset"] == "circadian-ihc" && r["metric"] == "roc_auc_pooled").unwrap();
    assert!(auc["aam"].parse::<f64>().unwrap().is_finite() && auc["folds"] == "3", "{auc:?}");
    assert!(summary.iter().any(|r| r["dataset"] == "moving-pictures" && r["metric"] == "r2_pooled"));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("Grouped 3-fold cross-validation"), "{report}");
    assert!(report.contains("Pooled over the folds"), "{report}");
    assert!(report.contains("— fold 3"));
}
