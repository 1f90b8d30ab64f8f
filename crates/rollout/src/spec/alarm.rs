use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    LambdaErrors,
    /// A count of throttled requests: one throttle can fire it (kept for stages that want
    /// that; the shipped stages watch the rate instead).
    LambdaThrottles,
    /// The share of the alias's requests Lambda throttled, `Throttles / (Invocations +
    /// Throttles)` per period: a CloudWatch metric-math alarm, a fraction like
    /// `api_5xx_rate`. Under `analysis.judge_relative` it is judged by the per-version
    /// throttle comparison rather than failing the candidate (`alarm_policy`).
    LambdaThrottleRate,
    #[serde(rename = "api_5xx_rate")]
    Api5xxRate,
    ApiP99Latency,
}

impl AlarmKind {
    /// Whether it watches one function's alias (Lambda's metrics) rather than the whole
    /// API Gateway stage: the stack holds one such alarm per function.
    pub fn watches_a_function(self) -> bool {
        matches!(
            self,
            AlarmKind::LambdaErrors | AlarmKind::LambdaThrottles | AlarmKind::LambdaThrottleRate
        )
    }

    /// Whether the threshold is a share of requests (0 to 1) rather than a count or a time.
    pub fn is_rate(self) -> bool {
        matches!(self, AlarmKind::LambdaThrottleRate | AlarmKind::Api5xxRate)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub name: String,
    pub kind: AlarmKind,
    pub threshold: f64,
    pub period_seconds: u32,
    pub evaluation_periods: u32,
}

impl Alarm {
    /// The name the stack gives this alarm as it watches `function` (`first`: the project's
    /// first function): a Lambda alarm keeps the stage file's name for the first function and
    /// is `<name>-<function>` for each other; an API alarm watches the whole stage under its
    /// own name (Terraform's `local.function_alarms`, the seed's `function_alarms`).
    pub fn name_for(&self, function: &str, first: &str) -> String {
        if self.kind.watches_a_function() && function != first {
            format!("{}-{function}", self.name)
        } else {
            self.name.clone()
        }
    }

    /// The alarms the stack holds for this one of a stage file, by name, each with the
    /// function it watches (`None`: an API alarm, which watches the whole stage). A Lambda
    /// alarm watches one function's alias, so there is one per function: the first
    /// function's under the stage file's name, every other's as `<name>-<function>`
    /// (terraform's `local.function_alarms`, the seed and the gateway name them alike).
    pub fn stack_names<'a>(&self, functions: &'a [String]) -> Vec<(String, Option<&'a str>)> {
        if !self.kind.watches_a_function() {
            return vec![(self.name.clone(), None)];
        }
        let first = functions.first().map_or("", String::as_str);
        functions
            .iter()
            .map(|f| (self.name_for(f, first), Some(f.as_str())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambda_alarm_is_one_per_function_and_an_api_alarm_one_per_stage() {
        let functions = ["app".to_string(), "birthday".to_string()];
        let alarm = |kind| Alarm {
            name: "app-live-x".into(),
            kind,
            threshold: 1.0,
            period_seconds: 60,
            evaluation_periods: 1,
        };
        assert_eq!(
            alarm(AlarmKind::LambdaErrors).stack_names(&functions),
            [
                ("app-live-x".to_string(), Some("app")),
                ("app-live-x-birthday".to_string(), Some("birthday")),
            ]
        );
        assert_eq!(
            alarm(AlarmKind::Api5xxRate).stack_names(&functions),
            [("app-live-x".to_string(), None)]
        );
        assert_eq!(
            alarm(AlarmKind::LambdaThrottleRate).stack_names(&functions[..1]),
            [("app-live-x".to_string(), Some("app"))]
        );
    }
}
