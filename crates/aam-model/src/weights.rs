//! Weights by key path, in the reference (PyTorch state-dict) naming and layout.
//!
//! Every block loads its parameters from a [`WeightMap`] under a prefix and writes
//! them back into a [`WeightSink`] under the same names, as candle's model files do.
//! Linear weights are stored PyTorch-style `[out, in]` and transposed to Burn's
//! `[in, out]`; the attention `in_proj_weight [3D, D]` is split into q, k, v.
//! The map itself is Burn-free and lives in `aam_config::weight_map`.

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::TensorData;

pub use aam_config::weight_map::{write_safetensors, WeightError, WeightMap};

/// Burn tensors from a [`WeightMap`].
pub trait WeightTensors {
    /// The tensor `key`, checked against `shape` (marks it used).
    ///
    /// Errors: [`WeightError::Missing`], [`WeightError::Shape`].
    fn tensor<B: Backend, const D: usize>(
        &self,
        key: &str,
        shape: [usize; D],
        device: &B::Device,
    ) -> Result<Tensor<B, D>, WeightError>;
}

impl WeightTensors for WeightMap {
    fn tensor<B: Backend, const D: usize>(
        &self,
        key: &str,
        shape: [usize; D],
        device: &B::Device,
    ) -> Result<Tensor<B, D>, WeightError> {
        let v = self.get(key, &shape)?;
        Ok(Tensor::from_data(
            TensorData::new(v.to_vec(), shape),
            device,
        ))
    }
}

/// Collects named tensors (PyTorch layout) for writing.
#[derive(Debug, Default)]
pub struct WeightSink {
    /// `(key, shape, values)` in insertion order.
    pub entries: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl WeightSink {
    /// Adds a float tensor.
    pub fn put<B: Backend, const D: usize>(&mut self, key: &str, t: Tensor<B, D>) {
        let shape = t.dims().to_vec();
        let values = t
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("f32 data");
        self.entries.push((key.to_string(), shape, values));
    }

    /// Serialises to safetensors bytes with `metadata`.
    pub fn to_safetensors(
        &self,
        metadata: Option<std::collections::HashMap<String, String>>,
    ) -> Result<Vec<u8>, WeightError> {
        write_safetensors(
            self.entries
                .iter()
                .map(|(k, s, v)| (k.as_str(), s.as_slice(), v.as_slice())),
            metadata,
        )
    }

    /// Turns the collected tensors into a [`WeightMap`] (round trip without a file).
    pub fn into_map(self) -> WeightMap {
        let mut m = WeightMap::default();
        for (k, s, v) in self.entries {
            m.insert(&k, s, v);
        }
        m
    }
}

/// Loads a PyTorch `Linear` (`weight [out, in]`, optional `bias [out]`).
pub fn load_linear<B: Backend>(
    w: &WeightMap,
    prefix: &str,
    d_in: usize,
    d_out: usize,
    bias: bool,
    device: &B::Device,
) -> Result<Linear<B>, WeightError> {
    let mut lin = LinearConfig::new(d_in, d_out).with_bias(bias).init(device);
    let weight: Tensor<B, 2> = w.tensor(&format!("{prefix}.weight"), [d_out, d_in], device)?;
    lin.weight = Param::from_tensor(weight.transpose());
    if bias {
        lin.bias = Some(Param::from_tensor(w.tensor(
            &format!("{prefix}.bias"),
            [d_out],
            device,
        )?));
    }
    Ok(lin)
}

/// Writes a `Linear` in PyTorch layout.
pub fn save_linear<B: Backend>(lin: &Linear<B>, prefix: &str, sink: &mut WeightSink) {
    sink.put(&format!("{prefix}.weight"), lin.weight.val().transpose());
    if let Some(b) = &lin.bias {
        sink.put(&format!("{prefix}.bias"), b.val());
    }
}

/// Loads a `LayerNorm` (`weight`, `bias`) with `epsilon`.
pub fn load_layer_norm<B: Backend>(
    w: &WeightMap,
    prefix: &str,
    dim: usize,
    epsilon: f64,
    device: &B::Device,
) -> Result<LayerNorm<B>, WeightError> {
    let mut ln = LayerNormConfig::new(dim).with_epsilon(epsilon).init(device);
    ln.gamma = Param::from_tensor(w.tensor(&format!("{prefix}.weight"), [dim], device)?);
    ln.beta = Some(Param::from_tensor(w.tensor(
        &format!("{prefix}.bias"),
        [dim],
        device,
    )?));
    Ok(ln)
}

/// Writes a `LayerNorm` as `weight`/`bias`.
pub fn save_layer_norm<B: Backend>(ln: &LayerNorm<B>, prefix: &str, sink: &mut WeightSink) {
    sink.put(&format!("{prefix}.weight"), ln.gamma.val());
    if let Some(b) = &ln.beta {
        sink.put(&format!("{prefix}.bias"), b.val());
    }
}

/// Loads an `Embedding` table `[n, dim]`.
pub fn load_embedding<B: Backend>(
    w: &WeightMap,
    key: &str,
    n: usize,
    dim: usize,
    device: &B::Device,
) -> Result<Embedding<B>, WeightError> {
    let mut e = EmbeddingConfig::new(n, dim).init(device);
    e.weight = Param::from_tensor(w.tensor(key, [n, dim], device)?);
    Ok(e)
}
