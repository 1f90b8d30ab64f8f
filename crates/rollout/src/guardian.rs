//! The guardian's decision: what the guardian function does about one stage when AWS wakes
//! it, with no `promote` running.
//!
//! On the alias engine the protection of a canary lives in the `promote` run that bakes it;
//! if that run dies mid-canary the split stays where it was. The guardian closes that hole.
//! AWS runs it on two triggers: a stage's alarm changing state ([`Trigger::Alarm`]), and a
//! schedule ([`Trigger::Tick`]), on which it runs the judge `promote` runs (the metrics
//! source, `crate::metrics_verdict` over `crate::judge`) for stages whose analysis uses
//! per-version metrics. Here it is decided, over plain data, whether to write nothing, to
//! take the stage's splits back (every function of the release together, recorded in the
//! note as the guardian's rollback, [`crate::note::Note::rolled_back_by_guardian`]), or to
//! report a split left past its plan.
//!
//! A release moves several functions in lockstep, so any of them failing takes back every
//! split of the stage: an ALARM on the API's alarms (they watch the whole stage), on any
//! function's Lambda alarms (one per function, [`crate::spec::Alarm::stack_names`]) whose
//! function has a split, or the scheduled judge failing any function's candidate.
//!
//! Safe by construction:
//! - only a stage with a split is written, and only its splits: a stable alias (no
//!   routing) never is;
//! - never a CodeDeploy stage (CodeDeploy rolls its deployments back itself);
//! - an event is judged on the alarm's state as read now, not as the event says it was, and
//!   after a rollback the stage has no split: a duplicated or late event writes nothing;
//! - a held split (not enough evidence) stays held unless the evidence fails;
//! - a race with a running `promote` is settled by the guarded write (RevisionId and
//!   re-read), not here: the write goes out against the alias as read for this decision.

use std::time::Duration;

use crate::alarm_policy;
use crate::evidence::{self, Finding, Verdict};
use crate::machine::{Write, WriteKind};
use crate::note::Note;
use crate::plan::{AlarmReading, AliasView};
use crate::spec::{Alarm, AlarmKind, Engine, OnNoEvidence, SourceKind, Stage, Strategy};
use crate::weight::Weight;

/// What woke the guardian.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A CloudWatch alarm changed state (EventBridge's "CloudWatch Alarm State Change"):
    /// its new state as the event says.
    Alarm(AlarmReading),
    /// The schedule: judge every split of a stage whose analysis uses per-version metrics.
    Tick,
}

/// One function's alias on the stage, as read for this decision.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasState {
    pub function: String,
    pub view: AliasView,
    pub note: Note,
}

/// What was read about one stage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// Every function's alias on the stage.
    pub aliases: Vec<AliasState>,
    /// On an alarm event: the alarm's state as read now (an event may come late or twice).
    pub alarm_now: Option<AlarmReading>,
    /// On a tick: the metrics judge's finding for every function with a split, by function.
    pub findings: Vec<(String, Finding)>,
    /// On a tick: how long the oldest candidate of the stage's splits has been taking
    /// traffic, as far as its metrics show (`None`: not known).
    pub split_age: Option<Duration>,
}

/// One alias write of a rollback.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionWrite {
    pub function: String,
    pub write: Write,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Write nothing; why, for the log.
    Nothing(String),
    /// Take every split of the stage back, because `reason`; `stale`: the split had been
    /// left past its plan (reported as well).
    RollBack {
        reason: String,
        writes: Vec<FunctionWrite>,
        stale: bool,
    },
    /// A split left past its plan with no verdict either way, on a stage whose policy holds
    /// such a split: reported (a log line and a metric an alarm watches), nothing written.
    ReportStale(String),
}

/// The stage an alarm belongs to, from the environments' alarms as the stack names them
/// for the project's `functions`.
pub fn stage_of_alarm<'a>(
    stages: &'a [Stage],
    functions: &[String],
    alarm: &str,
) -> Option<&'a Stage> {
    stages
        .iter()
        .find(|s| alarm_named(s, functions, alarm).is_some())
}

/// The stage file's alarm the stack names `name`, and the function it watches (`None`: the
/// API's, every function).
pub fn alarm_named<'a, 'f>(
    stage: &'a Stage,
    functions: &'f [String],
    name: &str,
) -> Option<(&'a Alarm, Option<&'f str>)> {
    stage.alarms.iter().find_map(|a| {
        a.stack_names(functions)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, function)| (a, function))
    })
}

/// Whether the schedule judges this stage: the alias engine and a metrics analysis.
pub fn judged_on_schedule(stage: &Stage) -> bool {
    stage.engine == Engine::Alias && stage.analysis.uses(SourceKind::Metrics)
}

/// How long a split at `weight` may stand before it is stale: the bakes of the plan up to
/// and including its step (the candidate has taken traffic since the first), plus the
/// bake's extension, doubled for a run that started late or polled slowly.
pub fn stale_after(stage: &Stage, weight: Weight) -> Duration {
    let baked: Duration = match &stage.strategy {
        Strategy::Canary { steps } => steps
            .iter()
            .take_while(|s| s.weight <= weight)
            .map(|s| s.bake)
            .sum(),
        Strategy::AllAtOnce { bake } => *bake,
    };
    (baked + stage.analysis.max_extension) * 2
}

/// How far back the scheduled judge looks at a split at `weight`: its step's bake (the
/// guardian does not know when the step began; a bake is what `promote` would have judged
/// it over), and never fewer than three complete periods after the lag.
pub fn judged_window(stage: &Stage, weight: Weight) -> Duration {
    let bake = match &stage.strategy {
        Strategy::Canary { steps } => steps
            .iter()
            .rev()
            .find(|s| s.weight <= weight)
            .or(steps.first())
            .map_or(Duration::ZERO, |s| s.bake),
        Strategy::AllAtOnce { bake } => *bake,
    };
    bake.max(Duration::from_secs(
        u64::from(stage.analysis.period_seconds) * 5,
    ))
}

/// The decision for one stage of a project of `functions` (in project.json's order: the
/// alarms' names depend on it).
pub fn decide(stage: &Stage, functions: &[String], trigger: &Trigger, obs: &Observed) -> Decision {
    let name = &stage.name;
    if stage.engine == Engine::CodeDeploy {
        return Decision::Nothing(format!(
            "stage {name} is shifted by CodeDeploy, which rolls its deployments back itself"
        ));
    }
    let splits: Vec<&AliasState> = obs
        .aliases
        .iter()
        .filter(|a| a.view.split.is_some())
        .collect();
    if splits.is_empty() {
        return Decision::Nothing(format!("stage {name} has no split: nothing to take back"));
    }
    match trigger {
        Trigger::Alarm(event) => on_alarm(stage, functions, event, obs, &splits),
        Trigger::Tick => on_tick(stage, obs, &splits),
    }
}

fn on_alarm(
    stage: &Stage,
    functions: &[String],
    event: &AlarmReading,
    obs: &Observed,
    splits: &[&AliasState],
) -> Decision {
    let name = &stage.name;
    let Some((alarm, function)) = alarm_named(stage, functions, &event.name) else {
        return Decision::Nothing(format!("alarm {} is not one of stage {name}'s", event.name));
    };
    // A function's Lambda alarm is evidence about the versions its alias serves: with no
    // split on that function it judges the stable version, which no rollback changes (as
    // promote judges each function of a release on its own evidence).
    if let Some(f) = function
        && !splits.iter().any(|a| a.function == f)
    {
        return Decision::Nothing(format!(
            "alarm {} watches function {f}, which has no split on stage {name}: it judges the stable version",
            event.name
        ));
    }
    if !stage.analysis.uses(SourceKind::Alarms) {
        return Decision::Nothing(format!(
            "stage {name}'s analysis does not watch its alarms (as promote's bake would not)"
        ));
    }
    if stage.analysis.judge_relative && alarm.kind == AlarmKind::LambdaThrottleRate {
        return Decision::Nothing(format!(
            "alarm {} watches stage {name}'s capacity; judging relatively, the per-version throttle comparison on the schedule decides",
            event.name
        ));
    }
    // The alarm as it is now decides: a late event about a state the alarm has left, or
    // an event the read cannot confirm, writes nothing.
    let now = obs.alarm_now.as_ref().unwrap_or(event);
    if now.value != event.value {
        return Decision::Nothing(format!(
            "alarm {} went to {} but is {} now: a late event",
            event.name, event.value, now.value
        ));
    }
    let judged = [event.name.clone()];
    match alarm_policy::verdict(
        &judged,
        std::slice::from_ref(now),
        stage.insufficient_data_is_failure,
    ) {
        Verdict::Fail(reason) => roll_back(splits, named(splits, function, reason), false),
        _ => Decision::Nothing(format!(
            "alarm {} is {}: nothing to take back",
            event.name, now.value
        )),
    }
}

fn on_tick(stage: &Stage, obs: &Observed, splits: &[&AliasState]) -> Decision {
    let name = &stage.name;
    if !judged_on_schedule(stage) {
        return Decision::Nothing(format!(
            "stage {name}'s analysis does not use per-version metrics: its alarms protect it"
        ));
    }
    // The first function whose candidate fails, in the order they were judged.
    if let Some((function, Verdict::Fail(reason))) = obs
        .findings
        .iter()
        .find(|(_, f)| f.verdict.is_fail())
        .map(|(function, f)| (function, f.verdict.clone()))
    {
        return roll_back(splits, named(splits, Some(function), reason), false);
    }
    let findings: Vec<Finding> = obs.findings.iter().map(|(_, f)| f.clone()).collect();
    let weight = splits
        .iter()
        .filter_map(|a| a.view.split.map(|s| s.weight))
        .max()
        .unwrap_or(Weight::ZERO);
    let limit = stale_after(stage, weight);
    match obs.split_age {
        Some(age) if age > limit => {
            let report = format!(
                "stage {name}: the split at {weight} has stood for {} (its plan's bakes and extension, doubled, are {}) with no verdict and no run finishing it",
                crate::format_duration(age),
                crate::format_duration(limit)
            );
            match stage.analysis.on_no_evidence {
                OnNoEvidence::Rollback => roll_back(splits, report, true),
                OnNoEvidence::Hold => Decision::ReportStale(report),
            }
        }
        _ => Decision::Nothing(match evidence::combine(&findings) {
            Verdict::Pass => format!("stage {name}: the candidate passes the judge"),
            other => format!("stage {name}: the split stays as it is ({other})"),
        }),
    }
}

/// Why the release goes back, naming the function whose evidence failed when the stage has
/// splits of several (as `promote` says it, `crate::machine::release::failure_of`).
fn named(splits: &[&AliasState], function: Option<&str>, why: String) -> String {
    match function {
        Some(f) if splits.len() > 1 => format!("function {f}: {why}"),
        _ => why,
    }
}

/// Every split of the stage back to its stable version, with the guardian's note.
fn roll_back(splits: &[&AliasState], reason: String, stale: bool) -> Decision {
    let writes = splits
        .iter()
        .filter_map(|a| {
            let split = a.view.split?;
            Some(FunctionWrite {
                function: a.function.clone(),
                write: Write {
                    kind: WriteKind::AutoRollback,
                    to: AliasView {
                        version: a.view.version,
                        split: None,
                    },
                    note: a.note.rolled_back_by_guardian(split.version, &reason),
                },
            })
        })
        .collect();
    Decision::RollBack {
        reason,
        writes,
        stale,
    }
}

#[cfg(test)]
#[path = "guardian_tests.rs"]
mod tests;
