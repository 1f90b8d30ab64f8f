//! The probe's verdict: one window of the canary probe's answers, judged purely.
//!
//! `promote`'s probe source only reads: it counts the answers due since the step's write,
//! per version that named itself, and those that named none (API Gateway's 502 for a crashed
//! function). Everything they mean for the candidate is decided here, by three tests, each
//! of them safe to read at every poll:
//!
//! - **Errors** (the answers that named their version): the judge's own tests
//!   ([`crate::judge::judge`]): the mixture sequential test of the candidate's share of the
//!   errors, the ceiling, `min_requests`.
//! - **Shortfall** (the failures that named no version): with the candidate at weight `w`,
//!   each *successful* answer is the candidate's with probability `w` unless the candidate
//!   fails more often than the stable version. The test weighs the candidate's share of the
//!   successful answers with the same mixture likelihood ratio as the judge's error test,
//!   the other way round (every lower share `θ` uniform on `(0, w)`, against `w`). For an
//!   identical candidate it is a nonnegative supermartingale in the number of successful
//!   answers, so by Ville's inequality it reaches `1/α` with probability at most `α`
//!   however often it is read (the argument of the judge's error test; Robbins 1970,
//!   Johari, Pekelis and Walsh, Operations Research 2022). It replaces a fixed-sample
//!   binomial p-value, which spent some of its significance at every poll. The candidate is
//!   no longer charged, inside the error test, the low end of the estimate of its
//!   unattributed failures: that interval was a fixed-sample one too, and the shortfall
//!   test already weighs those failures; the estimate stays in the words and numbers.
//! - **Latency** (each answer's own latency, which the probe has where CloudWatch gives
//!   only percentiles): a *sequential sign test on concurrent pairs*. Each candidate answer
//!   is paired with the first stable answer due at or after it not paired yet (at a 10%
//!   split, within a few tens of milliseconds). A pair counts against the candidate when
//!   its latency is above the stable answer's by more than the margin, `latency_tolerance`
//!   plus [`LATENCY_SLACK_MS`] (Kayenta's effect-size idea: a difference that does not
//!   matter does not fail). For identical versions the two answers of a pair are
//!   exchangeable given everything before them (same code, same moment), so a pair is
//!   "worse" with probability at most 1/2, whatever the load does over time; the count of
//!   worse pairs is weighed by the mixture ratio against 1/2, and Ville's inequality bounds
//!   the false failures over every look again (the sequential test of a binomial share is
//!   Wald's, *Sequential Analysis*, 1947; the mixture over alternatives is Robbins'). The sign test is the simplest rank test (the
//!   rank of the candidate's answer within its pair).
//!   *Why not Mann-Whitney U with looks spaced by doubling samples and alpha spent
//!   geometrically*: U compares every candidate answer with every stable one, which is more
//!   powerful at one look, but it is not a martingale across looks (each new answer changes
//!   all comparisons), so its repeated use needs a planned schedule of looks and a normal
//!   approximation to each look's null distribution; it also assumes the answers are
//!   independent draws, which a load that drifts during a bake breaks for both versions
//!   alike. The paired sign test is exact at every count and every look, and pairing
//!   answers due together is what makes it immune to the drift. Its price is power: it
//!   uses one stable answer per candidate answer, so it needs more candidate answers than
//!   U would at one look (a 10 ms shift on a 40 ms function at a margin of 5 ms is caught
//!   after a median of about a hundred candidate answers; see the tests).
//!   Only answers that are *settled* are paired: those due before every request due earlier
//!   has answered or timed out. An answer still in flight is a slow one, and pairing what has
//!   arrived would bias the last pairs at each look.
//!
//! **A whole plan.** The three tests share the step's significance equally (a Bonferroni
//! split of [`Criteria::step_significance`]), so an identical candidate is failed by the
//! probe in at most `1 - confidence` of whole plans.

use std::time::Duration;

use serde_json::{Value, json};

use crate::evidence::{Finding, Verdict};
use crate::judge::{
    self, Criteria, Evidence, LATENCY_SLACK_MS, Sample, mixture_ratio_above, mixture_ratio_below,
    pct, rate_of,
};

/// How many tests share the step's significance.
pub const TESTS: u32 = 3;

/// One version's answers in the window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Answers {
    /// Answers that named this version (errors included).
    pub requests: u64,
    pub success: u64,
    /// Each answer's due time (seconds from the probe's start) and latency in milliseconds,
    /// in due order.
    pub timeline: Vec<(f64, f64)>,
}

impl Answers {
    /// The nearest-rank `q` quantile of its latencies: the smallest at or above a share `q`
    /// of them.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let mut l: Vec<f64> = self.timeline.iter().map(|(_, ms)| *ms).collect();
        if l.is_empty() {
            return None;
        }
        let rank = ((l.len() as f64 * q).ceil() as usize).clamp(1, l.len());
        Some(*l.select_nth_unstable_by(rank - 1, f64::total_cmp).1)
    }
}

/// The highest latency quantile (at most `want`) that `n` answers estimate with about ten of
/// them above it: p99 needs a thousand answers; over a hundred, the p90 is what there is. A
/// p99 of a hundred answers is their maximum, one cold start away from a false alarm. Shown
/// beside the latency test, never tested.
pub fn supported_quantile(n: u64, want: f64) -> f64 {
    if n == 0 {
        return want;
    }
    want.min(1.0 - 10.0 / n as f64).max(0.5)
}

/// What the probe saw in one window of a step.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProbeWindow {
    pub candidate: Answers,
    pub stable: Answers,
    /// Answers that named no version, and how many of them failed.
    pub unattributed: u64,
    pub unattributed_failed: u64,
    /// Every request due before this (seconds from the probe's start) has answered or timed
    /// out: the latency test pairs only answers due before it.
    pub settled_s: f64,
}

/// The split being judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split<'a> {
    pub candidate: &'a str,
    pub stable: &'a str,
    /// The candidate's weight, 0 < w <= 1.
    pub weight: f64,
}

impl Split<'_> {
    /// The candidate serving alone: nothing to compare with.
    fn alone(&self) -> bool {
        self.weight >= 1.0 || self.candidate == self.stable
    }
}

/// The estimate of the unattributed failures that were the candidate's, with its interval
/// (the probe's report computes it; shown, not tested).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Attribution {
    pub estimate: u64,
    pub low: u64,
    pub high: u64,
}

/// The criteria with one test's share of the significance.
pub fn shared(criteria: &Criteria) -> Criteria {
    Criteria {
        confidence: 1.0 - criteria.significance() / f64::from(TESTS),
        ..*criteria
    }
}

/// The shortfall test: the candidate's share of the successful answers against its weight.
/// `None` where it does not apply (no successful answer, or no split).
pub fn shortfall(
    candidate_success: u64,
    stable_success: u64,
    w: f64,
    alpha: f64,
) -> Option<Evidence> {
    let n = candidate_success + stable_success;
    (n > 0 && w > 0.0 && w < 1.0).then(|| Evidence {
        ratio: mixture_ratio_below(candidate_success, n, w),
        alpha,
    })
}

/// Concurrent pairs of settled answers and how many of them put the candidate beyond the
/// margin.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pairs {
    pub pairs: u64,
    pub worse: u64,
}

/// Pairs each settled candidate answer with the first settled stable answer due at or after
/// it and not paired yet. Extending the window only adds pairs: earlier ones never change,
/// which the sequential test needs.
pub fn pairs(
    candidate: &[(f64, f64)],
    stable: &[(f64, f64)],
    settled_s: f64,
    tolerance: f64,
) -> Pairs {
    let settled = |l: &[(f64, f64)]| l.partition_point(|(t, _)| *t < settled_s);
    let stable = &stable[..settled(stable)];
    let mut next = 0;
    let mut out = Pairs::default();
    for (t, c_ms) in &candidate[..settled(candidate)] {
        while next < stable.len() && stable[next].0 < *t {
            next += 1;
        }
        let Some((_, s_ms)) = stable.get(next) else {
            break;
        };
        next += 1;
        out.pairs += 1;
        out.worse += u64::from(*c_ms > s_ms * (1.0 + tolerance) + LATENCY_SLACK_MS);
    }
    out
}

/// The latency test over the pairs: the share of worse pairs against 1/2.
pub fn latency_test(p: Pairs, alpha: f64) -> Evidence {
    Evidence {
        ratio: mixture_ratio_above(p.worse, p.pairs, 0.5),
        alpha,
    }
}

/// Which test failed, for the summary and the numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Failed {
    Errors,
    Shortfall,
    Latency,
}

/// One window judged: the finding the probe source reports. `ended` is the probe's horizon
/// when its schedule has run out, which makes anything short of a fail inconclusive.
pub fn judge(
    window: &ProbeWindow,
    split: Split<'_>,
    criteria: &Criteria,
    attribution: Attribution,
    ended: Option<Duration>,
) -> Finding {
    let alone = split.alone();
    let (c, s) = (&window.candidate, &window.stable);
    let empty = Answers::default();
    let s = if alone { &empty } else { s };
    let share = shared(criteria);
    let alpha = share.step_significance();
    let sample = |a: &Answers| Sample::new(a.requests, a.requests - a.success.min(a.requests));
    let mut cs = sample(c);
    if alone {
        // Serving alone, every failure that named no version is the candidate's.
        cs.requests += window.unattributed;
        cs.errors += window.unattributed_failed;
    }
    let j = judge::judge(cs, sample(s), &share);
    let short = (!alone && window.unattributed_failed > 0)
        .then(|| shortfall(c.success, s.success, split.weight, alpha))
        .flatten();
    let paired = (!alone).then(|| {
        pairs(
            &c.timeline,
            &s.timeline,
            window.settled_s,
            criteria.latency_tolerance,
        )
    });
    let latency = paired.map(|p| latency_test(p, alpha));
    let q = supported_quantile(c.requests, 0.99);
    let label = format!("p{}", (q * 100.0).floor());
    let (lc, ls) = (c.quantile_ms(q), s.quantile_ms(q));
    let u = window.unattributed_failed;
    let Attribution {
        estimate,
        low,
        high,
    } = attribution;

    let (verdict, failed) = if j.decision.is_fail() {
        (j.verdict_of("probe judge"), Some(Failed::Errors))
    } else if let Some(e) = short.filter(|e| e.rejects()) {
        let expected = split.weight * (c.success + s.success) as f64;
        let why = format!(
            "probe judge: the candidate gave {} successful answers where {expected:.0} were due at its weight {:.1}%, and {u} failures named no version: they came from it (sequential mixture test on its share of the successful answers, {}; about {estimate} of them, {low}-{high})",
            c.success,
            split.weight * 100.0,
            e.words()
        );
        (Verdict::Fail(why), Some(Failed::Shortfall))
    } else if let (Some(e), Some(p)) = (latency.filter(|e| e.rejects()), paired) {
        let figures = match (lc, ls) {
            (Some(lc), Some(ls)) => format!("; its {label} {lc:.0} ms against {ls:.0} ms"),
            _ => String::new(),
        };
        let why = format!(
            "probe judge: latency: the candidate answered slower than the stable version by more than latency_tolerance {:.0}% (+{LATENCY_SLACK_MS:.0} ms) in {} of {} pairs of answers due together ({}; more than half needed): sequential sign test on the pairs, {}{figures}",
            criteria.latency_tolerance * 100.0,
            p.worse,
            p.pairs,
            pct(p.worse as f64 / p.pairs.max(1) as f64),
            e.words()
        );
        (Verdict::Fail(why), Some(Failed::Latency))
    } else {
        (j.decision.clone(), None)
    };
    let verdict = match (ended, verdict) {
        (Some(horizon), v) if !v.is_fail() => Verdict::Inconclusive(format!(
            "the probe's schedule ended ({} of probing, the plan's bakes and extensions); {v}",
            crate::format_duration(horizon)
        )),
        (_, v) => v,
    };

    let test = |e: Option<Evidence>| {
        e.map(|e| json!({"ratio": e.ratio, "threshold": 1.0 / e.alpha, "p_value": e.p_value(), "spent": e.spent()}))
    };
    let mut numbers = j.numbers();
    numbers["candidate"]["version"] = split.candidate.into();
    numbers["candidate"]["latency_ms"] = lc.into();
    numbers["stable"]["version"] = split.stable.into();
    numbers["stable"]["latency_ms"] = ls.into();
    let (decision, reason) = match &verdict {
        Verdict::Pass => ("pass", Value::Null),
        Verdict::Fail(r) => ("fail", r.as_str().into()),
        Verdict::Inconclusive(r) => ("not_enough_evidence", r.as_str().into()),
    };
    numbers["decision"] = decision.into();
    numbers["reason"] = reason;
    numbers["tests_sharing_significance"] = TESTS.into();
    numbers["unattributed"] = json!({
        "requests": window.unattributed,
        "failed": u,
        "candidate_estimate": estimate,
        "candidate_estimate_interval": [low, high],
        "estimated": true,
        "shortfall_test": test(short),
        "shortfall_p_value": short.map(|e| e.p_value()),
    });
    numbers["latency_test"] = match (paired, latency) {
        (Some(p), Some(e)) => {
            let mut t = test(Some(e)).unwrap_or_default();
            t["pairs"] = p.pairs.into();
            t["worse"] = p.worse.into();
            t
        }
        _ => Value::Null,
    };
    numbers["latency_statistic"] = label.as_str().into();

    let mut summary = summary(&j, &label, (lc, ls), latency.zip(paired), &verdict, failed);
    if u > 0 {
        summary.push_str(&format!(
            "; {u} failures named no version (estimated {estimate} of them the candidate's, {low}-{high}{})",
            short.map_or(String::new(), |e| format!(
                ", shortfall p = {}",
                judge::format_p(e.p_value())
            ))
        ));
    }
    Finding::new("probe", verdict, summary).with_numbers(numbers)
}

/// One line for a person: both versions' errors and latency, the tests' p-values, the verdict.
fn summary(
    j: &judge::Judgement,
    label: &str,
    (lc, ls): (Option<f64>, Option<f64>),
    latency: Option<(Evidence, Pairs)>,
    verdict: &Verdict,
    failed: Option<Failed>,
) -> String {
    let side = |name: &str, s: Sample, l: Option<f64>| {
        let lat = l.map_or(String::new(), |l| format!(", {label} {l:.0} ms"));
        format!("{name}{} errors{lat}", rate_of(s))
    };
    let stable = if j.stable.requests == 0 {
        "stable no traffic (judged against max_error_rate alone)".to_string()
    } else {
        side("stable ", j.stable, ls)
    };
    let mut tests = Vec::new();
    if let Some(p) = j.p_value() {
        tests.push(format!("errors p = {}", judge::format_p(p)));
    }
    if let Some((e, p)) = latency {
        tests.push(format!(
            "latency {} of {} pairs slower, p = {}",
            p.worse,
            p.pairs,
            judge::format_p(e.p_value())
        ));
    }
    let tests = if tests.is_empty() {
        "p n/a".to_string()
    } else {
        tests.join(", ")
    };
    let decision = match (verdict, failed) {
        (Verdict::Pass, _) => "pass".to_string(),
        (Verdict::Fail(_), Some(Failed::Shortfall)) => "fail (shortfall)".to_string(),
        (Verdict::Fail(_), Some(Failed::Latency)) => "fail (latency)".to_string(),
        (Verdict::Fail(_), _) => "fail".to_string(),
        (Verdict::Inconclusive(why), _) => format!("not enough evidence: {why}"),
    };
    format!(
        "candidate {}; {stable}; {tests}; {decision}",
        side("", j.candidate, lc)
    )
}

#[cfg(test)]
#[path = "probe_verdict_tests.rs"]
mod tests;
