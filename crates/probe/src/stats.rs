//! What the answers say: latency histograms overall and per version, status codes, errors
//! by kind, and each version's observed share of the traffic against the share the alias
//! was configured to give it. Pure: outcomes in, a report out.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// What happened to one scheduled request.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Its place in the schedule.
    pub seq: u64,
    /// When it was due, from the start of the run.
    pub scheduled: Duration,
    /// When it actually left; `None` when it was never sent (the in-flight cap was full).
    pub sent: Option<Duration>,
    /// From `scheduled` (not from `sent`) to the end of the answer or the failure: a server
    /// that stalls, or a client that falls behind, shows here (coordinated omission).
    pub latency: Duration,
    pub result: Result<Answer, Failure>,
}

/// An HTTP answer: its status, and the version that named itself in it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub version: Option<String>,
}

impl Answer {
    /// As vegeta counts it: 2xx and 3xx.
    pub fn is_success(&self) -> bool {
        (200..400).contains(&self.status)
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// No connection could be made.
    Connect,
    /// No complete answer within the request timeout.
    Timeout,
    /// Not sent: too many requests were already in flight. Counted, never delayed, so the
    /// schedule stays what was asked.
    Overflow,
    /// The connection failed mid-request.
    Transport,
}

impl Failure {
    pub fn kind(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Timeout => "timeout",
            Failure::Overflow => "overflow",
            Failure::Transport => "transport",
        }
    }
}

/// The shares an alias was configured with, version -> share in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Split(pub Vec<(String, f64)>);

impl Split {
    pub fn share_of(&self, version: &str) -> f64 {
        self.0
            .iter()
            .find(|(v, _)| v == version)
            .map_or(0.0, |(_, s)| *s)
    }
}

/// A split in force from `at` (from the start of the run) until the next change.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitChange {
    pub at: Duration,
    pub split: Split,
}

/// The confidence of every interval in the report. 99% rather than 95%: a probe that
/// calls out a split which is fine one run in twenty teaches people to ignore it.
pub const CONFIDENCE: f64 = 0.99;
/// The two-sided standard normal quantile for [`CONFIDENCE`]. A constant rather than a
/// statistics crate: it is the only quantile the probe needs.
const Z: f64 = 2.575_829_303_549;

/// The Wilson score interval for `k` successes in `n` trials: unlike the normal
/// approximation it stays inside [0, 1] and is honest for shares near 0 or 1 (a 1% canary).
/// `z` is the two-sided normal quantile (2.576 for 99%).
pub fn wilson(k: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// One point of the plot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub scheduled: Duration,
    pub latency: Duration,
    /// Index into [`Stats::labels`]; `None` when unattributed.
    pub version: Option<usize>,
    pub success: bool,
}

#[derive(Debug, Clone)]
struct Summary {
    requests: u64,
    success: u64,
    latency: Histogram<u64>,
    latency_sum_us: u128,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            requests: 0,
            success: 0,
            // Microseconds, 1 µs to an hour at 3 significant digits: ~100 KiB each.
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            latency_sum_us: 0,
        }
    }
}

impl Summary {
    fn add(&mut self, latency: Duration, success: bool, timed: bool) {
        self.requests += 1;
        self.success += u64::from(success);
        if timed {
            let us = latency.as_micros().clamp(1, 3_600_000_000) as u64;
            self.latency.saturating_record(us);
            self.latency_sum_us += latency.as_micros();
        }
    }

    fn latencies(&self) -> Option<Latencies> {
        let n = self.latency.len();
        if n == 0 {
            return None;
        }
        let ms = |us: u64| round3(us as f64 / 1000.0);
        let q = |p: f64| ms(self.latency.value_at_quantile(p));
        Some(Latencies {
            min: ms(self.latency.min()),
            mean: round3(self.latency_sum_us as f64 / n as f64 / 1000.0),
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            max: ms(self.latency.max()),
        })
    }

    fn success_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.success as f64 / self.requests as f64
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Latencies {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// Everything recorded so far. Feed it outcomes (in any order) and split changes (in time
/// order); ask for a [`Report`] at any point, mid-run included.
#[derive(Debug, Clone)]
pub struct Stats {
    requested_rate: f64,
    /// The one status a healthy answer has (a function's probe request); else 2xx and 3xx.
    expect_status: Option<u16>,
    all: Summary,
    versions: BTreeMap<String, Summary>,
    unattributed: Summary,
    status_codes: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
    sent: u64,
    first_sent: Option<Duration>,
    last_sent: Option<Duration>,
    last_done: Duration,
    splits: Vec<SplitChange>,
    /// Per version, the sum over attributed answers of the share configured when each was
    /// due; divided by `attributed_under_split` it is the share to expect.
    expected: BTreeMap<String, f64>,
    attributed_under_split: u64,
    unattributed_expected: BTreeMap<String, f64>,
    unattributed_under_split: u64,
    labels: Vec<String>,
    samples: Vec<Sample>,
}

impl Stats {
    pub fn new(requested_rate: f64) -> Stats {
        Stats {
            requested_rate,
            expect_status: None,
            all: Summary::default(),
            versions: BTreeMap::new(),
            unattributed: Summary::default(),
            status_codes: BTreeMap::new(),
            errors: BTreeMap::new(),
            sent: 0,
            first_sent: None,
            last_sent: None,
            last_done: Duration::ZERO,
            splits: Vec::new(),
            expected: BTreeMap::new(),
            attributed_under_split: 0,
            unattributed_expected: BTreeMap::new(),
            unattributed_under_split: 0,
            labels: Vec::new(),
            samples: Vec::new(),
        }
    }

    /// Only `status` is a success: a probe request with a known answer (a `PUT` that answers
    /// 204) counts a 200 as wrong, where 2xx and 3xx would pass it.
    pub fn expecting(mut self, status: u16) -> Stats {
        self.expect_status = Some(status);
        self
    }

    fn is_success(&self, a: &Answer) -> bool {
        match self.expect_status {
            Some(s) => a.status == s,
            None => a.is_success(),
        }
    }

    /// The alias routes `split` from `at` on. A change equal to the split in force is
    /// ignored, so a caller can report every read of the alias.
    pub fn split_from(&mut self, at: Duration, split: Split) {
        if self.splits.last().is_some_and(|c| c.split == split) {
            return;
        }
        self.splits.push(SplitChange { at, split });
    }

    pub fn splits(&self) -> &[SplitChange] {
        &self.splits
    }

    fn split_at(&self, at: Duration) -> Option<&Split> {
        self.splits
            .iter()
            .rev()
            .find(|c| c.at <= at)
            .or(self.splits.first())
            .map(|c| &c.split)
    }

    pub fn record(&mut self, o: &Outcome) {
        if let Some(sent) = o.sent {
            self.sent += 1;
            self.first_sent = Some(self.first_sent.map_or(sent, |f| f.min(sent)));
            self.last_sent = Some(self.last_sent.map_or(sent, |l| l.max(sent)));
        }
        self.last_done = self.last_done.max(o.scheduled + o.latency);
        // A request never sent has no latency to speak of.
        let timed = o.sent.is_some();
        let split = self.split_at(o.scheduled).cloned();
        let (success, version) = match &o.result {
            Ok(a) => {
                *self.status_codes.entry(a.status).or_default() += 1;
                let success = self.is_success(a);
                if !success {
                    *self.errors.entry(format!("http {}", a.status)).or_default() += 1;
                }
                (success, a.version.clone())
            }
            Err(f) => {
                *self.errors.entry(f.kind().to_string()).or_default() += 1;
                (false, None)
            }
        };
        self.all.add(o.latency, success, timed);
        let label = match version {
            Some(v) => {
                self.versions
                    .entry(v.clone())
                    .or_default()
                    .add(o.latency, success, timed);
                if let Some(split) = &split {
                    self.attributed_under_split += 1;
                    for (sv, share) in &split.0 {
                        *self.expected.entry(sv.clone()).or_default() += share;
                    }
                }
                Some(self.label(&v))
            }
            None => {
                self.unattributed.add(o.latency, success, timed);
                if let Some(split) = &split {
                    self.unattributed_under_split += 1;
                    for (sv, share) in &split.0 {
                        *self.unattributed_expected.entry(sv.clone()).or_default() += share;
                    }
                }
                None
            }
        };
        if timed {
            self.samples.push(Sample {
                scheduled: o.scheduled,
                latency: o.latency,
                version: label,
                success,
            });
        }
    }

    fn label(&mut self, v: &str) -> usize {
        match self.labels.iter().position(|l| l == v) {
            Some(i) => i,
            None => {
                self.labels.push(v.to_string());
                self.labels.len() - 1
            }
        }
    }

    /// Version names, indexed by [`Sample::version`].
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Answers (and failures) recorded so far, per version: (requests, successes). What an
    /// evidence source hands a judge at each poll.
    pub fn counts(&self) -> BTreeMap<String, (u64, u64)> {
        self.versions
            .iter()
            .map(|(v, s)| (v.clone(), (s.requests, s.success)))
            .collect()
    }

    pub fn requests(&self) -> u64 {
        self.all.requests
    }

    pub fn report(&self) -> Report {
        let attributed: u64 = self.versions.values().map(|s| s.requests).sum();
        let configured: Vec<&String> = self
            .splits
            .iter()
            .flat_map(|c| c.split.0.iter().map(|(v, _)| v))
            .collect();
        let mut names: Vec<&String> = self.versions.keys().collect();
        for v in configured {
            if !names.contains(&v) {
                names.push(v);
            }
        }
        names.sort_by(|a, b| version_order(a, b));
        let mut versions = BTreeMap::new();
        let mut warnings = Vec::new();
        for name in names {
            let empty = Summary::default();
            let s = self.versions.get(name).unwrap_or(&empty);
            let share = if attributed == 0 {
                0.0
            } else {
                s.requests as f64 / attributed as f64
            };
            let (low, high) = wilson(s.requests, attributed, Z);
            let expected = (self.attributed_under_split > 0).then(|| {
                self.expected.get(name).copied().unwrap_or(0.0) / self.attributed_under_split as f64
            });
            // Nothing attributed at all is no evidence either way; it is said elsewhere.
            let within = match expected {
                Some(e) if attributed > 0 => {
                    let ok = low - 1e-9 <= e && e <= high + 1e-9;
                    if !ok {
                        warnings.push(format!(
                            "version {name} served {:.2}% of {attributed} attributed answers \
                             ({:.0}% interval {:.2}%..{:.2}%), but the alias gives it {:.2}%: \
                             traffic is not going where the alias says",
                            share * 100.0,
                            CONFIDENCE * 100.0,
                            low * 100.0,
                            high * 100.0,
                            e * 100.0
                        ));
                    }
                    Some(ok)
                }
                _ => None,
            };
            let attribution = (self.unattributed_under_split > 0).then(|| {
                // Due at the split over every answer (attributed or not), less what it
                // answered: the answers it gave no name to are the ones missing.
                let n = (self.attributed_under_split + self.unattributed_under_split) as f64;
                let due = self.expected.get(name).copied().unwrap_or(0.0)
                    + self.unattributed_expected.get(name).copied().unwrap_or(0.0);
                let w = due / n;
                attribute_unattributed(
                    due,
                    n * w * (1.0 - w),
                    s.requests,
                    self.unattributed_under_split,
                    Z,
                )
            });
            let estimate = attribution.map(|a| Estimate {
                requests: round3(a.estimate),
                interval: [round3(a.low), round3(a.high)],
                estimated: true,
            });
            // Its success counting the unattributed answers estimated as its own (at the
            // unattributed answers' own success ratio).
            let success_estimated = attribution.filter(|a| round3(a.estimate) > 0.0).map(|a| {
                let ok = s.success as f64 + a.estimate * self.unattributed.success_ratio();
                round6(ok / (s.requests as f64 + a.estimate))
            });
            versions.insert(
                name.clone(),
                VersionReport {
                    requests: s.requests,
                    share: round6(share),
                    share_ci: [round6(low), round6(high)],
                    expected_share: expected.map(round6),
                    within_interval: within,
                    success: round6(s.success_ratio()),
                    success_estimated,
                    latency_ms: s.latencies(),
                    unattributed_estimate: estimate,
                },
            );
        }
        if self.unattributed.requests > 0 && self.splits.is_empty() {
            warnings.push(format!(
                "{} answer(s) named no version and no alias split is known to estimate them from",
                self.unattributed.requests
            ));
        }
        let span = match (self.first_sent, self.last_sent) {
            (Some(f), Some(l)) => l - f,
            _ => Duration::ZERO,
        };
        let total = self
            .first_sent
            .map_or(Duration::ZERO, |f| self.last_done.saturating_sub(f));
        let rate = if self.sent >= 2 && !span.is_zero() {
            (self.sent - 1) as f64 / span.as_secs_f64()
        } else {
            0.0
        };
        let throughput = if total.is_zero() {
            0.0
        } else {
            self.all.success as f64 / total.as_secs_f64()
        };
        Report {
            v: 1,
            event: "probe_report",
            requests: self.all.requests,
            sent: self.sent,
            requested_rate: self.requested_rate,
            expect_status: self.expect_status,
            rate: round3(rate),
            throughput: round3(throughput),
            duration_s: round3(total.as_secs_f64()),
            sending_s: round3(span.as_secs_f64()),
            success: round6(self.all.success_ratio()),
            status_codes: self
                .status_codes
                .iter()
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
            errors: self.errors.clone(),
            latency_ms: self.all.latencies(),
            confidence: CONFIDENCE,
            versions,
            unattributed: Unattributed {
                requests: self.unattributed.requests,
                success: round6(self.unattributed.success_ratio()),
            },
            warnings,
        }
    }
}

/// The answers that named no version which the split says were one version's: those it was
/// due at its weight (`due`, of all answers) minus those it gave (`answered`), clamped to the
/// `unattributed` ones, with the binomial spread of that expectation (`variance`, `n w (1-w)`)
/// at the normal quantile `z`. One estimate for the probe's report, its table and plot, and
/// the canary's probe judge (which shows it beside its shortfall test), so that a candidate
/// crashing on a fifth of its requests is not shown at 100% success beside a judge that
/// fails it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attribution {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

pub fn attribute_unattributed(
    due: f64,
    variance: f64,
    answered: u64,
    unattributed: u64,
    z: f64,
) -> Attribution {
    let spread = z * variance.max(0.0).sqrt();
    let clamp = |x: f64| x.clamp(0.0, unattributed as f64);
    let raw = due - answered as f64;
    Attribution {
        estimate: clamp(raw),
        low: clamp(raw - spread),
        high: clamp(raw + spread),
    }
}

/// Numbers in numeric order ("9" before "10"), then anything else ("local") by name.
pub fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    }
}

/// The report, as `--output json` prints it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    pub v: u32,
    pub event: &'static str,
    /// Scheduled requests with an outcome (sent or counted as overflow).
    pub requests: u64,
    pub sent: u64,
    pub requested_rate: f64,
    /// The status every answer should have, when the request has one (else 2xx and 3xx).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<u16>,
    /// Achieved send rate: requests a second between the first and the last send.
    pub rate: f64,
    /// Successful answers a second, first send to last answer.
    pub throughput: f64,
    pub duration_s: f64,
    pub sending_s: f64,
    pub success: f64,
    pub status_codes: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    pub latency_ms: Option<Latencies>,
    pub confidence: f64,
    pub versions: BTreeMap<String, VersionReport>,
    pub unattributed: Unattributed,
    /// A split outside its interval, answers nobody can attribute.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VersionReport {
    /// Answers that named this version.
    pub requests: u64,
    /// Of all attributed answers.
    pub share: f64,
    /// The Wilson interval of `share` at [`CONFIDENCE`].
    pub share_ci: [f64; 2],
    /// What the alias was configured to give it (averaged over weight changes).
    pub expected_share: Option<f64>,
    /// Whether `expected_share` lies inside `share_ci`.
    pub within_interval: Option<bool>,
    /// Of the answers that named it.
    pub success: f64,
    /// Counting the unattributed answers estimated as its own ([`attribute_unattributed`]);
    /// `None` when none are.
    pub success_estimated: Option<f64>,
    pub latency_ms: Option<Latencies>,
    /// Unattributed answers this version probably served: due at the split less answered.
    pub unattributed_estimate: Option<Estimate>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Estimate {
    pub requests: f64,
    pub interval: [f64; 2],
    pub estimated: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Unattributed {
    pub requests: u64,
    pub success: f64,
}

impl Report {
    /// For people, laid out like vegeta's text report.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let lat = |l: &Option<Latencies>| match l {
            Some(l) => format!(
                "{}, {}, {}, {}, {}, {}, {}",
                ms(l.min),
                ms(l.mean),
                ms(l.p50),
                ms(l.p90),
                ms(l.p95),
                ms(l.p99),
                ms(l.max)
            ),
            None => "-".into(),
        };
        out += &format!(
            "Requests      [total, rate, throughput]         {}, {:.2}, {:.2}   (asked {:.2}/s)\n",
            self.requests, self.rate, self.throughput, self.requested_rate
        );
        out += &format!(
            "Duration      [total, sending]                  {:.3}s, {:.3}s\n",
            self.duration_s, self.sending_s
        );
        out += &format!(
            "Latencies     [min, mean, 50, 90, 95, 99, max]  {}\n",
            lat(&self.latency_ms)
        );
        let expected = self
            .expect_status
            .map_or(String::new(), |s| format!("   (expected status {s})"));
        out += &format!(
            "Success       [ratio]                           {:.2}%{expected}\n",
            self.success * 100.0
        );
        let codes: Vec<String> = self
            .status_codes
            .iter()
            .map(|(c, n)| format!("{c}:{n}"))
            .collect();
        out += &format!(
            "Status Codes  [code:count]                      {}\n",
            codes.join("  ")
        );
        out += "Error Set:\n";
        for (kind, n) in &self.errors {
            out += &format!("  {kind}: {n}\n");
        }
        out += &format!(
            "Versions      (share of {} attributed answers, {:.0}% interval)\n",
            self.requests - self.unattributed.requests,
            self.confidence * 100.0
        );
        out +=
            "  VERSION  REQUESTS  SHARE    INTERVAL           ALIAS    SUCCESS  P50 / P90 / P99\n";
        let mut ordered: Vec<(&String, &VersionReport)> = self.versions.iter().collect();
        ordered.sort_by(|a, b| version_order(a.0, b.0));
        for (v, r) in ordered {
            let expected = match (r.expected_share, r.within_interval) {
                (Some(e), Some(false)) => format!("{:.2}%!", e * 100.0),
                (Some(e), _) => format!("{:.2}%", e * 100.0),
                (None, _) => "-".into(),
            };
            let p = match &r.latency_ms {
                Some(l) => format!("{} / {} / {}", ms(l.p50), ms(l.p90), ms(l.p99)),
                None => "-".into(),
            };
            out += &format!(
                "  {:<8} {:<9} {:<8} {:<18} {:<8} {:<8} {}\n",
                v,
                r.requests,
                format!("{:.2}%", r.share * 100.0),
                format!(
                    "[{:.2}, {:.2}]%",
                    r.share_ci[0] * 100.0,
                    r.share_ci[1] * 100.0
                ),
                expected,
                match r.success_estimated {
                    Some(e) => format!("~{:.2}%", e * 100.0),
                    None => format!("{:.2}%", r.success * 100.0),
                },
                p
            );
        }
        if self.unattributed.requests > 0 {
            out += &format!(
                "  unattributed: {} (success {:.2}%)",
                self.unattributed.requests,
                self.unattributed.success * 100.0
            );
            let estimates: Vec<String> = self
                .versions
                .iter()
                .filter_map(|(v, r)| {
                    r.unattributed_estimate.as_ref().map(|e| {
                        format!(
                            "{v} ~{:.1} [{:.1}, {:.1}]",
                            e.requests, e.interval[0], e.interval[1]
                        )
                    })
                })
                .collect();
            if !estimates.is_empty() {
                out += &format!(
                    ", estimated from the split (due at its weight less answered): {}; ~ success counts them",
                    estimates.join(", ")
                );
            }
            out += "\n";
        }
        for w in &self.warnings {
            out += &format!("warning: {w}\n");
        }
        out.trim_end().to_string()
    }
}

fn ms(x: f64) -> String {
    if x >= 1000.0 {
        format!("{:.3}s", x / 1000.0)
    } else {
        format!("{x:.3}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= want * 1e-3
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn answer(seq: u64, at: Duration, latency: Duration, status: u16, v: Option<&str>) -> Outcome {
        Outcome {
            seq,
            scheduled: at,
            sent: Some(at),
            latency,
            result: Ok(Answer {
                status,
                version: v.map(str::to_string),
            }),
        }
    }

    fn split(pairs: &[(&str, f64)]) -> Split {
        Split(pairs.iter().map(|(v, s)| (v.to_string(), *s)).collect())
    }

    #[test]
    fn wilson_matches_known_values() {
        // 10 of 100 at 95% (z = 1.96): [0.0552, 0.1744], the value worked by hand from the formula.
        let (l, h) = wilson(10, 100, 1.959_964);
        assert!(
            (l - 0.0552).abs() < 1e-4 && (h - 0.1744).abs() < 1e-4,
            "{l} {h}"
        );
        // Zero successes still gives a positive upper bound; all successes a lower one.
        let (l, h) = wilson(0, 50, Z);
        assert_eq!(l, 0.0);
        assert!(h > 0.05 && h < 0.15, "{h}");
        let (l, h) = wilson(50, 50, Z);
        assert!(l > 0.85 && l < 0.95 && h == 1.0, "{l}");
        assert_eq!(wilson(0, 0, Z), (0.0, 1.0));
    }

    #[test]
    fn every_answer_counts_once_and_percentiles_come_from_all_of_them() {
        let mut s = Stats::new(100.0);
        for i in 0..100u64 {
            s.record(&answer(i, ms(i * 10), ms(i + 1), 200, Some("3")));
        }
        let r = s.report();
        assert_eq!(r.requests, 100);
        assert_eq!(r.success, 1.0);
        let l = r.latency_ms.unwrap();
        // Percentiles are exact to the histogram's 3 significant digits.
        for (got, want) in [
            (l.min, 1.0),
            (l.p50, 50.0),
            (l.p90, 90.0),
            (l.p99, 99.0),
            (l.max, 100.0),
        ] {
            assert!(close(got, want), "{got} vs {want}");
        }
        assert_eq!(l.mean, 50.5, "the mean is from the exact sum");
        // 100 sends over 0..990 ms: 99 intervals in 0.99 s.
        assert_eq!(r.rate, 100.0);
        assert_eq!(r.status_codes["200"], 100);
        assert_eq!(r.versions["3"].requests, 100);
        assert_eq!(r.versions["3"].share, 1.0);
    }

    #[test]
    fn with_an_expected_status_any_other_is_a_failure_even_a_2xx() {
        // A PUT answers 204 when it stored the date; a 200 is a route that did something else.
        let mut s = Stats::new(10.0).expecting(204);
        s.record(&answer(0, ms(0), ms(5), 204, Some("3")));
        s.record(&answer(1, ms(100), ms(5), 200, Some("4")));
        s.record(&answer(2, ms(200), ms(5), 204, Some("4")));
        let r = s.report();
        assert_eq!(r.expect_status, Some(204));
        assert_eq!(r.versions["3"].success, 1.0);
        assert_eq!(r.versions["4"].success, 0.5);
        assert_eq!(r.errors["http 200"], 1);
        assert!(r.text().contains("(expected status 204)"), "{}", r.text());
        assert!(!s.samples()[1].success);
        // Without one, 2xx and 3xx pass as before.
        let mut s = Stats::new(10.0);
        s.record(&answer(0, ms(0), ms(5), 200, Some("3")));
        assert_eq!(s.report().success, 1.0);
        assert_eq!(s.report().expect_status, None);
    }

    #[test]
    fn failures_are_counted_by_kind_and_overflow_has_no_latency() {
        let mut s = Stats::new(10.0);
        s.record(&answer(0, ms(0), ms(5), 200, Some("3")));
        s.record(&answer(1, ms(100), ms(5), 502, None));
        s.record(&answer(2, ms(200), ms(5), 500, Some("4")));
        s.record(&Outcome {
            seq: 3,
            scheduled: ms(300),
            sent: Some(ms(300)),
            latency: ms(2000),
            result: Err(Failure::Timeout),
        });
        s.record(&Outcome {
            seq: 4,
            scheduled: ms(400),
            sent: None,
            latency: Duration::ZERO,
            result: Err(Failure::Overflow),
        });
        let r = s.report();
        assert_eq!(r.requests, 5);
        assert_eq!(r.sent, 4);
        assert_eq!(r.success, 0.2);
        let errors: Vec<(&str, u64)> = r.errors.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        assert_eq!(
            errors,
            [
                ("http 500", 1),
                ("http 502", 1),
                ("overflow", 1),
                ("timeout", 1)
            ]
        );
        assert!(close(r.latency_ms.unwrap().max, 2000.0));
        assert_eq!(s.samples().len(), 4, "the overflow is not plotted");
        assert_eq!(r.unattributed.requests, 3);
        assert_eq!(r.versions["4"].success, 0.0);
        assert_eq!(s.counts()["4"], (1, 0));
    }

    #[test]
    fn a_split_as_configured_is_within_its_interval() {
        let mut s = Stats::new(100.0);
        s.split_from(Duration::ZERO, split(&[("3", 0.9), ("4", 0.1)]));
        for i in 0..1000u64 {
            let v = if i % 10 == 0 { "4" } else { "3" };
            s.record(&answer(i, ms(i), ms(1), 200, Some(v)));
        }
        let r = s.report();
        let c = &r.versions["4"];
        assert_eq!(
            (c.requests, c.share, c.expected_share),
            (100, 0.1, Some(0.1))
        );
        assert!(
            c.share_ci[0] < 0.1 && 0.1 < c.share_ci[1],
            "{:?}",
            c.share_ci
        );
        assert_eq!(c.within_interval, Some(true));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn a_split_outside_its_interval_is_called_out() {
        let mut s = Stats::new(100.0);
        s.split_from(Duration::ZERO, split(&[("3", 0.9), ("4", 0.1)]));
        // The candidate gets 25%, not 10%.
        for i in 0..1000u64 {
            let v = if i % 4 == 0 { "4" } else { "3" };
            s.record(&answer(i, ms(i), ms(1), 200, Some(v)));
        }
        let r = s.report();
        assert_eq!(r.versions["4"].within_interval, Some(false));
        assert_eq!(r.versions["3"].within_interval, Some(false));
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("version 4 served 25.00%")
                    && w.contains("alias gives it 10.00%")),
            "{:?}",
            r.warnings
        );
        assert!(r.text().contains("10.00%!"), "{}", r.text());
    }

    #[test]
    fn a_version_the_alias_does_not_route_is_called_out() {
        let mut s = Stats::new(10.0);
        s.split_from(Duration::ZERO, split(&[("3", 1.0)]));
        for i in 0..50u64 {
            s.record(&answer(
                i,
                ms(i),
                ms(1),
                200,
                Some(if i == 7 { "9" } else { "3" }),
            ));
        }
        let r = s.report();
        assert_eq!(r.versions["9"].expected_share, Some(0.0));
        assert_eq!(r.versions["9"].within_interval, Some(false));
    }

    #[test]
    fn the_expected_share_follows_weight_changes() {
        let mut s = Stats::new(10.0);
        s.split_from(Duration::ZERO, split(&[("3", 0.9), ("4", 0.1)]));
        s.split_from(ms(1000), split(&[("3", 0.9), ("4", 0.1)])); // same: ignored
        s.split_from(ms(5000), split(&[("3", 0.5), ("4", 0.5)]));
        assert_eq!(s.splits().len(), 2);
        // 50 answers under 10%, 50 under 50%: 30% expected overall.
        for i in 0..100u64 {
            s.record(&answer(i, ms(i * 100), ms(1), 200, Some("3")));
        }
        assert_eq!(s.report().versions["4"].expected_share, Some(0.3));
    }

    #[test]
    fn unattributed_answers_are_estimated_from_the_split_with_an_interval() {
        let mut s = Stats::new(10.0);
        s.split_from(Duration::ZERO, split(&[("3", 0.9), ("4", 0.1)]));
        for i in 0..100u64 {
            s.record(&answer(i, ms(i), ms(1), 502, None));
        }
        let r = s.report();
        assert_eq!(r.unattributed.requests, 100);
        let e = r.versions["4"].unattributed_estimate.clone().unwrap();
        assert!(e.estimated);
        assert_eq!(e.requests, 10.0);
        // 10 ± 2.576 * sqrt(100 * 0.1 * 0.9) = 10 ± 7.73
        assert_eq!(e.interval, [2.273, 17.727]);
        assert_eq!(r.versions["4"].requests, 0);
        assert!(
            r.text().contains("estimated from the split"),
            "{}",
            r.text()
        );
    }

    #[test]
    fn a_candidate_crashing_without_a_name_is_charged_its_missing_answers_not_its_weight() {
        // 2,000 answers at a 10% split: the stable version answers its 1,800, the candidate
        // 160 of its 200 and crashes on 40 with a 502 that names no version.
        let mut s = Stats::new(200.0);
        s.split_from(Duration::ZERO, split(&[("3", 0.9), ("4", 0.1)]));
        for i in 0..2000u64 {
            // Five in fifty to the candidate, one of them a crash.
            let (status, v) = match i % 50 {
                0..4 => (200, Some("4")),
                4 => (502, None),
                _ => (200, Some("3")),
            };
            s.record(&answer(i, ms(i), ms(1), status, v));
        }
        let r = s.report();
        assert_eq!(
            (r.versions["4"].requests, r.unattributed.requests),
            (160, 40)
        );
        let c = r.versions["4"].unattributed_estimate.clone().unwrap();
        // Due 200 (10% of 2,000) less 160 answered: all 40, not 4 (10% of the 40).
        assert_eq!(c.requests, 40.0);
        // 40 ± 2.576 * sqrt(2000 * 0.1 * 0.9) = 40 ± 34.56, at most the 40 there are.
        assert_eq!(c.interval, [5.442, 40.0]);
        assert_eq!(r.versions["4"].success, 1.0);
        assert_eq!(r.versions["4"].success_estimated, Some(0.8));
        // The stable version was due 1,800 and answered 1,800: none of them are its own.
        assert_eq!(
            r.versions["3"]
                .unattributed_estimate
                .clone()
                .unwrap()
                .requests,
            0.0
        );
        assert_eq!(r.versions["3"].success_estimated, None);
        let text = r.text();
        let row = text.lines().find(|l| l.starts_with("  4 ")).unwrap();
        assert!(
            row.contains("~80.00%") && !row.contains("100.00%"),
            "{text}"
        );
        assert!(text.contains("4 ~40.0 [5.4, 40.0]"), "{text}");
    }

    #[test]
    fn the_attribution_is_due_less_answered_clamped_to_the_unattributed() {
        let a = attribute_unattributed(200.0, 180.0, 160, 41, 2.0);
        assert_eq!((a.estimate, a.low), (40.0, 40.0 - 2.0 * 180f64.sqrt()));
        assert_eq!(a.high, 41.0);
        let none = attribute_unattributed(1800.0, 180.0, 1840, 41, 2.0);
        assert_eq!((none.estimate, none.low, none.high), (0.0, 0.0, 0.0));
    }

    #[test]
    fn unattributed_answers_without_a_split_are_said_to_be_unexplained() {
        let mut s = Stats::new(10.0);
        s.record(&answer(0, ms(0), ms(1), 502, None));
        let r = s.report();
        assert!(r.warnings[0].contains("no alias split"), "{:?}", r.warnings);
    }

    #[test]
    fn versions_sort_numerically() {
        let mut s = Stats::new(10.0);
        for (i, v) in ["10", "9", "local"].iter().enumerate() {
            s.record(&answer(i as u64, ms(0), ms(1), 200, Some(v)));
        }
        let text = s.report().text();
        let order: Vec<&str> = text
            .lines()
            .filter_map(|l| {
                let w = l.split_whitespace().next()?;
                ["9", "10", "local"].contains(&w).then_some(w)
            })
            .collect();
        assert_eq!(order, ["9", "10", "local"]);
    }
}
