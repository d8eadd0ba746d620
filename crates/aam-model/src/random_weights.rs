//! Reproducible random weights for every parameter of a predictor: the same values for a
//! seed on every run and machine, whatever else draws from the backend's generator (one
//! per process, shared by the tests of a binary that run in parallel). Fresh layers start
//! at 1 and 0 in their norms and tables, which would hide a mix-up of keys in a test.

use burn::prelude::Backend;

use crate::config::ModelConfig;
use crate::dropout::splitmix64;
use crate::sequence_predictor::SequencePredictor;
use crate::weights::{WeightMap, WeightSink};

/// `n` draws from N(0, std²) for `seed`: SplitMix64 uniforms through Box–Muller.
pub fn normal_values(n: usize, seed: u64, std: f32) -> Vec<f32> {
    let mut state = seed;
    let mut uniform = || (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
    (0..n)
        .map(|_| {
            // 1 − u is in (0, 1], so its logarithm is finite.
            let (u, v) = (1.0 - uniform(), uniform());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32 * std
        })
        .collect()
}

/// Every parameter of a `SequencePredictor` of `config` (its keys and shapes) drawn from
/// N(0, std²), parameter `k` (in save order) from seed `seed · 1000 + k`.
pub fn random_predictor_weights<B: Backend>(
    config: &ModelConfig,
    seed: u64,
    std: f32,
) -> WeightMap {
    let mut sink = WeightSink::default();
    SequencePredictor::<B>::new(config, &Default::default()).save(&mut sink);
    let mut map = WeightMap::default();
    for (k, (key, shape, _)) in sink.entries.into_iter().enumerate() {
        let n: usize = shape.iter().product();
        map.insert(
            &key,
            shape,
            normal_values(n, seed.wrapping_mul(1000).wrapping_add(k as u64), std),
        );
    }
    map
}
