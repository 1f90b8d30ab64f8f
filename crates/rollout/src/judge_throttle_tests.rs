//! The judge's relative view of throttles: both versions throttled alike passes, a
//! candidate throttled significantly more fails, over repeated looks.

use super::*;
use crate::evidence::Verdict;

/// `requests` invoked and `throttles` throttled, no errors.
fn t(requests: u64, throttles: u64) -> Sample {
    Sample::new(requests, 0).with_throttles(throttles)
}

#[test]
fn both_versions_throttled_alike_is_no_reason_to_fail() {
    // A stage short of capacity: a fifth of every version's requests throttled, the
    // candidate at 10% of the traffic.
    let j = judge(t(400, 100), t(3600, 900), &Criteria::default());
    assert_eq!(j.decision, Verdict::Pass, "{}", j.summary());
    let e = j.throttles.expect("both versions were throttled");
    assert!(!e.rejects() && e.p_value() > 0.5, "{e:?}");
    assert!(
        j.summary()
            .contains("candidate 0% (0/400) errors, 20% (100/500) throttled"),
        "{}",
        j.summary()
    );
    let n = j.numbers();
    assert_eq!(n["candidate"]["throttles"], 100);
    assert_eq!(n["stable"]["throttle_rate"], 0.2);
    assert!(n["throttle_test"]["p_value"].as_f64().unwrap() > 0.5);
}

#[test]
fn a_candidate_throttled_significantly_more_fails() {
    // 10% of the requests, 60% of the throttles.
    let j = judge(t(400, 60), t(3600, 40), &Criteria::default());
    let Verdict::Fail(why) = &j.decision else {
        panic!("{}", j.summary())
    };
    assert!(
        why.starts_with("throttles: the candidate's throttled share 13% (60/460) is above the stable version's 1.1% (40/3640)"),
        "{why}"
    );
    assert!(
        why.contains("(60 of 100 against its 11% share of the requests)"),
        "{why}"
    );
    assert!(j.verdict().is_fail());
    // Fewer throttles, the same shares: not yet significant, and no reason to hold a pass.
    let j = judge(t(400, 3), t(3600, 2), &Criteria::default());
    assert_eq!(j.decision, Verdict::Pass, "{}", j.summary());
    // A candidate throttled on every request (no invocation at all) still fails.
    let j = judge(t(0, 50), t(900, 0), &Criteria::default());
    assert!(matches!(j.decision, Verdict::Fail(ref w) if w.starts_with("throttles:")));
}

#[test]
fn errors_are_reported_first_and_no_throttles_means_no_test() {
    let bad_both = Sample::new(100, 8).with_throttles(60);
    let j = judge(bad_both, t(900, 0), &Criteria::default());
    assert!(matches!(j.decision, Verdict::Fail(ref w) if w.starts_with("errors:")));
    let j = judge(t(100, 0), t(900, 0), &Criteria::default());
    assert_eq!(j.throttles, None);
    assert!(!j.summary().contains("throttled"), "{}", j.summary());
    // No stable traffic to compare with (after the 100% step): no throttle test either.
    assert_eq!(
        judge(t(100, 40), t(0, 0), &Criteria::default()).throttles,
        None
    );
}

#[test]
fn periods_sum_their_throttles() {
    let p = |c: Sample, s: Sample| Period {
        candidate: c,
        stable: s,
    };
    let j = judge_periods(
        &[p(t(50, 5), t(450, 40)), p(t(50, 0), t(450, 10))],
        &Criteria::default(),
    );
    assert_eq!((j.candidate.throttles, j.stable.throttles), (5, 50));
    assert_eq!(j.decision, Verdict::Pass);
}

/// A/A over a whole bake: identical versions on a stage that throttles 5% of all requests,
/// the candidate at 10%, judged at each of 10 looks as its window grows. The share of
/// bakes the throttle test ever fails must stay within the step's significance, however
/// often it looks (the mixture ratio's guarantee); 5,000 seeded bakes tell 1% from 2%.
#[test]
fn simulation_identical_versions_throttled_alike_stay_within_significance() {
    const BAKES: u32 = 5_000;
    const LOOKS: u32 = 10;
    let c = Criteria::default();
    let mut rng = fastrand::Rng::with_seed(27);
    let mut draw = |n: u64, s: &mut Sample| {
        for _ in 0..n {
            if rng.f64() < 0.05 {
                s.throttles += 1;
            } else {
                s.requests += 1;
            }
        }
    };
    let mut fails = 0u32;
    for _ in 0..BAKES {
        let (mut cand, mut stab) = (Sample::default(), Sample::default());
        for _ in 0..LOOKS {
            draw(20, &mut cand);
            draw(180, &mut stab);
            if judge(cand, stab, &c).verdict().is_fail() {
                fails += 1;
                break;
            }
        }
    }
    let share = f64::from(fails) / f64::from(BAKES);
    println!(
        "A/A throttles over {LOOKS} looks (5% of every request throttled): {:.2}% of bakes wrongly fail",
        share * 100.0
    );
    assert!(share <= c.step_significance(), "{share}");
}

/// A/B: the candidate throttled at 20% where the stable version is at 5% (it holds more
/// than its share of the concurrency, e.g. its own limit): detected within the bake in
/// nearly every run.
#[test]
fn simulation_a_candidate_throttled_four_times_as_often_is_caught() {
    let mut rng = fastrand::Rng::with_seed(28);
    let mut caught = 0;
    for _ in 0..500 {
        let (mut cand, mut stab) = (Sample::default(), Sample::default());
        for _ in 0..200 {
            if rng.f64() < 0.2 {
                cand.throttles += 1;
            } else {
                cand.requests += 1;
            }
        }
        for _ in 0..1800 {
            if rng.f64() < 0.05 {
                stab.throttles += 1;
            } else {
                stab.requests += 1;
            }
        }
        caught += u32::from(judge(cand, stab, &Criteria::default()).verdict().is_fail());
    }
    assert!(caught >= 490, "{caught} of 500");
}
