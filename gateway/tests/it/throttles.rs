//! A stage short of capacity: `--throttle VERSION:RATE` throttles that share of the
//! version's invocations as Lambda does when no concurrency is left (API Gateway answers
//! 500; only `Throttles` counts them), and the stage's throttle-rate alarm, a metric-math
//! alarm over `Throttles` and `Invocations` of the alias that the gateway evaluates with
//! `--time-scale`, fires once the throttled share stays above its threshold for its three
//! periods, and clears when the traffic stops.

use crate::support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use support::{Stack, get, wait_for};

#[test]
fn sustained_throttling_fires_the_stage_s_throttle_rate_alarm() {
    let stack = Stack::new();
    let zip = stack.app_zip("a.zip", None);
    let version = stack.publish(&zip);
    stack.set_alias("test", &version, None);
    let alarm = stack.seeded["stages"]["test"]["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .find(|a| a.ends_with("lambda-throttle-rate"))
        .expect("the test stage watches its throttle rate")
        .to_string();
    assert_eq!(stack.alarm_state(&alarm).0, "OK");
    let throttle = format!("{version}:0.5");
    // A 60 s period evaluates every second; the alarm needs three in a row.
    let gw = stack.gateway(&[
        "--artifacts",
        zip.to_str().unwrap(),
        "--throttle",
        &throttle,
        "--time-scale",
        "60",
    ]);

    let stop = AtomicBool::new(false);
    let (sent, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let fired = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) && sent.load(Ordering::SeqCst) < 5000 {
                let a = get(gw.port, "/test/build-info");
                match a.status {
                    200 => {}
                    500 => {
                        assert_eq!(
                            a.json(),
                            serde_json::json!({"message": "Internal server error"})
                        );
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                    other => panic!("status {other}"),
                }
                sent.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let fired = wait_for(Duration::from_secs(20), || {
            let (state, reason) = stack.alarm_state(&alarm);
            (state == "ALARM").then_some(reason)
        });
        stop.store(true, Ordering::SeqCst);
        fired
    });
    let (reason, _) = fired.expect("the throttle-rate alarm did not fire from throttled traffic");
    assert!(
        reason.starts_with("Threshold Crossed: 3 out of the last 3 datapoints [")
            && reason.contains("was greater than the threshold (0.05)")
            || reason.contains("were greater than the threshold (0.05)"),
        "{reason}"
    );
    let (sent, refused) = (sent.into_inner(), refused.into_inner());
    assert!(
        refused > 0 && refused < sent,
        "{refused} of {sent} throttled"
    );

    // Every request is counted once: invoked, or throttled (never both).
    let dims = [("FunctionName", "app"), ("Resource", "app:test")];
    let counted = wait_for(Duration::from_secs(10), || {
        let t = stack.metric_sum("AWS/Lambda", "Throttles", &dims);
        let i = stack.metric_sum("AWS/Lambda", "Invocations", &dims);
        (t + i >= sent as f64).then_some((t, i))
    });
    let ((throttles, invocations), _) = counted.expect("the requests were counted");
    assert_eq!(
        (throttles, invocations),
        (refused as f64, (sent - refused) as f64)
    );

    // No more traffic: no datapoints, not breaching, back to OK.
    let cleared = wait_for(Duration::from_secs(15), || {
        let (state, reason) = stack.alarm_state(&alarm);
        (state == "OK").then_some(reason)
    });
    assert!(
        cleared.is_some(),
        "the alarm did not clear after the traffic stopped"
    );
    gw.stop();
}

/// The judge's relative view through the gateway: a live 10% canary judged by the
/// per-version metrics alone (the judge module's plan), on a stage that throttles a fifth of
/// every version's requests. Lambda's `Throttles` by `ExecutedVersion` show both versions
/// throttled alike, which is the stage's capacity, not the candidate: the step passes.
#[test]
fn both_versions_throttled_alike_pass_the_judge() {
    let crate::judge::Release {
        stack,
        zips: [a, b],
        stable,
        candidate,
    } = crate::judge::release();
    let (ts, tc) = (format!("{stable}:0.2"), format!("{candidate}:0.2"));
    let run = crate::judge::canary_under_traffic(
        &stack,
        &candidate,
        "8s",
        &["--artifacts", &a, &b, "--throttle", &ts, "--throttle", &tc],
    );
    assert_eq!(
        run.code,
        Some(0),
        "promote should pass the step\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.statuses.get(&500).is_some_and(|n| *n > 0),
        "{:?}",
        run.statuses
    );
    let n = run.last_metrics_numbers();
    assert_eq!(n["decision"], "pass", "{n}");
    assert!(n["candidate"]["throttles"].as_u64().unwrap() > 0, "{n}");
    assert!(n["stable"]["throttles"].as_u64().unwrap() > 0, "{n}");
    assert!(n["throttle_test"]["p_value"].is_number(), "{n}");
}

/// The same plan where only the candidate is throttled (half its requests): more than its
/// share of the throttles, so the judge rolls it back, and says it was the throttles.
#[test]
fn a_candidate_throttled_more_than_its_share_is_rolled_back() {
    let crate::judge::Release {
        stack,
        zips: [a, b],
        stable,
        candidate,
    } = crate::judge::release();
    let tc = format!("{candidate}:0.5");
    let run = crate::judge::canary_under_traffic(
        &stack,
        &candidate,
        "60s",
        &["--artifacts", &a, &b, "--throttle", &tc],
    );
    assert_eq!(
        run.code,
        Some(4),
        "promote should roll back (exit 4)\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(stack.alias_routing("live"), (stable, None), "rolled back");
    let rolled = run
        .events()
        .into_iter()
        .find(|e| e["event"] == "rolled_back")
        .unwrap_or_else(|| panic!("no rolled_back event:\n{}", run.stdout));
    let reason = rolled["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("metrics judge: throttles: the candidate's throttled share"),
        "{reason}"
    );
    let n = run.last_metrics_numbers();
    assert_eq!(n["stable"]["throttles"].as_u64(), Some(0), "{n}");
}
