//! The emulator: one `moto_server` child on a free 127.0.0.1 port, seeded by `tools/seed.py`
//! from an environments directory exactly as Terraform would create the stack, and the
//! environment a child process (`promote`, `gateway`) needs to reach it with dummy
//! credentials and no profile of the user's.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::tools::{python, scrub_aws_env, venv_tool};
use crate::{free_port, http, workspace_root};

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A moto_server child process on 127.0.0.1, leased from the test binary's pool
/// ([`Moto::lease`]): wiped and handed to the next test on drop, or killed when the test
/// failed (its log then printed: a 500 from the emulator carries its traceback only there) or
/// stopped it.
pub struct Moto {
    /// `None` once stopped.
    child: Option<Child>,
    pub port: u16,
    pub endpoint: String,
    log: PathBuf,
    /// Where this test's part of the log starts (a pooled server's log holds earlier tests').
    log_from: u64,
    /// Holds the empty shared AWS config files children are pointed at.
    dir: PathBuf,
}

/// An idle emulator, wiped, waiting for the next test of this test binary.
struct Idle {
    child: Child,
    port: u16,
    log: PathBuf,
}

/// Starting moto_server costs a Python interpreter importing every moto backend: 1 to 3 s of
/// CPU, paid by every test of a binary that starts its own. A reset (moto's own API) empties
/// one in milliseconds, so tests of one binary reuse the servers earlier tests are done with.
static POOL: Mutex<Vec<Idle>> = Mutex::new(Vec::new());

/// Spawns on one thread that lives as long as the test binary, with the children set to be
/// killed when that thread ends: pooled servers outlive the tests that started them, and the
/// harness exits without dropping statics, so nothing else would stop them.
fn spawn_for_the_process(cmd: Command) -> std::io::Result<Child> {
    type Request = (Command, Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<Request>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
                unsafe {
                    cmd.pre_exec(|| {
                        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                let _ = reply.send(cmd.spawn());
            }
        });
        Mutex::new(tx)
    });
    let (tx, rx) = channel();
    spawner
        .lock()
        .unwrap()
        .send((cmd, tx))
        .expect("the spawner thread lives as long as the process");
    rx.recv().expect("the spawner thread answers every request")
}

impl Moto {
    /// An emptied emulator from the pool, or a new one; its log goes to the pool's directory
    /// and the empty AWS config files to `dir`.
    pub fn lease(dir: &Path) -> Moto {
        let idle = POOL.lock().unwrap().pop();
        match idle {
            Some(Idle { child, port, log }) => Moto {
                child: Some(child),
                port,
                endpoint: format!("http://127.0.0.1:{port}"),
                log_from: std::fs::metadata(&log).map_or(0, |m| m.len()),
                log,
                dir: dir.to_path_buf(),
            },
            None => {
                let logs =
                    std::env::temp_dir().join(format!("testkit-moto-{}", std::process::id()));
                std::fs::create_dir_all(&logs).unwrap();
                let mut moto = Moto::launch(&logs);
                moto.dir = dir.to_path_buf();
                moto
            }
        }
    }

    fn launch(dir: &Path) -> Moto {
        let bin = venv_tool("moto_server");
        let mut last_log = String::new();
        // A port picked free can be taken before moto binds it: retry with another.
        for attempt in 0..5 {
            let port = free_port();
            let log = dir.join(format!("moto-{port}-{attempt}.log"));
            let out = std::fs::File::create(&log).expect("moto log");
            let mut cmd = Command::new(&bin);
            scrub_aws_env(&mut cmd);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out);
            let child = spawn_for_the_process(cmd)
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut moto = Moto {
                child: Some(child),
                port,
                endpoint: format!("http://127.0.0.1:{port}"),
                log,
                log_from: 0,
                dir: dir.to_path_buf(),
            };
            let deadline = Instant::now() + START_TIMEOUT;
            while Instant::now() < deadline {
                if let Some(Ok(Some(_))) = moto.child.as_mut().map(Child::try_wait) {
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
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// This test's part of the log.
    fn own_log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.seek(SeekFrom::Start(self.log_from));
            let _ = f.read_to_string(&mut text);
        }
        text
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
        if std::thread::panicking() {
            self.stop();
            let log = self.own_log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "--- moto_server log (last 60 lines) ---\n{}",
                tail.join("\n")
            );
            return;
        }
        if let Some(mut child) = self.child.take() {
            let alive = matches!(child.try_wait(), Ok(None));
            let wiped = alive
                && http::request(self.port, "POST", "/moto-api/reset", &[], b"")
                    .is_ok_and(|a| a.status == 200);
            if wiped {
                POOL.lock().unwrap().push(Idle {
                    child,
                    port: self.port,
                    log: self.log.clone(),
                });
            } else {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.stop();
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
