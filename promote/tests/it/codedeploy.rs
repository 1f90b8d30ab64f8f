//! The CodeDeploy engine against a seeded moto: the deployment `promote canary` creates
//! (application, group, configuration, AppSpec), the dry run that creates nothing, a rerun
//! after `kill -9` that follows the deployment in flight, and a second deployment for the
//! group refused. The deployments are read back through the SDK, independently of promote.
//!
//! moto never progresses a deployment (each stays `Created`) and has no StopDeployment, so
//! every run here follows a deployment that never moves and is ended by the test; how
//! promote follows one through its states, stops it when the judge fails and reports the
//! outcome is tested against recorded responses and the in-memory stand-in
//! (`promote/src/cloud/codedeploy_tests.rs`, `promote/src/reconcile/cd_engine_tests.rs`).

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Stack, edit_json};

/// live on the CodeDeploy engine: 10% for a minute, then 100%, with a BeforeAllowTraffic
/// hook; test serving version 2, the candidate live's canary picks.
fn stack(tag: &str) -> Stack {
    let stack = Stack::with_environments(tag, &|dir| {
        edit_json(&dir.join("live.json"), |v| {
            v["poll_interval_seconds"] = 1.into();
            v["test_fixture_short_bakes"] = true.into();
            v["strategy"] = json!({
                "type": "canary",
                "engine": "codedeploy",
                "hooks": {"before_allow_traffic": "app-live-smoke"},
                "steps": [{"weight": 10, "bake_seconds": 60}, {"weight": 100, "bake_seconds": 0}],
            });
        });
    });
    stack.set_alias("test", "2", None);
    stack
}

fn codedeploy(stack: &Stack) -> aws_sdk_codedeploy::Client {
    aws_sdk_codedeploy::Client::new(&testkit::aws::config(&stack.moto, &stack.region))
}

/// Every deployment of live's group, as moto reports them.
fn deployments(stack: &Stack, cd: &aws_sdk_codedeploy::Client) -> Vec<Value> {
    stack.block_on(async {
        let ids = cd
            .list_deployments()
            .application_name("app")
            .deployment_group_name("live")
            .send()
            .await
            .unwrap()
            .deployments()
            .to_vec();
        let mut out = Vec::new();
        for id in ids {
            let d = cd.get_deployment().deployment_id(&id).send().await.unwrap();
            let info = d.deployment_info().unwrap();
            out.push(json!({
                "id": id,
                "application": info.application_name(),
                "group": info.deployment_group_name(),
                "config": info.deployment_config_name(),
                "status": info.status().map(|s| s.as_str().to_string()),
                "appspec": info.revision().and_then(|r| r.app_spec_content()).and_then(|c| c.content())
                    .map(|c| serde_json::from_str::<Value>(c).unwrap()),
            }));
        }
        out
    })
}

/// Waits (bounded) until the group has `n` deployments.
fn wait_for_deployments(stack: &Stack, cd: &aws_sdk_codedeploy::Client, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ds = deployments(stack, cd);
        if ds.len() >= n {
            return ds;
        }
        assert!(
            Instant::now() < deadline,
            "no deployment after 30 s: {ds:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn canary_creates_the_deployment_a_rerun_after_kill_9_follows_it_and_another_is_refused() {
    let stack = stack("cd-canary");
    let cd = codedeploy(&stack);
    let aliases = stack.all_aliases();

    // The dry run prints the AppSpec and the request, and creates nothing.
    let dry = stack.run("--output json canary --stage live --dry-run");
    dry.assert_code(0);
    assert!(
        deployments(&stack, &cd).is_empty(),
        "the dry run created a deployment"
    );
    assert_eq!(stack.all_aliases(), aliases);
    let event = dry
        .json_lines()
        .into_iter()
        .find(|e| e["event"] == "dry_run")
        .expect("a dry_run event");
    assert_eq!(event["request"]["deploymentGroupName"], "live");
    assert_eq!(
        event["appspec"]["Resources"][0]["app"]["Properties"]["TargetVersion"],
        "2"
    );
    let table = stack.run("canary --stage live --dry-run");
    table.assert_code(0);
    assert!(
        table.stdout.contains("\"TargetVersion\": \"2\"")
            && table.stdout.contains("app-live-canary-10pct-1min"),
        "{}",
        table.stdout
    );

    // The real run creates one deployment in the stage's group, then follows it; moto never
    // moves it, so the run is killed as a lost CI runner would be.
    let first = stack.start("--output json canary --stage live");
    let ds = wait_for_deployments(&stack, &cd, 1);
    let killed = first.kill9();
    assert_eq!(ds.len(), 1, "{ds:?}");
    let d = &ds[0];
    assert_eq!(
        (&d["application"], &d["group"], &d["config"]),
        (
            &json!("app"),
            &json!("live"),
            &json!("app-live-canary-10pct-1min")
        )
    );
    assert_eq!(
        d["appspec"],
        json!({
            "version": 0.0,
            "Resources": [{"app": {"Type": "AWS::Lambda::Function", "Properties": {
                "Name": "app", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"}}}],
            "Hooks": [{"BeforeAllowTraffic": "app-live-smoke"}],
        })
    );
    assert!(
        killed
            .json_lines()
            .iter()
            .any(|e| e["event"] == "deployment_created" && e["deployment_id"] == d["id"]),
        "{}",
        killed.stdout
    );
    // CodeDeploy moves the alias, not promote.
    assert_eq!(stack.all_aliases(), aliases);

    // `status` shows the deployment in flight.
    let status = stack.run("--output json status --stage live");
    status.assert_code(0);
    let row = &status.json_lines()[0];
    assert_eq!(row["deployment"]["deployment_id"], d["id"]);
    assert_eq!(row["deployment"]["status"], "Created");

    // The rerun finds it and follows it instead of creating another: its plan names it.
    let mut rerun = stack.start("--output json canary --stage live");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !rerun.stdout_so_far().contains("\"deployment\"") && rerun.is_running() {
        assert!(Instant::now() < deadline, "{}", rerun.stdout_so_far());
        std::thread::sleep(Duration::from_millis(50));
    }
    let rerun = rerun.kill9();
    let plan = rerun
        .json_lines()
        .into_iter()
        .find(|e| e["event"] == "plan")
        .expect("a plan event");
    assert_eq!(plan["deployment_id"], d["id"], "{}", rerun.stdout);
    assert!(
        rerun.stderr.contains(&format!(
            "following CodeDeploy deployment {}",
            d["id"].as_str().unwrap()
        )),
        "{}",
        rerun.stderr
    );
    assert_eq!(
        deployments(&stack, &cd).len(),
        1,
        "a second deployment was created"
    );

    // Another version while one is in flight: refused, nothing created.
    stack.assert_refused(
        "canary --stage live --version 3",
        3,
        &[
            "already in progress for CodeDeploy group live",
            "promote rollback --stage live",
        ],
    );
    assert_eq!(deployments(&stack, &cd).len(), 1);
}
