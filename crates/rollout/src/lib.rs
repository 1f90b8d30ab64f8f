//! Pure rollout decisions and the `environments/` model.
//!
//! Nothing here talks to AWS: the `promote` binary reads the world through its adapters,
//! hands plain data to these functions and acts on what they decide. The only I/O is
//! reading the configuration files in [`load`].
//!
//! The `environments/` model: [`spec`] is the data, [`load`] reads it, [`validate`] holds
//! its rules (the schemas for single fields, functions for the rest); [`config`] re-exports
//! them under the name callers use.

pub mod alarm_policy;
pub mod bake;
pub mod codedeploy;
pub mod config;
pub mod duration;
pub mod error;
pub mod evidence;
pub mod guardian;
pub mod judge;
pub mod load;
pub mod machine;
pub mod metrics_verdict;
pub mod note;
pub mod plan;
pub mod probe_verdict;
pub mod spec;
pub mod stamp;
pub mod validate;
pub mod version;
pub mod weight;

pub use duration::{format_duration, parse_duration};
pub use error::ConfigError;
pub use evidence::{Finding, Subject, Verdict as EvidenceVerdict};
pub use plan::{AliasView, PlanError, Split};
pub use spec::{
    Alarm, AlarmKind, Analysis, Environments, FunctionSpec, OnNoEvidence, OnUnreadable, Probe,
    ProbeRequest, Project, SourceKind, Stage, Step, Strategy, Trigger, UploadProbe, bucket_name,
    bucket_stage_variable,
};
pub use stamp::BuildStamp;
pub use version::{Version, VersionError};
pub use weight::{Weight, WeightError};
