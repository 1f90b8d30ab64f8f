//! `status` and `watch`: read-only views of the stages.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use futures_util::future::try_join_all;
use rollout::note::Note;
use rollout::plan::{AlarmReading, AlarmValue};
use rollout::{AliasView, BuildStamp, Environments, Finding, Strategy, Subject, Version};
use serde_json::{Value, json};

use crate::cli::events;
use crate::cloud::aws::{Cloud, VersionInfo};
use crate::cloud::codedeploy::{Deployment, status_name};
use crate::ctx::Ctx;
use crate::evidence::{Source, Window};

#[derive(Debug, Clone, PartialEq)]
pub struct StageStatus {
    pub stage: String,
    pub alias: String,
    pub view: AliasView,
    pub invoke_url: String,
    pub alarms: Vec<AlarmReading>,
    pub stable_stamp: Option<BuildStamp>,
    pub candidate_stamp: Option<BuildStamp>,
    /// Where the split sits in a canary stage's step plan: (step, of).
    pub step: Option<(usize, usize)>,
    /// What promote recorded on the alias (previous version, last rollback and why).
    pub note: Note,
}

/// Reads every stage (or one) of `function` with as few calls as possible, concurrently: one
/// version list and one DescribeAlarms (of the alarms that watch the function) for all
/// stages, then a stage and an alias read per stage.
pub async fn read<C: Cloud>(
    cloud: &C,
    env: &Environments,
    function: &str,
    only: Option<&str>,
) -> Result<Vec<StageStatus>> {
    let stages = match only {
        Some(s) => vec![env.stage(s)?],
        None => env.stages.iter().collect(),
    };
    let alarm_names = |s: &rollout::Stage| s.alarm_names_for(&env.project, function);
    let names: Vec<String> = stages.iter().flat_map(|s| alarm_names(s)).collect();
    let per_stage = try_join_all(stages.iter().map(|s| async move {
        let read = async {
            let t = cloud.resolve(&s.name).await?;
            let a = cloud.get_alias(&t.alias).await?;
            anyhow::Ok((t, a))
        };
        anyhow::Context::with_context(read.await, || format!("stage {}", s.name))
    }));
    let (per_stage, versions, alarms) =
        tokio::join!(per_stage, cloud.list_versions(), cloud.read(&names));
    let (per_stage, versions, alarms) = (per_stage?, versions?, alarms?);
    let stamp = |v: Version| {
        versions
            .iter()
            .find(|i: &&VersionInfo| i.version == v)
            .and_then(|i| BuildStamp::parse(&i.description))
    };
    Ok(stages
        .iter()
        .zip(per_stage)
        .map(|(s, (t, a))| StageStatus {
            stage: s.name.clone(),
            alias: t.alias,
            view: a.view,
            invoke_url: t.invoke_url,
            alarms: alarm_names(s)
                .iter()
                .map(|n| {
                    alarms
                        .iter()
                        .find(|r| &r.name == n)
                        .cloned()
                        .unwrap_or(AlarmReading {
                            name: n.clone(),
                            value: AlarmValue::InsufficientData,
                            reason: "not found in CloudWatch".into(),
                        })
                })
                .collect(),
            stable_stamp: stamp(a.view.version),
            candidate_stamp: a.view.split.and_then(|sp| stamp(sp.version)),
            step: match (&s.strategy, a.view.split) {
                (Strategy::Canary { steps }, Some(sp)) => {
                    Some(rollout::plan::step_position(steps, sp.weight))
                }
                _ => None,
            },
            note: Note::parse(&a.description),
        })
        .collect())
}

/// A version with its build stamp (all null when its description is not one).
fn version_json(version: Version, stamp: &Option<BuildStamp>) -> events::VersionJson {
    events::VersionJson {
        version: version.to_string(),
        weight: None,
        name: stamp.as_ref().map(|s| s.name.clone()),
        semver: stamp.as_ref().map(|s| s.semver.to_string()),
        git_sha: stamp.as_ref().map(|s| s.git_sha.clone()),
        short_sha: stamp.as_ref().map(|s| s.short_sha().to_string()),
    }
}

pub fn to_event(s: &StageStatus) -> events::StageStatus {
    let candidate = s.view.split.map(|sp| events::VersionJson {
        weight: Some(events::Percent(sp.weight)),
        ..version_json(sp.version, &s.candidate_stamp)
    });
    events::StageStatus {
        stage: s.stage.clone(),
        alias: s.alias.clone(),
        previous: s.note.previous.map(|p| p.to_string()),
        rolled_back: s.note.rolled_back.as_ref().map(|r| events::RolledBackJson {
            version: r.version.to_string(),
            why: r.reason(),
        }),
        stable: version_json(s.view.version, &s.stable_stamp),
        candidate,
        alarms: s
            .alarms
            .iter()
            .map(|r| events::AlarmJson {
                name: r.name.clone(),
                state: r.value.to_string(),
                reason: r.reason.clone(),
            })
            .collect(),
        invoke_url: s.invoke_url.clone(),
        upstream_skip: s
            .note
            .upstream_skip
            .as_ref()
            .map(|k| events::UpstreamSkipJson {
                version: k.version.to_string(),
                reason: k.reason.clone(),
            }),
        judge: None,
        deployment: None,
    }
}

fn describe(version: Version, stamp: &Option<BuildStamp>) -> String {
    match stamp {
        Some(s) => format!("{version} ({} {})", s.semver, s.short_sha()),
        None => format!("{version} (unknown)"),
    }
}

fn alarms_cell(alarms: &[AlarmReading]) -> String {
    let failing: Vec<String> = alarms
        .iter()
        .filter(|r| r.value != AlarmValue::Ok)
        .map(|r| format!("{} {}", r.name, r.value))
        .collect();
    if alarms.is_empty() {
        "none".into()
    } else if failing.is_empty() {
        format!("{} OK", alarms.len())
    } else {
        failing.join(", ")
    }
}

/// The table, columns padded to their widest cell.
pub fn table(rows: &[StageStatus]) -> String {
    let header = ["STAGE", "STABLE", "CANDIDATE", "ALARMS", "URL"].map(String::from);
    let mut cells: Vec<[String; 5]> = vec![header];
    let mut notes = Vec::new();
    for s in rows {
        let candidate = match s.view.split {
            Some(sp) => {
                let at = match s.step {
                    Some((n, of)) => format!(" (step {n}/{of})"),
                    None => String::new(),
                };
                format!(
                    "{} {}{at}",
                    describe(sp.version, &s.candidate_stamp),
                    sp.weight
                )
            }
            None => "-".into(),
        };
        if !s.note.release.is_empty() {
            let release: Vec<String> = s
                .note
                .release
                .iter()
                .map(|(f, v)| format!("{f} {v}"))
                .collect();
            notes.push(format!(
                "{}: last moved as part of release {}",
                s.stage,
                release.join(", ")
            ));
        }
        if let Some(k) = &s.note.upstream_skip {
            notes.push(format!(
                "{}: version {} was let in without its upstream stage serving it (--skip-upstream: {})",
                s.stage, k.version, k.reason
            ));
        }
        if let Some(r) = &s.note.rolled_back {
            notes.push(format!(
                "{}: version {} was rolled back ({}); rolling it out again takes --retry",
                s.stage,
                r.version,
                if r.why.is_empty() {
                    "no reason recorded".to_string()
                } else {
                    r.reason()
                },
            ));
        }
        cells.push([
            s.stage.clone(),
            describe(s.view.version, &s.stable_stamp),
            candidate,
            alarms_cell(&s.alarms),
            s.invoke_url.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out += line.join("  ").trim_end();
        out += "\n";
    }
    for n in notes {
        out += &n;
        out += "\n";
    }
    out.trim_end().to_string()
}

pub async fn status<C: Cloud>(ctx: &Ctx<'_, C>, only: Option<&str>) -> Result<()> {
    let (rows, errors) = match (read(ctx.cloud, ctx.env, ctx.function, only).await, only) {
        (Ok(rows), _) => (rows, Vec::new()),
        (Err(e), Some(_)) => return Err(e),
        // One broken stage must not hide the others: read them one by one and report it.
        (Err(first), None) => {
            let (mut rows, mut errors) = (Vec::new(), Vec::new());
            for s in &ctx.env.stages {
                match read(ctx.cloud, ctx.env, ctx.function, Some(&s.name)).await {
                    Ok(r) => rows.extend(r),
                    Err(e) => errors.push((s.name.clone(), format!("{e:#}"))),
                }
            }
            // Nothing readable at all (credentials, endpoint, no stack): one error says it.
            if rows.is_empty() {
                return Err(first);
            }
            (rows, errors)
        }
    };
    // A stage mid-canary also shows the metrics judge's verdict and numbers (metrics.rs).
    let judged = judge_splits(ctx, &rows).await;
    let judge_of = |stage: &str| judged.iter().find(|(s, _)| s == stage).map(|(_, f)| f);
    // A CodeDeploy stage also shows its deployment in flight and its progress (cd_engine.rs).
    let deployments = deployment_statuses(ctx, &rows).await;
    if ctx.ui.json() {
        // One object per stage per line: `jq 'select(.stage == "live")'` works as is.
        for r in &rows {
            let mut row = to_event(r);
            row.judge = judge_of(&r.stage).map(|f| events::JudgeJson {
                verdict: f.verdict.to_string(),
                summary: f.summary.clone(),
                numbers: f.numbers.clone(),
            });
            row.deployment = deployments
                .iter()
                .find(|(s, _, _)| *s == r.stage)
                .map(|(_, _, d)| d.clone());
            ctx.ui.emit(&row);
        }
        for (stage, error) in &errors {
            ctx.ui.emit(&events::StageError {
                stage: stage.clone(),
                error: error.clone(),
            });
        }
    } else {
        let mut text = table(&rows);
        for (stage, f) in &judged {
            text.push_str(&format!(
                "\n{stage}: metrics judge over the last {} periods: {}",
                crate::evidence::metrics::STATUS_PERIODS,
                f.summary
            ));
        }
        for (_, line, _) in &deployments {
            text.push_str(&format!("\n{line}"));
        }
        ctx.ui.text(text);
        for (_, error) in &errors {
            ctx.ui.say(format!("error: {error}"));
        }
    }
    match errors.len() {
        0 => Ok(()),
        n => Err(anyhow::anyhow!(
            "{n} of {} stage(s) could not be read (see above)",
            ctx.env.stages.len()
        )),
    }
}

/// One function of a watch: its name, its connection and the output its events go to.
pub struct Watched<'a, C> {
    pub function: &'a str,
    pub cloud: &'a C,
    pub ui: &'a crate::cli::ui::Ui,
}

/// Refreshes until interrupted: the stage of every function in `functions` (on a project of
/// several functions, each under its name). A terminal is redrawn in place every interval; a
/// log (or `--output json`) gets a new view only when something changed, like `kubectl get -w`.
pub async fn watch<C: Cloud>(
    ctx: &Ctx<'_, C>,
    functions: &[Watched<'_, C>],
    stage: &str,
    interval: Duration,
) -> Result<()> {
    ctx.env.stage(stage)?;
    let several = ctx.env.project.functions.len() > 1;
    let mut last = String::new();
    loop {
        let mut text = String::new();
        let mut views = Vec::new();
        for w in functions {
            match read(w.cloud, ctx.env, w.function, Some(stage)).await {
                Ok(rows) => {
                    if several {
                        text += &format!("function {}:\n", w.function);
                    }
                    text += &view_text(&rows);
                    text += "\n";
                    views.push((w, rows));
                }
                // A transient read error should not end a watch; show it and retry.
                Err(e) if several => ctx.ui.say(format!("error: function {}: {e:#}", w.function)),
                Err(e) => ctx.ui.say(format!("error: {e:#}")),
            }
        }
        let text = text.trim_end().to_string();
        if views.is_empty() {
            // Nothing read: the errors are said above.
        } else if ctx.ui.is_tty() && !ctx.ui.json() {
            ctx.ui.raw("\x1b[H\x1b[2J");
            let every = rollout::format_duration(interval);
            ctx.ui.text(format!(
                "{text}\n\n(refreshing every {every}; Ctrl-C to stop)"
            ));
        } else if text != last {
            for (w, rows) in &views {
                for r in rows {
                    w.ui.emit(&to_event(r));
                }
            }
            if !ctx.ui.json() {
                let at = humantime_now();
                ctx.ui.text(format!("--- {at}\n{text}"));
            }
        }
        if !views.is_empty() {
            last = text;
        }
        if ctx.interrupt.sleep(interval).await {
            return Ok(());
        }
    }
}

/// One function's rows as `watch` shows them: the table and each alarm's state.
fn view_text(rows: &[StageStatus]) -> String {
    let mut text = table(rows);
    for r in rows {
        for a in &r.alarms {
            text += &format!("\n  {:<40} {}", a.name, a.value);
        }
    }
    text
}

/// UTC wall-clock time as HH:MM:SS, for log lines (no date crate needed for this).
fn humantime_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02} UTC",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

/// For `promote status`: the judge's verdict over the last [`crate::evidence::metrics::STATUS_PERIODS`] complete
/// periods of every stage with a split whose analysis uses the metrics source.
async fn judge_splits<C: Cloud>(ctx: &Ctx<'_, C>, rows: &[StageStatus]) -> Vec<(String, Finding)> {
    let mut out = Vec::new();
    for r in rows {
        let (Some(split), Ok(stage)) = (r.view.split, ctx.env.stage(&r.stage)) else {
            continue;
        };
        if !stage.analysis.uses(rollout::SourceKind::Metrics) {
            continue;
        }
        let period = Duration::from_secs(stage.analysis.period_seconds.into());
        let now = SystemTime::now();
        let subject = Subject {
            function: ctx.function.to_string(),
            stage: r.stage.clone(),
            alias: r.alias.clone(),
            stable: r.view.version,
            candidate: Some(split.version),
            weight: split.weight,
        };
        let window = Window {
            step_started: now - period * (crate::evidence::metrics::STATUS_PERIODS + 2),
            now,
        };
        let mut source = crate::evidence::metrics::MetricsSource::new(
            ctx.cloud,
            &subject.function,
            &stage.analysis,
        );
        let finding = match source.assess(&subject, window).await {
            Ok(f) => f,
            Err(e) => Finding::unreadable("metrics", &format!("{e:#}")),
        };
        out.push((r.stage.clone(), finding));
    }
    out
}

/// `promote status`: for every CodeDeploy stage among `rows`, (stage, a line for the table,
/// the `deployment` field of its `stage_status` event). A read that fails says so in its
/// line: it must not hide the rest of the status.
async fn deployment_statuses<C: Cloud>(
    ctx: &Ctx<'_, C>,
    rows: &[StageStatus],
) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for r in rows {
        match deployment_status_of(ctx.cloud, ctx.env, ctx.function, &r.stage, &r.alias).await {
            Ok(Some((line, value))) => out.push((r.stage.clone(), line, value)),
            Ok(None) => {}
            Err(e) => out.push((
                r.stage.clone(),
                format!(
                    "{}: CodeDeploy deployments could not be read: {e:#}",
                    r.stage
                ),
                json!({"error": format!("{e:#}")}),
            )),
        }
    }
    out
}

fn describe_deployment(d: &Deployment, function: &str, alias: &str) -> String {
    match d.view(function, alias) {
        Some(view) => view.to_string(),
        None => format!("deployment {} (no status)", d.read.id),
    }
}

/// The deployment in flight on a CodeDeploy stage and its progress.
async fn deployment_status_of<C: Cloud>(
    cloud: &C,
    env: &rollout::Environments,
    function: &str,
    stage: &str,
    alias: &str,
) -> Result<Option<(String, Value)>> {
    let Ok(s) = env.stage(stage) else {
        return Ok(None);
    };
    if s.engine != rollout::codedeploy::Engine::CodeDeploy {
        return Ok(None);
    }
    let g = rollout::codedeploy::Group::of(function, stage);
    let Some(id) = cloud
        .in_flight(&g.application, &g.group)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(Some((
            format!("{stage}: CodeDeploy engine, no deployment in progress"),
            Value::Null,
        )));
    };
    let mut d = cloud.get_deployment(&id).await?;
    if matches!(
        d.read.status,
        Some(rollout::codedeploy::Status::InProgress | rollout::codedeploy::Status::Baking)
    ) {
        d.read.target_weight = cloud.target_weight(&id).await?;
    }
    let shift = d.shift_of(function, alias);
    let progress = match rollout::codedeploy::interpret(&d.read)? {
        rollout::codedeploy::Followed::Running(p) => p.to_string(),
        rollout::codedeploy::Followed::Finished(o) => format!("{o:?}"),
    };
    let line = format!(
        "{stage}: CodeDeploy {}: {progress}",
        describe_deployment(&d, function, alias)
    );
    let value = json!({
        "deployment_id": id, "status": d.read.status.map(status_name),
        "deployment_config": d.config,
        "candidate_weight": d.read.target_weight.and_then(rollout::Weight::from_fraction).map(rollout::Weight::percent_json),
        "current": shift.map(|s| s.current.to_string()), "target": shift.map(|s| s.target.to_string()),
    });
    Ok(Some((line, value)))
}
