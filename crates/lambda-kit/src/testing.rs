//! For the functions' unit tests only (feature `testing`, which their dev-dependencies turn
//! on): one request through a router as API Gateway would hand it over.
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use lambda_http::RequestExt;
use std::collections::HashMap;
use tower::ServiceExt;

/// `method path` with an optional Content-Type, the stage variable `(name, value)` if any, and
/// `body`, through `router`: its status, headers and body bytes.
pub async fn call(
    router: Router,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    stage_variable: Option<(&str, &str)>,
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut builder = axum::http::Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    let mut request = builder.body(Body::from(body)).expect("a valid request");
    if let Some((name, value)) = stage_variable {
        let vars: HashMap<String, String> = [(name.to_owned(), value.to_owned())].into();
        request = request.with_stage_variables(vars);
    }
    let response = router
        .oneshot(request)
        .await
        .expect("routers are infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the body is in memory");
    (status, headers, bytes.to_vec())
}
