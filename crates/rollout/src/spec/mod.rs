//! The `environments/` model as plain data: what a stage file says once it is loaded and
//! checked (`load` reads the files, `validate` holds the rules). Nothing here reads a file
//! or refuses a value.

mod alarm;
mod analysis;
mod engine;
mod stage;
mod strategy;

use std::path::PathBuf;

use crate::error::ConfigError;

pub use alarm::{Alarm, AlarmKind};
pub use analysis::{
    ANALYSIS_PERIODS, Analysis, DEFAULT_MAX_EXTENSION_SECONDS, DEFAULT_MAX_READ_FAILURES,
    DEFAULT_PERIOD_SECONDS, DEFAULT_PROBE_RATE, MAX_PROBE_RATE, OnNoEvidence, OnUnreadable,
    SourceKind,
};
pub use engine::{Engine, Hooks};
pub use stage::{Stage, slowest_alarm};
pub use strategy::{Step, Strategy};

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// The functions released together, in `project.json`'s order; never empty, names unique.
    pub functions: Vec<FunctionSpec>,
    pub rest_api_name: String,
    pub stage_variable: String,
    pub region: String,
}

impl Project {
    /// The first function listed: the one single-function readers (and the names Terraform
    /// derives for the project) use.
    pub fn main_function(&self) -> &FunctionSpec {
        &self.functions[0]
    }

    /// The functions' names, in order.
    pub fn function_names(&self) -> Vec<String> {
        self.functions.iter().map(|f| f.name.clone()).collect()
    }

    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.name == name)
    }
}

/// One Lambda function of the project: every stage's alias of it bears the stage's name.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    /// The Lambda function name.
    pub name: String,
    /// The cargo package whose binary is the bootstrap.
    pub package: String,
    /// API Gateway resource paths it serves, any method.
    pub routes: Vec<String>,
    pub probe: ProbeRequest,
}

/// The request the probe sends a function, and the status a healthy version answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRequest {
    pub method: String,
    pub path: String,
    pub body: Option<String>,
    pub content_type: Option<String>,
    pub expect_status: u16,
}

/// The whole directory, validated, with stages in path order (first stage first).
#[derive(Debug, Clone)]
pub struct Environments {
    pub dir: PathBuf,
    pub project: Project,
    pub stages: Vec<Stage>,
}

impl Environments {
    pub fn stage(&self, name: &str) -> Result<&Stage, ConfigError> {
        self.stages
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| ConfigError::UnknownStage {
                name: name.to_string(),
                dir: self.dir.clone(),
                known: self.stage_names(),
            })
    }

    pub fn stage_names(&self) -> Vec<String> {
        self.stages.iter().map(|s| s.name.clone()).collect()
    }

    pub fn upstream_of(&self, stage: &Stage) -> Option<&Stage> {
        let up = stage.upstream.as_deref()?;
        self.stages.iter().find(|s| s.name == up)
    }
}
