//! The CodeDeploy engine: `canary`, `deploy` and `rollback` on a stage whose strategy says
//! `"engine": "codedeploy"` (README, "The two engines").
//!
//! Everything before the first write is the alias engine's own check
//! (`rollout::machine::resolve`: candidate, semver guard, published versions, a version
//! rolled back before, the evidence read once); then, instead of writing the alias, one
//! `CreateDeployment` with the stage's deployment configuration and an AppSpec naming the
//! function, the alias, the current and the target version. CodeDeploy shifts the traffic
//! and rolls back on the group's alarms even if this process dies; while it runs, `promote`
//! follows it and keeps judging the candidate with the stage's evidence sources, and a
//! failing verdict stops the deployment with CodeDeploy's automatic rollback (exit 4).
//!
//! The state is CodeDeploy's (one deployment in flight per group) and the alias note,
//! which is written once the deployment has ended: a rerun after `kill -9` finds the
//! deployment in flight and follows it instead of creating another.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use rollout::bake;
use rollout::codedeploy::{AppSpec, Engine, Followed, Outcome, Phase, Progress, deployment_config};
use rollout::evidence::{self, Verdict};
use rollout::machine::{self, Goal, Intent, Overrides};
use rollout::note::Note;
use rollout::{Version, Weight, format_duration};
use serde_json::{Value, json};

use crate::aws::{AliasWrite, Cloud};
use crate::codedeploy::{Deployment, DeploymentRequest, Shift, status_name};
use crate::commands::ExecOpts;
use crate::evidence::{Source, Window};
use crate::exit::Exit;
use crate::run::{ROLLBACK_DEADLINE, Run, nothing_written, v, view_json};

/// Reads of CodeDeploy's rollback deployment that may fail in a row before the run stops
/// following it; the rollback goes on in CodeDeploy regardless.
const MAX_FAILED_READS: u32 = 3;
/// Between attempts of a `StopDeployment` that did not go through.
const STOP_RETRY: Duration = Duration::from_secs(1);

/// Runs `intent` when the stage uses the CodeDeploy engine; `None` hands it to the alias
/// engine (every stage of the alias engine, and a rollback with no deployment in flight:
/// with none running, the alias is the stage's only state and the alias engine's
/// rollback writes it).
pub async fn take_over<C: Cloud>(
    run: &mut Run<'_, C>,
    intent: &Intent,
    opts: &ExecOpts,
) -> Option<Result<()>> {
    if run.stage.engine != Engine::CodeDeploy {
        return None;
    }
    let name = run.name().to_string();
    let refuse = |what: &str| -> Option<Result<()>> {
        Some(Err(Exit::BadInput(format!(
            "{what}: stage {name} is shifted by CodeDeploy (\"engine\": \"codedeploy\" in {}), which runs the steps of its deployment configuration by itself; `promote canary --stage {name}` (or `deploy`) starts and follows a deployment, `promote rollback --stage {name}` stops one",
            run.stage.path.display()
        ))
        .into()))
    };
    match intent {
        Intent::Advance { .. } => refuse("advance has no CodeDeploy equivalent"),
        Intent::Complete => refuse("complete has no CodeDeploy equivalent"),
        Intent::Canary {
            weight: Some(_), ..
        } => refuse("--weight cannot be given"),
        Intent::Deploy { .. } | Intent::Canary { .. } if opts.bake.is_some() => {
            refuse("--bake cannot be given (the deployment configuration sets the intervals)")
        }
        Intent::Rollback { .. } => rollback(run, opts.dry_run).await.transpose(),
        Intent::Deploy { .. } | Intent::Canary { .. } => Some(rollout(run, intent, opts).await),
    }
}

fn requested(intent: &Intent) -> Option<Version> {
    match intent {
        Intent::Deploy { version, .. } | Intent::Canary { version, .. } => *version,
        _ => None,
    }
}

/// The deployments in flight for the stage's group (CodeDeploy allows one).
async fn in_flight<C: Cloud>(run: &Run<'_, C>) -> Result<Vec<Deployment>> {
    let (app, group) = (&run.ctx.env.project.function_name, run.name());
    let mut out = Vec::new();
    for id in run.ctx.cloud.in_flight(app, group).await? {
        out.push(run.ctx.cloud.get_deployment(&id).await?);
    }
    Ok(out)
}

fn describe_shift(d: &Deployment, shift: Option<Shift>) -> String {
    match shift {
        Some(s) => format!(
            "deployment {} (version {} -> {}, {})",
            d.read.id,
            s.current,
            s.target,
            d.read.status.map_or("no status", status_name)
        ),
        None => format!(
            "deployment {} ({}, an AppSpec promote did not write)",
            d.read.id,
            d.read.status.map_or("no status", status_name)
        ),
    }
}

async fn rollout<C: Cloud>(run: &mut Run<'_, C>, intent: &Intent, opts: &ExecOpts) -> Result<()> {
    let name = run.name().to_string();
    let command = intent.command();
    let function = run.ctx.env.project.function_name.clone();
    let alias = run.target.alias.clone();
    let running = in_flight(run)
        .await
        .with_context(|| nothing_written(&name))?;
    if let Some(d) = running.first() {
        let shift = d.shift_of(&function, &alias);
        return match shift {
            // A rerun (after kill -9, a lost runner, Ctrl-C) follows what is running.
            Some(s) if requested(intent).is_none_or(|v| v == s.target) => {
                follow_existing(run, d, s, command, opts).await
            }
            _ => Err(Exit::Refused(format!(
                "{} is already in progress for CodeDeploy group {name} of application {function}, and CodeDeploy runs one deployment per group; nothing was written. \
                 Follow it with `promote canary --stage {name}`, wait for it (`promote status --stage {name}`), or stop it with `promote rollback --stage {name}`",
                describe_shift(d, shift)
            ))
            .into()),
        };
    }
    if let Some(s) = run.alias.view.split {
        return Err(Exit::Refused(format!(
            "alias {alias} of stage {name} routes {} to version {} and no CodeDeploy deployment is shifting it; CodeDeploy starts from one version, so nothing was written. \
             Take it back with `promote rollback --stage {name}` first",
            s.weight, s.version
        ))
        .into());
    }
    let upstream = run.upstream_view().await?;
    let obs = run.observed(upstream);
    let overrides = Overrides {
        skip_upstream: opts.skip_upstream.clone(),
        ..Overrides::default()
    };
    let goal = machine::resolve(run.stage, intent, &obs, overrides).map_err(Exit::from)?;
    let r = match goal {
        Goal::Rollout(r) => r,
        Goal::Noop(msg) => {
            run.ui().result(
                &msg,
                json!({"event": "done", "stage": name, "command": command, "result": "noop", "alias": view_json(&run.alias.view)}),
            );
            return Ok(());
        }
        Goal::Rollback { .. } => unreachable!("deploy and canary never resolve to a rollback"),
    };
    let config = deployment_config(&run.stage.strategy)
        .map_err(|e| Exit::BadInput(format!("{}: {}", run.stage.path.display(), e.message)))?;
    let appspec = AppSpec {
        function: function.clone(),
        alias: alias.clone(),
        current: r.stable,
        target: r.candidate,
        hooks: run.stage.hooks.clone(),
    };
    let request = DeploymentRequest {
        application: function.clone(),
        group: name.clone(),
        config: config.name(&function, &name),
        appspec: appspec.content(),
        description: format!(
            "promote {command} --stage {name}: version {} -> {}",
            run.label(r.stable),
            run.label(r.candidate)
        ),
    };
    if opts.dry_run {
        let spec = appspec.to_json();
        let text = format!(
            "dry run: stage {name} (alias {alias}) serves {}\n  1. CreateDeployment in CodeDeploy application {} group {} with deployment configuration {} ({}), description \"{}\"\n  2. follow it, judging the candidate with {} (a fail stops it with automatic rollback)\nAppSpec:\n{}",
            obs.alias,
            request.application,
            request.group,
            request.config,
            config.routing_type(),
            request.description,
            run.source_names(None).join(", "),
            serde_json::to_string_pretty(&spec).unwrap_or_default()
        );
        run.ui().result(
            text,
            json!({"event": "dry_run", "stage": name, "command": command, "alias": alias,
                   "engine": "codedeploy", "from": view_json(&obs.alias),
                   "request": request.to_json(), "appspec": spec}),
        );
        return Ok(());
    }
    run.ui().event(json!({
        "event": "plan", "stage": name, "command": command, "alias": alias,
        "candidate": v(r.candidate), "stable": v(r.stable), "resumed_from": null,
        "engine": "codedeploy", "deployment_config": request.config,
        "steps": plan_steps(run),
        "upstream_skip": crate::upstream::announce(run, &r),
    }));
    let shift = Shift {
        current: r.stable,
        target: r.candidate,
    };
    let mut sources = run.sources(None);
    let subject = run.subject(r.candidate, r.stable);
    if let Some(reason) = run.preflight(&mut sources, &subject).await? {
        return Err(Exit::Refused(format!(
            "{reason}; stage {name} was not changed (nothing was written, no deployment created)"
        ))
        .into());
    }
    if r.upstream_skip.is_some() {
        // CodeDeploy writes the routing; the override is on the alias note before it starts.
        let before = Note::parse(&run.alias.description);
        let note = Note {
            upstream_skip: r.upstream_skip.clone(),
            ..before
        };
        record(run, note).await;
    }
    let id = run
        .ctx
        .cloud
        .create_deployment(&request)
        .await
        .with_context(|| nothing_written(&name))?;
    run.ui().event(json!({
        "event": "deployment_created", "stage": name, "deployment_id": id,
        "application": request.application, "group": request.group,
        "deployment_config": request.config, "candidate": v(r.candidate), "stable": v(r.stable),
    }));
    run.ui().say(format!(
        "{name}: CodeDeploy deployment {id} created ({}): version {} -> {}",
        request.config,
        run.label(r.stable),
        run.label(r.candidate)
    ));
    follow(run, &mut sources, &id, shift, command, r.retry, opts).await
}

fn plan_steps<C: Cloud>(run: &Run<'_, C>) -> Vec<Value> {
    match &run.stage.strategy {
        rollout::Strategy::AllAtOnce { bake } => {
            vec![json!({"weight": 100, "bake_seconds": bake.as_secs()})]
        }
        rollout::Strategy::Canary { steps } => steps
            .iter()
            .map(|s| json!({"weight": s.weight.percent_json(), "bake_seconds": s.bake.as_secs()}))
            .collect(),
    }
}

async fn follow_existing<C: Cloud>(
    run: &mut Run<'_, C>,
    d: &Deployment,
    shift: Shift,
    command: &str,
    opts: &ExecOpts,
) -> Result<()> {
    let name = run.name().to_string();
    let id = d.read.id.clone();
    if opts.dry_run {
        let text = format!(
            "dry run: stage {name}: {} is in progress; the command would follow it (nothing is created)",
            describe_shift(d, Some(shift))
        );
        run.ui().result(
            text,
            json!({"event": "dry_run", "stage": name, "command": command, "alias": run.target.alias,
                   "engine": "codedeploy", "from": view_json(&run.alias.view),
                   "follow": {"deployment_id": id, "candidate": v(shift.target), "stable": v(shift.current)}}),
        );
        return Ok(());
    }
    run.ui().event(json!({
        "event": "plan", "stage": name, "command": command, "alias": run.target.alias,
        "candidate": v(shift.target), "stable": v(shift.current),
        "resumed_from": run.alias.view.split.map(|s| s.weight.percent_json()),
        "engine": "codedeploy", "deployment_config": d.config, "deployment_id": id,
        "steps": plan_steps(run),
    }));
    run.ui().say(format!(
        "{name}: following CodeDeploy {} already in progress",
        describe_shift(d, Some(shift))
    ));
    let mut sources = run.sources(None);
    let subject = run.subject(shift.target, shift.current);
    if let Some(reason) = run.preflight(&mut sources, &subject).await? {
        return stop_and_roll_back(run, &id, shift, &reason).await;
    }
    let retry = Note::parse(&run.alias.description)
        .was_rolled_back(shift.target)
        .is_some();
    follow(run, &mut sources, &id, shift, command, retry, opts).await
}

enum Polled {
    /// The deployment runs (or has succeeded: `None`) and the evidence was read.
    Judged(Option<Progress>, Verdict),
    /// The deployment ended otherwise (CodeDeploy's own rollback, a failure, a stop).
    Finished(Outcome),
}

/// Follows deployment `id`, judging the candidate at every poll with `rollout::bake`,
/// the same bake the alias engine runs: the deployment's run is the bake, and its success
/// the bake's deadline. A fail (or, by the stage's policies, evidence that stays
/// unreadable or missing past the extension) stops a running deployment with rollback, or
/// takes back one that succeeded; a hold leaves things as they are (exit 6); an interrupt
/// gets the last look.
async fn follow<'a, C: Cloud>(
    run: &mut Run<'a, C>,
    sources: &mut [Box<dyn Source + 'a>],
    id: &str,
    shift: Shift,
    command: &str,
    retry: bool,
    opts: &ExecOpts,
) -> Result<()> {
    let name = run.name().to_string();
    let poll = run.poll(opts.poll);
    let started = tokio::time::Instant::now();
    let step_started = SystemTime::now();
    let policy = bake::Policy::new(&name, &run.stage.analysis, Duration::ZERO, poll);
    let extension = policy.max_extension;
    let mut machine = bake::Bake::until_ended(policy);
    let mut succeeded = false;
    loop {
        let at = started.elapsed();
        let window = Window {
            step_started,
            now: step_started + at,
        };
        let input = match poll_once(run, sources, id, shift, window, succeeded).await {
            Ok(Polled::Judged(progress, verdict)) => {
                let line = match progress {
                    Some(p) => format!(
                        "{name}: CodeDeploy deployment {id}: {p}, judge: {verdict}, {} elapsed",
                        format_duration(Duration::from_secs(at.as_secs()))
                    ),
                    None => {
                        format!("{name}: CodeDeploy deployment {id} succeeded; judge: {verdict}")
                    }
                };
                run.ui().progress(&verdict.to_string(), &line);
                if progress.is_none() && !succeeded {
                    succeeded = true;
                    machine.end_at(at);
                }
                bake::Input::Read(verdict)
            }
            Ok(Polled::Finished(outcome)) => {
                run.ui().end_progress();
                return finished(run, id, shift, outcome, command, retry).await;
            }
            Err(e) if e.downcast_ref::<Exit>().is_some() => return Err(e),
            Err(e) => {
                run.ui().say(format!(
                    "{name}: could not read deployment {id} or the evidence ({e:#}); retrying"
                ));
                bake::Input::ReadFailed(format!("{e:#}"))
            }
        };
        match machine.on(at, input) {
            bake::Next::Continue => {}
            bake::Next::Extend(why) => run.ui().say(format!(
                "{name}: deployment {id} succeeded without enough evidence ({why}); watching for up to {} more",
                format_duration(extension)
            )),
            bake::Next::Pass => {
                run.ui().end_progress();
                return finished(run, id, shift, Outcome::Succeeded, command, retry).await;
            }
            bake::Next::Fail(reason) => {
                run.ui().end_progress();
                return judged_bad(run, id, shift, &reason, succeeded).await;
            }
            bake::Next::Hold(reason) => {
                run.ui().end_progress();
                return Err(held(run, id, &reason, succeeded));
            }
            _ => return Err(interrupted(run, id)),
        }
        let wake = started + machine.next_poll();
        let now = tokio::time::Instant::now();
        if run
            .ctx
            .interrupt
            .sleep(wake.saturating_duration_since(now))
            .await
        {
            run.ui().end_progress();
            if machine.on(started.elapsed(), bake::Input::Interrupt) == bake::Next::LastLook {
                let subject = run.subject(shift.target, shift.current);
                let look = run.read_once(sources, &subject).await;
                if let bake::Next::Fail(reason) = machine.on(started.elapsed(), look) {
                    return judged_bad(run, id, shift, &reason, succeeded).await;
                }
            }
            return Err(interrupted(run, id));
        }
    }
}

/// The candidate was judged bad: a running deployment is stopped with CodeDeploy's
/// rollback; after one that succeeded, the alias is taken back by the write the decision
/// function returns for a failing candidate at 100%.
async fn judged_bad<C: Cloud>(
    run: &mut Run<'_, C>,
    id: &str,
    shift: Shift,
    reason: &str,
    succeeded: bool,
) -> Result<()> {
    if !succeeded {
        return stop_and_roll_back(run, id, shift, reason).await;
    }
    let _held = run.ctx.interrupt.hold();
    let goal = Goal::Rollout(machine::Rollout {
        stage: run.name().to_string(),
        candidate: shift.target,
        stable: shift.current,
        steps: vec![rollout::Step {
            weight: Weight::FULL,
            bake: Duration::ZERO,
        }],
        resumed_from: Some(Weight::FULL),
        retry: false,
        upstream_skip: None,
    });
    let mem = machine::Memory {
        failure: Some(reason.to_string()),
        wrote: true,
        ..machine::Memory::default()
    };
    run.alias = run.ctx.cloud.get_alias(&run.target.alias).await?;
    let note = Note::parse(&run.alias.description);
    if let machine::Action::Write(w) = machine::decide(&goal, &run.alias.view, &note, &mem) {
        let name = run.name().to_string();
        run.write(&AliasWrite::of(&w), w.kind.as_str(), true)
            .await
            .map_err(|e| {
                e.context(format!(
                    "{reason}; the rollback of stage {name} could not be written; take the traffic back now with `promote rollback --stage {name} --to-previous`"
                ))
            })?;
    }
    let name = run.name().to_string();
    run.ui().event(json!({"event": "rolled_back", "stage": name, "reason": reason, "version": v(shift.current)}));
    Err(Exit::RolledBack(format!(
        "{reason}; deployment {id} had succeeded, so stage {name} was taken back by promote: alias {} serves version {} only",
        run.target.alias,
        run.label(shift.current)
    ))
    .into())
}

/// Exit 6: what the stage's policy holds, and where the traffic is.
fn held<C: Cloud>(run: &Run<'_, C>, id: &str, reason: &str, succeeded: bool) -> anyhow::Error {
    let name = run.name();
    run.ui().event(json!({
        "event": "held", "stage": name, "reason": reason, "alias": view_json(&run.alias.view),
    }));
    let state = if succeeded {
        format!(
            "deployment {id} succeeded and alias {} serves {}; nothing was rolled back. Return to the version before with `promote rollback --stage {name} --to-previous`",
            run.target.alias, run.alias.view
        )
    } else {
        format!(
            "deployment {id} goes on in CodeDeploy without promote's judge (CodeDeploy still rolls back on the group's alarms). \
             Follow it again with `promote canary --stage {name}`, or stop it with `promote rollback --stage {name}`"
        )
    };
    Exit::Held(format!("{reason}; stage {name} is held: {state}")).into()
}

/// One poll: the deployment (and its traffic while it shifts), then every evidence source.
/// Once the deployment has succeeded only the evidence is read.
async fn poll_once<'a, C: Cloud>(
    run: &mut Run<'a, C>,
    sources: &mut [Box<dyn Source + 'a>],
    id: &str,
    shift: Shift,
    window: Window,
    succeeded: bool,
) -> Result<Polled> {
    let name = run.name().to_string();
    let mut status = Some(rollout::codedeploy::Status::Succeeded);
    let progress = if succeeded {
        None
    } else {
        let mut d = run.ctx.cloud.get_deployment(id).await?;
        if matches!(
            d.read.status,
            Some(rollout::codedeploy::Status::InProgress | rollout::codedeploy::Status::Baking)
        ) {
            d.read.target_weight = run.ctx.cloud.target_weight(id).await?;
        }
        status = d.read.status;
        match rollout::codedeploy::interpret(&d.read)? {
            Followed::Finished(Outcome::Succeeded) => None,
            Followed::Finished(o) => return Ok(Polled::Finished(o)),
            Followed::Running(p) => Some(p),
        }
    };
    // The subject is what the alias routes now: CodeDeploy moves it, not this run.
    run.alias = run.ctx.cloud.get_alias(&run.target.alias).await?;
    let subject = run.subject(shift.target, shift.current);
    let mut findings = Vec::new();
    for s in sources.iter_mut() {
        findings.push(s.assess(&subject, window).await?);
    }
    let verdict = evidence::combine(&findings);
    run.ui().event(json!({
        "event": "deployment", "stage": name, "deployment_id": id,
        "status": status.map(status_name),
        "phase": progress.map_or("succeeded", |p| phase_name(p.phase)),
        "candidate_weight": match progress {
            Some(p) => p.candidate_weight.map(Weight::percent_json),
            None => Some(Weight::FULL.percent_json()),
        },
        "verdict": verdict.to_string(),
        "evidence": findings.iter().map(|f| json!({"source": f.source, "verdict": f.verdict.to_string(), "summary": f.summary, "numbers": f.numbers})).collect::<Vec<_>>(),
    }));
    Ok(Polled::Judged(progress, verdict))
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Waiting => "waiting",
        Phase::Shifting => "shifting",
        Phase::Baking => "baking",
    }
}

/// The deployment ended on its own: succeeded, or CodeDeploy rolled it back (its alarms, a
/// hook), or it failed without a rollback.
async fn finished<C: Cloud>(
    run: &mut Run<'_, C>,
    id: &str,
    shift: Shift,
    outcome: Outcome,
    command: &str,
    retry: bool,
) -> Result<()> {
    let name = run.name().to_string();
    match outcome {
        Outcome::Succeeded => {
            let before = Note::parse(&run.alias.description);
            let base = if retry {
                before.retried(shift.target)
            } else {
                before
            };
            let mut note = base.completed(shift.target, shift.current, true);
            note.upstream_skip = note.upstream_skip.filter(|k| k.version == shift.target);
            record(run, note).await;
            let text = format!(
                "{name} serves version {} (was {}); CodeDeploy deployment {id} succeeded",
                run.label(shift.target),
                run.label(shift.current)
            );
            let result = if command == "deploy" {
                "deployed"
            } else {
                "completed"
            };
            run.ui().result(
                &text,
                json!({"event": "done", "stage": name, "command": command, "result": result,
                       "alias": view_json(&run.alias.view), "version": v(shift.target),
                       "previous": v(shift.current), "deployment_id": id}),
            );
            Ok(())
        }
        Outcome::RolledBack {
            reason,
            rollback_deployment_id,
        } => {
            let reason = format!("CodeDeploy rolled back deployment {id}: {reason}");
            let end = wait_rollback(run, &rollback_deployment_id).await?;
            rolled_back(run, shift, &reason, end).await
        }
        Outcome::Failed { reason }
        | Outcome::Stopped { reason }
        | Outcome::RollbackFailed { reason } => {
            run.alias = run.ctx.cloud.get_alias(&run.target.alias).await?;
            Err(anyhow!(
                "CodeDeploy deployment {id} of stage {name} ended without taking the traffic back: {reason}. Alias {} is as CodeDeploy left it ({}); \
                 see `promote status --stage {name}`, and take a split back with `promote rollback --stage {name}`",
                run.target.alias,
                run.alias.view
            ))
        }
    }
}

/// How a rollback deployment ended, within [`ROLLBACK_DEADLINE`].
enum RollbackEnd {
    Done,
    StillRunning(String),
}

/// Follows CodeDeploy's rollback deployment `id` until it has taken the traffic back.
async fn wait_rollback<C: Cloud>(run: &Run<'_, C>, id: &str) -> Result<RollbackEnd> {
    let deadline = tokio::time::Instant::now() + ROLLBACK_DEADLINE;
    let poll = run.poll(None);
    let mut failed = 0;
    loop {
        match run.ctx.cloud.get_deployment(id).await {
            Ok(d) => {
                failed = 0;
                match rollout::codedeploy::interpret(&d.read)? {
                    Followed::Finished(Outcome::RolledBack { .. } | Outcome::Succeeded) => {
                        return Ok(RollbackEnd::Done);
                    }
                    Followed::Finished(
                        Outcome::RollbackFailed { reason }
                        | Outcome::Failed { reason }
                        | Outcome::Stopped { reason },
                    ) => {
                        let name = run.name();
                        return Err(anyhow!(
                            "CodeDeploy's rollback deployment {id} of stage {name} did not take the traffic back: {reason}; the candidate may still take traffic: take it back with `promote rollback --stage {name}`"
                        ));
                    }
                    Followed::Running(p) => {
                        run.ui().progress(
                            &p.to_string(),
                            &format!("{}: rollback deployment {id}: {p}", run.name()),
                        );
                    }
                }
            }
            Err(e) => {
                failed += 1;
                if failed >= MAX_FAILED_READS {
                    return Err(e.context(format!(
                        "reading CodeDeploy's rollback deployment {id}; CodeDeploy goes on with it: check `promote status --stage {}`",
                        run.name()
                    )));
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            run.ui().end_progress();
            return Ok(RollbackEnd::StillRunning(id.to_string()));
        }
        tokio::time::sleep(poll).await;
    }
}

/// Exit 4 with the reason, after the rollback deployment ended (or while it still runs).
async fn rolled_back<C: Cloud>(
    run: &mut Run<'_, C>,
    shift: Shift,
    reason: &str,
    end: RollbackEnd,
) -> Result<()> {
    run.ui().end_progress();
    let name = run.name().to_string();
    record_rollback(run, shift.target, reason).await;
    let state = match end {
        RollbackEnd::Done => format!(
            "stage {name} was taken back: alias {} serves version {} only",
            run.target.alias,
            run.label(shift.current)
        ),
        RollbackEnd::StillRunning(id) => format!(
            "CodeDeploy is still taking stage {name} back to version {} (rollback deployment {id}); check `promote status --stage {name}`",
            run.label(shift.current)
        ),
    };
    let interrupted = if run.ctx.interrupt.is_set() {
        " (an interrupt arrived meanwhile; the rollback was started first)"
    } else {
        ""
    };
    run.ui().event(json!({"event": "rolled_back", "stage": name, "reason": reason, "version": v(shift.current)}));
    Err(Exit::RolledBack(format!("{reason}; {state}{interrupted}")).into())
}

/// `StopDeployment` with automatic rollback, retried until it goes through (it is the
/// rollback), with signals held; then CodeDeploy's rollback is followed.
async fn stop_and_roll_back<C: Cloud>(
    run: &mut Run<'_, C>,
    id: &str,
    shift: Shift,
    reason: &str,
) -> Result<()> {
    let _held = run.ctx.interrupt.hold();
    let name = run.name().to_string();
    run.ui().say(format!(
        "{name}: {reason}; stopping CodeDeploy deployment {id} with automatic rollback"
    ));
    let status = stop(run, id).await.map_err(|e| {
        e.context(format!(
            "{reason}; deployment {id} of stage {name} could not be stopped; stop it now with `promote rollback --stage {name}`"
        ))
    })?;
    run.ui().event(json!({
        "event": "deployment_stopped", "stage": name, "deployment_id": id,
        "reason": reason, "status": status,
    }));
    let end = wait_stopped(run, id, Some(shift)).await?;
    rolled_back(run, shift, reason, end).await
}

async fn stop<C: Cloud>(run: &Run<'_, C>, id: &str) -> Result<String> {
    let deadline = tokio::time::Instant::now() + ROLLBACK_DEADLINE;
    loop {
        match run.ctx.cloud.stop_deployment(id).await {
            Ok(status) => return Ok(status),
            Err(e) if tokio::time::Instant::now() + STOP_RETRY >= deadline => return Err(e),
            Err(e) => {
                // A deployment that ended meanwhile cannot be stopped: how it ended is read
                // (and reported) by the caller, as after a stop.
                if let Ok(d) = run.ctx.cloud.get_deployment(id).await
                    && let Ok(Followed::Finished(_)) = rollout::codedeploy::interpret(&d.read)
                {
                    tracing::info!(error = %format!("{e:#}"), "StopDeployment refused: the deployment has ended");
                    return Ok("already ended".into());
                }
                run.ui().say(format!(
                    "{}: StopDeployment {id} did not go through ({e:#}); retrying",
                    run.name()
                ));
                tokio::time::sleep(STOP_RETRY).await;
            }
        }
    }
}

/// After our stop: the deployment reads Stopped with CodeDeploy's rollback deployment,
/// which is followed until the traffic is back.
async fn wait_stopped<C: Cloud>(
    run: &mut Run<'_, C>,
    id: &str,
    shift: Option<Shift>,
) -> Result<RollbackEnd> {
    let deadline = tokio::time::Instant::now() + ROLLBACK_DEADLINE;
    let poll = run.poll(None);
    loop {
        if let Ok(d) = run.ctx.cloud.get_deployment(id).await {
            match rollout::codedeploy::interpret(&d.read)? {
                Followed::Finished(Outcome::RolledBack {
                    rollback_deployment_id,
                    ..
                }) => return wait_rollback(run, &rollback_deployment_id).await,
                Followed::Finished(Outcome::Succeeded) => {
                    // What a success records, so that `--to-previous` knows where to return.
                    if let Some(s) = shift {
                        let before = Note::parse(&run.alias.description);
                        let note = Note {
                            served: before.served,
                            upstream_skip: before.upstream_skip.filter(|k| k.version == s.target),
                            ..Note::default()
                        }
                        .completed(s.target, s.current, true);
                        record(run, note).await;
                    }
                    let name = run.name();
                    return Err(anyhow!(
                        "deployment {id} of stage {name} succeeded before it could be stopped: the candidate serves all traffic; return to the version before with `promote rollback --stage {name} --to-previous`"
                    ));
                }
                Followed::Finished(other) => {
                    return Err(anyhow!(
                        "deployment {id} of stage {} ended without a rollback ({other:?}); take the traffic back with `promote rollback --stage {}`",
                        run.name(),
                        run.name()
                    ));
                }
                Followed::Running(_) => {}
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(RollbackEnd::StillRunning(id.to_string()));
        }
        tokio::time::sleep(poll).await;
    }
}

/// Writes the alias note once CodeDeploy has left the alias as it is now. The note is the
/// rollout's memory for the next run (the previous version, a rolled-back version); failing
/// to write it does not change the outcome, so it is only said.
async fn record<C: Cloud>(run: &mut Run<'_, C>, note: Note) {
    let name = run.name().to_string();
    let written = async {
        run.alias = run.ctx.cloud.get_alias(&run.target.alias).await?;
        let w = AliasWrite {
            version: run.alias.view.version,
            split: run.alias.view.split,
            description: Some(note.format()),
        };
        run.write(&w, "note", false).await
    }
    .await;
    if let Err(e) = written {
        run.ui().say(format!(
            "{name}: warning: the note on alias {} could not be written ({e:#}); `promote status` will not show this outcome",
            run.target.alias
        ));
    }
}

/// The note after a rollback: `version` was rolled back and why (a later `canary` of it
/// then needs `--retry`); the previous version is kept.
async fn record_rollback<C: Cloud>(run: &mut Run<'_, C>, version: Version, why: &str) {
    let note = Note::parse(&run.alias.description).rolled_back(version, why, true);
    record(run, note).await;
}

fn interrupted<C: Cloud>(run: &Run<'_, C>, id: &str) -> anyhow::Error {
    let name = run.name();
    run.ui().event(
        json!({"event": "interrupted", "stage": name, "alias": view_json(&run.alias.view), "deployment_id": id}),
    );
    Exit::Interrupted(format!(
        "deployment {id} goes on in CodeDeploy without promote (CodeDeploy still rolls back on the group's alarms, but the judge no longer watches). \
         Follow it again with `promote canary --stage {name}`, or stop it with `promote rollback --stage {name}`"
    ))
    .into()
}

/// `promote rollback` on a CodeDeploy stage: stops the deployment in flight with automatic
/// rollback. `None` when none is in flight (the alias engine's rollback then applies).
async fn rollback<C: Cloud>(run: &mut Run<'_, C>, dry_run: bool) -> Result<Option<()>> {
    let name = run.name().to_string();
    let function = run.ctx.env.project.function_name.clone();
    let running = in_flight(run)
        .await
        .with_context(|| nothing_written(&name))?;
    let Some(d) = running.first() else {
        return Ok(None);
    };
    let shift = d.shift_of(&function, &run.target.alias);
    let what = describe_shift(d, shift);
    let id = d.read.id.clone();
    if dry_run {
        run.ui().result(
            format!("dry run: stage {name}: {what} is in progress\n  1. StopDeployment {id} with autoRollbackEnabled (CodeDeploy takes the traffic back)"),
            json!({"event": "dry_run", "stage": name, "command": "rollback", "alias": run.target.alias,
                   "engine": "codedeploy", "from": view_json(&run.alias.view),
                   "stop": {"deployment_id": id, "auto_rollback_enabled": true}}),
        );
        return Ok(Some(()));
    }
    let _held = run.ctx.interrupt.hold();
    let status = stop(run, &id).await?;
    let reason = "stopped by `promote rollback`";
    run.ui().event(json!({
        "event": "deployment_stopped", "stage": name, "deployment_id": id,
        "reason": reason, "status": status,
    }));
    let end = wait_stopped(run, &id, shift).await?;
    if let Some(s) = shift {
        record_rollback(run, s.target, "rolled back by `promote rollback`").await;
    }
    let state = match end {
        RollbackEnd::Done => "CodeDeploy took the traffic back".to_string(),
        RollbackEnd::StillRunning(rid) => format!(
            "CodeDeploy is still taking the traffic back (deployment {rid}); check `promote status --stage {name}`"
        ),
    };
    run.ui().result(
        format!(
            "{name}: {what} stopped; {state}; alias {} serves {}",
            run.target.alias, run.alias.view
        ),
        json!({"event": "done", "stage": name, "command": "rollback", "result": "rolled_back",
               "alias": view_json(&run.alias.view), "deployment_id": id}),
    );
    Ok(Some(()))
}

/// `promote status`: for every CodeDeploy stage among `rows`, (stage, a line for the table,
/// the `deployment` field of its `stage_status` event). A read that fails says so in its
/// line: it must not hide the rest of the status.
pub async fn statuses<C: Cloud>(
    ctx: &crate::commands::Ctx<'_, C>,
    rows: &[crate::status::StageStatus],
) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for r in rows {
        match status_of(ctx.cloud, ctx.env, &r.stage, &r.alias).await {
            Ok(Some((line, value))) => out.push((r.stage.clone(), line, value)),
            Ok(None) => {}
            Err(e) => out.push((
                r.stage.clone(),
                format!(
                    "{}: CodeDeploy deployments could not be read: {e:#}",
                    r.stage
                ),
                json!({"error": format!("{e:#}")}),
            )),
        }
    }
    out
}

/// The deployment in flight on a CodeDeploy stage and its progress.
async fn status_of<C: Cloud>(
    cloud: &C,
    env: &rollout::Environments,
    stage: &str,
    alias: &str,
) -> Result<Option<(String, Value)>> {
    let Ok(s) = env.stage(stage) else {
        return Ok(None);
    };
    if s.engine != Engine::CodeDeploy {
        return Ok(None);
    }
    let function = &env.project.function_name;
    let Some(id) = cloud.in_flight(function, stage).await?.into_iter().next() else {
        return Ok(Some((
            format!("{stage}: CodeDeploy engine, no deployment in progress"),
            Value::Null,
        )));
    };
    let mut d = cloud.get_deployment(&id).await?;
    if matches!(
        d.read.status,
        Some(rollout::codedeploy::Status::InProgress | rollout::codedeploy::Status::Baking)
    ) {
        d.read.target_weight = cloud.target_weight(&id).await?;
    }
    let shift = d.shift_of(function, alias);
    let progress = match rollout::codedeploy::interpret(&d.read)? {
        Followed::Running(p) => p.to_string(),
        Followed::Finished(o) => format!("{o:?}"),
    };
    let line = format!(
        "{stage}: CodeDeploy {}: {progress}",
        describe_shift(&d, shift)
    );
    let value = json!({
        "deployment_id": id, "status": d.read.status.map(status_name),
        "deployment_config": d.config,
        "candidate_weight": d.read.target_weight.and_then(Weight::from_fraction).map(Weight::percent_json),
        "current": shift.map(|s| v(s.current)), "target": shift.map(|s| v(s.target)),
    });
    Ok(Some((line, value)))
}

#[cfg(test)]
#[path = "cd_engine_tests.rs"]
mod tests;
