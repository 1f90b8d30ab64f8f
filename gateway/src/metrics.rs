//! The metrics AWS publishes for Lambda and API Gateway, recorded per request. Two views of
//! the same samples: a batch aggregated into statistic sets and sent with PutMetricData about
//! once a second, and a short history the alarm evaluator reads (CloudWatch in moto neither
//! computes percentiles nor evaluates alarms).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, Result};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};

pub const LAMBDA: &str = "AWS/Lambda";
pub const API_GATEWAY: &str = "AWS/ApiGateway";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub namespace: String,
    pub metric: String,
    /// Sorted by name, as CloudWatch identifies a metric by its set of dimensions.
    pub dimensions: Vec<(String, String)>,
}

impl Key {
    pub fn new(namespace: &str, metric: &str, dims: &[(&str, &str)]) -> Key {
        let mut dimensions: Vec<(String, String)> = dims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        dimensions.sort();
        Key {
            namespace: namespace.into(),
            metric: metric.into(),
            dimensions,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    fn one(v: f64) -> Stats {
        Stats {
            count: 1.0,
            sum: v,
            min: v,
            max: v,
        }
    }
    fn add(&mut self, v: f64) {
        self.count += 1.0;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
}

/// One invocation of a function through an alias.
#[derive(Debug, Clone)]
pub struct InvocationRecord<'a> {
    pub function: &'a str,
    pub alias: &'a str,
    pub version: &'a str,
    pub duration_ms: f64,
    pub error: bool,
    pub throttled: bool,
    /// Whether the alias had weighted routing: Lambda publishes `ExecutedVersion` only then.
    pub weighted: bool,
}

/// One request answered by the API.
#[derive(Debug, Clone)]
pub struct ApiRecord<'a> {
    pub api_name: &'a str,
    /// None when the path named no stage of the API.
    pub stage: Option<&'a str>,
    pub status: u16,
    pub latency_ms: f64,
    /// Time spent in the integration (the function), when it was called.
    pub integration_ms: Option<f64>,
}

/// The datapoints one request produces: (key, value), by the dimension sets AWS publishes.
pub fn invocation_points(r: &InvocationRecord<'_>) -> Vec<(Key, f64)> {
    let resource = format!("{}:{}", r.function, r.alias);
    let mut sets: Vec<Vec<(&str, &str)>> = vec![
        vec![("FunctionName", r.function)],
        vec![("FunctionName", r.function), ("Resource", &resource)],
    ];
    if r.weighted {
        sets.push(vec![
            ("FunctionName", r.function),
            ("Resource", &resource),
            ("ExecutedVersion", r.version),
        ]);
    }
    let mut out = Vec::new();
    for dims in &sets {
        if r.throttled {
            // A throttled request is not an invocation: only Throttles counts it.
            out.push((Key::new(LAMBDA, "Throttles", dims), 1.0));
            continue;
        }
        out.push((Key::new(LAMBDA, "Invocations", dims), 1.0));
        out.push((
            Key::new(LAMBDA, "Errors", dims),
            f64::from(u8::from(r.error)),
        ));
        out.push((Key::new(LAMBDA, "Throttles", dims), 0.0));
        out.push((Key::new(LAMBDA, "Duration", dims), r.duration_ms));
    }
    out
}

pub fn api_points(r: &ApiRecord<'_>) -> Vec<(Key, f64)> {
    let mut sets: Vec<Vec<(&str, &str)>> = vec![vec![("ApiName", r.api_name)]];
    if let Some(stage) = r.stage {
        sets.push(vec![("ApiName", r.api_name), ("Stage", stage)]);
    }
    let mut out = Vec::new();
    for dims in &sets {
        let is = |range: std::ops::Range<u16>| f64::from(u8::from(range.contains(&r.status)));
        out.push((Key::new(API_GATEWAY, "Count", dims), 1.0));
        out.push((Key::new(API_GATEWAY, "4XXError", dims), is(400..500)));
        out.push((Key::new(API_GATEWAY, "5XXError", dims), is(500..600)));
        out.push((Key::new(API_GATEWAY, "Latency", dims), r.latency_ms));
        if let Some(ms) = r.integration_ms {
            out.push((Key::new(API_GATEWAY, "IntegrationLatency", dims), ms));
        }
    }
    out
}

fn unit(metric: &str) -> StandardUnit {
    match metric {
        "Duration" | "Latency" | "IntegrationLatency" => StandardUnit::Milliseconds,
        _ => StandardUnit::Count,
    }
}

#[derive(Default)]
struct Inner {
    pending: BTreeMap<Key, Stats>,
    history: BTreeMap<Key, VecDeque<(u64, f64)>>,
}

/// Shared by every request, the publisher and the alarm evaluator.
pub struct Metrics {
    inner: Mutex<Inner>,
    /// Samples older than this are dropped from the history (the longest alarm window).
    retain_ms: u64,
}

impl Metrics {
    pub fn new(retain: Duration) -> Metrics {
        Metrics {
            inner: Mutex::new(Inner::default()),
            retain_ms: retain.as_millis().max(1000) as u64,
        }
    }

    pub fn record(&self, at_ms: u64, points: Vec<(Key, f64)>) {
        let mut inner = self.inner.lock().expect("metrics lock");
        for (key, v) in points {
            match inner.pending.get_mut(&key) {
                Some(s) => s.add(v),
                None => {
                    inner.pending.insert(key.clone(), Stats::one(v));
                }
            }
            let h = inner.history.entry(key).or_default();
            h.push_back((at_ms, v));
            while h.front().is_some_and(|(t, _)| *t + self.retain_ms < at_ms) {
                h.pop_front();
            }
        }
    }

    pub fn take_pending(&self) -> BTreeMap<Key, Stats> {
        std::mem::take(&mut self.inner.lock().expect("metrics lock").pending)
    }

    /// The values of `key` recorded in [from_ms, to_ms).
    pub fn values(&self, key: &Key, from_ms: u64, to_ms: u64) -> Vec<f64> {
        let inner = self.inner.lock().expect("metrics lock");
        inner
            .history
            .get(key)
            .map(|h| {
                h.iter()
                    .filter(|(t, _)| *t >= from_ms && *t < to_ms)
                    .map(|(_, v)| *v)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Statistic sets as PutMetricData takes them, one datum per metric and dimension set.
pub fn datums(batch: &BTreeMap<Key, Stats>, at_ms: u64) -> BTreeMap<String, Vec<MetricDatum>> {
    let mut out: BTreeMap<String, Vec<MetricDatum>> = BTreeMap::new();
    for (key, s) in batch {
        let dims = key
            .dimensions
            .iter()
            .map(|(k, v)| Dimension::builder().name(k).value(v).build())
            .collect();
        let datum = MetricDatum::builder()
            .metric_name(&key.metric)
            .set_dimensions(Some(dims))
            .timestamp(DateTime::from_millis(at_ms as i64))
            .unit(unit(&key.metric))
            .statistic_values(
                StatisticSet::builder()
                    .sample_count(s.count)
                    .sum(s.sum)
                    .minimum(s.min)
                    .maximum(s.max)
                    .build(),
            )
            .build();
        out.entry(key.namespace.clone()).or_default().push(datum);
    }
    out
}

pub async fn put(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    batch: &BTreeMap<Key, Stats>,
    at_ms: u64,
) -> Result<()> {
    for (namespace, data) in datums(batch, at_ms) {
        // PutMetricData takes at most 1000 datums per call.
        for chunk in data.chunks(1000) {
            cloudwatch
                .put_metric_data()
                .namespace(&namespace)
                .set_metric_data(Some(chunk.to_vec()))
                .send()
                .await
                .with_context(|| format!("PutMetricData {namespace}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_counts_under_three_dimension_sets() {
        let pts = invocation_points(&InvocationRecord {
            function: "app",
            alias: "live",
            version: "3",
            duration_ms: 2.5,
            error: true,
            throttled: false,
            weighted: true,
        });
        let errors: Vec<_> = pts.iter().filter(|(k, _)| k.metric == "Errors").collect();
        assert_eq!(errors.len(), 3);
        assert!(errors.iter().all(|(_, v)| *v == 1.0));
        let dims: Vec<_> = errors.iter().map(|(k, _)| k.dimensions.clone()).collect();
        assert!(dims.contains(&vec![
            ("ExecutedVersion".into(), "3".into()),
            ("FunctionName".into(), "app".into()),
            ("Resource".into(), "app:live".into())
        ]));
        let throttled = invocation_points(&InvocationRecord {
            throttled: true,
            ..InvocationRecord {
                function: "app",
                alias: "live",
                version: "3",
                duration_ms: 0.0,
                error: false,
                throttled: false,
                weighted: false,
            }
        });
        assert!(
            throttled
                .iter()
                .all(|(k, v)| k.metric == "Throttles" && *v == 1.0)
        );
        // Unweighted: by function and by alias, no ExecutedVersion.
        assert_eq!(throttled.len(), 2);
    }

    #[test]
    fn api_errors_are_zero_or_one_so_their_average_is_a_rate() {
        let p = |status| {
            api_points(&ApiRecord {
                api_name: "app",
                stage: Some("dev"),
                status,
                latency_ms: 1.0,
                integration_ms: None,
            })
        };
        let get = |pts: &[(Key, f64)], m: &str| -> Vec<f64> {
            pts.iter()
                .filter(|(k, _)| k.metric == m)
                .map(|(_, v)| *v)
                .collect()
        };
        assert_eq!(get(&p(502), "5XXError"), vec![1.0, 1.0]);
        assert_eq!(get(&p(403), "4XXError"), vec![1.0, 1.0]);
        assert_eq!(get(&p(200), "5XXError"), vec![0.0, 0.0]);
        let no_stage = api_points(&ApiRecord {
            api_name: "app",
            stage: None,
            status: 403,
            latency_ms: 1.0,
            integration_ms: None,
        });
        assert!(no_stage.iter().all(|(k, _)| k.dimensions.len() == 1));
    }

    #[test]
    fn pending_batches_aggregate_and_history_is_windowed() {
        let m = Metrics::new(Duration::from_secs(10));
        let k = Key::new(LAMBDA, "Duration", &[("FunctionName", "app")]);
        m.record(1_000, vec![(k.clone(), 2.0), (k.clone(), 4.0)]);
        let batch = m.take_pending();
        assert_eq!(
            batch[&k],
            Stats {
                count: 2.0,
                sum: 6.0,
                min: 2.0,
                max: 4.0
            }
        );
        assert!(m.take_pending().is_empty());
        m.record(20_000, vec![(k.clone(), 8.0)]);
        assert_eq!(m.values(&k, 0, 30_000), vec![8.0]);
        let d = datums(&batch, 1_000);
        assert_eq!(d[LAMBDA].len(), 1);
        assert_eq!(d[LAMBDA][0].statistic_values().unwrap().sum(), Some(6.0));
    }
}
