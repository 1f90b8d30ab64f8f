//! The `analysis` block of a stage file: defaults by strategy, and every field's checks
//! (its schema's and the rules across its fields).

use super::*;
use crate::judge::Criteria;

const CANARY: &str = r#"{"type": "canary", "steps": [{"weight": 10, "bake_seconds": 300}, {"weight": 100, "bake_seconds": 0}]}"#;
const ALL: &str = r#"{"type": "all_at_once", "bake_seconds": 60}"#;

fn stage(strategy: &str, analysis: Option<&str>) -> Result<Stage, ConfigError> {
    let analysis = analysis.map_or(String::new(), |a| format!(r#""analysis": {a},"#));
    let text = format!(
        r#"{{"upstream": "test", "strategy": {strategy}, "poll_interval_seconds": 5, {analysis}
           "alarms": [], "throttling": {{"rate_limit": 10, "burst_limit": 20}}, "log_retention_days": 7}}"#
    );
    let path = Path::new("environments/live.json");
    let value: Value = serde_json::from_str(&text).unwrap();
    let problems = validate::against_schema(path, &value, Schema::Stage);
    if let Some(first) = problems.into_iter().next() {
        return Err(first);
    }
    stage_of("live", path, value)
}

#[test]
fn a_canary_stage_judges_metrics_by_default_and_an_all_at_once_stage_keeps_to_alarms() {
    let live = stage(CANARY, None).unwrap();
    let a = &live.analysis;
    assert_eq!(a.sources, [SourceKind::Alarms, SourceKind::Metrics]);
    assert_eq!(a.period_seconds, 60);
    // The defaults, with the significance shared over the plan's two steps.
    assert_eq!(a.criteria, Criteria::default().for_plan(2));
    assert_eq!(a.criteria.confidence, 0.99);
    assert_eq!(a.criteria.min_requests, 100);
    assert_eq!(a.max_extension, Duration::from_secs(300));
    assert_eq!(a.on_no_evidence, OnNoEvidence::Hold);
    assert!(!a.judge_relative);
    assert_eq!(
        a.on_unreadable,
        OnUnreadable::Rollback,
        "unreadable evidence fails closed"
    );
    assert_eq!(a.max_read_failures, 3);
    assert!(!a.early_pass);
    assert_eq!(
        stage(ALL, None).unwrap().analysis.sources,
        [SourceKind::Alarms]
    );
    // A block without sources keeps the strategy's default sources.
    let a = stage(CANARY, Some(r#"{"min_requests": 20}"#))
        .unwrap()
        .analysis;
    assert_eq!(a.sources, [SourceKind::Alarms, SourceKind::Metrics]);
    assert_eq!(a.criteria.min_requests, 20);
}

#[test]
fn every_field_is_read() {
    let a = stage(
        CANARY,
        Some(
            r#"{"sources": ["metrics", "probe"], "period_seconds": 5, "probe_rate": 50, "min_requests": 50, "confidence": 0.95,
                "max_error_rate": 0.1, "latency_tolerance": 0.25, "latency_statistic": "mean",
                "max_extension_seconds": 30, "on_no_evidence": "rollback", "judge_relative": true,
                "on_unreadable": "hold", "max_read_failures": 5, "early_pass": true}"#,
        ),
    )
    .unwrap()
    .analysis;
    assert_eq!(a.sources, [SourceKind::Metrics, SourceKind::Probe]);
    assert_eq!(a.probe_rate, 50.0);
    assert_eq!(a.period_seconds, 5);
    assert_eq!(
        a.criteria,
        Criteria {
            confidence: 0.95,
            min_requests: 50,
            max_error_rate: 0.1,
            latency_tolerance: 0.25,
            latency_statistic: LatencyStatistic::Mean,
            // The significance is shared over the plan's two steps.
            steps: 2,
        }
    );
    assert_eq!(a.max_extension, Duration::from_secs(30));
    assert_eq!(a.on_no_evidence, OnNoEvidence::Rollback);
    assert!(a.judge_relative);
    assert_eq!(a.on_unreadable, OnUnreadable::Hold);
    assert_eq!(a.max_read_failures, 5);
    assert!(a.early_pass);
}

#[test]
fn bad_values_name_the_field_and_what_would_do() {
    let cases = [
        (
            r#"{"sources": []}"#,
            "analysis.sources",
            "must list at least 1 item",
        ),
        (
            r#"{"sources": ["alarms", "alarms"]}"#,
            "analysis.sources",
            "lists an item twice",
        ),
        (
            r#"{"sources": ["logs"]}"#,
            "analysis.sources[0]",
            r#""logs" is not one of "alarms", "metrics", "probe""#,
        ),
        (
            r#"{"period_seconds": 45}"#,
            "analysis.period_seconds",
            "45 is not one of 1, 5, 10",
        ),
        (
            r#"{"min_requests": 0}"#,
            "analysis.min_requests",
            "0 is below the minimum of 1",
        ),
        (
            r#"{"confidence": 1}"#,
            "analysis.confidence",
            "1 must be less than 1",
        ),
        (
            r#"{"confidence": 0.3}"#,
            "analysis.confidence",
            "0.3 is below the minimum of 0.5",
        ),
        (
            r#"{"max_error_rate": 0}"#,
            "analysis.max_error_rate",
            "0 must be greater than 0",
        ),
        (
            r#"{"max_error_rate": 5}"#,
            "analysis.max_error_rate",
            "5 is above the maximum of 1 (Error-rate ceiling, a fraction (0.05 is 5%)",
        ),
        (
            r#"{"latency_tolerance": -0.1}"#,
            "analysis.latency_tolerance",
            "-0.1 is below the minimum of 0",
        ),
        (
            r#"{"latency_statistic": "p50"}"#,
            "analysis.latency_statistic",
            r#""p50" is not one of "p99", "mean""#,
        ),
        (
            r#"{"max_extension_seconds": 90000}"#,
            "analysis.max_extension_seconds",
            "at most a day",
        ),
        (
            r#"{"probe_rate": 0}"#,
            "analysis.probe_rate",
            "0 must be greater than 0",
        ),
        (
            r#"{"probe_rate": 5000}"#,
            "analysis.probe_rate",
            "5000 is above the maximum of 1000 (Requests a second",
        ),
        (
            r#"{"on_no_evidence": "wait"}"#,
            "analysis.on_no_evidence",
            r#""wait" is not one of "hold", "rollback""#,
        ),
        (
            r#"{"on_unreadable": "retry"}"#,
            "analysis.on_unreadable",
            r#""retry" is not one of "rollback", "hold""#,
        ),
        (
            r#"{"max_read_failures": 0}"#,
            "analysis.max_read_failures",
            "0 is below the minimum of 1",
        ),
        (
            r#"{"max_read_failures": 1.5}"#,
            "analysis.max_read_failures",
            r#"1.5 is not of type "integer""#,
        ),
        (
            r#"{"early_pass": "yes"}"#,
            "analysis.early_pass",
            r#""yes" is not of type "boolean""#,
        ),
        (
            r#"{"sources": ["alarms"], "judge_relative": true}"#,
            "analysis.judge_relative",
            "needs the \"metrics\" source",
        ),
        (
            r#"{"min_request": 10}"#,
            "analysis",
            "unknown field `min_request`",
        ),
    ];
    for (block, at, what) in cases {
        let msg = stage(CANARY, Some(block)).unwrap_err().to_string();
        assert!(
            msg.contains(&format!("live.json: field `{at}")) && msg.contains(what),
            "{block}: {msg}"
        );
    }
}

#[test]
fn the_unreadable_evidence_policy_is_read_and_checked() {
    let a = stage(CANARY, None).unwrap().analysis;
    assert_eq!(
        (a.on_unreadable, a.max_read_failures),
        (OnUnreadable::Rollback, 3),
        "fails closed by default"
    );
    let a = stage(
        CANARY,
        Some(r#"{"on_unreadable": "hold", "max_read_failures": 5}"#),
    )
    .unwrap()
    .analysis;
    assert_eq!(
        (a.on_unreadable, a.max_read_failures),
        (OnUnreadable::Hold, 5)
    );
    for (block, what) in [
        (
            r#"{"max_read_failures": 0}"#,
            "analysis.max_read_failures`: 0 is below the minimum of 1",
        ),
        (
            r#"{"on_unreadable": "ignore"}"#,
            r#"analysis.on_unreadable`: "ignore" is not one of"#,
        ),
    ] {
        let msg = stage(CANARY, Some(block)).unwrap_err().to_string();
        assert!(msg.contains(what), "{block}: {msg}");
    }
}
