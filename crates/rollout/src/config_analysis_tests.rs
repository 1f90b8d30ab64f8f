//! The `analysis` block of a stage file: defaults by strategy, and every field's checks.

use super::*;

const CANARY: &str = r#"{"type": "canary", "steps": [{"weight": 10, "bake_seconds": 300}, {"weight": 100, "bake_seconds": 0}]}"#;
const ALL: &str = r#"{"type": "all_at_once", "bake_seconds": 60}"#;

fn stage(strategy: &str, analysis: Option<&str>) -> Result<Stage, ConfigError> {
    let analysis = analysis.map_or(String::new(), |a| format!(r#""analysis": {a},"#));
    let text = format!(
        r#"{{"upstream": "test", "strategy": {strategy}, "poll_interval_seconds": 5, {analysis}
           "alarms": [], "throttling": {{"rate_limit": 10, "burst_limit": 20}}, "log_retention_days": 7}}"#
    );
    parse_stage("live", Path::new("environments/live.json"), &text)
}

#[test]
fn a_canary_stage_judges_metrics_by_default_and_an_all_at_once_stage_keeps_to_alarms() {
    let live = stage(CANARY, None).unwrap();
    let a = &live.analysis;
    assert_eq!(a.sources, [SourceKind::Alarms, SourceKind::Metrics]);
    assert_eq!(a.period_seconds, 60);
    assert_eq!(a.criteria, Criteria::default());
    assert_eq!(a.criteria.confidence, 0.99);
    assert_eq!(a.criteria.min_requests, 100);
    assert_eq!(a.max_extension, Duration::from_secs(300));
    assert_eq!(a.on_no_evidence, OnNoEvidence::Hold);
    assert!(!a.judge_relative);
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
                "max_extension_seconds": 30, "on_no_evidence": "rollback", "judge_relative": true}"#,
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
        }
    );
    assert_eq!(a.max_extension, Duration::from_secs(30));
    assert_eq!(a.on_no_evidence, OnNoEvidence::Rollback);
    assert!(a.judge_relative);
}

#[test]
fn bad_values_name_the_field_and_what_would_do() {
    let cases = [
        (
            r#"{"sources": []}"#,
            "analysis.sources",
            "at least one source",
        ),
        (
            r#"{"sources": ["alarms", "alarms"]}"#,
            "analysis.sources[1]",
            "listed twice",
        ),
        (
            r#"{"sources": ["logs"]}"#,
            "analysis.sources[0]",
            "unknown variant",
        ),
        (
            r#"{"period_seconds": 45}"#,
            "analysis.period_seconds",
            "not one of",
        ),
        (
            r#"{"min_requests": 0}"#,
            "analysis.min_requests",
            "at least 1",
        ),
        (
            r#"{"confidence": 1}"#,
            "analysis.confidence",
            "outside 0.5 <= confidence < 1",
        ),
        (r#"{"confidence": 0.3}"#, "analysis.confidence", "outside"),
        (
            r#"{"max_error_rate": 0}"#,
            "analysis.max_error_rate",
            "0 < max_error_rate <= 1",
        ),
        (
            r#"{"max_error_rate": 5}"#,
            "analysis.max_error_rate",
            "0.05 is 5%",
        ),
        (
            r#"{"latency_tolerance": -0.1}"#,
            "analysis.latency_tolerance",
            "at least 0",
        ),
        (
            r#"{"latency_statistic": "p50"}"#,
            "analysis.latency_statistic",
            "unknown variant",
        ),
        (
            r#"{"max_extension_seconds": 90000}"#,
            "analysis.max_extension_seconds",
            "one day",
        ),
        (
            r#"{"probe_rate": 0}"#,
            "analysis.probe_rate",
            "0 < probe_rate <= 1000",
        ),
        (
            r#"{"probe_rate": 5000}"#,
            "analysis.probe_rate",
            "requests a second",
        ),
        (
            r#"{"on_no_evidence": "wait"}"#,
            "analysis.on_no_evidence",
            "unknown variant",
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
        (r#"{"max_read_failures": 0}"#, "must be at least 1"),
        (r#"{"on_unreadable": "ignore"}"#, "unknown variant"),
    ] {
        let msg = stage(CANARY, Some(block)).unwrap_err().to_string();
        assert!(msg.contains(what), "{block}: {msg}");
    }
}
