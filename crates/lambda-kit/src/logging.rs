//! One JSON line per request on stdout, level from `RUST_LOG`.
use crate::build_info;
use crate::invocation::Invocation;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// `RUST_LOG` in the usual `info` / `warn,app=debug` form. `filter::Targets` rather than
/// `EnvFilter`: the latter's regex engine costs ~0.5 MiB of bootstrap for span/field
/// filters nobody uses in a Lambda function.
pub fn filter_from(rust_log: Option<&str>) -> Result<Targets, String> {
    match rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(Targets::new().with_default(Level::INFO)),
        Some(spec) => spec
            .parse::<Targets>()
            .map_err(|e| format!("RUST_LOG={spec:?} is not a valid filter ({e}); using info")),
    }
}

/// Installs the JSON subscriber on stdout (Lambda ships stdout to CloudWatch Logs); `name`
/// (the binary's) prefixes a warning about `RUST_LOG`.
pub fn init(name: &str) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = filter_from(rust_log.as_deref()).unwrap_or_else(|warning| {
        eprintln!("{name}: {warning}");
        Targets::new().with_default(Level::INFO)
    });
    let json = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(std::io::stdout);
    tracing_subscriber::registry()
        .with(json.with_filter(filter))
        .init();
}

/// The request log line; `git_sha` is the serving binary's (its `build_info::GIT_SHA`).
pub async fn log_request(request: Request, next: Next, git_sha: &'static str) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let invocation = Invocation::from_extensions(request.extensions());
    let response = next.run(request).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let lambda = invocation.lambda.as_ref();
    tracing::info!(
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        latency_ms = (latency_ms * 1000.0).round() / 1000.0,
        request_id = invocation.request_id.as_deref(),
        version = lambda.map(|l| l.function_version.as_str()),
        alias = lambda.and_then(|l| l.alias.as_deref()),
        stage = invocation.stage.as_deref(),
        git_sha = build_info::short_sha(git_sha),
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_sets_the_level() {
        let default = filter_from(None).unwrap();
        assert!(default.would_enable("app", &Level::INFO));
        assert!(!default.would_enable("app", &Level::DEBUG));

        let warn = filter_from(Some("warn")).unwrap();
        assert!(!warn.would_enable("app", &Level::INFO));

        let targeted = filter_from(Some("warn,app=debug")).unwrap();
        assert!(targeted.would_enable("app::routes", &Level::DEBUG));
        assert!(!targeted.would_enable("hyper", &Level::INFO));
    }

    #[test]
    fn a_bad_rust_log_is_reported() {
        let err = filter_from(Some("app=loud")).unwrap_err();
        assert!(err.contains("RUST_LOG=\"app=loud\""), "{err}");
    }
}
