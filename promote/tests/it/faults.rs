//! `promote` on a lossy network and in races, over HTTP: the built binary talks to moto through
//! the fault-injecting proxy of `support/fault_proxy.rs` (errors in each protocol's own shape,
//! throttling, "update in progress", latency, answers lost after the write was applied, and
//! Lambda's RevisionId checks, which moto does not make).
//!
//! The test reads the alias back directly from moto and the applied writes from the proxy's
//! record, never through the proxy. Alarms are set directly on moto once the run's first write
//! has been seen; nothing waits for a fixed time.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::StateValue;
use rollout::Version;
use rollout::note::Note;
use support::fault_proxy::{AppliedWrite, Config, Fault, FaultProxy, Gate, Tally};
use support::{AliasState, Run, Running, Stack, edit_json};

const STAGE: &str = "live";
const STABLE: &str = "1";
const CANDIDATE: &str = "2";
/// Independent moto + proxy pairs run side by side, each through its share of the runs.
const LANES: usize = 4;
const PLANS_PER_LANE: usize = 5;
const ROLLBACKS_PER_LANE: usize = 5;
const FAULT_RATE: f64 = 0.2;
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// A seeded moto and a proxy in front of it.
struct Lane {
    stack: Stack,
    proxy: FaultProxy,
}

/// moto has no per-version Lambda metrics, so bakes here are judged by the alarms alone (the
/// metrics judge is exercised against the in-memory stand-in).
fn alarms_only(dir: &Path) {
    edit_json(&dir.join("live.json"), |v| {
        v["analysis"] = serde_json::json!({"sources": ["alarms"]});
    });
}

impl Lane {
    fn new(tag: &str, config: Config) -> Lane {
        let stack = Stack::with_environments(tag, &alarms_only);
        let proxy = FaultProxy::start(stack.moto.port, config);
        Lane { stack, proxy }
    }

    /// `promote ARGS` through the proxy, in the background.
    fn start(&self, line: &str) -> Running {
        let args: Vec<&str> = line.split_whitespace().collect();
        let mut cmd = self.stack.command(&args);
        cmd.env("AWS_ENDPOINT_URL", &self.proxy.endpoint);
        self.stack.spawn_cmd(cmd, &args)
    }

    fn run(&self, line: &str) -> Run {
        self.start(line).wait_timeout(RUN_TIMEOUT)
    }

    /// The alias back at the stable version with no note, written directly on moto (as an
    /// operator with other tools would; the proxy rotates its RevisionId accordingly).
    fn reset(&self, stage: &str) {
        self.stack
            .block_on(
                self.stack
                    .lambda
                    .update_alias()
                    .function_name(self.stack.function_name())
                    .name(stage)
                    .function_version(STABLE)
                    .routing_config(
                        aws_sdk_lambda::types::AliasRoutingConfiguration::builder().build(),
                    )
                    .description("")
                    .send(),
            )
            .unwrap_or_else(|e| panic!("reset alias {stage}: {e:?}"));
        self.proxy.written_outside(stage);
        for alarm in self.stack.seeded.alarms(stage) {
            self.stack.set_alarm(&alarm, StateValue::Ok);
        }
    }
}

/// The alias as (version, split), weights as fractions.
type View = (String, Option<(String, f64)>);

fn view(a: &AliasState) -> View {
    (a.version.clone(), a.split())
}

fn written(w: &AppliedWrite) -> View {
    assert!(
        w.weights.len() <= 1,
        "two additional versions written: {w:?}"
    );
    (
        w.version.clone(),
        w.weights.iter().next().map(|(k, v)| (k.clone(), *v)),
    )
}

/// The candidate's share of traffic in a view: 0.0 when it takes none.
fn share(v: &View, candidate: &str) -> f64 {
    match &v.1 {
        Some((c, w)) if c == candidate => *w,
        None if v.0 == candidate => 1.0,
        _ => 0.0,
    }
}

fn note(description: Option<&str>) -> Note {
    Note::parse(description.unwrap_or(""))
}

fn version(n: &str) -> Version {
    Version::parse(n).unwrap()
}

/// Every state live's plan (10% -> 50% -> 100%) passes through, start included.
fn plan_states() -> Vec<View> {
    vec![
        (STABLE.into(), None),
        (STABLE.into(), Some((CANDIDATE.into(), 0.1))),
        (STABLE.into(), Some((CANDIDATE.into(), 0.5))),
        (CANDIDATE.into(), None),
    ]
}

/// Whether the output tells the operator what to run next.
fn says_how_to_go_on(output: &str) -> bool {
    [
        "`promote ",
        "promote status",
        "promote canary",
        "promote rollback",
        "run the command again",
    ]
    .iter()
    .any(|hint| output.contains(hint))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Plan,
    AlarmRollback,
}

#[derive(Debug, Default)]
struct Counts {
    runs: usize,
    /// (kind, exit code) -> runs.
    outcomes: BTreeMap<(String, i32), usize>,
    /// `promote`'s own write retries ("did not go through ...; re-reading and retrying").
    write_retries: usize,
    /// Writes whose answer was lost and that the re-read recognised as this run's own.
    own_writes_recognised: usize,
    proxy: Tally,
}

/// One run on a lane, checked; returns its exit code.
fn one_run(lane: &Lane, kind: Kind, counts: &mut Counts) {
    lane.reset(STAGE);
    let before = lane.proxy.applied().len();
    let bake = match kind {
        Kind::Plan => "300ms",
        // Long enough that the alarm, set as soon as the first write is seen, fires during a bake.
        Kind::AlarmRollback => "5s",
    };
    let mut running = lane.start(&format!(
        "--output json -v canary --stage {STAGE} --version {CANDIDATE} --bake {bake} --poll 100ms"
    ));
    if kind == Kind::AlarmRollback {
        let alarm = lane.stack.seeded.alarms(STAGE)[0].clone();
        let deadline = Instant::now() + RUN_TIMEOUT;
        // The first applied write, or the run ending without one.
        while !lane
            .proxy
            .wait_applied(before + 1, Duration::from_millis(50))
        {
            assert!(
                Instant::now() < deadline,
                "no write seen within {RUN_TIMEOUT:?}"
            );
            if !running.is_running() {
                break;
            }
        }
        if lane.proxy.applied().len() > before {
            lane.stack.set_alarm(&alarm, StateValue::Alarm);
        }
    }
    let run = running.wait_timeout(RUN_TIMEOUT);
    let writes: Vec<AppliedWrite> = lane.proxy.applied()[before..].to_vec();
    let end = lane.stack.alias(STAGE);
    let code = run.code();
    let output = run.output();
    let context = || {
        format!(
            "{kind:?} run exited {code}; alias now {end:?}\nwrites: {writes:#?}\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout, run.stderr
        )
    };

    // Never "someone else" for its own writes: nobody else writes here.
    assert!(
        code != 5 && !output.contains("someone else"),
        "blamed someone else for its own write: {}",
        context()
    );
    // Weights only move forward, except by a rollback write, which is the last one.
    let mut last = 0.0;
    for (i, w) in writes.iter().enumerate() {
        let v = written(w);
        let s = share(&v, CANDIDATE);
        if s < last {
            let n = note(w.description.as_deref());
            assert!(
                kind == Kind::AlarmRollback
                    && v == (STABLE.to_string(), None)
                    && n.was_rolled_back(version(CANDIDATE)).is_some(),
                "weight went back from {last} to {s} without a rollback (write {i}): {}",
                context()
            );
            assert!(
                writes[i + 1..].iter().all(|x| written(x) == v),
                "written after the rollback: {}",
                context()
            );
        }
        last = s;
    }
    let states = plan_states();
    match (kind, code) {
        (Kind::Plan, 0) => {
            assert_eq!(view(&end), (CANDIDATE.to_string(), None), "{}", context());
            assert!(
                !note(end.description.as_deref()).pending_final_bake(version(CANDIDATE)),
                "the last bake is not recorded as passed: {}",
                context()
            );
        }
        (Kind::AlarmRollback, 4) => {
            assert_eq!(view(&end), (STABLE.to_string(), None), "{}", context());
            assert!(
                note(end.description.as_deref())
                    .was_rolled_back(version(CANDIDATE))
                    .is_some(),
                "the rollback is not recorded on the alias: {}",
                context()
            );
        }
        _ => {
            assert!(code != 0, "{}", context());
            assert!(
                states.contains(&view(&end)),
                "left at a state the plan never passes through: {}",
                context()
            );
            assert!(
                says_how_to_go_on(&run.stderr),
                "no word on how to go on: {}",
                context()
            );
        }
    }
    counts.runs += 1;
    *counts
        .outcomes
        .entry((format!("{kind:?}"), code))
        .or_default() += 1;
    counts.write_retries += run.stderr.matches("re-reading and retrying").count();
    counts.own_writes_recognised += run
        .stderr
        .matches("an earlier attempt of this write was applied")
        .count();
}

/// `PROMOTE_FAULT_SEED` replays (or varies) the fault sequence; `PROMOTE_FAULT_RATE`
/// raises the rate to hunt for rarer failures.
fn seed_and_rate() -> (u64, f64) {
    let var = |name: &str| std::env::var(name).ok();
    (
        var("PROMOTE_FAULT_SEED")
            .and_then(|s| s.parse().ok())
            .unwrap_or(20_261_130),
        var("PROMOTE_FAULT_RATE")
            .and_then(|s| s.parse().ok())
            .unwrap_or(FAULT_RATE),
    )
}

#[test]
fn canary_plans_and_alarm_rollbacks_through_a_lossy_network_end_where_they_should() {
    let (seed, rate) = seed_and_rate();
    let started = Instant::now();
    let lanes: Vec<Counts> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..LANES)
            .map(|i| {
                s.spawn(move || {
                    let lane = Lane::new(
                        &format!("faults-{i}"),
                        Config {
                            rate,
                            seed: seed + i as u64,
                            enforce_revisions: true,
                            ..Config::clean()
                        },
                    );
                    let mut counts = Counts::default();
                    for r in 0..PLANS_PER_LANE.max(ROLLBACKS_PER_LANE) {
                        if r < PLANS_PER_LANE {
                            one_run(&lane, Kind::Plan, &mut counts);
                        }
                        if r < ROLLBACKS_PER_LANE {
                            one_run(&lane, Kind::AlarmRollback, &mut counts);
                        }
                    }
                    counts.proxy = lane.proxy.tally();
                    counts
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut total = Counts::default();
    for c in &lanes {
        total.runs += c.runs;
        total.write_retries += c.write_retries;
        total.own_writes_recognised += c.own_writes_recognised;
        total.proxy.add(&c.proxy);
        for (k, n) in &c.outcomes {
            *total.outcomes.entry(k.clone()).or_default() += n;
        }
    }
    let faults: usize = total.proxy.faults.values().sum();
    println!(
        "fault tally (seed {seed}, rate {rate}, {LANES} lanes, {:.1}s):",
        started.elapsed().as_secs_f64()
    );
    println!(
        "  runs: {} ({} canary plans, {} alarm rollbacks)",
        total.runs,
        LANES * PLANS_PER_LANE,
        LANES * ROLLBACKS_PER_LANE
    );
    println!("  requests through the proxy: {}", total.proxy.requests);
    println!("  faults injected: {faults}");
    for f in Fault::ALL {
        println!(
            "    {f:?}: {}",
            total.proxy.faults.get(&f).copied().unwrap_or(0)
        );
    }
    println!(
        "  retries seen: {} by the SDK, {} of UpdateAlias by promote; {} stale RevisionIds answered 412; {} lost answers recognised as the run's own write",
        total.proxy.sdk_retries,
        total.write_retries,
        total.proxy.stale_revisions,
        total.own_writes_recognised
    );
    println!("  outcomes (run, exit code): {:?}", total.outcomes);
    assert_eq!(
        total.runs,
        LANES * (PLANS_PER_LANE + ROLLBACKS_PER_LANE),
        "every run was checked"
    );
    // The rate was really applied: a fault-free run proves nothing about faults.
    assert!(
        faults as f64 >= total.proxy.requests as f64 * rate / 2.0,
        "{faults} faults in {} requests",
        total.proxy.requests
    );
    for f in Fault::ALL {
        assert!(
            total.proxy.faults.get(&f).copied().unwrap_or(0) > 0,
            "no {f:?} was injected"
        );
    }
}

/// The run that exited `0` and the one that exited `5`, in that order.
fn winner_and_loser(a: Run, b: Run) -> (Run, Run) {
    let codes = (a.code(), b.code());
    match codes {
        (0, 5) => (a, b),
        (5, 0) => (b, a),
        _ => panic!(
            "want one run exiting 0 and the other 5, got {codes:?}\n--- a\n{}\n--- b\n{}",
            a.output(),
            b.output()
        ),
    }
}

/// What a run asked for, from its arguments: `--version N`.
fn version_arg(run: &Run) -> String {
    let i = run.args.iter().position(|a| a == "--version").unwrap();
    run.args[i + 1].clone()
}

/// Two `deploy --bake 0` of different versions read the alias before either writes (their
/// UpdateAlias requests are held until both have arrived). moto alone applies both and
/// both report success; with Lambda's RevisionId check, the second is refused and its run
/// exits 5 having written nothing.
#[test]
fn two_deploys_racing_over_http_one_wins_and_the_other_exits_5() {
    let lane = Lane::new("race-deploy", Config::clean());
    let race = |lane: &Lane| {
        lane.proxy.hold(Gate {
            alias: "dev".into(),
            matches: Box::new(|_| true),
        });
        let before = lane.proxy.applied().len();
        let a = lane.start("deploy --stage dev --version 2 --bake 0");
        let b = lane.start("deploy --stage dev --version 3 --bake 0");
        assert!(
            lane.proxy.wait_held(2, RUN_TIMEOUT),
            "both runs never reached their write"
        );
        lane.proxy.release();
        let (a, b) = (a.wait_timeout(RUN_TIMEOUT), b.wait_timeout(RUN_TIMEOUT));
        (a, b, lane.proxy.applied()[before..].to_vec())
    };

    // moto as is: the race is real, and both "win".
    let (a, b, writes) = race(&lane);
    a.assert_code(0);
    b.assert_code(0);
    assert_eq!(writes.len(), 2, "moto applies both writes: {writes:#?}");

    lane.reset("dev");
    lane.proxy.set_config(Config {
        enforce_revisions: true,
        ..Config::clean()
    });
    let (a, b, writes) = race(&lane);
    let (winner, loser) = winner_and_loser(a, b);
    assert!(
        loser.stderr.contains("someone else"),
        "the loser does not say why: {}",
        loser.stderr
    );
    let want = version_arg(&winner);
    assert_eq!(
        writes.iter().map(written).collect::<Vec<_>>(),
        vec![(want.clone(), None)],
        "only the winner's write was applied"
    );
    assert_eq!(view(&lane.stack.alias("dev")), (want, None));
}

/// Two canary plans of different versions on live at once: exactly one is applied, the
/// other exits 5 having written nothing, and live ends where the winner took it.
#[test]
fn two_canaries_racing_over_http_exactly_one_writes() {
    let lane = Lane::new(
        "race-canary",
        Config {
            enforce_revisions: true,
            ..Config::clean()
        },
    );
    lane.proxy.hold(Gate {
        alias: STAGE.into(),
        matches: Box::new(|_| true),
    });
    let line = |v: &str| format!("canary --stage {STAGE} --version {v} --bake 300ms --poll 100ms");
    let a = lane.start(&line("2"));
    let b = lane.start(&line("3"));
    assert!(
        lane.proxy.wait_held(2, RUN_TIMEOUT),
        "both runs never reached their first write"
    );
    lane.proxy.release();
    let (winner, loser) =
        winner_and_loser(a.wait_timeout(RUN_TIMEOUT), b.wait_timeout(RUN_TIMEOUT));
    let want = version_arg(&winner);
    let lost = version_arg(&loser);
    let writes = lane.proxy.applied();
    assert!(!writes.is_empty());
    for w in &writes {
        let v = written(w);
        assert!(
            share(&v, &lost) == 0.0 && share(&v, &want) > 0.0,
            "a write not of the winner's plan was applied: {w:?} (winner {want}, loser {lost})"
        );
    }
    assert_eq!(view(&lane.stack.alias(STAGE)), (want, None));
}

/// CloudWatch answers 500 to every poll once the canary's first split is written: the
/// evidence cannot be read, and the stage's `analysis.on_unreadable` decides. By default
/// the candidate is taken back (exit 4); with "hold" the split is held (exit 6). Either
/// way the exit code says the split is no longer watched.
#[test]
fn evidence_unreadable_on_every_poll_fails_closed_by_policy() {
    for (policy, code, end) in [
        (None, 4, (STABLE.to_string(), None)),
        (
            Some("hold"),
            6,
            (STABLE.to_string(), Some((CANDIDATE.to_string(), 0.1))),
        ),
    ] {
        let tag = format!("unreadable-{}", policy.unwrap_or("default"));
        let stack = Stack::with_environments(&tag, &|dir: &Path| {
            edit_json(&dir.join("live.json"), |v| {
                v["analysis"] = serde_json::json!({"sources": ["alarms"]});
                if let Some(p) = policy {
                    v["analysis"]["on_unreadable"] = p.into();
                }
            });
        });
        let lane = Lane {
            proxy: FaultProxy::start(stack.moto.port, Config::clean()),
            stack,
        };
        let canary = lane.start(&format!(
            "canary --stage {STAGE} --version {CANDIDATE} --weight 10 --bake 60s --poll 100ms"
        ));
        assert!(
            lane.proxy.wait_applied(1, RUN_TIMEOUT),
            "{tag}: the canary never wrote"
        );
        lane.proxy.set_config(Config {
            cloudwatch_down: true,
            ..Config::clean()
        });
        let run = canary.wait_timeout(RUN_TIMEOUT);
        run.assert_code(code);
        assert!(
            run.stderr
                .contains("could not be read (3 polls in a row failed"),
            "{tag}: {}",
            run.stderr
        );
        assert_eq!(view(&lane.stack.alias(STAGE)), end, "{tag}");
        assert!(
            lane.proxy
                .tally()
                .faults
                .get(&Fault::Error500)
                .copied()
                .unwrap_or(0)
                >= 3,
            "{tag}: {:?}",
            lane.proxy.tally()
        );
    }
}

/// An operator's `rollback` while a canary bakes: the rollback wins, the canary notices at
/// its next poll and exits 5 without writing again.
#[test]
fn a_rollback_during_a_bake_wins_over_http() {
    let lane = Lane::new(
        "race-rollback-bake",
        Config {
            enforce_revisions: true,
            ..Config::clean()
        },
    );
    let canary = lane.start(&format!(
        "canary --stage {STAGE} --version {CANDIDATE} --bake 30s --poll 100ms"
    ));
    assert!(
        lane.proxy.wait_applied(1, RUN_TIMEOUT),
        "the canary never wrote"
    );
    lane.run(&format!("rollback --stage {STAGE}"))
        .assert_code(0);
    let after_rollback = lane.proxy.applied().len();
    let canary = canary.wait_timeout(RUN_TIMEOUT);
    canary.assert_code(5);
    assert_eq!(
        lane.proxy.applied().len(),
        after_rollback,
        "the canary wrote after the rollback: {:#?}",
        lane.proxy.applied()
    );
    let end = lane.stack.alias(STAGE);
    assert_eq!(view(&end), (STABLE.to_string(), None));
    assert!(
        note(end.description.as_deref())
            .was_rolled_back(version(CANDIDATE))
            .is_some(),
        "{end:?}"
    );
}

/// The canary's 100% write is in flight (read, sent, not yet applied) when an operator's
/// rollback lands. moto alone applies the late write and silently undoes the rollback; with
/// Lambda's RevisionId check it is refused and the canary exits 5.
#[test]
fn a_canary_write_in_flight_cannot_undo_a_rollback() {
    let lane = Lane::new("race-rollback-write", Config::clean());
    let race = |lane: &Lane| {
        lane.proxy.hold(Gate {
            alias: STAGE.into(),
            matches: Box::new(|w| w.version == CANDIDATE && w.weights.is_empty()),
        });
        let canary = lane.start(&format!(
            "canary --stage {STAGE} --version {CANDIDATE} --bake 300ms --poll 100ms"
        ));
        assert!(
            lane.proxy.wait_held(1, RUN_TIMEOUT),
            "the canary never sent its 100% write"
        );
        let rollback = lane.run(&format!("rollback --stage {STAGE}"));
        lane.proxy.release();
        (rollback, canary.wait_timeout(RUN_TIMEOUT))
    };

    // moto as is: both succeed and live ends on the candidate the operator rolled back.
    let (rollback, canary) = race(&lane);
    rollback.assert_code(0);
    canary.assert_code(0);
    assert_eq!(
        view(&lane.stack.alias(STAGE)),
        (CANDIDATE.to_string(), None)
    );

    lane.reset(STAGE);
    lane.proxy.set_config(Config {
        enforce_revisions: true,
        ..Config::clean()
    });
    let (rollback, canary) = race(&lane);
    rollback.assert_code(0);
    canary.assert_code(5);
    let end = lane.stack.alias(STAGE);
    assert_eq!(
        view(&end),
        (STABLE.to_string(), None),
        "the rollback was undone"
    );
    assert_eq!(
        lane.proxy.applied().last().map(written),
        Some((STABLE.to_string(), None)),
        "the rollback is the last write applied"
    );
}
