//! `promote probe` and the probe evidence source against the gateway serving the real `app`:
//! a probed 10% canary sees the candidate's share inside its interval and its added latency
//! in its percentiles; a stalled server shows in the latency of every request due during
//! the stall (open loop); a candidate crashing on a fifth of its requests is rolled back by
//! the probe's evidence alone; through the Invoke API every answer, a crash included, names
//! the version that ran.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Stack, get, wait_for};

/// The `probe_report` event of a `promote --output json probe` run.
fn report(stdout: &str) -> Value {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "probe_report")
        .unwrap_or_else(|| panic!("no probe_report:\n{stdout}"))
}

/// Two published versions of the same `app` (the candidate identical unless the gateway is
/// told otherwise); live serves the stable one.
fn release(edit: impl FnOnce(&std::path::Path)) -> (Stack, [String; 2], String, String) {
    let stack = Stack::with_environments(edit);
    let zip_a = stack.app_zip("a.zip", None);
    let zip_b = stack.app_zip("b.zip", Some("candidate"));
    let stable = stack.publish(&zip_a);
    let candidate = stack.publish(&zip_b);
    stack.set_alias("live", &stable, None);
    let zips = [zip_a, zip_b].map(|z| z.to_str().unwrap().to_string());
    (stack, zips, stable, candidate)
}

#[test]
fn a_probed_canary_sees_the_split_and_the_candidates_latency() {
    let (stack, [a, b], stable, candidate) = release(|_| {});
    stack.set_alias("live", &stable, Some((&candidate, 0.1)));
    let latency = format!("{candidate}:40");
    let gw = stack.gateway(&["--artifacts", &a, &b, "--latency", &latency]);
    let out = stack.promote(&format!(
        "--output json probe --stage live --url http://127.0.0.1:{}/live --path / --rate 100 --duration 20s",
        gw.port
    ));
    let r = report(&out);
    assert_eq!(r["requests"], 2000, "{r}");
    assert_eq!(r["success"], 1.0, "{r}");
    let c = &r["versions"][candidate.as_str()];
    let share = c["share"].as_f64().unwrap();
    let ci = c["share_ci"].as_array().unwrap();
    let (low, high) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
    assert!(
        low <= 0.1 && 0.1 <= high && low <= share && share <= high,
        "the candidate's share {share} and its interval [{low}, {high}] against the alias's 10%: {c}"
    );
    assert_eq!(c["expected_share"], 0.1, "{c}");
    // The delay the gateway adds to the candidate, and not to the stable version: every
    // candidate answer takes at least the 40 ms, some stable ones less. Minima and the order
    // of the medians, not absolute medians, which a loaded machine inflates for both.
    let ms = |v: &str, q: &str| r["versions"][v]["latency_ms"][q].as_f64().unwrap();
    assert!(ms(&candidate, "min") >= 40.0, "{r}");
    assert!(ms(&stable, "min") < 40.0, "{r}");
    assert!(ms(&candidate, "p50") > ms(&stable, "p50"), "{r}");
    gw.stop();
}

#[test]
fn a_stalled_server_shows_in_the_latency_of_every_request_due_during_the_stall() {
    let stack = Stack::new();
    let gw = stack.gateway(&[]);
    // The stage answers (403: no such stage is fine; the gateway is what stalls).
    assert_eq!(get(gw.port, "/nowhere/").status, 403);
    let mut probe = stack
        .promote_command(&format!(
            "--output json probe --url http://127.0.0.1:{}/nowhere --rate 100 --duration 3s",
            gw.port
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The stall is the stimulus, not a wait for the system under test: SIGSTOP holds every
    // answer for a second while the probe keeps sending on its schedule.
    let stall = Duration::from_secs(1);
    std::thread::sleep(Duration::from_millis(500));
    let pid = gw.pid().to_string();
    let stopped = Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(stall);
    let held = stopped.elapsed();
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let done = wait_for(Duration::from_secs(20), || probe.try_wait().unwrap());
    assert!(
        done.is_some_and(|(s, _)| s.success()),
        "probe did not end well"
    );
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut probe.stdout.take().unwrap(), &mut stdout).unwrap();
    let r = report(&stdout);
    assert_eq!(r["requests"], 300, "{r}");
    // Open loop: about a third of the requests were due during the stall and each waited for
    // the rest of it, so the p90 is stall-sized; a closed loop would show one slow request.
    let ms = |k: &str| r["latency_ms"][k].as_f64().unwrap();
    assert!(
        ms("max") >= held.as_millis() as f64 * 0.9,
        "max against {held:?}: {r}"
    );
    assert!(ms("p90") >= 300.0, "{r}");
    assert!(
        ms("p50") < 100.0,
        "most requests were not due during the stall: {r}"
    );
    gw.stop();
}

/// A live canary of `candidate`, which the gateway crashes on a fifth of its requests,
/// judged by the probe alone (`sources: ["probe"]`); `how` is how the probe reaches the
/// stage. Returns the run's events once promote rolled back, having checked the alias.
fn rolled_back_by_the_probe(stack: &Stack, stable: &str, candidate: &str, how: &str) -> Vec<Value> {
    let started = Instant::now();
    let out = stack
        .promote_command(&format!(
            "--output json canary --stage live --version {candidate} --weight 10 --bake 180s --poll 1s \
             --probe-rate 200 {how}"
        ))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!(
        "promote canary {how}: exit {:?} after {:?}",
        out.status.code(),
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(4), "{how}\n{stdout}\n{stderr}");
    let events: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let rolled = events
        .iter()
        .find(|e| e["event"] == "rolled_back")
        .unwrap_or_else(|| panic!("no rolled_back event:\n{stdout}"));
    let reason = rolled["reason"].as_str().unwrap();
    assert!(
        reason.contains("probe judge") && reason.contains("p = "),
        "the reason names the probe and its numbers: {reason}"
    );
    assert_eq!(stack.alias_routing("live"), (stable.to_string(), None));
    events
}

/// The probe's numbers in the last `bake` event.
pub(crate) fn probe_numbers(events: &[Value]) -> Value {
    events
        .iter()
        .filter(|e| e["event"] == "bake")
        .flat_map(|e| e["evidence"].as_array().cloned().unwrap_or_default())
        .rfind(|f| f["source"] == "probe")
        .map(|f| f["numbers"].clone())
        .unwrap_or_else(|| panic!("no probe finding: {events:?}"))
}

#[test]
fn a_candidate_crashing_on_a_fifth_of_its_requests_is_rolled_back_by_the_probe_alone() {
    let started = Instant::now();
    let (stack, [a, b], stable, candidate) = release(|dir| {
        let path = dir.join("live.json");
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v["analysis"] = json!({"sources": ["probe"], "max_extension_seconds": 10});
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    });
    let fault = format!("{candidate}:0.2");
    let gw = stack.gateway(&["--artifacts", &a, &b, "--fault", &fault]);
    let base = format!("http://127.0.0.1:{}", gw.port);
    eprintln!("stack and gateway up after {:?}", started.elapsed());

    // A probe target nobody answers at stops the run before any write.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = stack
        .promote_command(&format!(
            "canary --stage live --version {candidate} --weight 10 --bake 60s --probe-url http://{dead}/live"
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot reach") && stderr.contains("--probe-url"),
        "{stderr}"
    );
    assert_eq!(
        stack.alias_routing("live"),
        (stable.to_string(), None),
        "nothing was written"
    );

    // Through the stage URL the 502s name no version; the shortfall test finds them the
    // candidate's (a sequential test: a median of half a minute at 100 requests a second,
    // 90 s in the slowest of 50 simulated bakes; the probe here sends 200 a second, which
    // halves both, and the bake above is long enough for the slowest; a fail ends it at once).
    let events = rolled_back_by_the_probe(
        &stack,
        &stable,
        &candidate,
        &format!("--probe-url {base}/live"),
    );
    let n = probe_numbers(&events);
    assert_eq!(n["decision"], "fail", "{n}");
    assert!(n["unattributed"]["failed"].as_u64().unwrap() > 0, "{n}");
    assert_eq!(n["stable"]["errors"], 0, "{n}");

    // Through the Invoke API every crash names the candidate (--retry: the alias note
    // records the rollback just made).
    let events = rolled_back_by_the_probe(
        &stack,
        &stable,
        &candidate,
        &format!("--retry --probe-invoke --probe-url {base}"),
    );
    let n = probe_numbers(&events);
    assert_eq!(n["decision"], "fail", "{n}");
    assert_eq!(n["unattributed"]["failed"], 0, "{n}");
    assert!(n["candidate"]["errors"].as_u64().unwrap() > 0, "{n}");
    assert_eq!(n["stable"]["errors"], 0, "{n}");
    gw.stop();
}

#[test]
fn the_invoke_api_names_the_version_that_ran_even_when_it_crashed() {
    let (stack, [a, b], stable, candidate) = release(|_| {});
    stack.set_alias("live", &stable, Some((&candidate, 0.5)));
    let fault = format!("{candidate}:1.0");
    let gw = stack.gateway(&["--artifacts", &a, &b, "--fault", &fault]);
    let client = aws_sdk_lambda::Client::from_conf(
        stack
            .lambda
            .config()
            .to_builder()
            .endpoint_url(format!("http://127.0.0.1:{}", gw.port))
            .build(),
    );
    let event = serde_json::to_vec(&json!({
        "resource": "/{proxy+}", "path": "/build-info", "httpMethod": "GET",
        "headers": {}, "multiValueHeaders": {}, "pathParameters": {"proxy": "build-info"},
        "requestContext": {"stage": "live", "path": "/live/build-info", "httpMethod": "GET",
                           "resourcePath": "/{proxy+}", "requestId": "t", "identity": {"sourceIp": "127.0.0.1"}},
        "body": null, "isBase64Encoded": false
    }))
    .unwrap();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..40 {
        let out = stack
            .block_on(
                client
                    .invoke()
                    .function_name("app")
                    .qualifier("live")
                    .payload(aws_sdk_lambda::primitives::Blob::new(event.clone()))
                    .send(),
            )
            .expect("Invoke through the gateway");
        let ran = out.executed_version().unwrap().to_string();
        let payload: Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
        if ran == candidate {
            assert_eq!(out.function_error(), Some("Unhandled"));
            assert_eq!(payload["errorType"], "Runtime.ExitError", "{payload}");
        } else {
            assert_eq!(ran, stable);
            assert_eq!(out.function_error(), None);
            assert_eq!(payload["statusCode"], 200, "{payload}");
            let body: Value = serde_json::from_str(payload["body"].as_str().unwrap()).unwrap();
            assert_eq!(
                body["lambda"]["function_version"],
                stable.as_str(),
                "{body}"
            );
        }
        *seen.entry(ran).or_default() += 1;
    }
    assert_eq!(seen.len(), 2, "both versions ran at 50%: {seen:?}");

    // `promote probe --invoke` attributes every answer, the crashes included, where the
    // stage URL's 502s would name no version.
    let out = stack.promote(&format!(
        "--output json probe --stage live --invoke --url http://127.0.0.1:{} --path /build-info --rate 50 --duration 2s",
        gw.port
    ));
    let r = report(&out);
    assert_eq!(r["requests"], 100, "{r}");
    assert_eq!(r["unattributed"]["requests"], 0, "{r}");
    let v = |version: &str, k: &str| r["versions"][version][k].as_f64().unwrap();
    assert_eq!(v(&candidate, "success"), 0.0, "{r}");
    assert_eq!(v(&stable, "success"), 1.0, "{r}");
    assert_eq!(
        v(&candidate, "requests") + v(&stable, "requests"),
        100.0,
        "{r}"
    );
    assert_eq!(
        r["versions"][candidate.as_str()]["expected_share"],
        0.5,
        "{r}"
    );
    // An unknown qualifier is Lambda's ResourceNotFoundException; other Lambda calls are not
    // the gateway's.
    let err = stack
        .block_on(
            client
                .invoke()
                .function_name("app")
                .qualifier("nope")
                .send(),
        )
        .unwrap_err();
    assert!(format!("{:?}", err.into_service_error()).contains("ResourceNotFound"));
    let listed = stack.block_on(client.list_aliases().function_name("app").send());
    assert!(
        listed.is_err(),
        "ListAliases is for the endpoint behind the gateway"
    );
    gw.stop();
}

#[test]
fn a_probed_release_of_two_functions_attributes_each_answer_to_its_function_and_version() {
    // Live judged by the probe alone, one poll a second, no approval: the 50% canary of a
    // release of app and birthday, each function probed with its own request.
    let stack = Stack::with_environments(|dir| {
        let path = dir.join("live.json");
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v["analysis"] = json!({"sources": ["probe"], "max_extension_seconds": 2});
        v["poll_interval_seconds"] = 1.into();
        v["approval_required"] = false.into();
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    });
    let zips = stack.release_zips();
    // Two more app versions first, so that no version number is both functions': an answer
    // counted under the wrong function could not pass for one of its versions.
    for pad in ["pad-1", "pad-2"] {
        stack.publish_function("app", &stack.app_zip(&format!("{pad}.zip"), Some(pad)));
    }
    let (app, birthday) = stack.publish_releases(&zips);
    assert!(
        app.iter().all(|v| !birthday.contains(v)),
        "{app:?} {birthday:?}"
    );
    let mut args = vec!["--artifacts"];
    args.extend(zips.iter().map(|z| z.to_str().unwrap()));
    let gw = stack.gateway(&args);
    // Every version started before the canary (test serves the candidates, live the stable
    // ones): a debug bootstrap's first start on a loaded machine is not what this judges.
    for path in [
        "/test/build-info",
        "/test/hello/warm",
        "/live/build-info",
        "/live/hello/warm",
    ] {
        let answered = wait_for(Duration::from_secs(60), || {
            (get(gw.port, path).status < 500).then_some(())
        });
        assert!(answered.is_some(), "{path} never answered");
    }

    // Published without a build stamp: --allow-downgrade moves them all the same.
    let out = stack
        .promote_command(&format!(
            "--output json canary --stage live --weight 50 --bake 15s --poll 1s --allow-downgrade \
             --probe-rate 40 --probe-url http://127.0.0.1:{}/live",
            gw.port
        ))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    // Passed, or held for want of evidence after its short bake: either way each function
    // was judged on its own probe's answers, which is what this test reads.
    assert!(
        matches!(out.status.code(), Some(0 | 6)),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status.code()
    );
    for (function, call) in [
        (
            "app",
            format!(
                "GET http://127.0.0.1:{}/live/build-info, expecting 200,",
                gw.port
            ),
        ),
        (
            "birthday",
            format!(
                "PUT http://127.0.0.1:{}/live/hello/probe, expecting 204,",
                gw.port
            ),
        ),
    ] {
        assert!(
            stderr.contains(&format!("probing function {function}: {call}")),
            "{function} probed with its own request:\n{stderr}"
        );
    }
    let events: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for (function, [stable, candidate]) in [("app", &app), ("birthday", &birthday)] {
        let own: Vec<Value> = events
            .iter()
            .filter(|e| e["function"] == function)
            .cloned()
            .collect();
        // Every poll's probe finding for this function: each answer that named a version
        // named one of its two, on its side of the split, with the status its own request
        // expects (another function's route would answer another status: 200 for 204).
        let findings: Vec<Value> = own
            .iter()
            .filter(|e| e["event"] == "bake")
            .flat_map(|e| e["evidence"].as_array().cloned().unwrap_or_default())
            .filter(|f| f["source"] == "probe")
            .map(|f| f["numbers"].clone())
            .collect();
        assert!(
            !findings.is_empty(),
            "{function}: no probe finding:\n{stdout}"
        );
        for n in &findings {
            assert_eq!(
                n["candidate"]["version"],
                candidate.as_str(),
                "{function}: {n}"
            );
            assert_eq!(n["stable"]["version"], stable.as_str(), "{function}: {n}");
            assert_eq!(n["candidate"]["errors"], 0, "{function}: {n}");
            assert_eq!(n["stable"]["errors"], 0, "{function}: {n}");
            // Answers that named no version (a request timed out on a loaded machine) are
            // not what this judges: every answer that named one was right for its function.
        }
        let most = |side: &str| {
            findings
                .iter()
                .filter_map(|n| n[side]["requests"].as_u64())
                .max()
                .unwrap_or(0)
        };
        assert!(
            most("candidate") > 0 && most("stable") > 0,
            "{function}: {findings:?}"
        );
    }
    gw.stop();
}
