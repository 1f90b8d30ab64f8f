//! The executor of a release of several functions (`rollout::machine::release`): one `Run`
//! per function over its own cloud connection, every alias write of a step before one bake
//! that judges each function on its own evidence, and any failure taking every function of
//! the release back (exit 4). A write that fails part-way through a step, or a bake that
//! cannot go on for one function (its alias changed by someone else), fails the release: the
//! functions already written are taken back before the run exits, and an alias someone else
//! moved is left as they left it. `--dry-run` prints what
//! `simulate_release` gets from the same decision function.
//!
//! Only stages whose aliases promote shifts itself run a release: CodeDeploy shifts one alias
//! per deployment, so it cannot hold several functions at the same step (docs/promote.md).

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rollout::codedeploy::Engine;
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
use crate::reconcile::commands::{
    CdEnd, ExecOpts, announce, describe, finish, refusal, rollback_failed, say_probe, say_write,
    warn_short_bake,
};
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
        observed.push(FunctionObserved {
            function: ctx.function.to_string(),
            observed: run.observed(upstream, None),
        });
        runs.push(run);
    }
    let Some(first) = runs.first() else {
        bail!("the project lists no function");
    };
    if first.stage.engine == Engine::CodeDeploy {
        return Err(Exit::BadInput(format!(
            "stage {stage} is shifted by CodeDeploy, which moves one function's alias per deployment and cannot hold several functions at one step; a release of several functions needs \"engine\": \"alias\" in {}",
            first.stage.path.display()
        ))
        .into());
    }
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
    loop {
        let states: Vec<State> = order
            .iter()
            .map(|&i| State {
                alias: runs[i].alias.view,
                note: Note::parse(&runs[i].alias.description),
                deployment: None,
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
                if !rollback && run.ctx.interrupt.is_set() {
                    return Err(run.interrupted(&goal.moves[k].1, mems[k].wrote));
                }
                let from = run.alias.view;
                if rollback {
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
            ReleaseAction::Apply { function, action } => {
                bail!(
                    "function {function}: {action:?} has no place on stage {stage}, whose aliases promote shifts"
                );
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
                return finish_release(&runs, &goal, &observed, command, done, write_error);
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

/// One function's evidence sources.
type Sources<'a> = Vec<Box<dyn crate::evidence::Source + 'a>>;

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
) -> Result<()> {
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
        for (f, d) in &done {
            let run = &runs[index(runs, f)];
            if let Done::RolledBack { to, .. } = d {
                run.ui().emit(&events::RolledBack {
                    stage: run.name().to_string(),
                    reason: reason.clone(),
                    version: to.to_string(),
                });
                back.push(format!("{f} serves version {} only", run.label(*to)));
            }
        }
        let stage = &goal.stage;
        // The failure the release went back for, when the reason does not say it already.
        let cause = write_error
            .map(|e| format!("{e:#}"))
            .filter(|e| !reason.contains(e.as_str()))
            .map_or(String::new(), |e| format!(" (the failed write: {e})"));
        return Err(Exit::RolledBack(format!(
            "{reason}; every function of the release on stage {stage} was taken back: {}{cause}",
            back.join(", ")
        ))
        .into());
    }
    let mut first_error = None;
    for (f, d) in done {
        let run = &runs[index(runs, &f)];
        if let Err(e) = finish(run, command, d, obs_of(&f), &CdEnd::default()) {
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
    for (n, a) in actions.iter().enumerate() {
        let line = match a {
            ReleaseAction::Apply { function, action } => {
                let k = goal
                    .moves
                    .iter()
                    .position(|(f, _)| f == function)
                    .unwrap_or(0);
                let run = &runs[order[k]];
                let (line, j) = describe(run, command, action, probes[k].as_ref());
                per_function.entry(function.clone()).or_default().push(j);
                format!("function {function}: {line}")
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
    for (f, actions) in per_function {
        let run = &runs[index(runs, &f)];
        run.ui().emit(&events::DryRun {
            stage: stage.clone(),
            command: command.to_string(),
            alias: run.target.alias.clone(),
            from: events::AliasJson::of(&run.alias.view),
            actions: Some(actions),
            ..events::DryRun::default()
        });
    }
    first.ui().say(text.trim_end());
    Ok(())
}
