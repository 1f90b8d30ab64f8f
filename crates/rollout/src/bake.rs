//! The bake as a pure state machine, driven by time and findings.
//!
//! A bake watches the evidence of one step for a while before the step may pass. Every
//! decision of that watch is taken here, over plain data: when to poll, what a verdict
//! means before and after the deadline, how long missing evidence may extend the bake,
//! what the stage's `analysis.on_no_evidence` and `analysis.on_unreadable` policies make of
//! a bake that cannot conclude, and the last look after an interrupt. The executor (in
//! `promote`) only reads the sources and the clock, feeds each [`Input`] to [`Bake::on`]
//! with the time it was taken (time since the bake started), and applies the [`Next`] it
//! gets back. Tests drive it in virtual time with instants they choose.
//!
//! The pre-flight check (one read before the first write) is a bake of no length:
//! [`Bake::preflight`].

use std::time::Duration;

use crate::config::{Analysis, OnNoEvidence, OnUnreadable};
use crate::duration::format_duration;
use crate::evidence::Verdict;

/// How long a bake whose reads keep failing at its end may be extended before the
/// `on_unreadable` policy applies: a bake never passes without a successful read.
pub const MAX_READ_EXTENSION: Duration = Duration::from_secs(120);
/// After the deadline a failed read is retried sooner than a poll interval.
const RETRY_AT_END: Duration = Duration::from_secs(1);

/// The rules one bake follows.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// How long the step is watched before it may pass.
    pub bake: Duration,
    /// The time between two polls.
    pub poll: Duration,
    /// How long missing evidence may extend the bake.
    pub max_extension: Duration,
    pub on_no_evidence: OnNoEvidence,
    pub on_unreadable: OnUnreadable,
    /// Failed reads in a row that make the evidence unreadable (at least 1).
    pub max_read_failures: u32,
    /// The stage's `analysis.early_pass`: a read that shows the candidate no worse may end
    /// the bake before its time.
    pub early_pass: bool,
    /// The stage's name, for the reasons given.
    pub stage: String,
}

impl Policy {
    pub fn new(stage: &str, analysis: &Analysis, bake: Duration, poll: Duration) -> Policy {
        Policy {
            bake,
            poll,
            max_extension: analysis.max_extension,
            on_no_evidence: analysis.on_no_evidence,
            on_unreadable: analysis.on_unreadable,
            max_read_failures: analysis.max_read_failures.max(1),
            early_pass: analysis.early_pass,
            stage: stage.into(),
        }
    }
}

/// What the executor saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Every source answered; their combined verdict.
    Read(Verdict),
    /// Every source answered and passed, and the judge showed the candidate no worse within
    /// its margins (`rollout::evidence::ends_early`): a pass that may end the bake early.
    ShownNoWorse,
    /// A source (or the alias) could not be read: the error, for the reason given.
    ReadFailed(String),
    /// The operator (or CI) asked the run to stop.
    Interrupt,
}

/// What the executor does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Keep watching; poll again at [`Bake::next_poll`].
    Continue,
    /// The bake ran out without enough evidence (what is missing): it goes on for up to
    /// `max_extension` more. Said once; the bake then continues.
    Extend(String),
    /// The step passed.
    Pass,
    /// The candidate must be taken back (exit 4): why.
    Fail(String),
    /// The split is left as it is with its own exit code (6): why.
    Hold(String),
    /// An interrupt arrived: read the evidence once more before leaving the split.
    LastLook,
    /// Leave things as they are (exit 130).
    Interrupted,
    /// The pre-flight read failed: nothing was judged, nothing may be written (exit 1).
    Unread(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Preflight,
    Watching,
    /// Past the deadline without enough evidence.
    Extending,
    LastLook,
    Ended,
}

/// One bake in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Bake {
    policy: Policy,
    phase: Phase,
    next_poll: Duration,
    failed_reads: u32,
    last_error: String,
}

impl Bake {
    /// A bake starting now (time zero); the first poll is due at once.
    pub fn new(policy: Policy) -> Bake {
        Bake {
            policy,
            phase: Phase::Watching,
            next_poll: Duration::ZERO,
            failed_reads: 0,
            last_error: String::new(),
        }
    }

    /// The one read before the first write: a failing verdict fails, anything else
    /// passes, a failed read is [`Next::Unread`].
    pub fn preflight(policy: Policy) -> Bake {
        Bake {
            phase: Phase::Preflight,
            ..Bake::new(policy)
        }
    }

    /// A bake whose end is not known in advance: it lasts until [`Bake::end_at`] (a
    /// CodeDeploy deployment, which runs its own intervals, watched until it succeeds).
    pub fn until_ended(policy: Policy) -> Bake {
        Bake::new(Policy {
            bake: Duration::MAX,
            ..policy
        })
    }

    /// The watched period ends at `at`: from then on the bake is past its deadline
    /// (a pass passes, missing evidence extends it), and a read is due at once.
    pub fn end_at(&mut self, at: Duration) {
        if self.policy.bake > at {
            self.policy.bake = at;
            self.next_poll = at;
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// When the next poll is due (time since the bake started).
    pub fn next_poll(&self) -> Duration {
        self.next_poll
    }

    /// Whether a poll is due at `at`.
    pub fn due(&self, at: Duration) -> bool {
        at >= self.next_poll
    }

    /// What is left of the bake at `at`.
    pub fn left(&self, at: Duration) -> Duration {
        self.policy.bake.saturating_sub(at)
    }

    /// Past the deadline, watching for evidence that has not come.
    pub fn extending(&self) -> bool {
        self.phase == Phase::Extending
    }

    /// Failed reads in a row so far.
    pub fn failed_reads(&self) -> u32 {
        self.failed_reads
    }

    /// The bake's answer to what was seen at `at` (time since it started).
    pub fn on(&mut self, at: Duration, input: Input) -> Next {
        let next = match (self.phase, input) {
            (Phase::Ended, _) => Next::Interrupted,
            (Phase::LastLook, Input::Read(Verdict::Fail(reason))) => Next::Fail(reason),
            (Phase::LastLook, _) => Next::Interrupted,
            (Phase::Preflight, Input::Read(Verdict::Fail(reason))) => Next::Fail(reason),
            (Phase::Preflight, Input::Read(_) | Input::ShownNoWorse) => Next::Pass,
            (Phase::Preflight, Input::ReadFailed(e)) => Next::Unread(e),
            (Phase::Preflight, Input::Interrupt) => Next::Interrupted,
            (_, Input::Interrupt) => {
                self.phase = Phase::LastLook;
                return Next::LastLook;
            }
            (_, Input::ShownNoWorse) if self.policy.early_pass => {
                self.failed_reads = 0;
                Next::Pass
            }
            (_, Input::ShownNoWorse) => self.read(at, Verdict::Pass),
            (_, Input::Read(verdict)) => self.read(at, verdict),
            (_, Input::ReadFailed(e)) => self.read_failed(at, e),
        };
        if !matches!(next, Next::Continue | Next::Extend(_)) {
            self.phase = Phase::Ended;
        }
        next
    }

    fn schedule(&mut self, at: Duration) {
        let deadline = self.policy.bake;
        self.next_poll = if at < deadline {
            // The deadline is always polled, whatever the interval.
            (at + self.policy.poll).min(deadline)
        } else {
            at + self.policy.poll
        };
    }

    fn read(&mut self, at: Duration, verdict: Verdict) -> Next {
        self.failed_reads = 0;
        self.schedule(at);
        let deadline = self.policy.bake;
        match verdict {
            // A fail at any poll ends the bake at once.
            Verdict::Fail(reason) => Next::Fail(reason),
            _ if at < deadline => Next::Continue,
            // Only a successful read at or after the deadline passes.
            Verdict::Pass => Next::Pass,
            Verdict::Inconclusive(why) => {
                if at.saturating_sub(deadline) >= self.policy.max_extension {
                    return self.no_evidence(&why);
                }
                if self.phase == Phase::Extending {
                    Next::Continue
                } else {
                    self.phase = Phase::Extending;
                    Next::Extend(why)
                }
            }
        }
    }

    fn read_failed(&mut self, at: Duration, error: String) -> Next {
        self.failed_reads += 1;
        self.last_error = error;
        let deadline = self.policy.bake;
        let overdue = at.saturating_sub(deadline);
        let in_a_row = self.failed_reads >= self.policy.max_read_failures;
        // Before the deadline, too many failures in a row end it; after, failed reads
        // extend the bake (it never passes on a failed read), but only so far.
        if in_a_row && (at < deadline || overdue >= MAX_READ_EXTENSION)
            || overdue >= MAX_READ_EXTENSION.max(self.policy.max_extension)
        {
            return self.unreadable();
        }
        self.schedule(at);
        if at >= deadline {
            self.next_poll = at + self.policy.poll.min(RETRY_AT_END);
        }
        Next::Continue
    }

    fn no_evidence(&self, why: &str) -> Next {
        let p = &self.policy;
        let reason = format!(
            "not enough evidence after the {} bake and a {} extension ({why})",
            format_duration(p.bake),
            format_duration(p.max_extension)
        );
        match p.on_no_evidence {
            OnNoEvidence::Hold => Next::Hold(reason),
            OnNoEvidence::Rollback => Next::Fail(format!(
                "{reason}; {}'s analysis.on_no_evidence is \"rollback\"",
                p.stage
            )),
        }
    }

    fn unreadable(&self) -> Next {
        let p = &self.policy;
        let reason = format!(
            "the evidence of stage {} could not be read ({} polls in a row failed, the last with: {})",
            p.stage, self.failed_reads, self.last_error
        );
        match p.on_unreadable {
            OnUnreadable::Rollback => Next::Fail(format!(
                "{reason}; {}'s analysis.on_unreadable is \"rollback\"",
                p.stage
            )),
            OnUnreadable::Hold => Next::Hold(format!(
                "{reason}; {}'s analysis.on_unreadable is \"hold\"",
                p.stage
            )),
        }
    }
}

#[cfg(test)]
#[path = "bake_tests.rs"]
mod tests;
