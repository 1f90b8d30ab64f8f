//! What woke the guardian, from the event Lambda hands it: an EventBridge "CloudWatch
//! Alarm State Change" (the rule on the stages' alarms), or a "Scheduled Event" (the
//! schedule; its input in terraform/guardian.tf has the same envelope).

use aws_lambda_events::event::cloudwatch_alarms::{CloudWatchAlarmData, CloudWatchAlarmStateValue};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use rollout::guardian::Trigger;
use rollout::plan::{AlarmReading, AlarmValue};
use serde_json::Value;

pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";
pub const SCHEDULED_EVENT: &str = "Scheduled Event";

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(
        "not an EventBridge event ({0}); the guardian is invoked by its EventBridge rule and schedule only"
    )]
    NotEventBridge(serde_json::Error),
    #[error("a \"{ALARM_STATE_CHANGE}\" event whose detail does not read as CloudWatch's ({0})")]
    BadAlarmDetail(serde_json::Error),
    #[error(
        "an event of type \"{detail_type}\" from {source_name}: the guardian handles \"{ALARM_STATE_CHANGE}\" and \"{SCHEDULED_EVENT}\" only"
    )]
    Unhandled {
        detail_type: String,
        source_name: String,
    },
}

/// The trigger an event stands for.
pub fn trigger(event: Value) -> Result<Trigger, EventError> {
    let envelope: EventBridgeEvent<Value> =
        serde_json::from_value(event).map_err(EventError::NotEventBridge)?;
    match envelope.detail_type.as_str() {
        ALARM_STATE_CHANGE => {
            let detail: CloudWatchAlarmData<Value, Value> =
                serde_json::from_value(envelope.detail).map_err(EventError::BadAlarmDetail)?;
            let state = detail.state.unwrap_or_default();
            Ok(Trigger::Alarm(AlarmReading {
                name: detail.alarm_name,
                value: match state.value {
                    CloudWatchAlarmStateValue::Alarm => AlarmValue::Alarm,
                    CloudWatchAlarmStateValue::InsufficientData => AlarmValue::InsufficientData,
                    _ => AlarmValue::Ok,
                },
                reason: state.reason,
            }))
        }
        SCHEDULED_EVENT => Ok(Trigger::Tick),
        _ => Err(EventError::Unhandled {
            detail_type: envelope.detail_type,
            source_name: envelope.source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    /// AWS's documented samples (CloudWatch User Guide, "Alarm events and EventBridge";
    /// EventBridge User Guide, scheduled rule events).
    #[test]
    fn the_documented_samples() {
        let Trigger::Alarm(r) =
            trigger(sample(include_str!("fixtures/alarm-state-change.json"))).unwrap()
        else {
            panic!("an alarm")
        };
        assert_eq!(
            (r.name.as_str(), r.value),
            ("ServerCpuTooHigh", AlarmValue::Alarm)
        );
        assert!(
            r.reason
                .starts_with("Threshold Crossed: 1 out of the last 1 datapoints [99.5")
        );

        let Trigger::Alarm(r) = trigger(sample(include_str!(
            "fixtures/alarm-state-change-math.json"
        )))
        .unwrap() else {
            panic!("an alarm")
        };
        assert_eq!(
            (r.name.as_str(), r.value),
            ("TotalNetworkTrafficTooHigh", AlarmValue::Alarm)
        );

        assert_eq!(
            trigger(sample(include_str!("fixtures/scheduled-event.json"))).unwrap(),
            Trigger::Tick
        );
    }

    #[test]
    fn other_states_and_other_events() {
        let mut ok = sample(include_str!("fixtures/alarm-state-change.json"));
        ok["detail"]["state"]["value"] = "OK".into();
        assert!(matches!(trigger(ok).unwrap(), Trigger::Alarm(r) if r.value == AlarmValue::Ok));
        let mut insufficient = sample(include_str!("fixtures/alarm-state-change.json"));
        insufficient["detail"]["state"]["value"] = "INSUFFICIENT_DATA".into();
        assert!(matches!(
            trigger(insufficient).unwrap(),
            Trigger::Alarm(r) if r.value == AlarmValue::InsufficientData
        ));

        let mut ec2 = sample(include_str!("fixtures/scheduled-event.json"));
        ec2["detail-type"] = "EC2 Instance State-change Notification".into();
        ec2["source"] = "aws.ec2".into();
        let e = trigger(ec2).unwrap_err().to_string();
        assert!(
            e.contains("\"EC2 Instance State-change Notification\" from aws.ec2"),
            "{e}"
        );

        let e = trigger(serde_json::json!({"hello": "world"}))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("not an EventBridge event"), "{e}");

        let mut broken = sample(include_str!("fixtures/alarm-state-change.json"));
        broken["detail"] = serde_json::json!({"state": 3});
        assert!(matches!(
            trigger(broken),
            Err(EventError::BadAlarmDetail(_))
        ));
    }
}
