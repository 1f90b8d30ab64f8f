//! The `analysis` block: how a bake judges the candidate (README, "Canary analysis").

use std::time::Duration;

use serde::Deserialize;

use super::strategy::Strategy;
use crate::judge::Criteria;

/// An evidence source a stage's bakes consult.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The stage's CloudWatch alarms (whole alias).
    Alarms,
    /// Lambda's per-version metrics, candidate against stable (`rollout::judge`).
    Metrics,
    /// `promote`'s own open-loop probe of the stage's URL through every bake, each answer
    /// attributed to the version that served it (README, "The probe during a canary").
    Probe,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Alarms => "alarms",
            SourceKind::Metrics => "metrics",
            SourceKind::Probe => "probe",
        }
    }
}

/// What a bake does when it ends (after its extension) without enough evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnNoEvidence {
    /// Leave the split as it is and exit with its own code (6), saying how to go on.
    Hold,
    /// Take the traffic back, as on a fail (exit 4).
    Rollback,
}

/// What a bake does when its evidence cannot be read `max_read_failures` polls in a row:
/// a split is never left unwatched without saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnreadable {
    /// Take the traffic back (exit 4), as Argo Rollouts does past its error limit.
    #[default]
    Rollback,
    /// Leave the split as it is and exit with the held code, saying how to go on.
    Hold,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub sources: Vec<SourceKind>,
    /// The metric period: 60 s in AWS, where Lambda publishes per minute.
    pub period_seconds: u32,
    pub criteria: Criteria,
    /// How long a bake that ends without enough evidence keeps watching.
    pub max_extension: Duration,
    pub on_no_evidence: OnNoEvidence,
    /// An alarm already firing before the first write does not refuse the rollout; the
    /// metrics judge decides (so that a fix for a bad stable version can ship).
    pub judge_relative: bool,
    /// Requests a second the probe sends through every bake, where `"probe"` is a source
    /// (or `--probe` asks for it).
    pub probe_rate: f64,
    /// What happens once the evidence failed to read `max_read_failures` polls in a row.
    pub on_unreadable: OnUnreadable,
    /// Consecutive failed reads of the evidence a bake tolerates (at least 1).
    pub max_read_failures: u32,
    /// A bake may pass before its time is up once the judge has enough evidence.
    pub early_pass: bool,
}

/// Documented defaults (README, "Canary analysis"; the schema's `default`s, held equal by a
/// test). A canary stage watches its alarms and judges per-version metrics; an all-at-once
/// stage has no stable version serving beside the candidate, so it keeps to its alarms.
pub const DEFAULT_PERIOD_SECONDS: u32 = 60;
pub const DEFAULT_MAX_EXTENSION_SECONDS: u64 = 300;
/// Ten requests a second: about 1 a second reaches a 10% candidate, so a candidate failing
/// one request in five is judged within tens of seconds, at 36,000 requests an hour.
pub const DEFAULT_PROBE_RATE: f64 = 10.0;
/// Three polls in a row: one failed read is a blip, three is an outage of the evidence.
pub const DEFAULT_MAX_READ_FAILURES: u32 = 3;
/// A probe is a look at a stage, not a load test (the schema's `analysis.probe_rate`
/// maximum, which `--probe-rate` is held to as well).
pub const MAX_PROBE_RATE: f64 = 1000.0;
/// 1, 5, 10 and 30 s are CloudWatch's high-resolution periods; 60 s and its multiples the
/// standard ones (Lambda's own metrics are per minute). The schema's `analysis.period_seconds`.
pub const ANALYSIS_PERIODS: [u32; 11] = [1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600];

impl Analysis {
    pub fn default_for(strategy: &Strategy) -> Analysis {
        let sources = match strategy {
            Strategy::Canary { .. } => vec![SourceKind::Alarms, SourceKind::Metrics],
            Strategy::AllAtOnce { .. } => vec![SourceKind::Alarms],
        };
        // The judge shares the significance over the steps it watches.
        let steps = match strategy {
            Strategy::Canary { steps } => steps.len(),
            Strategy::AllAtOnce { .. } => 1,
        };
        Analysis {
            sources,
            period_seconds: DEFAULT_PERIOD_SECONDS,
            criteria: Criteria::default().for_plan(steps),
            max_extension: Duration::from_secs(DEFAULT_MAX_EXTENSION_SECONDS),
            on_no_evidence: OnNoEvidence::Hold,
            judge_relative: false,
            probe_rate: DEFAULT_PROBE_RATE,
            on_unreadable: OnUnreadable::Rollback,
            max_read_failures: DEFAULT_MAX_READ_FAILURES,
            early_pass: false,
        }
    }

    pub fn uses(&self, source: SourceKind) -> bool {
        self.sources.contains(&source)
    }
}
