//! The server on loopback with the shipped model: every endpoint, answers equal to the
//! runtime's own, limits, path traversal, metrics, a load test and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aam_data::FeatureTable;
use aam_runtime::{prepare_table, Model, PredictOptions};
use aam_serve::ServeOptions;
use ndarray::{s, Array3};
use serde_json::{json, Value};

const NAME: &str = "circadian-exposure";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model() -> Arc<Model> {
    Arc::new(Model::load(repo().join("models/circadian-exposure")).unwrap())
}

/// A server on its own runtime and thread; stopped by `stop`.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    fn start(model: Arc<Model>, options: ServeOptions) -> Server {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                addr_tx.send(listener.local_addr()?).unwrap();
                aam_serve::serve(listener, model, NAME, options, async {
                    let _ = stopped.await;
                })
                .await
            })
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server starts");
        Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server and waits for it (at most 10 s).
    fn stop(mut self) -> std::io::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        let thread = self.thread.take().unwrap();
        let t0 = Instant::now();
        while !thread.is_finished() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the server did not stop within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        thread.join().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Status and body of a request, whatever the status.
fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match r {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("request failed: {e}"),
    }
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// `batch` samples of the shipped table's tokens, `[batch, n_asv, max_bp + 1]`.
fn table_tokens(model: &Model, first: usize, batch: usize) -> Array3<i64> {
    let (t, _) = aam_data::load_table(&repo().join("data/circadian-ihc/table.biom")).unwrap();
    let prepared = prepare_table(t, model.config(), "table").unwrap();
    let rows: Vec<usize> = (first..first + batch).collect();
    prepared.dataset.batch(&rows, None, 0).tokens
}

fn infer_body(tokens: &Array3<i64>) -> Value {
    let (b, n, w) = tokens.dim();
    json!({ "id": "r1", "inputs": [{ "name": "tokens", "shape": [b, n, w], "datatype": "INT64", "data": tokens.iter().collect::<Vec<_>>() }] })
}

fn output<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no output {name}: {body}"))
}

fn floats(v: &Value) -> Vec<f32> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn health_metadata_and_unknown_names() {
    let model = model();
    let width = model.config().model.max_bp + 1;
    let server = Server::start(model, ServeOptions::default());
    assert_eq!(
        answer(ureq::get(&server.url("/v2/health/live")).call()).0,
        200
    );
    assert_eq!(
        answer(ureq::get(&server.url("/v2/health/ready")).call()).0,
        200
    );
    assert_eq!(
        answer(ureq::get(&server.url(&format!("/v2/models/{NAME}/ready"))).call()).0,
        200
    );
    let (status, body) = answer(ureq::get(&server.url(&format!("/v2/models/{NAME}"))).call());
    assert_eq!(status, 200);
    let meta = json_of(&body);
    assert_eq!(meta["inputs"][0]["shape"], json!([-1, -1, width]));
    let outputs: Vec<&str> = meta["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        outputs,
        [
            "embeddings",
            "target_prediction",
            "class_probabilities",
            "count_prediction"
        ]
    );
    assert_eq!(meta["parameters"]["target_column"], "exposure_type");

    // Names are compared, never used as paths: traversal attempts are unknown models.
    for name in [
        "other",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
        "circadian-exposure%2F..%2F..%2Fconfig.json",
    ] {
        let (status, body) = answer(ureq::get(&server.url(&format!("/v2/models/{name}"))).call());
        // (`%2e%2e` is a dot segment to the client, which asks for /v2/: no endpoint.)
        assert_eq!(status, 404, "{name}: {body}");
        assert!(
            (body.contains("is not served here") || body.contains("no endpoint"))
                && !body.contains("root:"),
            "{name}: {body}"
        );
        let (status, _) = answer(
            ureq::post(&server.url(&format!("/v2/models/{name}/infer")))
                .send_json(json!({"inputs": []})),
        );
        assert_eq!(status, 404, "{name}");
    }
    let (status, body) =
        answer(ureq::get(&server.url("/models/circadian-exposure/model.onnx")).call());
    assert_eq!(status, 404);
    assert!(json_of(&body)["error"]
        .as_str()
        .unwrap()
        .contains("no endpoint"));
    server.stop().unwrap();
}

#[test]
fn infer_equals_the_runtime_and_bad_requests_get_400() {
    let model = model();
    let server = Server::start(model.clone(), ServeOptions::default());
    let tokens = table_tokens(&model, 0, 3);
    let want = model.run(tokens.view()).unwrap();
    let (status, body) = answer(
        ureq::post(&server.url(&format!("/v2/models/{NAME}/infer"))).send_json(infer_body(&tokens)),
    );
    assert_eq!(status, 200, "{body}");
    let got = json_of(&body);
    assert_eq!(got["id"], "r1");
    assert_eq!(
        output(&got, "embeddings")["shape"],
        json!([3, model.config().model.embedding_dim])
    );
    assert_close(
        &floats(output(&got, "embeddings")),
        want.embeddings.as_slice().unwrap(),
        "embeddings",
    );
    assert_close(
        &floats(output(&got, "class_probabilities")),
        want.class_probabilities
            .as_ref()
            .unwrap()
            .as_slice()
            .unwrap(),
        "class_probabilities",
    );

    let url = server.url(&format!("/v2/models/{NAME}/infer"));
    let mut wrong_width = infer_body(&tokens);
    wrong_width["inputs"][0]["shape"] = json!([3, tokens.dim().1, 7]);
    let mut bad_token = infer_body(&tokens.slice(s![0..1, .., ..]).to_owned());
    bad_token["inputs"][0]["data"][5] = json!(9);
    let mut float_data = infer_body(&tokens.slice(s![0..1, .., ..]).to_owned());
    float_data["inputs"][0]["data"][5] = json!(1.5);
    // A batch of 2^62 rows: batch · n_asv · width overflows usize (it once panicked).
    let mut huge_batch = infer_body(&tokens.slice(s![0..1, 0..1, ..]).to_owned());
    huge_batch["inputs"][0]["shape"][0] = json!(4_611_686_018_427_387_904i64);
    let cases = [
        (wrong_width, "does not fit the model"),
        (huge_batch, "does not fit the model"),
        (bad_token, "token 9 is outside the vocabulary"),
        (float_data, "is not an integer"),
        (
            json!({"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [1]}]}),
            "unknown input 'x'",
        ),
        (json!({"inputs": "nope"}), "cannot read the request body"),
    ];
    for (body, expected) in cases {
        let (status, text) = answer(ureq::post(&url).send_json(body));
        assert_eq!(
            status,
            if expected.starts_with("cannot read") {
                422
            } else {
                400
            },
            "{text}"
        );
        assert!(
            json_of(&text)["error"].as_str().unwrap().contains(expected),
            "{expected}: {text}"
        );
    }
    let (status, text) = answer(
        ureq::post(&url)
            .set("content-type", "application/json")
            .send_string("{not json"),
    );
    assert_eq!(status, 400, "{text}");
    server.stop().unwrap();
}

#[test]
fn oversize_requests_get_413_and_timeouts_503() {
    let model = model();
    let tokens = table_tokens(&model, 0, 2);
    let small = ServeOptions {
        max_request_bytes: 4096,
        ..ServeOptions::default()
    };
    let server = Server::start(model.clone(), small);
    // As curl sends a large body: the headers first, the body only after `100 Continue`,
    // which an oversize declared length never gets.
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /v2/models/{NAME}/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n"
    );
    std::io::Write::write_all(&mut s, head.as_bytes()).unwrap();
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut text);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.contains("exceeds the server's limit of 4096 bytes"),
        "{text}"
    );
    assert_eq!(
        answer(ureq::get(&server.url("/v2/health/live")).call()).0,
        200,
        "the server still answers"
    );
    server.stop().unwrap();

    let hurried = ServeOptions {
        request_timeout: Duration::ZERO,
        ..ServeOptions::default()
    };
    let server = Server::start(model, hurried);
    let (status, text) = answer(
        ureq::post(&server.url(&format!("/v2/models/{NAME}/infer"))).send_json(infer_body(&tokens)),
    );
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("request timeout"), "{text}");
    server.stop().unwrap();
}

#[test]
fn samples_endpoint_equals_predicting_the_table() {
    let model = model();
    let server = Server::start(model.clone(), ServeOptions::default());
    let (t, _) = aam_data::load_table(&repo().join("data/circadian-ihc/table.biom")).unwrap();
    let t: FeatureTable = t.select_samples(&[0, 1, 2, 3]);
    // Each sample's ASVs in table order (as `t.sample` gives them): the order the model's
    // ASV slots take for ties in abundance, as in the table.
    let samples: Vec<Value> = (0..t.n_samples())
        .map(|s| {
            let asvs: Vec<Value> = t
                .sample(s)
                .map(|(o, c)| json!({"sequence": t.observation_ids[o as usize], "count": c}))
                .collect();
            json!({"id": t.sample_ids[s], "asvs": asvs})
        })
        .collect();
    let want = model
        .predict_table(t.clone(), "table", PredictOptions::default())
        .unwrap();
    let (status, body) = answer(
        ureq::post(&server.url(&format!("/aam/v1/models/{NAME}/predict")))
            .send_json(json!({"samples": samples})),
    );
    assert_eq!(status, 200, "{body}");
    let got = json_of(&body);
    assert_eq!(got["target_column"], "exposure_type");
    let rows = got["predictions"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for (row, w) in rows.iter().zip(&want.samples) {
        assert_eq!(row["sample_id"], w.sample_id.as_str());
        assert_eq!(row["label"].as_str(), w.label.as_deref());
        assert_eq!(row["n_asv"], w.n_asv);
        let probs: Vec<f32> = row["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_close(&probs, &w.probabilities, "probabilities");
    }
    let url = server.url(&format!("/aam/v1/models/{NAME}/predict"));
    let (status, body) = answer(ureq::post(&url).send_json(
        json!({"samples": [{"id": "empty", "asvs": [{"sequence": "ACGT", "count": 0}]}]}),
    ));
    assert_eq!(status, 200, "{body}");
    let row = &json_of(&body)["predictions"][0];
    assert_eq!(
        (row["sample_id"].as_str(), row["label"].is_null()),
        (Some("empty"), true),
        "{body}"
    );
    assert!(
        row["note"].as_str().unwrap().contains("no ASV with reads"),
        "{body}"
    );
    for (body, expected) in [
        (json!({"samples": []}), "no samples given"),
        (
            json!({"samples": [{"id": "a", "asvs": [{"sequence": "ACGT", "count": -1}]}]}),
            "negative",
        ),
        (
            json!({"samples": [{"id": "a", "asvs": [{"sequence": "ACGT", "count": 1}]}, {"id": "a", "asvs": []}]}),
            "duplicate sample id 'a'",
        ),
        (
            json!({"samples": [{"id": "a", "asvs": [{"sequence": "ACGT", "count": 1}, {"sequence": "ACGT", "count": 2}]}]}),
            "lists asv acgt twice",
        ),
    ] {
        let (status, text) = answer(ureq::post(&url).send_json(body));
        assert_eq!(status, 400, "{text}");
        assert!(text.to_lowercase().contains(expected), "{expected}: {text}");
    }
    server.stop().unwrap();
}

/// 8 clients × 25 one-sample requests on loopback: every answer equals the runtime's for
/// its own tokens, none fails; the batcher formed batches of several requests.
#[test]
fn load_test_with_dynamic_batching() {
    let model = model();
    let options = ServeOptions {
        max_delay: Duration::from_millis(20),
        workers: 1,
        ..ServeOptions::default()
    };
    let server = Arc::new(Server::start(model.clone(), options));
    let (clients, per_client) = (8, 25);
    let tokens = table_tokens(&model, 0, clients);
    let want: Vec<Vec<f32>> = (0..clients)
        .map(|c| {
            model
                .run(tokens.slice(s![c..c + 1, .., ..]))
                .unwrap()
                .embeddings
                .iter()
                .copied()
                .collect()
        })
        .collect();
    let t0 = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (server, tokens, want) = (server.clone(), &tokens, &want);
                scope.spawn(move || {
                    let agent = ureq::AgentBuilder::new().build();
                    let body = infer_body(&tokens.slice(s![c..c + 1, .., ..]).to_owned());
                    let mut times = Vec::new();
                    for _ in 0..per_client {
                        let t = Instant::now();
                        let (status, text) = answer(
                            agent
                                .post(&server.url(&format!("/v2/models/{NAME}/infer")))
                                .send_json(body.clone()),
                        );
                        times.push(t.elapsed());
                        assert_eq!(status, 200, "client {c}: {text}");
                        assert_close(
                            &floats(output(&json_of(&text), "embeddings")),
                            &want[c],
                            "embeddings",
                        );
                    }
                    times
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let wall = t0.elapsed();
    let mut sorted = latencies.clone();
    sorted.sort();
    let p = |q: f64| sorted[((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    println!(
        "load test: {} requests from {clients} clients in {wall:.2?}: {:.1} requests/s, latency p50 {:.2?}, p99 {:.2?}, 0 failed",
        latencies.len(),
        latencies.len() as f64 / wall.as_secs_f64(),
        p(0.5),
        p(0.99)
    );
    let metrics = answer(ureq::get(&server.url("/metrics")).call()).1;
    let total = clients * per_client;
    assert!(
        metrics.contains(&format!(
            "aam_requests_total{{endpoint=\"infer\",status=\"200\"}} {total}"
        )),
        "{metrics}"
    );
    let batches: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("aam_batch_samples_count "))
        .expect("batch count")
        .parse()
        .unwrap();
    assert!(
        batches < total as f64,
        "{batches} forward passes for {total} requests: no request shared a batch"
    );
    assert!(metrics.contains("aam_requests_in_flight 0"), "{metrics}");
    Arc::into_inner(server).unwrap().stop().unwrap();
}

/// Requests in flight when the shutdown comes are answered; then the port closes.
#[test]
fn graceful_shutdown_answers_requests_in_flight() {
    let model = model();
    let options = ServeOptions {
        max_delay: Duration::from_secs(5),
        ..ServeOptions::default()
    };
    let server = Server::start(model.clone(), options);
    let url = server.url(&format!("/v2/models/{NAME}/infer"));
    let body = infer_body(&table_tokens(&model, 0, 1));
    let pending = std::thread::spawn(move || answer(ureq::post(&url).send_json(body)));
    // The request is waiting in the batcher (up to 5 s) when the server is told to stop:
    // the metrics say so (a fixed sleep raced the client thread on a busy machine).
    let t0 = std::time::Instant::now();
    while !answer(ureq::get(&server.url("/metrics")).call())
        .1
        .contains("aam_requests_in_flight 1")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "the request never reached the server"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let addr = server.addr;
    server.stop().unwrap();
    let (status, text) = pending.join().unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "the port is closed"
    );
}

/// A fresh classifier with the count embedding `add`, exported and loaded.
fn count_model() -> Arc<Model> {
    use aam_model::{
        AamModel as _, CountEmbeddingMethod, CpuBackend, ModelConfig, SequencePredictor,
    };
    let shipped = model();
    let model_config = ModelConfig {
        count_embedding: true,
        count_embedding_method: CountEmbeddingMethod::Add,
        ..shipped.config().model.clone()
    };
    let net = SequencePredictor::<CpuBackend>::new(&model_config, &Default::default());
    let mut sink = aam_model::WeightSink::default();
    net.save_weights(&mut sink);
    let config = aam_config::CheckpointConfig {
        model: model_config,
        ..shipped.config().clone()
    };
    let bytes = aam_export::onnx_bytes(&config, &sink.into_map(), 17).unwrap();
    Arc::new(Model::from_bytes(&bytes, std::path::Path::new("count-model.onnx")).unwrap())
}

#[test]
fn a_count_model_takes_counts_beside_the_tokens() {
    let model = count_model();
    let tokens = table_tokens(&model, 0, 3);
    let (b, n, _) = tokens.dim();
    let counts = Array3::from_shape_fn((b, n, 1), |(i, j, _)| {
        if tokens[[i, j, 0]] == 0 {
            0.0f32
        } else {
            (1 + (i * 31 + j * 7) % 200) as f32
        }
    });
    let want = model.run_with_counts(tokens.view(), counts.view()).unwrap();
    let server = Server::start(model.clone(), ServeOptions::default());
    let (status, body) = answer(ureq::get(&server.url(&format!("/v2/models/{NAME}"))).call());
    assert_eq!(status, 200);
    let inputs = json_of(&body)["inputs"].clone();
    assert_eq!(inputs[1]["name"], "counts", "{body}");
    assert_eq!(inputs[1]["shape"], json!([-1, -1, 1]));

    let url = server.url(&format!("/v2/models/{NAME}/infer"));
    let mut request = infer_body(&tokens);
    request["inputs"].as_array_mut().unwrap().push(json!({
        "name": "counts", "shape": [b, n, 1], "datatype": "FP32", "data": counts.iter().collect::<Vec<_>>()
    }));
    let (status, body) = answer(ureq::post(&url).send_json(request.clone()));
    assert_eq!(status, 200, "{body}");
    let got = json_of(&body);
    assert_close(
        &floats(output(&got, "embeddings")),
        &want.embeddings.iter().copied().collect::<Vec<_>>(),
        "embeddings",
    );

    // Without its counts the request is refused with a message, not run on zeros.
    let (status, body) = answer(ureq::post(&url).send_json(infer_body(&tokens)));
    assert_eq!(status, 400);
    assert!(body.contains("'counts'"), "{body}");
    // Counts of the wrong shape or sign are refused too.
    let mut bad = request.clone();
    bad["inputs"][1]["shape"] = json!([b, n + 1, 1]);
    assert_eq!(answer(ureq::post(&url).send_json(bad)).0, 400);
    let mut negative = request;
    negative["inputs"][1]["data"][0] = json!(-3.0);
    let (status, body) = answer(ureq::post(&url).send_json(negative));
    assert_eq!(status, 400);
    assert!(body.contains("negative"), "{body}");
    server.stop().unwrap();
}

/// The shipped classifier's architecture conditioned on one metadata column, `site`
/// (labels `gut`, `skin`; gmu fusion), fresh weights, exported and loaded.
fn conditioned_model() -> Arc<Model> {
    use aam_model::{AamModel as _, CpuBackend, SequencePredictor};
    let shipped = model();
    let mut model_config = shipped.config().model.clone();
    model_config.head.categorical_cardinalities = [("site".to_string(), 3)].into();
    model_config.head.categorical_fusion = aam_config::CategoricalFusion::Gmu;
    let net = SequencePredictor::<CpuBackend>::new(&model_config, &Default::default());
    let mut sink = aam_model::WeightSink::default();
    net.save_weights(&mut sink);
    let mut config = aam_config::CheckpointConfig {
        model: model_config,
        ..shipped.config().clone()
    };
    let target = config.target.as_mut().unwrap();
    target.categories = [(
        "site".to_string(),
        vec!["gut".to_string(), "skin".to_string()],
    )]
    .into();
    let bytes = aam_export::onnx_bytes(&config, &sink.into_map(), 17).unwrap();
    Arc::new(Model::from_bytes(&bytes, std::path::Path::new("conditioned.onnx")).unwrap())
}

#[test]
fn a_conditioned_model_takes_each_samples_categories() {
    let model = conditioned_model();
    let server = Server::start(model.clone(), ServeOptions::default());
    let (t, _) = aam_data::load_table(&repo().join("data/circadian-ihc/table.biom")).unwrap();
    let t: FeatureTable = t.select_samples(&[0, 0, 0, 0]);
    let sample = |id: &str, site: Value| {
        let asvs: Vec<Value> = t
            .sample(0)
            .map(|(o, c)| json!({"sequence": t.observation_ids[o as usize], "count": c}))
            .collect();
        json!({"id": id, "asvs": asvs, "categories": {"site": site}})
    };
    let url = server.url(&format!("/aam/v1/models/{NAME}/predict"));
    let body = json!({"samples": [sample("a", json!("gut")), sample("b", json!("skin")), sample("c", Value::Null), sample("d", json!("volcano"))]});
    let (status, text) = answer(ureq::post(&url).send_json(body));
    assert_eq!(status, 200, "{text}");
    let got = json_of(&text);
    let probs = |row: usize| -> Vec<f32> {
        got["predictions"][row]["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    // Each equals the runtime given the same sample with that site's index (gut 1,
    // skin 2, unknown 0).
    let one = t.select_samples(&[0]);
    let runtime = |site: Option<&str>| {
        let mut c = aam_runtime::SampleCategories::new("test", ["site".to_string()]);
        if let Some(s) = site {
            c.insert(&one.sample_ids[0], "site", s);
        }
        model
            .predict_table_with_categories(
                one.clone(),
                "table",
                PredictOptions::default(),
                Some(&c),
            )
            .unwrap()
            .samples[0]
            .probabilities
            .clone()
    };
    assert_close(&probs(0), &runtime(Some("gut")), "gut");
    assert_close(&probs(1), &runtime(Some("skin")), "skin");
    assert_close(&probs(2), &runtime(None), "missing");
    assert_close(
        &probs(3),
        &probs(2),
        "an unseen site is the unknown category",
    );
    let gap = probs(0)
        .iter()
        .zip(probs(1))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        gap > 1e-5,
        "the site changes the prediction: {:?} vs {:?}",
        probs(0),
        probs(1)
    );
    assert!(got["warnings"].to_string().contains("volcano"), "{text}");
    // Without the categories, or without the model's column, the request is refused.
    let mut no_categories = sample("a", json!("gut"));
    no_categories.as_object_mut().unwrap().remove("categories");
    let mut other_column = sample("a", json!("gut"));
    other_column["categories"] = json!({"body-site": "gut"});
    for (s, expected) in [
        (no_categories, "has no \\\"categories\\\""),
        (other_column, "has no 'site'"),
        (sample("a", json!(["gut"])), "give a string"),
    ] {
        let (status, text) = answer(ureq::post(&url).send_json(json!({"samples": [s]})));
        assert_eq!(status, 400, "{text}");
        assert!(text.contains(expected), "{expected}: {text}");
    }
    server.stop().unwrap();
}

#[test]
fn infer_takes_categorical_ids_for_a_conditioned_model() {
    let model = conditioned_model();
    let server = Server::start(model.clone(), ServeOptions::default());
    let (status, body) = answer(ureq::get(&server.url(&format!("/v2/models/{NAME}"))).call());
    assert_eq!(status, 200);
    let meta = json_of(&body);
    assert_eq!(meta["inputs"][1]["name"], "categorical_ids", "{body}");
    assert_eq!(meta["inputs"][1]["shape"], json!([-1, 1]));
    assert_eq!(meta["parameters"]["categorical_columns"], json!(["site"]));
    assert_eq!(
        meta["parameters"]["categories"]["site"],
        json!(["gut", "skin"])
    );

    let url = server.url(&format!("/v2/models/{NAME}/infer"));
    let request = |tokens: &Array3<i64>, ids: &[i64]| {
        let mut r = infer_body(tokens);
        r["inputs"].as_array_mut().unwrap().push(json!({
            "name": "categorical_ids", "shape": [ids.len(), 1], "datatype": "INT64", "data": ids
        }));
        r
    };
    // Requests sent together (batched by the server) each get the runtime's outputs for
    // their own indices.
    let tokens = table_tokens(&model, 0, 2);
    let cases: Vec<Vec<i64>> = vec![vec![1, 2], vec![0, 1], vec![2, 2], vec![0, 0]];
    std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|ids| {
                let body = request(&tokens, ids);
                let url = url.clone();
                scope.spawn(move || answer(ureq::post(&url).send_json(body)))
            })
            .collect();
        for (ids, h) in cases.iter().zip(handles) {
            let (status, body) = h.join().unwrap();
            assert_eq!(status, 200, "{body}");
            let ids_array = ndarray::Array2::from_shape_vec((2, 1), ids.clone()).unwrap();
            let want = model
                .run_with_categories(tokens.view(), None, ids_array.view())
                .unwrap();
            let got = json_of(&body);
            assert_close(
                &floats(output(&got, "class_probabilities")),
                &want
                    .class_probabilities
                    .unwrap()
                    .iter()
                    .copied()
                    .collect::<Vec<_>>(),
                &format!("ids {ids:?}"),
            );
        }
    });
    // Without the indices, or with one outside its column's categories: 400.
    let (status, text) = answer(ureq::post(&url).send_json(infer_body(&tokens)));
    assert_eq!(status, 400);
    assert!(text.contains("'categorical_ids'"), "{text}");
    let (status, text) = answer(ureq::post(&url).send_json(request(&tokens, &[1, 3])));
    assert_eq!(status, 400);
    assert!(text.contains("outside 0..3"), "{text}");
    server.stop().unwrap();
}

/// A regressor of two target columns answers `values` per sample (each column in its
/// units, as the runtime predicts the same table) and lists the `target_columns`.
#[test]
fn a_regressor_of_several_columns_answers_each() {
    use aam_model::{AamModel as _, CpuBackend, SequencePredictor};
    let shipped = model();
    let model_config = aam_config::ModelConfig {
        out_dim: 2,
        is_classifier: false,
        ..shipped.config().model.clone()
    };
    let net = SequencePredictor::<CpuBackend>::new(&model_config, &Default::default());
    let mut sink = aam_model::WeightSink::default();
    net.save_weights(&mut sink);
    let target = aam_config::TargetInfo {
        column: "age".into(),
        kind: aam_data::TargetKind::Numeric,
        classes: Vec::new(),
        mean: 40.0,
        std: 10.0,
        transform: Default::default(),
        normalize_by: None,
        by_category: Vec::new(),
        quantiles: Vec::new(),
        categories: Default::default(),
        more_columns: vec![aam_config::TargetColumn {
            column: "ph".into(),
            mean: 6.0,
            std: 0.5,
        }],
    };
    let config = aam_config::CheckpointConfig {
        model: model_config,
        target: Some(target),
        ..shipped.config().clone()
    };
    let bytes = aam_export::onnx_bytes(&config, &sink.into_map(), 17).unwrap();
    let model = Arc::new(Model::from_bytes(&bytes, std::path::Path::new("two.onnx")).unwrap());
    let server = Server::start(model.clone(), ServeOptions::default());
    let (t, _) = aam_data::load_table(&repo().join("data/circadian-ihc/table.biom")).unwrap();
    let one = t.select_samples(&[0]);
    let asvs: Vec<Value> = one
        .sample(0)
        .map(|(o, c)| json!({"sequence": one.observation_ids[o as usize], "count": c}))
        .collect();
    let url = server.url(&format!("/aam/v1/models/{NAME}/predict"));
    let (status, text) =
        answer(ureq::post(&url).send_json(json!({"samples": [{"id": "a", "asvs": asvs}]})));
    assert_eq!(status, 200, "{text}");
    let got = json_of(&text);
    assert_eq!(got["target_columns"], json!(["age", "ph"]));
    let want = model
        .predict_table(one, "test", aam_runtime::PredictOptions::default())
        .unwrap();
    let values: Vec<f64> = got["predictions"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(values.len(), 2);
    for (g, w) in values.iter().zip(&want.samples[0].values) {
        assert!(
            (g - w).abs() <= 1e-9 * w.abs().max(1.0),
            "{values:?} vs {:?}",
            want.samples[0].values
        );
    }
    assert_eq!(got["predictions"][0]["value"].as_f64(), Some(values[0]));
    server.stop().unwrap();
}
