//! The metrics judge end to end: a live canary of a real candidate served by the gateway,
//! steady traffic through the stage URL, the per-version metrics the gateway publishes as
//! Lambda does, and `promote` judging them. The stage's analysis has `sources: ["metrics"]`
//! only, so no alarm takes part: a candidate failing a fifth of its requests
//! (`--fault V:0.2`) is rolled back by the judge (exit 4, its numbers in the reason), and the
//! same plan with an identical candidate completes.
//!
//! Periods of 1 s (the gateway publishes about once a second) keep each run to seconds;
//! bench/judge.sh measures the same plan with 5 s periods at 50 requests a second.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Stack, get, wait_for};

/// Requests a second sent through the gateway, paced, as the figures use.
const RATE: u64 = 50;
/// At most this many requests per run, whatever happens.
const MAX_REQUESTS: usize = 4000;
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

fn judged_by_metrics_only(dir: &std::path::Path) {
    let path = dir.join("live.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["poll_interval_seconds"] = 1.into();
    v["analysis"] = json!({
        "sources": ["metrics"],
        "period_seconds": 1,
        "min_requests": 20,
        // moto serves no percentiles.
        "latency_statistic": "mean",
        "max_extension_seconds": 10,
        "on_no_evidence": "hold",
    });
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

pub(crate) struct Outcome {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// Answers by status while the canary ran.
    pub(crate) statuses: BTreeMap<u16, usize>,
}

impl Outcome {
    pub(crate) fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }
    pub(crate) fn last_metrics_numbers(&self) -> Value {
        self.events()
            .iter()
            .filter(|e| e["event"] == "bake")
            .flat_map(|e| e["evidence"].as_array().cloned().unwrap_or_default())
            .rfind(|f| f["source"] == "metrics")
            .map(|f| f["numbers"].clone())
            .unwrap_or_else(|| panic!("no metrics finding:\n{}", self.stdout))
    }
}

/// A stage whose live alias serves `stable`, a gateway with `gateway_args`, steady traffic
/// on /live/build-info while `promote canary` of `candidate` at 10% runs to its end.
pub(crate) fn canary_under_traffic(
    stack: &Stack,
    candidate: &str,
    bake: &str,
    gateway_args: &[&str],
) -> Outcome {
    let gw = stack.gateway(gateway_args);
    // The stage answers before the canary starts (instances of the stable version are warm).
    let warm = wait_for(Duration::from_secs(10), || {
        (get(gw.port, "/live/build-info").status == 200).then_some(())
    });
    assert!(warm.is_some(), "live never answered 200:\n{}", gw.stderr());

    let out = stack.dir.path().join(format!("promote-{candidate}.out"));
    let err = stack.dir.path().join(format!("promote-{candidate}.err"));
    let mut child = stack
        .promote_command(&format!(
            "--output json canary --stage live --version {candidate} --weight 10 --bake {bake} --poll 1s"
        ))
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start promote");

    let done = AtomicBool::new(false);
    let statuses: Mutex<BTreeMap<u16, usize>> = Mutex::new(BTreeMap::new());
    let code = std::thread::scope(|s| {
        s.spawn(|| {
            let every = Duration::from_micros(1_000_000 / RATE);
            let mut next = Instant::now();
            for _ in 0..MAX_REQUESTS {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let status = get(gw.port, "/live/build-info").status;
                *statuses.lock().unwrap().entry(status).or_default() += 1;
                // On schedule: a slow answer is followed by the next one at once.
                next += every;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
        let exited = wait_for(RUN_TIMEOUT, || child.try_wait().unwrap());
        done.store(true, Ordering::SeqCst);
        match exited {
            Some((status, _)) => status.code(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    });
    let outcome = Outcome {
        code,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
        statuses: statuses.into_inner().unwrap(),
    };
    gw.stop();
    outcome
}

/// The stack, the stable version's and the candidate's zips (the same `app`, so the candidate
/// is identical unless the gateway is told to fail it), both published, live on the stable.
pub(crate) struct Release {
    pub(crate) stack: Stack,
    pub(crate) zips: [String; 2],
    pub(crate) stable: String,
    pub(crate) candidate: String,
}

pub(crate) fn release() -> Release {
    let stack = Stack::with_environments(judged_by_metrics_only);
    let zip_a = stack.app_zip("a.zip", None);
    let zip_b = stack.app_zip("b.zip", Some("candidate"));
    let stable = stack.publish(&zip_a);
    let candidate = stack.publish(&zip_b);
    stack.set_alias("live", &stable, None);
    let zips = [zip_a, zip_b].map(|z| z.to_str().unwrap().to_string());
    Release {
        stack,
        zips,
        stable,
        candidate,
    }
}

#[test]
fn a_candidate_failing_a_fifth_of_its_requests_is_rolled_back_by_the_judge_alone() {
    let Release {
        stack,
        zips: [a, b],
        stable,
        candidate,
    } = release();
    let fault = format!("{candidate}:0.2");
    // A 60 s bake: the rollback comes from a poll, long before the bake would end.
    let run = canary_under_traffic(
        &stack,
        &candidate,
        "60s",
        &["--artifacts", &a, &b, "--fault", &fault],
    );
    assert_eq!(
        run.code,
        Some(4),
        "promote should roll back (exit 4)\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.statuses.get(&502).is_some_and(|n| *n > 0),
        "the fault never answered 502: {:?}",
        run.statuses
    );
    assert_eq!(
        stack.alias_routing("live"),
        (stable.clone(), None),
        "rolled back"
    );

    let events = run.events();
    let rolled = events
        .iter()
        .find(|e| e["event"] == "rolled_back")
        .unwrap_or_else(|| panic!("no rolled_back event:\n{}", run.stdout));
    let reason = rolled["reason"].as_str().unwrap();
    assert!(
        reason.contains("metrics judge") && reason.contains("p = "),
        "the reason must name the judge and its numbers: {reason}"
    );
    assert!(
        !reason.to_lowercase().contains("alarm"),
        "no alarm is a source here: {reason}"
    );
    assert!(run.stderr.contains("metrics judge"), "{}", run.stderr);
    let n = run.last_metrics_numbers();
    assert_eq!(n["decision"], "fail", "{n}");
    assert_eq!(n["candidate"]["version"], candidate.as_str());
    assert!(n["candidate"]["errors"].as_u64().unwrap() > 0, "{n}");
    assert_eq!(n["stable"]["errors"].as_u64(), Some(0), "{n}");
    assert!(n["stable"]["requests"].as_u64().unwrap() > 0, "{n}");
}

#[test]
fn the_same_plan_with_an_identical_candidate_completes() {
    let Release {
        stack,
        zips: [a, b],
        stable,
        candidate,
    } = release();
    let run = canary_under_traffic(&stack, &candidate, "8s", &["--artifacts", &a, &b]);
    assert_eq!(
        run.code,
        Some(0),
        "promote should pass the step\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(run.statuses.keys().copied().collect::<Vec<_>>(), vec![200]);
    assert_eq!(
        stack.alias_routing("live"),
        (stable, Some((candidate.clone(), 0.1))),
        "the 10% step passed and stays"
    );
    let n = run.last_metrics_numbers();
    assert_eq!(n["decision"], "pass", "{n}");
    assert!(n["candidate"]["requests"].as_u64().unwrap() >= 20, "{n}");
}
