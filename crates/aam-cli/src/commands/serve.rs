//! `aam serve`: the HTTP inference server (see the `aam-serve` crate for the endpoints).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use aam_runtime::Backend;
use aam_serve::ServeOptions;
use anyhow::{bail, Context, Result};
use clap::Args;

use super::predict::{load_onnx_model, PlacementArgs};

/// Arguments of `aam serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Exported model (a directory from `aam export` or its model.onnx); default: the
    /// shipped model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Name the model is served under (`/v2/models/<name>/infer`); default: the model's
    /// directory name (`circadian-exposure` for the shipped model).
    #[arg(long)]
    pub name: Option<String>,
    /// Address to listen on (0.0.0.0 for every interface, e.g. in a container).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Engine that runs the ONNX graph.
    #[arg(long, value_enum, default_value_t = Backend::default())]
    pub backend: Backend,
    /// Most samples in one dynamically formed batch.
    #[arg(long, default_value_t = 32)]
    pub max_batch: usize,
    /// Longest a request waits for others to share its batch, milliseconds.
    #[arg(long, default_value_t = 5)]
    pub max_delay_ms: u64,
    /// Inference requests handled at once; more wait (up to the timeout).
    #[arg(long, default_value_t = 64)]
    pub max_concurrency: usize,
    /// Largest request body, MiB (413 above).
    #[arg(long, default_value_t = 16)]
    pub max_request_mib: usize,
    /// Longest a request may wait and run, seconds (503 after).
    #[arg(long, default_value_t = 30)]
    pub timeout_s: u64,
    /// Forward passes run at once (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    #[command(flatten)]
    pub placement: PlacementArgs,
}

/// Loads the model, then serves until Ctrl-C or SIGTERM.
pub fn run(args: &ServeArgs) -> Result<()> {
    if args.max_batch == 0 || args.max_concurrency == 0 || args.max_request_mib == 0 || args.timeout_s == 0 || args.workers == Some(0) {
        bail!("--max-batch, --max-concurrency, --max-request-mib, --timeout-s and --workers must be at least 1");
    }
    let model = load_onnx_model(args.model.as_deref(), args.backend, &args.placement)?;
    let name = match (&args.name, &args.model) {
        (Some(n), _) => n.clone(),
        (None, Some(m)) => {
            let dir = if m.is_file() { m.parent().unwrap_or(m) } else { m.as_path() };
            let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
            dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into())
        }
        (None, None) => "circadian-exposure".into(),
    };
    if name.is_empty() || name.contains(['/', '?', '#', '%']) {
        bail!("--name '{name}' cannot be part of a URL path; use letters, digits, '-', '_' and '.'");
    }
    let defaults = ServeOptions::default();
    let options = ServeOptions {
        max_batch: args.max_batch,
        max_delay: Duration::from_millis(args.max_delay_ms),
        max_concurrency: args.max_concurrency,
        max_request_bytes: args.max_request_mib.saturating_mul(1 << 20),
        request_timeout: Duration::from_secs(args.timeout_s),
        workers: args.workers.unwrap_or(defaults.workers),
    };
    aam_serve::run_blocking(SocketAddr::new(args.host, args.port), model, &name, options)
        .with_context(|| format!("serving on {}:{}", args.host, args.port))
}
