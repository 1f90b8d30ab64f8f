//! Zero downtime, as the seed "hello-revolut" measured it (a load generator running while a
//! deploy went out, counting failed requests): an open-loop load on every function's routes of
//! the live stage while `promote` walks a release of both functions through the live plan
//! (10% -> 50% -> 100%), then while `promote rollback --to-previous` takes it back. A correct
//! release fails no request: every answer is one its route allows, and both versions of both
//! functions answered during the run (app's answers name their Lambda version; birthday's are
//! counted by the gateway's per-version metrics), so the load did see the traffic move.
//!
//! The rate is modest (the debug builds of the gateway and the functions share 2 cores with
//! promote and the emulator); bench/ has the load figures.

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Stack, wait_for};
use testkit::http::Answer;
use testkit::load::{self, Request};

/// The Lambda version `/build-info` names in its body; other answers do not say.
fn lambda_version(answer: &Answer) -> Option<String> {
    let body: Value = serde_json::from_slice(&answer.body).ok()?;
    Some(body["lambda"]["function_version"].as_str()?.to_string())
}

/// Requests a second across the mix, sent on schedule whatever the answers.
const RATE: f64 = 80.0;
/// The load stops by then whatever happens.
const LOAD_LIMIT: Duration = Duration::from_secs(120);

/// The live plan with 1 s bakes, judged by the stage's alarms (the gateway evaluates them).
fn short_live_plan(dir: &std::path::Path) {
    let path = dir.join("live.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["poll_interval_seconds"] = 1.into();
    v["test_fixture_short_bakes"] = true.into();
    v["approval_required"] = false.into();
    v["analysis"] = json!({ "sources": ["alarms"] });
    for step in v["strategy"]["steps"].as_array_mut().unwrap() {
        step["bake_seconds"] = 1.into();
    }
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn a_release_of_two_functions_and_its_rollback_fail_no_request() {
    let stack = Stack::with_environments(short_live_plan);
    // Live serves the stable release; test the candidate one, which live's plan takes.
    let zips = stack.release_zips();
    let (app, birthday) = stack.publish_releases(&zips);
    let mut args = vec!["--artifacts"];
    args.extend(zips.iter().map(|z| z.to_str().unwrap()));
    let gw = stack.gateway(&args);

    let mix = vec![
        Request::get("/live/", 200),
        Request::get("/live/build-info", 200),
        Request::with_body(
            "PUT",
            "/live/hello/loadtest",
            "application/json",
            r#"{"dateOfBirth":"1990-05-17"}"#,
            204,
        ),
        Request::get("/live/hello/loadtest", 200),
    ];
    // The user exists before the load starts: an open-loop GET can otherwise overtake the
    // first PUT (sent 12 ms before it, and waiting on a cold start) and get a correct 404.
    let put = testkit::http::request(
        gw.port,
        "PUT",
        "/live/hello/loadtest",
        &[("Content-Type", "application/json")],
        br#"{"dateOfBirth":"1990-05-17"}"#,
    )
    .expect("the gateway answered the first PUT");
    assert_eq!(put.status, 204, "the first PUT: {}", put.text());
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], gw.port));
    let running = load::start(addr, mix, RATE, LOAD_LIMIT, lambda_version);
    // Traffic flows before the release starts: the first answers are the stable release's.
    wait_for(Duration::from_secs(30), || {
        (running.answered() >= 40).then_some(())
    })
    .expect("the load got no answers from the gateway");

    // The versions were published through the Lambda API with no build stamp in their
    // description, so promote cannot order them by semver: --allow-downgrade moves anyway.
    let release = stack
        .promote_command("canary --stage live --allow-downgrade")
        .output()
        .unwrap();
    assert_eq!(
        release.status.code(),
        Some(0),
        "the release did not complete:\n{}\n{}",
        String::from_utf8_lossy(&release.stdout),
        String::from_utf8_lossy(&release.stderr)
    );
    let settled = running.answered() + 40;
    wait_for(Duration::from_secs(30), || {
        (running.answered() >= settled).then_some(())
    })
    .expect("the load stopped being answered after the release");

    let rollback = stack
        .promote_command("rollback --stage live --to-previous")
        .output()
        .unwrap();
    assert_eq!(
        rollback.status.code(),
        Some(0),
        "the rollback failed:\n{}\n{}",
        String::from_utf8_lossy(&rollback.stdout),
        String::from_utf8_lossy(&rollback.stderr)
    );
    let settled = running.answered() + 40;
    wait_for(Duration::from_secs(30), || {
        (running.answered() >= settled).then_some(())
    })
    .expect("the load stopped being answered after the rollback");
    let tally = running.stop();
    drop(gw);

    println!("zero downtime: {}", tally.summary());
    assert!(tally.failures().is_empty(), "{}", tally.summary());
    // Both releases answered: the load saw the traffic move and move back.
    let served = tally.versions_of(1);
    assert_eq!(
        served.keys().collect::<Vec<_>>(),
        [&app[0], &app[1]],
        "app's /build-info was answered by {served:?}"
    );
    for version in &birthday {
        let dims = [
            ("FunctionName", "birthday"),
            ("Resource", "birthday:live"),
            ("ExecutedVersion", version.as_str()),
        ];
        let invoked = wait_for(Duration::from_secs(10), || {
            let n = stack.metric_sum("AWS/Lambda", "Invocations", &dims);
            (n > 0.0).then_some(n)
        });
        assert!(
            invoked.is_some(),
            "birthday version {version} served no request"
        );
    }
    for (function, stable) in [("app", &app[0]), ("birthday", &birthday[0])] {
        let alias = stack
            .block_on(
                stack
                    .lambda
                    .get_alias()
                    .function_name(function)
                    .name("live")
                    .send(),
            )
            .unwrap();
        assert_eq!(
            alias.function_version(),
            Some(stable.as_str()),
            "{function}"
        );
        assert!(
            alias
                .routing_config()
                .is_none_or(|r| r.additional_version_weights().is_none_or(|w| w.is_empty()))
        );
    }
}
