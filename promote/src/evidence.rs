//! Evidence sources: the I/O half of `rollout::evidence`.
//!
//! A bake asks every source of its stage for a [`Finding`] at each poll and hands the
//! findings to `rollout::evidence::combine`. A source is anything that can judge the
//! candidate: the stage's alarms, per-version metrics, a synthetic probe. Adding one is
//! implementing this trait and listing it in the stage's `analysis.sources`; the bake and
//! the decision function do not change.

use std::time::SystemTime;

use futures_util::future::LocalBoxFuture;
use rollout::{Finding, Subject};

/// The window a poll judges: the current step's traffic began at `step_started`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub step_started: SystemTime,
    pub now: SystemTime,
}

pub trait Source {
    /// The name used in findings, events and the stage's `analysis.sources`.
    fn name(&self) -> &str;

    /// One poll. An `Err` is a failed read (retried at the next poll, and never a pass);
    /// a bad candidate is an `Ok` finding whose verdict is a fail.
    fn assess<'a>(
        &'a mut self,
        subject: &'a Subject,
        window: Window,
    ) -> LocalBoxFuture<'a, anyhow::Result<Finding>>;
}

/// The stage's CloudWatch alarms: ALARM fails (as does an alarm that no longer exists);
/// INSUFFICIENT_DATA fails only where the stage says so. They watch the whole alias, not
/// the candidate alone, which is why other sources exist.
pub struct AlarmSource<'a, A> {
    cloud: &'a A,
    names: Vec<String>,
    insufficient_data_is_failure: bool,
    /// Judging relatively (`--judge-relative`, `analysis.judge_relative`): the alarms
    /// already in ALARM at the first read describe the stable version, not the candidate,
    /// so they do not fail it (the metrics judge compares the two versions instead); an
    /// alarm that goes into ALARM later still does. `None` until that first read.
    relative: bool,
    firing_before: Option<Vec<String>>,
}

impl<'a, A: crate::aws::Alarms> AlarmSource<'a, A> {
    pub fn new(cloud: &'a A, stage: &rollout::Stage) -> Self {
        AlarmSource {
            cloud,
            names: stage.alarm_names(),
            insufficient_data_is_failure: stage.insufficient_data_is_failure,
            relative: false,
            firing_before: None,
        }
    }

    pub fn relative(mut self, relative: bool) -> Self {
        self.relative = relative;
        self
    }
}

impl<A: crate::aws::Alarms> Source for AlarmSource<'_, A> {
    fn name(&self) -> &str {
        "alarms"
    }

    fn assess<'a>(
        &'a mut self,
        _subject: &'a Subject,
        _window: Window,
    ) -> LocalBoxFuture<'a, anyhow::Result<Finding>> {
        Box::pin(async move {
            use rollout::EvidenceVerdict as V;
            use rollout::plan::{Verdict as A, alarm_verdict};
            let mut readings = self.cloud.read(&self.names).await?;
            let mut summary = crate::run::alarm_summary(&readings);
            if self.relative {
                let before = self.firing_before.get_or_insert_with(|| {
                    readings
                        .iter()
                        .filter(|r| r.value != rollout::plan::AlarmValue::Ok)
                        .map(|r| r.name.clone())
                        .collect()
                });
                if !before.is_empty() {
                    summary.push_str(&format!(
                        " ({} already firing before the rollout: judged by the metrics, not failed)",
                        before.join(", ")
                    ));
                    readings.retain(|r| !before.contains(&r.name));
                }
            }
            let before = self.firing_before.as_deref().unwrap_or_default();
            let judged: Vec<String> = self
                .names
                .iter()
                .filter(|n| !before.contains(n))
                .cloned()
                .collect();
            let numbers = serde_json::json!(
                readings
                    .iter()
                    .map(|r| serde_json::json!({"name": r.name, "state": r.value.to_string()}))
                    .collect::<Vec<_>>()
            );
            let verdict = match alarm_verdict(&judged, &readings, self.insufficient_data_is_failure)
            {
                A::Healthy => V::Pass,
                A::Failing(r) => V::Fail(format!(
                    "alarm {} is {} ({})",
                    r.name,
                    r.value,
                    if r.reason.is_empty() {
                        "no reason given"
                    } else {
                        &r.reason
                    }
                )),
                A::Missing(names) => V::Fail(format!(
                    "alarm(s) {} do not exist in CloudWatch, so they cannot protect the stage",
                    names.join(", ")
                )),
            };
            Ok(Finding::new("alarms", verdict, summary).with_numbers(numbers))
        })
    }
}
