//! The decisions of a rollout, as pure functions over what was read from AWS.
//!
//! The state of a rollout is the alias itself: the version it serves (stable), and at most
//! one additional version (the candidate) with its weight. Every function here takes that
//! state and the stage's configuration and says what to do next, so a run that starts
//! anywhere (a fresh start, a rerun after `kill -9`, another machine) makes the same call.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

use crate::note::{Note, UpstreamSkip};
use crate::spec::Step;
use crate::stamp::BuildStamp;
use crate::version::Version;
use crate::weight::Weight;

/// The candidate and its share of the alias's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub version: Version,
    pub weight: Weight,
}

/// What an alias routes: `version` takes everything the split does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AliasView {
    pub version: Version,
    pub split: Option<Split>,
}

impl fmt::Display for AliasView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.split {
            None => write!(f, "version {} (100%)", self.version),
            Some(s) => write!(
                f,
                "version {} with version {} at {}",
                self.version, s.version, s.weight
            ),
        }
    }
}

/// How the CLI should treat a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The input cannot work as given (exit 2).
    BadInput,
    /// A safety guard said no (exit 3).
    Guard,
    /// The alias is not where the run left it (exit 5).
    Conflict,
}

/// How the command line names one function's candidate, for advice that names one:
/// `--version N` on a project of one function, `--release FUNCTION=N` for a function of a
/// release of several (where `--version` is the first function's).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionFlag {
    /// The function of a release; `None`: `--version`.
    pub function: Option<String>,
}

impl VersionFlag {
    pub fn release(function: &str) -> VersionFlag {
        VersionFlag {
            function: Some(function.to_string()),
        }
    }

    /// `--version 4`, or `--release birthday=4`.
    pub fn with(&self, version: impl std::fmt::Display) -> String {
        match &self.function {
            None => format!("--version {version}"),
            Some(f) => format!("--release {f}={version}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanError {
    #[error(
        "stage {stage} has no upstream stage to take a candidate from; pass {}",
        flag.with("N")
    )]
    NoUpstream { stage: String, flag: VersionFlag },
    #[error(
        "no version serves 100% of {upstream}: it is mid-canary ({view}); finish or roll back {upstream} first, or pass {}",
        flag.with("N")
    )]
    UpstreamMidCanary {
        upstream: String,
        view: AliasView,
        flag: VersionFlag,
    },
    #[error(
        "{stage} is mid-canary with version {in_flight} at {weight}; complete it (`promote complete --stage {stage}`) or roll it back (`promote rollback --stage {stage}`) before starting version {requested}"
    )]
    OtherCanaryInFlight {
        stage: String,
        in_flight: Version,
        weight: Weight,
        requested: Version,
    },
    #[error(
        "refusing to downgrade {stage}: candidate version {candidate} is {candidate_semver}, lower than {stable_semver} served by version {stable}; pass --allow-downgrade if this is intended"
    )]
    Downgrade {
        stage: String,
        candidate: Version,
        candidate_semver: semver::Version,
        stable: Version,
        stable_semver: semver::Version,
    },
    #[error(
        "cannot compare versions on {stage}: the semver of version {version} is unknown (its description {description:?} is not `<name> <semver> <git sha>`); pass --allow-downgrade to move anyway"
    )]
    UnknownSemver {
        stage: String,
        version: Version,
        description: String,
    },
    #[error(
        "version {version}, which stage {stage} serves, is no longer a published version of the function (deleted?), so a candidate can neither be compared with it nor split against it; check `promote status --stage {stage}`. On an all-at-once stage, `promote deploy --allow-downgrade` moves it anyway"
    )]
    StableNotPublished { stage: String, version: Version },
    #[error(
        "refusing version {candidate} on {stage}: {upstream} has not served it at 100% ({served}); roll it out on {upstream} first, or pass --skip-upstream --reason \"...\" to let it in anyway (the reason is recorded on the alias); nothing was changed"
    )]
    UpstreamNotServed {
        stage: String,
        candidate: Version,
        upstream: String,
        served: String,
    },
    #[error("--skip-upstream on {stage}: {why}; nothing was changed")]
    BadSkip { stage: String, why: String },
    #[error("{0}")]
    Routing(#[from] RoutingError),
    #[error(
        "nothing to advance on {stage}: no canary in progress (it serves {view}); start one with `promote canary --stage {stage}`"
    )]
    NoCanary { stage: String, view: AliasView },
    #[error(
        "--weight {requested} does not advance {stage}, which already sends {current} to the candidate; give a weight above {current}"
    )]
    NotForward {
        stage: String,
        requested: Weight,
        current: Weight,
    },
    #[error(
        "--weight {requested} would move {stage} backwards: the candidate already takes {current}; traffic only goes back by `promote rollback --stage {stage}`"
    )]
    Backwards {
        stage: String,
        requested: Weight,
        current: Weight,
    },
    #[error(
        "stage {stage} uses the {strategy} strategy; move it with `promote {command} --stage {stage}`{}",
        if *strategy == "all_at_once" { ", or give --weight W for a one-off split" } else { "" }
    )]
    WrongStrategy {
        stage: String,
        strategy: &'static str,
        command: &'static str,
    },
    #[error(
        "version {version} was rolled back on {stage} ({why}); refusing to roll it out again. {again}"
    )]
    RolledBackBefore {
        stage: String,
        version: Version,
        why: String,
        /// What to do instead, as a command that works in this state: a rollout takes
        /// `--retry`, a rollback (which has no such flag) names the rollout that does.
        again: String,
    },
    #[error(
        "the alias of stage {stage} records no usable previous version (its note is {description:?}); move it explicitly with `promote {command} --stage {stage} {} --allow-downgrade` (N: a published version; `promote status` lists the stages' versions{retry})",
        flag.with("N")
    )]
    NoPrevious {
        stage: String,
        description: String,
        flag: VersionFlag,
        /// The command that moves this stage to a version: `deploy` or `canary` by its strategy.
        command: &'static str,
        /// `; add --retry for version V, rolled back here` when the note records one: without
        /// it the advised command would refuse that version.
        retry: String,
    },
    #[error(
        "refusing to change stage {stage}: {reason}; nothing was changed. Investigate it and retry once it is OK"
    )]
    EvidenceFailing { stage: String, reason: String },
    #[error(
        "{what}: stage {stage} is shifted by CodeDeploy (\"engine\": \"codedeploy\" in {path}), which runs the steps of its deployment configuration by itself; `promote canary --stage {stage}` (or `deploy`) starts and follows a deployment, `promote rollback --stage {stage}` stops one"
    )]
    NotOnCodeDeploy {
        stage: String,
        what: &'static str,
        path: String,
    },
    #[error("{path}: {message}")]
    Inexpressible { path: String, message: String },
    #[error(
        "{deployment} is already in progress for CodeDeploy group {stage} of application {application}, and CodeDeploy runs one deployment per group; nothing was written. Follow it with `promote canary --stage {stage}`, wait for it (`promote status --stage {stage}`), or stop it with `promote rollback --stage {stage}`"
    )]
    DeploymentInFlight {
        stage: String,
        application: String,
        /// The deployment as described (`deployment d-1 (version 1 -> 2, InProgress)`).
        deployment: String,
    },
    #[error(
        "the alias of stage {stage} routes {} to version {} and no CodeDeploy deployment is shifting it; CodeDeploy starts from one version, so nothing was written. Take it back with `promote rollback --stage {stage}` first",
        split.weight, split.version
    )]
    SplitWithoutDeployment { stage: String, split: Split },
    #[error("{reason}; stage {stage} was not changed (nothing was written, no deployment created)")]
    DeploymentNotCreated { stage: String, reason: String },
    #[error(
        "stage {stage} no longer routes to candidate {candidate} ({view}); check `promote status --stage {stage}`"
    )]
    Lost {
        stage: String,
        candidate: Version,
        view: AliasView,
    },
}

impl PlanError {
    /// The same refusal, its advice naming the candidate as `flag` does.
    pub fn named_by(mut self, named: &VersionFlag) -> PlanError {
        match &mut self {
            PlanError::NoUpstream { flag, .. }
            | PlanError::UpstreamMidCanary { flag, .. }
            | PlanError::NoPrevious { flag, .. } => *flag = named.clone(),
            _ => {}
        }
        self
    }

    pub fn refusal(&self) -> Refusal {
        match self {
            PlanError::UpstreamMidCanary { .. }
            | PlanError::RolledBackBefore { .. }
            | PlanError::EvidenceFailing { .. }
            | PlanError::OtherCanaryInFlight { .. }
            | PlanError::Downgrade { .. }
            | PlanError::UnknownSemver { .. }
            | PlanError::StableNotPublished { .. }
            | PlanError::UpstreamNotServed { .. }
            | PlanError::DeploymentInFlight { .. }
            | PlanError::SplitWithoutDeployment { .. }
            | PlanError::DeploymentNotCreated { .. } => Refusal::Guard,
            PlanError::NoUpstream { .. }
            | PlanError::BadSkip { .. }
            | PlanError::Routing(_)
            | PlanError::NoCanary { .. }
            | PlanError::NotForward { .. }
            | PlanError::Backwards { .. }
            | PlanError::WrongStrategy { .. }
            | PlanError::NoPrevious { .. }
            | PlanError::NotOnCodeDeploy { .. }
            | PlanError::Inexpressible { .. } => Refusal::BadInput,
            PlanError::Lost { .. } => Refusal::Conflict,
        }
    }
}

/// Lambda's own rules for a weighted alias, checked before any call so that a bad request
/// never reaches AWS (and never half-applies).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RoutingError {
    #[error(
        "version {version} is not a published version of the function (published: {})",
        list(published)
    )]
    UnknownVersion {
        version: Version,
        published: Vec<Version>,
    },
    #[error(
        "the candidate cannot be the version the alias already serves ({0}); a split needs two different versions"
    )]
    SameVersion(Version),
    #[error("a split weight must be strictly between 0% and 100%, not {0}")]
    WeightOutOfRange(Weight),
}

fn list(published: &[Version]) -> String {
    if published.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = published.iter().map(Version::to_string).collect();
    shown.join(", ")
}

/// Which version to roll out. An explicit `--version` wins; otherwise a canary already in
/// flight on this stage is resumed; otherwise it is the version serving 100% upstream.
pub fn choose_candidate(
    stage: &str,
    explicit: Option<Version>,
    current: &AliasView,
    upstream: Option<(&str, &AliasView)>,
) -> Result<Version, PlanError> {
    if let Some(split) = current.split {
        return match explicit {
            Some(v) if v != split.version => Err(PlanError::OtherCanaryInFlight {
                stage: stage.into(),
                in_flight: split.version,
                weight: split.weight,
                requested: v,
            }),
            _ => Ok(split.version),
        };
    }
    if let Some(v) = explicit {
        return Ok(v);
    }
    match upstream {
        None => Err(PlanError::NoUpstream {
            stage: stage.into(),
            flag: VersionFlag::default(),
        }),
        Some((name, view)) if view.split.is_some() => Err(PlanError::UpstreamMidCanary {
            upstream: name.into(),
            view: *view,
            flag: VersionFlag::default(),
        }),
        Some((_, view)) => Ok(view.version),
    }
}

/// The upstream stage as AWS holds it: its alias's routing and note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub name: String,
    pub view: AliasView,
    pub note: Note,
}

/// The versions the upstream stage has served at 100%, as far as its alias records: the
/// version it serves (also while a canary runs beside it, since it served everything
/// before), unless its final bake there has not passed yet; the version its note records as
/// served before; a candidate its note marks as completed (at 100%, baked); and the last
/// versions its note lists as completed there (`served`).
pub fn served_upstream(up: &Upstream) -> Vec<Version> {
    let mut served = Vec::new();
    if !up.note.pending_final_bake(up.view.version) {
        served.push(up.view.version);
    }
    if let Some(m) = up.note.step
        && m.weight.is_full()
        && m.baked
    {
        served.push(m.candidate);
    }
    served.extend(up.note.previous);
    served.extend(up.note.served.iter().copied());
    served.sort();
    served.dedup();
    served
}

/// Why a candidate may go onto a stage with respect to its upstream stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// The stage is the first on the path (no upstream).
    FirstStage,
    /// The upstream stage served it at 100%.
    Served,
    /// This stage already let it in: it serves or served it, or promote put it on the alias
    /// (the note's step mark) or an override did (the note's skip) in an earlier run, which a
    /// rerun, `advance` and `complete` resume even if the upstream stage moved on since.
    AdmittedBefore,
    /// `--skip-upstream --reason`: record it on the alias note.
    Skipped(UpstreamSkip),
}

/// The path-to-live guard: on a stage with an upstream, a candidate the upstream stage has
/// not served at 100% is refused (exit 3) unless the operator overrides it with a reason.
/// `skip_reason` is `--skip-upstream --reason R`; an empty reason, or an override where
/// there is no upstream, is bad input whatever else holds, so that a mistyped override
/// never passes silently.
pub fn upstream_guard(
    stage: &str,
    candidate: Version,
    current: &AliasView,
    note: &Note,
    upstream: Option<&Upstream>,
    skip_reason: Option<&str>,
) -> Result<Admission, PlanError> {
    let bad = |why: &str| PlanError::BadSkip {
        stage: stage.into(),
        why: why.into(),
    };
    let reason = skip_reason.map(str::trim);
    if reason == Some("") {
        return Err(bad(
            "the reason is empty; say why the upstream stage is skipped with --reason \"...\"",
        ));
    }
    let Some(up) = upstream else {
        return match reason {
            Some(_) => Err(bad(
                "this stage has no upstream stage, so there is nothing to skip; drop --skip-upstream",
            )),
            None => Ok(Admission::FirstStage),
        };
    };
    let served = served_upstream(up);
    if served.contains(&candidate) {
        return Ok(Admission::Served);
    }
    let here_before = current.version == candidate
        || note.previous == Some(candidate)
        || note.step.is_some_and(|m| m.candidate == candidate)
        || note
            .upstream_skip
            .as_ref()
            .is_some_and(|k| k.version == candidate);
    if here_before {
        return Ok(Admission::AdmittedBefore);
    }
    if let Some(r) = reason {
        return Ok(Admission::Skipped(UpstreamSkip {
            version: candidate,
            reason: r.to_string(),
        }));
    }
    let mut what = format!("it serves {}", up.view);
    if up.note.pending_final_bake(up.view.version) {
        what += &format!(
            ", and the final bake of version {} has not passed there",
            up.view.version
        );
    }
    if let Some(p) = up.note.previous {
        what += &format!("; its note records version {p} served before");
    }
    Err(PlanError::UpstreamNotServed {
        stage: stage.into(),
        candidate,
        upstream: up.name.clone(),
        served: what,
    })
}

/// Whether moving `stable` -> `candidate` should happen at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// The stage already serves the candidate: nothing to do, successfully.
    NoOp,
    Proceed,
}

/// The semver guard. Stamps are `None` when a version's description does not parse.
pub fn semver_guard(
    stage: &str,
    candidate: (Version, Option<&BuildStamp>, &str),
    stable: (Version, Option<&BuildStamp>, &str),
    allow_downgrade: bool,
) -> Result<Move, PlanError> {
    let (cand_v, cand_stamp, cand_desc) = candidate;
    let (stable_v, stable_stamp, stable_desc) = stable;
    if cand_v == stable_v {
        return Ok(Move::NoOp);
    }
    if allow_downgrade {
        return Ok(Move::Proceed);
    }
    let unknown = |version, description: &str| PlanError::UnknownSemver {
        stage: stage.into(),
        version,
        description: description.into(),
    };
    let cand = cand_stamp.ok_or_else(|| unknown(cand_v, cand_desc))?;
    let stable = stable_stamp.ok_or_else(|| unknown(stable_v, stable_desc))?;
    if cand.semver < stable.semver {
        return Err(PlanError::Downgrade {
            stage: stage.into(),
            candidate: cand_v,
            candidate_semver: cand.semver.clone(),
            stable: stable_v,
            stable_semver: stable.semver.clone(),
        });
    }
    Ok(Move::Proceed)
}

/// Checks a split against Lambda's routing rules and the versions that exist.
pub fn validate_split(
    stable: Version,
    split: Split,
    published: &[Version],
) -> Result<(), RoutingError> {
    validate_target(stable, published)?;
    validate_target(split.version, published)?;
    if split.version == stable {
        return Err(RoutingError::SameVersion(stable));
    }
    if split.weight.is_full() || split.weight.hundredths() == 0 {
        return Err(RoutingError::WeightOutOfRange(split.weight));
    }
    Ok(())
}

/// Checks that a version an alias is about to serve is published.
pub fn validate_target(version: Version, published: &[Version]) -> Result<(), RoutingError> {
    if published.contains(&version) {
        Ok(())
    } else {
        Err(RoutingError::UnknownVersion {
            version,
            published: published.to_vec(),
        })
    }
}

/// The steps still to run, given the candidate's current weight on the alias.
///
/// A fresh start runs every step. A rerun (after Ctrl-C or `kill -9`) finds the split
/// still in place and holds it: it first bakes at the current weight (with the bake of the
/// step it belongs to) and then carries on with the steps above it. It never starts over
/// from the first step and never jumps to 100%.
pub fn remaining_steps(steps: &[Step], current: Option<Weight>) -> Vec<Step> {
    let Some(c) = current else {
        return steps.to_vec();
    };
    let hold_bake = steps
        .iter()
        .rev()
        .find(|s| s.weight <= c)
        .or(steps.first())
        .map_or(Duration::ZERO, |s| s.bake);
    let mut out = vec![Step {
        weight: c,
        bake: hold_bake,
    }];
    out.extend(steps.iter().filter(|s| s.weight > c).copied());
    out
}

/// Where a split sits in the step plan: `(n, of)` with `n` the 1-based number of the
/// highest step at or below `weight` (0 when below the first), for progress displays.
pub fn step_position(steps: &[Step], weight: Weight) -> (usize, usize) {
    (
        steps.iter().filter(|s| s.weight <= weight).count(),
        steps.len(),
    )
}

/// The weight `promote advance` moves to: `--weight` if given (it must be above the current
/// one), else the next step of the plan. [`Weight::FULL`] means: complete the promotion.
pub fn advance_to(
    stage: &str,
    steps: &[Step],
    current: &AliasView,
    requested: Option<Weight>,
) -> Result<Weight, PlanError> {
    let Some(split) = current.split else {
        return Err(PlanError::NoCanary {
            stage: stage.into(),
            view: *current,
        });
    };
    if let Some(w) = requested {
        if w <= split.weight {
            return Err(PlanError::NotForward {
                stage: stage.into(),
                requested: w,
                current: split.weight,
            });
        }
        return Ok(w);
    }
    Ok(steps
        .iter()
        .map(|s| s.weight)
        .find(|w| *w > split.weight)
        .unwrap_or(Weight::FULL))
}

/// A CloudWatch alarm state, as promote cares about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmValue {
    Ok,
    Alarm,
    InsufficientData,
}

impl fmt::Display for AlarmValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AlarmValue::Ok => "OK",
            AlarmValue::Alarm => "ALARM",
            AlarmValue::InsufficientData => "INSUFFICIENT_DATA",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmReading {
    pub name: String,
    pub value: AlarmValue,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u64) -> Version {
        Version::new(n).unwrap()
    }
    fn w(p: &str) -> Weight {
        Weight::parse_percent(p).unwrap()
    }
    fn at(version: u64) -> AliasView {
        AliasView {
            version: v(version),
            split: None,
        }
    }
    fn split(version: u64, cand: u64, weight: &str) -> AliasView {
        AliasView {
            version: v(version),
            split: Some(Split {
                version: v(cand),
                weight: w(weight),
            }),
        }
    }
    fn step(p: &str, secs: u64) -> Step {
        Step {
            weight: w(p),
            bake: Duration::from_secs(secs),
        }
    }
    fn plan() -> Vec<Step> {
        vec![step("10", 300), step("50", 200), step("100", 120)]
    }
    fn stamp(semver: &str) -> BuildStamp {
        BuildStamp::parse(&format!("app {semver} unknown")).unwrap()
    }

    #[test]
    fn candidate_is_explicit_else_resumed_else_upstream_stable() {
        assert_eq!(
            choose_candidate("live", Some(v(3)), &at(1), Some(("test", &at(2)))),
            Ok(v(3))
        );
        assert_eq!(
            choose_candidate("live", None, &at(1), Some(("test", &at(2)))),
            Ok(v(2))
        );
        // Mid-canary: resume the version in flight even if upstream has moved on.
        assert_eq!(
            choose_candidate("live", None, &split(1, 2, "10"), Some(("test", &at(3)))),
            Ok(v(2))
        );
        assert_eq!(
            choose_candidate("live", Some(v(2)), &split(1, 2, "10"), None),
            Ok(v(2))
        );
    }

    #[test]
    fn candidate_refusals() {
        assert_eq!(
            choose_candidate("dev", None, &at(1), None),
            Err(PlanError::NoUpstream {
                stage: "dev".into(),
                flag: VersionFlag::default(),
            })
        );
        let e =
            choose_candidate("live", None, &at(1), Some(("test", &split(2, 3, "10")))).unwrap_err();
        assert_eq!(e.refusal(), Refusal::Guard);
        assert!(
            e.to_string().contains("no version serves 100% of test"),
            "{e}"
        );
        let e = choose_candidate("live", Some(v(3)), &split(1, 2, "10"), None).unwrap_err();
        assert_eq!(e.refusal(), Refusal::Guard);
        assert!(
            e.to_string().contains("mid-canary with version 2 at 10%"),
            "{e}"
        );
        assert!(
            e.to_string().contains("promote rollback --stage live"),
            "{e}"
        );
    }

    #[test]
    fn semver_guard_allows_upgrades_and_equal_semver() {
        let (a, b) = (stamp("0.1.0"), stamp("0.2.0"));
        assert_eq!(
            semver_guard("live", (v(2), Some(&b), ""), (v(1), Some(&a), ""), false),
            Ok(Move::Proceed)
        );
        assert_eq!(
            semver_guard("live", (v(2), Some(&a), ""), (v(1), Some(&a), ""), false),
            Ok(Move::Proceed)
        );
    }

    #[test]
    fn semver_guard_refuses_downgrades_unless_allowed() {
        let (a, b) = (stamp("0.1.0"), stamp("0.2.0"));
        let e = semver_guard("dev", (v(1), Some(&a), ""), (v(2), Some(&b), ""), false).unwrap_err();
        assert_eq!(e.refusal(), Refusal::Guard);
        let msg = e.to_string();
        assert!(
            msg.contains("downgrade")
                && msg.contains("0.1.0")
                && msg.contains("0.2.0")
                && msg.contains("--allow-downgrade"),
            "{msg}"
        );
        assert_eq!(
            semver_guard("dev", (v(1), Some(&a), ""), (v(2), Some(&b), ""), true),
            Ok(Move::Proceed)
        );
        // Pre-releases sort below their release.
        let rc = stamp("0.2.0-rc.1");
        assert!(semver_guard("dev", (v(3), Some(&rc), ""), (v(2), Some(&b), ""), false).is_err());
    }

    #[test]
    fn unknown_semver_needs_allow_downgrade() {
        let a = stamp("0.1.0");
        let e = semver_guard(
            "live",
            (v(4), None, "built by hand"),
            (v(1), Some(&a), ""),
            false,
        )
        .unwrap_err();
        assert_eq!(e.refusal(), Refusal::Guard);
        assert!(
            e.to_string().contains("version 4") && e.to_string().contains("built by hand"),
            "{e}"
        );
        assert!(semver_guard("live", (v(4), Some(&a), ""), (v(1), None, ""), false).is_err());
        assert_eq!(
            semver_guard("live", (v(4), None, ""), (v(1), None, ""), true),
            Ok(Move::Proceed)
        );
    }

    #[test]
    fn candidate_equal_to_stable_is_a_no_op_even_without_stamps() {
        assert_eq!(
            semver_guard("live", (v(2), None, ""), (v(2), None, ""), false),
            Ok(Move::NoOp)
        );
    }

    #[test]
    fn split_validation_follows_lambda_rules() {
        let published = [v(1), v(2), v(3)];
        assert_eq!(
            validate_split(
                v(1),
                Split {
                    version: v(2),
                    weight: w("10")
                },
                &published
            ),
            Ok(())
        );
        assert_eq!(
            validate_split(
                v(1),
                Split {
                    version: v(1),
                    weight: w("10")
                },
                &published
            ),
            Err(RoutingError::SameVersion(v(1)))
        );
        assert_eq!(
            validate_split(
                v(1),
                Split {
                    version: v(2),
                    weight: Weight::FULL
                },
                &published
            ),
            Err(RoutingError::WeightOutOfRange(Weight::FULL))
        );
        let e = validate_split(
            v(1),
            Split {
                version: v(99),
                weight: w("10"),
            },
            &published,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "version 99 is not a published version of the function (published: 1, 2, 3)"
        );
        assert!(
            validate_split(
                v(7),
                Split {
                    version: v(2),
                    weight: w("10")
                },
                &published
            )
            .is_err()
        );
        assert_eq!(PlanError::from(e).refusal(), Refusal::BadInput);
        assert!(validate_target(v(3), &published).is_ok());
        assert!(
            validate_target(v(1), &[])
                .unwrap_err()
                .to_string()
                .contains("published: none")
        );
    }

    #[test]
    fn a_fresh_run_does_every_step() {
        assert_eq!(remaining_steps(&plan(), None), plan());
    }

    #[test]
    fn a_rerun_holds_the_current_weight_then_continues() {
        assert_eq!(
            remaining_steps(&plan(), Some(w("10"))),
            vec![step("10", 300), step("50", 200), step("100", 120)]
        );
        assert_eq!(
            remaining_steps(&plan(), Some(w("50"))),
            vec![step("50", 200), step("100", 120)]
        );
        // A weight set by hand between steps bakes with the step below it, then goes on up.
        assert_eq!(
            remaining_steps(&plan(), Some(w("30"))),
            vec![step("30", 300), step("50", 200), step("100", 120)]
        );
        // Below the first step: bake as the first step would, then every step above.
        assert_eq!(
            remaining_steps(&plan(), Some(w("5"))),
            vec![
                step("5", 300),
                step("10", 300),
                step("50", 200),
                step("100", 120)
            ]
        );
        // Above the last split step: hold, then complete.
        assert_eq!(
            remaining_steps(&plan(), Some(w("75"))),
            vec![step("75", 200), step("100", 120)]
        );
    }

    #[test]
    fn a_rerun_never_goes_back_to_zero_nor_straight_to_full() {
        for pct in ["0.01", "5", "10", "30", "50", "99.99"] {
            let steps = remaining_steps(&plan(), Some(w(pct)));
            assert_eq!(steps[0].weight, w(pct), "first step must hold {pct}");
            assert!(
                steps.windows(2).all(|p| p[0].weight < p[1].weight),
                "{steps:?}"
            );
            assert!(steps.len() >= 2 && steps.last().unwrap().weight.is_full());
        }
    }

    #[test]
    fn step_positions_for_display() {
        assert_eq!(step_position(&plan(), w("10")), (1, 3));
        assert_eq!(step_position(&plan(), w("30")), (1, 3));
        assert_eq!(step_position(&plan(), w("50")), (2, 3));
        assert_eq!(step_position(&plan(), w("5")), (0, 3));
        assert_eq!(step_position(&[], w("5")), (0, 0));
    }

    #[test]
    fn advance_goes_to_the_next_step_or_the_requested_weight() {
        assert_eq!(
            advance_to("live", &plan(), &split(1, 2, "10"), None),
            Ok(w("50"))
        );
        assert_eq!(
            advance_to("live", &plan(), &split(1, 2, "30"), None),
            Ok(w("50"))
        );
        assert_eq!(
            advance_to("live", &plan(), &split(1, 2, "50"), None),
            Ok(Weight::FULL)
        );
        assert_eq!(
            advance_to("live", &[], &split(1, 2, "50"), None),
            Ok(Weight::FULL)
        );
        assert_eq!(
            advance_to("live", &plan(), &split(1, 2, "10"), Some(w("25"))),
            Ok(w("25"))
        );
        let e = advance_to("live", &plan(), &split(1, 2, "50"), Some(w("25"))).unwrap_err();
        assert_eq!(e.refusal(), Refusal::BadInput);
        assert!(e.to_string().contains("above 50%"), "{e}");
        let e = advance_to("live", &plan(), &at(1), None).unwrap_err();
        assert!(e.to_string().contains("no canary in progress"), "{e}");
    }

    #[test]
    fn views_display_for_messages() {
        assert_eq!(at(1).to_string(), "version 1 (100%)");
        assert_eq!(
            split(1, 2, "10").to_string(),
            "version 1 with version 2 at 10%"
        );
    }

    fn up(view: AliasView, note: &str) -> Upstream {
        Upstream {
            name: "test".into(),
            view,
            note: Note::parse(note),
        }
    }

    fn guard(
        candidate: u64,
        here: &str,
        upstream: Option<&Upstream>,
        reason: Option<&str>,
    ) -> Result<Admission, PlanError> {
        upstream_guard(
            "live",
            v(candidate),
            &at(1),
            &Note::parse(here),
            upstream,
            reason,
        )
    }

    #[test]
    fn served_upstream_is_what_the_alias_and_its_note_record() {
        // Serving 4 at 100%, 3 before it.
        assert_eq!(
            served_upstream(&up(at(4), "promote/v1 previous=3")),
            [v(3), v(4)]
        );
        // Mid-canary: the stable version served everything before the split; the candidate
        // at 10% has not.
        assert_eq!(
            served_upstream(&up(
                split(4, 5, "10"),
                "promote/v1 previous=3 step=5@10 baked=no"
            )),
            [v(3), v(4)]
        );
        // At 100% but its final bake has not passed: not served yet.
        assert_eq!(
            served_upstream(&up(at(5), "promote/v1 previous=4 step=5@100 baked=no")),
            [v(4)]
        );
        // The note's list of completed versions counts too (test moved on twice since 2).
        assert_eq!(
            served_upstream(&up(at(6), "promote/v1 previous=5 served=2,5,6")),
            [v(2), v(5), v(6)]
        );
        // A note written by someone else: only the alias counts.
        assert_eq!(served_upstream(&up(at(7), "by hand")), [v(7)]);
    }

    #[test]
    fn the_upstream_guard_refuses_a_version_the_upstream_never_served() {
        let test = up(at(4), "promote/v1 previous=3 step=4@100 baked=yes");
        assert_eq!(guard(4, "", Some(&test), None), Ok(Admission::Served));
        assert_eq!(guard(3, "", Some(&test), None), Ok(Admission::Served));
        let refused = guard(9, "", Some(&test), None).unwrap_err();
        assert_eq!(refused.refusal(), Refusal::Guard);
        let text = refused.to_string();
        assert!(
            text.contains("version 9 on live: test has not served it"),
            "{text}"
        );
        assert!(text.contains("--skip-upstream --reason"), "{text}");
        // The first stage has nothing upstream.
        assert_eq!(guard(9, "", None, None), Ok(Admission::FirstStage));
        // test's final bake of 5 never passed: 5 is refused on live, and the message says why.
        let pending = up(at(5), "promote/v1 previous=4 step=5@100 baked=no");
        let text = guard(5, "", Some(&pending), None).unwrap_err().to_string();
        assert!(
            text.contains("final bake of version 5 has not passed"),
            "{text}"
        );
    }

    #[test]
    fn what_this_stage_let_in_before_is_resumed_without_the_upstream() {
        // test moved on to 8 (previous 7) after live's canary of 5 started.
        let test = up(at(8), "promote/v1 previous=7");
        for here in [
            "promote/v1 previous=1 step=5@10 baked=no",
            "promote/v1 skip_upstream=5 skip_reason=hotfix",
            "promote/v1 previous=5",
        ] {
            assert_eq!(
                guard(5, here, Some(&test), None),
                Ok(Admission::AdmittedBefore),
                "{here}"
            );
        }
        // The version the stage serves is no news to it.
        assert_eq!(
            guard(1, "", Some(&test), None),
            Ok(Admission::AdmittedBefore)
        );
        // A skip recorded for another version lets nothing else in.
        assert!(guard(6, "promote/v1 skip_upstream=5", Some(&test), None).is_err());
    }

    #[test]
    fn an_override_needs_a_reason_and_an_upstream() {
        let test = up(at(4), "");
        assert_eq!(
            guard(9, "", Some(&test), Some("  CVE-2026-1 fix  ")),
            Ok(Admission::Skipped(UpstreamSkip {
                version: v(9),
                reason: "CVE-2026-1 fix".into()
            }))
        );
        // Not needed: nothing is recorded.
        assert_eq!(guard(4, "", Some(&test), Some("x")), Ok(Admission::Served));
        for (reason, upstream) in [(" ", Some(&test)), ("", Some(&test)), ("why", None)] {
            let e = guard(9, "", upstream, Some(reason)).unwrap_err();
            assert_eq!(e.refusal(), Refusal::BadInput, "{e}");
        }
        // An empty reason is refused even where the version needs no override.
        assert!(guard(4, "", Some(&test), Some("")).is_err());
    }
}
