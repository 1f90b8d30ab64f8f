//! What this binary is: fixed at compile time by `build.rs` (vergen), reported by `/build-info`
//! and stamped into the binary for `promote publish`.
use serde::Serialize;

/// The value a build reports for anything it could not determine (e.g. no `.git`).
pub const UNKNOWN: &str = "unknown";

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

/// `@@build-stamp@@<name> <semver> <git sha>@@end@@` (CONTRACTS.md, "The build stamp"):
/// `promote publish` finds it by scanning the `bootstrap` bytes, so it must be one contiguous
/// string in the binary's data.
/// Stripping removes symbols, not data; `stamp()` is called at start-up so the linker keeps it.
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
    std::hint::black_box(BUILD_STAMP)
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
    pub fn current() -> Self {
        BuildInfo {
            name: NAME,
            version: VERSION,
            git: Git {
                sha: GIT_SHA,
                short_sha: short_sha(GIT_SHA),
                branch: GIT_BRANCH,
                commit_timestamp: GIT_COMMIT_TIMESTAMP,
                dirty: parse_dirty(GIT_DIRTY),
            },
            build: Build {
                timestamp: BUILD_TIMESTAMP,
                rustc: BUILD_RUSTC,
                target: BUILD_TARGET,
                profile: BUILD_PROFILE,
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
    fn stamp_follows_the_contract() {
        let inner = BUILD_STAMP
            .strip_prefix("@@build-stamp@@")
            .and_then(|s| s.strip_suffix("@@end@@"))
            .expect("marker delimiters");
        let parts: Vec<&str> = inner.split(' ').collect();
        assert_eq!(parts, [NAME, VERSION, GIT_SHA]);
        assert!(
            GIT_SHA == UNKNOWN
                || (GIT_SHA.len() == 40
                    && GIT_SHA
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))),
            "git sha must be 40 lowercase hex or unknown, got {GIT_SHA}"
        );
    }
}
