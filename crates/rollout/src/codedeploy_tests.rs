use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::spec::Step;

/// The table `tools/check_environments.py` is tested against too (tests/static/test_codedeploy.py).
const CASES: &str = include_str!("../testdata/codedeploy_configs.json");

fn strategy_of(v: &Value) -> Strategy {
    let secs = |v: &Value| Duration::from_secs(v.as_u64().expect("bake_seconds"));
    match v["type"].as_str().unwrap() {
        "all_at_once" => Strategy::AllAtOnce {
            bake: secs(&v["bake_seconds"]),
        },
        "canary" => Strategy::Canary {
            steps: v["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| Step {
                    weight: Weight::from_percent_f64(s["weight"].as_f64().unwrap()).unwrap(),
                    bake: secs(&s["bake_seconds"]),
                })
                .collect(),
        },
        other => panic!("unknown strategy type {other}"),
    }
}

fn config_of(v: &Value) -> DeploymentConfig {
    let pct = || u32::try_from(v["percentage"].as_u64().unwrap()).unwrap();
    let min = || v["interval_minutes"].as_u64().unwrap();
    match v["type"].as_str().unwrap() {
        "AllAtOnce" => DeploymentConfig::AllAtOnce,
        "TimeBasedCanary" => DeploymentConfig::TimeBasedCanary {
            percentage: pct(),
            interval_minutes: min(),
        },
        "TimeBasedLinear" => DeploymentConfig::TimeBasedLinear {
            percentage: pct(),
            interval_minutes: min(),
        },
        other => panic!("unknown config type {other}"),
    }
}

#[test]
fn each_plan_becomes_its_config_or_a_refusal_that_says_what_would_work() {
    let table: Value = serde_json::from_str(CASES).unwrap();
    let cases = table["cases"].as_array().unwrap();
    assert!(cases.len() >= 10, "the table covers every rule");
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let got = deployment_config(&strategy_of(&case["strategy"]));
        if let Some(want) = case.get("config") {
            assert_eq!(got, Ok(config_of(want)), "{name}");
            assert_eq!(got.unwrap().routing_type(), want["type"], "{name}");
        } else {
            let want = &case["refused"];
            let err = got.expect_err(name);
            assert_eq!(err.field, want["field"].as_str().unwrap(), "{name}");
            assert_eq!(err.message, want["message"].as_str().unwrap(), "{name}");
        }
    }
}

#[test]
fn config_names_carry_the_split() {
    let cases = [
        (DeploymentConfig::AllAtOnce, "app-dev-all-at-once"),
        (
            DeploymentConfig::TimeBasedCanary {
                percentage: 10,
                interval_minutes: 5,
            },
            "app-dev-canary-10pct-5min",
        ),
        (
            DeploymentConfig::TimeBasedLinear {
                percentage: 25,
                interval_minutes: 2,
            },
            "app-dev-linear-25pct-every-2min",
        ),
    ];
    for (config, name) in cases {
        assert_eq!(config.name("app", "dev"), name);
    }
}

fn v(n: u64) -> Version {
    Version::new(n).unwrap()
}

#[test]
fn the_appspec_names_function_alias_versions_and_only_the_hooks_given() {
    let spec = |before: Option<&str>, after: Option<&str>| AppSpec {
        function: "app".into(),
        alias: "live".into(),
        current: v(3),
        target: v(4),
        hooks: Hooks {
            before_allow_traffic: before.map(String::from),
            after_allow_traffic: after.map(String::from),
        },
    };
    let resources = json!([{"app": {"Type": "AWS::Lambda::Function", "Properties": {
        "Name": "app", "Alias": "live", "CurrentVersion": "3", "TargetVersion": "4"}}}]);
    let cases = [
        (None, None, None),
        (
            Some("pre"),
            None,
            Some(json!([{"BeforeAllowTraffic": "pre"}])),
        ),
        (
            None,
            Some("post"),
            Some(json!([{"AfterAllowTraffic": "post"}])),
        ),
        (
            Some("pre"),
            Some("post"),
            Some(json!([{"BeforeAllowTraffic": "pre"}, {"AfterAllowTraffic": "post"}])),
        ),
    ];
    for (before, after, hooks) in cases {
        let s = spec(before, after);
        let got = s.to_json();
        assert_eq!(got["version"], json!(0.0));
        assert_eq!(got["Resources"], resources);
        assert_eq!(got.get("Hooks").cloned(), hooks, "{before:?} {after:?}");
        // The content string is the same document, and says version 0.0 as AppSpec files do.
        let content = s.content();
        assert!(content.contains("\"version\":0.0"), "{content}");
        assert_eq!(serde_json::from_str::<Value>(&content).unwrap(), got);
    }
}

fn read(status: &str) -> DeploymentRead {
    DeploymentRead {
        id: "d-1".into(),
        status: Some(Status::parse(status).unwrap()),
        ..DeploymentRead::default()
    }
}

fn running(phase: Phase, candidate_weight: Option<Weight>) -> Followed {
    Followed::Running(Progress {
        phase,
        candidate_weight,
    })
}

#[test]
fn a_running_deployment_is_progress() {
    let ten = Weight::parse_percent("10").unwrap();
    let cases = [
        ("Created", None, running(Phase::Waiting, None)),
        ("Queued", None, running(Phase::Waiting, None)),
        ("Ready", None, running(Phase::Waiting, None)),
        ("InProgress", None, running(Phase::Shifting, None)),
        (
            "InProgress",
            Some(0.0),
            running(Phase::Shifting, Some(Weight::ZERO)),
        ),
        ("InProgress", Some(0.1), running(Phase::Shifting, Some(ten))),
        (
            "InProgress",
            Some(1.0),
            running(Phase::Shifting, Some(Weight::FULL)),
        ),
        (
            "Baking",
            Some(1.0),
            running(Phase::Baking, Some(Weight::FULL)),
        ),
    ];
    for (status, weight, want) in cases {
        let r = DeploymentRead {
            target_weight: weight,
            ..read(status)
        };
        assert_eq!(interpret(&r), Ok(want), "{status} {weight:?}");
    }
    let shown = Progress {
        phase: Phase::Shifting,
        candidate_weight: Some(ten),
    };
    assert_eq!(shown.to_string(), "shifting: 10% on the target version");
}

#[test]
fn a_finished_deployment_is_an_outcome() {
    let error = Some((
        "ALARM_ACTIVE".to_string(),
        "alarm app-live-5xx fired".to_string(),
    ));
    let cases: Vec<(DeploymentRead, Outcome)> = vec![
        (read("Succeeded"), Outcome::Succeeded),
        (
            DeploymentRead {
                error: error.clone(),
                rollback_deployment_id: Some("d-2".into()),
                ..read("Failed")
            },
            Outcome::RolledBack {
                reason: "ALARM_ACTIVE: alarm app-live-5xx fired".into(),
                rollback_deployment_id: "d-2".into(),
            },
        ),
        (
            // Our own stop on a judge fail asks for a rollback: reported like an alarm's.
            DeploymentRead {
                error: Some(("MANUAL_STOP".into(), "judge: candidate errors".into())),
                rollback_deployment_id: Some("d-3".into()),
                ..read("Stopped")
            },
            Outcome::RolledBack {
                reason: "MANUAL_STOP: judge: candidate errors".into(),
                rollback_deployment_id: "d-3".into(),
            },
        ),
        (
            DeploymentRead {
                error: Some(("HOOK_EXECUTION_FAILURE".into(), "pre failed".into())),
                rollback_message: Some("Automatic rollback is not enabled".into()),
                ..read("Failed")
            },
            Outcome::Failed {
                reason: "HOOK_EXECUTION_FAILURE: pre failed (Automatic rollback is not enabled)"
                    .into(),
            },
        ),
        (
            read("Stopped"),
            Outcome::Stopped {
                reason: "CodeDeploy gave no reason".into(),
            },
        ),
        (
            DeploymentRead {
                rollback_of: Some("d-1".into()),
                ..DeploymentRead {
                    id: "d-2".into(),
                    ..read("Succeeded")
                }
            },
            Outcome::RolledBack {
                reason: "deployment d-1 was rolled back".into(),
                rollback_deployment_id: "d-2".into(),
            },
        ),
        (
            DeploymentRead {
                rollback_of: Some("d-1".into()),
                rollback_message: Some("throttled".into()),
                ..DeploymentRead {
                    id: "d-2".into(),
                    ..read("Failed")
                }
            },
            Outcome::RollbackFailed {
                reason: "rollback deployment d-2 ended failed: throttled".into(),
            },
        ),
    ];
    for (r, want) in cases {
        let got = interpret(&r);
        assert_eq!(got, Ok(Followed::Finished(want.clone())), "{r:?}");
    }
}

#[test]
fn reads_that_mean_nothing_are_errors_not_guesses() {
    assert_eq!(
        Status::parse("Paused"),
        Err(UnknownStatus("Paused".into())),
        "an unknown status is not mapped to a phase"
    );
    let no_status = DeploymentRead {
        id: "d-9".into(),
        ..DeploymentRead::default()
    };
    assert_eq!(
        interpret(&no_status),
        Err(ReadError::NoStatus("d-9".into()))
    );
    let bad_weight = DeploymentRead {
        target_weight: Some(1.5),
        ..read("InProgress")
    };
    assert!(matches!(
        interpret(&bad_weight),
        Err(ReadError::Weight { weight, .. }) if weight == 1.5
    ));
}

/// The repository's environments with `edit` applied to live.json's strategy, loaded.
fn load_with_live_strategy(edit: impl Fn(&mut Value)) -> Result<crate::Environments, String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let src = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../environments"));
    let dir = std::env::temp_dir().join(format!(
        "rollout-codedeploy-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["project.json", "dev.json", "test.json", "live.json"] {
        let mut body: Value =
            serde_json::from_str(&std::fs::read_to_string(src.join(name)).unwrap()).unwrap();
        if name == "live.json" {
            edit(&mut body["strategy"]);
        }
        std::fs::write(dir.join(name), body.to_string()).unwrap();
    }
    let loaded = crate::Environments::load(&dir).map_err(|e| e.to_string());
    std::fs::remove_dir_all(&dir).unwrap();
    loaded
}

#[test]
fn the_loader_reads_a_codedeploy_stage_and_refuses_a_plan_codedeploy_cannot_run() {
    // A plan CodeDeploy cannot run: the same message as deployment_config, at its field.
    let msg = load_with_live_strategy(|s| s["engine"] = json!("codedeploy")).unwrap_err();
    assert!(
        msg.contains("live.json: field `strategy.steps`: CodeDeploy shifts traffic as a canary"),
        "{msg}"
    );
    // A plan it can run is read with its engine and hooks.
    let runnable = json!([{"weight": 10, "bake_seconds": 300}, {"weight": 100, "bake_seconds": 0}]);
    let env = load_with_live_strategy(|s| {
        s["engine"] = json!("codedeploy");
        s["steps"] = runnable.clone();
        s["hooks"] = json!({"before_allow_traffic": "app-live-pre"});
    })
    .unwrap();
    let live = env.stage("live").unwrap();
    assert_eq!(live.engine, Engine::CodeDeploy);
    assert_eq!(
        live.hooks.before_allow_traffic.as_deref(),
        Some("app-live-pre")
    );
    assert_eq!(live.hooks.after_allow_traffic, None);
    assert_eq!(env.stage("test").unwrap().engine, Engine::Alias);
    // "alias" is today's engine, spelled out or not.
    assert!(load_with_live_strategy(|s| s["engine"] = json!("alias")).is_ok());
    let cases = [
        (
            json!({"engine": "alias", "hooks": {"after_allow_traffic": "post"}}),
            "field `strategy.hooks`: hooks are CodeDeploy lifecycle hooks",
        ),
        (
            json!({"engine": "codedeploy", "hooks": {"after_allow_traffic": "no spaces"}}),
            "field `strategy.hooks.after_allow_traffic`: \"no spaces\" does not match `^[A-Za-z0-9_-]{1,64}$` (A Lambda function name: 1-64 of A-Z a-z 0-9 - _.)",
        ),
        (json!({"hooks": {"before": "x"}}), "unknown field `before`"),
        (
            json!({"engine": "ecs"}),
            r#""ecs" is not one of "alias", "codedeploy""#,
        ),
    ];
    for (extra, want) in cases {
        let msg = load_with_live_strategy(|s| {
            for (k, v) in extra.as_object().unwrap() {
                s[k] = v.clone();
            }
        })
        .unwrap_err();
        assert!(msg.contains(want), "{extra}: {msg}");
    }
}

/// What the decision function observes: CodeDeploy's status names read back, which of them
/// are in flight (one per group), and how a deployment is named in refusals.
#[test]
fn statuses_in_flight_and_deployments_as_named() {
    for name in [
        "Created",
        "Queued",
        "InProgress",
        "Baking",
        "Ready",
        "Succeeded",
        "Failed",
        "Stopped",
    ] {
        let s = Status::parse(name).unwrap();
        assert_eq!(s.as_str(), name);
        assert_eq!(
            s.in_flight(),
            !matches!(name, "Succeeded" | "Failed" | "Stopped"),
            "{name}"
        );
    }
    let mut d = DeploymentView {
        id: "d-1".into(),
        application: "app".into(),
        config: "app-live-canary-10pct-1min".into(),
        shift: Some(Shift {
            current: v(1),
            target: v(2),
        }),
        status: Status::InProgress,
        rollback_of: None,
    };
    assert_eq!(d.to_string(), "deployment d-1 (version 1 -> 2, InProgress)");
    d.shift = None;
    assert_eq!(
        d.to_string(),
        "deployment d-1 (InProgress, an AppSpec promote did not write)"
    );
    d.rollback_of = Some("d-0".into());
    assert!(
        d.to_string()
            .starts_with("CodeDeploy's rollback of deployment d-0: deployment d-1"),
        "{d}"
    );
}

#[test]
fn every_function_has_its_own_application_and_one_group_per_stage() {
    let names: Vec<(String, String)> =
        [("app", "live"), ("birthday", "live"), ("birthday", "test")]
            .iter()
            .map(|(f, st)| {
                let g = Group::of(f, st);
                (g.application, g.group)
            })
            .collect();
    assert_eq!(
        names,
        [
            ("app".to_string(), "live".to_string()),
            ("birthday".to_string(), "live".to_string()),
            ("birthday".to_string(), "test".to_string()),
        ]
    );
    // Two functions on one stage never share a group: CodeDeploy holds one alias per group.
    assert_ne!(Group::of("app", "live"), Group::of("birthday", "live"));
}
