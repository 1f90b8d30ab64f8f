//! How a stage moves traffic: its steps, or all at once. Both the stage and its analysis
//! defaults depend on it, so it stands on its own.

use std::time::Duration;

use crate::weight::Weight;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Candidate's share after this step; 100% means the promotion completes.
    pub weight: Weight,
    pub bake: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    AllAtOnce {
        bake: Duration,
    },
    /// Strictly increasing weights, the last one 100%.
    Canary {
        steps: Vec<Step>,
    },
}
