//! An exported model: its configuration read from the ONNX metadata, its graph prepared
//! on tract or ONNX Runtime, then run on token batches from any number of threads.

use aam_config::{CheckpointConfig, ModelKind};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Ix2};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[cfg(doc)]
use crate::asv_cache::AsvCacheOptions;
use crate::asv_cache::AsvCacheStats;
use crate::engine::{Engine, NamedOutputs, Placement};
use crate::error::{Result, RuntimeError};
use crate::onnx_file::{check_declared_shapes, load_err, output_names, parse_onnx, read_file};
use crate::options::LoadOptions;
use crate::split_graphs::{
    split_graphs_present, CallEmbeddings, Part, SplitGraphs, ASV_ENCODER_FILE, SAMPLE_MODEL_FILE,
};

/// File name of the ONNX graph inside an export directory.
pub const ONNX_FILE: &str = "model.onnx";

/// The outputs of one forward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOutputs {
    /// `embeddings` f32 `[batch, D]`: pooled sample embeddings.
    pub embeddings: Array2<f32>,
    /// `target_prediction` f32 `[batch, out_dim]` (predictors; `[batch, out_dim ·
    /// num_quantiles]` for a quantile regressor): the transformed value, or class
    /// log-probabilities.
    pub target_prediction: Option<Array2<f32>>,
    /// `class_probabilities` f32 `[batch, out_dim]` (classifiers).
    pub class_probabilities: Option<Array2<f32>>,
    /// `count_prediction` f32 `[batch, n_asv, 1]` (predictors).
    pub count_prediction: Option<Array3<f32>>,
}

/// An exported aam model ready to run: the graph prepared on one backend, with the
/// configuration it was trained with. Immutable after loading and usable from many
/// threads at once (`Send + Sync`).
pub struct Model {
    graphs: Graphs,
    placement: Placement,
    config: CheckpointConfig,
    metadata: HashMap<String, String>,
    path: PathBuf,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.path)
            .field("placement", &self.placement)
            .field("asv_cache", &self.asv_cache_stats())
            .finish()
    }
}

/// The graph(s) a model runs.
enum Graphs {
    /// `model.onnx`, with its output names.
    Single(Engine, Vec<String>),
    /// `asv_encoder.onnx` + `sample_model.onnx` with the ASV-embedding cache.
    Split(SplitGraphs),
    /// The members of an ensemble (`ensemble.json`), each run and their outputs averaged.
    Ensemble(Vec<Model>),
}

impl Model {
    /// Loads `path` (a `model.onnx` written by `aam export`, or a directory holding one)
    /// on tract, on the CPU. When `asv_encoder.onnx` and `sample_model.onnx` lie beside
    /// it (every export since they exist), those run instead: each unique ASV of a call
    /// encoded once, in chunks (bounded attention memory), empty slots skipped; see
    /// [`LoadOptions::asv_cache`] and [`LoadOptions::single_graph`].
    ///
    /// Errors: the file is missing or not ONNX; it lacks the `aam_config` metadata (not
    /// exported by aam); tract cannot optimise the graph.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        Self::load_with(path, &LoadOptions::default())
    }

    /// Loads `path` as [`Model::load`] does, on the backend and execution provider of
    /// `options`. An export without the split graphs (older than them) runs `model.onnx`
    /// unless `options` ask for an ASV cache kept across calls (capacity > 0). An
    /// ensemble (a directory holding `ensemble.json`, or that file; see
    /// [`aam_config::EnsembleManifest`]) loads every member with `options` and averages
    /// their outputs on every call.
    ///
    /// Errors: as [`Model::load`]; an ensemble's manifest is not valid or its members'
    /// configurations differ; [`RuntimeError::OrtLibrary`] / [`RuntimeError::OrtVersion`]
    /// when ONNX Runtime is missing or too old; [`RuntimeError::ProviderUnavailable`]
    /// when the provider cannot run here and fallback is not allowed;
    /// [`RuntimeError::Unsupported`] for the `ort` backend in a build without it.
    pub fn load_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Model> {
        let mut path = path.as_ref().to_path_buf();
        if let Some(manifest) = crate::ensemble::ensemble_manifest(&path) {
            let members = crate::ensemble::load_members(&manifest, options)?;
            // The placement of a member that fell back to the CPU, if one did.
            let shown = members
                .iter()
                .find(|m| m.placement.fallback_reason.is_some())
                .unwrap_or(&members[0]);
            let (placement, config, metadata) = (
                shown.placement.clone(),
                shown.config.clone(),
                shown.metadata.clone(),
            );
            let path = manifest;
            return Ok(Model {
                graphs: Graphs::Ensemble(members),
                placement,
                config,
                metadata,
                path,
            });
        }
        if path.is_dir() {
            path = path.join(ONNX_FILE);
        }
        let bytes = read_file(
            &path,
            "pass a model.onnx written by `aam export` or its directory",
        )?;
        if options.single_graph && options.asv_cache.is_some() {
            return Err(RuntimeError::Unsupported(
                "the ASV-embedding cache runs the split graphs; it cannot be combined with the single graph".into(),
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let (asv_path, sample_path) = (dir.join(ASV_ENCODER_FILE), dir.join(SAMPLE_MODEL_FILE));
        // An export older than the split graphs runs model.onnx, unless an ASV cache kept
        // across calls (capacity > 0) was asked for: that one needs the split graphs.
        let per_call = options.asv_cache.is_none_or(|c| c.capacity == 0);
        if options.single_graph || (per_call && !split_graphs_present(&path)) {
            let single = LoadOptions {
                asv_cache: None,
                ..options.clone()
            };
            return Self::from_bytes_with(&bytes, &path, &single);
        }
        let fix = "`aam export` writes it beside model.onnx; re-export the model, or load it without the ASV cache";
        let asv = read_file(&asv_path, fix)?;
        let sample = read_file(&sample_path, fix)?;
        Self::from_split_bytes(&bytes, &asv, &sample, &path, options)
    }

    /// Loads a model from the bytes of a `model.onnx` on tract (the single graph: every
    /// ASV slot through the nucleotide attention at once); `origin` names it in messages.
    ///
    /// Errors: as [`Model::load`].
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<Model> {
        Self::from_bytes_with(bytes, origin, &LoadOptions::default())
    }

    /// Loads a model from the bytes of a `model.onnx` as `options` ask.
    ///
    /// Errors: as [`Model::load_with`].
    pub fn from_bytes_with(bytes: &[u8], origin: &Path, options: &LoadOptions) -> Result<Model> {
        if options.asv_cache.is_some() {
            return Err(RuntimeError::Unsupported(
                "the ASV-embedding cache needs asv_encoder.onnx and sample_model.onnx too: use Model::from_split_bytes or load the export directory".into(),
            ));
        }
        let (proto, config, metadata) = Self::read_header(bytes, origin)?;
        let (engine, placement) = Engine::prepare(bytes, &proto, origin, &config.model, options)?;
        // The graph's inputs are those its configuration promises: tract feeds inputs by
        // position, and a count embedding in one but not the other would misread them.
        let found: Vec<&str> = proto
            .graph
            .as_ref()
            .map(|g| g.input.iter().map(|i| i.name.as_str()).collect())
            .unwrap_or_default();
        let expected = graph_inputs(&config, &["tokens"]);
        if found != expected {
            return Err(RuntimeError::Load {
                path: origin.display().to_string(),
                message: format!(
                    "the graph's inputs are {found:?}, but its aam_config metadata (count_embedding: {}, abundance_pooling: {}, categorical columns: {}) gives {expected:?}; re-export the model with `aam export`",
                    config.model.count_embedding,
                    config.model.abundance_pooling,
                    config.model.head.categorical_cardinalities.len()
                ),
            });
        }
        Ok(Model {
            graphs: Graphs::Single(engine, output_names(&proto)),
            placement,
            config,
            metadata,
            path: origin.to_path_buf(),
        })
    }

    /// Loads a model for the ASV-embedding path from the bytes of its `model.onnx` (read
    /// for its metadata only), `asv_encoder.onnx` and `sample_model.onnx`, as `options`
    /// ask (`options.asv_cache`; `None`: [`AsvCacheOptions::per_call`]).
    ///
    /// Errors: as [`Model::load_with`]; the split graphs belong to another model.
    pub fn from_split_bytes(
        model_onnx: &[u8],
        asv_encoder_onnx: &[u8],
        sample_model_onnx: &[u8],
        origin: &Path,
        options: &LoadOptions,
    ) -> Result<Model> {
        let (_, config, metadata) = Self::read_header(model_onnx, origin)?;
        let config_json = &metadata["aam_config"];
        let dir = origin.parent().unwrap_or(Path::new(""));
        let (asv, placement) = Part::prepare(
            asv_encoder_onnx,
            &dir.join(ASV_ENCODER_FILE),
            &["asv_tokens"],
            config_json,
            &config.model,
            options,
        )?;
        let (sample, _) = Part::prepare(
            sample_model_onnx,
            &dir.join(SAMPLE_MODEL_FILE),
            &graph_inputs(&config, &["asv_embeddings", "asv_mask"]),
            config_json,
            &config.model,
            options,
        )?;
        let split = SplitGraphs::new(asv, sample, &config.model, options);
        Ok(Model {
            graphs: Graphs::Split(split),
            placement,
            config,
            metadata,
            path: origin.to_path_buf(),
        })
    }

    /// Parses `model.onnx` bytes and reads aam's metadata.
    fn read_header(
        bytes: &[u8],
        path: &Path,
    ) -> Result<(
        tract_onnx::pb::ModelProto,
        CheckpointConfig,
        HashMap<String, String>,
    )> {
        let proto = parse_onnx(bytes, path)?;
        let metadata: HashMap<String, String> = proto
            .metadata_props
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect();
        let config_json = metadata.get("aam_config").ok_or_else(|| {
            load_err(
                path,
                "the ONNX model has no `aam_config` metadata; it was not written by `aam export` (re-export it from its checkpoint)",
            )
        })?;
        let config = CheckpointConfig::from_json(config_json, &path.display().to_string())
            .map_err(|e| load_err(path, e))?;
        check_declared_shapes(&proto, &config.model, path)?;
        Ok((proto, config, metadata))
    }

    /// Counts of the ASV-embedding cache (`None` when the model runs `model.onnx`).
    /// (an ensemble: its members' counts summed, when every member runs the split graphs).
    pub fn asv_cache_stats(&self) -> Option<AsvCacheStats> {
        match &self.graphs {
            Graphs::Split(s) => Some(s.stats()),
            Graphs::Single(..) => None,
            Graphs::Ensemble(members) => {
                members.iter().try_fold(AsvCacheStats::default(), |sum, m| {
                    let s = m.asv_cache_stats()?;
                    Some(AsvCacheStats {
                        asv_slots: sum.asv_slots + s.asv_slots,
                        hits: sum.hits + s.hits,
                        misses: sum.misses + s.misses,
                        entries: sum.entries + s.entries,
                        capacity: sum.capacity + s.capacity,
                    })
                })
            }
        }
    }

    /// The split graphs, when the model runs them.
    pub(crate) fn split(&self) -> Option<&SplitGraphs> {
        match &self.graphs {
            Graphs::Split(s) => Some(s),
            Graphs::Single(..) | Graphs::Ensemble(_) => None,
        }
    }

    /// The models that run on every call: an ensemble's members, or this model alone.
    pub(crate) fn members(&self) -> &[Model] {
        match &self.graphs {
            Graphs::Ensemble(members) => members,
            Graphs::Single(..) | Graphs::Split(_) => std::slice::from_ref(self),
        }
    }

    /// How many models run on every call: the members of an ensemble, 1 otherwise.
    pub fn ensemble_size(&self) -> usize {
        match &self.graphs {
            Graphs::Ensemble(members) => members.len(),
            Graphs::Single(..) | Graphs::Split(_) => 1,
        }
    }

    /// The configuration the model was trained with (architecture, input preparation,
    /// target).
    pub fn config(&self) -> &CheckpointConfig {
        &self.config
    }

    /// The ONNX `metadata_props` (`aam_config`, `class_labels`, `target_mean`, …).
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// The file the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the model runs: backend, the execution provider actually used, and why the
    /// requested one was not (after an allowed fallback).
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Whether the model is a predictor (has a target head) or a pretrained encoder.
    pub fn kind(&self) -> ModelKind {
        self.config.kind
    }

    /// Whether the model reads each ASV slot's read count (it was trained with a count
    /// embedding or abundance-weighted pooling): its forward pass then needs
    /// [`Model::run_with_counts`].
    pub fn uses_counts(&self) -> bool {
        self.config.model.uses_counts()
    }

    /// Runs one forward pass on `tokens` int64 `[batch, n_asv, max_bp + 1]` (0 = padding,
    /// `1 ≤ n_asv ≤ token_limit`) of a model that reads no counts.
    ///
    /// Errors: the model reads counts ([`Model::uses_counts`]: use
    /// [`Model::run_with_counts`]); another token width, an empty batch, too many ASV
    /// slots, a token outside the vocabulary; a failure inside the graph.
    pub fn run(&self, tokens: ArrayView3<'_, i64>) -> Result<RawOutputs> {
        self.run_with(tokens, None, None, &[])
    }

    /// [`Model::run`] with each slot's read count, f32 `[batch, n_asv, 1]` (≥ 0, finite;
    /// 0 in empty slots). A model that reads no counts ignores them.
    ///
    /// Errors: as [`Model::run`], and counts of another shape, negative or not finite.
    pub fn run_with_counts(
        &self,
        tokens: ArrayView3<'_, i64>,
        counts: ArrayView3<'_, f32>,
    ) -> Result<RawOutputs> {
        self.run_with(tokens, Some(counts), None, &[])
    }

    /// [`Model::run`] of a model conditioned on metadata categories: `counts` as
    /// [`Model::run_with_counts`] (`None` for a model that reads none) and each sample's
    /// category indices int64 `[batch, n_columns]` (see
    /// [`crate::checked_categorical_ids`]).
    ///
    /// Errors: as [`Model::run_with_counts`], and ids of another shape or outside their
    /// column's categories.
    pub fn run_with_categories(
        &self,
        tokens: ArrayView3<'_, i64>,
        counts: Option<ArrayView3<'_, f32>>,
        categorical_ids: ArrayView2<'_, i64>,
    ) -> Result<RawOutputs> {
        self.run_with(tokens, counts, Some(categorical_ids), &[])
    }

    /// [`Model::run_with_categories`] with the ASV embeddings of the current call in
    /// `calls` (split graphs): one per model of [`Model::members`], in order (empty:
    /// each encodes the ASVs of this batch itself); `counts` may be `None` only for a
    /// model that reads no counts, `ids` only for a model not conditioned on categories.
    pub(crate) fn run_with(
        &self,
        tokens: ArrayView3<'_, i64>,
        counts: Option<ArrayView3<'_, f32>>,
        ids: Option<ArrayView2<'_, i64>>,
        calls: &[CallEmbeddings],
    ) -> Result<RawOutputs> {
        let m = &self.config.model;
        let (b, s, l) = tokens.dim();
        if b == 0 || s == 0 || s > m.token_limit || l != m.max_bp + 1 {
            return Err(RuntimeError::Input(format!(
                "tokens have shape [{b}, {s}, {l}]; this model takes [batch ≥ 1, 1 ≤ n_asv ≤ {}, {}]",
                m.token_limit,
                m.max_bp + 1
            )));
        }
        if let Some(v) = tokens
            .iter()
            .find(|&&v| v < 0 || v as usize >= m.vocab_size)
        {
            return Err(RuntimeError::Input(format!(
                "token {v} is outside the vocabulary 0..{}",
                m.vocab_size
            )));
        }
        let counts = crate::counts::checked_counts(m.uses_counts(), counts, b, s)?;
        let ids = crate::categories::checked_categorical_ids(m, ids, b)?;
        let by_name = match &self.graphs {
            Graphs::Single(engine, outputs) => engine.run_tokens(
                tokens.to_owned(),
                counts.map(|c| c.to_owned()),
                ids.map(|i| i.to_owned()),
                outputs,
            )?,
            Graphs::Split(split) => match calls.first() {
                Some(call) => split.run(tokens, counts, ids, call)?,
                None => split.run(tokens, counts, ids, &CallEmbeddings::default())?,
            },
            Graphs::Ensemble(members) => {
                // Each member reads its own call's ASV embeddings (its own graphs).
                let each = members
                    .iter()
                    .enumerate()
                    .map(|(k, member)| {
                        let call = calls.get(k..=k).unwrap_or(&[]);
                        member.run_with(tokens, counts, ids, call)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let raw = crate::ensemble::mean_outputs(each)?;
                check_outputs(&raw, b, s, m)?;
                return Ok(raw);
            }
        };
        let raw = RawOutputs {
            embeddings: output::<Ix2>(&by_name, "embeddings")?
                .ok_or_else(|| RuntimeError::Run("the graph has no `embeddings` output".into()))?,
            target_prediction: output(&by_name, "target_prediction")?,
            class_probabilities: output(&by_name, "class_probabilities")?,
            count_prediction: output(&by_name, "count_prediction")?,
        };
        check_outputs(&raw, b, s, m)?;
        Ok(raw)
    }
}

/// The inputs, in order, of a graph whose own inputs are `first`: then `counts` for a
/// model that reads counts and `categorical_ids` for a predictor conditioned on
/// categories (tract feeds inputs by position).
fn graph_inputs<'a>(config: &CheckpointConfig, first: &[&'a str]) -> Vec<&'a str> {
    let mut inputs = first.to_vec();
    if config.model.uses_counts() {
        inputs.push("counts");
    }
    if !config.conditioning_columns().is_empty() {
        inputs.push("categorical_ids");
    }
    inputs
}

/// The outputs have the shapes that the model's configuration promises (callers, the C
/// ABI among them, index them by it) and hold no NaN or infinity (a graph edited by hand,
/// or weights that overflow, must not turn into predictions).
///
/// Errors: [`RuntimeError::Run`] naming the output, its shape or the first bad sample.
fn check_outputs(
    raw: &RawOutputs,
    batch: usize,
    n_asv: usize,
    m: &aam_config::ModelConfig,
) -> Result<()> {
    let d = m.embedding_dim;
    let shapes: [(&str, Option<&[usize]>, Vec<usize>); 4] = [
        ("embeddings", Some(raw.embeddings.shape()), vec![batch, d]),
        (
            "target_prediction",
            raw.target_prediction.as_ref().map(|a| a.shape()),
            vec![batch, m.head.output_width(m.out_dim)],
        ),
        (
            "class_probabilities",
            raw.class_probabilities.as_ref().map(|a| a.shape()),
            vec![batch, m.out_dim],
        ),
        (
            "count_prediction",
            raw.count_prediction.as_ref().map(|a| a.shape()),
            vec![batch, n_asv, 1],
        ),
    ];
    for (name, found, expected) in shapes {
        if let Some(found) = found.filter(|f| *f != expected.as_slice()) {
            return Err(RuntimeError::Run(format!(
                "output {name} has shape {found:?}, but the model's configuration gives {expected:?}; the ONNX graph does not match its aam_config metadata (re-export it with `aam export`)"
            )));
        }
    }
    let rows = |a: ndarray::ArrayViewD<'_, f32>| {
        a.outer_iter()
            .position(|row| row.iter().any(|v| !v.is_finite()))
    };
    let outputs = [
        ("embeddings", Some(raw.embeddings.view().into_dyn())),
        (
            "target_prediction",
            raw.target_prediction.as_ref().map(|a| a.view().into_dyn()),
        ),
        (
            "class_probabilities",
            raw.class_probabilities
                .as_ref()
                .map(|a| a.view().into_dyn()),
        ),
        (
            "count_prediction",
            raw.count_prediction.as_ref().map(|a| a.view().into_dyn()),
        ),
    ];
    for (name, view) in outputs {
        if let Some(row) = view.and_then(rows) {
            return Err(RuntimeError::Run(format!(
                "output {name} of batch row {row} is not finite (NaN or infinity); the model's weights are corrupt or overflow on this input"
            )));
        }
    }
    Ok(())
}

/// Output `name` as an f32 array of dimensionality `D`, if the graph has it.
fn output<D: ndarray::Dimension>(
    by_name: &NamedOutputs,
    name: &str,
) -> Result<Option<ndarray::Array<f32, D>>> {
    by_name
        .get(name)
        .map(|a| {
            a.clone()
                .into_dimensionality::<D>()
                .map_err(|e| RuntimeError::Run(format!("output {name}: {e}")))
        })
        .transpose()
}
