//! `aam serve`: an HTTP inference server for an exported aam model.
//!
//! Endpoints (the Open Inference Protocol, also called KServe v2, for the tensor API):
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/v2/health/live` | 200 while the process runs |
//! | GET | `/v2/health/ready` | 200 once the model is loaded (it is before the port opens) |
//! | GET | `/v2` | server metadata |
//! | GET | `/v2/models/{name}` | model metadata: inputs and outputs with shapes and dtypes |
//! | GET | `/v2/models/{name}/ready` | 200 for the served model |
//! | POST | `/v2/models/{name}/infer` | a `tokens` tensor `[batch, n_asv, max_bp + 1]` in, the model's outputs out (dynamically batched) |
//! | POST | `/aam/v1/models/{name}/predict` | samples as `{sequence: count}` maps in, predictions in the target's units out |
//! | GET | `/metrics` | Prometheus text format |
//!
//! Requests never name files: the model is chosen at start-up and `{name}` is only
//! compared with its name, so no request reaches the file system. Bodies above
//! [`ServeOptions::max_request_bytes`] get 413; work that waits or runs longer than
//! [`ServeOptions::request_timeout`] gets 503; at most
//! [`ServeOptions::max_concurrency`] inference requests run at once, the rest wait.

#![deny(missing_docs)]

mod api_error;
pub mod batcher;
pub mod metrics;
mod samples;
mod v2;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aam_runtime::Model;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Semaphore;

pub use batcher::Batcher;
pub use metrics::Metrics;

/// How the server batches, limits and times out work.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Most samples (token rows) in one dynamically formed batch.
    pub max_batch: usize,
    /// Longest a request waits for others to share its batch.
    pub max_delay: Duration,
    /// Inference requests running or queued at once beyond which new ones wait.
    pub max_concurrency: usize,
    /// Largest request body, bytes (413 above).
    pub max_request_bytes: usize,
    /// Longest a request may wait and run (503 after).
    pub request_timeout: Duration,
    /// Batches run at once (each on its own blocking thread).
    pub workers: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_batch: 32,
            max_delay: Duration::from_millis(5),
            max_concurrency: 64,
            max_request_bytes: 16 << 20,
            request_timeout: Duration::from_secs(30),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// What every handler shares.
pub(crate) struct AppState {
    pub name: String,
    pub model: Arc<Model>,
    pub batcher: Batcher,
    pub metrics: Arc<Metrics>,
    pub permits: Semaphore,
    pub options: ServeOptions,
}

/// The router of every endpoint for `model`, served as `name`. Must be called inside a
/// tokio runtime (the batcher's task starts here).
pub fn router(model: Arc<Model>, name: &str, options: ServeOptions) -> Router {
    let metrics = Arc::new(Metrics::new());
    let batcher = Batcher::start(model.clone(), &options, metrics.clone());
    let state: Arc<AppState> = Arc::new(AppState {
        name: name.to_string(),
        model,
        batcher,
        metrics,
        permits: Semaphore::new(options.max_concurrency.max(1)),
        options: options.clone(),
    });
    Router::new()
        .route("/v2/health/live", get(v2::live))
        .route("/v2/health/ready", get(v2::ready))
        .route("/v2", get(v2::server_metadata))
        .route("/v2/models/{name}", get(v2::model_metadata))
        .route("/v2/models/{name}/ready", get(v2::model_ready))
        .route("/v2/models/{name}/infer", post(v2::infer))
        .route("/aam/v1/models/{name}/predict", post(samples::predict))
        .route("/metrics", get(metrics::endpoint))
        .fallback(api_error::not_found)
        .layer(DefaultBodyLimit::max(options.max_request_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), declared_length))
        .with_state(state)
}

/// Refuses a body whose declared `Content-Length` exceeds the limit before reading any of
/// it (413, connection closed); bodies without one are cut off at the limit as they arrive.
async fn declared_length(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let limit = state.options.max_request_bytes;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared.filter(|&n| n > limit as u64) {
        state.metrics.record("limit", 413, None, 0);
        let mut r = api_error::ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body of {n} bytes exceeds the server's limit of {limit} bytes (aam serve --max-request-mib)"),
        )
        .into_response();
        r.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    next.run(request).await
}

/// Serves `model` as `name` on `listener` until `shutdown` completes; then stops
/// accepting connections and returns once the requests in flight are answered.
///
/// Errors: the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    model: Arc<Model>,
    name: &str,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(model, name, options);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Completes on Ctrl-C or SIGTERM (the signals a terminal and a container stop send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// Binds `addr`, prints where it listens and serves until Ctrl-C or SIGTERM, on a
/// runtime of its own (for the CLI).
///
/// Errors: the address cannot be bound (in use, no permission).
pub fn run_blocking(addr: SocketAddr, model: Model, name: &str, options: ServeOptions) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}; choose another --port or --host"))
        })?;
        eprintln!(
            "serving model '{name}' on http://{} (KServe v2: /v2/models/{name}/infer; samples: /aam/v1/models/{name}/predict; /metrics); Ctrl-C stops",
            listener.local_addr()?
        );
        serve(listener, Arc::new(model), name, options, shutdown_signal()).await?;
        eprintln!("server stopped: requests in flight were answered");
        Ok(())
    })
}
