//! `POST /aam/v1/models/{name}/predict`: samples given as ASV sequences with counts,
//! prepared with the model's own settings (max bp, token limit) as `aam predict` prepares
//! a table, and predicted in the target's original units. Each sample keeps its ASVs in
//! the order given: the token limit breaks ties in abundance by that order, so a sample
//! whose ASVs are listed in table order gets the prediction `aam predict` gives it.
//!
//! Body: `{"samples": [{"id": "S1", "asvs": [{"sequence": "TACG…", "count": 12}, …]}, …]}`;
//! for a model conditioned on metadata categories each sample also has
//! `"categories": {"body-site": "gut", …}` with every column the model reads (`null`: a
//! missing value, the unknown category).
//! Answer: `{"model_name", "target_column", "target_columns", "classes", "quantile_levels",
//! "predictions": [{"sample_id", "n_asv", "value", "values", "label", "probabilities",
//! "quantiles", "embedding", "note"}, …], "warnings"}` (`quantiles`: a quantile regressor's
//! prediction at each level; `values`: a regressor of several target columns' prediction
//! of each, in `target_columns` order, `value` being the first).

use std::collections::{BTreeMap, HashSet};
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Instant;

use aam_data::FeatureTable;
use aam_runtime::{PredictOptions, SampleCategories};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api_error::ApiError;
use crate::v2::{answer, check_name, model_error, rejection, within_limits};
use crate::AppState;

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    /// The samples, answered in this order.
    pub samples: Vec<SampleIn>,
}

/// One sample: its ID and its ASVs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleIn {
    /// Sample ID (echoed).
    pub id: String,
    /// ASV sequences with their read counts.
    pub asvs: Vec<AsvCount>,
    /// Metadata column → the sample's value (a string or number; `null`: missing), for a
    /// model conditioned on metadata categories; not read by other models.
    #[serde(default)]
    pub categories: Option<BTreeMap<String, Value>>,
}

/// An ASV sequence and its count in the sample.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsvCount {
    /// The ASV's DNA sequence.
    pub sequence: String,
    /// Reads (non-negative, finite).
    pub count: f64,
}

/// The note of a sample without reads (as `aam predict` writes it).
const NO_READS: &str = "no ASV with reads in this sample; nothing to predict from";

/// One feature table per sample, its ASVs in the order the request lists them (`None`:
/// no ASV with reads). The token limit keeps a sample's most abundant ASVs with ties in
/// table order, so a sample must keep its own order: one table shared by all samples
/// would order ASVs by their first appearance in any sample, and could keep other ASVs
/// than `aam predict` keeps for the same sample.
///
/// Errors (400): no sample; an empty or duplicate sample ID; a negative or non-finite
/// count; an ASV listed twice in a sample; a sample whose IDs are not DNA sequences.
fn tables(req: &PredictRequest) -> Result<Vec<Option<FeatureTable>>, ApiError> {
    if req.samples.is_empty() {
        return Err(ApiError::bad_request("no samples given; send {\"samples\": [{\"id\": …, \"asvs\": [{\"sequence\": …, \"count\": …}]}]}"));
    }
    let mut seen = HashSet::new();
    if let Some(dup) = req.samples.iter().find(|s| !seen.insert(s.id.as_str())) {
        return Err(ApiError::bad_request(format!(
            "duplicate sample ID '{}'; every sample needs its own ID",
            dup.id
        )));
    }
    let origin = FsPath::new("request");
    req.samples
        .iter()
        .map(|sample| {
            let mut listed = HashSet::new();
            if let Some(twice) = sample
                .asvs
                .iter()
                .find(|a| !listed.insert(a.sequence.as_str()))
            {
                return Err(ApiError::bad_request(format!(
                    "sample '{}' lists ASV {} twice; give each sequence once, with its total count",
                    sample.id,
                    aam_data::error::short_asv(&twice.sequence)
                )));
            }
            let asvs: Vec<String> = sample.asvs.iter().map(|a| a.sequence.clone()).collect();
            let triplets = sample
                .asvs
                .iter()
                .enumerate()
                .map(|(o, a)| (0, o as u32, a.count))
                .collect();
            let table =
                FeatureTable::from_triplets(origin, vec![sample.id.clone()], asvs, triplets)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
            if table.nnz() == 0 {
                return Ok(None);
            }
            table
                .check_sequence_ids(origin)
                .map_err(|e| ApiError::bad_request(format!("sample '{}': {e}", sample.id)))?;
            Ok(Some(table))
        })
        .collect()
}

/// The samples' category labels for a model conditioned on metadata categories (`None`
/// for another model).
///
/// Errors (400): a sample without `categories`, or without one of the model's columns
/// (naming both); a value that is an array or an object.
fn categories(
    req: &PredictRequest,
    config: &aam_runtime::CheckpointConfig,
) -> Result<Option<SampleCategories>, ApiError> {
    let columns = config.conditioning_columns();
    if columns.is_empty() {
        return Ok(None);
    }
    let mut out = SampleCategories::new("request", columns.iter().map(|c| c.to_string()));
    for sample in &req.samples {
        let Some(given) = &sample.categories else {
            return Err(ApiError::bad_request(format!(
                "sample '{}' has no \"categories\"; this model is conditioned on the metadata columns {}: give {{\"categories\": {{\"{}\": …}}}} (null: missing)",
                sample.id,
                columns.join(", "),
                columns[0]
            )));
        };
        for column in &columns {
            let label = match given.get(*column) {
                None => {
                    return Err(ApiError::bad_request(format!(
                        "sample '{}': \"categories\" has no '{column}', which this model is conditioned on (null: a missing value)",
                        sample.id
                    )))
                }
                Some(Value::Null) => continue,
                Some(Value::String(s)) => s.clone(),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "sample '{}': categories['{column}'] is {other}; give a string, a number or null",
                        sample.id
                    )))
                }
            };
            out.insert(&sample.id, column, &label);
        }
    }
    Ok(Some(out))
}

pub(crate) async fn predict(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<Json<PredictRequest>, JsonRejection>,
) -> Response {
    let started = Instant::now();
    answer(
        &state,
        "predict",
        started,
        run_predict(&state, &name, body, started).await,
    )
}

async fn run_predict(
    state: &Arc<AppState>,
    name: &str,
    body: Result<Json<PredictRequest>, JsonRejection>,
    started: Instant,
) -> Result<(Value, usize), ApiError> {
    check_name(state, name)?;
    let Json(req) = body.map_err(rejection)?;
    let tables = tables(&req)?;
    let categories = categories(&req, state.model.config())?;
    let n = tables.len();
    let model = state.model.clone();
    let options = PredictOptions {
        batch_size: 1,
        threads: 1,
        ..Default::default()
    };
    let (rows, warnings) = within_limits(state, started, async move {
        tokio::task::spawn_blocking(move || {
            let (mut rows, mut warnings) = (Vec::new(), Vec::<String>::new());
            for (table, sample) in tables.into_iter().zip(&req.samples) {
                let Some(table) = table else {
                    rows.push(
                        json!({ "sample_id": sample.id, "n_asv": 0, "value": null, "label": null,
                                      "probabilities": [], "embedding": [], "note": NO_READS }),
                    );
                    continue;
                };
                let predicted = model.predict_table_with_categories(
                    table,
                    "request",
                    options,
                    categories.as_ref(),
                )?;
                for w in predicted.warnings {
                    if !warnings.contains(&w) {
                        warnings.push(w);
                    }
                }
                let p = &predicted.samples[0];
                rows.push(json!({
                    "sample_id": p.sample_id,
                    "n_asv": p.n_asv,
                    "value": p.value,
                    "values": p.values,
                    "label": p.label,
                    "probabilities": p.probabilities,
                    "quantiles": p.quantiles,
                    "embedding": p.embedding,
                    "note": p.note,
                }));
            }
            Ok::<_, aam_runtime::RuntimeError>((rows, warnings))
        })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("prediction failed: {e}"),
            )
        })?
        .map_err(model_error)
    })
    .await?;
    let target = state.model.config().target.as_ref();
    Ok((
        json!({
            "model_name": state.name,
            "target_column": target.map(|t| t.column.clone()),
            "target_columns": target.filter(|t| !t.more_columns.is_empty()).map(|t| t.column_names()).unwrap_or_default(),
            "classes": target.map(|t| t.classes.clone()).unwrap_or_default(),
            "quantile_levels": target.map(|t| t.quantiles.clone()).unwrap_or_default(),
            "predictions": rows,
            "warnings": warnings,
        }),
        n,
    ))
}
