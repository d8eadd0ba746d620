//! Count embedding (reference `SampleSequenceEncoder` with `count_embedding`, spec §3.11
//! "Count embedding (REG-10b)"): mixes `c = ln(count + 1)` of each ASV slot into its ASV
//! embedding, so the sample-level stacks see abundances and not only their order.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use crate::config::{CountEmbeddingMethod, ModelConfig};
use crate::weights::{load_linear, save_linear, WeightError, WeightMap, WeightSink};

/// The count embedding's layers (keys under `sample_encoder.`): `count_embed`
/// `Linear(1 → D)` for `add` and `concat`, `count_proj` `Linear(2D → D)` for `concat`,
/// `count_film` `Linear(1 → 2D)` for `film`. Which ones exist says the method.
#[derive(Module, Debug)]
pub struct CountEmbedding<B: Backend> {
    /// `count_embed`.
    pub count_embed: Option<Linear<B>>,
    /// `count_proj`.
    pub count_proj: Option<Linear<B>>,
    /// `count_film`.
    pub count_film: Option<Linear<B>>,
}

impl<B: Backend> CountEmbedding<B> {
    /// Freshly initialised layers for `c.count_embedding_method`; `None` when the model
    /// has no count embedding.
    pub fn new(c: &ModelConfig, device: &B::Device) -> Option<Self> {
        if !c.count_embedding {
            return None;
        }
        let d = c.embedding_dim;
        let linear = |i, o| Some(LinearConfig::new(i, o).init(device));
        Some(match c.count_embedding_method {
            CountEmbeddingMethod::Add => CountEmbedding {
                count_embed: linear(1, d),
                count_proj: None,
                count_film: None,
            },
            CountEmbeddingMethod::Concat => CountEmbedding {
                count_embed: linear(1, d),
                count_proj: linear(2 * d, d),
                count_film: None,
            },
            CountEmbeddingMethod::Film => CountEmbedding {
                count_embed: None,
                count_proj: None,
                count_film: linear(1, 2 * d),
            },
        })
    }

    /// Loads the layers at `prefix` (e.g. `base_model.sample_encoder`).
    ///
    /// Errors: a layer of the configured method is missing or has the wrong shape.
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        c: &ModelConfig,
        device: &B::Device,
    ) -> Result<Option<Self>, WeightError> {
        if !c.count_embedding {
            return Ok(None);
        }
        let d = c.embedding_dim;
        let linear =
            |name: &str, i, o| load_linear(w, &format!("{prefix}.{name}"), i, o, true, device);
        Ok(Some(match c.count_embedding_method {
            CountEmbeddingMethod::Add => CountEmbedding {
                count_embed: Some(linear("count_embed", 1, d)?),
                count_proj: None,
                count_film: None,
            },
            CountEmbeddingMethod::Concat => CountEmbedding {
                count_embed: Some(linear("count_embed", 1, d)?),
                count_proj: Some(linear("count_proj", 2 * d, d)?),
                count_film: None,
            },
            CountEmbeddingMethod::Film => CountEmbedding {
                count_embed: None,
                count_proj: None,
                count_film: Some(linear("count_film", 1, 2 * d)?),
            },
        }))
    }

    /// Writes the layers at `prefix`.
    pub fn save(&self, prefix: &str, sink: &mut WeightSink) {
        for (name, layer) in [
            ("count_embed", &self.count_embed),
            ("count_proj", &self.count_proj),
            ("count_film", &self.count_film),
        ] {
            if let Some(l) = layer {
                save_linear(l, &format!("{prefix}.{name}"), sink);
            }
        }
    }

    /// ASV embeddings `a` `[batch, n_asv, D]` (zero on empty slots) with the read
    /// counts `counts` float32 `[batch, n_asv, 1]` (raw, ≥ 0) mixed in; the caller
    /// re-applies the ASV mask, as the reference does.
    pub fn forward(&self, a: Tensor<B, 3>, counts: Tensor<B, 3>) -> Tensor<B, 3> {
        let c = log_counts(counts);
        if let Some(film) = &self.count_film {
            let [b, s, d] = a.dims();
            let gb = film.forward(c);
            let gamma = gb.clone().slice([0..b, 0..s, 0..d]);
            let beta = gb.slice([0..b, 0..s, d..2 * d]);
            return a.clone() * gamma + a + beta;
        }
        let e = match &self.count_embed {
            Some(embed) => embed.forward(c),
            None => return a,
        };
        match &self.count_proj {
            Some(proj) => proj.forward(Tensor::cat(vec![a, e], 2)),
            None => a + e,
        }
    }
}

/// `ln(max(count, 0) + 1)` of read counts float32 `[batch, n_asv, 1]`, same shape: what
/// the count embedding and abundance-weighted pooling read. Read counts span orders of
/// magnitude; a negative count (never made by aam's tables) is clamped so the log stays
/// finite.
pub fn log_counts<B: Backend>(counts: Tensor<B, 3>) -> Tensor<B, 3> {
    counts.clamp_min(0.0).log1p()
}
