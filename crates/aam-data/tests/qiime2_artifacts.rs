//! QIIME 2 artifacts read where aam reads the same data as plain files, on the real
//! artifacts of `shared/data/moving-pictures/qiime2/` (QIIME 2 2021.11).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use aam_data::biom::{load_table, BiomFormat};
use aam_data::{load_distance_matrix, load_faith_pd, load_table_with_sequences, FeatureTable};
use common::*;

fn q2(file: &str) -> PathBuf {
    shared("moving-pictures", &format!("qiime2/{file}"))
}

/// (sample, ASV) → count, independent of the order of samples and ASVs.
fn entries(t: &FeatureTable) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    for s in 0..t.n_samples() {
        for (a, v) in t.sample(s) {
            out.insert(
                (
                    t.sample_ids[s].clone(),
                    t.observation_ids[a as usize].clone(),
                ),
                v,
            );
        }
    }
    out
}

#[test]
fn table_and_rep_seqs_artifacts_give_the_shared_biom_table() {
    let (biom, _) = load_table(&shared("moving-pictures", "table.biom")).unwrap();
    let (qza, format) =
        load_table_with_sequences(&q2("table.qza"), Some(&q2("rep-seqs.qza"))).unwrap();
    assert_eq!(format, BiomFormat::Qza);
    assert_eq!((qza.n_samples(), qza.n_asv()), (34, 770));
    let mut a = qza.sample_ids.clone();
    let mut b = biom.sample_ids.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let mut a = qza.observation_ids.clone();
    let mut b = biom.observation_ids.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let (ea, eb) = (entries(&qza), entries(&biom));
    assert_eq!(ea.len(), biom.nnz());
    assert_eq!(ea, eb);
}

#[test]
fn a_hashed_table_without_sequences_says_to_give_them() {
    let (t, _) = load_table(&q2("table.qza")).unwrap();
    assert!(t
        .observation_ids
        .iter()
        .all(|id| aam_data::sequences::is_md5_id(id)));
    let e = t
        .check_sequence_ids(&q2("table.qza"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("MD5") && e.contains("--sequences rep-seqs.qza"),
        "{e}"
    );
}

#[test]
fn an_artifact_of_another_type_names_both_types() {
    let e = load_table(&q2("rep-seqs.qza")).unwrap_err().to_string();
    assert!(
        e.contains("`FeatureData[Sequence]`") && e.contains("`FeatureTable[Frequency]`"),
        "{e}"
    );
    assert!(e.contains("rep-seqs.qza"), "{e}");
    let (t, _) = load_table(&shared("moving-pictures", "table.biom")).unwrap();
    let e = load_distance_matrix(&q2("table.qza"), None, &t.sample_ids)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`FeatureTable[Frequency]`") && e.contains("`DistanceMatrix`"),
        "{e}"
    );
    let e = load_faith_pd(&q2("taxonomy.qza"), &t.sample_ids)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`FeatureData[Taxonomy]`") && e.contains("`SampleData[AlphaDiversity]`"),
        "{e}"
    );
    let e = aam_data::load_sequences(&q2("table.qza"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`FeatureData[Sequence]`"), "{e}");
}

#[test]
fn distance_matrix_and_faith_pd_artifacts_read_their_values() {
    let (t, _) = load_table(&shared("moving-pictures", "table.biom")).unwrap();
    let m = load_distance_matrix(
        &q2("unweighted_unifrac_distance_matrix.qza"),
        None,
        &t.sample_ids,
    )
    .unwrap();
    // 31 samples kept by rarefaction; values as in the artifact's distance-matrix.tsv.
    assert_eq!(m.n(), 31);
    let (i, j) = (
        m.ids.iter().position(|s| s == "L1S105").unwrap(),
        m.ids.iter().position(|s| s == "L1S140").unwrap(),
    );
    assert_eq!(m.get(i, j), 0.47001792722761365);
    assert_eq!(m.get(j, i), 0.47001792722761365);
    assert_eq!(m.get(i, i), 0.0);
    let fp = load_faith_pd(&q2("faith_pd_vector.qza"), &t.sample_ids).unwrap();
    assert_eq!(fp.values.len(), 31);
    assert_eq!(fp.values["L1S105"], 6.3471921294162055);
    assert_eq!(fp.values["L1S140"], 5.774494474506046);
}

#[test]
fn qiime2_sample_metadata_reads_as_it_is() {
    let md = aam_data::Metadata::load(&q2("sample-metadata.tsv")).unwrap();
    assert_eq!(md.sample_ids.len(), 34);
    assert!(!md.sample_ids.iter().any(|s| s.starts_with('#')));
    let c = md.column_index("body-site").unwrap();
    let k = md.sample_ids.iter().position(|s| s == "L1S8").unwrap();
    assert_eq!(md.rows[k][c], "gut");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A zip archive of `(name, content)` entries, deflated.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(content).unwrap();
    }
    w.finish().unwrap().into_inner()
}

const FASTA: &[u8] = b">f1\nACGT\n>f2\nGGCC\n";

#[test]
fn damaged_or_foreign_archives_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    // No top-level metadata.yaml: a zip, not an artifact.
    let p = write(
        dir.path(),
        "a.qza",
        &zip_of(&[("x/data/dna-sequences.fasta", FASTA)]),
    );
    let e = aam_data::load_sequences(&p).unwrap_err().to_string();
    assert!(e.contains("not a QIIME 2 artifact"), "{e}");
    // A metadata.yaml without a type.
    let p = write(
        dir.path(),
        "b.qza",
        &zip_of(&[("u/metadata.yaml", b"uuid: u\n")]),
    );
    let e = aam_data::load_sequences(&p).unwrap_err().to_string();
    assert!(e.contains("no `type`"), "{e}");
    // The right type but no data file.
    let p = write(
        dir.path(),
        "c.qza",
        &zip_of(&[(
            "u/metadata.yaml",
            b"uuid: u\ntype: FeatureData[Sequence]\nformat: F\n",
        )]),
    );
    let e = aam_data::load_sequences(&p).unwrap_err().to_string();
    assert!(e.contains("no `data/dna-sequences.fasta`"), "{e}");
    // A truncated archive.
    let whole = std::fs::read(q2("rep-seqs.qza")).unwrap();
    let p = write(dir.path(), "d.qza", &whole[..whole.len() / 2]);
    let e = aam_data::load_sequences(&p).unwrap_err().to_string();
    assert!(e.contains("damaged"), "{e}");
    // A made-up artifact that is right: read, and its provenance's metadata.yaml ignored.
    let p = write(
        dir.path(),
        "e.qza",
        &zip_of(&[
            (
                "u/metadata.yaml",
                b"uuid: u\ntype: FeatureData[Sequence]\nformat: F\n",
            ),
            (
                "u/provenance/artifacts/v/metadata.yaml",
                b"uuid: v\ntype: DistanceMatrix\n",
            ),
            ("u/data/dna-sequences.fasta", FASTA),
        ]),
    );
    let s = aam_data::load_sequences(&p).unwrap();
    assert_eq!(s.sequences["f2"], "GGCC");
}

#[test]
fn sequences_must_cover_the_table_and_match_its_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let (t, _) = load_table(&q2("table.qza")).unwrap();
    let seqs = aam_data::load_sequences(&q2("rep-seqs.qza")).unwrap();
    let mut fasta = String::new();
    for (k, id) in t.observation_ids.iter().enumerate() {
        let seq = &seqs.sequences[id];
        match k {
            0 => {} // a feature without a sequence
            _ => fasta.push_str(&format!(">{id}\n{seq}\n")),
        }
    }
    let p = write(dir.path(), "missing.fasta", fasta.as_bytes());
    let e = load_table_with_sequences(&q2("table.qza"), Some(&p))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1 of the 770 features") && e.contains(&t.observation_ids[0]),
        "{e}"
    );
    // The first feature's hash given another sequence (one base changed).
    let mut other = seqs.sequences[&t.observation_ids[0]].clone();
    let last = if other.ends_with('A') { "C" } else { "A" };
    other.replace_range(other.len() - 1.., last);
    let p = write(
        dir.path(),
        "wrong.fasta",
        format!(">{}\n{other}\n{fasta}", t.observation_ids[0]).as_bytes(),
    );
    let e = load_table_with_sequences(&q2("table.qza"), Some(&p))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("MD5 hash of another sequence") && e.contains(&t.observation_ids[0]),
        "{e}"
    );
    // Not FASTA.
    let p = write(dir.path(), "bad.fasta", b"ACGT\n>f1\nACGT\n");
    let e = aam_data::load_sequences(&p).unwrap_err().to_string();
    assert!(
        e.contains("line 1") && e.contains("before the first `>`"),
        "{e}"
    );
    let p = write(dir.path(), "gap.fasta", b">f1\nAC-GT\n");
    let e = aam_data::load_sequences(&p).unwrap_err().to_string();
    assert!(e.contains("'f1'") && e.contains("'-'"), "{e}");
    let p = write(dir.path(), "twice.fasta", b">f1\nACGT\n>f1\nACGA\n");
    let e = aam_data::load_sequences(&p).unwrap_err().to_string();
    assert!(e.contains("'f1' appears twice"), "{e}");
}

#[test]
fn types_with_properties_lower_case_fasta_and_needless_sequences() {
    let dir = tempfile::tempdir().unwrap();
    // q2-diversity marks UniFrac matrices `DistanceMatrix % Properties('phylogenetic')`.
    let p = write(
        dir.path(),
        "u.qza",
        &zip_of(&[
            (
                "u/metadata.yaml",
                b"uuid: u\ntype: DistanceMatrix % Properties('phylogenetic')\nformat: F\n",
            ),
            (
                "u/data/distance-matrix.tsv",
                b"\tS0\tS1\nS0\t0\t0.25\nS1\t0.25\t0\n",
            ),
        ]),
    );
    let ids = vec!["S0".to_string(), "S1".to_string()];
    let m = load_distance_matrix(&p, None, &ids).unwrap();
    assert_eq!((m.n(), m.get(0, 1)), (2, 0.25));
    // A lower-case FASTA whose IDs are the MD5 of the sequences as written.
    let id = format!("{:x}", md5::compute(b"acgtac"));
    let fasta = write(dir.path(), "l.fasta", format!(">{id}\nacgtac\n").as_bytes());
    let mut t = FeatureTable::from_triplets(
        Path::new("t"),
        vec!["S0".into()],
        vec![id.clone()],
        vec![(0, 0, 3.0)],
    )
    .unwrap();
    aam_data::load_sequences(&fasta)
        .unwrap()
        .apply(&mut t, Path::new("t"))
        .unwrap();
    assert_eq!(t.observation_ids, ["ACGTAC"]);
    // Sequences given for a table whose IDs are sequences already.
    let e = load_table_with_sequences(
        &shared("moving-pictures", "table.biom"),
        Some(&q2("rep-seqs.qza")),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("already DNA sequences") && e.contains("drop --sequences"),
        "{e}"
    );
    // A taxonomy TSV without its header row.
    let tax = write(
        dir.path(),
        "t.tsv",
        b"abc\tk__Bacteria; p__Firmicutes\t0.9\n",
    );
    let e = aam_data::load_taxonomy(&tax).unwrap_err().to_string();
    assert!(e.contains("'abc'") && e.contains("not a header"), "{e}");
    let tax = write(
        dir.path(),
        "t2.tsv",
        format!("Feature ID\tTaxon\n{}\tk__B; p__F\n", id.to_uppercase()).as_bytes(),
    );
    assert_eq!(
        aam_data::load_taxonomy(&tax).unwrap().lineage("acgtac"),
        Some("k__B; p__F")
    );
}
