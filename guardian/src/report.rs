//! The guardian's metrics, as CloudWatch's embedded metric format: one JSON log line that
//! Lambda's log group turns into a metric, with no PutMetricData call (and no permission
//! for one). An alarm in terraform/guardian.tf watches `StaleSplits`.
//! Format: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

pub const NAMESPACE: &str = "Guardian";

/// The log line for `metric` = `value` of `stage`, with a message.
pub fn line(metric: &str, stage: &str, value: f64, message: &str) -> Value {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    json!({
        "_aws": {
            "Timestamp": ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Stage"]],
                "Metrics": [{"Name": metric, "Unit": "Count"}],
            }],
        },
        "Stage": stage,
        metric: value,
        "message": message,
    })
}

/// A split left past its plan: the metric an alarm watches, and the line a person reads.
pub fn stale(stage: &str, report: &str) {
    tracing::warn!(stage, %report, "stale split");
    println!("{}", line("StaleSplits", stage, 1.0, report));
}

/// Splits taken back on `stage` by this invocation.
pub fn rolled_back(stage: &str, count: usize) {
    if count > 0 {
        println!(
            "{}",
            line("Rollbacks", stage, count as f64, "splits taken back")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_embedded_metric_names_its_namespace_dimension_and_value() {
        let l = line("StaleSplits", "live", 1.0, "the split stood too long");
        let m = &l["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "Guardian");
        assert_eq!(m["Dimensions"][0][0], "Stage");
        assert_eq!(m["Metrics"][0]["Name"], "StaleSplits");
        assert_eq!(
            (l["Stage"].as_str(), l["StaleSplits"].as_f64()),
            (Some("live"), Some(1.0))
        );
        assert!(l["_aws"]["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    }
}
