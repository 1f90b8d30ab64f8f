//! The alarm source's verdict: a stage's CloudWatch alarm states, as read, judged purely.
//!
//! `promote`'s alarm source only reads the states; what they mean for the candidate is
//! decided here, the relative policy (`analysis.judge_relative`) included.

use serde_json::json;

use crate::evidence::{Finding, Verdict};
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
}

impl AlarmPolicy {
    pub fn new(names: Vec<String>, insufficient_data_is_failure: bool, relative: bool) -> Self {
        AlarmPolicy {
            names,
            insufficient_data_is_failure,
            relative,
            firing_before: None,
        }
    }

    /// The alarms to read.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// One read judged: ALARM fails, as does an alarm that no longer exists;
    /// INSUFFICIENT_DATA fails only where the stage says so.
    pub fn judge(&mut self, mut readings: Vec<AlarmReading>) -> Finding {
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
        let judged: Vec<String> = self
            .names
            .iter()
            .filter(|n| !before.contains(n))
            .cloned()
            .collect();
        let numbers = json!(
            readings
                .iter()
                .map(|r| json!({"name": r.name, "state": r.value.to_string()}))
                .collect::<Vec<_>>()
        );
        let verdict = verdict(&judged, &readings, self.insufficient_data_is_failure);
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
}
