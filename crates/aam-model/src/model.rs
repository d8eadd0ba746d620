//! One interface over the two trainable models (pretrained encoder and predictor), so
//! the trainer, exporter and runtime treat them alike.

use burn::prelude::*;

use crate::config::ModelConfig;
use crate::sequence_encoder::SequenceEncoder;
use crate::sequence_predictor::{SequencePredictor, BASE_PREFIX};
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
    /// Runs the forward pass. `tokens`: int `[batch, n_asv, max_bp + 1]`.
    fn forward_all(&self, tokens: Tensor<B, 3, Int>) -> ModelOutputs<B>;
    /// Writes the weights with reference key names.
    fn save_weights(&self, sink: &mut WeightSink);
    /// Loads weights written by [`AamModel::save_weights`] (or a reference state dict).
    fn load_weights(
        w: &WeightMap,
        c: &ModelConfig,
        device: &B::Device,
    ) -> Result<Self, WeightError>;
    /// Makes the base encoder's parameters constant (`--freeze-base`).
    fn freeze_base(self) -> Self;
}

impl<B: Backend> AamModel<B> for SequenceEncoder<B> {
    fn forward_all(&self, tokens: Tensor<B, 3, Int>) -> ModelOutputs<B> {
        let o = self.forward(tokens);
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
    fn forward_all(&self, tokens: Tensor<B, 3, Int>) -> ModelOutputs<B> {
        let o = self.forward(tokens);
        ModelOutputs {
            embeddings: o.base.embeddings,
            base_embeddings: o.base.sample_embeddings,
            asv_mask: o.base.asv_mask,
            base_prediction: o.base.base_prediction,
            nuc_predictions: o.base.nuc_predictions,
            target_prediction: Some(o.target_prediction),
            count_prediction: Some(o.count_prediction),
        }
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
        self.base_model = self.base_model.no_grad();
        self
    }
}

/// Whether a state dict holds a predictor (keys under `base_model.`) or an encoder.
pub fn is_predictor_state_dict(w: &WeightMap) -> bool {
    w.keys().any(|k| k.starts_with(BASE_PREFIX))
}
