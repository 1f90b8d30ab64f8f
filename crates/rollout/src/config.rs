//! The `environments/` directory: `project.json` plus one `<stage>.json` per stage.
//!
//! The same files feed Terraform, so the rules here follow `environments/schema/`. Every
//! error names the file, the field (as a path such as `strategy.steps[1].weight`) and what
//! is wrong, because the person reading it is about to open that file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::codedeploy::{Engine, Hooks, deployment_config};
use crate::judge::{Criteria, LatencyStatistic};
use crate::weight::Weight;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: field `{field}`: {message}")]
    Field {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{dir}: {message}")]
    Layout { dir: PathBuf, message: String },
    #[error("unknown stage `{name}`; the stages in {dir} are: {}", known.join(", "))]
    UnknownStage {
        name: String,
        dir: PathBuf,
        known: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub function_name: String,
    pub rest_api_name: String,
    pub stage_variable: String,
    pub region: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    LambdaErrors,
    LambdaThrottles,
    #[serde(rename = "api_5xx_rate")]
    Api5xxRate,
    ApiP99Latency,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub name: String,
    pub kind: AlarmKind,
    pub threshold: f64,
    pub period_seconds: u32,
    pub evaluation_periods: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Candidate's share after this step; 100% means the promotion completes.
    pub weight: Weight,
    pub bake: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    AllAtOnce {
        bake: Duration,
    },
    /// Strictly increasing weights, the last one 100%.
    Canary {
        steps: Vec<Step>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    pub upstream: Option<String>,
    pub strategy: Strategy,
    pub poll_interval: Duration,
    pub insufficient_data_is_failure: bool,
    pub approval_required: bool,
    pub alarms: Vec<Alarm>,
    /// How a bake judges the candidate (the `analysis` block, or its defaults).
    pub analysis: Analysis,
    /// Who shifts the alias: `promote` itself, or CodeDeploy (`strategy.engine`).
    pub engine: Engine,
    /// CodeDeploy lifecycle hooks (`strategy.hooks`; only with the CodeDeploy engine).
    pub hooks: Hooks,
    /// Where it was read from, for messages.
    pub path: PathBuf,
}

impl Stage {
    pub fn alarm_names(&self) -> Vec<String> {
        self.alarms.iter().map(|a| a.name.clone()).collect()
    }

    /// The alarm that needs the most data before it can fire, and how much
    /// (`period_seconds` x `evaluation_periods`): a bake shorter than that ends unjudged.
    pub fn slowest_alarm(&self) -> Option<(&Alarm, Duration)> {
        slowest_alarm(&self.alarms)
    }
}

fn slowest_alarm(alarms: &[Alarm]) -> Option<(&Alarm, Duration)> {
    alarms
        .iter()
        .map(|a| {
            let window = u64::from(a.period_seconds) * u64::from(a.evaluation_periods);
            (a, Duration::from_secs(window))
        })
        .max_by_key(|(_, w)| *w)
}

/// The whole directory, validated, with stages in path order (first stage first).
#[derive(Debug, Clone)]
pub struct Environments {
    pub dir: PathBuf,
    pub project: Project,
    pub stages: Vec<Stage>,
}

impl Environments {
    pub fn load(dir: impl AsRef<Path>) -> Result<Environments, ConfigError> {
        let dir = dir.as_ref().to_path_buf();
        let entries = std::fs::read_dir(&dir).map_err(|source| ConfigError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut stage_files = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(|source| ConfigError::Io {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
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
        let project_path = dir.join("project.json");
        if !project_path.is_file() {
            return Err(ConfigError::Layout {
                dir,
                message: "no project.json (function_name, rest_api_name, stage_variable, region); is --environments pointing at the environments directory?".into(),
            });
        }
        let project = parse_project(&project_path, &read(&project_path)?)?;
        let mut stages = Vec::new();
        for (name, path) in stage_files {
            stages.push(parse_stage(&name, &path, &read(&path)?)?);
        }
        let stages = order_stages(&dir, stages)?;
        unique_alarm_names(&stages)?;
        Ok(Environments {
            dir,
            project,
            stages,
        })
    }

    pub fn stage(&self, name: &str) -> Result<&Stage, ConfigError> {
        self.stages
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| ConfigError::UnknownStage {
                name: name.to_string(),
                dir: self.dir.clone(),
                known: self.stage_names(),
            })
    }

    pub fn stage_names(&self) -> Vec<String> {
        self.stages.iter().map(|s| s.name.clone()).collect()
    }

    pub fn upstream_of(&self, stage: &Stage) -> Option<&Stage> {
        let up = stage.upstream.as_deref()?;
        self.stages.iter().find(|s| s.name == up)
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn field(path: &Path, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        path: path.to_path_buf(),
        field: field.into(),
        message: message.into(),
    }
}

/// Deserializes with the failing field's path in the error.
fn decode<T: for<'de> Deserialize<'de>>(path: &Path, text: &str) -> Result<T, ConfigError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        let message = format!("{inner}");
        if at == "." || at.is_empty() {
            ConfigError::File {
                path: path.to_path_buf(),
                message,
            }
        } else {
            ConfigError::Field {
                path: path.to_path_buf(),
                field: at,
                message,
            }
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    #[serde(rename = "$schema")]
    _schema: Option<String>,
    function_name: String,
    rest_api_name: String,
    stage_variable: String,
    region: String,
}

fn parse_project(path: &Path, text: &str) -> Result<Project, ConfigError> {
    let raw: RawProject = decode(path, text)?;
    let ok_chars = |s: &str, extra: &[u8]| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    };
    if raw.function_name.is_empty()
        || raw.function_name.len() > 64
        || !ok_chars(&raw.function_name, b"-_")
    {
        return Err(field(
            path,
            "function_name",
            format!(
                "`{}` is not a Lambda function name (1-64 of A-Z a-z 0-9 - _)",
                raw.function_name
            ),
        ));
    }
    if raw.rest_api_name.is_empty() || raw.rest_api_name.len() > 128 {
        return Err(field(path, "rest_api_name", "must be 1 to 128 characters"));
    }
    if raw.stage_variable.is_empty()
        || raw.stage_variable.len() > 64
        || !ok_chars(&raw.stage_variable, b"_")
    {
        return Err(field(
            path,
            "stage_variable",
            format!(
                "`{}` is not a stage variable name (1-64 of A-Z a-z 0-9 _)",
                raw.stage_variable
            ),
        ));
    }
    let parts: Vec<&str> = raw.region.split('-').collect();
    let region_ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].len() == 1
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit());
    if !region_ok {
        return Err(field(
            path,
            "region",
            format!("`{}` is not an AWS region such as eu-west-2", raw.region),
        ));
    }
    Ok(Project {
        function_name: raw.function_name,
        rest_api_name: raw.rest_api_name,
        stage_variable: raw.stage_variable,
        region: raw.region,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    #[serde(rename = "$schema")]
    _schema: Option<String>,
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
    throttling: RawThrottling,
    log_retention_days: u32,
    #[serde(default, rename = "xray_tracing")]
    _xray_tracing: Option<bool>,
}

// Terraform's fields are checked here too: the file is one source of truth and a typo in
// it should fail before anyone deploys, whichever tool reads it first.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThrottling {
    rate_limit: f64,
    burst_limit: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum StrategyType {
    AllAtOnce,
    Canary,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStrategy {
    #[serde(rename = "type")]
    kind: StrategyType,
    bake_seconds: Option<u64>,
    steps: Option<Vec<RawStep>>,
    #[serde(default)]
    engine: Option<Engine>,
    #[serde(default)]
    hooks: Option<Hooks>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    weight: f64,
    bake_seconds: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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

const MAX_BAKE_SECONDS: u64 = 86_400;
const LOG_RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
const ALARM_PERIODS: [u32; 6] = [10, 30, 60, 300, 900, 3600];

pub(crate) fn valid_stage_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 64
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn parse_stage(name: &str, path: &Path, text: &str) -> Result<Stage, ConfigError> {
    if !valid_stage_name(name) {
        return Err(ConfigError::File {
            path: path.to_path_buf(),
            message: format!(
                "`{name}` is not a valid stage name (the file name is the stage, API Gateway stage and alias name: a lowercase letter, then up to 63 of a-z 0-9 _)"
            ),
        });
    }
    let raw: RawStage = decode(path, text)?;
    if let Some(up) = &raw.upstream {
        if up == name {
            return Err(field(
                path,
                "upstream",
                format!("stage `{name}` cannot be its own upstream"),
            ));
        }
        if !valid_stage_name(up) {
            return Err(field(
                path,
                "upstream",
                format!("`{up}` is not a valid stage name"),
            ));
        }
    }
    let bake = |at: &str, secs: u64| {
        if secs > MAX_BAKE_SECONDS {
            Err(field(
                path,
                at,
                format!("{secs} is more than the maximum of {MAX_BAKE_SECONDS} seconds (one day)"),
            ))
        } else {
            Ok(Duration::from_secs(secs))
        }
    };
    let strategy = match raw.strategy.kind {
        StrategyType::AllAtOnce => {
            if raw.strategy.steps.is_some() {
                return Err(field(
                    path,
                    "strategy.steps",
                    "only a canary strategy has steps; remove them or set \"type\": \"canary\"",
                ));
            }
            Strategy::AllAtOnce {
                bake: bake(
                    "strategy.bake_seconds",
                    raw.strategy.bake_seconds.unwrap_or(0),
                )?,
            }
        }
        StrategyType::Canary => {
            if raw.strategy.bake_seconds.is_some() {
                return Err(field(
                    path,
                    "strategy.bake_seconds",
                    "a canary strategy sets bake_seconds on each step, not on the strategy",
                ));
            }
            let Some(raw_steps) = raw.strategy.steps else {
                return Err(field(
                    path,
                    "strategy.steps",
                    "a canary strategy needs steps, e.g. [{\"weight\": 10, \"bake_seconds\": 300}, {\"weight\": 100, \"bake_seconds\": 0}]",
                ));
            };
            if raw_steps.is_empty() {
                return Err(field(
                    path,
                    "strategy.steps",
                    "must list at least one step; the last one has weight 100",
                ));
            }
            let mut steps: Vec<Step> = Vec::with_capacity(raw_steps.len());
            for (i, s) in raw_steps.iter().enumerate() {
                let at = format!("strategy.steps[{i}].weight");
                let weight = Weight::from_percent_f64(s.weight)
                    .map_err(|e| field(path, &at, e.to_string()))?;
                if let Some(prev) = steps.last()
                    && weight <= prev.weight
                {
                    return Err(field(
                        path,
                        &at,
                        format!(
                            "{weight} does not increase on the previous step's {}; weights must be strictly increasing",
                            prev.weight
                        ),
                    ));
                }
                steps.push(Step {
                    weight,
                    bake: bake(&format!("strategy.steps[{i}].bake_seconds"), s.bake_seconds)?,
                });
            }
            let last = steps.len() - 1;
            if !steps[last].weight.is_full() {
                return Err(field(
                    path,
                    format!("strategy.steps[{last}].weight"),
                    format!(
                        "the last step must be 100 (the candidate takes all traffic), not {}",
                        steps[last].weight
                    ),
                ));
            }
            Strategy::Canary { steps }
        }
    };
    if !(1..=60).contains(&raw.poll_interval_seconds) {
        return Err(field(
            path,
            "poll_interval_seconds",
            format!("{} is outside 1..=60 seconds", raw.poll_interval_seconds),
        ));
    }
    let mut alarms: Vec<Alarm> = Vec::with_capacity(raw.alarms.len());
    for (i, a) in raw.alarms.into_iter().enumerate() {
        let at = |f: &str| format!("alarms[{i}].{f}");
        let name_ok = !a.name.is_empty()
            && a.name.len() <= 255
            && a.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !name_ok {
            return Err(field(
                path,
                at("name"),
                format!(
                    "`{}` is not a valid alarm name (1-255 of A-Z a-z 0-9 . _ -)",
                    a.name
                ),
            ));
        }
        if alarms.iter().any(|b| b.name == a.name) {
            return Err(field(
                path,
                at("name"),
                format!("alarm `{}` is listed twice", a.name),
            ));
        }
        if !a.threshold.is_finite() || a.threshold < 0.0 {
            return Err(field(
                path,
                at("threshold"),
                format!("{} must be a number of at least 0", a.threshold),
            ));
        }
        if !ALARM_PERIODS.contains(&a.period_seconds) {
            return Err(field(
                path,
                at("period_seconds"),
                format!("{} is not one of {ALARM_PERIODS:?}", a.period_seconds),
            ));
        }
        if !(1..=100).contains(&a.evaluation_periods) {
            return Err(field(
                path,
                at("evaluation_periods"),
                format!("{} is outside 1..=100", a.evaluation_periods),
            ));
        }
        alarms.push(Alarm {
            name: a.name,
            kind: a.kind,
            threshold: a.threshold,
            period_seconds: a.period_seconds,
            evaluation_periods: a.evaluation_periods,
        });
    }
    if !raw.test_fixture_short_bakes {
        bakes_cover_alarm_windows(path, &strategy, &alarms)?;
    }
    if !raw.throttling.rate_limit.is_finite() || raw.throttling.rate_limit <= 0.0 {
        return Err(field(
            path,
            "throttling.rate_limit",
            "must be greater than 0",
        ));
    }
    if raw.throttling.burst_limit < 1 {
        return Err(field(path, "throttling.burst_limit", "must be at least 1"));
    }
    if !LOG_RETENTION_DAYS.contains(&raw.log_retention_days) {
        return Err(field(
            path,
            "log_retention_days",
            format!(
                "{} is not a CloudWatch Logs retention; use one of {LOG_RETENTION_DAYS:?}",
                raw.log_retention_days
            ),
        ));
    }
    let (engine, hooks) = check_engine(path, raw.strategy.engine, raw.strategy.hooks, &strategy)?;
    let analysis = parse_analysis(path, raw.analysis, &strategy)?;
    Ok(Stage {
        name: name.to_string(),
        upstream: raw.upstream,
        strategy,
        poll_interval: Duration::from_secs(raw.poll_interval_seconds),
        insufficient_data_is_failure: raw.insufficient_data_is_failure,
        approval_required: raw.approval_required,
        analysis,
        engine,
        hooks,
        alarms,
        path: path.to_path_buf(),
    })
}

/// A CloudWatch alarm can only fire once it has `evaluation_periods` periods of data, so a
/// bake shorter than that passes before the alarm could have looked. 0 stays allowed: it
/// says "no bake" out loud. Test fixtures that need second-long bakes against real alarm
/// definitions set `"test_fixture_short_bakes": true` in their copy of the stage file.
fn bakes_cover_alarm_windows(
    path: &Path,
    strategy: &Strategy,
    alarms: &[Alarm],
) -> Result<(), ConfigError> {
    let Some((slowest, window)) = slowest_alarm(alarms) else {
        return Ok(());
    };
    let window = window.as_secs();
    let bakes: Vec<(String, Duration)> = match strategy {
        Strategy::AllAtOnce { bake } => vec![("strategy.bake_seconds".into(), *bake)],
        Strategy::Canary { steps } => steps
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("strategy.steps[{i}].bake_seconds"), s.bake))
            .collect(),
    };
    for (at, bake) in bakes {
        let secs = bake.as_secs();
        if secs > 0 && secs < window {
            return Err(field(
                path,
                at,
                format!(
                    "a {secs} s bake ends before alarm `{}` could fire: it needs {} period(s) of {} s = {window} s of data; set bake_seconds to at least {window} (or 0 for no bake), or shorten that alarm's period_seconds x evaluation_periods",
                    slowest.name, slowest.evaluation_periods, slowest.period_seconds,
                ),
            ));
        }
    }
    Ok(())
}

/// `strategy.engine` and `strategy.hooks` (README, "The two engines"). A codedeploy stage is
/// checked as `tools/check_environments.py` checks it, with the same words: its steps must be a
/// plan CodeDeploy can run.
fn check_engine(
    path: &Path,
    engine: Option<Engine>,
    hooks: Option<Hooks>,
    strategy: &Strategy,
) -> Result<(Engine, Hooks), ConfigError> {
    let hooks = hooks.unwrap_or_default();
    let named = [
        ("before_allow_traffic", &hooks.before_allow_traffic),
        ("after_allow_traffic", &hooks.after_allow_traffic),
    ];
    for (at, name) in named {
        if let Some(name) = name
            && (name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(field(
                path,
                format!("strategy.hooks.{at}"),
                format!("`{name}` is not a Lambda function name (1-64 of A-Z a-z 0-9 - _)"),
            ));
        }
    }
    if engine.unwrap_or_default() == Engine::Alias {
        if hooks != Hooks::default() {
            return Err(field(
                path,
                "strategy.hooks",
                "hooks are CodeDeploy lifecycle hooks and the alias engine runs none; set \"engine\": \"codedeploy\" or remove them",
            ));
        }
        return Ok((Engine::Alias, hooks));
    }
    if let Err(e) = deployment_config(strategy) {
        return Err(field(path, e.field, e.message));
    }
    Ok((Engine::CodeDeploy, hooks))
}

/// CloudWatch alarm names are unique per account and region, and every stage's alarms live
/// in the same account: two stages naming one alarm would watch (and Terraform would fight
/// over) a single alarm. Within a file, `parse_stage` already refuses a repeat.
fn unique_alarm_names(stages: &[Stage]) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<&str, &Stage> = BTreeMap::new();
    for stage in stages {
        for (i, alarm) in stage.alarms.iter().enumerate() {
            if let Some(other) = seen.insert(alarm.name.as_str(), stage) {
                let other_file = other
                    .path
                    .file_name()
                    .map_or_else(|| other.name.clone(), |f| f.to_string_lossy().into_owned());
                let example = if alarm.name.contains(other.name.as_str()) {
                    format!(
                        "`{}`",
                        alarm.name.replace(other.name.as_str(), stage.name.as_str())
                    )
                } else {
                    format!("`{}-{}`", stage.name, alarm.name)
                };
                return Err(field(
                    &stage.path,
                    format!("alarms[{i}].name"),
                    format!(
                        "alarm `{}` is also an alarm of stage `{}` ({other_file}); CloudWatch alarm names are unique per account and region, so give each stage its own, e.g. {example}",
                        alarm.name, other.name,
                    ),
                ));
            }
        }
    }
    Ok(())
}

// ---- The `analysis` block: how a bake judges the candidate (README, "Canary analysis"). ----

/// An evidence source a stage's bakes consult.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The stage's CloudWatch alarms (whole alias).
    Alarms,
    /// Lambda's per-version metrics, candidate against stable (`rollout::judge`).
    Metrics,
    /// `promote`'s own open-loop probe of the stage's URL through every bake, each answer
    /// attributed to the version that served it (README, "The probe during a canary").
    Probe,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Alarms => "alarms",
            SourceKind::Metrics => "metrics",
            SourceKind::Probe => "probe",
        }
    }
}

/// What a bake does when it ends (after its extension) without enough evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnNoEvidence {
    /// Leave the split as it is and exit with its own code (6), saying how to go on.
    Hold,
    /// Take the traffic back, as on a fail (exit 4).
    Rollback,
}

/// What a bake does when its evidence stays unreadable for `max_read_failures` polls in a
/// row: the split is never left unwatched without an exit code saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnreadable {
    /// Take the traffic back (exit 4), as CodeDeploy does when it cannot read its alarms.
    Rollback,
    /// Leave the split as it is and exit with the held code (6).
    Hold,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub sources: Vec<SourceKind>,
    /// The metric period: 60 s in AWS, where Lambda publishes per minute.
    pub period_seconds: u32,
    pub criteria: Criteria,
    /// How long a bake that ends without enough evidence keeps watching.
    pub max_extension: Duration,
    pub on_no_evidence: OnNoEvidence,
    pub on_unreadable: OnUnreadable,
    /// Failed reads in a row that make the evidence unreadable.
    pub max_read_failures: u32,
    /// An alarm already firing before the first write does not refuse the rollout; the
    /// metrics judge decides (so that a fix for a bad stable version can ship).
    pub judge_relative: bool,
    /// Requests a second the probe sends through every bake, where `"probe"` is a source
    /// (or `--probe` asks for it).
    pub probe_rate: f64,
}

/// Documented defaults (README, "Canary analysis"; the same in the schema). A canary stage
/// watches its alarms and judges per-version metrics; an all-at-once stage has no stable
/// version serving beside the candidate, so it keeps to its alarms.
pub const DEFAULT_PERIOD_SECONDS: u32 = 60;
pub const DEFAULT_MAX_EXTENSION_SECONDS: u64 = 300;
pub const DEFAULT_MAX_READ_FAILURES: u32 = 3;
/// Ten requests a second: about 1 a second reaches a 10% candidate, so a candidate failing
/// one request in five is judged within tens of seconds, at 36,000 requests an hour.
pub const DEFAULT_PROBE_RATE: f64 = 10.0;
/// A probe is a look at a stage, not a load test.
pub const MAX_PROBE_RATE: f64 = 1000.0;
/// 1, 5, 10 and 30 s are CloudWatch's high-resolution periods; 60 s and its multiples the
/// standard ones (Lambda's own metrics are per minute).
pub const ANALYSIS_PERIODS: [u32; 11] = [1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600];

impl Analysis {
    pub fn default_for(strategy: &Strategy) -> Analysis {
        let sources = match strategy {
            Strategy::Canary { .. } => vec![SourceKind::Alarms, SourceKind::Metrics],
            Strategy::AllAtOnce { .. } => vec![SourceKind::Alarms],
        };
        Analysis {
            sources,
            period_seconds: DEFAULT_PERIOD_SECONDS,
            criteria: Criteria::default(),
            max_extension: Duration::from_secs(DEFAULT_MAX_EXTENSION_SECONDS),
            on_no_evidence: OnNoEvidence::Hold,
            on_unreadable: OnUnreadable::Rollback,
            max_read_failures: DEFAULT_MAX_READ_FAILURES,
            judge_relative: false,
            probe_rate: DEFAULT_PROBE_RATE,
        }
    }

    pub fn uses(&self, source: SourceKind) -> bool {
        self.sources.contains(&source)
    }
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawLatencyStatistic {
    P99,
    Mean,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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
    on_unreadable: Option<OnUnreadable>,
    max_read_failures: Option<u32>,
    judge_relative: Option<bool>,
    probe_rate: Option<f64>,
}

fn parse_analysis(
    path: &Path,
    raw: Option<RawAnalysis>,
    strategy: &Strategy,
) -> Result<Analysis, ConfigError> {
    let mut a = Analysis::default_for(strategy);
    let Some(raw) = raw else {
        return Ok(a);
    };
    let at = |f: &str| format!("analysis.{f}");
    if let Some(sources) = raw.sources {
        if sources.is_empty() {
            return Err(field(
                path,
                at("sources"),
                "must list at least one source: \"alarms\", \"metrics\", \"probe\"",
            ));
        }
        for (i, s) in sources.iter().enumerate() {
            if sources[..i].contains(s) {
                return Err(field(
                    path,
                    format!("analysis.sources[{i}]"),
                    format!("`{}` is listed twice", s.as_str()),
                ));
            }
        }
        a.sources = sources;
    }
    if let Some(p) = raw.period_seconds {
        if !ANALYSIS_PERIODS.contains(&p) {
            return Err(field(
                path,
                at("period_seconds"),
                format!(
                    "{p} is not one of {ANALYSIS_PERIODS:?} (60 in AWS, where Lambda's metrics are per minute)"
                ),
            ));
        }
        a.period_seconds = p;
    }
    if let Some(n) = raw.min_requests {
        if n < 1 {
            return Err(field(path, at("min_requests"), "must be at least 1"));
        }
        a.criteria.min_requests = n;
    }
    if let Some(c) = raw.confidence {
        if !(0.5..1.0).contains(&c) {
            return Err(field(
                path,
                at("confidence"),
                format!(
                    "{c} is outside 0.5 <= confidence < 1 (0.99 fails an identical candidate at most 1% of the time)"
                ),
            ));
        }
        a.criteria.confidence = c;
    }
    if let Some(r) = raw.max_error_rate {
        if !(r > 0.0 && r <= 1.0) {
            return Err(field(
                path,
                at("max_error_rate"),
                format!(
                    "{r} is outside 0 < max_error_rate <= 1 (a fraction: 0.05 is 5%; 1 turns the ceiling off)"
                ),
            ));
        }
        a.criteria.max_error_rate = r;
    }
    if let Some(t) = raw.latency_tolerance {
        if !(t.is_finite() && t >= 0.0) {
            return Err(field(
                path,
                at("latency_tolerance"),
                format!(
                    "{t} must be a fraction of at least 0 (0.5 lets the candidate be 50% slower)"
                ),
            ));
        }
        a.criteria.latency_tolerance = t;
    }
    if let Some(s) = raw.latency_statistic {
        a.criteria.latency_statistic = match s {
            RawLatencyStatistic::P99 => LatencyStatistic::P99,
            RawLatencyStatistic::Mean => LatencyStatistic::Mean,
        };
    }
    if let Some(secs) = raw.max_extension_seconds {
        if secs > MAX_BAKE_SECONDS {
            return Err(field(
                path,
                at("max_extension_seconds"),
                format!("{secs} is more than the maximum of {MAX_BAKE_SECONDS} seconds (one day)"),
            ));
        }
        a.max_extension = Duration::from_secs(secs);
    }
    if let Some(p) = raw.on_no_evidence {
        a.on_no_evidence = p;
    }
    if let Some(p) = raw.on_unreadable {
        a.on_unreadable = p;
    }
    if let Some(n) = raw.max_read_failures {
        if n < 1 {
            return Err(field(path, at("max_read_failures"), "must be at least 1"));
        }
        a.max_read_failures = n;
    }
    if let Some(r) = raw.probe_rate {
        if !(r > 0.0 && r <= MAX_PROBE_RATE) {
            return Err(field(
                path,
                at("probe_rate"),
                format!(
                    "{r} is outside 0 < probe_rate <= {MAX_PROBE_RATE} (requests a second through every bake)"
                ),
            ));
        }
        a.probe_rate = r;
    }
    if let Some(j) = raw.judge_relative {
        a.judge_relative = j;
    }
    if a.judge_relative && !a.uses(SourceKind::Metrics) {
        return Err(field(
            path,
            at("judge_relative"),
            "judging relatively needs the \"metrics\" source (an alarm already firing is then left to the per-version judge); add it to analysis.sources",
        ));
    }
    Ok(a)
}

#[cfg(test)]
#[path = "config_analysis_tests.rs"]
mod analysis_tests;

/// Orders stages along their `upstream` links: one root, a single linear chain.
fn order_stages(dir: &Path, mut stages: Vec<Stage>) -> Result<Vec<Stage>, ConfigError> {
    let layout = |message: String| ConfigError::Layout {
        dir: dir.to_path_buf(),
        message,
    };
    if stages.is_empty() {
        return Err(layout(
            "no stage files (<stage>.json next to project.json)".into(),
        ));
    }
    let names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
    for s in &stages {
        if let Some(up) = &s.upstream
            && !names.contains(up)
        {
            return Err(field(
                &s.path,
                "upstream",
                format!(
                    "`{up}` is not a stage; the stages are: {}",
                    names.join(", ")
                ),
            ));
        }
    }
    let roots: Vec<&str> = stages
        .iter()
        .filter(|s| s.upstream.is_none())
        .map(|s| s.name.as_str())
        .collect();
    match roots.len() {
        1 => {}
        0 => {
            return Err(layout(format!(
                "no stage has \"upstream\": null, so the stages form a cycle ({}); the first stage on the path must have none",
                names.join(", ")
            )));
        }
        _ => {
            return Err(layout(format!(
                "stages {} all have \"upstream\": null; exactly one (the first on the path) may, the others name the stage before them",
                roots.join(", ")
            )));
        }
    }
    for s in &stages {
        let followers: Vec<&str> = stages
            .iter()
            .filter(|t| t.upstream.as_deref() == Some(s.name.as_str()))
            .map(|t| t.name.as_str())
            .collect();
        if followers.len() > 1 {
            return Err(layout(format!(
                "stages {} all follow `{}`; the path must be a single line (each stage has at most one downstream)",
                followers.join(", "),
                s.name
            )));
        }
    }
    let mut ordered = Vec::with_capacity(stages.len());
    let mut current: Option<String> = None;
    while let Some(pos) = stages.iter().position(|s| s.upstream == current) {
        let s = stages.remove(pos);
        current = Some(s.name.clone());
        ordered.push(s);
    }
    if !stages.is_empty() {
        let rest: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
        return Err(layout(format!(
            "stages {} are not reachable from the first stage (their upstream links form a cycle)",
            rest.join(", ")
        )));
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = r#"{"function_name": "app", "rest_api_name": "app", "stage_variable": "lambdaAlias", "region": "eu-west-2"}"#;

    fn stage_json(upstream: Option<&str>, strategy: &str) -> String {
        let up = upstream.map_or("null".to_string(), |u| format!("\"{u}\""));
        format!(
            r#"{{"upstream": {up}, "strategy": {strategy}, "poll_interval_seconds": 5,
               "alarms": [{{"name": "a-errors", "kind": "lambda_errors", "threshold": 1}}],
               "throttling": {{"rate_limit": 10, "burst_limit": 20}}, "log_retention_days": 7}}"#
        )
    }

    const ALL: &str = r#"{"type": "all_at_once", "bake_seconds": 60}"#;
    const CANARY: &str = r#"{"type": "canary", "steps": [{"weight": 10, "bake_seconds": 60}, {"weight": 50, "bake_seconds": 60}, {"weight": 100, "bake_seconds": 0}]}"#;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir_with(files: &[(&str, &str)]) -> Dir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "rollout-config-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&d).unwrap();
        for (name, body) in files {
            std::fs::write(d.join(name), body).unwrap();
        }
        Dir(d)
    }

    /// Gives the stage file's alarm a name of its own, as alarm names are unique across stages.
    fn own_alarm(file: &str, body: String) -> String {
        let stem = file.trim_end_matches(".json");
        body.replace("\"a-errors\"", &format!("\"{stem}-errors\""))
    }

    fn three_stages() -> Vec<(&'static str, String)> {
        vec![
            ("project.json", PROJECT.to_string()),
            (
                "live.json",
                own_alarm("live", stage_json(Some("test"), CANARY)),
            ),
            ("dev.json", own_alarm("dev", stage_json(None, ALL))),
            ("test.json", own_alarm("test", stage_json(Some("dev"), ALL))),
        ]
    }

    fn load(files: &[(&str, String)]) -> Result<Environments, ConfigError> {
        let refs: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
        let d = dir_with(&refs);
        Environments::load(&d.0)
    }

    fn load_err(files: &[(&str, String)]) -> String {
        load(files).unwrap_err().to_string()
    }

    fn with(file: &'static str, body: String) -> Vec<(&'static str, String)> {
        let mut files = three_stages();
        files.retain(|(n, _)| *n != file);
        files.push((file, own_alarm(file, body)));
        files
    }

    #[test]
    fn loads_the_repository_environments() {
        let env =
            Environments::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../environments")).unwrap();
        assert_eq!(env.stage_names(), ["dev", "test", "live"]);
        assert_eq!(env.project.function_name, "app");
        assert_eq!(env.project.stage_variable, "lambdaAlias");
        let live = env.stage("live").unwrap();
        let Strategy::Canary { steps } = &live.strategy else {
            panic!("live is a canary stage")
        };
        assert!(steps.last().unwrap().weight.is_full());
        assert_eq!(env.upstream_of(live).unwrap().name, "test");
        assert!(env.upstream_of(env.stage("dev").unwrap()).is_none());
        assert!(!live.alarms.is_empty());
    }

    #[test]
    fn orders_stages_by_upstream_links_not_file_names() {
        let env = load(&three_stages()).unwrap();
        assert_eq!(env.stage_names(), ["dev", "test", "live"]);
        let live = env.stage("live").unwrap();
        assert_eq!(live.poll_interval, Duration::from_secs(5));
        assert_eq!(live.alarms[0].period_seconds, 60, "default period");
        assert_eq!(
            live.alarms[0].evaluation_periods, 1,
            "default evaluation periods"
        );
        assert_eq!(
            live.strategy,
            Strategy::Canary {
                steps: vec![
                    Step {
                        weight: Weight::parse_percent("10").unwrap(),
                        bake: Duration::from_secs(60)
                    },
                    Step {
                        weight: Weight::parse_percent("50").unwrap(),
                        bake: Duration::from_secs(60)
                    },
                    Step {
                        weight: Weight::FULL,
                        bake: Duration::ZERO
                    },
                ]
            }
        );
        assert_eq!(
            env.stage("test").unwrap().strategy,
            Strategy::AllAtOnce {
                bake: Duration::from_secs(60)
            }
        );
    }

    #[test]
    fn a_bake_shorter_than_an_alarm_window_is_refused() {
        let p99 = r#"{"name": "a-p99", "kind": "api_p99_latency", "threshold": 500, "period_seconds": 60, "evaluation_periods": 3}"#;
        let with_p99 = |strategy: &str| {
            stage_json(Some("test"), strategy).replace(
                r#""threshold": 1}]"#,
                &format!(r#""threshold": 1}}, {p99}]"#),
            )
        };
        let short_last = r#"{"type": "canary", "steps": [{"weight": 10, "bake_seconds": 300}, {"weight": 100, "bake_seconds": 120}]}"#;
        let msg = load_err(&with("live.json", with_p99(short_last)));
        assert!(
            msg.contains("live.json: field `strategy.steps[1].bake_seconds`"),
            "names the file and the step: {msg}"
        );
        assert!(
            msg.contains("a 120 s bake ends before alarm `a-p99` could fire"),
            "names the alarm: {msg}"
        );
        assert!(
            msg.contains("3 period(s) of 60 s = 180 s") && msg.contains("at least 180"),
            "says what would work: {msg}"
        );

        let short_all = with_p99(r#"{"type": "all_at_once", "bake_seconds": 30}"#);
        let msg = load_err(&with("live.json", short_all.clone()));
        assert!(
            msg.contains("field `strategy.bake_seconds`") && msg.contains("a 30 s bake"),
            "{msg}"
        );

        // What works: a bake as long as the window, no bake at all, or a fixture's override.
        let long_enough = r#"{"type": "canary", "steps": [{"weight": 10, "bake_seconds": 180}, {"weight": 100, "bake_seconds": 0}]}"#;
        assert!(load(&with("live.json", with_p99(long_enough))).is_ok());
        let fixture = short_all.replacen(
            r#""poll_interval_seconds""#,
            r#""test_fixture_short_bakes": true, "poll_interval_seconds""#,
            1,
        );
        assert!(load(&with("live.json", fixture)).is_ok());
    }

    #[test]
    fn unknown_stage_lists_the_known_ones() {
        let env = load(&three_stages()).unwrap();
        let msg = env.stage("prod").unwrap_err().to_string();
        assert!(msg.starts_with("unknown stage `prod`"), "{msg}");
        assert!(msg.ends_with("dev, test, live"), "{msg}");
    }

    #[test]
    fn malformed_json_names_the_file_and_position() {
        let msg = load_err(&with("live.json", "{ not json".into()));
        assert!(msg.contains("live.json") && msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn type_errors_name_the_field_path() {
        let body = stage_json(
            Some("test"),
            r#"{"type": "canary", "steps": [{"weight": 10, "bake_seconds": 60}, {"weight": "fifty", "bake_seconds": 60}]}"#,
        );
        let msg = load_err(&with("live.json", body));
        assert!(
            msg.contains("live.json: field `strategy.steps[1].weight`"),
            "{msg}"
        );
        assert!(msg.contains("invalid type"), "{msg}");
    }

    #[test]
    fn unknown_and_missing_fields_are_reported() {
        let body = stage_json(Some("test"), ALL).replacen(
            "\"poll_interval_seconds\"",
            "\"poll_interval_secs\"",
            1,
        );
        let msg = load_err(&with("live.json", body));
        assert!(
            msg.contains("live.json") && msg.contains("unknown field `poll_interval_secs`"),
            "{msg}"
        );
        let msg = load_err(&with(
            "project.json",
            r#"{"function_name": "app", "rest_api_name": "app", "region": "eu-west-2"}"#.into(),
        ));
        assert!(
            msg.contains("project.json") && msg.contains("missing field `stage_variable`"),
            "{msg}"
        );
    }

    #[test]
    fn canary_steps_must_increase_and_end_at_100() {
        let cases = [
            (
                r#"{"type": "canary", "steps": [{"weight": 50, "bake_seconds": 1}, {"weight": 10, "bake_seconds": 1}, {"weight": 100, "bake_seconds": 0}]}"#,
                "strategy.steps[1].weight",
                "strictly increasing",
            ),
            (
                r#"{"type": "canary", "steps": [{"weight": 10, "bake_seconds": 1}, {"weight": 50, "bake_seconds": 1}]}"#,
                "strategy.steps[1].weight",
                "last step must be 100",
            ),
            (
                r#"{"type": "canary", "steps": []}"#,
                "strategy.steps",
                "at least one step",
            ),
            (r#"{"type": "canary"}"#, "strategy.steps", "needs steps"),
            (
                r#"{"type": "canary", "steps": [{"weight": 0, "bake_seconds": 1}, {"weight": 100, "bake_seconds": 0}]}"#,
                "strategy.steps[0].weight",
                "greater than 0",
            ),
            (
                r#"{"type": "canary", "steps": [{"weight": 100.5, "bake_seconds": 1}]}"#,
                "strategy.steps[0].weight",
                "above 100",
            ),
            (
                r#"{"type": "canary", "steps": [{"weight": 10, "bake_seconds": 90000}, {"weight": 100, "bake_seconds": 0}]}"#,
                "strategy.steps[0].bake_seconds",
                "maximum",
            ),
            (
                r#"{"type": "all_at_once", "steps": []}"#,
                "strategy.steps",
                "only a canary",
            ),
            (
                r#"{"type": "blue_green"}"#,
                "strategy.type",
                "unknown variant",
            ),
        ];
        for (strategy, at, what) in cases {
            let msg = load_err(&with("live.json", stage_json(Some("test"), strategy)));
            assert!(
                msg.contains(&format!("live.json: field `{at}`")),
                "{strategy}: {msg}"
            );
            assert!(msg.contains(what), "{strategy}: {msg}");
        }
    }

    #[test]
    fn alarm_and_terraform_fields_are_validated() {
        let base = stage_json(Some("test"), ALL);
        let cases = [
            (
                base.replace(r#""kind": "lambda_errors""#, r#""kind": "cpu""#),
                "alarms[0].kind",
                "unknown variant",
            ),
            (
                base.replace(r#""threshold": 1"#, r#""threshold": -1"#),
                "alarms[0].threshold",
                "at least 0",
            ),
            (
                base.replace(
                    r#""threshold": 1"#,
                    r#""threshold": 1, "period_seconds": 45"#,
                ),
                "alarms[0].period_seconds",
                "not one of",
            ),
            (
                base.replace(r#""name": "a-errors""#, r#""name": "has space""#),
                "alarms[0].name",
                "not a valid alarm name",
            ),
            (
                base.replace(
                    r#""poll_interval_seconds": 5"#,
                    r#""poll_interval_seconds": 0"#,
                ),
                "poll_interval_seconds",
                "outside 1..=60",
            ),
            (
                base.replace(r#""log_retention_days": 7"#, r#""log_retention_days": 8"#),
                "log_retention_days",
                "retention",
            ),
            (
                base.replace(r#""rate_limit": 10"#, r#""rate_limit": 0"#),
                "throttling.rate_limit",
                "greater than 0",
            ),
        ];
        for (body, at, what) in cases {
            let msg = load_err(&with("live.json", body));
            assert!(
                msg.contains(&format!("live.json: field `{at}`")) && msg.contains(what),
                "{at}: {msg}"
            );
        }
        let twice = base.replace(
            r#""alarms": [{"name": "a-errors", "kind": "lambda_errors", "threshold": 1}]"#,
            r#""alarms": [{"name": "a", "kind": "lambda_errors", "threshold": 1}, {"name": "a", "kind": "lambda_throttles", "threshold": 1}]"#,
        );
        let msg = load_err(&with("live.json", twice));
        assert!(
            msg.contains("alarms[1].name") && msg.contains("listed twice"),
            "{msg}"
        );
    }

    #[test]
    fn an_alarm_name_used_by_two_stages_is_refused() {
        let dev = stage_json(None, ALL).replace("a-errors", "dev-errors");
        let test = stage_json(Some("dev"), ALL).replace("a-errors", "dev-errors");
        let live = stage_json(Some("test"), CANARY).replace("a-errors", "live-errors");
        let files = vec![
            ("project.json", PROJECT.to_string()),
            ("dev.json", dev.clone()),
            ("test.json", test),
            ("live.json", live.clone()),
        ];
        let msg = load_err(&files);
        assert!(
            msg.contains("test.json: field `alarms[0].name`"),
            "names the second file and the field: {msg}"
        );
        assert!(
            msg.contains("`dev-errors` is also an alarm of stage `dev` (dev.json)"),
            "names the other stage: {msg}"
        );
        assert!(
            msg.contains(
                "unique per account and region, so give each stage its own, e.g. `test-errors`"
            ),
            "{msg}"
        );

        // Each stage with its own names loads.
        let files = vec![
            ("project.json", PROJECT.to_string()),
            ("dev.json", dev),
            (
                "test.json",
                stage_json(Some("dev"), ALL).replace("a-errors", "test-errors"),
            ),
            ("live.json", live),
        ];
        assert_eq!(load(&files).unwrap().stage_names(), ["dev", "test", "live"]);
    }

    #[test]
    fn project_fields_are_validated() {
        let cases = [
            (
                PROJECT.replace(r#""region": "eu-west-2""#, r#""region": "mars""#),
                "region",
            ),
            (
                PROJECT.replace(r#""function_name": "app""#, r#""function_name": "my app""#),
                "function_name",
            ),
            (
                PROJECT.replace(
                    r#""stage_variable": "lambdaAlias""#,
                    r#""stage_variable": "lambda-alias""#,
                ),
                "stage_variable",
            ),
        ];
        for (body, at) in cases {
            let msg = load_err(&with("project.json", body));
            assert!(
                msg.contains(&format!("project.json: field `{at}`")),
                "{msg}"
            );
        }
    }

    #[test]
    fn the_chain_must_be_linear_with_one_root() {
        let msg = load_err(&with("test.json", stage_json(None, ALL)));
        assert!(
            msg.contains("dev, test all have \"upstream\": null"),
            "{msg}"
        );

        let msg = load_err(&with("live.json", stage_json(Some("dev"), CANARY)));
        assert!(msg.contains("all follow `dev`"), "{msg}");

        let msg = load_err(&with("live.json", stage_json(Some("prod"), CANARY)));
        assert!(
            msg.contains("live.json: field `upstream`") && msg.contains("`prod` is not a stage"),
            "{msg}"
        );

        let msg = load_err(&with("live.json", stage_json(Some("live"), CANARY)));
        assert!(msg.contains("its own upstream"), "{msg}");

        let mut cycle = with("dev.json", stage_json(Some("live"), ALL));
        cycle.push(("qa.json", stage_json(None, ALL)));
        let msg = load_err(&cycle);
        assert!(
            msg.contains("not reachable") || msg.contains("all follow"),
            "{msg}"
        );

        let files: Vec<(&str, String)> = vec![
            ("project.json", PROJECT.into()),
            ("a.json", stage_json(Some("b"), ALL)),
            ("b.json", stage_json(Some("a"), ALL)),
        ];
        assert!(load_err(&files).contains("form a cycle"));
    }

    #[test]
    fn layout_problems_say_what_is_missing() {
        let msg = load_err(&[("dev.json", stage_json(None, ALL))]);
        assert!(msg.contains("no project.json"), "{msg}");
        let msg = load_err(&[("project.json", PROJECT.to_string())]);
        assert!(msg.contains("no stage files"), "{msg}");
        let msg = load_err(&with("Live.json", stage_json(Some("test"), CANARY)));
        assert!(
            msg.contains("Live.json") && msg.contains("not a valid stage name"),
            "{msg}"
        );
        let missing = Environments::load("/nonexistent/environments")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("/nonexistent/environments"), "{missing}");
    }
}
