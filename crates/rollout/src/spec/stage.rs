use std::path::PathBuf;
use std::time::Duration;

use super::Project;
use super::alarm::{Alarm, AlarmKind};
use super::analysis::Analysis;
use super::engine::{Engine, Hooks};
use super::strategy::Strategy;

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    pub upstream: Option<String>,
    pub strategy: Strategy,
    pub poll_interval: Duration,
    pub insufficient_data_is_failure: bool,
    pub approval_required: bool,
    pub alarms: Vec<Alarm>,
    /// How a bake judges the candidate (the `analysis` block, or its defaults).
    pub analysis: Analysis,
    /// Who shifts the alias: `promote` itself, or CodeDeploy (`strategy.engine`).
    pub engine: Engine,
    /// CodeDeploy lifecycle hooks (`strategy.hooks`; only with the CodeDeploy engine).
    pub hooks: Hooks,
    /// Where it was read from, for messages.
    pub path: PathBuf,
}

impl Stage {
    pub fn alarm_names(&self) -> Vec<String> {
        self.alarms.iter().map(|a| a.name.clone()).collect()
    }

    /// The alarms that watch the stage's capacity (its throttle rate) rather than a version.
    pub fn capacity_alarm_names(&self) -> Vec<String> {
        self.alarms
            .iter()
            .filter(|a| a.kind == AlarmKind::LambdaThrottleRate)
            .map(|a| a.name.clone())
            .collect()
    }

    /// The alarms that judge `function` of `project` on this stage, by the names the stack
    /// gives them ([`Alarm::name_for`]): its own Lambda alarms, and the stage's API alarms,
    /// which watch every function at once.
    pub fn alarm_names_for(&self, project: &Project, function: &str) -> Vec<String> {
        let first = &project.main_function().name;
        self.alarms
            .iter()
            .map(|a| a.name_for(function, first))
            .collect()
    }

    /// [`Stage::capacity_alarm_names`] as they watch `function`.
    pub fn capacity_alarm_names_for(&self, project: &Project, function: &str) -> Vec<String> {
        let first = &project.main_function().name;
        self.alarms
            .iter()
            .filter(|a| a.kind == AlarmKind::LambdaThrottleRate)
            .map(|a| a.name_for(function, first))
            .collect()
    }

    /// The alarm that needs the most data before it can fire, and how much
    /// (`period_seconds` x `evaluation_periods`): a bake shorter than that ends unjudged.
    pub fn slowest_alarm(&self) -> Option<(&Alarm, Duration)> {
        slowest_alarm(&self.alarms)
    }
}

pub fn slowest_alarm(alarms: &[Alarm]) -> Option<(&Alarm, Duration)> {
    alarms
        .iter()
        .map(|a| {
            let window = u64::from(a.period_seconds) * u64::from(a.evaluation_periods);
            (a, Duration::from_secs(window))
        })
        .max_by_key(|(_, w)| *w)
}
