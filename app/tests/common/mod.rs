//! Helpers shared by the integration tests that run real processes: the server binary,
//! a minimal HTTP/1.1 client, and the lookup of tools from the project's .venv.
#![allow(dead_code)] // each test binary uses its own subset

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
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

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`, so the body is
/// everything up to EOF).
pub fn http(addr: SocketAddr, method: &str, path: &str) -> HttpResponse {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .expect("a complete response head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A tool that `tools/venv.sh` installs into .venv. Tests find it on PATH (`make test`
/// puts .venv/bin first) and fail, never skip, when it is missing: CI runs through make.
pub fn venv_tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not on PATH. Run the tests with `make test` (which creates .venv and \
                 puts .venv/bin first on PATH), or run `tools/venv.sh` and \
                 `export PATH=\"$PWD/.venv/bin:$PATH\"` before `cargo test`."
            )
        })
}

/// A port that was free a moment ago, for tools that cannot be told to pick their own.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
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
