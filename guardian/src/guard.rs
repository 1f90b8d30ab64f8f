//! One invocation: observe the stage(s) the trigger concerns, decide with
//! `rollout::guardian::decide`, and apply its writes with the guarded alias write `promote`
//! uses (`aliases::guarded`). Nothing here decides.

use std::time::{Duration, SystemTime};

use aliases::guarded::{self, GuardedError, ROLLBACK_DEADLINE};
use aliases::{AliasRecord, AliasWrite, WriteError};
use anyhow::{Context, Result};
use promote::cloud::aws::{Alarms, Metrics, MetricsQuery};
use promote::evidence::metrics::MetricsSource;
use promote::evidence::{Source, Window};
use rollout::guardian::{self, AliasState, Decision, Observed, Trigger};
use rollout::judge::LatencyStatistic;
use rollout::note::Note;
use rollout::{Environments, Finding, Stage, Subject};
use serde_json::{Value, json};

use crate::report;

/// Every function's aliases, by function and alias name (promote's adapters know one
/// function; a release takes back all of them).
pub trait Aliases {
    async fn get(&self, function: &str, alias: &str) -> Result<AliasRecord>;
    async fn update(
        &self,
        function: &str,
        alias: &str,
        write: &AliasWrite,
        revision_id: &str,
    ) -> Result<AliasRecord, WriteError>;
}

/// Lambda itself, through the shared adapter.
pub struct Lambda {
    pub client: aws_sdk_lambda::Client,
    pub endpoint_url: Option<String>,
    pub region: String,
}

impl Lambda {
    fn at(&self) -> aliases::sdk_error::Endpoint<'_> {
        aliases::sdk_error::Endpoint::new(self.endpoint_url.as_deref(), "lambda", &self.region)
    }
}

impl Aliases for Lambda {
    async fn get(&self, function: &str, alias: &str) -> Result<AliasRecord> {
        aliases::lambda::get_alias(&self.client, &self.at(), function, alias).await
    }
    async fn update(
        &self,
        function: &str,
        alias: &str,
        write: &AliasWrite,
        revision_id: &str,
    ) -> Result<AliasRecord, WriteError> {
        aliases::lambda::update_alias(
            &self.client,
            &self.at(),
            function,
            alias,
            write,
            revision_id,
        )
        .await
    }
}

/// One function's alias, for the guarded write.
struct FunctionAlias<'a, A> {
    aliases: &'a A,
    function: &'a str,
    alias: &'a str,
}

impl<A: Aliases> guarded::Alias for FunctionAlias<'_, A> {
    fn name(&self) -> &str {
        self.alias
    }
    async fn read(&self) -> Result<AliasRecord> {
        self.aliases.get(self.function, self.alias).await
    }
    async fn update(
        &self,
        write: &AliasWrite,
        revision_id: &str,
    ) -> Result<AliasRecord, WriteError> {
        self.aliases
            .update(self.function, self.alias, write, revision_id)
            .await
    }
}

/// The functions the guardian guards, each with one alias per stage named after the stage:
/// every function of project.json, in its order (the alarms' names depend on it), since a
/// release moves them together and goes back together.
pub fn functions(env: &Environments) -> Vec<String> {
    env.project.function_names()
}

pub struct Guardian<'a, C, A> {
    pub env: &'a Environments,
    /// CloudWatch: alarm states and per-version metrics.
    pub cloud: &'a C,
    pub aliases: &'a A,
}

/// What the guardian did about one stage, as its answer and log say.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub stage: String,
    /// `nothing`, `rolled_back`, `stale`.
    pub action: &'static str,
    pub reason: String,
    /// Functions whose split this invocation took back.
    pub written: Vec<String>,
    /// Functions whose alias someone else (a `promote` run) moved first: nothing written.
    pub lost: Vec<String>,
}

impl Outcome {
    pub fn json(&self) -> Value {
        json!({
            "stage": self.stage, "action": self.action, "reason": self.reason,
            "written": self.written, "lost": self.lost,
        })
    }
}

impl<C: Alarms + Metrics, A: Aliases> Guardian<'_, C, A> {
    pub async fn handle(&self, trigger: &Trigger, now: SystemTime) -> Result<Vec<Outcome>> {
        match trigger {
            Trigger::Alarm(event) => {
                let functions = functions(self.env);
                let Some(stage) =
                    guardian::stage_of_alarm(&self.env.stages, &functions, &event.name)
                else {
                    tracing::info!(alarm = %event.name, "not a stage's alarm; nothing to do");
                    return Ok(Vec::new());
                };
                Ok(vec![self.guard(stage, trigger, now).await?])
            }
            Trigger::Tick => {
                let mut out = Vec::new();
                let mut failed = Vec::new();
                for stage in self
                    .env
                    .stages
                    .iter()
                    .filter(|s| guardian::judged_on_schedule(s))
                {
                    match self.guard(stage, trigger, now).await {
                        Ok(o) => out.push(o),
                        // One stage that cannot be read does not leave the others unjudged.
                        Err(e) => failed.push(format!("{e:#}")),
                    }
                }
                if failed.is_empty() {
                    Ok(out)
                } else {
                    Err(anyhow::anyhow!("{}", failed.join("; ")))
                }
            }
        }
    }

    /// Observe, decide and apply for one stage.
    async fn guard(&self, stage: &Stage, trigger: &Trigger, now: SystemTime) -> Result<Outcome> {
        let functions = functions(self.env);
        let mut records = Vec::new();
        for function in &functions {
            let rec = self
                .aliases
                .get(function, &stage.name)
                .await
                .with_context(|| {
                    format!(
                        "stage {}: reading the alias of function {function}",
                        stage.name
                    )
                })?;
            records.push((function.clone(), rec));
        }
        let mut obs = Observed {
            aliases: records
                .iter()
                .map(|(function, rec)| AliasState {
                    function: function.clone(),
                    view: rec.view,
                    note: Note::parse(&rec.description),
                })
                .collect(),
            ..Observed::default()
        };
        let any_split = obs.aliases.iter().any(|a| a.view.split.is_some());
        match trigger {
            Trigger::Alarm(event) if any_split => {
                let now_read = self
                    .cloud
                    .read(std::slice::from_ref(&event.name))
                    .await
                    .with_context(|| format!("reading alarm {}", event.name))?;
                obs.alarm_now = now_read.into_iter().find(|r| r.name == event.name);
            }
            Trigger::Tick if any_split => self.judge(stage, &mut obs, now).await,
            _ => {}
        }
        let decision = guardian::decide(stage, &functions, trigger, &obs);
        self.apply(stage, decision, &records).await
    }

    /// The scheduled judge: promote's metrics source over the split's recent traffic, and
    /// how long the candidate has been taking traffic.
    async fn judge(&self, stage: &Stage, obs: &mut Observed, now: SystemTime) {
        let period = Duration::from_secs(stage.analysis.period_seconds.max(1).into());
        let mut oldest: Option<SystemTime> = None;
        for a in &obs.aliases.clone() {
            let Some(split) = a.view.split else { continue };
            let subject = Subject {
                function: a.function.clone(),
                stage: stage.name.clone(),
                alias: stage.name.clone(),
                stable: a.view.version,
                candidate: Some(split.version),
                weight: split.weight,
            };
            let window = Window {
                step_started: now - guardian::judged_window(stage, split.weight),
                now,
            };
            let mut source = MetricsSource::new(self.cloud, &a.function, &stage.analysis);
            let finding = match source.assess(&subject, window).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(stage = %stage.name, function = %a.function, error = %format!("{e:#}"), "the per-version metrics could not be read");
                    Finding::unreadable("metrics", &format!("{e:#}"))
                }
            };
            tracing::info!(stage = %stage.name, function = %a.function, verdict = %finding.verdict, summary = %finding.summary, "judged");
            obs.findings.push((a.function.clone(), finding));
            // Since when the candidate has taken traffic: its first period with invocations
            // over a little more than the time after which the split is stale.
            let lookback = guardian::stale_after(stage, split.weight) + period * 3;
            let q = MetricsQuery {
                function: a.function.clone(),
                alias: stage.name.clone(),
                series: vec![Some(split.version)],
                start: now - lookback,
                end: now,
                period_seconds: stage.analysis.period_seconds,
                latency: LatencyStatistic::Mean,
            };
            if let Ok(series) = self.cloud.version_metrics(&q).await
                && let Some(first) = series.first().and_then(|s| {
                    s.invocations
                        .iter()
                        .filter(|(_, n)| *n > 0.0)
                        .map(|(t, _)| *t)
                        .min()
                })
            {
                oldest = Some(oldest.map_or(first, |o| o.min(first)));
            }
        }
        obs.split_age = oldest.and_then(|t| now.duration_since(t).ok());
    }

    async fn apply(
        &self,
        stage: &Stage,
        decision: Decision,
        records: &[(String, AliasRecord)],
    ) -> Result<Outcome> {
        let outcome = |action, reason: String| Outcome {
            stage: stage.name.clone(),
            action,
            reason,
            written: Vec::new(),
            lost: Vec::new(),
        };
        match decision {
            Decision::Nothing(why) => {
                tracing::info!(stage = %stage.name, %why, "nothing to write");
                Ok(outcome("nothing", why))
            }
            Decision::ReportStale(report) => {
                report::stale(&stage.name, &report);
                Ok(outcome("stale", report))
            }
            Decision::RollBack {
                reason,
                writes,
                stale,
            } => {
                if stale {
                    report::stale(&stage.name, &reason);
                }
                let mut done = outcome("rolled_back", reason.clone());
                let mut errors = Vec::new();
                for fw in writes {
                    let Some((_, seen)) = records.iter().find(|(f, _)| *f == fw.function) else {
                        continue;
                    };
                    let target = FunctionAlias {
                        aliases: self.aliases,
                        function: &fw.function,
                        alias: &stage.name,
                    };
                    let write = AliasWrite::of(&fw.write);
                    let result =
                        guarded::write(&target, seen, &write, ROLLBACK_DEADLINE, |attempt, e| {
                            tracing::warn!(stage = %stage.name, function = %fw.function, attempt, error = %format!("{e:#}"), "the rollback did not go through; re-reading and retrying");
                        })
                        .await;
                    match result {
                        Ok(_) => {
                            tracing::warn!(stage = %stage.name, function = %fw.function, %reason, "took the split back");
                            done.written.push(fw.function.clone());
                        }
                        Err(GuardedError::Changed { was, now, .. }) => {
                            tracing::info!(stage = %stage.name, function = %fw.function, %was, %now, "someone else moved the alias first; nothing written");
                            done.lost.push(fw.function.clone());
                        }
                        Err(e) => errors.push(format!(
                            "stage {}: the rollback of function {}'s alias: {e:#}",
                            stage.name, fw.function
                        )),
                    }
                }
                report::rolled_back(&stage.name, done.written.len());
                if errors.is_empty() {
                    Ok(done)
                } else {
                    Err(anyhow::anyhow!("{}", errors.join("; ")))
                }
            }
        }
    }
}
