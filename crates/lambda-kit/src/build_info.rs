//! What a function's binary is: fixed at compile time by its build script
//! (`build_stamp.rs`, vergen), reported by `/build-info` and stamped into the binary for
//! `promote publish`.
//!
//! The values are the *binary's* crate name, version and commit, so they are read where the
//! binary is compiled: each function crate says `lambda_kit::build_info!();` in its own
//! `build_info` module, and the macro's `env!` calls expand there, with that crate's build
//! script's variables. Only the types and the pure helpers live here.
use serde::Serialize;

/// The value a build reports for anything it could not determine (e.g. no `.git`).
pub const UNKNOWN: &str = "unknown";

/// Defines, in the calling crate's module, the constants its build script provides and the
/// build stamp (CONTRACTS.md, "The build stamp"): `NAME`, `VERSION`, `GIT_SHA`,
/// `GIT_BRANCH`, `GIT_COMMIT_TIMESTAMP`, `GIT_DIRTY`, `BUILD_TIMESTAMP`, `BUILD_RUSTC`,
/// `BUILD_TARGET`, `BUILD_PROFILE`, `BUILD_STAMP`, `stamp()`, `current()` and `BINARY`.
#[macro_export]
macro_rules! build_info {
    () => {
        pub use $crate::build_info::{
            Build, BuildInfo, Dirty, Git, UNKNOWN, parse_dirty, short_sha,
        };

        pub const NAME: &str = env!("CARGO_PKG_NAME");
        pub const VERSION: &str = env!("CARGO_PKG_VERSION");
        pub const GIT_SHA: &str = env!("VERGEN_GIT_SHA");
        pub const GIT_BRANCH: &str = env!("VERGEN_GIT_BRANCH");
        pub const GIT_COMMIT_TIMESTAMP: &str = env!("VERGEN_GIT_COMMIT_TIMESTAMP");
        pub const GIT_DIRTY: &str = env!("VERGEN_GIT_DIRTY");
        pub const BUILD_TIMESTAMP: &str = env!("VERGEN_BUILD_TIMESTAMP");
        pub const BUILD_RUSTC: &str = env!("VERGEN_RUSTC_SEMVER");
        pub const BUILD_TARGET: &str = env!("APP_BUILD_TARGET");
        pub const BUILD_PROFILE: &str = env!("APP_BUILD_PROFILE");

        /// `@@build-stamp@@<name> <semver> <git sha>@@end@@`: `promote publish` finds it by
        /// scanning the `bootstrap` bytes, so it must be one contiguous string in the
        /// binary's data. Stripping removes symbols, not data; `stamp()` is called at
        /// start-up so the linker keeps it.
        pub static BUILD_STAMP: &str = concat!(
            "@@build-stamp@@",
            env!("CARGO_PKG_NAME"),
            " ",
            env!("CARGO_PKG_VERSION"),
            " ",
            env!("VERGEN_GIT_SHA"),
            "@@end@@"
        );

        /// The stamp as it is in the binary; read through `black_box` so LTO cannot fold it away.
        pub fn stamp() -> &'static str {
            ::std::hint::black_box(BUILD_STAMP)
        }

        /// The compile-time half of `/build-info`.
        pub fn current() -> BuildInfo {
            BuildInfo::new([
                NAME,
                VERSION,
                GIT_SHA,
                GIT_BRANCH,
                GIT_COMMIT_TIMESTAMP,
                GIT_DIRTY,
                BUILD_TIMESTAMP,
                BUILD_RUSTC,
                BUILD_TARGET,
                BUILD_PROFILE,
            ])
        }

        /// What the shared serving code needs to know about this binary.
        pub const BINARY: $crate::Binary = $crate::Binary {
            name: NAME,
            git_sha: GIT_SHA,
            stamp,
        };
    };
}

/// Serialises as `"unknown"` when the build could not tell, as the other fields do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Dirty {
    Known(bool),
    Unknown(&'static str),
}

#[derive(Debug, Clone, Serialize)]
pub struct Git {
    pub sha: &'static str,
    pub short_sha: &'static str,
    pub branch: &'static str,
    pub commit_timestamp: &'static str,
    pub dirty: Dirty,
}

#[derive(Debug, Clone, Serialize)]
pub struct Build {
    pub timestamp: &'static str,
    pub rustc: &'static str,
    pub target: &'static str,
    pub profile: &'static str,
}

/// The compile-time half of `/build-info` (the request-time half is in `invocation`).
#[derive(Debug, Clone, Serialize)]
pub struct BuildInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub git: Git,
    pub build: Build,
}

impl BuildInfo {
    /// From the values `build_info!` reads, in its order: name, version, git sha, branch,
    /// commit timestamp, dirty, build timestamp, rustc, target, profile.
    pub fn new(values: [&'static str; 10]) -> Self {
        let [
            name,
            version,
            sha,
            branch,
            commit_timestamp,
            dirty,
            timestamp,
            rustc,
            target,
            profile,
        ] = values;
        BuildInfo {
            name,
            version,
            git: Git {
                sha,
                short_sha: short_sha(sha),
                branch,
                commit_timestamp,
                dirty: parse_dirty(dirty),
            },
            build: Build {
                timestamp,
                rustc,
                target,
                profile,
            },
        }
    }
}

/// The 7-character abbreviation `git log --oneline` shows; "unknown" stays "unknown".
pub fn short_sha(sha: &'static str) -> &'static str {
    if sha.len() >= 7 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        &sha[..7]
    } else {
        UNKNOWN
    }
}

pub fn parse_dirty(value: &str) -> Dirty {
    match value {
        "true" => Dirty::Known(true),
        "false" => Dirty::Known(false),
        _ => Dirty::Unknown(UNKNOWN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_sha_abbreviates_hex_and_keeps_unknown() {
        assert_eq!(
            short_sha("3f2c0e9d1c4b5a69788796a5b4c3d2e1f0a9b8c7"),
            "3f2c0e9"
        );
        assert_eq!(short_sha("unknown"), "unknown");
        assert_eq!(short_sha("abc"), "unknown");
    }

    #[test]
    fn dirty_serialises_as_bool_or_unknown() {
        assert_eq!(serde_json::to_value(parse_dirty("true")).unwrap(), true);
        assert_eq!(serde_json::to_value(parse_dirty("false")).unwrap(), false);
        assert_eq!(
            serde_json::to_value(parse_dirty("unknown")).unwrap(),
            "unknown"
        );
    }

    #[test]
    fn build_info_takes_the_values_in_order() {
        let info = BuildInfo::new([
            "app",
            "0.1.0",
            "3f2c0e9d1c4b5a69788796a5b4c3d2e1f0a9b8c7",
            "main",
            "2026-01-01T00:00:00Z",
            "false",
            "2026-01-01T00:00:01Z",
            "1.95.0",
            "x86_64-unknown-linux-gnu",
            "release",
        ]);
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["name"], "app");
        assert_eq!(json["git"]["short_sha"], "3f2c0e9");
        assert_eq!(json["git"]["dirty"], false);
        assert_eq!(json["build"]["rustc"], "1.95.0");
        assert_eq!(json["build"]["profile"], "release");
    }
}
