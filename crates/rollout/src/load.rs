//! Reading `environments/`: `project.json` plus one `<stage>.json` per stage, each checked
//! against its schema (`validate`), then decoded into the plain data of `spec` and held to
//! the rules across fields. The only I/O of this crate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ConfigError, field};
use crate::judge::LatencyStatistic;
use crate::spec::{
    Alarm, AlarmKind, Analysis, Engine, Environments, FunctionSpec, Hooks, OnNoEvidence,
    OnUnreadable, Probe, ProbeRequest, Project, SourceKind, Stage, Strategy, Trigger, UploadProbe,
};
use crate::validate::{self, Schema};

impl Environments {
    /// The directory, or its first problem.
    pub fn load(dir: impl AsRef<Path>) -> Result<Environments, ConfigError> {
        Environments::check(dir).map_err(|mut problems| problems.swap_remove(0))
    }

    /// The directory, or every problem found in it (at least one): every file's schema
    /// violations, each file's first problem across its fields, then the directory's rules
    /// once every file is sound. What `promote check` reports.
    pub fn check(dir: impl AsRef<Path>) -> Result<Environments, Vec<ConfigError>> {
        let dir = dir.as_ref().to_path_buf();
        let files = list(&dir).map_err(|e| vec![e])?;
        let project_path = dir.join("project.json");
        if !project_path.is_file() {
            return Err(vec![ConfigError::Layout {
                dir,
                message: "no project.json (functions, rest_api_name, stage_variable, region); is --environments pointing at the environments directory?".into(),
            }]);
        }
        let mut problems = Vec::new();
        let project = parse_project(&project_path)
            .map_err(|e| problems.extend(e))
            .ok();
        let mut stages = Vec::new();
        for (name, path) in files {
            match parse_stage(&name, &path) {
                Ok(s) => stages.push(s),
                Err(e) => problems.extend(e),
            }
        }
        let (Some(project), true) = (project, problems.is_empty()) else {
            return Err(problems);
        };
        let stages = validate::order_stages(&dir, stages).map_err(|e| vec![e])?;
        validate::unique_alarm_names(&stages).map_err(|e| vec![e])?;
        Ok(Environments {
            dir,
            project,
            stages,
        })
    }
}

/// The stage files of `dir` by name (file stem), in name order.
fn list(dir: &Path) -> Result<BTreeMap<String, PathBuf>, ConfigError> {
    let io = |source| ConfigError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut stage_files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") || !path.is_file() {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if stem != "project" {
            stage_files.insert(stem, path);
        }
    }
    Ok(stage_files)
}

/// The file as JSON, checked against its schema.
fn read(path: &Path, schema: Schema) -> Result<Value, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        vec![ConfigError::Io {
            path: path.to_path_buf(),
            source,
        }]
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        vec![ConfigError::File {
            path: path.to_path_buf(),
            message: format!("not valid JSON: {e}"),
        }]
    })?;
    let problems = validate::against_schema(path, &value, schema);
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(problems)
    }
}

/// Decodes a value the schema accepted. The types mirror the schema, so an error here
/// means the two disagree; it still names the field.
fn decode<T: for<'de> Deserialize<'de>>(path: &Path, value: Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let at = e.path().to_string();
        field(path, at, e.into_inner().to_string())
    })
}

#[derive(Deserialize)]
struct RawProject {
    functions: Vec<RawFunction>,
    rest_api_name: String,
    stage_variable: String,
    region: String,
    #[serde(default)]
    binary_media_types: Vec<String>,
}

#[derive(Deserialize)]
struct RawFunction {
    name: String,
    package: String,
    routes: Vec<String>,
    #[serde(default)]
    buckets: Vec<String>,
    #[serde(default)]
    trigger: Option<RawTrigger>,
    probe: RawProbe,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RawTrigger {
    S3 { bucket: String },
}

/// The schema tells the two probe shapes apart by `type` (absent or `http`, or `upload`),
/// so the fields here are the union and each shape reads its own.
#[derive(Deserialize)]
struct RawProbe {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    method: Option<String>,
    path: Option<String>,
    body: Option<String>,
    body_base64: Option<String>,
    content_type: Option<String>,
    expect_status: Option<u16>,
    bucket: Option<String>,
    prefix: Option<String>,
    summaries: Option<String>,
    deadline_seconds: Option<u64>,
}

fn probe(path: &Path, i: usize, p: RawProbe) -> Result<Probe, ConfigError> {
    // Each `expect` names a field the schema requires of this shape.
    let at = |f: &str| format!("functions[{i}].probe.{f}");
    let expect = |v: Option<String>, f: &str| {
        v.ok_or_else(|| field(path, at(f), "is missing (the schema requires it)"))
    };
    if p.kind.as_deref() == Some("upload") {
        return Ok(Probe::Upload(UploadProbe {
            bucket: expect(p.bucket, "bucket")?,
            prefix: expect(p.prefix, "prefix")?,
            summaries: expect(p.summaries, "summaries")?,
            deadline_seconds: p.deadline_seconds.unwrap_or(10),
        }));
    }
    let body = match (p.body, p.body_base64) {
        (Some(text), _) => Some(text.into_bytes()),
        (None, Some(b64)) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| {
                    field(
                        path,
                        at("body_base64"),
                        format!("is not base64 ({e}); encode the body with `base64 -w0`"),
                    )
                })?,
        ),
        (None, None) => None,
    };
    Ok(Probe::Http(ProbeRequest {
        method: expect(p.method, "method")?,
        path: expect(p.path, "path")?,
        body,
        content_type: p.content_type,
        expect_status: p
            .expect_status
            .ok_or_else(|| field(path, at("expect_status"), "is missing"))?,
    }))
}

fn parse_project(path: &Path) -> Result<Project, Vec<ConfigError>> {
    let raw: RawProject = decode(path, read(path, Schema::Project)?).map_err(|e| vec![e])?;
    let functions: Vec<FunctionSpec> = raw
        .functions
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            Ok(FunctionSpec {
                name: f.name,
                package: f.package,
                routes: f.routes,
                buckets: f.buckets,
                trigger: f.trigger.map(|t| match t {
                    RawTrigger::S3 { bucket } => Trigger::S3 { bucket },
                }),
                probe: probe(path, i, f.probe)?,
            })
        })
        .collect::<Result<_, ConfigError>>()
        .map_err(|e| vec![e])?;
    validate::functions(path, &functions).map_err(|e| vec![e])?;
    Ok(Project {
        functions,
        rest_api_name: raw.rest_api_name,
        stage_variable: raw.stage_variable,
        region: raw.region,
        binary_media_types: raw.binary_media_types,
    })
}

#[derive(Deserialize)]
struct RawStage {
    upstream: Option<String>,
    strategy: RawStrategy,
    poll_interval_seconds: u64,
    #[serde(default)]
    insufficient_data_is_failure: bool,
    #[serde(default)]
    approval_required: bool,
    #[serde(default)]
    analysis: Option<RawAnalysis>,
    #[serde(default)]
    test_fixture_short_bakes: bool,
    alarms: Vec<RawAlarm>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum StrategyType {
    AllAtOnce,
    Canary,
}

#[derive(Deserialize)]
struct RawStrategy {
    #[serde(rename = "type")]
    kind: StrategyType,
    bake_seconds: Option<u64>,
    steps: Option<Vec<RawStep>>,
    #[serde(default)]
    engine: Engine,
    #[serde(default)]
    hooks: Hooks,
}

#[derive(Deserialize)]
struct RawStep {
    weight: f64,
    bake_seconds: u64,
}

// Defaults as the schema documents them (held equal by a test).
#[derive(Deserialize)]
struct RawAlarm {
    name: String,
    kind: AlarmKind,
    threshold: f64,
    #[serde(default = "default_period")]
    period_seconds: u32,
    #[serde(default = "default_evaluation_periods")]
    evaluation_periods: u32,
}

fn default_period() -> u32 {
    60
}
fn default_evaluation_periods() -> u32 {
    1
}

#[derive(Deserialize)]
struct RawAnalysis {
    sources: Option<Vec<SourceKind>>,
    period_seconds: Option<u32>,
    min_requests: Option<u64>,
    confidence: Option<f64>,
    max_error_rate: Option<f64>,
    latency_tolerance: Option<f64>,
    latency_statistic: Option<RawLatencyStatistic>,
    max_extension_seconds: Option<u64>,
    on_no_evidence: Option<OnNoEvidence>,
    judge_relative: Option<bool>,
    probe_rate: Option<f64>,
    on_unreadable: Option<OnUnreadable>,
    max_read_failures: Option<u32>,
    early_pass: Option<bool>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawLatencyStatistic {
    P99,
    Mean,
}

fn parse_stage(name: &str, path: &Path) -> Result<Stage, Vec<ConfigError>> {
    validate::stage_file_name(path, name).map_err(|e| vec![e])?;
    let value = read(path, Schema::Stage)?;
    stage_of(name, path, value).map_err(|e| vec![e])
}

/// A stage from its schema-valid JSON, held to the rules across its fields.
fn stage_of(name: &str, path: &Path, value: Value) -> Result<Stage, ConfigError> {
    let raw: RawStage = decode(path, value)?;
    validate::upstream(path, name, raw.upstream.as_deref())?;
    let steps = raw
        .strategy
        .steps
        .map(|s| s.iter().map(|s| (s.weight, s.bake_seconds)).collect());
    let strategy = validate::strategy(
        path,
        matches!(raw.strategy.kind, StrategyType::Canary),
        raw.strategy.bake_seconds,
        steps,
    )?;
    let alarms: Vec<Alarm> = raw
        .alarms
        .into_iter()
        .map(|a| Alarm {
            name: a.name,
            kind: a.kind,
            threshold: a.threshold,
            period_seconds: a.period_seconds,
            evaluation_periods: a.evaluation_periods,
        })
        .collect();
    validate::alarms_listed_once(path, &alarms)?;
    validate::rate_thresholds_are_fractions(path, &alarms)?;
    if !raw.test_fixture_short_bakes {
        validate::bakes_cover_alarm_windows(path, &strategy, &alarms)?;
    }
    validate::engine(path, raw.strategy.engine, &raw.strategy.hooks, &strategy)?;
    let analysis = analysis_of(raw.analysis, &strategy);
    validate::analysis(path, &analysis)?;
    Ok(Stage {
        name: name.to_string(),
        upstream: raw.upstream,
        strategy,
        poll_interval: Duration::from_secs(raw.poll_interval_seconds),
        insufficient_data_is_failure: raw.insufficient_data_is_failure,
        approval_required: raw.approval_required,
        analysis,
        engine: raw.strategy.engine,
        hooks: raw.strategy.hooks,
        alarms,
        path: path.to_path_buf(),
    })
}

/// The strategy's defaults, overridden by what the block sets.
fn analysis_of(raw: Option<RawAnalysis>, strategy: &Strategy) -> Analysis {
    let mut a = Analysis::default_for(strategy);
    let Some(raw) = raw else {
        return a;
    };
    let c = &mut a.criteria;
    a.sources = raw.sources.unwrap_or(a.sources);
    a.period_seconds = raw.period_seconds.unwrap_or(a.period_seconds);
    c.min_requests = raw.min_requests.unwrap_or(c.min_requests);
    c.confidence = raw.confidence.unwrap_or(c.confidence);
    c.max_error_rate = raw.max_error_rate.unwrap_or(c.max_error_rate);
    c.latency_tolerance = raw.latency_tolerance.unwrap_or(c.latency_tolerance);
    if let Some(s) = raw.latency_statistic {
        c.latency_statistic = match s {
            RawLatencyStatistic::P99 => LatencyStatistic::P99,
            RawLatencyStatistic::Mean => LatencyStatistic::Mean,
        };
    }
    if let Some(secs) = raw.max_extension_seconds {
        a.max_extension = Duration::from_secs(secs);
    }
    a.on_no_evidence = raw.on_no_evidence.unwrap_or(a.on_no_evidence);
    a.judge_relative = raw.judge_relative.unwrap_or(a.judge_relative);
    a.probe_rate = raw.probe_rate.unwrap_or(a.probe_rate);
    a.on_unreadable = raw.on_unreadable.unwrap_or(a.on_unreadable);
    a.max_read_failures = raw.max_read_failures.unwrap_or(a.max_read_failures);
    a.early_pass = raw.early_pass.unwrap_or(a.early_pass);
    a
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "load_analysis_tests.rs"]
mod analysis_tests;
