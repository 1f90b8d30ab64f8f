//! A release: the versions of several functions built from one commit, moved through a
//! stage in lockstep.
//!
//! Each function keeps the single-function machine of the parent module: its own alias,
//! note, goal and memory. This module makes one plan of them: every function whose version
//! differs takes the same steps; at each step every alias is written before one bake judges
//! each function on its own evidence; a failure of any function takes every function of the
//! release back. Because [`decide_release`] reads the aliases as they are, a step written
//! half-way (a crash, a failing write) is finished on the next decision, and a rollback
//! written half-way is found by [`resolve_release`] from the notes and finished.
//!
//! On a stage CodeDeploy shifts, each function is one deployment of its own CodeDeploy
//! application and group: every deployment is created before any is followed, all are
//! followed side by side, and a failure of any (its deployment failing or rolled back by
//! CodeDeploy, its alarm, its probe) stops every other one with CodeDeploy's rollback, all
//! stops sent together before any note. Each deployment keeps its own clock: CodeDeploy has
//! no step two deployments share, so the functions' splits move independently, and stopping
//! them all is the only joint act (docs/engines.md).
//!
//! A release of one function decides exactly what the single-function machine decides.

use std::collections::BTreeMap;

use super::{
    Action, Done, Ended, Goal, Intent, Memory, Observed, Overrides, Position, Rollout, Shifter,
    State, WriteKind, decide, position, resolve, steps_of, weight_of,
};
use crate::codedeploy::{DeploymentView, deployment_config};
use crate::plan::{PlanError, VersionFlag};
use crate::spec::Stage;
use crate::version::Version;
use crate::weight::Weight;

/// One function's reading, in the project's order.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionObserved {
    pub function: String,
    pub observed: Observed,
}

/// A release resolved once, before the first write.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseGoal {
    pub stage: String,
    /// Every function that moves, with its goal, in the project's order.
    pub moves: Vec<(String, Goal)>,
    /// Every function that stays, and why.
    pub stays: Vec<(String, String)>,
    /// The release: each function and the version it serves once the release is through
    /// (its candidate when it moves).
    pub release: Vec<(String, Version)>,
    /// A rollback an earlier run wrote for some functions of the release but not all: why.
    /// The run finishes it before anything else.
    pub undo: Option<String>,
}

impl ReleaseGoal {
    /// The memory a run starts with, one per moving function: a rollback found half-written
    /// is a failure already known, and the release has already written.
    pub fn memory(&self) -> Vec<Memory> {
        self.moves
            .iter()
            .map(|_| Memory {
                failure: self.undo.clone(),
                wrote: self.undo.is_some(),
                ..Memory::default()
            })
            .collect()
    }

    pub fn functions(&self) -> Vec<String> {
        self.moves.iter().map(|(f, _)| f.clone()).collect()
    }

    /// Whether the notes carry the release (only when it moves several functions, so a
    /// release of one function writes exactly what the single-function machine writes).
    fn recorded(&self) -> bool {
        self.release.len() > 1
    }
}

/// A refusal, naming the function whose alias refused.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseRefusal {
    pub function: String,
    pub error: Box<PlanError>,
}

/// What the executor must do next for the release.
#[derive(Debug, Clone, PartialEq)]
pub enum ReleaseAction {
    /// One function's action: an alias write, or on a CodeDeploy stage creating its
    /// deployment.
    Apply { function: String, action: Action },
    /// CodeDeploy: stop every listed deployment with automatic rollback, all at once, before
    /// anything else: `(function, deployment, reason)`.
    Stop {
        stops: Vec<(String, String, String)>,
    },
    /// CodeDeploy: follow every listed deployment side by side, each judged on its own
    /// evidence, until one fails or all have ended: `(function, deployment)`.
    Follow { deployments: Vec<(String, String)> },
    /// One bake at the step's weight, judging each of `functions` on its own evidence.
    Bake {
        step: usize,
        of: usize,
        weight: Weight,
        bake: std::time::Duration,
        functions: Vec<String>,
    },
    /// Every function is done: how each ended.
    Done(Vec<(String, Done)>),
    /// Nothing may change.
    Refuse(ReleaseRefusal),
}

/// How a release ended, from how each function ended: a rollback of any is the release's.
pub fn rolled_back(done: &[(String, Done)]) -> Option<(&str, &Done)> {
    done.iter()
        .find(|(_, d)| matches!(d, Done::RolledBack { .. }))
        .map(|(f, d)| (f.as_str(), d))
}

/// Resolves the intent for every function (`versions` names the candidate of a function,
/// overriding the intent's own version), then makes one plan of the moves. Any function's
/// refusal refuses the release.
pub fn resolve_release(
    stage: &Stage,
    intent: &Intent,
    versions: &BTreeMap<String, Version>,
    functions: &[FunctionObserved],
    overrides: Overrides,
) -> Result<ReleaseGoal, ReleaseRefusal> {
    if !matches!(intent, Intent::Rollback { .. })
        && let Some(goal) = half_written_rollback(stage, functions)
    {
        return Ok(goal);
    }
    let mut moves = Vec::new();
    let mut stays = Vec::new();
    let mut release = Vec::new();
    // A function with nothing to move (no candidate named and no upstream stage to take one
    // from; no canary to advance; no previous version to return to) stays where it is when
    // another function moves.
    let mut idle = Vec::new();
    for f in functions {
        let intent = match versions.get(&f.function) {
            Some(v) => intent.clone().with_version(Some(*v)),
            None => intent.clone(),
        };
        // Advice names this function's candidate as the command line does in a release.
        let overrides = Overrides {
            version_flag: if functions.len() > 1 {
                VersionFlag::release(&f.function)
            } else {
                overrides.version_flag.clone()
            },
            ..overrides.clone()
        };
        let goal = match resolve(stage, &intent, &f.observed, overrides) {
            Ok(goal) => goal,
            Err(
                error @ (PlanError::NoUpstream { .. }
                | PlanError::NoCanary { .. }
                | PlanError::NoPrevious { .. }),
            ) => {
                idle.push((f, error));
                continue;
            }
            Err(error) => {
                return Err(ReleaseRefusal {
                    function: f.function.clone(),
                    error: Box::new(error),
                });
            }
        };
        match goal {
            Goal::Noop(why) => {
                release.push((f.function.clone(), f.observed.alias.version));
                stays.push((f.function.clone(), why));
            }
            Goal::Rollout(ref r) => {
                release.push((f.function.clone(), r.candidate));
                moves.push((f.function.clone(), goal));
            }
            Goal::Rollback { to, .. } => {
                release.push((f.function.clone(), to.version));
                moves.push((f.function.clone(), goal));
            }
            Goal::StopDeployment { .. } => {
                release.push((f.function.clone(), f.observed.alias.version));
                moves.push((f.function.clone(), goal));
            }
        }
    }
    if moves.is_empty()
        && let Some((f, error)) = idle.first()
    {
        return Err(ReleaseRefusal {
            function: f.function.clone(),
            error: Box::new(error.clone()),
        });
    }
    for (f, error) in idle {
        release.push((f.function.clone(), f.observed.alias.version));
        stays.push((f.function.clone(), format!("stays: {error}")));
    }
    release.sort_by_key(|(f, _)| functions.iter().position(|x| x.function == *f));
    align(&mut moves);
    Ok(ReleaseGoal {
        stage: stage.name.clone(),
        moves,
        stays,
        release,
        undo: None,
    })
}

/// Every alias-shifted rollout takes the same steps: those of the function furthest along,
/// from its current weight. A function behind it (its write of that step did not land) is
/// written up to it first, so a half-written step is finished, never taken backwards.
fn align(moves: &mut [(String, Goal)]) {
    let rollouts = || {
        moves.iter().filter_map(|(_, g)| match g {
            Goal::Rollout(r) if r.shifter == Shifter::Alias => Some(r),
            _ => None,
        })
    };
    let furthest = rollouts().filter_map(|r| r.resumed_from).max();
    let Some(steps) = rollouts()
        .filter(|r| {
            r.steps
                .first()
                .is_some_and(|s| furthest.is_none_or(|w| s.weight >= w))
        })
        .min_by_key(|r| r.steps.first().map(|s| s.weight))
        .map(|r| r.steps.clone())
    else {
        return;
    };
    for (_, g) in moves.iter_mut() {
        if let Goal::Rollout(r) = g
            && r.shifter == Shifter::Alias
        {
            r.steps = steps.clone();
        }
    }
}

/// A rollback an earlier run wrote for some functions of a release but not for others:
/// the goal that takes the others back too. Found from the notes: a function still carrying
/// its candidate of the release its note records, and a sibling whose note records the same
/// release and its candidate rolled back.
fn half_written_rollback(stage: &Stage, functions: &[FunctionObserved]) -> Option<ReleaseGoal> {
    let (mut moves, mut why) = (Vec::new(), None);
    for f in functions {
        if let Some((goal, reason)) = deployment_of_rolled_back(stage, f, functions) {
            why.get_or_insert(reason);
            moves.push((f.function.clone(), goal));
            continue;
        }
        let note = &f.observed.note;
        if note.release.is_empty() {
            continue;
        }
        let Some(candidate) = candidate_in(&note.release, &f.function) else {
            continue;
        };
        let alias = f.observed.alias;
        let pos = position(&alias, candidate);
        let stable = match pos {
            Position::Split(_) => alias.version,
            Position::Served if note.previous.is_some() => note.previous?,
            _ => continue,
        };
        let sibling_back = functions.iter().find_map(|g| {
            let gn = &g.observed.note;
            if g.function == f.function || gn.release != note.release {
                return None;
            }
            let rb = gn.was_rolled_back(candidate_in(&gn.release, &g.function)?)?;
            // The note's reason names the failing function already.
            Some(rb.why.clone())
        });
        let Some(reason) = sibling_back else {
            continue;
        };
        why.get_or_insert(reason);
        moves.push((
            f.function.clone(),
            Goal::Rollout(Rollout {
                stage: stage.name.clone(),
                candidate,
                stable,
                steps: steps_of(stage),
                resumed_from: weight_of(pos),
                retry: false,
                upstream_skip: None,
                shifter: Shifter::Alias,
            }),
        ));
    }
    let why = why?;
    // On a CodeDeploy stage a function still deploying has no note of the release yet: its
    // siblings' notes say what the release is.
    let release = functions
        .iter()
        .map(|f| &f.observed.note.release)
        .find(|r| !r.is_empty())
        .cloned()
        .unwrap_or_default();
    Some(ReleaseGoal {
        stage: stage.name.clone(),
        moves,
        stays: Vec::new(),
        release,
        undo: Some(why),
    })
}

/// On a CodeDeploy stage, a function whose deployment still shifts its alias to its
/// candidate of a release that its own note or a sibling's records as rolled back (a run
/// killed after the notes, before the stops): the goal that stops it, and why.
fn deployment_of_rolled_back(
    stage: &Stage,
    f: &FunctionObserved,
    functions: &[FunctionObserved],
) -> Option<(Goal, String)> {
    let d: &DeploymentView = f.observed.in_flight().filter(|d| d.rollback_of.is_none())?;
    let shift = d.shift?;
    let reason = functions.iter().find_map(|g| {
        let gn = &g.observed.note;
        if candidate_in(&gn.release, &f.function) != Some(shift.target) {
            return None;
        }
        let rb = gn.was_rolled_back(candidate_in(&gn.release, &g.function)?)?;
        Some(rb.why.clone())
    })?;
    let config = deployment_config(&stage.strategy).ok()?;
    let resumed_from = weight_of(position(&f.observed.alias, shift.target));
    Some((
        Goal::Rollout(Rollout {
            stage: stage.name.clone(),
            candidate: shift.target,
            stable: shift.current,
            steps: steps_of(stage),
            resumed_from,
            retry: false,
            upstream_skip: None,
            shifter: Shifter::CodeDeploy {
                config,
                following: Some(d.clone()),
            },
        }),
        reason,
    ))
}

fn candidate_in(release: &[(String, Version)], function: &str) -> Option<Version> {
    release.iter().find(|(f, _)| f == function).map(|(_, v)| *v)
}

/// The next action for the release, from each moving function's state and memory (in the
/// goal's order). Stops come first, all together, so that no deployment of a failed release
/// goes on while another function's note is written; then writes and creations, so every
/// alias reaches the step (every deployment exists) before the bake (the follow); then one
/// bake (one follow) for every function at the step; then each function's own end.
pub fn decide_release(goal: &ReleaseGoal, states: &[State], mems: &[Memory]) -> ReleaseAction {
    let release_wrote = mems.iter().any(|m| m.wrote || m.created.is_some());
    let decided: Vec<(String, Action)> = goal
        .moves
        .iter()
        .zip(states)
        .zip(mems)
        .map(|(((function, g), state), mem)| (function.clone(), decide(g, state, mem)))
        .collect();
    let stops: Vec<(String, String, String)> = decided
        .iter()
        .filter_map(|(f, a)| match a {
            Action::StopDeployment { deployment, reason } => {
                Some((f.clone(), deployment.clone(), reason.clone()))
            }
            _ => None,
        })
        .collect();
    if !stops.is_empty() {
        // A failed release is on the notes before its stops: a run killed after the stops
        // would otherwise find the candidates back on version one and nothing saying why,
        // and create the deployments again. A rerun finds the record and stops what is
        // still running (`deployment_of_rolled_back`).
        for (((function, g), (_, action)), state) in goal.moves.iter().zip(&decided).zip(states) {
            if let (Goal::Rollout(r), Action::StopDeployment { reason, .. }) = (g, action)
                && state.note.was_rolled_back(r.candidate).is_none()
            {
                let mut note = state.note.rolled_back(r.candidate, reason, true);
                if goal.recorded() {
                    note.release = goal.release.clone();
                }
                return ReleaseAction::Apply {
                    function: function.clone(),
                    action: Action::Write(super::Write {
                        kind: WriteKind::Note,
                        to: state.alias,
                        note,
                    }),
                };
            }
        }
        return ReleaseAction::Stop { stops };
    }
    let mut bakes = Vec::new();
    let mut follows = Vec::new();
    let mut done = Vec::new();
    for ((function, action), state) in decided.into_iter().zip(states) {
        match action {
            Action::Write(mut w) => {
                if goal.recorded() {
                    w.note.release = goal.release.clone();
                }
                return ReleaseAction::Apply {
                    function,
                    action: Action::Write(w),
                };
            }
            Action::Bake {
                step,
                of,
                weight,
                bake,
            } => bakes.push((function, step, of, weight, bake)),
            Action::Follow { deployment } => follows.push((function, deployment)),
            // A function that never took the candidate, when another did and the release
            // failed, ends rolled back with the rest.
            Action::Refuse(
                PlanError::EvidenceFailing { reason, .. }
                | PlanError::DeploymentNotCreated { reason, .. },
            ) if release_wrote => done.push((
                function,
                Done::RolledBack {
                    reason,
                    to: state.alias.version,
                },
            )),
            Action::Refuse(error) => {
                return ReleaseAction::Refuse(ReleaseRefusal {
                    function,
                    error: Box::new(error),
                });
            }
            Action::Done(d) => done.push((function, d)),
            action @ Action::CreateDeployment { .. } => {
                return ReleaseAction::Apply { function, action };
            }
            Action::StopDeployment { .. } => unreachable!("stops are taken first"),
        }
    }
    if !follows.is_empty() {
        return ReleaseAction::Follow {
            deployments: follows,
        };
    }
    if let Some(lowest) = bakes.iter().map(|b| b.3).min() {
        let at: Vec<_> = bakes.into_iter().filter(|b| b.3 == lowest).collect();
        let (_, step, of, weight, bake) = at[0].clone();
        return ReleaseAction::Bake {
            step,
            of,
            weight,
            bake,
            functions: at.into_iter().map(|b| b.0).collect(),
        };
    }
    ReleaseAction::Done(done)
}

/// After a deployment of the release was stopped: how it ended. One that succeeded before
/// its stop landed has left its function on the candidate with no deployment to stop; a
/// release never ends half new, so that function is taken back by an alias write (the one
/// the alias engine makes for a failing candidate at 100%) instead of being left stranded.
pub fn record_stop(goal: &ReleaseGoal, mems: &mut [Memory], function: &str, ended: Ended) {
    if let Some(i) = goal.moves.iter().position(|(f, _)| f == function) {
        mems[i].ended = match ended {
            Ended::Succeeded { .. } => None,
            other => Some(other),
        };
    }
}

/// After a bake: each function's verdict (`Err(reason)` for a failing one). A failure of any
/// function is every function's failure, naming the function; the passing ones record the
/// bake.
pub fn record_bake(
    goal: &ReleaseGoal,
    mems: &mut [Memory],
    weight: Weight,
    verdicts: &[(String, Result<(), String>)],
) {
    let failure = verdicts
        .iter()
        .find_map(|(f, v)| v.as_ref().err().map(|why| failure_of(goal, f, why)));
    for ((function, _), mem) in goal.moves.iter().zip(mems.iter_mut()) {
        if verdicts.iter().any(|(f, v)| f == function && v.is_ok()) {
            mem.baked.push(weight);
        }
    }
    if let Some(reason) = failure {
        fail(mems, &reason);
    }
}

/// Why the release goes back when `function` failed: the function is named when the
/// release has several.
pub fn failure_of(goal: &ReleaseGoal, function: &str, why: &str) -> String {
    if goal.moves.len() > 1 || goal.recorded() {
        format!("function {function}: {why}")
    } else {
        why.to_string()
    }
}

/// A failure of the release: every function rolls back.
pub fn fail(mems: &mut [Memory], reason: &str) {
    for m in mems.iter_mut() {
        m.failure.get_or_insert_with(|| reason.to_string());
    }
}

/// After an alias write of `function` landed.
pub fn record_write(goal: &ReleaseGoal, mems: &mut [Memory], function: &str) {
    if let Some(i) = goal.moves.iter().position(|(f, _)| f == function) {
        mems[i].wrote = true;
    }
}

/// What a release run would do if every write applied and every bake passed: what
/// `--dry-run` prints.
pub fn simulate_release(goal: &ReleaseGoal, start: &[State]) -> Vec<ReleaseAction> {
    let mut states = start.to_vec();
    let mut mems = goal.memory();
    let mut out = Vec::new();
    // Each action moves one function forward; the bound only guards against a bug.
    for _ in 0..(64 * goal.moves.len().max(1)) {
        let a = decide_release(goal, &states, &mems);
        out.push(a.clone());
        match a {
            ReleaseAction::Apply { function, action } => {
                let i = index_of(goal, &function);
                let one = super::simulate_one(&mut states[i], &mut mems[i], &action);
                if !one {
                    break;
                }
            }
            ReleaseAction::Stop { stops } => {
                for (function, deployment, reason) in stops {
                    let i = index_of(goal, &function);
                    let stop = Action::StopDeployment { deployment, reason };
                    super::simulate_one(&mut states[i], &mut mems[i], &stop);
                }
            }
            ReleaseAction::Follow { deployments } => {
                for (function, deployment) in deployments {
                    let i = index_of(goal, &function);
                    super::simulate_one(
                        &mut states[i],
                        &mut mems[i],
                        &Action::Follow { deployment },
                    );
                }
            }
            ReleaseAction::Bake {
                weight, functions, ..
            } => {
                let verdicts: Vec<_> = functions.into_iter().map(|f| (f, Ok(()))).collect();
                record_bake(goal, &mut mems, weight, &verdicts);
            }
            ReleaseAction::Done(_) | ReleaseAction::Refuse(_) => break,
        }
    }
    out
}

fn index_of(goal: &ReleaseGoal, function: &str) -> usize {
    goal.moves
        .iter()
        .position(|(f, _)| f == function)
        .expect("an action names a moving function")
}

/// Whether a write is a rollback (for displays).
pub fn is_rollback(a: &ReleaseAction) -> bool {
    matches!(
        a,
        ReleaseAction::Apply {
            action: Action::Write(w),
            ..
        } if matches!(w.kind, WriteKind::AutoRollback | WriteKind::Rollback)
    )
}

#[cfg(test)]
#[path = "release_cd_tests.rs"]
mod cd_tests;
