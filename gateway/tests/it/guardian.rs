//! The guardian through the gateway, with its real bootstrap: a release of both functions
//! (`app` and `birthday`) at 10% whose `promote` is killed with `kill -9`, then one
//! function's candidate (birthday's) failing. No `promote` runs; the gateway evaluates the
//! stage's alarms (one per function for the Lambda ones), hands their state changes to the
//! guardian as EventBridge would, and ticks its schedule (scaled by `--time-scale`). The
//! guardian takes back the split of every function of the release; a rerun of `promote`
//! reports who rolled back and why and refuses the release without `--retry`.

use crate::support;

use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Stack, get, guardian_bin, request, wait_for};

/// A minute is a second: the alarms' 60 s periods and the guardian's schedule.
const TIME_SCALE: &str = "60";
const RATE: u64 = 50;
const MAX_REQUESTS: usize = 3000;

const FUNCTIONS: [&str; 2] = ["app", "birthday"];
/// The second function's own errors alarm, as the stack names it.
const BIRTHDAY_ERRORS: &str = "app-live-lambda-errors-birthday";

/// live judged as `analysis` says, with only its Lambda alarms: the API's alarms watch every
/// function at once, so birthday's failures would fire them too; without them, only the
/// failing function's own alarm can see it, and takes back both.
fn live(dir: &std::path::Path, analysis: Value) {
    testkit::edit_json(&dir.join("live.json"), |v| {
        v["poll_interval_seconds"] = 1.into();
        v["analysis"] = analysis;
        testkit::keep_alarms(v, "lambda_");
    });
}

/// Whether every function's live alias is split, each to its candidate.
fn both_split(stack: &Stack, candidates: &[String; 2]) -> bool {
    FUNCTIONS.iter().zip(candidates).all(|(f, c)| {
        stack
            .routing_of(f, "live")
            .1
            .is_some_and(|(v, w)| &v == c && (w - 0.1).abs() < 1e-9)
    })
}

/// Whether no function's live alias is split any more.
fn none_split(stack: &Stack) -> bool {
    FUNCTIONS
        .iter()
        .all(|f| stack.routing_of(f, "live").1.is_none())
}

/// The release `promote` leaves at 10% when killed during its first bake.
fn canary_then_kill_9(stack: &Stack, candidates: &[String; 2]) {
    let mut child: Child = stack
        .promote_command("canary --stage live --allow-downgrade --bake 10m --poll 1s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start promote");
    let split = wait_for(Duration::from_secs(30), || {
        both_split(stack, candidates).then_some(())
    });
    // SIGKILL: no handler runs, nothing is taken back.
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        split.is_some(),
        "promote never put both candidates at 10%: {:?}",
        FUNCTIONS.map(|f| stack.routing_of(f, "live"))
    );
}

struct Run {
    /// From the first request to every split gone.
    back_after: Option<Duration>,
    /// From the alarm seen in ALARM (read every 50 ms) to every split gone.
    after_alarm: Option<Duration>,
}

/// Traffic on both functions' routes until every split is gone (or a minute).
fn traffic_until_taken_back(stack: &Stack, port: u16, watch_alarm: Option<&str>) -> Run {
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let mut alarm_at = None;
    let back = std::thread::scope(|s| {
        s.spawn(|| {
            let every = Duration::from_micros(1_000_000 / RATE);
            let mut next = Instant::now();
            for _ in 0..MAX_REQUESTS {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                get(port, "/live/build-info");
                let _ = request(
                    port,
                    "PUT",
                    "/live/hello/guarded",
                    &[("Content-Type", "application/json")],
                    br#"{"dateOfBirth":"1990-05-17"}"#,
                );
                next += every;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
        let back = wait_for(Duration::from_secs(60), || {
            if alarm_at.is_none()
                && let Some(name) = watch_alarm
                && stack.alarm_state(name).0 == "ALARM"
            {
                alarm_at = Some(Instant::now());
            }
            none_split(stack).then(Instant::now)
        });
        done.store(true, Ordering::SeqCst);
        back.map(|(at, _)| at)
    });
    Run {
        back_after: back.map(|at| at - started),
        after_alarm: back
            .zip(alarm_at)
            .map(|(b, a)| b.saturating_duration_since(a)),
    }
}

/// What a rerun of the release and `promote status` say afterwards.
fn rerun_refuses_and_status_tells(stack: &Stack, candidates: &[String; 2], why: &str) {
    let out = stack
        .promote_command("canary --stage live --allow-downgrade --bake 1s")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "refused without --retry:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("by the guardian: {why}")),
        "{stderr}"
    );
    assert!(stderr.contains("--retry"), "{stderr}");
    let status = stack.promote("status --stage live");
    for c in candidates {
        assert!(
            status.contains(&format!(
                "version {c} was rolled back (by the guardian: {why}"
            )),
            "{status}"
        );
    }
}

/// Stable and candidate versions of both functions published; live serves the stable
/// release, test the candidate one, which live's plan takes.
fn release(analysis: Value) -> (Stack, Vec<String>, [String; 2], [String; 2]) {
    let stack = Stack::with_environments(|dir| live(dir, analysis));
    let zips = stack.release_zips();
    let (app, birthday) = stack.publish_releases(&zips);
    let zips = zips
        .iter()
        .map(|z| z.to_str().unwrap().to_string())
        .collect();
    let [stable_app, candidate_app] = app;
    let [stable_birthday, candidate_birthday] = birthday;
    (
        stack,
        zips,
        [stable_app, stable_birthday],
        [candidate_app, candidate_birthday],
    )
}

/// The gateway with the guardian and birthday's candidate failing at `rate`, and the
/// release left at 10%.
fn gateway_then_release_killed(
    stack: &Stack,
    zips: &[String],
    rate: f64,
    candidates: &[String; 2],
) -> support::Gateway {
    let guardian = guardian_bin();
    let fault = format!("birthday/{}:{rate}", candidates[1]);
    let mut args = vec!["--artifacts"];
    args.extend(zips.iter().map(String::as_str));
    args.extend([
        "--fault",
        &fault,
        "--time-scale",
        TIME_SCALE,
        "--guardian",
        guardian.to_str().unwrap(),
    ]);
    let gw = stack.gateway(&args);
    canary_then_kill_9(stack, candidates);
    gw
}

fn assert_stable(stack: &Stack, stable: &[String; 2]) {
    for (f, s) in FUNCTIONS.iter().zip(stable) {
        assert_eq!(stack.routing_of(f, "live"), (s.clone(), None), "{f}");
    }
}

#[test]
fn one_functions_alarm_with_promote_killed_the_guardian_takes_back_every_function() {
    let (stack, zips, stable, candidates) =
        release(json!({"sources": ["alarms"], "latency_statistic": "mean"}));
    let gw = gateway_then_release_killed(&stack, &zips, 1.0, &candidates);

    let run = traffic_until_taken_back(&stack, gw.port, Some(BIRTHDAY_ERRORS));
    let back = run
        .back_after
        .unwrap_or_else(|| panic!("a split is still there:\n{}", gw.stderr()));
    assert_stable(&stack, &stable);
    // The errors alarm's window is one 60 s period, a second at this scale; the gateway
    // publishes about once a second and evaluates a quarter-period later.
    eprintln!(
        "guardian: every split taken back {:.2} s after the first request, {:.2} s after the alarm was seen in ALARM",
        back.as_secs_f64(),
        run.after_alarm.map_or(f64::NAN, |d| d.as_secs_f64())
    );
    assert!(
        back < Duration::from_secs(1 + 2 + 2),
        "within the alarm's window (1 s) plus the gateway's publishing (about 2 s) plus 2 s: {back:?}"
    );
    rerun_refuses_and_status_tells(
        &stack,
        &candidates,
        &format!("function birthday: alarm {BIRTHDAY_ERRORS} is ALARM"),
    );
    gw.stop();
}

#[test]
fn with_no_alarm_the_schedule_alone_takes_back_a_release_whose_one_function_the_judge_fails() {
    // The stage judges by per-version metrics only: its alarms are nobody's evidence, so
    // only the guardian's schedule can act.
    let (stack, zips, stable, candidates) = release(json!({
        "sources": ["metrics"],
        "period_seconds": 1,
        "min_requests": 20,
        "latency_statistic": "mean",
        "max_extension_seconds": 10,
        "on_no_evidence": "hold",
    }));
    let gw = gateway_then_release_killed(&stack, &zips, 0.3, &candidates);
    let run = traffic_until_taken_back(&stack, gw.port, None);
    let back = run
        .back_after
        .unwrap_or_else(|| panic!("a split is still there:\n{}", gw.stderr()));
    eprintln!(
        "guardian: every split taken back by the schedule {:.2} s after the first request",
        back.as_secs_f64()
    );
    assert_stable(&stack, &stable);
    let out = stack.promote("status --stage live");
    assert!(
        out.contains("(by the guardian: function birthday: metrics judge"),
        "{out}"
    );
    gw.stop();
}
