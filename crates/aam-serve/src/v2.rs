//! The Open Inference Protocol (KServe v2) subset: health, server and model metadata,
//! and `infer` with one input tensor `tokens` int64 `[batch, n_asv, max_bp + 1]`.
//!
//! Outputs (FP32, row-major `data`): `embeddings` `[batch, D]`, and for predictors
//! `target_prediction` `[batch, out_dim]` (standardized value or class log-probabilities),
//! `count_prediction` `[batch, n_asv, 1]`, and for classifiers `class_probabilities`
//! `[batch, n_classes]`. A request may list the outputs it wants.

use std::sync::Arc;
use std::time::Instant;

use aam_runtime::{ModelKind, RuntimeError};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ndarray::{Array2, Array3};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::batcher::BatchError;
use crate::AppState;

/// `POST /v2/models/{name}/infer` body.
#[derive(Debug, Deserialize)]
pub struct InferRequest {
    /// Echoed in the response.
    pub id: Option<String>,
    /// `tokens`, and `counts` (FP32 `[batch, n_asv, 1]`, each slot's read count) for a
    /// model with a count embedding.
    pub inputs: Vec<InputTensor>,
    /// Outputs wanted (all when absent or empty).
    #[serde(default)]
    pub outputs: Vec<RequestedOutput>,
}

/// An input tensor: `data` row-major, flat or nested.
#[derive(Debug, Deserialize)]
pub struct InputTensor {
    /// `tokens`.
    pub name: String,
    /// `[batch, n_asv, max_bp + 1]`.
    pub shape: Vec<i64>,
    /// `INT64`, `INT32`, `INT16`, `INT8` or `UINT8`.
    pub datatype: String,
    /// The token values.
    pub data: Value,
}

/// An output a request asks for.
#[derive(Debug, Deserialize)]
pub struct RequestedOutput {
    /// One of the model's output names.
    pub name: String,
}

pub(crate) async fn live(State(state): State<Arc<AppState>>) -> StatusCode {
    state.metrics.record("health", 200, None, 0);
    StatusCode::OK
}

/// The model is loaded before the port opens, so a server that answers is ready.
pub(crate) async fn ready(State(state): State<Arc<AppState>>) -> StatusCode {
    state.metrics.record("health", 200, None, 0);
    StatusCode::OK
}

pub(crate) async fn server_metadata(State(state): State<Arc<AppState>>) -> Json<Value> {
    state.metrics.record("metadata", 200, None, 0);
    Json(json!({ "name": "aam", "version": env!("CARGO_PKG_VERSION"), "extensions": [] }))
}

/// 404 unless `name` is the served model's name (never used as a path).
pub(crate) fn check_name(state: &AppState, name: &str) -> Result<(), ApiError> {
    if name == state.name {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "model '{name}' is not served here; this server serves '{}'",
            state.name
        ),
    ))
}

/// The outputs of the served model with their shapes (`-1`: any size).
fn output_specs(state: &AppState) -> Vec<(&'static str, Vec<i64>)> {
    let c = state.model.config();
    let m = &c.model;
    let mut specs = vec![("embeddings", vec![-1, m.embedding_dim as i64])];
    if c.kind == ModelKind::Predictor {
        specs.push((
            "target_prediction",
            vec![-1, m.head.output_width(m.out_dim) as i64],
        ));
        if m.is_classifier {
            specs.push(("class_probabilities", vec![-1, m.out_dim as i64]));
        }
        specs.push(("count_prediction", vec![-1, -1, 1]));
    }
    specs
}

/// Whether the model takes `categorical_ids` (a predictor conditioned on categories).
fn is_conditioned(state: &AppState) -> bool {
    !state.model.config().conditioning_columns().is_empty()
}

/// The inputs the model takes: `tokens`, then `counts` (a model that reads counts) and
/// `categorical_ids` INT64 `[batch, n_columns]` (columns sorted by name; 0: unknown).
fn input_specs(state: &AppState) -> Vec<Value> {
    let m = &state.model.config().model;
    let mut inputs = vec![
        json!({ "name": "tokens", "datatype": "INT64", "shape": [-1, -1, m.max_bp as i64 + 1] }),
    ];
    if m.uses_counts() {
        inputs.push(json!({ "name": "counts", "datatype": "FP32", "shape": [-1, -1, 1] }));
    }
    if is_conditioned(state) {
        let n = state.model.config().conditioning_columns().len() as i64;
        inputs.push(json!({ "name": "categorical_ids", "datatype": "INT64", "shape": [-1, n] }));
    }
    inputs
}

pub(crate) async fn model_metadata(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Response {
    if let Err(e) = check_name(&state, &name) {
        state.metrics.record("metadata", 404, None, 0);
        return e.into_response();
    }
    state.metrics.record("metadata", 200, None, 0);
    let c = state.model.config();
    let outputs: Vec<Value> = output_specs(&state)
        .into_iter()
        .map(|(n, shape)| json!({ "name": n, "datatype": "FP32", "shape": shape }))
        .collect();
    Json(json!({
        "name": state.name,
        "versions": ["1"],
        "platform": "aam",
        "inputs": input_specs(&state),
        "outputs": outputs,
        "parameters": {
            "kind": format!("{:?}", c.kind).to_lowercase(),
            "max_bp": c.model.max_bp,
            "token_limit": c.model.token_limit,
            "vocab_size": c.model.vocab_size,
            "embedding_dim": c.model.embedding_dim,
            "target_column": c.target.as_ref().map(|t| t.column.clone()),
            "target_columns": c.target.as_ref().map(|t| t.column_names()).unwrap_or_default(),
            "classes": c.target.as_ref().map(|t| t.classes.clone()).unwrap_or_default(),
            "quantiles": c.target.as_ref().map(|t| t.quantiles.clone()).unwrap_or_default(),
            "categorical_columns": c.model.head.categorical_columns(),
            "categories": c.target.as_ref().map(|t| t.categories.clone()).unwrap_or_default(),
        },
    }))
    .into_response()
}

pub(crate) async fn model_ready(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Response {
    match check_name(&state, &name) {
        Ok(()) => {
            state.metrics.record("health", 200, None, 0);
            StatusCode::OK.into_response()
        }
        Err(e) => {
            state.metrics.record("health", 404, None, 0);
            e.into_response()
        }
    }
}

/// A body the JSON extractor refused (413 when over the size limit), as an API error.
pub(crate) fn rejection(r: JsonRejection) -> ApiError {
    ApiError::new(
        r.status(),
        format!("cannot read the request body: {}", r.body_text()),
    )
}

/// The inputs of one inference request, checked against the model.
type Inputs = (Array3<i64>, Option<Array3<f32>>, Option<Array2<i64>>);

/// The token tensor of `req` and, for a model that reads counts (a count embedding or
/// abundance-weighted pooling), its counts tensor, and for a model conditioned on
/// metadata categories its `categorical_ids`, checked against the model before they
/// join a batch.
fn inputs_from(req: &InferRequest, state: &AppState) -> Result<Inputs, ApiError> {
    let uses_counts = state.model.uses_counts();
    let conditioned = is_conditioned(state);
    let names: Vec<String> = input_specs(state)
        .iter()
        .map(|i| format!("'{}'", i["name"].as_str().unwrap_or_default()))
        .collect();
    let takes = format!("{} input(s), {}", names.len(), names.join(", "));
    let allowed = |n: &str| {
        n == "tokens" || (uses_counts && n == "counts") || (conditioned && n == "categorical_ids")
    };
    if let Some(unknown) = req.inputs.iter().find(|i| !allowed(&i.name)) {
        return Err(ApiError::bad_request(format!(
            "unknown input '{}'; the model takes {takes}",
            unknown.name
        )));
    }
    let named = |name: &str| {
        req.inputs
            .iter()
            .filter(|i| i.name == name)
            .collect::<Vec<_>>()
    };
    let (tokens, counts, ids) = (named("tokens"), named("counts"), named("categorical_ids"));
    if tokens.len() != 1
        || counts.len() != usize::from(uses_counts)
        || ids.len() != usize::from(conditioned)
    {
        return Err(ApiError::bad_request(format!(
            "{} inputs given; the model takes {takes}",
            req.inputs.len()
        )));
    }
    let tokens = tokens_from(tokens[0], state)?;
    let counts = match counts.first() {
        Some(c) => Some(counts_from(c, tokens.dim())?),
        None => None,
    };
    let ids = match ids.first() {
        Some(i) => Some(categorical_ids_from(i, tokens.dim().0, state)?),
        None => None,
    };
    Ok((tokens, counts, ids))
}

/// The `categorical_ids` tensor: INT64 `[batch, n_columns]`, each index within its
/// column's categories (the runtime's own check, so a bad request never joins a batch).
fn categorical_ids_from(
    input: &InputTensor,
    batch: usize,
    state: &AppState,
) -> Result<Array2<i64>, ApiError> {
    if !["INT64", "INT32", "INT16", "INT8", "UINT8"].contains(&input.datatype.as_str()) {
        return Err(ApiError::bad_request(format!(
            "categorical_ids datatype {} is not an integer type; use INT64",
            input.datatype
        )));
    }
    let m = &state.model.config().model;
    let n = m.head.categorical_columns().len();
    if input.shape.as_slice() != [batch as i64, n as i64] {
        return Err(ApiError::bad_request(format!(
            "categorical_ids shape {:?} does not fit the tokens; it must be [{batch}, {n}] (one index per sample and column: {})",
            input.shape,
            m.head.categorical_columns().join(", ")
        )));
    }
    let mut values = Vec::with_capacity(batch * n);
    flatten_i64(&input.data, &mut values)?;
    if values.len() != batch * n {
        return Err(ApiError::bad_request(format!(
            "categorical_ids data has {} values but shape [{batch}, {n}] needs {}",
            values.len(),
            batch * n
        )));
    }
    let ids = Array2::from_shape_vec((batch, n), values).expect("length checked");
    aam_runtime::checked_categorical_ids(m, Some(ids.view()), batch)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(ids)
}

/// Appends the integers of a flat or nested JSON array.
fn flatten_i64(v: &Value, out: &mut Vec<i64>) -> Result<(), ApiError> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|x| flatten_i64(x, out)),
        Value::Number(n) => match n.as_i64() {
            Some(x) => {
                out.push(x);
                Ok(())
            }
            None => Err(ApiError::bad_request(format!(
                "categorical id {n} is not an integer"
            ))),
        },
        other => Err(ApiError::bad_request(format!(
            "categorical_ids data must be an array of integers, found {other}"
        ))),
    }
}

/// The `counts` tensor: FP32 `[batch, n_asv, 1]` matching the tokens' first two axes,
/// finite and ≥ 0.
fn counts_from(
    input: &InputTensor,
    (b, n, _): (usize, usize, usize),
) -> Result<Array3<f32>, ApiError> {
    if !["FP32", "FP64"].contains(&input.datatype.as_str()) {
        return Err(ApiError::bad_request(format!(
            "counts datatype {} is not a float type; use FP32",
            input.datatype
        )));
    }
    let expected = [b as i64, n as i64, 1];
    if input.shape.as_slice() != expected {
        return Err(ApiError::bad_request(format!(
            "counts shape {:?} does not fit the tokens; it must be {expected:?} (one read count per ASV slot)",
            input.shape
        )));
    }
    let mut values = Vec::with_capacity(b * n);
    flatten_f32(&input.data, &mut values)?;
    if values.len() != b * n {
        return Err(ApiError::bad_request(format!(
            "counts data has {} values but shape {expected:?} needs {}",
            values.len(),
            b * n
        )));
    }
    let counts = Array3::from_shape_vec((b, n, 1), values).expect("length checked");
    // The runtime's own check (finite, ≥ 0), here so that a bad request never joins a batch.
    aam_runtime::checked_counts(true, Some(counts.view()), b, n)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(counts)
}

/// Appends the numbers of a flat or nested JSON array as f32.
fn flatten_f32(v: &Value, out: &mut Vec<f32>) -> Result<(), ApiError> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|x| flatten_f32(x, out)),
        Value::Number(n) => match n.as_f64() {
            Some(x) => {
                out.push(x as f32);
                Ok(())
            }
            None => Err(ApiError::bad_request(format!("count {n} is not a number"))),
        },
        other => Err(ApiError::bad_request(format!(
            "counts data must be an array of numbers, found {other}"
        ))),
    }
}

/// The token tensor `input`, checked against the model.
fn tokens_from(input: &InputTensor, state: &AppState) -> Result<Array3<i64>, ApiError> {
    let m = &state.model.config().model;
    if !["INT64", "INT32", "INT16", "INT8", "UINT8"].contains(&input.datatype.as_str()) {
        return Err(ApiError::bad_request(format!(
            "tokens datatype {} is not an integer type; use INT64",
            input.datatype
        )));
    }
    let width = m.max_bp + 1;
    let shape_error = || {
        ApiError::bad_request(format!(
            "tokens shape {:?} does not fit the model; it takes [batch ≥ 1, 1 ≤ n_asv ≤ {}, {width}]",
            input.shape, m.token_limit
        ))
    };
    let [b, n, w] = input.shape.as_slice() else {
        return Err(shape_error());
    };
    let (b, n, w) = (
        usize::try_from(*b),
        usize::try_from(*n),
        usize::try_from(*w),
    );
    let (Ok(b), Ok(n), Ok(w)) = (b, n, w) else {
        return Err(shape_error());
    };
    if b == 0 || n == 0 || n > m.token_limit || w != width {
        return Err(shape_error());
    }
    // A declared batch can be any i64: the product is checked, never wrapped.
    let Some(needed) = b.checked_mul(n).and_then(|bn| bn.checked_mul(w)) else {
        return Err(shape_error());
    };
    let mut values = Vec::with_capacity(needed.min(1 << 24));
    flatten(&input.data, &mut values)?;
    if values.len() != needed {
        return Err(ApiError::bad_request(format!(
            "tokens data has {} values but shape {:?} needs {needed}",
            values.len(),
            input.shape,
        )));
    }
    if let Some(v) = values
        .iter()
        .find(|&&v| v < 0 || v as usize >= m.vocab_size)
    {
        return Err(ApiError::bad_request(format!(
            "token {v} is outside the vocabulary 0..{}",
            m.vocab_size
        )));
    }
    Ok(Array3::from_shape_vec((b, n, w), values).expect("length checked"))
}

/// Appends the integers of a flat or nested JSON array.
fn flatten(v: &Value, out: &mut Vec<i64>) -> Result<(), ApiError> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|x| flatten(x, out)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => {
                out.push(i);
                Ok(())
            }
            None => Err(ApiError::bad_request(format!(
                "token {n} is not an integer"
            ))),
        },
        other => Err(ApiError::bad_request(format!(
            "tokens data must be an array of integers, found {other}"
        ))),
    }
}

pub(crate) async fn infer(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<Json<InferRequest>, JsonRejection>,
) -> Response {
    let started = Instant::now();
    answer(
        &state,
        "infer",
        started,
        run_infer(&state, &name, body, started).await,
    )
}

/// The response of a prediction endpoint: its JSON body (200) or its error, recorded in the
/// metrics under `endpoint` with the number of samples predicted (0 on error).
pub(crate) fn answer(
    state: &AppState,
    endpoint: &'static str,
    started: Instant,
    result: Result<(Value, usize), ApiError>,
) -> Response {
    let (status, samples) = match &result {
        Ok((_, n)) => (200, *n),
        Err(e) => (e.status.as_u16(), 0),
    };
    state
        .metrics
        .record(endpoint, status, Some(started), samples);
    match result {
        Ok((body, _)) => Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Maps a failed forward pass: refused input 400, anything else 500.
pub(crate) fn model_error(e: RuntimeError) -> ApiError {
    match e {
        RuntimeError::Input(m) => ApiError::bad_request(m),
        RuntimeError::Data(d) => ApiError::bad_request(d.to_string()),
        other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

/// Waits for a concurrency permit and runs `work` before the request's deadline.
pub(crate) async fn within_limits<T>(
    state: &AppState,
    started: Instant,
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let deadline = tokio::time::Instant::from_std(started + state.options.request_timeout);
    let timed_out = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no answer within the request timeout of {:?}; the server is busy, retry later",
                state.options.request_timeout
            ),
        )
    };
    let _in_flight = state.metrics.enter();
    let _permit = tokio::time::timeout_at(deadline, state.permits.acquire())
        .await
        .map_err(|_| timed_out())?
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping"))?;
    tokio::time::timeout_at(deadline, work)
        .await
        .map_err(|_| timed_out())?
}

async fn run_infer(
    state: &AppState,
    name: &str,
    body: Result<Json<InferRequest>, JsonRejection>,
    started: Instant,
) -> Result<(Value, usize), ApiError> {
    check_name(state, name)?;
    let Json(req) = body.map_err(rejection)?;
    let (tokens, counts, ids) = inputs_from(&req, state)?;
    let batch = tokens.dim().0;
    let out = within_limits(state, started, async {
        state
            .batcher
            .infer(tokens, counts, ids)
            .await
            .map_err(|e| match e {
                BatchError::Model(e) => model_error(e),
                BatchError::Stopping => {
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping")
                }
            })
    })
    .await?;
    let wanted: Vec<&str> = req.outputs.iter().map(|o| o.name.as_str()).collect();
    let known: Vec<&str> = output_specs(state).into_iter().map(|(n, _)| n).collect();
    if let Some(unknown) = wanted.iter().find(|w| !known.contains(w)) {
        return Err(ApiError::bad_request(format!(
            "unknown output '{unknown}'; the model has {}",
            known.join(", ")
        )));
    }
    let mut outputs = Vec::new();
    let mut push = |name: &str, shape: &[usize], data: Vec<f32>| {
        if wanted.is_empty() || wanted.contains(&name) {
            outputs.push(json!({ "name": name, "datatype": "FP32", "shape": shape, "data": data }));
        }
    };
    push(
        "embeddings",
        out.embeddings.shape(),
        out.embeddings.iter().copied().collect(),
    );
    if let Some(a) = &out.target_prediction {
        push("target_prediction", a.shape(), a.iter().copied().collect());
    }
    if let Some(a) = &out.class_probabilities {
        push(
            "class_probabilities",
            a.shape(),
            a.iter().copied().collect(),
        );
    }
    if let Some(a) = &out.count_prediction {
        push("count_prediction", a.shape(), a.iter().copied().collect());
    }
    let mut body = json!({ "model_name": state.name, "model_version": "1", "outputs": outputs });
    if let Some(id) = &req.id {
        body["id"] = json!(id);
    }
    Ok((body, batch))
}
