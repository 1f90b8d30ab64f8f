//! The edges of the contract against a seeded moto: Ctrl-C mid-bake, JSON event lines, the
//! region fallback to project.json, a stage that does not route through its stage variable,
//! and versions whose description another tool wrote.
//!
//! RevisionId conflicts (exit 5) cannot be shown here: moto neither checks nor changes
//! alias RevisionIds. They are tested against the adapter trait in promote's own tests.

use crate::support;

use std::time::Duration;

use support::{COMMAND_TIMEOUT, Stack};

#[test]
fn ctrl_c_mid_bake_leaves_the_split_exits_130_and_says_how_to_go_on() {
    let stack = Stack::new("guard-sigint");
    let run = stack.start("canary --stage live --version 2 --weight 10 --bake 60s --poll 1s");
    stack
        .wait_alias("live", Duration::from_secs(30), |a| a.split().is_some())
        .expect("the split never appeared");
    run.interrupt();
    let done = run.wait_timeout(Duration::from_secs(15));
    done.assert_code(130);
    assert_eq!(
        stack.alias("live").split(),
        Some(("2".to_string(), 0.1)),
        "Ctrl-C must leave the split"
    );
    let out = done.output();
    assert!(out.contains("rollback"), "no hint how to roll back: {out}");
    assert!(
        out.contains("canary") || out.contains("advance"),
        "no hint how to resume: {out}"
    );
}

#[test]
fn json_output_is_one_json_object_per_line() {
    let stack = Stack::new("guard-json");
    let run =
        stack.run("--output json canary --stage live --version 2 --weight 10 --bake 1s --poll 1s");
    run.assert_code(0);
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(!lines.is_empty(), "no JSON events");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v.is_object(), "not an object: {l}");
    }
}

#[test]
fn the_region_falls_back_to_project_json() {
    let stack = Stack::new("guard-region");
    stack.set_alias("dev", "3", None);
    let mut cmd = stack.command(&["--output", "json", "status", "--stage", "dev"]);
    cmd.env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION");
    let run = stack
        .spawn_cmd(cmd, &["status", "--stage", "dev"])
        .wait_timeout(COMMAND_TIMEOUT);
    run.assert_code(0);
    // The fixture lives in project.json's region only; reading version 3 proves promote went there.
    assert!(run.stdout.contains("0.1.2"), "{}", run.stdout);
}

#[test]
fn a_stage_whose_integration_ignores_the_stage_variable_is_an_error_that_says_so() {
    let stack = Stack::new("guard-integration");
    let api_id = stack.seeded.0["rest_api_id"].as_str().unwrap().to_string();
    let region = stack.region.clone();
    let apigw = aws_sdk_apigateway::Client::new(&testkit::aws::config(&stack.moto, &region));
    let resources = stack
        .block_on(apigw.get_resources().rest_api_id(&api_id).send())
        .unwrap();
    // A hard-wired alias instead of ${stageVariables.lambdaAlias}: moving aliases would not
    // move this API, which promote must refuse to pretend.
    let uri = format!(
        "arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/arn:aws:lambda:{region}:123456789012:function:app:live/invocations"
    );
    for r in resources.items() {
        stack
            .block_on(
                apigw
                    .put_integration()
                    .rest_api_id(&api_id)
                    .resource_id(r.id().unwrap())
                    .http_method("ANY")
                    .r#type(aws_sdk_apigateway::types::IntegrationType::AwsProxy)
                    .integration_http_method("POST")
                    .uri(&uri)
                    .send(),
            )
            .unwrap();
    }
    let before = stack.all_aliases();
    let run = stack.run("canary --stage live --version 2 --weight 10 --bake 1s");
    // A stack wired around the alias is an error of the stack, not of the input.
    run.assert_code(1);
    assert!(run.stderr.contains("stage variable"), "{}", run.stderr);
    assert_eq!(stack.all_aliases(), before);
}

#[test]
fn a_version_described_by_another_tool_shows_as_unknown_and_needs_allow_downgrade() {
    let stack = Stack::new("guard-foreign");
    let zip = stack.fake_zip("foreign.zip", "app", "9.9.9", &"a".repeat(40));
    let bytes = std::fs::read(zip).unwrap();
    let f = stack.function_name();
    stack
        .block_on(
            stack
                .lambda
                .update_function_code()
                .function_name(&f)
                .zip_file(aws_sdk_lambda::primitives::Blob::new(bytes))
                .send(),
        )
        .unwrap();
    let v = stack
        .block_on(
            stack
                .lambda
                .publish_version()
                .function_name(&f)
                .description("deployed by hand")
                .send(),
        )
        .unwrap();
    let v = v.version().unwrap().to_string();
    assert_eq!(v, "4");

    stack.set_alias("dev", "4", None);
    let status = stack.run("status --stage dev");
    status.assert_code(0);
    assert!(status.stdout.contains("unknown"), "{}", status.stdout);

    stack.set_alias("dev", "1", None);
    stack.assert_refused("deploy --stage dev --version 4", 3, &["--allow-downgrade"]);
    stack
        .run("deploy --stage dev --version 4 --allow-downgrade")
        .assert_code(0);
    assert_eq!(stack.alias("dev").version, "4");
}

#[test]
fn an_unreachable_endpoint_is_an_aws_error_with_exit_1() {
    let mut stack = Stack::new("guard-unreachable");
    stack.moto.stop();
    let run = stack.run("status --stage live");
    run.assert_code(1);
    let port = stack.moto.port.to_string();
    assert!(
        run.stderr.contains(&port) || run.stderr.to_lowercase().contains("connect"),
        "the error does not say what could not be reached: {}",
        run.stderr
    );
}
