//! Integration harness: a moto_server on a free loopback port, seeded by `tools/seed.py` as
//! Terraform would create the stack (the same steps as promote/tests/support, which cannot be
//! included here: it names promote's own binary through `CARGO_BIN_EXE_promote`), real `app`
//! zips published with the real `promote`, and the `gateway` binary in front of it all.
//!
//! Every wait is bounded; only 127.0.0.1 is contacted; credentials are dummies.
#![allow(dead_code)] // each tests/*.rs binary uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `target/debug` (or wherever cargo put this test binary's profile directory).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The dev-profile `app` and `promote` binaries, built once per test binary. `cargo test
/// --workspace` has built them already (this is then a no-op check); `cargo test -p gateway`
/// has not, and `CARGO_BIN_EXE_*` only names a package's own binaries. The build asks for
/// what `cargo test --workspace` builds (every target, dev-dependencies on) so that features
/// unify the same way: `-p app -p promote` alone resolves them differently and rebuilt the
/// AWS SDK under `make test`, five minutes of a cold CI run.
pub fn workspace_bins() -> &'static (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
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
        let bins = (dir.join("app"), dir.join("promote"));
        if !out.status.success() {
            // Another package's sources mid-edit in a shared tree must not stop these tests
            // when binaries from an earlier build are there; a fresh clone has none, and fails.
            assert!(
                bins.0.is_file() && bins.1.is_file(),
                "cargo build --workspace --all-targets failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!(
                "warning: cargo build --workspace --all-targets failed; using the binaries already in {}:\n{}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        bins
    })
}

fn scrub_aws_env(cmd: &mut Command) {
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(&var);
        }
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn venv_or_path(name: &str) -> PathBuf {
    let venv = workspace_root().join(".venv/bin").join(name);
    if venv.is_file() {
        return venv;
    }
    find_on_path(name).unwrap_or_else(|| {
        panic!("{name} not found in .venv/bin nor on PATH: run `tools/venv.sh --no-checkov` first")
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// An HTTP answer: status, headers (lower-case names), body bytes.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.0 request (the server closes after answering), bounded in time.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Answer> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.set_write_timeout(Some(Duration::from_secs(20)))?;
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
    })
}

pub fn get(port: u16, path: &str) -> Answer {
    request(port, "GET", path, &[], b"").unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

struct Moto {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

impl Moto {
    fn start(dir: &Path) -> Moto {
        let bin = venv_or_path("moto_server");
        for attempt in 0..5 {
            let port = free_port();
            let log = dir.join(format!("moto-{attempt}.log"));
            let out = std::fs::File::create(&log).unwrap();
            let mut cmd = Command::new(&bin);
            scrub_aws_env(&mut cmd);
            let mut child = cmd
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if request(port, "GET", "/moto-api/data.json", &[], b"")
                    .is_ok_and(|a| a.status == 200)
                {
                    return Moto {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                        log,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("moto_server did not start; see {}", dir.display());
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!(
                "--- moto_server log (last 30 lines, newest first) ---\n{}",
                tail.join("\n")
            );
        }
    }
}

/// A seeded emulator, a copy of environments/, and SDK clients to read what the gateway did.
pub struct Stack {
    moto: Moto,
    pub seeded: Value,
    pub environments: PathBuf,
    pub region: String,
    pub dir: tempfile::TempDir,
    pub rt: tokio::runtime::Runtime,
    pub lambda: aws_sdk_lambda::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Stack {
    pub fn new() -> Stack {
        Stack::with_environments(|_| {})
    }

    pub fn with_environments(edit: impl FnOnce(&Path)) -> Stack {
        let dir = tempfile::Builder::new()
            .prefix("gateway-it-")
            .tempdir()
            .unwrap();
        let environments = dir.path().join("environments");
        std::fs::create_dir_all(&environments).unwrap();
        for e in std::fs::read_dir(workspace_root().join("environments")).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), environments.join(e.file_name())).unwrap();
            }
        }
        edit(&environments);
        let moto = Moto::start(dir.path());
        let mut cmd = Command::new(venv_or_path("python"));
        scrub_aws_env(&mut cmd);
        let out = cmd
            .arg(workspace_root().join("tools/seed.py"))
            .args([
                "--endpoint",
                &moto.endpoint,
                "--versions",
                "1",
                "--environments",
            ])
            .arg(&environments)
            .stdin(Stdio::null())
            .output()
            .expect("run tools/seed.py");
        assert!(
            out.status.success(),
            "tools/seed.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seeded: Value = serde_json::from_slice(&out.stdout).unwrap();
        let project: Value = serde_json::from_str(
            &std::fs::read_to_string(environments.join("project.json")).unwrap(),
        )
        .unwrap();
        let region = project["region"].as_str().unwrap().to_string();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::Config::builder()
                .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
                .region(aws_sdk_lambda::config::Region::new(region.clone()))
                .credentials_provider(aws_sdk_lambda::config::Credentials::new(
                    "testing", "testing", None, None, "test",
                ))
                .endpoint_url(&moto.endpoint)
                .build(),
        );
        let cloudwatch = aws_sdk_cloudwatch::Client::from_conf(
            aws_sdk_cloudwatch::Config::builder()
                .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
                .region(aws_sdk_cloudwatch::config::Region::new(region.clone()))
                .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
                    "testing", "testing", None, None, "test",
                ))
                .endpoint_url(&moto.endpoint)
                .build(),
        );
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
        scrub_aws_env(cmd);
        let empty = self.dir.path().join("no-aws-config");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::write(empty.join("config"), "").unwrap();
        cmd.env("AWS_ENDPOINT_URL", &self.moto.endpoint)
            .env("AWS_REGION", &self.region)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_SESSION_TOKEN", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", empty.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", empty.join("config"))
            .env_remove("PROMOTE_ENVIRONMENTS")
            .env("NO_COLOR", "1");
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
        last["version"].as_str().unwrap().to_string()
    }

    /// A zip whose `bootstrap` is the dev-profile `app` (it speaks the Runtime API when
    /// AWS_LAMBDA_RUNTIME_API is set). `extra` adds a file so that the same binary can be
    /// published as a second version (Lambda keys code by the zip's hash).
    pub fn app_zip(&self, name: &str, extra: Option<&str>) -> PathBuf {
        let bootstrap = std::fs::read(&workspace_bins().0).unwrap();
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

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// What `alias` of `app` serves: its version, and the candidate with its weight if any.
    pub fn alias_routing(&self, alias: &str) -> (String, Option<(String, f64)>) {
        let out = self
            .block_on(
                self.lambda
                    .get_alias()
                    .function_name("app")
                    .name(alias)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("GetAlias {alias}: {e:?}"));
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

/// Polls `f` every 20 ms until it returns Some, at most `timeout`.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<(T, Duration)> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some((v, start.elapsed()));
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
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
