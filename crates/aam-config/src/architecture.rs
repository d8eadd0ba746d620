//! Constants of the architecture that the Burn model (`aam-model`) and the ONNX graph
//! (`aam-export`) must share exactly: epsilons, the padding score, table sizes and key
//! prefixes, from the reference (`shared/docs/reference-aam.md` §3).

/// Large negative score added at padded keys. Finite (not −∞) so that a row whose keys
/// are all padding gets uniform weights instead of NaN; `exp(-1e9 - max)` is exactly
/// 0 in f32, so rows with a valid key are unaffected.
pub const MASKED_SCORE: f32 = -1.0e9;

/// LayerNorm epsilon after pooling.
pub const POOLING_NORM_EPS: f64 = 1e-5;

/// LayerNorm epsilon inside each layer (PyTorch default).
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// Epsilon of the LayerNorm after the stack.
pub const FINAL_NORM_EPS: f64 = 1e-6;

/// Extra rows of the sample position table beyond `token_limit` (reference value).
pub const SAMPLE_POSITION_EXTRA: usize = 5;

/// Key prefix of the base model inside a predictor's state dict.
pub const BASE_PREFIX: &str = "base_model.";
