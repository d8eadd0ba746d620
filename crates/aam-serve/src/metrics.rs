//! Prometheus metrics (`GET /metrics`, OpenMetrics text): requests by endpoint and
//! status, request latency, requests in flight, samples predicted, and the size of
//! every forward pass the batcher ran.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::AppState;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `infer`, `predict`, `metadata`, `health`.
    pub endpoint: String,
    /// HTTP status code.
    pub status: u16,
}

/// The server's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histogram,
    batch_samples: Histogram,
    samples: Counter,
    in_flight: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric registered, all zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("aam");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "HTTP requests by endpoint and status", requests.clone());
        // 1 ms .. about 33 s.
        let latency = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register("request_duration_seconds", "Time from request to response of inference requests", latency.clone());
        let batch_samples = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register("batch_samples", "Samples in each forward pass the dynamic batcher ran", batch_samples.clone());
        let samples = Counter::default();
        registry.register("samples_predicted", "Samples answered by inference requests", samples.clone());
        let in_flight = Gauge::default();
        registry.register("requests_in_flight", "Inference requests waiting or running", in_flight.clone());
        Metrics { registry, requests, latency, batch_samples, samples, in_flight }
    }

    /// Counts a finished request of `endpoint` with `status`; inference requests also
    /// record their latency from `started` and their `samples`.
    pub fn record(&self, endpoint: &str, status: u16, started: Option<Instant>, samples: usize) {
        self.requests.get_or_create(&RequestLabels { endpoint: endpoint.to_string(), status }).inc();
        if let Some(t) = started {
            self.latency.observe(t.elapsed().as_secs_f64());
        }
        self.samples.inc_by(samples as u64);
    }

    /// Records a forward pass of `samples` rows.
    pub fn observe_batch(&self, samples: usize) {
        self.batch_samples.observe(samples as f64);
    }

    /// An inference request starts waiting or running; the guard ends it.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.inc();
        InFlight(self.clone())
    }

    /// The OpenMetrics text of every metric.
    pub fn text(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// One inference request in flight (decrements the gauge when dropped).
pub struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// `GET /metrics`.
pub(crate) async fn endpoint(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    state.metrics.record("metrics", 200, None, 0);
    (
        [(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.text(),
    )
}
