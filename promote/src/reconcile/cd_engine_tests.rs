//! The CodeDeploy engine against the in-memory stand-in, in virtual time (`start_paused`).
//!
//! moto creates and lists deployments but never progresses one (every deployment stays
//! `Created`) and has no StopDeployment, so following a deployment through its states, the
//! judge's stop with rollback and the resume after `kill -9` are driven from here: the
//! stand-in's CodeDeploy (codedeploy.rs, `FakeDeployments`) reports a scripted state per
//! GetDeployment and moves the alias as CodeDeploy would. `tests/it/codedeploy.rs` covers
//! what moto can show (the deployment created, the dry run, the refusal of a second one).

use std::time::Duration;

use rollout::codedeploy::{Engine, Hooks, Status};
use rollout::config::Step;
use rollout::machine::Intent;
use rollout::plan::AlarmValue;
use rollout::{Strategy, Weight};
use serde_json::Value;

use crate::cli::exit;
use crate::cli::ui::Format;
use crate::cloud::codedeploy::{DeploymentRequest, FakeRead};
use crate::cloud::fake::{World, ver, view};
use crate::reconcile::commands::{self, ExecOpts};

/// The frozen environments with live on the CodeDeploy engine (10% for a minute, then
/// 100%), and test serving version 2, the candidate live's plan picks.
fn world() -> World {
    let mut w = World::new(Format::Json);
    let live = w.env.stages.iter_mut().find(|s| s.name == "live").unwrap();
    live.engine = Engine::CodeDeploy;
    live.hooks = Hooks {
        before_allow_traffic: Some("app-live-pre".into()),
        after_allow_traffic: None,
    };
    live.strategy = Strategy::Canary {
        steps: vec![
            Step {
                weight: Weight::parse_percent("10").unwrap(),
                bake: Duration::from_secs(60),
            },
            Step {
                weight: Weight::FULL,
                bake: Duration::ZERO,
            },
        ],
    };
    w.fake.set_alias("test", view(2, None));
    w
}

pub(crate) fn canary() -> Intent {
    Intent::Canary {
        version: None,
        weight: None,
        allow_downgrade: false,
        retry: false,
    }
}

pub(crate) fn opts() -> ExecOpts {
    ExecOpts {
        poll: Some(Duration::from_secs(5)),
        ..ExecOpts::default()
    }
}

async fn run(w: &World, intent: Intent, opts: ExecOpts) -> anyhow::Result<()> {
    commands::execute(&w.ctx(), "live", intent, opts).await
}

pub(crate) fn code(r: &anyhow::Result<()>) -> i32 {
    r.as_ref().err().map_or(0, exit::code_of)
}

pub(crate) fn message(r: &anyhow::Result<()>) -> String {
    r.as_ref()
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default()
}

pub(crate) fn events(w: &World, kind: &str) -> Vec<Value> {
    w.stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == kind)
        .collect()
}

fn script(w: &World, reads: Vec<FakeRead>) {
    w.fake.state.borrow_mut().codedeploy.script_for_new = reads.into();
}

fn created(w: &World) -> Vec<DeploymentRequest> {
    w.fake.state.borrow().codedeploy.created.clone()
}

fn stopped(w: &World) -> Vec<String> {
    w.fake.state.borrow().codedeploy.stopped.clone()
}

/// A deployment as CodeDeploy runs the canary: created, 10% for a while, then all.
fn canary_script() -> Vec<FakeRead> {
    vec![
        FakeRead::at(Status::Created, None),
        FakeRead::at(Status::InProgress, Some(0.0)),
        FakeRead::at(Status::InProgress, Some(0.1)),
        FakeRead::at(Status::InProgress, Some(0.1)),
        FakeRead::at(Status::InProgress, Some(0.1)),
        FakeRead::at(Status::Baking, Some(1.0)),
        FakeRead::at(Status::Succeeded, Some(1.0)),
    ]
}

/// Created, then shifting at 10% for as long as it is read.
pub(crate) fn shifting_at_10() -> Vec<FakeRead> {
    let mut reads = vec![FakeRead::at(Status::InProgress, Some(0.1)); 20];
    reads.insert(0, FakeRead::at(Status::Created, None));
    reads
}

/// live's error alarm goes to ALARM right after the `n`-th alarm read (the pre-flight is 1).
fn alarm_fires_after_read(w: &World, n: usize) {
    w.fake.state.borrow_mut().after_alarm_read.insert(
        n,
        Box::new(|st| st.set_alarm("app-live-lambda-errors", AlarmValue::Alarm)),
    );
}

/// The `action` of every action of a dry run.
fn action_kinds(dry: &Value) -> Vec<String> {
    dry["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_string())
        .collect()
}

fn appspec_of(req: &DeploymentRequest) -> Value {
    serde_json::from_str(&req.appspec).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_canary_creates_one_deployment_and_follows_it_to_success() {
    let w = world();
    script(&w, canary_script());
    let r = run(&w, canary(), opts()).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    let reqs = created(&w);
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(
        (
            req.application.as_str(),
            req.group.as_str(),
            req.config.as_str()
        ),
        ("app", "live", "app-live-canary-10pct-1min")
    );
    let spec = appspec_of(req);
    let props = &spec["Resources"][0]["app"]["Properties"];
    assert_eq!(props["Alias"], "live");
    assert_eq!(
        (&props["CurrentVersion"], &props["TargetVersion"]),
        (&Value::from("1"), &Value::from("2"))
    );
    assert_eq!(spec["Hooks"][0]["BeforeAllowTraffic"], "app-live-pre");
    // Every poll was a progress event with the judge's verdict; the split was seen at 10%.
    let progress = events(&w, "deployment");
    assert!(progress.len() >= 5, "{progress:?}");
    assert!(
        progress.iter().any(|e| e["phase"] == "shifting"
            && e["candidate_weight"] == 10
            && e["verdict"] == "pass"),
        "{progress:?}"
    );
    assert_eq!(events(&w, "plan")[0]["engine"], "codedeploy");
    assert_eq!(events(&w, "deployment_created").len(), 1);
    let done = &events(&w, "done")[0];
    assert_eq!(
        (&done["result"], &done["version"], &done["previous"]),
        (
            &Value::from("completed"),
            &Value::from("2"),
            &Value::from("1")
        )
    );
    // CodeDeploy moved the alias; promote wrote only its note (previous version 1).
    let alias = w.fake.alias("live");
    assert_eq!(alias.view, view(2, None));
    assert!(
        alias.description.contains("previous=1"),
        "{}",
        alias.description
    );
    assert!(stopped(&w).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failing_judge_stops_the_deployment_with_rollback_and_exits_4() {
    let w = world();
    script(&w, shifting_at_10());
    alarm_fires_after_read(&w, 4);
    let r = run(&w, canary(), opts()).await;
    assert_eq!(code(&r), exit::ROLLED_BACK, "{}", message(&r));
    let msg = message(&r);
    assert!(
        msg.contains("app-live-lambda-errors") && msg.contains("taken back"),
        "{msg}"
    );
    assert_eq!(stopped(&w), ["d-FAKE00001"]);
    let stop = &events(&w, "deployment_stopped")[0];
    assert_eq!(stop["deployment_id"], "d-FAKE00001");
    assert_eq!(events(&w, "rolled_back")[0]["version"], "1");
    // CodeDeploy's rollback deployment took the traffic back; the note records why.
    let alias = w.fake.alias("live");
    assert_eq!(alias.view, view(1, None));
    assert!(
        alias.description.contains("rolled_back=2"),
        "{}",
        alias.description
    );
    // The stop was sent with signals held (a critical section, like the alias rollback).
    assert_eq!(w.fake.state.borrow().codedeploy.held_at_stop, [true]);
    let again = run(&w, canary(), opts()).await;
    assert_eq!(
        code(&again),
        exit::REFUSED,
        "a rolled-back version needs --retry"
    );
    assert_eq!(created(&w).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn codedeploys_own_alarm_rollback_is_reported_as_a_rollback() {
    let w = world();
    script(
        &w,
        vec![
            FakeRead::at(Status::InProgress, Some(0.1)),
            FakeRead {
                status: Status::Stopped,
                weight: Some(0.1),
                error: Some((
                    "ALARM_ACTIVE".into(),
                    "One or more alarms have been activated".into(),
                )),
                rollback_deployment_id: Some("d-RB".into()),
            },
        ],
    );
    {
        // CodeDeploy's rollback deployment, read by its id. Its group is not live's so that
        // the stand-in does not list it as in flight before the deployment it rolls back
        // exists (CodeDeploy creates it only then).
        let mut st = w.fake.state.borrow_mut();
        let req = DeploymentRequest {
            application: "app".into(),
            group: "live-rollbacks".into(),
            config: "app-live-canary-10pct-1min".into(),
            appspec: crate::cloud::codedeploy::tests::appspec("2", "1"),
            description: "rollback".into(),
        };
        st.codedeploy.insert(
            "d-RB",
            req,
            vec![
                FakeRead::at(Status::InProgress, None),
                FakeRead::at(Status::Succeeded, Some(1.0)),
            ],
        );
        st.codedeploy
            .deployments
            .get_mut("d-RB")
            .unwrap()
            .rollback_of = Some("d-FAKE00001".into());
    }
    let r = run(&w, canary(), opts()).await;
    assert_eq!(code(&r), exit::ROLLED_BACK, "{}", message(&r));
    let msg = message(&r);
    assert!(
        msg.contains("CodeDeploy rolled back deployment d-FAKE00001: ALARM_ACTIVE")
            && msg.contains("serves version 1 (0.1.0 1111111) only"),
        "{msg}"
    );
    assert!(stopped(&w).is_empty(), "CodeDeploy stopped it, not promote");
    assert!(w.fake.alias("live").description.contains("rolled_back=2"));
}

#[tokio::test(start_paused = true)]
async fn a_deployment_that_fails_without_rollback_is_exit_1_saying_where_the_alias_is() {
    let w = world();
    script(
        &w,
        vec![
            FakeRead::at(Status::InProgress, Some(0.1)),
            FakeRead {
                status: Status::Failed,
                weight: Some(0.1),
                error: Some(("HOOK_FAILED".into(), "BeforeAllowTraffic failed".into())),
                rollback_deployment_id: None,
            },
        ],
    );
    let r = run(&w, canary(), opts()).await;
    assert_eq!(code(&r), exit::ERROR, "{}", message(&r));
    let msg = message(&r);
    assert!(
        msg.contains("HOOK_FAILED: BeforeAllowTraffic failed")
            && msg.contains("promote rollback --stage live"),
        "{msg}"
    );
}

fn in_flight(w: &World, target: &str, reads: Vec<FakeRead>) {
    let req = DeploymentRequest {
        application: "app".into(),
        group: "live".into(),
        config: "app-live-canary-10pct-1min".into(),
        appspec: crate::cloud::codedeploy::tests::appspec("1", target),
        description: "an earlier run".into(),
    };
    w.fake
        .state
        .borrow_mut()
        .codedeploy
        .insert("d-EARLIER", req, reads);
}

#[tokio::test(start_paused = true)]
async fn a_rerun_after_kill_9_follows_the_deployment_in_flight_instead_of_creating_another() {
    let w = world();
    // The earlier run was killed while CodeDeploy held 10% on version 2.
    in_flight(
        &w,
        "2",
        vec![
            FakeRead::at(Status::InProgress, Some(0.1)),
            FakeRead::at(Status::InProgress, Some(0.1)),
            FakeRead::at(Status::Succeeded, Some(1.0)),
        ],
    );
    w.fake.set_alias("live", view(1, Some((2, "10"))));
    let r = run(&w, canary(), opts()).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert!(created(&w).is_empty(), "no second deployment");
    let plan = &events(&w, "plan")[0];
    assert_eq!(plan["deployment_id"], "d-EARLIER");
    assert_eq!(plan["resumed_from"], 10);
    assert_eq!(w.fake.alias("live").view, view(2, None));
    assert!(
        w.stderr()
            .contains("following CodeDeploy deployment d-EARLIER")
    );
}

#[tokio::test(start_paused = true)]
async fn another_deployment_in_flight_for_the_group_is_refused_and_nothing_is_created() {
    let w = world();
    in_flight(&w, "2", vec![FakeRead::at(Status::InProgress, Some(0.1))]);
    let r = run(
        &w,
        Intent::Canary {
            version: Some(ver(3)),
            weight: None,
            allow_downgrade: false,
            retry: false,
        },
        opts(),
    )
    .await;
    assert_eq!(code(&r), exit::REFUSED, "{}", message(&r));
    let msg = message(&r);
    assert!(
        msg.contains("deployment d-EARLIER (version 1 -> 2, InProgress) is already in progress for CodeDeploy group live")
            && msg.contains("promote rollback --stage live"),
        "{msg}"
    );
    assert!(created(&w).is_empty());
}

#[tokio::test(start_paused = true)]
async fn rollback_stops_the_deployment_in_flight_with_automatic_rollback() {
    let w = world();
    in_flight(&w, "2", vec![FakeRead::at(Status::InProgress, Some(0.1))]);
    w.fake.set_alias("live", view(1, Some((2, "10"))));
    let r = run(&w, Intent::Rollback { to_previous: false }, opts()).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert_eq!(stopped(&w), ["d-EARLIER"]);
    assert_eq!(events(&w, "done")[0]["result"], "rolled_back");
    assert_eq!(w.fake.alias("live").view, view(1, None));
    // No deployment in flight: the alias engine's rollback answers (nothing to take back).
    let again = run(&w, Intent::Rollback { to_previous: false }, opts()).await;
    assert_eq!(code(&again), 0, "{}", message(&again));
    assert_eq!(stopped(&w).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_dry_run_prints_the_appspec_and_the_request_and_creates_nothing() {
    let w = world();
    let r = run(
        &w,
        canary(),
        ExecOpts {
            dry_run: true,
            ..opts()
        },
    )
    .await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert!(created(&w).is_empty());
    assert!(w.fake.applied().is_empty());
    let dry = &events(&w, "dry_run")[0];
    assert_eq!(
        dry["request"]["deploymentConfigName"],
        "app-live-canary-10pct-1min"
    );
    assert_eq!(dry["request"]["revision"]["revisionType"], "AppSpecContent");
    assert_eq!(
        dry["appspec"]["Resources"][0]["app"]["Properties"]["TargetVersion"],
        "2"
    );
    // The actions are the decision function's, as on an alias stage: create, follow, the
    // note once it succeeded, done.
    assert_eq!(
        action_kinds(dry),
        ["create_deployment", "follow", "write", "done"]
    );
    assert_eq!(
        dry["actions"][0]["deployment_config"],
        "app-live-canary-10pct-1min"
    );
    assert_eq!(dry["actions"][2]["kind"], "note");
    assert!(
        dry["actions"][2]["description"]
            .as_str()
            .unwrap()
            .contains("previous=1"),
        "{dry}"
    );
    assert!(
        dry.get("follow").is_none() && dry.get("stop").is_none(),
        "{dry}"
    );
}

/// The dry run of a rerun and of a rollback with a deployment in flight: what `simulate`
/// returns, through the same printer, and nothing changed.
#[tokio::test(start_paused = true)]
async fn the_dry_run_with_a_deployment_in_flight_follows_or_stops_it_and_changes_nothing() {
    for (intent, want, field) in [
        (canary(), vec!["follow", "write", "done"], "follow"),
        (
            Intent::Rollback { to_previous: false },
            vec!["stop_deployment", "write", "done"],
            "stop",
        ),
    ] {
        let w = world();
        in_flight(&w, "2", vec![FakeRead::at(Status::InProgress, Some(0.1))]);
        w.fake.set_alias("live", view(1, Some((2, "10"))));
        let before = w.fake.alias("live");
        let r = run(
            &w,
            intent,
            ExecOpts {
                dry_run: true,
                ..opts()
            },
        )
        .await;
        assert_eq!(code(&r), 0, "{}", message(&r));
        let dry = &events(&w, "dry_run")[0];
        assert_eq!(action_kinds(dry), want, "{dry}");
        assert_eq!(dry[field]["deployment_id"], "d-EARLIER", "{dry}");
        assert_eq!(dry["engine"], "codedeploy");
        assert!(dry.get("request").is_none(), "nothing created: {dry}");
        assert!(created(&w).is_empty() && stopped(&w).is_empty());
        assert_eq!(w.fake.alias("live"), before);
    }
}

#[tokio::test(start_paused = true)]
async fn an_alarm_already_firing_refuses_before_any_deployment_exists() {
    let w = world();
    w.fake
        .state
        .borrow_mut()
        .set_alarm("app-live-lambda-errors", AlarmValue::Alarm);
    let r = run(&w, canary(), opts()).await;
    assert_eq!(code(&r), exit::REFUSED, "{}", message(&r));
    assert!(message(&r).contains("no deployment created"));
    assert!(created(&w).is_empty());
}

#[tokio::test(start_paused = true)]
async fn commands_codedeploy_cannot_express_are_bad_input() {
    let w = world();
    for (intent, opts, want) in [
        (
            Intent::Advance { weight: None },
            opts(),
            "advance has no CodeDeploy equivalent",
        ),
        (
            Intent::Complete,
            opts(),
            "complete has no CodeDeploy equivalent",
        ),
        (
            Intent::Canary {
                version: None,
                weight: Some(Weight::parse_percent("25").unwrap()),
                allow_downgrade: false,
                retry: false,
            },
            opts(),
            "--weight cannot be given",
        ),
        (
            canary(),
            ExecOpts {
                bake: Some(Duration::from_secs(60)),
                ..opts()
            },
            "--bake cannot be given",
        ),
    ] {
        let r = run(&w, intent, opts).await;
        assert_eq!(code(&r), exit::BAD_INPUT, "{}", message(&r));
        assert!(message(&r).contains(want), "{}", message(&r));
    }
    assert!(created(&w).is_empty());
}

#[tokio::test(start_paused = true)]
async fn status_shows_the_deployment_in_flight_and_its_traffic() {
    let w = world();
    in_flight(&w, "2", vec![FakeRead::at(Status::InProgress, Some(0.1))]);
    crate::read::status::status(&w.ctx(), Some("live"))
        .await
        .unwrap();
    let row = &events(&w, "stage_status")[0];
    let d = &row["deployment"];
    assert_eq!(
        (&d["deployment_id"], &d["status"], &d["candidate_weight"]),
        (
            &Value::from("d-EARLIER"),
            &Value::from("InProgress"),
            &Value::from(10)
        )
    );
    assert_eq!(
        (&d["current"], &d["target"]),
        (&Value::from("1"), &Value::from("2"))
    );
    let table = World::new(Format::Table);
    let mut t = table;
    t.env = w.env.clone();
    t.fake = w.fake.clone();
    crate::read::status::status(&t.ctx(), Some("live"))
        .await
        .unwrap();
    assert!(
        t.stdout().contains(
            "live: CodeDeploy deployment d-EARLIER (version 1 -> 2, InProgress): shifting: 10% on the target version"
        ),
        "{}",
        t.stdout()
    );
}

#[tokio::test(start_paused = true)]
async fn a_deployment_that_succeeds_as_the_judge_fails_is_reported_with_the_way_back() {
    let w = world();
    script(&w, shifting_at_10());
    // The 3rd alarm read sees the alarm fire, and right after it CodeDeploy finishes the
    // shift: the StopDeployment that follows is refused as too late.
    alarm_fires_after_read(&w, 2);
    {
        let mut st = w.fake.state.borrow_mut();
        st.after_alarm_read.insert(
            3,
            Box::new(|st| {
                let d = st.codedeploy.deployments.get_mut("d-FAKE00001").unwrap();
                d.now = FakeRead::at(Status::Succeeded, Some(1.0));
                d.script.clear();
            }),
        );
    }
    let r = run(&w, canary(), opts()).await;
    assert_eq!(code(&r), exit::ERROR, "{}", message(&r));
    let msg = message(&r);
    assert!(
        msg.contains("succeeded before it could be stopped")
            && msg.contains("promote rollback --stage live --to-previous"),
        "{msg}"
    );
    // The note knows the version before, so that advice works.
    assert_eq!(w.fake.alias("live").view, view(2, None));
    let back = run(&w, Intent::Rollback { to_previous: true }, opts()).await;
    assert_eq!(code(&back), 0, "{}", message(&back));
    assert_eq!(w.fake.alias("live").view, view(1, None));
}

#[tokio::test(start_paused = true)]
async fn deploy_on_an_all_at_once_stage_runs_codedeploys_all_at_once_config() {
    let mut w = world();
    let dev = w.env.stages.iter_mut().find(|s| s.name == "dev").unwrap();
    dev.engine = Engine::CodeDeploy;
    dev.strategy = Strategy::AllAtOnce {
        bake: Duration::ZERO,
    };
    script(
        &w,
        vec![
            FakeRead::at(Status::InProgress, None),
            FakeRead::at(Status::Succeeded, Some(1.0)),
        ],
    );
    let r = commands::execute(
        &w.ctx(),
        "dev",
        Intent::Deploy {
            version: Some(ver(3)),
            allow_downgrade: false,
            retry: false,
        },
        opts(),
    )
    .await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    let reqs = created(&w);
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        (reqs[0].group.as_str(), reqs[0].config.as_str()),
        ("dev", "app-dev-all-at-once")
    );
    let spec = appspec_of(&reqs[0]);
    assert!(spec.get("Hooks").is_none(), "dev names no hooks: {spec}");
    assert_eq!(w.fake.alias("dev").view, view(3, None));
    assert_eq!(events(&w, "done")[0]["result"], "deployed");
}

/// A CodeDeploy stage whose evidence never suffices: the deployment succeeds, the bake
/// (the same `rollout::bake` as the alias engine's) extends past it, then follows
/// `analysis.on_no_evidence`: hold (exit 6, the candidate left serving) or roll back (exit
/// 4, the alias taken back by promote and the version recorded as rolled back).
#[tokio::test(start_paused = true)]
async fn a_codedeploy_stage_without_evidence_after_its_deployment_holds_or_rolls_back_by_policy() {
    use rollout::note::Note;
    use rollout::{OnNoEvidence, SourceKind};
    for (policy, want, alias) in [
        (OnNoEvidence::Hold, exit::HELD, view(2, None)),
        (OnNoEvidence::Rollback, exit::ROLLED_BACK, view(1, None)),
    ] {
        let mut w = world();
        let live = w.env.stages.iter_mut().find(|s| s.name == "live").unwrap();
        // The stand-in answers every metrics read with no datapoints: never enough requests.
        live.analysis.sources = vec![SourceKind::Alarms, SourceKind::Metrics];
        live.analysis.max_extension = Duration::from_secs(30);
        live.analysis.on_no_evidence = policy;
        script(&w, canary_script());
        let r = run(&w, canary(), opts()).await;
        assert_eq!(code(&r), want, "{policy:?}: {}", message(&r));
        assert!(
            message(&r).contains("not enough evidence"),
            "{policy:?}: {}",
            message(&r)
        );
        let end = w.fake.alias("live");
        assert_eq!(end.view, alias, "{policy:?}");
        assert!(
            stopped(&w).is_empty(),
            "the deployment had ended: nothing to stop"
        );
        assert_eq!(created(&w).len(), 1);
        let rolled_back = Note::parse(&end.description)
            .was_rolled_back(ver(2))
            .is_some();
        assert_eq!(
            rolled_back,
            policy == OnNoEvidence::Rollback,
            "{}",
            end.description
        );
    }
}

/// Evidence unreadable while CodeDeploy shifts: by default the deployment is stopped with
/// rollback (exit 4), as CodeDeploy does when it cannot read its alarms; a stage that says
/// "hold" leaves it running in CodeDeploy and exits 6 saying so.
#[tokio::test(start_paused = true)]
async fn a_codedeploy_stage_whose_evidence_cannot_be_read_stops_or_holds_by_policy() {
    use rollout::OnUnreadable;
    for (policy, want, stops) in [
        (OnUnreadable::Rollback, exit::ROLLED_BACK, 1),
        (OnUnreadable::Hold, exit::HELD, 0),
    ] {
        let mut w = world();
        let live = w.env.stages.iter_mut().find(|s| s.name == "live").unwrap();
        live.analysis.on_unreadable = policy;
        script(&w, shifting_at_10());
        w.fake
            .state
            .borrow_mut()
            .after_alarm_read
            .insert(1, Box::new(|st| st.failing_alarm_reads = 100));
        let r = run(&w, canary(), opts()).await;
        assert_eq!(code(&r), want, "{policy:?}: {}", message(&r));
        assert!(
            message(&r).contains("could not be read (3 polls in a row failed"),
            "{policy:?}: {}",
            message(&r)
        );
        assert_eq!(stopped(&w).len(), stops, "{policy:?}");
    }
}

/// Ctrl-C while CodeDeploy shifts: the bake's last look. Failing evidence then stops the
/// deployment with rollback first (exit 4); healthy evidence leaves it running in CodeDeploy
/// (exit 130), as on an alias stage. Before this engine used `rollout::bake`, it left at
/// once without looking.
#[tokio::test(start_paused = true)]
async fn an_interrupt_while_following_gets_the_last_look() {
    for (fires, want, stops) in [(true, exit::ROLLED_BACK, 1), (false, exit::INTERRUPTED, 0)] {
        let w = world();
        script(&w, shifting_at_10());
        let intr = w.fake.interrupt.clone();
        // Read 1 is the pre-flight, read 2 the first poll; the signal arrives after it.
        w.fake.state.borrow_mut().after_alarm_read.insert(
            2,
            Box::new(move |st| {
                if fires {
                    st.set_alarm("app-live-lambda-errors", AlarmValue::Alarm);
                }
                intr.trigger();
            }),
        );
        let r = run(&w, canary(), opts()).await;
        assert_eq!(code(&r), want, "fires {fires}: {}", message(&r));
        assert_eq!(stopped(&w).len(), stops, "fires {fires}");
    }
}

/// Killed after its stop landed: CodeDeploy's rollback deployment runs in the group. A
/// rerun of `canary` must not follow it as a rollout of the version it returns to, and
/// `rollback` must not stop it (that would stop the traffic going back).
#[tokio::test(start_paused = true)]
async fn a_rerun_while_codedeploys_rollback_runs_neither_follows_nor_stops_it() {
    let w = world();
    let req = DeploymentRequest {
        application: "app".into(),
        group: "live".into(),
        config: "app-live-canary-10pct-1min".into(),
        appspec: crate::cloud::codedeploy::tests::appspec("2", "1"),
        description: "rollback".into(),
    };
    {
        let mut st = w.fake.state.borrow_mut();
        st.codedeploy
            .insert("d-RB", req, vec![FakeRead::at(Status::InProgress, None)]);
        st.codedeploy
            .deployments
            .get_mut("d-RB")
            .unwrap()
            .rollback_of = Some("d-EARLIER".into());
    }
    w.fake.set_alias("live", view(1, Some((2, "10"))));
    let r = run(&w, canary(), opts()).await;
    assert_eq!(code(&r), exit::REFUSED, "{}", message(&r));
    assert!(
        message(&r).contains("CodeDeploy's rollback of deployment d-EARLIER"),
        "{}",
        message(&r)
    );
    let back = run(&w, Intent::Rollback { to_previous: false }, opts()).await;
    assert_eq!(code(&back), 0, "{}", message(&back));
    assert_eq!(events(&w, "done")[0]["result"], "noop");
    assert!(created(&w).is_empty() && stopped(&w).is_empty());
}

/// The note is the next run's memory, not the outcome: when it cannot be written after a
/// success (here someone else keeps changing the alias's description, so every write is
/// refused as a conflict), the run says so and still reports the success (exit 0), once.
#[tokio::test(start_paused = true)]
async fn a_note_that_cannot_be_written_is_said_and_the_outcome_stands() {
    let w = world();
    script(&w, canary_script());
    {
        let mut st = w.fake.state.borrow_mut();
        for n in 1..200 {
            st.after_get.insert(
                n,
                Box::new(move |st| {
                    let live = st.aliases.get_mut("live").expect("live");
                    live.description = format!("changed by hand {n}");
                }),
            );
        }
    }
    let r = run(&w, canary(), opts()).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert_eq!(events(&w, "done").len(), 1);
    assert_eq!(events(&w, "done")[0]["result"], "completed");
    let alias = w.fake.alias("live");
    assert_eq!(alias.view, view(2, None));
    assert!(
        alias.description.starts_with("changed by hand"),
        "{}",
        alias.description
    );
    assert!(
        w.stderr()
            .contains("the note on alias live could not be written"),
        "{}",
        w.stderr()
    );
}
