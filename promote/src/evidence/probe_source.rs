//! The probe as an evidence source: `promote`'s own open-loop traffic through the stage's
//! URL for as long as the rollout bakes, each answer attributed to the version that served
//! it, judged at every poll. It sees a bad candidate in seconds, where Lambda's metrics come
//! per minute and late (README, "The probe during a canary").
//!
//! Attribution: the app names its version on every answer it makes, errors included. A
//! crashed function's 502 comes from API Gateway and names none; those are judged by the
//! shortfall test (`probe::evidence::shortfall`): with the candidate at weight `w`, its
//! share of the *successful* answers stays `w` unless it fails more often than the stable
//! version. Counting them into the candidate by a point estimate would not do: chance
//! alone puts the candidate's share a standard deviation below `w` one time in six, and a
//! Fisher test on such an estimate fails an identical candidate that often.

use std::time::{Duration, SystemTime};

use crate::read::probe::reachable;
use ::probe::evidence::{Counts, WindowCounts, shortfall, supported_quantile, window};
use ::probe::http::{Http, TargetError, target};
use ::probe::{Config, Running, Schedule, Stats};
use anyhow::{Context, Result};
use futures_util::future::LocalBoxFuture;
use rollout::judge::{self, Criteria, Decision, Sample, format_p};
use rollout::{EvidenceVerdict as Verdict, Finding, Subject};
use serde_json::json;
use statrs::distribution::{ContinuousCDF, Normal};

use crate::cli::exit::Exit;
use crate::evidence::{Source, Window};

/// Requests due within this long after a step's write are left out of its window: the
/// local gateway sees an alias change within a second, Lambda within a moment; until then
/// the old weights route, and the shortfall test would read that as missing answers.
pub const STEP_GRACE: Duration = Duration::from_secs(2);
/// The alias a probe by Invoke calls, and the stage whose request it sends.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeAt {
    pub function: String,
    pub alias: String,
    pub stage: String,
}

/// Where and how fast the probe sends, and for how long at most.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbePlan {
    /// The stage's base URL: its invoke URL, or `--probe-url`. With `invoke`, the Invoke
    /// endpoint (`--probe-url`, e.g. the local gateway), empty for the SDK's usual one.
    pub url: String,
    /// Invoke the stage's alias through Lambda's Invoke API instead (`--probe-invoke`).
    pub invoke: Option<InvokeAt>,
    pub path: String,
    pub rate: f64,
    /// The whole rollout's bakes and extensions: the schedule is bounded by it, and a probe
    /// still needed after it says so (not enough evidence) rather than running forever.
    pub horizon: Duration,
    pub timeout: Duration,
}

pub struct ProbeSource {
    plan: ProbePlan,
    criteria: Criteria,
    live: Option<Live>,
}

struct Live {
    running: Running,
    /// The wall-clock time of the schedule's start, to place a step's write on it.
    wall_start: SystemTime,
    stats: Stats,
    ended: bool,
}

impl ProbeSource {
    pub fn new(plan: ProbePlan, criteria: Criteria) -> ProbeSource {
        ProbeSource {
            plan,
            criteria,
            live: None,
        }
    }

    /// Starts the schedule at the first poll (the pre-flight, before any write), so that a
    /// wrong URL stops the run with nothing written.
    async fn start(&mut self) -> Result<&mut Live> {
        if self.live.is_none() {
            let p = &self.plan;
            let schedule = Schedule::new(p.rate, p.horizon)
                .map_err(|e| Exit::BadInput(format!("the probe's schedule: {e}")))?;
            let config = Config {
                schedule,
                timeout: p.timeout,
                max_in_flight: ::probe::engine::DEFAULT_MAX_IN_FLIGHT,
            };
            let endpoint = (!p.url.is_empty()).then_some(p.url.as_str());
            let running = match &p.invoke {
                None => {
                    let uri = target(&p.url, &p.path)
                        .map_err(|e| Exit::BadInput(format!("the probe's target: {e}")))?;
                    reachable(&uri, say_unreachable).await?;
                    ::probe::start(config, Http::new(uri, config.max_in_flight))
                }
                Some(at) => {
                    if let Some(e) = endpoint {
                        let uri = target(e, "/").map_err(|e| {
                            Exit::BadInput(format!("the probe's Invoke endpoint: {e}"))
                        })?;
                        reachable(&uri, say_unreachable).await?;
                    }
                    let invoke = crate::evidence::probe_invoke::Invoke::new(
                        &at.function,
                        &at.alias,
                        &at.stage,
                        &p.path,
                        endpoint,
                        p.timeout,
                    )
                    .await;
                    ::probe::start(config, invoke)
                }
            };
            self.live = Some(Live {
                running,
                wall_start: SystemTime::now(),
                stats: Stats::new(p.rate),
                ended: false,
            });
        }
        Ok(self.live.as_mut().expect("started above"))
    }
}

impl Drop for ProbeSource {
    fn drop(&mut self) {
        if let Some(l) = &self.live {
            l.running.stop();
        }
    }
}

impl Source for ProbeSource {
    fn name(&self) -> &str {
        "probe"
    }

    fn assess<'a>(
        &'a mut self,
        subject: &'a Subject,
        w: Window,
    ) -> LocalBoxFuture<'a, Result<Finding>> {
        Box::pin(async move {
            let criteria = self.criteria;
            let live = self.start().await.context("starting the probe")?;
            loop {
                match live.running.outcomes.try_recv() {
                    Ok(o) => live.stats.record(&o),
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                        live.ended = true;
                        break;
                    }
                }
            }
            let Some(candidate) = subject.candidate else {
                return Ok(inconclusive("no candidate on the alias to judge"));
            };
            let from = w
                .step_started
                .duration_since(live.wall_start)
                .unwrap_or_default()
                + STEP_GRACE;
            let counts = window(&live.stats, from);
            let mut finding = judge_window(
                &counts,
                &candidate.to_string(),
                &subject.stable.to_string(),
                subject.weight.fraction(),
                &criteria,
            );
            if live.ended && !matches!(finding.verdict, Verdict::Fail(_)) {
                finding.verdict = Verdict::Inconclusive(format!(
                    "the probe's schedule ended ({} of probing, the plan's bakes and extensions); {}",
                    rollout::format_duration(self.plan.horizon),
                    finding.verdict
                ));
            }
            Ok(finding)
        })
    }
}

/// Where the canary's probe cannot go, said with the option that sets it.
fn say_unreachable(e: &TargetError) -> String {
    match e {
        TargetError::Invalid { .. } => format!("the probe's target: {e}"),
        TargetError::Unreachable { .. } => {
            format!("the probe {e}; give the stage's reachable URL with --probe-url")
        }
    }
}

fn inconclusive(why: &str) -> Finding {
    Finding::new("probe", Verdict::Inconclusive(why.into()), why)
}

/// The failures that named no version which the split says were most likely the
/// candidate's, and an interval at the judge's confidence: its expected requests
/// (`w` of all) minus the answers it gave, with the binomial spread of that expectation.
pub fn unattributed_estimate(
    counts: &WindowCounts,
    candidate: &str,
    w: f64,
    criteria: &Criteria,
) -> (u64, u64, u64) {
    let failed = counts.unattributed_failed;
    if w >= 1.0 {
        return (failed, failed, failed);
    }
    if w <= 0.0 || failed == 0 {
        return (0, 0, 0);
    }
    let total: u64 =
        counts.versions.values().map(|c| c.requests).sum::<u64>() + counts.unattributed;
    let answered = counts.versions.get(candidate).map_or(0, |c| c.requests);
    let z = Normal::standard().inverse_cdf(1.0 - criteria.significance() / 2.0);
    let n = total as f64;
    // The same estimate as the probe's report (`probe::stats::attribute_unattributed`).
    let a = ::probe::stats::attribute_unattributed(w * n, n * w * (1.0 - w), answered, failed, z);
    // The low end rounds down: it is what the candidate is charged beyond doubt.
    (
        a.estimate.round() as u64,
        a.low.floor() as u64,
        a.high.ceil() as u64,
    )
}

/// One window's answers judged: the judge (`rollout::judge`) over the attributed answers,
/// with the candidate charged only the unattributed failures that are its own beyond doubt
/// (the low end of the estimate's interval), then the shortfall test for the rest.
pub fn judge_window(
    counts: &WindowCounts,
    candidate: &str,
    stable: &str,
    w: f64,
    criteria: &Criteria,
) -> Finding {
    let alone = w >= 1.0 || candidate == stable;
    let get = |v: &str| counts.versions.get(v).cloned().unwrap_or_default();
    let (c, s) = if alone {
        (get(candidate), Counts::default())
    } else {
        (get(candidate), get(stable))
    };
    let (estimate, low, high) = unattributed_estimate(counts, candidate, w, criteria);
    // The same quantile of both versions, as high as the candidate's answers support.
    let q = supported_quantile(c.requests, 0.99);
    let sample = |c: &Counts, extra_failures: u64| {
        let s = Sample::new(
            c.requests + extra_failures,
            c.requests - c.success + extra_failures,
        );
        match c.quantile_ms(q) {
            Some(ms) => s.with_latency(ms),
            None => s,
        }
    };
    let j = judge::judge(sample(&c, low), sample(&s, 0), criteria);
    // The judge words the latency as its statistic (p99); here it is the quantile above.
    let label = format!("p{}", (q * 100.0).floor());
    let relabel = |t: &str| t.replace("p99 latency", &format!("{label} latency"));
    let alpha = criteria.significance();
    let short = (!alone && counts.unattributed_failed > 0)
        .then(|| shortfall(c.success, s.success, w))
        .flatten();
    let decision = match (&j.decision, short) {
        (Decision::Fail(r), _) if low > 0 => Decision::Fail(format!(
            "{} (counting {low} of the {} failures that named no version: the fewest the split says were its own)",
            relabel(r),
            counts.unattributed_failed
        )),
        (Decision::Fail(r), _) => Decision::Fail(relabel(r)),
        (_, Some(sf)) if sf.p_value < alpha => Decision::Fail(format!(
            "the candidate gave {} successful answers where {:.0} were due at its weight {:.1}%, and {} failures named no version: they came from it (binomial p = {} < {}; about {estimate} of them, {low}-{high})",
            sf.observed,
            sf.expected,
            w * 100.0,
            counts.unattributed_failed,
            format_p(sf.p_value),
            format_p(alpha)
        )),
        (d, _) => d.clone(),
    };
    let verdict = match &decision {
        Decision::Pass => Verdict::Pass,
        Decision::Fail(r) => Verdict::Fail(format!("probe judge: {r}")),
        Decision::NotEnough(r) => Verdict::Inconclusive(r.clone()),
    };
    let mut numbers = j.numbers();
    numbers["candidate"]["version"] = candidate.into();
    numbers["stable"]["version"] = stable.into();
    numbers["decision"] = match &decision {
        Decision::Pass => "pass",
        Decision::Fail(_) => "fail",
        Decision::NotEnough(_) => "not_enough_evidence",
    }
    .into();
    numbers["reason"] = match &decision {
        Decision::Pass => serde_json::Value::Null,
        Decision::Fail(r) | Decision::NotEnough(r) => r.as_str().into(),
    };
    numbers["unattributed"] = json!({
        "requests": counts.unattributed,
        "failed": counts.unattributed_failed,
        "candidate_estimate": estimate,
        "candidate_estimate_interval": [low, high],
        "estimated": true,
        "shortfall_p_value": short.map(|s| s.p_value),
    });
    numbers["latency_statistic"] = label.as_str().into();
    let mut summary = j.summary().replace("p99 ", &format!("{label} "));
    if let Some(i) = summary.rfind("; ") {
        // The decision is the shortfall test's where that one failed.
        if matches!(decision, Decision::Fail(_)) && !matches!(j.decision, Decision::Fail(_)) {
            summary.truncate(i);
            summary.push_str("; fail (shortfall)");
        }
    }
    if counts.unattributed_failed > 0 {
        summary.push_str(&format!(
            "; {} failures named no version (estimated {estimate} of them the candidate's, {low}-{high}{})",
            counts.unattributed_failed,
            short.map_or(String::new(), |s| format!(
                ", shortfall p = {}",
                format_p(s.p_value)
            ))
        ));
    }
    Finding::new("probe", verdict, summary).with_numbers(numbers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn counts(c: (u64, u64), s: (u64, u64), unattributed_failed: u64) -> WindowCounts {
        let v = |(requests, success): (u64, u64)| Counts {
            requests,
            success,
            latencies_ms: vec![3.0; requests as usize],
        };
        WindowCounts {
            versions: BTreeMap::from([("4".to_string(), v(c)), ("3".to_string(), v(s))]),
            unattributed: unattributed_failed,
            unattributed_failed,
        }
    }

    fn verdict(c: (u64, u64), s: (u64, u64), u: u64) -> Verdict {
        judge_window(&counts(c, s, u), "4", "3", 0.1, &Criteria::default()).verdict
    }

    #[test]
    fn a_candidate_whose_errors_name_it_fails_on_the_judges_test() {
        // 5 s at 100/s: 50 for the candidate, 10 of them 500s from its own code.
        let v = verdict((50, 40), (450, 450), 0);
        assert!(
            matches!(&v, Verdict::Fail(r) if r.starts_with("probe judge: ") && r.contains("sequential mixture test")),
            "{v}"
        );
    }

    #[test]
    fn a_crashing_candidate_falls_short_of_its_share_of_answers() {
        // 20 s at 100/s: the candidate's 200 requests, 40 of them API Gateway 502s.
        let v = verdict((160, 160), (1800, 1800), 40);
        assert!(
            matches!(&v, Verdict::Fail(r) if r.contains("failures that named no version")),
            "{v}"
        );
        // 1000 requests, 25 of the candidate's 100 crashed: too few to charge it any by the
        // interval, enough for the shortfall test.
        let c = counts((75, 75), (900, 900), 25);
        assert_eq!(
            unattributed_estimate(&c, "4", 0.1, &Criteria::default()).1,
            0
        );
        let v = verdict((75, 75), (900, 900), 25);
        assert!(
            matches!(&v, Verdict::Fail(r) if r.contains("named no version: they came from it")),
            "{v}"
        );
    }

    #[test]
    fn unattributed_failures_of_the_split_as_a_whole_do_not_fail_an_identical_candidate() {
        // The stable version's 502s, and the candidate a standard deviation under its share
        // by chance: a point estimate would charge it all ten; the judge does not fail it.
        let c = counts((90, 90), (900, 900), 10);
        let (est, low, high) = unattributed_estimate(&c, "4", 0.1, &Criteria::default());
        assert_eq!((est, low), (10, 0), "{est} {low} {high}");
        let f = judge_window(&c, "4", "3", 0.1, &Criteria::default());
        assert!(!f.verdict.is_fail(), "{}", f.verdict);
        assert_eq!(f.numbers["unattributed"]["failed"], 10);
        assert_eq!(f.numbers["unattributed"]["estimated"], true);
    }

    #[test]
    fn a_good_candidate_passes_once_it_has_enough_requests() {
        assert_eq!(verdict((100, 100), (900, 900), 0), Verdict::Pass);
        assert!(matches!(
            verdict((60, 60), (540, 540), 0),
            Verdict::Inconclusive(r) if r.contains("60 of the 100")
        ));
    }

    #[test]
    fn latency_is_compared_at_the_quantile_the_candidates_answers_support() {
        let mut c = counts((100, 100), (900, 900), 0);
        // One cold start in a hundred answers: the p99 would be it; the p90 is not.
        c.versions.get_mut("4").unwrap().latencies_ms[99] = 400.0;
        let f = judge_window(&c, "4", "3", 0.1, &Criteria::default());
        assert_eq!(f.verdict, Verdict::Pass, "{}", f.summary);
        assert_eq!(f.numbers["latency_statistic"], "p90");
        // Slower throughout (--latency 40): a fail, worded with the quantile used.
        c.versions.get_mut("4").unwrap().latencies_ms = vec![43.0; 100];
        let f = judge_window(&c, "4", "3", 0.1, &Criteria::default());
        assert!(
            matches!(&f.verdict, Verdict::Fail(r) if r.contains("p90 latency 43 ms")),
            "{}",
            f.verdict
        );
    }

    #[test]
    fn the_candidate_alone_owns_every_failure() {
        let c = counts((150, 150), (0, 0), 50);
        let f = judge_window(&c, "4", "3", 1.0, &Criteria::default());
        assert!(
            matches!(&f.verdict, Verdict::Fail(r) if r.contains("ceiling")),
            "{}",
            f.verdict
        );
    }

    /// Seeded A/A trials: both versions fail 1% of requests as a crash (a 502 naming no
    /// version), the split is 10%. The share of identical candidates the probe judge fails
    /// stays at or below the configured significance.
    #[test]
    fn identical_versions_crashing_alike_are_rarely_failed() {
        let mut rng = 0x2026_1130_u64;
        let mut next = || {
            // xorshift64*: a seeded generator is all a simulation needs.
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            (rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        };
        let criteria = Criteria::default();
        let (trials, n) = (4000, 1000);
        let mut failed = 0;
        for _ in 0..trials {
            let (mut c, mut s, mut u) = ((0, 0), (0, 0), 0);
            for _ in 0..n {
                let crash = next() < 0.01;
                let cand = next() < 0.1;
                match (crash, cand) {
                    (true, _) => u += 1,
                    (false, true) => c = (c.0 + 1, c.1 + 1),
                    (false, false) => s = (s.0 + 1, s.1 + 1),
                }
            }
            failed += u64::from(
                judge_window(&counts(c, s, u), "4", "3", 0.1, &criteria)
                    .verdict
                    .is_fail(),
            );
        }
        let rate = failed as f64 / trials as f64;
        println!("probe judge A/A at 1% crashes, 10% split, {n} requests: {rate:.4} failed");
        assert!(rate <= criteria.significance(), "{rate}");
    }
}
