//! Exit codes: the one table ([`TABLE`]) that `--help` prints per subcommand and that
//! CONTRACTS.md ("Exit codes") copies, tested against it. Errors that carry a code are
//! typed ([`Exit`]); anything else is 1.

use thiserror::Error;

pub const SUCCESS: i32 = 0;
pub const ERROR: i32 = 1;
pub const BAD_INPUT: i32 = 2;
pub const REFUSED: i32 = 3;
pub const ROLLED_BACK: i32 = 4;
pub const CONFLICT: i32 = 5;
pub const HELD: i32 = 6;
pub const INTERRUPTED: i32 = 130;

/// Every subcommand, as typed on the command line.
pub const ALL: &[&str] = &[
    "status", "publish", "deploy", "canary", "advance", "complete", "rollback", "watch", "probe",
    "check",
];
/// The commands that move traffic and bake.
const ROLLOUTS: &[&str] = &["deploy", "canary", "advance", "complete"];
/// The commands that write an alias.
const WRITERS: &[&str] = &["deploy", "canary", "advance", "complete", "rollback"];

/// One exit code: what it means, what was written in AWS when a run ends with it, and the
/// subcommands that can end with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub code: i32,
    /// A word or two, for the short list in `promote --help`.
    pub name: &'static str,
    pub meaning: &'static str,
    pub written: &'static str,
    pub returned_by: &'static [&'static str],
}

pub const TABLE: &[Code] = &[
    Code {
        code: SUCCESS,
        name: "success",
        meaning: "success, including a no-op (the stage already serves the version)",
        written: "what the command says",
        returned_by: ALL,
    },
    Code {
        code: ERROR,
        name: "error",
        meaning: "error: AWS, I/O, anything unexpected (a pre-flight read that fails, with nothing written)",
        written: "the alias stays as the last successful write left it",
        returned_by: ALL,
    },
    Code {
        code: BAD_INPUT,
        name: "bad input",
        meaning: "bad input: usage, an invalid weight, version, stage or duration, a malformed environments file (the message names the file and the field), a request the stage's state does not allow (a move backwards that is not a rollback, `advance` without a canary, `--to-previous` with no previous version, `--skip-upstream` with an empty reason or on the first stage)",
        written: "nothing: checked before any write",
        returned_by: ALL,
    },
    Code {
        code: REFUSED,
        name: "refused by a safety guard",
        meaning: "refused by a safety guard: failing evidence (an alarm in ALARM) with nothing to take back, a downgrade without `--allow-downgrade`, a rolled-back version without `--retry`, a version the upstream stage has not served at 100% without `--skip-upstream` (also on `advance`/`complete` for a split nobody let in), another candidate already in flight (on a CodeDeploy stage: a deployment of another version already in progress for the group, which CodeDeploy allows one of)",
        written: "nothing",
        returned_by: WRITERS,
    },
    Code {
        code: ROLLED_BACK,
        name: "rolled back",
        meaning: "rolled back: the evidence failed (or stayed unreadable, under the default `analysis.on_unreadable`) while the candidate took traffic, which was taken back",
        written: "the rollback (routing cleared, or the version before restored after a 100% step); on a CodeDeploy stage `StopDeployment` with automatic rollback (the judge), or CodeDeploy's own rollback (its alarms), followed until the traffic is back",
        returned_by: ROLLOUTS,
    },
    Code {
        code: CONFLICT,
        name: "alias changed by someone else",
        meaning: "the alias was changed by someone else between this run's read and its write",
        written: "nothing more after the change was seen",
        returned_by: WRITERS,
    },
    Code {
        code: HELD,
        name: "held: not enough evidence",
        meaning: "held: a bake ended without enough evidence after its extension, on a stage whose `analysis.on_no_evidence` is `hold`, or its evidence stayed unreadable on a stage whose `analysis.on_unreadable` is `hold` (docs/canary-analysis.md); the message says what was missing and how to resume, advance or roll back",
        written: "the split stays where the last step put it",
        returned_by: ROLLOUTS,
    },
    Code {
        code: INTERRUPTED,
        name: "interrupted",
        meaning: "interrupted (Ctrl-C, SIGTERM; a second one exits at once outside a rollback write): a rollout leaves the split in place and prints how to resume or roll back",
        written: "the steps before the signal; a signal during a rollback waits for it, and the run exits 4",
        returned_by: ALL,
    },
];

/// The codes `command` can end with, in order.
pub fn codes_of(command: &str) -> impl Iterator<Item = &'static Code> + '_ {
    TABLE
        .iter()
        .filter(move |c| c.returned_by.contains(&command))
}

/// Lines of at most `width` characters, words kept whole.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("never empty");
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// Help text wraps at 100 columns (what the help snapshots render at).
const HELP_WIDTH: usize = 100;

/// The "Exit codes:" section closing `promote <command> --help`: only the codes that
/// command can return.
pub fn help_for(command: &str) -> String {
    const INDENT: &str = "       ";
    let mut out = String::from("Exit codes:");
    for c in codes_of(command) {
        for (i, line) in wrap(c.meaning, HELP_WIDTH - INDENT.len())
            .into_iter()
            .enumerate()
        {
            if i == 0 {
                out += &format!("\n  {:<5}{line}", c.code);
            } else {
                out += &format!("\n{INDENT}{line}");
            }
        }
    }
    out
}

/// The short list closing `promote --help`: every code by name.
pub fn summary() -> String {
    let items: Vec<String> = TABLE
        .iter()
        .map(|c| format!("{} {}", c.code, c.name))
        .collect();
    let mut out = String::from("Exit codes (each command's --help lists its own):");
    for line in wrap(&items.join(", "), HELP_WIDTH - 2) {
        out += &format!("\n  {line}");
    }
    out
}

/// The table as CONTRACTS.md ("Exit codes") carries it.
pub fn markdown() -> String {
    let mut out =
        String::from("| code | meaning | what was written | returned by |\n|---|---|---|---|\n");
    for c in TABLE {
        let by = if c.returned_by == ALL {
            "every command".to_string()
        } else {
            let names: Vec<String> = c.returned_by.iter().map(|n| format!("`{n}`")).collect();
            names.join(", ")
        };
        out += &format!("| {} | {} | {} | {by} |\n", c.code, c.meaning, c.written);
    }
    out
}

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

#[cfg(test)]
#[path = "exit_tests.rs"]
mod tests;
