//! The split graphs with the ASV-embedding cache equal `model.onnx` within 1e-5 on every
//! output (shipped model, tract), encode each unique ASV once per call, reuse the LRU
//! cache across calls, and refuse a directory without the split graphs or with the two
//! graphs swapped.

use std::path::PathBuf;

use aam_runtime::{AsvCacheOptions, LoadOptions, Model, PredictOptions, RawOutputs, RuntimeError};
use ndarray::{Array3, ArrayD};

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

fn max_diff(a: &RawOutputs, b: &RawOutputs) -> f32 {
    fn d(x: ArrayD<f32>, y: ArrayD<f32>) -> f32 {
        assert_eq!(x.shape(), y.shape());
        x.iter()
            .zip(y.iter())
            .map(|(p, q)| {
                assert!(p.is_finite() && q.is_finite());
                (p - q).abs()
            })
            .fold(0.0, f32::max)
    }
    let mut worst = d(
        a.embeddings.clone().into_dyn(),
        b.embeddings.clone().into_dyn(),
    );
    for (x, y) in [
        (&a.target_prediction, &b.target_prediction),
        (&a.class_probabilities, &b.class_probabilities),
    ] {
        worst = worst.max(d(
            x.clone().unwrap().into_dyn(),
            y.clone().unwrap().into_dyn(),
        ));
    }
    worst.max(d(
        a.count_prediction.clone().unwrap().into_dyn(),
        b.count_prediction.clone().unwrap().into_dyn(),
    ))
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

/// Trailing empty slots of every sample are cut before the sample graph: the outputs
/// equal the single graph's at every ASV slot (count_prediction is 0 at the cut slots),
/// and two tract workers (chunks and sub-batches in parallel) give the one-worker result.
#[test]
fn trailing_empty_slots_are_cut_without_changing_any_output_at_an_asv_slot() {
    let dir = repo("models/circadian-exposure");
    let single = Model::load_with(&dir, &single_graph()).unwrap();
    let m = &single.config().model;
    let (b, s, cut) = (5, 40, 12);
    // tokens(b + 1, …) ends with an all-padding sample: drop it; then empty the last
    // `cut` slots of every sample.
    let mut t = tokens(b + 1, s, m.max_bp + 1)
        .slice(ndarray::s![..b, .., ..])
        .to_owned();
    t.slice_mut(ndarray::s![.., s - cut.., ..]).fill(0);
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
        assert!(counts
            .slice(ndarray::s![.., s - cut.., ..])
            .iter()
            .all(|&v| v == 0.0));
        let mut worst = 0.0f32;
        for (x, y) in got.embeddings.iter().zip(want.embeddings.iter()).chain(
            got.class_probabilities
                .as_ref()
                .unwrap()
                .iter()
                .zip(want.class_probabilities.as_ref().unwrap().iter()),
        ) {
            worst = worst.max((x - y).abs());
        }
        let want_counts = want.count_prediction.as_ref().unwrap();
        for i in 0..b {
            for j in 0..s - cut {
                if t.slice(ndarray::s![i, j, ..]).iter().any(|&v| v != 0) {
                    worst = worst.max((counts[[i, j, 0]] - want_counts[[i, j, 0]]).abs());
                }
            }
        }
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
