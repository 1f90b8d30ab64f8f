//! The embedded build info is the commit the binary was built from, and the build is redone
//! when HEAD moves.
//!
//! In a shared checkout a commit landing between the build and this test makes it fail: the
//! binary is then honestly stale, and a re-run rebuilds it.
use crate::common;

use app::build_info;
use common::git;

#[test]
fn git_sha_is_the_head_the_tree_was_built_from() {
    match git(&["rev-parse", "HEAD"]) {
        Some(head) => {
            assert_eq!(
                build_info::GIT_SHA,
                head,
                "embedded git.sha differs from `git rev-parse HEAD` (did HEAD move since the build?)"
            );
            assert_eq!(build_info::short_sha(build_info::GIT_SHA), &head[..7]);
            let branch = git(&["rev-parse", "--abbrev-ref", "--symbolic-full-name", "HEAD"]);
            assert_eq!(Some(build_info::GIT_BRANCH), branch.as_deref());
            // vergen reports the committer date in UTC, RFC 3339.
            let committed = std::process::Command::new("git")
                .args([
                    "log",
                    "-1",
                    "--date=format-local:%Y-%m-%dT%H:%M:%S",
                    "--format=%cd",
                ])
                .env("TZ", "UTC")
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .unwrap();
            let committed = String::from_utf8(committed.stdout).unwrap();
            assert_eq!(
                build_info::GIT_COMMIT_TIMESTAMP.get(..19),
                Some(committed.trim())
            );
        }
        // A build from a source tarball says so rather than inventing a commit.
        None => assert_eq!(build_info::GIT_SHA, build_info::UNKNOWN),
    }
}

#[test]
fn the_binary_carries_the_build_stamp_promote_reads() {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_app")).unwrap();
    let stamp = common::build_stamp(&binary).expect("a @@build-stamp@@ marker in the binary");
    assert_eq!(
        stamp,
        format!("app {} {}", env!("CARGO_PKG_VERSION"), build_info::GIT_SHA)
    );
    assert_eq!(
        common::count(&binary, b"@@build-stamp@@"),
        1,
        "exactly one marker"
    );
}

#[test]
fn the_build_script_reruns_when_head_moves() {
    let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) else {
        return assert_eq!(build_info::GIT_SHA, build_info::UNKNOWN);
    };
    // Cargo keeps what build.rs printed next to its OUT_DIR.
    let output = std::path::Path::new(env!("OUT_DIR")).with_file_name("output");
    let printed = std::fs::read_to_string(&output).unwrap();
    let watches = |path: &str| {
        printed
            .lines()
            .any(|l| l == format!("cargo:rerun-if-changed={path}"))
    };
    assert!(
        watches(&format!("{git_dir}/HEAD")),
        "no watch on HEAD in:\n{printed}"
    );
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        assert!(
            watches(&format!("{git_dir}/{reference}")),
            "no watch on {reference} (commits move it, not HEAD) in:\n{printed}"
        );
    }
}
