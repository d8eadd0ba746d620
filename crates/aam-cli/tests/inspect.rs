//! `aam inspect` end to end on the shared datasets and on broken inputs.

mod common;
use common::{aam, shared};

fn full_inspect(ds: &str, column: &str) -> String {
    let out = aam(&[
        "inspect",
        "--table",
        &shared(ds, "table.biom"),
        "--unifrac-matrix",
        &shared(ds, "unifrac_unweighted.h5"),
        "--unifrac-matrix",
        &shared(ds, "unifrac_weighted_normalized.npy"),
        "--faith-pd",
        &shared(ds, "faith_pd.tsv"),
        "--metadata",
        &shared(ds, "metadata.tsv"),
        "--metadata-column",
        column,
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{ds}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    stdout
}

fn line<'a>(report: &'a str, key: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.trim_start().starts_with(key))
        .unwrap_or_else(|| panic!("no '{key}' line in\n{report}"))
}

/// Counts from each dataset's SOURCE.md.
#[test]
fn inspect_reports_source_md_counts() {
    let cases = [
        (
            "moving-pictures",
            "body-site",
            34,
            770,
            2327,
            "153807",
            "min 897",
            "max 9820",
            "120 bp: 770",
            "gut 8, left palm 8, right palm 9, tongue 9",
        ),
        (
            "circadian-ihc",
            "exposure_type",
            46,
            500,
            5233,
            "1083494",
            "min 15230",
            "max 29104",
            "90 bp: 500",
            "Air 23, IHC 23",
        ),
        (
            "ibd-2538",
            "ibd",
            449,
            9946,
            77700,
            "20286847",
            "min 1006",
            "max 259248",
            "100 bp: 9946",
            "Control 269, Crohns 180",
        ),
    ];
    for (ds, col, n_s, n_o, nnz, reads, dmin, dmax, lens, classes) in cases {
        let r = full_inspect(ds, col);
        assert!(line(&r, "samples").ends_with(&format!(" {n_s}")), "{ds}");
        assert!(line(&r, "ASVs  ").ends_with(&format!(" {n_o}")), "{ds}");
        assert!(
            line(&r, "non-zero entries").ends_with(&format!(" {nnz}")),
            "{ds}"
        );
        assert!(line(&r, "reads").ends_with(reads), "{ds}");
        assert!(
            line(&r, "depth").contains(dmin) && line(&r, "depth").contains(dmax),
            "{ds}"
        );
        assert!(line(&r, "sequence lengths").ends_with(lens), "{ds}");
        assert!(line(&r, "non-ACGT ASVs").contains(" 0"), "{ds}");
        assert!(line(&r, "classes").ends_with(classes), "{ds}");
        assert_eq!(
            r.matches(&format!("{n_s} of {n_s} table samples present (0 missing)"))
                .count(),
            2,
            "{ds}"
        );
        assert!(r.trim_end().ends_with("ok: inputs are consistent"));
    }
    // UniFrac means from SOURCE.md (unweighted 0.65 and weighted normalized 0.28 on ibd-2538).
    let r = full_inspect("ibd-2538", "ibd");
    let means: Vec<&str> = r.lines().filter(|l| l.contains("distances ")).collect();
    assert!(means[0].contains("mean 0.65"), "{}", means[0]);
    assert!(means[1].contains("mean 0.28"), "{}", means[1]);
}

#[test]
fn inspect_numeric_target_and_rarefaction() {
    let out = aam(&[
        "inspect",
        "--table",
        &shared("moving-pictures", "table.biom"),
        "--rarefy-depth",
        "1000",
        "--metadata",
        &shared("moving-pictures", "metadata.tsv"),
        "--metadata-column",
        "days-since-experiment-start",
        "--allow-sample-subset",
    ]);
    let r = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        r.contains("3 samples dropped (L3S242, L3S341, L3S360)"),
        "{r}"
    );
    assert!(line(&r, "samples").ends_with(" 31"));
    assert!(line(&r, "depth").contains("min 1000") && line(&r, "depth").contains("max 1000"));
    assert!(r.contains("numeric (regression)"));
    assert!(
        line(&r, "values").contains("min 0") && line(&r, "values").contains("max 168"),
        "{r}"
    );
}

fn fails_with(args: &[&str], needles: &[&str]) {
    let out = aam(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure for {args:?}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks '{n}':\n{err}");
    }
}

#[test]
fn inspect_inconsistencies_exit_non_zero_with_named_culprits() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).display().to_string();
    // Matrix of another dataset: every table sample is missing.
    fails_with(
        &[
            "inspect",
            "--table",
            &shared("moving-pictures", "table.biom"),
            "--unifrac-matrix",
            &shared("circadian-ihc", "unifrac_unweighted.h5"),
        ],
        &[
            "circadian-ihc/unifrac_unweighted.h5",
            "34 of the table's 34 samples are missing",
            "and 24 more",
            "--allow-sample-subset",
        ],
    );
    // Metadata lacking one sample.
    let md = std::fs::read_to_string(shared("moving-pictures", "metadata.tsv")).unwrap();
    let mut lines: Vec<&str> = md.lines().collect();
    let dropped = lines.remove(3).split('\t').next().unwrap().to_string();
    std::fs::write(d("md.tsv"), lines.join("\n")).unwrap();
    fails_with(
        &[
            "inspect",
            "--table",
            &shared("moving-pictures", "table.biom"),
            "--metadata",
            &d("md.tsv"),
        ],
        &[
            "md.tsv",
            "1 of the table's 34 samples have no metadata row",
            &dropped,
        ],
    );
    // Unknown column lists the available ones.
    fails_with(
        &[
            "inspect",
            "--table",
            &shared("moving-pictures", "table.biom"),
            "--metadata",
            &shared("moving-pictures", "metadata.tsv"),
            "--metadata-column",
            "bodysite",
        ],
        &["metadata.tsv", "no column 'bodysite'", "body-site"],
    );
    // A .npy without an ID file and a size mismatch.
    std::fs::copy(
        shared("circadian-ihc", "unifrac_unweighted.npy"),
        d("m.npy"),
    )
    .unwrap();
    fails_with(
        &[
            "inspect",
            "--table",
            &shared("moving-pictures", "table.biom"),
            "--unifrac-matrix",
            &d("m.npy"),
        ],
        &["m.npy", "46 rows", "34 samples", "--unifrac-ids"],
    );
    // A corrupt table.
    std::fs::write(d("bad.biom"), b"\x89HDF\r\n\x1a\nrest").unwrap();
    fails_with(
        &["inspect", "--table", &d("bad.biom")],
        &["bad.biom", "BIOM 2.1 HDF5"],
    );
    // Missing file.
    fails_with(
        &["inspect", "--table", &d("nope.biom")],
        &["nope.biom", "cannot read"],
    );
}

#[test]
fn every_subcommand_has_help() {
    let top = aam(&["--help"]);
    assert!(top.status.success());
    let listing = String::from_utf8_lossy(&top.stdout).to_string();
    for sub in [
        "inspect",
        "pretrain",
        "train",
        "import-torch",
        "forward",
        "export",
        "predict",
        "bench",
    ] {
        assert!(listing.contains(sub), "{sub} missing from aam --help");
        let out = aam(&[sub, "--help"]);
        assert!(out.status.success(), "{sub} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{sub} --help"
        );
    }
}
