//! The judge: the candidate against the stable version, over the same window of traffic.
//!
//! A weighted alias gives a concurrent baseline for free: both versions serve the same
//! requests mix at the same time, and Lambda counts each by `ExecutedVersion`. So instead of
//! a fixed threshold on the whole alias, the judge asks whether the candidate is *worse than
//! the stable version*, with tests whose false-failure rate is known **however often a bake
//! looks**: a bake judges its growing window at every poll, and a fixed-sample test (the
//! Fisher exact test this judge used before) spends some of its significance at each look,
//! so over a whole live plan an identical candidate was rolled back 3 to 7% of the time.
//!
//! - **Errors, anytime-valid.** Under "both versions have the same error rate", every error
//!   lands on the candidate with the candidate's share of the window's requests
//!   (`θ0 = n_c / (n_c + n_s)`), independently of the others. The judge weighs the errors'
//!   allocation with a *mixture sequential probability ratio test* (Robbins 1970; the
//!   always-valid p-values of Johari, Pekelis and Walsh, "Always Valid Inference: Continuous
//!   Monitoring of A/B Tests", Operations Research 2022): the likelihood of the observed
//!   allocation averaged over every worse candidate (`θ` uniform on `(θ0, 1)`), over its
//!   likelihood at `θ0`. That ratio is a nonnegative supermartingale for an identical
//!   candidate, so by Ville's inequality it ever reaches `1/α` with probability at most `α`,
//!   whenever and however often it is read (Howard, Ramdas, McAuliffe and Sekhon,
//!   "Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals of
//!   Statistics 2021, give the general argument). `1/ratio` is the always-valid p-value.
//!   `θ0` is the window's realised share rather than the configured weight (the judge sees
//!   counts, not the alias): an approximation the seeded simulations in the tests and
//!   `bench/judge_aa.sh` measure to keep within the bound.
//!   *Why this and not alpha spending* (O'Brien-Fleming, Lan-DeMets): spending needs the
//!   looks' information fractions planned in advance, and a bake's looks depend on the poll
//!   interval, the metric lag, extensions and restarts; the mixture ratio needs nothing but
//!   the counts so far, so the judge stays a pure function of the window. *Why over the
//!   errors' allocation*: it has one unknown (`θ`) where a two-rate test has two, and it is
//!   exact at any count (5 errors in the first 20 requests against none in 200 is a ratio
//!   of 18,000 at the first look).
//! - **A whole plan.** Each step's window starts afresh, so the stage's significance
//!   `1 - confidence` is shared equally among the plan's steps ([`Criteria::steps`], a
//!   Bonferroni split): a good candidate is wrongly failed in a whole plan at most
//!   `1 - confidence` of the time by the error tests, whatever the poll interval and bakes.
//! - **Errors, absolute.** A candidate whose error rate is above `max_error_rate` fails
//!   whatever the stable version does, by the same mixture test on its own requests against
//!   the ceiling (`θ0 = max_error_rate`). An observed rate above the ceiling that is not
//!   yet significant is not enough evidence (neither pass nor fail).
//! - **Enough traffic.** Nothing passes before the candidate has served `min_requests`.
//!   A fail needs no minimum: strong evidence rolls back at once.
//! - **Latency, over periods.** CloudWatch gives one percentile per period, not samples, so
//!   no test on samples applies. The rule is Kayenta's idea of an effect-size margin plus a
//!   persistence requirement: a period counts against the candidate when its p99 (or mean)
//!   is above the stable version's by more than `latency_tolerance` plus
//!   [`LATENCY_SLACK_MS`]; the candidate fails when the window's figure is above that limit
//!   *and* at least [`LATENCY_PERIODS`] periods, more than half of those with traffic on
//!   both, are. Its false-failure rate for identical versions is measured by the bench
//!   (`bench/judge_aa.sh`) and bounded by the seeded simulation in the tests. Without a
//!   breakdown by period, the window's figures are compared once. (The probe, which has each
//!   answer's latency, tests those instead: the probe verdict (`probe_verdict.rs`).)
//! - **Shown no worse (early pass).** With `min_requests` served, the judge also asks the
//!   other question with the same kind of test: is the candidate's error rate shown below
//!   the ceiling and (when either version erred) below twice the stable version's, and is its
//!   latency within the margin? A stage with `analysis.early_pass` ends the step's bake
//!   there; a sequential test allows stopping on either side at any look.
//!
//! - **Throttles, relative only.** Lambda throttles a request when the function (or the
//!   account) has no concurrency left, whichever version the alias routed it to: a stage
//!   short of capacity throttles both versions alike, and that is no evidence against the
//!   candidate. What is, is the candidate taking significantly more than its share of the
//!   throttles: the same mixture test as the errors', on the candidate's share of all
//!   throttles against its share of all requests (throttled ones included, as a throttled
//!   request is no invocation), at the same step significance. It only ever fails; it never
//!   holds a pass back, and there is no ceiling, since a throttle rate measures the stage's
//!   capacity, not the version (the stage's `lambda_throttle_rate` alarm watches that; under
//!   `analysis.judge_relative` a firing one is left to this comparison, `alarm_policy`). It
//!   spends its own `α`, so an identical candidate is wrongly failed by the error or the
//!   throttle test at most twice the step's share (a union bound), and only where the stage
//!   throttles at all. A slower candidate holds its executions longer and so throttles both
//!   versions; the latency rule is what catches it.
//!
//! With no stable traffic (the bake after the 100% step, when the stable version serves
//! nothing) the relative tests have nothing to compare with: the candidate is judged by the
//! ceiling and `min_requests` alone, and the finding says so.
//!
//! The beta functions come from `statrs` (the regularized incomplete beta keeps small tails'
//! precision); nothing here is hand-rolled numerics.

use serde_json::{Value, json};
use statrs::function::beta::{checked_beta_reg, ln_beta};

use crate::evidence::Verdict;

/// Latency differences below this many milliseconds never fail: Lambda reports `Duration`
/// in milliseconds, and for a function that answers in 2 ms a ratio of two p99s over a
/// small sample is timer noise, not a regression.
pub const LATENCY_SLACK_MS: f64 = 5.0;

/// How many periods must each show the candidate slower than the margin before latency
/// fails (and more than half of the window's periods): one period's p99 over a few dozen
/// requests is the slowest of them, and a single slow cold start would otherwise fail it.
pub const LATENCY_PERIODS: usize = 3;

/// The early pass's relative margin on errors: a candidate shown to err less than this
/// many times as often as the stable version is no worse in a way that matters.
pub const EARLY_PASS_ERROR_RATIO: f64 = 2.0;

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

/// One version's traffic over the judged window (or one period of it).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    pub requests: u64,
    pub errors: u64,
    /// Requests Lambda throttled: not in `requests`, as a throttled request is no invocation.
    pub throttles: u64,
    /// The latency statistic over the window, in milliseconds, when the source has one.
    pub latency_ms: Option<f64>,
}

impl Sample {
    pub fn new(requests: u64, errors: u64) -> Sample {
        Sample {
            requests,
            errors,
            throttles: 0,
            latency_ms: None,
        }
    }

    pub fn with_throttles(mut self, throttles: u64) -> Sample {
        self.throttles = throttles;
        self
    }

    /// Every request that reached the version's routing: invoked or throttled.
    pub fn attempts(&self) -> u64 {
        self.requests + self.throttles
    }

    /// Throttles over attempts; 0 with none.
    pub fn throttle_rate(&self) -> f64 {
        if self.attempts() == 0 {
            0.0
        } else {
            self.throttles as f64 / self.attempts() as f64
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

    /// Errors are a subset of requests; datapoints that arrive at different times can make
    /// a window's sums disagree by a little, which must not inflate a rate past 100%.
    fn clamped(self) -> Sample {
        Sample {
            errors: self.errors.min(self.requests),
            ..self
        }
    }
}

/// One complete metric period: both versions' requests, errors and latency figure.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Period {
    pub candidate: Sample,
    pub stable: Sample,
}

/// What the stage's `analysis` block asks of the judge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Criteria {
    /// 0.5 < confidence < 1; a whole plan's significance is `1 - confidence`.
    pub confidence: f64,
    pub min_requests: u64,
    /// 0 < max_error_rate <= 1 (1 turns the ceiling off).
    pub max_error_rate: f64,
    /// A fraction: 0.5 lets the candidate be 50% slower than the stable version.
    pub latency_tolerance: f64,
    pub latency_statistic: LatencyStatistic,
    /// The steps of the plan whose bakes the judge watches (at least 1): each gets an equal
    /// share of the significance, so that the whole plan stays within it.
    pub steps: u32,
}

/// The defaults a stage's `analysis` block starts from (docs, "Canary analysis"): a 1%
/// significance over a whole plan, 100 candidate requests, a 5% error ceiling, 50% latency
/// tolerance on the p99. `steps` is set from the stage's plan when it is loaded.
impl Default for Criteria {
    fn default() -> Criteria {
        Criteria {
            confidence: 0.99,
            min_requests: 100,
            max_error_rate: 0.05,
            latency_tolerance: 0.5,
            latency_statistic: LatencyStatistic::P99,
            steps: 1,
        }
    }
}

impl Criteria {
    /// The whole plan's significance, `1 - confidence`.
    pub fn significance(&self) -> f64 {
        1.0 - self.confidence
    }

    /// One step's share of the significance.
    pub fn step_significance(&self) -> f64 {
        self.significance() / f64::from(self.steps.max(1))
    }

    /// The same criteria for a plan of `steps` judged steps.
    pub fn for_plan(self, steps: usize) -> Criteria {
        Criteria {
            steps: u32::try_from(steps.max(1)).unwrap_or(u32::MAX),
            ..self
        }
    }
}

/// One sequential test's state over the window so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    /// The mixture likelihood ratio (the e-value): how much more likely the window is if
    /// the candidate is worse than if it is not.
    pub ratio: f64,
    /// The step's share of the significance; the test fails at `ratio >= 1 / alpha`.
    pub alpha: f64,
}

impl Evidence {
    /// The always-valid p-value, `min(1, 1/ratio)`.
    pub fn p_value(&self) -> f64 {
        (1.0 / self.ratio).min(1.0)
    }

    pub fn rejects(&self) -> bool {
        self.ratio >= 1.0 / self.alpha
    }

    /// How much of the way to a verdict the evidence has come, as a share of the
    /// threshold on the log scale (0 = nothing, 1 = decided).
    pub fn spent(&self) -> f64 {
        (self.ratio.max(1.0).ln() / (1.0 / self.alpha).ln()).min(1.0)
    }

    /// The test's numbers in words, for a verdict's reason.
    pub fn words(&self) -> String {
        format!(
            "likelihood ratio {} against a threshold of {} (always-valid p = {} < {}; {:.0}% of the way)",
            format_ratio(self.ratio),
            format_ratio(1.0 / self.alpha),
            format_p(self.p_value()),
            format_p(self.alpha),
            self.spent() * 100.0
        )
    }
}

/// A verdict and the numbers behind it. The verdict is the one type every evidence source
/// answers with ([`Verdict`]); its reasons here do not name the source (see
/// [`Judgement::verdict`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub decision: Verdict,
    pub candidate: Sample,
    pub stable: Sample,
    /// The relative error test; `None` without traffic on both versions.
    pub relative: Option<Evidence>,
    /// The ceiling test, when the candidate's rate is above the ceiling.
    pub ceiling: Option<Evidence>,
    /// The relative throttle test; `None` unless both versions had requests and either
    /// was throttled.
    pub throttles: Option<Evidence>,
    /// Periods whose latency was above the margin, of those with a figure on both sides;
    /// `None` when the source gave no breakdown by period.
    pub slow_periods: Option<(usize, usize)>,
    pub criteria: Criteria,
}

/// The mixture likelihood ratio that a share of `x` in `k` Bernoulli trials is above
/// `theta0`, mixing uniformly over `(theta0, 1)`: `∫ θ^x (1-θ)^(k-x) dθ / (1 - θ0)` over
/// `θ0^x (1-θ0)^(k-x)`. The integral is `B(x+1, k-x+1) · I_{1-θ0}(k-x+1, x+1)`.
pub fn mixture_ratio_above(x: u64, k: u64, theta0: f64) -> f64 {
    if !(theta0 > 0.0 && theta0 < 1.0) {
        return 1.0;
    }
    let (xf, yf) = (x as f64, (k - x.min(k)) as f64);
    let tail = checked_beta_reg(yf + 1.0, xf + 1.0, 1.0 - theta0).unwrap_or(0.0);
    let log = ln_beta(xf + 1.0, yf + 1.0) + tail.ln()
        - (1.0 - theta0).ln()
        - (xf * theta0.ln() + yf * (1.0 - theta0).ln());
    log.exp()
}

/// The mirror image: the ratio that the share is below `theta1`, mixing uniformly over
/// `(0, theta1)`.
pub fn mixture_ratio_below(x: u64, k: u64, theta1: f64) -> f64 {
    if !(theta1 > 0.0 && theta1 < 1.0) {
        return 1.0;
    }
    let (xf, yf) = (x as f64, (k - x.min(k)) as f64);
    let head = checked_beta_reg(xf + 1.0, yf + 1.0, theta1).unwrap_or(0.0);
    let log = ln_beta(xf + 1.0, yf + 1.0) + head.ln()
        - theta1.ln()
        - (xf * theta1.ln() + yf * (1.0 - theta1).ln());
    log.exp()
}

/// A rate as a percentage with the digits that matter.
pub fn pct(rate: f64) -> String {
    let p = rate * 100.0;
    if p == 0.0 || p >= 10.0 {
        format!("{p:.0}%")
    } else if p >= 1.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}

/// "8.0% (8/100)": a side's error rate with its counts.
pub fn rate_of(s: Sample) -> String {
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

fn format_ratio(r: f64) -> String {
    if r >= 1e5 {
        format!("{r:.1e}")
    } else if r >= 10.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.2}")
    }
}

/// The relative error test: the candidate's share of all errors against its share of all
/// requests.
pub fn relative_errors(c: Sample, s: Sample, alpha: f64) -> Evidence {
    let share = c.requests as f64 / (c.requests + s.requests) as f64;
    Evidence {
        ratio: mixture_ratio_above(c.errors, c.errors + s.errors, share),
        alpha,
    }
}

/// The relative throttle test: the candidate's share of all throttles against its share of
/// all attempts (invoked or throttled).
pub fn relative_throttles(c: Sample, s: Sample, alpha: f64) -> Evidence {
    let share = c.attempts() as f64 / (c.attempts() + s.attempts()) as f64;
    Evidence {
        ratio: mixture_ratio_above(c.throttles, c.throttles + s.throttles, share),
        alpha,
    }
}

fn throttled_of(s: Sample) -> String {
    format!(
        "{} ({}/{})",
        pct(s.throttle_rate()),
        s.throttles,
        s.attempts()
    )
}

/// A fail when the candidate took significantly more than its share of the throttles.
fn throttle_failure(c: Sample, s: Sample, e: Option<Evidence>) -> Option<Verdict> {
    let e = e.filter(Evidence::rejects)?;
    Some(Verdict::Fail(format!(
        "throttles: the candidate's throttled share {} is above the stable version's {}: sequential mixture test on its share of the throttles ({} of {} against its {} share of the requests), {}, after {} candidate and {} stable requests; a stage short of capacity throttles both versions alike, this one throttles the candidate more",
        throttled_of(c),
        throttled_of(s),
        c.throttles,
        c.throttles + s.throttles,
        pct(c.attempts() as f64 / (c.attempts() + s.attempts()) as f64),
        e.words(),
        c.attempts(),
        s.attempts(),
    )))
}

/// The ceiling test: the candidate's errors against `max_error_rate` on its own requests.
pub fn ceiling_errors(c: Sample, max_error_rate: f64, alpha: f64) -> Evidence {
    Evidence {
        ratio: mixture_ratio_above(c.errors, c.requests, max_error_rate),
        alpha,
    }
}

/// Judges the candidate against the stable version over one window with no breakdown by
/// period: the window's latency figures, if any, are compared once. (The probe gives none
/// and tests its answers' own latencies: the probe verdict (`probe_verdict.rs`).)
pub fn judge(candidate: Sample, stable: Sample, criteria: &Criteria) -> Judgement {
    judge_window(candidate, stable, None, criteria)
}

/// Judges a window given period by period (the metrics source): counts are summed, latency
/// follows the persistence rule over the periods.
pub fn judge_periods(periods: &[Period], criteria: &Criteria) -> Judgement {
    let add = |a: Sample, b: Sample| {
        Sample::new(a.requests + b.requests, a.errors + b.errors)
            .with_throttles(a.throttles + b.throttles)
    };
    let weighted = |side: fn(&Period) -> Sample| {
        let (mut sum, mut weight) = (0.0, 0.0);
        for p in periods {
            if let Some(l) = side(p).latency_ms {
                sum += l * side(p).requests as f64;
                weight += side(p).requests as f64;
            }
        }
        (weight > 0.0).then(|| sum / weight)
    };
    let mut c = periods
        .iter()
        .fold(Sample::default(), |a, p| add(a, p.candidate));
    let mut s = periods
        .iter()
        .fold(Sample::default(), |a, p| add(a, p.stable));
    c.latency_ms = weighted(|p| p.candidate);
    s.latency_ms = weighted(|p| p.stable);
    judge_window(c, s, Some(periods), criteria)
}

/// The latency margin: the stable version's figure plus `latency_tolerance` and the slack.
pub fn latency_limit(stable_ms: f64, criteria: &Criteria) -> f64 {
    stable_ms * (1.0 + criteria.latency_tolerance) + LATENCY_SLACK_MS
}

/// Periods above the margin, of those with a figure and traffic on both sides.
fn slow_periods(periods: &[Period], criteria: &Criteria) -> (usize, usize) {
    let judged: Vec<(f64, f64)> = periods
        .iter()
        .filter(|p| p.candidate.requests > 0 && p.stable.requests > 0)
        .filter_map(|p| Some((p.candidate.latency_ms?, p.stable.latency_ms?)))
        .collect();
    let slow = judged
        .iter()
        .filter(|(c, s)| *c > latency_limit(*s, criteria))
        .count();
    (slow, judged.len())
}

fn judge_window(
    candidate: Sample,
    stable: Sample,
    periods: Option<&[Period]>,
    criteria: &Criteria,
) -> Judgement {
    let (c, s) = (candidate.clamped(), stable.clamped());
    let alpha = criteria.step_significance();
    let both = c.requests > 0 && s.requests > 0;
    let relative = both.then(|| relative_errors(c, s, alpha));
    let above_ceiling = c.error_rate() > criteria.max_error_rate;
    let ceiling = above_ceiling.then(|| ceiling_errors(c, criteria.max_error_rate, alpha));
    let slow = periods.map(|p| slow_periods(p, criteria));
    let throttles = (c.attempts() > 0 && s.attempts() > 0 && c.throttles + s.throttles > 0)
        .then(|| relative_throttles(c, s, alpha));
    // An error fail stands; otherwise a throttle fail overrides a pass or a wait.
    let decision = match decide(c, s, criteria, relative, ceiling, slow) {
        fail @ Verdict::Fail(_) => fail,
        other => throttle_failure(c, s, throttles).unwrap_or(other),
    };
    Judgement {
        decision,
        candidate: c,
        stable: s,
        relative,
        ceiling,
        throttles,
        slow_periods: slow,
        criteria: *criteria,
    }
}

fn decide(
    c: Sample,
    s: Sample,
    criteria: &Criteria,
    relative: Option<Evidence>,
    ceiling: Option<Evidence>,
    slow: Option<(usize, usize)>,
) -> Verdict {
    if c.requests == 0 {
        return Verdict::Inconclusive(format!(
            "no request reached the candidate yet (0 of the {} needed)",
            criteria.min_requests
        ));
    }
    let evidence = || {
        format!(
            "after {} candidate and {} stable requests",
            c.requests, s.requests
        )
    };
    if let Some(e) = relative
        && e.rejects()
    {
        return Verdict::Fail(format!(
            "errors: the candidate's error rate {} is above the stable version's {}: sequential mixture test on its share of the errors ({} of {} against its {} share of the requests), {}, {}",
            rate_of(c),
            rate_of(s),
            c.errors,
            c.errors + s.errors,
            pct(c.requests as f64 / (c.requests + s.requests) as f64),
            e.words(),
            evidence()
        ));
    }
    if let Some(e) = ceiling
        && e.rejects()
    {
        return Verdict::Fail(format!(
            "errors: the candidate's error rate {} is above the ceiling max_error_rate {}: sequential mixture test against the ceiling, {}, {}",
            rate_of(c),
            pct(criteria.max_error_rate),
            e.words(),
            evidence()
        ));
    }
    let enough = c.requests >= criteria.min_requests;
    if !enough {
        return Verdict::Inconclusive(format!(
            "the candidate served {} of the {} requests needed",
            c.requests, criteria.min_requests
        ));
    }
    if let Some(e) = ceiling {
        // Above the ceiling but not significantly: neither a fail (a version at 3% shows 6%
        // over 100 requests one time in twelve) nor a pass. More requests will tell.
        return Verdict::Inconclusive(format!(
            "the candidate's error rate {} is above max_error_rate {} but not significantly yet (always-valid p = {}); waiting for more requests",
            rate_of(c),
            pct(criteria.max_error_rate),
            format_p(e.p_value())
        ));
    }
    if let (Some(lc), Some(ls)) = (c.latency_ms, s.latency_ms)
        && s.requests > 0
    {
        let limit = latency_limit(ls, criteria);
        // Without a breakdown by period the window is one period that must be slow.
        let (n_slow, n) = slow.unwrap_or((usize::from(lc > limit), 1));
        let persistent = slow.is_none() || (n_slow >= LATENCY_PERIODS && 2 * n_slow > n);
        if lc > limit && persistent {
            let stat = criteria.latency_statistic.as_str();
            let periods = match slow {
                Some(_) => format!(
                    ", and in {n_slow} of {n} periods (at least {LATENCY_PERIODS} and more than half needed)"
                ),
                None => String::new(),
            };
            return Verdict::Fail(format!(
                "latency: the candidate's {stat} latency {lc:.0} ms is above the stable version's {ls:.0} ms by more than latency_tolerance {:.0}% (+{LATENCY_SLACK_MS:.0} ms): limit {limit:.0} ms over the window{periods}, {}",
                criteria.latency_tolerance * 100.0,
                evidence()
            ));
        }
    }
    Verdict::Pass
}

/// The early pass: with `min_requests` served and nothing failing, the candidate's error
/// rate shown below the ceiling and, when either version erred, below [`EARLY_PASS_ERROR_RATIO`]
/// times the stable version's, by the same sequential test the other way round; and its
/// latency within the limit over the window.
fn no_worse(c: Sample, s: Sample, criteria: &Criteria, alpha: f64) -> Option<String> {
    if c.requests < criteria.min_requests {
        return None;
    }
    let below = |ratio: f64| Evidence { ratio, alpha };
    let ceiling = below(mixture_ratio_below(
        c.errors,
        c.requests,
        criteria.max_error_rate,
    ));
    if !ceiling.rejects() {
        return None;
    }
    let mut words = format!(
        "the candidate's error rate {} is shown below max_error_rate {} ({})",
        rate_of(c),
        pct(criteria.max_error_rate),
        ceiling.words()
    );
    // Whenever either version erred, the relative margin must be shown too (not only when
    // the candidate did: a candidate passed for its luck of no errors yet would not be).
    if c.errors + s.errors > 0 && s.requests > 0 {
        let (nc, ns) = (c.requests as f64, s.requests as f64);
        let r = EARLY_PASS_ERROR_RATIO;
        // The candidate's share of the errors if it erred `r` times as often.
        let theta1 = r * nc / (r * nc + ns);
        let relative = below(mixture_ratio_below(c.errors, c.errors + s.errors, theta1));
        if !relative.rejects() {
            return None;
        }
        words += &format!(
            " and below {r:.0}x the stable version's {} ({})",
            rate_of(s),
            relative.words()
        );
    }
    if let (Some(lc), Some(ls)) = (c.latency_ms, s.latency_ms) {
        if lc > latency_limit(ls, criteria) {
            return None;
        }
        words += &format!(
            "; its {} latency {lc:.0} ms is within the limit {:.0} ms",
            criteria.latency_statistic.as_str(),
            latency_limit(ls, criteria)
        );
    }
    Some(words)
}

impl Judgement {
    /// The verdict as the metrics source reports it: a fail's reason names the judge.
    pub fn verdict(&self) -> Verdict {
        self.verdict_of("metrics judge")
    }

    /// The verdict with a fail's reason prefixed by `who` ("probe judge", ...).
    pub fn verdict_of(&self, who: &str) -> Verdict {
        match &self.decision {
            Verdict::Fail(r) => Verdict::Fail(format!("{who}: {r}")),
            v => v.clone(),
        }
    }

    /// `Some(why)` when the candidate passes and is shown no worse within the margins with
    /// enough requests: a stage with `analysis.early_pass` may end the step's bake here.
    /// (Computed on demand: the early pass's tests cost more than the judgement itself.)
    pub fn shown_no_worse(&self) -> Option<String> {
        match self.decision {
            Verdict::Pass => no_worse(
                self.candidate,
                self.stable,
                &self.criteria,
                self.criteria.step_significance(),
            ),
            _ => None,
        }
    }

    /// The relative test's always-valid p-value.
    pub fn p_value(&self) -> Option<f64> {
        self.relative.map(|e| e.p_value())
    }

    /// One line for a person: both versions' numbers, the p-value and the decision.
    pub fn summary(&self) -> String {
        let stat = self.criteria.latency_statistic.as_str();
        let side = |name: &str, s: Sample| {
            let lat = s
                .latency_ms
                .map_or(String::new(), |l| format!(", {stat} {l:.0} ms"));
            let throttled = if self.throttles.is_some() {
                format!(", {} throttled", throttled_of(s))
            } else {
                String::new()
            };
            format!("{name} {} errors{throttled}{lat}", rate_of(s))
        };
        let p = self.p_value().map_or("p n/a".to_string(), |p| {
            format!(
                "p = {} ({:.0}% of the way)",
                format_p(p),
                self.relative.map_or(0.0, |e| e.spent()) * 100.0
            )
        });
        let stable = if self.stable.requests == 0 {
            "stable no traffic (judged against max_error_rate alone)".to_string()
        } else {
            side("stable", self.stable)
        };
        let decision = match (&self.decision, &self.shown_no_worse()) {
            (Verdict::Pass, Some(_)) => "pass (shown no worse)".to_string(),
            (Verdict::Pass, None) => "pass".to_string(),
            (Verdict::Fail(_), _) => "fail".to_string(),
            (Verdict::Inconclusive(why), _) => format!("not enough evidence: {why}"),
        };
        format!(
            "candidate {}; {stable}; {p}; {decision}",
            side("", self.candidate).trim_start()
        )
    }

    /// The same numbers as data, for the JSON `bake` event and `promote status`.
    pub fn numbers(&self) -> Value {
        let side = |s: Sample| {
            json!({"requests": s.requests, "errors": s.errors, "error_rate": s.error_rate(),
                   "throttles": s.throttles, "throttle_rate": s.throttle_rate(),
                   "latency_ms": s.latency_ms})
        };
        let test = |e: Option<Evidence>| {
            e.map(|e| json!({"ratio": e.ratio, "threshold": 1.0 / e.alpha, "p_value": e.p_value(), "spent": e.spent()}))
        };
        let (decision, reason) = match &self.decision {
            Verdict::Pass => ("pass", None),
            Verdict::Fail(r) => ("fail", Some(r.as_str())),
            Verdict::Inconclusive(r) => ("not_enough_evidence", Some(r.as_str())),
        };
        json!({
            "candidate": side(self.candidate),
            "stable": side(self.stable),
            "p_value": self.p_value(),
            "ceiling_p_value": self.ceiling.map(|e| e.p_value()),
            "error_test": test(self.relative),
            "ceiling_test": test(self.ceiling),
            "throttle_test": test(self.throttles),
            "slow_periods": self.slow_periods.map(|(slow, n)| json!({"slow": slow, "periods": n})),
            "shown_no_worse": self.shown_no_worse(),
            "latency_statistic": self.criteria.latency_statistic.as_str(),
            "confidence": self.criteria.confidence,
            "steps": self.criteria.steps,
            "step_significance": self.criteria.step_significance(),
            "min_requests": self.criteria.min_requests,
            "max_error_rate": self.criteria.max_error_rate,
            "latency_tolerance": self.criteria.latency_tolerance,
            "decision": decision,
            "reason": reason,
        })
    }
}

#[cfg(test)]
#[path = "judge_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "judge_throttle_tests.rs"]
mod throttle_tests;
