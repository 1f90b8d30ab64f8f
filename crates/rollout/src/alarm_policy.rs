//! The alarm source's verdict: a stage's CloudWatch alarm states, as read, judged purely.
//!
//! `promote`'s alarm source only reads the states; what they mean for the candidate is
//! decided here, the relative policy (`analysis.judge_relative`) included.
//!
//! **Throttle-rate alarms under the relative policy.** A `lambda_throttle_rate` alarm says
//! the stage is short of capacity, which Lambda shares between the versions: it throttles
//! whichever version a request was routed to. So judging relatively, such an alarm that
//! fires during the rollout is not a fail either. While both versions take traffic, the
//! metrics judge's per-version throttle comparison decides (`judge`: a candidate throttled
//! significantly more than its share fails, both alike pass), and the alarm's finding
//! passes with a note. With nothing to compare (the candidate alone on the alias: an
//! all-at-once bake, or after the 100% step), it holds the bake as not enough evidence,
//! so the bake extends and then `analysis.on_no_evidence` applies (hold by default): a
//! stage's capacity problem never rolls the candidate back on its own. Every other alarm,
//! and a throttle-rate alarm without the relative policy, fails as before.

use serde_json::json;

use crate::evidence::{Finding, Subject, Verdict};
use crate::plan::{AlarmReading, AlarmValue};

/// The stage's alarms and how to judge them, with what the first read saw.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmPolicy {
    names: Vec<String>,
    insufficient_data_is_failure: bool,
    /// Judging relatively: the alarms already firing at the first read describe the stable
    /// version, not the candidate, so they do not fail it (the metrics judge compares the
    /// two versions instead); an alarm that goes into ALARM later still does.
    relative: bool,
    /// The alarms not OK at the first read; `None` until then.
    firing_before: Option<Vec<String>>,
    /// Throttle-rate alarms, left to the per-version throttle comparison when relative.
    capacity: Vec<String>,
}

impl AlarmPolicy {
    pub fn new(names: Vec<String>, insufficient_data_is_failure: bool, relative: bool) -> Self {
        AlarmPolicy {
            names,
            insufficient_data_is_failure,
            relative,
            firing_before: None,
            capacity: Vec::new(),
        }
    }

    /// Names the stage's throttle-rate alarms (see the module doc); only the relative
    /// policy treats them apart.
    pub fn with_capacity_alarms(mut self, names: Vec<String>) -> Self {
        self.capacity = names;
        self
    }

    /// One read judged for `subject`: as [`AlarmPolicy::judge`], and under the relative
    /// policy a firing throttle-rate alarm is left to the per-version comparison when the
    /// subject has two versions taking traffic, or holds the bake when it has not.
    pub fn judge_for(&mut self, subject: &Subject, readings: Vec<AlarmReading>) -> Finding {
        let compared = subject
            .candidate
            .is_some_and(|c| c != subject.stable && !subject.weight.is_full());
        self.judge_split(readings, compared)
    }

    /// One read judged without knowing the subject: a firing throttle-rate alarm (relative
    /// policy) holds, as with nothing to compare.
    pub fn judge(&mut self, readings: Vec<AlarmReading>) -> Finding {
        self.judge_split(readings, false)
    }

    /// The alarms to read.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// One read judged: ALARM fails, as does an alarm that no longer exists;
    /// INSUFFICIENT_DATA fails only where the stage says so.
    fn judge_split(&mut self, mut readings: Vec<AlarmReading>, compared: bool) -> Finding {
        let mut summary = summary(&readings);
        if self.relative {
            let before = self.firing_before.get_or_insert_with(|| {
                readings
                    .iter()
                    .filter(|r| r.value != AlarmValue::Ok)
                    .map(|r| r.name.clone())
                    .collect()
            });
            if !before.is_empty() {
                summary.push_str(&format!(
                    " ({} already firing before the rollout: judged by the metrics, not failed)",
                    before.join(", ")
                ));
                readings.retain(|r| !before.contains(&r.name));
            }
        }
        let before = self.firing_before.as_deref().unwrap_or_default();
        // Throttle-rate alarms firing now (relative): the stage's capacity, not a verdict.
        let capacity: Vec<String> = if self.relative {
            readings
                .iter()
                .filter(|r| r.value == AlarmValue::Alarm && self.capacity.contains(&r.name))
                .map(|r| r.name.clone())
                .collect()
        } else {
            Vec::new()
        };
        if !capacity.is_empty() {
            summary.push_str(&format!(
                " ({} firing: the stage is short of capacity, {})",
                capacity.join(", "),
                if compared {
                    "judged by the per-version throttle comparison, not failed"
                } else {
                    "and no stable traffic to compare the candidate's throttles with: held, not failed"
                }
            ));
        }
        let judged: Vec<String> = self
            .names
            .iter()
            .filter(|n| !before.contains(n) && !capacity.contains(n))
            .cloned()
            .collect();
        let numbers = json!(
            readings
                .iter()
                .map(|r| json!({"name": r.name, "state": r.value.to_string()}))
                .collect::<Vec<_>>()
        );
        let mut verdict = verdict(&judged, &readings, self.insufficient_data_is_failure);
        if !compared && !capacity.is_empty() && verdict == Verdict::Pass {
            verdict = Verdict::Inconclusive(format!(
                "throttle alarm {} is ALARM and the candidate serves alone, so its throttles cannot be told from the stage's capacity; waiting",
                capacity.join(", ")
            ));
        }
        Finding::new("alarms", verdict, summary).with_numbers(numbers)
    }
}

/// "2 OK, 1 ALARM": the states as counted.
pub fn summary(readings: &[AlarmReading]) -> String {
    let count = |v: AlarmValue| readings.iter().filter(|r| r.value == v).count();
    let mut parts = vec![format!("{} OK", count(AlarmValue::Ok))];
    let (a, i) = (
        count(AlarmValue::Alarm),
        count(AlarmValue::InsufficientData),
    );
    if a > 0 {
        parts.push(format!("{a} ALARM"));
    }
    if i > 0 {
        parts.push(format!("{i} INSUFFICIENT_DATA"));
    }
    parts.join(", ")
}

/// Whether the configured alarms allow traffic on the candidate: the first failing alarm
/// in configuration order fails, then alarms CloudWatch does not have (they cannot protect
/// the rollout). Alarms of other stages in the answer do not count.
pub fn verdict(
    configured: &[String],
    readings: &[AlarmReading],
    insufficient_data_is_failure: bool,
) -> Verdict {
    for name in configured {
        if let Some(r) = readings.iter().find(|r| &r.name == name) {
            let failing = match r.value {
                AlarmValue::Alarm => true,
                AlarmValue::InsufficientData => insufficient_data_is_failure,
                AlarmValue::Ok => false,
            };
            if failing {
                return Verdict::Fail(format!(
                    "alarm {} is {} ({})",
                    r.name,
                    r.value,
                    if r.reason.is_empty() {
                        "no reason given"
                    } else {
                        &r.reason
                    }
                ));
            }
        }
    }
    let missing: Vec<String> = configured
        .iter()
        .filter(|n| !readings.iter().any(|r| &r.name == *n))
        .cloned()
        .collect();
    if missing.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(format!(
            "alarm(s) {} do not exist in CloudWatch, so they cannot protect the stage",
            missing.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(name: &str, value: AlarmValue) -> AlarmReading {
        AlarmReading {
            name: name.into(),
            value,
            reason: String::new(),
        }
    }

    fn names() -> Vec<String> {
        vec!["a".to_string(), "b".to_string()]
    }

    #[test]
    fn alarm_verdicts() {
        let names = names();
        let fail = |n: &str, s: &str| Verdict::Fail(format!("alarm {n} is {s} (no reason given)"));
        let ok = [reading("a", AlarmValue::Ok), reading("b", AlarmValue::Ok)];
        assert_eq!(verdict(&names, &ok, false), Verdict::Pass);
        let fired = [
            reading("a", AlarmValue::Ok),
            reading("b", AlarmValue::Alarm),
        ];
        assert_eq!(verdict(&names, &fired, false), fail("b", "ALARM"));
        let quiet = [
            reading("a", AlarmValue::InsufficientData),
            reading("b", AlarmValue::Ok),
        ];
        assert_eq!(verdict(&names, &quiet, false), Verdict::Pass);
        assert_eq!(
            verdict(&names, &quiet, true),
            fail("a", "INSUFFICIENT_DATA")
        );
        assert_eq!(
            verdict(&names, &ok[..1], false),
            Verdict::Fail(
                "alarm(s) b do not exist in CloudWatch, so they cannot protect the stage".into()
            )
        );
        // A firing alarm is reported even when another is missing.
        assert_eq!(
            verdict(&names, &[reading("a", AlarmValue::Alarm)], false),
            fail("a", "ALARM")
        );
        // Alarms of other stages in the answer do not count.
        assert_eq!(
            verdict(&[], &[reading("x", AlarmValue::Alarm)], false),
            Verdict::Pass
        );
    }

    #[test]
    fn relative_judging_forgives_what_fired_before_the_rollout_and_nothing_later() {
        let mut p = AlarmPolicy::new(names(), false, true);
        let first = p.judge(vec![
            reading("a", AlarmValue::Alarm),
            reading("b", AlarmValue::Ok),
        ]);
        assert_eq!(first.verdict, Verdict::Pass, "{first:?}");
        assert!(
            first
                .summary
                .contains("a already firing before the rollout"),
            "{}",
            first.summary
        );
        // Still firing: still forgiven. A new one fails.
        let later = p.judge(vec![
            reading("a", AlarmValue::Alarm),
            reading("b", AlarmValue::Alarm),
        ]);
        assert_eq!(
            later.verdict,
            Verdict::Fail("alarm b is ALARM (no reason given)".into())
        );
        assert_eq!(later.summary.split(" (").next(), Some("0 OK, 2 ALARM"));

        // Not relative: the same first read fails.
        let mut p = AlarmPolicy::new(names(), false, false);
        let first = p.judge(vec![
            reading("a", AlarmValue::Alarm),
            reading("b", AlarmValue::Ok),
        ]);
        assert!(first.verdict.is_fail(), "{first:?}");
        assert_eq!(first.numbers[0]["state"], "ALARM");
    }
    fn subject(candidate: Option<u64>, percent: f64) -> Subject {
        let v = |n| crate::version::Version::new(n).unwrap();
        Subject {
            function: "app".into(),
            stage: "live".into(),
            alias: "live".into(),
            stable: v(1),
            candidate: candidate.map(v),
            weight: crate::weight::Weight::from_percent_f64(percent).unwrap(),
        }
    }

    #[test]
    fn a_firing_throttle_rate_alarm_is_the_stage_s_capacity_not_the_candidate_s_fault() {
        let names = vec!["errors".to_string(), "throttle-rate".to_string()];
        let policy = |relative| {
            AlarmPolicy::new(names.clone(), false, relative)
                .with_capacity_alarms(vec!["throttle-rate".into()])
        };
        let quiet = || {
            vec![
                reading("errors", AlarmValue::Ok),
                reading("throttle-rate", AlarmValue::Ok),
            ]
        };
        let throttled = || {
            vec![
                reading("errors", AlarmValue::Ok),
                reading("throttle-rate", AlarmValue::Alarm),
            ]
        };
        let canary = subject(Some(2), 10.0);

        // Relative, both versions taking traffic: the metrics' throttle comparison decides.
        let mut p = policy(true);
        assert_eq!(p.judge_for(&canary, quiet()).verdict, Verdict::Pass);
        let f = p.judge_for(&canary, throttled());
        assert_eq!(f.verdict, Verdict::Pass, "{f:?}");
        assert!(
            f.summary
                .contains("throttle-rate firing: the stage is short of capacity, judged by the per-version throttle comparison"),
            "{}",
            f.summary
        );
        assert_eq!(f.numbers[1]["state"], "ALARM");
        // Any other alarm still fails beside it.
        let f = p.judge_for(
            &canary,
            vec![
                reading("errors", AlarmValue::Alarm),
                reading("throttle-rate", AlarmValue::Alarm),
            ],
        );
        assert_eq!(
            f.verdict,
            Verdict::Fail("alarm errors is ALARM (no reason given)".into())
        );

        // The candidate alone on the alias (after 100%, all at once): nothing to compare
        // with, so the bake waits rather than roll back for the stage's capacity.
        let mut p = policy(true);
        p.judge_for(&canary, quiet());
        for alone in [subject(Some(2), 100.0), subject(None, 100.0)] {
            let f = p.judge_for(&alone, throttled());
            assert!(
                matches!(&f.verdict, Verdict::Inconclusive(why) if why.contains("throttle alarm throttle-rate is ALARM and the candidate serves alone")),
                "{f:?}"
            );
        }

        // Not relative: a firing throttle-rate alarm fails like any alarm.
        let mut p = policy(false);
        p.judge_for(&canary, quiet());
        assert!(p.judge_for(&canary, throttled()).verdict.is_fail());
        // Relative, but an alarm of another kind: still a fail.
        let mut p = AlarmPolicy::new(names.clone(), false, true);
        p.judge_for(&canary, quiet());
        assert!(p.judge_for(&canary, throttled()).verdict.is_fail());
    }
}
