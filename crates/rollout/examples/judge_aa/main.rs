//! The judge's false rollbacks and detection times, old and new, on the same simulated
//! traffic (a seeded simulation, not a timed test; `bench/judge_aa.sh` runs it and writes
//! its table into `bench/RESULTS.md`).
//!
//! A whole live plan: 10% and 50% steps of 300 s, both versions at 1% errors and the same
//! log-normal latency (median 40 ms), one look per complete period on the step's growing
//! window (judged one period after it ends, as the metrics source does), per-period p99s
//! (nearest rank) weighted by requests for the window's figure, an end-of-bake extension
//! while the evidence is short (`max_extension`, 300 s), `Criteria::default()` with the
//! significance shared over the shipped live plan's 3 steps. The old judge is the one this
//! release replaces (`old_judge.rs`, kept for this bench only).
//!
//! Usage: `judge_aa [plans] [seed]` (defaults 1000 and 1).

#[path = "old_judge.rs"]
mod old_judge;

use rollout::EvidenceVerdict as Verdict;
use rollout::judge::{self, Criteria, Period, Sample};

/// Log-normal latency: median 40 ms, shape 0.5 (p99 about 128 ms).
const MEDIAN_MS: f64 = 40.0;
const SIGMA: f64 = 0.5;
const ERROR_RATE: f64 = 0.01;
const BAKE_S: u32 = 300;
const EXTENSION_S: u32 = 300;
const STEPS: [f64; 2] = [0.10, 0.50];
/// The shipped live plan judges three steps (10%, 50%, 100%).
const PLAN_STEPS: usize = 3;

#[derive(Clone, Copy)]
struct Version {
    error_rate: f64,
    /// Added to every latency draw, in ms.
    slower_ms: f64,
}

const GOOD: Version = Version {
    error_rate: ERROR_RATE,
    slower_ms: 0.0,
};

fn normal(rng: &mut fastrand::Rng) -> f64 {
    let (u, v) = (1.0 - rng.f64(), rng.f64());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// The nearest-rank p99 of the draws, as a per-period percentile.
fn p99(xs: &mut [f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let k = ((xs.len() as f64 * 0.99).ceil() as usize).clamp(1, xs.len()) - 1;
    let (_, v, _) = xs.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    Some(*v)
}

/// One period of traffic at `rate` requests a second, `weight` of it to the candidate.
fn period(
    rng: &mut fastrand::Rng,
    rate: f64,
    secs: u32,
    weight: f64,
    cand: Version,
    buf: &mut (Vec<f64>, Vec<f64>),
) -> Period {
    let n = (rate * f64::from(secs)).round() as u64;
    buf.0.clear();
    buf.1.clear();
    let (mut c, mut s) = (Sample::default(), Sample::default());
    for _ in 0..n {
        let to_candidate = rng.f64() < weight;
        let v = if to_candidate { cand } else { GOOD };
        let (side, lat) = if to_candidate {
            (&mut c, &mut buf.0)
        } else {
            (&mut s, &mut buf.1)
        };
        side.requests += 1;
        if rng.f64() < v.error_rate {
            side.errors += 1;
        }
        lat.push(MEDIAN_MS * (SIGMA * normal(rng)).exp() + v.slower_ms);
    }
    c.latency_ms = p99(&mut buf.0);
    s.latency_ms = p99(&mut buf.1);
    Period {
        candidate: c,
        stable: s,
    }
}

/// The window's totals as the metrics source sums them for the old judge.
fn totals(periods: &[Period], side: fn(&Period) -> Sample) -> old_judge::Sample {
    let (mut r, mut e, mut w, mut wl) = (0, 0, 0.0, 0.0);
    for p in periods {
        let s = side(p);
        r += s.requests;
        e += s.errors;
        if let Some(l) = s.latency_ms {
            w += s.requests as f64;
            wl += l * s.requests as f64;
        }
    }
    old_judge::Sample {
        requests: r,
        errors: e,
        latency_ms: (w > 0.0).then(|| wl / w),
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum End {
    Passed,
    /// Seconds after the step started, and whether latency (not errors) failed it.
    Failed(u32, bool),
    NoEvidence,
}

/// One step baked by both judges on the same traffic.
fn step(
    rng: &mut fastrand::Rng,
    rate: f64,
    secs: u32,
    weight: f64,
    cand: Version,
    criteria: &Criteria,
) -> (End, End) {
    let old_criteria = old_judge::Criteria::default();
    let last = BAKE_S / secs - 1;
    let max = (BAKE_S + EXTENSION_S) / secs - 1;
    let mut periods = Vec::new();
    let mut buf = (Vec::new(), Vec::new());
    let (mut old, mut new) = (None, None);
    for j in 1..=max {
        periods.push(period(rng, rate, secs, weight, cand, &mut buf));
        let at = (j + 1) * secs;
        if old.is_none() {
            let c = totals(&periods, |p| p.candidate);
            let s = totals(&periods, |p| p.stable);
            old = match old_judge::judge(c, s, &old_criteria).decision {
                old_judge::Decision::Fail(r) => Some(End::Failed(at, r.contains("latency"))),
                old_judge::Decision::Pass if j >= last => Some(End::Passed),
                _ => None,
            };
        }
        if new.is_none() {
            new = match judge::judge_periods(&periods, criteria).decision {
                Verdict::Fail(r) => Some(End::Failed(at, r.starts_with("latency"))),
                Verdict::Pass if j >= last => Some(End::Passed),
                _ => None,
            };
        }
        if old.is_some() && new.is_some() {
            break;
        }
    }
    (
        old.unwrap_or(End::NoEvidence),
        new.unwrap_or(End::NoEvidence),
    )
}

/// Wilson score interval at 95%.
fn wilson(k: u32, n: u32) -> (f64, f64) {
    let (k, n, z) = (f64::from(k), f64::from(n), 1.96);
    let p = k / n;
    let d = 1.0 + z * z / n;
    let c = (p + z * z / (2.0 * n)) / d;
    let h = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / d;
    ((c - h).max(0.0), (c + h).min(1.0))
}

fn rate_cell(k: u32, n: u32) -> String {
    let (lo, hi) = wilson(k, n);
    format!(
        "{:.1}% ({:.1}-{:.1}%)",
        100.0 * f64::from(k) / f64::from(n),
        lo * 100.0,
        hi * 100.0
    )
}

#[derive(Default)]
struct Tally {
    wrong: u32,
    on_latency: u32,
}

impl Tally {
    fn add(&mut self, ends: &[End]) {
        if let Some(End::Failed(_, lat)) = ends.iter().find(|e| matches!(e, End::Failed(..))) {
            self.wrong += 1;
            self.on_latency += u32::from(*lat);
        }
    }
}

fn aa(plans: u32, seed: u64, rate: f64, secs: u32, criteria: &Criteria) -> (Tally, Tally) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut old, mut new) = (Tally::default(), Tally::default());
    for _ in 0..plans {
        let (mut o, mut n) = (Vec::new(), Vec::new());
        for w in STEPS {
            let (a, b) = step(&mut rng, rate, secs, w, GOOD, criteria);
            o.push(a);
            n.push(b);
        }
        // A plan stops at its first failed step; the other judge's later steps still count
        // for it, as each judge would have run its own plan.
        old.add(&o);
        new.add(&n);
    }
    (old, new)
}

/// Detection at the 10% step: median and 90th percentile of the seconds to the fail, and
/// the share detected within the bake and its extension.
fn detection(trials: u32, seed: u64, secs: u32, cand: Version, criteria: &Criteria) -> [String; 2] {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut old, mut new) = (Vec::new(), Vec::new());
    for _ in 0..trials {
        let (a, b) = step(&mut rng, 50.0, secs, 0.10, cand, criteria);
        for (end, times) in [(a, &mut old), (b, &mut new)] {
            if let End::Failed(t, _) = end {
                times.push(t);
            }
        }
    }
    [old, new].map(|mut t| {
        if t.is_empty() {
            return format!("not detected (0 of {trials})");
        }
        t.sort_unstable();
        let q = |f: f64| t[((t.len() as f64 * f).ceil() as usize).clamp(1, t.len()) - 1];
        format!(
            "median {} s, p90 {} s ({} of {trials} detected)",
            q(0.5),
            q(0.9),
            t.len()
        )
    })
}

/// With `analysis.early_pass`: seconds until the new judge shows an identical candidate no
/// worse at `weight`, 50 requests a second (the step's bake otherwise lasts 300 s).
fn early_pass(trials: u32, seed: u64, secs: u32, weight: f64, criteria: &Criteria) -> String {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut times = Vec::new();
    let mut buf = (Vec::new(), Vec::new());
    for _ in 0..trials {
        let mut periods = Vec::new();
        // Looks before the deadline only (the last period is judged at the deadline itself).
        for j in 1..BAKE_S / secs - 1 {
            periods.push(period(&mut rng, 50.0, secs, weight, GOOD, &mut buf));
            let jd = judge::judge_periods(&periods, criteria);
            if jd.shown_no_worse().is_some() {
                times.push((j + 1) * secs);
                break;
            }
            if matches!(jd.decision, Verdict::Fail(_)) {
                break;
            }
        }
    }
    if times.is_empty() {
        return format!("never within the bake (0 of {trials})");
    }
    times.sort_unstable();
    format!(
        "median {} s ({} of {trials} before the {BAKE_S} s bake ended)",
        times[times.len() / 2],
        times.len()
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let plans: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let criteria = Criteria::default().for_plan(PLAN_STEPS);
    println!(
        "### Identical versions: good plans rolled back ({plans} whole plans each, 95% Wilson interval)\n"
    );
    println!(
        "| period | requests/s | old judge | of which latency | new judge | of which latency |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for secs in [60, 5] {
        for rate in [5.0, 20.0, 100.0] {
            let (o, n) = aa(
                plans,
                seed + rate as u64 + u64::from(secs),
                rate,
                secs,
                &criteria,
            );
            println!(
                "| {secs} s | {rate:.0} | {} | {} | {} | {} |",
                rate_cell(o.wrong, plans),
                o.on_latency,
                rate_cell(n.wrong, plans),
                n.on_latency
            );
        }
    }
    let trials = plans.min(1000);
    println!("\n### Detection at the 10% step, 50 requests/s ({trials} trials each)\n");
    println!("| candidate | period | old judge | new judge |");
    println!("| --- | --- | --- | --- |");
    let failing = Version {
        error_rate: 0.20,
        slower_ms: 0.0,
    };
    let slower = Version {
        error_rate: ERROR_RATE,
        slower_ms: 10.0,
    };
    let much_slower = Version {
        error_rate: ERROR_RATE,
        slower_ms: 100.0,
    };
    for (name, cand) in [
        ("20% errors", failing),
        ("10 ms slower", slower),
        ("100 ms slower", much_slower),
    ] {
        for secs in [60, 5] {
            let [o, n] = detection(trials, seed + 7, secs, cand, &criteria);
            println!("| {name} | {secs} s | {o} | {n} |");
        }
    }
    let early = trials.min(300);
    println!(
        "\n### Early passes (analysis.early_pass) of an identical candidate, 50 requests/s ({early} trials each)\n"
    );
    println!("| step | period | ended after |");
    println!("| --- | --- | --- |");
    for w in STEPS {
        for secs in [60, 5] {
            println!(
                "| {:.0}% | {secs} s | {} |",
                w * 100.0,
                early_pass(early, seed + 11, secs, w, &criteria)
            );
        }
    }
    println!(
        "\nLatency: log-normal, median {MEDIAN_MS} ms, shape {SIGMA}; errors {:.0}% on both; steps 10% and 50% of {BAKE_S} s; significance 1 - {} shared over {PLAN_STEPS} steps.",
        ERROR_RATE * 100.0,
        criteria.confidence
    );
}
