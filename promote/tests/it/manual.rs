//! The manual rollout commands against a seeded moto: advance, complete, rollback (also
//! `--to-previous` after a completed promotion), and `--dry-run` on each.

use crate::support;

use support::{Stack, redact_text};

fn live_split(stack: &Stack) -> Option<(String, f64)> {
    stack.alias("live").split()
}

#[test]
fn advance_goes_to_the_next_step_or_the_given_weight_and_complete_finishes() {
    let stack = Stack::short_bakes("manual-advance", 1);
    stack.set_alias("live", "1", Some(("2", 0.1)));

    stack.run("advance --stage live").assert_code(0);
    assert_eq!(
        live_split(&stack),
        Some(("2".into(), 0.5)),
        "advance from 10% goes to the plan's 50%"
    );

    stack.run("advance --stage live --weight 75").assert_code(0);
    assert_eq!(live_split(&stack), Some(("2".into(), 0.75)));
    assert_eq!(stack.alias("live").version, "1");

    stack.run("complete --stage live").assert_code(0);
    let live = stack.alias("live");
    assert_eq!(live.version, "2", "{live:?}");
    assert!(live.weights.is_empty(), "{live:?}");
}

#[test]
fn rollback_sends_the_candidate_back_to_zero() {
    let stack = Stack::new("manual-rollback");
    stack.set_alias("live", "1", Some(("2", 0.5)));
    stack.run("rollback --stage live").assert_code(0);
    let live = stack.alias("live");
    assert_eq!(live.version, "1", "{live:?}");
    assert!(live.weights.is_empty(), "{live:?}");
}

#[test]
fn rollback_to_previous_returns_to_the_version_served_before_a_completed_promotion() {
    let stack = Stack::short_bakes("manual-previous", 1);
    stack.set_alias("live", "2", None);
    stack
        .run("canary --stage live --version 3 --weight 10 --bake 1s --poll 1s")
        .assert_code(0);
    stack.run("complete --stage live").assert_code(0);
    assert_eq!(stack.alias("live").version, "3");

    let before = stack.all_aliases();
    stack
        .run("rollback --stage live --to-previous --dry-run")
        .assert_code(0);
    assert_eq!(
        stack.all_aliases(),
        before,
        "--to-previous --dry-run changed an alias"
    );

    stack
        .run("rollback --stage live --to-previous")
        .assert_code(0);
    let live = stack.alias("live");
    assert_eq!(
        live.version, "2",
        "--to-previous must return to the version served before: {live:?}"
    );
    assert!(live.weights.is_empty(), "{live:?}");
}

#[test]
fn dry_run_of_every_mutating_command_changes_nothing() {
    let stack = Stack::short_bakes("manual-dry", 1);
    stack.set_alias("live", "1", Some(("2", 0.1)));
    let before = stack.all_aliases();
    let versions = stack.versions();
    for args in [
        &["deploy", "--stage", "dev", "--version", "2", "--dry-run"][..],
        &[
            "canary",
            "--stage",
            "live",
            "--version",
            "2",
            "--weight",
            "50",
            "--dry-run",
        ][..],
        &["canary", "--stage", "live", "--version", "2", "--dry-run"][..],
        &["advance", "--stage", "live", "--dry-run"][..],
        &["advance", "--stage", "live", "--weight", "60", "--dry-run"][..],
        &["complete", "--stage", "live", "--dry-run"][..],
        &["rollback", "--stage", "live", "--dry-run"][..],
    ] {
        let run = stack.promote(args);
        run.assert_code(0);
        assert!(
            !run.output().trim().is_empty(),
            "`promote {}` printed nothing",
            args.join(" ")
        );
        assert_eq!(
            stack.all_aliases(),
            before,
            "`promote {}` changed an alias",
            args.join(" ")
        );
    }
    assert_eq!(stack.versions(), versions);
}

#[test]
fn dry_run_output_snapshots() {
    let stack = Stack::short_bakes("manual-dry-snap", 1);
    let api_id = stack.seeded.0["rest_api_id"].as_str().unwrap().to_string();
    let port = stack.moto.port.to_string();
    let table = stack.run("canary --stage live --version 2 --weight 10 --dry-run");
    table.assert_code(0);
    insta::assert_snapshot!(
        "canary_dry_run_table",
        redact_text(&table.stdout, &api_id, &port)
    );

    let json = stack.run("--output json canary --stage live --version 2 --weight 10 --dry-run");
    json.assert_code(0);
    let mut lines = serde_json::Value::Array(json.json_lines());
    support::redact(&stack, &mut lines);
    insta::assert_json_snapshot!("canary_dry_run_json", lines);
}
