//! The metrics source's verdict: Lambda's per-version metrics over a step, judged purely.
//!
//! `promote`'s metrics source only reads (one GetMetricData call per poll) and splits the
//! answer into periods; which periods may be judged, and what they say about the
//! candidate, is decided here.
//!
//! **The window.** Lambda's metrics come per minute in AWS and arrive late, so only complete
//! periods are judged: those that began at or after the step started (a period half before
//! the split would mix the previous step's traffic in) and ended at least one period before
//! now (the lag: a period's datapoint may still be filling in). Periods are aligned on
//! multiples of `period_seconds` since the epoch, as CloudWatch aligns them. With 60 s
//! periods the first verdict comes 2 to 3 minutes after the step's write; with 5 s periods
//! (the local gateway) 10 to 15 s. The window then grows with every period, so each poll
//! judges all the complete traffic of the step so far.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::evidence::{Finding, Verdict};
use crate::judge::{Criteria, Period, judge_periods};

/// The complete periods to judge: `Ok((start, end))`, or `Err(when)` the first one can be
/// judged when there is none yet.
pub fn window(
    step_started: SystemTime,
    now: SystemTime,
    period_seconds: u32,
) -> Result<(SystemTime, SystemTime), SystemTime> {
    let p = u128::from(period_seconds.max(1)) * 1000;
    let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let at = |m: u128| UNIX_EPOCH + Duration::from_millis(m as u64);
    let start = ms(step_started).div_ceil(p) * p;
    let end = (ms(now).saturating_sub(p) / p) * p;
    if end > start {
        Ok((at(start), at(end)))
    } else {
        // The first period ends at start + p, and is judged one period (the lag) later.
        Err(at(start + 2 * p))
    }
}

/// `HH:MM:SS` (UTC) for messages.
pub fn clock(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// No complete period yet (`first` from [`window`]): not enough evidence, saying when.
pub fn not_yet(period_seconds: u32, first: SystemTime) -> Finding {
    let why = format!(
        "no complete {period_seconds} s period since the step started; the first is judged from {} UTC",
        clock(first)
    );
    Finding::new("metrics", Verdict::Inconclusive(why.clone()), why)
}

/// What was read, besides the periods: which versions, over which window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Read<'a> {
    pub candidate: &'a str,
    pub stable: &'a str,
    pub start: SystemTime,
    pub end: SystemTime,
    pub period_seconds: u32,
    /// The alias had no routing: its metrics as a whole are the candidate's.
    pub alias_as_a_whole: bool,
}

/// The window's periods judged: the judge's verdict (a fail names the metrics judge), its
/// numbers with both versions and the window, and whether it showed the candidate no worse.
pub fn finding(periods: &[Period], criteria: &Criteria, read: Read<'_>) -> Finding {
    let j = judge_periods(periods, criteria);
    let mut numbers = j.numbers();
    numbers["candidate"]["version"] = read.candidate.into();
    numbers["stable"]["version"] = read.stable.into();
    numbers["window"] = json!({
        "start": unix(read.start), "end": unix(read.end), "period_seconds": read.period_seconds,
        "alias_as_a_whole": read.alias_as_a_whole,
    });
    let summary = format!(
        "{} ({}-{} UTC)",
        j.summary(),
        clock(read.start),
        clock(read.end)
    );
    Finding::new("metrics", j.verdict(), summary)
        .with_numbers(numbers)
        .with_shown_no_worse(j.shown_no_worse().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::Sample;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn only_whole_periods_after_the_step_and_before_the_lag_are_judged() {
        // Step at 12:00:10 with 60 s periods: the first period is 12:01-12:02, judged from 12:03.
        let started = t(43_210);
        assert_eq!(window(started, t(43_260), 60), Err(t(43_380)));
        assert_eq!(window(started, t(43_379), 60), Err(t(43_380)));
        assert_eq!(window(started, t(43_380), 60), Ok((t(43_260), t(43_320))));
        assert_eq!(window(started, t(43_500), 60), Ok((t(43_260), t(43_440))));
        // A step that starts on a boundary counts that period.
        assert_eq!(window(t(43_200), t(43_320), 60), Ok((t(43_200), t(43_260))));
        // 5 s periods on the local gateway: a verdict within 15 s of the write.
        assert_eq!(window(t(1_001), t(1_015), 5), Ok((t(1_005), t(1_010))));
        // The pre-flight (no time elapsed) never has a window, so it never reads metrics.
        assert!(window(t(1_001), t(1_001), 5).is_err());
        let f = not_yet(60, t(43_380));
        assert!(
            matches!(&f.verdict, Verdict::Inconclusive(r) if r.ends_with("judged from 12:03:00 UTC")),
            "{:?}",
            f.verdict
        );
    }

    #[test]
    fn a_finding_names_the_versions_the_window_and_the_judge() {
        let bad = Period {
            candidate: Sample::new(30, 6),
            stable: Sample::new(270, 0),
        };
        let read = Read {
            candidate: "4",
            stable: "3",
            start: t(43_260),
            end: t(43_380),
            period_seconds: 60,
            alias_as_a_whole: false,
        };
        let f = finding(&[bad, bad], &Criteria::default(), read);
        assert!(
            matches!(&f.verdict, Verdict::Fail(r) if r.starts_with("metrics judge: errors")),
            "{:?}",
            f.verdict
        );
        assert!(
            f.summary.ends_with("(12:01:00-12:03:00 UTC)"),
            "{}",
            f.summary
        );
        assert_eq!(f.numbers["candidate"]["version"], "4");
        assert_eq!(f.numbers["candidate"]["requests"], 60);
        assert_eq!(f.numbers["window"]["period_seconds"], 60);
        assert!(!f.shown_no_worse);
    }
}
