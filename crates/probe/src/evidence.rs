//! What a probe can tell a canary judge about one window of a bake: per version, the
//! answers that named it (how many, how many succeeded, and each one's due time and
//! latency), and the answers that named none (a crashed function's 502 from API Gateway).
//!
//! Counting only: what the counts mean for the candidate is decided by the canary's judge
//! (`rollout::probe_verdict`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::stats::Stats;

/// One version's answers in the window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Counts {
    pub requests: u64,
    pub success: u64,
    /// Each answer's due time (seconds from the start of the run) and latency in
    /// milliseconds (from its due time), in due order.
    pub timeline: Vec<(f64, f64)>,
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
                c.timeline
                    .push((s.scheduled.as_secs_f64(), s.latency.as_secs_f64() * 1000.0));
            }
            None => {
                out.unattributed += 1;
                out.unattributed_failed += u64::from(!s.success);
            }
        }
    }
    // Answers are recorded as they complete; a slow one after a later fast one.
    for c in out.versions.values_mut() {
        c.timeline.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
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
        assert_eq!(all.versions["4"].timeline[0], (0.05, 2.0));
        // The second half only: requests due from 5 s on.
        let half = window(&s, Duration::from_secs(5));
        assert_eq!(half.versions["4"].requests, 50);
        assert_eq!(half.unattributed, 10);
    }

    #[test]
    fn the_timeline_is_in_due_order_whatever_order_the_answers_came_in() {
        let mut s = Stats::new(100.0);
        // Due at 20 ms and answered fast, then the one due at 0 that took 500 ms.
        record(&mut s, 2, 200, Some("4"), 1);
        record(&mut s, 0, 200, Some("4"), 500);
        let w = window(&s, Duration::ZERO);
        assert_eq!(w.versions["4"].timeline, vec![(0.0, 500.0), (0.02, 1.0)]);
    }
}
