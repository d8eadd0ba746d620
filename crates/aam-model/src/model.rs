//! One interface over the two trainable models (pretrained encoder and predictor), so
//! the trainer, exporter and runtime treat them alike.

use burn::prelude::*;

use crate::config::ModelConfig;
use crate::sequence_encoder::{EncoderOutput, SequenceEncoder};
use crate::sequence_predictor::{PredictorOutput, SequencePredictor, BASE_PREFIX};
use crate::weights::{WeightError, WeightMap, WeightSink};

/// Every output of a forward pass, under the reference names.
#[derive(Debug, Clone)]
pub struct ModelOutputs<B: Backend> {
    /// `embeddings` `[batch, D]`: pooled sample embedding.
    pub embeddings: Tensor<B, 2>,
    /// `base_embeddings` `[batch, n_asv, D]`.
    pub base_embeddings: Tensor<B, 3>,
    /// 1 where the slot holds an ASV, `[batch, n_asv]`.
    pub asv_mask: Tensor<B, 2>,
    /// `base_prediction` `[batch, base_output_dim]` (faith_pd / taxonomy encoders).
    pub base_prediction: Option<Tensor<B, 2>>,
    /// `nuc_predictions` `[batch, n_asv, L, V]` (nucleotide logits).
    pub nuc_predictions: Option<Tensor<B, 4>>,
    /// `target_prediction` `[batch, out_dim]` (predictors only).
    pub target_prediction: Option<Tensor<B, 2>>,
    /// `count_prediction` `[batch, n_asv, 1]` (predictors only).
    pub count_prediction: Option<Tensor<B, 3>>,
}

/// A model that runs on tokens and saves itself by reference key path.
pub trait AamModel<B: Backend>: Module<B> + Clone {
    /// Runs the forward pass. `tokens`: int `[batch, n_asv, max_bp + 1]`; `counts`: read
    /// counts float32 `[batch, n_asv, 1]`, needed when [`AamModel::uses_counts`].
    fn forward_all(&self, tokens: Tensor<B, 3, Int>, counts: Option<Tensor<B, 3>>)
        -> ModelOutputs<B>;
    /// [`AamModel::forward_all`] in training with nucleotide masking: `tokens` hold the
    /// mask token at the masked positions, `unmasked` int `[batch, n_asv, max_bp + 1]`
    /// the tokens before masking, which the k-mer embedding reads so that training and
    /// inference see the same k-mers (see
    /// [`crate::asv_encoder::AsvEncoder::forward_masked`]); `None` (no masking): the
    /// same as [`AamModel::forward_all`]. `categorical_ids` int `[batch, n_columns]`:
    /// the category indices of a predictor conditioned on metadata categories (`None`:
    /// every category unknown); an encoder ignores them.
    fn forward_masked(
        &self,
        tokens: Tensor<B, 3, Int>,
        unmasked: Option<Tensor<B, 3, Int>>,
        counts: Option<Tensor<B, 3>>,
        categorical_ids: Option<Tensor<B, 2, Int>>,
    ) -> ModelOutputs<B>;
    /// Whether the forward pass reads read counts (a count embedding or
    /// abundance-weighted pooling).
    fn uses_counts(&self) -> bool;
    /// The ASV encoder alone: embeddings `[n, D]` of ASV token rows int
    /// `[n, max_bp + 1]`, without nucleotide logits.
    fn asv_embeddings(&self, rows: Tensor<B, 2, Int>) -> Tensor<B, 2>;
    /// [`AamModel::forward_all`] after the ASV encoder, from ASV embeddings
    /// `[batch, n_asv, D]`, `asv_mask` `[batch, n_asv]`, the read counts
    /// `[batch, n_asv, 1]` and the category indices (as [`AamModel::forward_masked`]);
    /// `nuc_predictions` is `None`.
    fn forward_from_asv_embeddings(
        &self,
        asv_embeddings: Tensor<B, 3>,
        asv_mask: Tensor<B, 2>,
        counts: Option<Tensor<B, 3>>,
        categorical_ids: Option<Tensor<B, 2, Int>>,
    ) -> ModelOutputs<B>;
    /// Writes the weights with reference key names.
    fn save_weights(&self, sink: &mut WeightSink);
    /// Loads weights written by [`AamModel::save_weights`] (or a reference state dict).
    fn load_weights(
        w: &WeightMap,
        c: &ModelConfig,
        device: &B::Device,
    ) -> Result<Self, WeightError>;
    /// Makes the base encoder's parameters constant (`--freeze-base`), except a count
    /// embedding's.
    fn freeze_base(self) -> Self;
}

fn encoder_outputs<B: Backend>(o: EncoderOutput<B>) -> ModelOutputs<B> {
    ModelOutputs {
        embeddings: o.embeddings,
        base_embeddings: o.sample_embeddings,
        asv_mask: o.asv_mask,
        base_prediction: o.base_prediction,
        nuc_predictions: o.nuc_predictions,
        target_prediction: None,
        count_prediction: None,
    }
}

fn predictor_outputs<B: Backend>(o: PredictorOutput<B>) -> ModelOutputs<B> {
    ModelOutputs {
        target_prediction: Some(o.target_prediction),
        count_prediction: Some(o.count_prediction),
        ..encoder_outputs(o.base)
    }
}

impl<B: Backend> AamModel<B> for SequenceEncoder<B> {
    fn forward_all(
        &self,
        tokens: Tensor<B, 3, Int>,
        counts: Option<Tensor<B, 3>>,
    ) -> ModelOutputs<B> {
        encoder_outputs(self.forward(tokens, counts))
    }

    fn forward_masked(
        &self,
        tokens: Tensor<B, 3, Int>,
        unmasked: Option<Tensor<B, 3, Int>>,
        counts: Option<Tensor<B, 3>>,
        _categorical_ids: Option<Tensor<B, 2, Int>>,
    ) -> ModelOutputs<B> {
        encoder_outputs(SequenceEncoder::forward_masked(self, tokens, unmasked, counts))
    }

    fn uses_counts(&self) -> bool {
        SequenceEncoder::uses_counts(self)
    }

    fn asv_embeddings(&self, rows: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        self.sample_encoder.asv_encoder.embed_rows(rows)
    }

    fn forward_from_asv_embeddings(
        &self,
        asv_embeddings: Tensor<B, 3>,
        asv_mask: Tensor<B, 2>,
        counts: Option<Tensor<B, 3>>,
        _categorical_ids: Option<Tensor<B, 2, Int>>,
    ) -> ModelOutputs<B> {
        encoder_outputs(SequenceEncoder::forward_from_asv_embeddings(
            self,
            asv_embeddings,
            asv_mask,
            counts,
        ))
    }

    fn save_weights(&self, sink: &mut WeightSink) {
        self.save("", sink);
    }

    fn load_weights(
        w: &WeightMap,
        c: &ModelConfig,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        let m = SequenceEncoder::load(w, "", c, device)?;
        w.check_all_used("")?;
        Ok(m)
    }

    fn freeze_base(self) -> Self {
        self.no_grad()
    }
}

impl<B: Backend> AamModel<B> for SequencePredictor<B> {
    fn forward_all(
        &self,
        tokens: Tensor<B, 3, Int>,
        counts: Option<Tensor<B, 3>>,
    ) -> ModelOutputs<B> {
        predictor_outputs(self.forward(tokens, counts))
    }

    fn forward_masked(
        &self,
        tokens: Tensor<B, 3, Int>,
        unmasked: Option<Tensor<B, 3, Int>>,
        counts: Option<Tensor<B, 3>>,
        categorical_ids: Option<Tensor<B, 2, Int>>,
    ) -> ModelOutputs<B> {
        predictor_outputs(SequencePredictor::forward_masked(
            self,
            tokens,
            unmasked,
            counts,
            categorical_ids,
        ))
    }

    fn uses_counts(&self) -> bool {
        self.base_model.uses_counts()
    }

    fn asv_embeddings(&self, rows: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        self.base_model.sample_encoder.asv_encoder.embed_rows(rows)
    }

    fn forward_from_asv_embeddings(
        &self,
        asv_embeddings: Tensor<B, 3>,
        asv_mask: Tensor<B, 2>,
        counts: Option<Tensor<B, 3>>,
        categorical_ids: Option<Tensor<B, 2, Int>>,
    ) -> ModelOutputs<B> {
        predictor_outputs(SequencePredictor::forward_from_asv_embeddings(
            self,
            asv_embeddings,
            asv_mask,
            counts,
            categorical_ids,
        ))
    }

    fn save_weights(&self, sink: &mut WeightSink) {
        self.save(sink);
    }

    fn load_weights(
        w: &WeightMap,
        c: &ModelConfig,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        let m = SequencePredictor::load(w, c, device)?;
        w.check_all_used("")?;
        Ok(m)
    }

    fn freeze_base(mut self) -> Self {
        // The count embedding (a few parameters, often added at fine-tuning on top of an
        // encoder pretrained without it) keeps training.
        let counts = self.base_model.sample_encoder.count_embedding.take();
        self.base_model = self.base_model.no_grad();
        self.base_model.sample_encoder.count_embedding = counts;
        self
    }
}

/// Whether a state dict holds a predictor (keys under `base_model.`) or an encoder.
pub fn is_predictor_state_dict(w: &WeightMap) -> bool {
    w.keys().any(|k| k.starts_with(BASE_PREFIX))
}
