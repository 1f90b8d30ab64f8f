//! Published Lambda version numbers.
//!
//! Aliases may only point at published versions: `$LATEST` is mutable (the next
//! `update-function-code` changes what it runs), so a rollout that routed to it would not
//! be a rollout of anything in particular.

use std::fmt;

use thiserror::Error;

/// A published, immutable Lambda version (`1`, `2`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(u64);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VersionError {
    #[error(
        "`$LATEST` is not a published version and cannot take alias traffic; publish it first with `promote publish --zip PATH` and use the number it prints"
    )]
    Latest,
    #[error("version `{0}` is not a published version number; give a positive integer such as 3")]
    NotANumber(String),
}

impl Version {
    pub fn new(n: u64) -> Option<Version> {
        (n > 0).then_some(Version(n))
    }

    pub fn get(self) -> u64 {
        self.0
    }

    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("$LATEST") {
            return Err(VersionError::Latest);
        }
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VersionError::NotANumber(t.to_string()));
        }
        t.parse::<u64>()
            .ok()
            .and_then(Version::new)
            .ok_or_else(|| VersionError::NotANumber(t.to_string()))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_published_numbers() {
        assert_eq!(Version::parse("3").unwrap().get(), 3);
        assert_eq!(Version::parse(" 12 ").unwrap().get(), 12);
        assert_eq!(Version::parse("3").unwrap().to_string(), "3");
    }

    #[test]
    fn rejects_latest_and_non_numbers() {
        assert_eq!(Version::parse("$LATEST"), Err(VersionError::Latest));
        assert_eq!(Version::parse("$latest"), Err(VersionError::Latest));
        for bad in ["", "abc", "-1", "1.5", "0", "v3", "99999999999999999999999"] {
            assert!(
                matches!(Version::parse(bad), Err(VersionError::NotANumber(_))),
                "{bad}"
            );
        }
        assert!(
            Version::parse("$LATEST")
                .unwrap_err()
                .to_string()
                .contains("promote publish")
        );
    }

    #[test]
    fn orders_numerically() {
        assert!(Version::parse("10").unwrap() > Version::parse("9").unwrap());
    }
}
