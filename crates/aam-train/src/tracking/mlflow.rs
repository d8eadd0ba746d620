//! MLflow tracking over its REST API (`--mlflow-uri`): the run's parameters (the flattened
//! checkpoint configuration and training options), every step and epoch metric (names in
//! the [module documentation](super)), and artifacts uploaded at the end.
//!
//! Endpoints (MLflow REST API 2.0): `experiments/get-by-name`, `experiments/create`,
//! `runs/create`, `runs/get`, `runs/log-batch` and `runs/update` under
//! `/api/2.0/mlflow/`, and the artifact proxy `PUT /api/2.0/mlflow-artifacts/artifacts/…`
//! of a server that serves artifacts (`mlflow server`'s default). Credentials come from
//! the environment as for MLflow's own client: `MLFLOW_TRACKING_TOKEN` (bearer), or
//! `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD` (basic).
//!
//! The run's identity is kept in `<output>/mlflow_run.json`, so that `--resume` continues
//! the same MLflow run. Metrics are sent in batches after every epoch (at most 1,000 per
//! request); a failed request is reported on stderr and retried with the next batch, and
//! the training goes on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aam_model::weights::WeightSink;
use anyhow::{bail, Context, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{epoch_scalars, step_scalars, RunStart, Tracker};
use crate::epoch_record::EpochRecord;

/// Where and under which names a run is tracked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlflowOptions {
    /// Tracking server, `http://host:port` (https needs the `mlflow-tls` feature).
    pub uri: String,
    /// Experiment name; created when the server has none of that name.
    pub experiment: String,
    /// Run name; `None`: the server picks one.
    pub run_name: Option<String>,
}

/// What `<output>/mlflow_run.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunIdentity {
    /// The tracking server.
    pub tracking_uri: String,
    /// Experiment ID on that server.
    pub experiment_id: String,
    /// Run ID on that server.
    pub run_id: String,
}

/// Final status of a run (`runs/update`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// The training finished.
    Finished,
    /// The training stopped with an error.
    Failed,
}

/// The file in a checkpoint directory that names its MLflow run.
pub const RUN_FILE: &str = "mlflow_run.json";

/// Most metrics in one `runs/log-batch` request (the server's limit).
const METRICS_PER_REQUEST: usize = 1000;
/// Most params in one `runs/log-batch` request (the server's limit).
const PARAMS_PER_REQUEST: usize = 100;
/// Longest param value the server accepts, characters.
const PARAM_VALUE_LIMIT: usize = 6000;

/// A client of one MLflow run.
pub struct Mlflow {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
    identity: RunIdentity,
    artifact_uri: String,
    /// The run existed before this invocation (`--resume`): its params are logged.
    continued: bool,
    /// Metrics not yet accepted by the server: `{key, value, timestamp, step}`.
    pending: Vec<Value>,
    failed_requests: usize,
    /// Metric keys already warned about for a non-finite value.
    warned_non_finite: std::collections::BTreeSet<String>,
}

impl Mlflow {
    /// Connects to the server and starts the run: finds or creates the experiment and
    /// creates a run, or continues the run named by `dir/mlflow_run.json` when `resume`
    /// and it names the same server; writes `dir/mlflow_run.json`.
    ///
    /// Errors: the server cannot be reached or refuses a request (the message quotes it
    /// and names the URI), an https URI in a build without TLS, `dir/mlflow_run.json`
    /// cannot be written.
    pub fn open(options: &MlflowOptions, dir: &Path, resume: bool) -> Result<Mlflow> {
        let base = options.uri.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!(
                "--mlflow-uri {}: give the tracking server's address, http://host:port (a local folder of runs is not supported; start `mlflow server` on it)",
                options.uri
            );
        }
        if base.starts_with("https://") && !cfg!(feature = "mlflow-tls") {
            bail!(
                "--mlflow-uri {}: this aam was built without TLS; rebuild with `--features aam-cli/mlflow-tls` or reach the server over http",
                options.uri
            );
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build();
        let mut client = Mlflow {
            agent,
            base,
            authorization: authorization_from_env(),
            identity: RunIdentity {
                tracking_uri: options.uri.clone(),
                experiment_id: String::new(),
                run_id: String::new(),
            },
            artifact_uri: String::new(),
            continued: false,
            pending: Vec::new(),
            failed_requests: 0,
            warned_non_finite: Default::default(),
        };
        let run_file = dir.join(RUN_FILE);
        let previous: Option<RunIdentity> = if resume && run_file.exists() {
            Some(aam_data::files::read_json(&run_file)?)
        } else {
            None
        };
        match previous.filter(|p| p.tracking_uri == options.uri) {
            Some(previous) => {
                let run =
                    client.call("GET", &format!("runs/get?run_id={}", previous.run_id), None)?;
                client.artifact_uri = str_field(&run, &["run", "info", "artifact_uri"])?;
                client.identity = previous;
                client.continued = true;
                client.call(
                    "POST",
                    "runs/update",
                    Some(json!({"run_id": client.identity.run_id, "status": "RUNNING"})),
                )?;
            }
            None => {
                client.identity.experiment_id = client.experiment_id(&options.experiment)?;
                let mut request = json!({
                    "experiment_id": client.identity.experiment_id,
                    "start_time": millis(),
                    "tags": [
                        {"key": "mlflow.source.name", "value": "aam"},
                        {"key": "mlflow.source.type", "value": "LOCAL"},
                        {"key": "aam.version", "value": env!("CARGO_PKG_VERSION")},
                        {"key": "aam.output", "value": dir.display().to_string()},
                    ],
                });
                if let Some(name) = &options.run_name {
                    request["run_name"] = json!(name);
                }
                let run = client.call("POST", "runs/create", Some(request))?;
                client.identity.run_id = str_field(&run, &["run", "info", "run_id"])?;
                client.artifact_uri = str_field(&run, &["run", "info", "artifact_uri"])?;
            }
        }
        aam_data::files::write_json(&run_file, &client.identity)?;
        Ok(client)
    }

    /// The run's identity on its server.
    pub fn identity(&self) -> &RunIdentity {
        &self.identity
    }

    /// The run's page in the MLflow UI.
    pub fn run_url(&self) -> String {
        format!(
            "{}/#/experiments/{}/runs/{}",
            self.base, self.identity.experiment_id, self.identity.run_id
        )
    }

    /// Requests that failed and were reported so far (metrics are retried).
    pub fn failed_requests(&self) -> usize {
        self.failed_requests
    }

    /// Uploads `file` as artifact `name` (a path relative to the run's artifact root,
    /// `/`-separated). Errors: the file cannot be read, the server stores artifacts where
    /// REST cannot reach them (not `mlflow-artifacts:`), or the upload is refused.
    pub fn log_artifact(&mut self, file: &Path, name: &str) -> Result<()> {
        let root = self
            .artifact_uri
            .strip_prefix("mlflow-artifacts:")
            .map(|r| r.trim_start_matches('/'))
            .with_context(|| {
                format!(
                    "the MLflow server keeps this run's artifacts at {}, which aam cannot upload to; start the server with --serve-artifacts (the default of `mlflow server`)",
                    self.artifact_uri
                )
            })?;
        // With a host (`mlflow-artifacts://host:port/path`), the path follows it.
        let root = if self.artifact_uri.starts_with("mlflow-artifacts://") {
            root.split_once('/').map_or("", |(_, path)| path)
        } else {
            root
        };
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}/{}",
            self.base,
            root.trim_end_matches('/'),
            name
        );
        let request = self
            .with_auth(self.agent.put(&url))
            .set("Content-Type", "application/octet-stream");
        request
            .send_bytes(&bytes)
            .map_err(|e| request_error(e, &url))
            .with_context(|| format!("cannot upload {} to the MLflow run", file.display()))?;
        Ok(())
    }

    /// Sends the pending metrics and sets the run's status and end time. Errors: the
    /// server refuses either request.
    pub fn finish(&mut self, status: RunStatus) -> Result<()> {
        self.flush_metrics();
        if !self.pending.is_empty() {
            bail!(
                "{} metrics could not be sent to the MLflow server at {}",
                self.pending.len(),
                self.base
            );
        }
        let status = match status {
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
        };
        self.call(
            "POST",
            "runs/update",
            Some(json!({"run_id": self.identity.run_id, "status": status, "end_time": millis()})),
        )?;
        Ok(())
    }

    fn experiment_id(&mut self, name: &str) -> Result<String> {
        let query = format!(
            "experiments/get-by-name?experiment_name={}",
            url_encode(name)
        );
        match self.call("GET", &query, None) {
            Ok(found) => str_field(&found, &["experiment", "experiment_id"]),
            Err(e) if e.to_string().contains("RESOURCE_DOES_NOT_EXIST") => {
                let created =
                    self.call("POST", "experiments/create", Some(json!({ "name": name })))?;
                str_field(&created, &["experiment_id"])
            }
            Err(e) => Err(e),
        }
    }

    fn with_auth(&self, request: ureq::Request) -> ureq::Request {
        match &self.authorization {
            Some(a) => request.set("Authorization", a),
            None => request,
        }
    }

    /// One REST call to `/api/2.0/mlflow/<endpoint>`.
    fn call(&self, method: &str, endpoint: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        let request = self.with_auth(self.agent.request(method, &url));
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        }
        .map_err(|e| request_error(e, &url))?;
        let text = response
            .into_string()
            .with_context(|| format!("cannot read the MLflow server's answer to {url}"))?;
        if text.trim().is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_str(&text)
            .with_context(|| format!("the MLflow server answered {url} with no JSON: {text}"))
    }

    fn log_batch(&self, metrics: &[Value], params: &[Value]) -> Result<()> {
        self.call(
            "POST",
            "runs/log-batch",
            Some(json!({"run_id": self.identity.run_id, "metrics": metrics, "params": params})),
        )?;
        Ok(())
    }

    fn queue(&mut self, step: usize, values: Vec<(String, f64)>) {
        let timestamp = millis();
        for (key, value) in values {
            // JSON has no NaN or ∞: such a value cannot reach MLflow (TensorBoard has it).
            if !value.is_finite() {
                if self.warned_non_finite.insert(key.clone()) {
                    eprintln!("warning: MLflow cannot store the non-finite value {value} of '{key}' (step {step}); it is left out of the MLflow run, here and later");
                }
                continue;
            }
            self.pending
                .push(json!({"key": key, "value": value, "timestamp": timestamp, "step": step}));
        }
    }

    /// Sends the pending metrics; what the server did not accept stays pending.
    fn flush_metrics(&mut self) {
        while !self.pending.is_empty() {
            let n = self.pending.len().min(METRICS_PER_REQUEST);
            match self.log_batch(&self.pending[..n], &[]) {
                Ok(()) => {
                    self.pending.drain(..n);
                }
                Err(e) => {
                    self.failed_requests += 1;
                    eprintln!(
                        "warning: {} metrics not yet sent to MLflow (retried after the next epoch): {e:#}",
                        self.pending.len()
                    );
                    return;
                }
            }
        }
    }
}

impl Tracker for Mlflow {
    fn start(&mut self, run: &RunStart<'_>) -> Result<()> {
        if self.continued {
            // Params are immutable in MLflow and were logged when the run was created.
            return Ok(());
        }
        let mut flat = BTreeMap::new();
        flatten("", &serde_json::to_value(run.config)?, &mut flat);
        flatten("train", &serde_json::to_value(run.options)?, &mut flat);
        let params: Vec<Value> = flat
            .into_iter()
            .map(|(key, value)| {
                let value: String = value.chars().take(PARAM_VALUE_LIMIT).collect();
                json!({"key": key, "value": value})
            })
            .collect();
        for chunk in params.chunks(PARAMS_PER_REQUEST) {
            self.log_batch(&[], chunk)
                .context("cannot log the run's parameters to MLflow")?;
        }
        Ok(())
    }

    fn step(&mut self, step: usize, lr: f64, losses: &BTreeMap<String, f64>) -> Result<()> {
        self.queue(step, step_scalars(lr, losses));
        Ok(())
    }

    fn epoch(&mut self, record: &EpochRecord, _: Option<&WeightSink>) -> Result<()> {
        self.queue(record.step, epoch_scalars(record));
        self.flush_metrics();
        Ok(())
    }
}

/// Flattens JSON into `prefix.key.sub` → value text (arrays as JSON text; nulls left out).
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&join(k), v, out);
            }
        }
        Value::Null => {}
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn authorization_from_env() -> Option<String> {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    if let Some(token) = var("MLFLOW_TRACKING_TOKEN") {
        return Some(format!("Bearer {token}"));
    }
    let (user, password) = (
        var("MLFLOW_TRACKING_USERNAME")?,
        var("MLFLOW_TRACKING_PASSWORD")?,
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    Some(format!("Basic {encoded}"))
}

/// A ureq error as a message naming the URL and quoting the server's answer.
fn request_error(error: ureq::Error, url: &str) -> anyhow::Error {
    match error {
        ureq::Error::Status(code, response) => {
            let body = response.into_string().unwrap_or_default();
            anyhow::anyhow!("the MLflow server answered {url} with HTTP {code}: {}", body.trim())
        }
        ureq::Error::Transport(t) => anyhow::anyhow!(
            "cannot reach the MLflow server at {url}: {t}; check --mlflow-uri and that `mlflow server` runs there"
        ),
    }
}

fn str_field(value: &Value, path: &[&str]) -> Result<String> {
    let mut v = value;
    for key in path {
        v = &v[key];
    }
    v.as_str().map(str::to_string).with_context(|| {
        format!(
            "the MLflow server's answer has no {}: {value}",
            path.join(".")
        )
    })
}

/// Milliseconds since the Unix epoch, MLflow's timestamps.
fn millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The artifacts `aam pretrain`/`aam train` upload from a checkpoint directory, those that
/// exist: `(path, artifact name)`.
pub fn checkpoint_artifacts(dir: &Path, extra: &[PathBuf]) -> Vec<(PathBuf, String)> {
    [
        "config.json",
        "model.safetensors",
        "metrics.jsonl",
        "split.tsv",
    ]
    .iter()
    .map(|f| (dir.join(f), f.to_string()))
    .chain(extra.iter().map(|p| {
        let name = p
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        (p.clone(), format!("plots/{name}"))
    }))
    .filter(|(p, _)| p.is_file())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_nested_json() {
        let mut out = BTreeMap::new();
        flatten(
            "",
            &json!({"model": {"dim": 64, "kind": "x", "none": null}, "list": [1, 2]}),
            &mut out,
        );
        let expected: BTreeMap<String, String> =
            [("list", "[1,2]"), ("model.dim", "64"), ("model.kind", "x")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(url_encode("aam runs/ü"), "aam%20runs%2F%C3%BC");
    }

    #[test]
    fn rejects_a_folder_uri_before_any_request() {
        let dir = std::env::temp_dir();
        let options = MlflowOptions {
            uri: "./mlruns".into(),
            experiment: "aam".into(),
            run_name: None,
        };
        let err = Mlflow::open(&options, &dir, false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("http://host:port"), "{err}");
    }
}
