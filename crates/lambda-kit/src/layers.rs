//! The middleware every function's router gets: the version headers and the request log.
use crate::Binary;
use crate::build_info::short_sha;
use crate::logging::log_request;
use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use lambda_http::RequestExt;

/// `x-app-version`: the published Lambda version that answered (`local` outside Lambda).
pub const VERSION_HEADER: &str = "x-app-version";
/// `x-app-git-sha`: the short git sha the binary was built from.
pub const SHA_HEADER: &str = "x-app-git-sha";

/// `router` with the version headers on every answer and one log line per request.
pub fn with_common_layers(router: Router, binary: Binary) -> Router {
    let sha = binary.git_sha;
    router
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            name_the_version(request, next, sha)
        }))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            log_request(request, next, sha)
        }))
}

/// Names the version on every answer, errors included, so that a client (`promote probe`,
/// or anyone with curl) can attribute each one without asking `/build-info`. Both values
/// are already in memory: the version in the invocation context, the sha in the binary.
async fn name_the_version(request: Request, next: Next, git_sha: &'static str) -> Response {
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
    headers.insert(SHA_HEADER, HeaderValue::from_static(short_sha(git_sha)));
    response
}
