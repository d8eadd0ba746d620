//! The names of the graphs' inputs and outputs, which the runtime, the server, the C ABI
//! and Triton configurations look up (see [`super::graph`] for the shapes).

/// Name of the graph input.
pub const TOKENS: &str = "tokens";
/// Pooled sample embedding output.
pub const EMBEDDINGS: &str = "embeddings";
/// Target head output.
pub const TARGET_PREDICTION: &str = "target_prediction";
/// Class probabilities output (classifiers).
pub const CLASS_PROBABILITIES: &str = "class_probabilities";
/// Count head output.
pub const COUNT_PREDICTION: &str = "count_prediction";
/// Input of the ASV encoder graph: one ASV per row.
pub const ASV_TOKENS: &str = "asv_tokens";
/// Output of the ASV encoder graph and input of the sample graph.
pub const ASV_EMBEDDINGS: &str = "asv_embeddings";
/// Input of the sample graph: 1 where a slot holds an ASV.
pub const ASV_MASK: &str = "asv_mask";
/// Input of the full and sample graphs of a model with a count embedding: the read
/// count of each ASV slot.
pub const COUNTS: &str = "counts";
/// Input of a model conditioned on metadata categories: int64 `[batch, n_columns]`,
/// columns sorted by name, each in `0..cardinality` (0: unknown or missing).
pub const CATEGORICAL_IDS: &str = "categorical_ids";
