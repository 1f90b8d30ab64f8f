//! The rollout state machine: one decision function for every command.
//!
//! As in Argo Rollouts, what to do next is a pure function of the spec and the saved
//! state. The spec is the stage's plan with the command's intent ([`Intent`]); the saved
//! state is what was read from AWS (the alias's routing and its [`Note`]); and the run's own
//! memory ([`Memory`]: which bakes passed, whether the evidence failed) is the only other
//! input. Each command resolves its intent once into a [`Goal`] (where all the pre-write
//! checks happen), then asks [`decide`] for the next [`Action`] until it is done. For both
//! engines `promote` has one executor that applies actions, and `--dry-run` prints the
//! actions [`simulate`] gets from the same function, so the two cannot drift. A bake's
//! own decisions (when it passes, fails, holds or extends) are `crate::bake`'s.
//!
//! On a stage CodeDeploy shifts (`"engine": "codedeploy"`), the deployment in flight for the
//! stage's group is part of what is observed ([`State::deployment`]), and creating one,
//! following it (the bake, whose deadline is the deployment's success) and stopping it with
//! CodeDeploy's rollback are actions like the alias writes. CodeDeploy moves the routing;
//! the run writes the alias note (an override before the deployment, how it ended after),
//! and takes the alias back itself only when the evidence fails after the deployment has
//! succeeded (no deployment is left to stop).
//!
//! Invariants, whatever the intent and the state:
//! - the candidate's weight only ever moves forward, except by a rollback;
//! - a failing verdict while the candidate takes traffic always ends in a rollback (or, when
//!   a CodeDeploy deployment succeeded before its stop landed, in an error saying so and
//!   how to go back);
//! - a refusal writes nothing.

use std::time::Duration;

use crate::codedeploy::{DeploymentConfig, DeploymentView, Engine, Shift, deployment_config};
use crate::note::{Note, UpstreamSkip};
use crate::plan::{self, Admission, AliasView, Move, PlanError, Split, Upstream};
use crate::spec::{Stage, Step, Strategy};
use crate::stamp::BuildStamp;
use crate::version::Version;
use crate::weight::Weight;

pub mod release;

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// All at once, then bake (an `all_at_once` stage).
    Deploy {
        version: Option<Version>,
        allow_downgrade: bool,
        retry: bool,
    },
    /// The stage's step plan, or one split at `weight`.
    Canary {
        version: Option<Version>,
        weight: Option<Weight>,
        allow_downgrade: bool,
        retry: bool,
    },
    /// The next step of the plan (or `weight`) for the canary in flight.
    Advance { weight: Option<Weight> },
    /// All traffic to the candidate in flight.
    Complete,
    /// Traffic back to the stable version (or, with `to_previous`, the version before).
    Rollback { to_previous: bool },
}

impl Intent {
    /// The version named on the command line (deploy, canary).
    pub fn version(&self) -> Option<Version> {
        match self {
            Intent::Deploy { version, .. } | Intent::Canary { version, .. } => *version,
            _ => None,
        }
    }

    /// The intent naming `version` instead (deploy, canary; the others name none).
    pub fn with_version(mut self, to: Option<Version>) -> Intent {
        if let Intent::Deploy { version, .. } | Intent::Canary { version, .. } = &mut self {
            *version = to;
        }
        self
    }

    pub fn command(&self) -> &'static str {
        match self {
            Intent::Deploy { .. } => "deploy",
            Intent::Canary { .. } => "canary",
            Intent::Advance { .. } => "advance",
            Intent::Complete => "complete",
            Intent::Rollback { .. } => "rollback",
        }
    }
}

/// A published version as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub version: Version,
    pub description: String,
}

/// Everything read from AWS before deciding.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub stage: String,
    pub alias: AliasView,
    pub note: Note,
    pub published: Vec<Published>,
    /// The upstream stage, its alias and note, when there is one.
    pub upstream: Option<Upstream>,
    /// On a CodeDeploy stage, the deployment in flight for its group, when there is one.
    pub deployment: Option<DeploymentView>,
}

impl Observed {
    fn description_of(&self, v: Version) -> &str {
        self.published
            .iter()
            .find(|p| p.version == v)
            .map_or("", |p| p.description.as_str())
    }

    fn versions(&self) -> Vec<Version> {
        self.published.iter().map(|p| p.version).collect()
    }

    /// What [`decide`] starts from.
    pub fn state(&self) -> State {
        State {
            alias: self.alias,
            note: self.note.clone(),
            deployment: self.deployment.clone(),
        }
    }

    fn in_flight(&self) -> Option<&DeploymentView> {
        self.deployment.as_ref().filter(|d| d.status.in_flight())
    }
}

/// What [`decide`] reads at every step: the alias as it is now, its note, and on a
/// CodeDeploy stage the deployment in flight (a deployment that has ended is none).
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub alias: AliasView,
    pub note: Note,
    pub deployment: Option<DeploymentView>,
}

impl State {
    fn in_flight(&self) -> Option<&DeploymentView> {
        self.deployment.as_ref().filter(|d| d.status.in_flight())
    }
}

/// Command-line settings that change the plan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Overrides {
    /// `--bake`: every step's bake.
    pub bake: Option<Duration>,
    /// `--skip-upstream --reason R` (deploy and canary): R.
    pub skip_upstream: Option<String>,
    /// How advice names this function's candidate (`--version N`, or in a release of several
    /// functions `--release FUNCTION=N`).
    pub version_flag: plan::VersionFlag,
}

/// A promotion resolved once, before the first write.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    pub stage: String,
    pub candidate: Version,
    /// What the rest of the traffic is on (and where a rollback returns).
    pub stable: Version,
    /// The steps this run goes through, in order; the last is where it stops.
    pub steps: Vec<Step>,
    /// The candidate's weight when the run started, when it was already in flight.
    pub resumed_from: Option<Weight>,
    /// `--retry` of a version rolled back before: the note's record is cleared.
    pub retry: bool,
    /// The candidate goes in without its upstream stage having served it: recorded on the
    /// note from the first write.
    pub upstream_skip: Option<UpstreamSkip>,
    /// Who moves the traffic.
    pub shifter: Shifter,
}

/// Who moves a rollout's traffic.
#[derive(Debug, Clone, PartialEq)]
pub enum Shifter {
    /// The run writes the alias, step by step.
    Alias,
    /// CodeDeploy, with one deployment of `config` (all of the stage's steps); `following`
    /// is the deployment in flight a rerun follows instead of creating one.
    CodeDeploy {
        config: DeploymentConfig,
        following: Option<DeploymentView>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Goal {
    /// Nothing to do, successfully (the message says why).
    Noop(String),
    Rollout(Rollout),
    /// A rollback asked for by the operator: one write.
    Rollback {
        to: AliasView,
        note: Note,
    },
    /// A rollback asked for by the operator on a CodeDeploy stage with a deployment in
    /// flight: stop it with CodeDeploy's automatic rollback.
    StopDeployment {
        stage: String,
        deployment: DeploymentView,
    },
}

/// Why `promote rollback` stops a deployment, as recorded.
pub const STOPPED_BY_OPERATOR: &str = "stopped by `promote rollback`";
const ROLLED_BACK_BY_OPERATOR: &str = "rolled back by `promote rollback`";

/// What the executor must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Write(Write),
    /// Watch the evidence for `bake` at the current weight; pass, fail or interrupted.
    Bake {
        /// 1-based position in the run's steps.
        step: usize,
        of: usize,
        weight: Weight,
        bake: Duration,
    },
    /// CodeDeploy: create a deployment of `config` shifting the alias from `stable` to
    /// `candidate`.
    CreateDeployment {
        candidate: Version,
        stable: Version,
        config: DeploymentConfig,
    },
    /// CodeDeploy: follow deployment `deployment` while the bake judges the candidate (the
    /// bake runs until the deployment has succeeded, then as `crate::bake` says).
    Follow {
        deployment: String,
    },
    /// CodeDeploy: stop deployment `deployment` with automatic rollback, because `reason`.
    StopDeployment {
        deployment: String,
        reason: String,
    },
    Done(Done),
    /// Nothing may change: exit 3 (guard) or 2 (bad input), nothing written.
    Refuse(PlanError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// A split to a new weight.
    Shift,
    /// All traffic to the candidate.
    Complete,
    /// Only the note: the last step's bake passed.
    MarkBaked,
    /// Traffic back because the evidence failed.
    AutoRollback,
    /// Traffic back because the operator asked.
    Rollback,
    /// Only the note, with the routing as CodeDeploy left it.
    Note,
}

impl WriteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteKind::Shift => "shift",
            WriteKind::Complete => "complete",
            WriteKind::MarkBaked => "mark_baked",
            WriteKind::AutoRollback => "rollback",
            WriteKind::Rollback => "rollback",
            WriteKind::Note => "note",
        }
    }
}

/// An alias write: routing and note, always both.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub kind: WriteKind,
    pub to: AliasView,
    pub note: Note,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Done {
    Noop(String),
    /// The run stopped at a split (one-off weight or advance).
    Split(Version, Weight),
    /// The candidate serves all traffic and its last bake passed.
    Completed(Version),
    /// Traffic was taken back because the evidence failed (exit 4).
    RolledBack {
        reason: String,
        to: Version,
    },
    /// The operator's rollback is done.
    RolledBackByOperator {
        to: Version,
    },
    /// A CodeDeploy deployment ended otherwise than the run needed, leaving the alias as
    /// CodeDeploy left it (exit 1): what happened and how to go on.
    Stranded(String),
}

/// How a deployment this run followed or stopped ended, as CodeDeploy reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// CodeDeploy took the traffic back (its own rollback, or after a stop).
    RolledBack,
    /// It succeeded (before a stop could land): all traffic on the candidate.
    Succeeded { deployment: String },
    /// It ended without taking the traffic back: what CodeDeploy said.
    Failed(String),
}

/// What the run has done and seen so far; the only state besides the alias.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Memory {
    /// Weights whose bake passed in this run.
    pub baked: Vec<Weight>,
    /// The evidence failed (in a bake, or before the first write): roll back.
    pub failure: Option<String>,
    /// This run has written the alias.
    pub wrote: bool,
    /// The deployment this run created.
    pub created: Option<String>,
    /// How the deployment this run followed or stopped ended.
    pub ended: Option<Ended>,
}

/// Where the candidate stands on the alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Position {
    Absent,
    Split(Weight),
    /// The alias's version is the candidate, no routing.
    Served,
}

fn position(alias: &AliasView, candidate: Version) -> Position {
    match alias.split {
        Some(s) if s.version == candidate => Position::Split(s.weight),
        None if alias.version == candidate => Position::Served,
        _ => Position::Absent,
    }
}

fn weight_of(p: Position) -> Option<Weight> {
    match p {
        Position::Absent => None,
        Position::Split(w) => Some(w),
        Position::Served => Some(Weight::FULL),
    }
}

/// The alias as a step leaves it.
fn view_at(r: &Rollout, weight: Weight) -> AliasView {
    if weight.is_full() {
        AliasView {
            version: r.candidate,
            split: None,
        }
    } else {
        AliasView {
            version: r.stable,
            split: Some(Split {
                version: r.candidate,
                weight,
            }),
        }
    }
}

fn steps_of(stage: &Stage) -> Vec<Step> {
    match &stage.strategy {
        Strategy::Canary { steps } => steps.clone(),
        Strategy::AllAtOnce { bake } => vec![Step {
            weight: Weight::FULL,
            bake: *bake,
        }],
    }
}

/// The bake of the plan's step a weight belongs to (the highest step at or below it).
fn bake_at(stage: &Stage, weight: Weight) -> Duration {
    let steps = steps_of(stage);
    steps
        .iter()
        .rev()
        .find(|s| s.weight <= weight)
        .or(steps.first())
        .map_or(Duration::ZERO, |s| s.bake)
}

/// Resolves an intent against what was read: every check that can refuse happens here,
/// before anything is written. A refusal's advice names the candidate as
/// `overrides.version_flag` does.
pub fn resolve(
    stage: &Stage,
    intent: &Intent,
    obs: &Observed,
    overrides: Overrides,
) -> Result<Goal, PlanError> {
    let flag = overrides.version_flag.clone();
    resolve_named(stage, intent, obs, overrides).map_err(|e| e.named_by(&flag))
}

fn resolve_named(
    stage: &Stage,
    intent: &Intent,
    obs: &Observed,
    overrides: Overrides,
) -> Result<Goal, PlanError> {
    if stage.engine == Engine::CodeDeploy {
        return resolve_codedeploy(stage, intent, obs, overrides);
    }
    let name = stage.name.as_str();
    let alias = obs.alias;
    let all_at_once = matches!(stage.strategy, Strategy::AllAtOnce { .. });
    match intent {
        Intent::Deploy {
            version,
            allow_downgrade,
            retry,
        } => {
            if !all_at_once {
                return Err(PlanError::WrongStrategy {
                    stage: name.into(),
                    strategy: "canary",
                    command: "canary",
                });
            }
            if let Some(s) = alias.split {
                return Err(PlanError::OtherCanaryInFlight {
                    stage: name.into(),
                    in_flight: s.version,
                    weight: s.weight,
                    requested: version.unwrap_or(s.version),
                });
            }
            rollout_goal(
                stage,
                obs,
                *version,
                None,
                *allow_downgrade,
                *retry,
                overrides,
            )
        }
        Intent::Canary {
            version,
            weight,
            allow_downgrade,
            retry,
        } => {
            if all_at_once && weight.is_none() {
                return Err(PlanError::WrongStrategy {
                    stage: name.into(),
                    strategy: "all_at_once",
                    command: "deploy",
                });
            }
            rollout_goal(
                stage,
                obs,
                *version,
                *weight,
                *allow_downgrade,
                *retry,
                overrides,
            )
        }
        Intent::Advance { weight } => {
            let Some(split) = alias.split else {
                return Err(PlanError::NoCanary {
                    stage: name.into(),
                    view: alias,
                });
            };
            let target = plan::advance_to(name, &steps_of(stage), &alias, *weight)?;
            let bake = overrides.bake.unwrap_or_else(|| bake_at(stage, target));
            let r = Rollout {
                stage: name.into(),
                candidate: split.version,
                stable: alias.version,
                steps: vec![Step {
                    weight: target,
                    bake,
                }],
                resumed_from: Some(split.weight),
                retry: false,
                upstream_skip: None,
                shifter: Shifter::Alias,
            };
            admit(name, r.candidate, obs, None)?;
            check_rollout(name, &r, obs)?;
            Ok(Goal::Rollout(r))
        }
        Intent::Complete => {
            let (candidate, stable, from) = match alias.split {
                Some(s) => (s.version, alias.version, s.weight),
                None if obs.note.pending_final_bake(alias.version) => (
                    alias.version,
                    obs.note.previous.unwrap_or(alias.version),
                    Weight::FULL,
                ),
                None => {
                    return Ok(Goal::Noop(format!(
                        "{name} already serves version {} with no canary in progress; nothing to complete",
                        alias.version
                    )));
                }
            };
            let r = Rollout {
                stage: name.into(),
                candidate,
                stable,
                steps: vec![Step {
                    weight: Weight::FULL,
                    bake: overrides.bake.unwrap_or(Duration::ZERO),
                }],
                resumed_from: Some(from),
                retry: false,
                upstream_skip: None,
                shifter: Shifter::Alias,
            };
            admit(name, r.candidate, obs, None)?;
            check_rollout(name, &r, obs)?;
            Ok(Goal::Rollout(r))
        }
        Intent::Rollback { to_previous } => {
            rollback_goal(stage, obs, *to_previous, &overrides.version_flag)
        }
    }
}

/// [`resolve`] on a stage CodeDeploy shifts: CodeDeploy runs the stage's whole plan in one
/// deployment, one deployment per group at a time, starting from one version.
fn resolve_codedeploy(
    stage: &Stage,
    intent: &Intent,
    obs: &Observed,
    overrides: Overrides,
) -> Result<Goal, PlanError> {
    let name = stage.name.as_str();
    let refuse = |what: &'static str| {
        Err(PlanError::NotOnCodeDeploy {
            stage: name.into(),
            what,
            path: stage.path.display().to_string(),
        })
    };
    let requested = match intent {
        Intent::Advance { .. } => return refuse("advance has no CodeDeploy equivalent"),
        Intent::Complete => return refuse("complete has no CodeDeploy equivalent"),
        Intent::Canary {
            weight: Some(_), ..
        } => return refuse("--weight cannot be given"),
        Intent::Deploy { .. } | Intent::Canary { .. } if overrides.bake.is_some() => {
            return refuse(
                "--bake cannot be given (the deployment configuration sets the intervals)",
            );
        }
        // With no deployment running, the alias is the stage's only state: the alias
        // engine's rollback writes it.
        Intent::Rollback { to_previous } => {
            return match obs.in_flight() {
                // Stopping CodeDeploy's own rollback would stop the traffic going back.
                Some(d) if d.rollback_of.is_some() => Ok(Goal::Noop(format!(
                    "CodeDeploy is already taking stage {name} back ({d}); nothing more to roll back: see `promote status --stage {name}`"
                ))),
                Some(d) => Ok(Goal::StopDeployment {
                    stage: name.into(),
                    deployment: d.clone(),
                }),
                None => rollback_goal(stage, obs, *to_previous, &overrides.version_flag),
            };
        }
        Intent::Deploy { version, .. } | Intent::Canary { version, .. } => *version,
    };
    let config = deployment_config(&stage.strategy).map_err(|e| PlanError::Inexpressible {
        path: stage.path.display().to_string(),
        message: e.message,
    })?;
    if let Some(d) = obs.in_flight() {
        return match d.shift {
            // A rerun (after kill -9, a lost runner, Ctrl-C) follows what is running, unless
            // it is CodeDeploy taking a rollout back.
            Some(s) if d.rollback_of.is_none() && requested.is_none_or(|v| v == s.target) => {
                Ok(Goal::Rollout(Rollout {
                    stage: name.into(),
                    candidate: s.target,
                    stable: s.current,
                    steps: steps_of(stage),
                    resumed_from: obs
                        .alias
                        .split
                        .filter(|x| x.version == s.target)
                        .map(|x| x.weight),
                    retry: obs.note.was_rolled_back(s.target).is_some(),
                    upstream_skip: None,
                    shifter: Shifter::CodeDeploy {
                        config,
                        following: Some(d.clone()),
                    },
                }))
            }
            _ => Err(PlanError::DeploymentInFlight {
                stage: name.into(),
                application: d.application.clone(),
                deployment: d.to_string(),
            }),
        };
    }
    if let Some(split) = obs.alias.split {
        return Err(PlanError::SplitWithoutDeployment {
            stage: name.into(),
            split,
        });
    }
    let overrides = Overrides {
        bake: None,
        ..overrides
    };
    Ok(match resolve(&alias_twin(stage), intent, obs, overrides)? {
        Goal::Rollout(r) => Goal::Rollout(Rollout {
            steps: steps_of(stage),
            resumed_from: None,
            shifter: Shifter::CodeDeploy {
                config,
                following: None,
            },
            ..r
        }),
        other => other,
    })
}

/// The stage as the alias engine would run it: a CodeDeploy rollout makes the same checks
/// before anything is created.
fn alias_twin(stage: &Stage) -> Stage {
    Stage {
        engine: Engine::Alias,
        ..stage.clone()
    }
}

fn rollout_goal(
    stage: &Stage,
    obs: &Observed,
    explicit: Option<Version>,
    weight: Option<Weight>,
    allow_downgrade: bool,
    retry: bool,
    overrides: Overrides,
) -> Result<Goal, PlanError> {
    let name = stage.name.as_str();
    let alias = obs.alias;
    // A run killed during the bake after the last step: the alias serves the candidate but
    // its note says that bake never passed. Finish it rather than call the stage done.
    let pending = obs.note.pending_final_bake(alias.version)
        && alias.split.is_none()
        && explicit.is_none_or(|v| v == alias.version);
    let (candidate, stable) = if pending {
        let Some(previous) = obs.note.previous else {
            return Err(PlanError::NoPrevious {
                stage: name.into(),
                description: obs.note.to_string(),
                flag: plan::VersionFlag::default(),
                command: mover(stage),
                retry: retry_hint(obs),
            });
        };
        (alias.version, previous)
    } else {
        let up = obs.upstream.as_ref().map(|u| (u.name.as_str(), &u.view));
        (
            plan::choose_candidate(name, explicit, &alias, up)?,
            alias.version,
        )
    };
    plan::validate_target(candidate, &obs.versions())?;
    let upstream_skip = admit(name, candidate, obs, overrides.skip_upstream.as_deref())?;
    if let Some(rb) = obs.note.was_rolled_back(candidate)
        && !retry
    {
        return Err(PlanError::RolledBackBefore {
            stage: name.into(),
            version: candidate,
            why: rb.reason(),
            again: "Publish a fixed version, or pass --retry to try this one again".into(),
        });
    }
    if !pending {
        if !allow_downgrade && candidate != stable && !obs.versions().contains(&stable) {
            return Err(PlanError::StableNotPublished {
                stage: name.into(),
                version: stable,
            });
        }
        let (cd, sd) = (obs.description_of(candidate), obs.description_of(stable));
        let (cs, ss) = (BuildStamp::parse(cd), BuildStamp::parse(sd));
        if plan::semver_guard(
            name,
            (candidate, cs.as_ref(), cd),
            (stable, ss.as_ref(), sd),
            allow_downgrade,
        )? == Move::NoOp
        {
            // Where the candidate came from, and how to name another: without --version it
            // is whatever the upstream stage serves, which may be what this stage serves.
            let (from, another) = match (explicit, &obs.upstream) {
                (None, Some(Upstream { name: up, .. })) => (
                    format!(", the version {up} serves (the candidate when no --version is given)"),
                    format!(
                        ". To roll out another version, name it: `promote {} --stage {name} {}` (with --allow-downgrade for one older than version {candidate})",
                        mover(stage),
                        overrides.version_flag.with("N")
                    ),
                ),
                _ => (String::new(), String::new()),
            };
            return Ok(Goal::Noop(format!(
                "{name} already serves version {candidate}{from}; nothing to roll out{another}"
            )));
        }
    }
    let current = weight_of(position(&alias, candidate));
    let mut steps = match weight {
        Some(w) => {
            if let Some(c) = current
                && w < c
            {
                return Err(PlanError::Backwards {
                    stage: name.into(),
                    requested: w,
                    current: c,
                });
            }
            vec![Step {
                weight: w,
                bake: bake_at(stage, w),
            }]
        }
        None => plan::remaining_steps(&steps_of(stage), current),
    };
    if let Some(b) = overrides.bake {
        for s in &mut steps {
            s.bake = b;
        }
    }
    let r = Rollout {
        stage: name.into(),
        candidate,
        stable,
        steps,
        resumed_from: current,
        retry,
        upstream_skip,
        shifter: Shifter::Alias,
    };
    check_rollout(name, &r, obs)?;
    Ok(Goal::Rollout(r))
}

/// The path-to-live guard ([`plan::upstream_guard`]) on the resolved candidate; what to
/// record when the operator overrode it.
fn admit(
    name: &str,
    candidate: Version,
    obs: &Observed,
    skip_reason: Option<&str>,
) -> Result<Option<UpstreamSkip>, PlanError> {
    let admission = plan::upstream_guard(
        name,
        candidate,
        &obs.alias,
        &obs.note,
        obs.upstream.as_ref(),
        skip_reason,
    )?;
    Ok(match admission {
        Admission::Skipped(skip) => Some(skip),
        Admission::FirstStage | Admission::Served | Admission::AdmittedBefore => None,
    })
}

/// Lambda's routing rules for every split the run will write.
fn check_rollout(_stage: &str, r: &Rollout, obs: &Observed) -> Result<(), PlanError> {
    let published = obs.versions();
    plan::validate_target(r.candidate, &published)?;
    for s in r.steps.iter().filter(|s| !s.weight.is_full()) {
        let split = Split {
            version: r.candidate,
            weight: s.weight,
        };
        // A split already in place (even at 0%, which the operator cannot ask for) is held.
        if obs.alias.split == Some(split) {
            continue;
        }
        plan::validate_split(r.stable, split, &published)?;
    }
    Ok(())
}

/// The command that moves `stage` to a named version: the other one refuses its strategy.
fn mover(stage: &Stage) -> &'static str {
    match stage.strategy {
        Strategy::AllAtOnce { .. } => "deploy",
        Strategy::Canary { .. } => "canary",
    }
}

/// For [`PlanError::NoPrevious`]: the version the note says was rolled back here goes out
/// again only with --retry.
fn retry_hint(obs: &Observed) -> String {
    obs.note
        .rolled_back
        .as_ref()
        .map(|rb| format!("; add --retry for version {}, rolled back here", rb.version))
        .unwrap_or_default()
}

fn rollback_goal(
    stage: &Stage,
    obs: &Observed,
    to_previous: bool,
    flag: &plan::VersionFlag,
) -> Result<Goal, PlanError> {
    let name = stage.name.as_str();
    let alias = obs.alias;
    if let Some(s) = alias.split {
        return Ok(Goal::Rollback {
            to: AliasView {
                version: alias.version,
                split: None,
            },
            note: obs
                .note
                .rolled_back(s.version, "rolled back by `promote rollback`", true),
        });
    }
    if !to_previous {
        let hint = match obs.note.previous {
            Some(p) if obs.note.was_rolled_back(p).is_none() => format!(
                "; to return to version {p}, served before, use `promote rollback --stage {name} --to-previous`"
            ),
            _ => String::new(),
        };
        return Ok(Goal::Noop(format!(
            "{name} has no canary in progress (it serves {alias}); nothing to roll back{hint}"
        )));
    }
    let Some(previous) = obs.note.previous else {
        return Err(PlanError::NoPrevious {
            stage: name.into(),
            description: obs.note.to_string(),
            flag: flag.clone(),
            command: mover(stage),
            retry: retry_hint(obs),
        });
    };
    if let Some(rb) = obs.note.was_rolled_back(previous) {
        return Err(PlanError::RolledBackBefore {
            stage: name.into(),
            version: previous,
            why: rb.reason(),
            again: format!(
                "To serve it anyway, roll it out as a candidate: `promote {} --stage {name} {} --allow-downgrade --retry`",
                mover(stage),
                flag.with(previous)
            ),
        });
    }
    if previous == alias.version {
        return Ok(Goal::Noop(format!(
            "{name} already serves version {previous}, the previous version; nothing to roll back"
        )));
    }
    plan::validate_target(previous, &obs.versions())?;
    Ok(Goal::Rollback {
        to: AliasView {
            version: previous,
            split: None,
        },
        // The version before `previous` is not known; never guess it.
        note: obs.note.rolled_back(
            alias.version,
            "rolled back by `promote rollback --to-previous`",
            false,
        ),
    })
}

/// The next action, from the goal, the state as it is now, and what this run has done.
pub fn decide(goal: &Goal, state: &State, mem: &Memory) -> Action {
    let (alias, note) = (&state.alias, &state.note);
    match goal {
        Goal::Noop(m) => Action::Done(Done::Noop(m.clone())),
        Goal::Rollback { to, note: target } => {
            if alias == to && mem.wrote {
                Action::Done(Done::RolledBackByOperator { to: to.version })
            } else {
                Action::Write(Write {
                    kind: WriteKind::Rollback,
                    to: *to,
                    note: target.clone(),
                })
            }
        }
        Goal::StopDeployment { stage, deployment } => decide_stop(stage, deployment, state, mem),
        Goal::Rollout(r) => match &r.shifter {
            Shifter::Alias => decide_rollout(r, alias, note, mem),
            Shifter::CodeDeploy { config, .. } => decide_codedeploy(r, *config, state, mem),
        },
    }
}

/// The note with the rollout's own records: `--retry` clears the candidate's rollback, and
/// an override is recorded from the first write (one recorded for another version no
/// longer says anything about what the alias routes).
fn base_note(r: &Rollout, note: &Note) -> Note {
    let mut base = if r.retry {
        note.retried(r.candidate)
    } else {
        note.clone()
    };
    base.upstream_skip = r
        .upstream_skip
        .clone()
        .or(base.upstream_skip.filter(|k| k.version == r.candidate));
    base
}

/// Writes `note` on the alias as it is, unless the alias already carries it; then `then`.
/// Every note a CodeDeploy run writes is idempotent, so a rerun never writes it twice.
fn note_then(state: &State, note: Note, then: Action) -> Action {
    if note == state.note {
        then
    } else {
        Action::Write(Write {
            kind: WriteKind::Note,
            to: state.alias,
            note,
        })
    }
}

fn succeeded_before_stop(stage: &str, deployment: &str) -> String {
    format!(
        "deployment {deployment} of stage {stage} succeeded before it could be stopped: the candidate serves all traffic; return to the version before with `promote rollback --stage {stage} --to-previous`"
    )
}

/// A rollout CodeDeploy shifts: create the deployment (or find it in flight), follow it
/// while the bake judges the candidate, stop it with rollback when the evidence fails, and
/// record how it ended on the alias note.
fn decide_codedeploy(r: &Rollout, config: DeploymentConfig, state: &State, mem: &Memory) -> Action {
    let shift = Shift {
        current: r.stable,
        target: r.candidate,
    };
    let running = state.in_flight();
    if let Some(d) = running
        && d.shift != Some(shift)
    {
        // Someone else's deployment appeared: never stop or follow what this run did not
        // resolve to.
        return Action::Refuse(PlanError::DeploymentInFlight {
            stage: r.stage.clone(),
            application: d.application.clone(),
            deployment: d.to_string(),
        });
    }
    let pos = position(&state.alias, r.candidate);
    if let Some(reason) = &mem.failure {
        if let Some(d) = running {
            return Action::StopDeployment {
                deployment: d.id.clone(),
                reason: reason.clone(),
            };
        }
        let rolled_back = Action::Done(Done::RolledBack {
            reason: reason.clone(),
            to: r.stable,
        });
        return match &mem.ended {
            Some(Ended::RolledBack) => note_then(
                state,
                state.note.rolled_back(r.candidate, reason, true),
                rolled_back,
            ),
            // What a success records, so that `--to-previous` knows where to return.
            Some(Ended::Succeeded { deployment }) => note_then(
                state,
                base_note(r, &state.note).completed(r.candidate, r.stable, true),
                Action::Done(Done::Stranded(format!(
                    "{reason}; {}",
                    succeeded_before_stop(&r.stage, deployment)
                ))),
            ),
            Some(Ended::Failed(what)) => Action::Done(Done::Stranded(format!("{reason}; {what}"))),
            None if pos == Position::Absent && !mem.wrote && mem.created.is_none() => {
                Action::Refuse(PlanError::DeploymentNotCreated {
                    stage: r.stage.clone(),
                    reason: reason.clone(),
                })
            }
            // The deployment had succeeded when the evidence failed: the candidate serves
            // all traffic and no deployment runs to stop, so the alias is taken back by the
            // write the alias engine makes for a failing candidate at 100%.
            None => decide_rollout(r, &state.alias, &state.note, mem),
        };
    }
    if let Some(d) = running {
        return Action::Follow {
            deployment: d.id.clone(),
        };
    }
    match &mem.ended {
        Some(Ended::Failed(what)) => return Action::Done(Done::Stranded(what.clone())),
        Some(Ended::RolledBack | Ended::Succeeded { .. }) | None => {}
    }
    if pos == Position::Served && mem.baked.contains(&Weight::FULL) {
        return note_then(
            state,
            base_note(r, &state.note).completed(r.candidate, r.stable, true),
            Action::Done(Done::Completed(r.candidate)),
        );
    }
    if pos == Position::Absent && mem.created.is_none() && mem.ended.is_none() {
        // CodeDeploy writes the routing; an override is on the note before it starts.
        if r.upstream_skip.is_some() && state.note.upstream_skip != r.upstream_skip {
            return Action::Write(Write {
                kind: WriteKind::Note,
                to: state.alias,
                note: Note {
                    upstream_skip: r.upstream_skip.clone(),
                    ..state.note.clone()
                },
            });
        }
        return Action::CreateDeployment {
            candidate: r.candidate,
            stable: r.stable,
            config,
        };
    }
    // Unreachable by construction (a deployment this run created or followed is in flight
    // until it has ended, and its end is in `mem`); said plainly rather than guessed at.
    Action::Refuse(PlanError::Lost {
        stage: r.stage.clone(),
        candidate: r.candidate,
        view: state.alias,
    })
}

/// `promote rollback` with a deployment in flight: stop it, then record the rollback.
fn decide_stop(stage: &str, d: &DeploymentView, state: &State, mem: &Memory) -> Action {
    let running = state.in_flight().filter(|x| x.id == d.id);
    if running.is_some() && mem.ended.is_none() {
        return Action::StopDeployment {
            deployment: d.id.clone(),
            reason: STOPPED_BY_OPERATOR.into(),
        };
    }
    let done = Action::Done(Done::RolledBackByOperator {
        to: state.alias.version,
    });
    match (&mem.ended, d.shift) {
        (Some(Ended::Failed(what)), _) => Action::Done(Done::Stranded(what.clone())),
        (Some(Ended::Succeeded { deployment }), shift) => {
            let stranded = Action::Done(Done::Stranded(succeeded_before_stop(stage, deployment)));
            match shift {
                Some(s) => note_then(
                    state,
                    state.note.completed(s.target, s.current, true),
                    stranded,
                ),
                None => stranded,
            }
        }
        (_, Some(s)) => note_then(
            state,
            state
                .note
                .rolled_back(s.target, ROLLED_BACK_BY_OPERATOR, true),
            done,
        ),
        (_, None) => done,
    }
}

fn decide_rollout(r: &Rollout, alias: &AliasView, note: &Note, mem: &Memory) -> Action {
    let pos = position(alias, r.candidate);
    if let Some(reason) = &mem.failure {
        if pos == Position::Absent {
            return if mem.wrote {
                Action::Done(Done::RolledBack {
                    reason: reason.clone(),
                    to: alias.version,
                })
            } else {
                Action::Refuse(PlanError::EvidenceFailing {
                    stage: r.stage.clone(),
                    reason: reason.clone(),
                })
            };
        }
        // The candidate takes traffic: take it back to the stable version. After the last
        // step the stable version is the one served before, so the note's `previous` is no
        // longer known.
        return Action::Write(Write {
            kind: WriteKind::AutoRollback,
            to: AliasView {
                version: r.stable,
                split: None,
            },
            note: note.rolled_back(r.candidate, reason, pos != Position::Served),
        });
    }
    let base = base_note(r, note);
    let of = r.steps.len();
    for (i, s) in r.steps.iter().enumerate() {
        let here = weight_of(pos);
        if here.is_some_and(|w| w > s.weight) {
            continue;
        }
        let want = view_at(r, s.weight);
        let baked_before = s.weight.is_full()
            && matches!(note.step, Some(m) if m.candidate == r.candidate && m.weight.is_full() && m.baked);
        let baked = s.bake.is_zero() || mem.baked.contains(&s.weight) || baked_before;
        if *alias != want {
            let (kind, note) = if s.weight.is_full() {
                (
                    WriteKind::Complete,
                    base.completed(r.candidate, r.stable, s.bake.is_zero()),
                )
            } else {
                (
                    WriteKind::Shift,
                    base.at_step(r.candidate, s.weight, s.bake.is_zero()),
                )
            };
            return Action::Write(Write {
                kind,
                to: want,
                note,
            });
        }
        if !baked {
            return Action::Bake {
                step: i + 1,
                of,
                weight: s.weight,
                bake: s.bake,
            };
        }
    }
    if pos == Position::Served && note.pending_final_bake(r.candidate) {
        return Action::Write(Write {
            kind: WriteKind::MarkBaked,
            to: *alias,
            note: base.at_step(r.candidate, Weight::FULL, true),
        });
    }
    match pos {
        Position::Served => Action::Done(Done::Completed(r.candidate)),
        Position::Split(w) => Action::Done(Done::Split(r.candidate, w)),
        // Unreachable by construction (a rollout's last step puts the candidate on the alias);
        // said plainly rather than panicking.
        Position::Absent => Action::Refuse(PlanError::Lost {
            stage: r.stage.clone(),
            candidate: r.candidate,
            view: *alias,
        }),
    }
}

/// The actions a run would take if every write applied, every bake passed and every
/// deployment succeeded (or, stopped, rolled back): what `--dry-run` prints.
pub fn simulate(goal: &Goal, start: &State) -> Vec<Action> {
    let (mut state, mut mem) = (start.clone(), Memory::default());
    let mut out = Vec::new();
    // Every action moves the state forward, so a plan of n steps ends within 3n + 2 actions;
    // the bound only guards against a bug turning the dry run into a hang.
    for _ in 0..64 {
        let a = decide(goal, &state, &mem);
        out.push(a.clone());
        if !simulate_one(&mut state, &mut mem, &a) {
            break;
        }
    }
    out
}

/// The state and memory as `a` would leave them if it applied (a bake passing, a
/// deployment succeeding or, stopped, rolling back); false when the run ends with `a`.
fn simulate_one(state: &mut State, mem: &mut Memory, a: &Action) -> bool {
    match a {
        Action::Write(w) => {
            state.alias = w.to;
            state.note = w.note.clone();
            mem.wrote = true;
        }
        Action::Bake { weight, .. } => mem.baked.push(*weight),
        Action::CreateDeployment {
            candidate, stable, ..
        } => {
            // Its id is CodeDeploy's to give: none yet.
            state.deployment = Some(DeploymentView {
                id: String::new(),
                application: String::new(),
                config: String::new(),
                shift: Some(Shift {
                    current: *stable,
                    target: *candidate,
                }),
                status: crate::codedeploy::Status::Created,
                rollback_of: None,
            });
            mem.created = Some(String::new());
        }
        Action::Follow { .. } => {
            if let Some(s) = state.deployment.take().and_then(|d| d.shift) {
                state.alias = AliasView {
                    version: s.target,
                    split: None,
                };
            }
            mem.baked.push(Weight::FULL);
        }
        Action::StopDeployment { .. } => {
            let shift = state.deployment.take().and_then(|d| d.shift);
            state.alias = AliasView {
                version: shift.map_or(state.alias.version, |s| s.current),
                split: None,
            };
            mem.ended = Some(Ended::RolledBack);
        }
        Action::Done(_) | Action::Refuse(_) => return false,
    }
    true
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
