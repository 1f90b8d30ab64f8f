//! What a probe can tell a canary judge about one window of a bake: per-version counts of
//! the answers that named their version, and for the failures that named none (a crashed
//! function's 502 from API Gateway) a test of whether they came from the candidate.
//!
//! The test: every request went to the candidate with the alias's weight `w`. If the
//! candidate failed no more often than the stable version, its share of the *successful*
//! attributed answers stays `w`; failures it alone causes (and which name no version) make
//! that share fall short. The p-value is the one-sided binomial probability of a shortfall
//! at least as large as the one seen, when the share really is `w`.

use std::collections::BTreeMap;
use std::time::Duration;

use statrs::distribution::{Binomial, DiscreteCDF};

use crate::stats::Stats;

/// One version's answers in the window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Counts {
    pub requests: u64,
    pub success: u64,
    /// Its answers' latencies in milliseconds (from each request's scheduled time), sorted.
    pub latencies_ms: Vec<f64>,
}

impl Counts {
    /// The nearest-rank `q` quantile of its latencies: the smallest at or above a share `q`
    /// of them.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let l = &self.latencies_ms;
        if l.is_empty() {
            return None;
        }
        let rank = ((l.len() as f64 * q).ceil() as usize).clamp(1, l.len());
        Some(l[rank - 1])
    }
}

/// The highest latency quantile (at most `want`) that `n` answers estimate with about ten of
/// them above it: p99 needs a thousand answers; over a hundred, the p90 is what there is. A
/// p99 of a hundred answers is their maximum, one cold start away from a false alarm.
pub fn supported_quantile(n: u64, want: f64) -> f64 {
    if n == 0 {
        return want;
    }
    want.min(1.0 - 10.0 / n as f64).max(0.5)
}

/// The window's answers: per version, and those that named none.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WindowCounts {
    pub versions: BTreeMap<String, Counts>,
    pub unattributed: u64,
    pub unattributed_failed: u64,
}

/// Counts over the answers to requests due at or after `from` (from the start of the run).
/// Requests never sent (over the in-flight cap) reached no version and are left out.
pub fn window(stats: &Stats, from: Duration) -> WindowCounts {
    let labels = stats.labels();
    let mut out = WindowCounts::default();
    for s in stats.samples().iter().filter(|s| s.scheduled >= from) {
        match s.version {
            Some(i) => {
                let c = out.versions.entry(labels[i].clone()).or_default();
                c.requests += 1;
                c.success += u64::from(s.success);
                c.latencies_ms.push(s.latency.as_secs_f64() * 1000.0);
            }
            None => {
                out.unattributed += 1;
                out.unattributed_failed += u64::from(!s.success);
            }
        }
    }
    for c in out.versions.values_mut() {
        c.latencies_ms.sort_unstable_by(f64::total_cmp);
    }
    out
}

/// The shortfall test for the candidate, given its successful answers, the stable
/// version's, and the candidate's weight `w` (0 < w < 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shortfall {
    /// Successful answers the candidate would have given at the stable version's success
    /// rate: `w * (candidate + stable) ` under the null.
    pub expected: f64,
    pub observed: u64,
    /// P(X <= observed) for X ~ Binomial(candidate + stable, w).
    pub p_value: f64,
}

pub fn shortfall(candidate_success: u64, stable_success: u64, w: f64) -> Option<Shortfall> {
    let n = candidate_success + stable_success;
    if n == 0 || !(w > 0.0 && w < 1.0) {
        return None;
    }
    let b = Binomial::new(w, n).ok()?;
    Some(Shortfall {
        expected: w * n as f64,
        observed: candidate_success,
        p_value: b.cdf(candidate_success),
    })
}

/// The failures that named no version and most likely came from the candidate: the
/// requests it should have served at weight `w` (of all answered in the window) minus the
/// answers it did give. An estimate; [`shortfall`] says whether it is more than chance.
pub fn candidate_failures_estimate(w: &WindowCounts, candidate: &str, weight: f64) -> f64 {
    let total: u64 = w.versions.values().map(|c| c.requests).sum::<u64>() + w.unattributed;
    let answered = w.versions.get(candidate).map_or(0, |c| c.requests);
    (weight * total as f64 - answered as f64).clamp(0.0, w.unattributed_failed as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Answer, Outcome};

    fn record(s: &mut Stats, i: u64, status: u16, v: Option<&str>, ms: u64) {
        s.record(&Outcome {
            seq: i,
            scheduled: Duration::from_millis(i * 10),
            sent: Some(Duration::from_millis(i * 10)),
            latency: Duration::from_millis(ms),
            result: Ok(Answer {
                status,
                version: v.map(str::to_string),
            }),
        });
    }

    /// 10% to the candidate ("4"), which crashes on a fifth of its requests with a 502
    /// that names no version, as API Gateway answers for a crashed function.
    fn canary(n: u64) -> Stats {
        let mut s = Stats::new(100.0);
        for i in 0..n {
            match i % 50 {
                0 => record(&mut s, i, 502, None, 3),
                k if k % 10 == 5 => record(&mut s, i, 200, Some("4"), 2),
                _ => record(&mut s, i, 200, Some("3"), 1),
            }
        }
        s
    }

    #[test]
    fn counts_start_at_the_window() {
        let s = canary(1000);
        let all = window(&s, Duration::ZERO);
        assert_eq!(all.versions["4"].requests, 100);
        assert_eq!(all.versions["3"].requests, 880);
        assert_eq!((all.unattributed, all.unattributed_failed), (20, 20));
        assert_eq!(all.versions["4"].quantile_ms(0.99), Some(2.0));
        assert_eq!(supported_quantile(100, 0.99), 0.9);
        assert_eq!(supported_quantile(5000, 0.99), 0.99);
        assert_eq!(supported_quantile(12, 0.99), 0.5);
        // The second half only: requests due from 5 s on.
        let half = window(&s, Duration::from_secs(5));
        assert_eq!(half.versions["4"].requests, 50);
        assert_eq!(half.unattributed, 10);
    }

    #[test]
    fn a_candidate_failing_without_naming_itself_falls_short_of_its_weight() {
        // 3000 requests: the candidate gives 300 * 0.8 = 240 answers, 2700 for the stable.
        let mut s = Stats::new(100.0);
        for i in 0..3000u64 {
            match i % 10 {
                0 if (i / 10) % 5 == 0 => record(&mut s, i, 502, None, 3),
                0 => record(&mut s, i, 200, Some("4"), 2),
                _ => record(&mut s, i, 200, Some("3"), 1),
            }
        }
        let w = window(&s, Duration::ZERO);
        let c = shortfall(w.versions["4"].success, w.versions["3"].success, 0.1).unwrap();
        assert_eq!(c.observed, 240);
        assert!((c.expected - 294.0).abs() < 1e-9);
        assert!(c.p_value < 0.001, "p = {}", c.p_value);
        assert_eq!(candidate_failures_estimate(&w, "4", 0.1), 60.0);
    }

    #[test]
    fn a_candidate_getting_its_share_is_no_shortfall() {
        let s = canary(1000);
        let w = window(&s, Duration::ZERO);
        // The stable version's 502s here: the candidate's share of answers is its weight.
        let c = shortfall(
            w.versions["4"].success,
            w.versions["3"].success,
            100.0 / 980.0,
        );
        assert!(c.unwrap().p_value > 0.3);
        assert_eq!(shortfall(0, 0, 0.1), None);
        assert_eq!(shortfall(10, 10, 1.0), None);
    }
}
