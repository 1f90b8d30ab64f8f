//! The `app` binary outside Lambda: a real HTTP server on loopback, the same router.
use crate::common;

use common::{http, start_local_server};
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_app");

#[test]
fn serves_root_and_build_info_over_http_and_logs_each_request() {
    let (mut server, addr) = start_local_server(BIN.as_ref());

    let root = http(addr, "GET", "/");
    assert_eq!(root.status, 200);
    assert_eq!(
        root.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(root.text(), "Hello, World!");

    let info = http(addr, "GET", "/build-info");
    assert_eq!(info.status, 200);
    assert_eq!(info.header("content-type"), Some("application/json"));
    let body = info.json();
    assert_eq!(body["name"], "app");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["git"]["sha"], app::build_info::GIT_SHA);
    assert_eq!(body["build"]["profile"], "debug");
    // Not inside Lambda, not behind API Gateway.
    for field in ["lambda", "region", "stage"] {
        assert!(
            body[field].is_null(),
            "{field} should be null locally: {body}"
        );
    }

    let head = http(addr, "HEAD", "/build-info");
    assert_eq!(head.status, 200);
    assert_eq!(head.text(), "");

    let post = http(addr, "POST", "/build-info");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET,HEAD"));

    let missing = http(addr, "GET", "/missing");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "not_found");

    let logged: Vec<_> = server
        .output
        .json_lines(Duration::from_millis(300))
        .into_iter()
        .filter(|l| l["message"] == "request")
        .collect();
    let seen: Vec<(String, String, u64)> = logged
        .iter()
        .map(|l| {
            assert!(l["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{l}");
            assert_eq!(l["level"], "INFO");
            let s = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
            (
                s("method"),
                s("path"),
                l["status"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let want = [
        ("GET", "/", 200),
        ("GET", "/build-info", 200),
        ("HEAD", "/build-info", 200),
        ("POST", "/build-info", 405),
        ("GET", "/missing", 404),
    ];
    let want: Vec<(String, String, u64)> = want
        .iter()
        .map(|(m, p, s)| (m.to_string(), p.to_string(), *s))
        .collect();
    assert_eq!(seen, want, "one log line per request, in order");
}

#[test]
fn rust_log_warn_silences_the_request_log() {
    let mut command = Command::new(BIN);
    // Nothing is announced at warn, so the port is chosen here.
    let port = common::free_port();
    command
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("PORT", port.to_string())
        .env("RUST_LOG", "warn");
    let mut server = common::Running::spawn(&mut command);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    common::wait_until_listening(addr);
    assert_eq!(http(addr, "GET", "/").status, 200);
    let lines = server.output.json_lines(Duration::from_millis(300));
    assert!(
        lines.is_empty(),
        "nothing should be logged at warn: {lines:?}"
    );
}

#[test]
fn a_bad_port_is_refused_with_a_clear_message() {
    let out = Command::new(BIN)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("PORT", "http")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PORT=\"http\" is not a port number"),
        "{stderr}"
    );
}

#[test]
fn a_busy_port_fails_and_says_how_to_choose_another() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(BIN)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("PORT", &port)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("PORT"),
        "{stderr}"
    );
}

#[test]
fn every_answer_names_the_version_errors_included() {
    let (_server, addr) = start_local_server(BIN.as_ref());
    let sha = app::build_info::short_sha(app::build_info::GIT_SHA);
    for (method, path, status) in [
        ("GET", "/", 200),
        ("GET", "/missing", 404),
        ("POST", "/build-info", 405),
    ] {
        let answer = http(addr, method, path);
        assert_eq!(answer.status, status, "{method} {path}");
        // Served locally, there is no published Lambda version.
        assert_eq!(
            answer.header("x-app-version"),
            Some("local"),
            "{method} {path}"
        );
        assert_eq!(answer.header("x-app-git-sha"), Some(sha), "{method} {path}");
    }
}
