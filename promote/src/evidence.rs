//! Evidence sources: the I/O half of `rollout::evidence`.
//!
//! A bake asks every source of its stage for a [`Finding`] at each poll and hands the
//! findings to `rollout::evidence::combine`. A source is anything that can judge the
//! candidate: the stage's alarms, per-version metrics, a synthetic probe. Adding one is
//! implementing this trait and listing it in the stage's `analysis.sources`; the bake and
//! the decision function do not change.

// The sources besides the alarms (which are read here): CloudWatch's per-version metrics,
// and the probe's own traffic through the stage or Lambda's Invoke API, or its uploads to the
// bucket that triggers the function.
pub mod metrics;
pub mod probe_call;
pub mod probe_invoke;
pub mod probe_source;
pub mod probe_upload;

use std::time::SystemTime;

use futures_util::future::LocalBoxFuture;
use rollout::alarm_policy::AlarmPolicy;
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

/// The stage's CloudWatch alarms that watch one function, read at every poll and judged by
/// `rollout::alarm_policy` (ALARM fails, as does an alarm that no longer exists;
/// INSUFFICIENT_DATA only where the stage says so; `--judge-relative` forgives what fired
/// before the rollout): the function's own Lambda alarms (`<name>-<function>` for every
/// function after the first) and the stage's API alarms. They watch the whole alias, not the
/// candidate alone, which is why other sources exist.
pub struct AlarmSource<'a, A> {
    cloud: &'a A,
    policy: AlarmPolicy,
}

impl<'a, A: crate::cloud::aws::Alarms> AlarmSource<'a, A> {
    pub fn new(
        cloud: &'a A,
        stage: &rollout::Stage,
        project: &rollout::Project,
        function: &str,
    ) -> Self {
        AlarmSource {
            cloud,
            policy: AlarmPolicy::new(
                stage.alarm_names_for(project, function),
                stage.insufficient_data_is_failure,
                stage.analysis.judge_relative,
            )
            .with_capacity_alarms(stage.capacity_alarm_names_for(project, function)),
        }
    }
}

impl<A: crate::cloud::aws::Alarms> Source for AlarmSource<'_, A> {
    fn name(&self) -> &str {
        "alarms"
    }

    fn assess<'a>(
        &'a mut self,
        subject: &'a Subject,
        _window: Window,
    ) -> LocalBoxFuture<'a, anyhow::Result<Finding>> {
        Box::pin(async move {
            let readings = self.cloud.read(self.policy.names()).await?;
            Ok(self.policy.judge_for(subject, readings))
        })
    }
}
