//! Feature tables: any bytes as a `.biom` file (the format is detected from the bytes:
//! BIOM 2.1 HDF5, BIOM 1.0 JSON or classic TSV), then tokenized for the shipped model;
//! HDF5 tables are also read a few samples at a time (`--streaming`) and must give the
//! same samples as the whole-table reader.

use std::collections::{BTreeMap, HashSet};

use aam_data::{load_table, BiomFormat, BiomSampleChunks, FeatureTable};

/// Loads `data` as a feature table and checks what an accepted table promises.
pub fn run(data: &[u8]) {
    let path = crate::scratch::write("table.biom", data);
    let whole = load_table(&path);
    if let Ok((table, format)) = &whole {
        assert_eq!(*format, aam_data::biom::detect_format(data));
        check_invariants(table);
        let _ = table.check_sequence_ids(&path);
        if let Ok(prepared) = aam_runtime::prepare_table(table.clone(), crate::shipped::config(), "fuzz") {
            let tokens = &prepared.dataset.tokens;
            assert_eq!(tokens.tokens.len(), table.n_asv() * (tokens.max_bp + 1));
            assert!(tokens.tokens.iter().all(|&t| t < 6), "a token outside the vocabulary");
            assert_eq!(prepared.asvs_with_reads.len(), table.n_samples());
        }
    }
    if aam_data::biom::detect_format(data) == BiomFormat::Hdf5 {
        streamed_equals_whole(&path, whole.ok().map(|(t, _)| t));
    }
}

/// Sample-major CSC storage as documented on [`FeatureTable`]: pointers increasing from
/// 0 to nnz, ASV indices strictly increasing within a sample and in range, counts finite
/// and positive (zeros are not stored), IDs unique.
pub(crate) fn check_invariants(t: &FeatureTable) {
    assert!(t.n_samples() > 0 && t.n_asv() > 0, "an empty table was accepted");
    assert_eq!(t.indptr.len(), t.n_samples() + 1);
    assert_eq!(t.indptr[0], 0);
    assert_eq!(*t.indptr.last().unwrap(), t.indices.len());
    assert_eq!(t.indices.len(), t.values.len());
    for s in 0..t.n_samples() {
        let (lo, hi) = (t.indptr[s], t.indptr[s + 1]);
        assert!(lo <= hi, "indptr decreases at sample {s}");
        let idx = &t.indices[lo..hi];
        assert!(idx.windows(2).all(|w| w[0] < w[1]), "ASV indices of sample {s} not increasing");
        assert!(idx.iter().all(|&o| (o as usize) < t.n_asv()));
    }
    assert!(t.values.iter().all(|v| v.is_finite() && *v > 0.0), "a stored count is not finite and positive");
    assert_eq!(t.sample_ids.iter().collect::<HashSet<_>>().len(), t.n_samples(), "duplicate sample IDs accepted");
    assert_eq!(t.observation_ids.iter().collect::<HashSet<_>>().len(), t.n_asv(), "duplicate ASV IDs accepted");
    assert!(t.sample_ids.iter().chain(&t.observation_ids).all(|id| !id.is_empty()), "an empty ID was accepted");
}

/// Each sample as `{ASV sequence: count}`.
fn samples(t: &FeatureTable) -> Vec<(String, BTreeMap<String, u64>)> {
    (0..t.n_samples())
        .map(|s| {
            let counts = t.sample(s).map(|(o, c)| (t.observation_ids[o as usize].clone(), c.to_bits())).collect();
            (t.sample_ids[s].clone(), counts)
        })
        .collect()
}

/// Reads the HDF5 table 3 samples at a time; where both readers accept the file they
/// must agree sample by sample.
fn streamed_equals_whole(path: &std::path::Path, whole: Option<FeatureTable>) {
    let Ok(chunks) = BiomSampleChunks::open(path, 3) else { return };
    let mut streamed = Vec::new();
    for first in (0..chunks.n_samples()).step_by(3) {
        match chunks.read_samples(first, 3) {
            Ok(chunk) => {
                assert!(chunk.n_samples() <= 3);
                streamed.extend(samples(&chunk));
            }
            Err(_) => return,
        }
    }
    if let Some(whole) = whole {
        // The whole-table reader drops nothing but zero counts; so does each chunk.
        if whole.n_samples() == streamed.len() {
            assert_eq!(samples(&whole), streamed, "the streamed samples differ from the whole table's");
        }
    }
}
