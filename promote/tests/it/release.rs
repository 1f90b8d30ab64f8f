//! A release of two functions (`app` and `birthday`, as environments/project.json lists them)
//! against a seeded moto: the whole live plan in lockstep, an alarm taking both back (exit 4),
//! `kill -9` then a rerun, a write failing part-way through a step, `--release` on the first
//! stage and the dry run.

use crate::support;

use std::time::Duration;

use aws_sdk_cloudwatch::types::StateValue;
use support::{Stack, shorten_bakes};

const FUNCTIONS: [&str; 2] = ["app", "birthday"];

/// Both functions, bakes of `bake` seconds; the test stage serves app 3 and birthday 2, the
/// release live takes from it.
fn release_stack(tag: &str, bake: u64) -> Stack {
    let stack = Stack::with_functions(tag, 2, &|d| shorten_bakes(d, bake));
    assert_eq!(stack.functions(), FUNCTIONS);
    stack.set_alias_of("app", "test", "3", None);
    stack.set_alias_of("birthday", "test", "2", None);
    stack
}

fn assert_serves(stack: &Stack, stage: &str, want: [&str; 2]) {
    for (f, v) in FUNCTIONS.iter().zip(want) {
        let a = stack.alias_of(f, stage);
        assert_eq!(a.version, v, "{f} on {stage}: {a:?}");
        assert!(a.weights.is_empty(), "{f} on {stage} still split: {a:?}");
    }
}

#[test]
fn a_release_of_two_functions_walks_the_live_plan_in_lockstep() {
    let stack = release_stack("release-plan", 1);
    let done = stack.run("canary --stage live --poll 1s");
    done.assert_code(0);
    assert_serves(&stack, "live", ["3", "2"]);
    for f in FUNCTIONS {
        let note = stack.alias_of(f, "live").description.unwrap_or_default();
        assert!(
            note.contains("release=app:3,birthday:2") && note.contains("baked=yes"),
            "{f}: {note}"
        );
    }
    let out = done.output();
    assert!(
        out.contains("release app 3, birthday 2 moves app, birthday in lockstep"),
        "{out}"
    );
    // Every step writes both aliases before its one bake.
    let app_10 = out.find("live: 10% of traffic to version 3").expect(&out);
    let birthday_10 = out[app_10..]
        .find("live: 10% of traffic to version 2")
        .expect(&out);
    let app_50 = out.find("live: 50% of traffic to version 3").expect(&out);
    assert!(app_10 + birthday_10 < app_50, "{out}");
}

/// Every function project.json lists (the HTTP ones and file-metadata, which S3 events
/// trigger) released together through live's whole plan: one release, every alias written at
/// each step, every function ending on its candidate with the release in its note.
#[test]
fn a_release_of_every_function_of_the_project_walks_the_live_plan() {
    let stack = Stack::with_functions("release-all", usize::MAX, &|d| shorten_bakes(d, 1));
    let functions = stack.functions();
    assert_eq!(
        functions,
        ["app", "birthday", "notes", "images", "file-metadata"]
    );
    for f in &functions {
        stack.set_alias_of(f, "test", "2", None);
    }
    let done = stack.run("canary --stage live --poll 1s");
    done.assert_code(0);
    let release = functions
        .iter()
        .map(|f| format!("{f}:2"))
        .collect::<Vec<_>>()
        .join(",");
    for f in &functions {
        let a = stack.alias_of(f, "live");
        assert_eq!(
            (a.version.as_str(), a.weights.len()),
            ("2", 0),
            "{f}: {a:?}"
        );
        let note = a.description.unwrap_or_default();
        assert!(note.contains(&format!("release={release}")), "{f}: {note}");
    }
    // The first step wrote every function's alias.
    let out = done.output();
    let writes = out.matches("live: 10% of traffic to version 2").count();
    assert!(writes >= functions.len(), "{writes} writes at 10%:\n{out}");
}

/// The live canary of the release with `alarm` (of `blamed`, live's first alarm as the stack
/// names it for that function) set to ALARM during the first bake: both functions go back,
/// each note naming the alarm and the function it blamed.
fn alarm_takes_the_release_back(tag: &str, blamed: &str) -> String {
    let stack = release_stack(tag, 60);
    let first = stack.seeded.alarms("live")[0].clone();
    let alarm = if blamed == FUNCTIONS[0] {
        first
    } else {
        format!("{first}-{blamed}")
    };
    let run = stack.start("canary --stage live --poll 1s");
    for f in FUNCTIONS {
        wait_split(&stack, f);
    }
    stack.set_alarm(&alarm, StateValue::Alarm);
    let done = run.wait_timeout(Duration::from_secs(30));
    done.assert_code(4);
    assert_serves(&stack, "live", ["1", "1"]);
    for f in FUNCTIONS {
        let note = stack.alias_of(f, "live").description.unwrap_or_default();
        assert!(
            note.contains(&format!("why=function {blamed}:")) && note.contains(&alarm),
            "{f}: {note}"
        );
    }
    done.output()
}

#[test]
fn an_alarm_during_a_bake_takes_every_function_back_with_exit_4() {
    let out = alarm_takes_the_release_back("release-alarm", "app");
    assert!(out.contains("every function of the release"), "{out}");
}

#[test]
fn the_second_functions_own_alarm_takes_every_function_back_and_blames_it() {
    // birthday's copy of live's first Lambda alarm (`<alarm>-birthday`): only birthday's judge
    // watches it, and its failure ends app's bake at once too (within the 30 s, not the 60 s
    // bake).
    alarm_takes_the_release_back("release-own-alarm", "birthday");
}

fn wait_split(stack: &Stack, function: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stack.alias_of(function, "live").split().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "{function} never split"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn killed_mid_release_a_rerun_ends_both_functions_on_the_release() {
    let stack = release_stack("release-kill9", 3);
    let args = ["canary", "--stage", "live", "--poll", "1s"];
    let first = stack.spawn(&args);
    wait_split(&stack, "app");
    first.kill9();
    // The kill may land between the two writes of a step: the rerun finishes it first.
    let rerun = stack.spawn(&args);
    rerun.wait_timeout(Duration::from_secs(90)).assert_code(0);
    assert_serves(&stack, "live", ["3", "2"]);
}

#[test]
fn a_write_failing_part_way_through_a_step_takes_the_release_back() {
    let stack = release_stack("release-write", 4);
    let run = stack.start("canary --stage live --poll 1s");
    for f in FUNCTIONS {
        wait_split(&stack, f);
    }
    // Someone else moves birthday during the first bake: its run stops as for a conflict,
    // and app, already written, is taken back; birthday is left as they left it.
    stack.set_alias_of("birthday", "live", "1", None);
    let done = run.wait_timeout(Duration::from_secs(60));
    done.assert_code(4);
    assert_serves(&stack, "live", ["1", "1"]);
    let out = done.output();
    assert!(
        out.contains("function birthday: ") && out.contains("changed by someone else"),
        "{out}"
    );
}

#[test]
fn the_first_stage_takes_the_published_release_by_name() {
    let stack = Stack::with_functions("release-dev", 2, &|d| shorten_bakes(d, 0));
    stack
        .run("deploy --stage dev --release app=2 --release birthday=2")
        .assert_code(0);
    assert_serves(&stack, "dev", ["2", "2"]);
    // --version is the first function's candidate; a function with none stays.
    stack.run("deploy --stage dev --version 3").assert_code(0);
    assert_serves(&stack, "dev", ["3", "2"]);
    stack
        .run("deploy --stage dev --release birthday=3")
        .assert_code(0);
    assert_serves(&stack, "dev", ["3", "3"]);
    stack.assert_refused(
        "deploy --stage dev --release nope=2",
        2,
        &["no function `nope`"],
    );
}

#[test]
fn every_event_of_a_release_names_its_function() {
    let stack = Stack::with_functions("release-json", 2, &|d| shorten_bakes(d, 0));
    let done = stack.run("deploy --stage dev --release app=2 --release birthday=3 --output json");
    done.assert_code(0);
    let lines = done.json_lines();
    let written: Vec<(String, String)> = lines
        .iter()
        .filter(|e| e["event"] == "alias_updated")
        .map(|e| {
            (
                e["function"].as_str().unwrap_or("?").to_string(),
                e["version"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    assert!(
        written.contains(&("app".into(), "2".into()))
            && written.contains(&("birthday".into(), "3".into())),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|e| e.get("function").is_some()),
        "an event without its function: {lines:?}"
    );
}

#[test]
fn status_shows_every_functions_split_and_the_release() {
    let stack = release_stack("release-status", 1);
    stack
        .run("canary --stage live --weight 10 --bake 0s")
        .assert_code(0);
    let text = stack.run("status --stage live");
    text.assert_code(0);
    let out = text.stdout.clone();
    let (app, birthday) = out.split_once("function birthday:").expect(&out);
    assert!(
        app.contains("function app:") && app.contains("3 (0.1.2"),
        "{out}"
    );
    assert!(
        birthday.contains("2 (0.1.1") && birthday.contains("10%"),
        "{out}"
    );
    assert!(
        out.contains("live: last moved as part of release app 3, birthday 2"),
        "{out}"
    );
    let json = stack.run("status --stage live --output json");
    json.assert_code(0);
    let rows: Vec<(String, String)> = json
        .json_lines()
        .iter()
        .filter(|e| e["event"] == "stage_status")
        .map(|e| {
            (
                e["function"].as_str().unwrap_or("?").to_string(),
                e["candidate"]["version"]
                    .as_str()
                    .unwrap_or("-")
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [("app".into(), "3".into()), ("birthday".into(), "2".into())]
    );
}

#[test]
fn the_dry_run_prints_every_write_of_every_function() {
    let stack = release_stack("release-dry", 1);
    let before = [
        stack.alias_of("app", "live"),
        stack.alias_of("birthday", "live"),
    ];
    let done = stack.run("canary --stage live --dry-run");
    done.assert_code(0);
    let out = done.output();
    for line in [
        "1. function app: shift: alias live -> version 1 (0.1.0 ",
        "2. function birthday: shift: alias live -> version 1 (0.1.0 ",
        "with 10% to version 3 (0.1.2 ",
        "with 10% to version 2 (0.1.1 ",
        "release=app:3,birthday:2",
        "judging app, birthday each on its own evidence",
        "function birthday: mark_baked",
    ] {
        assert!(out.contains(line), "missing {line:?} in {out}");
    }
    let after = [
        stack.alias_of("app", "live"),
        stack.alias_of("birthday", "live"),
    ];
    assert_eq!(before, after, "a dry run writes nothing");
}

#[test]
fn publish_of_every_functions_zip_prints_the_release_and_keeps_unchanged_code() {
    let stack = Stack::with_functions("release-publish", 2, &|_| {});
    let sha = "4".repeat(40);
    let app = stack.fake_zip("app.zip", "app", "0.2.0", &sha);
    // birthday's zip is the code of its seeded version 2: it keeps that version.
    let seeded_sha = seeded_sha("0.1.1");
    let birthday = stack.fake_zip("birthday.zip", "birthday", "0.1.1", &seeded_sha);
    let zip_arg = |f: &str, p: &std::path::Path| format!("{f}={}", p.display());
    let done = stack.promote(&[
        "publish",
        "--zip",
        &zip_arg("app", &app),
        "--zip",
        &zip_arg("birthday", &birthday),
        "--output",
        "json",
    ]);
    done.assert_code(0);
    let lines = done.json_lines();
    let release = lines.last().expect("a result");
    assert_eq!(release["event"], "release", "{lines:?}");
    assert_eq!(
        release["release"]["app"], "4",
        "new code, a new version: {lines:?}"
    );
    assert_eq!(release["release"]["birthday"], "2", "{lines:?}");
    let published: Vec<&str> = lines
        .iter()
        .filter(|e| e["event"] == "published")
        .map(|e| e["function"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(published, FUNCTIONS);
    // The table form is what `deploy --release` takes.
    let text = stack.promote(&[
        "publish",
        "--zip",
        &zip_arg("app", &app),
        "--zip",
        &zip_arg("birthday", &birthday),
    ]);
    text.assert_code(0);
    assert_eq!(text.stdout.trim(), "app=4 birthday=2");
    stack.assert_refused_args(
        &["publish", "--zip", &zip_arg("nope", &app)],
        2,
        &["no function `nope`"],
    );
}

/// The fake git sha the seed gives a version of `semver`.
fn seeded_sha(semver: &str) -> String {
    let out = std::process::Command::new(testkit::tools::python())
        .arg("-c")
        .arg("import sys; sys.path.insert(0, sys.argv[1]); import seed; print(seed.fake_sha(sys.argv[2]))")
        .arg(support::workspace_root().join("tools"))
        .arg(semver)
        .output()
        .expect("python");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Every deployment of `function`'s own application in live's group, as moto lists them:
/// `(id, TargetVersion of its AppSpec)`.
fn live_deployments(stack: &Stack, function: &str) -> Vec<(String, String)> {
    let cd = aws_sdk_codedeploy::Client::new(&testkit::aws::config(&stack.moto, &stack.region));
    stack.block_on(async {
        let ids = cd
            .list_deployments()
            .application_name(function)
            .deployment_group_name("live")
            .send()
            .await
            .unwrap()
            .deployments()
            .to_vec();
        let mut out = Vec::new();
        for id in ids {
            let d = cd.get_deployment().deployment_id(&id).send().await.unwrap();
            let content = d
                .deployment_info()
                .and_then(|i| i.revision())
                .and_then(|r| r.app_spec_content())
                .and_then(|c| c.content())
                .unwrap_or_default();
            let spec: serde_json::Value = serde_json::from_str(content).unwrap();
            let target = spec["Resources"][0][function]["Properties"]["TargetVersion"].clone();
            out.push((id, target.as_str().unwrap_or_default().to_string()));
        }
        out
    })
}

/// On a CodeDeploy stage a release is one deployment per function, each in its own
/// application's group, created together; a rerun after `kill -9` follows them rather than
/// creating more. moto never progresses a deployment and has no StopDeployment, so following
/// them to an end, a failure stopping the other and the rollback are tested against the
/// in-memory stand-in (`promote/src/reconcile/release_cd_tests.rs`).
#[test]
fn a_release_on_a_codedeploy_stage_creates_one_deployment_per_function_and_a_rerun_follows_them() {
    let stack = Stack::with_functions("release-codedeploy", 2, &|dir| {
        support::edit_json(&dir.join("live.json"), |v| {
            v["test_fixture_short_bakes"] = true.into();
            v["poll_interval_seconds"] = 1.into();
            v["strategy"] = serde_json::json!({
                "type": "canary",
                "engine": "codedeploy",
                "steps": [{"weight": 10, "bake_seconds": 60}, {"weight": 100, "bake_seconds": 0}],
            });
        });
    });
    stack.set_alias_of("app", "test", "3", None);
    stack.set_alias_of("birthday", "test", "2", None);
    // The dry run names every deployment it would create, and creates none.
    let dry = stack.run("canary --stage live --dry-run");
    dry.assert_code(0);
    for f in FUNCTIONS {
        assert!(
            dry.output().contains(&format!(
                "function {f}: CreateDeployment in CodeDeploy application {f} group live with deployment configuration {f}-live-canary-10pct-1min"
            )),
            "{}",
            dry.output()
        );
        assert!(live_deployments(&stack, f).is_empty());
    }
    // The real run creates both, then follows them; moto never moves them, so the run is
    // killed as a lost CI runner would be.
    let first = stack.start("--output json canary --stage live");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while FUNCTIONS
        .iter()
        .any(|f| live_deployments(&stack, f).is_empty())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no deployments after 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    first.kill9();
    let app = live_deployments(&stack, "app");
    let birthday = live_deployments(&stack, "birthday");
    assert_eq!(app.iter().map(|d| d.1.as_str()).collect::<Vec<_>>(), ["3"]);
    assert_eq!(
        birthday.iter().map(|d| d.1.as_str()).collect::<Vec<_>>(),
        ["2"]
    );
    // CodeDeploy moves the aliases, not promote.
    assert_serves(&stack, "live", ["1", "1"]);
    // The rerun finds both in flight (ListDeployments of each group) and follows them.
    let mut rerun = stack.start("--output json canary --stage live");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !rerun.stdout_so_far().contains("\"deployment\"") && rerun.is_running() {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            rerun.stdout_so_far()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rerun = rerun.kill9();
    let followed: Vec<String> = rerun
        .json_lines()
        .into_iter()
        .filter(|e| e["event"] == "plan")
        .map(|e| e["deployment_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        followed,
        [app[0].0.clone(), birthday[0].0.clone()],
        "{}",
        rerun.stdout
    );
    assert_eq!(
        live_deployments(&stack, "app").len(),
        1,
        "no second deployment"
    );
    assert_eq!(
        live_deployments(&stack, "birthday").len(),
        1,
        "no second deployment"
    );
}

/// A release of both functions through the fault proxy at 20% (errors, throttling, latency,
/// lost answers, RevisionId checks), as `faults.rs` runs one function: no wrong blame, no
/// weight of any function going backwards but by a rollback, and every run ends on the plan's
/// path, with the functions together where it completed or rolled back.
#[test]
fn releases_through_a_lossy_network_end_where_they_should() {
    use support::fault_proxy::{AppliedWrite, Config, FaultProxy};
    const LANES: u64 = 2;
    const RUNS: usize = 3;
    let share = |w: &AppliedWrite| -> f64 {
        match w.weights.get("2") {
            Some(x) => *x,
            None if w.version == "2" => 1.0,
            None => 0.0,
        }
    };
    type Tally = (usize, usize, usize, Vec<(bool, i32)>);
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let lanes: Vec<_> = (0..LANES)
            .map(|lane| {
                s.spawn(move || {
                    let stack = Stack::with_functions(
                        &format!("release-faults-{lane}"),
                        2,
                        &|d| shorten_bakes(d, 1),
                    );
                    let proxy = FaultProxy::start(
                        stack.moto.port,
                        Config {
                            rate: 0.2,
                            seed: 20_261_206 + lane,
                            enforce_revisions: true,
                            ..Config::clean()
                        },
                    );
                    let (mut faults, mut runs, mut requests) = (0, 0, 0);
                    let mut codes = Vec::new();
                    for r in 0..2 * RUNS {
                        let rollback = r % 2 == 1;
                        // Back to version 1 with no note, as the one-function fault test does.
                        for f in FUNCTIONS {
                            stack
                                .block_on(
                                    stack
                                        .lambda
                                        .update_alias()
                                        .function_name(f)
                                        .name("live")
                                        .function_version("1")
                                        .routing_config(
                                            aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
                                                .build(),
                                        )
                                        .description("")
                                        .send(),
                                )
                                .unwrap();
                        }
                        proxy.written_outside("live");
                        let alarm = stack.seeded.alarms("live")[0].clone();
                        stack.set_alarm(&alarm, StateValue::Ok);
                        let before = proxy.applied().len();
                        let bake = if rollback { "5s" } else { "300ms" };
                        let line = format!(
                            "--output json canary --stage live --release app=2 --release birthday=2 --bake {bake} --poll 100ms"
                        );
                        let args: Vec<&str> = line.split_whitespace().collect();
                        let mut cmd = stack.command(&args);
                        cmd.env("AWS_ENDPOINT_URL", &proxy.endpoint);
                        let mut running = stack.spawn_cmd(cmd, &args);
                        if rollback {
                            while !proxy.wait_applied(before + 1, Duration::from_millis(50)) {
                                if !running.is_running() {
                                    break;
                                }
                            }
                            stack.set_alarm(&alarm, StateValue::Alarm);
                        }
                        let run = running.wait_timeout(Duration::from_secs(120));
                        let code = run.code();
                        let out = run.output();
                        let writes = proxy.applied()[before..].to_vec();
                        let context = || format!("exit {code}\n{writes:#?}\n{out}");
                        assert!(code != 5 && !out.contains("someone else"), "wrong blame: {}", context());
                        for f in FUNCTIONS {
                            let mine: Vec<&AppliedWrite> =
                                writes.iter().filter(|w| w.function == f).collect();
                            let mut last = 0.0;
                            for (i, w) in mine.iter().enumerate() {
                                let s = share(w);
                                if s < last {
                                    assert!(
                                        s == 0.0
                                            && w.description.as_deref().is_some_and(|d| d.contains("rolled_back=2"))
                                            && mine[i + 1..].iter().all(|x| share(x) == 0.0),
                                        "{f}: weight went back without a rollback: {}",
                                        context()
                                    );
                                }
                                last = s;
                            }
                        }
                        let ends: Vec<(String, Option<(String, f64)>)> = FUNCTIONS
                            .iter()
                            .map(|f| {
                                let a = stack.alias_of(f, "live");
                                (a.version.clone(), a.split())
                            })
                            .collect();
                        let on_path = |e: &(String, Option<(String, f64)>)| {
                            matches!((e.0.as_str(), &e.1), ("1", None) | ("2", None))
                                || matches!((e.0.as_str(), &e.1), ("1", Some((c, w))) if c == "2" && (*w == 0.1 || *w == 0.5))
                        };
                        match code {
                            0 => assert!(ends.iter().all(|e| e.0 == "2" && e.1.is_none()), "{}", context()),
                            4 => assert!(ends.iter().all(|e| e.0 == "1" && e.1.is_none()), "{}", context()),
                            _ => assert!(ends.iter().all(on_path), "off the plan's path {ends:?}: {}", context()),
                        }
                        runs += 1;
                        codes.push((rollback, code));
                    }
                    let t = proxy.tally();
                    faults += t.faults.values().sum::<usize>();
                    requests += t.requests;
                    (runs, faults, requests, codes)
                })
            })
            .collect();
        lanes.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (runs, faults, requests) = tallies
        .iter()
        .fold((0, 0, 0), |a, t| (a.0 + t.0, a.1 + t.1, a.2 + t.2));
    let mut outcomes: std::collections::BTreeMap<(&str, i32), usize> = Default::default();
    for (rollback, code) in tallies.iter().flat_map(|t| t.3.iter()) {
        let kind = if *rollback { "alarm rollback" } else { "plan" };
        *outcomes.entry((kind, *code)).or_default() += 1;
    }
    println!(
        "release fault tally: {runs} runs, {faults} faults in {requests} requests; outcomes (run, exit code): {outcomes:?}"
    );
    assert_eq!(runs, LANES as usize * 2 * RUNS);
    assert!(
        faults as f64 >= requests as f64 * 0.1,
        "{faults} faults in {requests} requests"
    );
}
