//! The probe as an evidence source: `promote`'s own open-loop traffic through the stage's
//! URL for as long as the rollout bakes, each answer attributed to the version that served
//! it, judged at every poll. It sees a bad candidate in seconds, where Lambda's metrics come
//! per minute and late (docs/canary-analysis.md, "The probe judge").
//!
//! This source only reads: the answers due since the step's write, counted per version
//! (`probe::evidence::window`), are judged by `rollout::probe_verdict` (the judge's error
//! tests, the shortfall test for failures that name no version, the paired latency test).

use std::time::{Duration, SystemTime};

use ::probe::evidence::{Counts, WindowCounts, window};
use ::probe::http::{Http, TargetError, check_reachable, target};
use ::probe::{Config, Running, Schedule, Stats};
use anyhow::{Context, Result};
use futures_util::future::LocalBoxFuture;
use rollout::judge::Criteria;
use rollout::probe_verdict::{self, Answers, Attribution, ProbeWindow, Split};
use rollout::{Finding, Subject};
use statrs::distribution::{ContinuousCDF, Normal};

use crate::cli::exit::Exit;
use crate::evidence::probe_call::{InvokeAt, ProbeCall};
use crate::evidence::probe_upload::{Upload, UploadAt, run_id};
use crate::evidence::{Source, Window};

/// Requests due within this long after a step's write are left out of its window: the
/// local gateway sees an alias change within a second, Lambda within a moment; until then
/// the old weights route, and the shortfall test would read that as missing answers.
pub const STEP_GRACE: Duration = Duration::from_secs(2);

/// Starts sending `call` on `config`'s schedule: to `url` with the call's path, or through
/// Lambda's Invoke API of `invoke` (`url` then its endpoint, empty for the SDK's usual one).
/// A bad target is bad input, one that does not answer an error, each worded by `say`, and
/// both said before anything is sent.
pub async fn start_call(
    config: Config,
    call: &ProbeCall,
    url: &str,
    invoke: Option<&InvokeAt>,
    say: impl Fn(&TargetError) -> String,
) -> Result<Running> {
    let spec = call
        .spec()
        .map_err(|e| Exit::BadInput(format!("the probe's request: {e}")))?;
    let endpoint = (!url.is_empty()).then_some(url);
    Ok(match invoke {
        None => {
            let uri = target(url, &call.path).map_err(|e| Exit::BadInput(say(&e)))?;
            reachable(&uri, &say).await?;
            ::probe::start(config, Http::with_request(uri, spec, config.max_in_flight))
        }
        Some(at) => {
            if let Some(e) = endpoint {
                let uri = target(e, "/").map_err(|e| Exit::BadInput(say(&e)))?;
                reachable(&uri, &say).await?;
            }
            let invoke =
                crate::evidence::probe_invoke::Invoke::new(at, call, endpoint, config.timeout)
                    .await;
            ::probe::start(config, invoke)
        }
    })
}

/// Where and how fast the probe sends, and for how long at most.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbePlan {
    /// The stage's base URL: its invoke URL, or `--probe-url`. With `invoke`, the Invoke
    /// endpoint (`--probe-url`, e.g. the local gateway), empty for the SDK's usual one.
    pub url: String,
    /// Invoke the stage's alias through Lambda's Invoke API instead (`--probe-invoke`).
    pub invoke: Option<InvokeAt>,
    /// The function's own probe request, sent under `url` (or as the Invoke event).
    pub call: ProbeCall,
    /// For a function S3 events trigger: upload objects and wait for their summaries
    /// instead of sending `call` (`probe_upload`).
    pub upload: Option<UploadPlan>,
    pub rate: f64,
    /// The whole rollout's bakes and extensions: the schedule is bounded by it, and a probe
    /// still needed after it says so (not enough evidence) rather than running forever.
    pub horizon: Duration,
    pub timeout: Duration,
}

/// An upload probe's buckets, by purpose, and the stage whose variables name them: resolved
/// when the probe starts (at the pre-flight, before any write), so that a stage variable
/// missing stops the run with nothing written.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadPlan {
    pub probe: rollout::UploadProbe,
    pub stage: String,
    pub variables: std::collections::BTreeMap<String, String>,
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
            let running = match &p.upload {
                None => {
                    start_call(config, &p.call, &p.url, p.invoke.as_ref(), say_unreachable).await?
                }
                Some(u) => {
                    let at = UploadAt::resolve(&u.probe, &u.stage, &u.variables, &run_id())
                        .map_err(Exit::BadInput)?;
                    ::probe::start(config, Upload::new(at).await)
                }
            };
            self.live = Some(Live {
                running,
                wall_start: SystemTime::now(),
                stats: p.call.stats(p.rate),
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
            let (criteria, timeout, horizon) =
                (self.criteria, self.plan.timeout, self.plan.horizon);
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
                return Ok(Finding::no_candidate("probe"));
            };
            let from = w
                .step_started
                .duration_since(live.wall_start)
                .unwrap_or_default()
                + STEP_GRACE;
            // Every request due a timeout (and a second for its outcome to be counted)
            // before now has an outcome: those answers are settled.
            let settled = w
                .now
                .duration_since(live.wall_start)
                .unwrap_or_default()
                .saturating_sub(timeout + Duration::from_secs(1));
            let counts = window(&live.stats, from);
            let (candidate, stable) = (candidate.to_string(), subject.stable.to_string());
            let split = Split {
                candidate: &candidate,
                stable: &stable,
                weight: subject.weight.fraction(),
            };
            Ok(probe_verdict::judge(
                &probe_window(&counts, split, settled),
                split,
                &criteria,
                unattributed_estimate(&counts, &candidate, split.weight, &criteria),
                live.ended.then_some(horizon),
            ))
        })
    }
}

/// The window's counts as the judge takes them.
pub fn probe_window(counts: &WindowCounts, split: Split<'_>, settled: Duration) -> ProbeWindow {
    let get = |v: &str| {
        let c = counts.versions.get(v).cloned().unwrap_or_default();
        let Counts {
            requests,
            success,
            timeline,
        } = c;
        Answers {
            requests,
            success,
            timeline,
        }
    };
    ProbeWindow {
        candidate: get(split.candidate),
        stable: get(split.stable),
        unattributed: counts.unattributed,
        unattributed_failed: counts.unattributed_failed,
        settled_s: settled.as_secs_f64(),
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

/// The failures that named no version which the split says were most likely the
/// candidate's, and an interval at the judge's confidence: its expected requests
/// (`w` of all) minus the answers it gave, with the binomial spread of that expectation.
/// The same estimate as the probe's report; shown with the verdict, not tested by it.
pub fn unattributed_estimate(
    counts: &WindowCounts,
    candidate: &str,
    w: f64,
    criteria: &Criteria,
) -> Attribution {
    let failed = counts.unattributed_failed;
    let all = |n| Attribution {
        estimate: n,
        low: n,
        high: n,
    };
    if w >= 1.0 {
        return all(failed);
    }
    if w <= 0.0 || failed == 0 {
        return all(0);
    }
    let total: u64 =
        counts.versions.values().map(|c| c.requests).sum::<u64>() + counts.unattributed;
    let answered = counts.versions.get(candidate).map_or(0, |c| c.requests);
    let z = Normal::standard().inverse_cdf(1.0 - criteria.significance() / 2.0);
    let n = total as f64;
    // The same estimate as the probe's report (`probe::stats::attribute_unattributed`).
    let a = ::probe::stats::attribute_unattributed(w * n, n * w * (1.0 - w), answered, failed, z);
    // The low end rounds down: it is what the candidate is charged beyond doubt.
    Attribution {
        estimate: a.estimate.round() as u64,
        low: a.low.floor() as u64,
        high: a.high.ceil() as u64,
    }
}

/// A connection to the target must open within this before the run starts.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// A target that does not answer is said before the run, not as a run of connect errors.
/// `say` words the error for the caller; an invalid target is bad input (exit 2), one that
/// does not answer an error (exit 1). Also `promote probe`'s check.
pub(crate) async fn reachable(
    uri: &::probe::http::Uri,
    say: impl Fn(&TargetError) -> String,
) -> Result<()> {
    check_reachable(uri, REACH_TIMEOUT)
        .await
        .map_err(|e| match e {
            TargetError::Invalid { .. } => anyhow::Error::new(Exit::BadInput(say(&e))),
            TargetError::Unreachable { .. } => anyhow::anyhow!("{}", say(&e)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn counts(c: (u64, u64), s: (u64, u64), unattributed_failed: u64) -> WindowCounts {
        let v = |(requests, success): (u64, u64)| Counts {
            requests,
            success,
            timeline: (0..requests).map(|i| (i as f64, 3.0)).collect(),
        };
        WindowCounts {
            versions: BTreeMap::from([("4".to_string(), v(c)), ("3".to_string(), v(s))]),
            unattributed: unattributed_failed,
            unattributed_failed,
        }
    }

    const SPLIT: Split<'static> = Split {
        candidate: "4",
        stable: "3",
        weight: 0.1,
    };

    #[test]
    fn the_window_reaches_the_judge_as_counted() {
        let c = counts((160, 150), (1800, 1800), 40);
        let w = probe_window(&c, SPLIT, Duration::from_secs(7));
        assert_eq!((w.candidate.requests, w.candidate.success), (160, 150));
        assert_eq!(w.stable.timeline.len(), 1800);
        assert_eq!((w.unattributed, w.unattributed_failed), (40, 40));
        assert_eq!(w.settled_s, 7.0);
        // A version that gave no answer is an empty side, not an error.
        let other = Split {
            stable: "2",
            ..SPLIT
        };
        assert_eq!(
            probe_window(&c, other, Duration::ZERO).stable,
            Answers::default()
        );
    }

    #[test]
    fn the_estimate_of_the_candidate_s_unattributed_failures() {
        // The stable version's 502s, and the candidate a standard deviation under its share
        // by chance: the point estimate charges it all ten, the interval's low end none.
        let c = counts((90, 90), (900, 900), 10);
        let a = unattributed_estimate(&c, "4", 0.1, &Criteria::default());
        assert_eq!((a.estimate, a.low), (10, 0), "{a:?}");
        // Serving alone, every one is its own; with no split known, none.
        assert_eq!(
            unattributed_estimate(&c, "4", 1.0, &Criteria::default()).low,
            10
        );
        assert_eq!(
            unattributed_estimate(&c, "4", 0.0, &Criteria::default()).high,
            0
        );
    }
}
