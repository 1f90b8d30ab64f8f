//! The emulator: one `moto_server` child on a free 127.0.0.1 port, seeded by `tools/seed.py`
//! from an environments directory exactly as Terraform would create the stack, and the
//! environment a child process (`promote`, `gateway`) needs to reach it with dummy
//! credentials and no profile of the user's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::tools::{python, scrub_aws_env, venv_tool};
use crate::{free_port, http, workspace_root};

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A moto_server child process on 127.0.0.1, killed on drop (its log printed if the test
/// is failing: a 500 from the emulator carries its traceback only there).
pub struct Moto {
    child: Child,
    pub port: u16,
    pub endpoint: String,
    log: PathBuf,
    /// Holds the empty shared AWS config files children are pointed at.
    dir: PathBuf,
}

impl Moto {
    /// Starts moto_server; its log and the empty AWS config files go to `dir`.
    pub fn start(dir: &Path) -> Moto {
        let bin = venv_tool("moto_server");
        let mut last_log = String::new();
        // A port picked free can be taken before moto binds it: retry with another.
        for attempt in 0..5 {
            let port = free_port();
            let log = dir.join(format!("moto-{attempt}.log"));
            let out = std::fs::File::create(&log).expect("moto log");
            let mut cmd = Command::new(&bin);
            scrub_aws_env(&mut cmd);
            let child = cmd
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut moto = Moto {
                child,
                port,
                endpoint: format!("http://127.0.0.1:{port}"),
                log,
                dir: dir.to_path_buf(),
            };
            let deadline = Instant::now() + START_TIMEOUT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = moto.child.try_wait() {
                    break; // exited: port in use or broken install
                }
                if http::request(port, "GET", "/moto-api/data.json", &[], b"")
                    .is_ok_and(|a| a.status == 200)
                {
                    return moto;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last_log = std::fs::read_to_string(&moto.log).unwrap_or_default();
            drop(moto);
        }
        panic!(
            "moto_server did not answer on 127.0.0.1 within {START_TIMEOUT:?}; its log:\n{last_log}"
        );
    }

    /// Stops the emulator now (the port then refuses connections).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Wipes every resource in the emulator (moto's reset API).
    pub fn reset(&self) {
        let answer =
            http::request(self.port, "POST", "/moto-api/reset", &[], b"").expect("moto reset");
        assert_eq!(answer.status, 200, "moto reset failed: {}", answer.text());
    }

    /// Runs `tools/seed.py` against this emulator with `environments` (and `extra` options);
    /// returns what it printed. Without AWS_REGION the fixture lands in project.json's region.
    pub fn seed(&self, environments: &Path, extra: &[&str]) -> Value {
        let mut cmd = Command::new(python());
        scrub_aws_env(&mut cmd);
        let out = cmd
            .arg(workspace_root().join("tools/seed.py"))
            .args(["--endpoint", &self.endpoint])
            .args(extra)
            .arg("--environments")
            .arg(environments)
            .stdin(Stdio::null())
            .output()
            .expect("run tools/seed.py");
        assert!(
            out.status.success(),
            "tools/seed.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("seed.py prints one JSON object")
    }

    /// What a child needs to talk to this emulator through the SDK, and nothing of the
    /// caller's AWS environment: the endpoint, `region`, dummy credentials, and empty shared
    /// config files (no profile can leak in, no warning about a missing file on stderr).
    pub fn sdk_env(&self, cmd: &mut Command, region: &str) {
        let empty = self.dir.join("no-aws-config");
        if !empty.is_dir() {
            std::fs::create_dir_all(&empty).unwrap();
            std::fs::write(empty.join("config"), "").unwrap();
            std::fs::write(empty.join("credentials"), "").unwrap();
        }
        scrub_aws_env(cmd);
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", region)
            .env("AWS_DEFAULT_REGION", region)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_SESSION_TOKEN", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", empty.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", empty.join("credentials"));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "--- moto_server log (last 60 lines) ---\n{}",
                tail.join("\n")
            );
        }
    }
}

/// The stages of an environments directory that another stage takes its candidates from
/// (the `upstream` of some stage file): where promote's path-to-live guard looks.
pub fn upstream_stages(environments: &Path) -> Vec<String> {
    let mut ups = Vec::new();
    for entry in std::fs::read_dir(environments).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "project.json")
            || path.extension().is_none_or(|e| e != "json")
        {
            continue;
        }
        let Ok(stage) = serde_json::from_str::<Value>(&std::fs::read_to_string(&path).unwrap())
        else {
            continue;
        };
        if let Some(up) = stage["upstream"].as_str() {
            ups.push(up.to_string());
        }
    }
    ups
}

/// The region an environments directory's project.json names (us-east-1 when it names none).
pub fn region_of(environments: &Path) -> String {
    let path = environments.join("project.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let project: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    project["region"]
        .as_str()
        .unwrap_or("us-east-1")
        .to_string()
}
