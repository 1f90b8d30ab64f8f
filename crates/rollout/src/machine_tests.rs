//! The decision function over a table of intents and alias states, and resumes after a
//! `kill -9` at every point of a plan.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::note::RolledBack;
use crate::plan::Refusal;

fn v(n: u64) -> Version {
    Version::new(n).unwrap()
}
fn w(p: &str) -> Weight {
    Weight::parse_percent(p).unwrap()
}
fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
fn step(p: &str, bake: u64) -> Step {
    Step {
        weight: w(p),
        bake: secs(bake),
    }
}

fn stage(strategy: Strategy) -> Stage {
    Stage {
        name: "live".into(),
        upstream: Some("test".into()),
        strategy: strategy.clone(),
        poll_interval: secs(5),
        insufficient_data_is_failure: false,
        approval_required: false,
        alarms: vec![],
        analysis: crate::spec::Analysis::default_for(&strategy),
        engine: crate::codedeploy::Engine::Alias,
        hooks: crate::codedeploy::Hooks::default(),
        path: PathBuf::from("environments/live.json"),
    }
}
fn canary_stage() -> Stage {
    stage(Strategy::Canary {
        steps: vec![step("10", 300), step("50", 300), step("100", 120)],
    })
}
fn aao_stage() -> Stage {
    stage(Strategy::AllAtOnce { bake: secs(60) })
}

fn at(n: u64) -> AliasView {
    AliasView {
        version: v(n),
        split: None,
    }
}
fn split(stable: u64, cand: u64, p: &str) -> AliasView {
    AliasView {
        version: v(stable),
        split: Some(Split {
            version: v(cand),
            weight: w(p),
        }),
    }
}

fn obs(alias: AliasView, note: Note, upstream: AliasView) -> Observed {
    Observed {
        stage: "live".into(),
        alias,
        note,
        published: (1..=6)
            .map(|n| Published {
                version: v(n),
                description: format!("app 0.{n}.0 {}", "a".repeat(40)),
            })
            .collect(),
        upstream: Some(Upstream {
            name: "test".into(),
            view: upstream,
            note: Note::default(),
        }),
        deployment: None,
    }
}

/// The state decide reads on an alias stage.
fn now(alias: &AliasView, note: &Note) -> State {
    State {
        alias: *alias,
        note: note.clone(),
        deployment: None,
    }
}

fn canary() -> Intent {
    Intent::Canary {
        version: None,
        weight: None,
        allow_downgrade: false,
        retry: false,
    }
}

/// The writes and bakes of a dry run, as short strings: `w:3+4@10`, `b:10`, `done:...`.
fn trace(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Write(wr) => format!("{}:{}", wr.kind.as_str(), show(&wr.to)),
            Action::Bake { weight, bake, .. } => format!("bake:{}@{}s", weight, bake.as_secs()),
            Action::CreateDeployment {
                candidate,
                stable,
                config,
            } => format!("create:{stable}->{candidate}:{}", config.name_suffix()),
            Action::Follow { deployment } => format!("follow:{deployment}"),
            Action::StopDeployment { deployment, reason } => {
                format!("stop:{deployment}:{reason}")
            }
            Action::Done(d) => format!("done:{d:?}"),
            Action::Refuse(e) => format!("refuse:{e}"),
        })
        .collect()
}
fn show(a: &AliasView) -> String {
    match a.split {
        None => format!("{}", a.version),
        Some(s) => format!("{}+{}@{}", a.version, s.version, s.weight),
    }
}

fn run(stage: &Stage, intent: Intent, o: &Observed) -> Result<Vec<String>, PlanError> {
    let goal = resolve(stage, &intent, o, Overrides::default())?;
    Ok(trace(&simulate(&goal, &now(&o.alias, &o.note))))
}

#[test]
fn a_fresh_canary_walks_the_plan_and_marks_the_last_bake() {
    let o = obs(at(1), Note::default(), at(2));
    assert_eq!(
        run(&canary_stage(), canary(), &o).unwrap(),
        [
            "shift:1+2@10%",
            "bake:10%@300s",
            "shift:1+2@50%",
            "bake:50%@300s",
            "complete:2",
            "bake:100%@120s",
            "mark_baked:2",
            "done:Completed(Version(2))",
        ]
    );
}

#[test]
fn the_complete_write_records_previous_and_a_pending_bake() {
    let o = obs(at(1), Note::default(), at(2));
    let goal = resolve(&canary_stage(), &canary(), &o, Overrides::default()).unwrap();
    let acts = simulate(&goal, &now(&o.alias, &o.note));
    let complete = acts
        .iter()
        .find_map(|a| match a {
            Action::Write(wr) if wr.kind == WriteKind::Complete => Some(wr.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(complete.note.previous, Some(v(1)));
    assert!(complete.note.pending_final_bake(v(2)));
}

#[test]
fn a_canary_killed_anywhere_resumes_forward_and_still_bakes_the_last_step() {
    let st = canary_stage();
    let o = obs(at(1), Note::default(), at(2));
    let goal = resolve(&st, &canary(), &o, Overrides::default()).unwrap();
    let full = simulate(&goal, &now(&o.alias, &o.note));
    // Kill after each action: the alias and note are as the writes so far left them, and
    // the new run starts with an empty memory.
    let (mut alias, mut note) = (o.alias, o.note.clone());
    for (k, a) in full.iter().enumerate() {
        if let Action::Write(wr) = a {
            alias = wr.to;
            note = wr.note.clone();
        }
        let again = obs(alias, note.clone(), at(2));
        let t = run(&st, canary(), &again).unwrap();
        let last_bake_passed = note.step.is_some_and(|m| m.weight.is_full() && m.baked);
        let end = t.last().unwrap();
        if last_bake_passed {
            assert!(
                end.starts_with("done:Noop"),
                "killed after action {k}: {t:?}"
            );
        } else {
            assert_eq!(
                end, "done:Completed(Version(2))",
                "killed after action {k}: {t:?}"
            );
        }
        let weights: Vec<u32> = t
            .iter()
            .filter_map(|s| s.strip_prefix("shift:1+2@"))
            .map(|p| p.trim_end_matches('%').parse().unwrap())
            .collect();
        assert!(weights.windows(2).all(|p| p[0] < p[1]), "{t:?}");
        assert!(
            !t.iter().any(|s| s.starts_with("rollback")),
            "no rollback without evidence: {t:?}"
        );
        // Every resumed run bakes the 100% step unless that bake had already passed.
        assert_eq!(
            t.iter().any(|s| s == "bake:100%@120s"),
            !last_bake_passed,
            "killed after action {k}: {t:?}"
        );
    }
}

#[test]
fn killed_during_the_last_bake_the_rerun_bakes_it_instead_of_a_noop() {
    let note = Note {
        previous: Some(v(1)),
        ..Note::default()
    }
    .at_step(v(2), Weight::FULL, false);
    let o = obs(at(2), note, at(2));
    assert_eq!(
        run(&canary_stage(), canary(), &o).unwrap(),
        [
            "bake:100%@120s",
            "mark_baked:2",
            "done:Completed(Version(2))"
        ]
    );
    // Once marked, it is a no-op.
    let done = Note {
        previous: Some(v(1)),
        ..Note::default()
    }
    .at_step(v(2), Weight::FULL, true);
    let t = run(&canary_stage(), canary(), &obs(at(2), done, at(2))).unwrap();
    assert_eq!(t.len(), 1);
    assert!(t[0].starts_with("done:Noop"), "{t:?}");
}

#[test]
fn a_resumed_split_is_held_and_baked_before_going_on() {
    // test moved on to 3 after serving 2 (its note's previous).
    let mut o = obs(split(1, 2, "50"), Note::default(), at(3));
    o.upstream.as_mut().unwrap().note.previous = Some(v(2));
    assert_eq!(
        run(&canary_stage(), canary(), &o).unwrap(),
        [
            "bake:50%@300s",
            "complete:2",
            "bake:100%@120s",
            "mark_baked:2",
            "done:Completed(Version(2))"
        ]
    );
}

#[test]
fn a_one_off_weight_never_moves_backwards() {
    let st = canary_stage();
    let o = obs(split(1, 2, "50"), Note::default(), at(2));
    let one = |p: &str| Intent::Canary {
        version: None,
        weight: Some(w(p)),
        allow_downgrade: false,
        retry: false,
    };
    let e = run(&st, one("10"), &o).unwrap_err();
    assert!(matches!(e, PlanError::Backwards { .. }), "{e}");
    assert_eq!(e.refusal(), Refusal::BadInput);
    assert!(
        e.to_string().contains("promote rollback --stage live"),
        "{e}"
    );
    // The same weight holds and bakes; a higher one moves forward.
    assert_eq!(
        run(&st, one("50"), &o).unwrap(),
        ["bake:50%@300s", "done:Split(Version(2), Weight(5000))"]
    );
    assert_eq!(
        run(&st, one("60"), &o).unwrap(),
        [
            "shift:1+2@60%",
            "bake:60%@300s",
            "done:Split(Version(2), Weight(6000))"
        ]
    );
}

#[test]
fn advance_moves_one_step_or_to_the_weight_and_never_back() {
    let st = canary_stage();
    let o = obs(split(1, 2, "10"), Note::default(), at(2));
    assert_eq!(
        run(&st, Intent::Advance { weight: None }, &o).unwrap(),
        [
            "shift:1+2@50%",
            "bake:50%@300s",
            "done:Split(Version(2), Weight(5000))"
        ]
    );
    let o50 = obs(split(1, 2, "50"), Note::default(), at(2));
    assert_eq!(
        run(&st, Intent::Advance { weight: None }, &o50).unwrap(),
        [
            "complete:2",
            "bake:100%@120s",
            "mark_baked:2",
            "done:Completed(Version(2))"
        ]
    );
    let e = run(
        &st,
        Intent::Advance {
            weight: Some(w("10")),
        },
        &o50,
    )
    .unwrap_err();
    assert!(matches!(e, PlanError::NotForward { .. }), "{e}");
    let e = run(
        &st,
        Intent::Advance { weight: None },
        &obs(at(1), Note::default(), at(2)),
    )
    .unwrap_err();
    assert!(matches!(e, PlanError::NoCanary { .. }), "{e}");
}

#[test]
fn complete_moves_everything_without_a_bake_and_is_a_noop_without_a_canary() {
    let st = canary_stage();
    assert_eq!(
        run(
            &st,
            Intent::Complete,
            &obs(split(1, 2, "10"), Note::default(), at(2))
        )
        .unwrap(),
        ["complete:2", "done:Completed(Version(2))"]
    );
    let t = run(&st, Intent::Complete, &obs(at(1), Note::default(), at(2))).unwrap();
    assert!(t[0].starts_with("done:Noop"), "{t:?}");
}

#[test]
fn weights_of_zero_and_one_are_a_candidate_like_any_other() {
    let st = canary_stage();
    // Someone else's {"2": 1.0}: version 2 takes everything, but through the routing.
    let full_split = AliasView {
        version: v(1),
        split: Some(Split {
            version: v(2),
            weight: Weight::FULL,
        }),
    };
    let t = run(
        &st,
        Intent::Rollback { to_previous: false },
        &obs(full_split, Note::default(), at(2)),
    )
    .unwrap();
    assert_eq!(
        t,
        ["rollback:1", "done:RolledBackByOperator { to: Version(1) }"]
    );
    let t = run(
        &st,
        Intent::Complete,
        &obs(full_split, Note::default(), at(2)),
    )
    .unwrap();
    assert_eq!(t, ["complete:2", "done:Completed(Version(2))"]);
    // At 0%, a resume holds the split it finds and goes on from the first step above it.
    let zero = AliasView {
        version: v(1),
        split: Some(Split {
            version: v(2),
            weight: Weight::ZERO,
        }),
    };
    let t = run(&st, canary(), &obs(zero, Note::default(), at(2))).unwrap();
    assert_eq!(t[0], "bake:0%@300s", "{t:?}");
    assert_eq!(t[1], "shift:1+2@10%", "{t:?}");
}

#[test]
fn a_failing_verdict_rolls_back_from_wherever_the_candidate_is() {
    let st = canary_stage();
    let o = obs(at(1), Note::default(), at(2));
    let goal = resolve(&st, &canary(), &o, Overrides::default()).unwrap();
    let failed = Memory {
        failure: Some("alarm x is ALARM".into()),
        wrote: true,
        ..Memory::default()
    };
    // At a split: clear it, note the rolled-back version and why.
    let Action::Write(wr) = decide(&goal, &now(&split(1, 2, "50"), &Note::default()), &failed)
    else {
        panic!()
    };
    assert_eq!(wr.kind, WriteKind::AutoRollback);
    assert_eq!(wr.to, at(1));
    assert_eq!(wr.note.rolled_back.as_ref().unwrap().version, v(2));
    assert_eq!(
        wr.note.rolled_back.as_ref().unwrap().why,
        "alarm x is ALARM"
    );
    // After the last step: back to the stable version, and `previous` is not the failed one.
    let pending = Note {
        previous: Some(v(1)),
        ..Note::default()
    }
    .at_step(v(2), Weight::FULL, false);
    let Action::Write(wr) = decide(&goal, &now(&at(2), &pending), &failed) else {
        panic!()
    };
    assert_eq!(wr.to, at(1));
    assert_ne!(wr.note.previous, Some(v(2)));
    // Once back, done with the reason (exit 4).
    assert_eq!(
        decide(&goal, &now(&at(1), &wr.note), &failed),
        Action::Done(Done::RolledBack {
            reason: "alarm x is ALARM".into(),
            to: v(1)
        })
    );
    // Before any write with the candidate absent: a refusal, nothing to take back.
    let preflight = Memory {
        failure: Some("alarm x is ALARM".into()),
        ..Memory::default()
    };
    let a = decide(&goal, &now(&at(1), &Note::default()), &preflight);
    assert!(
        matches!(&a, Action::Refuse(e) if e.refusal() == Refusal::Guard),
        "{a:?}"
    );
    // Resumed at 50% with the evidence failing: roll back, not refuse.
    let resumed = obs(split(1, 2, "50"), Note::default(), at(2));
    let goal = resolve(&st, &canary(), &resumed, Overrides::default()).unwrap();
    assert!(matches!(
        decide(&goal, &now(&resumed.alias, &resumed.note), &preflight),
        Action::Write(Write {
            kind: WriteKind::AutoRollback,
            ..
        })
    ));
}

#[test]
fn a_rolled_back_version_needs_retry_and_previous_never_returns_to_it() {
    let st = canary_stage();
    let note = Note {
        previous: Some(v(1)),
        step: None,
        served: Vec::new(),
        upstream_skip: None,
        release: Vec::new(),
        rolled_back: Some(RolledBack {
            version: v(2),
            why: "alarm x".into(),
            by: Default::default(),
        }),
    };
    let o = obs(at(1), note.clone(), at(2));
    let e = run(&st, canary(), &o).unwrap_err();
    assert!(matches!(e, PlanError::RolledBackBefore { .. }), "{e}");
    assert_eq!(e.refusal(), Refusal::Guard);
    assert!(e.to_string().contains("--retry"), "{e}");
    let retry = Intent::Canary {
        version: None,
        weight: None,
        allow_downgrade: false,
        retry: true,
    };
    let goal = resolve(&st, &retry, &o, Overrides::default()).unwrap();
    let Action::Write(first) = decide(&goal, &now(&o.alias, &o.note), &Memory::default()) else {
        panic!()
    };
    assert_eq!(first.note.rolled_back, None, "--retry clears the record");
    // A different version is not affected.
    assert!(run(&st, canary(), &obs(at(1), note.clone(), at(3))).is_ok());
    // --to-previous refuses a previous that was the one rolled back.
    let back = Note {
        previous: Some(v(2)),
        ..note
    };
    let o = obs(at(3), back, at(3));
    let e = run(&st, Intent::Rollback { to_previous: true }, &o).unwrap_err();
    assert!(matches!(e, PlanError::RolledBackBefore { .. }), "{e}");
    // The advice is a command that works in this state (rollback has no --retry).
    let advised = "`promote canary --stage live --version 2 --allow-downgrade --retry`";
    assert!(e.to_string().contains(advised), "{e}");
    let again = Intent::Canary {
        version: Some(v(2)),
        weight: None,
        allow_downgrade: true,
        retry: true,
    };
    let goal = resolve(&st, &again, &o, Overrides::default()).unwrap();
    assert!(
        matches!(goal, Goal::Rollout(ref r) if r.candidate == v(2)),
        "{goal:?}"
    );
    // For a function of a release, the advice names it: `--version` is the first function's.
    let birthday = Overrides {
        version_flag: crate::plan::VersionFlag::release("birthday"),
        ..Overrides::default()
    };
    let e = resolve(&st, &Intent::Rollback { to_previous: true }, &o, birthday).unwrap_err();
    let advised = "`promote canary --stage live --release birthday=2 --allow-downgrade --retry`";
    assert!(e.to_string().contains(advised), "{e}");
    assert!(!e.to_string().contains("--version"), "{e}");
}

#[test]
fn every_refusal_that_advises_a_candidate_names_it_as_the_command_line_does() {
    let birthday = crate::plan::VersionFlag::release("birthday");
    let named = |e: PlanError| e.named_by(&birthday).to_string();
    let no_upstream = named(PlanError::NoUpstream {
        stage: "dev".into(),
        flag: Default::default(),
    });
    assert!(
        no_upstream.ends_with("pass --release birthday=N"),
        "{no_upstream}"
    );
    let mid = named(PlanError::UpstreamMidCanary {
        upstream: "test".into(),
        view: at(1),
        flag: Default::default(),
    });
    assert!(mid.ends_with("or pass --release birthday=N"), "{mid}");
    let none = named(PlanError::NoPrevious {
        stage: "live".into(),
        description: String::new(),
        flag: Default::default(),
        command: "canary",
        retry: String::new(),
    });
    assert!(
        none.contains("`promote canary --stage live --release birthday=N --allow-downgrade`"),
        "{none}"
    );
    // A project of one function keeps --version.
    let one = PlanError::NoUpstream {
        stage: "dev".into(),
        flag: Default::default(),
    }
    .to_string();
    assert!(one.ends_with("pass --version N"), "{one}");
}

#[test]
fn rollback_to_previous_goes_back_once_and_records_why() {
    let st = canary_stage();
    let note = Note {
        previous: Some(v(1)),
        ..Note::default()
    }
    .at_step(v(2), Weight::FULL, true);
    let o = obs(at(2), note, at(2));
    let goal = resolve(
        &st,
        &Intent::Rollback { to_previous: true },
        &o,
        Overrides::default(),
    )
    .unwrap();
    let acts = simulate(&goal, &now(&o.alias, &o.note));
    let Action::Write(wr) = &acts[0] else {
        panic!()
    };
    assert_eq!(wr.to, at(1));
    assert_eq!(wr.note.rolled_back.as_ref().unwrap().version, v(2));
    assert_eq!(wr.note.previous, None);
    assert_eq!(
        acts[1],
        Action::Done(Done::RolledBackByOperator { to: v(1) })
    );
    // Without a recorded previous: bad input, with what to do.
    let e = run(
        &st,
        Intent::Rollback { to_previous: true },
        &obs(at(2), Note::default(), at(2)),
    )
    .unwrap_err();
    assert_eq!(e.refusal(), Refusal::BadInput);
    // Without a split and without --to-previous: a no-op that names --to-previous.
    let t = run(
        &st,
        Intent::Rollback { to_previous: false },
        &obs(
            at(2),
            Note {
                previous: Some(v(1)),
                ..Note::default()
            },
            at(2),
        ),
    )
    .unwrap();
    assert!(t[0].contains("--to-previous"), "{t:?}");
}

#[test]
fn deploy_on_an_all_at_once_stage_bakes_and_resumes_its_bake() {
    let st = aao_stage();
    let deploy = Intent::Deploy {
        version: Some(v(3)),
        allow_downgrade: false,
        retry: false,
    };
    assert_eq!(
        run(&st, deploy.clone(), &obs(at(1), Note::default(), at(3))).unwrap(),
        [
            "complete:3",
            "bake:100%@60s",
            "mark_baked:3",
            "done:Completed(Version(3))"
        ]
    );
    let pending = Note {
        previous: Some(v(1)),
        ..Note::default()
    }
    .at_step(v(3), Weight::FULL, false);
    let rerun = Intent::Deploy {
        version: None,
        allow_downgrade: false,
        retry: false,
    };
    assert_eq!(
        run(&st, rerun, &obs(at(3), pending, at(3))).unwrap(),
        [
            "bake:100%@60s",
            "mark_baked:3",
            "done:Completed(Version(3))"
        ]
    );
    // The wrong command for the strategy is bad input, on either side.
    let e = run(&st, canary(), &obs(at(1), Note::default(), at(2))).unwrap_err();
    assert!(matches!(e, PlanError::WrongStrategy { .. }), "{e}");
    let e = run(&canary_stage(), deploy, &obs(at(1), Note::default(), at(2))).unwrap_err();
    assert!(matches!(e, PlanError::WrongStrategy { .. }), "{e}");
}

#[test]
fn a_zero_bake_override_writes_the_last_step_as_baked() {
    let st = canary_stage();
    let o = obs(at(1), Note::default(), at(2));
    let goal = resolve(
        &st,
        &canary(),
        &o,
        Overrides {
            bake: Some(Duration::ZERO),
            ..Overrides::default()
        },
    )
    .unwrap();
    assert_eq!(
        trace(&simulate(&goal, &now(&o.alias, &o.note))),
        [
            "shift:1+2@10%",
            "shift:1+2@50%",
            "complete:2",
            "done:Completed(Version(2))"
        ]
    );
}

/// Every intent from every kind of alias state: a refusal comes before any write, no write
/// moves the candidate backwards unless it is a rollback, and every run ends.
#[test]
fn every_intent_from_every_state_is_forward_only_or_a_rollback() {
    let pending = Note {
        previous: Some(v(1)),
        ..Note::default()
    }
    .at_step(v(2), Weight::FULL, false);
    let states = [
        (at(1), Note::default()),
        (split(1, 2, "10"), Note::default()),
        (split(1, 2, "50"), Note::default()),
        (
            AliasView {
                version: v(1),
                split: Some(Split {
                    version: v(2),
                    weight: Weight::ZERO,
                }),
            },
            Note::default(),
        ),
        (at(2), pending),
        (
            at(2),
            Note {
                previous: Some(v(1)),
                ..Note::default()
            },
        ),
    ];
    let intents = [
        canary(),
        Intent::Canary {
            version: Some(v(2)),
            weight: Some(w("25")),
            allow_downgrade: false,
            retry: false,
        },
        Intent::Canary {
            version: Some(v(4)),
            weight: None,
            allow_downgrade: false,
            retry: false,
        },
        Intent::Advance { weight: None },
        Intent::Advance {
            weight: Some(w("75")),
        },
        Intent::Complete,
        Intent::Rollback { to_previous: false },
        Intent::Rollback { to_previous: true },
    ];
    let mut table = Vec::new();
    for (alias, note) in &states {
        for intent in &intents {
            let o = obs(*alias, note.clone(), at(2));
            let goal = match resolve(&canary_stage(), intent, &o, Overrides::default()) {
                Ok(g) => g,
                Err(e) => {
                    table.push(format!(
                        "{} {} -> refused: {e}",
                        show(alias),
                        intent.command()
                    ));
                    continue;
                }
            };
            let acts = simulate(&goal, &now(alias, note));
            assert!(
                matches!(acts.last(), Some(Action::Done(_)) | Some(Action::Refuse(_))),
                "{acts:?}"
            );
            let mut before = *alias;
            for a in &acts {
                if let Action::Write(wr) = a {
                    if !matches!(wr.kind, WriteKind::Rollback | WriteKind::AutoRollback) {
                        let cand = wr.to.split.map_or(wr.to.version, |s| s.version);
                        let old = weight_of(position(&before, cand)).unwrap_or(Weight::ZERO);
                        let new = weight_of(position(&wr.to, cand)).unwrap();
                        assert!(new >= old, "{} {:?}: {acts:?}", show(alias), intent);
                    }
                    before = wr.to;
                }
            }
            table.push(format!(
                "{} {} -> {:?}",
                show(alias),
                intent.command(),
                trace(&acts)
            ));
        }
    }
    assert_eq!(table.len(), states.len() * intents.len());
}

#[test]
fn a_deleted_stable_version_is_named_as_such_not_as_an_unknown_semver() {
    let mut o = obs(at(1), Note::default(), at(2));
    o.published.retain(|p| p.version != v(1));
    let err = resolve(&canary_stage(), &canary(), &o, Overrides::default()).unwrap_err();
    assert!(
        matches!(err, PlanError::StableNotPublished { ref version, .. } if *version == v(1)),
        "{err}"
    );
    assert_eq!(err.refusal(), Refusal::Guard);
    assert!(err.to_string().contains("no longer a published version"));
    // All at once, the operator can still move on purpose; a split cannot exist without
    // its stable version, as Lambda says too.
    let deploy = Intent::Deploy {
        version: None,
        allow_downgrade: true,
        retry: false,
    };
    assert!(resolve(&aao_stage(), &deploy, &o, Overrides::default()).is_ok());
    let downgrade = Intent::Canary {
        version: None,
        weight: None,
        allow_downgrade: true,
        retry: false,
    };
    let err = resolve(&canary_stage(), &downgrade, &o, Overrides::default()).unwrap_err();
    assert!(matches!(err, PlanError::Routing(_)), "{err}");
}

fn skip(reason: &str) -> Overrides {
    Overrides {
        skip_upstream: Some(reason.into()),
        ..Overrides::default()
    }
}

#[test]
fn every_command_refuses_a_candidate_the_upstream_never_served_before_any_write() {
    // test serves 2 and served 1 before; version 4 never reached it.
    let mut o = obs(at(1), Note::default(), at(2));
    o.upstream.as_mut().unwrap().note.previous = Some(v(1));
    let deploy = Intent::Deploy {
        version: Some(v(4)),
        allow_downgrade: false,
        retry: false,
    };
    let canary4 = Intent::Canary {
        version: Some(v(4)),
        weight: None,
        allow_downgrade: false,
        retry: false,
    };
    for (st, intent) in [(aao_stage(), deploy), (canary_stage(), canary4)] {
        let e = resolve(&st, &intent, &o, Overrides::default()).unwrap_err();
        assert_eq!(e.refusal(), Refusal::Guard, "{e}");
        assert!(
            matches!(&e, PlanError::UpstreamNotServed { candidate, upstream, .. } if *candidate == v(4) && upstream == "test"),
            "{e}"
        );
    }
    // advance and complete act on the candidate in flight: a split nobody let in (made by
    // hand, no step mark, no recorded override) of a version test never served is refused.
    let by_hand = obs(split(1, 4, "10"), Note::default(), at(2));
    for intent in [Intent::Advance { weight: None }, Intent::Complete] {
        let e = resolve(&canary_stage(), &intent, &by_hand, Overrides::default()).unwrap_err();
        assert_eq!(e.refusal(), Refusal::Guard, "{}: {e}", intent.command());
    }
    // The same split started by promote (its step mark) advances although test moved on.
    let mut started = by_hand.clone();
    started.note = Note::default().at_step(v(4), w("10"), true);
    assert_eq!(
        run(&canary_stage(), Intent::Advance { weight: None }, &started).unwrap()[0],
        "shift:1+4@50%"
    );
    assert_eq!(
        run(&canary_stage(), Intent::Complete, &started).unwrap()[0],
        "complete:4"
    );
    // Rollback is never guarded: taking traffic back is always allowed.
    assert!(
        run(
            &canary_stage(),
            Intent::Rollback { to_previous: false },
            &by_hand
        )
        .is_ok()
    );
}

#[test]
fn an_override_is_recorded_on_every_write_of_the_rollout_and_dropped_after() {
    let o = obs(at(1), Note::default(), at(2));
    let canary4 = Intent::Canary {
        version: Some(v(4)),
        weight: None,
        allow_downgrade: false,
        retry: false,
    };
    let goal = resolve(
        &canary_stage(),
        &canary4,
        &o,
        skip("CVE-2026-1: test is down"),
    )
    .unwrap();
    let writes: Vec<Write> = simulate(&goal, &now(&o.alias, &o.note))
        .into_iter()
        .filter_map(|a| match a {
            Action::Write(w) => Some(w),
            _ => None,
        })
        .collect();
    assert_eq!(writes.len(), 4, "{writes:?}");
    for wr in &writes {
        let k = wr.note.upstream_skip.as_ref().expect("recorded");
        assert_eq!(
            (k.version, k.reason.as_str()),
            (v(4), "CVE-2026-1: test is down")
        );
        // What AWS will hold reads back the same.
        assert_eq!(
            Note::parse(&wr.note.format()).upstream_skip,
            wr.note.upstream_skip
        );
    }
    // The next rollout of a version test did serve drops the stale record.
    let mut after = obs(at(4), writes.last().unwrap().note.clone(), at(5));
    after.upstream.as_mut().unwrap().view = at(5);
    let goal = resolve(&canary_stage(), &canary(), &after, Overrides::default()).unwrap();
    let first = simulate(&goal, &now(&after.alias, &after.note));
    let Action::Write(wr) = &first[0] else {
        panic!("{first:?}")
    };
    assert_eq!(wr.note.upstream_skip, None);
}

#[test]
fn bad_overrides_are_refused_as_bad_input() {
    let o = obs(at(1), Note::default(), at(2));
    for reason in ["", "   "] {
        let e = resolve(&canary_stage(), &canary(), &o, skip(reason)).unwrap_err();
        assert_eq!(e.refusal(), Refusal::BadInput, "{e}");
    }
    let mut first = o.clone();
    first.upstream = None;
    let dev4 = Intent::Canary {
        version: Some(v(4)),
        weight: None,
        allow_downgrade: false,
        retry: false,
    };
    let e = resolve(&canary_stage(), &dev4, &first, skip("why")).unwrap_err();
    assert_eq!(e.refusal(), Refusal::BadInput, "{e}");
}

#[test]
fn a_rollback_drops_the_version_from_what_the_stage_vouches_for() {
    let served = Note::default().with_served(v(2)).with_served(v(3));
    // The operator's --to-previous from 3, which completed here.
    let mut o = obs(at(3), served.clone(), at(3));
    o.note.previous = Some(v(2));
    let Goal::Rollback { note, .. } = resolve(
        &canary_stage(),
        &Intent::Rollback { to_previous: true },
        &o,
        Overrides::default(),
    )
    .unwrap() else {
        panic!("a rollback")
    };
    assert_eq!(note.served, [v(2)]);
    // An evidence rollback of a candidate at 100% drops it too.
    let o = obs(at(1), served, at(3));
    let goal = resolve(&canary_stage(), &canary(), &o, Overrides::default()).unwrap();
    let mem = Memory {
        failure: Some("alarm".into()),
        wrote: true,
        ..Memory::default()
    };
    let Action::Write(w) = decide(
        &goal,
        &now(&at(3), &o.note.at_step(v(3), Weight::FULL, false)),
        &mem,
    ) else {
        panic!("a rollback write")
    };
    assert_eq!(
        (w.kind, w.note.served.clone()),
        (WriteKind::AutoRollback, vec![v(2)])
    );
}

// ---- CodeDeploy stages ------------------------------------------------------------------

use crate::codedeploy::{DeploymentView, Engine, Shift, Status};

/// live on the CodeDeploy engine: 10% for a minute, then 100% (a TimeBasedCanary).
fn cd_stage() -> Stage {
    Stage {
        engine: Engine::CodeDeploy,
        ..stage(Strategy::Canary {
            steps: vec![step("10", 60), step("100", 0)],
        })
    }
}

fn dep(id: &str, current: u64, target: u64, status: Status) -> DeploymentView {
    DeploymentView {
        id: id.into(),
        application: "app".into(),
        config: "app-live-canary-10pct-1min".into(),
        shift: Some(Shift {
            current: v(current),
            target: v(target),
        }),
        status,
        rollback_of: None,
    }
}

fn cd_obs(alias: AliasView, note: Note, deployment: Option<DeploymentView>) -> Observed {
    Observed {
        deployment,
        ..obs(alias, note, at(2))
    }
}

fn cd_run(intent: Intent, o: &Observed, overrides: Overrides) -> Vec<String> {
    match resolve(&cd_stage(), &intent, o, overrides) {
        Ok(goal) => trace(&simulate(&goal, &o.state()))
            .into_iter()
            .map(|a| {
                if a.starts_with("done:Noop") {
                    "done:Noop".into()
                } else {
                    a
                }
            })
            .collect(),
        // The variant's name: the table stays readable; the messages are tested elsewhere.
        Err(e) => {
            let debug = format!("{e:?}");
            let name = debug.split([' ', '(', '{']).next().unwrap_or_default();
            vec![format!("refused({:?}):{name}", e.refusal())]
        }
    }
}

#[test]
fn a_codedeploy_canary_creates_follows_and_records_one_deployment() {
    let o = cd_obs(at(1), Note::default(), None);
    let goal = resolve(&cd_stage(), &canary(), &o, Overrides::default()).unwrap();
    let acts = simulate(&goal, &o.state());
    assert_eq!(
        trace(&acts),
        [
            "create:1->2:canary-10pct-1min",
            "follow:",
            "note:2",
            "done:Completed(Version(2))",
        ]
    );
    // The note a success writes is the alias engine's: version 1 before, the bake passed.
    let Action::Write(w) = &acts[2] else { panic!() };
    assert_eq!(w.kind, WriteKind::Note);
    assert_eq!(w.note.previous, Some(v(1)));
    assert!(matches!(w.note.step, Some(m) if m.candidate == v(2) && m.weight.is_full() && m.baked));
    assert_eq!(w.note.served, [v(2)]);
    // The plan shows the stage's whole plan: CodeDeploy runs all of it.
    let Goal::Rollout(r) = &goal else { panic!() };
    assert_eq!(r.steps.len(), 2);
    assert!(matches!(
        r.shifter,
        Shifter::CodeDeploy {
            following: None,
            ..
        }
    ));
}

/// Every intent from every deployment state (none; in flight to the candidate; in flight to
/// another version; an AppSpec promote did not write; CodeDeploy's own rollback in flight;
/// and the ended states, which CodeDeploy no longer lists as in flight), as one table.
#[test]
fn every_intent_from_every_deployment_state_on_a_codedeploy_stage() {
    let rolled = Note {
        previous: Some(v(1)),
        ..Note::default()
    };
    let foreign = DeploymentView {
        shift: None,
        ..dep("d-F", 1, 2, Status::InProgress)
    };
    let rollback = DeploymentView {
        rollback_of: Some("d-1".into()),
        ..dep("d-RB", 2, 1, Status::InProgress)
    };
    let states: Vec<(&str, AliasView, Option<DeploymentView>)> = vec![
        ("none", at(1), None),
        (
            "to-2",
            split(1, 2, "10"),
            Some(dep("d-1", 1, 2, Status::InProgress)),
        ),
        (
            "to-2-created",
            at(1),
            Some(dep("d-1", 1, 2, Status::Created)),
        ),
        (
            "to-3",
            split(1, 3, "10"),
            Some(dep("d-1", 1, 3, Status::InProgress)),
        ),
        ("foreign", at(1), Some(foreign)),
        ("its-rollback", split(1, 2, "10"), Some(rollback)),
        (
            "succeeded",
            at(2),
            Some(dep("d-1", 1, 2, Status::Succeeded)),
        ),
        (
            "failed",
            split(1, 2, "10"),
            Some(dep("d-1", 1, 2, Status::Failed)),
        ),
        ("stopped", at(1), Some(dep("d-1", 1, 2, Status::Stopped))),
    ];
    let canary_v = |n| Intent::Canary {
        version: Some(v(n)),
        weight: None,
        allow_downgrade: false,
        retry: false,
    };
    let intents: Vec<(&str, Intent, Overrides)> = vec![
        ("canary", canary(), Overrides::default()),
        ("canary-v2", canary_v(2), Overrides::default()),
        ("canary-v3", canary_v(3), Overrides::default()),
        (
            "canary-w25",
            Intent::Canary {
                version: None,
                weight: Some(w("25")),
                allow_downgrade: false,
                retry: false,
            },
            Overrides::default(),
        ),
        (
            "canary-bake",
            canary(),
            Overrides {
                bake: Some(secs(60)),
                ..Overrides::default()
            },
        ),
        (
            "advance",
            Intent::Advance { weight: None },
            Overrides::default(),
        ),
        ("complete", Intent::Complete, Overrides::default()),
        (
            "rollback",
            Intent::Rollback { to_previous: false },
            Overrides::default(),
        ),
        (
            "to-previous",
            Intent::Rollback { to_previous: true },
            Overrides::default(),
        ),
    ];
    let mut table = Vec::new();
    for (sn, alias, d) in &states {
        for (iname, intent, ov) in &intents {
            let note = if alias.version == v(2) {
                rolled.clone()
            } else {
                Note::default()
            };
            let o = cd_obs(*alias, note, d.clone());
            let t = cd_run(intent.clone(), &o, ov.clone());
            // Invariants: a simulation ends; a deployment in flight is never joined by
            // another; only a rollback stops one, and only one in flight.
            let last = t.last().unwrap();
            assert!(
                last.starts_with("done:") || last.starts_with("refuse") || t.len() == 1,
                "{sn} {iname}: {t:?}"
            );
            let in_flight = d.as_ref().is_some_and(|d| d.status.in_flight());
            if in_flight {
                assert!(
                    !t.iter().any(|a| a.starts_with("create")),
                    "{sn} {iname}: {t:?}"
                );
            }
            if t.iter().any(|a| a.starts_with("stop")) {
                let rollback = matches!(intent, Intent::Rollback { .. });
                assert!(in_flight && rollback, "{sn} {iname}: {t:?}");
            }
            table.push(format!("{sn} {iname}: {}", t.join(" ")));
        }
    }
    let want: Vec<&str> = WANT_CD_TABLE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let got: Vec<&str> = table.iter().map(|s| s.as_str()).collect();
    if got != want {
        panic!("the table changed:\n{}", table.join("\n"));
    }
}

/// `<deployment state> <intent>: <actions of the dry run>`, or the refusal's kind.
const WANT_CD_TABLE: &str = "
    none canary: create:1->2:canary-10pct-1min follow: note:2 done:Completed(Version(2))
    none canary-v2: create:1->2:canary-10pct-1min follow: note:2 done:Completed(Version(2))
    none canary-v3: refused(Guard):UpstreamNotServed
    none canary-w25: refused(BadInput):NotOnCodeDeploy
    none canary-bake: refused(BadInput):NotOnCodeDeploy
    none advance: refused(BadInput):NotOnCodeDeploy
    none complete: refused(BadInput):NotOnCodeDeploy
    none rollback: done:Noop
    none to-previous: refused(BadInput):NoPrevious
    to-2 canary: follow:d-1 note:2 done:Completed(Version(2))
    to-2 canary-v2: follow:d-1 note:2 done:Completed(Version(2))
    to-2 canary-v3: refused(Guard):DeploymentInFlight
    to-2 canary-w25: refused(BadInput):NotOnCodeDeploy
    to-2 canary-bake: refused(BadInput):NotOnCodeDeploy
    to-2 advance: refused(BadInput):NotOnCodeDeploy
    to-2 complete: refused(BadInput):NotOnCodeDeploy
    to-2 rollback: stop:d-1:stopped by `promote rollback` note:1 done:RolledBackByOperator { to: Version(1) }
    to-2 to-previous: stop:d-1:stopped by `promote rollback` note:1 done:RolledBackByOperator { to: Version(1) }
    to-2-created canary: follow:d-1 note:2 done:Completed(Version(2))
    to-2-created canary-v2: follow:d-1 note:2 done:Completed(Version(2))
    to-2-created canary-v3: refused(Guard):DeploymentInFlight
    to-2-created canary-w25: refused(BadInput):NotOnCodeDeploy
    to-2-created canary-bake: refused(BadInput):NotOnCodeDeploy
    to-2-created advance: refused(BadInput):NotOnCodeDeploy
    to-2-created complete: refused(BadInput):NotOnCodeDeploy
    to-2-created rollback: stop:d-1:stopped by `promote rollback` note:1 done:RolledBackByOperator { to: Version(1) }
    to-2-created to-previous: stop:d-1:stopped by `promote rollback` note:1 done:RolledBackByOperator { to: Version(1) }
    to-3 canary: follow:d-1 note:3 done:Completed(Version(3))
    to-3 canary-v2: refused(Guard):DeploymentInFlight
    to-3 canary-v3: follow:d-1 note:3 done:Completed(Version(3))
    to-3 canary-w25: refused(BadInput):NotOnCodeDeploy
    to-3 canary-bake: refused(BadInput):NotOnCodeDeploy
    to-3 advance: refused(BadInput):NotOnCodeDeploy
    to-3 complete: refused(BadInput):NotOnCodeDeploy
    to-3 rollback: stop:d-1:stopped by `promote rollback` note:1 done:RolledBackByOperator { to: Version(1) }
    to-3 to-previous: stop:d-1:stopped by `promote rollback` note:1 done:RolledBackByOperator { to: Version(1) }
    foreign canary: refused(Guard):DeploymentInFlight
    foreign canary-v2: refused(Guard):DeploymentInFlight
    foreign canary-v3: refused(Guard):DeploymentInFlight
    foreign canary-w25: refused(BadInput):NotOnCodeDeploy
    foreign canary-bake: refused(BadInput):NotOnCodeDeploy
    foreign advance: refused(BadInput):NotOnCodeDeploy
    foreign complete: refused(BadInput):NotOnCodeDeploy
    foreign rollback: stop:d-F:stopped by `promote rollback` done:RolledBackByOperator { to: Version(1) }
    foreign to-previous: stop:d-F:stopped by `promote rollback` done:RolledBackByOperator { to: Version(1) }
    its-rollback canary: refused(Guard):DeploymentInFlight
    its-rollback canary-v2: refused(Guard):DeploymentInFlight
    its-rollback canary-v3: refused(Guard):DeploymentInFlight
    its-rollback canary-w25: refused(BadInput):NotOnCodeDeploy
    its-rollback canary-bake: refused(BadInput):NotOnCodeDeploy
    its-rollback advance: refused(BadInput):NotOnCodeDeploy
    its-rollback complete: refused(BadInput):NotOnCodeDeploy
    its-rollback rollback: done:Noop
    its-rollback to-previous: done:Noop
    succeeded canary: done:Noop
    succeeded canary-v2: done:Noop
    succeeded canary-v3: refused(Guard):UpstreamNotServed
    succeeded canary-w25: refused(BadInput):NotOnCodeDeploy
    succeeded canary-bake: refused(BadInput):NotOnCodeDeploy
    succeeded advance: refused(BadInput):NotOnCodeDeploy
    succeeded complete: refused(BadInput):NotOnCodeDeploy
    succeeded rollback: done:Noop
    succeeded to-previous: rollback:1 done:RolledBackByOperator { to: Version(1) }
    failed canary: refused(Guard):SplitWithoutDeployment
    failed canary-v2: refused(Guard):SplitWithoutDeployment
    failed canary-v3: refused(Guard):SplitWithoutDeployment
    failed canary-w25: refused(BadInput):NotOnCodeDeploy
    failed canary-bake: refused(BadInput):NotOnCodeDeploy
    failed advance: refused(BadInput):NotOnCodeDeploy
    failed complete: refused(BadInput):NotOnCodeDeploy
    failed rollback: rollback:1 done:RolledBackByOperator { to: Version(1) }
    failed to-previous: rollback:1 done:RolledBackByOperator { to: Version(1) }
    stopped canary: create:1->2:canary-10pct-1min follow: note:2 done:Completed(Version(2))
    stopped canary-v2: create:1->2:canary-10pct-1min follow: note:2 done:Completed(Version(2))
    stopped canary-v3: refused(Guard):UpstreamNotServed
    stopped canary-w25: refused(BadInput):NotOnCodeDeploy
    stopped canary-bake: refused(BadInput):NotOnCodeDeploy
    stopped advance: refused(BadInput):NotOnCodeDeploy
    stopped complete: refused(BadInput):NotOnCodeDeploy
    stopped rollback: done:Noop
    stopped to-previous: refused(BadInput):NoPrevious
";

fn cd_goal(o: &Observed, overrides: Overrides) -> Goal {
    resolve(&cd_stage(), &canary(), o, overrides).unwrap()
}

fn with_dep(alias: AliasView, note: &Note, d: Option<DeploymentView>) -> State {
    State {
        alias,
        note: note.clone(),
        deployment: d,
    }
}

/// Failing evidence on a CodeDeploy stage, by where the deployment is: before one exists it
/// refuses; while one runs it is stopped with CodeDeploy's rollback and the note records why
/// once the traffic is back; after one succeeded the alias is taken back by a write; a
/// deployment that succeeded before the stop landed, or ended without a rollback, is said
/// as it is (exit 1).
#[test]
fn failing_evidence_on_a_codedeploy_stage_acts_by_where_the_deployment_is() {
    let o = cd_obs(at(1), Note::default(), None);
    let goal = cd_goal(&o, Overrides::default());
    let failing = |m: Memory| Memory {
        failure: Some("alarm x is ALARM".into()),
        ..m
    };
    let none = Note::default();
    // The pre-flight failed: nothing created, nothing written (exit 3).
    let a = decide(
        &goal,
        &with_dep(at(1), &none, None),
        &failing(Memory::default()),
    );
    assert!(
        matches!(&a, Action::Refuse(e @ PlanError::DeploymentNotCreated { .. }) if e.refusal() == Refusal::Guard),
        "{a:?}"
    );
    // While it shifts: stop it with rollback, saying why.
    let running = Some(dep("d-1", 1, 2, Status::InProgress));
    let created = Memory {
        created: Some("d-1".into()),
        ..Memory::default()
    };
    assert_eq!(
        decide(
            &goal,
            &with_dep(split(1, 2, "10"), &none, running.clone()),
            &failing(created.clone())
        ),
        Action::StopDeployment {
            deployment: "d-1".into(),
            reason: "alarm x is ALARM".into()
        }
    );
    // CodeDeploy took the traffic back: the note records the rollback, then exit 4.
    let stopped = failing(Memory {
        ended: Some(Ended::RolledBack),
        ..created.clone()
    });
    let Action::Write(w) = decide(&goal, &with_dep(at(1), &none, None), &stopped) else {
        panic!()
    };
    assert_eq!((w.kind, w.to), (WriteKind::Note, at(1)));
    assert_eq!(
        w.note.was_rolled_back(v(2)).unwrap().why,
        "alarm x is ALARM"
    );
    assert_eq!(
        decide(&goal, &with_dep(at(1), &w.note, None), &stopped),
        Action::Done(Done::RolledBack {
            reason: "alarm x is ALARM".into(),
            to: v(1)
        })
    );
    // The deployment had succeeded when the bake failed: no deployment to stop, so the
    // alias engine's rollback write takes the candidate back.
    let Action::Write(w) = decide(
        &goal,
        &with_dep(at(2), &none, None),
        &failing(created.clone()),
    ) else {
        panic!()
    };
    assert_eq!((w.kind, w.to), (WriteKind::AutoRollback, at(1)));
    // The stop came too late: the success is recorded, then exit 1 with the way back.
    let late = failing(Memory {
        ended: Some(Ended::Succeeded {
            deployment: "d-1".into(),
        }),
        ..created.clone()
    });
    let Action::Write(w) = decide(&goal, &with_dep(at(2), &none, None), &late) else {
        panic!()
    };
    assert_eq!(w.note.previous, Some(v(1)));
    let Action::Done(Done::Stranded(m)) = decide(&goal, &with_dep(at(2), &w.note, None), &late)
    else {
        panic!()
    };
    assert!(
        m.contains("succeeded before it could be stopped") && m.contains("--to-previous"),
        "{m}"
    );
    // Ended without a rollback (a hook failed): said as CodeDeploy said it.
    let failed = Memory {
        ended: Some(Ended::Failed(
            "HOOK_FAILED: BeforeAllowTraffic failed".into(),
        )),
        ..created
    };
    assert_eq!(
        decide(&goal, &with_dep(split(1, 2, "10"), &none, None), &failed),
        Action::Done(Done::Stranded(
            "HOOK_FAILED: BeforeAllowTraffic failed".into()
        ))
    );
}

#[test]
fn a_codedeploy_override_is_on_the_note_before_the_deployment_starts() {
    let o = cd_obs(at(1), Note::default(), None);
    let overrides = Overrides {
        skip_upstream: Some("hotfix".into()),
        ..Overrides::default()
    };
    let goal = resolve(
        &cd_stage(),
        &Intent::Canary {
            version: Some(v(3)),
            weight: None,
            allow_downgrade: false,
            retry: false,
        },
        &o,
        overrides,
    )
    .unwrap();
    let acts = simulate(&goal, &o.state());
    assert_eq!(
        trace(&acts),
        [
            "note:1",
            "create:1->3:canary-10pct-1min",
            "follow:",
            "note:3",
            "done:Completed(Version(3))"
        ]
    );
    let Action::Write(first) = &acts[0] else {
        panic!()
    };
    assert_eq!(first.note.upstream_skip.as_ref().unwrap().reason, "hotfix");
    let Action::Write(last) = &acts[3] else {
        panic!()
    };
    assert_eq!(last.note.upstream_skip.as_ref().unwrap().version, v(3));
}

/// A canary on a CodeDeploy stage killed (`kill -9`) at each point, as AWS then reads: the
/// rerun follows what is in flight and never creates a second deployment, never stops
/// CodeDeploy's own rollback, and ends where the first run would have.
#[test]
fn a_codedeploy_canary_killed_anywhere_resumes_without_a_second_deployment() {
    let none = Note::default();
    let o = cd_obs(at(1), none.clone(), None);
    let goal = cd_goal(&o, Overrides::default());
    let completed = none.completed(v(2), v(1), true);
    let rb = DeploymentView {
        rollback_of: Some("d-1".into()),
        ..dep("d-RB", 2, 1, Status::InProgress)
    };
    // (where it was killed, what the rerun reads, what a `canary` rerun does)
    let points: Vec<(&str, AliasView, Note, Option<DeploymentView>, &str)> = vec![
        (
            "before the create",
            at(1),
            none.clone(),
            None,
            "create:1->2:canary-10pct-1min follow: note:2 done:Completed(Version(2))",
        ),
        (
            "after the create",
            at(1),
            none.clone(),
            Some(dep("d-1", 1, 2, Status::Created)),
            "follow:d-1 note:2 done:Completed(Version(2))",
        ),
        (
            "while CodeDeploy holds 10%",
            split(1, 2, "10"),
            none.clone(),
            Some(dep("d-1", 1, 2, Status::InProgress)),
            "follow:d-1 note:2 done:Completed(Version(2))",
        ),
        (
            "while CodeDeploy bakes at 100%",
            at(2),
            none.clone(),
            Some(dep("d-1", 1, 2, Status::Baking)),
            "follow:d-1 note:2 done:Completed(Version(2))",
        ),
        // The judge's stop landed; CodeDeploy's rollback runs: never followed as a rollout.
        (
            "after the stop",
            split(1, 2, "10"),
            none.clone(),
            Some(rb.clone()),
            "refused(Guard):DeploymentInFlight",
        ),
        // Succeeded, the note not yet written: the stage serves the candidate, so the
        // rerun has nothing to roll out (the note then lacks `previous`: a known gap, as
        // CodeDeploy's success cannot be told from one whose bake never ran).
        (
            "after the success, before the note",
            at(2),
            none.clone(),
            None,
            "done:Noop",
        ),
        (
            "after the note",
            at(2),
            completed.clone(),
            None,
            "done:Noop",
        ),
    ];
    let full = trace(&simulate(&goal, &o.state()));
    assert_eq!(full.len(), 4, "{full:?}");
    for (point, alias, note, d, want) in points {
        let again = cd_obs(alias, note, d.clone());
        let t = cd_run(canary(), &again, Overrides::default());
        assert_eq!(t.join(" "), want, "killed {point}");
        if d.as_ref().is_some_and(|d| d.status.in_flight()) {
            assert!(
                !t.iter().any(|a| a.starts_with("create")),
                "killed {point}: {t:?}"
            );
        }
        // A rollback rerun stops a rollout in flight, never CodeDeploy's rollback.
        let back = cd_run(
            Intent::Rollback { to_previous: false },
            &again,
            Overrides::default(),
        );
        match &d {
            Some(d) if d.rollback_of.is_none() => {
                assert_eq!(
                    back[0],
                    format!("stop:{}:{STOPPED_BY_OPERATOR}", d.id),
                    "{point}"
                )
            }
            _ => assert!(
                !back.iter().any(|a| a.starts_with("stop")),
                "{point}: {back:?}"
            ),
        }
    }
    // Killed during the follow, the rerun's memory is empty: the bake starts over on the
    // deployment in flight, and a failing verdict then stops it like the first run would.
    let again = cd_obs(
        split(1, 2, "10"),
        none.clone(),
        Some(dep("d-1", 1, 2, Status::InProgress)),
    );
    let goal = cd_goal(&again, Overrides::default());
    let failing = Memory {
        failure: Some("alarm".into()),
        ..Memory::default()
    };
    assert!(matches!(
        decide(&goal, &again.state(), &failing),
        Action::StopDeployment { ref deployment, .. } if deployment == "d-1"
    ));
}

// ---- Releases of several functions (`release`) ----

mod releases {
    use std::collections::BTreeMap;

    use super::*;
    use crate::machine::release::*;

    const FUNCTIONS: [&str; 2] = ["app", "birthday"];

    /// Every function's alias and note on the stage; the upstream stage serves version 2 of
    /// every function.
    #[derive(Clone)]
    struct World {
        aliases: Vec<(String, AliasView, Note)>,
    }

    impl World {
        fn at(version: u64, functions: &[&str]) -> World {
            World {
                aliases: functions
                    .iter()
                    .map(|f| (f.to_string(), at(version), Note::default()))
                    .collect(),
            }
        }

        fn observe(&self) -> Vec<FunctionObserved> {
            self.aliases
                .iter()
                .map(|(f, alias, note)| FunctionObserved {
                    function: f.clone(),
                    observed: obs(*alias, note.clone(), at(2)),
                })
                .collect()
        }

        fn state(&self, function: &str) -> State {
            let (_, alias, note) = self.aliases.iter().find(|(f, ..)| f == function).unwrap();
            now(alias, note)
        }

        fn write(&mut self, function: &str, to: AliasView, note: Note) {
            let entry = self
                .aliases
                .iter_mut()
                .find(|(f, ..)| f == function)
                .unwrap();
            entry.1 = to;
            entry.2 = note;
        }

        fn alias(&self, function: &str) -> AliasView {
            self.state(function).alias
        }
    }

    /// How a run ended.
    #[derive(Debug, PartialEq)]
    enum End {
        Done(Vec<(String, Done)>),
        Refused(String, String),
        Killed,
    }

    /// What the test injects: the function failing its bake at a weight (and why), the
    /// write after which the run is killed, the write that fails.
    #[derive(Default, Clone)]
    struct Faults {
        failing: Option<(&'static str, &'static str)>,
        kill_after_write: Option<usize>,
        write_fails: Option<usize>,
    }

    /// Runs the release on the world as the executor does, one action at a time, and traces
    /// every write (`app shift:1+2@10%`), bake (`bake:10%@300s app,birthday`) and the end.
    fn execute(
        world: &mut World,
        stage: &Stage,
        intent: &Intent,
        faults: &Faults,
    ) -> (Vec<String>, End) {
        let mut trace = Vec::new();
        let goal = match resolve_release(
            stage,
            intent,
            &BTreeMap::new(),
            &world.observe(),
            Overrides::default(),
        ) {
            Ok(g) => g,
            Err(r) => return (trace, End::Refused(r.function, r.error.to_string())),
        };
        let mut mems = goal.memory();
        let mut writes = 0;
        for _ in 0..100 {
            let states: Vec<State> = goal.moves.iter().map(|(f, _)| world.state(f)).collect();
            match decide_release(&goal, &states, &mems) {
                ReleaseAction::Apply {
                    function,
                    action: Action::Write(w),
                } => {
                    writes += 1;
                    if faults.write_fails == Some(writes) {
                        trace.push(format!(
                            "{function} {}:{} FAILED",
                            w.kind.as_str(),
                            show(&w.to)
                        ));
                        fail(
                            &mut mems,
                            &format!("writing the alias of {function} failed"),
                        );
                        continue;
                    }
                    trace.push(format!("{function} {}:{}", w.kind.as_str(), show(&w.to)));
                    world.write(&function, w.to, w.note);
                    record_write(&goal, &mut mems, &function);
                    if faults.kill_after_write == Some(writes) {
                        return (trace, End::Killed);
                    }
                }
                a @ (ReleaseAction::Apply { .. }
                | ReleaseAction::Stop { .. }
                | ReleaseAction::Follow { .. }) => {
                    panic!("an alias stage applies only writes and bakes, got {a:?}")
                }
                ReleaseAction::Bake {
                    weight,
                    bake,
                    functions,
                    ..
                } => {
                    trace.push(format!(
                        "bake:{weight}@{}s {}",
                        bake.as_secs(),
                        functions.join(",")
                    ));
                    let verdicts: Vec<_> = functions
                        .iter()
                        .map(|f| {
                            let failing = faults
                                .failing
                                .is_some_and(|(ff, at)| ff == f && w(at) == weight);
                            (
                                f.clone(),
                                if failing {
                                    Err("errors above 1%".to_string())
                                } else {
                                    Ok(())
                                },
                            )
                        })
                        .collect();
                    record_bake(&goal, &mut mems, weight, &verdicts);
                }
                ReleaseAction::Done(d) => return (trace, End::Done(d)),
                ReleaseAction::Refuse(r) => {
                    return (trace, End::Refused(r.function, r.error.to_string()));
                }
            }
        }
        panic!("the release did not end within 100 actions: {trace:?}")
    }

    fn completed(functions: &[&str], version: u64) -> End {
        End::Done(
            functions
                .iter()
                .map(|f| (f.to_string(), Done::Completed(v(version))))
                .collect(),
        )
    }

    #[test]
    fn both_functions_walk_the_live_plan_in_lockstep() {
        let mut world = World::at(1, &FUNCTIONS);
        let (trace, end) = execute(&mut world, &canary_stage(), &canary(), &Faults::default());
        assert_eq!(
            trace,
            [
                "app shift:1+2@10%",
                "birthday shift:1+2@10%",
                "bake:10%@300s app,birthday",
                "app shift:1+2@50%",
                "birthday shift:1+2@50%",
                "bake:50%@300s app,birthday",
                "app complete:2",
                "birthday complete:2",
                "bake:100%@120s app,birthday",
                "app mark_baked:2",
                "birthday mark_baked:2",
            ]
        );
        assert_eq!(end, completed(&FUNCTIONS, 2));
        for f in FUNCTIONS {
            let note = world.state(f).note;
            assert_eq!(
                note.release,
                [("app".to_string(), v(2)), ("birthday".to_string(), v(2))],
                "the note records the release"
            );
            assert_eq!(note.previous, Some(v(1)));
            assert_eq!(note.served, [v(2)]);
        }
    }

    #[test]
    fn a_function_already_serving_its_version_stays_and_the_others_move() {
        let mut world = World::at(1, &FUNCTIONS);
        world.write("app", at(2), Note::default().completed(v(2), v(1), true));
        let (trace, end) = execute(&mut world, &aao_stage(), &deploy(), &Faults::default());
        assert_eq!(
            trace,
            [
                "birthday complete:2",
                "bake:100%@60s birthday",
                "birthday mark_baked:2"
            ]
        );
        assert_eq!(
            end,
            End::Done(vec![("birthday".into(), Done::Completed(v(2)))])
        );
    }

    #[test]
    fn one_function_failing_its_bake_takes_every_function_back() {
        for at_weight in ["10", "50", "100"] {
            let mut world = World::at(1, &FUNCTIONS);
            let faults = Faults {
                failing: Some(("birthday", at_weight)),
                ..Faults::default()
            };
            let (trace, end) = execute(&mut world, &canary_stage(), &canary(), &faults);
            let tail: Vec<&str> = trace.iter().rev().take(2).map(String::as_str).collect();
            assert_eq!(tail, ["birthday rollback:1", "app rollback:1"], "{trace:?}");
            let End::Done(done) = end else {
                panic!("{end:?}")
            };
            assert_eq!(done.len(), 2);
            for (f, d) in &done {
                assert_eq!(
                    *d,
                    Done::RolledBack {
                        reason: "function birthday: errors above 1%".into(),
                        to: v(1)
                    },
                    "{f}"
                );
            }
            assert!(rolled_back(&done).is_some());
            for f in FUNCTIONS {
                assert_eq!(world.alias(f), at(1), "{f} back on version 1");
                let rb = world.state(f).note.rolled_back.unwrap();
                assert_eq!(
                    (rb.version, rb.why.as_str()),
                    (v(2), "function birthday: errors above 1%")
                );
            }
        }
    }

    /// The candidate's weight of every function over a run, to check none goes backwards
    /// except by a rollback.
    fn weights(world: &World) -> Vec<Option<Weight>> {
        FUNCTIONS
            .iter()
            .map(|f| weight_of(position(&world.alias(f), v(2))))
            .collect()
    }

    #[test]
    fn a_kill_after_each_write_of_each_step_resumes_to_the_same_end() {
        // 2 functions x (10%, 50%, complete, mark baked) = 8 writes.
        for kill in 1..=8 {
            let mut world = World::at(1, &FUNCTIONS);
            let faults = Faults {
                kill_after_write: Some(kill),
                ..Faults::default()
            };
            let (_, end) = execute(&mut world, &canary_stage(), &canary(), &faults);
            assert_eq!(end, End::Killed, "kill after write {kill}");
            let before = weights(&world);
            let (trace, end) = execute(&mut world, &canary_stage(), &canary(), &Faults::default());
            // Every function the rerun moved completed; the others had already.
            assert!(
                end_versions(&end).iter().all(|x| *x == 2),
                "kill after write {kill}: {trace:?} {end:?}"
            );
            // The first write of the rerun finishes the half-written step: never backwards.
            let rerun_first = trace.first().cloned().unwrap_or_default();
            assert!(
                !rerun_first.contains("rollback"),
                "kill {kill}: {rerun_first}"
            );
            for (b, f) in before.iter().zip(FUNCTIONS) {
                let after = weight_of(position(&world.alias(f), v(2)));
                assert!(after >= *b, "kill {kill}: {f} went from {b:?} to {after:?}");
                assert!(
                    !world.state(f).note.pending_final_bake(v(2)),
                    "kill {kill}: {f}"
                );
            }
            if [1, 3, 5].contains(&kill) {
                // The second function's write of the step never landed: the rerun writes it
                // before any bake.
                assert!(trace[0].starts_with("birthday "), "kill {kill}: {trace:?}");
            }
        }
    }

    fn end_versions(end: &End) -> Vec<u64> {
        match end {
            End::Done(d) => d
                .iter()
                .map(|(_, d)| match d {
                    Done::Completed(x) => x.get(),
                    Done::RolledBack { to, .. } => to.get(),
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_kill_during_the_rollback_is_finished_by_the_rerun() {
        // Writes: app 10, birthday 10, app 50, birthday 50, then the failing 50% bake rolls
        // back app (write 5) and birthday (write 6).
        let failing = Faults {
            failing: Some(("birthday", "50")),
            ..Faults::default()
        };
        let mut world = World::at(1, &FUNCTIONS);
        let (_, end) = execute(
            &mut world,
            &canary_stage(),
            &canary(),
            &Faults {
                kill_after_write: Some(5),
                ..failing.clone()
            },
        );
        assert_eq!(end, End::Killed);
        assert_eq!(world.alias("app"), at(1));
        assert_eq!(world.alias("birthday"), split(1, 2, "50"));
        let (trace, end) = execute(&mut world, &canary_stage(), &canary(), &Faults::default());
        assert_eq!(trace, ["birthday rollback:1"]);
        let End::Done(done) = end else {
            panic!("{end:?}")
        };
        assert!(done.iter().all(|(_, d)| matches!(d, Done::RolledBack { to, reason } if *to == v(1) && reason == "function birthday: errors above 1%")), "{done:?}");
        for f in FUNCTIONS {
            assert_eq!(world.alias(f), at(1));
        }
        // Once both are back, a rerun refuses the rolled-back candidate, as for one function.
        let (_, end) = execute(&mut world, &canary_stage(), &canary(), &Faults::default());
        assert!(
            matches!(&end, End::Refused(f, e) if f == "app" && e.contains("rolled back")),
            "{end:?}"
        );
    }

    #[test]
    fn a_write_failing_part_way_through_a_step_undoes_the_step() {
        // Write 3 is app's 50% (app's and birthday's 10% landed); write 4 birthday's.
        for failing_write in [3, 4] {
            let mut world = World::at(1, &FUNCTIONS);
            let faults = Faults {
                write_fails: Some(failing_write),
                ..Faults::default()
            };
            let (trace, end) = execute(&mut world, &canary_stage(), &canary(), &faults);
            assert!(trace.iter().any(|t| t.ends_with("FAILED")), "{trace:?}");
            assert_eq!(end_versions(&end), [1, 1], "{trace:?}");
            for f in FUNCTIONS {
                assert_eq!(world.alias(f), at(1), "{f} consistent again: {trace:?}");
            }
        }
    }

    #[test]
    fn a_refusal_of_one_function_refuses_the_release_and_writes_nothing() {
        let mut world = World::at(1, &FUNCTIONS);
        world.write("birthday", split(1, 3, "10"), Note::default());
        let before = world.aliases.clone();
        let (trace, end) = execute(&mut world, &aao_stage(), &deploy(), &Faults::default());
        assert!(trace.is_empty());
        assert!(
            matches!(&end, End::Refused(f, _) if f == "birthday"),
            "{end:?}"
        );
        assert_eq!(
            world.aliases.iter().map(|a| a.1).collect::<Vec<_>>(),
            before.iter().map(|a| a.1).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_release_of_one_function_decides_what_the_single_machine_decides() {
        let cases = [
            (canary_stage(), canary(), at(1), Note::default()),
            (aao_stage(), deploy(), at(1), Note::default()),
            (canary_stage(), canary(), split(1, 2, "50"), Note::default()),
            (
                canary_stage(),
                Intent::Advance { weight: None },
                split(1, 2, "10"),
                Note::default(),
            ),
            (
                canary_stage(),
                Intent::Complete,
                split(1, 2, "10"),
                Note::default(),
            ),
            (
                canary_stage(),
                Intent::Rollback { to_previous: false },
                split(1, 2, "10"),
                Note::default(),
            ),
        ];
        for (stage, intent, alias, note) in cases {
            let o = obs(alias, note.clone(), at(2));
            let single = simulate(
                &resolve(&stage, &intent, &o, Overrides::default()).unwrap(),
                &now(&alias, &note),
            );
            let goal = resolve_release(
                &stage,
                &intent,
                &BTreeMap::new(),
                &[FunctionObserved {
                    function: "app".into(),
                    observed: o,
                }],
                Overrides::default(),
            )
            .unwrap();
            let released: Vec<Action> = simulate_release(&goal, &[now(&alias, &note)])
                .into_iter()
                .map(|a| match a {
                    ReleaseAction::Apply { action, .. } => action,
                    ReleaseAction::Bake {
                        step,
                        of,
                        weight,
                        bake,
                        ..
                    } => Action::Bake {
                        step,
                        of,
                        weight,
                        bake,
                    },
                    ReleaseAction::Done(mut d) => Action::Done(d.pop().unwrap().1),
                    ReleaseAction::Refuse(r) => Action::Refuse(*r.error),
                    other => panic!("an alias stage neither stops nor follows: {other:?}"),
                })
                .collect();
            assert_eq!(released, single, "{intent:?} from {alias:?}");
        }
    }

    /// A function already serving what upstream serves stays, and its advice names it with
    /// --release (in a release, --version is the first function's candidate).
    #[test]
    fn a_function_with_nothing_to_roll_out_is_advised_to_name_its_own_candidate() {
        let world = World::at(2, &FUNCTIONS);
        let goal = resolve_release(
            &aao_stage(),
            &Intent::Deploy {
                version: None,
                allow_downgrade: false,
                retry: false,
            },
            &BTreeMap::new(),
            &world.observe(),
            Overrides::default(),
        )
        .unwrap();
        assert!(goal.moves.is_empty(), "{:?}", goal.moves);
        for (function, why) in &goal.stays {
            assert!(
                why.contains(&format!("--release {function}=N`")) && !why.contains("--version N"),
                "{function}: {why}"
            );
        }
        assert_eq!(goal.stays.len(), 2);
    }

    #[test]
    fn the_release_versions_name_each_functions_candidate() {
        let world = World::at(1, &FUNCTIONS);
        let versions = BTreeMap::from([("app".to_string(), v(3)), ("birthday".to_string(), v(2))]);
        let goal = resolve_release(
            &aao_stage(),
            &Intent::Deploy {
                version: None,
                allow_downgrade: false,
                retry: false,
            },
            &versions,
            &world.observe(),
            Overrides {
                skip_upstream: Some("hotfix".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(
            goal.release,
            [("app".to_string(), v(3)), ("birthday".to_string(), v(2))]
        );
        let states: Vec<State> = FUNCTIONS.iter().map(|f| world.state(f)).collect();
        let plan = simulate_release(&goal, &states);
        let ReleaseAction::Apply {
            action: Action::Write(first),
            ..
        } = &plan[0]
        else {
            panic!("{plan:?}")
        };
        assert_eq!(first.to, at(3));
        assert_eq!(first.note.release, goal.release);
    }

    #[test]
    fn a_function_with_nothing_to_move_stays_while_another_moves() {
        let mut world = World::at(1, &FUNCTIONS);
        world.write("app", split(1, 2, "10"), Note::default());
        let (trace, end) = execute(
            &mut world,
            &canary_stage(),
            &Intent::Advance { weight: None },
            &Faults::default(),
        );
        assert_eq!(trace, ["app shift:1+2@50%", "bake:50%@300s app"]);
        assert_eq!(
            end,
            End::Done(vec![("app".into(), Done::Split(v(2), w("50")))])
        );
        // rollback --to-previous returns the functions that have a version before.
        let mut back = World::at(1, &FUNCTIONS);
        back.write("app", at(2), Note::default().completed(v(2), v(1), true));
        let (trace, _) = execute(
            &mut back,
            &canary_stage(),
            &Intent::Rollback { to_previous: true },
            &Faults::default(),
        );
        assert_eq!(trace, ["app rollback:1"]);
        assert_eq!(back.alias("birthday"), at(1));
        // With nothing to move anywhere, the refusal is the first function's.
        let mut idle = World::at(1, &FUNCTIONS);
        let (_, end) = execute(
            &mut idle,
            &canary_stage(),
            &Intent::Advance { weight: None },
            &Faults::default(),
        );
        assert!(
            matches!(&end, End::Refused(f, e) if f == "app" && e.contains("no canary")),
            "{end:?}"
        );
    }

    fn deploy() -> Intent {
        Intent::Deploy {
            version: None,
            allow_downgrade: false,
            retry: false,
        }
    }
}
