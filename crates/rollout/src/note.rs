//! The alias note: what `promote` records in the alias description, so that any run on any
//! machine can resume, roll back to the version before, and refuse to re-canary a version
//! that was rolled back, with no local state.
//!
//! Format (version 1), at most 256 characters as Lambda allows:
//!
//! ```text
//! promote/v1 previous=3 step=4@100 baked=no rolled_back=5 why=alarm app-live-errors is ALARM
//! ```
//!
//! - `previous`: the version served before the current version took all traffic
//!   (`rollback --to-previous` returns there);
//! - `step=V@W` and `baked`: the last step this tool moved the alias to (candidate V at
//!   weight W) and whether that step's bake passed, so a run killed during the bake after
//!   the last step finishes that bake when rerun instead of treating the stage as done;
//! - `served=A,B,C`: the last versions (at most [`MAX_SERVED`], oldest first) that completed
//!   here (100%, bake passed), so that the next stage's path-to-live guard knows what this
//!   stage has served even after it moved on;
//! - `skip_upstream=V` and `skip_reason`: version V was let onto this stage although its
//!   upstream stage had not served it (`--skip-upstream --reason`), and the operator's
//!   reason, percent-encoded so that it stays one field;
//! - `release=F:V,G:W`: on a release of several functions, the release this alias's last
//!   write belonged to (each function's candidate version), so a run resumed after a crash
//!   finds the sibling functions' candidates, and a rollback half-written across them;
//! - `rolled_back`, `by` and `why`: the last version rolled back on this alias, who took it
//!   back when it was not `promote` (`by=guardian`: the guardian function, with no `promote`
//!   running) and the reason; `why` runs to the end of the text.
//!
//! The format before versioning (`promote: previous=N`) is still read.

use std::fmt;

use crate::version::Version;
use crate::weight::Weight;

const PREFIX_V1: &str = "promote/v1";
const PREFIX_V0: &str = "promote:";
/// Lambda's limit on an alias description.
pub const MAX_LEN: usize = 256;

/// Where the last step left the candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepMark {
    pub candidate: Version,
    pub weight: Weight,
    pub baked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    pub version: Version,
    pub why: String,
    pub by: Actor,
}

/// Who wrote a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Actor {
    /// `promote` (a run's bake, or the operator's `promote rollback`).
    #[default]
    Promote,
    /// The guardian function, which AWS runs on an alarm or a schedule with no `promote`
    /// running.
    Guardian,
}

impl RolledBack {
    /// The reason as a person reads it: who took the version back when it was not
    /// `promote`, then why.
    pub fn reason(&self) -> String {
        match self.by {
            Actor::Promote => self.why.clone(),
            Actor::Guardian => format!("by the guardian: {}", self.why),
        }
    }
}

/// A candidate let onto the stage without its upstream stage having served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSkip {
    pub version: Version,
    pub reason: String,
}

/// How many completed versions `served` keeps.
pub const MAX_SERVED: usize = 5;

const BY_GUARDIAN: &str = " by=guardian";

/// The longest encoded `skip_reason` kept, so that the rest of the note still fits.
const MAX_SKIP_REASON: usize = 96;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Note {
    pub previous: Option<Version>,
    pub step: Option<StepMark>,
    /// Versions that completed here, oldest first, at most [`MAX_SERVED`].
    pub served: Vec<Version>,
    pub upstream_skip: Option<UpstreamSkip>,
    /// The release (function, candidate version) the last write belonged to, when it moved
    /// several functions in lockstep; empty otherwise.
    pub release: Vec<(String, Version)>,
    pub rolled_back: Option<RolledBack>,
}

impl Note {
    /// Reads a description; anything this tool did not write is an empty note.
    pub fn parse(description: &str) -> Note {
        let text = description.trim();
        if let Some(rest) = text.strip_prefix(PREFIX_V1) {
            return Self::parse_v1(rest);
        }
        if let Some(rest) = text.strip_prefix(PREFIX_V0) {
            return Note {
                previous: rest
                    .split_whitespace()
                    .find_map(|kv| kv.strip_prefix("previous="))
                    .and_then(|v| Version::parse(v).ok()),
                ..Note::default()
            };
        }
        Note::default()
    }

    fn parse_v1(rest: &str) -> Note {
        let (fields, why) = match rest.find(" why=") {
            Some(i) => (&rest[..i], Some(rest[i + 5..].trim().to_string())),
            None => (rest, None),
        };
        let mut note = Note::default();
        let mut baked = false;
        let mut step: Option<(Version, Weight)> = None;
        let mut rolled_back = None;
        let mut by = Actor::Promote;
        let (mut skip, mut skip_reason) = (None, String::new());
        for kv in fields.split_whitespace() {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            match k {
                "previous" => note.previous = Version::parse(v).ok(),
                "step" => {
                    step = v.split_once('@').and_then(|(ver, w)| {
                        Some((Version::parse(ver).ok()?, Weight::parse_percent(w).ok()?))
                    })
                }
                "baked" => baked = v == "yes",
                "rolled_back" => rolled_back = Version::parse(v).ok(),
                "by" if v == "guardian" => by = Actor::Guardian,
                "served" => {
                    note.served = v
                        .split(',')
                        .filter_map(|x| Version::parse(x).ok())
                        .collect()
                }
                "skip_upstream" => skip = Version::parse(v).ok(),
                "skip_reason" => skip_reason = decode(v),
                "release" => {
                    note.release = v
                        .split(',')
                        .filter_map(|x| {
                            let (f, ver) = x.split_once(':')?;
                            Some((f.to_string(), Version::parse(ver).ok()?))
                        })
                        .collect()
                }
                _ => {}
            }
        }
        note.step = step.map(|(candidate, weight)| StepMark {
            candidate,
            weight,
            baked,
        });
        note.upstream_skip = skip.map(|version| UpstreamSkip {
            version,
            reason: skip_reason,
        });
        note.rolled_back = rolled_back.map(|version| RolledBack {
            version,
            why: why.unwrap_or_default(),
            by,
        });
        note
    }

    /// The description text, cut to Lambda's limit (only `why` is ever shortened).
    pub fn format(&self) -> String {
        let mut s = String::from(PREFIX_V1);
        if let Some(p) = self.previous {
            s += &format!(" previous={p}");
        }
        if let Some(m) = self.step {
            s += &format!(
                " step={}@{} baked={}",
                m.candidate,
                m.weight.percent(),
                if m.baked { "yes" } else { "no" }
            );
        }
        if !self.served.is_empty() {
            let list: Vec<String> = self.served.iter().map(Version::to_string).collect();
            s += &format!(" served={}", list.join(","));
        }
        if let Some(k) = &self.upstream_skip {
            s += &format!(" skip_upstream={}", k.version);
            let reason = encode(&k.reason);
            if !reason.is_empty() {
                s += " skip_reason=";
                // A guardian's mark takes its room from the reason, so the rest still fits.
                let by = self
                    .rolled_back
                    .as_ref()
                    .filter(|r| r.by == Actor::Guardian)
                    .map_or(0, |_| BY_GUARDIAN.len());
                s += cut_encoded(&reason, MAX_SKIP_REASON - by);
            }
        }
        if !self.release.is_empty() {
            let list: Vec<String> = self
                .release
                .iter()
                .map(|(f, v)| format!("{f}:{v}"))
                .collect();
            s += &format!(" release={}", list.join(","));
        }
        if let Some(r) = &self.rolled_back {
            s += &format!(" rolled_back={}", r.version);
            if r.by == Actor::Guardian {
                s += BY_GUARDIAN;
            }
            let why = r.why.split_whitespace().collect::<Vec<_>>().join(" ");
            if !why.is_empty() {
                s += " why=";
                for c in why.chars() {
                    if s.len() + c.len_utf8() > MAX_LEN {
                        break;
                    }
                    s.push(c);
                }
            }
        }
        s
    }

    /// A step mark for the candidate, with the rest of the note kept; a step at 100% whose
    /// bake passed also adds the candidate to `served`.
    pub fn at_step(&self, candidate: Version, weight: Weight, baked: bool) -> Note {
        let note = Note {
            step: Some(StepMark {
                candidate,
                weight,
                baked,
            }),
            ..self.clone()
        };
        if weight.is_full() && baked {
            note.with_served(candidate)
        } else {
            note
        }
    }

    /// The candidate serves all traffic, `stable` before it (where `--to-previous`
    /// returns); `baked` once its last bake passed. Both engines write this.
    pub fn completed(&self, candidate: Version, stable: Version, baked: bool) -> Note {
        Note {
            previous: Some(stable),
            ..self.at_step(candidate, Weight::FULL, baked)
        }
    }

    /// `candidate` was taken back, `why` (a later rollout of it then needs `--retry`).
    /// The version before is kept only while it is still known: not once the candidate
    /// has served all traffic, when the version it replaced is the one restored.
    pub fn rolled_back(&self, candidate: Version, why: &str, keep_previous: bool) -> Note {
        Note {
            previous: self.previous.filter(|_| keep_previous),
            step: None,
            served: self.served_without(candidate),
            upstream_skip: None,
            release: self.release.clone(),
            rolled_back: Some(RolledBack {
                version: candidate,
                why: why.to_string(),
                by: Actor::Promote,
            }),
        }
    }

    /// [`Note::rolled_back`] written by the guardian: a split taken back with no `promote`
    /// running, the version before kept (a split's stable version is the one restored).
    pub fn rolled_back_by_guardian(&self, candidate: Version, why: &str) -> Note {
        let mut note = self.rolled_back(candidate, why, true);
        if let Some(r) = &mut note.rolled_back {
            r.by = Actor::Guardian;
        }
        note
    }

    /// `--retry` of `candidate`: its record of a rollback is cleared.
    pub fn retried(&self, candidate: Version) -> Note {
        Note {
            rolled_back: self.rolled_back.clone().filter(|r| r.version != candidate),
            ..self.clone()
        }
    }

    /// The note with `version` recorded as completed here (most recent last, the oldest
    /// dropped beyond [`MAX_SERVED`]).
    pub fn with_served(mut self, version: Version) -> Note {
        self.served.retain(|v| *v != version);
        self.served.push(version);
        let extra = self.served.len().saturating_sub(MAX_SERVED);
        self.served.drain(..extra);
        self
    }

    /// The candidate's last step is at 100% and its bake has not passed yet.
    pub fn pending_final_bake(&self, serving: Version) -> bool {
        matches!(self.step, Some(m) if m.candidate == serving && m.weight.is_full() && !m.baked)
    }

    /// `served` without a version being rolled back: a version taken back is no longer one
    /// this stage vouches for.
    pub fn served_without(&self, version: Version) -> Vec<Version> {
        self.served
            .iter()
            .copied()
            .filter(|v| *v != version)
            .collect()
    }

    /// Whether `version` was the last one rolled back here.
    pub fn was_rolled_back(&self, version: Version) -> Option<&RolledBack> {
        self.rolled_back.as_ref().filter(|r| r.version == version)
    }
}

/// A free text as one whitespace-free field: whitespace runs become `+`, and `%`, `+` and
/// `=` are percent-encoded, so the field never contains ` why=` and reads back as written.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            out.push('+');
        }
        for c in word.chars() {
            match c {
                '%' => out.push_str("%25"),
                '+' => out.push_str("%2B"),
                '=' => out.push_str("%3D"),
                c => out.push(c),
            }
        }
    }
    out
}

fn decode(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(c) = rest.chars().next() {
        let escaped = match rest.get(..3) {
            Some("%25") => Some('%'),
            Some("%2B") => Some('+'),
            Some("%3D") => Some('='),
            _ => None,
        };
        match (c, escaped) {
            (_, Some(e)) => {
                out.push(e);
                rest = &rest[3..];
            }
            ('+', None) => {
                out.push(' ');
                rest = &rest[1..];
            }
            (c, None) => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// At most `max` bytes of an encoded field, never splitting a character or an escape.
fn cut_encoded(field: &str, max: usize) -> &str {
    if field.len() <= max {
        return field;
    }
    let mut end = 0;
    let mut it = field.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let len = if c == '%' { 3 } else { c.len_utf8() };
        if i + len > max {
            break;
        }
        end = i + len;
        if c == '%' {
            it.next();
            it.next();
        }
    }
    &field[..end]
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(p) = self.previous {
            parts.push(format!("previous version {p}"));
        }
        if let Some(m) = self.step {
            parts.push(format!(
                "last step: version {} at {}{}",
                m.candidate,
                m.weight,
                if m.baked {
                    ", baked"
                } else {
                    ", bake not finished"
                }
            ));
        }
        if !self.served.is_empty() {
            let list: Vec<String> = self.served.iter().map(Version::to_string).collect();
            parts.push(format!("completed here: {}", list.join(", ")));
        }
        if !self.release.is_empty() {
            let list: Vec<String> = self
                .release
                .iter()
                .map(|(f, v)| format!("{f} {v}"))
                .collect();
            parts.push(format!("release: {}", list.join(", ")));
        }
        if let Some(k) = &self.upstream_skip {
            parts.push(format!(
                "version {} let in without its upstream stage serving it: {}",
                k.version, k.reason
            ));
        }
        if let Some(r) = &self.rolled_back {
            parts.push(format!("rolled back version {}: {}", r.version, r.reason()));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u64) -> Version {
        Version::new(n).unwrap()
    }

    #[test]
    fn records_and_reads_back_the_release() {
        let v = |n| Version::new(n).unwrap();
        let note = Note {
            release: vec![("app".into(), v(4)), ("birthday".into(), v(7))],
            ..Note::default()
        }
        .rolled_back(v(4), "function birthday: errors", true);
        let text = note.format();
        assert!(
            text.contains(" release=app:4,birthday:7 rolled_back=4"),
            "{text}"
        );
        assert_eq!(Note::parse(&text), note);
        assert!(
            note.to_string().contains("release: app 4, birthday 7"),
            "{note}"
        );
    }

    #[test]
    fn round_trips_every_field() {
        let note = Note {
            previous: Some(v(3)),
            step: Some(StepMark {
                candidate: v(4),
                weight: Weight::FULL,
                baked: false,
            }),
            release: Vec::new(),
            rolled_back: Some(RolledBack {
                version: v(5),
                why: "alarm app-live-errors is ALARM (Threshold Crossed: 1 datapoint [3.0])".into(),
                by: Actor::Promote,
            }),
            upstream_skip: None,
            served: vec![v(2), v(3)],
        };
        let text = note.format();
        assert_eq!(
            text,
            "promote/v1 previous=3 step=4@100 baked=no served=2,3 rolled_back=5 why=alarm app-live-errors is ALARM (Threshold Crossed: 1 datapoint [3.0])"
        );
        assert_eq!(Note::parse(&text), note);
        let split = Note::default().at_step(v(7), Weight::parse_percent("12.5").unwrap(), true);
        assert_eq!(split.format(), "promote/v1 step=7@12.5 baked=yes");
        assert_eq!(Note::parse(&split.format()), split);
    }

    #[test]
    fn reads_the_old_format_and_ignores_foreign_text() {
        assert_eq!(Note::parse("promote: previous=9").previous, Some(v(9)));
        assert_eq!(Note::parse("deployed by terraform"), Note::default());
        assert_eq!(Note::parse(""), Note::default());
        // A mangled field is dropped, the others kept.
        let n = Note::parse("promote/v1 previous=x step=4@abc rolled_back=2");
        assert_eq!(n.previous, None);
        assert_eq!(n.step, None);
        assert_eq!(n.rolled_back.map(|r| r.version), Some(v(2)));
    }

    #[test]
    fn a_long_reason_is_cut_to_lambdas_limit_on_a_char_boundary() {
        let note = Note {
            previous: Some(v(123_456)),
            step: None,
            served: Vec::new(),
            upstream_skip: None,
            release: Vec::new(),
            rolled_back: Some(RolledBack {
                version: v(123_457),
                why: "é".repeat(400),
                by: Actor::Promote,
            }),
        };
        let text = note.format();
        assert!(text.len() <= MAX_LEN, "{}", text.len());
        assert!(text.len() > MAX_LEN - 2);
        let back = Note::parse(&text);
        assert_eq!(back.previous, Some(v(123_456)));
        assert!(back.rolled_back.unwrap().why.starts_with("éé"));
    }

    #[test]
    fn pending_final_bake_only_for_the_served_candidate_at_full() {
        let pending = Note::default().at_step(v(4), Weight::FULL, false);
        assert!(pending.pending_final_bake(v(4)));
        assert!(!pending.pending_final_bake(v(3)));
        assert!(
            !Note::default()
                .at_step(v(4), Weight::FULL, true)
                .pending_final_bake(v(4))
        );
        assert!(
            !Note::default()
                .at_step(v(4), Weight::parse_percent("50").unwrap(), false)
                .pending_final_bake(v(4))
        );
    }

    /// The notes both engines write (the alias engine through `machine::decide`, the
    /// CodeDeploy engine when a deployment ends) come from these three.
    #[test]
    fn completed_rolled_back_and_retried_notes() {
        let before = Note::default()
            .at_step(v(5), Weight::parse_percent("10").unwrap(), true)
            .rolled_back(v(5), "alarm x", true);
        assert_eq!(before.previous, None);
        let before = Note {
            previous: Some(v(2)),
            ..before
        };

        let done = before.retried(v(5)).completed(v(5), v(4), true);
        assert_eq!(done.previous, Some(v(4)));
        assert_eq!(
            done.rolled_back, None,
            "a retry clears the candidate's record"
        );
        assert!(!done.pending_final_bake(v(5)));
        assert!(before.completed(v(5), v(4), false).pending_final_bake(v(5)));
        assert!(
            before.retried(v(6)).was_rolled_back(v(5)).is_some(),
            "another version's retry keeps it"
        );

        let back = before.rolled_back(v(5), "judge", true);
        assert_eq!(
            (
                back.previous,
                back.step,
                back.was_rolled_back(v(5)).map(|r| r.why.as_str())
            ),
            (Some(v(2)), None, Some("judge"))
        );
        assert_eq!(before.rolled_back(v(5), "judge", false).previous, None);
        assert_eq!(Note::parse(&back.format()), back);
    }

    #[test]
    fn a_guardian_rollback_says_who_and_round_trips() {
        let before = Note {
            previous: Some(v(2)),
            served: vec![v(2)],
            ..Note::default()
        }
        .at_step(v(5), Weight::parse_percent("10").unwrap(), false);
        let back = before.rolled_back_by_guardian(v(5), "alarm app-live-lambda-errors is ALARM");
        let text = back.format();
        assert_eq!(
            text,
            "promote/v1 previous=2 served=2 rolled_back=5 by=guardian why=alarm app-live-lambda-errors is ALARM"
        );
        assert_eq!(Note::parse(&text), back);
        let r = back.was_rolled_back(v(5)).unwrap();
        assert_eq!(r.by, Actor::Guardian);
        assert_eq!(
            r.reason(),
            "by the guardian: alarm app-live-lambda-errors is ALARM"
        );
        assert!(
            back.to_string()
                .contains("rolled back version 5: by the guardian: alarm")
        );
        // promote's own rollback says nothing of an actor, as before.
        let own = before.rolled_back(v(5), "judge", true);
        assert!(!own.format().contains("by="));
        assert_eq!(own.was_rolled_back(v(5)).unwrap().reason(), "judge");
        // A retry clears it like any other.
        assert_eq!(back.retried(v(5)).rolled_back, None);
    }

    #[test]
    fn an_upstream_skip_and_its_reason_round_trip_as_one_field() {
        let reason = "CVE-2026-1 hotfix: test is down, 50% = ok+go why=not";
        let note = Note {
            previous: Some(v(3)),
            upstream_skip: Some(UpstreamSkip {
                version: v(9),
                reason: reason.into(),
            }),
            rolled_back: Some(RolledBack {
                version: v(8),
                why: "alarm x".into(),
                by: Actor::Promote,
            }),
            ..Note::default()
        };
        let text = note.format();
        assert_eq!(
            text,
            "promote/v1 previous=3 skip_upstream=9 skip_reason=CVE-2026-1+hotfix:+test+is+down,+50%25+%3D+ok%2Bgo+why%3Dnot rolled_back=8 why=alarm x"
        );
        assert_eq!(Note::parse(&text), note);
        assert!(
            note.to_string()
                .contains("version 9 let in without its upstream")
        );
    }

    #[test]
    fn a_long_skip_reason_is_cut_on_an_escape_boundary_and_the_note_fits() {
        let note = Note {
            previous: Some(v(123_456)),
            step: Some(StepMark {
                candidate: v(123_457),
                weight: Weight::parse_percent("12.5").unwrap(),
                baked: false,
            }),
            upstream_skip: Some(UpstreamSkip {
                version: v(123_457),
                reason: "=".repeat(200),
            }),
            release: Vec::new(),
            rolled_back: Some(RolledBack {
                version: v(123_455),
                why: "x".repeat(300),
                by: Actor::Promote,
            }),
            served: (123_450..123_455).map(v).collect(),
        };
        let text = note.format();
        assert!(text.len() <= MAX_LEN, "{}", text.len());
        let back = Note::parse(&text);
        let reason = back.upstream_skip.unwrap().reason;
        assert_eq!(reason, "=".repeat(MAX_SKIP_REASON / 3));
        assert_eq!(back.rolled_back.unwrap().version, v(123_455));
        // The guardian's mark fits too, and is kept.
        let mut by_guardian = note.clone();
        by_guardian.rolled_back.as_mut().unwrap().by = Actor::Guardian;
        let text = by_guardian.format();
        assert!(text.len() <= MAX_LEN, "{}", text.len());
        assert_eq!(Note::parse(&text).rolled_back.unwrap().by, Actor::Guardian);
    }

    #[test]
    fn served_keeps_the_last_completed_versions_oldest_first() {
        let mut note = Note::default();
        for n in 1..=7 {
            // Steps below 100%, or at 100% before the bake passed, complete nothing.
            note = note.at_step(v(n), Weight::parse_percent("50").unwrap(), true);
            note = note.at_step(v(n), Weight::FULL, false);
            note = note.at_step(v(n), Weight::FULL, true);
        }
        assert_eq!(note.served, [v(3), v(4), v(5), v(6), v(7)]);
        // A version completed again moves to the end rather than appearing twice.
        let again = note.with_served(v(4));
        assert_eq!(again.served, [v(3), v(5), v(6), v(7), v(4)]);
        assert_eq!(Note::parse(&again.format()), again);
        assert_eq!(Note::parse("promote/v1 served=2,x,9").served, [v(2), v(9)]);
    }
}
