//! The mutating commands: deploy, canary, advance, complete, rollback.
//!
//! Each one reads the stage's state from AWS (a [`Run`]), asks `rollout::plan` what to do,
//! checks everything it can before the first write, then writes the alias through
//! [`Run::write`] and watches the alarms with [`Run::bake`].

use std::time::Duration;

use anyhow::Result;
use rollout::plan::{self, AliasNote, Move};
use rollout::{Split, Step, Strategy, Version, Weight};
use serde_json::{Value, json};

use crate::aws::{AliasWrite, Cloud};
use crate::exit::Exit;
pub use crate::run::Ctx;
use crate::run::{
    BakeEnd, Run, configured_bake, noop, secs_json, split_json, step_label, v, view_json,
    watch_clause,
};

pub struct DeployOpts {
    pub stage: String,
    pub version: Option<Version>,
    pub allow_downgrade: bool,
    pub bake: Option<Duration>,
    pub poll: Option<Duration>,
    pub dry_run: bool,
}

pub async fn deploy<C: Cloud>(ctx: &Ctx<'_, C>, o: DeployOpts) -> Result<()> {
    let mut run = ctx.open(&o.stage).await?;
    let name = run.name().to_string();
    let bake = match (&run.stage.strategy, o.bake) {
        (Strategy::AllAtOnce { .. }, Some(b)) => b,
        (Strategy::AllAtOnce { bake }, None) => *bake,
        (Strategy::Canary { .. }, _) => {
            return Err(Exit::BadInput(format!(
                "stage {name} uses the canary strategy ({}); move it with `promote canary --stage {name}`",
                run.stage.path.display()
            ))
            .into());
        }
    };
    if let Some(s) = run.alias.view.split {
        return Err(Exit::Refused(format!(
            "{name} is mid-canary with version {} at {}; complete it (`promote complete --stage {name}`) or roll it back (`promote rollback --stage {name}`) first",
            s.version, s.weight
        ))
        .into());
    }
    let version = run.candidate(o.version).await?;
    plan::validate_target(version, &run.published()).map_err(Exit::from)?;
    let stable = run.alias.view.version;
    if run.semver_guard(version, o.allow_downgrade)? == Move::NoOp {
        noop(run.ui(), &name, version, "deploy");
        return Ok(());
    }
    let poll = run.poll(o.poll);
    run.preflight().await?;
    let (from, to) = (run.label(stable), run.label(version));
    if o.dry_run {
        let text = format!(
            "dry run: would move alias {} of stage {name} from version {from} to version {to} (routing cleared, description \"{}\"){}",
            run.target.alias,
            AliasNote {
                previous: Some(stable)
            }
            .format(),
            watch_clause(run.stage.alarms.len(), bake)
        );
        run.ui().result(&text, json!({"event": "dry_run", "command": "deploy", "stage": name, "alias": run.target.alias,
            "from": view_json(&run.alias.view), "to": {"version": v(version), "candidate": null}, "bake_seconds": secs_json(bake)}));
        return Ok(());
    }
    run.stop_if_interrupted("the deploy")?;
    run.write(AliasWrite::serve(version, stable), "deploy")
        .await?;
    run.ui().say(format!(
        "{name}: alias {} now serves version {to} (was {from})",
        run.target.alias
    ));
    if !bake.is_zero() {
        match run.bake(bake, poll, &format!("deployed {version}")).await? {
            BakeEnd::Done => {}
            BakeEnd::Failed(r) => {
                let back = AliasWrite::serve(stable, version);
                return run.roll_back(r, back, format!("version {version}")).await;
            }
            BakeEnd::Interrupted => return Err(run.interrupted(version)),
        }
    }
    let text = format!("{name} serves version {to}");
    run.ui().result(&text, json!({"event": "done", "stage": name, "result": "deployed", "version": v(version), "previous": v(stable)}));
    Ok(())
}

pub struct CanaryOpts {
    pub stage: String,
    pub version: Option<Version>,
    pub weight: Option<Weight>,
    pub bake: Option<Duration>,
    pub poll: Option<Duration>,
    pub allow_downgrade: bool,
    pub dry_run: bool,
}

pub async fn canary<C: Cloud>(ctx: &Ctx<'_, C>, o: CanaryOpts) -> Result<()> {
    let mut run = ctx.open(&o.stage).await?;
    let name = run.name().to_string();
    let candidate = run.candidate(o.version).await?;
    let published = run.published();
    plan::validate_target(candidate, &published).map_err(Exit::from)?;
    let stable = run.alias.view.version;
    if run.semver_guard(candidate, o.allow_downgrade)? == Move::NoOp {
        noop(run.ui(), &name, candidate, "roll out");
        return Ok(());
    }
    let current = run
        .alias
        .view
        .split
        .filter(|s| s.version == candidate)
        .map(|s| s.weight);
    let single = o.weight.is_some();
    let mut steps: Vec<Step> = match (o.weight, &run.stage.strategy) {
        (Some(w), _) => vec![Step {
            weight: w,
            bake: configured_bake(run.stage, w),
        }],
        (None, Strategy::Canary { steps }) => plan::remaining_steps(steps, current),
        (None, Strategy::AllAtOnce { .. }) => {
            return Err(Exit::BadInput(format!(
                "stage {name} uses the all_at_once strategy ({}); use `promote deploy --stage {name}`, or give --weight W for a one-off split",
                run.stage.path.display()
            ))
            .into());
        }
    };
    if let Some(b) = o.bake {
        for s in &mut steps {
            s.bake = b;
        }
    }
    for s in steps.iter().filter(|s| !s.weight.is_full()) {
        plan::validate_split(
            stable,
            Split {
                version: candidate,
                weight: s.weight,
            },
            &published,
        )
        .map_err(Exit::from)?;
    }
    let poll = run.poll(o.poll);
    run.preflight().await?;
    let (from, to) = (run.label(stable), run.label(candidate));
    let plan_json: Vec<Value> = steps
        .iter()
        .map(|s| json!({"weight": s.weight.percent_json(), "bake_seconds": secs_json(s.bake)}))
        .collect();
    if o.dry_run {
        let mut text = format!(
            "dry run: stage {name} (alias {}) serves {}; candidate version {to}, stable version {from}\n",
            run.target.alias, run.alias.view
        );
        for (i, s) in steps.iter().enumerate() {
            let action = if s.weight.is_full() {
                format!(
                    "move the alias to version {candidate} and clear the routing (description \"{}\")",
                    AliasNote {
                        previous: Some(stable)
                    }
                    .format()
                )
            } else if run.alias.view.split
                == Some(Split {
                    version: candidate,
                    weight: s.weight,
                })
            {
                format!(
                    "keep {} on version {candidate} (already in place)",
                    s.weight
                )
            } else {
                format!(
                    "route {} to version {candidate} (AdditionalVersionWeights {{\"{candidate}\": {}}})",
                    s.weight,
                    s.weight.fraction()
                )
            };
            text += &format!(
                "  {}. {action}{}\n",
                i + 1,
                watch_clause(run.stage.alarms.len(), s.bake)
            );
        }
        if single {
            text += "  then leave the split in place (advance, complete or rollback next)\n";
        }
        run.ui().result(text.trim_end(), json!({"event": "dry_run", "command": "canary", "stage": name, "alias": run.target.alias,
            "from": view_json(&run.alias.view), "candidate": v(candidate), "stable": v(stable), "steps": plan_json}));
        return Ok(());
    }
    run.ui().event(json!({"event": "plan", "stage": name, "alias": run.target.alias, "candidate": v(candidate), "stable": v(stable),
        "resumed_from": current.map(|w| w.percent_json()), "steps": plan_json}));
    if let Some(w) = current {
        run.ui().say(format!(
            "{name}: resuming the canary of version {to} at {w}"
        ));
    }
    let n = steps.len();
    for (i, s) in steps.iter().enumerate() {
        let label = step_label(i, n, s.weight);
        run.stop_if_interrupted(&label).map_err(|e| {
            if i == 0 {
                e
            } else {
                run.interrupted(candidate)
            }
        })?;
        if s.weight.is_full() {
            run.write(AliasWrite::serve(candidate, stable), "complete")
                .await?;
            run.ui().say(format!(
                "{name}: {label}: alias {} serves version {to} (was {from})",
                run.target.alias
            ));
        } else {
            let split = Split {
                version: candidate,
                weight: s.weight,
            };
            if run.alias.view.split != Some(split) {
                run.write(AliasWrite::split(stable, split), "shift").await?;
                run.ui().say(format!(
                    "{name}: {label}: {} of traffic to version {to}, the rest on {from}",
                    s.weight
                ));
            }
        }
        if s.bake.is_zero() {
            continue;
        }
        match run.bake(s.bake, poll, &label).await? {
            BakeEnd::Done => {}
            BakeEnd::Failed(r) => {
                let (back, had) = if s.weight.is_full() {
                    (
                        AliasWrite::serve(stable, candidate),
                        format!("version {candidate} (100%)"),
                    )
                } else {
                    (
                        AliasWrite::clear(stable),
                        format!("version {candidate} ({})", s.weight),
                    )
                };
                return run.roll_back(r, back, had).await;
            }
            BakeEnd::Interrupted => return Err(run.interrupted(candidate)),
        }
    }
    let done = run.alias.view;
    let (text, result) = match done.split {
        Some(s) => (
            format!(
                "{name}: version {to} takes {} of traffic (stable {from}); next: `promote advance --stage {name}`, `promote complete --stage {name}` or `promote rollback --stage {name}`",
                s.weight
            ),
            "split",
        ),
        None => (format!("{name} serves version {to}"), "completed"),
    };
    run.ui().result(&text, json!({"event": "done", "stage": name, "result": result, "alias": view_json(&done), "previous": v(stable)}));
    Ok(())
}

pub struct AdvanceOpts {
    pub stage: String,
    pub weight: Option<Weight>,
    pub bake: Option<Duration>,
    pub poll: Option<Duration>,
    pub dry_run: bool,
}

/// Moves a canary one step (or to `--weight`) and bakes like that step of `canary` would.
pub async fn advance<C: Cloud>(ctx: &Ctx<'_, C>, o: AdvanceOpts) -> Result<()> {
    let (stage, weight, dry_run) = (o.stage.as_str(), o.weight, o.dry_run);
    let mut run = ctx.open(stage).await?;
    let name = run.name().to_string();
    let steps = match &run.stage.strategy {
        Strategy::Canary { steps } => steps.clone(),
        Strategy::AllAtOnce { .. } => Vec::new(),
    };
    let next = plan::advance_to(&name, &steps, &run.alias.view, weight).map_err(Exit::from)?;
    let Some(split) = run.alias.view.split else {
        unreachable!("advance_to checked the split")
    };
    let bake = o.bake.unwrap_or_else(|| configured_bake(run.stage, next));
    let poll = run.poll(o.poll);
    if next.is_full() {
        return complete_run(run, dry_run, Some((bake, poll))).await;
    }
    let stable = run.alias.view.version;
    let new = Split {
        version: split.version,
        weight: next,
    };
    plan::validate_split(stable, new, &run.published()).map_err(Exit::from)?;
    run.preflight().await?;
    if dry_run {
        let text = format!(
            "dry run: would route {next} (was {}) of stage {name} to version {} (AdditionalVersionWeights {{\"{}\": {}}}); stable stays {}{}",
            split.weight,
            run.label(split.version),
            split.version,
            next.fraction(),
            run.label(stable),
            watch_clause(run.stage.alarms.len(), bake)
        );
        run.ui().result(&text, json!({"event": "dry_run", "command": "advance", "stage": name, "from": view_json(&run.alias.view),
            "to": {"version": v(stable), "candidate": split_json(Some(new))}}));
        return Ok(());
    }
    run.stop_if_interrupted("advancing")?;
    run.write(AliasWrite::split(stable, new), "advance").await?;
    if !bake.is_zero() {
        let label = format!("advanced to {next}");
        match run.bake(bake, poll, &label).await? {
            BakeEnd::Done => {}
            BakeEnd::Failed(r) => {
                let back = AliasWrite::clear(stable);
                return run
                    .roll_back(r, back, format!("version {} ({next})", split.version))
                    .await;
            }
            BakeEnd::Interrupted => return Err(run.interrupted(split.version)),
        }
    }
    let text = format!(
        "{name}: version {} takes {next} of traffic (was {})",
        run.label(split.version),
        split.weight
    );
    run.ui().result(&text, json!({"event": "done", "stage": name, "result": "split", "alias": view_json(&run.alias.view)}));
    Ok(())
}

pub async fn complete<C: Cloud>(ctx: &Ctx<'_, C>, stage: &str, dry_run: bool) -> Result<()> {
    let run = ctx.open(stage).await?;
    complete_run(run, dry_run, None).await
}

/// Moves the alias to the candidate; `bake` (duration, poll) watches the alarms after it
/// and returns to the stable version if one fires.
async fn complete_run<C: Cloud>(
    mut run: Run<'_, C>,
    dry_run: bool,
    bake: Option<(Duration, Duration)>,
) -> Result<()> {
    let name = run.name().to_string();
    let Some(split) = run.alias.view.split else {
        noop(
            run.ui(),
            &name,
            run.alias.view.version,
            "complete (no canary in progress)",
        );
        return Ok(());
    };
    let stable = run.alias.view.version;
    plan::validate_target(split.version, &run.published()).map_err(Exit::from)?;
    run.preflight().await?;
    let note = AliasNote {
        previous: Some(stable),
    }
    .format();
    if dry_run {
        let text = format!(
            "dry run: would move alias {} of stage {name} to version {} (was {} with {} on the candidate), clear the routing, description \"{note}\"",
            run.target.alias,
            run.label(split.version),
            run.label(stable),
            split.weight
        );
        run.ui().result(&text, json!({"event": "dry_run", "command": "complete", "stage": name, "from": view_json(&run.alias.view),
            "to": {"version": v(split.version), "candidate": null}, "description": note}));
        return Ok(());
    }
    run.stop_if_interrupted("completing")?;
    run.write(AliasWrite::serve(split.version, stable), "complete")
        .await?;
    if let Some((bake, poll)) = bake.filter(|(b, _)| !b.is_zero()) {
        match run.bake(bake, poll, "completed").await? {
            BakeEnd::Done => {}
            BakeEnd::Failed(r) => {
                let back = AliasWrite::serve(stable, split.version);
                return run
                    .roll_back(r, back, format!("version {} (100%)", split.version))
                    .await;
            }
            BakeEnd::Interrupted => return Err(run.interrupted(split.version)),
        }
    }
    let text = format!(
        "{name} serves version {} (was {})",
        run.label(split.version),
        run.label(stable)
    );
    run.ui().result(&text, json!({"event": "done", "stage": name, "result": "completed", "alias": view_json(&run.alias.view), "previous": v(stable)}));
    Ok(())
}

pub async fn rollback<C: Cloud>(
    ctx: &Ctx<'_, C>,
    stage: &str,
    to_previous: bool,
    dry_run: bool,
) -> Result<()> {
    let mut run = ctx.open(stage).await?;
    let name = run.name().to_string();
    let view = run.alias.view;
    // Mid-canary, the version served before this promotion is the stable one, so
    // --to-previous means the same as a plain rollback: clear the split.
    let write = if to_previous && view.split.is_none() {
        let Some(previous) = AliasNote::parse(&run.alias.description).previous else {
            let command = match run.stage.strategy {
                Strategy::AllAtOnce { .. } => "deploy",
                Strategy::Canary { .. } => "canary",
            };
            return Err(Exit::BadInput(format!(
                "alias {} of stage {name} records no previous version (its description is {:?}); move it explicitly with `promote {command} --stage {name} --version N --allow-downgrade`",
                run.target.alias, run.alias.description
            ))
            .into());
        };
        if previous == view.version && view.split.is_none() {
            noop(run.ui(), &name, previous, "roll back");
            return Ok(());
        }
        plan::validate_target(previous, &run.published()).map_err(Exit::from)?;
        AliasWrite::serve(previous, view.version)
    } else {
        if view.split.is_none() {
            let hint = match AliasNote::parse(&run.alias.description).previous {
                Some(p) => format!(
                    "; to return to version {p}, served before, use `promote rollback --stage {name} --to-previous`"
                ),
                None => String::new(),
            };
            let text = format!(
                "{name} has no canary in progress (it serves {view}); nothing to roll back{hint}"
            );
            run.ui().say(&text);
            run.ui().result(&text, json!({"event": "done", "stage": name, "result": "noop", "alias": view_json(&view)}));
            return Ok(());
        }
        AliasWrite::clear(view.version)
    };
    let target_version = write.version;
    if dry_run {
        let text = format!(
            "dry run: would move alias {} of stage {name} from {view} to version {} with routing cleared",
            run.target.alias,
            run.label(target_version)
        );
        run.ui().result(&text, json!({"event": "dry_run", "command": "rollback", "stage": name, "from": view_json(&view),
            "to": {"version": v(target_version), "candidate": null}}));
        return Ok(());
    }
    run.stop_if_interrupted("rolling back")?;
    run.write(write, "rollback").await?;
    let text = format!(
        "{name} serves version {} only (was {view})",
        run.label(target_version)
    );
    run.ui().result(&text, json!({"event": "done", "stage": name, "result": "rolled_back", "alias": view_json(&run.alias.view)}));
    Ok(())
}
