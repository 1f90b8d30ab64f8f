//! A bad release caught by its own traffic: `--fault VERSION:1.0` fails every invocation of
//! the version as a crashed function (502, counted as Errors), and the stage's error alarm,
//! evaluated by the gateway with `--time-scale`, fires from those requests alone and clears
//! once they stop.

use crate::support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use support::{Stack, get, wait_for};

#[test]
fn a_faulty_version_fails_every_request_and_its_stage_alarm_fires_then_clears() {
    let stack = Stack::new();
    let zip = stack.app_zip("a.zip", None);
    let version = stack.publish(&zip);
    stack.set_alias("test", &version, None);
    let alarm = stack.seeded["stages"]["test"]["alarms"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(alarm.ends_with("lambda-errors"), "{alarm}");
    assert_eq!(stack.alarm_state(&alarm).0, "OK");
    let fault = format!("{version}:1.0");
    // A 60 s period evaluates every second.
    let gw = stack.gateway(&[
        "--artifacts",
        zip.to_str().unwrap(),
        "--fault",
        &fault,
        "--time-scale",
        "60",
    ]);

    const FIRST: usize = 20;
    for _ in 0..FIRST {
        let a = get(gw.port, "/test/build-info");
        assert_eq!(a.status, 502);
        assert_eq!(
            a.json(),
            serde_json::json!({"message": "Internal server error"})
        );
    }
    // An alias without routing: Lambda counts it by alias (ExecutedVersion only when weighted).
    let dims = [("FunctionName", "app"), ("Resource", "app:test")];
    let counted = wait_for(Duration::from_secs(10), || {
        let s = stack.metric_sum("AWS/Lambda", "Errors", &dims);
        (s >= FIRST as f64).then_some(s)
    });
    assert_eq!(
        counted.map(|c| c.0),
        Some(FIRST as f64),
        "Errors of alias test (version {version})"
    );

    // Failing traffic until the alarm fires: the gateway sets it, nobody else.
    let stop = AtomicBool::new(false);
    let sent = AtomicUsize::new(0);
    let fired = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) && sent.load(Ordering::SeqCst) < 5000 {
                assert_eq!(get(gw.port, "/test/build-info").status, 502);
                sent.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let fired = wait_for(Duration::from_secs(15), || {
            let (state, reason) = stack.alarm_state(&alarm);
            (state == "ALARM").then_some(reason)
        });
        stop.store(true, Ordering::SeqCst);
        fired
    });
    let (reason, _) = fired.expect("the error alarm did not fire from failing traffic");
    assert!(
        reason.starts_with("Threshold Crossed: 1 out of the last 1 datapoint [")
            && reason.contains("was greater than or equal to the threshold (1.0)"),
        "{reason}"
    );

    // No more traffic: the missing datapoints are not breaching, the alarm returns to OK.
    let cleared = wait_for(Duration::from_secs(15), || {
        let (state, reason) = stack.alarm_state(&alarm);
        (state == "OK").then_some(reason)
    });
    let (reason, _) = cleared.expect("the alarm did not clear after the traffic stopped");
    // Usually the empty periods ("no datapoints ... treated as [NonBreaching]"); the last
    // partial period of traffic can already be under the threshold.
    assert!(
        reason.contains("treated as [NonBreaching]")
            || reason.contains("was not greater than or equal to the threshold (1.0)"),
        "{reason}"
    );
    gw.stop();
}
