//! Lambda's per-version metrics as an evidence source: the candidate judged against the
//! stable version inside the same weighted alias (`rollout::judge`).
//!
//! Lambda publishes `Invocations`, `Errors`, `Throttles` and `Duration` of a weighted alias
//! per `ExecutedVersion`, so both versions are measured over the same requests mix at the
//! same time. One GetMetricData call per poll reads both series.
//!
//! Which complete periods a poll judges, and what they say, is decided by
//! `rollout::metrics_verdict` (the window rule) and `rollout::judge` (the tests): this source
//! only reads the series and splits them into those periods.
//!
//! **After the 100% step** the alias has no routing and Lambda publishes no
//! `ExecutedVersion` for it: the alias as a whole is the candidate, and with no stable
//! traffic beside it the judge applies the ceiling and `min_requests` alone.

use std::time::{Duration, SystemTime};

use futures_util::future::LocalBoxFuture;
use rollout::judge::{Period, Sample};
use rollout::metrics_verdict::{self, Read, not_yet, window};
use rollout::{Analysis, Finding, Subject};

use crate::cloud::aws::{Metrics, MetricsQuery, Series};
use crate::evidence::{Source, Window};

pub struct MetricsSource<'a, M> {
    cloud: &'a M,
    function: String,
    analysis: Analysis,
}

impl<'a, M: Metrics> MetricsSource<'a, M> {
    pub fn new(cloud: &'a M, function: &str, analysis: &Analysis) -> Self {
        MetricsSource {
            cloud,
            function: function.to_string(),
            analysis: analysis.clone(),
        }
    }
}

/// A series' totals over `[start, end)`. Sums for counts; for latency, the per-period
/// figures weighted by that period's invocations (exact for a mean; for a p99, a weighted
/// mean of per-period p99s, which CloudWatch cannot merge exactly either).
pub fn totals(series: &Series, start: SystemTime, end: SystemTime) -> Sample {
    let inside = |t: &SystemTime| *t >= start && *t < end;
    let sum = |points: &[(SystemTime, f64)]| -> f64 {
        points
            .iter()
            .filter(|(t, _)| inside(t))
            .map(|(_, v)| v.max(0.0))
            .sum()
    };
    let requests = sum(&series.invocations).round() as u64;
    let errors = sum(&series.errors).round() as u64;
    let throttles = sum(&series.throttles).round() as u64;
    let (mut weighted, mut weights, mut plain, mut n) = (0.0, 0.0, 0.0, 0u32);
    for (t, d) in series.duration_ms.iter().filter(|(t, _)| inside(t)) {
        let w = series
            .invocations
            .iter()
            .find(|(ti, _)| ti == t)
            .map_or(0.0, |(_, v)| *v);
        weighted += d * w;
        weights += w;
        plain += d;
        n += 1;
    }
    let latency_ms = if weights > 0.0 {
        Some(weighted / weights)
    } else if n > 0 {
        Some(plain / f64::from(n))
    } else {
        None
    };
    Sample {
        requests,
        errors,
        throttles,
        latency_ms,
    }
}

/// The window period by period, for the judge's latency rule over periods (counts are
/// summed by the judge as [`totals`] sums them; each period's latency is its own figure).
pub fn periods(
    candidate: &Series,
    stable: &Series,
    start: SystemTime,
    end: SystemTime,
    period_seconds: u32,
) -> Vec<Period> {
    let step = Duration::from_secs(period_seconds.max(1).into());
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let next = at + step;
        out.push(Period {
            candidate: totals(candidate, at, next),
            stable: totals(stable, at, next),
        });
        at = next;
    }
    out
}

impl<M: Metrics> Source for MetricsSource<'_, M> {
    fn name(&self) -> &str {
        "metrics"
    }

    fn assess<'a>(
        &'a mut self,
        subject: &'a Subject,
        w: Window,
    ) -> LocalBoxFuture<'a, anyhow::Result<Finding>> {
        Box::pin(async move {
            let period = self.analysis.period_seconds;
            let Some(candidate) = subject.candidate else {
                return Ok(Finding::no_candidate("metrics"));
            };
            let (start, end) = match window(w.step_started, w.now, period) {
                Ok(win) => win,
                Err(first) => return Ok(not_yet(period, first)),
            };
            // A weighted alias publishes per ExecutedVersion; an alias with no routing (the
            // candidate serving alone) only as a whole.
            let alone = subject.weight.is_full() || subject.stable == candidate;
            let series = if alone {
                vec![None]
            } else {
                vec![Some(candidate), Some(subject.stable)]
            };
            let q = MetricsQuery {
                function: self.function.clone(),
                alias: subject.alias.clone(),
                series,
                start,
                end,
                period_seconds: period,
                latency: self.analysis.criteria.latency_statistic,
            };
            let got = self.cloud.version_metrics(&q).await?;
            let none = Series::default();
            let candidate_series = got.first().unwrap_or(&none);
            let stable_series = if alone {
                &none
            } else {
                got.get(1).unwrap_or(&none)
            };
            let by_period = periods(candidate_series, stable_series, start, end, period);
            let (candidate, stable) = (candidate.to_string(), subject.stable.to_string());
            let read = Read {
                candidate: &candidate,
                stable: &stable,
                start,
                end,
                period_seconds: period,
                alias_as_a_whole: alone,
            };
            Ok(metrics_verdict::finding(
                &by_period,
                &self.analysis.criteria,
                read,
            ))
        })
    }
}

/// How many complete periods `promote status` judges for a stage mid-canary: it does not
/// know when the step began, so it looks at the recent traffic of the split as it stands.
pub const STATUS_PERIODS: u32 = 5;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn totals_sum_counts_and_weight_latency_by_invocations_inside_the_window() {
        let s = Series {
            invocations: vec![(t(0), 100.0), (t(60), 300.0), (t(120), 50.0)],
            errors: vec![(t(0), 1.0), (t(60), 2.0), (t(120), 9.0)],
            duration_ms: vec![(t(0), 10.0), (t(60), 30.0), (t(120), 1000.0)],
            throttles: vec![(t(60), 4.0), (t(120), 7.0)],
        };
        let got = totals(&s, t(0), t(120));
        assert_eq!((got.requests, got.errors, got.throttles), (400, 3, 4));
        assert_eq!(got.latency_ms, Some(25.0)); // (100*10 + 300*30) / 400
        assert_eq!(totals(&Series::default(), t(0), t(120)), Sample::default());
    }

    #[test]
    fn periods_split_the_window_with_each_period_s_own_latency() {
        let c = Series {
            invocations: vec![(t(0), 10.0), (t(60), 30.0)],
            errors: vec![(t(60), 3.0)],
            duration_ms: vec![(t(0), 50.0), (t(60), 90.0)],
            ..Series::default()
        };
        let s = Series {
            invocations: vec![(t(0), 90.0), (t(60), 270.0)],
            errors: vec![],
            duration_ms: vec![(t(0), 40.0), (t(60), 45.0)],
            ..Series::default()
        };
        let got = periods(&c, &s, t(0), t(120), 60);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].candidate, Sample::new(30, 3).with_latency(90.0));
        assert_eq!(got[0].stable, Sample::new(90, 0).with_latency(40.0));
        // The judge sums them back to the window's totals.
        let j = rollout::judge::judge_periods(&got, &rollout::judge::Criteria::default());
        assert_eq!((j.candidate.requests, j.candidate.errors), (40, 3));
        assert_eq!(j.candidate.latency_ms, Some(80.0)); // (10*50 + 30*90) / 40
    }
}
