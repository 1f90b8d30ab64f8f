//! `promote canary` against a seeded moto: weighted splits, whole plans, automatic rollback on
//! alarms, the pre-flight alarm guard, and resuming after `kill -9`.

use crate::support;

use std::time::Duration;

use aws_sdk_cloudwatch::types::StateValue;
use support::{AliasState, Stack};

fn split_of(a: &AliasState) -> Option<(String, f64)> {
    a.split()
}

#[test]
fn canary_live_10_percent_routes_a_tenth_to_the_candidate_and_leaves_the_split() {
    let stack = Stack::new("canary-10");
    stack
        .run("canary --stage live --version 2 --weight 10 --bake 1s --poll 1s")
        .assert_code(0);
    let live = stack.alias("live");
    assert_eq!(live.version, "1", "stable must stay on version 1: {live:?}");
    assert_eq!(split_of(&live), Some(("2".to_string(), 0.1)), "{live:?}");
}

#[test]
fn canary_candidate_defaults_to_the_version_stable_on_the_upstream_stage() {
    let stack = Stack::new("canary-default");
    stack.set_alias("test", "3", None);
    stack
        .run("canary --stage live --weight 10 --bake 1s --poll 1s")
        .assert_code(0);
    let live = stack.alias("live");
    assert_eq!(live.version, "1");
    assert_eq!(split_of(&live), Some(("3".to_string(), 0.1)), "{live:?}");
}

#[test]
fn canary_whole_plan_with_short_bakes_ends_on_the_candidate_with_routing_cleared() {
    let stack = Stack::short_bakes("canary-plan", 1);
    let mut run = stack.start("canary --stage live --version 2 --poll 1s");
    // Watch the plan go through its steps (10 -> 50 -> 100) from the outside.
    let states = stack.watch_alias("live", &mut run, Duration::from_secs(60));
    let mut seen = Vec::new();
    for a in &states {
        if let Some((_, w)) = a.split()
            && seen.last() != Some(&w)
        {
            seen.push(w);
        }
    }
    let done = run.wait_timeout(Duration::from_secs(5));
    done.assert_code(0);
    let live = stack.alias("live");
    assert_eq!(live.version, "2", "{live:?}");
    assert!(live.weights.is_empty(), "routing not cleared: {live:?}");
    assert_eq!(seen, vec![0.1, 0.5], "weights observed during the plan");
}

#[test]
fn an_alarm_during_the_bake_clears_the_routing_and_exits_4() {
    let stack = Stack::new("canary-alarm");
    let alarm = stack.seeded.alarms("live")[0].clone();
    let run = stack.start("canary --stage live --version 2 --weight 10 --bake 60s --poll 1s");
    stack
        .wait_alias("live", Duration::from_secs(30), |a| a.split().is_some())
        .expect("the split never appeared");
    stack.set_alarm(&alarm, StateValue::Alarm);
    // Well inside the 60 s bake: the rollback came from the poll, not from the bake ending.
    // (How fast, against the 1 s poll, is measured by bench/promote.sh, not asserted here.)
    let (live, _elapsed) = stack
        .wait_alias("live", Duration::from_secs(15), |a| a.weights.is_empty())
        .expect("routing not cleared after the alarm fired");
    assert_eq!(
        live.version, "1",
        "rollback must leave the stable version: {live:?}"
    );
    let done = run.wait_timeout(Duration::from_secs(15));
    done.assert_code(4);
    assert!(
        done.output().contains(&alarm),
        "rollback does not name the alarm: {}",
        done.output()
    );
}

#[test]
fn an_alarm_already_in_alarm_refuses_the_canary_and_leaves_the_alias() {
    let stack = Stack::new("canary-prealarm");
    let alarm = stack.seeded.alarms("live")[2].clone();
    stack.set_alarm(&alarm, StateValue::Alarm);
    stack.assert_refused(
        "canary --stage live --version 2 --weight 10 --bake 1s",
        3,
        &[&alarm],
    );
}

#[test]
fn insufficient_data_is_not_a_failure_by_default() {
    let stack = Stack::new("canary-insufficient");
    for alarm in stack.seeded.alarms("live") {
        stack.set_alarm(&alarm, StateValue::InsufficientData);
    }
    stack
        .run("canary --stage live --version 2 --weight 10 --bake 1s --poll 1s")
        .assert_code(0);
    assert_eq!(split_of(&stack.alias("live")), Some(("2".to_string(), 0.1)));
}

#[test]
fn canary_downgrade_is_refused_with_exit_3() {
    let stack = Stack::new("canary-downgrade");
    stack.set_alias("live", "3", None);
    stack.assert_refused(
        "canary --stage live --version 2 --weight 10 --bake 1s",
        3,
        &["--allow-downgrade"],
    );
}

#[test]
fn killed_with_sigkill_mid_bake_a_rerun_resumes_from_the_current_weight() {
    // Same command twice, as a CI retry would run it; bakes of 3 s so the kill lands mid-bake.
    let stack = Stack::short_bakes("canary-kill9", 3);
    stack.set_alias("test", "2", None);
    let args = ["canary", "--stage", "live", "--poll", "1s"];
    let first = stack.spawn(&args);
    stack
        .wait_alias("live", Duration::from_secs(30), |a| a.split().is_some())
        .expect("the first run never split the alias");
    first.kill9();
    let after_kill = stack.alias("live");
    assert_eq!(after_kill.version, "1");
    // Normally 10%; 50% only if this machine lagged a whole 3 s bake behind the first split.
    let (candidate, killed_at) = after_kill.split().expect("split lost by kill -9");
    assert_eq!(candidate, "2");

    let mut rerun = stack.spawn(&args);
    let states = stack.watch_alias("live", &mut rerun, Duration::from_secs(60));
    rerun.wait_timeout(Duration::from_secs(5)).assert_code(0);
    let switched = states
        .iter()
        .position(|s| s.version == "2")
        .unwrap_or_else(|| panic!("the rerun never reached the candidate: {states:?}"));
    for s in &states[..switched] {
        assert!(
            s.version == "1" && s.split().is_some_and(|(v, w)| v == "2" && w >= killed_at),
            "the rerun went back to 0 or straight to 100 before the plan's last step: {s:?}\nall: {states:?}"
        );
    }
    for s in &states[switched..] {
        assert!(
            s.weights.is_empty(),
            "routing left after the switch: {states:?}"
        );
    }
    if killed_at < 0.5 {
        assert!(
            states
                .iter()
                .any(|s| s.split() == Some(("2".to_string(), 0.5))),
            "the rerun skipped the 50% step: {states:?}"
        );
    }
    let last = states.last().unwrap();
    assert_eq!(last.version, "2", "{last:?}");
    assert!(last.weights.is_empty(), "{last:?}");
}

#[test]
fn an_alarm_during_the_last_bake_restores_the_previous_version() {
    // After the 100% step the candidate serves everything; an alarm in that step's bake must
    // put the stable version back, not just clear a routing that no longer exists.
    let stack = Stack::short_bakes("canary-alarm-full", 3);
    let alarm = stack.seeded.alarms("live")[1].clone();
    let run = stack.start("canary --stage live --version 2 --poll 1s");
    stack
        .wait_alias("live", Duration::from_secs(60), |a| a.version == "2")
        .expect("the plan never reached 100%");
    stack.set_alarm(&alarm, StateValue::Alarm);
    let (live, _) = stack
        .wait_alias("live", Duration::from_secs(15), |a| a.version == "1")
        .expect("the previous version was not restored after the alarm");
    assert!(live.weights.is_empty(), "{live:?}");
    let done = run.wait_timeout(Duration::from_secs(15));
    done.assert_code(4);
    assert!(done.output().contains(&alarm), "{}", done.output());
}

#[test]
fn a_canary_of_the_version_already_served_is_a_successful_no_op() {
    let stack = Stack::new("canary-noop");
    let before = stack.all_aliases();
    stack
        .run("canary --stage live --version 1 --weight 10 --bake 1s")
        .assert_code(0);
    assert_eq!(stack.all_aliases(), before);
}

#[test]
fn a_second_candidate_while_a_canary_is_in_flight_is_refused() {
    // Lambda routes to one additional version only; starting version 3 would silently drop
    // version 2's canary, so promote asks for it to be completed or rolled back first.
    let stack = Stack::new("canary-second");
    stack.set_alias("live", "1", Some(("2", 0.1)));
    let run = stack.assert_refused(
        "canary --stage live --version 3 --weight 20 --bake 1s",
        3,
        &["rollback"],
    );
    assert!(run.stderr.contains("complete"), "{}", run.stderr);
}
