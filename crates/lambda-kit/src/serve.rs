//! The two ways a function's router is served: by the Lambda runtime, or over plain HTTP
//! locally; and the `main` every function binary runs.
use crate::Binary;
use crate::invocation::{path_stage, strip_stage};
use axum::Router;
use axum::http::Uri;
use axum::http::uri::PathAndQuery;
use lambda_http::{Request, RequestExt};
use std::net::SocketAddr;
use std::process::ExitCode;
use tower::ServiceExt;
use tower::util::MapRequest;

/// Lambda is the runtime exactly when its Runtime API address is set.
pub const RUNTIME_API_VAR: &str = "AWS_LAMBDA_RUNTIME_API";
pub const DEFAULT_PORT: u16 = 3000;

pub type LambdaService = MapRequest<Router, fn(Request) -> Request>;

/// The router as lambda_http runs it: `lambda_http::run(lambda_service(router))`.
/// Tests wrap it in `lambda_http::Adapter` the same way `run` does.
pub fn lambda_service(router: Router) -> LambdaService {
    router.map_request(route_without_stage as fn(Request) -> Request)
}

/// Routes `/<stage>/build-info` as `/build-info`. Done here, on the path, rather than by
/// setting `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH`: it does not depend on the process
/// environment (set or not, the result is the same) and it also covers an HTTP API's named
/// stage, whose rawPath carries the stage whatever that variable says.
pub fn route_without_stage(mut request: Request) -> Request {
    let stage = request.request_context_ref().and_then(path_stage);
    let path = request.uri().path();
    let stripped = strip_stage(path, stage);
    if stripped.len() == path.len() {
        return request;
    }
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{stripped}?{query}"),
        None => stripped.to_owned(),
    };
    let mut parts = request.uri().clone().into_parts();
    if let Ok(pq) = PathAndQuery::try_from(path_and_query) {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

pub async fn run_lambda(router: Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_service(router)).await
}

/// `127.0.0.1:<PORT>` (3000 when unset); port 0 picks a free one, announced in the log.
pub fn local_addr(port: Option<&str>) -> Result<SocketAddr, String> {
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("PORT={p:?} is not a port number (0-65535)"))?,
    };
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

pub async fn serve_local(addr: SocketAddr, router: Router) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, url = %format!("http://{bound}"), "listening");
    axum::serve(listener, router).await
}

/// A function binary's whole `main`: logs, the runtime, then the Lambda runtime loop when
/// Lambda started the process, else the local server on `PORT`. `make_router` runs inside
/// the runtime (a function may need to load its AWS configuration first).
pub fn main<F, Fut>(binary: Binary, make_router: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Router>,
{
    let name = binary.name;
    crate::logging::init(name);
    // One thread: Lambda hands the process one event at a time, and the local server is for
    // development. It starts faster and keeps RSS lower than the multi-thread scheduler.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Referencing the stamp keeps it in the binary for `promote publish` (see build_info).
    let stamp = (binary.stamp)();

    if std::env::var_os(RUNTIME_API_VAR).is_some() {
        tracing::debug!(stamp, "starting under the Lambda runtime");
        return match runtime.block_on(async { run_lambda(make_router().await).await }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{name}: Lambda runtime error: {e}");
                ExitCode::FAILURE
            }
        };
    }

    let addr = match local_addr(std::env::var("PORT").ok().as_deref()) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::debug!(
        stamp,
        "starting the local HTTP server ({RUNTIME_API_VAR} is not set)"
    );
    match runtime.block_on(async { serve_local(addr, make_router().await).await }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: cannot serve on http://{addr}: {e} (set PORT to use another port)");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_defaults_to_3000_and_is_validated() {
        assert_eq!(local_addr(None).unwrap().to_string(), "127.0.0.1:3000");
        assert_eq!(local_addr(Some("8080")).unwrap().port(), 8080);
        assert_eq!(local_addr(Some("0")).unwrap().port(), 0);
        let err = local_addr(Some("http")).unwrap_err();
        assert!(err.contains("PORT=\"http\""), "{err}");
        assert!(local_addr(Some("70000")).is_err());
    }
}
