//! The CodeDeploy engine's pure half: which deployment configuration a stage's steps are,
//! the AppSpec a deployment carries, and what a deployment read from CodeDeploy means.
//!
//! CodeDeploy shifts a Lambda alias in one of three shapes only: all at once, a canary
//! (one share, then 100%) or a linear shift (equal increments at equal intervals), in whole
//! percents and whole minutes, and it ends the deployment as soon as all traffic is shifted.
//! A stage whose steps are none of these is refused here, with why and what would work
//! (`validate::engine`, so by `promote`'s loader and `promote check`); the seed's model in
//! `tools/check_environments.py` and Terraform's `local.codedeploy_configs` are held to the
//! same table of cases (`testdata/codedeploy_configs.json`).

use std::fmt;

use serde_json::{Value, json};
use thiserror::Error;

use crate::spec::Strategy;
pub use crate::spec::{Engine, Hooks};
use crate::version::Version;
use crate::weight::Weight;

/// A CodeDeploy deployment configuration (`TrafficRoutingConfig` of compute platform Lambda).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentConfig {
    AllAtOnce,
    /// `percentage` first, the rest `interval_minutes` later.
    TimeBasedCanary {
        percentage: u32,
        interval_minutes: u64,
    },
    /// `percentage` more every `interval_minutes` until 100%.
    TimeBasedLinear {
        percentage: u32,
        interval_minutes: u64,
    },
}

impl DeploymentConfig {
    /// CodeDeploy's name of the traffic routing type.
    pub fn routing_type(self) -> &'static str {
        match self {
            DeploymentConfig::AllAtOnce => "AllAtOnce",
            DeploymentConfig::TimeBasedCanary { .. } => "TimeBasedCanary",
            DeploymentConfig::TimeBasedLinear { .. } => "TimeBasedLinear",
        }
    }

    /// The end of the config's name; Terraform names it `<function>-<stage>-<suffix>`
    /// (`terraform/codedeploy.tf`), so a changed plan is a new config.
    pub fn name_suffix(self) -> String {
        match self {
            DeploymentConfig::AllAtOnce => "all-at-once".into(),
            DeploymentConfig::TimeBasedCanary {
                percentage,
                interval_minutes,
            } => format!("canary-{percentage}pct-{interval_minutes}min"),
            DeploymentConfig::TimeBasedLinear {
                percentage,
                interval_minutes,
            } => format!("linear-{percentage}pct-every-{interval_minutes}min"),
        }
    }

    pub fn name(self, function: &str, stage: &str) -> String {
        format!("{function}-{stage}-{}", self.name_suffix())
    }
}

/// Where a function's deployments on a stage go: CodeDeploy holds one alias per deployment
/// group, so every function has its own application (named after the function) with one
/// group per CodeDeploy stage (named after the stage). `terraform/codedeploy.tf` names
/// them the same way (`tests/static/test_codedeploy.py` holds it to this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub application: String,
    pub group: String,
}

impl Group {
    pub fn of(function: &str, stage: &str) -> Group {
        Group {
            application: function.to_string(),
            group: stage.to_string(),
        }
    }
}

/// A plan CodeDeploy cannot run: the field (as `validate` names fields) and why, with what
/// would work.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct Inexpressible {
    pub field: String,
    pub message: String,
}

const USE_ALIAS: &str = "or \"engine\": \"alias\", which runs any plan";

/// The deployment configuration that runs `strategy`'s steps, or why CodeDeploy cannot.
///
/// Rules, in the order they are checked (the first that fails is reported):
/// three or more steps must be equal increments (`p, 2p, ..., 100`) and bake equally before
/// 100% (a linear shift); the first share is a whole percent; a bake before 100% is whole
/// minutes, at least one; and the step at 100% does not bake, since CodeDeploy ends the
/// deployment when the shift completes and watches the alarms only until then.
pub fn deployment_config(strategy: &Strategy) -> Result<DeploymentConfig, Inexpressible> {
    let steps: Vec<(Weight, u64, String)> = match strategy {
        Strategy::AllAtOnce { bake } => {
            vec![(Weight::FULL, bake.as_secs(), "strategy.bake_seconds".into())]
        }
        Strategy::Canary { steps } => steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.weight,
                    s.bake.as_secs(),
                    format!("strategy.steps[{i}].bake_seconds"),
                )
            })
            .collect(),
    };
    let refuse = |field: String, message: String| Err(Inexpressible { field, message });
    let n = steps.len();
    if n >= 3 {
        let first = steps[0].0.hundredths();
        let equal = steps
            .iter()
            .enumerate()
            .all(|(i, s)| u64::from(s.0.hundredths()) == (i as u64 + 1) * u64::from(first));
        if !equal {
            let list: Vec<String> = steps.iter().map(|s| percent(s.0)).collect();
            return refuse(
                "strategy.steps".into(),
                format!(
                    "CodeDeploy shifts traffic as a canary (one share, then 100) or linearly (equal increments at equal intervals), and steps {} are neither; use two steps (e.g. 10 then 100), equal increments that reach 100 (e.g. 25, 50, 75, 100), {USE_ALIAS}",
                    list.join(", ")
                ),
            );
        }
        if let Some((i, s)) = steps[..n - 1]
            .iter()
            .enumerate()
            .find(|(_, s)| s.1 != steps[0].1)
        {
            return refuse(
                s.2.clone(),
                format!(
                    "a linear CodeDeploy shift waits the same interval before each increment, but step {i} bakes {} s and step 0 bakes {} s; give every step before 100 the same bake_seconds, {USE_ALIAS}",
                    s.1, steps[0].1
                ),
            );
        }
    }
    if n >= 2 {
        let (weight, bake, bake_field) = &steps[0];
        if !weight.hundredths().is_multiple_of(100) {
            let near = (weight.hundredths() + 50) / 100;
            return refuse(
                "strategy.steps[0].weight".into(),
                format!(
                    "CodeDeploy shifts whole percents, and {} is not one; use a whole number such as {}, {USE_ALIAS}",
                    percent(*weight),
                    near.clamp(1, 99)
                ),
            );
        }
        if *bake == 0 {
            return refuse(
                bake_field.clone(),
                format!(
                    "CodeDeploy waits at least one minute between shifts, and this step does not bake; give it at least 60 s (whole minutes), use \"type\": \"all_at_once\" for no wait, {USE_ALIAS}"
                ),
            );
        }
        if !bake.is_multiple_of(60) {
            let up = bake.div_ceil(60) * 60;
            let down = bake / 60 * 60;
            let options = if down == 0 {
                format!("{up}")
            } else {
                format!("{down} or {up}")
            };
            return refuse(
                bake_field.clone(),
                format!(
                    "CodeDeploy waits whole minutes between shifts, and {bake} s is not; use {options}, {USE_ALIAS}"
                ),
            );
        }
    }
    let (_, last_bake, last_field) = &steps[n - 1];
    if *last_bake != 0 {
        return refuse(
            last_field.clone(),
            format!(
                "CodeDeploy ends a Lambda deployment once all traffic is shifted (it watches the alarms only until then), so nothing would bake {last_bake} s at 100; set it to 0, or use \"engine\": \"alias\", which bakes at 100"
            ),
        );
    }
    let percentage = steps[0].0.hundredths() / 100;
    let interval_minutes = steps[0].1 / 60;
    Ok(match n {
        1 => DeploymentConfig::AllAtOnce,
        2 => DeploymentConfig::TimeBasedCanary {
            percentage,
            interval_minutes,
        },
        _ => DeploymentConfig::TimeBasedLinear {
            percentage,
            interval_minutes,
        },
    })
}

/// `10`, `2.5`: a weight as the stage file writes it.
fn percent(w: Weight) -> String {
    w.percent_json().to_string()
}

// ---- The AppSpec ----------------------------------------------------------------------

/// What one deployment shifts: the alias of the function from one version to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    pub function: String,
    pub alias: String,
    pub current: Version,
    pub target: Version,
    pub hooks: Hooks,
}

impl AppSpec {
    /// The AppSpec as CodeDeploy reads it (version 0.0, one `AWS::Lambda::Function`
    /// resource keyed by the function's name, `Hooks` only when the stage names some).
    pub fn to_json(&self) -> Value {
        let mut spec = json!({
            "version": 0.0,
            "Resources": [{
                self.function.clone(): {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Name": self.function,
                        "Alias": self.alias,
                        "CurrentVersion": self.current.to_string(),
                        "TargetVersion": self.target.to_string(),
                    }
                }
            }],
        });
        let mut hooks = Vec::new();
        if let Some(f) = &self.hooks.before_allow_traffic {
            hooks.push(json!({ "BeforeAllowTraffic": f }));
        }
        if let Some(f) = &self.hooks.after_allow_traffic {
            hooks.push(json!({ "AfterAllowTraffic": f }));
        }
        if !hooks.is_empty() {
            spec["Hooks"] = Value::Array(hooks);
        }
        spec
    }

    /// The `AppSpecContent.content` string of a `CreateDeployment` revision.
    pub fn content(&self) -> String {
        self.to_json().to_string()
    }
}

/// What an AppSpec shifts: the alias from one version to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    pub current: Version,
    pub target: Version,
}

/// A deployment of the stage's group as observed before deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentView {
    pub id: String,
    pub application: String,
    /// The deployment configuration's name.
    pub config: String,
    /// What its AppSpec shifts; `None` for an AppSpec promote did not write.
    pub shift: Option<Shift>,
    pub status: Status,
    /// Set on a rollback deployment CodeDeploy started: the deployment it takes back.
    pub rollback_of: Option<String>,
}

impl fmt::Display for DeploymentView {
    /// `deployment d-1 (version 1 -> 2, InProgress)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(of) = &self.rollback_of {
            write!(f, "CodeDeploy's rollback of deployment {of}: ")?;
        }
        match self.shift {
            Some(s) => write!(
                f,
                "deployment {} (version {} -> {}, {})",
                self.id,
                s.current,
                s.target,
                self.status.as_str()
            ),
            None => write!(
                f,
                "deployment {} ({}, an AppSpec promote did not write)",
                self.id,
                self.status.as_str()
            ),
        }
    }
}

// ---- Following a deployment -----------------------------------------------------------

/// `DeploymentStatus` as `GetDeployment` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Queued,
    InProgress,
    Baking,
    Ready,
    Succeeded,
    Failed,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "CodeDeploy reported deployment status `{0}`, which this build does not know (Created, Queued, InProgress, Baking, Ready, Succeeded, Failed, Stopped)"
)]
pub struct UnknownStatus(pub String);

impl Status {
    /// CodeDeploy's name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "Created",
            Status::Queued => "Queued",
            Status::InProgress => "InProgress",
            Status::Baking => "Baking",
            Status::Ready => "Ready",
            Status::Succeeded => "Succeeded",
            Status::Failed => "Failed",
            Status::Stopped => "Stopped",
        }
    }

    /// Whether a deployment in this status has not ended (CodeDeploy runs one such per
    /// group).
    pub fn in_flight(self) -> bool {
        !matches!(self, Status::Succeeded | Status::Failed | Status::Stopped)
    }

    pub fn parse(text: &str) -> Result<Status, UnknownStatus> {
        Ok(match text {
            "Created" => Status::Created,
            "Queued" => Status::Queued,
            "InProgress" => Status::InProgress,
            "Baking" => Status::Baking,
            "Ready" => Status::Ready,
            "Succeeded" => Status::Succeeded,
            "Failed" => Status::Failed,
            "Stopped" => Status::Stopped,
            other => return Err(UnknownStatus(other.to_string())),
        })
    }
}

/// A deployment as read: `GetDeployment`'s status, rollback and error information, and the
/// traffic its Lambda target reports (`GetDeploymentTarget`'s `lambdaTarget`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeploymentRead {
    pub id: String,
    pub status: Option<Status>,
    /// `lambdaFunctionInfo.targetVersionWeight` (0.0 to 1.0), when a target was read.
    pub target_weight: Option<f64>,
    /// `errorInformation`: code and message.
    pub error: Option<(String, String)>,
    /// `rollbackInfo.rollbackDeploymentId`: CodeDeploy started a deployment that takes the
    /// traffic back.
    pub rollback_deployment_id: Option<String>,
    /// `rollbackInfo.rollbackMessage`, e.g. why no rollback was done.
    pub rollback_message: Option<String>,
    /// `rollbackInfo.rollbackTriggeringDeploymentId`: this deployment is itself a rollback.
    pub rollback_of: Option<String>,
}

/// Where a running deployment is, for the progress display and the JSON events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Created, Queued or Ready: no traffic moved by this deployment yet.
    Waiting,
    /// InProgress: hooks run and traffic shifts.
    Shifting,
    /// Baking: CodeDeploy waits before it ends the deployment.
    Baking,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    /// The target version's share, once a target was read.
    pub candidate_weight: Option<Weight>,
}

/// How a deployment ended (the exit codes are promote's: CONTRACTS.md, "Exit codes").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0: all traffic on the target version.
    Succeeded,
    /// Exit 4: failed or stopped, and CodeDeploy takes the traffic back with the given
    /// rollback deployment (follow it to `Succeeded` before saying it is done). A rollback
    /// deployment that succeeded ends here too, with `rollback_deployment_id` its own id.
    RolledBack {
        reason: String,
        rollback_deployment_id: String,
    },
    /// Exit 1: failed with no rollback; the alias stays where the deployment left it.
    Failed { reason: String },
    /// Exit 1: stopped with no rollback (our own stops always ask for one, so someone
    /// stopped it by hand); the alias stays where the deployment left it.
    Stopped { reason: String },
    /// Exit 1: a rollback deployment itself failed or stopped: the traffic may still be on
    /// the version it was taking back.
    RollbackFailed { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    Running(Progress),
    Finished(Outcome),
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum ReadError {
    #[error("deployment {0} has no status; read it again")]
    NoStatus(String),
    #[error(
        "deployment {id} reports a target weight of {weight}, outside 0.0 to 1.0; read it again"
    )]
    Weight { id: String, weight: f64 },
}

/// What `read` means for the run following it.
pub fn interpret(read: &DeploymentRead) -> Result<Followed, ReadError> {
    let status = read
        .status
        .ok_or_else(|| ReadError::NoStatus(read.id.clone()))?;
    let candidate_weight = match read.target_weight {
        None => None,
        Some(w) => Some(Weight::from_fraction(w).ok_or_else(|| ReadError::Weight {
            id: read.id.clone(),
            weight: w,
        })?),
    };
    let running = |phase| {
        Ok(Followed::Running(Progress {
            phase,
            candidate_weight,
        }))
    };
    let why = || {
        let error = read
            .error
            .as_ref()
            .map(|(code, message)| format!("{code}: {message}"));
        match (error, &read.rollback_message) {
            (Some(e), Some(m)) => format!("{e} ({m})"),
            (Some(e), None) => e,
            (None, Some(m)) => m.clone(),
            (None, None) => "CodeDeploy gave no reason".into(),
        }
    };
    let finished = |o| Ok(Followed::Finished(o));
    match status {
        Status::Created | Status::Queued | Status::Ready => running(Phase::Waiting),
        Status::InProgress => running(Phase::Shifting),
        Status::Baking => running(Phase::Baking),
        Status::Succeeded => match &read.rollback_of {
            Some(original) => finished(Outcome::RolledBack {
                reason: format!("deployment {original} was rolled back"),
                rollback_deployment_id: read.id.clone(),
            }),
            None => finished(Outcome::Succeeded),
        },
        Status::Failed | Status::Stopped if read.rollback_of.is_some() => {
            finished(Outcome::RollbackFailed {
                reason: format!(
                    "rollback deployment {} ended {}: {}",
                    read.id,
                    if status == Status::Failed {
                        "failed"
                    } else {
                        "stopped"
                    },
                    why()
                ),
            })
        }
        Status::Failed | Status::Stopped => match &read.rollback_deployment_id {
            Some(rollback) => finished(Outcome::RolledBack {
                reason: why(),
                rollback_deployment_id: rollback.clone(),
            }),
            None if status == Status::Failed => finished(Outcome::Failed { reason: why() }),
            None => finished(Outcome::Stopped { reason: why() }),
        },
    }
}

impl fmt::Display for Progress {
    /// `shifting: 10% on the target`, `waiting to start`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Waiting => "waiting to start",
            Phase::Shifting => "shifting",
            Phase::Baking => "baking",
        };
        match self.candidate_weight {
            Some(w) => write!(f, "{phase}: {w} on the target version"),
            None => write!(f, "{phase}"),
        }
    }
}

#[cfg(test)]
#[path = "codedeploy_tests.rs"]
mod tests;
