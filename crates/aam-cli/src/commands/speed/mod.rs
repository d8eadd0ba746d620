//! `aam bench`: the speed of aam next to the reference PyTorch AAM: inference
//! ([`inference`]: each backend, with and without the ASV-embedding cache) and, with
//! `--train`, the training step ([`training`]). Not `aam benchmark`, the accuracy study.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

mod bench_table;
pub mod inference;
mod reference;
pub mod training;

/// Arguments of `aam bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Exported model directory (model.onnx, asv_encoder.onnx, sample_model.onnx,
    /// model.safetensors). Default: a randomly initialised model of the reference default
    /// architecture (D 128, 2 layers and 4 heads per stack, max bp 150, token limit 1024).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Feature table whose samples fill the batches (BIOM 2.1 HDF5, BIOM 1.0 JSON, TSV or
    /// a QIIME 2 FeatureTable[Frequency] .qza); observation IDs are ASV sequences, or
    /// feature IDs that --sequences maps to them.
    #[arg(long)]
    pub table: PathBuf,
    /// Sequences of the table's feature IDs when those are not sequences (QIIME 2's
    /// DADA2 hashes): rep-seqs.qza (FeatureData[Sequence]) or a FASTA file.
    #[arg(long)]
    pub sequences: Option<PathBuf>,
    /// ASV slots per sample, comma-separated (samples with fewer ASVs are padded).
    #[arg(long, value_delimiter = ',', default_value = "64,256,1024")]
    pub n_asv: Vec<usize>,
    /// Samples per forward pass (with --train: per training step), comma-separated
    /// (default: 1,8,32; with --train: 8).
    #[arg(long, value_delimiter = ',')]
    pub batch: Vec<usize>,
    /// Backends, comma-separated: tract, ort (builds with --features ort), burn.
    #[arg(long, value_delimiter = ',', default_value = "tract,burn")]
    pub backends: Vec<String>,
    /// ASV-embedding modes, comma-separated: single-graph (model.onnx, every slot
    /// encoded), off (split graphs, each unique ASV of a pass encoded once), warm (the
    /// LRU cache after a warm-up pass).
    #[arg(long, value_delimiter = ',', default_value = "single-graph,off,warm")]
    pub modes: Vec<String>,
    /// Most ASVs per ASV-encoder run on the split graphs; 0: the backend's default (4 on
    /// tract, 16 on ONNX Runtime).
    #[arg(long, default_value_t = 0)]
    pub asv_chunk: usize,
    /// Timed forward passes per configuration (after one warm-up pass).
    #[arg(long, default_value_t = 3)]
    pub iterations: usize,
    /// ONNX Runtime intra-op threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Peak FLOP rate of the machine in GFLOP/s, for the share-of-peak column (default:
    /// this machine's f32 GEMM rate, measured at the start of the run on 2048² matrices;
    /// with --reference-python and --train, the faster of ours and torch's).
    #[arg(long)]
    pub peak_gflops: Option<f64>,
    /// ONNX Runtime library (default: $ORT_DYLIB_PATH).
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
    /// Results TSV (default: standard output).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// A Python with CPU `torch`, `numpy` and `safetensors`: also time the reference
    /// PyTorch AAM (`--reference-script`) on the same weights and token batches, check
    /// its embeddings against ours, and report each row's speed-up over it.
    #[arg(long, value_name = "PYTHON")]
    pub reference_python: Option<PathBuf>,
    /// The reference runner script.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "benches/reference/torch_reference.py"
    )]
    pub reference_script: PathBuf,
    /// Also write the model under test (model.onnx, asv_encoder.onnx, sample_model.onnx,
    /// model.safetensors) to this new directory, to profile it or rerun it elsewhere.
    #[arg(long, value_name = "DIR")]
    pub save_model: Option<PathBuf>,
    /// Time the training step of `aam train` instead of inference: a classifier of the
    /// architecture below with random weights, masked-nucleotide + count + class losses,
    /// backward, gradient clipping and AdamW, on each of --train-backends (and the
    /// PyTorch reference with --reference-python, on the same weights and batch).
    /// --n-asv, --modes and --backends do not apply; the ASV slots are --token-limit.
    #[arg(long)]
    pub train: bool,
    /// With --train: CPU training backends, comma-separated: flex (the default of `aam
    /// train`), ndarray (`--deterministic`).
    #[arg(long, value_delimiter = ',', default_value = "flex,ndarray")]
    pub train_backends: Vec<String>,
    /// With --train: the architecture, as `aam train` takes it.
    #[command(flatten)]
    pub arch: crate::commands::training_args::ArchArgs,
}

/// Runs `aam bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    if args.iterations == 0 || args.threads == 0 {
        bail!("--iterations and --threads must be at least 1");
    }
    if args.train {
        training::run(args)
    } else {
        inference::run(args)
    }
}
