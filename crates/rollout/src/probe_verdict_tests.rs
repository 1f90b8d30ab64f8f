use super::*;

const SPLIT: Split<'static> = Split {
    candidate: "4",
    stable: "3",
    weight: 0.1,
};

/// `(requests, success)` per version at 3 ms each, every answer settled.
fn window(c: (u64, u64), s: (u64, u64), unattributed_failed: u64) -> ProbeWindow {
    let v = |(requests, success): (u64, u64), offset: f64| Answers {
        requests,
        success,
        timeline: (0..requests).map(|i| (i as f64 + offset, 3.0)).collect(),
    };
    ProbeWindow {
        candidate: v(c, 0.0),
        stable: v(s, 0.5),
        unattributed: unattributed_failed,
        unattributed_failed,
        settled_s: f64::MAX,
    }
}

fn verdict(c: (u64, u64), s: (u64, u64), u: u64) -> Verdict {
    judge(
        &window(c, s, u),
        SPLIT,
        &Criteria::default(),
        Attribution::default(),
        None,
    )
    .verdict
}

#[test]
fn a_candidate_whose_errors_name_it_fails_on_the_judges_test() {
    // 5 s at 100/s: 50 for the candidate, 10 of them 500s from its own code.
    let v = verdict((50, 40), (450, 450), 0);
    assert!(
        matches!(&v, Verdict::Fail(r) if r.starts_with("probe judge: errors") && r.contains("sequential mixture test")),
        "{v}"
    );
    // Overwhelming evidence fails at the first look with the significance shared three
    // ways: 5 errors in the candidate's first 20 answers against none in 200.
    assert!(verdict((20, 15), (200, 200), 0).is_fail());
}

#[test]
fn a_crashing_candidate_falls_short_of_its_share_of_answers() {
    // 60 s at 100/s: the candidate's 600 requests, 120 of them API Gateway 502s.
    let v = verdict((480, 480), (5400, 5400), 120);
    assert!(
        matches!(&v, Verdict::Fail(r) if r.contains("named no version: they came from it") && r.contains("p = ")),
        "{v}"
    );
    let f = judge(
        &window((480, 480), (5400, 5400), 120),
        SPLIT,
        &Criteria::default(),
        Attribution::default(),
        None,
    );
    assert!(
        f.summary
            .contains("; fail (shortfall); 120 failures named no version"),
        "{}",
        f.summary
    );
    assert_eq!(f.numbers["decision"], "fail");
    assert!(
        f.numbers["unattributed"]["shortfall_test"]["ratio"]
            .as_f64()
            .unwrap()
            > 300.0
    );
}

#[test]
fn unattributed_failures_of_the_split_as_a_whole_do_not_fail_an_identical_candidate() {
    // The stable version's 502s, and the candidate a standard deviation under its share by
    // chance.
    let f = judge(
        &window((90, 90), (900, 900), 10),
        SPLIT,
        &Criteria::default(),
        Attribution {
            estimate: 10,
            low: 0,
            high: 10,
        },
        None,
    );
    assert!(!f.verdict.is_fail(), "{}", f.verdict);
    assert_eq!(f.numbers["unattributed"]["failed"], 10);
    assert_eq!(f.numbers["unattributed"]["candidate_estimate"], 10);
    assert!(
        f.summary
            .contains("10 failures named no version (estimated 10")
    );
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
fn the_candidate_alone_owns_every_failure() {
    let w = window((150, 150), (0, 0), 50);
    let alone = Split {
        weight: 1.0,
        ..SPLIT
    };
    let f = judge(
        &w,
        alone,
        &Criteria::default(),
        Attribution::default(),
        None,
    );
    assert!(
        matches!(&f.verdict, Verdict::Fail(r) if r.contains("ceiling") && r.contains("(50/200)")),
        "{}",
        f.verdict
    );
}

#[test]
fn a_schedule_that_ended_is_not_enough_evidence_but_a_fail_still_fails() {
    let ended = Some(Duration::from_secs(600));
    let judged = |c, s| {
        judge(
            &window(c, s, 0),
            SPLIT,
            &Criteria::default(),
            Attribution::default(),
            ended,
        )
        .verdict
    };
    assert!(
        matches!(judged((100, 100), (900, 900)), Verdict::Inconclusive(r) if r.starts_with("the probe's schedule ended (10m")),
    );
    assert!(judged((50, 40), (450, 450)).is_fail());
}

#[test]
fn pairs_are_concurrent_settled_and_only_ever_added() {
    // Candidate answers at 0, 1, 2, 3 s; stable ones at 0.5, 0.6, 2.5, 9 s.
    let c = [(0.0, 50.0), (1.0, 10.0), (2.0, 50.0), (3.0, 50.0)];
    let s = [(0.5, 10.0), (0.6, 10.0), (2.5, 10.0), (9.0, 10.0)];
    // 0 -> 0.5 (worse), 1 -> 2.5 (not: 10 against 10), 2 -> 9 (worse), 3 -> none.
    assert_eq!(pairs(&c, &s, 10.0, 0.0), Pairs { pairs: 3, worse: 2 });
    // Before 9 s is settled, the candidate's third answer waits for its partner.
    assert_eq!(pairs(&c, &s, 5.0, 0.0), Pairs { pairs: 2, worse: 1 });
    // The margin: 50 ms is within 10 ms × (1 + 4) + 5 ms.
    assert_eq!(pairs(&c, &s, 10.0, 4.0), Pairs { pairs: 3, worse: 0 });
    // A share of worse pairs at 1/2 is no evidence; all of 30 is.
    assert!(
        latency_test(
            Pairs {
                pairs: 30,
                worse: 15
            },
            0.01
        )
        .ratio
            < 1.0
    );
    assert!(
        latency_test(
            Pairs {
                pairs: 30,
                worse: 30
            },
            0.01
        )
        .rejects()
    );
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut fastrand::Rng) -> f64 {
    let (u, v) = (rng.f64().max(1e-300), rng.f64());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// One bake of the probe at `rate` requests a second for `seconds`, the candidate at 10%,
/// looked at every `look_every` seconds: `Some(answers)` when the probe judge failed the candidate, after
/// that many candidate answers. Latency is log-normal around `median_ms` (σ 0.25) times a
/// load that drifts through the bake for both versions alike; the candidate is `slower_ms`
/// slower; both crash (a 502 naming no version) on `crash` of their requests, the
/// candidate on `crash_candidate`.
struct Bake {
    rate: u64,
    seconds: u64,
    median_ms: f64,
    slower_ms: f64,
    crash: f64,
    crash_candidate: f64,
    look_every: u64,
}

fn bake(rng: &mut fastrand::Rng, b: &Bake, criteria: &Criteria) -> Option<u64> {
    let mut w = ProbeWindow::default();
    let phase = rng.f64() * std::f64::consts::TAU;
    for second in 0..b.seconds {
        for i in 0..b.rate {
            let t = second as f64 + i as f64 / b.rate as f64;
            let load = 1.0 + 0.5 * (t / 20.0 + phase).sin();
            let ms = b.median_ms * load * (0.25 * normal(rng)).exp();
            let candidate = rng.f64() < SPLIT.weight;
            let crash = if candidate {
                b.crash_candidate
            } else {
                b.crash
            };
            if rng.f64() < crash {
                w.unattributed += 1;
                w.unattributed_failed += 1;
                continue;
            }
            let a = if candidate {
                &mut w.candidate
            } else {
                &mut w.stable
            };
            a.requests += 1;
            a.success += 1;
            a.timeline
                .push((t, ms + if candidate { b.slower_ms } else { 0.0 }));
        }
        if second % b.look_every != 0 {
            continue;
        }
        // Answers due up to a second ago are settled.
        w.settled_s = second as f64;
        let f = judge(&w, SPLIT, criteria, Attribution::default(), None);
        if f.verdict.is_fail() {
            return Some(w.candidate.requests);
        }
    }
    None
}

/// Identical versions, looked at every second of a bake, at the boundary of what the
/// latency test allows (a 2 s function with no tolerance, where the 5 ms slack is nothing
/// and a pair is worse nearly half the time) and crashing alike on 1% of their requests:
/// the share of bakes failed stays within the significance. The significance is set so
/// that each of the three tests gets 1%; 2,000 bakes make a 2% rate fail this (40 expected
/// against at most 20 allowed, 3 standard deviations).
#[test]
fn simulation_identical_versions_are_failed_within_the_significance_however_often_looked_at() {
    let mut rng = fastrand::Rng::with_seed(2026);
    let criteria = Criteria {
        confidence: 0.97,
        latency_tolerance: 0.0,
        ..Criteria::default()
    };
    assert!((shared(&criteria).step_significance() - 0.01).abs() < 1e-12);
    let b = Bake {
        rate: 50,
        seconds: 40,
        median_ms: 2000.0,
        slower_ms: 0.0,
        crash: 0.01,
        crash_candidate: 0.01,
        look_every: 2,
    };
    let runs = 2000;
    let failed = (0..runs)
        .filter(|_| bake(&mut rng, &b, &criteria).is_some())
        .count();
    let rate = failed as f64 / f64::from(runs);
    println!(
        "probe judge A/A, {runs} bakes of 20 looks: {rate:.4} failed (each test's share 0.01)"
    );
    assert!(rate <= 0.01, "{rate}");
}

/// The shortfall test alone, the same way: identical versions crashing alike on 2% of
/// their requests over a longer bake, judged at every second.
#[test]
fn simulation_the_shortfall_test_stays_within_its_share_however_often_looked_at() {
    let mut rng = fastrand::Rng::with_seed(2027);
    let alpha = 0.01;
    let runs = 2000;
    let mut failed = 0;
    for _ in 0..runs {
        let (mut c, mut s) = (0, 0);
        for _ in 0..120 {
            for _ in 0..50 {
                let crash = rng.f64() < 0.02;
                match (crash, rng.f64() < 0.1) {
                    (true, _) => {}
                    (false, true) => c += 1,
                    (false, false) => s += 1,
                }
            }
            if shortfall(c, s, 0.1, alpha).is_some_and(|e| e.rejects()) {
                failed += 1;
                break;
            }
        }
    }
    let rate = f64::from(failed) / f64::from(runs);
    println!("shortfall A/A, {runs} bakes of 120 looks: {rate:.4} failed at alpha {alpha}");
    assert!(rate <= alpha, "{rate}");
}

#[test]
fn a_candidate_10_ms_slower_on_40_ms_is_caught_with_a_5_ms_margin_and_not_within_the_default() {
    let mut rng = fastrand::Rng::with_seed(7);
    let b = Bake {
        rate: 50,
        seconds: 120,
        median_ms: 40.0,
        slower_ms: 10.0,
        crash: 0.0,
        crash_candidate: 0.0,
        look_every: 1,
    };
    let tight = Criteria {
        latency_tolerance: 0.0,
        ..Criteria::default()
    };
    let mut caught: Vec<u64> = (0..50).filter_map(|_| bake(&mut rng, &b, &tight)).collect();
    caught.sort_unstable();
    println!(
        "10 ms slower on 40 ms, margin 5 ms: caught in {} of 50 bakes, median after {} candidate answers",
        caught.len(),
        caught.get(caught.len() / 2).copied().unwrap_or(0)
    );
    assert!(caught.len() >= 48, "{caught:?}");
    // Within the default margin (50% + 5 ms) it is no regression that matters.
    let default = (0..20)
        .filter(|_| bake(&mut rng, &b, &Criteria::default()).is_some())
        .count();
    assert_eq!(default, 0);
    // 100 ms slower is caught with the default margin.
    let slow = Bake {
        slower_ms: 100.0,
        ..b
    };
    let f = bake(&mut rng, &slow, &Criteria::default());
    assert!(f.is_some_and(|n| n < 100), "{f:?}");
}

#[test]
fn a_candidate_crashing_on_a_fifth_of_its_requests_is_caught_by_the_shortfall_test() {
    let mut rng = fastrand::Rng::with_seed(8);
    // As the gateway's test of the probe runs it: 100 requests a second, a 120 s bake. The
    // sequential shortfall test needs about twice the answers of the fixed-sample binomial
    // test it replaced (a median of about 30 s here, against 15 s): the price of a
    // false-failure rate that holds at every poll.
    let b = Bake {
        rate: 100,
        seconds: 120,
        median_ms: 40.0,
        slower_ms: 0.0,
        crash: 0.0,
        crash_candidate: 0.2,
        look_every: 1,
    };
    let mut caught: Vec<u64> = (0..50)
        .filter_map(|_| bake(&mut rng, &b, &Criteria::default()))
        .collect();
    caught.sort_unstable();
    let median = caught.get(caught.len() / 2).copied().unwrap_or(0);
    println!(
        "crashing on 20%, 10% split, 100/s: caught in {} of 50 bakes of 120 s, median after {median} candidate answers (about {} s), the slowest after {} (about {} s)",
        caught.len(),
        median / 8,
        caught.last().copied().unwrap_or(0),
        caught.last().copied().unwrap_or(0) / 8
    );
    assert!(caught.len() >= 49, "{caught:?}");
}
