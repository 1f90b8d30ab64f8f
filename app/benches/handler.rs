//! In-process latency of `GET /build-info` (`cargo bench -p app --bench handler`).
//! Figures are printed, never asserted.
//!
//! - router: an `http::Request` through the axum router, body collected.
//! - lambda: what the runtime does per invocation minus the Runtime API round trip: the REST
//!   event JSON parsed, routed through `lambda_http::Adapter` (stage stripping included),
//!   and the proxy response serialised.
use axum::body::Body;
use axum::http::Request;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent};
use std::time::{Duration, Instant};
use tower::ServiceExt;

const EVENT: &str = include_str!("../tests/fixtures/apigw-rest-dev-build-info.json");

fn main() {
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");

    let router = app::router();
    let router_times = runtime.block_on(measure(iterations, || {
        let router = router.clone();
        async move {
            let request = Request::get("/build-info").body(Body::empty()).unwrap();
            let response = router.oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200);
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap()
                .len()
        }
    }));
    report("router  GET /build-info", &router_times);

    let service = app::lambda_service();
    let lambda_times = runtime.block_on(measure(iterations, || {
        let service = service.clone();
        async move {
            let payload: LambdaRequest = serde_json::from_str(EVENT).unwrap();
            let mut ctx = Context::default();
            ctx.request_id = "bench".into();
            ctx.invoked_function_arn =
                "arn:aws:lambda:eu-west-2:123456789012:function:app:dev".into();
            let response = Adapter::from(service)
                .oneshot(LambdaEvent::new(payload, ctx))
                .await
                .unwrap();
            serde_json::to_vec(&response).unwrap().len()
        }
    }));
    report(
        "lambda  REST event /dev/build-info -> proxy response JSON",
        &lambda_times,
    );
}

async fn measure<F, Fut>(iterations: usize, mut call: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    for _ in 0..iterations / 10 {
        std::hint::black_box(call().await);
    }
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        std::hint::black_box(call().await);
        times.push(started.elapsed());
    }
    times.sort_unstable();
    times
}

fn report(name: &str, sorted: &[Duration]) {
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let mean = sorted.iter().sum::<Duration>() / sorted.len() as u32;
    println!(
        "{name}: n={} median={:.1?} p99={:.1?} max={:.1?} mean={:.1?}",
        sorted.len(),
        at(0.5),
        at(0.99),
        at(1.0),
        mean
    );
}
