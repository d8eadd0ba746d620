//! `aam predict`: predictions for every sample of a feature table with an exported model.

use std::io::Write;
use std::path::{Path, PathBuf};

use aam_config::CheckpointConfig;
use aam_data::files::write_atomic;
use aam_model::WeightMap;
use aam_runtime::{
    predict_with, AsvCacheOptions, Backend as RuntimeBackend, ExecutionProvider, LoadOptions,
    Model, PredictOptions, Predictions, TensorRtOptions,
};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::burn_runner;

/// Where the built-in default model comes from (repository path).
const SHIPPED_MODEL: &str = "models/circadian-exposure";
/// The shipped model's ONNX graph, built into the binary.
static SHIPPED_ONNX: &[u8] = include_bytes!("../../../../models/circadian-exposure/model.onnx");
/// The shipped model's ASV encoder graph (the default path), built into the binary.
static SHIPPED_ASV_ENCODER: &[u8] =
    include_bytes!("../../../../models/circadian-exposure/asv_encoder.onnx");
/// The shipped model's sample graph (the default path), built into the binary.
static SHIPPED_SAMPLE_MODEL: &[u8] =
    include_bytes!("../../../../models/circadian-exposure/sample_model.onnx");
/// The shipped model's weights, built into the binary.
static SHIPPED_SAFETENSORS: &[u8] =
    include_bytes!("../../../../models/circadian-exposure/model.safetensors");

/// Which engine runs the model: one of the runtime's ONNX backends (their names and
/// help from [`aam_runtime::Backend`]) or the Burn model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The ONNX graph (`model.onnx`) on an `aam-runtime` backend.
    Onnx(RuntimeBackend),
    /// The weights (`model.safetensors`) loaded back into the Burn model.
    Burn,
}

impl Default for Backend {
    fn default() -> Self {
        Backend::Onnx(RuntimeBackend::default())
    }
}

impl ValueEnum for Backend {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            Backend::Onnx(RuntimeBackend::Tract),
            Backend::Onnx(RuntimeBackend::Ort),
            Backend::Burn,
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        match self {
            Backend::Onnx(b) => b.to_possible_value(),
            Backend::Burn => Some(
                clap::builder::PossibleValue::new("burn")
                    .help("The weights (model.safetensors) in the Burn model"),
            ),
        }
    }
}

/// Arguments of `aam predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Exported model: a directory from `aam export`, or its model.onnx (tract) or
    /// model.safetensors (burn). Default: the shipped model `models/circadian-exposure`
    /// (built into the binary).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Feature table (BIOM 2.1 HDF5, BIOM 1.0 JSON, TSV or a QIIME 2
    /// FeatureTable[Frequency] .qza); observation IDs are ASV sequences, or feature IDs
    /// that --sequences maps to them.
    #[arg(long)]
    pub table: PathBuf,
    /// Sequences of the table's feature IDs when those are not sequences (QIIME 2's
    /// DADA2 hashes): rep-seqs.qza (FeatureData[Sequence]) or a FASTA file.
    #[arg(long)]
    pub sequences: Option<PathBuf>,
    /// Metadata TSV giving each sample's values of the columns a model conditioned on
    /// metadata categories reads (`aam train --categorical-columns`); a missing value, or
    /// one the training samples never had, is the unknown category (with a warning).
    #[arg(long)]
    pub metadata: Option<PathBuf>,
    /// Predictions TSV to write; printed to standard output when absent.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Also write the sample embeddings (`embedding_0…`) to this TSV.
    #[arg(long)]
    pub embeddings: Option<PathBuf>,
    /// Replace existing --output / --embeddings files.
    #[arg(long)]
    pub overwrite: bool,
    /// Samples per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Worker threads (each runs whole batches).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Engine that runs the model.
    #[arg(long, value_enum, default_value_t = Backend::default())]
    pub backend: Backend,
    /// Which ASVs beyond the token limit the model sees (default: the model's own
    /// token-limit policy, as in training).
    #[arg(long = "asv-sampling", value_enum, value_name = "POLICY")]
    pub asv_sampling: Option<aam_data::TokenLimitPolicy>,
    /// Forward passes per sample, each on another random subset of the ASVs beyond the
    /// token limit (needs the random policy: --asv-sampling random): the prediction is
    /// their mean, `prediction_std` their standard deviation (regression).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub prediction_passes: u64,
    /// Read a BIOM 2.1 HDF5 table --chunk-samples samples at a time instead of whole, so
    /// that a table larger than memory can be predicted (tract and ort backends; with the
    /// random token-limit policy, ASV subsets then depend on the chunking).
    #[arg(long)]
    pub streaming: bool,
    /// Samples per chunk with --streaming.
    #[arg(long, default_value_t = 10_000, requires = "streaming", value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_samples: u64,
    #[command(flatten)]
    pub placement: PlacementArgs,
}

/// Where the ONNX graph runs (`--backend ort`).
#[derive(Args, Debug, Clone)]
pub struct PlacementArgs {
    /// Execution provider: cpu, cuda or tensorrt (cuda and tensorrt need --backend ort and
    /// the onnxruntime-gpu library).
    #[arg(long, default_value = "cpu")]
    pub provider: ExecutionProvider,
    /// Run on the CPU, with a warning, when the provider is not available.
    #[arg(long)]
    pub allow_fallback: bool,
    /// ONNX Runtime library (libonnxruntime.so.1.31.1 from the onnxruntime or
    /// onnxruntime-gpu wheel); default: $ORT_DYLIB_PATH.
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Threads of one forward pass: ONNX Runtime's intra-op threads; on tract, the
    /// workers for ASV chunks and the samples of the sample graph (default: one per
    /// core on ONNX Runtime, 1 on tract).
    #[arg(long)]
    pub ort_threads: Option<usize>,
    /// TensorRT: directory caching built engines between runs.
    #[arg(long, value_name = "DIR")]
    pub trt_engine_cache: Option<PathBuf>,
    /// TensorRT: build FP16 engines.
    #[arg(long)]
    pub trt_fp16: bool,
    /// TensorRT: largest batch of the optimization profile.
    #[arg(long, default_value_t = 64)]
    pub trt_max_batch: usize,
    /// Keep ASV embeddings across calls in an LRU cache (and report its counts). Without
    /// it the export's split graphs (asv_encoder.onnx + sample_model.onnx) still encode
    /// each unique ASV of the table once.
    #[arg(long)]
    pub asv_cache: bool,
    /// ASV embeddings kept by --asv-cache (least recently used evicted); 0: only within
    /// one call.
    #[arg(long, default_value_t = 100_000)]
    pub asv_cache_capacity: usize,
    /// Most ASVs per ASV-encoder run (bounds the nucleotide attention's memory to
    /// chunk · heads · (max bp + 1)² · 4 bytes); 0: 4 on tract, 16 on ONNX Runtime (the
    /// fastest measured).
    #[arg(long, default_value_t = 0)]
    pub asv_chunk: usize,
    /// Run the single model.onnx instead of the split graphs: every ASV slot, empty or
    /// repeated, through the nucleotide attention at once (slower, memory grows with
    /// batch · n_asv; for comparison).
    #[arg(long, conflicts_with = "asv_cache")]
    pub single_graph: bool,
}

impl PlacementArgs {
    /// The runtime's load options for `backend`.
    pub fn load_options(&self, backend: RuntimeBackend) -> Result<LoadOptions> {
        if self.ort_threads == Some(0) || self.trt_max_batch == 0 {
            bail!("--ort-threads and --trt-max-batch must be at least 1");
        }
        Ok(LoadOptions {
            backend,
            provider: self.provider,
            allow_fallback: self.allow_fallback,
            threads: self.ort_threads,
            ort_library: self.ort_lib.clone(),
            tensorrt: TensorRtOptions {
                engine_cache: self.trt_engine_cache.clone(),
                fp16: self.trt_fp16,
                max_batch: self.trt_max_batch,
                opt_batch: 16.min(self.trt_max_batch),
            },
            asv_cache: (!self.single_graph).then_some(AsvCacheOptions {
                capacity: if self.asv_cache {
                    self.asv_cache_capacity
                } else {
                    0
                },
                chunk_rows: self.asv_chunk,
            }),
            single_graph: self.single_graph,
        })
    }
}

/// Loads an exported ONNX model (`None`: the shipped one) and reports where it runs.
pub fn load_onnx(
    model: Option<&Path>,
    path: &Path,
    backend: RuntimeBackend,
    placement: &PlacementArgs,
) -> Result<Model> {
    let options = placement.load_options(backend)?;
    let model = match model {
        // An export without the split graphs (older than them) runs model.onnx.
        Some(_) => Model::load_with(path, &options)?,
        None if options.asv_cache.is_some() => Model::from_split_bytes(
            SHIPPED_ONNX,
            SHIPPED_ASV_ENCODER,
            SHIPPED_SAMPLE_MODEL,
            path,
            &options,
        )?,
        None => Model::from_bytes_with(SHIPPED_ONNX, path, &options)?,
    };
    let p = model.placement();
    if let Some(reason) = &p.fallback_reason {
        eprintln!(
            "warning: execution provider `{}` is not available, running on the CPU: {reason}",
            placement.provider
        );
    }
    eprintln!(
        "model {} ({} backend, execution provider {})",
        path.display(),
        p.backend,
        p.provider
    );
    match model.asv_cache_stats() {
        _ if model.ensemble_size() > 1 => eprintln!(
            "ensemble of {} members, their outputs averaged",
            model.ensemble_size()
        ),
        Some(_) => eprintln!(
            "graphs: {} + {} (each unique ASV encoded once, in chunks)",
            aam_runtime::ASV_ENCODER_FILE,
            aam_runtime::SAMPLE_MODEL_FILE,
        ),
        None => eprintln!("graph: {} (every ASV slot encoded)", aam_runtime::ONNX_FILE),
    }
    Ok(model)
}

/// The file of `model` (an export directory or one of its files) for `backend`.
fn model_file(model: &Path, backend: Backend) -> Result<PathBuf> {
    Ok(aam_runtime::export_file(model, file_name(backend))?)
}

/// The file of an export directory that `backend` reads.
fn file_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Onnx(_) => aam_runtime::ONNX_FILE,
        Backend::Burn => aam_runtime::SAFETENSORS_FILE,
    }
}

fn check_writable(path: &Option<PathBuf>, overwrite: bool) -> Result<()> {
    if let Some(p) = path {
        if p.exists() && !overwrite {
            bail!(
                "{} already exists; pass --overwrite to replace it or choose another file",
                p.display()
            );
        }
    }
    Ok(())
}

/// Runs `aam predict`.
pub fn run(args: &PredictArgs) -> Result<()> {
    check_writable(&args.output, args.overwrite)?;
    check_writable(&args.embeddings, args.overwrite)?;
    let preds = predictions(args)?;
    for w in &preds.warnings {
        eprintln!("warning: {w}");
    }
    let tsv = preds.to_tsv();
    match &args.output {
        Some(p) => {
            write_atomic(p, &tsv)?;
            eprintln!(
                "wrote {} predictions to {}",
                preds.samples.len(),
                p.display()
            );
        }
        None => std::io::stdout()
            .write_all(&tsv)
            .context("cannot write to standard output")?,
    }
    if let Some(p) = &args.embeddings {
        write_atomic(p, &preds.embeddings_tsv())?;
        eprintln!("wrote embeddings to {}", p.display());
    }
    Ok(())
}

/// The predictions of `args.model` for every sample of `args.table` (warnings inside,
/// not printed); `args.output`/`embeddings`/`overwrite` are not used.
pub fn predictions(args: &PredictArgs) -> Result<Predictions> {
    if args.batch_size == 0 || args.threads == 0 {
        bail!("--batch-size and --threads must be at least 1");
    }
    if args.streaming {
        if args.backend == Backend::Burn {
            bail!("--streaming runs the ONNX graphs: use --backend tract or ort");
        }
        if args.sequences.is_some() {
            bail!(
                "{}: --streaming reads a BIOM 2.1 HDF5 table whose observation IDs are the sequences, so it does not take --sequences; write the table with sequence IDs once (`aam inspect --table T --sequences S --write-table table.biom`) or drop --streaming",
                args.table.display()
            );
        }
        if aam_data::biom::detect_format(&read_head(&args.table)?) != aam_data::BiomFormat::Hdf5 {
            bail!(
                "{}: --streaming reads BIOM 2.1 HDF5 tables; convert it with `biom convert --to-hdf5` or drop --streaming",
                args.table.display()
            );
        }
    }
    let table = if args.streaming {
        None
    } else {
        let (table, format) =
            aam_data::load_table_with_sequences(&args.table, args.sequences.as_deref())?;
        eprintln!(
            "table {} [{format}]: {} samples × {} ASVs",
            args.table.display(),
            table.n_samples(),
            table.n_asv()
        );
        Some(table)
    };
    let options = PredictOptions {
        batch_size: args.batch_size,
        threads: args.threads,
        passes: args.prediction_passes as usize,
        token_limit_policy: args.asv_sampling,
    };
    let path = match &args.model {
        Some(m) => model_file(m, args.backend)?,
        None => Path::new(SHIPPED_MODEL).join(file_name(args.backend)),
    };
    let origin = args.table.display().to_string();
    let categories = match &args.metadata {
        Some(m) => Some(aam_runtime::SampleCategories::from_metadata(
            &aam_data::Metadata::load(m)?,
        )),
        None => None,
    };
    let categories = categories.as_ref();
    let preds: Predictions = match args.backend {
        Backend::Onnx(backend) => {
            let model = load_onnx(args.model.as_deref(), &path, backend, &args.placement)?;
            let preds = match table {
                Some(table) => {
                    model.predict_table_with_categories(table, &origin, options, categories)?
                }
                None => predict_streaming(&model, args, &origin, options, categories)?,
            };
            if let (true, Some(s)) = (args.placement.asv_cache, model.asv_cache_stats()) {
                eprintln!(
                    "ASV cache: {} ASV slots, {} unique ASVs encoded, {} taken from the cache ({} entries of {})",
                    s.asv_slots, s.misses, s.hits, s.entries, s.capacity
                );
            }
            preds
        }
        Backend::Burn => {
            if args.placement.provider != ExecutionProvider::Cpu {
                bail!(
                    "--backend burn runs on the CPU here; use --backend ort for --provider {}",
                    args.placement.provider
                );
            }
            eprintln!("model {} (burn backend)", path.display());
            let (config, model) = match &args.model {
                Some(_) => burn_runner::load(&path)?,
                None => burn_runner::from_bytes(SHIPPED_SAFETENSORS, &path)?,
            };
            // One thread: the Burn CPU backend is used single-threaded (deterministic).
            let options = PredictOptions {
                threads: 1,
                ..options
            };
            let table = table.context("--streaming is refused with --backend burn")?;
            predict_with(&config, table, &origin, options, categories, &|t, c, i| {
                model.run(t, Some(c), i)
            })?
        }
    };
    Ok(preds)
}

/// The ONNX model of `model` (an export directory or file; `None`: the shipped model)
/// on `backend` (tract or ort).
pub fn load_onnx_model(
    model: Option<&Path>,
    backend: RuntimeBackend,
    placement: &PlacementArgs,
) -> Result<Model> {
    let path = match model {
        Some(m) => model_file(m, Backend::Onnx(backend))?,
        None => Path::new(SHIPPED_MODEL).join(aam_runtime::ONNX_FILE),
    };
    load_onnx(model, &path, backend, placement)
}

/// The configuration and weights of `model.safetensors` of `model` (an export
/// directory or file; `None`: the shipped model), with the file's path for messages.
pub fn load_safetensors(model: Option<&Path>) -> Result<(PathBuf, CheckpointConfig, WeightMap)> {
    let path = match model {
        Some(m) => model_file(m, Backend::Burn)?,
        None => Path::new(SHIPPED_MODEL).join(file_name(Backend::Burn)),
    };
    let (config, weights) = match model {
        Some(_) => {
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            burn_runner::config_and_weights(&bytes, &path)?
        }
        None => burn_runner::config_and_weights(SHIPPED_SAFETENSORS, &path)?,
    };
    Ok((path, config, weights))
}

/// The first bytes of `path`, enough to detect its format.
fn read_head(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(16);
    std::fs::File::open(path)
        .and_then(|f| f.take(16).read_to_end(&mut head))
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(head)
}

/// Predicts a BIOM 2.1 HDF5 table `--chunk-samples` samples at a time: the predictions
/// of every chunk, in table order, with every chunk's warnings.
fn predict_streaming(
    model: &Model,
    args: &PredictArgs,
    origin: &str,
    options: PredictOptions,
    categories: Option<&aam_runtime::SampleCategories>,
) -> Result<Predictions> {
    let chunks = aam_data::BiomSampleChunks::open(&args.table, args.chunk_samples as usize)?;
    eprintln!(
        "table {} [BIOM 2.1 (HDF5), streaming {} samples at a time]: {} samples × {} ASVs",
        args.table.display(),
        args.chunk_samples,
        chunks.n_samples(),
        chunks.observation_ids.len()
    );
    Ok(model.predict_table_chunks(chunks, origin, options, categories)?)
}
