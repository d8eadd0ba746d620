//! The ONNX Runtime backend against tract on the shipped model: every output within
//! 1e-4 at several batch and n_asv sizes, predictions on the shipped table, provider
//! selection on a machine without a GPU. Needs the `ort` feature and ORT_DYLIB_PATH
//! (set by scripts/test.sh to the PyPI wheel's library).
#![cfg(feature = "ort")]

use std::path::PathBuf;

use aam_runtime::{
    Backend, ExecutionProvider, LoadOptions, Model, PredictOptions, RawOutputs, RuntimeError,
};
use ndarray::{Array3, ArrayD};
use rand::{Rng, SeedableRng};

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn shipped_model() -> PathBuf {
    repo_file("models/circadian-exposure/model.onnx")
}

fn ort_options(provider: ExecutionProvider, allow_fallback: bool) -> LoadOptions {
    assert!(
        std::env::var_os("ORT_DYLIB_PATH").is_some(),
        "set ORT_DYLIB_PATH to libonnxruntime.so.1.31.1 (scripts/test.sh does)"
    );
    LoadOptions {
        backend: Backend::Ort,
        provider,
        allow_fallback,
        threads: Some(2),
        ..LoadOptions::default()
    }
}

/// Random tokens with whole padding ASV rows (and a fully padded last sample when b > 1).
fn tokens(b: usize, s: usize, width: usize, seed: u64) -> Array3<i64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut t = Array3::<i64>::zeros((b, s, width));
    for i in 0..b {
        if b > 1 && i == b - 1 {
            continue;
        }
        for j in 0..s {
            if j > 0 && rng.random_bool(0.25) {
                continue;
            }
            let len = rng.random_range(1..width);
            t[[i, j, 0]] = 5; // the start token the tokenizer writes
            for k in 1..=len {
                t[[i, j, k]] = rng.random_range(1..5);
            }
        }
    }
    t
}

fn max_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| {
            assert!(x.is_finite() && y.is_finite(), "non-finite output");
            (x - y).abs()
        })
        .fold(0.0, f32::max)
}

fn compare(tract: &RawOutputs, ort: &RawOutputs) -> f32 {
    let mut worst = max_diff(
        &tract.embeddings.clone().into_dyn(),
        &ort.embeddings.clone().into_dyn(),
    );
    let pairs = [
        (&tract.target_prediction, &ort.target_prediction),
        (&tract.class_probabilities, &ort.class_probabilities),
    ];
    for (a, b) in pairs {
        let (a, b) = (
            a.as_ref().expect("tract output"),
            b.as_ref().expect("ort output"),
        );
        worst = worst.max(max_diff(&a.clone().into_dyn(), &b.clone().into_dyn()));
    }
    let (a, b) = (
        tract.count_prediction.as_ref().unwrap(),
        ort.count_prediction.as_ref().unwrap(),
    );
    worst.max(max_diff(&a.clone().into_dyn(), &b.clone().into_dyn()))
}

/// Both graphs: the split graphs (the default for an export directory) and `model.onnx`.
#[test]
fn ort_cpu_equals_tract_on_every_output() {
    for single_graph in [false, true] {
        let tract = Model::load_with(
            shipped_model(),
            &LoadOptions {
                single_graph,
                ..LoadOptions::default()
            },
        )
        .unwrap();
        let ort = Model::load_with(
            shipped_model(),
            &LoadOptions {
                single_graph,
                ..ort_options(ExecutionProvider::Cpu, false)
            },
        )
        .unwrap();
        assert_eq!(ort.asv_cache_stats().is_none(), single_graph);
        assert_eq!(ort.placement().backend, Backend::Ort);
        assert_eq!(ort.placement().provider, ExecutionProvider::Cpu);
        assert_eq!(ort.placement().fallback_reason, None);
        let m = &tract.config().model;
        let mut worst = 0.0f32;
        for (b, s) in [(1, 1), (3, 17), (8, m.token_limit)] {
            let t = tokens(b, s, m.max_bp + 1, (b * 1000 + s) as u64);
            let a = tract.run(t.view()).unwrap();
            let o = ort.run(t.view()).unwrap();
            assert_eq!(a.embeddings.dim(), (b, m.embedding_dim));
            worst = worst.max(compare(&a, &o));
        }
        eprintln!("single graph {single_graph}: max |ort - tract| over every output = {worst:e}");
        assert!(
            worst <= 1e-4,
            "single graph {single_graph}: max |ort - tract| = {worst}"
        );
    }
}

#[test]
fn ort_predictions_on_the_shipped_table_equal_tract() {
    let (table, _) = aam_data::load_table(&repo_file("data/circadian-ihc/table.biom")).unwrap();
    let tract = Model::load(shipped_model()).unwrap();
    let ort =
        Model::load_with(shipped_model(), &ort_options(ExecutionProvider::Cpu, false)).unwrap();
    let options = PredictOptions {
        batch_size: 8,
        threads: 2,
        ..Default::default()
    };
    let a = tract
        .predict_table(table.clone(), "table.biom", options)
        .unwrap();
    let o = ort.predict_table(table, "table.biom", options).unwrap();
    assert_eq!(a.samples.len(), 46);
    for (x, y) in a.samples.iter().zip(&o.samples) {
        assert_eq!(x.sample_id, y.sample_id);
        assert_eq!(x.label, y.label, "{}", x.sample_id);
        for (p, q) in x.probabilities.iter().zip(&y.probabilities) {
            assert!((p - q).abs() <= 1e-4, "{}: {p} vs {q}", x.sample_id);
        }
        for (p, q) in x.embedding.iter().zip(&y.embedding) {
            assert!((p - q).abs() <= 1e-4, "{}: {p} vs {q}", x.sample_id);
        }
    }
}

#[test]
fn one_model_is_shared_by_many_threads() {
    let ort =
        Model::load_with(shipped_model(), &ort_options(ExecutionProvider::Cpu, false)).unwrap();
    let m = &ort.config().model;
    let t = tokens(3, 9, m.max_bp + 1, 7);
    let single = ort.run(t.view()).unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..10 {
                    assert_eq!(ort.run(t.view()).unwrap(), single);
                }
            });
        }
    });
}

#[test]
fn gpu_providers_on_the_cpu_library_are_refused_with_the_reason() {
    for provider in [ExecutionProvider::Cuda, ExecutionProvider::TensorRt] {
        let err = Model::load_with(shipped_model(), &ort_options(provider, false)).unwrap_err();
        match &err {
            RuntimeError::ProviderUnavailable {
                provider: p,
                missing,
            } => {
                assert_eq!(p, provider.name());
                assert!(
                    missing.contains("execution provider (it is the CPU build)")
                        && missing.contains("onnxruntime-gpu"),
                    "{missing}"
                );
            }
            other => panic!("expected ProviderUnavailable, got {other:?}"),
        }
        assert!(err.to_string().contains("--allow-fallback"), "{err}");
    }
}

#[test]
fn allowed_fallback_runs_on_the_cpu_and_says_why() {
    let model =
        Model::load_with(shipped_model(), &ort_options(ExecutionProvider::Cuda, true)).unwrap();
    let placement = model.placement();
    assert_eq!(placement.provider, ExecutionProvider::Cpu);
    let reason = placement.fallback_reason.as_deref().unwrap();
    assert!(reason.contains("no CUDA execution provider"), "{reason}");
    let tract = Model::load(shipped_model()).unwrap();
    let t = tokens(2, 5, tract.config().model.max_bp + 1, 3);
    assert!(compare(&tract.run(t.view()).unwrap(), &model.run(t.view()).unwrap()) <= 1e-4);
}

#[test]
fn a_second_library_in_the_same_process_is_refused() {
    Model::load_with(shipped_model(), &ort_options(ExecutionProvider::Cpu, false)).unwrap();
    let other = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let options = LoadOptions {
        ort_library: Some(other),
        ..ort_options(ExecutionProvider::Cpu, false)
    };
    let err = Model::load_with(shipped_model(), &options).unwrap_err();
    assert!(
        matches!(&err, RuntimeError::OrtLibrary { message, .. } if message.contains("already loaded")),
        "{err}"
    );
}

#[test]
fn tract_refuses_gpu_providers_unless_fallback() {
    let options = LoadOptions {
        provider: ExecutionProvider::Cuda,
        ..LoadOptions::default()
    };
    let err = Model::load_with(shipped_model(), &options).unwrap_err();
    assert!(
        matches!(err, RuntimeError::ProviderUnavailable { .. }),
        "{err}"
    );
    let options = LoadOptions {
        allow_fallback: true,
        ..options
    };
    let model = Model::load_with(shipped_model(), &options).unwrap();
    assert_eq!(model.placement().backend, Backend::Tract);
    assert_eq!(model.placement().provider, ExecutionProvider::Cpu);
    assert!(model.placement().fallback_reason.is_some());
}
