//! The metrics judge against moto: while `promote canary` bakes a 10% split, the test
//! publishes with PutMetricData what Lambda publishes for a weighted alias (`AWS/Lambda`
//! `Invocations`, `Errors`, `Duration`, `Throttles`, by `FunctionName`, by
//! `FunctionName`+`Resource` and by `FunctionName`+`Resource`+`ExecutedVersion`), and
//! `promote` reads it back with GetMetricData as it would in AWS.
//!
//! moto aggregates any period it is asked for (its periods start at the query's StartTime,
//! which `rollout::metrics_verdict::window` aligns on multiples of the period), so the
//! stages here judge 1 s periods: the first complete period is judged 2 s after the write
//! and a whole test takes seconds. moto serves no percentiles (a `p99` query comes back
//! empty), so latency is judged on the mean (`latency_statistic: "mean"`). The alarms stay
//! a source, untouched: moto never evaluates them, so every verdict here is the judge's.

use crate::support;

use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};
use serde_json::{Value, json};
use support::{Running, Stack, edit_json};

const STAGE: &str = "live";
const STABLE: &str = "1";
const CANDIDATE: &str = "2";
/// How often the test publishes, as the gateway does (Lambda's own cadence is per minute).
const TICK: Duration = Duration::from_millis(250);
/// The longest one canary here may take (the bakes are a few seconds).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// What one version served during one tick.
#[derive(Clone, Copy)]
struct Traffic {
    requests: u32,
    errors: u32,
    duration_ms: f64,
}

/// `requests` per tick, `errors` of them failing, all taking 12 ms (latency is not what
/// these tests are about: the same on both sides).
fn traffic(requests: u32, errors: u32) -> Traffic {
    Traffic {
        requests,
        errors,
        duration_ms: 12.0,
    }
}

/// A stage judged by its alarms and the per-version metrics over 1 s periods, with a
/// minimum sample the test reaches within the bake.
fn judged_stage(tag: &str, on_no_evidence: &str) -> Stack {
    let on_no_evidence = on_no_evidence.to_string();
    Stack::with_environments(tag, &move |dir| {
        edit_json(&dir.join(format!("{STAGE}.json")), |v| {
            v["poll_interval_seconds"] = 1.into();
            v["analysis"] = json!({
                "sources": ["alarms", "metrics"],
                "period_seconds": 1,
                "min_requests": 40,
                "latency_statistic": "mean",
                "max_extension_seconds": 2,
                "on_no_evidence": on_no_evidence,
            });
        });
    })
}

/// One tick's datapoints for one version of the weighted alias, in every dimension set
/// Lambda publishes it under.
fn datums(function: &str, version: &str, t: Traffic, at: SystemTime) -> Vec<MetricDatum> {
    let resource = format!("{function}:{STAGE}");
    let sets: [Vec<(&str, &str)>; 3] = [
        vec![("FunctionName", function)],
        vec![("FunctionName", function), ("Resource", &resource)],
        vec![
            ("FunctionName", function),
            ("Resource", &resource),
            ("ExecutedVersion", version),
        ],
    ];
    let n = f64::from(t.requests);
    let mut out = Vec::new();
    for dims in &sets {
        let dims: Vec<Dimension> = dims
            .iter()
            .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
            .collect();
        for (metric, sum, unit, value) in [
            ("Invocations", n, StandardUnit::Count, None),
            ("Errors", f64::from(t.errors), StandardUnit::Count, None),
            ("Throttles", 0.0, StandardUnit::Count, None),
            (
                "Duration",
                n * t.duration_ms,
                StandardUnit::Milliseconds,
                Some(t.duration_ms),
            ),
        ] {
            // Counts are one datapoint of 0 or 1 per invocation: a statistic set of n samples.
            let (min, max) = match value {
                Some(v) => (v, v),
                None if sum > 0.0 && sum < n => (0.0, 1.0),
                None if sum > 0.0 => (1.0, 1.0),
                None => (0.0, 0.0),
            };
            out.push(
                MetricDatum::builder()
                    .metric_name(metric)
                    .set_dimensions(Some(dims.clone()))
                    .timestamp(DateTime::from(at))
                    .unit(unit.clone())
                    .statistic_values(
                        StatisticSet::builder()
                            .sample_count(n)
                            .sum(sum)
                            .minimum(min)
                            .maximum(max)
                            .build(),
                    )
                    .build(),
            );
        }
    }
    out
}

fn publish(stack: &Stack, candidate: Traffic, stable: Traffic) {
    let function = stack.function_name();
    let now = SystemTime::now();
    let mut data = datums(&function, CANDIDATE, candidate, now);
    data.extend(datums(&function, STABLE, stable, now));
    stack
        .block_on(
            stack
                .cloudwatch
                .put_metric_data()
                .namespace("AWS/Lambda")
                .set_metric_data(Some(data))
                .send(),
        )
        .expect("PutMetricData");
}

fn events(run: &Running) -> Vec<Value> {
    run.stdout_so_far()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

fn has_event(run: &Running, name: &str) -> bool {
    events(run).iter().any(|e| e["event"] == name)
}

/// Starts the canary, waits for its bake to begin (the split is written by then), and
/// publishes `traffic` every tick until `promote` exits (None: publishes nothing).
fn canary_with_traffic(
    stack: &Stack,
    bake: &str,
    traffic: Option<(Traffic, Traffic)>,
) -> support::Run {
    let mut run = stack.start(&format!(
        "--output json canary --stage {STAGE} --version {CANDIDATE} --weight 10 --bake {bake} --poll 1s"
    ));
    let deadline = Instant::now() + RUN_TIMEOUT;
    while run.is_running() && !has_event(&run, "bake_started") {
        assert!(Instant::now() < deadline, "the bake never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The split is written before the bake starts. Checked on the run's own record of its
    // write, which does not depend on whether the run has ended (and rolled back) since.
    let seen = events(&run);
    let split = seen
        .iter()
        .find(|e| e["event"] == "alias_updated")
        .map(|e| e["candidate"].clone());
    assert_eq!(
        split,
        Some(serde_json::json!({"version": CANDIDATE, "weight": 10})),
        "the first write is not the 10% split: {seen:?}"
    );
    assert!(
        has_event(&run, "bake_started"),
        "the bake never started: {seen:?}"
    );
    while run.is_running() {
        assert!(
            Instant::now() < deadline,
            "promote still running after {RUN_TIMEOUT:?}:\n{}",
            run.stdout_so_far()
        );
        if let Some((c, s)) = traffic {
            publish(stack, c, s);
        }
        std::thread::sleep(TICK);
    }
    run.wait_timeout(Duration::from_secs(5))
}

/// The metrics finding of every `bake` event, in order.
fn metrics_findings(run: &support::Run) -> Vec<Value> {
    run.json_lines()
        .iter()
        .filter(|e| e["event"] == "bake")
        .flat_map(|e| e["evidence"].as_array().cloned().unwrap_or_default())
        .filter(|f| f["source"] == "metrics")
        .collect()
}

#[test]
fn a_candidate_failing_a_fifth_of_its_requests_is_rolled_back_by_the_judge() {
    let stack = judged_stage("judge-bad", "hold");
    let (bad, stable) = (traffic(10, 2), traffic(90, 0));
    // A 30 s bake: the rollback comes from a poll, long before the bake would end.
    let run = canary_with_traffic(&stack, "30s", Some((bad, stable)));
    run.assert_code(4);
    let live = stack.alias(STAGE);
    assert_eq!(live.version, STABLE, "{live:?}");
    assert!(live.weights.is_empty(), "routing not cleared: {live:?}");

    let rolled = run
        .json_lines()
        .into_iter()
        .find(|e| e["event"] == "rolled_back")
        .unwrap_or_else(|| panic!("no rolled_back event:\n{}", run.stdout));
    let reason = rolled["reason"].as_str().unwrap();
    assert!(
        reason.contains("metrics judge")
            && reason.contains("always-valid p = ")
            && reason.contains("20%"),
        "the reason must name the judge, the test and the numbers: {reason}"
    );
    assert!(
        run.stderr.contains("metrics judge"),
        "stderr: {}",
        run.stderr
    );
    let last = metrics_findings(&run).pop().expect("no metrics finding");
    let n = &last["numbers"];
    assert_eq!(n["decision"], "fail", "{last}");
    assert_eq!(n["candidate"]["version"], CANDIDATE);
    assert_eq!(n["stable"]["version"], STABLE);
    let (c, s) = (&n["candidate"], &n["stable"]);
    // Whole ticks of 10 and 90 requests: the rates are exactly what was published.
    assert!(c["requests"].as_u64().unwrap() >= 10, "{n}");
    assert_eq!(c["error_rate"].as_f64(), Some(0.2), "{n}");
    assert_eq!(s["errors"].as_u64(), Some(0), "{n}");
    assert_eq!(
        s["requests"].as_u64().unwrap(),
        9 * c["requests"].as_u64().unwrap(),
        "both versions are read over the same window: {n}"
    );
    assert!(n["p_value"].as_f64().unwrap() < 0.01, "{n}");
}

#[test]
fn a_candidate_as_good_as_the_stable_version_passes_its_bake() {
    let stack = judged_stage("judge-good", "hold");
    let (good, stable) = (traffic(10, 0), traffic(90, 1));
    let run = canary_with_traffic(&stack, "4s", Some((good, stable)));
    run.assert_code(0);
    assert_eq!(
        stack.alias(STAGE).split(),
        Some((CANDIDATE.to_string(), 0.1)),
        "the 10% step passed and stays"
    );
    let findings = metrics_findings(&run);
    let last = findings.last().expect("no metrics finding");
    let n = &last["numbers"];
    assert_eq!(n["decision"], "pass", "{last}");
    assert!(n["candidate"]["requests"].as_u64().unwrap() >= 40, "{n}");
    assert_eq!(n["latency_statistic"], "mean");
    assert_eq!(n["candidate"]["latency_ms"].as_f64(), Some(12.0), "{n}");
    // The earliest polls had no complete period or too few requests: not a pass yet.
    assert_ne!(findings[0]["numbers"]["decision"], "pass", "{findings:?}");
}

#[test]
fn no_data_extends_the_bake_then_holds_the_split_with_exit_6() {
    let stack = judged_stage("judge-hold", "hold");
    let run = canary_with_traffic(&stack, "2s", None);
    run.assert_code(6);
    let events = run.json_lines();
    let extended = events
        .iter()
        .find(|e| e["event"] == "bake_extended")
        .unwrap_or_else(|| panic!("the bake was not extended:\n{}", run.stdout));
    assert_eq!(extended["max_extension_seconds"], 2);
    let held = events
        .iter()
        .find(|e| e["event"] == "held")
        .unwrap_or_else(|| panic!("no held event:\n{}", run.stdout));
    assert!(
        held["reason"]
            .as_str()
            .unwrap()
            .contains("not enough evidence"),
        "{held}"
    );
    assert_eq!(
        stack.alias(STAGE).split(),
        Some((CANDIDATE.to_string(), 0.1)),
        "hold leaves the split in place"
    );
    assert!(
        run.stderr.contains("promote rollback --stage live"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_data_extends_the_bake_then_rolls_back_when_the_stage_says_so() {
    let stack = judged_stage("judge-nodata-rollback", "rollback");
    let run = canary_with_traffic(&stack, "2s", None);
    run.assert_code(4);
    assert!(
        run.json_lines()
            .iter()
            .any(|e| e["event"] == "bake_extended"),
        "the bake was not extended first:\n{}",
        run.stdout
    );
    let live = stack.alias(STAGE);
    assert_eq!(live.version, STABLE);
    assert!(live.weights.is_empty(), "routing not cleared: {live:?}");
    assert!(
        run.stderr.contains("not enough evidence")
            && run.stderr.contains("on_no_evidence is \"rollback\""),
        "{}",
        run.stderr
    );
}
