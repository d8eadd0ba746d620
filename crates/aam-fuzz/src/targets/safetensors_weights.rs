//! Safetensors weights: any bytes as a `model.safetensors`, then loaded into the shipped
//! model's architecture (as a predictor and as a pretrained encoder).

use aam_model::weights::WeightMap;
use aam_model::{CpuBackend, SequenceEncoder, SequencePredictor};

/// Parses `data` as safetensors, writes the weights back and re-reads them (must give the
/// same tensors), then builds the shipped architecture from them.
pub fn run(data: &[u8]) {
    let Ok(weights) = WeightMap::from_safetensors(data, "fuzz.safetensors") else { return };
    let written = weights.to_safetensors(None).expect("accepted weights can be written back");
    let again = WeightMap::from_safetensors(&written, "rewritten.safetensors").expect("written weights can be read");
    assert_eq!(
        again.to_safetensors(None).expect("written twice"),
        written,
        "weights changed in a write/read round trip"
    );
    let model = &crate::shipped::config().model;
    let device = Default::default();
    if SequencePredictor::<CpuBackend>::load(&weights, model, &device).is_ok() {
        let _ = weights.check_all_used("");
    }
    let _ = SequenceEncoder::<CpuBackend>::load(&weights, "", model, &device);
}
