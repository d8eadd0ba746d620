//! The model as two graphs, `asv_encoder.onnx` (`asv_tokens` int64 `[n, max_bp + 1]` →
//! `asv_embeddings` f32 `[n, D]`) and `sample_model.onnx` (`asv_embeddings` f32
//! `[batch, n_asv, D]` + `asv_mask` f32 `[batch, n_asv]` → the outputs of `model.onnx`),
//! so each unique ASV is encoded once, in chunks of at most `chunk_rows` ASVs (bounding
//! the nucleotide attention's memory), and empty ASV slots are never encoded. The sample
//! graph runs once per sample on the slots up to its last ASV, the samples spread over
//! the workers on tract.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use aam_config::ModelConfig;
use ndarray::{s, Array2, Array3, ArrayD, ArrayView1, ArrayView2, ArrayView3, Axis};

use crate::asv_cache::{
    asv_key, AsvCache, AsvCacheOptions, AsvCacheStats, AsvEmbedding, AsvKey, AUTO_CHUNK_ROWS_ORT,
    AUTO_CHUNK_ROWS_TRACT,
};
use crate::engine::{Engine, Input, NamedOutputs, Placement};
use crate::error::{Result, RuntimeError};
use crate::options::{Backend, LoadOptions};

/// File name of the ASV encoder graph in an export directory.
pub const ASV_ENCODER_FILE: &str = "asv_encoder.onnx";
/// File name of the sample graph in an export directory.
pub const SAMPLE_MODEL_FILE: &str = "sample_model.onnx";

/// Whether `asv_encoder.onnx` and `sample_model.onnx` lie beside the export `model`
/// (its directory, or its `model.onnx`).
pub fn split_graphs_present(model: &Path) -> bool {
    let dir = if model.is_dir() {
        model
    } else {
        model.parent().unwrap_or(Path::new("."))
    };
    [ASV_ENCODER_FILE, SAMPLE_MODEL_FILE]
        .iter()
        .all(|f| dir.join(f).is_file())
}

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
        let proto = crate::onnx_file::parse_onnx(bytes, path)?;
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
        let outputs = crate::onnx_file::output_names(&proto);
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
    /// Threads of one call: ASV chunks and samples on tract; 1 on ONNX
    /// Runtime, which parallelises inside its session.
    workers: usize,
    embedding_dim: usize,
    token_width: usize,
}

/// Runs `job` on each item of `items` over at most `workers` scoped threads (work
/// taken in order from a shared counter); results in item order.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    job: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let workers = workers.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(job).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<R>>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let stopped = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { return };
                    let r = job(item);
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                })
            })
            .collect();
        // Joined here, so a worker's panic becomes an error rather than unwinding on.
        handles.into_iter().any(|h| h.join().is_err())
    });
    if stopped {
        return Err(RuntimeError::Run("a worker thread stopped".into()));
    }
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| Err(RuntimeError::Run("a worker thread stopped".into())))
        })
        .collect()
}

impl SplitGraphs {
    pub(crate) fn new(asv: Part, sample: Part, model: &ModelConfig, load: &LoadOptions) -> Self {
        let options = load.asv_cache.unwrap_or_else(AsvCacheOptions::per_call);
        let tract = load.backend == Backend::Tract;
        SplitGraphs {
            asv,
            sample,
            cache: AsvCache::new(options.capacity),
            chunk_rows: match (options.chunk_rows, tract) {
                (0, true) => AUTO_CHUNK_ROWS_TRACT,
                (0, false) => AUTO_CHUNK_ROWS_ORT,
                (n, _) => n,
            },
            workers: if tract {
                load.threads.unwrap_or(1).max(1)
            } else {
                1
            },
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
        // At most `chunk_rows` ASVs per run, and at least one chunk per worker.
        let rows = self
            .chunk_rows
            .min(missing.len().div_ceil(threads.max(1)))
            .max(1);
        let chunks: Vec<&[AsvKey]> = missing.chunks(rows).collect();
        parallel(&chunks, threads, |chunk| {
            let encoded = self.encode_chunk(chunk)?;
            self.cache.store(encoded, &mut lock(call));
            Ok(())
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
    /// encoded, then the sample graph runs on their embeddings, once per sample.
    ///
    /// Each sample runs on its own slots, up to its last non-empty slot
    /// ([`sample_graph_slots`]): the slots after it are key-masked in every attention and
    /// pooling, so no output at an ASV slot changes, the sample graph's cost follows each
    /// sample's own ASV count instead of the batch's longest, and a sample's outputs do
    /// not depend on the other samples of its batch (bit for bit). `count_prediction` is
    /// 0 at the cut slots (the value at an empty slot is not a prediction). The samples
    /// are spread over the workers on tract, longest first.
    pub(crate) fn run(
        &self,
        tokens: ArrayView3<'_, i64>,
        counts: Option<ArrayView3<'_, f32>>,
        ids: Option<ArrayView2<'_, i64>>,
        call: &CallEmbeddings,
    ) -> Result<NamedOutputs> {
        let (b, s, _) = tokens.dim();
        let keys: Vec<Option<AsvKey>> = tokens
            .outer_iter()
            .flat_map(|sample| sample.outer_iter().map(asv_key).collect::<Vec<_>>())
            .collect();
        self.encode(keys.iter().flatten(), call, self.workers)?;
        self.cache.count_slots(keys.iter().flatten().count());
        let slots = sample_graph_slots(tokens);
        // Longest first, so the last sample a worker takes is a short one.
        let mut order: Vec<usize> = (0..b).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(slots[i]));
        let d = self.embedding_dim;
        let per_sample = parallel(&order, self.workers.min(b), |&i| {
            let used = slots[i];
            let mut emb = Array3::<f32>::zeros((1, used, d));
            let mut mask = Array2::<f32>::zeros((1, used));
            {
                let map = lock(call);
                for (j, key) in keys[i * s..i * s + used].iter().enumerate() {
                    let Some(key) = key else { continue };
                    let e = map
                        .get(key)
                        .ok_or_else(|| RuntimeError::Run("an ASV embedding went missing".into()))?;
                    emb.slice_mut(s![0, j, ..])
                        .assign(&ArrayView1::from(&e[..]));
                    mask[[0, j]] = 1.0;
                }
            }
            let mut inputs = vec![
                Input::F32("asv_embeddings", emb.into_dyn()),
                Input::F32("asv_mask", mask.into_dyn()),
            ];
            if let Some(c) = &counts {
                let slots = c.slice(s![i..i + 1, 0..used, ..]).to_owned();
                inputs.push(Input::F32("counts", slots.into_dyn()));
            }
            if let Some(ids) = &ids {
                let row = ids.slice(s![i..i + 1, ..]).to_owned();
                inputs.push(Input::I64("categorical_ids", row.into_dyn()));
            }
            self.sample.engine.run(inputs, &self.sample.outputs)
        })?;
        // Back to batch order.
        let mut outputs: Vec<Option<NamedOutputs>> = (0..b).map(|_| None).collect();
        for (&i, o) in order.iter().zip(per_sample) {
            outputs[i] = Some(o);
        }
        let outputs: Vec<NamedOutputs> = outputs.into_iter().flatten().collect();
        self.sample
            .outputs
            .iter()
            .map(|name| {
                let pieces: Vec<ArrayD<f32>> = outputs
                    .iter()
                    .map(|o| {
                        let piece = o.get(name).cloned().ok_or_else(|| {
                            RuntimeError::Run(format!("sample_model.onnx gave no `{name}`"))
                        })?;
                        Ok(if piece.ndim() == 3 && piece.shape()[1] < s {
                            pad_slots(piece, s)
                        } else {
                            piece
                        })
                    })
                    .collect::<Result<_>>()?;
                let views: Vec<_> = pieces.iter().map(|p| p.view()).collect();
                let joined = ndarray::concatenate(Axis(0), &views)
                    .map_err(|e| RuntimeError::Run(format!("output {name}: {e}")))?;
                Ok((name.clone(), joined))
            })
            .collect()
    }
}

/// ASV slots the sample graph runs on for each sample of `tokens`
/// `[batch, n_asv, max_bp + 1]`: up to the sample's last non-empty slot, or all `n_asv`
/// when the sample is empty (an empty sample's output depends on `n_asv`, through
/// uniform pooling). One count per sample, in batch order.
pub fn sample_graph_slots(tokens: ArrayView3<'_, i64>) -> Vec<usize> {
    let n_asv = tokens.dim().1;
    tokens
        .outer_iter()
        .map(|sample| {
            sample
                .outer_iter()
                .rposition(|slot| slot.iter().any(|&t| t != 0))
                .map_or(n_asv, |j| j + 1)
        })
        .collect()
}

/// `[batch, used, k]` → `[batch, n_asv, k]`, zeros at the cut slots.
fn pad_slots(a: ArrayD<f32>, n_asv: usize) -> ArrayD<f32> {
    let mut shape = a.shape().to_vec();
    let used = shape[1];
    shape[1] = n_asv;
    let mut out = ArrayD::<f32>::zeros(shape);
    out.slice_each_axis_mut(|ax| {
        if ax.axis.index() == 1 {
            ndarray::Slice::from(0..used)
        } else {
            ndarray::Slice::from(..)
        }
    })
    .assign(&a);
    out
}
