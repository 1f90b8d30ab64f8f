//! `promote status` against a seeded moto: stages in path order with what each alias serves,
//! and snapshots of the machine-readable output.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Stack, redact, stage_order};

/// The object describing `stage` in a status run's JSON lines.
fn stage_object<'a>(lines: &'a [Value], stage: &str) -> &'a Value {
    let is = |v: &&Value| {
        v.get("stage")
            .or_else(|| v.get("name"))
            .and_then(Value::as_str)
            == Some(stage)
    };
    lines
        .iter()
        .flat_map(|l| match l.get("stages").and_then(Value::as_array) {
            Some(a) => a.iter().collect::<Vec<_>>(),
            None => vec![l],
        })
        .find(is)
        .unwrap_or_else(|| panic!("no object for stage {stage} in {lines:?}"))
}

#[test]
fn status_lists_every_stage_in_path_order_with_versions_and_split() {
    let stack = Stack::new("status");
    stack.set_alias("dev", "3", None);
    stack.set_alias("test", "2", None);
    stack.set_alias("live", "1", Some(("2", 0.1)));
    let run = stack.run("--output json status");
    run.assert_code(0);
    let lines = run.json_lines();
    assert_eq!(
        stage_order(&lines),
        ["dev", "test", "live"],
        "{}",
        run.stdout
    );

    let live = stage_object(&lines, "live").to_string();
    assert!(
        live.contains("0.1.0"),
        "live's stable semver missing: {live}"
    );
    assert!(
        live.contains("0.1.1"),
        "live's candidate semver missing: {live}"
    );
    assert!(
        live.contains("app-live-lambda-errors"),
        "alarm missing: {live}"
    );
    assert!(live.contains("execute-api"), "invoke URL missing: {live}");
    let dev = stage_object(&lines, "dev").to_string();
    assert!(dev.contains("0.1.2"), "dev's semver missing: {dev}");

    let mut all = Value::Array(lines);
    redact(&stack, &mut all);
    insta::assert_json_snapshot!("status_json", all);

    // The table names every stage too, in the same order.
    let table = stack.run("status");
    table.assert_code(0);
    let pos = |s: &str| {
        table
            .stdout
            .find(s)
            .unwrap_or_else(|| panic!("{s} not in\n{}", table.stdout))
    };
    assert!(
        pos("dev") < pos("test") && pos("test") < pos("live"),
        "{}",
        table.stdout
    );
}

#[test]
fn status_of_one_stage_shows_only_that_stage() {
    let stack = Stack::new("status-one");
    let run = stack.run("--output json status --stage live");
    run.assert_code(0);
    assert_eq!(stage_order(&run.json_lines()), ["live"], "{}", run.stdout);
}

#[test]
fn watch_refreshes_until_interrupted_and_shows_a_change_made_meanwhile() {
    let stack = Stack::new("watch");
    let mut run = stack.start("--output json watch --stage live --interval 1s");
    let deadline = Instant::now() + Duration::from_secs(20);
    let saw = |run: &support::Running, pred: &dyn Fn(&Value) -> bool| {
        run.stdout_so_far()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|v| pred(&v))
    };
    while !saw(&run, &|v| v["stage"] == "live") {
        assert!(
            run.is_running(),
            "watch exited early: {}",
            run.stdout_so_far()
        );
        assert!(
            Instant::now() < deadline,
            "no refresh of live: {}",
            run.stdout_so_far()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stack.set_alias("live", "1", Some(("3", 0.25)));
    // The same shape as `status --output json` (pinned by the status snapshot).
    while !saw(&run, &|v| {
        v["candidate"]["version"] == "3" && v["candidate"]["weight"].as_f64() == Some(25.0)
    }) {
        assert!(
            run.is_running(),
            "watch exited early: {}",
            run.stdout_so_far()
        );
        assert!(
            Instant::now() < deadline,
            "the change never showed: {}",
            run.stdout_so_far()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    run.interrupt();
    let done = run.wait_timeout(Duration::from_secs(10));
    // Ctrl-C is how a watch ends: a clean stop, exit 0.
    done.assert_code(0);
}
