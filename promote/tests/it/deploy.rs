//! `promote deploy` against a seeded moto: all-at-once moves, the semver guard, dry runs.

use crate::support;

use support::Stack;

#[test]
fn deploy_dev_moves_the_alias_to_the_version_with_no_routing() {
    let stack = Stack::new("deploy-dev");
    let before = stack.alias("dev");
    stack.run("deploy --stage dev --version 2").assert_code(0);
    let after = stack.alias("dev");
    assert_eq!(after.version, "2", "{after:?}");
    assert!(after.weights.is_empty(), "routing left on dev: {after:?}");
    assert_eq!(after.arn, before.arn);
    // Other stages are not touched.
    assert_eq!(stack.alias("test").version, "1");
    assert_eq!(stack.alias("live").version, "1");
}

#[test]
fn deploy_dry_run_changes_nothing_and_says_what_it_would_do() {
    let stack = Stack::new("deploy-dry");
    let before = stack.all_aliases();
    let run = stack.run("deploy --stage dev --version 3 --dry-run");
    run.assert_code(0);
    assert_eq!(stack.all_aliases(), before, "--dry-run changed an alias");
    assert!(
        run.output().contains('3'),
        "dry run does not name the version: {run:?}"
    );

    let json = stack.run("--output json deploy --stage dev --version 3 --dry-run");
    json.assert_code(0);
    assert_eq!(stack.all_aliases(), before);
    let mut lines = serde_json::Value::Array(json.json_lines());
    support::redact(&stack, &mut lines);
    insta::assert_json_snapshot!("deploy_dry_run_json", lines);
}

#[test]
fn deploy_of_a_lower_semver_is_refused_unless_allowed() {
    let stack = Stack::new("deploy-downgrade");
    stack.set_alias("dev", "3", None);
    let run = stack.assert_refused("deploy --stage dev --version 2", 3, &["--allow-downgrade"]);
    assert!(
        run.stderr.contains("downgrade") || run.stderr.contains("lower"),
        "refusal does not say why: {}",
        run.stderr
    );

    stack
        .run("deploy --stage dev --version 2 --allow-downgrade")
        .assert_code(0);
    assert_eq!(stack.alias("dev").version, "2");
}

#[test]
fn deploy_of_the_version_already_served_is_a_successful_no_op() {
    let stack = Stack::new("deploy-noop");
    stack.set_alias("dev", "2", None);
    let before = stack.all_aliases();
    stack.run("deploy --stage dev --version 2").assert_code(0);
    assert_eq!(stack.all_aliases(), before);
}

#[test]
fn deploy_is_refused_while_a_stage_alarm_is_in_alarm() {
    // A pre-existing ALARM on the stage refuses the move (exit 3) and names the alarm.
    let stack = Stack::short_bakes("deploy-alarm", 1);
    let alarm = stack.seeded.alarms("test")[0].clone();
    stack.set_alarm(&alarm, aws_sdk_cloudwatch::types::StateValue::Alarm);
    stack.assert_refused("deploy --stage test --version 2", 3, &[&alarm]);

    stack.set_alarm(&alarm, aws_sdk_cloudwatch::types::StateValue::Ok);
    stack.run("deploy --stage test --version 2").assert_code(0);
    assert_eq!(stack.alias("test").version, "2");
}

#[test]
fn an_alarm_during_the_deploy_bake_moves_the_stage_back() {
    let stack = Stack::short_bakes("deploy-bake-alarm", 30);
    let alarm = stack.seeded.alarms("test")[0].clone();
    let run = stack.start("deploy --stage test --version 2");
    stack
        .wait_alias("test", std::time::Duration::from_secs(30), |a| {
            a.version == "2"
        })
        .expect("the deploy never moved the alias");
    stack.set_alarm(&alarm, aws_sdk_cloudwatch::types::StateValue::Alarm);
    // Well inside the 30 s bake: the move back came from polling the alarms.
    let (test, _) = stack
        .wait_alias("test", std::time::Duration::from_secs(15), |a| {
            a.version == "1"
        })
        .expect("the stage was not moved back after the alarm fired");
    assert!(test.weights.is_empty(), "{test:?}");
    let done = run.wait_timeout(std::time::Duration::from_secs(15));
    done.assert_code(4);
    assert!(done.output().contains(&alarm), "{}", done.output());
}
