//! Gradient checkpointing (`--gradient-checkpointing`, Burn's balanced strategy) trades
//! memory for recomputation and must not change the gradients: the reference model of
//! the golden vectors, one SGD step (learning rate 1, so the step is the gradient) with
//! and without it, every parameter within 1e-5. It must also do what it is for: the
//! test's counting allocator measures the peak heap of the forward and backward pass,
//! which must be lower with checkpointing (a no-op checkpointing would pass the gradient
//! comparison alone).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use aam_model::{
    AamModel, CpuAutodiff, CpuAutodiffCheckpointed, ModelConfig, SequencePredictor, WeightMap,
    WeightSink,
};
use aam_train::losses;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;

/// The system allocator, counting the bytes live and their peak since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn golden(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/golden/small-regressor")
        .join(file)
}

/// Every weight after one SGD step of lr 1 on the golden tokens, minus the weight
/// before: −gradient of (target MSE to 0.5 + count loss + UniFrac loss), by key; and the
/// peak heap (bytes) of the forward and backward pass.
fn minus_gradients<B: AutodiffBackend>() -> (Vec<(String, Vec<f32>)>, usize) {
    let mut config: ModelConfig =
        serde_json::from_str(&std::fs::read_to_string(golden("config.json")).unwrap()).unwrap();
    // Dropout would draw different masks in the two runs.
    config.dropout = 0.0;
    let device = Default::default();
    let weights = WeightMap::load(&golden("weights.safetensors")).unwrap();
    let model = SequencePredictor::<B>::load_weights(&weights, &config, &device).unwrap();

    let tokens: ndarray::Array3<i64> = ndarray_npy::read_npy(golden("tokens.npy")).unwrap();
    let (b, s, l) = tokens.dim();
    let input = Tensor::<B, 3, Int>::from_data(
        TensorData::new(tokens.iter().copied().collect::<Vec<_>>(), [b, s, l]),
        &device,
    );
    // Peak heap above what is live now, over the forward and backward pass.
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = model.forward_all(input, None);
    let target = losses::regression_loss(
        out.target_prediction.clone().unwrap(),
        Tensor::<B, 2>::full([b, 1], 0.5, &device),
        &aam_train::RegressionLoss::default(),
    );
    let slot_mask = out.asv_mask.clone();
    let count = losses::count_loss(
        out.count_prediction.clone().unwrap(),
        slot_mask.clone().mul_scalar(3.0),
        slot_mask,
    );
    let distances = Tensor::<B, 2>::full([b, b], 0.4, &device)
        .mul(Tensor::<B, 2>::eye(b, &device).neg().add_scalar(1.0));
    let unifrac = losses::unifrac_loss(out.embeddings.clone(), distances, 10.0);
    let loss = target + count + unifrac;
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let peak = PEAK.load(Ordering::Relaxed) - base;
    let stepped = SgdConfig::new().init().step(1.0, model.clone(), grads);

    let (mut before, mut after) = (WeightSink::default(), WeightSink::default());
    model.save_weights(&mut before);
    stepped.save_weights(&mut after);
    let steps = before
        .entries
        .into_iter()
        .zip(after.entries)
        .map(|((key, _, w0), (key1, _, w1))| {
            assert_eq!(key, key1);
            let step = w1.iter().zip(&w0).map(|(a, b)| a - b).collect();
            (key, step)
        })
        .collect();
    (steps, peak)
}

#[test]
fn checkpointed_gradients_equal_the_plain_ones() {
    // One warm-up pass, so that lazily allocated state is not counted in either run.
    minus_gradients::<CpuAutodiff>();
    let (plain, plain_peak) = minus_gradients::<CpuAutodiff>();
    let (checkpointed, checkpointed_peak) = minus_gradients::<CpuAutodiffCheckpointed>();
    eprintln!(
        "peak heap of forward + backward: {plain_peak} B plain, {checkpointed_peak} B checkpointed"
    );
    // Measured: about 68% of the plain peak; two plain passes differ by a few kB.
    assert!(
        (checkpointed_peak as f64) < 0.85 * plain_peak as f64,
        "checkpointing kept nearly as much memory as the plain pass: {checkpointed_peak} B against {plain_peak} B"
    );
    assert_eq!(plain.len(), checkpointed.len());
    let mut nonzero = 0;
    for ((key, g), (_, h)) in plain.iter().zip(&checkpointed) {
        for (i, (x, y)) in g.iter().zip(h).enumerate() {
            assert!(x.is_finite() && y.is_finite(), "{key}[{i}]: {x} vs {y}");
            assert!(
                (x - y).abs() <= 1e-5,
                "{key}[{i}]: gradient {x} without checkpointing, {y} with"
            );
        }
        nonzero += usize::from(g.iter().any(|&x| x != 0.0));
    }
    // The comparison means something only if the loss reaches most parameters.
    assert!(
        nonzero * 2 > plain.len(),
        "only {nonzero} of {} parameters got a gradient",
        plain.len()
    );
}
