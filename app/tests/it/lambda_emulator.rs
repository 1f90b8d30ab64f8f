//! The function under the Lambda runtime emulator of cargo-lambda (installed into .venv by
//! tools/venv.sh): `cargo lambda watch` serves the Runtime API, the `app` binary this test run
//! built polls it, and `cargo lambda invoke --data-file` sends a REST API event for
//! `/dev/build-info` on stage `dev`.
//!
//! `--only-lambda-apis` makes watch run the emulator without compiling the function itself:
//! a `cargo run` nested inside `cargo test` would rebuild into the shared target dir; the
//! binary under test is the one cargo just built. `make test` puts .venv/bin on PATH.
use crate::common;

use common::{Running, free_port, venv_tool};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

const REST_EVENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/apigw-rest-dev-build-info.json"
);

#[test]
fn rest_event_for_dev_build_info_through_the_emulator() {
    let cargo_lambda = venv_tool("cargo-lambda");
    let port = free_port().to_string();

    let mut watch = Running::spawn(
        Command::new(&cargo_lambda)
            .args(["lambda", "watch", "--only-lambda-apis", "--color", "never"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port", &port])
            .current_dir(env!("CARGO_MANIFEST_DIR")),
    );
    // watch prints the environment the function must run with, then starts the server.
    let mut function_env = BTreeMap::new();
    watch.output.wait_for("the emulator to start", |line| {
        let var = line
            .split_once("INFO ")
            .and_then(|(_, kv)| kv.split_once('='));
        if let Some((key, value)) = var.filter(|(key, _)| key.starts_with("AWS_LAMBDA_")) {
            function_env.insert(key.to_owned(), value.trim().to_owned());
        }
        line.contains("starting Runtime server").then_some(())
    });
    assert!(
        function_env.contains_key("AWS_LAMBDA_RUNTIME_API"),
        "watch did not say where its Runtime API is: {function_env:?}"
    );
    common::wait_until_listening(format!("127.0.0.1:{port}").parse().unwrap());

    let mut function = Running::spawn(
        Command::new(env!("CARGO_BIN_EXE_app"))
            .envs(&function_env)
            // The emulator's invoked ARN is a placeholder; region then comes from AWS_REGION.
            .env("AWS_REGION", "eu-west-2")
            .env("RUST_LOG", "info"),
    );

    let invoke = run_with_timeout(
        Command::new(&cargo_lambda)
            .args([
                "lambda",
                "invoke",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port,
            ])
            .args(["--data-file", REST_EVENT, "--output-format", "json"]),
        Duration::from_secs(60),
    );
    let response: Value = serde_json::from_str(&invoke)
        .unwrap_or_else(|e| panic!("invoke did not print a JSON response ({e}):\n{invoke}"));

    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(response["isBase64Encoded"], false);
    assert_eq!(
        response["multiValueHeaders"]["content-type"][0],
        "application/json"
    );
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["stage"], "dev");
    assert_eq!(body["git"]["sha"], app::build_info::GIT_SHA);
    assert_eq!(body["region"], "eu-west-2");
    assert_eq!(
        body["lambda"]["function_name"],
        function_env["AWS_LAMBDA_FUNCTION_NAME"]
    );
    assert_eq!(
        body["lambda"]["function_version"],
        function_env["AWS_LAMBDA_FUNCTION_VERSION"]
    );
    assert_eq!(
        body["lambda"]["alias"],
        Value::Null,
        "the emulator invokes unqualified"
    );

    // The function logged the invocation with the Lambda request id.
    let log = function.output.wait_for("the request log line", |l| {
        let v: Value = serde_json::from_str(l).ok()?;
        (v["message"] == "request").then_some(v)
    });
    assert_eq!(log["path"], "/build-info");
    assert_eq!(log["stage"], "dev");
    assert_eq!(log["status"], 200);
    assert!(
        log["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{log}"
    );
    assert_eq!(log["version"], function_env["AWS_LAMBDA_FUNCTION_VERSION"]);
}

/// Runs a command to completion and returns its stdout; kills it (by its own handle) after
/// `limit`. The output here is small, so reading the pipes after exit cannot deadlock.
fn run_with_timeout(command: &mut Command, limit: Duration) -> String {
    let mut child = common::spawn_piped(command);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        status.success(),
        "{command:?} failed ({status}):\n{stdout}\n{stderr}"
    );
    stdout
}
