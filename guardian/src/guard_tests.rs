//! The guardian against promote's in-memory stand-in, which checks RevisionIds as Lambda
//! does (moto does not), beside promote itself on the same stand-in: what a rerun of
//! `promote` sees after the guardian's rollback, duplicated and late events, and the races
//! with a running `promote`. Time is virtual.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aliases::{AliasRecord, AliasWrite, WriteError};
use anyhow::Result;
use promote::cli::exit;
use promote::cli::ui::{Format, Ui};
use promote::cloud::aws::{AliasStore, MetricsQuery, Series};
use promote::cloud::fake::{Fake, World, pct, ver, view};
use promote::ctx::Ctx;
use promote::reconcile::commands::{ExecOpts, execute};
use promote::reconcile::release::execute_release;
use rollout::guardian::Trigger;
use rollout::machine::Intent;
use rollout::note::{Actor, Note};
use rollout::plan::{AlarmReading, AlarmValue};
use rollout::{Environments, SourceKind};

use crate::guard::{Aliases, Guardian, Outcome};

const ERRORS: &str = "app-live-lambda-errors";

/// promote's world (its stand-in is the first function's, `app`, and holds the alarms and
/// metrics), and a stand-in of its own for the second function, `birthday`: promote runs one
/// stand-in per function of a release, the guardian reads and writes every function's.
struct Stand {
    world: World,
    birthday: Fake,
}

impl Stand {
    fn new() -> Stand {
        let world = World::new(Format::Table);
        let birthday = Fake::seeded(&world.env);
        Stand { world, birthday }
    }

    fn fake_of(&self, function: &str) -> &Fake {
        match function {
            "app" => &self.world.fake,
            "birthday" => &self.birthday,
            other => panic!("no stand-in for function {other}"),
        }
    }
}

impl std::ops::Deref for Stand {
    type Target = World;
    fn deref(&self) -> &World {
        &self.world
    }
}

impl std::ops::DerefMut for Stand {
    fn deref_mut(&mut self) -> &mut World {
        &mut self.world
    }
}

impl Aliases for Stand {
    async fn get(&self, function: &str, alias: &str) -> Result<AliasRecord> {
        self.fake_of(function).get_alias(alias).await
    }
    async fn update(
        &self,
        function: &str,
        alias: &str,
        write: &AliasWrite,
        revision_id: &str,
    ) -> Result<AliasRecord, WriteError> {
        self.fake_of(function)
            .update_alias(alias, write, revision_id)
            .await
    }
}

fn alarm(value: AlarmValue) -> Trigger {
    Trigger::Alarm(AlarmReading {
        name: ERRORS.into(),
        value,
        reason: "Threshold Crossed: 1 out of the last 1 datapoints [4.0]".into(),
    })
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

async fn guard(w: &Stand, trigger: &Trigger) -> Result<Vec<Outcome>> {
    guard_with(&w.env, w, trigger).await
}

/// The guardian with its own copy of the environments.
async fn guard_with(env: &Environments, w: &Stand, trigger: &Trigger) -> Result<Vec<Outcome>> {
    let g = Guardian {
        env,
        cloud: &w.fake,
        aliases: w,
    };
    g.handle(trigger, now()).await
}

fn one(outcomes: &[Outcome]) -> &Outcome {
    let [o] = outcomes else {
        panic!("one stage expected: {outcomes:?}")
    };
    o
}

fn canary(version: u64, weight: Option<&str>, retry: bool) -> Intent {
    Intent::Canary {
        version: Some(ver(version)),
        weight: weight.map(pct),
        allow_downgrade: false,
        retry,
    }
}

fn quick() -> ExecOpts {
    ExecOpts {
        bake: Some(Duration::ZERO),
        poll: Some(Duration::from_millis(20)),
        ..ExecOpts::default()
    }
}

fn code(r: &Result<()>) -> i32 {
    r.as_ref().map_or_else(exit::code_of, |()| 0)
}

/// live at 10% of version 2, left there by a promote run that then died.
async fn split_left(w: &Stand) {
    let r = execute(&w.ctx(), "live", canary(2, Some("10"), false), quick()).await;
    assert_eq!(code(&r), 0, "{r:?}");
    assert_eq!(w.fake.alias("live").view, view(1, Some((2, "10"))));
}

fn by_guardian(w: &AliasWrite) -> bool {
    w.description.as_deref().is_some_and(|d| {
        Note::parse(d)
            .rolled_back
            .is_some_and(|r| r.by == Actor::Guardian)
    })
}

#[tokio::test(start_paused = true)]
async fn an_alarm_takes_the_split_back_and_a_promote_rerun_sees_who_and_why() {
    let w = Stand::new();
    split_left(&w).await;
    w.fake
        .state
        .borrow_mut()
        .set_alarm(ERRORS, AlarmValue::Alarm);

    let out = guard(&w, &alarm(AlarmValue::Alarm)).await.unwrap();
    let o = one(&out);
    assert_eq!(
        (o.action, o.written.as_slice()),
        ("rolled_back", &["app".to_string()][..])
    );
    let live = w.fake.alias("live");
    assert_eq!(live.view, view(1, None));
    let r = Note::parse(&live.description).rolled_back.unwrap();
    assert_eq!((r.version, r.by), (ver(2), Actor::Guardian));
    assert!(
        r.why.starts_with("alarm app-live-lambda-errors is ALARM"),
        "{}",
        r.why
    );

    // The rerun refuses the version without --retry, saying who took it back and why.
    let ui = Ui::capture(Format::Table);
    let ctx = Ctx { ui: &ui, ..w.ctx() };
    let again = execute(&ctx, "live", canary(2, None, false), quick()).await;
    assert_eq!(code(&again), exit::REFUSED, "{again:?}");
    let msg = format!("{:#}", again.unwrap_err());
    assert!(
        msg.contains("by the guardian: alarm app-live-lambda-errors is ALARM"),
        "{msg}"
    );
    assert!(msg.contains("--retry"), "{msg}");
    // status says the same.
    let ui = Ui::capture(Format::Table);
    let ctx = Ctx { ui: &ui, ..w.ctx() };
    promote::read::status::status(&ctx, Some("live"))
        .await
        .unwrap();
    let shown = ui.output().0;
    assert!(
        shown.contains("version 2 was rolled back (by the guardian: alarm app-live-lambda-errors"),
        "{shown}"
    );
}

/// promote's release of both functions on `stage`, one stand-in per function as
/// `promote` runs it.
async fn release(w: &Stand, ui: &Ui, intent: Intent) -> Result<()> {
    let ctxs: Vec<Ctx<'_, Fake>> = ["app", "birthday"]
        .into_iter()
        .map(|function| Ctx {
            cloud: w.fake_of(function),
            env: &w.env,
            ui,
            interrupt: &w.fake.interrupt,
            function,
        })
        .collect();
    let versions = [
        ("app".to_string(), ver(2)),
        ("birthday".to_string(), ver(3)),
    ]
    .into_iter()
    .collect();
    execute_release(&ctxs, "live", intent, &versions, quick()).await
}

fn release_canary(weight: Option<&str>) -> Intent {
    Intent::Canary {
        version: None,
        weight: weight.map(pct),
        allow_downgrade: false,
        retry: false,
    }
}

/// A release of both functions left at 10% by a promote run that died; the second
/// function's own errors alarm fires: the guardian takes back both splits, each with the
/// guardian's note naming the function and the alarm, once however often the event comes,
/// and promote's rerun of the release refuses it without --retry.
#[tokio::test(start_paused = true)]
async fn one_function_failing_takes_back_every_function_of_the_release() {
    let w = Stand::new();
    let ui = Ui::capture(Format::Table);
    let r = release(&w, &ui, release_canary(Some("10"))).await;
    assert_eq!(code(&r), 0, "{r:?}\n{}", ui.output().1);
    assert_eq!(w.fake.alias("live").view, view(1, Some((2, "10"))));
    assert_eq!(w.birthday.alias("live").view, view(1, Some((3, "10"))));

    let name = "app-live-lambda-errors-birthday";
    // The stand-in holds every function's alarms of the stack, OK until set.
    w.fake.state.borrow_mut().set_alarm(name, AlarmValue::Alarm);
    let fired = Trigger::Alarm(AlarmReading {
        name: name.into(),
        value: AlarmValue::Alarm,
        reason: String::new(),
    });
    let out = guard(&w, &fired).await.unwrap();
    let o = one(&out);
    assert_eq!(
        (o.action, o.written.as_slice()),
        (
            "rolled_back",
            &["app".to_string(), "birthday".to_string()][..]
        ),
        "{o:?}"
    );
    for (function, candidate) in [("app", 2), ("birthday", 3)] {
        let live = w.fake_of(function).alias("live");
        assert_eq!(live.view, view(1, None), "{function}");
        let r = Note::parse(&live.description).rolled_back.unwrap();
        assert_eq!((r.version, r.by), (ver(candidate), Actor::Guardian));
        assert!(
            r.why
                .starts_with("function birthday: alarm app-live-lambda-errors-birthday is ALARM"),
            "{function}: {}",
            r.why
        );
    }
    let applied = (w.fake.applied().len(), w.birthday.applied().len());
    for _ in 0..2 {
        let again = guard(&w, &fired).await.unwrap();
        assert_eq!(one(&again).action, "nothing", "{again:?}");
    }
    assert_eq!(
        (w.fake.applied().len(), w.birthday.applied().len()),
        applied,
        "a duplicated event writes nothing"
    );

    let ui = Ui::capture(Format::Table);
    let again = release(&w, &ui, release_canary(None)).await;
    assert_eq!(code(&again), exit::REFUSED, "{again:?}");
    let msg = format!("{:#}", again.unwrap_err());
    assert!(
        msg.contains(
            "by the guardian: function birthday: alarm app-live-lambda-errors-birthday is ALARM"
        ),
        "{msg}"
    );
    assert!(msg.contains("--retry"), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn duplicated_late_and_splitless_events_write_nothing() {
    let w = Stand::new();
    // No split: an ALARM writes nothing.
    w.fake
        .state
        .borrow_mut()
        .set_alarm(ERRORS, AlarmValue::Alarm);
    let out = guard(&w, &alarm(AlarmValue::Alarm)).await.unwrap();
    assert_eq!(one(&out).action, "nothing");
    assert!(w.fake.applied().is_empty());

    w.fake.state.borrow_mut().set_alarm(ERRORS, AlarmValue::Ok);
    split_left(&w).await;
    let before = w.fake.applied().len();
    // Late: the alarm is OK again by the time the event arrives.
    w.fake.state.borrow_mut().set_alarm(ERRORS, AlarmValue::Ok);
    let out = guard(&w, &alarm(AlarmValue::Alarm)).await.unwrap();
    assert_eq!(one(&out).action, "nothing", "{out:?}");
    assert_eq!(w.fake.applied().len(), before);

    // Delivered three times: one write.
    w.fake
        .state
        .borrow_mut()
        .set_alarm(ERRORS, AlarmValue::Alarm);
    for _ in 0..3 {
        guard(&w, &alarm(AlarmValue::Alarm)).await.unwrap();
    }
    let applied = w.fake.applied();
    assert_eq!(applied.len(), before + 1, "{applied:?}");
    assert!(by_guardian(&applied.last().unwrap().1));

    // Another stage's alarm, or one no stage has: nothing.
    let foreign = Trigger::Alarm(AlarmReading {
        name: "somebody-elses-alarm".into(),
        value: AlarmValue::Alarm,
        reason: String::new(),
    });
    assert!(guard(&w, &foreign).await.unwrap().is_empty());
}

/// The guardian and a `promote` run read the alias, then both write: exactly one write
/// lands, and the other writer writes nothing (the guardian says so; promote exits 5).
async fn race(w: &Stand, intent: Intent, env: &Environments, trigger: Trigger, both_sent: bool) {
    let before = w.fake.applied().len();
    let sent = w.fake.updates().len();
    w.fake.state.borrow_mut().interleave = true;
    let ui = Ui::capture(Format::Table);
    let ctx = Ctx { ui: &ui, ..w.ctx() };
    let (g, p) = tokio::join!(
        guard_with(env, w, &trigger),
        execute(&ctx, "live", intent, quick())
    );
    let g = g.unwrap();
    let o = g.iter().find(|o| o.stage == "live").unwrap();
    let applied = w.fake.applied()[before..].to_vec();
    let first = &applied.first().expect("one writer won").1;
    if by_guardian(first) {
        assert_eq!(o.written, ["app"]);
        assert_eq!(code(&p), 5, "promote lost and wrote nothing: {p:?}");
        assert_eq!(applied.len(), 1, "{applied:?}");
    } else {
        assert_eq!(o.lost, ["app"], "{o:?}");
        assert!(applied.iter().all(|(_, w)| !by_guardian(w)), "{applied:?}");
    }
    // promote's exit 5 says it read the alias before the guardian's write landed (a run
    // starting after it would find no canary). Where both got as far as sending, each sent
    // its first write on the RevisionId both had read.
    if !both_sent {
        return;
    }
    let updates = w.fake.updates()[sent..].to_vec();
    let first_of = |guardian: bool| {
        updates
            .iter()
            .find(|u| by_guardian(&u.1) == guardian)
            .map(|u| u.2.clone())
    };
    assert!(
        first_of(true).is_some() && first_of(true) == first_of(false),
        "{updates:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn racing_a_promote_rollback_one_writer_wins() {
    let w = Stand::new();
    split_left(&w).await;
    w.fake
        .state
        .borrow_mut()
        .set_alarm(ERRORS, AlarmValue::Alarm);
    let env = w.env.clone();
    race(
        &w,
        Intent::Rollback { to_previous: false },
        &env,
        alarm(AlarmValue::Alarm),
        true,
    )
    .await;
    assert_eq!(w.fake.alias("live").view, view(1, None));
}

/// promote advancing on its alarms (all OK) while the schedule's judge fails the candidate
/// on its per-version metrics.
#[tokio::test(start_paused = true)]
async fn racing_a_promote_advance_one_writer_wins() {
    let w = Stand::new();
    split_left(&w).await;
    w.fake.state.borrow_mut().metrics = Some(Box::new(failing_candidate));
    let mut env = w.env.clone();
    with_metrics(&mut env);
    race(
        &w,
        Intent::Advance { weight: None },
        &env,
        Trigger::Tick,
        false,
    )
    .await;
}

/// Version 2 failing 30% of its requests, version 1 none, over every period asked for.
fn failing_candidate(q: &MetricsQuery) -> Result<Vec<Series>> {
    let period = Duration::from_secs(q.period_seconds.into());
    Ok(q.series
        .iter()
        .map(|v| {
            let errors = if *v == Some(ver(2)) { 30.0 } else { 0.0 };
            let mut s = Series::default();
            let mut at = q.start;
            while at < q.end {
                s.invocations.push((at, 100.0));
                s.errors.push((at, errors));
                s.duration_ms.push((at, 20.0));
                at += period;
            }
            s
        })
        .collect())
}

fn with_metrics(env: &mut Environments) {
    for s in &mut env.stages {
        s.analysis.sources = vec![SourceKind::Alarms, SourceKind::Metrics];
        s.analysis.criteria.latency_statistic = rollout::judge::LatencyStatistic::Mean;
    }
}

#[tokio::test(start_paused = true)]
async fn the_schedule_alone_takes_back_a_candidate_failing_on_per_version_metrics() {
    let mut w = Stand::new();
    with_metrics(&mut w.env);
    split_left(&w).await;
    // Every alarm OK: only the judge can see it.
    w.fake.state.borrow_mut().metrics = Some(Box::new(failing_candidate));
    let out = guard(&w, &Trigger::Tick).await.unwrap();
    let live = out.iter().find(|o| o.stage == "live").unwrap();
    assert_eq!(live.action, "rolled_back", "{live:?}");
    assert!(
        live.reason.starts_with("metrics judge: errors"),
        "{}",
        live.reason
    );
    assert_eq!(w.fake.alias("live").view, view(1, None));
    // Stages without a split were judged by nobody and written by nobody.
    assert!(
        out.iter()
            .filter(|o| o.stage != "live")
            .all(|o| o.action == "nothing")
    );
}

#[tokio::test(start_paused = true)]
async fn a_held_split_stays_held_and_one_left_past_its_plan_is_reported() {
    let mut w = Stand::new();
    with_metrics(&mut w.env);
    split_left(&w).await;
    // A trickle, the same for both versions: not enough to judge either way.
    w.fake.state.borrow_mut().metrics = Some(Box::new(|q: &MetricsQuery| {
        let mut s = Series::default();
        s.invocations.push((q.start, 1.0));
        Ok(vec![s; q.series.len()])
    }));
    let before = w.fake.applied().len();
    let out = guard(&w, &Trigger::Tick).await.unwrap();
    let live = out.iter().find(|o| o.stage == "live").unwrap();
    // The trickle began at the start of the longest look back: the split has stood for
    // longer than its plan allows.
    assert_eq!(live.action, "stale", "{live:?}");
    assert!(
        live.reason
            .contains("with no verdict and no run finishing it"),
        "{}",
        live.reason
    );
    assert_eq!(w.fake.applied().len(), before, "held: nothing written");
}
