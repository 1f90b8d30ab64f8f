//! The `--output json` stream (CONTRACTS.md, "JSON event stream"): one struct per event,
//! the stream is their serialization. `Ui::emit` (ui.rs) adds the event's name first and
//! the schema version (`"v"`) last; a test (events_tests.rs) holds the table of
//! CONTRACTS.md, "JSON event stream" to these structs field by field.
//!
//! Fields are declared in the order they are printed. Versions are strings, weights
//! percent numbers, durations seconds ([`Seconds`], [`Percent`]).

use std::time::Duration;

use rollout::evidence::Finding;
use rollout::{AliasView, Split, Version, Weight};
use serde::Serialize;
use serde_json::Value;

/// One event of the stream: a struct whose serialization is the event's fields.
pub trait Event: Serialize {
    /// The `"event"` field.
    const NAME: &'static str;

    /// The event as printed, before its schema version is stamped: `"event"` first.
    fn to_value(&self) -> Value {
        let mut obj = serde_json::Map::new();
        obj.insert("event".into(), Self::NAME.into());
        match serde_json::to_value(self) {
            Ok(Value::Object(fields)) => {
                for (k, v) in fields {
                    obj.entry(k).or_insert(v);
                }
            }
            // Every event is a struct; anything else is a bug said loudly in tests.
            other => {
                debug_assert!(false, "event {} is not an object: {other:?}", Self::NAME);
            }
        }
        Value::Object(obj)
    }
}

/// Declares which struct is which event; the list is also what the contract test walks.
macro_rules! events {
    ($($ty:ident $(<$lt:lifetime>)? => $name:literal),* $(,)?) => {
        $(impl$(<$lt>)? Event for $ty $(<$lt>)? { const NAME: &'static str = $name; })*
        /// Every event's name, in the order of its table.
        pub const NAMES: &[&str] = &[$($name),*];
    };
}

events! {
    Plan => "plan",
    AliasUpdated => "alias_updated",
    BakeStarted => "bake_started",
    Bake => "bake",
    BakeExtended => "bake_extended",
    Held => "held",
    RolledBack => "rolled_back",
    Interrupted => "interrupted",
    DryRun => "dry_run",
    Done => "done",
    DeploymentCreated => "deployment_created",
    Deployment => "deployment",
    DeploymentStopped => "deployment_stopped",
    CodeUploaded => "code_uploaded",
    Published => "published",
    Release => "release",
    StageStatus => "stage_status",
    StageError => "stage_error",
    Checked => "checked",
    ProbeReport<'a> => "probe_report",
    Error => "error",
}

/// A duration in seconds: whole seconds as an integer, anything finer as a float.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Seconds(pub Duration);

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.subsec_nanos() == 0 {
            s.serialize_u64(self.0.as_secs())
        } else {
            s.serialize_f64(self.0.as_secs_f64())
        }
    }
}

/// A weight as a percent number (`10`, `2.5`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percent(pub Weight);

impl Default for Percent {
    fn default() -> Percent {
        Percent(Weight::ZERO)
    }
}

impl Serialize for Percent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.percent_json().serialize(s)
    }
}

/// The candidate of an alias: `{version, weight}`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SplitJson {
    pub version: String,
    pub weight: Percent,
}

impl SplitJson {
    pub fn of(split: Option<Split>) -> Option<SplitJson> {
        split.map(|s| SplitJson {
            version: s.version.to_string(),
            weight: Percent(s.weight),
        })
    }
}

/// An alias's routing: `{version, candidate}`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AliasJson {
    pub version: String,
    pub candidate: Option<SplitJson>,
}

impl AliasJson {
    pub fn of(view: &AliasView) -> AliasJson {
        AliasJson {
            version: view.version.to_string(),
            candidate: SplitJson::of(view.split),
        }
    }
}

/// One evidence source's finding: `{source, verdict, summary, numbers}`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EvidenceJson {
    pub source: String,
    pub verdict: String,
    pub summary: String,
    pub numbers: Value,
}

impl EvidenceJson {
    pub fn of(f: &Finding) -> EvidenceJson {
        EvidenceJson {
            source: f.source.clone(),
            verdict: f.verdict.to_string(),
            summary: f.summary.clone(),
            numbers: f.numbers.clone(),
        }
    }

    pub fn all(findings: &[Finding]) -> Vec<EvidenceJson> {
        findings.iter().map(EvidenceJson::of).collect()
    }
}

/// A step of a plan: `{weight, bake_seconds}`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StepJson {
    pub weight: Percent,
    pub bake_seconds: Seconds,
}

pub fn version(v: Version) -> String {
    v.to_string()
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub stage: String,
    pub command: String,
    pub alias: String,
    pub candidate: String,
    pub stable: String,
    pub resumed_from: Option<Percent>,
    pub steps: Vec<StepJson>,
    /// `{version, upstream, reason}` when `--skip-upstream` let the candidate in, else null.
    pub upstream_skip: Value,
    /// `"codedeploy"` on a CodeDeploy stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_config: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AliasUpdated {
    pub stage: String,
    pub alias: String,
    pub action: String,
    pub version: String,
    pub candidate: Option<SplitJson>,
    pub description: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BakeStarted {
    pub stage: String,
    pub step: String,
    pub bake_seconds: Seconds,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Bake {
    pub stage: String,
    pub step: String,
    pub remaining_seconds: u64,
    pub verdict: String,
    pub evidence: Vec<EvidenceJson>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BakeExtended {
    pub stage: String,
    pub step: String,
    pub bake_seconds: Seconds,
    pub max_extension_seconds: Seconds,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Held {
    pub stage: String,
    pub reason: String,
    pub alias: AliasJson,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RolledBack {
    pub stage: String,
    pub reason: String,
    /// The version now served.
    pub version: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Interrupted {
    pub stage: String,
    pub alias: AliasJson,
    /// On a CodeDeploy stage, the deployment left running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
}

/// One action of a dry run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum DryAction {
    Write {
        kind: String,
        to: AliasJson,
        description: String,
    },
    Bake {
        step: usize,
        of: usize,
        weight: Percent,
        bake_seconds: Seconds,
    },
    /// CodeDeploy: `CreateDeployment` (its fields in the event's `request`).
    CreateDeployment {
        candidate: String,
        stable: String,
        deployment_config: String,
    },
    /// CodeDeploy: follow a deployment while the bake judges it (null: the one created).
    Follow {
        deployment_id: Option<String>,
    },
    /// CodeDeploy: `StopDeployment` with automatic rollback.
    StopDeployment {
        deployment_id: String,
        reason: String,
    },
    Done {
        result: String,
    },
    Refuse {
        reason: String,
    },
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DryRun {
    pub stage: String,
    pub command: String,
    pub alias: String,
    pub from: AliasJson,
    /// What the run would do, from the decision function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<DryAction>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// The `CreateDeployment` fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appspec: Option<Value>,
    /// A deployment in flight: `{deployment_id, candidate, stable}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow: Option<Value>,
    /// For rollback: `{deployment_id, auto_rollback_enabled}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Done {
    pub stage: String,
    pub command: String,
    /// `noop`, `split`, `deployed`, `completed`, `rolled_back`.
    pub result: String,
    pub alias: AliasJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DeploymentCreated {
    pub stage: String,
    pub deployment_id: String,
    pub application: String,
    pub group: String,
    pub deployment_config: String,
    pub candidate: String,
    pub stable: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Deployment {
    pub stage: String,
    pub deployment_id: String,
    pub status: Option<String>,
    pub phase: String,
    pub candidate_weight: Option<Percent>,
    pub verdict: String,
    pub evidence: Vec<EvidenceJson>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DeploymentStopped {
    pub stage: String,
    pub deployment_id: String,
    pub reason: String,
    pub status: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CodeUploaded {
    pub bytes: usize,
    pub code_sha256: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Published {
    /// None on a dry run that would publish.
    pub version: Option<String>,
    pub created: bool,
    pub name: String,
    pub semver: String,
    pub git_sha: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
}

/// `publish` of several functions: each function's version (null on a dry run that would
/// publish one).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Release {
    pub release: std::collections::BTreeMap<String, Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
}

/// A version as `status` shows it: the number, with its build stamp (all null when its
/// description is not one), and for a candidate its weight.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VersionJson {
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<Percent>,
    pub name: Option<String>,
    pub semver: Option<String>,
    pub git_sha: Option<String>,
    pub short_sha: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RolledBackJson {
    pub version: String,
    pub why: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AlarmJson {
    pub name: String,
    pub state: String,
    pub reason: String,
}

/// The metrics judge's look at a stage mid-canary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JudgeJson {
    pub verdict: String,
    pub summary: String,
    pub numbers: Value,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StageStatus {
    pub stage: String,
    pub alias: String,
    pub previous: Option<String>,
    pub rolled_back: Option<RolledBackJson>,
    pub stable: VersionJson,
    pub candidate: Option<VersionJson>,
    pub alarms: Vec<AlarmJson>,
    pub invoke_url: String,
    /// The override recorded on the alias note (`--skip-upstream`), or null.
    pub upstream_skip: Option<UpstreamSkipJson>,
    /// Mid-canary, with the metrics source: its verdict over the last periods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeJson>,
    /// On a CodeDeploy stage: the deployment in flight (null when none is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct UpstreamSkipJson {
    pub version: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StageError {
    pub stage: String,
    pub error: String,
}

/// `promote check`'s result: the directory's problems, all at once.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Checked {
    pub environments: std::path::PathBuf,
    pub valid: bool,
    /// The stage order when valid, else empty.
    pub stages: Vec<String>,
    pub problems: Vec<Problem>,
}

/// One problem of an environments directory; `field` is null for a whole file or the
/// directory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Problem {
    pub file: std::path::PathBuf,
    pub field: Option<String>,
    pub message: String,
}

/// The probe's report, under its target and title.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport<'a> {
    /// The function probed, on a project of several functions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    pub target: String,
    pub title: String,
    #[serde(flatten)]
    pub report: &'a probe::Report,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Error {
    pub exit_code: i32,
    pub message: String,
    /// clap's full text, for usage errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
