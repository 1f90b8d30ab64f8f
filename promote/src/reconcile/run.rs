//! One command's session with one stage: what was read before deciding, the guarded alias
//! write, the pre-flight alarm check, the bake loop and the rollback it may end in; on a
//! stage CodeDeploy shifts, following a deployment (the bake whose deadline is its success)
//! and stopping one with CodeDeploy's rollback.
//!
//! Every alias write goes through [`Run::write`], which re-reads the alias, compares it
//! with what the decision was based on, and passes the RevisionId it just read.

use std::time::{Duration, SystemTime};

use aliases::guarded::{self, GuardedError};
use anyhow::{Context, Result};
use rollout::bake;
use rollout::codedeploy::{Followed, Outcome, Phase, Shift};
use rollout::evidence::{self, Verdict};
use rollout::machine::Goal;
use rollout::note::Note;
use rollout::plan::Upstream;
use rollout::{
    AliasView, BuildStamp, OnNoEvidence, SourceKind, Split, Stage, Subject, Version,
    format_duration,
};
use serde_json::{Value, json};

use crate::cli::events;
use crate::cli::exit::Exit;
use crate::cli::ui::Ui;
use crate::cloud::aws::{
    AliasRecord, AliasStore, AliasWrite, Cloud, StageTarget, VersionInfo, WriteError,
};
use crate::ctx::Ctx;
use crate::evidence::metrics::MetricsSource;
use crate::evidence::probe_call::{InvokeAt, ProbeCall};
use crate::evidence::probe_source::{ProbePlan, ProbeSource, UploadPlan};
use crate::evidence::{AlarmSource, Source, Window};

/// The default poll is the stage's, but never slower than this: the reaction time to an
/// alarm is one poll interval plus a couple of calls.
pub const MAX_DEFAULT_POLL: Duration = Duration::from_secs(5);
/// How long one alias write may keep retrying (`aliases::guarded`); a rollback tries for
/// longer.
pub use aliases::guarded::{ROLLBACK_DEADLINE, WRITE_DEADLINE};
/// The longest a rollout's probe runs: its samples are kept in memory (6 h at 10/s is
/// 216,000 of them).
pub const MAX_PROBE_HORIZON: Duration = Duration::from_secs(6 * 3600);
/// How often a terminal's countdown is redrawn.
const TICK: Duration = Duration::from_secs(1);
/// Reads of CodeDeploy's rollback deployment that may fail in a row before the run stops
/// following it; the rollback goes on in CodeDeploy regardless.
const MAX_FAILED_READS: u32 = 3;
/// Between attempts of a `StopDeployment` that did not go through.
const STOP_RETRY: Duration = Duration::from_secs(1);

/// `--probe`, `--probe-rate`, `--probe-url` of a command that bakes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeFlags {
    pub probe: bool,
    /// `--probe-invoke`: through Lambda's Invoke API, `url` then being its endpoint.
    pub invoke: bool,
    pub rate: Option<f64>,
    pub url: Option<String>,
}

impl ProbeFlags {
    /// A rate or a URL for the probe asks for it as much as `--probe` does.
    pub fn wanted(&self) -> bool {
        self.probe || self.invoke || self.rate.is_some() || self.url.is_some()
    }
}

/// One stage as read before deciding.
pub struct Run<'a, C> {
    pub ctx: &'a Ctx<'a, C>,
    pub stage: &'a Stage,
    pub target: StageTarget,
    pub alias: AliasRecord,
    pub versions: Vec<VersionInfo>,
}

pub enum BakeEnd {
    Passed,
    Failed(String),
    /// Not enough evidence after the bake and its extension, and the stage's policy is to
    /// hold the split: the reason says what was missing.
    Held(String),
    Interrupted,
}

/// How following a CodeDeploy deployment ended (`Action::Follow`).
pub enum FollowEnd {
    /// The deployment succeeded and the bake passed.
    Passed,
    /// The candidate must be taken back; `running`: the deployment had not ended at its
    /// last read.
    Failed {
        reason: String,
        running: bool,
    },
    /// The stage's policy holds (exit 6); `succeeded`: the deployment had ended.
    Held {
        reason: String,
        succeeded: bool,
    },
    Interrupted,
    /// CodeDeploy ended it otherwise: its own rollback, a failure, someone's stop.
    Ended(Outcome),
}

/// How a deployment stopped with rollback ended (`Action::StopDeployment`).
pub enum StopEnd {
    /// CodeDeploy took the traffic back; `Some(id)`: its rollback deployment `id` was still
    /// running when the run stopped waiting.
    RolledBack(Option<String>),
    /// It succeeded before the stop landed.
    Succeeded,
    /// It ended without a rollback: what happened.
    Other(String),
}

pub fn v(version: Version) -> String {
    version.to_string()
}

pub fn split_json(split: Option<Split>) -> Value {
    match split {
        None => Value::Null,
        Some(s) => json!({"version": v(s.version), "weight": s.weight.percent_json()}),
    }
}

pub fn view_json(view: &AliasView) -> Value {
    json!({"version": v(view.version), "candidate": split_json(view.split)})
}

impl<'a, C: Cloud> Ctx<'a, C> {
    pub async fn open(&'a self, stage_name: &str) -> Result<Run<'a, C>> {
        let stage = self.env.stage(stage_name)?;
        let unchanged = || nothing_written(&stage.name);
        let target = self
            .cloud
            .resolve(&stage.name)
            .await
            .with_context(unchanged)?;
        let (alias, versions) = tokio::join!(
            self.cloud.get_alias(&target.alias),
            self.cloud.list_versions()
        );
        Ok(Run {
            ctx: self,
            stage,
            target,
            alias: alias.with_context(unchanged)?,
            versions: versions.with_context(unchanged)?,
        })
    }
}

impl<'a, C: Cloud> Run<'a, C> {
    pub fn published(&self) -> Vec<Version> {
        self.versions.iter().map(|i| i.version).collect()
    }

    pub fn description_of(&self, version: Version) -> &str {
        self.versions
            .iter()
            .find(|i| i.version == version)
            .map_or("", |i| i.description.as_str())
    }

    pub fn label(&self, version: Version) -> String {
        match BuildStamp::parse(self.description_of(version)) {
            Some(s) => format!("{version} ({} {})", s.semver, s.short_sha()),
            None => format!("{version} (unknown semver)"),
        }
    }

    pub fn poll(&self, requested: Option<Duration>) -> Duration {
        requested.unwrap_or(self.stage.poll_interval.min(MAX_DEFAULT_POLL))
    }

    pub fn ui(&self) -> &Ui {
        self.ctx.ui
    }

    pub fn name(&self) -> &str {
        &self.stage.name
    }

    /// The upstream stage's alias (routing and note), when the stage has one.
    pub async fn upstream_view(&self) -> Result<Option<Upstream>> {
        let Some(up) = self.ctx.env.upstream_of(self.stage) else {
            return Ok(None);
        };
        let unchanged = || nothing_written(self.name());
        let t = self
            .ctx
            .cloud
            .resolve(&up.name)
            .await
            .with_context(unchanged)?;
        let alias = self
            .ctx
            .cloud
            .get_alias(&t.alias)
            .await
            .with_context(unchanged)?;
        Ok(Some(Upstream {
            name: up.name.clone(),
            view: alias.view,
            note: Note::parse(&alias.description),
        }))
    }

    /// The stage's evidence sources (its `analysis.sources`, and the probe where `probe`
    /// plans one), in the order their verdicts are reported.
    pub fn sources(&self, probe: Option<&ProbePlan>) -> Vec<Box<dyn Source + 'a>> {
        let analysis = &self.stage.analysis;
        let mut kinds = analysis.sources.clone();
        if probe.is_some() && !kinds.contains(&SourceKind::Probe) {
            kinds.push(SourceKind::Probe);
        }
        kinds
            .iter()
            .filter_map(|kind| -> Option<Box<dyn Source + 'a>> {
                Some(match kind {
                    SourceKind::Alarms => Box::new(AlarmSource::new(
                        self.ctx.cloud,
                        self.stage,
                        &self.ctx.env.project,
                        self.ctx.function,
                    )),
                    SourceKind::Metrics => Box::new(MetricsSource::new(
                        self.ctx.cloud,
                        self.ctx.function,
                        analysis,
                    )),
                    SourceKind::Probe => {
                        Box::new(ProbeSource::new(probe?.clone(), analysis.criteria))
                    }
                })
            })
            .collect()
    }

    pub fn source_names(&self, probe: Option<&ProbePlan>) -> Vec<String> {
        let mut names: Vec<String> = self
            .stage
            .analysis
            .sources
            .iter()
            .map(|k| k.as_str().to_string())
            .collect();
        if probe.is_some() && !names.iter().any(|n| n == "probe") {
            names.push("probe".into());
        }
        names
    }

    /// The probe a rollout runs through its bakes: where `--probe` (or `--probe-rate`,
    /// `--probe-url`) asks for one or the stage's `analysis.sources` lists `"probe"`. It
    /// sends the function's own probe request to the stage's invoke URL unless told otherwise, for at most the plan's bakes
    /// and their extensions (and a minute for the writes between them).
    pub fn probe_plan(&self, flags: &ProbeFlags, goal: &Goal) -> Option<ProbePlan> {
        let analysis = &self.stage.analysis;
        let wanted = flags.wanted() || analysis.uses(SourceKind::Probe);
        let Goal::Rollout(r) = goal else {
            return None;
        };
        if !wanted {
            return None;
        }
        let bakes: Duration = r.steps.iter().map(|s| s.bake).sum();
        let extensions = analysis.max_extension * r.steps.len() as u32;
        let invoke = flags.invoke.then(|| InvokeAt {
            function: self.ctx.function.to_string(),
            alias: self.target.alias.clone(),
            stage: self.name().to_string(),
            variables: self.target.variables.clone(),
        });
        let default_url = if invoke.is_some() {
            String::new()
        } else {
            self.target.invoke_url.clone()
        };
        let project = &self.ctx.env.project;
        let function = project
            .function(self.ctx.function)
            .unwrap_or_else(|| project.main_function());
        let (call, upload, timeout) = match &function.probe {
            rollout::Probe::Http(r) => (ProbeCall::of(r), None, ::probe::engine::DEFAULT_TIMEOUT),
            rollout::Probe::Upload(u) => (
                ProbeCall {
                    method: "PUT".into(),
                    path: format!("s3://{}Bucket/{}", u.bucket, u.prefix),
                    body: None,
                    content_type: None,
                    expect_status: Some(200),
                },
                Some(UploadPlan {
                    probe: u.clone(),
                    stage: self.name().to_string(),
                    variables: self.target.variables.clone(),
                }),
                // Each upload waits for its summary up to the deadline, and a little more so
                // that the engine's own timeout never cuts the wait short.
                Duration::from_secs(u.deadline_seconds + 1),
            ),
        };
        Some(ProbePlan {
            url: flags.url.clone().unwrap_or(default_url),
            invoke: if upload.is_some() { None } else { invoke },
            call,
            upload,
            rate: flags.rate.unwrap_or(analysis.probe_rate),
            horizon: (bakes + extensions + Duration::from_secs(60)).min(MAX_PROBE_HORIZON),
            timeout,
        })
    }

    /// Reads every source once before the first write (`rollout::bake`'s pre-flight);
    /// `Some(reason)` when the evidence fails. A failed read stops the run with nothing
    /// written.
    pub async fn preflight(
        &self,
        sources: &mut [Box<dyn Source + 'a>],
        subject: &Subject,
    ) -> Result<Option<String>> {
        let policy = bake::Policy::new(
            self.name(),
            &self.stage.analysis,
            Duration::ZERO,
            Duration::ZERO,
        );
        let read = self.read_once(sources, subject).await;
        match bake::Bake::preflight(policy).on(Duration::ZERO, read) {
            bake::Next::Fail(reason) => Ok(Some(reason)),
            bake::Next::Unread(e) => Err(anyhow::anyhow!(e).context(nothing_written(self.name()))),
            _ => Ok(None),
        }
    }

    /// The only way an alias is written: the guarded write (`aliases::guarded`) from what
    /// this run last saw. If someone else changed the alias: exit 5, nothing written.
    pub async fn write(&mut self, write: &AliasWrite, what: &str, rollback: bool) -> Result<()> {
        let within = if rollback {
            ROLLBACK_DEADLINE
        } else {
            WRITE_DEADLINE
        };
        let target = StoreAlias {
            cloud: self.ctx.cloud,
            alias: &self.target.alias,
        };
        let result = guarded::write(&target, &self.alias, write, within, |_, err| {
            self.ui().say(format!(
                "{}: the {what} of alias {} did not go through ({err:#}); re-reading and retrying",
                self.name(),
                self.target.alias
            ))
        })
        .await;
        let alias = &self.target.alias;
        match result {
            Ok(done) => {
                self.written(done.record, what);
                Ok(())
            }
            Err(GuardedError::Changed { was, now, .. }) => Err(Exit::Conflict(format!(
                "alias {alias} of stage {} was changed by someone else: it was {was} and is now {now}; nothing further was written. \
                 Check `promote status --stage {}` and run the command again",
                self.name(),
                self.name()
            ))
            .into()),
            Err(GuardedError::Unread(e) | GuardedError::Refused(e)) => Err(e),
            Err(GuardedError::TimedOut { last, within, .. }) => Err(last.context(format!(
                "the {what} of alias {alias} (stage {}) did not go through within {}",
                self.name(),
                format_duration(within)
            ))),
        }
    }

    fn written(&mut self, rec: AliasRecord, what: &str) {
        self.ui().emit(&events::AliasUpdated {
            stage: self.name().to_string(),
            alias: self.target.alias.clone(),
            action: what.to_string(),
            version: v(rec.view.version),
            candidate: events::SplitJson::of(rec.view.split),
            description: rec.description.clone(),
        });
        self.alias = rec;
    }

    /// Watches the evidence for `bake`: the executor of `rollout::bake`, which decides
    /// everything (when to poll, what a verdict, a failed read or missing evidence means,
    /// the stage's `on_no_evidence` and `on_unreadable` policies, and the last look after
    /// an interrupt). The alias is re-read at every poll: if someone else moved it, the
    /// run stops.
    ///
    /// Time is tokio's, so tests run whole bakes in virtual time (`tokio::time::pause`);
    /// the wall-clock window handed to the sources advances with it.
    pub async fn bake(
        &mut self,
        sources: &mut [Box<dyn Source + 'a>],
        subject: &Subject,
        bake: Duration,
        poll: Duration,
        step: &str,
    ) -> Result<BakeEnd> {
        use tokio::time::Instant;
        let started = Instant::now();
        let step_started = SystemTime::now();
        let policy = bake::Policy::new(self.name(), &self.stage.analysis, bake, poll);
        let extension = policy.max_extension;
        let mut machine = bake::Bake::new(policy);
        let tick = if self.ui().is_tty() {
            TICK.min(poll)
        } else {
            poll
        };
        let mut summary = String::new();
        self.ui().emit(&events::BakeStarted {
            stage: self.name().to_string(),
            step: step.to_string(),
            bake_seconds: events::Seconds(bake),
        });
        loop {
            let at = started.elapsed();
            let left = machine.left(at);
            let mut next = bake::Next::Continue;
            if machine.due(at) {
                let window = Window {
                    step_started,
                    now: step_started + at,
                };
                let input = match self.poll_once(sources, subject, window, step, left).await {
                    Ok((verdict, s, early)) => {
                        summary = s;
                        if early && verdict == Verdict::Pass {
                            bake::Input::ShownNoWorse
                        } else {
                            bake::Input::Read(verdict)
                        }
                    }
                    Err(e) if e.downcast_ref::<Exit>().is_some() => return Err(e),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "reading the evidence during the bake failed");
                        bake::Input::ReadFailed(format!("{e:#}"))
                    }
                };
                let failed = matches!(input, bake::Input::ReadFailed(_));
                next = machine.on(at, input);
                if failed && next == bake::Next::Continue {
                    self.ui().say(format!(
                        "{}: could not read the evidence or the alias ({} in a row); retrying{}",
                        self.name(),
                        machine.failed_reads(),
                        if left.is_zero() {
                            " (the bake passes only after a successful read)"
                        } else {
                            ""
                        }
                    ));
                }
            }
            match next {
                bake::Next::Continue => {}
                bake::Next::Extend(why) => self.extended(step, bake, extension, &why),
                end => {
                    self.ui().end_progress();
                    return Ok(match end {
                        bake::Next::Pass => BakeEnd::Passed,
                        bake::Next::Fail(reason) => BakeEnd::Failed(reason),
                        bake::Next::Hold(reason) => BakeEnd::Held(reason),
                        _ => BakeEnd::Interrupted,
                    });
                }
            }
            let state = if machine.extending() {
                format!(
                    "extended by up to {} for evidence",
                    format_duration(extension)
                )
            } else {
                format!(
                    "baking {} left of {}",
                    format_duration(round_up(left)),
                    format_duration(bake)
                )
            };
            self.ui().progress(
                &format!("{step} {summary}"),
                &format!("{}: {step}, {state}, {summary}", self.name()),
            );
            let next_poll = started + machine.next_poll();
            let now = Instant::now();
            let wake = if left.is_zero() {
                next_poll
            } else {
                next_poll.min(now + tick)
            };
            match self
                .sleep_or_look(wake, started, &mut machine, sources, subject)
                .await
            {
                Woke::Timer => {}
                Woke::Failed(reason) => return Ok(BakeEnd::Failed(reason)),
                Woke::Interrupted => return Ok(BakeEnd::Interrupted),
            }
        }
    }

    /// Sleeps until `wake`, or until an interrupt: then one last look before leaving the
    /// split unattended, so that evidence failing now takes the traffic back first (exit 4,
    /// saying the signal waited).
    async fn sleep_or_look(
        &self,
        wake: tokio::time::Instant,
        started: tokio::time::Instant,
        machine: &mut bake::Bake,
        sources: &mut [Box<dyn Source + 'a>],
        subject: &Subject,
    ) -> Woke {
        let now = tokio::time::Instant::now();
        if !self
            .ctx
            .interrupt
            .sleep(wake.saturating_duration_since(now))
            .await
        {
            return Woke::Timer;
        }
        self.ui().end_progress();
        if machine.on(started.elapsed(), bake::Input::Interrupt) == bake::Next::LastLook {
            let look = self.read_once(sources, subject).await;
            if let bake::Next::Fail(reason) = machine.on(started.elapsed(), look) {
                return Woke::Failed(reason);
            }
        }
        Woke::Interrupted
    }

    /// Reads every source once, as the pre-flight check and the last look do.
    pub async fn read_once(
        &self,
        sources: &mut [Box<dyn Source + 'a>],
        subject: &Subject,
    ) -> bake::Input {
        let now = SystemTime::now();
        let window = Window {
            step_started: now,
            now,
        };
        let mut findings = Vec::new();
        for s in sources.iter_mut() {
            match s.assess(subject, window).await {
                Ok(f) => findings.push(f),
                Err(e) => return bake::Input::ReadFailed(format!("{e:#}")),
            }
        }
        bake::Input::Read(evidence::combine(&findings))
    }

    /// The bake ended without enough evidence: says so and ends it as the stage's
    /// `analysis.on_no_evidence` asks.
    fn extended(&self, step: &str, bake: Duration, extension: Duration, why: &str) {
        self.ui().emit(&events::BakeExtended {
            stage: self.name().to_string(),
            step: step.to_string(),
            bake_seconds: events::Seconds(bake),
            max_extension_seconds: events::Seconds(extension),
            reason: why.to_string(),
        });
        self.ui().say(format!(
            "{}: {step}: the {} bake ended without enough evidence ({why}); watching for up to {} more, then {}",
            self.name(),
            format_duration(bake),
            format_duration(extension),
            match self.stage.analysis.on_no_evidence {
                OnNoEvidence::Hold => "holding the split",
                OnNoEvidence::Rollback => "rolling back",
            }
        ));
    }

    /// Exit 6: the split is left where it is, with what was missing and how to go on.
    pub fn held(&self, reason: &str) -> anyhow::Error {
        let view = self.alias.view;
        let name = self.name();
        let at = match view.split {
            Some(s) => format!(
                "{} on version {} (stable {})",
                s.weight, s.version, view.version
            ),
            None => format!("version {} serving all traffic", view.version),
        };
        self.ui().emit(&events::Held {
            stage: name.to_string(),
            reason: reason.to_string(),
            alias: events::AliasJson::of(&view),
        });
        Exit::Held(format!(
            "{reason}; stage {name} is held at {at}, nothing was rolled back. \
             Resume the bake with `promote canary --stage {name}`, move on by hand with `promote advance --stage {name}` \
             (or `promote complete`), or take the traffic back with `promote rollback --stage {name}`"
        ))
        .into()
    }

    /// One poll of a bake: the alias must be as we left it; every source is asked.
    async fn poll_once(
        &mut self,
        sources: &mut [Box<dyn Source + 'a>],
        subject: &Subject,
        window: Window,
        step: &str,
        left: Duration,
    ) -> Result<(Verdict, String, bool)> {
        let now = self.ctx.cloud.get_alias(&self.target.alias).await?;
        if now.view != self.alias.view {
            self.ui().end_progress();
            return Err(Exit::Conflict(format!(
                "alias {} of stage {} was changed by someone else during the bake: it was {} and is now {}; nothing further was written",
                self.target.alias,
                self.name(),
                self.alias.view,
                now.view
            ))
            .into());
        }
        let mut findings = Vec::new();
        for s in sources.iter_mut() {
            findings.push(s.assess(subject, window).await?);
        }
        let verdict = evidence::combine(&findings);
        self.ui().emit(&events::Bake {
            stage: self.name().to_string(),
            step: step.to_string(),
            remaining_seconds: round_up(left).as_secs(),
            verdict: verdict.to_string(),
            evidence: events::EvidenceJson::all(&findings),
        });
        let summary = findings
            .iter()
            .map(|f| format!("{} {}", f.source, f.summary))
            .collect::<Vec<_>>()
            .join("; ");
        let early = evidence::ends_early(&findings);
        Ok((verdict, summary, early))
    }

    /// Exit 130 with where things stand and how to go on.
    pub fn interrupted(&self, goal: &Goal, wrote: bool) -> anyhow::Error {
        let view = self.alias.view;
        let name = self.name();
        let msg = match (view.split, goal) {
            (_, _) if !wrote && view.split.is_none() => {
                format!("stopped before any change; stage {name} was not changed")
            }
            (Some(s), _) => format!(
                "stage {name} is left at {} on version {} (stable {}). Resume with `promote canary --stage {name}`, or roll back with `promote rollback --stage {name}`",
                s.weight, s.version, view.version
            ),
            (None, _) => format!(
                "stage {name} serves version {} but its bake was cut short. Resume the bake with `promote canary --stage {name}` (or `deploy`), or return to the version before with `promote rollback --stage {name} --to-previous`",
                view.version
            ),
        };
        self.ui().emit(&events::Interrupted {
            stage: name.to_string(),
            alias: events::AliasJson::of(&view),
            deployment_id: None,
        });
        Exit::Interrupted(msg).into()
    }
}

impl<'a, C: Cloud> Run<'a, C> {
    /// Follows deployment `id`, judging the candidate at every poll with `rollout::bake`,
    /// the same bake the alias engine runs: the deployment's run is the bake, and its
    /// success the bake's deadline. After the success the bake goes on as the stage's
    /// policies say (missing evidence extends it, then holds or fails); an interrupt gets
    /// the last look.
    pub async fn follow(
        &mut self,
        sources: &mut [Box<dyn Source + 'a>],
        id: &str,
        shift: Shift,
        poll: Duration,
    ) -> Result<FollowEnd> {
        use tokio::time::Instant;
        let name = self.name().to_string();
        let started = Instant::now();
        let step_started = SystemTime::now();
        let policy = bake::Policy::new(&name, &self.stage.analysis, Duration::ZERO, poll);
        let extension = policy.max_extension;
        let mut machine = bake::Bake::until_ended(policy);
        let mut succeeded = false;
        loop {
            let at = started.elapsed();
            let window = Window {
                step_started,
                now: step_started + at,
            };
            let input = match self
                .poll_deployment(sources, id, shift, window, succeeded)
                .await
            {
                Ok(Polled::Judged(progress, verdict)) => {
                    let line = match progress {
                        Some(p) => format!(
                            "{name}: CodeDeploy deployment {id}: {p}, judge: {verdict}, {} elapsed",
                            format_duration(Duration::from_secs(at.as_secs()))
                        ),
                        None => format!(
                            "{name}: CodeDeploy deployment {id} succeeded; judge: {verdict}"
                        ),
                    };
                    self.ui().progress(&verdict.to_string(), &line);
                    if progress.is_none() && !succeeded {
                        succeeded = true;
                        machine.end_at(at);
                    }
                    bake::Input::Read(verdict)
                }
                Ok(Polled::Finished(outcome)) => {
                    self.ui().end_progress();
                    return Ok(FollowEnd::Ended(outcome));
                }
                Err(e) if e.downcast_ref::<Exit>().is_some() => return Err(e),
                Err(e) => {
                    self.ui().say(format!(
                        "{name}: could not read deployment {id} or the evidence ({e:#}); retrying"
                    ));
                    bake::Input::ReadFailed(format!("{e:#}"))
                }
            };
            match machine.on(at, input) {
                bake::Next::Continue => {}
                bake::Next::Extend(why) => self.ui().say(format!(
                    "{name}: deployment {id} succeeded without enough evidence ({why}); watching for up to {} more",
                    format_duration(extension)
                )),
                end => {
                    self.ui().end_progress();
                    return Ok(match end {
                        bake::Next::Pass => FollowEnd::Passed,
                        bake::Next::Fail(reason) => FollowEnd::Failed {
                            reason,
                            running: !succeeded,
                        },
                        bake::Next::Hold(reason) => FollowEnd::Held { reason, succeeded },
                        _ => FollowEnd::Interrupted,
                    });
                }
            }
            let wake = started + machine.next_poll();
            let subject = self.subject(shift.target, shift.current);
            match self
                .sleep_or_look(wake, started, &mut machine, sources, &subject)
                .await
            {
                Woke::Timer => {}
                Woke::Failed(reason) => {
                    return Ok(FollowEnd::Failed {
                        reason,
                        running: !succeeded,
                    });
                }
                Woke::Interrupted => return Ok(FollowEnd::Interrupted),
            }
        }
    }

    /// One poll: the deployment (and its traffic while it shifts), then every evidence
    /// source. Once the deployment has succeeded only the evidence is read.
    async fn poll_deployment(
        &mut self,
        sources: &mut [Box<dyn Source + 'a>],
        id: &str,
        shift: Shift,
        window: Window,
        succeeded: bool,
    ) -> Result<Polled> {
        let mut status = Some(rollout::codedeploy::Status::Succeeded);
        let progress = if succeeded {
            None
        } else {
            let mut d = self.ctx.cloud.get_deployment(id).await?;
            if matches!(
                d.read.status,
                Some(rollout::codedeploy::Status::InProgress | rollout::codedeploy::Status::Baking)
            ) {
                d.read.target_weight = self.ctx.cloud.target_weight(id).await?;
            }
            status = d.read.status;
            match rollout::codedeploy::interpret(&d.read)? {
                Followed::Finished(Outcome::Succeeded) => None,
                Followed::Finished(o) => return Ok(Polled::Finished(o)),
                Followed::Running(p) => Some(p),
            }
        };
        // The subject is what the alias routes now: CodeDeploy moves it, not this run.
        self.alias = self.ctx.cloud.get_alias(&self.target.alias).await?;
        let subject = self.subject(shift.target, shift.current);
        let mut findings = Vec::new();
        for s in sources.iter_mut() {
            findings.push(s.assess(&subject, window).await?);
        }
        let verdict = evidence::combine(&findings);
        self.ui().emit(&events::Deployment {
            stage: self.name().to_string(),
            deployment_id: id.to_string(),
            status: status.map(|s| s.as_str().to_string()),
            phase: progress
                .map_or("succeeded", |p| match p.phase {
                    Phase::Waiting => "waiting",
                    Phase::Shifting => "shifting",
                    Phase::Baking => "baking",
                })
                .to_string(),
            candidate_weight: match progress {
                Some(p) => p.candidate_weight.map(events::Percent),
                None => Some(events::Percent(rollout::Weight::FULL)),
            },
            verdict: verdict.to_string(),
            evidence: events::EvidenceJson::all(&findings),
        });
        Ok(Polled::Judged(progress, verdict))
    }

    /// `StopDeployment` with automatic rollback, retried until it goes through (it is the
    /// rollback; the caller holds signals), then CodeDeploy's rollback followed until the
    /// traffic is back.
    pub async fn stop_deployment(&mut self, id: &str, reason: &str) -> Result<StopEnd> {
        let name = self.name().to_string();
        self.ui().say(format!(
            "{name}: {reason}; stopping CodeDeploy deployment {id} with automatic rollback"
        ));
        let status = self.stop(id).await.map_err(|e| {
            e.context(format!(
                "{reason}; deployment {id} of stage {name} could not be stopped; stop it now with `promote rollback --stage {name}`"
            ))
        })?;
        self.ui().emit(&events::DeploymentStopped {
            stage: name.clone(),
            deployment_id: id.to_string(),
            reason: reason.to_string(),
            status,
        });
        self.wait_stopped(id).await
    }

    async fn stop(&self, id: &str) -> Result<String> {
        let deadline = tokio::time::Instant::now() + ROLLBACK_DEADLINE;
        loop {
            match self.ctx.cloud.stop_deployment(id).await {
                Ok(status) => return Ok(status),
                Err(e) if tokio::time::Instant::now() + STOP_RETRY >= deadline => return Err(e),
                Err(e) => {
                    // A deployment that ended meanwhile cannot be stopped: how it ended is
                    // read (and reported) next, as after a stop.
                    if let Ok(d) = self.ctx.cloud.get_deployment(id).await
                        && let Ok(Followed::Finished(_)) = rollout::codedeploy::interpret(&d.read)
                    {
                        tracing::info!(error = %format!("{e:#}"), "StopDeployment refused: the deployment has ended");
                        return Ok("already ended".into());
                    }
                    self.ui().say(format!(
                        "{}: StopDeployment {id} did not go through ({e:#}); retrying",
                        self.name()
                    ));
                    tokio::time::sleep(STOP_RETRY).await;
                }
            }
        }
    }

    /// After a stop: the deployment reads Stopped with CodeDeploy's rollback deployment,
    /// which is followed until the traffic is back.
    async fn wait_stopped(&self, id: &str) -> Result<StopEnd> {
        let deadline = tokio::time::Instant::now() + ROLLBACK_DEADLINE;
        let poll = self.poll(None);
        loop {
            if let Ok(d) = self.ctx.cloud.get_deployment(id).await {
                match rollout::codedeploy::interpret(&d.read)? {
                    Followed::Finished(Outcome::RolledBack {
                        rollback_deployment_id,
                        ..
                    }) => {
                        return Ok(StopEnd::RolledBack(
                            self.wait_rollback(&rollback_deployment_id).await?,
                        ));
                    }
                    Followed::Finished(Outcome::Succeeded) => return Ok(StopEnd::Succeeded),
                    Followed::Finished(other) => {
                        return Ok(StopEnd::Other(format!(
                            "deployment {id} of stage {} ended without a rollback ({other:?}); take the traffic back with `promote rollback --stage {}`",
                            self.name(),
                            self.name()
                        )));
                    }
                    Followed::Running(_) => {}
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(StopEnd::RolledBack(Some(id.to_string())));
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Follows CodeDeploy's rollback deployment `id` until it has taken the traffic back
    /// (`None`), or for at most [`ROLLBACK_DEADLINE`] (`Some(id)`, still running).
    pub async fn wait_rollback(&self, id: &str) -> Result<Option<String>> {
        let deadline = tokio::time::Instant::now() + ROLLBACK_DEADLINE;
        let poll = self.poll(None);
        let mut failed = 0;
        loop {
            match self.ctx.cloud.get_deployment(id).await {
                Ok(d) => {
                    failed = 0;
                    match rollout::codedeploy::interpret(&d.read)? {
                        Followed::Finished(Outcome::RolledBack { .. } | Outcome::Succeeded) => {
                            return Ok(None);
                        }
                        Followed::Finished(
                            Outcome::RollbackFailed { reason }
                            | Outcome::Failed { reason }
                            | Outcome::Stopped { reason },
                        ) => {
                            let name = self.name();
                            return Err(anyhow::anyhow!(
                                "CodeDeploy's rollback deployment {id} of stage {name} did not take the traffic back: {reason}; the candidate may still take traffic: take it back with `promote rollback --stage {name}`"
                            ));
                        }
                        Followed::Running(p) => {
                            self.ui().progress(
                                &p.to_string(),
                                &format!("{}: rollback deployment {id}: {p}", self.name()),
                            );
                        }
                    }
                }
                Err(e) => {
                    failed += 1;
                    if failed >= MAX_FAILED_READS {
                        return Err(e.context(format!(
                            "reading CodeDeploy's rollback deployment {id}; CodeDeploy goes on with it: check `promote status --stage {}`",
                            self.name()
                        )));
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                self.ui().end_progress();
                return Ok(Some(id.to_string()));
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Exit 6 on a CodeDeploy stage: what the stage's policy holds, and where the traffic is.
    pub fn held_deployment(&self, id: &str, reason: &str, succeeded: bool) -> anyhow::Error {
        let name = self.name();
        self.ui().emit(&events::Held {
            stage: name.to_string(),
            reason: reason.to_string(),
            alias: events::AliasJson::of(&self.alias.view),
        });
        let state = if succeeded {
            format!(
                "deployment {id} succeeded and alias {} serves {}; nothing was rolled back. Return to the version before with `promote rollback --stage {name} --to-previous`",
                self.target.alias, self.alias.view
            )
        } else {
            format!(
                "deployment {id} goes on in CodeDeploy without promote's judge (CodeDeploy still rolls back on the group's alarms). \
                 Follow it again with `promote canary --stage {name}`, or stop it with `promote rollback --stage {name}`"
            )
        };
        Exit::Held(format!("{reason}; stage {name} is held: {state}")).into()
    }

    /// Exit 130 on a CodeDeploy stage: the deployment goes on without the judge.
    pub fn interrupted_deployment(&self, id: &str) -> anyhow::Error {
        let name = self.name();
        self.ui().emit(&events::Interrupted {
            stage: name.to_string(),
            alias: events::AliasJson::of(&self.alias.view),
            deployment_id: Some(id.to_string()),
        });
        Exit::Interrupted(format!(
            "deployment {id} goes on in CodeDeploy without promote (CodeDeploy still rolls back on the group's alarms, but the judge no longer watches). \
             Follow it again with `promote canary --stage {name}`, or stop it with `promote rollback --stage {name}`"
        ))
        .into()
    }
}

/// How a bake's sleep ended.
enum Woke {
    Timer,
    /// Interrupted, and the last look failed: take the traffic back first.
    Failed(String),
    Interrupted,
}

enum Polled {
    /// The deployment runs (or has succeeded: `None`) and the evidence was read.
    Judged(Option<rollout::codedeploy::Progress>, Verdict),
    /// The deployment ended otherwise (CodeDeploy's own rollback, a failure, a stop).
    Finished(Outcome),
}

/// What a failure before the first write means for the stage, and how to go on: a read
/// that failed even after the SDK's retries (a lossy network, an AWS outage) left
/// nothing to undo.
pub fn nothing_written(stage: &str) -> String {
    format!(
        "stage {stage} was not changed (nothing was written); run the command again once AWS answers"
    )
}

/// Seconds for JSON: an integer when whole.
pub fn secs_json(d: Duration) -> Value {
    if d.subsec_nanos() == 0 {
        d.as_secs().into()
    } else {
        d.as_secs_f64().into()
    }
}

pub fn round_up(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// One alias through the cloud's [`AliasStore`], for the guarded write.
struct StoreAlias<'c, C> {
    cloud: &'c C,
    alias: &'c str,
}

impl<C: AliasStore> guarded::Alias for StoreAlias<'_, C> {
    fn name(&self) -> &str {
        self.alias
    }
    async fn read(&self) -> Result<AliasRecord> {
        self.cloud.get_alias(self.alias).await
    }
    async fn update(
        &self,
        write: &AliasWrite,
        revision_id: &str,
    ) -> Result<AliasRecord, WriteError> {
        self.cloud
            .update_alias(self.alias, write, revision_id)
            .await
    }
}
