//! The split graphs with the ASV-embedding cache equal `model.onnx` within 1e-5 on every
//! output (shipped model, tract), encode each unique ASV once per call, reuse the LRU
//! cache across calls, run each sample on its own slots whatever batch it is in, and
//! refuse a directory without the split graphs or with the two graphs swapped.

use std::path::PathBuf;

use aam_runtime::{AsvCacheOptions, LoadOptions, Model, PredictOptions, RawOutputs, RuntimeError};
use ndarray::Array3;

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn single_graph() -> LoadOptions {
    LoadOptions {
        single_graph: true,
        ..LoadOptions::default()
    }
}

fn cached(capacity: usize, chunk_rows: usize) -> LoadOptions {
    LoadOptions {
        asv_cache: Some(AsvCacheOptions {
            capacity,
            chunk_rows,
        }),
        ..LoadOptions::default()
    }
}

/// Sample i has ASVs drawn from a pool of 6 sequences (so they repeat within and across
/// samples), some empty slots, and the last sample is all padding.
fn tokens(b: usize, s: usize, width: usize) -> Array3<i64> {
    let mut t = Array3::<i64>::zeros((b, s, width));
    for i in 0..b.saturating_sub(1).max(1) {
        for j in 0..s {
            if (i + j) % 5 == 4 {
                continue; // an empty slot
            }
            let asv = (i * 7 + j * 3) % 6;
            let len = 20 + 11 * asv;
            t[[i, j, 0]] = 5;
            for k in 1..=len.min(width - 1) {
                t[[i, j, k]] = 1 + ((k * (asv + 1) + asv) % 4) as i64;
            }
        }
    }
    t
}

/// Largest difference between `a` and `b` on `tokens`: every sample-level output, and
/// `count_prediction` at the slots that hold an ASV (the split graphs give 0 after a
/// sample's last ASV, where `model.onnx` computes a value for the empty slot).
fn max_diff(a: &RawOutputs, b: &RawOutputs, tokens: &Array3<i64>) -> f32 {
    fn d<'a>(pairs: impl Iterator<Item = (&'a f32, &'a f32)>) -> f32 {
        pairs
            .map(|(p, q)| {
                assert!(p.is_finite() && q.is_finite());
                (p - q).abs()
            })
            .fold(0.0, f32::max)
    }
    assert_eq!(a.embeddings.shape(), b.embeddings.shape());
    let mut worst = d(a.embeddings.iter().zip(b.embeddings.iter()));
    for (x, y) in [
        (&a.target_prediction, &b.target_prediction),
        (&a.class_probabilities, &b.class_probabilities),
    ] {
        let (x, y) = (x.as_ref().unwrap(), y.as_ref().unwrap());
        assert_eq!(x.shape(), y.shape());
        worst = worst.max(d(x.iter().zip(y.iter())));
    }
    let (x, y) = (
        a.count_prediction.as_ref().unwrap(),
        b.count_prediction.as_ref().unwrap(),
    );
    assert_eq!(x.shape(), y.shape());
    let at_asvs = tokens
        .outer_iter()
        .flat_map(|sample| {
            sample
                .outer_iter()
                .map(|slot| slot.iter().any(|&v| v != 0))
                .collect::<Vec<_>>()
        })
        .zip(x.iter().zip(y.iter()))
        .filter_map(|(asv, pair)| asv.then_some(pair));
    worst.max(d(at_asvs))
}

#[test]
fn split_graphs_equal_the_single_graph_on_every_output() {
    let dir = repo("models/circadian-exposure");
    let single = Model::load_with(&dir, &single_graph()).unwrap();
    assert_eq!(single.asv_cache_stats(), None);
    // chunk_rows 4 forces several ASV-encoder runs per call.
    let split = Model::load_with(&dir, &cached(0, 4)).unwrap();
    let m = &single.config().model;
    let mut worst = 0.0f32;
    for (b, s) in [(1, 1), (3, 17), (8, m.token_limit)] {
        let t = tokens(b, s, m.max_bp + 1);
        worst = worst.max(max_diff(
            &single.run(t.view()).unwrap(),
            &split.run(t.view()).unwrap(),
            &t,
        ));
    }
    eprintln!("max |split - single| = {worst:e}");
    assert!(worst <= 1e-5, "max |split - single| = {worst}");
    let stats = split.asv_cache_stats().unwrap();
    assert_eq!(stats.capacity, 0);
    assert_eq!(stats.entries, 0, "capacity 0 keeps nothing across calls");
    assert_eq!(stats.hits, 0);
    // Each distinct sequence encoded once per call: sequence (7i + 3j) mod 6 of sample i,
    // slot j gives 1 for the 1×1 call, 4 for the 3×17 call (two non-empty samples), 6 for
    // the 8×token-limit call.
    assert_eq!(stats.misses, 1 + 4 + 6);
}

#[test]
fn the_lru_cache_serves_repeated_calls_without_encoding() {
    let dir = repo("models/circadian-exposure");
    let model = Model::load_with(&dir, &cached(1000, 256)).unwrap();
    let m = &model.config().model;
    let t = tokens(4, 9, m.max_bp + 1);
    let first = model.run(t.view()).unwrap();
    let slots = t
        .outer_iter()
        .flat_map(|s| {
            s.outer_iter()
                .map(|r| r.iter().any(|&x| x != 0))
                .collect::<Vec<_>>()
        })
        .filter(|&x| x)
        .count() as u64;
    let s1 = model.asv_cache_stats().unwrap();
    assert_eq!(
        (s1.asv_slots, s1.hits, s1.misses, s1.entries),
        (slots, 0, 6, 6)
    );
    let second = model.run(t.view()).unwrap();
    assert_eq!(first, second);
    let s2 = model.asv_cache_stats().unwrap();
    assert_eq!(
        (s2.asv_slots, s2.hits, s2.misses, s2.entries),
        (2 * slots, 6, 6, 6)
    );
}

#[test]
fn table_predictions_encode_each_unique_asv_once_and_equal_the_single_graph() {
    let dir = repo("models/circadian-exposure");
    let (table, _) = aam_data::load_table(&repo("data/circadian-ihc/table.biom")).unwrap();
    let options = PredictOptions {
        batch_size: 8,
        threads: 2,
        ..Default::default()
    };
    let single = Model::load_with(&dir, &single_graph())
        .unwrap()
        .predict_table(table.clone(), "table.biom", options)
        .unwrap();
    let model = Model::load_with(&dir, &cached(0, 64)).unwrap();
    let split = model.predict_table(table, "table.biom", options).unwrap();
    for (a, b) in single.samples.iter().zip(&split.samples) {
        assert_eq!(
            (&a.sample_id, &a.label, a.n_asv),
            (&b.sample_id, &b.label, b.n_asv)
        );
        for (x, y) in a
            .probabilities
            .iter()
            .chain(&a.embedding)
            .zip(b.probabilities.iter().chain(&b.embedding))
        {
            assert!((x - y).abs() <= 1e-5, "{}: {x} vs {y}", a.sample_id);
        }
    }
    let stats = model.asv_cache_stats().unwrap();
    let slots: usize = single.samples.iter().map(|p| p.n_asv).sum();
    assert_eq!(stats.asv_slots, slots as u64);
    // Unique ASVs among the slots actually given to the model, counted independently.
    assert_eq!(
        stats.misses, 482,
        "unique ASVs of the shipped table after the token limit"
    );
    assert!(stats.asv_slots > 10 * stats.misses);
}

#[test]
fn an_export_directory_runs_the_split_graphs_by_default_and_model_onnx_alone_the_single_graph() {
    let src = repo("models/circadian-exposure");
    let stats = Model::load(&src).unwrap().asv_cache_stats().unwrap();
    assert_eq!(
        (stats.capacity, stats.entries),
        (0, 0),
        "within a call only"
    );
    let tmp = std::env::temp_dir().join(format!("aam-single-only-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::copy(src.join("model.onnx"), tmp.join("model.onnx")).unwrap();
    assert_eq!(Model::load(&tmp).unwrap().asv_cache_stats(), None);
    // Asked for the per-call cache (what `aam predict` and the C ABI ask by default), an
    // export older than the split graphs runs its model.onnx; a cache kept across calls
    // still needs the split graphs (`missing_or_foreign_split_graphs_are_refused`).
    let per_call = Model::load_with(&tmp, &cached(0, 16)).unwrap();
    assert_eq!(per_call.asv_cache_stats(), None);
    std::fs::remove_dir_all(&tmp).unwrap();
    let err = Model::load_with(
        &src,
        &LoadOptions {
            single_graph: true,
            ..cached(10, 16)
        },
    )
    .unwrap_err();
    assert!(matches!(err, RuntimeError::Unsupported(_)), "{err}");
}

/// The sample graph runs once per sample on its own slots: in a batch of samples with
/// different ASV counts (and an empty one), each sample's outputs equal those of the same
/// sample run alone bit for bit, with one or two tract workers; `count_prediction` is 0
/// after each sample's last ASV; and the outputs equal the single graph's at every ASV
/// slot within 1e-5 (ASVs encoded 7 at a time, in parallel on two workers).
#[test]
fn each_sample_runs_on_its_own_slots_whatever_batch_it_is_in() {
    let dir = repo("models/circadian-exposure");
    let single = Model::load_with(&dir, &single_graph()).unwrap();
    let m = &single.config().model;
    let (b, s) = (5, 40);
    // tokens(b, …) ends with an all-padding sample; sample i keeps its first 40 - 9i slots.
    let mut t = tokens(b, s, m.max_bp + 1);
    for i in 0..b - 1 {
        t.slice_mut(ndarray::s![i, s - 9 * i.., ..]).fill(0);
    }
    let want = single.run(t.view()).unwrap();
    for threads in [1, 2] {
        let split = Model::load_with(
            &dir,
            &LoadOptions {
                threads: Some(threads),
                ..cached(0, 7)
            },
        )
        .unwrap();
        let got = split.run(t.view()).unwrap();
        let counts = got.count_prediction.clone().unwrap();
        assert_eq!(counts.dim(), (b, s, 1));
        for i in 0..b {
            let alone = split.run(t.slice(ndarray::s![i..i + 1, .., ..])).unwrap();
            assert_eq!(
                got.embeddings.row(i),
                alone.embeddings.row(0),
                "threads {threads}, sample {i}: embeddings"
            );
            assert_eq!(
                got.class_probabilities.as_ref().unwrap().row(i),
                alone.class_probabilities.as_ref().unwrap().row(0),
                "threads {threads}, sample {i}: class probabilities"
            );
            assert_eq!(
                counts.slice(ndarray::s![i, .., ..]),
                alone
                    .count_prediction
                    .as_ref()
                    .unwrap()
                    .slice(ndarray::s![0, .., ..]),
                "threads {threads}, sample {i}: count prediction"
            );
        }
        // Each sample's last ASV (slot j of sample i is empty when (i + j) mod 5 = 4; the
        // last sample is all padding).
        let last: Vec<usize> = (0..b)
            .map(|i| {
                (0..s)
                    .rposition(|j| t.slice(ndarray::s![i, j, ..]).iter().any(|&v| v != 0))
                    .map_or(0, |j| j + 1)
            })
            .collect();
        assert_eq!(last, [39, 31, 22, 13, 0]);
        for i in 0..b - 1 {
            assert!(counts
                .slice(ndarray::s![i, last[i].., ..])
                .iter()
                .all(|&v| v == 0.0));
        }
        let worst = max_diff(&got, &want, &t);
        assert!(
            worst <= 1e-5,
            "threads {threads}: max |split - single| = {worst}"
        );
    }
}

#[test]
fn missing_or_foreign_split_graphs_are_refused() {
    let tmp = std::env::temp_dir().join(format!("aam-asv-cache-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let src = repo("models/circadian-exposure");
    std::fs::copy(src.join("model.onnx"), tmp.join("model.onnx")).unwrap();
    let err = Model::load_with(&tmp, &cached(10, 16)).unwrap_err();
    assert!(
        err.to_string()
            .contains("asv_encoder.onnx: no such file; `aam export` writes it"),
        "{err}"
    );
    // The two graphs swapped: refused at load, naming the input the file should have.
    std::fs::copy(src.join("sample_model.onnx"), tmp.join("asv_encoder.onnx")).unwrap();
    std::fs::copy(src.join("asv_encoder.onnx"), tmp.join("sample_model.onnx")).unwrap();
    let err = Model::load_with(&tmp, &cached(10, 16)).unwrap_err();
    assert!(
        err.to_string().contains("asv_encoder.onnx: the graph's inputs are [\"asv_embeddings\", \"asv_mask\"], expected [\"asv_tokens\"]"),
        "{err}"
    );
    let bytes = std::fs::read(src.join("model.onnx")).unwrap();
    let err = Model::from_bytes_with(&bytes, &tmp.join("model.onnx"), &cached(10, 16)).unwrap_err();
    assert!(matches!(err, RuntimeError::Unsupported(_)), "{err}");
    std::fs::remove_dir_all(&tmp).unwrap();
}
