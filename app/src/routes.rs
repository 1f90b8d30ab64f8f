//! The HTTP API, one axum `Router` for every way the function is reached: API Gateway REST
//! (payload 1.0) and HTTP API (2.0), a function URL, and the local server.
use crate::build_info::{self, BuildInfo};
use crate::invocation::{Invocation, LambdaInfo};
use axum::http::{Extensions, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

pub fn router() -> Router {
    let router = Router::new()
        // `get` answers HEAD too (same headers, no body); other methods get 405 + Allow.
        .route("/", get(hello))
        .route("/build-info", get(build_info))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    lambda_kit::with_common_layers(router, crate::build_info::BINARY)
}

pub use lambda_kit::{SHA_HEADER, VERSION_HEADER};

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
        build: build_info::current(),
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
