//! Exit codes (CONTRACTS.md, "Exit codes"). Errors that carry one are typed; anything else is 1.

use thiserror::Error;

pub const ERROR: i32 = 1;
pub const BAD_INPUT: i32 = 2;
pub const REFUSED: i32 = 3;
pub const ROLLED_BACK: i32 = 4;
pub const CONFLICT: i32 = 5;
pub const HELD: i32 = 6;
pub const INTERRUPTED: i32 = 130;

#[derive(Debug, Error)]
pub enum Exit {
    /// Usage, an invalid weight/version/stage, a malformed environments file.
    #[error("{0}")]
    BadInput(String),
    /// A safety guard said no: an alarm already in ALARM, a downgrade.
    #[error("{0}")]
    Refused(String),
    /// An alarm fired during a bake and traffic was taken back.
    #[error("rolled back: {0}")]
    RolledBack(String),
    /// The alias changed under us (RevisionId mismatch); nothing further was written.
    #[error("{0}")]
    Conflict(String),
    /// A bake ended without enough evidence (after its extension) on a stage whose
    /// `analysis.on_no_evidence` is "hold": the split is left in place, as is.
    #[error("held: {0}")]
    Held(String),
    /// Ctrl-C or SIGTERM; the message says how to resume or roll back.
    #[error("interrupted: {0}")]
    Interrupted(String),
}

impl Exit {
    pub fn code(&self) -> i32 {
        match self {
            Exit::BadInput(_) => BAD_INPUT,
            Exit::Refused(_) => REFUSED,
            Exit::RolledBack(_) => ROLLED_BACK,
            Exit::Conflict(_) => CONFLICT,
            Exit::Held(_) => HELD,
            Exit::Interrupted(_) => INTERRUPTED,
        }
    }
}

/// The exit code for any error that reached `main`.
pub fn code_of(err: &anyhow::Error) -> i32 {
    if let Some(e) = err.downcast_ref::<Exit>() {
        return e.code();
    }
    if err.downcast_ref::<rollout::ConfigError>().is_some() {
        return BAD_INPUT;
    }
    ERROR
}

impl From<rollout::PlanError> for Exit {
    fn from(e: rollout::PlanError) -> Exit {
        match e.refusal() {
            rollout::plan::Refusal::BadInput => Exit::BadInput(e.to_string()),
            rollout::plan::Refusal::Guard => Exit::Refused(e.to_string()),
            rollout::plan::Refusal::Conflict => Exit::Conflict(e.to_string()),
        }
    }
}

impl From<rollout::plan::RoutingError> for Exit {
    fn from(e: rollout::plan::RoutingError) -> Exit {
        Exit::BadInput(e.to_string())
    }
}
