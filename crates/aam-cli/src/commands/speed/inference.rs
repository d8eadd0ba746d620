//! `aam bench` (without `--train`): inference throughput, latency and peak memory of each backend, with and
//! without the ASV-embedding cache, over a grid of ASV counts and batch sizes; achieved
//! GFLOP/s and the share of a given peak (the roofline) from the FLOP count of the
//! configuration (`aam_runtime::flops`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use aam_config::{CheckpointConfig, DataSettings, ModelConfig, ModelKind, FORMAT_VERSION};
use aam_data::TokenLimitPolicy;
use aam_export::GraphPart;
use aam_model::{CpuBackend, SequencePredictor, WeightSink};
use aam_runtime::{
    flops, AsvCacheOptions, Backend as RuntimeBackend, LoadOptions, Model, RawOutputs, RuntimeError,
};
use anyhow::{bail, Context, Result};
use ndarray::Array3;

use super::bench_table::BenchTable;
use super::reference::{reference_json, reference_latencies, Scratch};
use super::BenchArgs;
use crate::commands::burn_runner;

/// The model under test, as the bytes each backend loads.
struct Subject {
    config: CheckpointConfig,
    onnx: Vec<u8>,
    asv_encoder: Vec<u8>,
    sample_model: Vec<u8>,
    safetensors: Vec<u8>,
    origin: PathBuf,
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let p = dir.join(name);
    std::fs::read(&p).with_context(|| {
        format!(
            "cannot read {}; pass an export directory from `aam export`",
            p.display()
        )
    })
}

fn subject(model: Option<&Path>) -> Result<Subject> {
    if let Some(dir) = model {
        if aam_runtime::is_ensemble(dir) {
            anyhow::bail!("{}: an ensemble of exports; `aam bench` measures one model: pass one member's directory (e.g. {})", dir.display(), dir.join("member-1").display());
        }
        let onnx = read(dir, "model.onnx")?;
        let probe = Model::from_bytes(&onnx, &dir.join("model.onnx"))?;
        return Ok(Subject {
            config: probe.config().clone(),
            asv_encoder: read(dir, GraphPart::AsvEncoder.file_name())?,
            sample_model: read(dir, GraphPart::SampleModel.file_name())?,
            safetensors: read(dir, "model.safetensors")?,
            onnx,
            origin: dir.join("model.onnx"),
        });
    }
    // The reference default architecture with random weights (a regressor).
    let model = ModelConfig {
        dropout: 0.0,
        ..ModelConfig::default()
    };
    let config = CheckpointConfig {
        format_version: FORMAT_VERSION,
        kind: ModelKind::Predictor,
        data: DataSettings {
            max_bp: model.max_bp,
            token_limit: model.token_limit,
            token_limit_policy: TokenLimitPolicy::Abundance,
            rarefy_depth: None,
        },
        model,
        target: None,
    };
    let net = SequencePredictor::<CpuBackend>::new(&config.model, &Default::default());
    let mut sink = WeightSink::default();
    net.save(&mut sink);
    let w = sink.into_map();
    let part = |p| aam_export::onnx_part_bytes(&config, &w, aam_export::DEFAULT_OPSET, p);
    Ok(Subject {
        onnx: part(GraphPart::Full)?,
        asv_encoder: part(GraphPart::AsvEncoder)?,
        sample_model: part(GraphPart::SampleModel)?,
        safetensors: aam_export::safetensors_bytes(&config, &w)?,
        config,
        origin: PathBuf::from("<reference default architecture, random weights>/model.onnx"),
    })
}

/// Writes the model under test as an export directory `dir`, which must not exist yet
/// (nothing the user wrote is overwritten).
fn save_subject(subject: &Subject, dir: &Path) -> Result<()> {
    std::fs::create_dir(dir).with_context(|| {
        format!(
            "cannot create {} for --save-model (it must not exist yet); pick a new directory",
            dir.display()
        )
    })?;
    let files: [(&str, &[u8]); 4] = [
        ("model.onnx", &subject.onnx),
        (GraphPart::AsvEncoder.file_name(), &subject.asv_encoder),
        (GraphPart::SampleModel.file_name(), &subject.sample_model),
        ("model.safetensors", &subject.safetensors),
    ];
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!("model under test written to {}", dir.display());
    Ok(())
}

/// How ASV embeddings are computed in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CacheMode {
    /// `model.onnx`: every ASV slot, empty or repeated, through the nucleotide attention.
    Single,
    /// Split graphs without the LRU cache: each unique ASV of a pass encoded once (in
    /// chunks, empty slots skipped), nothing kept across passes.
    Off,
    /// Split graphs with the LRU cache, measured after a warm-up pass.
    Warm,
    /// The reference PyTorch AAM (no cache).
    Reference,
}

impl CacheMode {
    fn name(self) -> &'static str {
        match self {
            CacheMode::Single => "single-graph",
            CacheMode::Off => "off",
            CacheMode::Warm => "warm",
            CacheMode::Reference => "-",
        }
    }
}

struct Row {
    backend: String,
    cache: CacheMode,
    n_asv: usize,
    batch: usize,
    latencies_ms: Vec<f64>,
    peak_rss_mib: Option<f64>,
    gflop_per_pass: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

type Runner = Box<dyn Fn(ndarray::ArrayView3<'_, i64>) -> Result<RawOutputs, RuntimeError>>;

/// Runs `aam bench` without `--train` (arguments checked by [`super::run`]).
pub(super) fn run(args: &BenchArgs) -> Result<()> {
    let batches = if args.batch.is_empty() {
        vec![1, 8, 32]
    } else {
        args.batch.clone()
    };
    let peak_gflops = match args.peak_gflops {
        Some(p) => p,
        None => {
            let g = aam_train::step_bench::gemm_gflops(2048, 5);
            eprintln!("GEMM (f32, 2048², Flex backend's gemm, all cores): {g:.1} GFLOP/s, the share-of-peak roofline");
            g
        }
    };
    let modes = args
        .modes
        .iter()
        .map(|m| match m.as_str() {
            "single-graph" => Ok(CacheMode::Single),
            "off" => Ok(CacheMode::Off),
            "warm" => Ok(CacheMode::Warm),
            other => bail!("unknown mode `{other}`; use single-graph, off or warm"),
        })
        .collect::<Result<Vec<_>>>()?;
    let subject = subject(args.model.as_deref())?;
    if let Some(dir) = &args.save_model {
        save_subject(&subject, dir)?;
    }
    let c = &subject.config.model;
    if let Some(&n) = args.n_asv.iter().find(|&&n| n == 0 || n > c.token_limit) {
        bail!(
            "--n-asv {n} is outside 1..={} (the model's token limit)",
            c.token_limit
        );
    }
    eprintln!(
        "model {}: D {}, max bp {}, token limit {}; {:.1} MFLOP per ASV, peak {} GFLOP/s",
        subject.origin.display(),
        c.embedding_dim,
        c.max_bp,
        c.token_limit,
        flops::asv_flops(c) / 1e6,
        peak_gflops
    );
    let table = BenchTable::load(&subject.config, &args.table, args.sequences.as_deref())?;
    let mut rows = Vec::new();
    let mut reference_embeddings = Vec::new();
    if let Some(python) = &args.reference_python {
        let m = &subject.config.model;
        if m.uses_counts() || m.kmer_size > 0 {
            bail!(
                "this model reads read counts (count embedding or abundance-weighted pooling) or has a k-mer embedding, which the PyTorch reference runner does not feed or have; drop --reference-python, or benchmark a model trained with --count-embedding none --abundance-pooling false --kmer-size 0"
            );
        }
        let scratch = Scratch::new()?;
        let weights = scratch.0.join("model.safetensors");
        std::fs::write(&weights, &subject.safetensors)?;
        for &n_asv in &args.n_asv {
            for &batch in &batches {
                let tokens = table.tokens(c.max_bp + 1, n_asv, batch);
                let (row, embeddings) = reference_row(
                    python,
                    args,
                    &scratch,
                    &weights,
                    &tokens,
                    c,
                    subject.config.kind,
                )?;
                eprintln!(
                    "{}",
                    format_row(&row, peak_gflops, None).replace('\t', "  ")
                );
                rows.push(row);
                reference_embeddings.push(((n_asv, batch), embeddings));
            }
        }
    }
    for backend in &args.backends {
        for &cache in &modes {
            if backend == "burn" && cache != CacheMode::Single {
                continue; // Burn runs the whole model; the cache lives in the ONNX runtime.
            }
            let (runner, model) = load(&subject, backend, cache, args)?;
            for &n_asv in &args.n_asv {
                for &batch in &batches {
                    let tokens = table.tokens(c.max_bp + 1, n_asv, batch);
                    let slots = tokens
                        .outer_iter()
                        .map(|s| s.outer_iter().filter(|r| r.iter().any(|&t| t != 0)).count())
                        .sum::<usize>();
                    // Warm-up (fills the cache in the warm mode), checked against the
                    // reference on the same weights and tokens.
                    let first = runner(tokens.view())?;
                    if let Some((_, want)) = reference_embeddings
                        .iter()
                        .find(|(k, _)| *k == (n_asv, batch))
                    {
                        let diff = first
                            .embeddings
                            .iter()
                            .zip(want.iter())
                            .map(|(a, b)| (a - b).abs())
                            .fold(0.0f32, f32::max);
                        if !(diff <= 1e-3) {
                            bail!("{backend} ({}) differs from the PyTorch reference by {diff} on the same weights and tokens", cache.name());
                        }
                    }
                    let before = model.as_ref().and_then(|m| m.asv_cache_stats());
                    aam_data::process_memory::reset_peak_rss();
                    let mut latencies = Vec::new();
                    for _ in 0..args.iterations {
                        let t0 = Instant::now();
                        let out = runner(tokens.view())?;
                        latencies.push(t0.elapsed().as_secs_f64() * 1e3);
                        if out.embeddings.iter().any(|v| !v.is_finite()) {
                            bail!("{backend}: non-finite output");
                        }
                    }
                    // What a pass computes: model.onnx encodes every slot, empty ones too,
                    // and runs the sample level on all n_asv slots; Burn skips empty slots;
                    // the split graphs encode the cache's misses and run the sample level
                    // on each sample's slots up to its last ASV.
                    let (encoded, sample_slots) =
                        match (before, model.as_ref().and_then(|m| m.asv_cache_stats())) {
                            (Some(a), Some(b)) => (
                                ((b.misses - a.misses) as usize) / args.iterations,
                                aam_runtime::sample_graph_slots(tokens.view()),
                            ),
                            _ if backend == "burn" => (slots, vec![n_asv; batch]),
                            _ => (batch * n_asv, vec![n_asv; batch]),
                        };
                    let gflop =
                        flops::forward_flops(c, subject.config.kind, &sample_slots, encoded) / 1e9;
                    latencies.sort_by(f64::total_cmp);
                    let row = Row {
                        backend: backend.clone(),
                        cache,
                        n_asv,
                        batch,
                        latencies_ms: latencies,
                        peak_rss_mib: aam_data::process_memory::peak_rss_mib(),
                        gflop_per_pass: gflop,
                    };
                    let reference = reference_speed(&rows, n_asv, batch);
                    eprintln!(
                        "{}",
                        format_row(&row, peak_gflops, reference).replace('\t', "  ")
                    );
                    rows.push(row);
                }
            }
        }
    }
    let mut tsv = String::from(
        "backend\tasv_cache\tn_asv\tbatch\tsamples_per_s\tp50_ms\tp99_ms\tpeak_rss_mib\tgflop_per_pass\tgflop_per_s\troofline_pct\tvs_pytorch\n",
    );
    for r in &rows {
        let reference = reference_speed(&rows, r.n_asv, r.batch);
        tsv.push_str(&format_row(r, peak_gflops, reference));
        tsv.push('\n');
    }
    match &args.output {
        Some(p) => aam_data::files::write_atomic(p, tsv.as_bytes())?,
        None => std::io::stdout().write_all(tsv.as_bytes())?,
    }
    Ok(())
}

impl Row {
    fn samples_per_s(&self) -> f64 {
        let mean_s = self.latencies_ms.iter().sum::<f64>() / self.latencies_ms.len() as f64 / 1e3;
        self.batch as f64 / mean_s
    }
}

/// Samples/s of the PyTorch reference at `n_asv` × `batch`, if it was run.
fn reference_speed(rows: &[Row], n_asv: usize, batch: usize) -> Option<f64> {
    rows.iter()
        .find(|r| r.cache == CacheMode::Reference && r.n_asv == n_asv && r.batch == batch)
        .map(Row::samples_per_s)
}

fn format_row(r: &Row, peak: f64, reference: Option<f64>) -> String {
    let mean_s = r.latencies_ms.iter().sum::<f64>() / r.latencies_ms.len() as f64 / 1e3;
    let gflops = r.gflop_per_pass / mean_s;
    format!(
        "{}\t{}\t{}\t{}\t{:.3}\t{:.1}\t{:.1}\t{}\t{:.2}\t{:.2}\t{:.1}\t{}",
        r.backend,
        r.cache.name(),
        r.n_asv,
        r.batch,
        r.samples_per_s(),
        percentile(&r.latencies_ms, 0.5),
        percentile(&r.latencies_ms, 0.99),
        r.peak_rss_mib.map_or("NA".into(), |m| format!("{m:.0}")),
        r.gflop_per_pass,
        gflops,
        100.0 * gflops / peak,
        reference.map_or("NA".into(), |p| format!("{:.2}", r.samples_per_s() / p))
    )
}

/// Runs the reference PyTorch AAM on `tokens` with the weights at `weights`: its row
/// (latencies from the script, its own peak RSS) and its embeddings `[batch · D]`.
fn reference_row(
    python: &Path,
    args: &BenchArgs,
    scratch: &Scratch,
    weights: &Path,
    tokens: &Array3<i64>,
    c: &ModelConfig,
    kind: ModelKind,
) -> Result<(Row, Vec<f32>)> {
    let (batch, n_asv, _) = tokens.dim();
    let npy = scratch.0.join(format!("tokens_{n_asv}x{batch}.npy"));
    ndarray_npy::write_npy(&npy, tokens)?;
    let v = reference_json(
        python,
        args,
        &[
            "bench".as_ref(),
            "--weights".as_ref(),
            weights.as_os_str(),
            "--tokens".as_ref(),
            npy.as_os_str(),
        ],
    )?;
    let field = |k: &str| {
        v[k].as_f64()
            .with_context(|| format!("reference JSON lacks `{k}`"))
    };
    let mut latencies_ms = reference_latencies(&v, "pass")?;
    latencies_ms.sort_by(f64::total_cmp);
    let embeddings: Vec<f32> = v["embeddings"]
        .as_array()
        .context("reference JSON lacks `embeddings`")?
        .iter()
        .flat_map(|row| row.as_array().into_iter().flatten())
        .filter_map(|x| x.as_f64().map(|x| x as f32))
        .collect();
    let slots = tokens
        .outer_iter()
        .map(|s| s.outer_iter().filter(|r| r.iter().any(|&t| t != 0)).count())
        .sum::<usize>();
    let row = Row {
        backend: "pytorch".into(),
        cache: CacheMode::Reference,
        n_asv,
        batch,
        latencies_ms,
        peak_rss_mib: Some(field("peak_rss_mib")?),
        gflop_per_pass: flops::forward_flops(c, kind, &vec![n_asv; batch], slots) / 1e9,
    };
    Ok((row, embeddings))
}

/// A runner for `backend` (and the runtime model, for cache counts).
fn load(
    subject: &Subject,
    backend: &str,
    cache: CacheMode,
    args: &BenchArgs,
) -> Result<(Runner, Option<std::sync::Arc<Model>>)> {
    let runtime_backend = match backend {
        "tract" => RuntimeBackend::Tract,
        "ort" => RuntimeBackend::Ort,
        "burn" => {
            let path = subject.origin.with_file_name("model.safetensors");
            let (_, net) = burn_runner::from_bytes(&subject.safetensors, &path)?;
            let reads_counts = subject.config.model.uses_counts();
            return Ok((
                Box::new(move |t| {
                    let counts = reads_counts.then(|| synthetic_counts(t));
                    net.run(t, counts.as_ref().map(|c| c.view()), None)
                }),
                None,
            ));
        }
        other => bail!("unknown backend `{other}`; use tract, ort or burn"),
    };
    let options = LoadOptions {
        backend: runtime_backend,
        threads: Some(args.threads),
        ort_library: args.ort_lib.clone(),
        asv_cache: match cache {
            CacheMode::Off => Some(AsvCacheOptions {
                chunk_rows: args.asv_chunk,
                ..AsvCacheOptions::per_call()
            }),
            CacheMode::Warm => Some(AsvCacheOptions {
                chunk_rows: args.asv_chunk,
                ..AsvCacheOptions::default()
            }),
            CacheMode::Single | CacheMode::Reference => None,
        },
        ..LoadOptions::default()
    };
    let model = std::sync::Arc::new(if cache != CacheMode::Single {
        Model::from_split_bytes(
            &subject.onnx,
            &subject.asv_encoder,
            &subject.sample_model,
            &subject.origin,
            &options,
        )?
    } else {
        Model::from_bytes_with(&subject.onnx, &subject.origin, &options)?
    });
    let m = model.clone();
    let reads_counts = subject.config.model.uses_counts();
    Ok((
        Box::new(move |t| match reads_counts {
            true => m.run_with_counts(t, synthetic_counts(t).view()),
            false => m.run(t),
        }),
        Some(model),
    ))
}

/// Read counts `[batch, n_asv, 1]` for timing a model that reads them: 100 in every slot
/// that holds an ASV, 0 in empty ones (the values do not change the work done).
fn synthetic_counts(tokens: ndarray::ArrayView3<'_, i64>) -> ndarray::Array3<f32> {
    let (b, s, _) = tokens.dim();
    ndarray::Array3::from_shape_fn((b, s, 1), |(i, j, _)| {
        if tokens.slice(ndarray::s![i, j, ..]).iter().any(|&t| t != 0) {
            100.0
        } else {
            0.0
        }
    })
}
