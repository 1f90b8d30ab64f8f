//! Integration harness: the shared moto_server (testkit), seeded by `tools/seed.py` as
//! Terraform would create the stack, real `app` zips published with the real `promote`, and
//! the `gateway` binary in front of it all.
//!
//! Every wait is bounded; only 127.0.0.1 is contacted; credentials are dummies.
#![allow(dead_code)] // a harness: not every test module uses every part of it

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use testkit::aws::Sdk;
pub use testkit::http::{Answer, get, request};
use testkit::moto::Moto;
pub use testkit::{Scratch, wait_for, workspace_root};

/// `target/debug` (or wherever cargo put this test binary's profile directory).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The dev-profile `app`, `promote` and `birthday` binaries, built once per test binary. `cargo test
/// --workspace` has built them already (this is then a no-op check); `cargo test -p gateway`
/// has not, and `CARGO_BIN_EXE_*` only names a package's own binaries. The build asks for
/// what `cargo test --workspace` builds (every target, dev-dependencies on) so that features
/// unify the same way: `-p app -p promote` alone resolves them differently and rebuilt the
/// AWS SDK under `make test`, five minutes of a cold CI run.
pub fn workspace_bins() -> &'static (PathBuf, PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        // What cargo sets for this test binary's package must not reach the build: ring's
        // build script reruns when CARGO_MANIFEST_DIR changes, and with it rustls and the
        // whole AWS SDK, here and again in the next `cargo test` (four minutes of CI).
        for (var, _) in std::env::vars_os() {
            let var = var.to_string_lossy();
            if var.starts_with("CARGO_PKG_")
                || var.starts_with("CARGO_BIN_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_CRATE_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                ]
                .contains(&var.as_ref())
            {
                cargo.env_remove(var.as_ref());
            }
        }
        let out = cargo
            .args(["build", "-q", "--workspace", "--all-targets"])
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .output()
            .expect("run cargo build");
        let dir = profile_dir();
        let bins = (dir.join("app"), dir.join("promote"), dir.join("birthday"));
        if !out.status.success() {
            // Another package's sources mid-edit in a shared tree must not stop these tests
            // when binaries from an earlier build are there; a fresh clone has none, and fails.
            assert!(
                bins.0.is_file() && bins.1.is_file() && bins.2.is_file(),
                "cargo build --workspace --all-targets failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!(
                "warning: cargo build --workspace --all-targets failed; using the binaries already in {}:\n{}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The functions are read from a private copy: `make test` runs the demo beside these
        // tests, and its second release is built (version bumped, from a git worktree) into
        // the same target/debug/app and birthday, which would change under a test midway.
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // Earlier runs' copies, whose process has ended, go (a copy is ~60 MB).
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("gateway-it-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let own = tmp.join(format!("gateway-it-{}", std::process::id()));
        std::fs::create_dir_all(&own).unwrap();
        let private = |bin: &Path| {
            let to = own.join(bin.file_name().unwrap());
            std::fs::copy(bin, &to)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", bin.display(), to.display()));
            to
        };
        (private(&bins.0), bins.1, private(&bins.2))
    })
}

/// A seeded emulator, a copy of environments/, and SDK clients to read what the gateway did.
pub struct Stack {
    moto: Moto,
    pub seeded: Value,
    pub environments: PathBuf,
    pub region: String,
    pub dir: Scratch,
    pub rt: tokio::runtime::Runtime,
    pub lambda: aws_sdk_lambda::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Stack {
    pub fn new() -> Stack {
        Stack::with_environments(|_| {})
    }

    pub fn with_environments(edit: impl FnOnce(&Path)) -> Stack {
        let dir = Scratch::new("gateway");
        let environments = dir.path().join("environments");
        std::fs::create_dir_all(&environments).unwrap();
        for e in std::fs::read_dir(workspace_root().join("environments")).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), environments.join(e.file_name())).unwrap();
            }
        }
        edit(&environments);
        let moto = Moto::lease(dir.path());
        let seeded = moto.seed(&environments, &["--versions", "1"]);
        let region = testkit::moto::region_of(&environments);
        let Sdk {
            rt,
            lambda,
            cloudwatch,
        } = Sdk::new(&moto, &region);
        Stack {
            moto,
            seeded,
            environments,
            region,
            dir,
            rt,
            lambda,
            cloudwatch,
        }
    }

    /// The dummy-credential environment every child (promote, gateway) gets.
    fn aws_env(&self, cmd: &mut Command) {
        self.moto.sdk_env(cmd, &self.region);
        cmd.env_remove("PROMOTE_ENVIRONMENTS").env("NO_COLOR", "1");
    }

    /// The `promote` command with the emulator's environment and this stack's environments
    /// directory, for runs a test watches while they go on (a canary during traffic).
    pub fn promote_command(&self, line: &str) -> Command {
        let mut cmd = Command::new(&workspace_bins().1);
        self.aws_env(&mut cmd);
        cmd.arg("--environments")
            .arg(&self.environments)
            .args(line.split_whitespace())
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `promote` (words split on whitespace); panics unless it exits 0. Returns stdout.
    pub fn promote(&self, line: &str) -> String {
        let mut cmd = Command::new(&workspace_bins().1);
        self.aws_env(&mut cmd);
        let out = cmd
            .arg("--environments")
            .arg(&self.environments)
            .args(line.split_whitespace())
            .stdin(Stdio::null())
            .output()
            .expect("run promote");
        assert!(
            out.status.success(),
            "`promote {line}` exited {:?}\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `promote publish --zip ZIP`: the version number it printed.
    pub fn publish(&self, zip: &Path) -> String {
        let out = self.promote(&format!("--output json publish --zip {}", zip.display()));
        let last = out
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .rfind(|v| v.get("version").is_some())
            .unwrap_or_else(|| panic!("publish printed no version: {out}"));
        let version = last["version"].as_str().unwrap().to_string();
        self.upstreams_served_up_to(&version);
        version
    }

    /// The stages another stage takes its candidates from record every version up to
    /// `version` as completed there (their notes' `served`, as promote writes it), so that
    /// these tests may canary any published version onto the next stage past promote's
    /// path-to-live guard, which promote's own tests cover.
    fn upstreams_served_up_to(&self, version: &str) {
        let last: u64 = version.parse().unwrap();
        let served: Vec<String> = (last.saturating_sub(4).max(1)..=last)
            .map(|v| v.to_string())
            .collect();
        let note = format!("promote/v1 served={}", served.join(","));
        for up in testkit::moto::upstream_stages(&self.environments) {
            self.block_on(
                self.lambda
                    .update_alias()
                    .function_name("app")
                    .name(&up)
                    .description(&note)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("UpdateAlias {up}: {e:?}"));
        }
    }

    /// A zip whose `bootstrap` is the dev-profile `app` (it speaks the Runtime API when
    /// AWS_LAMBDA_RUNTIME_API is set). `extra` adds a file so that the same binary can be
    /// published as a second version (Lambda keys code by the zip's hash).
    pub fn app_zip(&self, name: &str, extra: Option<&str>) -> PathBuf {
        self.bootstrap_zip(&workspace_bins().0, name, extra)
    }

    /// The same for the dev-profile `birthday`.
    pub fn birthday_zip(&self, name: &str, extra: Option<&str>) -> PathBuf {
        self.bootstrap_zip(&workspace_bins().2, name, extra)
    }

    fn bootstrap_zip(&self, binary: &Path, name: &str, extra: Option<&str>) -> PathBuf {
        let bootstrap = std::fs::read(binary).unwrap();
        let mut files: Vec<(&str, &[u8])> = vec![("bootstrap", &bootstrap)];
        if let Some(e) = extra {
            files.push(("release.txt", e.as_bytes()));
        }
        self.zip(name, &files)
    }

    /// A zip of the given files (stored: compressing a debug binary costs more than moving it).
    pub fn zip(&self, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let path = self.dir.path().join(name);
        let mut w = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (file, bytes) in files {
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .unix_permissions(0o755);
            w.start_file(*file, opts).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap();
        path
    }

    pub fn gateway(&self, args: &[&str]) -> Gateway {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
        self.aws_env(&mut cmd);
        let err = self
            .dir
            .path()
            .join(format!("gateway-{}.err", fastrand::u32(..)));
        let mut child = cmd
            .args(["--listen", "127.0.0.1:0", "--environments"])
            .arg(&self.environments)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("start gateway");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .trim()
            .strip_prefix("listening on http://127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "gateway's first line is {first:?}; stderr:\n{}",
                    std::fs::read_to_string(&err).unwrap_or_default()
                )
            });
        Gateway {
            child: Some(child),
            port,
            err,
        }
    }

    /// The SDK configuration of clients on this stack's emulator (dummy credentials).
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        testkit::aws::config(&self.moto, &self.region)
    }

    /// Publishes `zip` as a new version of `function` through the Lambda API (`promote
    /// publish` releases the project's functions; these tests need one function's version)
    /// and returns its number.
    pub fn publish_function(&self, function: &str, zip: &Path) -> String {
        let bytes = std::fs::read(zip).unwrap();
        self.block_on(
            self.lambda
                .update_function_code()
                .function_name(function)
                .zip_file(aws_sdk_lambda::primitives::Blob::new(bytes))
                .send(),
        )
        .unwrap_or_else(|e| panic!("UpdateFunctionCode {function}: {e:?}"));
        let out = self
            .block_on(self.lambda.publish_version().function_name(function).send())
            .unwrap_or_else(|e| panic!("PublishVersion {function}: {e:?}"));
        out.version().unwrap().to_string()
    }

    /// Points `function`'s `stage` alias at `version`, noted as served there at 100% (what a
    /// completed promote run leaves, so that the next stage may take it).
    pub fn serve_release(&self, function: &str, stage: &str, version: &str) {
        self.block_on(
            self.lambda
                .update_alias()
                .function_name(function)
                .name(stage)
                .function_version(version)
                .description(format!("promote/v1 served={version}"))
                .send(),
        )
        .unwrap_or_else(|e| panic!("UpdateAlias {function}:{stage}: {e:?}"));
    }

    /// A stable and a candidate zip of each function: app's two, then birthday's two.
    pub fn release_zips(&self) -> [PathBuf; 4] {
        [
            self.app_zip("app-a.zip", None),
            self.app_zip("app-b.zip", Some("candidate")),
            self.birthday_zip("birthday-a.zip", None),
            self.birthday_zip("birthday-b.zip", Some("candidate")),
        ]
    }

    /// Publishes [`Stack::release_zips`]; live serves the stable release, test the candidate
    /// one, which live's plan takes. The versions of app, then birthday: `[stable, candidate]`.
    pub fn publish_releases(&self, zips: &[PathBuf; 4]) -> ([String; 2], [String; 2]) {
        let mut versions = ["app", "birthday"]
            .into_iter()
            .zip(zips.chunks(2))
            .map(|(f, pair)| {
                let stable = self.publish_function(f, &pair[0]);
                let candidate = self.publish_function(f, &pair[1]);
                self.serve_release(f, "live", &stable);
                self.serve_release(f, "test", &candidate);
                [stable, candidate]
            });
        (versions.next().unwrap(), versions.next().unwrap())
    }

    /// Points `alias` of `function` at `version`, unweighted.
    pub fn set_function_alias(&self, function: &str, alias: &str, version: &str) {
        self.block_on(
            self.lambda
                .update_alias()
                .function_name(function)
                .name(alias)
                .function_version(version)
                .send(),
        )
        .unwrap_or_else(|e| panic!("UpdateAlias {function}:{alias}: {e:?}"));
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// What `alias` of `app` serves: its version, and the candidate with its weight if any.
    pub fn alias_routing(&self, alias: &str) -> (String, Option<(String, f64)>) {
        self.routing_of("app", alias)
    }

    /// What `alias` of `function` serves: its version, and the candidate with its weight.
    pub fn routing_of(&self, function: &str, alias: &str) -> (String, Option<(String, f64)>) {
        let out = self
            .block_on(
                self.lambda
                    .get_alias()
                    .function_name(function)
                    .name(alias)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("GetAlias {function}:{alias}: {e:?}"));
        let split = out
            .routing_config()
            .and_then(|r| r.additional_version_weights())
            .and_then(|w| w.iter().next().map(|(k, v)| (k.clone(), *v)));
        (
            out.function_version().unwrap_or_default().to_string(),
            split,
        )
    }

    pub fn set_alias(&self, alias: &str, version: &str, split: Option<(&str, f64)>) {
        let mut routing = aws_sdk_lambda::types::AliasRoutingConfiguration::builder();
        if let Some((v, w)) = split {
            routing = routing.additional_version_weights(v, w);
        }
        self.block_on(
            self.lambda
                .update_alias()
                .function_name("app")
                .name(alias)
                .function_version(version)
                .routing_config(routing.build())
                .send(),
        )
        .unwrap_or_else(|e| panic!("UpdateAlias {alias}: {e:?}"));
    }

    /// Sum of a metric over the last ten minutes, read back with GetMetricData.
    pub fn metric_sum(&self, namespace: &str, metric: &str, dims: &[(&str, &str)]) -> f64 {
        use aws_sdk_cloudwatch::primitives::DateTime;
        use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
        let now = std::time::SystemTime::now();
        let start = now - Duration::from_secs(600);
        let end = now + Duration::from_secs(60);
        let metric = Metric::builder()
            .namespace(namespace)
            .metric_name(metric)
            .set_dimensions(Some(
                dims.iter()
                    .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
                    .collect(),
            ))
            .build();
        let query = MetricDataQuery::builder()
            .id("q")
            .metric_stat(
                MetricStat::builder()
                    .metric(metric)
                    .period(3600)
                    .stat("Sum")
                    .build(),
            )
            .build();
        let out = self
            .block_on(
                self.cloudwatch
                    .get_metric_data()
                    .metric_data_queries(query)
                    .start_time(DateTime::from(start))
                    .end_time(DateTime::from(end))
                    .send(),
            )
            .expect("GetMetricData");
        out.metric_data_results()
            .iter()
            .flat_map(|r| r.values())
            .sum()
    }

    pub fn alarm_state(&self, name: &str) -> (String, String) {
        let out = self
            .block_on(self.cloudwatch.describe_alarms().alarm_names(name).send())
            .expect("DescribeAlarms");
        let a = &out.metric_alarms()[0];
        (
            a.state_value().unwrap().as_str().to_string(),
            a.state_reason().unwrap_or_default().to_string(),
        )
    }
}

/// A running gateway; SIGTERM on drop.
pub struct Gateway {
    child: Option<Child>,
    pub port: u16,
    err: PathBuf,
}

impl Gateway {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// SIGTERM; the gateway must exit 0 within 10 s.
    pub fn stop(mut self) -> String {
        let mut child = self.child.take().unwrap();
        terminate(&child);
        let (status, _) = wait_for(Duration::from_secs(10), || child.try_wait().unwrap())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("gateway still running 10 s after SIGTERM")
            });
        assert!(
            status.success(),
            "gateway exited {status:?}:\n{}",
            self.stderr()
        );
        self.stderr()
    }
}

fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&c);
            if wait_for(Duration::from_secs(5), || c.try_wait().unwrap()).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
            if std::thread::panicking() {
                eprintln!("--- gateway stderr ---\n{}", self.stderr());
            }
        }
    }
}

/// The dev-profile guardian bootstrap, built with the others by [`workspace_bins`].
pub fn guardian_bin() -> PathBuf {
    workspace_bins();
    profile_dir().join("guardian")
}
