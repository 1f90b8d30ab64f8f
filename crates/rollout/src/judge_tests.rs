use super::*;

fn crit() -> Criteria {
    Criteria::default()
}

fn s(requests: u64, errors: u64) -> Sample {
    Sample::new(requests, errors)
}

#[derive(Debug, PartialEq)]
enum Want {
    Pass,
    Fail(&'static str),
    NotEnough(&'static str),
}

#[test]
fn boundary_cases() {
    // Defaults: confidence 0.99 (alpha 0.01), min_requests 100, ceiling 5%, latency +50%.
    let cases: Vec<(&str, Sample, Sample, Want)> = vec![
        (
            "no traffic at all",
            s(0, 0),
            s(0, 0),
            Want::NotEnough("no request reached the candidate"),
        ),
        (
            "stable traffic only",
            s(0, 0),
            s(1000, 5),
            Want::NotEnough("0 of the 100"),
        ),
        (
            "candidate-only errors",
            s(100, 8),
            s(900, 0),
            Want::Fail(
                "sequential mixture test on its share of the errors (8 of 8 against its 10% share",
            ),
        ),
        (
            "candidate-only errors, tiny sample",
            s(5, 1),
            s(45, 0),
            Want::NotEnough("5 of the 100"),
        ),
        (
            "one error on the first request vs 50 clean",
            s(1, 1),
            s(50, 0),
            Want::NotEnough("1 of the 100"),
        ),
        (
            "strong evidence before min_requests",
            s(20, 5),
            s(200, 0),
            Want::Fail("likelihood ratio"),
        ),
        ("stable-only errors", s(100, 0), s(900, 50), Want::Pass),
        (
            "stable much worse, candidate clean",
            s(150, 1),
            s(1350, 200),
            Want::Pass,
        ),
        (
            "both equally bad, under the ceiling",
            s(100, 3),
            s(900, 27),
            Want::Pass,
        ),
        (
            // At 200 requests 10% against a 5% ceiling is not yet enough for a test that
            // may be read at every poll; at 1,000 it is.
            "both equally bad, over the ceiling, not yet significant",
            s(200, 20),
            s(1800, 180),
            Want::NotEnough("above max_error_rate 5.0% but not significantly"),
        ),
        (
            "both equally bad, over the ceiling",
            s(1000, 100),
            s(9000, 900),
            Want::Fail(
                "above the ceiling max_error_rate 5.0%: sequential mixture test against the ceiling, likelihood ratio",
            ),
        ),
        (
            "over the ceiling, tiny, not significant",
            s(10, 1),
            s(90, 1),
            Want::NotEnough("10 of the 100"),
        ),
        (
            "over the ceiling, tiny, significant",
            s(10, 6),
            s(0, 0),
            Want::Fail("against the ceiling"),
        ),
        (
            "over the ceiling past min_requests, not significant",
            s(100, 8),
            s(0, 0),
            Want::NotEnough("above max_error_rate 5.0% but not significantly"),
        ),
        (
            "one request short of min_requests",
            s(99, 0),
            s(891, 0),
            Want::NotEnough("99 of the 100"),
        ),
        ("exactly min_requests", s(100, 0), s(900, 0), Want::Pass),
        (
            "no stable traffic (after the 100% step), clean",
            s(500, 1),
            s(0, 0),
            Want::Pass,
        ),
        (
            "no stable traffic, over the ceiling",
            s(500, 50),
            s(0, 0),
            Want::Fail("ceiling"),
        ),
        (
            "errors reported above requests are clamped",
            s(10, 12),
            s(100, 0),
            Want::Fail("100% (10/10)"),
        ),
    ];
    for (name, c, st, want) in cases {
        let j = judge(c, st, &crit());
        let got = match &j.decision {
            Verdict::Pass => Want::Pass,
            Verdict::Fail(r) => {
                let Want::Fail(w) = want else {
                    panic!("{name}: want {want:?}, got fail: {r}")
                };
                assert!(r.contains(w), "{name}: {r}");
                Want::Fail(w)
            }
            Verdict::Inconclusive(r) => {
                let Want::NotEnough(w) = want else {
                    panic!("{name}: want {want:?}, got not enough: {r}")
                };
                assert!(r.contains(w), "{name}: {r}");
                Want::NotEnough(w)
            }
        };
        assert_eq!(got, want, "{name}: {}", j.summary());
        assert!(j.candidate.error_rate() <= 1.0, "{name}");
    }
}

#[test]
fn latency_only() {
    let c = |ms: f64| s(200, 0).with_latency(ms);
    let st = |ms: f64| s(1800, 0).with_latency(ms);
    let cases = [
        ("3x slower", c(300.0), st(100.0), false),
        ("within 50% + 5 ms", c(155.0), st(100.0), true),
        ("just over the limit", c(156.0), st(100.0), false),
        (
            "double, but 2 ms on 1 ms: timer noise",
            c(2.0),
            st(1.0),
            true,
        ),
        ("faster", c(50.0), st(100.0), true),
    ];
    for (name, c, st, pass) in cases {
        let j = judge(c, st, &crit());
        assert_eq!(
            j.decision == Verdict::Pass,
            pass,
            "{name}: {:?}",
            j.decision
        );
        if !pass {
            let Verdict::Fail(r) = &j.decision else {
                unreachable!()
            };
            assert!(
                r.contains("p99 latency") && r.contains("latency_tolerance 50%"),
                "{r}"
            );
        }
    }
    // Below min_requests a small sample's p99 is not judged; a missing figure is not a fail.
    let j = judge(s(50, 0).with_latency(900.0), st(100.0), &crit());
    assert!(
        matches!(j.decision, Verdict::Inconclusive(_)),
        "{:?}",
        j.decision
    );
    let j = judge(s(200, 0), st(100.0), &crit());
    assert_eq!(j.decision, Verdict::Pass);
}

#[test]
fn the_mixture_ratio_matches_its_closed_forms() {
    // Every one of k errors on the candidate: the integral of θ^k over (θ0, 1), over
    // (1 - θ0) θ0^k.
    for (k, t0) in [(1u64, 0.5f64), (5, 20.0 / 220.0), (3, 0.1)] {
        let want =
            (1.0 - t0.powi(k as i32 + 1)) / ((k + 1) as f64 * (1.0 - t0) * t0.powi(k as i32));
        let got = mixture_ratio_above(k, k, t0);
        assert!((got / want - 1.0).abs() < 1e-9, "{k} {t0}: {got} vs {want}");
    }
    // No error at all in k trials: (1 - θ0)^(k+1) / (k+1) over (1 - θ0)^(k+1), i.e. 1/(k+1).
    assert!((mixture_ratio_above(0, 9, 0.3) - 0.1).abs() < 1e-12);
    // The mirror image: no error in n requests against a ceiling c: (1 - (1-c)^(n+1)) /
    // ((n+1) c (1-c)^n).
    let (n, c) = (200u64, 0.05f64);
    let want =
        (1.0 - (1.0 - c).powi(n as i32 + 1)) / ((n + 1) as f64 * c * (1.0 - c).powi(n as i32));
    let got = mixture_ratio_below(0, n, c);
    assert!((got / want - 1.0).abs() < 1e-9, "{got} vs {want}");
    // Evidence reads as its p-value and the share of the way to the threshold.
    let e = Evidence {
        ratio: 10.0,
        alpha: 0.01,
    };
    assert!((e.p_value() - 0.1).abs() < 1e-12 && (e.spent() - 0.5).abs() < 1e-12);
    assert!(
        !e.rejects()
            && Evidence {
                ratio: 100.0,
                alpha: 0.01
            }
            .rejects()
    );
}

#[test]
fn numbers_and_summary_carry_both_versions_and_the_p_value() {
    let j = judge(
        s(100, 8).with_latency(120.0),
        s(900, 2).with_latency(100.0),
        &crit(),
    );
    let n = j.numbers();
    assert_eq!(n["candidate"]["requests"], 100);
    assert_eq!(n["candidate"]["errors"], 8);
    assert_eq!(n["stable"]["requests"], 900);
    assert_eq!(n["stable"]["latency_ms"], 100.0);
    assert_eq!(n["decision"], "fail");
    let p = n["p_value"].as_f64().unwrap();
    assert!(p < 0.01, "{p}");
    assert_eq!(
        n["error_test"]["threshold"].as_f64().unwrap().round(),
        100.0
    );
    assert_eq!(n["error_test"]["spent"], 1.0);
    let line = j.summary();
    assert!(
        line.starts_with("candidate 8.0% (8/100) errors, p99 120 ms; stable 0.22% (2/900) errors, p99 100 ms; p = "),
        "{line}"
    );
    assert!(line.ends_with("; fail"), "{line}");
    assert!(
        matches!(j.verdict(), Verdict::Fail(r) if r.starts_with("metrics judge: errors: the candidate's error rate 8.0%"))
    );
}

/// The number of successes in `n` Bernoulli(p) trials, by skipping geometric gaps between
/// successes (`O(np)` draws instead of `n`, which keeps 100,000 trials at a few seconds in the
/// dev profile).
fn binomial(rng: &mut fastrand::Rng, n: u64, p: f64) -> u64 {
    let log_q = (1.0 - p).ln();
    let (mut k, mut at) = (0u64, 0u64);
    loop {
        // 1 - f64() is in (0, 1], so the log is finite.
        let gap = ((1.0 - rng.f64()).ln() / log_q).floor() as u64;
        at = at.saturating_add(gap).saturating_add(1);
        if at > n {
            return k;
        }
        k += 1;
    }
}

/// Share of `trials` judged a fail, candidate and stable drawn at their own error rates.
fn fail_share(seed: u64, trials: u32, n: (u64, u64), rates: (f64, f64), c: &Criteria) -> f64 {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut fails = 0u32;
    for _ in 0..trials {
        let cand = s(n.0, binomial(&mut rng, n.0, rates.0));
        let stab = s(n.1, binomial(&mut rng, n.1, rates.1));
        if matches!(judge(cand, stab, c).decision, Verdict::Fail(_)) {
            fails += 1;
        }
    }
    f64::from(fails) / f64::from(trials)
}

/// A/A: identical versions, 10% candidate at `min_requests` (100 vs 900 requests), 10,000
/// seeded trials per base error rate. The judge must wrongly fail at most `1 - confidence`
/// of them. A/B: a candidate with 5x the stable version's error rate, same traffic: the
/// detection rate is printed (`cargo test -p rollout judge -- --nocapture`).
#[test]
fn simulation_a_a_false_failures_within_significance_and_a_b_detection() {
    const TRIALS: u32 = 10_000;
    for confidence in [0.99, 0.95] {
        let c = Criteria {
            confidence,
            ..crit()
        };
        let alpha = c.significance();
        let n = (c.min_requests, c.min_requests * 9);
        let mut a_a = Vec::new();
        for (i, base) in [0.002, 0.01, 0.03].into_iter().enumerate() {
            let share = fail_share(7 + i as u64, TRIALS, n, (base, base), &c);
            a_a.push(share);
            println!(
                "A/A confidence {confidence}: base error rate {:.1}%, {} vs {} requests, {TRIALS} trials: false failures {:.2}% (significance {:.0}%)",
                base * 100.0,
                n.0,
                n.1,
                share * 100.0,
                alpha * 100.0
            );
            assert!(
                share <= alpha,
                "A/A false-failure rate {share} above {alpha}"
            );
        }
        for (i, base) in [0.002, 0.01].into_iter().enumerate() {
            let share = fail_share(101 + i as u64, TRIALS, n, (base * 5.0, base), &c);
            println!(
                "A/B confidence {confidence}: candidate {:.1}% vs stable {:.1}% errors (5x), {} vs {} requests, {TRIALS} trials: detected {:.1}%",
                base * 500.0,
                base * 100.0,
                n.0,
                n.1,
                share * 100.0
            );
            // An anytime-valid test pays for its looks at a single one: at these counts it
            // catches 5x the error rate less often than a fixed-sample test would, but still
            // far more often than it fails an identical candidate.
            assert!(
                share > 0.02 && share > 5.0 * a_a[i],
                "5x the error rate must be caught more often than chance: {share}"
            );
        }
    }
}

/// A bake judges at every poll over a growing window. The Fisher test this judge used before
/// spent some of its significance at each look (3.4% of A/A bakes failed over these ten
/// looks at a confidence of 0.99); the sequential test does not.
#[test]
fn simulation_sequential_looks_stay_within_significance() {
    const TRIALS: u32 = 10_000;
    const LOOKS: u64 = 10;
    let c = crit();
    let (base, n_c, n_s) = (0.01, 20u64, 180u64); // per look: 10 looks reach 200 vs 1800
    let mut rng = fastrand::Rng::with_seed(2024);
    let mut fails = 0u32;
    for _ in 0..TRIALS {
        let (mut cand, mut stab) = (s(0, 0), s(0, 0));
        for _ in 0..LOOKS {
            cand.requests += n_c;
            cand.errors += binomial(&mut rng, n_c, base);
            stab.requests += n_s;
            stab.errors += binomial(&mut rng, n_s, base);
            if matches!(judge(cand, stab, &c).decision, Verdict::Fail(_)) {
                fails += 1;
                break;
            }
        }
    }
    let share = f64::from(fails) / f64::from(TRIALS);
    println!(
        "A/A over a bake of {LOOKS} looks ({n_c} more candidate requests each, base rate 1%, confidence {}): {:.2}% of bakes wrongly fail",
        c.confidence,
        share * 100.0
    );
    assert!(share <= c.significance(), "{share}");
}

#[test]
fn a_clear_failure_fails_at_the_first_look_even_with_the_plan_s_share() {
    // 5 errors in the first 20 candidate requests against none in 200, with the significance
    // shared over the live plan's three steps: a ratio in the tens of thousands.
    let j = judge(s(20, 5), s(200, 0), &crit().for_plan(3));
    let Verdict::Fail(r) = &j.decision else {
        panic!("{:?}", j.decision)
    };
    assert!(
        r.starts_with(
            "errors: the candidate's error rate 25% (5/20) is above the stable version's 0% (0/200)"
        ),
        "{r}"
    );
    assert!(
        r.contains("5 of 5 against its 9.1% share of the requests"),
        "{r}"
    );
    assert!(r.contains("against a threshold of 300"), "{r}");
    assert!(
        r.contains("after 20 candidate and 200 stable requests"),
        "{r}"
    );
    assert!(j.relative.unwrap().ratio > 10_000.0, "{:?}", j.relative);
    // Given period by period, the same counts fail the same way.
    let p = Period {
        candidate: s(20, 5),
        stable: s(200, 0),
    };
    assert!(matches!(
        judge_periods(&[p], &crit().for_plan(3)).decision,
        Verdict::Fail(_)
    ));
    // One error in the first request is not (a ratio of 5 at most).
    assert!(matches!(
        judge(s(1, 1), s(10, 0), &crit()).decision,
        Verdict::Inconclusive(_)
    ));
}

fn period(c: (u64, u64, f64), st: (u64, u64, f64)) -> Period {
    Period {
        candidate: s(c.0, c.1).with_latency(c.2),
        stable: s(st.0, st.1).with_latency(st.2),
    }
}

#[test]
fn latency_over_periods_fails_only_when_slow_persists() {
    let fast = period((60, 0, 100.0), (540, 0, 100.0));
    let slow = period((60, 0, 300.0), (540, 0, 100.0));
    let fails = |ps: &[Period]| judge_periods(ps, &crit()).decision;
    // Two slow periods of two: the window is slow, but not yet in three periods.
    assert_eq!(fails(&[slow, slow]), Verdict::Pass);
    // Three of three: fails, and the words say how many periods.
    let Verdict::Fail(r) = fails(&[slow, slow, slow]) else {
        panic!()
    };
    assert!(
        r.starts_with(
            "latency: the candidate's p99 latency 300 ms is above the stable version's 100 ms"
        ),
        "{r}"
    );
    assert!(
        r.contains("in 3 of 3 periods (at least 3 and more than half needed)"),
        "{r}"
    );
    // One very slow period lifts the window's figure, but one period is not a pattern.
    let spike = period((60, 0, 2000.0), (540, 0, 100.0));
    assert_eq!(fails(&[fast, spike, fast, fast]), Verdict::Pass);
    // Three of six is not more than half.
    assert_eq!(fails(&[slow, slow, slow, fast, fast, fast]), Verdict::Pass);
    // Periods without traffic on both sides do not count either way.
    let empty = Period {
        candidate: s(0, 0),
        stable: s(540, 0).with_latency(100.0),
    };
    assert!(matches!(
        fails(&[slow, empty, slow, empty, slow]),
        Verdict::Fail(_)
    ));
    let j = judge_periods(&[slow, empty, slow], &crit());
    assert_eq!(j.slow_periods, Some((2, 2)));
}

#[test]
fn an_early_pass_needs_requests_errors_below_both_margins_and_latency_within() {
    let c = crit();
    // Nothing yet with fewer than min_requests.
    assert_eq!(judge(s(99, 0), s(891, 0), &c).shown_no_worse(), None);
    // 100 clean requests are not yet shown below a 5% ceiling (the ratio is about 33)...
    assert_eq!(judge(s(100, 0), s(900, 0), &c).shown_no_worse(), None);
    // ...200 are.
    let j = judge(s(200, 0), s(1800, 0), &c);
    let why = j.shown_no_worse().expect("shown no worse");
    assert!(
        why.starts_with("the candidate's error rate 0% (0/200) is shown below max_error_rate 5.0%"),
        "{why}"
    );
    assert!(
        j.summary().ends_with("pass (shown no worse)"),
        "{}",
        j.summary()
    );
    assert_eq!(j.numbers()["shown_no_worse"], why.as_str());
    // No error on the candidate is not enough while the stable version errs: its rate is
    // not yet shown below twice the stable version's.
    assert_eq!(judge(s(300, 0), s(2700, 27), &c).shown_no_worse(), None);
    // With errors, also below twice the stable version's rate: 1% against 1% over 5,000
    // candidate requests is, 1% against 1% over 2,000 is not yet.
    assert_eq!(
        judge(s(2000, 20), s(18_000, 180), &c).shown_no_worse(),
        None
    );
    let j = judge(s(5000, 50), s(45_000, 450), &c);
    assert!(
        j.shown_no_worse()
            .as_deref()
            .unwrap_or("")
            .contains("below 2x the stable version's 1.0% (450/45000)"),
        "{:?}",
        j.shown_no_worse()
    );
    assert_eq!(judge(s(300, 3), s(2700, 27), &c).shown_no_worse(), None);
    // A candidate at three times the stable version's rate (under the ceiling) never is.
    assert_eq!(
        judge(s(5000, 150), s(45_000, 450), &c).shown_no_worse(),
        None
    );
    // Latency beyond the limit (one window, not yet failing as a pattern) is not no worse.
    let slow = judge_periods(&[period((300, 0, 300.0), (2700, 0, 100.0))], &c);
    assert_eq!(slow.decision, Verdict::Pass);
    assert_eq!(slow.shown_no_worse(), None);
}

/// Whole plans of identical versions at 1% errors: a 10% and a 50% step of 300 s with 5 s
/// periods (59 looks each on the growing window) at 20 requests a second, the significance
/// shared over three steps. 2,500 plans: at a true rate of 2% the count would be 50 +- 7,
/// far above the 25 the assertion allows, so the bound cannot pass by luck; the sequential
/// test's own rate is a fraction of a percent. (Latency is left out here: the next test
/// measures its rule.)
#[test]
fn simulation_whole_plans_of_identical_versions_are_rolled_back_at_most_one_percent() {
    const PLANS: u32 = 2_500;
    let c = crit().for_plan(3);
    let mut rng = fastrand::Rng::with_seed(25);
    let mut wrong = 0u32;
    for _ in 0..PLANS {
        let failed = [0.1, 0.5].into_iter().any(|w| {
            let (mut cand, mut stab) = (s(0, 0), s(0, 0));
            (0..59).any(|_| {
                let n_c = binomial(&mut rng, 100, w);
                cand.requests += n_c;
                cand.errors += binomial(&mut rng, n_c, 0.01);
                stab.requests += 100 - n_c;
                stab.errors += binomial(&mut rng, 100 - n_c, 0.01);
                matches!(judge(cand, stab, &c).decision, Verdict::Fail(_))
            })
        });
        wrong += u32::from(failed);
    }
    let share = f64::from(wrong) / f64::from(PLANS);
    println!(
        "A/A whole plans (errors, 5 s periods, 20/s): {wrong} of {PLANS} rolled back ({:.2}%)",
        share * 100.0
    );
    assert!(share <= c.significance(), "{wrong} of {PLANS}");
}

/// The latency rule on identical log-normal versions (median 40 ms, shape 0.5), per-period
/// p99s at 5 requests a second in 5 s periods at a 50% split, where a period's p99 is the
/// slowest of a dozen requests: 1,500 steps of 59 looks. Measured: well under 1%; asserted at
/// most 1% (a 2% rate would give 30 +- 5, not 15).
#[test]
fn simulation_latency_rule_false_failures_on_identical_versions() {
    const STEPS: u32 = 1_500;
    let c = crit().for_plan(3);
    let mut rng = fastrand::Rng::with_seed(26);
    let draw = |rng: &mut fastrand::Rng, n: u64| -> Option<f64> {
        let mut xs: Vec<f64> = (0..n)
            .map(|_| {
                let (u, v) = (1.0 - rng.f64(), rng.f64());
                40.0 * (0.5 * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()).exp()
            })
            .collect();
        xs.sort_by(f64::total_cmp);
        let k = ((n as f64 * 0.99).ceil() as usize).max(1) - 1;
        xs.get(k).copied()
    };
    let mut wrong = 0u32;
    for _ in 0..STEPS {
        let mut periods = Vec::new();
        for _ in 0..59 {
            let n_c = binomial(&mut rng, 25, 0.5);
            let mut cand = s(n_c, 0);
            cand.latency_ms = draw(&mut rng, n_c);
            let mut stab = s(25 - n_c, 0);
            stab.latency_ms = draw(&mut rng, 25 - n_c);
            periods.push(Period {
                candidate: cand,
                stable: stab,
            });
            if matches!(judge_periods(&periods, &c).decision, Verdict::Fail(_)) {
                wrong += 1;
                break;
            }
        }
    }
    let share = f64::from(wrong) / f64::from(STEPS);
    println!(
        "A/A latency rule (5 s periods, 5/s, 50% split): {wrong} of {STEPS} steps failed ({:.2}%)",
        share * 100.0
    );
    assert!(share <= 0.01, "{wrong} of {STEPS}");
}
