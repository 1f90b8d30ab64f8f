//! The build script of every function crate (each names this file as its `build`): embeds
//! what is being built (git commit, toolchain, target, profile) as compile-time env vars.
//!
//! vergen leaves a variable unset when it cannot compute it (e.g. a source tarball without
//! `.git`); every variable the crate reads is then set to "unknown" here, so such a build still
//! succeeds and says honestly what it does not know.
use std::collections::BTreeSet;
use vergen_gitcl::{Build, Emitter, Gitcl, Rustc};

/// Every variable `lambda_kit::build_info!` reads with `env!` (src/build_info.rs).
const REQUIRED: &[&str] = &[
    "VERGEN_GIT_SHA",
    "VERGEN_GIT_BRANCH",
    "VERGEN_GIT_COMMIT_TIMESTAMP",
    "VERGEN_GIT_DIRTY",
    "VERGEN_BUILD_TIMESTAMP",
    "VERGEN_RUSTC_SEMVER",
];

fn main() {
    let build = Build::builder().build_timestamp(true).build();
    let rustc = Rustc::builder().semver(true).build();
    let git = Gitcl::builder()
        .sha(false)
        .branch(true)
        .commit_timestamp(true)
        // Untracked files do not count: in a shared checkout they are usually someone's scratch.
        .dirty(false)
        .build();

    let mut out = Vec::new();
    Emitter::default()
        // vergen also asks cargo to rerun the script when `build.rs` changes. These crates have
        // none (their build script is this shared file, which cargo watches itself), and a
        // missing file counts as changed: every build reran the script and recompiled the
        // function. Cargo.toml is watched below anyway.
        .custom_build_rs("Cargo.toml")
        .add_instructions(&build)
        .and_then(|e| e.add_instructions(&rustc))
        .and_then(|e| e.add_instructions(&git))
        .and_then(|e| e.emit_to(&mut out))
        .expect("vergen could not emit build instructions");
    let out = String::from_utf8(out).expect("vergen output is UTF-8");
    print!("{out}");

    let emitted: BTreeSet<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("cargo:rustc-env="))
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
        .collect();
    for key in REQUIRED.iter().filter(|k| !emitted.contains(*k)) {
        println!("cargo:rustc-env={key}=unknown");
    }

    // vergen only watches .git/HEAD and the branch ref. Re-running on the crate's own changes
    // keeps build.timestamp and git.dirty true to the binary they end up in.
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");

    // Cargo gives these to every build script; no need for vergen's cargo_metadata-based feature.
    for (var, key) in [
        ("TARGET", "APP_BUILD_TARGET"),
        ("PROFILE", "APP_BUILD_PROFILE"),
    ] {
        let value = std::env::var(var).unwrap_or_else(|_| "unknown".into());
        println!("cargo:rustc-env={key}={value}");
    }
}
