//! The build stamp: `<name> <semver> <git sha>`.
//!
//! The app binary embeds `@@build-stamp@@<name> <semver> <sha>@@end@@`; `promote publish`
//! copies the inner text into the Lambda version description, where `status` and the
//! semver guard read it back. A description that does not parse (a version published by
//! another tool) is simply unknown: `BuildStamp::parse` returns `None`.

use std::fmt;

const MARKER_START: &[u8] = b"@@build-stamp@@";
const MARKER_END: &[u8] = b"@@end@@";
/// Longer than any sane stamp; bounds the scan for the end marker.
const MAX_STAMP_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStamp {
    pub name: String,
    pub semver: semver::Version,
    /// 40 lowercase hex digits, or `unknown` for a build made outside git.
    pub git_sha: String,
}

impl BuildStamp {
    /// Parses a version description. `None` when it is not exactly `<name> <semver> <sha>`.
    pub fn parse(description: &str) -> Option<BuildStamp> {
        let mut parts = description.trim().split(' ');
        let (name, semver, sha) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || name.is_empty() || !valid_sha(sha) {
            return None;
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return None;
        }
        Some(BuildStamp {
            name: name.to_string(),
            semver: semver::Version::parse(semver).ok()?,
            git_sha: sha.to_string(),
        })
    }

    /// Finds the first embedded marker in a binary (the `bootstrap` of a deployment zip).
    /// `None` if there is no marker; `Some(Err(text))` if there is one whose content does
    /// not parse, so the caller can say what it found.
    pub fn find_in_binary(bytes: &[u8]) -> Option<Result<BuildStamp, String>> {
        let start = find(bytes, MARKER_START)? + MARKER_START.len();
        let window = &bytes[start..bytes.len().min(start + MAX_STAMP_LEN + MARKER_END.len())];
        let Some(end) = find(window, MARKER_END) else {
            return Some(Err(String::from_utf8_lossy(
                &window[..window.len().min(80)],
            )
            .into_owned()));
        };
        let inner = String::from_utf8_lossy(&window[..end]).into_owned();
        Some(BuildStamp::parse(&inner).ok_or(inner))
    }

    /// First 7 characters of the sha (or `unknown`).
    pub fn short_sha(&self) -> &str {
        if self.git_sha == "unknown" {
            &self.git_sha
        } else {
            &self.git_sha[..7]
        }
    }
}

impl fmt::Display for BuildStamp {
    /// The Lambda version description.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.name, self.semver, self.git_sha)
    }
}

fn valid_sha(sha: &str) -> bool {
    sha == "unknown"
        || (sha.len() == 40 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "3f2c0e9d1c4b5a69788796a5b4c3d2e1f0a9b8c7";

    #[test]
    fn round_trips_a_description() {
        let s = BuildStamp::parse(&format!("app 0.2.0 {SHA}")).unwrap();
        assert_eq!(s.name, "app");
        assert_eq!(s.semver, semver::Version::new(0, 2, 0));
        assert_eq!(s.short_sha(), "3f2c0e9");
        assert_eq!(s.to_string(), format!("app 0.2.0 {SHA}"));
    }

    #[test]
    fn accepts_unknown_sha_and_prerelease_semver() {
        let s = BuildStamp::parse("app 1.0.0-rc.1 unknown").unwrap();
        assert_eq!(s.short_sha(), "unknown");
        assert!(s.semver.pre.as_str() == "rc.1");
    }

    #[test]
    fn descriptions_from_other_tools_are_unknown() {
        for d in [
            "",
            "deployed by terraform",
            "app 0.2.0",
            "app 0.2 3f2c0e9d1c4b5a69788796a5b4c3d2e1f0a9b8c7",
            "app 0.2.0 3F2C0E9D1C4B5A69788796A5B4C3D2E1F0A9B8C7",
            "app 0.2.0 3f2c0e9",
            "app 0.2.0 3f2c0e9d1c4b5a69788796a5b4c3d2e1f0a9b8c7 extra",
            "app  0.2.0 3f2c0e9d1c4b5a69788796a5b4c3d2e1f0a9b8c7",
        ] {
            assert_eq!(BuildStamp::parse(d), None, "{d:?}");
        }
    }

    #[test]
    fn finds_the_first_marker_in_a_binary() {
        let mut bin = vec![0u8, 1, 2, 0xff];
        bin.extend_from_slice(format!("@@build-stamp@@app 0.1.0 {SHA}@@end@@").as_bytes());
        bin.extend_from_slice(b"\0junk@@build-stamp@@app 9.9.9 unknown@@end@@");
        let s = BuildStamp::find_in_binary(&bin).unwrap().unwrap();
        assert_eq!(s.semver, semver::Version::new(0, 1, 0));
    }

    #[test]
    fn reports_missing_or_broken_markers() {
        assert!(BuildStamp::find_in_binary(b"no marker here").is_none());
        let broken = BuildStamp::find_in_binary(b"@@build-stamp@@app x.y sha@@end@@").unwrap();
        assert_eq!(broken, Err("app x.y sha".to_string()));
        let unterminated = BuildStamp::find_in_binary(b"@@build-stamp@@app 0.1.0 unknown").unwrap();
        assert!(unterminated.is_err());
    }
}
