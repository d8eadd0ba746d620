//! The ASV embeddings of a frozen ASV encoder, computed once per run and reused by every
//! epoch (`aam train --freeze-base`): the ASV encoder, most of a training step's work,
//! then runs once per distinct ASV of the run instead of once per slot and epoch, and
//! fine-tuning costs only the sample-level stacks.
//!
//! Embeddings are computed in eval mode (no dropout) on the model's inner backend, as
//! validation and prediction compute them; an ASV row is looked up by its tokens, so any
//! batch (token-limit policies, augmented subsets) finds its rows.

use std::collections::HashMap;

use aam_model::AamModel;
use anyhow::{bail, Result};
use burn::prelude::*;
use burn::tensor::TensorData;
use ndarray::Array3;

/// Most new ASV rows encoded in one call of the ASV encoder.
const ENCODE_ROWS: usize = 1024;

/// ASV embeddings `[n_distinct, D]` keyed by token row.
#[derive(Debug)]
pub struct AsvEmbeddingCache {
    index: HashMap<Box<[u8]>, usize>,
    embeddings: Vec<f32>,
    dim: usize,
}

impl AsvEmbeddingCache {
    /// An empty cache of embeddings of width `dim` (the model's embedding dim D).
    pub fn new(dim: usize) -> Self {
        AsvEmbeddingCache {
            index: HashMap::new(),
            embeddings: Vec::new(),
            dim,
        }
    }

    /// Distinct ASV rows held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no row is held yet.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The ASV embeddings of the slots of `tokens` int `[batch, n_asv, L]`, row-major
    /// `[batch, n_asv, D]` f32 (zeros in empty slots, which the sample encoder zeroes
    /// anyway): rows not held yet are encoded with `encoder` (its
    /// [`AamModel::asv_embeddings`], in calls of at most 1,024 rows on `device`) and kept.
    ///
    /// Errors: a token outside 0–255, an encoder whose embeddings are not `D` wide (each a
    /// bug of the caller: batches hold tokenizer output, and the cache's D is the model's).
    pub fn batch<B: Backend, M: AamModel<B>>(
        &mut self,
        encoder: &M,
        tokens: &Array3<i64>,
        device: &B::Device,
    ) -> Result<Vec<f32>> {
        let (b, s, l) = tokens.dim();
        let mut keys: Vec<Option<Box<[u8]>>> = Vec::with_capacity(b * s);
        let flat = tokens.view().into_shape_with_order((b * s, l))?;
        for row in flat.outer_iter() {
            if row.iter().all(|&t| t == 0) {
                keys.push(None);
                continue;
            }
            let key: Box<[u8]> = row
                .iter()
                .map(|&t| u8::try_from(t))
                .collect::<Result<_, _>>()
                .map_err(|_| anyhow::anyhow!("a token outside 0-255 in an ASV row"))?;
            keys.push(Some(key));
        }
        let mut missing: Vec<&[u8]> = Vec::new();
        let mut queued: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
        for key in keys.iter().flatten() {
            if !self.index.contains_key(key) && queued.insert(key) {
                missing.push(key);
            }
        }
        for rows in missing.chunks(ENCODE_ROWS) {
            let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().map(|&t| i64::from(t))).collect();
            let input = Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [rows.len(), l]), device);
            let out = encoder.asv_embeddings(input);
            let d = out.dims()[1];
            if d != self.dim {
                bail!("the ASV encoder gives embeddings of width {d}, the cache holds width {}", self.dim);
            }
            let values: Vec<f32> = out.into_data().iter::<f32>().collect();
            for (r, key) in rows.iter().enumerate() {
                let at = self.index.len();
                self.index.insert((*key).into(), at);
                self.embeddings.extend_from_slice(&values[r * d..(r + 1) * d]);
            }
        }
        let d = self.dim;
        let mut out = vec![0f32; b * s * d];
        for (slot, key) in keys.iter().enumerate() {
            if let Some(key) = key {
                let at = self.index[key];
                out[slot * d..(slot + 1) * d].copy_from_slice(&self.embeddings[at * d..(at + 1) * d]);
            }
        }
        Ok(out)
    }

    /// Embedding width D.
    pub fn dim(&self) -> usize {
        self.dim
    }
}
