//! The judge as it was before the sequential tests (a Fisher exact test at every look and
//! the window's latency figures compared once), kept for the A/A bench only, so that old
//! and new are measured side by side on the same simulated traffic.
#![allow(dead_code)]

use statrs::distribution::{Binomial, DiscreteCDF, Hypergeometric};

/// Latency differences below this many milliseconds never fail: Lambda reports `Duration`
/// in milliseconds, and for a function that answers in 2 ms a ratio of two p99s over a
/// small sample is timer noise, not a regression.
pub const LATENCY_SLACK_MS: f64 = 5.0;

/// Which latency figure a source gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyStatistic {
    P99,
    Mean,
}

impl LatencyStatistic {
    pub fn as_str(self) -> &'static str {
        match self {
            LatencyStatistic::P99 => "p99",
            LatencyStatistic::Mean => "mean",
        }
    }
}

/// One version's traffic over the judged window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    pub requests: u64,
    pub errors: u64,
    /// The latency statistic over the window, in milliseconds, when the source has one.
    pub latency_ms: Option<f64>,
}

impl Sample {
    pub fn new(requests: u64, errors: u64) -> Sample {
        Sample {
            requests,
            errors,
            latency_ms: None,
        }
    }

    pub fn with_latency(mut self, ms: f64) -> Sample {
        self.latency_ms = Some(ms);
        self
    }

    /// Errors over requests; 0 with no requests.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// What the stage's `analysis` block asks of the judge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Criteria {
    /// 0.5 < confidence < 1; the test's significance is `1 - confidence`.
    pub confidence: f64,
    pub min_requests: u64,
    /// 0 < max_error_rate <= 1 (1 turns the ceiling off).
    pub max_error_rate: f64,
    /// A fraction: 0.5 lets the candidate be 50% slower than the stable version.
    pub latency_tolerance: f64,
    pub latency_statistic: LatencyStatistic,
}

/// The defaults a stage's `analysis` block starts from (README, "Canary analysis"):
/// a 1% significance, because a bake tests at every poll and each look spends some of it;
/// 100 candidate requests, a 5% error ceiling, 50% latency tolerance on the p99.
impl Default for Criteria {
    fn default() -> Criteria {
        Criteria {
            confidence: 0.99,
            min_requests: 100,
            max_error_rate: 0.05,
            latency_tolerance: 0.5,
            latency_statistic: LatencyStatistic::P99,
        }
    }
}

impl Criteria {
    pub fn significance(&self) -> f64 {
        1.0 - self.confidence
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Pass,
    Fail(String),
    /// Not enough evidence yet: what is missing.
    NotEnough(String),
}

/// A decision and the numbers behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub decision: Decision,
    pub candidate: Sample,
    pub stable: Sample,
    /// The relative test's p-value; `None` without traffic on both versions.
    pub p_value: Option<f64>,
    /// The ceiling test's p-value, when the candidate's rate is above the ceiling.
    pub ceiling_p_value: Option<f64>,
    pub criteria: Criteria,
}

/// One-sided Fisher exact test: the probability, if both versions had the same error rate,
/// of the candidate getting at least `candidate.errors` of all the errors.
pub fn fisher_one_sided(candidate: Sample, stable: Sample) -> f64 {
    if candidate.errors == 0 {
        return 1.0;
    }
    let population = candidate.requests + stable.requests;
    let successes = candidate.errors + stable.errors;
    match Hypergeometric::new(population, successes, candidate.requests) {
        // sf(x) is P(X > x), so P(X >= e) is sf(e - 1).
        Ok(h) => h.sf(candidate.errors - 1).clamp(0.0, 1.0),
        Err(_) => 1.0,
    }
}

/// One-sided binomial test against a fixed rate: `P(X >= errors)`, `X ~ Bin(requests, rate)`.
pub fn binomial_above(sample: Sample, rate: f64) -> f64 {
    if sample.errors == 0 {
        return 1.0;
    }
    match Binomial::new(rate, sample.requests) {
        Ok(b) => b.sf(sample.errors - 1).clamp(0.0, 1.0),
        Err(_) => 1.0,
    }
}

fn pct(rate: f64) -> String {
    let p = rate * 100.0;
    if p == 0.0 || p >= 10.0 {
        format!("{p:.0}%")
    } else if p >= 1.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}

fn rate_of(s: Sample) -> String {
    format!("{} ({}/{})", pct(s.error_rate()), s.errors, s.requests)
}

/// Formats a p-value for people: 3 significant digits, scientific below 0.001.
pub fn format_p(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.2e}")
    } else {
        format!("{p:.3}")
    }
}

/// Judges the candidate against the stable version over the same window.
pub fn judge(candidate: Sample, stable: Sample, criteria: &Criteria) -> Judgement {
    // Errors are a subset of requests; datapoints that arrive at different times can make a
    // window's sums disagree by a little, which must not panic or inflate a rate past 100%.
    let clamp = |s: Sample| Sample {
        errors: s.errors.min(s.requests),
        ..s
    };
    let (c, s) = (clamp(candidate), clamp(stable));
    let alpha = criteria.significance();
    let both = c.requests > 0 && s.requests > 0;
    let p_value = both.then(|| fisher_one_sided(c, s));
    let above_ceiling = c.error_rate() > criteria.max_error_rate;
    let ceiling_p_value = above_ceiling.then(|| binomial_above(c, criteria.max_error_rate));
    let decision = decide(c, s, criteria, alpha, p_value, ceiling_p_value);
    Judgement {
        decision,
        candidate: c,
        stable: s,
        p_value,
        ceiling_p_value,
        criteria: *criteria,
    }
}

fn decide(
    c: Sample,
    s: Sample,
    criteria: &Criteria,
    alpha: f64,
    p_value: Option<f64>,
    ceiling_p_value: Option<f64>,
) -> Decision {
    if c.requests == 0 {
        return Decision::NotEnough(format!(
            "no request reached the candidate yet (0 of the {} needed)",
            criteria.min_requests
        ));
    }
    if let Some(p) = p_value
        && p < alpha
    {
        return Decision::Fail(format!(
            "the candidate's error rate {} is above the stable version's {}: one-sided Fisher exact test p = {} < {}",
            rate_of(c),
            rate_of(s),
            format_p(p),
            format_p(alpha)
        ));
    }
    if let Some(p) = ceiling_p_value
        && p < alpha
    {
        return Decision::Fail(format!(
            "the candidate's error rate {} is above the ceiling max_error_rate {}: one-sided binomial test p = {} < {}",
            rate_of(c),
            pct(criteria.max_error_rate),
            format_p(p),
            format_p(alpha)
        ));
    }
    let enough = c.requests >= criteria.min_requests;
    if !enough {
        return Decision::NotEnough(format!(
            "the candidate served {} of the {} requests needed",
            c.requests, criteria.min_requests
        ));
    }
    if let Some(p) = ceiling_p_value {
        // Above the ceiling but not significantly: neither a fail (a version at 3% shows 6%
        // over 100 requests one time in twelve) nor a pass. More requests will tell.
        return Decision::NotEnough(format!(
            "the candidate's error rate {} is above max_error_rate {} but not significantly yet (binomial p = {}); waiting for more requests",
            rate_of(c),
            pct(criteria.max_error_rate),
            format_p(p)
        ));
    }
    if let (Some(lc), Some(ls)) = (c.latency_ms, s.latency_ms)
        && s.requests > 0
    {
        let limit = ls * (1.0 + criteria.latency_tolerance) + LATENCY_SLACK_MS;
        if lc > limit {
            let stat = criteria.latency_statistic.as_str();
            return Decision::Fail(format!(
                "the candidate's {stat} latency {lc:.0} ms is above the stable version's {ls:.0} ms by more than latency_tolerance {:.0}% (+{LATENCY_SLACK_MS:.0} ms): limit {limit:.0} ms",
                criteria.latency_tolerance * 100.0
            ));
        }
    }
    Decision::Pass
}
