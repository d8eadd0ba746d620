//! The `concat` and `add` categorical fusions (reference `categorical_projection`, spec
//! §3.11): the category embeddings join every ASV's sample embedding before the target
//! transformer.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use crate::weights::{load_linear, save_linear, WeightError, WeightMap, WeightSink};

/// `concat`: `Linear(D + C → D)([s ; c])`; `add`: `s + Linear(C → D)(c)`, `c` broadcast
/// over the ASV slots.
#[derive(Module, Debug)]
pub struct CategoricalProjection<B: Backend> {
    /// `categorical_projection`.
    pub projection: Linear<B>,
    /// `concat` (else `add`).
    concat: bool,
}

impl<B: Backend> CategoricalProjection<B> {
    /// Freshly initialised for width `dim` and category width `cat_width`.
    pub fn new(dim: usize, cat_width: usize, concat: bool, device: &B::Device) -> Self {
        let d_in = if concat { dim + cat_width } else { cat_width };
        CategoricalProjection {
            projection: LinearConfig::new(d_in, dim).init(device),
            concat,
        }
    }

    /// Loads `prefix` (`categorical_projection`).
    ///
    /// Errors: the layer is missing or has the wrong shape.
    pub fn load(
        w: &WeightMap,
        prefix: &str,
        dim: usize,
        cat_width: usize,
        concat: bool,
        device: &B::Device,
    ) -> Result<Self, WeightError> {
        let d_in = if concat { dim + cat_width } else { cat_width };
        Ok(CategoricalProjection {
            projection: load_linear(w, prefix, d_in, dim, true, device)?,
            concat,
        })
    }

    /// Writes the layer at `prefix`.
    pub fn save(&self, prefix: &str, sink: &mut WeightSink) {
        save_linear(&self.projection, prefix, sink);
    }

    /// `s`: `[batch, n_asv, D]`, `c`: `[batch, C]`. Returns `[batch, n_asv, D]`.
    pub fn forward(&self, s: Tensor<B, 3>, c: Tensor<B, 2>) -> Tensor<B, 3> {
        let [batch, n_asv, _] = s.dims();
        let [_, width] = c.dims();
        let c = c.reshape([batch, 1, width]);
        if self.concat {
            let c = c.expand([batch, n_asv, width]);
            self.projection.forward(Tensor::cat(vec![s, c], 2))
        } else {
            s + self.projection.forward(c)
        }
    }
}
