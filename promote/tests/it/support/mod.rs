//! Integration-test harness: one real `moto_server` per test on a free loopback port, seeded
//! by `tools/seed.py` from `environments/` exactly as Terraform would create the stack, the
//! built `promote` binary run against it, and the alias read back through the Rust SDK.
//!
//! Every wait is bounded; only 127.0.0.1 is ever contacted; credentials are dummies and the
//! shared AWS config files are pointed at a per-test empty directory so no real profile is read.
#![allow(dead_code)] // a harness: not every test module uses every part of it

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::StateValue;
use serde_json::Value;
use testkit::aws::Sdk;
pub use testkit::fault_proxy;
use testkit::moto::Moto;
pub use testkit::{Scratch, copy_dir, edit_json, workspace_root};

/// The longest any single `promote` run may take in a test before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// What `tools/seed.py` printed.
#[derive(Debug, Clone)]
pub struct Seeded(pub Value);

impl Seeded {
    pub fn versions(&self) -> Vec<String> {
        self.0["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }
    pub fn alarms(&self, stage: &str) -> Vec<String> {
        self.0["stages"][stage]["alarms"]
            .as_array()
            .unwrap_or_else(|| panic!("no stage {stage} in the seed output"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }
    pub fn function_name(&self) -> String {
        self.0["function_name"].as_str().unwrap().to_string()
    }
}

/// The alias as read back through the SDK: every field GetAlias returns.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasState {
    pub arn: Option<String>,
    pub name: Option<String>,
    pub version: String,
    pub description: Option<String>,
    pub revision_id: Option<String>,
    /// AdditionalVersionWeights; empty when there is no routing (absent or `{}`).
    pub weights: BTreeMap<String, f64>,
    /// Whether RoutingConfig was present at all (moto keeps `{}` after a clear).
    pub routing_present: bool,
}

impl AliasState {
    /// The only additional version and its weight, if the alias is split.
    pub fn split(&self) -> Option<(String, f64)> {
        assert!(
            self.weights.len() <= 1,
            "more than one additional version: {self:?}"
        );
        self.weights.iter().next().map(|(k, v)| (k.clone(), *v))
    }
}

/// Output of one `promote` run.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
    #[track_caller]
    pub fn assert_code(&self, want: i32) -> &Self {
        assert_eq!(
            self.code(),
            want,
            "`promote {}` exited {} (want {want})\n--- stdout\n{}\n--- stderr\n{}",
            self.args.join(" "),
            self.code(),
            self.stdout,
            self.stderr
        );
        self
    }
    /// Every stdout line that parses as a JSON object (`--output json` prints one per line).
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
            .filter(|v| v.is_object())
            .collect()
    }
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A seeded emulator, the environments directory `promote` reads, and SDK clients.
pub struct Stack {
    pub moto: Moto,
    pub seeded: Seeded,
    pub environments: PathBuf,
    pub region: String,
    pub scratch: Scratch,
    rt: tokio::runtime::Runtime,
    pub lambda: aws_sdk_lambda::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

/// How to edit a copy of `environments/` before seeding (short bakes, broken files...).
pub type EnvEdit<'a> = &'a dyn Fn(&Path);

impl Stack {
    /// The repository's own environments/ as is.
    pub fn new(tag: &str) -> Stack {
        Stack::with_environments(tag, &|_| {})
    }

    /// A copy of environments/ whose bakes are `bake_seconds` and polls are 1 s, so whole
    /// plans run in seconds while keeping the real stages, steps and alarms.
    pub fn short_bakes(tag: &str, bake_seconds: u64) -> Stack {
        Stack::with_environments(tag, &|dir| shorten_bakes(dir, bake_seconds))
    }

    /// A copy of environments/ with its first function only (the tests of one function),
    /// edited by `edit`.
    pub fn with_environments(tag: &str, edit: EnvEdit) -> Stack {
        Stack::with_functions(tag, 1, edit)
    }

    /// A copy of environments/ with its first `functions` functions, edited by `edit`.
    pub fn with_functions(tag: &str, functions: usize, edit: EnvEdit) -> Stack {
        let scratch = Scratch::new(tag);
        let environments = scratch.path().join("environments");
        copy_dir(&workspace_root().join("environments"), &environments);
        edit_json(&environments.join("project.json"), |v| {
            if let Some(list) = v["functions"].as_array_mut() {
                list.truncate(functions);
            }
        });
        judge_by_alarms_only(&environments);
        edit(&environments);
        let moto = Moto::lease(scratch.path());
        let seeded = Seeded(moto.seed(&environments, &[]));
        let region = testkit::moto::region_of(&environments);
        let Sdk {
            rt,
            lambda,
            cloudwatch,
        } = Sdk::new(&moto, &region);
        let stack = Stack {
            moto,
            seeded,
            environments,
            region,
            scratch,
            rt,
            lambda,
            cloudwatch,
        };
        stack.upstreams_served_every_version();
        stack
    }

    /// The stages another stage takes its candidates from have completed every seeded version
    /// before (their notes' `served`, as promote writes it), so that tests may roll any of
    /// them onto the next stage past the path-to-live guard; tests of the guard itself
    /// overwrite the note.
    fn upstreams_served_every_version(&self) {
        let versions: Vec<String> = self.versions().into_iter().map(|(v, _)| v).collect();
        let note = format!("promote/v1 served={}", versions.join(","));
        for function in self.functions() {
            for up in testkit::moto::upstream_stages(&self.environments) {
                self.block_on(
                    self.lambda
                        .update_alias()
                        .function_name(&function)
                        .name(&up)
                        .description(&note)
                        .send(),
                )
                .unwrap_or_else(|e| panic!("UpdateAlias {up} of {function}: {e:?}"));
            }
        }
    }

    /// Every function seeded, in project.json's order.
    pub fn functions(&self) -> Vec<String> {
        match self.seeded.0["functions"].as_object() {
            Some(m) => {
                let mut names: Vec<(usize, String)> = Vec::new();
                let project: Value = serde_json::from_str(
                    &std::fs::read_to_string(self.environments.join("project.json")).unwrap(),
                )
                .unwrap();
                for (i, f) in project["functions"].as_array().unwrap().iter().enumerate() {
                    let name = f["name"].as_str().unwrap().to_string();
                    if m.contains_key(&name) {
                        names.push((i, name));
                    }
                }
                names.into_iter().map(|(_, n)| n).collect()
            }
            None => vec![self.function_name()],
        }
    }

    pub fn function_name(&self) -> String {
        self.seeded.function_name()
    }

    /// The `promote` command with the emulator's environment and nothing from the user's.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_in(&self.environments, args)
    }

    /// Like [`Stack::command`] with another environments directory.
    pub fn command_in(&self, environments: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_promote"));
        self.moto.sdk_env(&mut cmd, &self.region);
        cmd.env_remove("PROMOTE_ENVIRONMENTS")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .arg("--environments")
            .arg(environments)
            .args(args)
            .current_dir(self.scratch.path())
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a `promote` command line (words split on whitespace, as typed in a shell).
    pub fn run(&self, line: &str) -> Run {
        self.promote(&line.split_whitespace().collect::<Vec<_>>())
    }

    /// Starts a `promote` command line in the background.
    pub fn start(&self, line: &str) -> Running {
        self.spawn(&line.split_whitespace().collect::<Vec<_>>())
    }

    /// Runs `line`, which must exit with `code`, mention one of `mentions` (case-insensitive)
    /// on stderr, and leave every alias exactly as it was (the whole GetAlias output).
    #[track_caller]
    pub fn assert_refused(&self, line: &str, code: i32, mentions: &[&str]) -> Run {
        let args: Vec<&str> = line.split_whitespace().collect();
        self.assert_refused_args(&args, code, mentions)
    }

    #[track_caller]
    pub fn assert_refused_args(&self, args: &[&str], code: i32, mentions: &[&str]) -> Run {
        let before = self.all_aliases();
        let run = self.promote(args);
        run.assert_code(code);
        let stderr = run.stderr.to_lowercase();
        assert!(
            mentions.iter().any(|m| stderr.contains(&m.to_lowercase())),
            "`promote {}`: stderr mentions none of {mentions:?}:\n{}",
            args.join(" "),
            run.stderr
        );
        assert_eq!(
            self.all_aliases(),
            before,
            "`promote {}` changed an alias",
            args.join(" ")
        );
        run
    }

    /// Runs `promote ARGS` to completion (killed after [`COMMAND_TIMEOUT`]).
    pub fn promote(&self, args: &[&str]) -> Run {
        let child = self.spawn(args);
        child.wait_timeout(COMMAND_TIMEOUT)
    }

    /// Runs `promote --environments DIR ARGS` to completion.
    pub fn promote_in(&self, environments: &Path, args: &[&str]) -> Run {
        self.spawn_cmd(self.command_in(environments, args), args)
            .wait_timeout(COMMAND_TIMEOUT)
    }

    /// Starts `promote ARGS` in the background; output goes to files in the scratch dir.
    pub fn spawn(&self, args: &[&str]) -> Running {
        self.spawn_cmd(self.command(args), args)
    }

    /// Starts a prepared [`Stack::command`] (e.g. with an environment variable removed).
    pub fn spawn_cmd(&self, mut cmd: Command, args: &[&str]) -> Running {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let out = self.scratch.path().join(format!("promote-{n}.out"));
        let err = self.scratch.path().join(format!("promote-{n}.err"));
        let child = cmd
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("run the promote binary");
        Running {
            child: Some(child),
            args: args.iter().map(|s| s.to_string()).collect(),
            out,
            err,
        }
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub fn alias(&self, stage: &str) -> AliasState {
        self.alias_of(&self.function_name(), stage)
    }

    /// The alias `stage` of function `function`.
    pub fn alias_of(&self, function: &str, stage: &str) -> AliasState {
        let out = self
            .block_on(
                self.lambda
                    .get_alias()
                    .function_name(function)
                    .name(stage)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("GetAlias {stage} of {function}: {e:?}"));
        let routing = out.routing_config();
        let weights = routing
            .and_then(|r| r.additional_version_weights())
            .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        AliasState {
            arn: out.alias_arn().map(str::to_string),
            name: out.name().map(str::to_string),
            version: out.function_version().unwrap_or_default().to_string(),
            description: out.description().map(str::to_string),
            revision_id: out.revision_id().map(str::to_string),
            weights,
            routing_present: routing.is_some(),
        }
    }

    /// The GetAlias response body exactly as the emulator sends it. moto picks the service
    /// and region from the credential scope, which is all it reads of the signature.
    pub fn raw_alias(&self, stage: &str) -> String {
        let path = format!(
            "/2015-03-31/functions/{}/aliases/{stage}",
            self.function_name()
        );
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20200101/{}/lambda/aws4_request, \
             SignedHeaders=host, Signature=0",
            self.region
        );
        let answer = testkit::http::request(
            self.moto.port,
            "GET",
            &path,
            &[("Authorization", &auth)],
            b"",
        )
        .expect("raw GetAlias");
        let (status, body) = (answer.status, answer.text());
        // moto answers 201 here; any 2xx is an alias.
        assert!(
            (200..300).contains(&status),
            "raw GetAlias {stage}: {status} {body}"
        );
        body
    }

    /// Every alias of the function, parsed by the SDK and byte for byte as the emulator
    /// returns it, for before/after comparisons of a whole stack.
    pub fn all_aliases(&self) -> Vec<(AliasState, String)> {
        let stages: Vec<String> = self.seeded.0["stages"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        stages
            .iter()
            .map(|s| (self.alias(s), self.raw_alias(s)))
            .collect()
    }

    /// Moves an alias directly through the SDK (sets up a state without `promote`).
    pub fn set_alias(&self, stage: &str, version: &str, split: Option<(&str, f64)>) {
        self.set_alias_of(&self.function_name(), stage, version, split);
    }

    /// Moves alias `stage` of function `function` directly through the SDK.
    pub fn set_alias_of(
        &self,
        function: &str,
        stage: &str,
        version: &str,
        split: Option<(&str, f64)>,
    ) {
        let mut routing = aws_sdk_lambda::types::AliasRoutingConfiguration::builder();
        if let Some((v, w)) = split {
            routing = routing.additional_version_weights(v, w);
        }
        self.block_on(
            self.lambda
                .update_alias()
                .function_name(function)
                .name(stage)
                .function_version(version)
                .routing_config(routing.build())
                .send(),
        )
        .unwrap_or_else(|e| panic!("UpdateAlias {stage}: {e:?}"));
    }

    pub fn set_alarm(&self, name: &str, state: StateValue) {
        self.block_on(
            self.cloudwatch
                .set_alarm_state()
                .alarm_name(name)
                .state_value(state)
                .state_reason("set by the integration test")
                .send(),
        )
        .unwrap_or_else(|e| panic!("SetAlarmState {name}: {e:?}"));
    }

    /// Published versions (without $LATEST) with their descriptions.
    pub fn versions(&self) -> Vec<(String, String)> {
        let out = self
            .block_on(
                self.lambda
                    .list_versions_by_function()
                    .function_name(self.function_name())
                    .send(),
            )
            .expect("ListVersionsByFunction");
        out.versions()
            .iter()
            .filter(|v| v.version() != Some("$LATEST"))
            .map(|v| {
                (
                    v.version().unwrap_or_default().to_string(),
                    v.description().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Polls the alias every 50 ms until `pred` holds; None after `timeout`.
    pub fn wait_alias(
        &self,
        stage: &str,
        timeout: Duration,
        pred: impl Fn(&AliasState) -> bool,
    ) -> Option<(AliasState, Duration)> {
        let start = Instant::now();
        loop {
            let a = self.alias(stage);
            if pred(&a) {
                return Some((a, start.elapsed()));
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Samples the alias every 50 ms while `run` is running (at most `timeout`), keeping each
    /// distinct state once, in order; the state after the run ends is the last element.
    pub fn watch_alias(
        &self,
        stage: &str,
        run: &mut Running,
        timeout: Duration,
    ) -> Vec<AliasState> {
        let start = Instant::now();
        let mut states: Vec<AliasState> = Vec::new();
        while run.is_running() {
            assert!(
                start.elapsed() < timeout,
                "`promote {}` still running after {timeout:?}; alias states seen: {states:?}",
                run.args.join(" ")
            );
            let a = self.alias(stage);
            if states.last() != Some(&a) {
                states.push(a);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let a = self.alias(stage);
        if states.last() != Some(&a) {
            states.push(a);
        }
        states
    }

    /// Writes a zip whose `bootstrap` carries a build stamp, with the fixture's own code.
    pub fn fake_zip(&self, file: &str, name: &str, semver: &str, sha: &str) -> PathBuf {
        let path = self.scratch.path().join(file);
        let status = Command::new(testkit::tools::python())
            .arg("-c")
            .arg(
                "import sys; sys.path.insert(0, sys.argv[1]); import seed; \
                 open(sys.argv[2], 'wb').write(seed.fake_zip(sys.argv[3], sys.argv[4], sys.argv[5]))",
            )
            .arg(workspace_root().join("tools"))
            .arg(&path)
            .args([name, semver, sha])
            .status()
            .expect("python for the fake zip");
        assert!(status.success(), "writing the fake zip failed");
        path
    }
}

/// A `promote` run in the background; killed on drop if still running.
pub struct Running {
    child: Option<Child>,
    pub args: Vec<String>,
    out: PathBuf,
    err: PathBuf,
}

impl Running {
    pub fn stdout_so_far(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }
    /// SIGINT, as Ctrl-C in a terminal sends.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status()
            .expect("run kill -INT");
        assert!(status.success(), "kill -INT {} failed", self.pid());
    }
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
    /// `kill -9`: no chance to clean up, exactly like a lost CI runner.
    pub fn kill9(mut self) -> Run {
        let mut child = self.child.take().unwrap();
        child.kill().expect("SIGKILL promote");
        let status = child.wait().unwrap();
        self.collect(status)
    }
    pub fn wait_timeout(mut self, timeout: Duration) -> Run {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`promote {}` still running after {timeout:?}; killed\n--- stdout\n{}\n--- stderr\n{}",
                    self.args.join(" "),
                    std::fs::read_to_string(&self.out).unwrap_or_default(),
                    std::fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.collect(status)
    }
    fn collect(&self, status: ExitStatus) -> Run {
        Run {
            args: self.args.clone(),
            status,
            stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every stage file's bakes set to `secs` and its poll to 1 s. Bakes that short end before
/// the alarm windows, which the loader refuses unless the copy says it is a test fixture.
/// moto runs no Lambda code, so no per-version metrics exist there unless a test puts them:
/// every stage of a test's copy is judged by its alarms alone (as before the metrics judge),
/// and the judge's own tests (the `judge` module) set the `analysis` block they exercise.
pub fn judge_by_alarms_only(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") && p.file_name().unwrap() != "project.json" {
            edit_json(&p, |v| {
                v["analysis"] = serde_json::json!({"sources": ["alarms"]})
            });
        }
    }
}

pub fn shorten_bakes(dir: &Path, secs: u64) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") && p.file_name().unwrap() != "project.json" {
            edit_json(&p, |v| {
                v["poll_interval_seconds"] = 1.into();
                v["test_fixture_short_bakes"] = true.into();
                let strategy = &mut v["strategy"];
                if let Some(steps) = strategy.get_mut("steps").and_then(Value::as_array_mut) {
                    for s in steps {
                        s["bake_seconds"] = secs.into();
                    }
                } else {
                    strategy["bake_seconds"] = secs.into();
                }
            });
        }
    }
}

/// Replaces what varies between runs (API ids, ports, timestamps, revision ids, request ids)
/// so `--output json` and `--dry-run` output can be snapshot with insta.
pub fn redact(stack: &Stack, value: &mut Value) {
    let api_id = stack.seeded.0["rest_api_id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    fn walk(v: &mut Value, key: Option<&str>, api_id: &str, port: &str) {
        let volatile = key.is_some_and(|k| {
            let k = k.to_lowercase();
            [
                "time",
                "timestamp",
                "updated",
                "revision",
                "request_id",
                "elapsed",
                "started",
                "at",
            ]
            .iter()
            .any(|w| k == *w || k.ends_with(&format!("_{w}")) || k.starts_with(&format!("{w}_")))
        });
        match v {
            Value::String(s) if volatile => *s = "[redacted]".into(),
            Value::Number(_) if volatile => *v = Value::String("[redacted]".into()),
            Value::String(s) => *s = redact_text(s, api_id, port),
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, None, api_id, port)),
            Value::Object(m) => {
                m.iter_mut()
                    .for_each(|(k, x)| walk(x, Some(k), api_id, port));
                // Sorted keys: serde_json's map order depends on whether some crate in the
                // build enables its `preserve_order` feature, which varies with the build.
                let mut entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                m.extend(entries);
            }
            _ => {}
        }
    }
    walk(value, None, &api_id, &stack.moto.port.to_string());
}

pub fn redact_text(s: &str, api_id: &str, port: &str) -> String {
    let mut s = s.to_string();
    if !api_id.is_empty() {
        s = s.replace(api_id, "[api-id]");
    }
    s.replace(&format!("127.0.0.1:{port}"), "127.0.0.1:[port]")
}

/// Stage names in the order a `status --output json` run lists them, whether it prints one
/// object with a `stages` array or one object per stage.
pub fn stage_order(lines: &[Value]) -> Vec<String> {
    let mut order = Vec::new();
    let name = |v: &Value| -> Option<String> {
        v.get("stage")
            .or_else(|| v.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    for line in lines {
        if let Some(stages) = line.get("stages").and_then(Value::as_array) {
            order.extend(stages.iter().filter_map(name));
        } else if let Some(n) = line.get("stage").and_then(Value::as_str) {
            order.push(n.to_string());
        }
    }
    order.dedup();
    order
}
