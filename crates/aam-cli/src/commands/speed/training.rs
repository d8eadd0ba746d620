//! `aam bench --train`: throughput, peak memory and achieved GFLOP/s of the training
//! step of `aam train` (a classifier: masked-nucleotide, count and class losses,
//! backward, clipping, AdamW) on each CPU training backend, next to the reference
//! PyTorch AAM's step on the same weights, batch and optimizer, and the share of this
//! machine's GEMM rate measured in the same run. aam and torch both run on `--threads`.

use std::path::Path;

use aam_config::{CheckpointConfig, ModelKind, TargetInfo, FORMAT_VERSION};
use aam_data::{Split, TargetKind};
use aam_model::{AamModel, CpuBackend, SequencePredictor, WeightSink};
use aam_runtime::flops;
use aam_train::step_bench::{self, StepBatch};
use aam_train::{TrainData, TrainOptions};
use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;

use super::bench_table::BenchTable;
use super::reference::{reference_json, reference_latencies, Scratch};
use super::BenchArgs;

/// Relative difference of first-step losses above which the implementations disagree.
const LOSS_TOLERANCE: f64 = 1e-3;

struct TrainRow {
    backend: String,
    batch: usize,
    n_asv: usize,
    latencies_ms: Vec<f64>,
    peak_rss_mib: Option<f64>,
    first_loss: f64,
}

impl TrainRow {
    fn samples_per_s(&self) -> f64 {
        let mean_s = self.latencies_ms.iter().sum::<f64>() / self.latencies_ms.len() as f64 / 1e3;
        self.batch as f64 / mean_s
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// Times `opts`' training step on backend `B` from the weights `w`.
fn time_backend<B>(
    name: &str,
    config: &CheckpointConfig,
    w: &aam_model::WeightMap,
    data: &TrainData,
    samples: &[usize],
    opts: &TrainOptions,
    iterations: usize,
) -> Result<TrainRow>
where
    B: AutodiffBackend,
    SequencePredictor<B>: AutodiffModule<B>,
{
    let device = B::Device::default();
    // Each backend's peak is its own: what the one before freed goes back first.
    aam_train::allocator::return_freed_memory();
    aam_data::process_memory::reset_peak_rss();
    let model = <SequencePredictor<B> as AamModel<B>>::load_weights(w, &config.model, &device)?;
    let t = step_bench::time_training_steps::<B, _>(
        model,
        data,
        samples,
        opts,
        config.model.predict_nucleotides,
        iterations,
        &device,
    )?;
    Ok(TrainRow {
        backend: name.into(),
        batch: samples.len(),
        n_asv: config.model.token_limit,
        latencies_ms: t.latencies_ms,
        peak_rss_mib: aam_data::process_memory::peak_rss_mib(),
        first_loss: t.first_loss,
    })
}

/// Runs `aam bench --train`.
pub(super) fn run(args: &BenchArgs) -> Result<()> {
    if args.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    if args.model.is_some() || args.save_model.is_some() {
        bail!("--train times a model of the given architecture with random weights; drop --model and --save-model, and set --embedding-dim, --attention-layers, --attention-heads, --max-bp and --token-limit instead");
    }
    // aam's backends run on --threads threads, as the reference does.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("cannot start the benchmark's threads")?;
    pool.install(|| run_on_pool(args))
}

fn run_on_pool(args: &BenchArgs) -> Result<()> {
    let batches = if args.batch.is_empty() {
        vec![8]
    } else {
        args.batch.clone()
    };
    if let Some(b) = batches.iter().find(|&&b| b < 2) {
        bail!("--train: --batch {b} is too small; a training batch needs at least 2 samples");
    }
    let mut model = args.arch.model_config(true);
    model.out_dim = 2;
    model.is_classifier = true;
    model.validate().map_err(anyhow::Error::msg)?;
    let config = CheckpointConfig {
        format_version: FORMAT_VERSION,
        kind: ModelKind::Predictor,
        data: args.arch.data_settings(None),
        model,
        target: Some(TargetInfo {
            more_columns: Vec::new(),
            column: "bench_class".into(),
            kind: TargetKind::Categorical,
            classes: vec!["a".into(), "b".into()],
            mean: 0.0,
            std: 1.0,
            transform: Default::default(),
            normalize_by: None,
            by_category: Vec::new(),
            quantiles: Vec::new(),
            categories: Default::default(),
        }),
    };
    // One set of random weights for every implementation.
    let mut sink = WeightSink::default();
    <CpuBackend as burn::tensor::backend::Backend>::seed(&Default::default(), 42);
    SequencePredictor::<CpuBackend>::new(&config.model, &Default::default()).save(&mut sink);
    let w = sink.into_map();

    let BenchTable { prepared, usable } =
        BenchTable::load(&config, &args.table, args.sequences.as_deref())?;
    let mut dataset = prepared.dataset;
    let n = dataset.table.n_samples();
    // Two classes in turn: the class loss and its gradient take their usual shape.
    dataset.targets = Some((0..n).map(|i| (i % 2) as f32).collect());
    let opts = TrainOptions {
        progress: false,
        ..TrainOptions::default()
    };
    let data = TrainData {
        dataset,
        stream: None,
        split: Split {
            train: usable.clone(),
            validation: Vec::new(),
        },
        faith_pd: None,
        target_kind: Some(TargetKind::Categorical),
        n_classes: 2,
        target_mean: 0.0,
        target_std: 1.0,
        target_transform: Default::default(),
        sample_weights: None,
        target_offset_scale: None,
        target_column: String::new(),
        more_targets: Vec::new(),
        categorical_ids: None,
    };

    let gemm = step_bench::gemm_gflops(2048, 5);
    eprintln!(
        "GEMM (f32, 2048², Flex backend's gemm, {} threads): {gemm:.1} GFLOP/s",
        args.threads
    );
    let scratch = Scratch::new()?;
    let mut rows = Vec::new();
    let mut torch_gemm = None;
    for &batch in &batches {
        if usable.len() < batch {
            bail!(
                "{}: {} samples with reads, fewer than --batch {batch}",
                args.table.display(),
                usable.len()
            );
        }
        // Samples spread over the table.
        let samples: Vec<usize> = (0..batch)
            .map(|i| usable[i * usable.len() / batch])
            .collect();
        for backend in &args.train_backends {
            let row = match backend.as_str() {
                "flex" => time_backend::<aam_model::CpuFlexAutodiff>(
                    "flex", &config, &w, &data, &samples, &opts, args.iterations,
                )?,
                "ndarray" => time_backend::<aam_model::CpuAutodiff>(
                    "ndarray", &config, &w, &data, &samples, &opts, args.iterations,
                )?,
                other => bail!("--train-backends: unknown backend `{other}`; use flex (the default of aam train) or ndarray (--deterministic)"),
            };
            eprintln!(
                "{}: {:.3} samples/s (batch {batch}), first loss {:.6}",
                row.backend,
                row.samples_per_s(),
                row.first_loss
            );
            rows.push(row);
        }
        if let Some(python) = &args.reference_python {
            let sb = step_bench::step_batch(&data, &samples, &opts, true)?;
            let (row, g) = reference_row(python, args, &scratch.0, &config, &w, &sb)?;
            eprintln!(
                "pytorch: {:.3} samples/s (batch {batch}), first loss {:.6}",
                row.samples_per_s(),
                row.first_loss
            );
            torch_gemm = Some(g);
            rows.push(row);
        }
    }
    if let Some(g) = torch_gemm {
        eprintln!(
            "GEMM (f32, 2048², torch, {} threads): {g:.1} GFLOP/s",
            args.threads
        );
    }
    let peak = args
        .peak_gflops
        .unwrap_or_else(|| gemm.max(torch_gemm.unwrap_or(0.0)));
    // The same batch in every implementation: at dropout 0 the first losses must agree.
    if config.model.dropout == 0.0 {
        for &batch in &batches {
            let of: Vec<&TrainRow> = rows.iter().filter(|r| r.batch == batch).collect();
            for pair in of.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                let rel = (a.first_loss - b.first_loss).abs() / a.first_loss.abs().max(1e-12);
                if !(rel <= LOSS_TOLERANCE) {
                    bail!("the first training losses differ: {} {:.6} against {} {:.6} (batch {batch}); the implementations disagree", a.backend, a.first_loss, b.backend, b.first_loss);
                }
            }
        }
    }
    let mut tsv = String::from("backend\tn_asv\tbatch\tsamples_per_s\tp50_ms\tpeak_rss_mib\tgflop_per_step\tgflops\tpct_of_peak\tvs_pytorch\tfirst_loss\n");
    for r in &rows {
        let slots = r.batch * r.n_asv;
        // Forward + backward ≈ 3 forward passes of matmul FLOPs, every ASV slot encoded
        // (the work of the step as specified, whatever an implementation skips).
        let gflop =
            3.0 * flops::forward_flops(
                &config.model,
                ModelKind::Predictor,
                &vec![r.n_asv; r.batch],
                slots,
            ) / 1e9;
        let mean_s = r.latencies_ms.iter().sum::<f64>() / r.latencies_ms.len() as f64 / 1e3;
        let reference = rows
            .iter()
            .find(|p| p.backend == "pytorch" && p.batch == r.batch)
            .map(TrainRow::samples_per_s);
        tsv.push_str(&format!(
            "{}\t{}\t{}\t{:.3}\t{:.0}\t{}\t{:.6}\t{:.2}\t{:.2}\t{}\t{:.6}\n",
            r.backend,
            r.n_asv,
            r.batch,
            r.samples_per_s(),
            median(&r.latencies_ms),
            r.peak_rss_mib.map_or("NA".into(), |m| format!("{m:.0}")),
            gflop,
            gflop / mean_s,
            100.0 * gflop / mean_s / peak,
            reference.map_or("NA".into(), |p| format!("{:.2}", r.samples_per_s() / p)),
            r.first_loss
        ));
    }
    match &args.output {
        Some(p) => aam_data::files::write_atomic(p, tsv.as_bytes())?,
        None => print!("{tsv}"),
    }
    Ok(())
}

/// Runs the reference PyTorch AAM's training step (`torch_reference.py train-bench`) on
/// the weights `w` and the batch `sb`: its row and its GEMM rate, GFLOP/s.
fn reference_row(
    python: &Path,
    args: &BenchArgs,
    scratch: &Path,
    config: &CheckpointConfig,
    w: &aam_model::WeightMap,
    sb: &StepBatch,
) -> Result<(TrainRow, f64)> {
    std::fs::write(
        scratch.join("model.safetensors"),
        aam_export::safetensors_bytes(config, w)?,
    )?;
    ndarray_npy::write_npy(scratch.join("masked_tokens.npy"), &sb.masked_tokens)?;
    ndarray_npy::write_npy(scratch.join("nuc_targets.npy"), &sb.nuc_targets)?;
    ndarray_npy::write_npy(scratch.join("nuc_mask.npy"), &sb.nuc_mask)?;
    ndarray_npy::write_npy(scratch.join("counts.npy"), &sb.counts)?;
    let classes = sb
        .targets
        .as_ref()
        .context("the benchmark batch has no targets")?
        .mapv(|t| t as i64);
    ndarray_npy::write_npy(scratch.join("classes.npy"), &classes)?;
    let v = reference_json(
        python,
        args,
        &[
            "train-bench".as_ref(),
            "--inputs".as_ref(),
            scratch.as_os_str(),
        ],
    )?;
    let field = |k: &str| {
        v[k].as_f64()
            .with_context(|| format!("reference JSON lacks `{k}`"))
    };
    let latencies_ms = reference_latencies(&v, "step")?;
    let (batch, n_asv, _) = sb.masked_tokens.dim();
    Ok((
        TrainRow {
            backend: "pytorch".into(),
            batch,
            n_asv,
            latencies_ms,
            peak_rss_mib: Some(field("peak_rss_mib")?),
            first_loss: field("first_loss")?,
        },
        field("gemm_gflops")?,
    ))
}
