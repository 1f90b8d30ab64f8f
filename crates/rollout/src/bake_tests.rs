//! The bake on tables of cases in virtual time: every input carries the instant (seconds
//! since the bake started) it was seen at; no runtime, no clock.

use super::*;

const S: fn(u64) -> Duration = Duration::from_secs;

fn policy(bake: u64, poll: u64) -> Policy {
    Policy {
        bake: S(bake),
        poll: S(poll),
        max_extension: S(30),
        on_no_evidence: OnNoEvidence::Hold,
        on_unreadable: OnUnreadable::Rollback,
        max_read_failures: 3,
        early_pass: false,
        stage: "live".into(),
    }
}

/// Inputs at their instants (seconds since the bake started).
type Script = Vec<(u64, Input)>;

fn pass() -> Input {
    Input::Read(Verdict::Pass)
}
fn thin() -> Input {
    Input::Read(Verdict::Inconclusive("12 of 50 requests".into()))
}
fn bad() -> Input {
    Input::Read(Verdict::Fail("alarm x is ALARM".into()))
}
fn err() -> Input {
    Input::ReadFailed("HTTP 500".into())
}

/// What the executor would do with this bake: feed the inputs at their instants and keep
/// every answer.
fn drive(bake: &mut Bake, script: &[(u64, Input)]) -> Vec<Next> {
    script
        .iter()
        .map(|(at, input)| bake.on(S(*at), input.clone()))
        .collect()
}

fn last(bake: Bake, script: &[(u64, Input)]) -> Next {
    let mut bake = bake;
    drive(&mut bake, script).pop().unwrap()
}

fn is_fail_with(n: &Next, text: &str) -> bool {
    matches!(n, Next::Fail(r) if r.contains(text))
}

fn is_hold_with(n: &Next, text: &str) -> bool {
    matches!(n, Next::Hold(r) if r.contains(text))
}

#[test]
fn a_table_of_bakes_ends_as_its_policy_says() {
    use Next::*;
    type Check = fn(&Next) -> bool;
    let with = |p: fn(&mut Policy)| {
        let mut x = policy(10, 5);
        p(&mut x);
        x
    };
    let cases: Vec<(&str, Policy, Script, Check)> = vec![
        (
            "passes at the deadline",
            policy(10, 5),
            vec![(0, pass()), (5, pass()), (10, pass())],
            |n| *n == Pass,
        ),
        (
            "a pass before the deadline does not pass",
            policy(10, 5),
            vec![(0, pass()), (5, pass())],
            |n| *n == Continue,
        ),
        (
            "a fail ends it at once",
            policy(10, 5),
            vec![(0, pass()), (5, bad())],
            |n| is_fail_with(n, "alarm x"),
        ),
        (
            "a fail during the extension",
            policy(10, 5),
            vec![(0, thin()), (10, thin()), (15, bad())],
            |n| is_fail_with(n, "alarm x"),
        ),
        (
            "evidence arriving during the extension passes",
            policy(10, 5),
            vec![(0, thin()), (10, thin()), (15, thin()), (20, pass())],
            |n| *n == Pass,
        ),
        (
            "no evidence after the extension holds (on_no_evidence hold)",
            policy(10, 5),
            vec![(0, thin()), (10, thin()), (25, thin()), (40, thin())],
            |n| {
                is_hold_with(
                    n,
                    "not enough evidence after the 10s bake and a 30s extension",
                )
            },
        ),
        (
            "no evidence after the extension rolls back (on_no_evidence rollback)",
            with(|p| p.on_no_evidence = OnNoEvidence::Rollback),
            vec![(0, thin()), (10, thin()), (40, thin())],
            |n| is_fail_with(n, "analysis.on_no_evidence is \"rollback\""),
        ),
        (
            "no extension: no evidence at the deadline holds at once",
            with(|p| p.max_extension = Duration::ZERO),
            vec![(0, thin()), (10, thin())],
            |n| is_hold_with(n, "12 of 50 requests"),
        ),
        (
            "unreadable before the deadline rolls back (on_unreadable rollback)",
            policy(60, 5),
            vec![(0, err()), (5, err()), (10, err())],
            |n| is_fail_with(n, "3 polls in a row failed, the last with: HTTP 500"),
        ),
        (
            "unreadable before the deadline holds (on_unreadable hold)",
            with(|p| {
                p.bake = S(60);
                p.on_unreadable = OnUnreadable::Hold
            }),
            vec![(0, err()), (5, err()), (10, err())],
            |n| is_hold_with(n, "analysis.on_unreadable is \"hold\""),
        ),
        (
            "fewer failures in a row than the limit are ridden out",
            policy(60, 5),
            vec![
                (0, err()),
                (5, err()),
                (10, pass()),
                (15, err()),
                (20, err()),
            ],
            |n| *n == Continue,
        ),
        (
            "max_read_failures 1: the first failure decides",
            with(|p| {
                p.bake = S(60);
                p.max_read_failures = 1
            }),
            vec![(0, err())],
            |n| is_fail_with(n, "1 polls in a row"),
        ),
        (
            "failed reads at the end extend the bake, then a read passes it",
            policy(10, 5),
            vec![
                (10, err()),
                (11, err()),
                (12, err()),
                (13, err()),
                (14, pass()),
            ],
            |n| *n == Pass,
        ),
        (
            "failed reads at the end never pass it: unreadable past the read extension",
            policy(10, 5),
            vec![(10, err()), (60, err()), (100, err()), (130, err())],
            |n| is_fail_with(n, "could not be read"),
        ),
        (
            "failed reads at the end under hold",
            with(|p| p.on_unreadable = OnUnreadable::Hold),
            vec![(10, err()), (60, err()), (100, err()), (130, err())],
            |n| is_hold_with(n, "could not be read"),
        ),
        (
            "interleaved failures end past the longer of the two extensions",
            with(|p| p.max_extension = S(600)),
            vec![(10, thin()), (11, err()), (200, thin()), (610, err())],
            |n| is_fail_with(n, "could not be read"),
        ),
        (
            "a zero bake passes on its first read",
            policy(0, 5),
            vec![(0, pass())],
            |n| *n == Pass,
        ),
    ];
    for (name, policy, script, check) in cases {
        let got = last(Bake::new(policy), &script);
        assert!(check(&got), "{name}: got {got:?}");
    }
}

#[test]
fn an_extension_is_announced_once() {
    let mut b = Bake::new(policy(10, 5));
    let got = drive(&mut b, &[(0, thin()), (10, thin()), (15, thin())]);
    assert_eq!(
        got,
        vec![
            Next::Continue,
            Next::Extend("12 of 50 requests".into()),
            Next::Continue
        ]
    );
    assert!(b.extending());
}

#[test]
fn polls_are_scheduled_at_the_interval_the_deadline_and_sooner_after_a_failed_read_at_the_end() {
    let mut b = Bake::new(policy(12, 5));
    assert!(b.due(S(0)), "the first poll is due at once");
    b.on(S(0), pass());
    assert_eq!(b.next_poll(), S(5));
    assert!(!b.due(S(4)) && b.due(S(5)));
    b.on(S(10), pass());
    assert_eq!(b.next_poll(), S(12), "the deadline is polled");
    assert_eq!(b.left(S(11)), S(1));
    b.on(S(12), err());
    assert_eq!(
        b.next_poll(),
        S(13),
        "a failed read at the end is retried within a second"
    );
    b.on(S(13), thin());
    assert_eq!(b.next_poll(), S(18), "then the interval again");
    assert_eq!(b.failed_reads(), 0, "a read resets the count");
}

/// An interrupt in each phase: the bake asks for a last look, and only a failing verdict
/// in it takes the traffic back; anything else leaves the split (exit 130).
#[test]
fn an_interrupt_in_each_phase_gets_a_last_look() {
    let phases: Vec<(&str, Script)> = vec![
        ("at the start", vec![]),
        ("while watching", vec![(0, pass()), (5, thin())]),
        ("while extending", vec![(0, thin()), (10, thin())]),
        (
            "while reads fail at the end",
            vec![(10, err()), (11, err())],
        ),
        ("after failed reads before the deadline", vec![(0, err())]),
    ];
    for (phase, script) in phases {
        for (look, expect) in [
            (bad(), Next::Fail("alarm x is ALARM".into())),
            (pass(), Next::Interrupted),
            (thin(), Next::Interrupted),
            (err(), Next::Interrupted),
            (Input::Interrupt, Next::Interrupted),
        ] {
            let mut b = Bake::new(policy(10, 5));
            drive(&mut b, &script);
            assert_eq!(b.on(S(12), Input::Interrupt), Next::LastLook, "{phase}");
            assert_eq!(b.on(S(12), look.clone()), expect, "{phase}, {look:?}");
            assert_eq!(
                b.on(S(13), pass()),
                Next::Interrupted,
                "{phase}: an ended bake stays ended"
            );
        }
    }
}

#[test]
fn the_preflight_is_one_read_that_fails_only_on_a_failing_verdict() {
    let cases = [
        (pass(), Next::Pass),
        (thin(), Next::Pass),
        (bad(), Next::Fail("alarm x is ALARM".into())),
        (err(), Next::Unread("HTTP 500".into())),
        (Input::Interrupt, Next::Interrupted),
    ];
    for (input, expect) in cases {
        let mut b = Bake::preflight(policy(0, 5));
        assert_eq!(b.on(S(0), input.clone()), expect, "{input:?}");
    }
}

/// Whatever the inputs, a bake never passes on a failed read nor before its deadline.
#[test]
fn no_script_passes_before_the_deadline_or_on_a_failed_read() {
    let inputs = [pass(), thin(), err()];
    // Every script of four polls, 4 s apart, over a 10 s bake.
    for n in 0..81u32 {
        let mut b = Bake::new(policy(10, 4));
        let mut k = n;
        for i in 0..4u64 {
            let input = inputs[(k % 3) as usize].clone();
            k /= 3;
            let at = S(i * 4);
            let failed = matches!(input, Input::ReadFailed(_));
            let next = b.on(at, input);
            if next == Next::Pass {
                assert!(at >= S(10) && !failed, "script {n}: passed at {at:?}");
            }
            if !matches!(next, Next::Continue | Next::Extend(_)) {
                break;
            }
        }
    }
}

/// A CodeDeploy deployment is watched until it succeeds: before that nothing passes and a
/// fail or unreadable evidence ends it; after, the bake is at its deadline.
#[test]
fn a_bake_until_ended_judges_from_the_end_on() {
    let mut b = Bake::until_ended(policy(0, 5));
    assert_eq!(b.on(S(0), pass()), Next::Continue);
    assert_eq!(b.on(S(600), pass()), Next::Continue, "no deadline yet");
    b.end_at(S(605));
    assert!(b.due(S(605)), "a read is due at the end");
    assert_eq!(b.on(S(605), pass()), Next::Pass);

    for (on_no_evidence, check) in [
        (OnNoEvidence::Hold, is_hold_with as fn(&Next, &str) -> bool),
        (OnNoEvidence::Rollback, is_fail_with),
    ] {
        let mut b = Bake::until_ended(Policy {
            on_no_evidence,
            ..policy(0, 5)
        });
        b.on(S(0), thin());
        b.end_at(S(60));
        assert_eq!(
            b.on(S(60), thin()),
            Next::Extend("12 of 50 requests".into())
        );
        let end = b.on(S(90), thin());
        assert!(
            check(&end, "not enough evidence after the 1m00s bake"),
            "{on_no_evidence:?}: {end:?}"
        );
    }

    let mut b = Bake::until_ended(policy(0, 5));
    let got = drive(&mut b, &[(0, err()), (5, err()), (10, err())]);
    assert!(is_fail_with(&got[2], "could not be read"), "{got:?}");
}

/// `analysis.early_pass`: a read that shows the candidate no worse ends the bake before its
/// time on a stage that allows it, and is an ordinary pass (wait for the deadline) on one
/// that does not; a failing read still fails either way.
#[test]
fn a_read_shown_no_worse_ends_the_bake_early_only_where_the_stage_allows_it() {
    let mut b = Bake::new(Policy {
        early_pass: true,
        ..policy(300, 60)
    });
    assert_eq!(b.on(S(0), pass()), Next::Continue);
    assert_eq!(
        b.on(S(60), Input::ShownNoWorse),
        Next::Pass,
        "ends at 60 s of 300"
    );

    let mut b = Bake::new(policy(300, 60));
    assert_eq!(
        b.on(S(60), Input::ShownNoWorse),
        Next::Continue,
        "early_pass off"
    );
    assert_eq!(
        b.on(S(300), Input::ShownNoWorse),
        Next::Pass,
        "at the deadline"
    );

    let mut b = Bake::new(Policy {
        early_pass: true,
        ..policy(300, 60)
    });
    assert!(is_fail_with(&b.on(S(60), bad()), "alarm x"));
}
