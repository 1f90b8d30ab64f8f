//! Exec-to-first-200 of the local server and its peak RSS (`cargo bench -p app --bench
//! startup`; bench/app.sh points APP_BIN at the stripped release bootstrap). Printed, never
//! asserted.
//!
//! Each run: spawn the binary on a free loopback port, retry `GET /` until the first 200, then
//! send 200 more requests to `/build-info` and read VmHWM (peak resident set) from /proc.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GIVE_UP: Duration = Duration::from_secs(10);

fn main() {
    let bin = std::env::var("APP_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_app").to_owned());
    let runs: usize = std::env::var("STARTUP_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(25);

    let mut startups = Vec::with_capacity(runs);
    let mut peaks_kib = Vec::with_capacity(runs);
    for _ in 0..runs {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        let mut child = Command::new(&bin)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .env("PORT", port.to_string())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
        let first_200 = loop {
            if get(addr, "/") == Some(200) {
                break started.elapsed();
            }
            assert!(
                started.elapsed() < GIVE_UP,
                "{bin} never answered 200 on {addr}"
            );
            std::thread::sleep(Duration::from_micros(100));
        };
        for _ in 0..200 {
            assert_eq!(get(addr, "/build-info"), Some(200));
        }
        peaks_kib.push(vm_hwm_kib(child.id()).unwrap_or(0));
        let _ = child.kill();
        let _ = child.wait();
        startups.push(first_200);
    }
    startups.sort_unstable();
    peaks_kib.sort_unstable();
    println!(
        "startup exec-to-first-200: runs={runs} median={:.2?} min={:.2?} max={:.2?}",
        startups[runs / 2],
        startups[0],
        startups[runs - 1]
    );
    println!(
        "peak RSS (VmHWM after first 200 + 200 x /build-info): median={:.2} MiB max={:.2} MiB",
        peaks_kib[runs / 2] as f64 / 1024.0,
        peaks_kib[runs - 1] as f64 / 1024.0
    );
}

/// Status of one `GET` over a fresh connection; `None` while nothing listens yet.
fn get(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    std::str::from_utf8(response.get(9..12)?).ok()?.parse().ok()
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
