//! How long a bad function of a release hurts: the time from the first request that
//! birthday's bad candidate fails to every function of the release (app and birthday) back on
//! its stable version, taken back by `promote` itself (no guardian), through the gateway with
//! the real bootstraps.
//!
//! `promote canary` walks a release of both functions on live; the gateway fails every
//! request birthday's candidate gets (`--fault`), evaluates the stage's alarms (one per
//! function for the Lambda ones) at `--time-scale 60` (a 60 s alarm period is a second), and
//! promote, polling every second, sees birthday's own errors alarm and takes both functions
//! back (exit 4). The figure is printed, not asserted (a timed assertion would fail on a busy
//! machine and measure nothing); the test asserts the outcome. The guardian's tests measure
//! the same path without `promote` (docs/guardian.md).
//!
//! `cargo test -p gateway --test it -- rollback_time --nocapture` prints it.

use crate::support;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Stack, get, request, wait_for};

const TIME_SCALE: &str = "60";
/// At most so many requests a second on each function's route (each waits for its answer).
const RATE: u64 = 40;
const MAX_REQUESTS: usize = 4000;
const FUNCTIONS: [&str; 2] = ["app", "birthday"];
const BIRTHDAY_ERRORS: &str = "app-live-lambda-errors-birthday";

/// live judged by its Lambda alarms alone: the API's alarms watch every function at once, so
/// only birthday's own alarm sees its failures, and promote blames it.
fn live(dir: &std::path::Path) {
    testkit::edit_json(&dir.join("live.json"), |v| {
        v["poll_interval_seconds"] = 1.into();
        v["analysis"] = json!({"sources": ["alarms"], "latency_statistic": "mean"});
        testkit::keep_alarms(v, "lambda_");
    });
}

fn none_split(stack: &Stack) -> bool {
    FUNCTIONS
        .iter()
        .all(|f| stack.routing_of(f, "live").1.is_none())
}

#[test]
fn a_bad_birthday_candidate_takes_every_function_back_and_the_time_is_printed() {
    let stack = Stack::with_environments(live);
    let zips = stack.release_zips();
    let (app, birthday) = stack.publish_releases(&zips);
    let fault = format!("birthday/{}:1.0", birthday[1]);
    let mut args = vec!["--artifacts"];
    args.extend(zips.iter().map(|z| z.to_str().unwrap()));
    args.extend(["--fault", &fault, "--time-scale", TIME_SCALE]);
    let gw = stack.gateway(&args);

    let first_failure: Mutex<Option<Instant>> = Mutex::new(None);
    let (sent, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let done = AtomicBool::new(false);
    let (back, promote_exit, code, stderr) = std::thread::scope(|s| {
        s.spawn(|| {
            let every = Duration::from_micros(1_000_000 / RATE);
            let mut next = Instant::now();
            for _ in 0..MAX_REQUESTS {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                get(gw.port, "/live/build-info");
                // When the request was sent: the user's request starts failing then.
                let sent_at = Instant::now();
                let put = request(
                    gw.port,
                    "PUT",
                    "/live/hello/measured",
                    &[("Content-Type", "application/json")],
                    br#"{"dateOfBirth":"1990-05-17"}"#,
                );
                sent.fetch_add(2, Ordering::SeqCst);
                if put.as_ref().map_or(true, |a| a.status >= 500) {
                    failed.fetch_add(1, Ordering::SeqCst);
                    first_failure.lock().unwrap().get_or_insert(sent_at);
                }
                next += every;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
        let child = stack
            .promote_command("canary --stage live --allow-downgrade --bake 10m --poll 1s")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start promote");
        // Every function back, after birthday's candidate has failed a request.
        let back = wait_for(Duration::from_secs(90), || {
            let failed_at = (*first_failure.lock().unwrap())?;
            none_split(&stack).then(|| Instant::now() - failed_at)
        })
        .map(|(d, _)| d);
        let out = child.wait_with_output().expect("promote ran");
        let exited = Instant::now();
        done.store(true, Ordering::SeqCst);
        let promote_exit = first_failure.lock().unwrap().map(|f| exited - f);
        (
            back,
            promote_exit,
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    });
    let back = back.unwrap_or_else(|| panic!("a split is still there:\n{stderr}\n{}", gw.stderr()));
    assert_eq!(code, Some(4), "promote rolled the release back:\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "function birthday: alarm {BIRTHDAY_ERRORS} is ALARM"
        )),
        "{stderr}"
    );
    for (f, stable) in FUNCTIONS.iter().zip([&app[0], &birthday[0]]) {
        assert_eq!(
            stack.routing_of(f, "live"),
            (stable.clone(), None),
            "{f} back on its stable version"
        );
    }
    eprintln!(
        "promote: every function of the release back on its stable version {:.2} s after birthday's first failing request was sent (promote exited {:.2} s after it); {} requests, {} failed (requests sent one after the other, at most {RATE}/s per function), alarm periods scaled 1/{TIME_SCALE}",
        back.as_secs_f64(),
        promote_exit.map_or(f64::NAN, |d| d.as_secs_f64()),
        sent.load(Ordering::SeqCst),
        failed.load(Ordering::SeqCst)
    );
    gw.stop();
}
