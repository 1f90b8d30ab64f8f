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
