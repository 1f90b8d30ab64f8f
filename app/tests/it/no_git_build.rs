//! A build from a tree without `.git` (a source tarball) succeeds and reports "unknown".
//!
//! The crate (with the test harness crate its manifest names) and a one-member copy of the
//! workspace manifest go to a temp dir outside any repository; they are built there into
//! `target/no-git` (a separate target dir, so neither the shared `target/debug` nor its
//! fingerprints are touched). That dir persists, so only the
//! first run pays for the dependencies (~30 s on 2 cores, dev profile without debug info).
use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The root manifest with `app` as the only member: keeps `[workspace.package]`,
/// `[workspace.dependencies]` and the release profile the crate inherits.
fn one_member_manifest(root_manifest: &str) -> String {
    let mut replaced = false;
    let out: Vec<String> = root_manifest
        .lines()
        .map(|line| {
            if !replaced && line.trim_start().starts_with("members") {
                replaced = true;
                r#"members = ["app"]"#.to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(replaced, "no `members = [...]` line in the root Cargo.toml");
    out.join("\n") + "\n"
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn builds_without_dot_git_and_reports_unknown() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = crate_dir.parent().unwrap();
    let temp = TempDir(std::env::temp_dir().join(format!("app-no-git-{}", std::process::id())));
    let tree = temp.0.join("src-tree");
    common::copy_dir(crate_dir, &tree.join("app"));
    // The app's dev-dependency: cargo loads its manifest even for a build of the binary alone.
    common::copy_dir(
        &workspace.join("crates/testkit"),
        &tree.join("crates/testkit"),
    );
    let root = std::fs::read_to_string(workspace.join("Cargo.toml")).unwrap();
    std::fs::write(tree.join("Cargo.toml"), one_member_manifest(&root)).unwrap();
    std::fs::copy(workspace.join("Cargo.lock"), tree.join("Cargo.lock")).unwrap();

    let target_dir = workspace.join("target").join("no-git");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    // `cargo test` runs tests with build.rs's rustc-env values in the environment, and vergen
    // takes a VERGEN_* variable it finds there as an override: they must not leak in.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("VERGEN_") || key.starts_with("APP_BUILD_") {
            build.env_remove(key.as_ref());
        }
    }
    let out = build
        .args(["build", "--offline", "-p", "app", "--bin", "app"])
        .current_dir(&tree)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_PROFILE_DEV_DEBUG", "0")
        // git must not find a repository above the temp dir either.
        .env("GIT_CEILING_DIRECTORIES", &temp.0)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "build without .git failed:\n{stderr}");

    let bin = target_dir.join("debug").join("app");
    let binary = std::fs::read(&bin).unwrap();
    assert_eq!(
        common::build_stamp(&binary).as_deref(),
        Some(concat!("app ", env!("CARGO_PKG_VERSION"), " unknown"))
    );

    let (_server, addr) = common::start_local_server(&bin);
    let body = common::http(addr, "GET", "/build-info").json();
    for field in ["sha", "short_sha", "branch", "commit_timestamp", "dirty"] {
        assert_eq!(body["git"][field], "unknown", "git.{field}: {body}");
    }
    // What does not come from git is still known.
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["build"]["rustc"], app::build_info::BUILD_RUSTC);
    assert_ne!(body["build"]["timestamp"], "unknown");
}

#[test]
fn one_member_manifest_keeps_everything_else() {
    let root = "[workspace]\nresolver = \"3\"\nmembers = [\"app\", \"promote\"]\n\n[workspace.dependencies]\nserde = \"1\"\n";
    let got = one_member_manifest(root);
    assert!(got.contains("members = [\"app\"]\n"));
    assert!(!got.contains("promote"));
    assert!(got.contains("[workspace.dependencies]\nserde = \"1\""));
}
