//! Command behaviour against the in-memory [`Fake`](crate::cloud::fake::Fake): what each command
//! writes, in how many calls, with which RevisionId, and which exit code it ends with.
//! The RevisionId conflict cases are here because moto does not check RevisionIds.

use std::time::Duration;

use rollout::plan::AlarmValue;
use rollout::{Environments, OnUnreadable};

use crate::cli::exit;
use crate::cli::ui::Format;
use crate::cloud::aws::AliasWrite;
use crate::cloud::fake::{Fake, World, pct, ver, view};
use crate::reconcile::commands::{self, AdvanceOpts, CanaryOpts, DeployOpts};

const BAKE: Duration = Duration::from_millis(300);
const POLL: Duration = Duration::from_millis(20);

fn canary_opts(version: Option<u64>, weight: Option<&str>) -> CanaryOpts {
    CanaryOpts {
        stage: "live".into(),
        version: version.map(ver),
        weight: weight.map(pct),
        bake: Some(BAKE),
        poll: Some(POLL),
        allow_downgrade: false,
        retry: false,
        skip_upstream: None,
        dry_run: false,
        evidence: Default::default(),
    }
}

fn code(r: &anyhow::Result<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => exit::code_of(e),
    }
}

fn message(r: &anyhow::Result<()>) -> String {
    r.as_ref()
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default()
}

#[tokio::test]
async fn a_split_is_one_update_carrying_the_revision_id_just_read() {
    let w = World::new(Format::Table);
    let before = w.fake.alias("live");
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    let updates = w.fake.updates();
    assert_eq!(updates.len(), 1, "{updates:?}");
    let (alias, write, rev) = &updates[0];
    assert_eq!(alias, "live");
    assert_eq!(
        rev, &before.revision_id,
        "the write must carry the RevisionId read before it"
    );
    assert_eq!(
        write,
        &AliasWrite {
            version: ver(1),
            split: view(1, Some((2, "10"))).split,
            description: Some("promote/v1 step=2@10 baked=no".into())
        }
    );
    assert_eq!(w.fake.alias("live").view, view(1, Some((2, "10"))));
    assert!(
        w.stdout().contains("takes 10% of traffic"),
        "{}",
        w.stdout()
    );
}

#[tokio::test]
async fn an_alias_moved_by_someone_else_before_the_write_stops_with_exit_5_and_no_write() {
    let w = World::new(Format::Table);
    // Our first read of the alias is the decision; right after it another writer moves it.
    w.fake.state.borrow_mut().after_get.insert(
        1,
        Box::new(|st| {
            let v = view(3, None);
            st.tamper("live", v);
        }),
    );
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await;
    assert_eq!(code(&r), exit::CONFLICT, "{}", message(&r));
    assert!(
        message(&r).contains("changed by someone else"),
        "{}",
        message(&r)
    );
    assert!(
        w.fake.updates().is_empty(),
        "no write may follow a detected change"
    );
    assert_eq!(
        w.fake.alias("live").view,
        view(3, None),
        "the other writer's state is kept"
    );
}

#[tokio::test]
async fn a_stale_revision_id_with_the_alias_as_we_left_it_is_retried_not_blamed_on_anyone() {
    let w = World::new(Format::Table);
    w.fake.state.borrow_mut().fail_next_update_with_conflict = true;
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert_eq!(w.fake.updates().len(), 2, "one rejected write, one retried");
    assert_eq!(w.fake.alias("live").view, view(1, Some((2, "10"))));
    assert!(!w.stderr().contains("someone else"), "{}", w.stderr());
}

#[tokio::test]
async fn a_write_whose_answer_was_lost_is_found_applied_and_not_repeated() {
    let w = World::new(Format::Table);
    w.fake.state.borrow_mut().drop_next_update_response = true;
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert_eq!(
        w.fake.updates().len(),
        1,
        "the re-read shows the write applied: no second UpdateAlias"
    );
    assert_eq!(w.fake.alias("live").view, view(1, Some((2, "10"))));
    assert!(!w.stderr().contains("someone else"), "{}", w.stderr());
}

#[tokio::test]
async fn a_foreign_write_between_our_attempts_is_exit_5_and_nothing_further() {
    let w = World::new(Format::Table);
    // Another writer acts between our pre-write read and our write: Lambda rejects our
    // stale RevisionId, and the re-read shows their state, not ours.
    w.fake
        .state
        .borrow_mut()
        .after_get
        // Reads: the stage's alias, the upstream's (the path-to-live guard), then ours again.
        .insert(3, Box::new(foreign_write));
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), None)).await;
    assert_eq!(code(&r), exit::CONFLICT, "{}", message(&r));
    assert_eq!(
        w.fake.updates().len(),
        1,
        "the plan must stop after the rejected write"
    );
    let m = message(&r);
    assert!(
        m.contains("changed by someone else") && m.contains("now version 3"),
        "{m}"
    );
}

#[tokio::test]
async fn an_alias_moved_during_the_bake_stops_without_rolling_back() {
    let w = World::new(Format::Table);
    // Reads: 1 decision, 2 pre-write check; 3.. bake polls. Someone completes by hand mid-bake.
    w.fake.state.borrow_mut().after_alarm_read.insert(
        3,
        Box::new(|st| {
            let v = view(2, None);
            st.tamper("live", v);
        }),
    );
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await;
    assert_eq!(code(&r), exit::CONFLICT, "{}", message(&r));
    assert_eq!(
        w.fake.updates().len(),
        1,
        "only our shift; no rollback over someone else's change"
    );
    assert_eq!(w.fake.alias("live").view, view(2, None));
}

#[tokio::test]
async fn an_alarm_during_the_bake_clears_the_routing_in_one_call_and_exits_4() {
    let w = World::new(Format::Json);
    let alarm = w.env.stage("live").unwrap().alarms[1].name.clone();
    // Preflight read, then two healthy polls, then the alarm fires.
    w.fake.state.borrow_mut().alarm_script = [
        vec![],
        vec![],
        vec![],
        vec![(alarm.clone(), AlarmValue::Alarm)],
    ]
    .into_iter()
    .collect();
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), None)).await;
    assert_eq!(code(&r), exit::ROLLED_BACK, "{}", message(&r));
    let updates = w.fake.updates();
    assert_eq!(
        updates.len(),
        2,
        "the shift and exactly one rollback: {updates:?}"
    );
    assert_eq!(
        updates[1].1,
        AliasWrite {
            version: ver(1),
            split: None,
            description: Some(
                "promote/v1 rolled_back=2 why=alarm app-live-lambda-throttles is ALARM (Threshold Crossed: app-live-lambda-throttles test datapoint)".into()
            )
        }
    );
    assert_eq!(w.fake.alias("live").view, view(1, None));
    let msg = message(&r);
    assert!(
        msg.contains(&alarm) && msg.contains("Threshold Crossed"),
        "names the alarm and its reason: {msg}"
    );
    let events: Vec<serde_json::Value> = w
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rolled = events
        .iter()
        .find(|e| e["event"] == "rolled_back")
        .expect("rolled_back event");
    assert!(
        rolled["reason"].as_str().unwrap().contains(alarm.as_str()),
        "{rolled}"
    );
    assert_eq!(rolled["version"], "1");
}

#[tokio::test]
async fn an_alarm_after_completion_returns_the_alias_to_the_previous_version() {
    let w = World::new(Format::Table);
    let alarm = w.env.stage("live").unwrap().alarms[0].name.clone();
    let mut opts = canary_opts(Some(2), None);
    opts.bake = Some(Duration::from_millis(60));
    // The alarm fires once the alias serves the candidate alone (the bake of the 100% step).
    for i in 1..500 {
        let alarm = alarm.clone();
        w.fake.state.borrow_mut().after_alarm_read.insert(
            i,
            Box::new(move |st| {
                if st.aliases["live"].view == view(2, None) {
                    st.set_alarm(&alarm, AlarmValue::Alarm);
                }
            }),
        );
    }
    let r = commands::canary(&w.ctx(), opts).await;
    assert_eq!(code(&r), exit::ROLLED_BACK, "{}", message(&r));
    let live = w.fake.alias("live");
    assert_eq!(live.view, view(1, None));
    let note = rollout::note::Note::parse(&live.description);
    assert_eq!(
        note.rolled_back.map(|r| r.version),
        Some(ver(2)),
        "records the version rolled back"
    );
    assert_ne!(
        note.previous,
        Some(ver(2)),
        "--to-previous must never return to the version that just failed"
    );
}

#[tokio::test]
async fn an_alarm_already_in_alarm_refuses_with_exit_3_and_no_write() {
    let w = World::new(Format::Table);
    let alarm = w.env.stage("live").unwrap().alarms[2].name.clone();
    w.fake
        .state
        .borrow_mut()
        .set_alarm(&alarm, AlarmValue::Alarm);
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await;
    assert_eq!(code(&r), exit::REFUSED, "{}", message(&r));
    assert!(message(&r).contains(&alarm), "{}", message(&r));
    assert!(w.fake.updates().is_empty());
}

#[tokio::test]
async fn a_configured_alarm_missing_from_cloudwatch_refuses() {
    let w = World::new(Format::Table);
    let gone = w.env.stage("live").unwrap().alarms[3].name.clone();
    w.fake.state.borrow_mut().alarms.retain(|a| a.name != gone);
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await;
    assert_eq!(code(&r), exit::REFUSED, "{}", message(&r));
    assert!(
        message(&r).contains(&gone) && message(&r).contains("do not exist"),
        "{}",
        message(&r)
    );
    assert!(w.fake.updates().is_empty());
}

#[tokio::test]
async fn insufficient_data_fails_only_when_the_stage_says_so() {
    let mut w = World::new(Format::Table);
    let names: Vec<String> = w.env.stage("live").unwrap().alarm_names();
    for n in &names {
        w.fake
            .state
            .borrow_mut()
            .set_alarm(n, AlarmValue::InsufficientData);
    }
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await;
    assert_eq!(code(&r), 0, "{}", message(&r));

    w.fake.set_alias("live", view(1, None));
    let live = w.env.stages.iter_mut().find(|s| s.name == "live").unwrap();
    live.insufficient_data_is_failure = true;
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await;
    assert_eq!(code(&r), exit::REFUSED, "{}", message(&r));
    assert!(message(&r).contains("INSUFFICIENT_DATA"), "{}", message(&r));
}

#[tokio::test]
async fn a_rerun_resumes_from_the_current_weight() {
    let w = World::new(Format::Table);
    w.fake.set_alias("live", view(1, Some((2, "10"))));
    let mut opts = canary_opts(None, None);
    opts.bake = Some(Duration::ZERO);
    let r = commands::canary(&w.ctx(), opts).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    let writes: Vec<AliasWrite> = w.fake.updates().into_iter().map(|u| u.1).collect();
    assert_eq!(
        writes,
        vec![
            AliasWrite {
                version: ver(1),
                split: view(1, Some((2, "50"))).split,
                description: Some("promote/v1 step=2@50 baked=yes".into())
            },
            AliasWrite {
                version: ver(2),
                split: None,
                description: Some("promote/v1 previous=1 step=2@100 baked=yes served=2".into())
            },
        ],
        "no write back to 0 or to 10%; 50% before 100%"
    );
    assert!(
        w.stderr().contains("resuming the rollout of version 2"),
        "{}",
        w.stderr()
    );
}

#[tokio::test]
async fn ctrl_c_during_the_bake_leaves_the_split_and_says_how_to_resume() {
    let w = World::new(Format::Table);
    let intr = w.fake.interrupt.clone();
    w.fake
        .state
        .borrow_mut()
        .after_alarm_read
        .insert(3, Box::new(move |_| intr.trigger()));
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), None)).await;
    assert_eq!(code(&r), exit::INTERRUPTED, "{}", message(&r));
    let msg = message(&r);
    assert!(
        msg.contains("promote canary --stage live")
            && msg.contains("promote rollback --stage live"),
        "{msg}"
    );
    assert_eq!(
        w.fake.alias("live").view,
        view(1, Some((2, "10"))),
        "the split stays"
    );
    assert_eq!(w.fake.updates().len(), 1);
}

#[tokio::test]
async fn a_signal_with_a_failing_alarm_waits_for_the_rollback_and_exits_4() {
    let w = World::new(Format::Table);
    let alarm = w.env.stage("live").unwrap().alarms[0].name.clone();
    let intr = w.fake.interrupt.clone();
    // The alarm fires and Ctrl-C arrives at the same poll (read 3: the first bake poll).
    w.fake.state.borrow_mut().after_alarm_read.insert(
        3,
        Box::new(move |st| {
            st.set_alarm(&alarm, AlarmValue::Alarm);
            intr.trigger();
        }),
    );
    // The hook runs after the read it follows; the fourth read sees the alarm.
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), None)).await;
    let msg = message(&r);
    assert_eq!(code(&r), exit::ROLLED_BACK, "{msg}");
    assert_eq!(w.fake.alias("live").view, view(1, None), "taken back");
    assert!(
        msg.contains("the rollback was completed first"),
        "says the interrupt waited: {msg}"
    );
    let held = w.fake.state.borrow().held_at_update.clone();
    assert_eq!(
        held,
        [false, true],
        "only the rollback write is a critical section"
    );
    assert!(
        !w.fake.interrupt.is_holding(),
        "released after the rollback"
    );
}

#[tokio::test]
async fn downgrades_and_unknown_semvers_need_allow_downgrade() {
    let w = World::new(Format::Table);
    w.fake.set_alias("live", view(3, None));
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await;
    assert_eq!(code(&r), exit::REFUSED);
    assert!(message(&r).contains("--allow-downgrade"));

    w.fake.set_alias("live", view(1, None));
    w.fake.state.borrow_mut().versions[1].description = "hand-built".into();
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await;
    assert_eq!(code(&r), exit::REFUSED);
    assert!(
        message(&r).contains("unknown") && message(&r).contains("hand-built"),
        "{}",
        message(&r)
    );
    let mut opts = canary_opts(Some(2), Some("10"));
    opts.allow_downgrade = true;
    assert_eq!(code(&commands::canary(&w.ctx(), opts).await), 0);
}

#[tokio::test]
async fn unknown_versions_are_bad_input_before_any_write() {
    let w = World::new(Format::Table);
    let r = commands::canary(&w.ctx(), canary_opts(Some(99), Some("10"))).await;
    assert_eq!(code(&r), exit::BAD_INPUT);
    assert!(
        message(&r).contains("version 99 is not a published version"),
        "{}",
        message(&r)
    );
    let r = commands::deploy(
        &w.ctx(),
        DeployOpts {
            stage: "dev".into(),
            version: Some(ver(7)),
            allow_downgrade: false,
            retry: false,
            skip_upstream: None,
            bake: None,
            poll: None,
            dry_run: false,
            evidence: Default::default(),
        },
    )
    .await;
    assert_eq!(code(&r), exit::BAD_INPUT);
    assert!(w.fake.updates().is_empty());
}

#[tokio::test]
async fn deploy_records_the_previous_version_and_rollback_to_previous_uses_it() {
    let w = World::new(Format::Table);
    let r = commands::deploy(
        &w.ctx(),
        DeployOpts {
            stage: "dev".into(),
            version: Some(ver(3)),
            allow_downgrade: false,
            retry: false,
            skip_upstream: None,
            bake: None,
            poll: None,
            dry_run: false,
            evidence: Default::default(),
        },
    )
    .await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    let dev = w.fake.alias("dev");
    assert_eq!(dev.view, view(3, None));
    assert_eq!(
        dev.description,
        "promote/v1 previous=1 step=3@100 baked=yes served=2,1,3"
    );

    let r = commands::rollback(&w.ctx(), "dev", true, false).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    let dev = w.fake.alias("dev");
    assert_eq!(dev.view, view(1, None));
    assert_eq!(
        dev.description,
        "promote/v1 served=2,1 rolled_back=3 why=rolled back by `promote rollback --to-previous`",
        "the version left is recorded as rolled back, and no previous is guessed"
    );
    // A second --to-previous has nowhere to go, and says how to move explicitly.
    let r = commands::rollback(&w.ctx(), "dev", true, false).await;
    assert_eq!(code(&r), exit::BAD_INPUT, "{}", message(&r));
    assert!(message(&r).contains("--version N"), "{}", message(&r));
}

#[tokio::test]
async fn deploy_refuses_canary_stages_and_canary_refuses_all_at_once_plans() {
    let w = World::new(Format::Table);
    let r = commands::deploy(
        &w.ctx(),
        DeployOpts {
            stage: "live".into(),
            version: Some(ver(2)),
            allow_downgrade: false,
            retry: false,
            skip_upstream: None,
            bake: None,
            poll: None,
            dry_run: false,
            evidence: Default::default(),
        },
    )
    .await;
    assert_eq!(code(&r), exit::BAD_INPUT);
    assert!(
        message(&r).contains("promote canary --stage live"),
        "{}",
        message(&r)
    );
    let with_bake = DeployOpts {
        stage: "live".into(),
        version: Some(ver(2)),
        allow_downgrade: false,
        retry: false,
        skip_upstream: None,
        bake: Some(Duration::from_secs(1)),
        poll: None,
        dry_run: false,
        evidence: Default::default(),
    };
    let r = commands::deploy(&w.ctx(), with_bake).await;
    assert_eq!(
        code(&r),
        exit::BAD_INPUT,
        "--bake does not lift the strategy check"
    );
    let mut opts = canary_opts(Some(2), None);
    opts.stage = "dev".into();
    let r = commands::canary(&w.ctx(), opts).await;
    assert_eq!(code(&r), exit::BAD_INPUT);
    assert!(
        message(&r).contains("promote deploy --stage dev"),
        "{}",
        message(&r)
    );
}

#[tokio::test]
async fn advance_then_complete() {
    let w = World::new(Format::Table);
    w.fake.set_alias("live", view(1, Some((2, "10"))));
    let adv = |weight: Option<&str>| AdvanceOpts {
        stage: "live".into(),
        weight: weight.map(pct),
        bake: Some(Duration::ZERO),
        poll: None,
        dry_run: false,
        evidence: Default::default(),
    };
    assert_eq!(code(&commands::advance(&w.ctx(), adv(None)).await), 0);
    assert_eq!(w.fake.alias("live").view, view(1, Some((2, "50"))));
    let r = commands::advance(&w.ctx(), adv(Some("25"))).await;
    assert_eq!(code(&r), exit::BAD_INPUT, "backwards is not an advance");
    assert_eq!(
        code(&commands::advance(&w.ctx(), adv(None)).await),
        0,
        "50% -> the 100% step completes"
    );
    let live = w.fake.alias("live");
    assert_eq!(live.view, view(2, None));
    assert_eq!(
        live.description,
        "promote/v1 previous=1 step=2@100 baked=yes served=2"
    );
}

#[tokio::test]
async fn rollback_mid_canary_clears_the_split_in_one_call() {
    let w = World::new(Format::Table);
    w.fake.set_alias("live", view(1, Some((2, "50"))));
    let r = commands::rollback(&w.ctx(), "live", false, false).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert_eq!(w.fake.updates().len(), 1);
    assert_eq!(w.fake.alias("live").view, view(1, None));
    // Nothing left to roll back: a no-op, not an error.
    assert_eq!(
        code(&commands::rollback(&w.ctx(), "live", false, false).await),
        0
    );
    assert_eq!(w.fake.updates().len(), 1);
}

#[tokio::test]
async fn dry_runs_write_nothing_and_say_exactly_what_would_change() {
    let w = World::new(Format::Table);
    w.fake.set_alias("live", view(1, Some((2, "10"))));
    let mut opts = canary_opts(None, None);
    opts.dry_run = true;
    opts.bake = None;
    assert_eq!(code(&commands::canary(&w.ctx(), opts).await), 0);
    let dep = DeployOpts {
        stage: "dev".into(),
        version: Some(ver(3)),
        allow_downgrade: false,
        retry: false,
        skip_upstream: None,
        bake: None,
        poll: None,
        dry_run: true,
        evidence: Default::default(),
    };
    assert_eq!(code(&commands::deploy(&w.ctx(), dep).await), 0);
    let adv = AdvanceOpts {
        stage: "live".into(),
        weight: Some(pct("25")),
        bake: None,
        poll: None,
        dry_run: true,
        evidence: Default::default(),
    };
    assert_eq!(code(&commands::advance(&w.ctx(), adv).await), 0);
    assert_eq!(code(&commands::complete(&w.ctx(), "live", true).await), 0);
    assert_eq!(
        code(&commands::rollback(&w.ctx(), "live", false, true).await),
        0
    );
    assert!(w.fake.updates().is_empty());
    insta::assert_snapshot!("dry_runs_table", w.stdout());

    let j = World::new(Format::Json);
    j.fake.set_alias("live", view(1, Some((2, "10"))));
    let mut opts = canary_opts(None, None);
    opts.dry_run = true;
    opts.bake = None;
    assert_eq!(code(&commands::canary(&j.ctx(), opts).await), 0);
    let lines: Vec<serde_json::Value> = j
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    insta::assert_json_snapshot!("canary_dry_run_json", lines);
}

#[tokio::test]
async fn status_lists_stages_in_path_order_with_stamps_weights_and_alarms() {
    let w = World::new(Format::Table);
    w.fake.set_alias("live", view(1, Some((2, "10"))));
    w.fake.set_alias("test", view(2, None));
    let alarm = w.env.stage("live").unwrap().alarms[0].name.clone();
    w.fake
        .state
        .borrow_mut()
        .set_alarm(&alarm, AlarmValue::Alarm);
    crate::read::status::status(&w.ctx(), None).await.unwrap();
    insta::assert_snapshot!("status_table", w.stdout());

    let j = World::new(Format::Json);
    j.fake.set_alias("live", view(1, Some((2, "12.5"))));
    crate::read::status::status(&j.ctx(), None).await.unwrap();
    let lines: Vec<serde_json::Value> = j
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "one object per stage");
    let stages: Vec<&str> = lines.iter().map(|l| l["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["dev", "test", "live"]);
    assert_eq!(lines[2]["candidate"]["weight"], 12.5);
    assert_eq!(lines[2]["candidate"]["semver"], "0.1.1");
    insta::assert_json_snapshot!("status_json_live", lines[2]);
}

#[tokio::test]
async fn watch_without_a_terminal_prints_only_changes_and_stops_on_ctrl_c() {
    let w = World::new(Format::Table);
    let intr = w.fake.interrupt.clone();
    {
        let mut st = w.fake.state.borrow_mut();
        st.after_alarm_read.insert(
            2,
            Box::new(|st| st.tamper("live", view(1, Some((2, "10"))))),
        );
        st.after_alarm_read
            .insert(5, Box::new(move |_| intr.trigger()));
    }
    // The second function of the release, over its own connection, halfway through its own
    // canary.
    let birthday = Fake::seeded(&w.env);
    birthday.set_alias("live", view(1, Some((3, "50"))));
    let ctx = w.ctx();
    let watched = [
        crate::read::status::Watched {
            function: "app",
            cloud: &w.fake,
            ui: &w.ui,
        },
        crate::read::status::Watched {
            function: "birthday",
            cloud: &birthday,
            ui: &w.ui,
        },
    ];
    crate::read::status::watch(&ctx, &watched, "live", Duration::from_millis(10))
        .await
        .unwrap();
    let out = w.stdout();
    assert_eq!(
        w.fake.state.borrow().alarm_reads,
        5,
        "refreshed until interrupted"
    );
    assert_eq!(
        out.matches("--- ").count(),
        2,
        "one view at start, one for the change:\n{out}"
    );
    assert!(out.contains("2 (0.1.1 2222222) 10%"), "{out}");
    // Every function, each under its name, with its own split and its own alarms.
    assert_eq!(out.matches("function app:").count(), 2, "{out}");
    assert_eq!(out.matches("function birthday:").count(), 2, "{out}");
    let birthday_view = &out[out.rfind("function birthday:").unwrap()..];
    assert!(birthday_view.contains(" 50%"), "{out}");
    assert!(
        birthday_view.contains("app-live-lambda-errors-birthday"),
        "{out}"
    );
    assert!(
        !birthday_view.contains("app-live-lambda-errors "),
        "app's own alarm is not birthday's: {out}"
    );
    assert!(w.fake.updates().is_empty(), "watch never writes");
    assert!(birthday.updates().is_empty(), "watch never writes");
}

#[tokio::test]
async fn status_shows_the_readable_stages_when_one_is_broken() {
    let w = World::new(Format::Table);
    w.fake.state.borrow_mut().aliases.remove("test");
    let r = crate::read::status::status(&w.ctx(), None).await;
    assert_eq!(code(&r), exit::ERROR);
    let out = w.stdout();
    assert!(
        out.contains("\ndev ") && out.contains("\nlive ") && !out.contains("\ntest "),
        "{out}"
    );
    assert!(
        w.stderr().contains("stage test") && w.stderr().contains("no alias test"),
        "{}",
        w.stderr()
    );
}

/// Every refusal a person is likely to meet, with its exit code, in one reviewable file.
#[tokio::test]
async fn error_messages() {
    let mut all = String::new();
    let mut record = |what: &str, r: &anyhow::Result<()>| {
        all += &format!("## {what} (exit {})\n{}\n\n", code(r), message(r));
    };

    let w = World::new(Format::Table);
    record(
        "unknown stage",
        &commands::rollback(&w.ctx(), "prod", false, false).await,
    );
    record(
        "unknown version",
        &commands::canary(&w.ctx(), canary_opts(Some(99), Some("10"))).await,
    );
    let mut dev = canary_opts(None, Some("10"));
    dev.stage = "dev".into();
    record("no upstream", &commands::canary(&w.ctx(), dev).await);
    let adv = AdvanceOpts {
        stage: "live".into(),
        weight: None,
        bake: None,
        poll: None,
        dry_run: false,
        evidence: Default::default(),
    };
    record(
        "nothing to advance",
        &commands::advance(&w.ctx(), adv).await,
    );
    record(
        "no previous version",
        &commands::rollback(&w.ctx(), "live", true, false).await,
    );

    w.fake.set_alias("test", view(1, Some((2, "10"))));
    record(
        "upstream mid-canary",
        &commands::canary(&w.ctx(), canary_opts(None, Some("10"))).await,
    );

    w.fake.set_alias("live", view(3, None));
    record(
        "downgrade",
        &commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await,
    );

    w.fake.set_alias("live", view(1, Some((2, "10"))));
    record(
        "another canary in flight",
        &commands::canary(&w.ctx(), canary_opts(Some(3), Some("10"))).await,
    );
    let dep = DeployOpts {
        stage: "live".into(),
        version: Some(ver(2)),
        allow_downgrade: false,
        retry: false,
        skip_upstream: None,
        bake: None,
        poll: None,
        dry_run: false,
        evidence: Default::default(),
    };
    record(
        "deploy on a canary stage",
        &commands::deploy(&w.ctx(), dep).await,
    );

    w.fake.set_alias("live", view(1, None));
    let alarm = w.env.stage("live").unwrap().alarms[0].name.clone();
    w.fake
        .state
        .borrow_mut()
        .set_alarm(&alarm, AlarmValue::Alarm);
    record(
        "alarm already firing",
        &commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await,
    );
    w.fake.state.borrow_mut().set_alarm(&alarm, AlarmValue::Ok);

    w.fake.state.borrow_mut().alarm_script = [vec![], vec![(alarm.clone(), AlarmValue::Alarm)]]
        .into_iter()
        .collect();
    record(
        "alarm during the bake",
        &commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await,
    );

    w.fake.set_alias("live", view(1, None));
    w.fake.state.borrow_mut().set_alarm(&alarm, AlarmValue::Ok);
    let n = w.fake.state.borrow().get_alias_calls;
    w.fake
        .state
        .borrow_mut()
        .after_get
        .insert(n + 2, Box::new(foreign_write));
    record(
        "RevisionId conflict",
        &commands::canary(&w.ctx(), canary_opts(Some(3), Some("10"))).await,
    );

    let broken = std::env::temp_dir().join(format!("promote-errors-{}", std::process::id()));
    crate::cloud::fake::copy_environments(&broken);
    let live = std::fs::read_to_string(broken.join("live.json")).unwrap();
    std::fs::write(
        broken.join("live.json"),
        live.replace(r#""weight": 50"#, r#""weight": 5"#),
    )
    .unwrap();
    let r: anyhow::Result<()> = Environments::load(&broken).map(|_| ()).map_err(Into::into);
    record("malformed environments file", &r);
    let _ = std::fs::remove_dir_all(&broken);

    // Paths differ between machines.
    let all = all
        .replace(&broken.display().to_string(), "<environments>")
        .replace(env!("CARGO_MANIFEST_DIR"), "<promote>");
    insta::assert_snapshot!("error_messages", all);
}

#[tokio::test]
async fn the_rollback_write_is_retried_on_transient_errors() {
    let w = World::new(Format::Table);
    let alarm = w.env.stage("live").unwrap().alarms[0].name.clone();
    let hook_alarm = alarm.clone();
    w.fake.state.borrow_mut().after_alarm_read.insert(
        2,
        Box::new(move |st| {
            st.set_alarm(&hook_alarm, AlarmValue::Alarm);
            st.failing_updates = 2;
        }),
    );
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await;
    assert_eq!(code(&r), exit::ROLLED_BACK, "{}", message(&r));
    assert_eq!(
        w.fake.updates().len(),
        4,
        "the shift, two failed rollbacks, the one that worked"
    );
    assert_eq!(w.fake.alias("live").view, view(1, None));
    assert!(
        w.stderr()
            .contains("the rollback of alias live did not go through"),
        "{}",
        w.stderr()
    );
}

#[tokio::test]
async fn a_bake_rides_out_a_failed_read_and_fails_closed_on_a_dead_endpoint() {
    let w = World::new(Format::Table);
    // Read 1 is the preflight; one failure during the bake is retried at the next poll.
    w.fake
        .state
        .borrow_mut()
        .after_alarm_read
        .insert(1, Box::new(|st| st.failing_alarm_reads = 1));
    let r = commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await;
    assert_eq!(code(&r), 0, "{}", message(&r));
    assert!(
        w.stderr().contains("could not read the evidence"),
        "{}",
        w.stderr()
    );

    // Unreadable for good: the evidence fails closed, as the stage's
    // `analysis.on_unreadable` says: rolled back by default (exit 4), held otherwise
    // (exit 6); never a split left unwatched behind exit 1.
    for (policy, want) in [
        (OnUnreadable::Rollback, exit::ROLLED_BACK),
        (OnUnreadable::Hold, exit::HELD),
    ] {
        let mut w = World::new(Format::Table);
        let live = w.env.stages.iter_mut().find(|s| s.name == "live").unwrap();
        live.analysis.on_unreadable = policy;
        w.fake
            .state
            .borrow_mut()
            .after_alarm_read
            .insert(1, Box::new(|st| st.failing_alarm_reads = 100));
        let r = commands::canary(&w.ctx(), canary_opts(Some(2), Some("10"))).await;
        assert_eq!(code(&r), want, "{policy:?}: {}", message(&r));
        let msg = message(&r);
        assert!(
            msg.contains("could not be read (3 polls in a row failed")
                && (msg.contains("promote rollback --stage live")
                    == (policy == OnUnreadable::Hold)),
            "{policy:?}: {msg}"
        );
        let expect = match policy {
            OnUnreadable::Rollback => view(1, None),
            OnUnreadable::Hold => view(1, Some((2, "10"))),
        };
        assert_eq!(w.fake.alias("live").view, expect, "{policy:?}");
    }
}

/// Someone else moves the live alias to version 3, as Lambda would (a new RevisionId).
fn foreign_write(st: &mut crate::cloud::fake::FakeState) {
    let rev = st.next_revision();
    let rec = st.aliases.get_mut("live").unwrap();
    rec.view = view(3, None);
    rec.revision_id = rev;
}
