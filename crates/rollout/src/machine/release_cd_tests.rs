//! A release of several functions on a stage CodeDeploy shifts, decided over a table of how
//! each function's deployment goes, with `kill -9` between any two acts and a rerun.
//!
//! CodeDeploy itself is modelled here (a deployment ends as the function's script says, a
//! stop takes the traffic back unless the deployment succeeded first); the executor's own
//! tests drive the same decisions against the in-memory CodeDeploy stand-in.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::codedeploy::{Engine, Hooks, Shift, Status};
use crate::machine::Published;
use crate::note::Note;
use crate::plan::{AliasView, Split, Upstream};
use crate::spec::{Step, Strategy};

fn v(n: u64) -> Version {
    Version::new(n).unwrap()
}

fn at(n: u64) -> AliasView {
    AliasView {
        version: v(n),
        split: None,
    }
}

fn split10(stable: u64, cand: u64) -> AliasView {
    AliasView {
        version: v(stable),
        split: Some(Split {
            version: v(cand),
            weight: Weight::parse_percent("10").unwrap(),
        }),
    }
}

/// live on CodeDeploy: 10% for a minute, then 100% (a TimeBasedCanary per function).
fn cd_stage() -> Stage {
    let strategy = Strategy::Canary {
        steps: vec![
            Step {
                weight: Weight::parse_percent("10").unwrap(),
                bake: Duration::from_secs(60),
            },
            Step {
                weight: Weight::FULL,
                bake: Duration::ZERO,
            },
        ],
    };
    Stage {
        name: "live".into(),
        upstream: Some("test".into()),
        strategy: strategy.clone(),
        poll_interval: Duration::from_secs(5),
        insufficient_data_is_failure: false,
        approval_required: false,
        alarms: vec![],
        analysis: crate::spec::Analysis::default_for(&strategy),
        engine: Engine::CodeDeploy,
        hooks: Hooks::default(),
        path: PathBuf::from("environments/live.json"),
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

/// How a function's deployment goes once created.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Script {
    /// Shifts, then succeeds; its judge passes.
    Succeeds,
    /// Succeeds before any other deployment has ended.
    SucceedsFirst,
    /// Its judge fails (an alarm, the probe) while it holds 10%.
    JudgeFails,
    /// CodeDeploy rolls it back on the group's alarm.
    RolledBackByCodeDeploy,
    /// Still shifting when another fails, but succeeded by the time its stop lands.
    SucceedsBeforeStop,
}

impl Script {
    /// When the follow sees it end, in the order of the scripts' ends.
    fn ends_at(self) -> u8 {
        match self {
            Script::SucceedsFirst => 0,
            Script::JudgeFails | Script::RolledBackByCodeDeploy => 1,
            Script::Succeeds | Script::SucceedsBeforeStop => 2,
        }
    }
}

#[derive(Debug, Clone)]
struct Function {
    name: String,
    alias: AliasView,
    note: Note,
    deployment: Option<DeploymentView>,
    script: Script,
}

#[derive(Debug, Clone)]
struct World {
    functions: Vec<Function>,
    created: usize,
}

impl World {
    fn new(scripts: &[(&str, Script)]) -> World {
        World {
            functions: scripts
                .iter()
                .map(|(f, s)| Function {
                    name: f.to_string(),
                    alias: at(1),
                    note: Note::default(),
                    deployment: None,
                    script: *s,
                })
                .collect(),
            created: 0,
        }
    }

    fn get(&mut self, f: &str) -> &mut Function {
        self.functions.iter_mut().find(|x| x.name == f).unwrap()
    }

    /// What the executor reads: each function's alias, note and deployment in flight
    /// (found by ListDeployments on its own group).
    fn observe(&self) -> Vec<FunctionObserved> {
        self.functions
            .iter()
            .map(|f| FunctionObserved {
                function: f.name.clone(),
                observed: Observed {
                    stage: "live".into(),
                    alias: f.alias,
                    note: f.note.clone(),
                    published: (1..=3)
                        .map(|n| Published {
                            version: v(n),
                            description: format!("{} 0.{n}.0 {}", f.name, "a".repeat(40)),
                        })
                        .collect(),
                    upstream: Some(Upstream {
                        name: "test".into(),
                        view: at(2),
                        note: Note::default(),
                    }),
                    deployment: f.deployment.clone().filter(|d| d.status.in_flight()),
                },
            })
            .collect()
    }

    fn state(&self, f: &str) -> State {
        let x = self.functions.iter().find(|x| x.name == f).unwrap();
        State {
            alias: x.alias,
            note: x.note.clone(),
            deployment: x.deployment.clone(),
        }
    }
}

#[derive(Debug, PartialEq)]
enum End {
    Done(Vec<(String, Done)>),
    Refused(String),
    Killed,
}

/// Runs the release as the executor does and traces every act: `create app`,
/// `follow app,birthday`, `stop app,birthday`, `app note:1`, `app rollback:1`. Killed after
/// act `kill_after` (creates, stops and writes count).
fn execute(world: &mut World, kill_after: Option<usize>) -> (Vec<String>, End) {
    let stage = cd_stage();
    let mut trace = Vec::new();
    let goal = match resolve_release(
        &stage,
        &canary(),
        &BTreeMap::new(),
        &world.observe(),
        Overrides::default(),
    ) {
        Ok(g) => g,
        Err(r) => return (trace, End::Refused(format!("{}: {}", r.function, r.error))),
    };
    let mut mems = goal.memory();
    let mut acts = 0;
    let mut killed = |trace: &Vec<String>| {
        acts += 1;
        let _ = trace;
        kill_after == Some(acts)
    };
    for _ in 0..100 {
        let states: Vec<State> = goal.moves.iter().map(|(f, _)| world.state(f)).collect();
        match decide_release(&goal, &states, &mems) {
            ReleaseAction::Apply {
                function,
                action: Action::Write(w),
            } => {
                trace.push(format!(
                    "{function} {}:{}",
                    w.kind.as_str(),
                    w.to.version.get()
                ));
                let x = world.get(&function);
                x.alias = w.to;
                x.note = w.note;
                record_write(&goal, &mut mems, &function);
            }
            ReleaseAction::Apply {
                function,
                action:
                    Action::CreateDeployment {
                        candidate, stable, ..
                    },
            } => {
                trace.push(format!("create {function}"));
                world.created += 1;
                let id = format!("d-{function}");
                world.get(&function).deployment = Some(DeploymentView {
                    id: id.clone(),
                    application: function.clone(),
                    config: "x".into(),
                    shift: Some(Shift {
                        current: stable,
                        target: candidate,
                    }),
                    status: Status::InProgress,
                    rollback_of: None,
                });
                world.get(&function).alias = split10(stable.get(), candidate.get());
                let i = goal.moves.iter().position(|(f, _)| *f == function).unwrap();
                mems[i].created = Some(id);
            }
            ReleaseAction::Apply { action, .. } => panic!("{action:?}"),
            ReleaseAction::Follow { deployments } => {
                let names: Vec<&str> = deployments.iter().map(|(f, _)| f.as_str()).collect();
                trace.push(format!("follow {}", names.join(",")));
                let mut order: Vec<(u8, String)> = deployments
                    .iter()
                    .map(|(f, _)| (world.get(f).script.ends_at(), f.clone()))
                    .collect();
                order.sort();
                // The follow ends at the first end that is not a pass.
                for (_, f) in order {
                    let i = goal.moves.iter().position(|(g, _)| *g == f).unwrap();
                    let x = world.get(&f);
                    let shift = x.deployment.as_ref().and_then(|d| d.shift).unwrap();
                    match x.script {
                        Script::Succeeds | Script::SucceedsFirst | Script::SucceedsBeforeStop => {
                            x.alias = at(shift.target.get());
                            x.deployment = None;
                            mems[i].baked.push(Weight::FULL);
                        }
                        Script::JudgeFails => {
                            fail(&mut mems, &failure_of(&goal, &f, "alarm errors is ALARM"));
                            break;
                        }
                        Script::RolledBackByCodeDeploy => {
                            x.alias = at(shift.current.get());
                            x.deployment = None;
                            mems[i].ended = Some(Ended::RolledBack);
                            fail(
                                &mut mems,
                                &failure_of(&goal, &f, "CodeDeploy rolled back its deployment"),
                            );
                            break;
                        }
                    }
                }
            }
            ReleaseAction::Stop { stops } => {
                let names: Vec<&str> = stops.iter().map(|(f, ..)| f.as_str()).collect();
                trace.push(format!("stop {}", names.join(",")));
                for (f, _, _) in &stops {
                    let x = world.get(f);
                    let shift = x.deployment.take().and_then(|d| d.shift).unwrap();
                    let ended = if x.script == Script::SucceedsBeforeStop {
                        x.alias = at(shift.target.get());
                        Ended::Succeeded {
                            deployment: format!("d-{f}"),
                        }
                    } else {
                        x.alias = at(shift.current.get());
                        Ended::RolledBack
                    };
                    record_stop(&goal, &mut mems, f, ended);
                }
            }
            ReleaseAction::Bake { .. } => panic!("a CodeDeploy stage follows, never bakes"),
            ReleaseAction::Done(d) => return (trace, End::Done(d)),
            ReleaseAction::Refuse(r) => {
                return (trace, End::Refused(format!("{}: {}", r.function, r.error)));
            }
        }
        let last = trace.last().cloned().unwrap_or_default();
        if !last.starts_with("follow") && killed(&trace) {
            return (trace, End::Killed);
        }
    }
    panic!("the release did not end: {trace:?}")
}

const BOTH: [&str; 2] = ["app", "birthday"];

fn versions(world: &World) -> Vec<AliasView> {
    world.functions.iter().map(|f| f.alias).collect()
}

#[test]
fn every_deployment_is_created_before_they_are_followed_together() {
    let mut world = World::new(&[("app", Script::Succeeds), ("birthday", Script::Succeeds)]);
    let (trace, end) = execute(&mut world, None);
    assert_eq!(
        trace,
        [
            "create app",
            "create birthday",
            "follow app,birthday",
            "app note:2",
            "birthday note:2",
        ]
    );
    assert_eq!(
        end,
        End::Done(
            BOTH.iter()
                .map(|f| (f.to_string(), Done::Completed(v(2))))
                .collect()
        )
    );
    assert_eq!(versions(&world), [at(2), at(2)]);
    for f in &world.functions {
        assert_eq!(
            f.note.release,
            [("app".into(), v(2)), ("birthday".into(), v(2))]
        );
        assert_eq!(f.note.previous, Some(v(1)), "{}", f.name);
    }
}

/// Any failure, of any function, however it comes: the rollback is recorded on the notes,
/// then every deployment still running is stopped in one act, and every function ends on
/// version 1.
#[test]
fn any_failure_stops_every_deployment_and_takes_every_function_back() {
    use Script::*;
    let cases: [(Script, Script, &[&str], &str); 5] = [
        (
            Succeeds,
            JudgeFails,
            &["app note:1", "birthday note:1", "stop app,birthday"],
            "function birthday: alarm errors is ALARM",
        ),
        (
            JudgeFails,
            Succeeds,
            &["app note:1", "birthday note:1", "stop app,birthday"],
            "function app: alarm errors is ALARM",
        ),
        // CodeDeploy took birthday back itself: only app is left to stop.
        (
            Succeeds,
            RolledBackByCodeDeploy,
            &["app note:1", "stop app", "birthday note:1"],
            "function birthday: CodeDeploy rolled back its deployment",
        ),
        // app's deployment had succeeded before its stop landed: its alias is written back.
        (
            SucceedsBeforeStop,
            JudgeFails,
            &[
                "app note:1",
                "birthday note:1",
                "stop app,birthday",
                "app rollback:1",
            ],
            "function birthday: alarm errors is ALARM",
        ),
        // app had succeeded and passed before birthday failed: no deployment to stop.
        (
            SucceedsFirst,
            JudgeFails,
            &["birthday note:1", "stop birthday", "app rollback:1"],
            "function birthday: alarm errors is ALARM",
        ),
    ];
    for (app, birthday, tail, reason) in cases {
        let mut world = World::new(&[("app", app), ("birthday", birthday)]);
        let (trace, end) = execute(&mut world, None);
        assert_eq!(
            trace[..3],
            ["create app", "create birthday", "follow app,birthday"],
            "{app:?} {birthday:?}"
        );
        assert_eq!(&trace[3..], tail, "{app:?} {birthday:?}");
        let End::Done(done) = end else {
            panic!("{end:?}")
        };
        assert!(rolled_back(&done).is_some());
        for (f, d) in &done {
            assert_eq!(
                *d,
                Done::RolledBack {
                    reason: reason.into(),
                    to: v(1)
                },
                "{f}: {app:?} {birthday:?}"
            );
        }
        assert_eq!(versions(&world), [at(1), at(1)], "{app:?} {birthday:?}");
        for f in &world.functions {
            let rb = f.note.was_rolled_back(v(2)).expect("the note records it");
            assert_eq!(rb.why, reason);
        }
    }
}

/// Killed after any act (each creation, the stop, each note) then rerun: never a second
/// deployment for a function, and every function ends where the uninterrupted run ends.
#[test]
fn killed_after_any_act_a_rerun_creates_nothing_twice_and_ends_consistent() {
    for scripts in [
        [("app", Script::Succeeds), ("birthday", Script::Succeeds)],
        [("app", Script::Succeeds), ("birthday", Script::JudgeFails)],
    ] {
        let mut whole = World::new(&scripts);
        let (full, _) = execute(&mut whole, None);
        let acts = full.iter().filter(|t| !t.starts_with("follow")).count();
        for kill in 1..=acts {
            let mut world = World::new(&scripts);
            let (_, end) = execute(&mut world, Some(kill));
            assert_eq!(end, End::Killed);
            let (trace, end) = execute(&mut world, None);
            let what = format!("{scripts:?} killed after act {kill}: {trace:?} {end:?}");
            assert_eq!(world.created, 2, "one deployment per function: {what}");
            assert_eq!(versions(&world), versions(&whole), "{what}");
            if matches!(end, End::Done(_)) {
                for f in &world.functions {
                    assert!(f.deployment.is_none(), "{what}");
                }
            }
            // What a failed release leaves: both back, or (its candidate recorded rolled back)
            // the rerun refusing it, never one new and one old.
            if let End::Refused(why) = &end {
                assert!(why.contains("rolled back"), "{what}");
            }
        }
    }
}

/// A run killed between the stops: a sibling's note records the release rolled back, so
/// the rerun stops the deployment still running instead of refusing or following it.
#[test]
fn a_deployment_left_running_by_a_half_written_rollback_is_stopped_by_the_rerun() {
    let mut world = World::new(&[("app", Script::Succeeds), ("birthday", Script::Succeeds)]);
    let reason = "function app: alarm errors is ALARM";
    let release = vec![("app".to_string(), v(2)), ("birthday".to_string(), v(2))];
    let mut note = Note::default().rolled_back(v(2), reason, true);
    note.release = release.clone();
    world.get("app").note = note;
    world.get("birthday").alias = split10(1, 2);
    world.get("birthday").deployment = Some(DeploymentView {
        id: "d-birthday".into(),
        application: "birthday".into(),
        config: "x".into(),
        shift: Some(Shift {
            current: v(1),
            target: v(2),
        }),
        status: Status::InProgress,
        rollback_of: None,
    });
    let goal = resolve_release(
        &cd_stage(),
        &canary(),
        &BTreeMap::new(),
        &world.observe(),
        Overrides::default(),
    )
    .unwrap();
    assert_eq!(goal.undo.as_deref(), Some(reason));
    assert_eq!(goal.release, release);
    let (trace, end) = execute(&mut world, None);
    assert_eq!(trace, ["birthday note:1", "stop birthday"]);
    assert!(
        matches!(end, End::Done(ref d) if rolled_back(d).is_some()),
        "{end:?}"
    );
    assert_eq!(versions(&world), [at(1), at(1)]);
}

/// The dry run: every deployment it would create, then one follow of them all.
#[test]
fn the_simulated_release_creates_one_deployment_per_function() {
    let world = World::new(&[("app", Script::Succeeds), ("birthday", Script::Succeeds)]);
    let goal = resolve_release(
        &cd_stage(),
        &canary(),
        &BTreeMap::new(),
        &world.observe(),
        Overrides::default(),
    )
    .unwrap();
    let states: Vec<State> = BOTH.iter().map(|f| world.state(f)).collect();
    let plan = simulate_release(&goal, &states);
    let creates: Vec<&str> = plan
        .iter()
        .filter_map(|a| match a {
            ReleaseAction::Apply {
                function,
                action: Action::CreateDeployment { .. },
            } => Some(function.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(creates, BOTH);
    assert!(matches!(&plan[2], ReleaseAction::Follow { deployments } if deployments.len() == 2));
    assert!(matches!(plan.last(), Some(ReleaseAction::Done(d)) if d.len() == 2));
}
