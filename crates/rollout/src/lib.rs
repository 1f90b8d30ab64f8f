//! Pure rollout decisions and the `environments/` model.
//!
//! Nothing here talks to AWS: the `promote` binary reads the world through its adapters,
//! hands plain data to these functions and acts on what they decide. The only I/O is
//! reading the configuration files in [`config`].

pub mod alarm_policy;
pub mod bake;
pub mod codedeploy;
pub mod config;
pub mod duration;
pub mod evidence;
pub mod judge;
pub mod machine;
pub mod note;
pub mod plan;
pub mod stamp;
pub mod version;
pub mod weight;

pub use config::{
    Alarm, AlarmKind, Analysis, ConfigError, Environments, OnNoEvidence, OnUnreadable, Project,
    SourceKind, Stage, Step, Strategy,
};
pub use duration::{format_duration, parse_duration};
pub use evidence::{Finding, Subject, Verdict as EvidenceVerdict};
pub use plan::{AliasView, PlanError, Split};
pub use stamp::BuildStamp;
pub use version::{Version, VersionError};
pub use weight::{Weight, WeightError};
