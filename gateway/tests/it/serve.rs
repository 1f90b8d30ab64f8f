//! Through the gateway, real `app` zips published by `promote publish`: the dev stage answers
//! with its alias's version and build, a deploy is served within a second, an unknown stage is
//! 403, a version without its zip is 502 and says why, a binary body round-trips, and SIGTERM
//! stops it cleanly.

use crate::support;

use std::time::{Duration, Instant};

use support::{Stack, get, request, wait_for};

#[test]
fn stages_serve_the_versions_their_aliases_name() {
    let stack = Stack::new();
    let zip_a = stack.app_zip("a.zip", None);
    // Same binary, another file beside it: a second version (Lambda keys code by its hash).
    let zip_b = stack.app_zip("b.zip", Some("second release"));
    let echo = stack.zip(
        "echo.zip",
        &[(
            "bootstrap",
            &std::fs::read(
                support::workspace_root().join("gateway/tests/fixtures/echo-bootstrap.py"),
            )
            .unwrap(),
        )],
    );
    let v_a = stack.publish(&zip_a);
    stack.promote(&format!("deploy --stage dev --version {v_a}"));
    let gw = stack.gateway(&[
        "--artifacts",
        zip_a.to_str().unwrap(),
        zip_b.to_str().unwrap(),
        echo.to_str().unwrap(),
    ]);

    let info = get(gw.port, "/dev/build-info");
    assert_eq!(info.status, 200, "{}", String::from_utf8_lossy(&info.body));
    let info = info.json();
    assert_eq!(info["lambda"]["function_version"], v_a.as_str());
    assert_eq!(info["lambda"]["alias"], "dev");
    assert_eq!(info["lambda"]["function_name"], "app");
    assert_eq!(info["stage"], "dev");
    assert_eq!(info["region"], stack.region.as_str());
    // The sha the version was published with (its description is the zip's build stamp).
    let description = stack
        .block_on(
            stack
                .lambda
                .get_function_configuration()
                .function_name("app")
                .qualifier(&v_a)
                .send(),
        )
        .unwrap()
        .description()
        .unwrap()
        .to_string();
    let sha = info["git"]["sha"].as_str().unwrap();
    assert!(description.ends_with(sha), "{description} vs {sha}");

    // A deploy is served within a second of promote returning.
    let v_b = stack.publish(&zip_b);
    assert_ne!(v_a, v_b);
    stack.promote(&format!("deploy --stage dev --version {v_b}"));
    let deployed = Instant::now();
    let seen = wait_for(Duration::from_secs(1), || {
        let a = get(gw.port, "/dev/build-info");
        (a.status == 200 && a.json()["lambda"]["function_version"] == v_b.as_str()).then_some(())
    });
    assert!(
        seen.is_some(),
        "/dev/build-info still not version {v_b} {:?} after the deploy",
        deployed.elapsed()
    );

    // An unknown stage, as API Gateway answers it.
    let forbidden = get(gw.port, "/prod/build-info");
    assert_eq!(forbidden.status, 403);
    assert_eq!(
        forbidden.json(),
        serde_json::json!({"message": "Forbidden"})
    );

    // The seeded version 1 (test's alias) has a fake zip nobody passed: 502, and the answer
    // itself names the function, the version, its missing code and what to pass (as stderr).
    let missing = get(gw.port, "/test/build-info");
    assert_eq!(missing.status, 502);
    assert_eq!(
        missing.header("x-amzn-errortype"),
        Some("InvalidZipFileException")
    );
    let said = missing.json();
    let message = said["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Internal server error: function app version 1: its code is missing: no zip given with --artifacts has CodeSha256 ")
            && message.ends_with("pass its zip with --artifacts (the file `promote publish` uploaded)"),
        "{said}"
    );
    assert_eq!(said["errorType"], "InvalidZipFileException");
    assert!(
        gw.stderr().contains(
            "version 1: its code is missing: no zip given with --artifacts has CodeSha256"
        ),
        "{}",
        gw.stderr()
    );

    // Binary bodies (a type in project.json's binary_media_types): every byte value, through
    // the event as base64 and back.
    let v_echo = stack.publish(&echo);
    stack.set_alias("test", &v_echo, None);
    let body: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
    let (echoed, _) = wait_for(Duration::from_secs(5), || {
        let a = request(
            gw.port,
            "POST",
            "/test/build-info",
            &[("Content-Type", "image/png")],
            &body,
        )
        .unwrap();
        (a.header("x-echo-method") == Some("POST")).then_some(a)
    })
    .expect("the echo version answers");
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.body.len(), body.len());
    assert!(echoed.body == body, "the body came back altered");

    gw.stop();
}
