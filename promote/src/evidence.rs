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
