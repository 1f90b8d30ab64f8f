//! A build from a tree without `.git` (a source tarball) succeeds and reports "unknown".
//!
//! What `.git` changes is only what the build script emits: the crate reads each value with
//! `env!`, so the build succeeds exactly when the script sets every variable
//! `src/build_info.rs` reads, and reports "unknown" exactly when the script says so. The test
//! therefore runs the build script cargo has already compiled for this test run (the same
//! binary a tarball build would run) on a copy of the crate outside any repository, with the
//! environment cargo gives build scripts. It used to build the whole crate from that copy
//! into a target directory of its own: every dependency compiled again, 1.5 to 3 minutes of a
//! fresh clone's `make test` on 2 cores, to check the same emitted lines.
use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every variable `lambda_kit::build_info!` (which `src/build_info.rs` expands) reads with
/// `env!` that the build script provides (the rest, `CARGO_PKG_*`, come from cargo): read
/// from the source, so a variable added there is checked here too.
fn read_by_the_crate() -> Vec<String> {
    let src = include_str!("../../../crates/lambda-kit/src/build_info.rs");
    src.split("env!(\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(name, _)| name.to_string()))
        .filter(|name| !name.starts_with("CARGO_"))
        .collect()
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The app's compiled build script of this build: `target/<profile>/build/app-*/` next to
/// the test binary's `deps/`, the newest if an older one is still there.
fn build_script() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    std::fs::read_dir(profile_dir.join("build"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("app-"))
        // Cargo names the binary after the script's file: `build-script-build_stamp` for
        // the shared crates/lambda-kit/build_stamp.rs.
        .filter_map(|e| {
            std::fs::read_dir(e.path())
                .ok()?
                .filter_map(Result::ok)
                .map(|f| f.path())
                .find(|p| {
                    p.is_file()
                        && p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("build-script-"))
                })
        })
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .expect("no compiled build script of app under target/*/build/app-*")
}

/// The `cargo:rustc-env=K=V` lines of a build script's output.
fn rustc_env(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("cargo:rustc-env="))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The build script run in `dir` with the environment cargo gives build scripts (the
/// variables it and vergen read), and none of the values a previous run left in ours.
fn run_build_script(dir: &Path, out_dir: &Path) -> Command {
    let mut run = Command::new(build_script());
    // `cargo test` runs tests with build.rs's rustc-env values in the environment, and vergen
    // takes a VERGEN_* variable it finds there as an override: they must not leak in.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("VERGEN_") || key.starts_with("APP_BUILD_") {
            run.env_remove(key.as_ref());
        }
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    run.current_dir(dir)
        .env("CARGO_MANIFEST_DIR", dir)
        .env("CARGO_PKG_NAME", env!("CARGO_PKG_NAME"))
        .env("CARGO_PKG_VERSION", env!("CARGO_PKG_VERSION"))
        .env("OUT_DIR", out_dir)
        .env("TARGET", "x86_64-unknown-linux-gnu")
        .env("HOST", "x86_64-unknown-linux-gnu")
        .env("PROFILE", "debug")
        .env("OPT_LEVEL", "0")
        .env("DEBUG", "false")
        .env("RUSTC", rustc);
    run
}

#[test]
fn builds_without_dot_git_and_reports_unknown() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let temp = TempDir(std::env::temp_dir().join(format!("app-no-git-{}", std::process::id())));
    let tree = temp.0.join("src-tree").join("app");
    common::copy_dir(crate_dir, &tree);
    let out_dir = temp.0.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = run_build_script(&tree, &out_dir)
        // git must not find a repository above the copy either.
        .env("GIT_CEILING_DIRECTORIES", &temp.0)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the build script failed without .git:\n{stdout}\n{stderr}"
    );
    let env = rustc_env(&stdout);
    let read = read_by_the_crate();
    assert!(
        read.len() >= 8,
        "env! names found in build_info.rs: {read:?}"
    );
    for key in &read {
        assert!(
            env.contains_key(key),
            "{key} is not set, so `env!` would fail the build:\n{stdout}"
        );
    }
    for key in [
        "VERGEN_GIT_SHA",
        "VERGEN_GIT_BRANCH",
        "VERGEN_GIT_COMMIT_TIMESTAMP",
        "VERGEN_GIT_DIRTY",
    ] {
        assert_eq!(env[key], "unknown", "{key} without .git:\n{stdout}");
    }
    // What does not come from git is still known.
    assert_eq!(env["VERGEN_RUSTC_SEMVER"], app::build_info::BUILD_RUSTC);
    assert_ne!(env["VERGEN_BUILD_TIMESTAMP"], "unknown");
    assert_eq!(env["APP_BUILD_PROFILE"], "debug");
}

#[test]
fn the_same_script_in_the_repository_knows_the_commit() {
    // The counter-check: the same script, in the checkout, reports the commit the
    // repository is at, so the "unknown" above comes from the missing .git.
    let Some(head) = common::git(&["rev-parse", "HEAD"]) else {
        return; // not built from a git checkout: nothing to compare with
    };
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let temp = TempDir(std::env::temp_dir().join(format!("app-git-{}", std::process::id())));
    std::fs::create_dir_all(&temp.0).unwrap();
    let out = run_build_script(crate_dir, &temp.0).output().unwrap();
    assert!(out.status.success());
    let env = rustc_env(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(env["VERGEN_GIT_SHA"], head.trim());
}
