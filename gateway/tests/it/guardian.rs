//! The guardian through the gateway, with its real bootstrap: a 10% canary whose `promote`
//! is killed with `kill -9`, then a candidate failing every request. No `promote` runs;
//! the gateway evaluates the stage's alarms, hands their state changes to the guardian as
//! EventBridge would, and ticks its schedule (scaled by `--time-scale`). The guardian takes
//! the split back; a rerun of `promote` reports who rolled back and why and refuses the
//! version without `--retry`.

use crate::support;

use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Stack, get, guardian_bin, wait_for};

/// A minute is a second: the alarms' 60 s periods and the guardian's schedule.
const TIME_SCALE: &str = "60";
const RATE: u64 = 50;
const MAX_REQUESTS: usize = 3000;

fn live(dir: &std::path::Path, analysis: Value) {
    let path = dir.join("live.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["poll_interval_seconds"] = 1.into();
    v["analysis"] = analysis;
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// The canary `promote` leaves at 10% when killed during its first bake.
fn canary_then_kill_9(stack: &Stack, candidate: &str) {
    let mut child: Child = stack
        .promote_command(&format!(
            "canary --stage live --version {candidate} --bake 10m --poll 1s"
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start promote");
    let split = wait_for(Duration::from_secs(30), || {
        stack
            .alias_routing("live")
            .1
            .filter(|(v, _)| v == candidate)
    });
    // SIGKILL: no handler runs, nothing is taken back.
    child.kill().unwrap();
    let _ = child.wait();
    let (got, _) = split.expect("promote never put the candidate at 10%");
    assert_eq!(got, (candidate.to_string(), 0.1));
}

struct Run {
    /// From the first request to the split gone.
    back_after: Option<Duration>,
    /// From the alarm seen in ALARM (read every 50 ms) to the split gone.
    after_alarm: Option<Duration>,
}

/// Traffic on /live/build-info until the split is gone (or a minute).
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
            stack.alias_routing("live").1.is_none().then(Instant::now)
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

/// What a rerun and `promote status` say afterwards.
fn rerun_refuses_and_status_tells(stack: &Stack, candidate: &str) {
    let out = stack
        .promote_command(&format!(
            "canary --stage live --version {candidate} --bake 1s"
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "refused without --retry:\n{stderr}"
    );
    assert!(stderr.contains("by the guardian: "), "{stderr}");
    assert!(stderr.contains("--retry"), "{stderr}");
    let status = stack.promote("status --stage live");
    assert!(
        status.contains(&format!(
            "version {candidate} was rolled back (by the guardian: "
        )),
        "{status}"
    );
}

fn release(analysis: Value) -> (Stack, [String; 2], String, String) {
    let stack = Stack::with_environments(|dir| live(dir, analysis));
    let zip_a = stack.app_zip("a.zip", None);
    let zip_b = stack.app_zip("b.zip", Some("candidate"));
    let stable = stack.publish(&zip_a);
    let candidate = stack.publish(&zip_b);
    stack.set_alias("live", &stable, None);
    let zips = [zip_a, zip_b].map(|z| z.to_str().unwrap().to_string());
    (stack, zips, stable, candidate)
}

/// The gateway with the guardian and the candidate's fault, and the canary left at 10%.
fn gateway_then_canary_killed(
    stack: &Stack,
    [a, b]: [&str; 2],
    fault: &str,
    candidate: &str,
) -> support::Gateway {
    let guardian = guardian_bin();
    let gw = stack.gateway(&[
        "--artifacts",
        a,
        b,
        "--fault",
        fault,
        "--time-scale",
        TIME_SCALE,
        "--guardian",
        guardian.to_str().unwrap(),
    ]);
    canary_then_kill_9(stack, candidate);
    gw
}

#[test]
fn an_alarm_with_promote_killed_the_guardian_takes_the_split_back() {
    let (stack, [a, b], stable, candidate) =
        release(json!({"sources": ["alarms"], "latency_statistic": "mean"}));
    let fault = format!("{candidate}:1.0");
    let gw = gateway_then_canary_killed(&stack, [&a, &b], &fault, &candidate);

    let run = traffic_until_taken_back(&stack, gw.port, Some("app-live-lambda-errors"));
    let back = run
        .back_after
        .unwrap_or_else(|| panic!("the split is still there:\n{}", gw.stderr()));
    assert_eq!(stack.alias_routing("live"), (stable, None));
    // The errors alarm's window is one 60 s period, a second at this scale; the gateway
    // publishes about once a second and evaluates a quarter-period later.
    eprintln!(
        "guardian: split taken back {:.2} s after the first request, {:.2} s after the alarm was seen in ALARM",
        back.as_secs_f64(),
        run.after_alarm.map_or(f64::NAN, |d| d.as_secs_f64())
    );
    assert!(
        back < Duration::from_secs(1 + 2 + 2),
        "within the alarm's window (1 s) plus the gateway's publishing (about 2 s) plus 2 s: {back:?}"
    );
    rerun_refuses_and_status_tells(&stack, &candidate);
    gw.stop();
}

#[test]
fn with_no_alarm_the_schedule_alone_takes_back_a_candidate_the_judge_fails() {
    // The stage judges by per-version metrics only: its alarms are nobody's evidence, so
    // only the guardian's schedule can act.
    let (stack, [a, b], stable, candidate) = release(json!({
        "sources": ["metrics"],
        "period_seconds": 1,
        "min_requests": 20,
        "latency_statistic": "mean",
        "max_extension_seconds": 10,
        "on_no_evidence": "hold",
    }));
    let fault = format!("{candidate}:0.3");
    let gw = gateway_then_canary_killed(&stack, [&a, &b], &fault, &candidate);
    let run = traffic_until_taken_back(&stack, gw.port, None);
    let back = run
        .back_after
        .unwrap_or_else(|| panic!("the split is still there:\n{}", gw.stderr()));
    eprintln!(
        "guardian: split taken back by the schedule {:.2} s after the first request",
        back.as_secs_f64()
    );
    assert_eq!(stack.alias_routing("live"), (stable, None));
    let out = stack.promote("status --stage live");
    assert!(out.contains("(by the guardian: metrics judge"), "{out}");
    gw.stop();
}
