//! Loading a whole directory: layout, ordering, every rule named by file and field.

use super::*;
use crate::spec::Step;
use crate::weight::Weight;

const PROJECT: &str = r#"{"functions": [FUNCTIONS], "rest_api_name": "app", "stage_variable": "lambdaAlias", "region": "eu-west-2"}"#;
const APP: &str = r#"{"name": "app", "package": "app", "routes": ["/", "/build-info"], "probe": {"method": "GET", "path": "/build-info", "expect_status": 200}}"#;
/// An S3-triggered function with no route, probed by uploads.
const METADATA: &str = r#"{"name": "file-metadata", "package": "file-metadata", "routes": [], "buckets": ["uploads", "summaries"], "trigger": {"type": "s3", "bucket": "uploads"}, "probe": {"type": "upload", "bucket": "uploads", "prefix": "probe/", "summaries": "summaries", "deadline_seconds": 10}}"#;
/// A function whose probe body is binary.
const IMAGES: &str = r#"{"name": "images", "package": "images", "routes": ["/images"], "buckets": ["images"], "probe": {"method": "POST", "path": "/images", "body_base64": "iVBORw0KGgo=", "content_type": "image/png", "expect_status": 201}}"#;
const BIRTHDAY: &str = r#"{"name": "birthday", "package": "birthday", "routes": ["/hello/{username}"], "probe": {"method": "PUT", "path": "/hello/probe", "body": "{}", "content_type": "application/json", "expect_status": 204}}"#;

/// `project.json` listing these functions.
fn project(functions: &[&str]) -> String {
    PROJECT.replace("FUNCTIONS", &functions.join(", "))
}

fn stage_json(upstream: Option<&str>, strategy: &str) -> String {
    let up = upstream.map_or("null".to_string(), |u| format!("\"{u}\""));
    format!(
        r#"{{"upstream": {up}, "strategy": {strategy}, "poll_interval_seconds": 5,
           "alarms": [{{"name": "a-errors", "kind": "lambda_errors", "threshold": 1}}],
           "throttling": {{"rate_limit": 10, "burst_limit": 20}}, "log_retention_days": 7}}"#
    )
}

const ALL: &str = r#"{"type": "all_at_once", "bake_seconds": 60}"#;
const CANARY: &str = r#"{"type": "canary", "steps": [{"weight": 10, "bake_seconds": 60}, {"weight": 50, "bake_seconds": 60}, {"weight": 100, "bake_seconds": 0}]}"#;

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir_with(files: &[(&str, &str)]) -> Dir {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "rollout-config-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    for (name, body) in files {
        std::fs::write(d.join(name), body).unwrap();
    }
    Dir(d)
}

/// Gives the stage file's alarm a name of its own, as alarm names are unique across stages.
fn own_alarm(file: &str, body: String) -> String {
    let stem = file.trim_end_matches(".json");
    body.replace("\"a-errors\"", &format!("\"{stem}-errors\""))
}

fn three_stages() -> Vec<(&'static str, String)> {
    vec![
        ("project.json", project(&[APP])),
        (
            "live.json",
            own_alarm("live", stage_json(Some("test"), CANARY)),
        ),
        ("dev.json", own_alarm("dev", stage_json(None, ALL))),
        ("test.json", own_alarm("test", stage_json(Some("dev"), ALL))),
    ]
}

fn load(files: &[(&str, String)]) -> Result<Environments, ConfigError> {
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let d = dir_with(&refs);
    Environments::load(&d.0)
}

/// Every problem `check` finds, one a line.
fn load_err(files: &[(&str, String)]) -> String {
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let d = dir_with(&refs);
    let problems = Environments::check(&d.0).unwrap_err();
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

fn with(file: &'static str, body: String) -> Vec<(&'static str, String)> {
    let mut files = three_stages();
    files.retain(|(n, _)| *n != file);
    files.push((file, own_alarm(file, body)));
    files
}

#[test]
fn loads_the_repository_environments() {
    let env =
        Environments::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../environments")).unwrap();
    assert_eq!(env.stage_names(), ["dev", "test", "live"]);
    assert_eq!(env.project.function_names(), ["app", "birthday"]);
    assert_eq!(env.project.main_function().package, "app");
    let birthday = env.project.function("birthday").unwrap();
    assert_eq!(birthday.routes, ["/hello/{username}"]);
    let probe = birthday
        .probe_request()
        .expect("birthday is probed by a request");
    assert_eq!(probe.method, "PUT");
    assert_eq!(probe.expect_status, 204);
    assert_eq!(probe.content_type.as_deref(), Some("application/json"));
    assert_eq!(env.project.stage_variable, "lambdaAlias");
    let live = env.stage("live").unwrap();
    let Strategy::Canary { steps } = &live.strategy else {
        panic!("live is a canary stage")
    };
    assert!(steps.last().unwrap().weight.is_full());
    assert_eq!(env.upstream_of(live).unwrap().name, "test");
    assert!(env.upstream_of(env.stage("dev").unwrap()).is_none());
    assert!(!live.alarms.is_empty());
}

#[test]
fn orders_stages_by_upstream_links_not_file_names() {
    let env = load(&three_stages()).unwrap();
    assert_eq!(env.stage_names(), ["dev", "test", "live"]);
    let live = env.stage("live").unwrap();
    assert_eq!(live.poll_interval, Duration::from_secs(5));
    assert_eq!(live.alarms[0].period_seconds, 60, "default period");
    assert_eq!(
        live.alarms[0].evaluation_periods, 1,
        "default evaluation periods"
    );
    assert_eq!(
        live.strategy,
        Strategy::Canary {
            steps: vec![
                Step {
                    weight: Weight::parse_percent("10").unwrap(),
                    bake: Duration::from_secs(60)
                },
                Step {
                    weight: Weight::parse_percent("50").unwrap(),
                    bake: Duration::from_secs(60)
                },
                Step {
                    weight: Weight::FULL,
                    bake: Duration::ZERO
                },
            ]
        }
    );
    assert_eq!(
        env.stage("test").unwrap().strategy,
        Strategy::AllAtOnce {
            bake: Duration::from_secs(60)
        }
    );
}

#[test]
fn a_bake_shorter_than_an_alarm_window_is_refused() {
    let p99 = r#"{"name": "a-p99", "kind": "api_p99_latency", "threshold": 500, "period_seconds": 60, "evaluation_periods": 3}"#;
    let with_p99 = |strategy: &str| {
        stage_json(Some("test"), strategy).replace(
            r#""threshold": 1}]"#,
            &format!(r#""threshold": 1}}, {p99}]"#),
        )
    };
    let short_last = r#"{"type": "canary", "steps": [{"weight": 10, "bake_seconds": 300}, {"weight": 100, "bake_seconds": 120}]}"#;
    let msg = load_err(&with("live.json", with_p99(short_last)));
    assert!(
        msg.contains("live.json: field `strategy.steps[1].bake_seconds`"),
        "names the file and the step: {msg}"
    );
    assert!(
        msg.contains("a 120 s bake ends before alarm `a-p99` could fire"),
        "names the alarm: {msg}"
    );
    assert!(
        msg.contains("3 period(s) of 60 s = 180 s") && msg.contains("at least 180"),
        "says what would work: {msg}"
    );

    let short_all = with_p99(r#"{"type": "all_at_once", "bake_seconds": 30}"#);
    let msg = load_err(&with("live.json", short_all.clone()));
    assert!(
        msg.contains("field `strategy.bake_seconds`") && msg.contains("a 30 s bake"),
        "{msg}"
    );

    // What works: a bake as long as the window, no bake at all, or a fixture's override.
    let long_enough = r#"{"type": "canary", "steps": [{"weight": 10, "bake_seconds": 180}, {"weight": 100, "bake_seconds": 0}]}"#;
    assert!(load(&with("live.json", with_p99(long_enough))).is_ok());
    let fixture = short_all.replacen(
        r#""poll_interval_seconds""#,
        r#""test_fixture_short_bakes": true, "poll_interval_seconds""#,
        1,
    );
    assert!(load(&with("live.json", fixture)).is_ok());
}

#[test]
fn unknown_stage_lists_the_known_ones() {
    let env = load(&three_stages()).unwrap();
    let msg = env.stage("prod").unwrap_err().to_string();
    assert!(msg.starts_with("unknown stage `prod`"), "{msg}");
    assert!(msg.ends_with("dev, test, live"), "{msg}");
}

#[test]
fn malformed_json_names_the_file_and_position() {
    let msg = load_err(&with("live.json", "{ not json".into()));
    assert!(msg.contains("live.json") && msg.contains("line 1"), "{msg}");
}

#[test]
fn type_errors_name_the_field_path() {
    let body = stage_json(
        Some("test"),
        r#"{"type": "canary", "steps": [{"weight": 10, "bake_seconds": 60}, {"weight": "fifty", "bake_seconds": 60}]}"#,
    );
    let msg = load_err(&with("live.json", body));
    assert!(
        msg.contains("live.json: field `strategy.steps[1].weight`"),
        "{msg}"
    );
    assert!(msg.contains(r#""fifty" is not of type "number""#), "{msg}");
}

#[test]
fn unknown_and_missing_fields_are_reported() {
    let body = stage_json(Some("test"), ALL).replacen(
        "\"poll_interval_seconds\"",
        "\"poll_interval_secs\"",
        1,
    );
    let msg = load_err(&with("live.json", body));
    assert!(
        msg.contains("live.json") && msg.contains("unknown field `poll_interval_secs`"),
        "{msg}"
    );
    let msg = load_err(&with(
        "project.json",
        project(&[APP]).replace(r#""stage_variable": "lambdaAlias", "#, ""),
    ));
    assert!(
        msg.contains("project.json") && msg.contains("missing field `stage_variable`"),
        "{msg}"
    );
}

#[test]
fn canary_steps_must_increase_and_end_at_100() {
    let cases = [
        (
            r#"{"type": "canary", "steps": [{"weight": 50, "bake_seconds": 1}, {"weight": 10, "bake_seconds": 1}, {"weight": 100, "bake_seconds": 0}]}"#,
            "strategy.steps[1].weight",
            "strictly increasing",
        ),
        (
            r#"{"type": "canary", "steps": [{"weight": 10, "bake_seconds": 1}, {"weight": 50, "bake_seconds": 1}]}"#,
            "strategy.steps[1].weight",
            "last step must be 100",
        ),
        (
            r#"{"type": "canary", "steps": []}"#,
            "strategy.steps",
            "must list at least 1 item",
        ),
        (r#"{"type": "canary"}"#, "strategy.steps", "needs steps"),
        (
            r#"{"type": "canary", "steps": [{"weight": 0, "bake_seconds": 1}, {"weight": 100, "bake_seconds": 0}]}"#,
            "strategy.steps[0].weight",
            "0 must be greater than 0",
        ),
        (
            r#"{"type": "canary", "steps": [{"weight": 100.5, "bake_seconds": 1}]}"#,
            "strategy.steps[0].weight",
            "100.5 is above the maximum of 100",
        ),
        (
            r#"{"type": "canary", "steps": [{"weight": 10, "bake_seconds": 90000}, {"weight": 100, "bake_seconds": 0}]}"#,
            "strategy.steps[0].bake_seconds",
            "90000 is above the maximum of 86400",
        ),
        (
            r#"{"type": "all_at_once", "steps": [{"weight": 100, "bake_seconds": 0}]}"#,
            "strategy.steps",
            "only a canary",
        ),
        (
            r#"{"type": "blue_green"}"#,
            "strategy.type",
            r#""blue_green" is not one of "all_at_once", "canary""#,
        ),
    ];
    for (strategy, at, what) in cases {
        let msg = load_err(&with("live.json", stage_json(Some("test"), strategy)));
        assert!(
            msg.contains(&format!("live.json: field `{at}`")),
            "{strategy}: {msg}"
        );
        assert!(msg.contains(what), "{strategy}: {msg}");
    }
}

#[test]
fn alarm_and_terraform_fields_are_validated() {
    let base = stage_json(Some("test"), ALL);
    let cases = [
        (
            base.replace(r#""kind": "lambda_errors""#, r#""kind": "cpu""#),
            "alarms[0].kind",
            r#""cpu" is not one of "lambda_errors""#,
        ),
        (
            base.replace(r#""threshold": 1"#, r#""threshold": -1"#),
            "alarms[0].threshold",
            "-1 is below the minimum of 0",
        ),
        (
            base.replace(
                r#""threshold": 1"#,
                r#""threshold": 1, "period_seconds": 45"#,
            ),
            "alarms[0].period_seconds",
            "45 is not one of 10, 30, 60",
        ),
        (
            base.replace(r#""name": "a-errors""#, r#""name": "has space""#),
            "alarms[0].name",
            "does not match",
        ),
        (
            base.replace(
                r#""poll_interval_seconds": 5"#,
                r#""poll_interval_seconds": 0"#,
            ),
            "poll_interval_seconds",
            "0 is below the minimum of 1 (How often the evidence is read during a bake, 1 to 60 seconds.)",
        ),
        (
            base.replace(r#""log_retention_days": 7"#, r#""log_retention_days": 8"#),
            "log_retention_days",
            "8 is not one of 1, 3, 5, 7, 14",
        ),
        (
            base.replace(r#""rate_limit": 10"#, r#""rate_limit": 0"#),
            "throttling.rate_limit",
            "0 must be greater than 0",
        ),
    ];
    for (body, at, what) in cases {
        let msg = load_err(&with("live.json", body));
        assert!(
            msg.contains(&format!("live.json: field `{at}`")) && msg.contains(what),
            "{at}: {msg}"
        );
    }
    let twice = base.replace(
        r#""alarms": [{"name": "a-errors", "kind": "lambda_errors", "threshold": 1}]"#,
        r#""alarms": [{"name": "a", "kind": "lambda_errors", "threshold": 1}, {"name": "a", "kind": "lambda_throttles", "threshold": 1}]"#,
    );
    let msg = load_err(&with("live.json", twice));
    assert!(
        msg.contains("alarms[1].name") && msg.contains("listed twice"),
        "{msg}"
    );
}

#[test]
fn a_throttle_rate_alarm_loads_and_its_threshold_is_a_fraction() {
    let base = stage_json(Some("test"), ALL);
    let rate = |threshold: &str| {
        base.replace(
            r#""kind": "lambda_errors", "threshold": 1"#,
            &format!(
                r#""kind": "lambda_throttle_rate", "threshold": {threshold}, "period_seconds": 60, "evaluation_periods": 1"#
            ),
        )
    };
    let env = load(&with("live.json", rate("0.05"))).unwrap();
    let alarm = &env.stage("live").unwrap().alarms[0];
    assert_eq!(alarm.kind, AlarmKind::LambdaThrottleRate);
    assert!(alarm.kind.is_rate() && !AlarmKind::LambdaThrottles.is_rate());
    assert_eq!(alarm.threshold, 0.05);
    // 5 meant as 5% is refused, naming the field and the fix.
    let msg = load_err(&with("live.json", rate("5")));
    assert!(
        msg.contains("live.json: field `alarms[0].threshold`")
            && msg.contains("a fraction below 1 (0.05 is 5%), not 5"),
        "{msg}"
    );
    // The same rule holds for the 5xx rate; a count may be anything.
    let msg = load_err(&with(
        "live.json",
        base.replace(
            r#""kind": "lambda_errors", "threshold": 1"#,
            r#""kind": "api_5xx_rate", "threshold": 1"#,
        ),
    ));
    assert!(msg.contains("alarms[0].threshold"), "{msg}");
    let count = base.replace(r#""threshold": 1"#, r#""threshold": 7"#);
    assert!(load(&with("live.json", count)).is_ok());
}

#[test]
fn an_alarm_name_used_by_two_stages_is_refused() {
    let dev = stage_json(None, ALL).replace("a-errors", "dev-errors");
    let test = stage_json(Some("dev"), ALL).replace("a-errors", "dev-errors");
    let live = stage_json(Some("test"), CANARY).replace("a-errors", "live-errors");
    let files = vec![
        ("project.json", project(&[APP])),
        ("dev.json", dev.clone()),
        ("test.json", test),
        ("live.json", live.clone()),
    ];
    let msg = load_err(&files);
    assert!(
        msg.contains("test.json: field `alarms[0].name`"),
        "names the second file and the field: {msg}"
    );
    assert!(
        msg.contains("`dev-errors` is also an alarm of stage `dev` (dev.json)"),
        "names the other stage: {msg}"
    );
    assert!(
        msg.contains(
            "unique per account and region, so give each stage its own, e.g. `test-errors`"
        ),
        "{msg}"
    );

    // Each stage with its own names loads.
    let files = vec![
        ("project.json", project(&[APP])),
        ("dev.json", dev),
        (
            "test.json",
            stage_json(Some("dev"), ALL).replace("a-errors", "test-errors"),
        ),
        ("live.json", live),
    ];
    assert_eq!(load(&files).unwrap().stage_names(), ["dev", "test", "live"]);
}

#[test]
fn project_fields_are_validated() {
    let cases = [
        (
            project(&[APP]).replace(r#""region": "eu-west-2""#, r#""region": "mars""#),
            "region",
        ),
        (
            project(&[&APP.replace(r#""name": "app""#, r#""name": "my app""#)]),
            "functions[0].name",
        ),
        (project(&[]), "functions"),
        (
            project(&[APP, &BIRTHDAY.replace("/hello/{username}", "/hello/")]),
            "functions[1].routes[0]",
        ),
        (
            project(&[
                APP,
                &BIRTHDAY.replace(r#""method": "PUT""#, r#""method": "FETCH""#),
            ]),
            "functions[1].probe.method",
        ),
        (
            project(&[APP]).replace(
                r#""stage_variable": "lambdaAlias""#,
                r#""stage_variable": "lambda-alias""#,
            ),
            "stage_variable",
        ),
    ];
    for (body, at) in cases {
        let msg = load_err(&with("project.json", body));
        assert!(
            msg.contains(&format!("project.json: field `{at}`")),
            "{msg}"
        );
    }
}

#[test]
fn functions_are_held_to_the_rules_across_them() {
    let two = load(&with("project.json", project(&[APP, BIRTHDAY]))).unwrap();
    assert_eq!(two.project.function_names(), ["app", "birthday"]);
    let cases = [
        (
            project(&[
                APP,
                &BIRTHDAY.replace(r#""name": "birthday""#, r#""name": "app""#),
            ]),
            "functions[1].name",
            "function `app` is listed twice",
        ),
        (
            project(&[APP, &BIRTHDAY.replace("/hello/{username}", "/build-info")]),
            "functions[1].routes[0]",
            "also served by function `app`",
        ),
        (
            project(&[APP, &BIRTHDAY.replace("/hello/{username}", "/{name}")]),
            "functions[1].routes[0]",
            "probe",
        ),
        (
            project(&[
                APP,
                &BIRTHDAY.replace("/hello/{username}", "/hello/{all+}/x"),
            ]),
            "functions[1].routes[0]",
            "must be the last segment",
        ),
        (
            project(&[APP, &BIRTHDAY.replace("/hello/{username}", "/h/{a}/{a}")]),
            "functions[1].routes[0]",
            "appears twice",
        ),
        (
            project(&[APP, &BIRTHDAY.replace("/hello/probe", "/bye/probe")]),
            "functions[1].probe.path",
            "matches none of function `birthday`'s routes",
        ),
    ];
    for (body, at, what) in cases {
        let msg = load_err(&with("project.json", body));
        if what == "probe" {
            // `/{name}` matches `/hello` but not the probe's `/hello/probe`: the probe is refused.
            assert!(msg.contains("functions[1].probe.path"), "{msg}");
            continue;
        }
        assert!(
            msg.contains(&format!("project.json: field `{at}`")) && msg.contains(what),
            "{msg}"
        );
    }
}

#[test]
fn a_route_matches_the_paths_it_serves() {
    use crate::validate::route_matches;
    assert!(route_matches("/", "/"));
    assert!(!route_matches("/", "/build-info"));
    assert!(route_matches("/hello/{username}", "/hello/nando"));
    assert!(!route_matches("/hello/{username}", "/hello"));
    assert!(!route_matches("/hello/{username}", "/hello/a/b"));
    assert!(route_matches("/files/{path+}", "/files/a/b/c"));
    assert!(!route_matches("/files/{path+}", "/files"));
    assert!(route_matches("/build-info", "/build-info?x=1"));
}

#[test]
fn the_chain_must_be_linear_with_one_root() {
    let msg = load_err(&with("test.json", stage_json(None, ALL)));
    assert!(
        msg.contains("dev, test all have \"upstream\": null"),
        "{msg}"
    );

    let msg = load_err(&with("live.json", stage_json(Some("dev"), CANARY)));
    assert!(msg.contains("all follow `dev`"), "{msg}");

    let msg = load_err(&with("live.json", stage_json(Some("prod"), CANARY)));
    assert!(
        msg.contains("live.json: field `upstream`") && msg.contains("`prod` is not a stage"),
        "{msg}"
    );

    let msg = load_err(&with("live.json", stage_json(Some("live"), CANARY)));
    assert!(msg.contains("its own upstream"), "{msg}");

    let mut cycle = with("dev.json", stage_json(Some("live"), ALL));
    cycle.push(("qa.json", stage_json(None, ALL)));
    let msg = load_err(&cycle);
    assert!(
        msg.contains("not reachable") || msg.contains("all follow"),
        "{msg}"
    );

    let files: Vec<(&str, String)> = vec![
        ("project.json", project(&[APP])),
        ("a.json", stage_json(Some("b"), ALL)),
        ("b.json", stage_json(Some("a"), ALL)),
    ];
    assert!(load_err(&files).contains("form a cycle"));
}

#[test]
fn layout_problems_say_what_is_missing() {
    let msg = load_err(&[("dev.json", stage_json(None, ALL))]);
    assert!(msg.contains("no project.json"), "{msg}");
    let msg = load_err(&[("project.json", project(&[APP]))]);
    assert!(msg.contains("no stage files"), "{msg}");
    let msg = load_err(&with("Live.json", stage_json(Some("test"), CANARY)));
    assert!(
        msg.contains("Live.json") && msg.contains("not a valid stage name"),
        "{msg}"
    );
    let missing = Environments::load("/nonexistent/environments")
        .unwrap_err()
        .to_string();
    assert!(missing.contains("/nonexistent/environments"), "{missing}");
}

#[test]
fn the_schema_documents_the_defaults_the_loader_applies() {
    let schema = Schema::Stage.value();
    let analysis = &schema["properties"]["analysis"]["properties"];
    let default = |field: &str| analysis[field]["default"].clone();
    let canary = Analysis::default_for(&Strategy::Canary { steps: vec![] });
    let c = &canary.criteria;
    assert_eq!(default("period_seconds"), canary.period_seconds);
    assert_eq!(default("min_requests"), c.min_requests);
    assert_eq!(default("confidence"), c.confidence);
    assert_eq!(default("max_error_rate"), c.max_error_rate);
    assert_eq!(default("latency_tolerance"), c.latency_tolerance);
    assert_eq!(default("latency_statistic"), "p99");
    assert_eq!(c.latency_statistic, crate::judge::LatencyStatistic::P99);
    assert_eq!(
        default("max_extension_seconds"),
        canary.max_extension.as_secs()
    );
    assert_eq!(default("on_no_evidence"), "hold");
    assert_eq!(canary.on_no_evidence, OnNoEvidence::Hold);
    assert_eq!(default("judge_relative"), canary.judge_relative);
    assert_eq!(default("probe_rate"), canary.probe_rate);
    assert_eq!(default("on_unreadable"), "rollback");
    assert_eq!(canary.on_unreadable, OnUnreadable::Rollback);
    assert_eq!(default("max_read_failures"), canary.max_read_failures);
    assert_eq!(default("early_pass"), canary.early_pass);
    let alarm = &schema["properties"]["alarms"]["items"]["properties"];
    assert_eq!(alarm["period_seconds"]["default"], default_period());
    assert_eq!(
        alarm["evaluation_periods"]["default"],
        default_evaluation_periods()
    );
    // The bounds promote's own flags are held to come from the same place.
    assert_eq!(
        analysis["probe_rate"]["maximum"],
        crate::spec::MAX_PROBE_RATE
    );
    let periods: Vec<u32> = serde_json::from_value(analysis["period_seconds"]["enum"].clone())
        .expect("a list of periods");
    assert_eq!(periods, crate::spec::ANALYSIS_PERIODS);
}

#[test]
fn check_lists_every_problem_of_every_file_at_once() {
    let mut files = with(
        "live.json",
        stage_json(Some("test"), CANARY).replace(r#""threshold": 1"#, r#""threshold": -1"#),
    );
    files.retain(|(n, _)| *n != "dev.json");
    files.push((
        "dev.json",
        own_alarm("dev", stage_json(None, ALL)).replace(
            r#""poll_interval_seconds": 5"#,
            r#""poll_interval_seconds": 0"#,
        ),
    ));
    let msg = load_err(&files);
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(lines.len(), 2, "{msg}");
    assert!(
        lines[0].contains("dev.json: field `poll_interval_seconds`"),
        "{msg}"
    );
    assert!(
        lines[1].contains("live.json: field `alarms[0].threshold`"),
        "{msg}"
    );
    // `load` stops at the first.
    assert!(load(&files).unwrap_err().to_string().contains("dev.json"));
}

#[test]
fn names_terraform_derives_must_fit_aws_limits() {
    let env = load(&three_stages()).unwrap();
    assert!(validate::terraform_name_lengths(&env).is_empty());
    let names: Vec<String> = validate::terraform_names(&env)
        .into_iter()
        .map(|(_, n, _)| n)
        .collect();
    assert!(names.contains(&"app-deploy-live".to_string()), "{names:?}");

    let long = project(&[&APP.replace(
        r#""name": "app""#,
        &format!(r#""name": "{}""#, "f".repeat(50)),
    )]);
    let env = load(&with("project.json", long)).unwrap();
    let problems: Vec<String> = validate::terraform_name_lengths(&env)
        .iter()
        .map(ToString::to_string)
        .collect();
    // 50 + "-deploy-live" = 62 fits; 50 + "-apigateway-logs" = 66 does not.
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains(&format!(
            "the IAM role name `{}-apigateway-logs` that Terraform derives is 66 characters, over AWS's 64",
            "f".repeat(50)
        )),
        "{problems:?}"
    );
}

#[test]
fn buckets_triggers_and_upload_probes_are_read_as_written() {
    let env = load(&with(
        "project.json",
        project(&[APP, IMAGES, METADATA]).replace(
            r#""region": "eu-west-2""#,
            r#""region": "eu-west-2", "binary_media_types": ["multipart/form-data", "image/png"]"#,
        ),
    ))
    .unwrap();
    let p = &env.project;
    assert_eq!(p.binary_media_types, ["multipart/form-data", "image/png"]);
    let images = p.function("images").unwrap();
    assert_eq!(images.buckets, ["images"]);
    // body_base64 is decoded: the probe sends these bytes.
    assert_eq!(
        images.probe_request().unwrap().body.as_deref(),
        Some(&b"\x89PNG\r\n\x1a\n"[..])
    );
    let meta = p.function("file-metadata").unwrap();
    assert!(meta.routes.is_empty());
    assert_eq!(
        meta.trigger,
        Some(crate::spec::Trigger::S3 {
            bucket: "uploads".into()
        })
    );
    assert_eq!(meta.probe_request(), None);
    assert_eq!(
        meta.probe,
        crate::spec::Probe::Upload(crate::spec::UploadProbe {
            bucket: "uploads".into(),
            prefix: "probe/".into(),
            summaries: "summaries".into(),
            deadline_seconds: 10,
        })
    );
    assert_eq!(
        crate::spec::bucket_stage_variable("uploads"),
        "uploadsBucket"
    );
    assert_eq!(
        crate::spec::bucket_name("app", "dev", "uploads", "123456789012"),
        "app-dev-uploads-123456789012"
    );
    // Without the new fields a function has no bucket, no trigger, no binary media type.
    let plain = load(&with("project.json", project(&[APP]))).unwrap();
    assert!(plain.project.binary_media_types.is_empty());
    assert!(plain.project.functions[0].buckets.is_empty());
}

#[test]
fn triggers_and_upload_probes_are_held_to_the_rules() {
    let cases = [
        // Nothing would invoke a function with neither route nor trigger.
        (
            METADATA.replace(r#", "trigger": {"type": "s3", "bucket": "uploads"}"#, ""),
            "functions[1].routes",
            "nothing would invoke it",
        ),
        // The trigger's bucket is one of the function's own.
        (
            METADATA.replace(
                r#""buckets": ["uploads", "summaries"]"#,
                r#""buckets": ["summaries"]"#,
            ),
            "functions[1].trigger.bucket",
            "not one of function `file-metadata`'s buckets",
        ),
        // The probe uploads where the function is triggered.
        (
            METADATA.replace(
                r#""bucket": "uploads", "prefix""#,
                r#""bucket": "summaries", "prefix""#,
            ),
            "functions[1].probe.bucket",
            "is not the bucket that triggers function `file-metadata`",
        ),
        // A summary written to the trigger bucket would trigger the function again.
        (
            METADATA.replace(r#""summaries": "summaries""#, r#""summaries": "uploads""#),
            "functions[1].probe.summaries",
            "would trigger the function again",
        ),
        (
            METADATA.replace(r#""summaries": "summaries""#, r#""summaries": "other""#),
            "functions[1].probe.summaries",
            "not one of function `file-metadata`'s buckets",
        ),
        // A bucket purpose is lowercase letters and digits: it ends up in a bucket name.
        (
            METADATA.replace(r#"["uploads", "summaries"]"#, r#"["Uploads", "summaries"]"#),
            "functions[1].buckets[0]",
            "",
        ),
        (
            IMAGES.replace("iVBORw0KGgo=", "not base64!"),
            "functions[1].probe.body_base64",
            "is not base64",
        ),
        (
            IMAGES.replace(r#""body_base64""#, r#""body": "x", "body_base64""#),
            "functions[1].probe",
            "",
        ),
    ];
    for (function, at, what) in cases {
        let msg = load_err(&with("project.json", project(&[APP, &function])));
        assert!(msg.contains(&format!("field `{at}`")), "{at}: {msg}");
        assert!(msg.contains(what), "{what}: {msg}");
    }
}
