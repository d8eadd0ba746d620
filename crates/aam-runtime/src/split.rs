//! The model as two graphs, `asv_encoder.onnx` (`asv_tokens` int64 `[n, max_bp + 1]` →
//! `asv_embeddings` f32 `[n, D]`) and `sample_model.onnx` (`asv_embeddings` f32
//! `[batch, n_asv, D]` + `asv_mask` f32 `[batch, n_asv]` → the outputs of `model.onnx`),
//! so each unique ASV is encoded once, in chunks of at most `chunk_rows` ASVs (bounding
//! the nucleotide attention's memory), and empty ASV slots are never encoded.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use aam_config::ModelConfig;
use ndarray::{s, Array2, Array3, ArrayView1, ArrayView3};

use crate::asv_cache::{asv_key, AsvCache, AsvCacheOptions, AsvCacheStats, AsvEmbedding, AsvKey};
use crate::engine::{Engine, Input, NamedOutputs, Placement};
use crate::error::{Result, RuntimeError};
use crate::options::LoadOptions;

/// File name of the ASV encoder graph in an export directory.
pub const ASV_ENCODER_FILE: &str = "asv_encoder.onnx";
/// File name of the sample graph in an export directory.
pub const SAMPLE_MODEL_FILE: &str = "sample_model.onnx";

/// ASV embeddings of one call, shared by the threads working on it.
pub(crate) type CallEmbeddings = Mutex<HashMap<AsvKey, AsvEmbedding>>;

fn lock(call: &CallEmbeddings) -> MutexGuard<'_, HashMap<AsvKey, AsvEmbedding>> {
    call.lock().unwrap_or_else(|p| p.into_inner())
}

/// One graph of the pair, parsed: its engine and output names.
pub(crate) struct Part {
    engine: Engine,
    outputs: Vec<String>,
}

impl Part {
    /// Parses and prepares `bytes` (from `path`), checking it belongs to the model whose
    /// `aam_config` metadata is `config_json`.
    pub(crate) fn prepare(
        bytes: &[u8],
        path: &Path,
        inputs: &[&str],
        config_json: &str,
        model: &ModelConfig,
        options: &LoadOptions,
    ) -> Result<(Part, Placement)> {
        let proto = crate::model::parse_onnx(bytes, path)?;
        let same = proto
            .metadata_props
            .iter()
            .any(|e| e.key == "aam_config" && e.value == config_json);
        if !same {
            return Err(RuntimeError::Load {
                path: path.display().to_string(),
                message: "this graph was exported from another model than model.onnx beside it; re-export the directory with `aam export`".into(),
            });
        }
        let found: Vec<String> = proto
            .graph
            .as_ref()
            .map(|g| g.input.iter().map(|i| i.name.clone()).collect())
            .unwrap_or_default();
        if found != inputs {
            return Err(RuntimeError::Load {
                path: path.display().to_string(),
                message: format!(
                    "the graph's inputs are {found:?}, expected {inputs:?}; re-export the directory with `aam export`"
                ),
            });
        }
        let outputs = crate::model::output_names(&proto);
        let (engine, placement) = Engine::prepare(bytes, &proto, path, model, options)?;
        Ok((Part { engine, outputs }, placement))
    }
}

/// The two graphs and the ASV-embedding cache.
pub(crate) struct SplitGraphs {
    asv: Part,
    sample: Part,
    cache: AsvCache,
    chunk_rows: usize,
    embedding_dim: usize,
    token_width: usize,
}

impl SplitGraphs {
    pub(crate) fn new(
        asv: Part,
        sample: Part,
        model: &ModelConfig,
        options: AsvCacheOptions,
    ) -> Self {
        SplitGraphs {
            asv,
            sample,
            cache: AsvCache::new(options.capacity),
            chunk_rows: options.chunk_rows.max(1),
            embedding_dim: model.embedding_dim,
            token_width: model.max_bp + 1,
        }
    }

    pub(crate) fn stats(&self) -> AsvCacheStats {
        self.cache.stats()
    }

    /// Encodes `keys` not yet in `call` nor in the LRU cache: chunks of at most
    /// `chunk_rows` ASVs, spread over `threads` workers.
    pub(crate) fn encode<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k AsvKey>,
        call: &CallEmbeddings,
        threads: usize,
    ) -> Result<()> {
        let missing = self.cache.missing(keys, &mut lock(call));
        if missing.is_empty() {
            return Ok(());
        }
        let chunks: Vec<&[AsvKey]> = missing.chunks(self.chunk_rows).collect();
        let next = AtomicUsize::new(0);
        let work = || -> Result<()> {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(chunk) = chunks.get(i) else {
                    return Ok(());
                };
                let encoded = self.encode_chunk(chunk)?;
                self.cache.store(encoded, &mut lock(call));
            }
        };
        let workers = threads.clamp(1, chunks.len());
        if workers == 1 {
            return work();
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers).map(|_| scope.spawn(&work)).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(RuntimeError::Run("an ASV encoder worker stopped".into()))
                    })
                })
                .collect::<Result<Vec<()>>>()
        })?;
        Ok(())
    }

    fn encode_chunk(&self, chunk: &[AsvKey]) -> Result<Vec<(AsvKey, AsvEmbedding)>> {
        let mut rows = Array2::<i64>::zeros((chunk.len(), self.token_width));
        for (i, key) in chunk.iter().enumerate() {
            for (k, &t) in key.iter().enumerate() {
                rows[[i, k]] = i64::from(t);
            }
        }
        let out = self.asv.engine.run(
            vec![Input::I64("asv_tokens", rows.into_dyn())],
            &self.asv.outputs,
        )?;
        let emb = out.get("asv_embeddings").ok_or_else(|| {
            RuntimeError::Run("asv_encoder.onnx has no `asv_embeddings` output".into())
        })?;
        if emb.shape() != [chunk.len(), self.embedding_dim] {
            return Err(RuntimeError::Run(format!(
                "asv_encoder.onnx returned {:?}, expected [{}, {}]",
                emb.shape(),
                chunk.len(),
                self.embedding_dim
            )));
        }
        Ok(chunk
            .iter()
            .zip(emb.outer_iter())
            .map(|(key, row)| {
                (
                    key.clone(),
                    Arc::from(row.iter().copied().collect::<Vec<f32>>()),
                )
            })
            .collect())
    }

    /// Runs checked `tokens` int64 `[batch, n_asv, max_bp + 1]`: ASVs not in `call` are
    /// encoded, then the sample graph runs on their embeddings.
    pub(crate) fn run(
        &self,
        tokens: ArrayView3<'_, i64>,
        call: &CallEmbeddings,
    ) -> Result<NamedOutputs> {
        let (b, s, _) = tokens.dim();
        let keys: Vec<Option<AsvKey>> = tokens
            .outer_iter()
            .flat_map(|sample| sample.outer_iter().map(asv_key).collect::<Vec<_>>())
            .collect();
        self.encode(keys.iter().flatten(), call, 1)?;
        let d = self.embedding_dim;
        let mut emb = Array3::<f32>::zeros((b, s, d));
        let mut mask = Array2::<f32>::zeros((b, s));
        {
            let map = lock(call);
            for (i, key) in keys.iter().enumerate() {
                let Some(key) = key else { continue };
                let e = map
                    .get(key)
                    .ok_or_else(|| RuntimeError::Run("an ASV embedding went missing".into()))?;
                emb.slice_mut(s![i / s, i % s, ..])
                    .assign(&ArrayView1::from(&e[..]));
                mask[[i / s, i % s]] = 1.0;
            }
        }
        self.cache.count_slots(keys.iter().flatten().count());
        self.sample.engine.run(
            vec![
                Input::F32("asv_embeddings", emb.into_dyn()),
                Input::F32("asv_mask", mask.into_dyn()),
            ],
            &self.sample.outputs,
        )
    }
}
