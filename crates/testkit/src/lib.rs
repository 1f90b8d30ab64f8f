//! What the workspace's integration tests share: the emulator (`moto_server` on a free
//! loopback port, seeded as Terraform would create the stack, and the environment a child
//! process needs to reach it), a fault-injecting proxy in front of it, one small HTTP client
//! and an open-loop load made of it, scratch directories and bounded waits.
//!
//! A dev-dependency only. Every wait is bounded; only 127.0.0.1 is ever contacted.

pub mod files;
pub mod http;
pub mod load;
pub mod moto;
pub mod tools;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "fault-proxy")]
pub mod fault_proxy;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use files::{Scratch, copy_dir, edit_json, keep_alarms};

/// The repository's root (the workspace directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/testkit sits two levels below the workspace root")
        .to_path_buf()
}

/// Polls `f` every 20 ms until it returns Some, at most `timeout`; with the time it took.
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

/// A port that was free a moment ago, for servers that cannot be told to pick their own.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}
