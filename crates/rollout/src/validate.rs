//! The rules of an `environments/` directory, each in one place.
//!
//! A field's own rules (its type, range, allowed values, pattern) live in the JSON schemas of
//! `environments/schema/`, which editors, Terraform's users and this crate all read: a file is
//! checked against them here before it is decoded. The rules across fields, files and the
//! directory (the order of canary steps, bakes against alarm windows, the chain of stages,
//! alarm names unique across stages, what CodeDeploy can run, the names Terraform derives)
//! are the functions below.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use crate::codedeploy::deployment_config;
use crate::error::{ConfigError, field};
use crate::spec::{
    Alarm, Analysis, Engine, Environments, FunctionSpec, Hooks, Probe, SourceKind, Stage, Step,
    Strategy, Trigger, slowest_alarm,
};
use crate::weight::Weight;

// ---- Field rules: the schemas ----

/// Which of the two schemas a file answers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Project,
    Stage,
}

pub const PROJECT_SCHEMA: &str = include_str!("../../../environments/schema/project.schema.json");
pub const STAGE_SCHEMA: &str = include_str!("../../../environments/schema/stage.schema.json");

struct Compiled {
    schema: Value,
    validator: jsonschema::Validator,
}

fn compile(text: &str) -> Compiled {
    let schema: Value = serde_json::from_str(text).expect("the committed schema is JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("the committed schema compiles");
    Compiled { schema, validator }
}

static PROJECT: LazyLock<Compiled> = LazyLock::new(|| compile(PROJECT_SCHEMA));
static STAGE: LazyLock<Compiled> = LazyLock::new(|| compile(STAGE_SCHEMA));

impl Schema {
    fn compiled(self) -> &'static Compiled {
        match self {
            Schema::Project => &PROJECT,
            Schema::Stage => &STAGE,
        }
    }

    /// The schema itself, for the defaults it documents.
    pub fn value(self) -> &'static Value {
        &self.compiled().schema
    }
}

/// Every way `value` breaks `schema`, each naming `path`, the field and, from the schema's
/// description of that field, what it takes.
pub fn against_schema(path: &Path, value: &Value, schema: Schema) -> Vec<ConfigError> {
    let compiled = schema.compiled();
    let mut out: Vec<ConfigError> = compiled
        .validator
        .iter_errors(value)
        .map(|e| {
            let at = dotted(e.instance_path().as_str());
            let described = description(&compiled.schema, e.schema_path().as_str());
            problem(path, at, &e, described)
        })
        .collect();
    out.dedup_by(|a, b| a.to_string() == b.to_string());
    out
}

/// `/strategy/steps/1/weight` as the loader has always named it: `strategy.steps[1].weight`.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

/// The `description` of the (sub)schema whose keyword failed, following `$ref`s.
fn description<'s>(schema: &'s Value, keyword_location: &str) -> Option<&'s str> {
    let mut segs: Vec<&str> = keyword_location.split('/').skip(1).collect();
    segs.pop(); // the failing keyword itself
    let mut node = schema;
    for seg in segs {
        node = node.get(seg)?;
        while let Some(r) = node.get("$ref").and_then(Value::as_str) {
            node = schema.pointer(r.strip_prefix('#')?)?;
        }
    }
    node.get("description").and_then(Value::as_str)
}

fn problem(
    path: &Path,
    at: String,
    e: &jsonschema::ValidationError<'_>,
    described: Option<&str>,
) -> ConfigError {
    let instance = e.instance();
    let names = |v: &[String]| {
        v.iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (at, what) = match e.kind() {
        // An unknown or missing field is named by its parent's path; the message names it.
        ValidationErrorKind::AdditionalProperties { unexpected } => (
            at,
            format!(
                "unknown field {}; remove it or check its spelling against the schema",
                names(unexpected)
            ),
        ),
        ValidationErrorKind::Required { property } => (
            at,
            format!("missing field `{}`", property.as_str().unwrap_or_default()),
        ),
        ValidationErrorKind::Enum { options } => {
            (at, format!("{instance} is not one of {}", list(options)))
        }
        ValidationErrorKind::Minimum { limit } => {
            (at, format!("{instance} is below the minimum of {limit}"))
        }
        ValidationErrorKind::Maximum { limit } => {
            (at, format!("{instance} is above the maximum of {limit}"))
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            (at, format!("{instance} must be greater than {limit}"))
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            (at, format!("{instance} must be less than {limit}"))
        }
        ValidationErrorKind::UniqueItems => (at, format!("{instance} lists an item twice")),
        ValidationErrorKind::MinItems { limit } => {
            (at, format!("must list at least {limit} item(s)"))
        }
        ValidationErrorKind::Pattern { pattern } => {
            (at, format!("{instance} does not match `{pattern}`"))
        }
        // The library's own words name the value and the bound: `"fifty" is not of type "number"`.
        _ => (at, e.to_string()),
    };
    let message = match described {
        Some(d) => format!("{what} ({d})"),
        None => what,
    };
    if at.is_empty() {
        ConfigError::File {
            path: path.to_path_buf(),
            message,
        }
    } else {
        field(path, at, message)
    }
}

fn list(options: &Value) -> String {
    match options.as_array() {
        Some(items) => items
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        None => options.to_string(),
    }
}

// ---- Rules across the fields of one file ----

/// `project.json`'s functions: each name once (a release maps a function name to a version),
/// each route served by one function only (API Gateway has one integration per resource),
/// a greedy `{name+}` only as the last segment, parameter names unique within a route, and
/// each probe's path matching one of its function's routes, so the probe reaches the function
/// it judges.
pub fn functions(path: &Path, functions: &[FunctionSpec]) -> Result<(), ConfigError> {
    if functions.is_empty() {
        return Err(field(
            path,
            "functions",
            "lists no function; list at least one (name, package, routes, probe)",
        ));
    }
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut routes: BTreeMap<String, (&str, &str)> = BTreeMap::new();
    for (i, f) in functions.iter().enumerate() {
        if let Some(j) = names.insert(f.name.as_str(), i) {
            return Err(field(
                path,
                format!("functions[{i}].name"),
                format!(
                    "function `{}` is listed twice (also functions[{j}]); give each function its own name",
                    f.name
                ),
            ));
        }
        for (r, route) in f.routes.iter().enumerate() {
            let at = format!("functions[{i}].routes[{r}]");
            route_shape(route).map_err(|m| field(path, at.clone(), m))?;
            if let Some((other, other_route)) =
                routes.insert(route_key(route), (f.name.as_str(), route.as_str()))
            {
                return Err(field(
                    path,
                    at,
                    format!(
                        "route `{route}` is also served by function `{other}` (`{other_route}`); API Gateway sends one path to one function, so give it to one of them"
                    ),
                ));
            }
        }
        probe_and_trigger(path, i, f)?;
    }
    Ok(())
}

/// A function answers requests on its routes or is triggered (or both), and its probe reaches
/// it the way it is invoked: an HTTP probe on a path it serves; an upload probe into its
/// trigger's bucket, whose summaries land in another of its buckets, never the trigger's
/// (a summary written there would trigger the function again, Lambda's recursive loop).
fn probe_and_trigger(path: &Path, i: usize, f: &FunctionSpec) -> Result<(), ConfigError> {
    let reach = |purpose: &str, at: String| {
        if f.buckets.iter().any(|b| b == purpose) {
            Ok(())
        } else {
            Err(field(
                path,
                at,
                format!(
                    "names bucket `{purpose}`, which is not one of function `{}`'s buckets ({}); add it to functions[{i}].buckets",
                    f.name,
                    f.buckets.join(", ")
                ),
            ))
        }
    };
    let trigger_bucket = match &f.trigger {
        Some(Trigger::S3 { bucket }) => {
            reach(bucket, format!("functions[{i}].trigger.bucket"))?;
            Some(bucket.as_str())
        }
        None => None,
    };
    if f.routes.is_empty() && trigger_bucket.is_none() {
        return Err(field(
            path,
            format!("functions[{i}].routes"),
            format!(
                "is empty and function `{}` has no trigger, so nothing would invoke it; give it a route or a trigger",
                f.name
            ),
        ));
    }
    match &f.probe {
        Probe::Http(r) => {
            if !f.routes.iter().any(|route| route_matches(route, &r.path)) {
                return Err(field(
                    path,
                    format!("functions[{i}].probe.path"),
                    format!(
                        "`{}` matches none of function `{}`'s routes ({}); probe a path the function serves",
                        r.path,
                        f.name,
                        f.routes.join(", ")
                    ),
                ));
            }
        }
        Probe::Upload(u) => {
            if trigger_bucket != Some(u.bucket.as_str()) {
                return Err(field(
                    path,
                    format!("functions[{i}].probe.bucket"),
                    format!(
                        "`{}` is not the bucket that triggers function `{}` ({}); an upload probe puts objects where they trigger the function",
                        u.bucket,
                        f.name,
                        trigger_bucket.unwrap_or("it has no S3 trigger")
                    ),
                ));
            }
            if u.summaries == u.bucket {
                return Err(field(
                    path,
                    format!("functions[{i}].probe.summaries"),
                    format!(
                        "is the trigger bucket `{}`: a summary written there would trigger the function again; name another bucket",
                        u.bucket
                    ),
                ));
            }
            reach(&u.summaries, format!("functions[{i}].probe.summaries"))?;
        }
    }
    Ok(())
}

/// A route's segments: a greedy parameter only last, parameter names unique.
fn route_shape(route: &str) -> Result<(), String> {
    let segments: Vec<&str> = route.split('/').skip(1).filter(|s| !s.is_empty()).collect();
    let mut params = Vec::new();
    for (k, seg) in segments.iter().enumerate() {
        let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            continue;
        };
        let (name, greedy) = match name.strip_suffix('+') {
            Some(n) => (n, true),
            None => (name, false),
        };
        if greedy && k + 1 != segments.len() {
            return Err(format!(
                "`{route}`: the greedy parameter `{{{name}+}}` must be the last segment"
            ));
        }
        if params.contains(&name) {
            return Err(format!(
                "`{route}`: parameter `{{{name}}}` appears twice; name each parameter once"
            ));
        }
        params.push(name);
    }
    Ok(())
}

/// Two routes are the same resource when they differ only in parameter names.
fn route_key(route: &str) -> String {
    route
        .split('/')
        .map(|seg| match seg.strip_prefix('{') {
            Some(p) if p.ends_with("+}") => "{+}",
            Some(_) => "{}",
            None => seg,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether a concrete path is one a route serves (`{x}` one segment, `{x+}` one or more).
pub fn route_matches(route: &str, path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut want = route.split('/').skip(1).filter(|s| !s.is_empty());
    let mut got = path.split('/').skip(1).filter(|s| !s.is_empty());
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(_)) if w.starts_with('{') && w.ends_with("+}") => return true,
            (Some(w), Some(_)) if w.starts_with('{') => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// A stage is named by its file: the API Gateway stage, the Lambda alias and the GitHub
/// environment all take this name (the schema's `upstream` pattern).
pub fn valid_stage_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 64
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

pub fn stage_file_name(path: &Path, name: &str) -> Result<(), ConfigError> {
    if valid_stage_name(name) {
        return Ok(());
    }
    Err(ConfigError::File {
        path: path.to_path_buf(),
        message: format!(
            "`{name}` is not a valid stage name (the file name is the stage, API Gateway stage and alias name: a lowercase letter, then up to 63 of a-z 0-9 _)"
        ),
    })
}

pub fn upstream(path: &Path, name: &str, upstream: Option<&str>) -> Result<(), ConfigError> {
    if upstream == Some(name) {
        return Err(field(
            path,
            "upstream",
            format!("stage `{name}` cannot be its own upstream"),
        ));
    }
    Ok(())
}

/// The strategy's type decides which of `bake_seconds` and `steps` it takes; a canary's
/// weights strictly increase and end at 100%.
pub fn strategy(
    path: &Path,
    canary: bool,
    bake_seconds: Option<u64>,
    steps: Option<Vec<(f64, u64)>>,
) -> Result<Strategy, ConfigError> {
    if !canary {
        if steps.is_some() {
            return Err(field(
                path,
                "strategy.steps",
                "only a canary strategy has steps; remove them or set \"type\": \"canary\"",
            ));
        }
        return Ok(Strategy::AllAtOnce {
            bake: Duration::from_secs(bake_seconds.unwrap_or(0)),
        });
    }
    if bake_seconds.is_some() {
        return Err(field(
            path,
            "strategy.bake_seconds",
            "a canary strategy sets bake_seconds on each step, not on the strategy",
        ));
    }
    let Some(raw_steps) = steps else {
        return Err(field(
            path,
            "strategy.steps",
            "a canary strategy needs steps, e.g. [{\"weight\": 10, \"bake_seconds\": 300}, {\"weight\": 100, \"bake_seconds\": 0}]",
        ));
    };
    let mut steps: Vec<Step> = Vec::with_capacity(raw_steps.len());
    for (i, (weight, bake)) in raw_steps.into_iter().enumerate() {
        let at = format!("strategy.steps[{i}].weight");
        let weight =
            Weight::from_percent_f64(weight).map_err(|e| field(path, &at, e.to_string()))?;
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
            bake: Duration::from_secs(bake),
        });
    }
    let Some(last) = steps.last() else {
        return Err(field(
            path,
            "strategy.steps",
            "must list at least one step; the last one has weight 100",
        ));
    };
    if !last.weight.is_full() {
        return Err(field(
            path,
            format!("strategy.steps[{}].weight", steps.len() - 1),
            format!(
                "the last step must be 100 (the candidate takes all traffic), not {}",
                last.weight
            ),
        ));
    }
    Ok(Strategy::Canary { steps })
}

/// Alarm names are unique within a file (across files: [`unique_alarm_names`]).
pub fn alarms_listed_once(path: &Path, alarms: &[Alarm]) -> Result<(), ConfigError> {
    for (i, a) in alarms.iter().enumerate() {
        if alarms[..i].iter().any(|b| b.name == a.name) {
            return Err(field(
                path,
                format!("alarms[{i}].name"),
                format!("alarm `{}` is listed twice", a.name),
            ));
        }
    }
    Ok(())
}

/// A rate alarm's threshold is a share of requests: at 1 or more it could never fire (a
/// share is at most 1 and these alarms fire above the threshold), which is a percentage
/// written where a fraction belongs.
pub fn rate_thresholds_are_fractions(path: &Path, alarms: &[Alarm]) -> Result<(), ConfigError> {
    for (i, a) in alarms.iter().enumerate() {
        if a.kind.is_rate() && a.threshold >= 1.0 {
            return Err(field(
                path,
                format!("alarms[{i}].threshold"),
                format!(
                    "alarm `{}` watches a share of requests, so its threshold is a fraction below 1 (0.05 is 5%), not {}",
                    a.name, a.threshold
                ),
            ));
        }
    }
    Ok(())
}

/// A CloudWatch alarm can only fire once it has `evaluation_periods` periods of data, so a
/// bake shorter than that passes before the alarm could have looked. 0 stays allowed: it
/// says "no bake" out loud. Test fixtures that need second-long bakes against real alarm
/// definitions set `"test_fixture_short_bakes": true` in their copy of the stage file.
pub fn bakes_cover_alarm_windows(
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

/// `strategy.engine` and `strategy.hooks` (README, "The two engines"): hooks only where
/// CodeDeploy runs them, and a codedeploy stage's steps a plan CodeDeploy can run.
pub fn engine(
    path: &Path,
    engine: Engine,
    hooks: &Hooks,
    strategy: &Strategy,
) -> Result<(), ConfigError> {
    if engine == Engine::Alias {
        if *hooks != Hooks::default() {
            return Err(field(
                path,
                "strategy.hooks",
                "hooks are CodeDeploy lifecycle hooks and the alias engine runs none; set \"engine\": \"codedeploy\" or remove them",
            ));
        }
        return Ok(());
    }
    deployment_config(strategy)
        .map(|_| ())
        .map_err(|e| field(path, e.field, e.message))
}

/// Judging relatively leaves an alarm already firing to the per-version judge, which needs
/// the metrics.
pub fn analysis(path: &Path, a: &Analysis) -> Result<(), ConfigError> {
    if a.judge_relative && !a.uses(SourceKind::Metrics) {
        return Err(field(
            path,
            "analysis.judge_relative",
            "judging relatively needs the \"metrics\" source (an alarm already firing is then left to the per-version judge); add it to analysis.sources",
        ));
    }
    Ok(())
}

// ---- Rules across the files of a directory ----

/// Orders stages along their `upstream` links: one root, a single linear chain.
pub fn order_stages(dir: &Path, mut stages: Vec<Stage>) -> Result<Vec<Stage>, ConfigError> {
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

/// CloudWatch alarm names are unique per account and region, and every stage's alarms live
/// in the same account: two stages naming one alarm would watch (and Terraform would fight
/// over) a single alarm.
pub fn unique_alarm_names(stages: &[Stage]) -> Result<(), ConfigError> {
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

/// IAM role names are capped at 64 characters, CodeDeploy deployment config names at 100.
pub const IAM_ROLE_NAME_MAX: usize = 64;
pub const CODEDEPLOY_CONFIG_NAME_MAX: usize = 100;

/// Every length-capped name `terraform/` builds from these files: (what, name, limit).
pub fn terraform_names(env: &Environments) -> Vec<(&'static str, String, usize)> {
    let f = &env.project.main_function().name;
    let mut out = vec![
        ("IAM role", format!("{f}-lambda"), IAM_ROLE_NAME_MAX),
        ("IAM role", format!("{f}-codedeploy"), IAM_ROLE_NAME_MAX),
        (
            "IAM role",
            format!("{f}-apigateway-logs"),
            IAM_ROLE_NAME_MAX,
        ),
    ];
    let mut stages: Vec<&Stage> = env.stages.iter().collect();
    stages.sort_by(|a, b| a.name.cmp(&b.name));
    for s in stages {
        out.push((
            "IAM role",
            format!("{f}-deploy-{}", s.name),
            IAM_ROLE_NAME_MAX,
        ));
        // One config per function on a CodeDeploy stage (each function has its own group).
        if s.engine == Engine::CodeDeploy
            && let Ok(config) = deployment_config(&s.strategy)
        {
            for function in &env.project.functions {
                out.push((
                    "CodeDeploy deployment config",
                    config.name(&function.name, &s.name),
                    CODEDEPLOY_CONFIG_NAME_MAX,
                ));
            }
        }
    }
    out
}

/// The names Terraform would derive that AWS refuses as too long. Only `promote check`
/// asks: Terraform needs it at plan time, while promote itself names none of these.
pub fn terraform_name_lengths(env: &Environments) -> Vec<ConfigError> {
    terraform_names(env)
        .into_iter()
        .filter(|(_, name, limit)| name.len() > *limit)
        .map(|(what, name, limit)| ConfigError::Layout {
            dir: env.dir.clone(),
            message: format!(
                "the {what} name `{name}` that Terraform derives is {} characters, over AWS's {limit}; shorten the first function's name in project.json or the stage file's name",
                name.len()
            ),
        })
        .collect()
}
