//! The HTTP API, one axum `Router` for every way the function is reached: API Gateway REST
//! (payload 1.0) and HTTP API (2.0), a function URL, and the local server.
use crate::build_info::BuildInfo;
use crate::invocation::{Invocation, LambdaInfo};
use crate::logging::log_request;
use axum::extract::Request;
use axum::http::{Extensions, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use lambda_http::RequestExt;
use serde::Serialize;

pub fn router() -> Router {
    Router::new()
        // `get` answers HEAD too (same headers, no body); other methods get 405 + Allow.
        .route("/", get(hello))
        .route("/build-info", get(build_info))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(name_the_version))
        .layer(middleware::from_fn(log_request))
}

/// `x-app-version`: the published Lambda version that answered (`local` outside Lambda).
pub const VERSION_HEADER: &str = "x-app-version";
/// `x-app-git-sha`: the short git sha the binary was built from.
pub const SHA_HEADER: &str = "x-app-git-sha";

/// Names the version on every answer, errors included, so that a client (`promote probe`,
/// or anyone with curl) can attribute each one without asking `/build-info`. Both values
/// are already in memory: the version in the invocation context, the sha in the binary.
async fn name_the_version(request: Request, next: Next) -> Response {
    let version = request
        .extensions()
        .lambda_context_ref()
        .map(|c| c.env_config.version.clone());
    let mut response = next.run(request).await;
    let version = match version {
        Some(v) => HeaderValue::from_str(&v).ok(),
        None => Some(HeaderValue::from_static("local")),
    };
    let headers = response.headers_mut();
    if let Some(v) = version {
        headers.insert(VERSION_HEADER, v);
    }
    let sha = crate::build_info::short_sha(crate::build_info::GIT_SHA);
    headers.insert(SHA_HEADER, HeaderValue::from_static(sha));
    response
}

async fn hello() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Hello, World!",
    )
}

/// The body of `/build-info`: the build, and where this request was served.
#[derive(Debug, Serialize)]
pub struct BuildInfoResponse {
    #[serde(flatten)]
    pub build: BuildInfo,
    pub lambda: Option<LambdaInfo>,
    pub region: Option<String>,
    pub stage: Option<String>,
}

async fn build_info(extensions: Extensions) -> Json<BuildInfoResponse> {
    let invocation = Invocation::from_extensions(&extensions);
    Json(BuildInfoResponse {
        build: BuildInfo::current(),
        lambda: invocation.lambda,
        region: invocation.region,
        stage: invocation.stage,
    })
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: &'static str,
    message: String,
}

async fn not_found(method: Method, uri: Uri) -> Response {
    let message = format!(
        "no route for {method} {}; try GET / or GET /build-info",
        uri.path()
    );
    error(StatusCode::NOT_FOUND, "not_found", message)
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let message = format!(
        "{method} is not allowed on {}; see the Allow header",
        uri.path()
    );
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        message,
    )
}

fn error(status: StatusCode, error: &'static str, message: String) -> Response {
    (status, Json(ErrorBody { error, message })).into_response()
}
