//! `BiomSampleChunks`: a BIOM 2.1 HDF5 table read a chunk of samples at a time gives the
//! same samples, ASVs and counts as the whole-file reader (its memory bound is tested
//! alone in `streaming_memory.rs`, where no other test moves the process's peak).

use std::path::{Path, PathBuf};

use aam_data::{load_table, BiomSampleChunks, FeatureTable};

fn shared(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(path)
}

/// Every sample's (ASV sequence, count) entries, sorted, by sample ID.
fn entries(t: &FeatureTable) -> Vec<(String, Vec<(String, f64)>)> {
    (0..t.n_samples())
        .map(|s| {
            let mut e: Vec<(String, f64)> = t
                .sample(s)
                .map(|(o, c)| (t.observation_ids[o as usize].clone(), c))
                .collect();
            e.sort_by(|a, b| a.0.cmp(&b.0));
            (t.sample_ids[s].clone(), e)
        })
        .collect()
}

fn assert_chunks_equal_the_whole(path: &Path, chunk: usize) {
    let (whole, _) = load_table(path).unwrap();
    let chunks = BiomSampleChunks::open(path, chunk).unwrap();
    assert_eq!(chunks.sample_ids, whole.sample_ids);
    let mut streamed = Vec::new();
    let mut sizes = Vec::new();
    for table in chunks {
        let table = table.unwrap();
        sizes.push(table.n_samples());
        // A chunk holds only the ASVs its samples have reads of.
        let mut used = vec![false; table.n_asv()];
        for s in 0..table.n_samples() {
            table.sample(s).for_each(|(o, _)| used[o as usize] = true);
        }
        assert!(
            used.iter().all(|&u| u),
            "a chunk holds an ASV none of its samples has"
        );
        streamed.extend(entries(&table));
    }
    assert_eq!(streamed, entries(&whole), "{}", path.display());
    assert!(sizes.iter().all(|&n| n <= chunk) && sizes.len() == whole.n_samples().div_ceil(chunk));
}

#[test]
fn chunks_equal_the_whole_table_on_real_data() {
    for chunk in [1, 7, 100, 10_000] {
        assert_chunks_equal_the_whole(&shared("moving-pictures/table.biom"), chunk);
    }
    assert_chunks_equal_the_whole(&shared("ibd-2538/table.biom"), 250);
}

#[test]
fn a_table_without_a_per_sample_matrix_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("obs-only.biom");
    let mut b = hdf5_pure::FileBuilder::new();
    let mut sample = b.create_group("sample");
    sample.create_dataset("ids").with_vlen_strings(&["s1"]);
    b.add_group(sample.finish());
    let mut obs = b.create_group("observation");
    obs.create_dataset("ids").with_vlen_strings(&["ACGT"]);
    b.add_group(obs.finish());
    b.write(&p).unwrap();
    let err = BiomSampleChunks::open(&p, 10).err().unwrap().to_string();
    assert!(
        err.contains("obs-only.biom") && err.contains("biom convert --to-hdf5"),
        "{err}"
    );
}

#[test]
fn duplicate_sample_ids_are_refused_even_in_different_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dups.biom");
    let mut b = hdf5_pure::FileBuilder::new();
    let mut sample = b.create_group("sample");
    sample
        .create_dataset("ids")
        .with_vlen_strings(&["s1", "s2", "s1"]);
    let mut matrix = sample.create_group("matrix");
    matrix
        .create_dataset("data")
        .with_f64_data(&[1.0, 2.0, 3.0]);
    matrix.create_dataset("indices").with_i64_data(&[0, 0, 0]);
    matrix.create_dataset("indptr").with_i64_data(&[0, 1, 2, 3]);
    sample.add_group(matrix.finish());
    b.add_group(sample.finish());
    let mut obs = b.create_group("observation");
    obs.create_dataset("ids").with_vlen_strings(&["ACGT"]);
    b.add_group(obs.finish());
    b.write(&p).unwrap();
    // Chunks of one sample would each look fine on their own.
    let err = BiomSampleChunks::open(&p, 1).err().unwrap().to_string();
    assert!(err.contains("dups.biom") && err.contains("s1"), "{err}");
}
