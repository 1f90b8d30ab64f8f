//! The guardian: a Lambda function that keeps a canary protected when no `promote` runs.
//!
//! AWS invokes it on a stage's alarm changing state (an EventBridge rule) and every minute
//! (EventBridge Scheduler). It reads the stage's aliases, decides with
//! `rollout::guardian::decide`, and takes a failing split back with the guarded alias write
//! `promote` uses, marking the note as the guardian's rollback. docs/guardian.md compares
//! it with the two engines.

// The traits are ours, called on concrete types on one runtime.
#![allow(async_fn_in_trait)]

pub mod event;
pub mod guard;
pub mod report;

#[cfg(test)]
mod guard_tests;

use std::path::PathBuf;

/// Where the environments are read: `GUARDIAN_ENVIRONMENTS` when set (the local gateway
/// points it at the checkout's), else the `environments/` bundled into the function's zip
/// beside the bootstrap (`LAMBDA_TASK_ROOT`).
pub fn environments_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GUARDIAN_ENVIRONMENTS") {
        return PathBuf::from(dir);
    }
    let root =
        std::env::var_os("LAMBDA_TASK_ROOT").map_or_else(|| PathBuf::from("."), PathBuf::from);
    root.join("environments")
}
