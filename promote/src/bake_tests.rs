//! How the metrics judge's verdicts move a rollout, against the in-memory stand-in, in
//! virtual time (`start_paused`): a whole 60 s bake and its extension run in milliseconds,
//! and the per-version metrics the fake answers follow the virtual clock.

use std::time::Duration;

use rollout::plan::AlarmValue;
use rollout::{OnNoEvidence, SourceKind};

use crate::cli::exit;
use crate::cli::ui::Format;
use crate::cloud::aws::{MetricsQuery, Series};
use crate::cloud::fake::{MetricsFn, World, pct, ver, view};
use crate::reconcile::commands::{self, CanaryOpts};

/// Per-period traffic of one version: invocations, errors, p99 in ms.
type Traffic = (f64, f64, f64);

/// Lambda's metrics for every period of the query's window: the candidate (version 2) and
/// the stable version (1) each at their own traffic; the alias as a whole like the candidate.
fn traffic(candidate: Traffic, stable: Traffic) -> MetricsFn {
    Box::new(move |q: &MetricsQuery| {
        let period = Duration::from_secs(q.period_seconds.into());
        Ok(q.series
            .iter()
            .map(|s| {
                let (inv, err, p99) = match s {
                    Some(v) if *v == ver(1) => stable,
                    _ => candidate,
                };
                let mut out = Series::default();
                let mut t = q.start;
                while t < q.end {
                    out.invocations.push((t, inv));
                    out.errors.push((t, err));
                    out.duration_ms.push((t, p99));
                    t += period;
                }
                out
            })
            .collect())
    })
}

/// The frozen environments with live judged by alarms and metrics over 5 s periods.
fn world(on_no_evidence: OnNoEvidence) -> World {
    let mut w = World::new(Format::Json);
    let live = w.env.stages.iter_mut().find(|s| s.name == "live").unwrap();
    let a = &mut live.analysis;
    a.sources = vec![SourceKind::Alarms, SourceKind::Metrics];
    a.period_seconds = 5;
    a.criteria.min_requests = 50;
    a.max_extension = Duration::from_secs(30);
    a.on_no_evidence = on_no_evidence;
    w
}

fn canary_10(bake_secs: u64) -> CanaryOpts {
    CanaryOpts {
        stage: "live".into(),
        version: Some(ver(2)),
        weight: Some(pct("10")),
        bake: Some(Duration::from_secs(bake_secs)),
        poll: Some(Duration::from_secs(1)),
        allow_downgrade: false,
        retry: false,
        skip_upstream: None,
        dry_run: false,
        evidence: Default::default(),
    }
}

fn code(r: &anyhow::Result<()>) -> i32 {
    r.as_ref().err().map_or(0, exit::code_of)
}

fn message(r: &anyhow::Result<()>) -> String {
    r.as_ref()
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default()
}

fn events(w: &World, kind: &str) -> Vec<serde_json::Value> {
    w.stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == kind)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_candidate_failing_one_request_in_five_is_rolled_back_by_the_judge_with_no_alarm() {
    let w = world(OnNoEvidence::Hold);
    w.fake.state.borrow_mut().metrics = Some(traffic((25.0, 5.0, 20.0), (225.0, 0.0, 20.0)));
    let r = commands::canary(&w.ctx(), canary_10(120)).await;
    assert_eq!(code(&r), exit::ROLLED_BACK, "{}", message(&r));
    let msg = message(&r);
    assert!(
        msg.contains("metrics judge: errors: the candidate's error rate 20% (5/25)")
            && msg.contains("sequential mixture test")
            && msg.contains("always-valid p ="),
        "the reason names the judge and its numbers: {msg}"
    );
    assert_eq!(w.fake.alias("live").view, view(1, None));
    // It failed on the first complete period, long before the 120 s bake was over.
    let reads = w.fake.state.borrow().metric_reads.clone();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0].series, [Some(ver(2)), Some(ver(1))]);
    assert_eq!(
        reads[0].end.duration_since(reads[0].start).unwrap(),
        Duration::from_secs(5)
    );
    // The alarms were read and healthy all along: the judge alone took the traffic back.
    let bake = events(&w, "bake");
    let last = bake.last().unwrap();
    let alarms = &last["evidence"][0];
    assert_eq!(alarms["source"], "alarms");
    assert_eq!(alarms["verdict"], "pass");
    let numbers = &last["evidence"][1]["numbers"];
    assert_eq!(numbers["candidate"]["requests"], 25);
    assert_eq!(numbers["candidate"]["errors"], 5);
    assert_eq!(numbers["stable"]["requests"], 225);
    assert_eq!(numbers["decision"], "fail");
    assert!(numbers["p_value"].as_f64().unwrap() < 0.01);
}

#[tokio::test(start_paused = true)]
async fn an_identical_candidate_passes_at_the_end_of_its_bake() {
    let w = world(OnNoEvidence::Hold);
    w.fake.state.borrow_mut().metrics = Some(traffic((25.0, 0.0, 20.0), (225.0, 1.0, 20.0)));
    let r = commands::canary(&w.ctx(), canary_10(60)).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert_eq!(w.fake.alias("live").view, view(1, Some((2, "10"))));
    let bake = events(&w, "bake");
    let last = &bake.last().unwrap()["evidence"][1];
    assert_eq!(last["verdict"], "pass", "{last}");
    assert!(last["numbers"]["candidate"]["requests"].as_u64().unwrap() >= 50);
    assert!(events(&w, "bake_extended").is_empty());
    // Every poll's line on the terminal carries both versions' numbers and the p-value.
    assert!(
        w.stderr().contains("candidate 0% (0/"),
        "the progress shows the numbers: {}",
        w.stderr()
    );
}

#[tokio::test(start_paused = true)]
async fn with_early_pass_a_candidate_shown_no_worse_ends_its_bake_early() {
    // No error on either version: 175 clean candidate requests show its rate below the 5%
    // ceiling (7 periods of 25), long before a 300 s bake would end.
    for early_pass in [true, false] {
        let mut w = world(OnNoEvidence::Hold);
        let live = w.env.stages.iter_mut().find(|s| s.name == "live").unwrap();
        live.analysis.early_pass = early_pass;
        w.fake.state.borrow_mut().metrics = Some(traffic((25.0, 0.0, 20.0), (225.0, 0.0, 20.0)));
        let r = commands::canary(&w.ctx(), canary_10(300)).await;
        assert_eq!(code(&r), 0, "{}", message(&r));
        assert_eq!(w.fake.alias("live").view, view(1, Some((2, "10"))));
        let last = events(&w, "bake").pop().unwrap();
        let remaining = last["remaining_seconds"].as_u64().unwrap();
        let shown = &last["evidence"][1]["numbers"]["shown_no_worse"];
        if early_pass {
            assert!(remaining > 200, "ended early: {last}");
            assert!(
                shown
                    .as_str()
                    .unwrap()
                    .contains("shown below max_error_rate 5.0%"),
                "{last}"
            );
        } else {
            assert_eq!(
                remaining, 0,
                "without the option the bake runs its time: {last}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn too_little_traffic_extends_the_bake_then_holds_the_split_with_exit_6() {
    let w = world(OnNoEvidence::Hold);
    // 2 candidate requests per 5 s period: 24 by the end of a 60 s bake, 36 after the
    // 30 s extension; never the 50 needed.
    w.fake.state.borrow_mut().metrics = Some(traffic((2.0, 0.0, 20.0), (18.0, 0.0, 20.0)));
    let r = commands::canary(&w.ctx(), canary_10(60)).await;
    assert_eq!(code(&r), exit::HELD, "{}", message(&r));
    let msg = message(&r);
    assert!(
        msg.contains("not enough evidence after the 1m00s bake and a 30s extension")
            && msg.contains("of the 50 requests needed")
            && msg.contains("held at 10% on version 2")
            && msg.contains("promote rollback --stage live"),
        "{msg}"
    );
    assert_eq!(
        w.fake.alias("live").view,
        view(1, Some((2, "10"))),
        "the split stays"
    );
    assert_eq!(events(&w, "bake_extended").len(), 1);
    assert_eq!(events(&w, "held").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn no_data_at_all_extends_the_bake_then_rolls_back_where_the_stage_says_so() {
    let w = world(OnNoEvidence::Rollback);
    let r = commands::canary(&w.ctx(), canary_10(60)).await;
    assert_eq!(code(&r), exit::ROLLED_BACK, "{}", message(&r));
    let msg = message(&r);
    assert!(
        msg.contains("no request reached the candidate yet")
            && msg.contains("analysis.on_no_evidence is \"rollback\""),
        "{msg}"
    );
    assert_eq!(w.fake.alias("live").view, view(1, None));
    let note = rollout::note::Note::parse(&w.fake.alias("live").description);
    assert_eq!(note.rolled_back.map(|r| r.version), Some(ver(2)));
}

#[tokio::test(start_paused = true)]
async fn a_fix_for_a_bad_stable_version_ships_when_judged_relatively() {
    // The stable version fails 10% of requests and the alias's error alarm is firing.
    let firing = |w: &World| {
        w.fake
            .state
            .borrow_mut()
            .set_alarm("app-live-lambda-errors", AlarmValue::Alarm)
    };
    let w = world(OnNoEvidence::Hold);
    firing(&w);
    w.fake.state.borrow_mut().metrics = Some(traffic((25.0, 0.0, 20.0), (225.0, 22.0, 20.0)));
    let r = commands::canary(&w.ctx(), canary_10(60)).await;
    assert_eq!(
        code(&r),
        exit::REFUSED,
        "absolute alarms refuse: {}",
        message(&r)
    );
    assert!(w.fake.updates().is_empty());

    let mut w = world(OnNoEvidence::Hold);
    firing(&w);
    w.fake.state.borrow_mut().metrics = Some(traffic((25.0, 0.0, 20.0), (225.0, 22.0, 20.0)));
    let live = w.env.stages.iter_mut().find(|s| s.name == "live").unwrap();
    live.analysis.judge_relative = true;
    let r = commands::canary(&w.ctx(), canary_10(60)).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert_eq!(w.fake.alias("live").view, view(1, Some((2, "10"))));
    let bake = events(&w, "bake");
    let alarms = &bake.last().unwrap()["evidence"][0];
    assert!(
        alarms["summary"]
            .as_str()
            .unwrap()
            .contains("app-live-lambda-errors already firing before the rollout"),
        "{alarms}"
    );

    // Judged relatively, an alarm that starts firing during the bake still fails it.
    let mut w = world(OnNoEvidence::Hold);
    firing(&w);
    w.fake.state.borrow_mut().metrics = Some(traffic((25.0, 0.0, 20.0), (225.0, 22.0, 20.0)));
    w.fake.state.borrow_mut().alarm_script = vec![
        vec![],
        vec![],
        vec![("app-live-lambda-throttles".to_string(), AlarmValue::Alarm)],
    ]
    .into();
    let live = w.env.stages.iter_mut().find(|s| s.name == "live").unwrap();
    live.analysis.judge_relative = true;
    let r = commands::canary(&w.ctx(), canary_10(60)).await;
    assert_eq!(code(&r), exit::ROLLED_BACK, "{}", message(&r));
    assert!(message(&r).contains("alarm app-live-lambda-throttles is ALARM"));
}

#[tokio::test(start_paused = true)]
async fn after_the_100_percent_step_the_alias_as_a_whole_is_judged() {
    let w = world(OnNoEvidence::Hold);
    // The candidate serves everything; Lambda publishes the alias without ExecutedVersion.
    w.fake.state.borrow_mut().metrics = Some(traffic((250.0, 40.0, 20.0), (0.0, 0.0, 0.0)));
    w.fake.set_alias("live", view(1, Some((2, "50"))));
    let opts = crate::reconcile::commands::AdvanceOpts {
        stage: "live".into(),
        weight: None,
        bake: Some(Duration::from_secs(60)),
        poll: Some(Duration::from_secs(1)),
        dry_run: false,
        evidence: Default::default(),
    };
    let r = commands::advance(&w.ctx(), opts).await;
    assert_eq!(code(&r), exit::ROLLED_BACK, "{}", message(&r));
    assert!(
        message(&r).contains("above the ceiling max_error_rate 5.0%"),
        "{}",
        message(&r)
    );
    let reads = w.fake.state.borrow().metric_reads.clone();
    assert_eq!(reads.last().unwrap().series, [None]);
    assert_eq!(w.fake.alias("live").view, view(1, None));
}

#[tokio::test]
async fn status_shows_the_judge_for_a_stage_mid_canary() {
    for format in [Format::Json, Format::Table] {
        let mut w = world(OnNoEvidence::Hold);
        w.ui = crate::cli::ui::Ui::capture(format);
        w.fake.state.borrow_mut().metrics = Some(traffic((25.0, 5.0, 30.0), (225.0, 0.0, 20.0)));
        w.fake.set_alias("live", view(1, Some((2, "10"))));
        crate::read::status::status(&w.ctx(), None).await.unwrap();
        let out = w.stdout();
        if format == Format::Json {
            let live = events(&w, "stage_status")
                .into_iter()
                .find(|e| e["stage"] == "live")
                .unwrap();
            let numbers = &live["judge"]["numbers"];
            assert_eq!(numbers["candidate"]["version"], "2", "{live}");
            assert_eq!(numbers["stable"]["version"], "1");
            assert_eq!(numbers["decision"], "fail");
            assert!(
                numbers["candidate"]["requests"].as_u64().unwrap() >= 100,
                "{live}"
            );
            assert!(
                live["judge"]["verdict"]
                    .as_str()
                    .unwrap()
                    .starts_with("fail: metrics judge")
            );
            // Stages without a split are not judged.
            let dev = events(&w, "stage_status")
                .into_iter()
                .find(|e| e["stage"] == "dev")
                .unwrap();
            assert!(dev.get("judge").is_none(), "{dev}");
        } else {
            assert!(
                out.contains("live: metrics judge over the last 5 periods: candidate 20% (")
                    && out.contains("stable 0% (0/")
                    && out.contains("p = "),
                "{out}"
            );
        }
    }
}

/// `traffic` with each period's throttles per version: Lambda's `Throttles` by
/// `ExecutedVersion`, beside the invocations.
fn with_throttles(mut inner: MetricsFn, candidate: f64, stable: f64) -> MetricsFn {
    Box::new(move |q: &MetricsQuery| {
        let mut out = inner(q)?;
        for (series, version) in out.iter_mut().zip(&q.series) {
            let n = match version {
                Some(v) if *v == ver(1) => stable,
                _ => candidate,
            };
            series.throttles = series.invocations.iter().map(|(t, _)| (*t, n)).collect();
        }
        Ok(out)
    })
}

/// live judged relatively, its throttle alarm a `lambda_throttle_rate` one that goes to
/// ALARM at the third read (during the bake), both versions' traffic as given.
fn throttled_world(relative: bool, candidate_throttles: f64, stable_throttles: f64) -> World {
    let mut w = world(OnNoEvidence::Hold);
    let live = w.env.stages.iter_mut().find(|s| s.name == "live").unwrap();
    live.analysis.judge_relative = relative;
    let alarm = live
        .alarms
        .iter_mut()
        .find(|a| a.name == "app-live-lambda-throttles")
        .unwrap();
    alarm.kind = rollout::AlarmKind::LambdaThrottleRate;
    let mut st = w.fake.state.borrow_mut();
    st.metrics = Some(with_throttles(
        traffic((25.0, 0.0, 20.0), (225.0, 0.0, 20.0)),
        candidate_throttles,
        stable_throttles,
    ));
    st.alarm_script = vec![
        vec![],
        vec![],
        vec![("app-live-lambda-throttles".to_string(), AlarmValue::Alarm)],
    ]
    .into();
    drop(st);
    w
}

#[tokio::test(start_paused = true)]
async fn a_throttle_alarm_with_both_versions_throttled_alike_does_not_roll_the_candidate_back() {
    // The stage is short of capacity: a sixth of every version's requests throttled.
    let w = throttled_world(true, 5.0, 45.0);
    let r = commands::canary(&w.ctx(), canary_10(60)).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert_eq!(w.fake.alias("live").view, view(1, Some((2, "10"))));
    let bake = events(&w, "bake");
    let last = bake.last().unwrap();
    let alarms = &last["evidence"][0];
    assert!(
        alarms["summary"]
            .as_str()
            .unwrap()
            .contains("judged by the per-version throttle comparison, not failed"),
        "{alarms}"
    );
    let metrics = &last["evidence"][1]["numbers"];
    assert!(
        metrics["candidate"]["throttles"].as_u64().unwrap() > 0,
        "{metrics}"
    );
    assert!(
        metrics["throttle_test"]["p_value"].as_f64().unwrap() > 0.01,
        "{metrics}"
    );

    // The candidate taking most of the throttles is the candidate's doing: rolled back by
    // the metrics judge, not by the alarm.
    let w = throttled_world(true, 20.0, 5.0);
    let r = commands::canary(&w.ctx(), canary_10(60)).await;
    assert_eq!(code(&r), exit::ROLLED_BACK, "{}", message(&r));
    assert!(
        message(&r).contains("metrics judge: throttles: the candidate's throttled share"),
        "{}",
        message(&r)
    );

    // Not judged relatively, the firing alarm rolls back as any alarm does.
    let w = throttled_world(false, 5.0, 45.0);
    let r = commands::canary(&w.ctx(), canary_10(60)).await;
    assert_eq!(code(&r), exit::ROLLED_BACK, "{}", message(&r));
    assert!(message(&r).contains("alarm app-live-lambda-throttles is ALARM"));
}
