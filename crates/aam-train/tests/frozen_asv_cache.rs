//! `--freeze-base` fine-tuning with the cached ASV embeddings (each distinct ASV encoded
//! once per run, `TrainOptions::cache_asv_embeddings`) trains exactly as running the
//! frozen ASV encoder in every step: a tiny classifier on `moving-pictures`, dropout 0,
//! two epochs each way; every epoch's losses and every final weight within 1e-5, the
//! masked-nucleotide loss off with the cache, and the frozen base unchanged.

mod common;

use std::path::Path;

use aam_config::{ModelKind, TargetInfo};
use aam_data::TargetKind;
use aam_model::{AamModel, CpuAutodiff, ModelConfig, SequencePredictor, WeightSink};
use aam_train::{checkpoint, fit, TrainOptions};

fn config() -> ModelConfig {
    ModelConfig {
        dropout: 0.0,
        out_dim: 2,
        is_classifier: true,
        predict_nucleotides: true,
        ..common::tiny_config()
    }
}

/// Weights by reference key: name, shape, values.
type Weights = Vec<(String, Vec<usize>, Vec<f32>)>;

/// Trains the frozen-base classifier into `dir`; the report, the initial and the final
/// weights.
fn train(
    dir: &Path,
    cache: bool,
    nucleotide_weight: f64,
) -> (aam_train::FitReport, Weights, Weights) {
    let mut data = common::data();
    let n = data.dataset.table.n_samples();
    data.dataset.targets = Some((0..n).map(|i| (i % 2) as f32).collect());
    data.target_kind = Some(TargetKind::Categorical);
    data.n_classes = 2;
    let mut ckpt = common::encoder_checkpoint_config(config());
    ckpt.kind = ModelKind::Predictor;
    ckpt.target = Some(TargetInfo {
        more_columns: Vec::new(),
        column: "parity".into(),
        kind: TargetKind::Categorical,
        classes: vec!["even".into(), "odd".into()],
        mean: 0.0,
        std: 1.0,
        transform: Default::default(),
        normalize_by: None,
        by_category: Vec::new(),
        quantiles: Vec::new(),
        categories: Default::default(),
    });
    let mut opts = TrainOptions {
        epochs: 2,
        batch_size: 8,
        lr: 3e-3,
        progress: false,
        cache_asv_embeddings: cache,
        ..TrainOptions::default()
    };
    opts.weights.nucleotide = nucleotide_weight;
    let device = Default::default();
    <CpuAutodiff as burn::tensor::backend::Backend>::seed(&device, 5);
    let model = SequencePredictor::<CpuAutodiff>::new(&config(), &device).freeze_base();
    let mut initial = WeightSink::default();
    model.save_weights(&mut initial);
    let report = fit::<CpuAutodiff, _>(model, &data, &opts, dir, &ckpt, false, &device).unwrap();
    let m: SequencePredictor<CpuAutodiff> =
        checkpoint::load_model(dir, "last.safetensors", &config(), &device).unwrap();
    let mut sink = WeightSink::default();
    m.save_weights(&mut sink);
    (report, initial.entries, sink.entries)
}

#[test]
fn cached_asv_embeddings_train_as_the_frozen_encoder_run_every_step() {
    let tmp = std::env::temp_dir().join(format!("aam-frozen-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    // Without the cache, masking would change the frozen encoder's input: compare with
    // the nucleotide loss off there. The cached run keeps its weight 1, and must turn
    // masking off by itself (the nucleotide head is frozen with the encoder).
    let (every, _, w_every) = train(&tmp.join("every-step"), false, 0.0);
    let (cached, initial, w_cached) = train(&tmp.join("cached"), true, 1.0);
    for (a, b) in every.epochs.iter().zip(&cached.epochs) {
        for term in ["target", "count", "unifrac", "total"] {
            let (x, y) = (a.train[term], b.train[term]);
            assert!(
                (x - y).abs() <= 1e-5,
                "epoch {} {term}: {x} every step, {y} cached",
                a.epoch
            );
        }
        for term in ["target_loss", "count_loss", "accuracy"] {
            let (x, y) = (a.validation[term], b.validation[term]);
            assert!(
                (x - y).abs() <= 1e-5,
                "epoch {} validation {term}: {x} vs {y}",
                a.epoch
            );
        }
        assert!(
            !b.train.contains_key("nucleotide"),
            "the cached run masks no nucleotide"
        );
    }
    let mut heads_moved = false;
    for ((key, _, x), (_, _, y)) in w_every.iter().zip(&w_cached) {
        let worst = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "{key}: final weights differ by {worst}");
        heads_moved |= key.starts_with("target_head");
    }
    assert!(heads_moved);
    // The frozen base kept its initial weights.
    for ((key, _, x), (_, _, y)) in initial.iter().zip(&w_cached) {
        if key.starts_with("base_model.") {
            assert_eq!(x, y, "{key} moved although frozen");
        } else if key.starts_with("target_head") {
            assert_ne!(x, y, "{key} did not train");
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
