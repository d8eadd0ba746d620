//! `aam serve`'s two inference endpoints with any request body, against the shipped
//! model, through the server's own router (no socket). The first byte picks the
//! endpoint: even, `POST /v2/models/{name}/infer` (KServe v2 tensors); odd,
//! `POST /aam/v1/models/{name}/predict` (samples as ASV sequences with counts). The
//! rest is the body, sent as `application/json`.
//!
//! Every body must be answered, with a 2xx or a 4xx: a panic in a handler, a dropped
//! answer or a 500 (the server's "anything else" after a refused input) is a finding.

use std::sync::{Arc, OnceLock};

use aam_runtime::Model;
use aam_serve::ServeOptions;
use axum::body::Body;
use axum::http::{header::CONTENT_TYPE, Request};
use axum::Router;
use tower::ServiceExt;

/// The name the model is served under.
pub const NAME: &str = "shipped";

/// One runtime and one router for every input (the router's batcher task lives there).
fn server() -> &'static (tokio::runtime::Runtime, Router) {
    static SERVER: OnceLock<(tokio::runtime::Runtime, Router)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let model = Model::load(crate::shipped::model_dir()).expect("the shipped model loads");
        let router = rt.block_on(async {
            aam_serve::router(Arc::new(model), NAME, ServeOptions::default())
        });
        (rt, router)
    })
}

/// Posts `data[1..]` to the endpoint `data[0]` picks and checks the answer's status.
pub fn run(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    let uri = if selector % 2 == 0 {
        format!("/v2/models/{NAME}/infer")
    } else {
        format!("/aam/v1/models/{NAME}/predict")
    };
    let (rt, router) = server();
    let request = Request::post(&uri)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .expect("a valid request");
    let response = rt
        .block_on(router.clone().oneshot(request))
        .expect("the router answers every request");
    let status = response.status();
    assert!(
        status.is_success() || status.is_client_error(),
        "{uri} answered {status} to a {}-byte body",
        body.len()
    );
}
