//! One command's session with one stage: what was read before deciding, the guarded alias
//! write, the pre-flight alarm check, the bake loop and the rollback it may end in.
//!
//! Every alias write goes through [`Run::write`], which re-reads the alias, compares it
//! with what the decision was based on, and passes the RevisionId it just read.

use std::time::{Duration, Instant};

use anyhow::Result;
use rollout::plan::{self, AlarmReading, AlarmValue, Move, Verdict};
use rollout::{
    AliasView, BuildStamp, Environments, Split, Stage, Strategy, Version, Weight, format_duration,
};
use serde_json::{Value, json};

use crate::aws::{AliasRecord, AliasWrite, Cloud, StageTarget, VersionInfo, WriteError};
use crate::exit::Exit;
use crate::interrupt::Interrupt;
use crate::ui::Ui;

/// The default poll is the stage's, but never slower than this: the reaction time to an
/// alarm is one poll interval plus a couple of calls.
pub const MAX_DEFAULT_POLL: Duration = Duration::from_secs(5);
/// Transient AWS errors tolerated in a row while baking, and on the rollback write.
const MAX_FAILED_POLLS: u32 = 3;
const ROLLBACK_ATTEMPTS: u32 = 4;
const ROLLBACK_BACKOFF: Duration = Duration::from_millis(500);
/// How often a terminal's countdown is redrawn.
const TICK: Duration = Duration::from_secs(1);

pub struct Ctx<'a, C> {
    pub cloud: &'a C,
    pub env: &'a Environments,
    pub ui: &'a Ui,
    pub interrupt: &'a Interrupt,
}

/// One stage as read before deciding.
pub struct Run<'a, C> {
    pub ctx: &'a Ctx<'a, C>,
    pub stage: &'a Stage,
    pub target: StageTarget,
    pub alias: AliasRecord,
    pub versions: Vec<VersionInfo>,
    pub last_readings: Vec<AlarmReading>,
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
        let target = self.cloud.resolve(&stage.name).await?;
        let (alias, versions) = tokio::join!(
            self.cloud.get_alias(&target.alias),
            self.cloud.list_versions()
        );
        Ok(Run {
            ctx: self,
            stage,
            target,
            alias: alias?,
            versions: versions?,
            last_readings: Vec::new(),
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

    pub fn semver_guard(&self, candidate: Version, allow_downgrade: bool) -> Result<Move, Exit> {
        let stable = self.alias.view.version;
        let (cd, sd) = (self.description_of(candidate), self.description_of(stable));
        let (cs, ss) = (BuildStamp::parse(cd), BuildStamp::parse(sd));
        Ok(plan::semver_guard(
            &self.stage.name,
            (candidate, cs.as_ref(), cd),
            (stable, ss.as_ref(), sd),
            allow_downgrade,
        )?)
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

    /// The candidate the upstream stage serves at 100% (or a canary in flight here).
    pub async fn candidate(&self, explicit: Option<Version>) -> Result<Version> {
        let upstream = match (
            explicit,
            self.alias.view.split,
            self.ctx.env.upstream_of(self.stage),
        ) {
            (None, None, Some(up)) => {
                let t = self.ctx.cloud.resolve(&up.name).await?;
                Some((
                    up.name.clone(),
                    self.ctx.cloud.get_alias(&t.alias).await?.view,
                ))
            }
            _ => None,
        };
        let up = upstream.as_ref().map(|(n, view)| (n.as_str(), view));
        Ok(
            plan::choose_candidate(self.name(), explicit, &self.alias.view, up)
                .map_err(Exit::from)?,
        )
    }

    /// Refuses (exit 3, no write) if an alarm of the stage is failing or missing.
    pub async fn preflight(&self) -> Result<Vec<AlarmReading>> {
        let names = self.stage.alarm_names();
        let readings = self.ctx.cloud.read(&names).await?;
        match plan::alarm_verdict(&names, &readings, self.stage.insufficient_data_is_failure) {
            Verdict::Healthy => Ok(readings),
            Verdict::Failing(r) => Err(Exit::Refused(format!(
                "refusing to change stage {1}: alarm {0} is {2} ({3}); nothing was changed. Investigate it and retry once it is OK",
                r.name,
                self.name(),
                r.value,
                if r.reason.is_empty() { "no reason given" } else { &r.reason }
            ))
            .into()),
            Verdict::Missing(names) => Err(Exit::Refused(format!(
                "refusing to change stage {1}: alarm(s) {0} (listed in {2}) do not exist in CloudWatch, so they cannot protect this change; nothing was changed",
                names.join(", "),
                self.name(),
                self.stage.path.display()
            ))
            .into()),
        }
    }

    /// The only way an alias is written: re-read, compare, write with the fresh RevisionId.
    pub async fn write(&mut self, write: AliasWrite, what: &str) -> Result<()> {
        let alias = self.target.alias.clone();
        let now = self.ctx.cloud.get_alias(&alias).await?;
        // Lambda rejects a stale RevisionId by itself; comparing the content too catches the
        // same race on emulators that do not rotate RevisionIds.
        if now != self.alias {
            return Err(Exit::Conflict(format!(
                "alias {alias} of stage {} was changed by someone else: it was {} and is now {}; nothing further was written. \
                 Check `promote status --stage {}` and run the command again",
                self.name(),
                self.alias.view,
                now.view,
                self.name()
            ))
            .into());
        }
        tracing::info!(alias = %alias, revision_id = %now.revision_id, ?write, "UpdateAlias");
        match self
            .ctx
            .cloud
            .update_alias(&alias, &write, &now.revision_id)
            .await
        {
            Ok(rec) => {
                self.ui().event(json!({
                    "event": "alias_updated", "stage": self.name(), "alias": alias, "action": what,
                    "version": v(rec.view.version), "candidate": split_json(rec.view.split),
                }));
                self.alias = rec;
                Ok(())
            }
            Err(WriteError::Conflict(m)) => Err(Exit::Conflict(format!(
                "{m}; nothing further was written. Check `promote status --stage {}`",
                self.name()
            ))
            .into()),
            Err(WriteError::Other(e)) => Err(e),
        }
    }

    pub fn stop_if_interrupted(&self, before: &str) -> Result<()> {
        if self.ctx.interrupt.is_set() {
            return Err(Exit::Interrupted(format!(
                "stopped before {before}; stage {} was not changed",
                self.name()
            ))
            .into());
        }
        Ok(())
    }

    /// Watches the alarms for `bake`. Also re-reads the alias every poll: if someone else
    /// moved it, the run stops without another write.
    pub async fn bake(&mut self, bake: Duration, poll: Duration, step: &str) -> Result<BakeEnd> {
        let names = self.stage.alarm_names();
        let deadline = Instant::now() + bake;
        // A terminal shows the countdown every second; the alarms are read every `poll`.
        let tick = if self.ui().is_tty() {
            TICK.min(poll)
        } else {
            poll
        };
        let mut next_poll = Instant::now();
        let mut summary = String::new();
        let mut failed_polls = 0;
        self.ui().event(json!({"event": "bake_started", "stage": self.name(), "step": step, "bake_seconds": secs_json(bake)}));
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if Instant::now() >= next_poll || left.is_zero() {
                next_poll = Instant::now() + poll;
                match self.check_during_bake(&names, step, left).await {
                    Ok(Some(end)) => {
                        self.ui().end_progress();
                        return Ok(end);
                    }
                    Ok(None) => failed_polls = 0,
                    // A conflict is final; a failed read is retried at the next poll, for a while.
                    Err(e) if e.downcast_ref::<Exit>().is_some() => return Err(e),
                    Err(e) if failed_polls + 1 < MAX_FAILED_POLLS => {
                        failed_polls += 1;
                        tracing::warn!(failed_polls, error = %format!("{e:#}"), "reading the stage during the bake failed");
                        self.ui().say(format!(
                            "{}: could not read the alarms or the alias ({e:#}); retrying",
                            self.name()
                        ));
                    }
                    Err(e) => {
                        self.ui().end_progress();
                        return Err(e.context(format!(
                            "stage {} could not be watched ({MAX_FAILED_POLLS} polls in a row failed); the alias is left as it is ({}). \
                             Resume with `promote canary --stage {}` or take the traffic back with `promote rollback --stage {}`",
                            self.name(),
                            self.alias.view,
                            self.name(),
                            self.name()
                        )));
                    }
                }
                summary = alarm_summary(&self.last_readings);
            }
            self.ui().progress(
                &format!("{step} {summary}"),
                &format!(
                    "{}: {step}, baking {} left of {}, alarms {summary}",
                    self.name(),
                    format_duration(round_up(left)),
                    format_duration(bake)
                ),
            );
            if left.is_zero() {
                self.ui().end_progress();
                return Ok(BakeEnd::Done);
            }
            let wake = next_poll.min(deadline).min(Instant::now() + tick);
            if self
                .ctx
                .interrupt
                .sleep(wake.saturating_duration_since(Instant::now()))
                .await
            {
                self.ui().end_progress();
                return Ok(BakeEnd::Interrupted);
            }
        }
    }

    /// One poll of a bake: the alias must be as we left it, and the alarms healthy.
    async fn check_during_bake(
        &mut self,
        names: &[String],
        step: &str,
        left: Duration,
    ) -> Result<Option<BakeEnd>> {
        let (readings, now) = tokio::join!(
            self.ctx.cloud.read(names),
            self.ctx.cloud.get_alias(&self.target.alias)
        );
        let (readings, now) = (readings?, now?);
        if now != self.alias {
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
        self.ui().event(json!({
            "event": "bake", "stage": self.name(), "step": step,
            "remaining_seconds": round_up(left).as_secs(),
            "alarms": readings.iter().map(|r| json!({"name": r.name, "state": r.value.to_string()})).collect::<Vec<_>>(),
        }));
        let end =
            match plan::alarm_verdict(names, &readings, self.stage.insufficient_data_is_failure) {
                Verdict::Healthy => None,
                Verdict::Failing(r) => Some(BakeEnd::Failed(r)),
                Verdict::Missing(missing) => Some(BakeEnd::Failed(AlarmReading {
                    name: missing.join(", "),
                    value: AlarmValue::InsufficientData,
                    reason: "the alarm no longer exists in CloudWatch, so the stage is not watched"
                        .into(),
                })),
            };
        self.last_readings = readings;
        Ok(end)
    }

    /// An alarm fired: take the traffic back in one UpdateAlias and exit 4.
    pub async fn roll_back(
        &mut self,
        fired: AlarmReading,
        back_to: AliasWrite,
        had: String,
    ) -> Result<()> {
        let reason = if fired.reason.is_empty() {
            "no reason given".to_string()
        } else {
            fired.reason.clone()
        };
        self.ui().say(format!(
            "{}: alarm {} is {}: {reason}",
            self.name(),
            fired.name,
            fired.value
        ));
        let target_version = back_to.version;
        // Taking traffic back is the one write that must not give up on a transient AWS
        // error; a conflict (someone else moved the alias) still stops at once.
        let mut attempt = 1;
        loop {
            match self.write(back_to.clone(), "rollback").await {
                Ok(()) => break,
                Err(e) if e.downcast_ref::<Exit>().is_some() => return Err(e),
                Err(e) if attempt < ROLLBACK_ATTEMPTS => {
                    tracing::warn!(attempt, error = %format!("{e:#}"), "rollback write failed; retrying");
                    self.ui().say(format!(
                        "{}: rollback attempt {attempt} failed ({e:#}); retrying",
                        self.name()
                    ));
                    tokio::time::sleep(ROLLBACK_BACKOFF * attempt).await;
                    attempt += 1;
                }
                Err(e) => {
                    return Err(e.context(format!(
                        "alarm {} fired on stage {} but the rollback failed {ROLLBACK_ATTEMPTS} times; take the traffic back now with `promote rollback --stage {}`",
                        fired.name,
                        self.name(),
                        self.name()
                    )));
                }
            }
        }
        let msg = format!(
            "alarm {} fired on stage {} ({reason}); {had} was taken back: alias {} serves version {} only",
            fired.name,
            self.name(),
            self.target.alias,
            target_version
        );
        self.ui().event(json!({
            "event": "rolled_back", "stage": self.name(), "alarm": fired.name, "state": fired.value.to_string(),
            "reason": fired.reason, "version": v(target_version),
        }));
        Err(Exit::RolledBack(msg).into())
    }

    pub fn interrupted(&self, candidate: Version) -> anyhow::Error {
        let view = self.alias.view;
        let msg = match view.split {
            Some(s) => format!(
                "stage {} is left at {} on version {} (stable {}). Resume with `promote canary --stage {}`, or roll back with `promote rollback --stage {}`",
                self.name(),
                s.weight,
                s.version,
                view.version,
                self.name(),
                self.name()
            ),
            None => format!(
                "stage {} serves version {} (candidate {candidate}); its bake was cut short. To return to the version before, run `promote rollback --stage {} --to-previous`",
                self.name(),
                view.version,
                self.name()
            ),
        };
        self.ui().event(
            json!({"event": "interrupted", "stage": self.name(), "alias": view_json(&view)}),
        );
        Exit::Interrupted(msg).into()
    }
}

pub enum BakeEnd {
    Done,
    Failed(AlarmReading),
    Interrupted,
}

/// Seconds for JSON: an integer when whole.
pub fn secs_json(d: Duration) -> Value {
    if d.subsec_nanos() == 0 {
        d.as_secs().into()
    } else {
        d.as_secs_f64().into()
    }
}

/// "then watch 4 alarm(s) for 5m00s", or nothing without a bake.
pub fn watch_clause(alarms: usize, bake: Duration) -> String {
    if bake.is_zero() {
        String::new()
    } else {
        format!(
            ", then watch {alarms} alarm(s) for {}",
            format_duration(bake)
        )
    }
}

pub fn round_up(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

pub fn alarm_summary(readings: &[AlarmReading]) -> String {
    let count = |v: AlarmValue| readings.iter().filter(|r| r.value == v).count();
    let mut parts = vec![format!("{} OK", count(AlarmValue::Ok))];
    let (a, i) = (
        count(AlarmValue::Alarm),
        count(AlarmValue::InsufficientData),
    );
    if a > 0 {
        parts.push(format!("{a} ALARM"));
    }
    if i > 0 {
        parts.push(format!("{i} INSUFFICIENT_DATA"));
    }
    parts.join(", ")
}

pub fn configured_bake(stage: &Stage, weight: Weight) -> Duration {
    match &stage.strategy {
        Strategy::AllAtOnce { bake } => *bake,
        Strategy::Canary { steps } => plan::remaining_steps(steps, Some(weight))
            .first()
            .map_or(Duration::ZERO, |s| s.bake),
    }
}

pub fn step_label(i: usize, n: usize, weight: Weight) -> String {
    format!("step {}/{n} at {weight}", i + 1)
}

pub fn noop(ui: &Ui, stage: &str, version: Version, what: &str) {
    let text = format!("{stage} already serves version {version}; nothing to {what}");
    ui.result(
        &text,
        json!({"event": "done", "stage": stage, "result": "noop", "version": v(version)}),
    );
}
