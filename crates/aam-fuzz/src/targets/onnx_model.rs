//! ONNX models: any bytes as a `model.onnx` on tract, then (when it loads) one forward
//! pass on two valid sequences; what comes back must have the shapes the model's own
//! configuration promises, since the C ABI and the CLI index the outputs by them.

use std::path::Path;

use aam_runtime::Model;
use ndarray::Array3;

/// Token rows wider than this are not run (a mutated configuration may claim any max bp).
const MAX_WIDTH: usize = 1024;

/// Two ASVs of one sample, `[1, 2, width]` int64: each row starts with 5 (the ASV start
/// token the tokenizer writes), then nucleotides 1..=4 and padding.
pub fn tokens(width: usize) -> Array3<i64> {
    Array3::from_shape_fn((1, 2, width), |(_, r, k)| match k {
        0 => 5,
        k if k <= 20 + 3 * r => 1 + ((k * 5 + r) % 4) as i64,
        _ => 0,
    })
}

/// Loads `data` as an aam ONNX export and runs it once.
pub fn run(data: &[u8]) {
    let Ok(model) = Model::from_bytes(data, Path::new("fuzz.onnx")) else { return };
    let m = &model.config().model;
    let width = m.max_bp.saturating_add(1);
    if width > MAX_WIDTH || m.token_limit < 2 || m.vocab_size < 6 {
        return;
    }
    let Ok(out) = model.run(tokens(width).view()) else { return };
    assert_eq!(out.embeddings.dim(), (1, m.embedding_dim), "embeddings of another shape than the configuration's");
    for t in [&out.target_prediction, &out.class_probabilities].into_iter().flatten() {
        assert_eq!(t.nrows(), 1, "a prediction per sample");
    }
    if let Some(c) = &out.count_prediction {
        assert_eq!(c.dim().0, 1);
    }
}
