//! The guardian's decision over a table of triggers and stages as read.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::note::Actor;
use crate::plan::{AlarmValue, Split};
use crate::spec::{Alarm, Analysis, Hooks, Step};
use crate::version::Version;

fn v(n: u64) -> Version {
    Version::new(n).unwrap()
}
fn w(p: &str) -> Weight {
    Weight::parse_percent(p).unwrap()
}
fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn alarm(name: &str, kind: AlarmKind) -> Alarm {
    Alarm {
        name: name.into(),
        kind,
        threshold: 1.0,
        period_seconds: 60,
        evaluation_periods: 1,
    }
}

/// live: 10% / 50% / 100%, bakes 300 s, 300 s, 180 s; alarms and metrics.
fn live() -> Stage {
    let strategy = Strategy::Canary {
        steps: vec![
            Step {
                weight: w("10"),
                bake: secs(300),
            },
            Step {
                weight: w("50"),
                bake: secs(300),
            },
            Step {
                weight: Weight::FULL,
                bake: secs(180),
            },
        ],
    };
    Stage {
        name: "live".into(),
        upstream: Some("test".into()),
        analysis: Analysis::default_for(&strategy),
        strategy,
        poll_interval: secs(5),
        insufficient_data_is_failure: false,
        approval_required: false,
        alarms: vec![
            alarm("app-live-lambda-errors", AlarmKind::LambdaErrors),
            alarm(
                "app-live-lambda-throttle-rate",
                AlarmKind::LambdaThrottleRate,
            ),
            alarm(API_5XX, AlarmKind::Api5xxRate),
        ],
        engine: Engine::Alias,
        hooks: Hooks::default(),
        path: PathBuf::from("environments/live.json"),
    }
}

fn split(function: &str, stable: u64, cand: u64, p: &str) -> AliasState {
    AliasState {
        function: function.into(),
        view: AliasView {
            version: v(stable),
            split: Some(Split {
                version: v(cand),
                weight: w(p),
            }),
        },
        note: Note {
            previous: Some(v(stable - 1)),
            ..Note::default()
        }
        .at_step(v(cand), w(p), false),
    }
}

fn stable(function: &str, version: u64) -> AliasState {
    AliasState {
        function: function.into(),
        view: AliasView {
            version: v(version),
            split: None,
        },
        note: Note::default(),
    }
}

fn reading(name: &str, value: AlarmValue) -> AlarmReading {
    AlarmReading {
        name: name.into(),
        value,
        reason: "Threshold Crossed: 1 datapoint [3.0]".into(),
    }
}

const ERRORS: &str = "app-live-lambda-errors";
/// The errors alarm of the second function, as the stack names it.
const BIRTHDAY_ERRORS: &str = "app-live-lambda-errors-birthday";
const THROTTLES: &str = "app-live-lambda-throttle-rate";
const API_5XX: &str = "app-live-api-5xx-rate";

fn functions() -> Vec<String> {
    vec!["app".into(), "birthday".into()]
}

fn decide(stage: &Stage, trigger: &Trigger, obs: &Observed) -> Decision {
    super::decide(stage, &functions(), trigger, obs)
}

fn fired(name: &str) -> Trigger {
    Trigger::Alarm(reading(name, AlarmValue::Alarm))
}

fn seen(aliases: Vec<AliasState>, now: Option<AlarmValue>) -> Observed {
    seen_of(ERRORS, aliases, now)
}

/// The stage as read on an event of alarm `name`, which is `now` when read again.
fn seen_of(name: &str, aliases: Vec<AliasState>, now: Option<AlarmValue>) -> Observed {
    Observed {
        aliases,
        alarm_now: now.map(|value| reading(name, value)),
        ..Observed::default()
    }
}

fn finding(verdict: Verdict) -> Finding {
    Finding::new("metrics", verdict, "numbers")
}

/// On a tick: each function with a split judged alike, unless named otherwise.
fn ticked(aliases: Vec<AliasState>, findings: Vec<Finding>, age: Option<u64>) -> Observed {
    let per_function = aliases
        .iter()
        .filter(|a| a.view.split.is_some())
        .flat_map(|a| findings.iter().map(|f| (a.function.clone(), f.clone())))
        .collect();
    ticked_each(aliases, per_function, age)
}

fn ticked_each(
    aliases: Vec<AliasState>,
    findings: Vec<(String, Finding)>,
    age: Option<u64>,
) -> Observed {
    Observed {
        aliases,
        findings,
        split_age: age.map(secs),
        ..Observed::default()
    }
}

/// What a decision comes to, in short: nothing, a report, or rollbacks of these functions.
#[derive(Debug, PartialEq)]
enum Short {
    Nothing,
    Stale,
    Back(Vec<&'static str>, bool),
}

fn short(d: &Decision) -> Short {
    match d {
        Decision::Nothing(_) => Short::Nothing,
        Decision::ReportStale(_) => Short::Stale,
        Decision::RollBack { writes, stale, .. } => Short::Back(
            writes
                .iter()
                .map(|fw| match fw.function.as_str() {
                    "app" => "app",
                    "birthday" => "birthday",
                    _ => "other",
                })
                .collect(),
            *stale,
        ),
    }
}

#[test]
fn the_table() {
    let base = live();
    let codedeploy = Stage {
        engine: Engine::CodeDeploy,
        ..live()
    };
    let relative = {
        let mut s = live();
        s.analysis.judge_relative = true;
        s
    };
    let insufficient_fails = Stage {
        insufficient_data_is_failure: true,
        ..live()
    };
    let rollback_when_stale = {
        let mut s = live();
        s.analysis.on_no_evidence = OnNoEvidence::Rollback;
        s
    };
    let alarms_only = {
        let mut s = live();
        s.analysis.sources = vec![SourceKind::Alarms];
        s
    };
    let metrics_only = {
        let mut s = live();
        s.analysis.sources = vec![SourceKind::Metrics];
        s
    };
    let one = || vec![split("app", 3, 4, "10")];
    let app_moves = || vec![split("app", 3, 4, "10"), stable("birthday", 7)];
    let both = || vec![split("app", 3, 4, "10"), split("birthday", 7, 8, "10")];
    let fail = || vec![finding(Verdict::Fail("metrics judge: errors 6/30".into()))];
    let held = || vec![finding(Verdict::Inconclusive("12 of 100 requests".into()))];
    let pass = || vec![finding(Verdict::Pass)];
    use AlarmValue::{Alarm as A, InsufficientData as I, Ok as O};
    let insufficient = Trigger::Alarm(reading(ERRORS, I));
    let late_ok = Trigger::Alarm(reading(ERRORS, O));
    // The release of both, one function failing the judge and the other passing.
    let birthday_fails = || {
        ticked_each(
            both(),
            vec![
                ("app".into(), finding(Verdict::Pass)),
                (
                    "birthday".into(),
                    finding(Verdict::Fail("metrics judge: errors 9/30".into())),
                ),
            ],
            Some(60),
        )
    };

    let rows: Vec<(&str, &Stage, Trigger, Observed, Short)> = vec![
        (
            "alarm on a split",
            &base,
            fired(ERRORS),
            seen(one(), Some(A)),
            Short::Back(vec!["app"], false),
        ),
        (
            "every function of the release",
            &base,
            fired(ERRORS),
            seen(both(), Some(A)),
            Short::Back(vec!["app", "birthday"], false),
        ),
        (
            "the second function's alarm takes back every function",
            &base,
            fired(BIRTHDAY_ERRORS),
            seen_of(BIRTHDAY_ERRORS, both(), Some(A)),
            Short::Back(vec!["app", "birthday"], false),
        ),
        (
            "the second function's capacity alarm, judging absolutely",
            &base,
            fired("app-live-lambda-throttle-rate-birthday"),
            seen(both(), None),
            Short::Back(vec!["app", "birthday"], false),
        ),
        (
            "the API's alarm watches every function",
            &base,
            fired(API_5XX),
            seen_of(API_5XX, both(), Some(A)),
            Short::Back(vec!["app", "birthday"], false),
        ),
        (
            "the API's alarm with one function moving",
            &base,
            fired(API_5XX),
            seen_of(API_5XX, app_moves(), Some(A)),
            Short::Back(vec!["app"], false),
        ),
        (
            "a function with no split: its alarm judges its stable version",
            &base,
            fired(BIRTHDAY_ERRORS),
            seen_of(BIRTHDAY_ERRORS, app_moves(), Some(A)),
            Short::Nothing,
        ),
        (
            "the second function's alarm, late",
            &base,
            fired(BIRTHDAY_ERRORS),
            seen_of(BIRTHDAY_ERRORS, both(), Some(O)),
            Short::Nothing,
        ),
        (
            "no API alarm per function",
            &base,
            fired("app-live-api-5xx-rate-birthday"),
            seen(both(), Some(A)),
            Short::Nothing,
        ),
        (
            "a function the project does not have",
            &base,
            fired("app-live-lambda-errors-cake"),
            seen(both(), Some(A)),
            Short::Nothing,
        ),
        (
            "only the functions with a split",
            &base,
            fired(ERRORS),
            seen(
                vec![split("app", 3, 4, "10"), stable("birthday", 7)],
                Some(A),
            ),
            Short::Back(vec!["app"], false),
        ),
        (
            "no split: a stable alias is never written",
            &base,
            fired(ERRORS),
            seen(vec![stable("app", 3)], Some(A)),
            Short::Nothing,
        ),
        (
            "a CodeDeploy stage",
            &codedeploy,
            fired(ERRORS),
            seen(one(), Some(A)),
            Short::Nothing,
        ),
        (
            "late: the alarm is OK again",
            &base,
            fired(ERRORS),
            seen(one(), Some(O)),
            Short::Nothing,
        ),
        (
            "an OK transition",
            &base,
            late_ok,
            seen(one(), Some(O)),
            Short::Nothing,
        ),
        (
            "not the stage's alarm",
            &base,
            fired("app-test-lambda-errors"),
            seen(one(), Some(A)),
            Short::Nothing,
        ),
        (
            "an alarm on a stage whose analysis does not watch alarms",
            &metrics_only,
            fired(ERRORS),
            seen(one(), Some(A)),
            Short::Nothing,
        ),
        (
            "a capacity alarm, judging relatively",
            &relative,
            fired(THROTTLES),
            seen(one(), Some(A)),
            Short::Nothing,
        ),
        (
            "a capacity alarm, judging absolutely",
            &base,
            fired(THROTTLES),
            seen(one(), None),
            Short::Back(vec!["app"], false),
        ),
        (
            "INSUFFICIENT_DATA where it fails",
            &insufficient_fails,
            insufficient.clone(),
            seen(one(), Some(I)),
            Short::Back(vec!["app"], false),
        ),
        (
            "INSUFFICIENT_DATA where it does not",
            &base,
            insufficient,
            seen(one(), Some(I)),
            Short::Nothing,
        ),
        (
            "tick: the judge fails the candidate",
            &base,
            Trigger::Tick,
            ticked(one(), fail(), Some(60)),
            Short::Back(vec!["app"], false),
        ),
        (
            "tick: one function of the release fails the judge",
            &base,
            Trigger::Tick,
            birthday_fails(),
            Short::Back(vec!["app", "birthday"], false),
        ),
        (
            "tick: a held split stays held",
            &base,
            Trigger::Tick,
            ticked(one(), held(), Some(60)),
            Short::Nothing,
        ),
        (
            "tick: a passing candidate",
            &base,
            Trigger::Tick,
            ticked(one(), pass(), Some(60)),
            Short::Nothing,
        ),
        (
            "tick: no split",
            &base,
            Trigger::Tick,
            ticked(vec![stable("app", 3)], fail(), None),
            Short::Nothing,
        ),
        (
            "tick: a CodeDeploy stage",
            &codedeploy,
            Trigger::Tick,
            ticked(one(), fail(), None),
            Short::Nothing,
        ),
        (
            "tick: no per-version metrics",
            &alarms_only,
            Trigger::Tick,
            ticked(one(), fail(), None),
            Short::Nothing,
        ),
        // 10%: (300 s bake + 300 s extension) x 2 = 1200 s.
        (
            "tick: stale, held",
            &base,
            Trigger::Tick,
            ticked(one(), held(), Some(1201)),
            Short::Stale,
        ),
        (
            "tick: not stale yet",
            &base,
            Trigger::Tick,
            ticked(one(), held(), Some(1200)),
            Short::Nothing,
        ),
        (
            "tick: stale where the policy rolls back",
            &rollback_when_stale,
            Trigger::Tick,
            ticked(one(), held(), Some(1201)),
            Short::Back(vec!["app"], true),
        ),
        (
            "tick: failing beats stale",
            &base,
            Trigger::Tick,
            ticked(one(), fail(), Some(5000)),
            Short::Back(vec!["app"], false),
        ),
    ];
    for (what, stage, trigger, obs, want) in rows {
        assert_eq!(short(&decide(stage, &trigger, &obs)), want, "{what}");
    }
}

#[test]
fn a_rollback_restores_the_stable_version_and_records_the_guardian() {
    let obs = seen(vec![split("app", 3, 4, "10")], Some(AlarmValue::Alarm));
    let Decision::RollBack { reason, writes, .. } = decide(&live(), &fired(ERRORS), &obs) else {
        panic!("expected a rollback");
    };
    assert!(
        reason.starts_with("alarm app-live-lambda-errors is ALARM"),
        "{reason}"
    );
    let [fw] = writes.as_slice() else {
        panic!("{writes:?}")
    };
    assert_eq!(fw.write.kind, WriteKind::AutoRollback);
    assert_eq!(
        fw.write.to,
        AliasView {
            version: v(3),
            split: None
        }
    );
    let r = fw.write.note.was_rolled_back(v(4)).expect("recorded");
    assert_eq!((r.by, r.why.as_str()), (Actor::Guardian, reason.as_str()));
    assert_eq!(
        fw.write.note.previous,
        Some(v(2)),
        "the version before is kept"
    );
    assert_eq!(fw.write.note.step, None);
}

/// The same event twice (EventBridge delivers at least once), or after `promote` took the
/// split back: once the first rollback is applied the stage has no split, so nothing more
/// is written.
#[test]
fn a_duplicated_event_writes_once() {
    let mut aliases = vec![split("app", 3, 4, "10"), split("birthday", 7, 8, "10")];
    let mut written = 0;
    // The second function's alarm, delivered three times, then the first's and the API's.
    for name in [
        BIRTHDAY_ERRORS,
        BIRTHDAY_ERRORS,
        BIRTHDAY_ERRORS,
        ERRORS,
        API_5XX,
    ] {
        let obs = seen_of(name, aliases.clone(), Some(AlarmValue::Alarm));
        if let Decision::RollBack { writes, .. } = decide(&live(), &fired(name), &obs) {
            for fw in writes {
                let a = aliases
                    .iter_mut()
                    .find(|a| a.function == fw.function)
                    .unwrap();
                a.view = fw.write.to;
                a.note = fw.write.note;
                written += 1;
            }
        }
    }
    assert_eq!(written, 2, "one write per function, once");
    assert!(aliases.iter().all(|a| {
        a.note
            .rolled_back
            .as_ref()
            .is_some_and(|r| r.by == Actor::Guardian)
    }));
}

/// The note and the answer say which function's evidence took the release back, as
/// promote's own rollback of a release does; a one-function stage is not told its name.
#[test]
fn the_reason_names_the_failing_function_of_a_release() {
    let both = vec![split("app", 3, 4, "10"), split("birthday", 7, 8, "10")];
    let reason_of = |d: Decision| match d {
        Decision::RollBack { reason, writes, .. } => {
            assert!(writes.iter().all(|fw| {
                fw.write
                    .note
                    .rolled_back
                    .as_ref()
                    .is_some_and(|r| r.why == reason)
            }));
            reason
        }
        other => panic!("expected a rollback: {other:?}"),
    };
    let r = reason_of(decide(
        &live(),
        &fired(BIRTHDAY_ERRORS),
        &seen_of(BIRTHDAY_ERRORS, both.clone(), Some(AlarmValue::Alarm)),
    ));
    assert!(
        r.starts_with("function birthday: alarm app-live-lambda-errors-birthday is ALARM"),
        "{r}"
    );
    let r = reason_of(decide(
        &live(),
        &fired(API_5XX),
        &seen_of(API_5XX, both.clone(), Some(AlarmValue::Alarm)),
    ));
    assert!(r.starts_with("alarm app-live-api-5xx-rate is ALARM"), "{r}");
    let obs = ticked_each(
        both,
        vec![
            ("app".into(), finding(Verdict::Pass)),
            (
                "birthday".into(),
                finding(Verdict::Fail("errors 9/30".into())),
            ),
        ],
        Some(60),
    );
    assert_eq!(
        reason_of(decide(&live(), &Trigger::Tick, &obs)),
        "function birthday: errors 9/30"
    );
    let r = reason_of(decide(
        &live(),
        &fired(ERRORS),
        &seen(vec![split("app", 3, 4, "10")], Some(AlarmValue::Alarm)),
    ));
    assert!(
        r.starts_with("alarm app-live-lambda-errors is ALARM"),
        "{r}"
    );
}

#[test]
fn the_stage_of_an_alarm_and_the_stale_limits() {
    let test = Stage {
        name: "test".into(),
        alarms: vec![alarm("app-test-lambda-errors", AlarmKind::LambdaErrors)],
        ..live()
    };
    let stages = [test, live()];
    let fs = functions();
    let stage_of = |name| stage_of_alarm(&stages, &fs, name).map(|s| s.name.as_str());
    assert_eq!(stage_of(ERRORS), Some("live"));
    assert_eq!(stage_of(BIRTHDAY_ERRORS), Some("live"));
    assert_eq!(stage_of("app-test-lambda-errors"), Some("test"));
    assert_eq!(stage_of("app-test-lambda-errors-birthday"), Some("test"));
    assert_eq!(stage_of(API_5XX), Some("live"));
    assert_eq!(stage_of("app-live-api-5xx-rate-birthday"), None);
    assert_eq!(stage_of("someone-elses-alarm"), None);
    assert_eq!(
        alarm_named(&stages[1], &fs, BIRTHDAY_ERRORS).map(|(a, f)| (a.name.as_str(), f)),
        Some((ERRORS, Some("birthday")))
    );
    assert_eq!(
        alarm_named(&stages[1], &fs, API_5XX).map(|(a, f)| (a.name.as_str(), f)),
        Some((API_5XX, None))
    );
    assert_eq!(stale_after(&live(), w("10")), secs((300 + 300) * 2));
    assert_eq!(stale_after(&live(), w("50")), secs((600 + 300) * 2));
    assert!(judged_on_schedule(&live()));
    assert_eq!(judged_window(&live(), w("10")), secs(300));
    assert_eq!(
        judged_window(&live(), w("5")),
        secs(300),
        "below the first step: its bake"
    );
    let mut quick = live();
    quick.strategy = Strategy::Canary {
        steps: vec![Step {
            weight: w("10"),
            bake: secs(10),
        }],
    };
    assert_eq!(
        judged_window(&quick, w("10")),
        secs(300),
        "five 60 s periods at least"
    );
}
