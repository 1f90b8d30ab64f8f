//! The path-to-live guard wired into both engines, against the in-memory stand-in: a version
//! the upstream stage never served is refused with exit 3 and nothing written, on deploy
//! and canary (the alias engine) and on the CodeDeploy engine; `--skip-upstream --reason`
//! lets it in and is recorded on the alias note, in the event stream and by `status`; an
//! override without a reason is exit 2. advance and complete act on the candidate in flight:
//! the guard runs on it too (a split nobody let in is refused), with no override of their own.

use std::time::Duration;

use rollout::codedeploy::{Engine, Status};
use rollout::config::Step;
use rollout::machine::Intent;
use rollout::note::Note;
use rollout::{Strategy, Weight};
use serde_json::Value;

use crate::cli::exit;
use crate::cli::ui::Format;
use crate::cloud::codedeploy::FakeRead;
use crate::cloud::fake::{World, pct, ver, view};
use crate::reconcile::commands::{self, AdvanceOpts, CanaryOpts, DeployOpts, ExecOpts};

/// A world where test serves version 1 and its note records nothing else: test has never
/// served versions 2 and 3.
fn test_served_only_1() -> World {
    let w = World::new(Format::Json);
    w.fake
        .state
        .borrow_mut()
        .aliases
        .get_mut("test")
        .unwrap()
        .description = "promote/v1 served=1".into();
    w
}

fn canary_live(version: u64, skip: Option<&str>) -> CanaryOpts {
    CanaryOpts {
        stage: "live".into(),
        version: Some(ver(version)),
        weight: Some(pct("10")),
        bake: Some(Duration::ZERO),
        poll: Some(Duration::from_millis(20)),
        allow_downgrade: false,
        retry: false,
        skip_upstream: skip.map(str::to_string),
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

fn events(w: &World, kind: &str) -> Vec<Value> {
    w.stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == kind)
        .collect()
}

#[tokio::test]
async fn canary_and_deploy_refuse_a_version_the_upstream_never_served_writing_nothing() {
    let w = test_served_only_1();
    let r = commands::canary(&w.ctx(), canary_live(2, None)).await;
    assert_eq!(code(&r), exit::REFUSED, "{}", message(&r));
    assert!(
        message(&r).contains("test has not served it at 100%"),
        "{}",
        message(&r)
    );
    assert!(w.fake.updates().is_empty());

    // deploy on test (all at once): dev has served only 1 in this world.
    w.fake
        .state
        .borrow_mut()
        .aliases
        .get_mut("dev")
        .unwrap()
        .description = "stage dev".into();
    let deploy = DeployOpts {
        stage: "test".into(),
        version: Some(ver(3)),
        allow_downgrade: false,
        retry: false,
        skip_upstream: None,
        bake: Some(Duration::ZERO),
        poll: None,
        dry_run: false,
        evidence: Default::default(),
    };
    let r = commands::deploy(&w.ctx(), deploy).await;
    assert_eq!(code(&r), exit::REFUSED, "{}", message(&r));
    assert!(w.fake.updates().is_empty());
    // Once test has served 2, the same canary goes ahead.
    w.fake.set_alias("test", view(2, None));
    let r = commands::canary(&w.ctx(), canary_live(2, None)).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert_eq!(w.fake.alias("live").view, view(1, Some((2, "10"))));
}

#[tokio::test]
async fn an_override_is_recorded_on_the_note_in_the_events_and_by_status() {
    let w = test_served_only_1();
    let reason = "CVE-2026-0001: test is down";
    let r = commands::canary(&w.ctx(), canary_live(2, Some(reason))).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    let note = Note::parse(&w.fake.alias("live").description);
    let skip = note
        .upstream_skip
        .expect("the override is on the alias note");
    assert_eq!((skip.version, skip.reason.as_str()), (ver(2), reason));
    let plan = &events(&w, "plan")[0];
    assert_eq!(plan["upstream_skip"]["version"], "2");
    assert_eq!(plan["upstream_skip"]["upstream"], "test");
    assert_eq!(plan["upstream_skip"]["reason"], reason);
    assert!(
        w.stderr().contains("has not served 100% of test"),
        "{}",
        w.stderr()
    );
    crate::read::status::status(&w.ctx(), Some("live"))
        .await
        .unwrap();
    let live = events(&w, "stage_status")
        .into_iter()
        .find(|e| e["stage"] == "live")
        .unwrap();
    assert_eq!(live["upstream_skip"]["reason"], reason);

    // advance acts on the candidate the override let in, without asking again.
    let adv = AdvanceOpts {
        stage: "live".into(),
        weight: Some(pct("50")),
        bake: Some(Duration::ZERO),
        poll: None,
        dry_run: false,
        evidence: Default::default(),
    };
    let r = commands::advance(&w.ctx(), adv).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert_eq!(w.fake.alias("live").view, view(1, Some((2, "50"))));
    let still = Note::parse(&w.fake.alias("live").description).upstream_skip;
    assert_eq!(still.map(|k| k.version), Some(ver(2)));
}

#[tokio::test]
async fn an_override_without_a_reason_is_bad_input_and_writes_nothing() {
    let w = test_served_only_1();
    for reason in ["", "   "] {
        let r = commands::canary(&w.ctx(), canary_live(2, Some(reason))).await;
        assert_eq!(code(&r), exit::BAD_INPUT, "{}", message(&r));
        assert!(message(&r).contains("reason is empty"), "{}", message(&r));
    }
    // dev has no upstream: an override there is a mistake, said as such.
    let r = commands::deploy(
        &w.ctx(),
        DeployOpts {
            stage: "dev".into(),
            version: Some(ver(2)),
            allow_downgrade: false,
            retry: false,
            skip_upstream: Some("why".into()),
            bake: Some(Duration::ZERO),
            poll: None,
            dry_run: false,
            evidence: Default::default(),
        },
    )
    .await;
    assert_eq!(code(&r), exit::BAD_INPUT, "{}", message(&r));
    assert!(w.fake.updates().is_empty());
}

#[tokio::test]
async fn advance_and_complete_refuse_a_split_nobody_let_in() {
    let w = test_served_only_1();
    // Someone with the live role made this split by hand: no step mark, no override.
    w.fake.set_alias("live", view(1, Some((3, "10"))));
    let adv = AdvanceOpts {
        stage: "live".into(),
        weight: None,
        bake: Some(Duration::ZERO),
        poll: None,
        dry_run: false,
        evidence: Default::default(),
    };
    let r = commands::advance(&w.ctx(), adv).await;
    assert_eq!(code(&r), exit::REFUSED, "{}", message(&r));
    let r = commands::complete(&w.ctx(), "live", false).await;
    assert_eq!(code(&r), exit::REFUSED, "{}", message(&r));
    assert!(w.fake.updates().is_empty());
    // Rollback is never guarded.
    let r = commands::rollback(&w.ctx(), "live", false, false).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert_eq!(w.fake.alias("live").view, view(1, None));
}

/// live on the CodeDeploy engine: 10% for a minute, then all.
fn codedeploy_live(w: &mut World) {
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
}

fn canary_intent(version: u64) -> Intent {
    Intent::Canary {
        version: Some(ver(version)),
        weight: None,
        allow_downgrade: false,
        retry: false,
    }
}

#[tokio::test(start_paused = true)]
async fn the_codedeploy_engine_refuses_before_creating_a_deployment_and_records_an_override() {
    let mut w = test_served_only_1();
    codedeploy_live(&mut w);
    let opts = ExecOpts {
        poll: Some(Duration::from_secs(5)),
        ..ExecOpts::default()
    };
    let r = commands::execute(&w.ctx(), "live", canary_intent(2), opts.clone()).await;
    assert_eq!(code(&r), exit::REFUSED, "{}", message(&r));
    assert!(w.fake.state.borrow().codedeploy.created.is_empty());
    assert!(w.fake.updates().is_empty());

    w.fake.state.borrow_mut().codedeploy.script_for_new = vec![
        FakeRead::at(Status::Created, None),
        FakeRead::at(Status::InProgress, Some(0.1)),
        FakeRead::at(Status::Baking, Some(1.0)),
        FakeRead::at(Status::Succeeded, Some(1.0)),
    ]
    .into();
    let skip = ExecOpts {
        skip_upstream: Some("hotfix while test is rebuilt".into()),
        ..opts
    };
    let r = commands::execute(&w.ctx(), "live", canary_intent(2), skip).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert_eq!(w.fake.state.borrow().codedeploy.created.len(), 1);
    // Recorded before CodeDeploy started, and kept by the note of its success.
    let note = Note::parse(&w.fake.alias("live").description);
    assert_eq!(
        note.upstream_skip.map(|k| (k.version, k.reason)),
        Some((ver(2), "hotfix while test is rebuilt".to_string()))
    );
    assert_eq!(note.served, [ver(2)]);
    assert_eq!(events(&w, "plan")[0]["upstream_skip"]["version"], "2");
}
