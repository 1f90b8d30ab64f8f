//! A release of app and birthday on a stage CodeDeploy shifts, against the in-memory
//! stand-in, in virtual time (`start_paused`).
//!
//! moto creates and lists deployments but never progresses one and has no StopDeployment,
//! so what a release does while its deployments run (following both, a failure of one
//! stopping the other, the rerun after `kill -9`) is driven here: each function has its own
//! stand-in (its own CodeDeploy application and alias), scripted a state per
//! GetDeployment. `tests/it/release.rs` covers what moto can show (the deployments created).

use std::collections::BTreeMap;
use std::time::Duration;

use rollout::codedeploy::{Engine, Status};
use rollout::config::Step;
use rollout::machine::Intent;
use rollout::plan::AlarmValue;
use rollout::{Strategy, Weight};

use crate::cli::exit;
use crate::cli::ui::Format;
use crate::cloud::codedeploy::{DeploymentRequest, FakeRead};
use crate::cloud::fake::{Fake, World, view};
use crate::ctx::Ctx;
use crate::reconcile::cd_engine::tests::{canary, code, events, message, opts, shifting_at_10};
use crate::reconcile::commands::ExecOpts;
use crate::reconcile::release::execute_release;

/// live on CodeDeploy (10% for a minute, then 100%); app's stand-in is the world's,
/// birthday's its own (sharing the interrupt, as one process does); test serves version 2
/// of both.
fn world() -> (World, Fake) {
    let mut w = World::new(Format::Json);
    let live = w.env.stages.iter_mut().find(|s| s.name == "live").unwrap();
    live.engine = Engine::CodeDeploy;
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
    let mut birthday = Fake::seeded(&w.env);
    birthday.interrupt = w.fake.interrupt.clone();
    for f in [&w.fake, &birthday] {
        f.set_alias("test", view(2, None));
    }
    (w, birthday)
}

async fn release(w: &World, birthday: &Fake, opts: ExecOpts) -> anyhow::Result<()> {
    let ctxs = [
        w.ctx(),
        Ctx {
            cloud: birthday,
            function: "birthday",
            ..w.ctx()
        },
    ];
    execute_release(&ctxs, "live", canary(), &BTreeMap::new(), opts).await
}

fn script(f: &Fake, reads: Vec<FakeRead>) {
    f.state.borrow_mut().codedeploy.script_for_new = reads.into();
}

fn created(f: &Fake) -> Vec<DeploymentRequest> {
    f.state.borrow().codedeploy.created.clone()
}

fn stopped(f: &Fake) -> Vec<String> {
    f.state.borrow().codedeploy.stopped.clone()
}

/// Created, 10% for a while, then all.
fn succeeds() -> Vec<FakeRead> {
    vec![
        FakeRead::at(Status::Created, None),
        FakeRead::at(Status::InProgress, Some(0.1)),
        FakeRead::at(Status::InProgress, Some(0.1)),
        FakeRead::at(Status::InProgress, Some(0.1)),
        FakeRead::at(Status::Baking, Some(1.0)),
        FakeRead::at(Status::Succeeded, Some(1.0)),
    ]
}

#[tokio::test(start_paused = true)]
async fn a_release_creates_one_deployment_per_function_and_follows_both_to_success() {
    let (w, birthday) = world();
    script(&w.fake, succeeds());
    script(&birthday, succeeds());
    let r = release(&w, &birthday, opts()).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    // Each function's own application, the stage's group, the function's config.
    for (f, fake) in [("app", &w.fake), ("birthday", &birthday)] {
        let reqs = created(fake);
        assert_eq!(reqs.len(), 1, "{f}");
        assert_eq!(
            (
                reqs[0].application.as_str(),
                reqs[0].group.as_str(),
                reqs[0].config.clone()
            ),
            (f, "live", format!("{f}-live-canary-10pct-1min"))
        );
        let alias = fake.alias("live");
        assert_eq!(alias.view, view(2, None), "{f}");
        assert!(
            alias.description.contains("release=app:2,birthday:2"),
            "{f}: {}",
            alias.description
        );
        assert!(stopped(fake).is_empty());
    }
    // Both were created before either was followed: the progress of both deployments
    // comes after both creations.
    let out = w.stdout();
    let second_create = out.rfind("\"deployment_created\"").unwrap();
    let first_progress = out.find("\"event\":\"deployment\"").unwrap();
    assert!(second_create < first_progress, "{out}");
}

#[tokio::test(start_paused = true)]
async fn birthdays_alarm_stops_both_deployments_and_takes_both_back_with_exit_4() {
    let (w, birthday) = world();
    script(&w.fake, shifting_at_10());
    script(&birthday, shifting_at_10());
    birthday.state.borrow_mut().after_alarm_read.insert(
        3,
        Box::new(|st| st.set_alarm("app-live-lambda-errors-birthday", AlarmValue::Alarm)),
    );
    let r = release(&w, &birthday, opts()).await;
    assert_eq!(code(&r), exit::ROLLED_BACK, "{}", message(&r));
    let msg = message(&r);
    assert!(
        msg.contains("function birthday:") && msg.contains("every function of the release"),
        "{msg}"
    );
    for (f, fake) in [("app", &w.fake), ("birthday", &birthday)] {
        assert_eq!(stopped(fake), ["d-FAKE00001"], "{f} stopped with rollback");
        let alias = fake.alias("live");
        assert_eq!(alias.view, view(1, None), "{f} back on version 1");
        assert!(
            alias.description.contains("rolled_back=2"),
            "{f}: {}",
            alias.description
        );
    }
    // Every stop was sent with signals held: it is the release's rollback.
    assert_eq!(w.fake.state.borrow().codedeploy.held_at_stop, [true]);
    assert_eq!(birthday.state.borrow().codedeploy.held_at_stop, [true]);
    assert_eq!(events(&w, "rolled_back").len(), 2);
    // The rerun refuses the rolled-back release and creates nothing more.
    let again = release(&w, &birthday, opts()).await;
    assert_eq!(code(&again), exit::REFUSED, "{}", message(&again));
    assert_eq!(created(&w.fake).len() + created(&birthday).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn codedeploy_rolling_one_function_back_stops_the_other() {
    let (w, birthday) = world();
    script(&w.fake, shifting_at_10());
    // birthday's deployment: CodeDeploy rolls it back on its group's alarm, with a rollback
    // deployment that takes the traffic back.
    script(
        &birthday,
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
        let mut st = birthday.state.borrow_mut();
        let req = DeploymentRequest {
            application: "birthday".into(),
            group: "live-rollbacks".into(),
            config: "birthday-live-canary-10pct-1min".into(),
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
    let r = release(&w, &birthday, opts()).await;
    assert_eq!(code(&r), exit::ROLLED_BACK, "{}", message(&r));
    assert!(
        message(&r).contains("function birthday: CodeDeploy rolled back deployment"),
        "{}",
        message(&r)
    );
    assert_eq!(
        stopped(&w.fake),
        ["d-FAKE00001"],
        "app is stopped by promote"
    );
    assert!(
        stopped(&birthday).is_empty(),
        "CodeDeploy stopped birthday's"
    );
    assert_eq!(w.fake.alias("live").view, view(1, None));
}

#[tokio::test(start_paused = true)]
async fn a_rerun_after_kill_9_follows_the_deployment_in_flight_and_creates_only_the_missing_one() {
    let (w, birthday) = world();
    // The earlier run created app's deployment, then was killed before birthday's.
    let req = DeploymentRequest {
        application: "app".into(),
        group: "live".into(),
        config: "app-live-canary-10pct-1min".into(),
        appspec: crate::cloud::codedeploy::tests::appspec("1", "2"),
        description: "an earlier run".into(),
    };
    w.fake
        .state
        .borrow_mut()
        .codedeploy
        .insert("d-EARLIER", req, succeeds());
    script(&birthday, succeeds());
    let r = release(&w, &birthday, opts()).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert!(created(&w.fake).is_empty(), "app's deployment is followed");
    assert_eq!(created(&birthday).len(), 1);
    for fake in [&w.fake, &birthday] {
        assert_eq!(fake.alias("live").view, view(2, None));
    }
}

#[tokio::test(start_paused = true)]
async fn the_dry_run_prints_every_deployment_it_would_create_and_creates_none() {
    let (w, birthday) = world();
    let r = release(
        &w,
        &birthday,
        ExecOpts {
            dry_run: true,
            ..opts()
        },
    )
    .await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert!(created(&w.fake).is_empty() && created(&birthday).is_empty());
    let err = w.stderr();
    for f in ["app", "birthday"] {
        assert!(
            err.contains(&format!(
                "function {f}: CreateDeployment in CodeDeploy application {f} group live with deployment configuration {f}-live-canary-10pct-1min"
            )),
            "{err}"
        );
    }
    assert!(
        err.contains("follow the deployments of app, birthday side by side"),
        "{err}"
    );
    let dry = events(&w, "dry_run");
    assert_eq!(dry.len(), 2);
    for d in &dry {
        assert_eq!(d["engine"], "codedeploy");
        assert_eq!(d["request"]["revision"]["revisionType"], "AppSpecContent");
    }
}

#[tokio::test(start_paused = true)]
async fn rollback_stops_every_functions_deployment_in_flight_together() {
    let (w, birthday) = world();
    // An earlier run left both deployments shifting at 10% (killed, its runner lost).
    for (f, fake) in [("app", &w.fake), ("birthday", &birthday)] {
        let req = DeploymentRequest {
            application: f.into(),
            group: "live".into(),
            config: format!("{f}-live-canary-10pct-1min"),
            appspec: crate::cloud::codedeploy::tests::appspec("1", "2")
                .replace("\"app\"", &format!("\"{f}\"")),
            description: "an earlier run".into(),
        };
        fake.state
            .borrow_mut()
            .codedeploy
            .insert("d-EARLIER", req, shifting_at_10());
        fake.set_alias("live", view(1, Some((2, "10"))));
    }
    let ctxs = [
        w.ctx(),
        Ctx {
            cloud: &birthday,
            function: "birthday",
            ..w.ctx()
        },
    ];
    let r = execute_release(
        &ctxs,
        "live",
        Intent::Rollback { to_previous: false },
        &BTreeMap::new(),
        opts(),
    )
    .await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    for (f, fake) in [("app", &w.fake), ("birthday", &birthday)] {
        assert_eq!(stopped(fake), ["d-EARLIER"], "{f}");
        assert_eq!(fake.state.borrow().codedeploy.held_at_stop, [true], "{f}");
        let alias = fake.alias("live");
        assert_eq!(alias.view, view(1, None), "{f}");
        assert!(
            alias.description.contains("rolled_back=2"),
            "{f}: {}",
            alias.description
        );
    }
    assert!(created(&w.fake).is_empty() && created(&birthday).is_empty());
}
