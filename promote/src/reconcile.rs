//! The reconciler: one loop for every mutating command on both engines. It observes the
//! stage (alias, note, versions, upstream, the CodeDeploy deployment in flight), asks
//! `rollout::machine::decide` for the next action and applies it (`commands::execute`), with
//! the bake and the follow of a deployment in `run`, the path-to-live guard's announcement in
//! `upstream`, and the CodeDeploy request in `cd_engine`. A release of several functions is applied by
//! `release`, one `Run` per function, from `rollout::machine::release`'s decisions.

pub mod cd_engine;
pub mod commands;
pub mod release;
pub mod release_cd;
pub mod run;
pub mod upstream;
