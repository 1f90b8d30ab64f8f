//! The mutating commands and the one executor that applies their decisions.
//!
//! Every command (deploy, canary, advance, complete, rollback) is an [`Intent`] handed to
//! [`execute`]: it reads the stage (and, on a stage CodeDeploy shifts, the deployment in
//! flight for its group), lets `rollout::machine::resolve` check everything that can refuse
//! (before any write), then applies the actions `rollout::machine::decide` returns until
//! one says done: alias writes and bakes, and on a CodeDeploy stage creating, following and
//! stopping a deployment. `--dry-run` prints what `rollout::machine::simulate` gets from the
//! same function, on either engine, so the dry run and the real run cannot drift.

use std::time::Duration;

use anyhow::Result;
use rollout::codedeploy::{DeploymentView, Engine, Outcome, Shift};
use rollout::machine::{
    self, Action, Done, Ended, Goal, Intent, Memory, Observed, Overrides, Published, Shifter, State,
};
use rollout::note::Note;
use rollout::plan::Upstream;
use rollout::{AliasView, Subject, Version, Weight, format_duration};
use serde_json::json;

use crate::cli::events::{self, DryAction};
use crate::cli::exit::Exit;
use crate::cloud::aws::{AliasWrite, Cloud};
use crate::ctx::Ctx;
use crate::evidence::probe_source::ProbePlan;
use crate::reconcile::cd_engine;
use crate::reconcile::run::{BakeEnd, FollowEnd, ProbeFlags, Run, StopEnd, v};

/// What a rollout's probe will send, and where, said before it starts.
pub fn say_probe<C: Cloud>(run: &Run<'_, C>, p: &ProbePlan) {
    let call = &p.call;
    let target = match &p.invoke {
        None => format!(
            "{} {}{}",
            call.method,
            p.url.trim_end_matches('/'),
            call.path
        ),
        Some(at) if p.url.is_empty() => format!(
            "{} {} by invoking alias {} through Lambda's Invoke API",
            call.method, call.path, at.alias
        ),
        Some(at) => format!(
            "{} {} by invoking alias {} through the Invoke API at {}",
            call.method, call.path, at.alias, p.url
        ),
    };
    let expects = call
        .expect_status
        .map_or(String::new(), |s| format!(", expecting {s},"));
    run.ui().say(format!(
        "{}: probing function {}: {target}{expects} at {}/s through every bake (for at most {})",
        run.name(),
        run.ctx.function,
        p.rate,
        format_duration(p.horizon)
    ));
}

/// Options every mutating command shares.
#[derive(Debug, Clone, Default)]
pub struct ExecOpts {
    pub bake: Option<Duration>,
    pub poll: Option<Duration>,
    pub dry_run: bool,
    pub evidence: EvidenceOpts,
    /// `--skip-upstream --reason R` (deploy, canary): R.
    pub skip_upstream: Option<String>,
}

/// What a command that bakes is told about its evidence beyond the stage's file.
#[derive(Debug, Clone, Default)]
pub struct EvidenceOpts {
    pub probe: ProbeFlags,
}

// The tests' one-call shortcuts for each command (the binary goes through `execute` with
// the intent the command line parsed).
#[cfg(test)]
#[path = "commands_shortcuts.rs"]
mod shortcuts;
#[cfg(test)]
pub use shortcuts::*;

/// `--bake` shorter than the slowest alarm's window: allowed (tests and demos bake for
/// seconds), but never silently. The stage files are held to this by their checks, a command
/// line only by this warning, printed once per run (a release's first function says it).
pub fn warn_short_bake<C: Cloud>(run: &Run<'_, C>, bake: Option<Duration>) {
    if let (Some(bake), Some((alarm, window))) = (bake, run.stage.slowest_alarm())
        && !bake.is_zero()
        && bake < window
    {
        run.ui().say(format!(
            "warning: --bake {} is shorter than alarm {}'s window ({} of data before it can fire): the bake can end before that alarm has looked",
            format_duration(bake),
            alarm.name,
            format_duration(window)
        ));
    }
}

/// Reads the stage, resolves the intent, and applies decisions until done.
pub async fn execute<C: Cloud>(
    ctx: &Ctx<'_, C>,
    stage: &str,
    intent: Intent,
    opts: ExecOpts,
) -> Result<()> {
    let mut run = ctx.open(stage).await?;
    let name = run.name().to_string();
    let command = intent.command();
    // The deployment in flight for the stage's group, on a stage CodeDeploy shifts.
    let deployment = cd_engine::observe(&run).await?;
    // The upstream's alias: where the candidate comes from, and what the path-to-live guard
    // checks it against.
    let upstream = match &intent {
        Intent::Rollback { .. } => None,
        _ => run.upstream_view().await?,
    };
    let obs = run.observed(upstream, deployment);
    let overrides = Overrides {
        bake: opts.bake,
        skip_upstream: opts.skip_upstream.clone(),
        ..Overrides::default()
    };
    let goal =
        machine::resolve(run.stage, &intent, &obs, overrides).map_err(|e| refusal(&run, e))?;
    let poll = run.poll(opts.poll);
    warn_short_bake(&run, opts.bake);
    // A CodeDeploy deployment has no length known in advance to bound a probe by: its
    // stages are judged by their alarms and metrics.
    let probe = match run.stage.engine {
        Engine::CodeDeploy => None,
        Engine::Alias => run.probe_plan(&opts.evidence.probe, &goal),
    };
    if opts.dry_run {
        return dry_run(&run, command, &goal, &obs, probe.as_ref());
    }
    if let Goal::Rollout(r) = &goal {
        announce(&run, command, r);
    }
    let mut mem = Memory::default();
    // What only the executor knows of a CodeDeploy run's end, for its last words.
    let mut end = CdEnd::default();
    if let Some(d) = &obs.deployment {
        end.deployment_id = Some(d.id.clone());
    }
    let mut deployment = obs.deployment.clone();
    // A note that could not be written: the run goes on as if it had been (the outcome
    // does not depend on it), having said so.
    let mut unwritten: Option<Note> = None;
    // Held from the moment the evidence fails until the rollback is written: a signal in
    // between (GitHub's SIGINT then SIGTERM) is honoured after the rollback, not before.
    let mut critical = None;
    if let Some(p) = &probe {
        say_probe(&run, p);
    }
    let mut sources = run.sources(probe.as_ref());
    // Pre-flight: the evidence is read once before anything moves. A failing verdict with
    // the candidate already taking traffic is a rollback; otherwise it refuses (exit 3).
    if let Goal::Rollout(r) = &goal {
        let subject = run.subject(r.candidate, r.stable);
        if let Some(reason) = run.preflight(&mut sources, &subject).await? {
            critical = Some(run.ctx.interrupt.hold());
            mem.failure = Some(reason);
        }
    }
    loop {
        let state = State {
            alias: run.alias.view,
            note: unwritten
                .take()
                .unwrap_or_else(|| Note::parse(&run.alias.description)),
            deployment: deployment.clone(),
        };
        match machine::decide(&goal, &state, &mem) {
            Action::Write(w) => {
                let rollback = matches!(
                    w.kind,
                    machine::WriteKind::AutoRollback | machine::WriteKind::Rollback
                );
                // How a deployment ended is recorded whatever arrives meanwhile.
                let record = w.kind == machine::WriteKind::Note
                    && (mem.ended.is_some() || !mem.baked.is_empty());
                if !rollback && !record && run.ctx.interrupt.is_set() {
                    return Err(run.interrupted(&goal, mem.wrote));
                }
                let from = run.alias.view;
                if rollback {
                    // The rollback is a critical section: a signal now is honoured after it.
                    let _held = critical.take().unwrap_or_else(|| run.ctx.interrupt.hold());
                    run.write(&AliasWrite::of(&w), w.kind.as_str(), true)
                        .await
                        .map_err(|e| rollback_failed(&run, e, mem.failure.as_deref()))?;
                } else if record {
                    // On the alias as CodeDeploy left it, whatever it routes now.
                    refresh(&mut run).await;
                    let w = machine::Write {
                        to: run.alias.view,
                        ..w.clone()
                    };
                    if let Err(e) = run.write(&AliasWrite::of(&w), w.kind.as_str(), false).await {
                        run.ui().say(format!(
                            "{name}: warning: the note on alias {} could not be written ({e:#}); `promote status` will not show this outcome",
                            run.target.alias
                        ));
                        unwritten = Some(w.note.clone());
                        continue;
                    }
                } else {
                    run.write(&AliasWrite::of(&w), w.kind.as_str(), false)
                        .await?;
                }
                mem.wrote = true;
                say_write(&run, &w, &from);
            }
            Action::Bake {
                step,
                of,
                weight,
                bake,
            } => {
                let Goal::Rollout(r) = &goal else {
                    unreachable!("only a rollout bakes")
                };
                let label = format!("step {step}/{of} at {weight}");
                let subject = run.subject(r.candidate, r.stable);
                match run.bake(&mut sources, &subject, bake, poll, &label).await? {
                    BakeEnd::Passed => mem.baked.push(weight),
                    BakeEnd::Failed(reason) => {
                        critical = Some(run.ctx.interrupt.hold());
                        mem.failure = Some(reason);
                    }
                    BakeEnd::Held(reason) => return Err(run.held(&reason)),
                    BakeEnd::Interrupted => return Err(run.interrupted(&goal, mem.wrote)),
                }
            }
            Action::CreateDeployment {
                candidate,
                stable,
                config,
            } => {
                if run.ctx.interrupt.is_set() {
                    return Err(run.interrupted(&goal, mem.wrote));
                }
                let d = cd_engine::create(&run, command, candidate, stable, config).await?;
                mem.created = Some(d.id.clone());
                end.deployment_id = Some(d.id.clone());
                deployment = Some(d);
            }
            Action::Follow { deployment: id } => {
                let Goal::Rollout(r) = &goal else {
                    unreachable!("only a rollout follows a deployment")
                };
                let shift = Shift {
                    current: r.stable,
                    target: r.candidate,
                };
                match run.follow(&mut sources, &id, shift, poll).await? {
                    FollowEnd::Passed => {
                        mem.baked.push(Weight::FULL);
                        deployment = None;
                    }
                    FollowEnd::Failed { reason, running } => {
                        critical = Some(run.ctx.interrupt.hold());
                        mem.failure = Some(reason);
                        if !running {
                            deployment = None;
                        }
                    }
                    FollowEnd::Held { reason, succeeded } => {
                        return Err(run.held_deployment(&id, &reason, succeeded));
                    }
                    FollowEnd::Interrupted => return Err(run.interrupted_deployment(&id)),
                    FollowEnd::Ended(outcome) => {
                        deployment = None;
                        ended_by_codedeploy(&mut run, &id, outcome, &mut mem, &mut end).await?;
                    }
                }
            }
            Action::StopDeployment {
                deployment: id,
                reason,
            } => {
                let _held = critical.take().unwrap_or_else(|| run.ctx.interrupt.hold());
                mem.ended = Some(match run.stop_deployment(&id, &reason).await? {
                    StopEnd::RolledBack(still) => {
                        end.rollback_running = still;
                        Ended::RolledBack
                    }
                    StopEnd::Succeeded => Ended::Succeeded {
                        deployment: id.clone(),
                    },
                    StopEnd::Other(what) => Ended::Failed(what),
                });
                end.deployment_id = Some(id);
                deployment = None;
                refresh(&mut run).await;
            }
            Action::Refuse(e) => return Err(refusal(&run, e)),
            Action::Done(d) => return finish(&run, command, d, &obs, &end),
        }
    }
}

/// What only the executor knows of a CodeDeploy run's end.
#[derive(Default)]
pub(crate) struct CdEnd {
    /// The deployment followed, created or stopped.
    pub(crate) deployment_id: Option<String>,
    /// CodeDeploy's rollback deployment still running when the run stopped waiting.
    pub(crate) rollback_running: Option<String>,
}

/// The plan event and the narration before the first action of a rollout.
pub(crate) fn announce<C: Cloud>(run: &Run<'_, C>, command: &str, r: &machine::Rollout) {
    let name = run.name();
    let (engine, deployment_config, deployment_id) = match &r.shifter {
        Shifter::Alias => (None, None, None),
        Shifter::CodeDeploy { config, following } => (
            Some("codedeploy".to_string()),
            Some(
                following
                    .as_ref()
                    .map_or_else(|| config.name(run.ctx.function, name), |d| d.config.clone()),
            ),
            following.as_ref().map(|d| d.id.clone()),
        ),
    };
    run.ui().emit(&events::Plan {
        stage: name.to_string(),
        command: command.to_string(),
        alias: run.target.alias.clone(),
        candidate: v(r.candidate),
        stable: v(r.stable),
        resumed_from: r.resumed_from.map(events::Percent),
        steps: r
            .steps
            .iter()
            .map(|s| events::StepJson {
                weight: events::Percent(s.weight),
                bake_seconds: events::Seconds(s.bake),
            })
            .collect(),
        upstream_skip: crate::reconcile::upstream::announce(run, r),
        engine,
        deployment_config,
        deployment_id,
    });
    match &r.shifter {
        Shifter::CodeDeploy {
            following: Some(d), ..
        } => run.ui().say(format!(
            "{name}: following CodeDeploy {d} already in progress"
        )),
        _ => {
            if let Some(w) = r.resumed_from.filter(|_| command == "canary") {
                run.ui().say(format!(
                    "{name}: resuming the rollout of version {} at {w}",
                    run.label(r.candidate)
                ));
            }
        }
    }
}

/// CodeDeploy ended the deployment being followed: its own rollback (followed until the
/// traffic is back) is a failure of the candidate; an end without one is recorded as such.
pub(crate) async fn ended_by_codedeploy<C: Cloud>(
    run: &mut Run<'_, C>,
    id: &str,
    outcome: Outcome,
    mem: &mut Memory,
    end: &mut CdEnd,
) -> Result<()> {
    let name = run.name().to_string();
    match outcome {
        Outcome::Succeeded => mem.baked.push(Weight::FULL),
        Outcome::RolledBack {
            reason,
            rollback_deployment_id,
        } => {
            end.rollback_running = run.wait_rollback(&rollback_deployment_id).await?;
            mem.failure = Some(format!("CodeDeploy rolled back deployment {id}: {reason}"));
            mem.ended = Some(Ended::RolledBack);
        }
        Outcome::Failed { reason }
        | Outcome::Stopped { reason }
        | Outcome::RollbackFailed { reason } => {
            refresh(run).await;
            mem.ended = Some(Ended::Failed(format!(
                "CodeDeploy deployment {id} of stage {name} ended without taking the traffic back: {reason}. Alias {} is as CodeDeploy left it ({}); \
                 see `promote status --stage {name}`, and take a split back with `promote rollback --stage {name}`",
                run.target.alias, run.alias.view
            )));
            return Ok(());
        }
    }
    refresh(run).await;
    Ok(())
}

/// Re-reads the alias after CodeDeploy moved it, so that the note is written on the alias
/// as it is; a failed read leaves it to the write's own re-read to say so.
async fn refresh<C: Cloud>(run: &mut Run<'_, C>) {
    if let Ok(a) = run.ctx.cloud.get_alias(&run.target.alias).await {
        run.alias = a;
    }
}

pub(crate) fn refusal<C: Cloud>(run: &Run<'_, C>, e: rollout::PlanError) -> anyhow::Error {
    let name = run.name();
    let mut exit = Exit::from(e);
    // A refusal never leaves a split without saying how to take it back.
    if let (Some(s), Exit::Refused(m) | Exit::BadInput(m)) = (run.alias.view.split, &mut exit)
        && !m.contains("promote rollback")
    {
        m.push_str(&format!(
            ". Version {} still takes {} of {name}: take it back with `promote rollback --stage {name}`",
            s.version, s.weight
        ));
    }
    exit.into()
}

pub(crate) fn rollback_failed<C: Cloud>(
    run: &Run<'_, C>,
    e: anyhow::Error,
    failure: Option<&str>,
) -> anyhow::Error {
    if e.downcast_ref::<Exit>().is_some() {
        return e;
    }
    let name = run.name();
    e.context(format!(
        "{}the rollback of stage {name} could not be written; take the traffic back now with `promote rollback --stage {name}`",
        failure.map_or(String::new(), |f| format!("{f}; "))
    ))
}

pub(crate) fn say_write<C: Cloud>(run: &Run<'_, C>, w: &machine::Write, from: &AliasView) {
    let name = run.name();
    let alias = &run.target.alias;
    let text = match (w.kind, w.to.split) {
        (machine::WriteKind::Shift, Some(s)) => format!(
            "{name}: {} of traffic to version {}, the rest on {}",
            s.weight,
            run.label(s.version),
            run.label(w.to.version)
        ),
        (machine::WriteKind::MarkBaked, _) => {
            format!("{name}: the last step's bake passed (recorded on alias {alias})")
        }
        _ => format!(
            "{name}: alias {alias} serves version {} (was {from})",
            run.label(w.to.version)
        ),
    };
    run.ui().say(text);
}

pub(crate) fn finish<C: Cloud>(
    run: &Run<'_, C>,
    command: &str,
    d: Done,
    obs: &Observed,
    end: &CdEnd,
) -> Result<()> {
    let name = run.name();
    let done = |result: &str| events::Done {
        stage: name.to_string(),
        command: command.to_string(),
        result: result.to_string(),
        alias: events::AliasJson::of(&run.alias.view),
        deployment_id: end.deployment_id.clone(),
        ..events::Done::default()
    };
    match d {
        Done::Noop(msg) => {
            run.ui().emit_result(
                &msg,
                &events::Done {
                    deployment_id: None,
                    ..done("noop")
                },
            );
            Ok(())
        }
        Done::Split(c, w) => {
            let text = format!(
                "{name}: version {} takes {w} of traffic (stable {}); next: `promote advance --stage {name}`, `promote complete --stage {name}` or `promote rollback --stage {name}`",
                run.label(c),
                run.label(run.alias.view.version)
            );
            run.ui().emit_result(&text, &done("split"));
            Ok(())
        }
        Done::Completed(c) => {
            let text = match &end.deployment_id {
                Some(id) => format!(
                    "{name} serves version {} (was {}); CodeDeploy deployment {id} succeeded",
                    run.label(c),
                    obs.alias
                ),
                None => format!("{name} serves version {} (was {})", run.label(c), obs.alias),
            };
            let result = if command == "deploy" {
                "deployed"
            } else {
                "completed"
            };
            run.ui().emit_result(
                &text,
                &events::Done {
                    version: Some(v(c)),
                    previous: Some(v(obs.alias.version)),
                    ..done(result)
                },
            );
            Ok(())
        }
        Done::RolledBackByOperator { to } => {
            let text = match &end.deployment_id {
                Some(id) => format!(
                    "{name}: deployment {id} stopped; {}; alias {} serves {}",
                    match &end.rollback_running {
                        None => "CodeDeploy took the traffic back".to_string(),
                        Some(rid) => format!(
                            "CodeDeploy is still taking the traffic back (deployment {rid}); check `promote status --stage {name}`"
                        ),
                    },
                    run.target.alias,
                    run.alias.view
                ),
                None => format!(
                    "{name} serves version {} only (was {})",
                    run.label(to),
                    obs.alias
                ),
            };
            run.ui().emit_result(&text, &done("rolled_back"));
            Ok(())
        }
        Done::RolledBack { reason, to } => {
            let interrupted = if run.ctx.interrupt.is_set() {
                " (an interrupt arrived meanwhile; the rollback was completed first)"
            } else {
                ""
            };
            let state = match &end.rollback_running {
                None => format!(
                    "stage {name} was taken back: alias {} serves version {} only",
                    run.target.alias,
                    run.label(to)
                ),
                Some(id) => format!(
                    "CodeDeploy is still taking stage {name} back to version {} (rollback deployment {id}); check `promote status --stage {name}`",
                    run.label(to)
                ),
            };
            run.ui().emit(&events::RolledBack {
                stage: name.to_string(),
                reason: reason.clone(),
                version: v(to),
            });
            Err(Exit::RolledBack(format!("{reason}; {state}{interrupted}")).into())
        }
        Done::Stranded(msg) => Err(anyhow::anyhow!(msg)),
    }
}

fn dry_run<C: Cloud>(
    run: &Run<'_, C>,
    command: &str,
    goal: &Goal,
    obs: &Observed,
    probe: Option<&ProbePlan>,
) -> Result<()> {
    let name = run.name();
    let actions = machine::simulate(goal, &obs.state());
    let mut text = format!(
        "dry run: stage {name} (alias {}) serves {}\n",
        run.target.alias, obs.alias
    );
    let mut event = events::DryRun {
        stage: name.to_string(),
        command: command.to_string(),
        alias: run.target.alias.clone(),
        from: events::AliasJson::of(&obs.alias),
        ..events::DryRun::default()
    };
    if run.stage.engine == Engine::CodeDeploy {
        event.engine = Some("codedeploy".into());
    }
    if let Goal::Rollout(machine::Rollout {
        shifter: Shifter::CodeDeploy {
            following: Some(d), ..
        },
        candidate,
        stable,
        ..
    }) = goal
    {
        event.follow =
            Some(json!({"deployment_id": d.id, "candidate": v(*candidate), "stable": v(*stable)}));
    }
    let mut appspec = None;
    let mut json_actions = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        let (line, j) = describe(run, command, a, probe);
        text += &format!("  {}. {line}\n", i + 1);
        json_actions.push(j);
        match a {
            Action::CreateDeployment {
                candidate,
                stable,
                config,
            } => {
                let (spec, req) = cd_engine::request(run, command, *candidate, *stable, *config);
                event.request = Some(req.to_json());
                appspec = Some(spec.to_json());
            }
            Action::StopDeployment { deployment, .. } => {
                event.stop =
                    Some(json!({"deployment_id": deployment, "auto_rollback_enabled": true}));
            }
            _ => {}
        }
    }
    if let Some(spec) = &appspec {
        text += &format!(
            "AppSpec:\n{}",
            serde_json::to_string_pretty(spec).unwrap_or_default()
        );
    }
    event.appspec = appspec;
    event.actions = Some(json_actions);
    run.ui().emit_result(text.trim_end(), &event);
    Ok(())
}

pub(crate) fn describe<C: Cloud>(
    run: &Run<'_, C>,
    command: &str,
    a: &Action,
    probe: Option<&ProbePlan>,
) -> (String, DryAction) {
    match a {
        Action::Write(w) => {
            let routing = match w.to.split {
                Some(s) => format!(
                    "version {} with {} to version {} (AdditionalVersionWeights {{\"{}\": {}}})",
                    run.label(w.to.version),
                    s.weight,
                    run.label(s.version),
                    s.version,
                    s.weight.fraction()
                ),
                None => format!("version {}, routing cleared", run.label(w.to.version)),
            };
            let note = w.note.format();
            let line = if w.kind == machine::WriteKind::Note {
                format!(
                    "note: alias {} keeps its routing ({}), description \"{note}\"",
                    run.target.alias, w.to
                )
            } else {
                format!(
                    "{}: alias {} -> {routing}, description \"{note}\"",
                    w.kind.as_str(),
                    run.target.alias
                )
            };
            (
                line,
                DryAction::Write {
                    kind: w.kind.as_str().to_string(),
                    to: events::AliasJson::of(&w.to),
                    description: note,
                },
            )
        }
        Action::Bake {
            step,
            of,
            weight,
            bake,
        } => (
            format!(
                "bake step {step}/{of} at {weight} for {}, watching {}",
                format_duration(*bake),
                run.source_names(probe).join(", ")
            ),
            DryAction::Bake {
                step: *step,
                of: *of,
                weight: events::Percent(*weight),
                bake_seconds: events::Seconds(*bake),
            },
        ),
        Action::CreateDeployment {
            candidate,
            stable,
            config,
        } => {
            let (_, req) = cd_engine::request(run, command, *candidate, *stable, *config);
            (
                format!(
                    "CreateDeployment in CodeDeploy application {} group {} with deployment configuration {} ({}), description \"{}\"",
                    req.application,
                    req.group,
                    req.config,
                    config.routing_type(),
                    req.description
                ),
                DryAction::CreateDeployment {
                    candidate: v(*candidate),
                    stable: v(*stable),
                    deployment_config: req.config,
                },
            )
        }
        Action::Follow { deployment } => {
            // A deployment not created yet has no id.
            let which = if deployment.is_empty() {
                "the deployment".to_string()
            } else {
                format!("deployment {deployment}")
            };
            (
                format!(
                    "follow {which}, judging the candidate with {} (a fail stops it with automatic rollback)",
                    run.source_names(None).join(", ")
                ),
                DryAction::Follow {
                    deployment_id: (!deployment.is_empty()).then(|| deployment.clone()),
                },
            )
        }
        Action::StopDeployment { deployment, reason } => (
            format!(
                "StopDeployment {deployment} with autoRollbackEnabled (CodeDeploy takes the traffic back): {reason}"
            ),
            DryAction::StopDeployment {
                deployment_id: deployment.clone(),
                reason: reason.clone(),
            },
        ),
        Action::Done(d) => {
            let what = match d {
                Done::Noop(m) => m.clone(),
                Done::Split(_, w) => {
                    format!("leave the split at {w} (advance, complete or rollback next)")
                }
                Done::Completed(c) => format!("done: version {c} serves all traffic"),
                Done::RolledBack { to, .. } | Done::RolledBackByOperator { to } => {
                    format!("done: version {to} serves all traffic")
                }
                Done::Stranded(m) => m.clone(),
            };
            (what.clone(), DryAction::Done { result: what })
        }
        Action::Refuse(e) => (
            format!("refused: {e}"),
            DryAction::Refuse {
                reason: e.to_string(),
            },
        ),
    }
}

impl<'a, C: Cloud> Run<'a, C> {
    /// What the decision function is given: the stage as read, and the upstream stage's
    /// alias where the candidate comes from there.
    pub fn observed(
        &self,
        upstream: Option<Upstream>,
        deployment: Option<DeploymentView>,
    ) -> Observed {
        Observed {
            stage: self.name().to_string(),
            alias: self.alias.view,
            note: Note::parse(&self.alias.description),
            published: self
                .versions
                .iter()
                .map(|i| Published {
                    version: i.version,
                    description: i.description.clone(),
                })
                .collect(),
            upstream,
            deployment,
        }
    }

    pub fn subject(&self, candidate: Version, stable: Version) -> Subject {
        let (candidate, weight) = match self.alias.view.split {
            Some(s) if s.version == candidate => (Some(candidate), s.weight),
            None if self.alias.view.version == candidate => (Some(candidate), Weight::FULL),
            _ => (Some(candidate), Weight::ZERO),
        };
        Subject {
            function: self.ctx.function.to_string(),
            stage: self.name().to_string(),
            alias: self.target.alias.clone(),
            stable,
            candidate,
            weight,
        }
    }
}
