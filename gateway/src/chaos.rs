//! `--fault VERSION:RATE`, `--throttle VERSION:RATE` and `--latency VERSION:MS`: failures,
//! throttles and delays the gateway adds to a version's invocations, so tests and demos can
//! release a bad build, or run a stage short of capacity, without writing one. `VERSION` is
//! that version of every function, or `FUNCTION/VERSION` that of one (`birthday/3`): version
//! numbers are per function, so `3` of `app` and `3` of `birthday` are different code.

use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chaos {
    faults: BTreeMap<String, f64>,
    throttles: BTreeMap<String, f64>,
    latency: BTreeMap<String, Duration>,
}

/// `[FUNCTION/]VERSION:VALUE` -> (the key, `VERSION` or `FUNCTION/VERSION`; VALUE).
fn split<'a>(flag: &str, text: &'a str, what: &str) -> Result<(&'a str, &'a str), String> {
    let (key, value) = text.split_once(':').ok_or_else(|| {
        format!(
            "{flag} {text:?}: expected [FUNCTION/]VERSION:{what}, e.g. {flag} 3:{}",
            if what == "RATE" { "0.5" } else { "200" }
        )
    })?;
    let (function, version) = match key.split_once('/') {
        Some((f, v)) => (Some(f), v),
        None => (None, key),
    };
    if function.is_some_and(str::is_empty) {
        return Err(format!(
            "{flag} {text:?}: the function name before / is empty"
        ));
    }
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{flag} {text:?}: {version:?} is not a published version number"
        ));
    }
    Ok((key, value))
}

/// The setting for `version` of `function`: its own (`FUNCTION/VERSION`), else the one for
/// that version of every function.
fn lookup<'m, T>(map: &'m BTreeMap<String, T>, function: &str, version: &str) -> Option<&'m T> {
    if map.is_empty() {
        return None;
    }
    map.get(&format!("{function}/{version}"))
        .or_else(|| map.get(version))
}

impl Chaos {
    pub fn parse(
        faults: &[String],
        throttles: &[String],
        latencies: &[String],
    ) -> Result<Chaos, String> {
        let mut c = Chaos::default();
        for (flag, texts, what, into) in [
            ("--fault", faults, "fail", &mut c.faults),
            ("--throttle", throttles, "are throttled", &mut c.throttles),
        ] {
            for f in texts {
                let (v, rate) = split(flag, f, "RATE")?;
                let rate: f64 = rate
                    .parse()
                    .ok()
                    .filter(|r: &f64| (0.0..=1.0).contains(r))
                    .ok_or_else(|| format!("{flag} {f:?}: the rate must be a number from 0 to 1 (the share of invocations that {what})"))?;
                into.insert(v.to_string(), rate);
            }
        }
        for l in latencies {
            let (v, ms) = split("--latency", l, "MS")?;
            let ms: u64 = ms.parse().map_err(|_| {
                format!("--latency {l:?}: the delay must be a whole number of milliseconds")
            })?;
            c.latency.insert(v.to_string(), Duration::from_millis(ms));
        }
        Ok(c)
    }

    pub fn latency(&self, function: &str, version: &str) -> Option<Duration> {
        lookup(&self.latency, function, version).copied()
    }

    /// Draws whether this invocation of `version` of `function` is throttled.
    pub fn throttled(&self, function: &str, version: &str) -> bool {
        lookup(&self.throttles, function, version).is_some_and(|rate| fastrand::f64() < *rate)
    }

    /// Draws whether this invocation of `version` of `function` fails.
    pub fn fails(&self, function: &str, version: &str) -> bool {
        lookup(&self.faults, function, version).is_some_and(|rate| fastrand::f64() < *rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_bad_ones_say_what_to_write() {
        let c = Chaos::parse(
            &["3:1".into(), "4:0".into()],
            &["4:1".into()],
            &["3:250".into()],
        )
        .unwrap();
        assert!((0..100).all(|_| c.throttled("app", "4") && !c.throttled("app", "3")));
        assert!((0..100).all(|_| c.fails("app", "3")));
        assert!((0..100).all(|_| !c.fails("app", "4")));
        assert!(!c.fails("app", "5"));
        assert_eq!(c.latency("app", "3"), Some(Duration::from_millis(250)));
        assert_eq!(c.latency("app", "4"), None);
        let err = Chaos::parse(&[], &["3:2".into()], &[]).unwrap_err();
        assert!(
            err.contains("--throttle") && err.contains("are throttled"),
            "{err}"
        );
        let err = Chaos::parse(&["3".into()], &[], &[]).unwrap_err();
        assert!(err.contains("expected [FUNCTION/]VERSION:RATE"), "{err}");
        let err = Chaos::parse(&["/3:1".into()], &[], &[]).unwrap_err();
        assert!(err.contains("function name before / is empty"), "{err}");
        let err = Chaos::parse(&["3:1.5".into()], &[], &[]).unwrap_err();
        assert!(err.contains("from 0 to 1"), "{err}");
        let err = Chaos::parse(&["live:0.5".into()], &[], &[]).unwrap_err();
        assert!(err.contains("not a published version number"), "{err}");
        let err = Chaos::parse(&[], &[], &["3:fast".into()]).unwrap_err();
        assert!(err.contains("whole number of milliseconds"), "{err}");
    }

    #[test]
    fn a_version_of_one_function_is_named_with_its_function() {
        let c = Chaos::parse(
            &["birthday/3:1".into(), "4:1".into()],
            &[],
            &["birthday/4:9".into()],
        )
        .unwrap();
        assert!((0..100).all(|_| c.fails("birthday", "3") && !c.fails("app", "3")));
        // A bare version is that version of every function.
        assert!((0..100).all(|_| c.fails("birthday", "4") && c.fails("app", "4")));
        assert_eq!(c.latency("birthday", "4"), Some(Duration::from_millis(9)));
        assert_eq!(c.latency("app", "4"), None);
    }

    #[test]
    fn a_half_rate_fails_about_half() {
        let c = Chaos::parse(&["7:0.5".into()], &[], &[]).unwrap();
        let failed = (0..10_000).filter(|_| c.fails("app", "7")).count();
        // 10 sigma around 5000 (sigma = 50): a wrong rate cannot pass, a right one cannot fail.
        assert!((4500..=5500).contains(&failed), "{failed}");
    }
}
