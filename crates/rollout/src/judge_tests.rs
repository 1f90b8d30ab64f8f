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
            Want::Fail("Fisher exact test p ="),
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
            Want::Fail("Fisher exact test"),
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
            "both equally bad, over the ceiling",
            s(200, 20),
            s(1800, 180),
            Want::Fail("above the ceiling max_error_rate 5.0%: one-sided binomial test p ="),
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
            Want::Fail("binomial test"),
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
            Decision::Pass => Want::Pass,
            Decision::Fail(r) => {
                let Want::Fail(w) = want else {
                    panic!("{name}: want {want:?}, got fail: {r}")
                };
                assert!(r.contains(w), "{name}: {r}");
                Want::Fail(w)
            }
            Decision::NotEnough(r) => {
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
            j.decision == Decision::Pass,
            pass,
            "{name}: {:?}",
            j.decision
        );
        if !pass {
            let Decision::Fail(r) = &j.decision else {
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
        matches!(j.decision, Decision::NotEnough(_)),
        "{:?}",
        j.decision
    );
    let j = judge(s(200, 0), st(100.0), &crit());
    assert_eq!(j.decision, Decision::Pass);
}

#[test]
fn fisher_matches_the_textbook_tea_tasting_table() {
    // Fisher's lady tasting tea: 3 of 4 right in each row, one-sided p = 17/70.
    let p = fisher_one_sided(s(4, 3), s(4, 1));
    assert!((p - 17.0 / 70.0).abs() < 1e-12, "{p}");
    // All the errors on the only candidate request out of 101: p = 1/101.
    let p = fisher_one_sided(s(1, 1), s(100, 0));
    assert!((p - 1.0 / 101.0).abs() < 1e-12, "{p}");
    assert_eq!(fisher_one_sided(s(100, 0), s(900, 50)), 1.0);
    // P(X >= 1) for Bin(10, 0.05) = 1 - 0.95^10.
    let p = binomial_above(s(10, 1), 0.05);
    assert!((p - (1.0 - 0.95f64.powi(10))).abs() < 1e-9, "{p}");
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
    let line = j.summary();
    assert!(
        line.starts_with("candidate 8.0% (8/100) errors, p99 120 ms; stable 0.22% (2/900) errors, p99 100 ms; p = "),
        "{line}"
    );
    assert!(line.ends_with("; fail"), "{line}");
    assert!(
        matches!(j.verdict(), Verdict::Fail(r) if r.starts_with("metrics judge: the candidate's error rate 8.0%"))
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
        if matches!(judge(cand, stab, c).decision, Decision::Fail(_)) {
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
        for (i, base) in [0.002, 0.01, 0.03].into_iter().enumerate() {
            let share = fail_share(7 + i as u64, TRIALS, n, (base, base), &c);
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
            assert!(
                share > 2.0 * alpha,
                "5x the error rate must be caught more often than chance: {share}"
            );
        }
    }
}

/// A bake judges at every poll over a growing window; each look spends some of the
/// significance. Printed, not asserted: it is why the default confidence is 0.99.
#[test]
fn simulation_sequential_looks_are_reported() {
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
            if matches!(judge(cand, stab, &c).decision, Decision::Fail(_)) {
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
    assert!(share < 0.05, "{share}");
}
