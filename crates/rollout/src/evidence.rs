//! Evidence: what a bake asks before it lets a step pass.
//!
//! A bake polls a list of evidence sources (the stage's alarms, per-version metrics, a
//! synthetic probe, ...). Each answers with a [`Finding`] about one [`Subject`]: pass, fail
//! with a reason, or not enough evidence yet (with what is missing). The findings are
//! combined here, purely, into the one verdict the decision function reads; the sources
//! themselves live in `promote` because they do I/O.
//!
//! A subject names its function as well as its alias, so that several functions released
//! together each get their own findings; nothing here assumes there is only one.

use std::fmt;

use serde_json::Value;

use crate::version::Version;
use crate::weight::Weight;

/// What is being judged: one alias of one function, and the two versions it splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub function: String,
    pub stage: String,
    pub alias: String,
    /// The version serving the rest of the traffic.
    pub stable: Version,
    /// The version being judged; `None` when the alias serves one version only (the bake
    /// after an all-at-once deploy, where only whole-alias evidence applies).
    pub candidate: Option<Version>,
    /// The candidate's share; `Weight::FULL` after a completed step.
    pub weight: Weight,
}

/// One source's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass,
    /// The candidate is bad: roll back now. The reason names the source and its numbers.
    Fail(String),
    /// Not enough evidence to pass yet: what is missing.
    Inconclusive(String),
}

impl Verdict {
    pub fn is_fail(&self) -> bool {
        matches!(self, Verdict::Fail(_))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pass => f.write_str("pass"),
            Verdict::Fail(r) => write!(f, "fail: {r}"),
            Verdict::Inconclusive(r) => write!(f, "not enough evidence: {r}"),
        }
    }
}

/// A source's verdict with the numbers behind it, for the terminal and the JSON events.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// `alarms`, `metrics`, `probe`, ...
    pub source: String,
    pub verdict: Verdict,
    /// One line for a person: "2 OK", "candidate 3/40 errors (7.5%) vs stable 1/400 ...".
    pub summary: String,
    /// The same numbers as data.
    pub numbers: Value,
    /// The source showed the candidate no worse within its margins (the judge's early pass).
    pub shown_no_worse: bool,
}

impl Finding {
    pub fn new(source: &str, verdict: Verdict, summary: impl Into<String>) -> Finding {
        Finding {
            source: source.into(),
            verdict,
            summary: summary.into(),
            numbers: Value::Null,
            shown_no_worse: false,
        }
    }

    /// The alias serves one version: a source that compares two has nothing to judge.
    pub fn no_candidate(source: &str) -> Finding {
        let why = "no candidate on the alias to judge";
        Finding::new(source, Verdict::Inconclusive(why.into()), why)
    }

    /// A source that could not be read where no bake is waiting on it (`promote status`):
    /// not enough evidence, never a pass. (A bake counts failed reads itself.)
    pub fn unreadable(source: &str, error: &str) -> Finding {
        let why = format!("could not be read: {error}");
        Finding::new(source, Verdict::Inconclusive(why.clone()), why)
    }

    pub fn with_numbers(mut self, numbers: Value) -> Finding {
        self.numbers = numbers;
        self
    }

    pub fn with_shown_no_worse(mut self, shown: bool) -> Finding {
        self.shown_no_worse = shown;
        self
    }
}

/// Whether a stage with `analysis.early_pass` may end the step's bake now: every source
/// passes and at least one has shown the candidate no worse (a sequential test may stop on
/// either side at any look; an alarm that is quiet shows nothing either way).
pub fn ends_early(findings: &[Finding]) -> bool {
    combine(findings) == Verdict::Pass && findings.iter().any(|f| f.shown_no_worse)
}

/// The verdict of a poll over every source: any fail fails (the first, in source order);
/// otherwise anything inconclusive is inconclusive; otherwise pass. No source at all is a
/// pass: a stage that configures no evidence bakes on time alone, as it always has.
pub fn combine(findings: &[Finding]) -> Verdict {
    if let Some(f) = findings.iter().find(|f| f.verdict.is_fail()) {
        return f.verdict.clone();
    }
    let missing: Vec<String> = findings
        .iter()
        .filter_map(|f| match &f.verdict {
            Verdict::Inconclusive(why) => Some(format!("{}: {why}", f.source)),
            _ => None,
        })
        .collect();
    if missing.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Inconclusive(missing.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(source: &str, verdict: Verdict) -> Finding {
        Finding::new(source, verdict, "")
    }

    #[test]
    fn a_step_ends_early_only_when_all_pass_and_one_shows_no_worse() {
        let quiet = f("alarms", Verdict::Pass);
        let shown = f("metrics", Verdict::Pass).with_shown_no_worse(true);
        let thin = f("probe", Verdict::Inconclusive("12 of 50 requests".into()));
        assert!(ends_early(&[quiet.clone(), shown.clone()]));
        assert!(!ends_early(&[quiet.clone(), f("metrics", Verdict::Pass)]));
        assert!(!ends_early(&[quiet, shown, thin]));
    }

    #[test]
    fn a_fail_wins_then_inconclusive_then_pass() {
        let pass = f("alarms", Verdict::Pass);
        let thin = f("metrics", Verdict::Inconclusive("12 of 50 requests".into()));
        let bad = f("probe", Verdict::Fail("20% errors".into()));
        assert_eq!(combine(&[]), Verdict::Pass);
        assert_eq!(combine(std::slice::from_ref(&pass)), Verdict::Pass);
        assert_eq!(
            combine(&[pass.clone(), thin.clone()]),
            Verdict::Inconclusive("metrics: 12 of 50 requests".into())
        );
        assert_eq!(
            combine(&[thin, pass, bad]),
            Verdict::Fail("20% errors".into())
        );
    }

    #[test]
    fn the_first_failing_source_in_order_is_reported() {
        let a = f("alarms", Verdict::Fail("alarm x is ALARM".into()));
        let b = f("metrics", Verdict::Fail("p = 0.001".into()));
        assert_eq!(
            combine(&[a.clone(), b.clone()]),
            Verdict::Fail("alarm x is ALARM".into())
        );
        assert_eq!(combine(&[b, a]), Verdict::Fail("p = 0.001".into()));
    }
}
