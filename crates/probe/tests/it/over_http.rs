//! The engine against real HTTP servers on loopback: the `app` itself (its router served
//! in-process over HTTP, as `cargo run -p app` serves it) and a test server that splits
//! versions or stalls. Bounded in count and time; nothing leaves 127.0.0.1.

use std::time::Duration;

use probe::http::{Http, RequestSpec, target};
use probe::testing::{serve, split_rule};
use probe::{Config, Schedule, Split, Stats, start};

fn config(rate: f64, millis: u64) -> Config {
    Config {
        schedule: Schedule::new(rate, Duration::from_millis(millis)).unwrap(),
        timeout: Duration::from_secs(5),
        max_in_flight: 500,
    }
}

async fn probe(url: &str, path: &str, cfg: Config, split: Option<Split>) -> Stats {
    let mut stats = Stats::new(cfg.schedule.rate());
    if let Some(s) = split {
        stats.split_from(Duration::ZERO, s);
    }
    let transport = Http::new(target(url, path).unwrap(), cfg.max_in_flight);
    start(cfg, transport).finish(&mut stats).await;
    stats
}

#[tokio::test]
async fn every_answer_of_the_app_is_attributed_errors_included() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app::router()).await });
    for (path, status) in [("/build-info", "200"), ("/no-such-path", "404")] {
        let stats = probe(&url, path, config(200.0, 1000), None).await;
        let r = stats.report();
        assert_eq!(r.requests, 200, "{path}");
        assert_eq!(r.status_codes[status], 200, "{path}: {:?}", r.status_codes);
        assert_eq!(r.unattributed.requests, 0, "{path}");
        // Served outside Lambda, the app names itself `local`.
        assert_eq!(r.versions["local"].requests, 200, "{path}");
        assert_eq!(r.versions["local"].share, 1.0);
    }
    server.abort();
}

#[tokio::test]
async fn a_ten_percent_split_is_measured_inside_its_interval() {
    let server = serve(split_rule("3", "4", 10), None).await;
    let split = Split(vec![("3".into(), 0.9), ("4".into(), 0.1)]);
    let r = probe(&server.url(), "/", config(500.0, 2000), Some(split))
        .await
        .report();
    assert_eq!(r.requests, 1000);
    assert_eq!(r.versions["4"].requests, 100);
    assert_eq!(r.versions["4"].within_interval, Some(true));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[tokio::test]
async fn answers_without_a_version_are_unattributed_and_estimated() {
    let rule: probe::testing::Rule = std::sync::Arc::new(|n| match n % 5 {
        0 => (502, None),
        _ => (200, Some("3".to_string())),
    });
    let server = serve(rule, None).await;
    let split = Split(vec![("3".into(), 1.0)]);
    let r = probe(&server.url(), "/", config(200.0, 1000), Some(split))
        .await
        .report();
    assert_eq!(r.unattributed.requests, 40);
    assert_eq!(r.errors["http 502"], 40);
    let e = r.versions["3"].unattributed_estimate.as_ref().unwrap();
    assert_eq!((e.requests, e.estimated), (40.0, true));
}

#[tokio::test]
async fn a_server_stall_shows_in_the_open_loop_latencies() {
    // 200 requests a second for 3 s; the server holds every answer due between 1.0 s and
    // 1.5 s until 1.5 s. About 100 of 600 requests wait, up to 500 ms.
    let stall = (Duration::from_millis(1000), Duration::from_millis(500));
    let server = serve(split_rule("3", "4", 10), Some(stall)).await;
    let r = probe(&server.url(), "/", config(200.0, 3000), None)
        .await
        .report();
    let l = r.latency_ms.unwrap();
    assert_eq!(r.requests, 600);
    assert!(l.max >= 400.0, "max {} should show the 500 ms stall", l.max);
    assert!(
        l.p90 >= 100.0,
        "p90 {} should show the stall (1 in 6 requests wait)",
        l.p90
    );
    // Both versions were stalled alike.
    for v in ["3", "4"] {
        let p99 = r.versions[v].latency_ms.unwrap().p99;
        assert!(p99 >= 300.0, "version {v} p99 {p99}");
    }
    // The schedule went on during the stall: the rate achieved is the one asked.
    assert!((r.rate - 200.0).abs() < 20.0, "rate {}", r.rate);
}

#[tokio::test]
async fn a_request_with_a_method_and_body_arrives_as_given_and_is_judged_by_its_status() {
    // The server answers 200 to every request: for a probe expecting 204 each is a failure.
    let server = serve(split_rule("3", "4", 10), None).await;
    let spec = RequestSpec::new(
        "PUT",
        Some(br#"{"dateOfBirth":"2000-01-01"}"#),
        Some("application/json"),
    )
    .unwrap();
    let cfg = config(100.0, 200);
    let transport = Http::with_request(target(&server.url(), "/hello/probe").unwrap(), spec, 10);
    let mut stats = Stats::new(cfg.schedule.rate()).expecting(204);
    start(cfg, transport).finish(&mut stats).await;
    let r = stats.report();
    assert_eq!(r.requests, 20);
    assert_eq!(r.success, 0.0);
    assert_eq!(r.errors["http 200"], 20);
    let seen = server.received();
    assert_eq!(seen.len(), 20);
    for s in &seen {
        assert_eq!(s.line, "PUT /hello/probe HTTP/1.1");
        assert_eq!(s.content_type.as_deref(), Some("application/json"));
        assert_eq!(s.body, r#"{"dateOfBirth":"2000-01-01"}"#);
    }
    // A GET still carries no body and no content type.
    let get = probe(&server.url(), "/build-info", config(100.0, 100), None).await;
    assert_eq!(get.report().success, 1.0);
    let last = server.received().pop().unwrap();
    assert_eq!(
        (last.line.as_str(), last.content_type, last.body.as_str()),
        ("GET /build-info HTTP/1.1", None, "")
    );
}
