//! CloudWatch alarm evaluation over the metrics the gateway emitted, because moto stores
//! alarms but never evaluates them. The rules follow
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html>:
//! periods aligned on the clock, the last `EvaluationPeriods` complete periods, ALARM when at
//! least `DatapointsToAlarm` of them breach, missing data per `TreatMissingData`. A
//! metric-math alarm (the stages' throttle rate) is evaluated the same way over its
//! expression's value per period (`math`).

use std::time::Duration;

use anyhow::{Context as _, Result};
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricAlarm, MetricDataQuery, StateValue,
};

use crate::clock;
use crate::math::{self, Expr};
use crate::metrics::{Key, Metrics};

#[derive(Debug, Clone, PartialEq)]
pub enum Statistic {
    Sum,
    Average,
    SampleCount,
    Minimum,
    Maximum,
    /// `p99` -> 99.0
    Percentile(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Comparison {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

impl Comparison {
    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Greater => value > threshold,
            Comparison::GreaterOrEqual => value >= threshold,
            Comparison::Less => value < threshold,
            Comparison::LessOrEqual => value <= threshold,
        }
    }
    fn words(self) -> &'static str {
        match self {
            Comparison::Greater => "greater than",
            Comparison::GreaterOrEqual => "greater than or equal to",
            Comparison::Less => "less than",
            Comparison::LessOrEqual => "less than or equal to",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Missing {
    NotBreaching,
    Breaching,
    Ignore,
    /// `missing`: the alarm goes to INSUFFICIENT_DATA.
    Unknown,
}

/// What an alarm compares with its threshold, period by period.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// One metric's statistic.
    Metric { key: Key, statistic: Statistic },
    /// A metric-math expression over queries, each a metric's statistic, by query id.
    Math {
        expression: Expr,
        queries: Vec<(String, Key, Statistic)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmDef {
    pub name: String,
    pub measure: Measure,
    /// Already divided by `--time-scale`.
    pub period_ms: u64,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: u32,
    pub threshold: f64,
    pub comparison: Comparison,
    pub missing: Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Ok,
    Alarm,
    InsufficientData,
}

impl State {
    pub fn as_aws(self) -> StateValue {
        match self {
            State::Ok => StateValue::Ok,
            State::Alarm => StateValue::Alarm,
            State::InsufficientData => StateValue::InsufficientData,
        }
    }
}

/// The statistic of one period's values; None when the period has none.
pub fn statistic(stat: &Statistic, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    Some(match stat {
        Statistic::Sum => values.iter().sum(),
        Statistic::Average => values.iter().sum::<f64>() / n,
        Statistic::SampleCount => n,
        Statistic::Minimum => values.iter().copied().fold(f64::INFINITY, f64::min),
        Statistic::Maximum => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Statistic::Percentile(p) => {
            // Nearest rank: the smallest value with at least p% of the values at or below it.
            let mut sorted = values.to_vec();
            sorted.sort_by(f64::total_cmp);
            let rank = ((p / 100.0) * n).ceil().max(1.0) as usize;
            sorted[rank.min(sorted.len()) - 1]
        }
    })
}

/// A datapoint: the start of its period and its value, if any data arrived.
pub type Datapoint = (u64, Option<f64>);

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// None: keep the current state (`TreatMissingData: ignore` with nothing to go on).
    pub state: Option<State>,
    pub reason: String,
}

/// Java's `Double.toString` for the values CloudWatch prints: `5.0`, `0.25`.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Evaluates the alarm over its last periods (oldest first), with the reason worded as
/// CloudWatch words it.
pub fn evaluate(def: &AlarmDef, points: &[Datapoint]) -> Evaluation {
    let n = points.len();
    let m = def.datapoints_to_alarm.max(1) as usize;
    let present: Vec<(u64, f64)> = points
        .iter()
        .filter_map(|(t, v)| v.map(|v| (*t, v)))
        .collect();
    let missing = n - present.len();
    let breaching: Vec<(u64, f64)> = present
        .iter()
        .copied()
        .filter(|(_, v)| def.comparison.holds(*v, def.threshold))
        .collect();
    let missing_breach = def.missing == Missing::Breaching;
    let breach_count = breaching.len() + if missing_breach { missing } else { 0 };
    let shown = |pts: &[(u64, f64)]| -> String {
        pts.iter()
            .rev()
            .map(|(t, v)| {
                format!(
                    "{} ({})",
                    number(*v),
                    clock::cloudwatch_reason_time(clock::from_millis(*t))
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let threshold = number(def.threshold);
    let words = def.comparison.words();

    if present.is_empty() {
        let treated = match def.missing {
            Missing::NotBreaching => Some((State::Ok, "NonBreaching")),
            Missing::Breaching => Some((State::Alarm, "Breaching")),
            Missing::Ignore => None,
            Missing::Unknown => Some((State::InsufficientData, "Missing")),
        };
        let Some((state, as_what)) = treated else {
            return Evaluation {
                state: None,
                reason: String::new(),
            };
        };
        let reason = if def.missing == Missing::Unknown {
            format!(
                "Insufficient Data: {} were unknown.",
                plural(n, "datapoint")
            )
        } else {
            format!(
                "Threshold Crossed: no datapoints were received for {} and {} {} treated as [{as_what}].",
                plural(n, "period"),
                plural(missing, "missing datapoint"),
                if missing == 1 { "was" } else { "were" }
            )
        };
        return Evaluation {
            state: Some(state),
            reason,
        };
    }

    if breach_count >= m {
        Evaluation {
            state: Some(State::Alarm),
            reason: format!(
                "Threshold Crossed: {} out of the last {} [{}] {} {words} the threshold ({threshold}) (minimum {} for OK -> ALARM transition).",
                breach_count,
                plural(n, "datapoint"),
                shown(&breaching),
                if breach_count == 1 { "was" } else { "were" },
                plural(m, "datapoint"),
            ),
        }
    } else {
        let ok: Vec<(u64, f64)> = present
            .iter()
            .copied()
            .filter(|(_, v)| !def.comparison.holds(*v, def.threshold))
            .collect();
        let ok_count = n - breach_count;
        Evaluation {
            state: Some(State::Ok),
            reason: format!(
                "Threshold Crossed: {} out of the last {} [{}] {} not {words} the threshold ({threshold}) (minimum {} for ALARM -> OK transition).",
                ok_count,
                plural(n, "datapoint"),
                shown(&ok),
                if ok_count == 1 { "was" } else { "were" },
                plural(n - m + 1, "datapoint"),
            ),
        }
    }
}

/// The last `evaluation_periods` complete periods before `now_ms`, oldest first.
pub fn datapoints(def: &AlarmDef, metrics: &Metrics, now_ms: u64) -> Vec<Datapoint> {
    let p = def.period_ms.max(1);
    let current = now_ms / p;
    let n = u64::from(def.evaluation_periods.max(1));
    let of = |key: &Key, stat: &Statistic, k: u64| {
        statistic(stat, &metrics.values(key, k * p, (k + 1) * p))
    };
    (current.saturating_sub(n)..current)
        .map(|k| {
            let value = match &def.measure {
                Measure::Metric { key, statistic } => of(key, statistic, k),
                Measure::Math {
                    expression,
                    queries,
                } => {
                    let values = queries
                        .iter()
                        .map(|(id, key, stat)| (id.clone(), of(key, stat, k)))
                        .collect();
                    expression.eval(&values)
                }
            };
            (k * p, value)
        })
        .collect()
}

fn statistic_named(name: &str) -> Option<Statistic> {
    Some(match name {
        "Sum" => Statistic::Sum,
        "Average" => Statistic::Average,
        "SampleCount" => Statistic::SampleCount,
        "Minimum" => Statistic::Minimum,
        "Maximum" => Statistic::Maximum,
        p => Statistic::Percentile(p.strip_prefix('p')?.parse().ok()?),
    })
}

fn key_of(namespace: &str, metric: &str, dims: &[Dimension]) -> Key {
    let dims: Vec<(&str, &str)> = dims
        .iter()
        .filter_map(|d| Some((d.name()?, d.value()?)))
        .collect();
    Key::new(namespace, metric, &dims)
}

/// A metric-math alarm's measure and period (seconds): the one query that returns data is
/// the expression, the others the metrics it reads, all over one period. None when any part
/// is beyond what [`math`] evaluates (then the gateway leaves the alarm alone, and says so).
fn math_of(queries: &[MetricDataQuery]) -> Result<(Measure, i32), String> {
    let shown = queries.iter().filter(|q| q.return_data() != Some(false));
    let [result] = shown.collect::<Vec<_>>()[..] else {
        return Err("exactly one query must return data".into());
    };
    let text = result
        .expression()
        .ok_or("the query returning data is not an expression")?;
    let expression = math::parse(text)?;
    let mut period = None;
    let mut inputs = Vec::new();
    for q in queries.iter().filter(|q| q.expression().is_none()) {
        let (Some(id), Some(stat)) = (q.id(), q.metric_stat()) else {
            return Err("a query is neither an expression nor a metric".into());
        };
        let metric = stat.metric().ok_or("a query names no metric")?;
        let key = key_of(
            metric.namespace().unwrap_or_default(),
            metric.metric_name().unwrap_or_default(),
            metric.dimensions(),
        );
        let statistic = statistic_named(stat.stat().unwrap_or_default())
            .ok_or_else(|| format!("statistic {:?} of {id}", stat.stat()))?;
        if period.is_some_and(|p| Some(p) != stat.period()) {
            return Err("the metrics' periods differ".into());
        }
        period = stat.period();
        inputs.push((id.to_string(), key, statistic));
    }
    if let Some(missing) = expression
        .ids()
        .into_iter()
        .find(|id| !inputs.iter().any(|(i, _, _)| i == id))
    {
        return Err(format!(
            "the expression reads {missing}, which no query defines"
        ));
    }
    Ok((
        Measure::Math {
            expression,
            queries: inputs,
        },
        period.ok_or("no metric gives a period")?,
    ))
}

/// An alarm as DescribeAlarms returns it, read into what evaluation needs. None for what
/// the gateway cannot evaluate (a metric-math alarm beyond [`math`] is reported on stderr
/// once per read).
pub fn from_aws(alarm: &MetricAlarm, time_scale: f64) -> Option<AlarmDef> {
    let name = alarm.alarm_name()?.to_string();
    let (measure, period) = if alarm.metrics().is_empty() {
        let key = key_of(alarm.namespace()?, alarm.metric_name()?, alarm.dimensions());
        let statistic = match (alarm.statistic(), alarm.extended_statistic()) {
            (Some(s), _) => match statistic_named(s.as_str())? {
                Statistic::Percentile(_) => return None,
                s => s,
            },
            (None, Some(ext)) => Statistic::Percentile(ext.strip_prefix('p')?.parse().ok()?),
            (None, None) => return None,
        };
        (Measure::Metric { key, statistic }, alarm.period()?)
    } else {
        match math_of(alarm.metrics()) {
            Ok(m) => m,
            Err(why) => {
                eprintln!("gateway: alarm {name} is not evaluated here: {why}");
                return None;
            }
        }
    };
    let period_ms = (f64::from(period) * 1000.0 / time_scale).max(1.0) as u64;
    let evaluation_periods = alarm.evaluation_periods()?.max(1) as u32;
    let comparison = match alarm.comparison_operator()? {
        ComparisonOperator::GreaterThanThreshold => Comparison::Greater,
        ComparisonOperator::GreaterThanOrEqualToThreshold => Comparison::GreaterOrEqual,
        ComparisonOperator::LessThanThreshold => Comparison::Less,
        ComparisonOperator::LessThanOrEqualToThreshold => Comparison::LessOrEqual,
        _ => return None,
    };
    let missing = match alarm.treat_missing_data() {
        Some("breaching") => Missing::Breaching,
        Some("ignore") => Missing::Ignore,
        Some("missing") => Missing::Unknown,
        _ => Missing::NotBreaching,
    };
    Some(AlarmDef {
        name,
        measure,
        period_ms,
        evaluation_periods,
        datapoints_to_alarm: alarm
            .datapoints_to_alarm()
            .map(|d| d.max(1) as u32)
            .unwrap_or(evaluation_periods),
        threshold: alarm.threshold()?,
        comparison,
        missing,
    })
}

/// Reads the named alarms, evaluates each, and sets the state of those whose evaluation
/// differs from what CloudWatch holds. Returns the changes made.
pub async fn evaluate_once(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    names: &[String],
    metrics: &Metrics,
    time_scale: f64,
    now_ms: u64,
) -> Result<Vec<(String, State)>> {
    let mut changes = Vec::new();
    // DescribeAlarms takes at most 100 names.
    for chunk in names.chunks(100) {
        let out = cloudwatch
            .describe_alarms()
            .set_alarm_names(Some(chunk.to_vec()))
            .send()
            .await
            .context("DescribeAlarms")?;
        for alarm in out.metric_alarms() {
            let Some(def) = from_aws(alarm, time_scale) else {
                continue;
            };
            let eval = evaluate(&def, &datapoints(&def, metrics, now_ms));
            let Some(state) = eval.state else { continue };
            if alarm.state_value() == Some(&state.as_aws()) {
                continue;
            }
            cloudwatch
                .set_alarm_state()
                .alarm_name(&def.name)
                .state_value(state.as_aws())
                .state_reason(&eval.reason)
                .send()
                .await
                .with_context(|| format!("SetAlarmState {}", def.name))?;
            changes.push((def.name.clone(), state));
        }
    }
    Ok(changes)
}

/// The alarms the stack holds for the stages' files: each alarm by its name, and each Lambda
/// alarm again per further function as `<name>-<function>` (terraform/environments.tf,
/// `local.function_alarms`; tools/seed.py does the same), since a Lambda alarm watches one
/// function's alias and an API alarm the whole stage.
pub fn stack_alarm_names(environments: &rollout::Environments) -> Vec<String> {
    let functions = environments.project.function_names();
    let first = functions.first().map_or("", String::as_str);
    let mut names = Vec::new();
    for alarm in environments.stages.iter().flat_map(|s| &s.alarms) {
        // The naming rule is rollout's (`Alarm::name_for`), as promote and Terraform use it.
        for function in &functions {
            let name = alarm.name_for(function, first);
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// How often to evaluate: a quarter of the shortest period, between 100 ms and 10 s.
pub fn tick(periods_s: impl Iterator<Item = u32>, time_scale: f64) -> Duration {
    let shortest = periods_s.min().unwrap_or(60);
    let ms = f64::from(shortest) * 1000.0 / time_scale / 4.0;
    Duration::from_millis(ms.clamp(100.0, 10_000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_alarms_are_named_once_per_function_and_api_alarms_once() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../environments");
        let environments = rollout::Environments::load(&dir).unwrap();
        let names = stack_alarm_names(&environments);
        for name in [
            "app-live-lambda-errors",
            "app-live-lambda-errors-birthday",
            "app-live-lambda-throttle-rate-birthday",
            "app-live-api-5xx-rate",
        ] {
            assert!(names.contains(&name.to_string()), "{name} in {names:?}");
        }
        assert!(!names.iter().any(|n| n == "app-live-api-5xx-rate-birthday"));
        let stage_files: usize = environments.stages.iter().map(|s| s.alarms.len()).sum();
        let lambda: usize = environments
            .stages
            .iter()
            .flat_map(|s| &s.alarms)
            .filter(|a| a.kind.watches_a_function())
            .count();
        // Each Lambda alarm once more for every function after the first.
        let others = environments.project.functions.len() - 1;
        assert_eq!(names.len(), stage_files + lambda * others);
    }
    use crate::metrics::LAMBDA;

    fn errors_key() -> Key {
        Key::new(
            LAMBDA,
            "Errors",
            &[("FunctionName", "app"), ("Resource", "app:live")],
        )
    }

    fn def() -> AlarmDef {
        AlarmDef {
            name: "app-live-lambda-errors".into(),
            measure: Measure::Metric {
                key: errors_key(),
                statistic: Statistic::Sum,
            },
            period_ms: 60_000,
            evaluation_periods: 1,
            datapoints_to_alarm: 1,
            threshold: 1.0,
            comparison: Comparison::Greater,
            missing: Missing::NotBreaching,
        }
    }

    // 2026-11-30T16:05:00Z
    const T: u64 = 1_796_054_700_000;

    #[test]
    fn statistics() {
        let v = [3.0, 1.0, 2.0, 10.0];
        assert_eq!(statistic(&Statistic::Sum, &v), Some(16.0));
        assert_eq!(statistic(&Statistic::Average, &v), Some(4.0));
        assert_eq!(statistic(&Statistic::SampleCount, &v), Some(4.0));
        assert_eq!(statistic(&Statistic::Minimum, &v), Some(1.0));
        assert_eq!(statistic(&Statistic::Maximum, &v), Some(10.0));
        assert_eq!(statistic(&Statistic::Percentile(50.0), &v), Some(2.0));
        assert_eq!(statistic(&Statistic::Percentile(99.0), &v), Some(10.0));
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(
            statistic(&Statistic::Percentile(99.0), &hundred),
            Some(99.0)
        );
        assert_eq!(statistic(&Statistic::Sum, &[]), None);
    }

    #[test]
    fn a_breaching_datapoint_fires_with_cloudwatch_wording() {
        let e = evaluate(&def(), &[(T, Some(5.0))]);
        assert_eq!(e.state, Some(State::Alarm));
        assert_eq!(
            e.reason,
            "Threshold Crossed: 1 out of the last 1 datapoint [5.0 (30/11/26 16:05:00)] was greater than the threshold (1.0) (minimum 1 datapoint for OK -> ALARM transition)."
        );
    }

    #[test]
    fn a_quiet_period_is_ok_and_no_data_is_not_breaching() {
        let e = evaluate(&def(), &[(T, Some(1.0))]);
        assert_eq!(e.state, Some(State::Ok));
        assert!(
            e.reason
                .contains("was not greater than the threshold (1.0)"),
            "{}",
            e.reason
        );
        let e = evaluate(&def(), &[(T, None)]);
        assert_eq!(e.state, Some(State::Ok));
        assert_eq!(
            e.reason,
            "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as [NonBreaching]."
        );
    }

    #[test]
    fn m_out_of_n() {
        let mut d = def();
        d.evaluation_periods = 3;
        d.datapoints_to_alarm = 2;
        let pts = [(T, Some(5.0)), (T + 60_000, None), (T + 120_000, Some(0.0))];
        assert_eq!(evaluate(&d, &pts).state, Some(State::Ok));
        let pts = [(T, Some(5.0)), (T + 60_000, None), (T + 120_000, Some(3.0))];
        let e = evaluate(&d, &pts);
        assert_eq!(e.state, Some(State::Alarm));
        assert!(e.reason.starts_with("Threshold Crossed: 2 out of the last 3 datapoints [3.0 (30/11/26 16:07:00), 5.0 (30/11/26 16:05:00)] were greater"), "{}", e.reason);
        d.missing = Missing::Breaching;
        let pts = [(T, Some(5.0)), (T + 60_000, None), (T + 120_000, Some(0.0))];
        assert_eq!(evaluate(&d, &pts).state, Some(State::Alarm));
        d.missing = Missing::Ignore;
        assert_eq!(evaluate(&d, &[(T, None)]).state, None);
    }

    #[test]
    fn datapoints_are_the_last_complete_periods() {
        let m = Metrics::new(Duration::from_secs(600));
        let mut d = def();
        d.period_ms = 1000;
        d.evaluation_periods = 2;
        let k = errors_key();
        m.record(T + 500, vec![(k.clone(), 1.0), (k.clone(), 1.0)]);
        m.record(T + 1500, vec![(k.clone(), 1.0)]);
        m.record(T + 2500, vec![(k.clone(), 1.0)]); // current period: not yet counted
        assert_eq!(
            datapoints(&d, &m, T + 2600),
            vec![(T, Some(2.0)), (T + 1000, Some(1.0))]
        );
    }

    /// The stages' throttle-rate alarm as DescribeAlarms returns it (tools/seed.py and
    /// Terraform define it so): an expression over Throttles and Invocations of the alias.
    fn throttle_rate_alarm(expression: &str) -> MetricAlarm {
        use aws_sdk_cloudwatch::types::{Metric, MetricStat};
        let dims = [("FunctionName", "app"), ("Resource", "app:live")]
            .map(|(n, v)| Dimension::builder().name(n).value(v).build());
        let metric = |id: &str, name: &str| {
            MetricDataQuery::builder()
                .id(id)
                .return_data(false)
                .metric_stat(
                    MetricStat::builder()
                        .metric(
                            Metric::builder()
                                .namespace(LAMBDA)
                                .metric_name(name)
                                .set_dimensions(Some(dims.to_vec()))
                                .build(),
                        )
                        .period(60)
                        .stat("Sum")
                        .build(),
                )
                .build()
        };
        MetricAlarm::builder()
            .alarm_name("app-live-lambda-throttle-rate")
            .metrics(
                MetricDataQuery::builder()
                    .id("rate")
                    .expression(expression)
                    .return_data(true)
                    .build(),
            )
            .metrics(metric("throttles", "Throttles"))
            .metrics(metric("invocations", "Invocations"))
            .evaluation_periods(3)
            .threshold(0.02)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .treat_missing_data("notBreaching")
            .build()
    }

    #[test]
    fn a_throttle_rate_alarm_fires_on_a_sustained_share_not_on_one_burst() {
        use crate::metrics::{InvocationRecord, invocation_points};
        let def = from_aws(
            &throttle_rate_alarm(
                "FILL(throttles, 0) / (FILL(throttles, 0) + FILL(invocations, 0))",
            ),
            60.0,
        )
        .expect("a metric-math alarm the gateway evaluates");
        assert_eq!(def.period_ms, 1000);
        assert_eq!(def.evaluation_periods, 3);
        let m = Metrics::new(Duration::from_secs(600));
        // `throttled` of `n` requests to live in the period starting at `at`.
        let traffic = |at: u64, n: u32, throttled: u32| {
            for i in 0..n {
                m.record(
                    at + u64::from(i),
                    invocation_points(&InvocationRecord {
                        function: "app",
                        alias: "live",
                        version: "2",
                        duration_ms: 1.0,
                        error: false,
                        throttled: i < throttled,
                        weighted: true,
                    }),
                );
            }
        };
        // One burst: a whole period at 50% throttled, then two quiet ones.
        traffic(T, 100, 50);
        traffic(T + 1000, 100, 0);
        traffic(T + 2000, 100, 1);
        let pts = datapoints(&def, &m, T + 3000);
        assert_eq!(
            pts,
            vec![
                (T, Some(0.5)),
                (T + 1000, Some(0.0)),
                (T + 2000, Some(0.01))
            ]
        );
        assert_eq!(evaluate(&def, &pts).state, Some(State::Ok));
        // Three periods in a row above 2%: the stage is short of capacity.
        traffic(T + 3000, 100, 3);
        traffic(T + 4000, 10, 10);
        let pts = datapoints(&def, &m, T + 5000);
        assert_eq!(
            pts[2],
            (T + 4000, Some(1.0)),
            "all throttled is a rate of 1"
        );
        assert_eq!(
            evaluate(&def, &pts).state,
            Some(State::Ok),
            "two periods are not three"
        );
        traffic(T + 5000, 100, 5);
        let pts = datapoints(&def, &m, T + 6000);
        let e = evaluate(&def, &pts);
        assert_eq!(e.state, Some(State::Alarm), "{}", e.reason);
        assert!(
            e.reason.contains("3 out of the last 3 datapoints"),
            "{}",
            e.reason
        );
        // No traffic is missing data, which the stages treat as not breaching.
        let later = datapoints(&def, &m, T + 10_000);
        assert!(later.iter().all(|(_, v)| v.is_none()), "{later:?}");
        assert_eq!(evaluate(&def, &later).state, Some(State::Ok));
    }

    #[test]
    fn a_metric_math_alarm_beyond_what_is_evaluated_is_left_alone() {
        assert!(
            from_aws(
                &throttle_rate_alarm("ANOMALY_DETECTION_BAND(throttles)"),
                1.0
            )
            .is_none()
        );
        assert!(from_aws(&throttle_rate_alarm("throttles / requests"), 1.0).is_none());
    }

    #[test]
    fn time_scale_shortens_the_evaluation_tick() {
        assert_eq!(tick([60, 300].into_iter(), 1.0), Duration::from_secs(10));
        assert_eq!(tick([60].into_iter(), 60.0), Duration::from_millis(250));
        assert_eq!(tick([60].into_iter(), 6000.0), Duration::from_millis(100));
    }
}
