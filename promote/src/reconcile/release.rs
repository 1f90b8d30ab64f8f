//! The executor of a release of several functions (`rollout::machine::release`): one `Run`
//! per function over its own cloud connection, every alias write of a step before one bake
//! that judges each function on its own evidence, and any failure taking every function of
//! the release back (exit 4). A write that fails part-way through a step, or a bake that
//! cannot go on for one function (its alias changed by someone else), fails the release: the
//! functions already written are taken back before the run exits, and an alias someone else
//! moved is left as they left it. `--dry-run` prints what
//! `simulate_release` gets from the same decision function.
//!
//! On a stage CodeDeploy shifts, each function is one deployment of its own application and
//! group: all are created, then followed side by side (`release_cd`), and any failure records
//! the rollback on the notes and stops every deployment still running with CodeDeploy's
//! rollback. CodeDeploy cannot hold the functions at one step: each deployment keeps its own
//! clock (docs/engines.md).

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rollout::machine::release::{
    self, FunctionObserved, ReleaseAction, ReleaseGoal, decide_release, fail, failure_of,
    record_bake, record_write, resolve_release, simulate_release,
};
use rollout::machine::{self, Action, Done, Goal, Intent, Overrides, State};
use rollout::note::Note;
use rollout::{Version, format_duration};

use crate::cli::events;
use crate::cli::exit::Exit;
use crate::cloud::aws::{AliasWrite, Cloud};
use crate::ctx::Ctx;
use crate::reconcile::cd_engine;
use crate::reconcile::commands::{
    CdEnd, ExecOpts, announce, describe, finish, refusal, rollback_failed, say_probe, say_write,
    warn_short_bake,
};
use crate::reconcile::release_cd::{self, Deployments, Sources};
use crate::reconcile::run::{BakeEnd, Run};

/// Reads the stage for every function, resolves the release, and applies its decisions
/// until done. `versions` names candidates (`--release NAME=N`); the others come from the
/// upstream stage, function by function.
pub async fn execute_release<'a, C: Cloud>(
    ctxs: &'a [Ctx<'a, C>],
    stage: &str,
    intent: Intent,
    versions: &BTreeMap<String, Version>,
    opts: ExecOpts,
) -> Result<()> {
    let command = intent.command();
    let mut runs = Vec::new();
    let mut observed = Vec::new();
    for ctx in ctxs {
        let run = ctx.open(stage).await?;
        let upstream = match &intent {
            Intent::Rollback { .. } => None,
            _ => run.upstream_view().await?,
        };
        // On a CodeDeploy stage, the deployment in flight for the function's own group: a
        // rerun follows (or stops) it rather than creating another.
        let deployment = cd_engine::observe(&run).await?;
        observed.push(FunctionObserved {
            function: ctx.function.to_string(),
            observed: run.observed(upstream, deployment),
        });
        runs.push(run);
    }
    let Some(first) = runs.first() else {
        bail!("the project lists no function");
    };
    let overrides = Overrides {
        bake: opts.bake,
        skip_upstream: opts.skip_upstream.clone(),
        ..Overrides::default()
    };
    let goal =
        resolve_release(first.stage, &intent, versions, &observed, overrides).map_err(|r| {
            let i = index(&runs, &r.function);
            refusal(&runs[i], *r.error).context(format!("function {}", r.function))
        })?;
    warn_short_bake(first, opts.bake);
    // Each moving function's run, in the goal's order.
    let order: Vec<usize> = goal.moves.iter().map(|(f, _)| index(&runs, f)).collect();
    let probes: Vec<_> = goal
        .moves
        .iter()
        .zip(&order)
        .map(|((_, g), &i)| runs[i].probe_plan(&opts.evidence.probe, g))
        .collect();
    if opts.dry_run {
        return dry_run(&runs, &order, &goal, &observed, command, &probes);
    }
    for (f, why) in &goal.stays {
        runs[index(&runs, f)]
            .ui()
            .say(format!("{stage}: function {f}: {why}"));
    }
    if let Some(why) = &goal.undo {
        first.ui().say(format!(
            "{stage}: an earlier run took part of release {} back ({why}); taking the rest back",
            show_release(&goal.release)
        ));
    } else if goal.moves.len() > 1 {
        first.ui().say(format!(
            "{stage}: release {} moves {} in lockstep",
            show_release(&goal.release),
            goal.functions().join(", ")
        ));
    }
    for (((_, g), &i), p) in goal.moves.iter().zip(&order).zip(&probes) {
        if let Goal::Rollout(r) = g {
            announce(&runs[i], command, r);
        }
        if let Some(p) = p {
            say_probe(&runs[i], p);
        }
    }
    let poll = first.poll(opts.poll);
    let mut mems = goal.memory();
    let mut sources: Vec<_> = order
        .iter()
        .zip(&probes)
        .map(|(&i, p)| runs[i].sources(p.as_ref()))
        .collect();
    for (k, ((f, g), &i)) in goal.moves.iter().zip(&order).enumerate() {
        if let Goal::Rollout(r) = g {
            let subject = runs[i].subject(r.candidate, r.stable);
            if let Some(reason) = runs[i].preflight(&mut sources[k], &subject).await? {
                fail(&mut mems, &failure_of(&goal, f, &reason));
            }
        }
    }
    // The first write that failed: the release is taken back, then the run says why.
    let mut write_error: Option<anyhow::Error> = None;
    let mut cd = Deployments {
        running: order
            .iter()
            .map(|&i| observed[i].observed.deployment.clone())
            .collect(),
        ends: order
            .iter()
            .map(|&i| CdEnd {
                deployment_id: observed[i]
                    .observed
                    .deployment
                    .as_ref()
                    .map(|d| d.id.clone()),
                rollback_running: None,
            })
            .collect(),
    };
    // A note that could not be written on a CodeDeploy stage: the run goes on as if it had
    // been (the outcome does not depend on it), having said so.
    let mut unwritten: Vec<Option<Note>> = vec![None; order.len()];
    loop {
        let states: Vec<State> = order
            .iter()
            .enumerate()
            .map(|(k, &i)| State {
                alias: runs[i].alias.view,
                note: unwritten[k]
                    .clone()
                    .unwrap_or_else(|| Note::parse(&runs[i].alias.description)),
                deployment: cd.running[k].clone(),
            })
            .collect();
        match decide_release(&goal, &states, &mems) {
            ReleaseAction::Apply {
                function,
                action: Action::Write(w),
            } => {
                let k = goal.moves.iter().position(|(f, _)| *f == function);
                let (k, i) = (k.expect("a moving function"), index(&runs, &function));
                let rollback = matches!(
                    w.kind,
                    machine::WriteKind::AutoRollback | machine::WriteKind::Rollback
                );
                let run = &mut runs[i];
                let note_only = w.kind == machine::WriteKind::Note;
                if !rollback && !note_only && run.ctx.interrupt.is_set() {
                    return Err(run.interrupted(&goal.moves[k].1, mems[k].wrote));
                }
                let from = run.alias.view;
                if note_only {
                    // On the alias as CodeDeploy left it (or is moving it), whatever it
                    // routes now.
                    reread(run).await;
                    let w = machine::Write {
                        to: run.alias.view,
                        ..w.clone()
                    };
                    if let Err(e) = run.write(&AliasWrite::of(&w), w.kind.as_str(), false).await {
                        run.ui().say(format!(
                            "{stage}: warning: the note on alias {} of function {function} could not be written ({e:#}); `promote status` will not show this outcome",
                            run.target.alias
                        ));
                        unwritten[k] = Some(w.note.clone());
                        continue;
                    }
                    unwritten[k] = None;
                } else if rollback {
                    let _held = run.ctx.interrupt.hold();
                    let failure = mems[k].failure.clone();
                    run.write(&AliasWrite::of(&w), w.kind.as_str(), true)
                        .await
                        .map_err(|e| rollback_failed(run, e, failure.as_deref()))?;
                } else if let Err(e) = run.write(&AliasWrite::of(&w), w.kind.as_str(), false).await
                {
                    let reason = format!(
                        "writing alias {} of function {function} failed: {e:#}",
                        run.target.alias
                    );
                    run.ui().say(format!(
                        "{stage}: {reason}; taking every function of the release back"
                    ));
                    fail(&mut mems, &reason);
                    write_error.get_or_insert(e);
                    reread(run).await;
                    continue;
                }
                record_write(&goal, &mut mems, &function);
                say_write(run, &w, &from);
            }
            ReleaseAction::Apply {
                function,
                action:
                    Action::CreateDeployment {
                        candidate,
                        stable,
                        config,
                    },
            } => {
                let k = goal.moves.iter().position(|(f, _)| *f == function);
                let (k, i) = (k.expect("a moving function"), index(&runs, &function));
                let run = &runs[i];
                if run.ctx.interrupt.is_set() {
                    return Err(run.interrupted(&goal.moves[k].1, mems[k].wrote));
                }
                match cd_engine::create(run, command, candidate, stable, config).await {
                    Ok(d) => {
                        mems[k].created = Some(d.id.clone());
                        cd.ends[k].deployment_id = Some(d.id.clone());
                        cd.running[k] = Some(d);
                    }
                    // The deployments already created are stopped: never half a release.
                    Err(e) => {
                        let reason =
                            format!("creating the deployment of function {function} failed: {e:#}");
                        run.ui().say(format!(
                            "{stage}: {reason}; taking every function of the release back"
                        ));
                        fail(&mut mems, &reason);
                        write_error.get_or_insert(e);
                    }
                }
            }
            ReleaseAction::Apply { function, action } => {
                bail!("function {function}: {action:?} has no place in a release on stage {stage}");
            }
            ReleaseAction::Stop { stops } => {
                release_cd::stop_each(&mut runs, &order, &goal, &mut mems, &mut cd, &stops).await?;
            }
            ReleaseAction::Follow { deployments } => {
                release_cd::follow_each(
                    &mut runs,
                    &mut sources,
                    &order,
                    &goal,
                    &mut mems,
                    &mut cd,
                    &deployments,
                    poll,
                )
                .await?;
            }
            ReleaseAction::Bake {
                step,
                of,
                weight,
                bake,
                functions,
            } => {
                let label = format!("step {step}/{of} at {weight}");
                let ends = bake_each(
                    &mut runs,
                    &mut sources,
                    &goal,
                    &order,
                    &functions,
                    bake,
                    poll,
                    &label,
                )
                .await;
                let mut verdicts = Vec::new();
                for (f, end) in ends {
                    let i = index(&runs, &f);
                    // A bake that could not go on (its alias changed under it, its evidence
                    // unreadable) fails the release: the others are not left half-released.
                    let end = match end {
                        Ok(end) => end,
                        Err(e) => {
                            verdicts.push((f.clone(), Err(format!("{e:#}"))));
                            write_error.get_or_insert(e);
                            reread(&mut runs[i]).await;
                            continue;
                        }
                    };
                    match end {
                        BakeEnd::Passed => verdicts.push((f.clone(), Ok(()))),
                        BakeEnd::Failed(reason) => verdicts.push((f.clone(), Err(reason))),
                        BakeEnd::Held(reason) => return Err(runs[i].held(&reason)),
                        BakeEnd::Interrupted => {
                            let k = goal.moves.iter().position(|(g, _)| *g == f).unwrap_or(0);
                            return Err(runs[i].interrupted(&goal.moves[k].1, true));
                        }
                    }
                }
                record_bake(&goal, &mut mems, weight, &verdicts);
            }
            ReleaseAction::Refuse(r) => {
                let i = index(&runs, &r.function);
                return Err(refusal(&runs[i], *r.error).context(format!("function {}", r.function)));
            }
            ReleaseAction::Done(done) => {
                let ends: Vec<(String, CdEnd)> = goal
                    .moves
                    .iter()
                    .map(|(f, _)| f.clone())
                    .zip(std::mem::take(&mut cd.ends))
                    .collect();
                return finish_release(&runs, &goal, &observed, command, done, write_error, &ends);
            }
        }
    }
}

/// The alias as it is now, after a failure left this run's view unsure: the rollback then
/// writes only what still carries the release's candidate.
async fn reread<C: Cloud>(run: &mut Run<'_, C>) {
    if let Ok(a) = run.ctx.cloud.get_alias(&run.target.alias).await {
        run.alias = a;
    }
}

fn index<C>(runs: &[Run<'_, C>], function: &str) -> usize {
    runs.iter()
        .position(|r| r.ctx.function == function)
        .expect("every function has a run")
}

/// `app 4, birthday 7`.
fn show_release(release: &[(String, Version)]) -> String {
    release
        .iter()
        .map(|(f, v)| format!("{f} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One bake at the step for every function listed, side by side, each judged on its own
/// sources: the step's bake takes as long for a release as for one function. Each function's
/// end, in the order they ended; a failing (or held, or interrupted) one ends the others'
/// bakes, which then have no end of their own.
#[allow(clippy::too_many_arguments)]
async fn bake_each<'a, C: Cloud>(
    runs: &mut [Run<'a, C>],
    sources: &mut [Sources<'a>],
    goal: &ReleaseGoal,
    order: &[usize],
    functions: &[String],
    bake: std::time::Duration,
    poll: std::time::Duration,
    label: &str,
) -> Vec<(String, Result<BakeEnd>)> {
    // Pair each function's run with its sources, in `functions`' order.
    let mut pairs: Vec<(usize, &mut Run<'a, C>, &mut Sources<'a>)> = Vec::new();
    let mut runs_by: Vec<Option<&mut Run<'a, C>>> = runs.iter_mut().map(Some).collect();
    let mut sources_by: Vec<Option<&mut Sources<'a>>> = sources.iter_mut().map(Some).collect();
    for f in functions {
        let k = goal
            .moves
            .iter()
            .position(|(g, _)| g == f)
            .expect("a baking function moves");
        if let (Some(run), Some(src)) = (runs_by[order[k]].take(), sources_by[k].take()) {
            pairs.push((k, run, src));
        }
    }
    let mut ordered: Vec<_> = pairs;
    ordered.sort_by_key(|(k, ..)| functions.iter().position(|f| *f == goal.moves[*k].0));
    let mut baking: FuturesUnordered<_> = ordered
        .into_iter()
        .map(|(k, run, src)| {
            let subject = match &goal.moves[k].1 {
                Goal::Rollout(r) => run.subject(r.candidate, r.stable),
                _ => unreachable!("only a rollout bakes"),
            };
            let function = goal.moves[k].0.clone();
            let label = format!("{label} ({function})");
            async move { (function, run.bake(src, &subject, bake, poll, &label).await) }
        })
        .collect();
    // Each function watches its own evidence (its own alarms), so one that fails does not
    // fail the others' bakes: the first end that is not a pass ends the step for every
    // function. The bakes still running are dropped, which is safe: a bake only reads.
    let mut ends = Vec::new();
    while let Some((function, end)) = baking.next().await {
        let passed = matches!(end, Ok(BakeEnd::Passed));
        ends.push((function, end));
        if !passed {
            break;
        }
    }
    ends
}

fn finish_release<C: Cloud>(
    runs: &[Run<'_, C>],
    goal: &ReleaseGoal,
    observed: &[FunctionObserved],
    command: &str,
    done: Vec<(String, Done)>,
    write_error: Option<anyhow::Error>,
    ends: &[(String, CdEnd)],
) -> Result<()> {
    let no_end = CdEnd::default();
    let end_of = |f: &str| {
        ends.iter()
            .find(|(g, _)| g == f)
            .map_or(&no_end, |(_, e)| e)
    };
    let obs_of = |f: &str| {
        observed
            .iter()
            .find(|o| o.function == f)
            .map(|o| &o.observed)
            .expect("every function was observed")
    };
    if let Some((_, Done::RolledBack { reason, .. })) = release::rolled_back(&done) {
        let reason = reason.clone();
        let mut back = Vec::new();
        // A function CodeDeploy left where it was (its deployment ended without a
        // rollback): the release is not consistent, which is exit 1, not 4.
        let mut stranded = Vec::new();
        for (f, d) in &done {
            let run = &runs[index(runs, f)];
            match d {
                Done::RolledBack { to, .. } => {
                    run.ui().emit(&events::RolledBack {
                        stage: run.name().to_string(),
                        reason: reason.clone(),
                        version: to.to_string(),
                    });
                    back.push(match &end_of(f).rollback_running {
                        None => format!("{f} serves version {} only", run.label(*to)),
                        Some(id) => format!(
                            "CodeDeploy is still taking {f} back to version {} (rollback deployment {id})",
                            run.label(*to)
                        ),
                    });
                }
                Done::Stranded(what) => stranded.push(format!("function {f}: {what}")),
                _ => {}
            }
        }
        let stage = &goal.stage;
        // The failure the release went back for, when the reason does not say it already.
        let cause = write_error
            .map(|e| format!("{e:#}"))
            .filter(|e| !reason.contains(e.as_str()))
            .map_or(String::new(), |e| format!(" (the failed write: {e})"));
        if !stranded.is_empty() {
            return Err(anyhow::anyhow!(
                "{reason}; on stage {stage}, {}; but {}{cause}",
                back.join(", "),
                stranded.join("; ")
            ));
        }
        return Err(Exit::RolledBack(format!(
            "{reason}; every function of the release on stage {stage} was taken back: {}{cause}",
            back.join(", ")
        ))
        .into());
    }
    let mut first_error = None;
    for (f, d) in done {
        let run = &runs[index(runs, &f)];
        if let Err(e) = finish(run, command, d, obs_of(&f), end_of(&f)) {
            first_error.get_or_insert(e.context(format!("function {f}")));
        }
    }
    if goal.moves.is_empty() {
        let stays: Vec<String> = goal.stays.iter().map(|(f, _)| f.clone()).collect();
        runs[0].ui().say(format!(
            "{}: nothing to do for {}",
            goal.stage,
            stays.join(", ")
        ));
    }
    match (first_error, write_error) {
        (Some(e), _) => Err(e),
        (None, Some(e)) => Err(e),
        (None, None) => Ok(()),
    }
}

fn dry_run<C: Cloud>(
    runs: &[Run<'_, C>],
    order: &[usize],
    goal: &ReleaseGoal,
    observed: &[FunctionObserved],
    command: &str,
    probes: &[Option<crate::evidence::probe_source::ProbePlan>],
) -> Result<()> {
    let stage = &goal.stage;
    let states: Vec<State> = order
        .iter()
        .map(|&i| observed[i].observed.state())
        .collect();
    let actions = simulate_release(goal, &states);
    let mut text = format!(
        "dry run: stage {stage}, release {}\n",
        show_release(&goal.release)
    );
    for (f, why) in &goal.stays {
        text += &format!("  function {f}: {why}\n");
    }
    let mut per_function: BTreeMap<String, Vec<events::DryAction>> = BTreeMap::new();
    // On a CodeDeploy stage, each function's CreateDeployment request, for the JSON events.
    let mut requests: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    // One function's action: its line, and its JSON action and request recorded.
    let one = |per_function: &mut BTreeMap<String, Vec<events::DryAction>>,
               requests: &mut BTreeMap<String, serde_json::Value>,
               function: &str,
               action: &Action| {
        let k = goal
            .moves
            .iter()
            .position(|(f, _)| f == function)
            .unwrap_or(0);
        let run = &runs[order[k]];
        if let Action::CreateDeployment {
            candidate,
            stable,
            config,
        } = action
        {
            let (_, req) = cd_engine::request(run, command, *candidate, *stable, *config);
            requests.insert(function.to_string(), req.to_json());
        }
        let (line, j) = describe(run, command, action, probes[k].as_ref());
        per_function
            .entry(function.to_string())
            .or_default()
            .push(j);
        format!("function {function}: {line}")
    };
    for (n, a) in actions.iter().enumerate() {
        let line = match a {
            ReleaseAction::Apply { function, action } => {
                one(&mut per_function, &mut requests, function, action)
            }
            ReleaseAction::Stop { stops } => {
                let each: Vec<String> = stops
                    .iter()
                    .map(|(f, deployment, reason)| {
                        let stop = Action::StopDeployment {
                            deployment: deployment.clone(),
                            reason: reason.clone(),
                        };
                        one(&mut per_function, &mut requests, f, &stop)
                    })
                    .collect();
                format!("at once: {}", each.join("; "))
            }
            ReleaseAction::Follow { deployments } => {
                let names: Vec<&str> = deployments.iter().map(|(f, _)| f.as_str()).collect();
                for (f, deployment) in deployments {
                    let follow = Action::Follow {
                        deployment: deployment.clone(),
                    };
                    one(&mut per_function, &mut requests, f, &follow);
                }
                format!(
                    "follow the deployments of {} side by side, judging each function on its own evidence; a failure of any stops every one with automatic rollback",
                    names.join(", ")
                )
            }
            ReleaseAction::Bake {
                step,
                of,
                weight,
                bake,
                functions,
            } => {
                for f in functions {
                    per_function
                        .entry(f.clone())
                        .or_default()
                        .push(events::DryAction::Bake {
                            step: *step,
                            of: *of,
                            weight: events::Percent(*weight),
                            bake_seconds: events::Seconds(*bake),
                        });
                }
                format!(
                    "bake step {step}/{of} at {weight} for {}, judging {} each on its own evidence",
                    format_duration(*bake),
                    functions.join(", ")
                )
            }
            ReleaseAction::Done(d) => {
                let each: Vec<String> = d
                    .iter()
                    .map(|(f, d)| match d {
                        Done::Completed(v) => format!("{f} serves version {v}"),
                        Done::Split(v, w) => format!("{f} gives version {v} {w}"),
                        Done::RolledBack { to, .. } | Done::RolledBackByOperator { to } => {
                            format!("{f} serves version {to}")
                        }
                        Done::Noop(m) | Done::Stranded(m) => format!("{f}: {m}"),
                    })
                    .collect();
                format!("done: {}", each.join(", "))
            }
            ReleaseAction::Refuse(r) => format!("refused: function {}: {}", r.function, r.error),
        };
        text += &format!("  {}. {line}\n", n + 1);
    }
    let first = &runs[0];
    let codedeploy = first.stage.engine == rollout::codedeploy::Engine::CodeDeploy;
    for (f, actions) in per_function {
        let run = &runs[index(runs, &f)];
        run.ui().emit(&events::DryRun {
            stage: stage.clone(),
            command: command.to_string(),
            alias: run.target.alias.clone(),
            from: events::AliasJson::of(&run.alias.view),
            actions: Some(actions),
            engine: codedeploy.then(|| "codedeploy".to_string()),
            request: requests.remove(&f),
            ..events::DryRun::default()
        });
    }
    first.ui().say(text.trim_end());
    Ok(())
}
