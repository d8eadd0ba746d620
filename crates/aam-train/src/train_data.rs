//! What a training run reads: the dataset, its split, and the target's kind and scale.

use std::sync::Arc;

use aam_data::{Dataset, SampleStream, Split, TargetKind};

/// What the run trains on, beyond the dataset.
#[derive(Debug, Clone)]
pub struct TrainData {
    /// Table (aligned), tokens, distances and targets. For regression the targets are
    /// transformed by `target_transform` with `target_mean`/`target_std`; for
    /// classification they are class indices.
    /// With `stream`, the table holds the sample IDs only ([`SampleStream::id_table`]).
    pub dataset: Dataset,
    /// `--streaming`: the samples' ASVs and counts, read from the BIOM file a chunk of
    /// samples at a time as batches need them; each epoch then visits the chunks in a
    /// random order and the samples of a chunk in a random order. `None`: all in
    /// `dataset`.
    pub stream: Option<Arc<SampleStream>>,
    /// Train/validation split (positions in the dataset's table).
    pub split: Split,
    /// Standardized Faith PD per table sample (faith_pd encoder type).
    pub faith_pd: Option<Vec<f32>>,
    /// Target kind, if fine-tuning.
    pub target_kind: Option<TargetKind>,
    /// Number of classes (classification).
    pub n_classes: usize,
    /// The (first) target's metadata column (empty when pretraining).
    pub target_column: String,
    /// The further target columns of a regressor of several, in output order, with
    /// their transform statistics (`dataset.target_width − 1` of them).
    pub more_targets: Vec<aam_config::TargetColumn>,
    /// Offset of the regression target's transform (the mean for z-score).
    pub target_mean: f64,
    /// Scale of the regression target's transform (the std for z-score).
    pub target_std: f64,
    /// How regression targets were transformed (validation metrics are in the target's
    /// units, through its inverse).
    pub target_transform: aam_config::TargetTransform,
    /// `[offset, scale]` of each table sample's target transform when it depends on the
    /// sample (`zscore-category`); `None`: `target_mean`/`target_std` for every sample.
    pub target_offset_scale: Option<Vec<[f64; 2]>>,
    /// Weight of each table sample's target loss in training
    /// (`--categorical-loss-weights`); `None`: every sample weighs 1.
    pub sample_weights: Option<Vec<f32>>,
    /// Category indices of each table sample, int64 `[n_samples, n_columns]`, for a
    /// predictor conditioned on metadata categories (0: unknown or missing).
    pub categorical_ids: Option<ndarray::Array2<i64>>,
}
