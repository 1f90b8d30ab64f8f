//! Helpers shared by the integration tests that run real processes: the server binary and its
//! output; the HTTP client and the lookup of tools from the project's .venv are the
//! workspace's shared ones (testkit).
#![allow(dead_code)] // a harness: not every test module uses every part of it

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Lines a child prints on stdout and stderr, read on background threads.
pub struct Output {
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Output {
    pub fn capture(child: &mut Child) -> Output {
        let (tx, lines) = channel();
        let streams: Vec<Box<dyn Read + Send>> = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .collect();
        for stream in streams {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(strip_ansi(&line)).is_err() {
                        break;
                    }
                }
            });
        }
        Output {
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the first line (from now on) that `pick` accepts; panics with what was seen.
    pub fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + TIMEOUT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = pick(&line);
                    self.seen.push(line);
                    if let Some(found) = found {
                        return found;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "timed out waiting for {what}; output so far:\n{}",
            self.seen.join("\n")
        );
    }

    /// The JSON log lines seen so far, plus any that arrive within `grace`.
    pub fn json_lines(&mut self, grace: Duration) -> Vec<Value> {
        while let Ok(line) = self.lines.recv_timeout(grace) {
            self.seen.push(line);
        }
        self.seen
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequence: ESC [ ... final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Starts `command` with stdout and stderr piped and no stdin.
pub fn spawn_piped(command: &mut Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"))
}

/// A child process killed (by its own handle) when the test ends, pass or fail.
pub struct Running {
    pub child: Child,
    pub output: Output,
}

impl Running {
    pub fn spawn(command: &mut Command) -> Running {
        let mut child = spawn_piped(command);
        let output = Output::capture(&mut child);
        Running { child, output }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the `app` binary as a local server on a free port (PORT=0) and waits for the
/// address it announces.
pub fn start_local_server(bin: &Path) -> (Running, SocketAddr) {
    let mut command = Command::new(bin);
    command
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("PORT", "0")
        .env("RUST_LOG", "info");
    let mut server = Running::spawn(&mut command);
    let addr = server
        .output
        .wait_for("the server's listening line", |line| {
            let v: Value = serde_json::from_str(line).ok()?;
            (v["message"] == "listening").then(|| v["addr"].as_str()?.parse().ok())?
        });
    (server, addr)
}

pub use testkit::http::Answer;
pub use testkit::tools::venv_tool;
pub use testkit::{copy_dir, free_port};

/// One request over a fresh connection; panics when no answer comes.
pub fn http(addr: SocketAddr, method: &str, path: &str) -> Answer {
    testkit::http::request_to(addr, method, path, &[], b"")
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

pub fn wait_until_listening(addr: SocketAddr) {
    let deadline = Instant::now() + TIMEOUT;
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `git <args>` in the crate directory; `None` when git fails or is absent.
pub fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The marker of CONTRACTS.md, "The build stamp", as `promote publish` finds it: the first one
/// in the bytes.
pub fn build_stamp(binary: &[u8]) -> Option<String> {
    const START: &[u8] = b"@@build-stamp@@";
    const END: &[u8] = b"@@end@@";
    let at = binary.windows(START.len()).position(|w| w == START)? + START.len();
    let len = binary[at..].windows(END.len()).position(|w| w == END)?;
    String::from_utf8(binary[at..at + len].to_vec()).ok()
}

pub fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}
