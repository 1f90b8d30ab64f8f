//! The mutating commands: deploy, canary, advance, complete, rollback.
//!
//! Each one reads the stage's state from AWS, asks `rollout::plan` what to do, checks
//! everything it can before the first write, and then writes the alias only through
//! [`Run::write`], which re-reads the alias and compares it with what the decision was
//! based on, then passes the RevisionId it just read.

use std::time::{Duration, Instant};

use anyhow::Result;
use rollout::plan::{self, AlarmReading, AlarmValue, AliasNote, Move, Verdict};
use rollout::{
    AliasView, BuildStamp, Environments, Split, Stage, Step, Strategy, Version, Weight,
    format_duration,
};
use serde_json::{Value, json};

use crate::aws::{AliasRecord, AliasWrite, Cloud, StageTarget, VersionInfo, WriteError};
use crate::exit::Exit;
use crate::interrupt::Interrupt;
use crate::ui::Ui;

/// The default poll is the stage's, but never slower than this: the reaction time to an
/// alarm is one poll interval plus a couple of calls.
pub const MAX_DEFAULT_POLL: Duration = Duration::from_secs(5);
/// How often a terminal's countdown is redrawn.
const TICK: Duration = Duration::from_secs(1);

pub struct Ctx<'a, C> {
    pub cloud: &'a C,
    pub env: &'a Environments,
    pub ui: &'a Ui,
    pub interrupt: &'a Interrupt,
}

/// One stage as read before deciding.
struct Run<'a, C> {
    ctx: &'a Ctx<'a, C>,
    stage: &'a Stage,
    target: StageTarget,
    alias: AliasRecord,
    versions: Vec<VersionInfo>,
    last_readings: Vec<AlarmReading>,
}

fn v(version: Version) -> String {
    version.to_string()
}

fn split_json(split: Option<Split>) -> Value {
    match split {
        None => Value::Null,
        Some(s) => json!({"version": v(s.version), "weight": s.weight.percent_json()}),
    }
}

fn view_json(view: &AliasView) -> Value {
    json!({"version": v(view.version), "candidate": split_json(view.split)})
}

impl<'a, C: Cloud> Ctx<'a, C> {
    async fn open(&'a self, stage_name: &str) -> Result<Run<'a, C>> {
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
    fn published(&self) -> Vec<Version> {
        self.versions.iter().map(|i| i.version).collect()
    }

    fn description_of(&self, version: Version) -> &str {
        self.versions
            .iter()
            .find(|i| i.version == version)
            .map_or("", |i| i.description.as_str())
    }

    fn label(&self, version: Version) -> String {
        match BuildStamp::parse(self.description_of(version)) {
            Some(s) => format!("{version} ({} {})", s.semver, s.short_sha()),
            None => format!("{version} (unknown semver)"),
        }
    }

    fn semver_guard(&self, candidate: Version, allow_downgrade: bool) -> Result<Move, Exit> {
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

    fn poll(&self, requested: Option<Duration>) -> Duration {
        requested.unwrap_or(self.stage.poll_interval.min(MAX_DEFAULT_POLL))
    }

    fn ui(&self) -> &Ui {
        self.ctx.ui
    }

    fn name(&self) -> &str {
        &self.stage.name
    }

    /// The candidate the upstream stage serves at 100% (or a canary in flight here).
    async fn candidate(&self, explicit: Option<Version>) -> Result<Version> {
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
    async fn preflight(&self) -> Result<Vec<AlarmReading>> {
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
    async fn write(&mut self, write: AliasWrite, what: &str) -> Result<()> {
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

    fn stop_if_interrupted(&self, before: &str) -> Result<()> {
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
    async fn bake(&mut self, bake: Duration, poll: Duration, step: &str) -> Result<BakeEnd> {
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
        self.ui().event(json!({"event": "bake_started", "stage": self.name(), "step": step, "bake_seconds": secs_json(bake)}));
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if Instant::now() >= next_poll || left.is_zero() {
                next_poll = Instant::now() + poll;
                if let Some(end) = self.check_during_bake(&names, step, left).await? {
                    self.ui().end_progress();
                    return Ok(end);
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
    async fn roll_back(
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
        self.write(back_to, "rollback").await?;
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

    fn interrupted(&self, candidate: Version) -> anyhow::Error {
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

enum BakeEnd {
    Done,
    Failed(AlarmReading),
    Interrupted,
}

/// Seconds for JSON: an integer when whole.
fn secs_json(d: Duration) -> Value {
    if d.subsec_nanos() == 0 {
        d.as_secs().into()
    } else {
        d.as_secs_f64().into()
    }
}

/// "then watch 4 alarm(s) for 5m00s", or nothing without a bake.
fn watch_clause(alarms: usize, bake: Duration) -> String {
    if bake.is_zero() {
        String::new()
    } else {
        format!(
            ", then watch {alarms} alarm(s) for {}",
            format_duration(bake)
        )
    }
}

fn round_up(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

fn alarm_summary(readings: &[AlarmReading]) -> String {
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

fn configured_bake(stage: &Stage, weight: Weight) -> Duration {
    match &stage.strategy {
        Strategy::AllAtOnce { bake } => *bake,
        Strategy::Canary { steps } => plan::remaining_steps(steps, Some(weight))
            .first()
            .map_or(Duration::ZERO, |s| s.bake),
    }
}

fn step_label(i: usize, n: usize, weight: Weight) -> String {
    format!("step {}/{n} at {weight}", i + 1)
}

fn noop(ui: &Ui, stage: &str, version: Version, what: &str) {
    let text = format!("{stage} already serves version {version}; nothing to {what}");
    ui.result(
        &text,
        json!({"event": "done", "stage": stage, "result": "noop", "version": v(version)}),
    );
}

pub struct DeployOpts {
    pub stage: String,
    pub version: Option<Version>,
    pub allow_downgrade: bool,
    pub bake: Option<Duration>,
    pub poll: Option<Duration>,
    pub dry_run: bool,
}

pub async fn deploy<C: Cloud>(ctx: &Ctx<'_, C>, o: DeployOpts) -> Result<()> {
    let mut run = ctx.open(&o.stage).await?;
    let name = run.name().to_string();
    let bake = match (&run.stage.strategy, o.bake) {
        (Strategy::AllAtOnce { .. }, Some(b)) => b,
        (Strategy::AllAtOnce { bake }, None) => *bake,
        (Strategy::Canary { .. }, _) => {
            return Err(Exit::BadInput(format!(
                "stage {name} uses the canary strategy ({}); move it with `promote canary --stage {name}`",
                run.stage.path.display()
            ))
            .into());
        }
    };
    if let Some(s) = run.alias.view.split {
        return Err(Exit::Refused(format!(
            "{name} is mid-canary with version {} at {}; complete it (`promote complete --stage {name}`) or roll it back (`promote rollback --stage {name}`) first",
            s.version, s.weight
        ))
        .into());
    }
    let version = run.candidate(o.version).await?;
    plan::validate_target(version, &run.published()).map_err(Exit::from)?;
    let stable = run.alias.view.version;
    if run.semver_guard(version, o.allow_downgrade)? == Move::NoOp {
        noop(run.ui(), &name, version, "deploy");
        return Ok(());
    }
    let poll = run.poll(o.poll);
    run.preflight().await?;
    let (from, to) = (run.label(stable), run.label(version));
    if o.dry_run {
        let text = format!(
            "dry run: would move alias {} of stage {name} from version {from} to version {to} (routing cleared, description \"{}\"){}",
            run.target.alias,
            AliasNote {
                previous: Some(stable)
            }
            .format(),
            watch_clause(run.stage.alarms.len(), bake)
        );
        run.ui().result(&text, json!({"event": "dry_run", "command": "deploy", "stage": name, "alias": run.target.alias,
            "from": view_json(&run.alias.view), "to": {"version": v(version), "candidate": null}, "bake_seconds": secs_json(bake)}));
        return Ok(());
    }
    run.stop_if_interrupted("the deploy")?;
    run.write(AliasWrite::serve(version, stable), "deploy")
        .await?;
    run.ui().say(format!(
        "{name}: alias {} now serves version {to} (was {from})",
        run.target.alias
    ));
    if !bake.is_zero() {
        match run.bake(bake, poll, &format!("deployed {version}")).await? {
            BakeEnd::Done => {}
            BakeEnd::Failed(r) => {
                let back = AliasWrite::serve(stable, version);
                return run.roll_back(r, back, format!("version {version}")).await;
            }
            BakeEnd::Interrupted => return Err(run.interrupted(version)),
        }
    }
    let text = format!("{name} serves version {to}");
    run.ui().result(&text, json!({"event": "done", "stage": name, "result": "deployed", "version": v(version), "previous": v(stable)}));
    Ok(())
}

pub struct CanaryOpts {
    pub stage: String,
    pub version: Option<Version>,
    pub weight: Option<Weight>,
    pub bake: Option<Duration>,
    pub poll: Option<Duration>,
    pub allow_downgrade: bool,
    pub dry_run: bool,
}

pub async fn canary<C: Cloud>(ctx: &Ctx<'_, C>, o: CanaryOpts) -> Result<()> {
    let mut run = ctx.open(&o.stage).await?;
    let name = run.name().to_string();
    let candidate = run.candidate(o.version).await?;
    let published = run.published();
    plan::validate_target(candidate, &published).map_err(Exit::from)?;
    let stable = run.alias.view.version;
    if run.semver_guard(candidate, o.allow_downgrade)? == Move::NoOp {
        noop(run.ui(), &name, candidate, "roll out");
        return Ok(());
    }
    let current = run
        .alias
        .view
        .split
        .filter(|s| s.version == candidate)
        .map(|s| s.weight);
    let single = o.weight.is_some();
    let mut steps: Vec<Step> = match (o.weight, &run.stage.strategy) {
        (Some(w), _) => vec![Step {
            weight: w,
            bake: configured_bake(run.stage, w),
        }],
        (None, Strategy::Canary { steps }) => plan::remaining_steps(steps, current),
        (None, Strategy::AllAtOnce { .. }) => {
            return Err(Exit::BadInput(format!(
                "stage {name} uses the all_at_once strategy ({}); use `promote deploy --stage {name}`, or give --weight W for a one-off split",
                run.stage.path.display()
            ))
            .into());
        }
    };
    if let Some(b) = o.bake {
        for s in &mut steps {
            s.bake = b;
        }
    }
    for s in steps.iter().filter(|s| !s.weight.is_full()) {
        plan::validate_split(
            stable,
            Split {
                version: candidate,
                weight: s.weight,
            },
            &published,
        )
        .map_err(Exit::from)?;
    }
    let poll = run.poll(o.poll);
    run.preflight().await?;
    let (from, to) = (run.label(stable), run.label(candidate));
    let plan_json: Vec<Value> = steps
        .iter()
        .map(|s| json!({"weight": s.weight.percent_json(), "bake_seconds": secs_json(s.bake)}))
        .collect();
    if o.dry_run {
        let mut text = format!(
            "dry run: stage {name} (alias {}) serves {}; candidate version {to}, stable version {from}\n",
            run.target.alias, run.alias.view
        );
        for (i, s) in steps.iter().enumerate() {
            let action = if s.weight.is_full() {
                format!(
                    "move the alias to version {candidate} and clear the routing (description \"{}\")",
                    AliasNote {
                        previous: Some(stable)
                    }
                    .format()
                )
            } else if run.alias.view.split
                == Some(Split {
                    version: candidate,
                    weight: s.weight,
                })
            {
                format!(
                    "keep {} on version {candidate} (already in place)",
                    s.weight
                )
            } else {
                format!(
                    "route {} to version {candidate} (AdditionalVersionWeights {{\"{candidate}\": {}}})",
                    s.weight,
                    s.weight.fraction()
                )
            };
            text += &format!(
                "  {}. {action}{}\n",
                i + 1,
                watch_clause(run.stage.alarms.len(), s.bake)
            );
        }
        if single {
            text += "  then leave the split in place (advance, complete or rollback next)\n";
        }
        run.ui().result(text.trim_end(), json!({"event": "dry_run", "command": "canary", "stage": name, "alias": run.target.alias,
            "from": view_json(&run.alias.view), "candidate": v(candidate), "stable": v(stable), "steps": plan_json}));
        return Ok(());
    }
    run.ui().event(json!({"event": "plan", "stage": name, "alias": run.target.alias, "candidate": v(candidate), "stable": v(stable),
        "resumed_from": current.map(|w| w.percent_json()), "steps": plan_json}));
    if let Some(w) = current {
        run.ui().say(format!(
            "{name}: resuming the canary of version {to} at {w}"
        ));
    }
    let n = steps.len();
    for (i, s) in steps.iter().enumerate() {
        let label = step_label(i, n, s.weight);
        run.stop_if_interrupted(&label).map_err(|e| {
            if i == 0 {
                e
            } else {
                run.interrupted(candidate)
            }
        })?;
        if s.weight.is_full() {
            run.write(AliasWrite::serve(candidate, stable), "complete")
                .await?;
            run.ui().say(format!(
                "{name}: {label}: alias {} serves version {to} (was {from})",
                run.target.alias
            ));
        } else {
            let split = Split {
                version: candidate,
                weight: s.weight,
            };
            if run.alias.view.split != Some(split) {
                run.write(AliasWrite::split(stable, split), "shift").await?;
                run.ui().say(format!(
                    "{name}: {label}: {} of traffic to version {to}, the rest on {from}",
                    s.weight
                ));
            }
        }
        if s.bake.is_zero() {
            continue;
        }
        match run.bake(s.bake, poll, &label).await? {
            BakeEnd::Done => {}
            BakeEnd::Failed(r) => {
                let (back, had) = if s.weight.is_full() {
                    (
                        AliasWrite::serve(stable, candidate),
                        format!("version {candidate} (100%)"),
                    )
                } else {
                    (
                        AliasWrite::clear(stable),
                        format!("version {candidate} ({})", s.weight),
                    )
                };
                return run.roll_back(r, back, had).await;
            }
            BakeEnd::Interrupted => return Err(run.interrupted(candidate)),
        }
    }
    let done = run.alias.view;
    let (text, result) = match done.split {
        Some(s) => (
            format!(
                "{name}: version {to} takes {} of traffic (stable {from}); next: `promote advance --stage {name}`, `promote complete --stage {name}` or `promote rollback --stage {name}`",
                s.weight
            ),
            "split",
        ),
        None => (format!("{name} serves version {to}"), "completed"),
    };
    run.ui().result(&text, json!({"event": "done", "stage": name, "result": result, "alias": view_json(&done), "previous": v(stable)}));
    Ok(())
}

pub struct AdvanceOpts {
    pub stage: String,
    pub weight: Option<Weight>,
    pub bake: Option<Duration>,
    pub poll: Option<Duration>,
    pub dry_run: bool,
}

/// Moves a canary one step (or to `--weight`) and bakes like that step of `canary` would.
pub async fn advance<C: Cloud>(ctx: &Ctx<'_, C>, o: AdvanceOpts) -> Result<()> {
    let (stage, weight, dry_run) = (o.stage.as_str(), o.weight, o.dry_run);
    let mut run = ctx.open(stage).await?;
    let name = run.name().to_string();
    let steps = match &run.stage.strategy {
        Strategy::Canary { steps } => steps.clone(),
        Strategy::AllAtOnce { .. } => Vec::new(),
    };
    let next = plan::advance_to(&name, &steps, &run.alias.view, weight).map_err(Exit::from)?;
    let Some(split) = run.alias.view.split else {
        unreachable!("advance_to checked the split")
    };
    let bake = o.bake.unwrap_or_else(|| configured_bake(run.stage, next));
    let poll = run.poll(o.poll);
    if next.is_full() {
        return complete_run(run, dry_run, Some((bake, poll))).await;
    }
    let stable = run.alias.view.version;
    let new = Split {
        version: split.version,
        weight: next,
    };
    plan::validate_split(stable, new, &run.published()).map_err(Exit::from)?;
    run.preflight().await?;
    if dry_run {
        let text = format!(
            "dry run: would route {next} (was {}) of stage {name} to version {} (AdditionalVersionWeights {{\"{}\": {}}}); stable stays {}{}",
            split.weight,
            run.label(split.version),
            split.version,
            next.fraction(),
            run.label(stable),
            watch_clause(run.stage.alarms.len(), bake)
        );
        run.ui().result(&text, json!({"event": "dry_run", "command": "advance", "stage": name, "from": view_json(&run.alias.view),
            "to": {"version": v(stable), "candidate": split_json(Some(new))}}));
        return Ok(());
    }
    run.stop_if_interrupted("advancing")?;
    run.write(AliasWrite::split(stable, new), "advance").await?;
    if !bake.is_zero() {
        let label = format!("advanced to {next}");
        match run.bake(bake, poll, &label).await? {
            BakeEnd::Done => {}
            BakeEnd::Failed(r) => {
                let back = AliasWrite::clear(stable);
                return run
                    .roll_back(r, back, format!("version {} ({next})", split.version))
                    .await;
            }
            BakeEnd::Interrupted => return Err(run.interrupted(split.version)),
        }
    }
    let text = format!(
        "{name}: version {} takes {next} of traffic (was {})",
        run.label(split.version),
        split.weight
    );
    run.ui().result(&text, json!({"event": "done", "stage": name, "result": "split", "alias": view_json(&run.alias.view)}));
    Ok(())
}

pub async fn complete<C: Cloud>(ctx: &Ctx<'_, C>, stage: &str, dry_run: bool) -> Result<()> {
    let run = ctx.open(stage).await?;
    complete_run(run, dry_run, None).await
}

/// Moves the alias to the candidate; `bake` (duration, poll) watches the alarms after it
/// and returns to the stable version if one fires.
async fn complete_run<C: Cloud>(
    mut run: Run<'_, C>,
    dry_run: bool,
    bake: Option<(Duration, Duration)>,
) -> Result<()> {
    let name = run.name().to_string();
    let Some(split) = run.alias.view.split else {
        noop(
            run.ui(),
            &name,
            run.alias.view.version,
            "complete (no canary in progress)",
        );
        return Ok(());
    };
    let stable = run.alias.view.version;
    plan::validate_target(split.version, &run.published()).map_err(Exit::from)?;
    run.preflight().await?;
    let note = AliasNote {
        previous: Some(stable),
    }
    .format();
    if dry_run {
        let text = format!(
            "dry run: would move alias {} of stage {name} to version {} (was {} with {} on the candidate), clear the routing, description \"{note}\"",
            run.target.alias,
            run.label(split.version),
            run.label(stable),
            split.weight
        );
        run.ui().result(&text, json!({"event": "dry_run", "command": "complete", "stage": name, "from": view_json(&run.alias.view),
            "to": {"version": v(split.version), "candidate": null}, "description": note}));
        return Ok(());
    }
    run.stop_if_interrupted("completing")?;
    run.write(AliasWrite::serve(split.version, stable), "complete")
        .await?;
    if let Some((bake, poll)) = bake.filter(|(b, _)| !b.is_zero()) {
        match run.bake(bake, poll, "completed").await? {
            BakeEnd::Done => {}
            BakeEnd::Failed(r) => {
                let back = AliasWrite::serve(stable, split.version);
                return run
                    .roll_back(r, back, format!("version {} (100%)", split.version))
                    .await;
            }
            BakeEnd::Interrupted => return Err(run.interrupted(split.version)),
        }
    }
    let text = format!(
        "{name} serves version {} (was {})",
        run.label(split.version),
        run.label(stable)
    );
    run.ui().result(&text, json!({"event": "done", "stage": name, "result": "completed", "alias": view_json(&run.alias.view), "previous": v(stable)}));
    Ok(())
}

pub async fn rollback<C: Cloud>(
    ctx: &Ctx<'_, C>,
    stage: &str,
    to_previous: bool,
    dry_run: bool,
) -> Result<()> {
    let mut run = ctx.open(stage).await?;
    let name = run.name().to_string();
    let view = run.alias.view;
    // Mid-canary, the version served before this promotion is the stable one, so
    // --to-previous means the same as a plain rollback: clear the split.
    let write = if to_previous && view.split.is_none() {
        let Some(previous) = AliasNote::parse(&run.alias.description).previous else {
            return Err(Exit::BadInput(format!(
                "alias {} of stage {name} records no previous version (its description is {:?}); move it explicitly with `promote deploy --stage {name} --version N --allow-downgrade`",
                run.target.alias, run.alias.description
            ))
            .into());
        };
        if previous == view.version && view.split.is_none() {
            noop(run.ui(), &name, previous, "roll back");
            return Ok(());
        }
        plan::validate_target(previous, &run.published()).map_err(Exit::from)?;
        AliasWrite::serve(previous, view.version)
    } else {
        if view.split.is_none() {
            let hint = match AliasNote::parse(&run.alias.description).previous {
                Some(p) => format!(
                    "; to return to version {p}, served before, use `promote rollback --stage {name} --to-previous`"
                ),
                None => String::new(),
            };
            let text = format!(
                "{name} has no canary in progress (it serves {view}); nothing to roll back{hint}"
            );
            run.ui().say(&text);
            run.ui().result(&text, json!({"event": "done", "stage": name, "result": "noop", "alias": view_json(&view)}));
            return Ok(());
        }
        AliasWrite::clear(view.version)
    };
    let target_version = write.version;
    if dry_run {
        let text = format!(
            "dry run: would move alias {} of stage {name} from {view} to version {} with routing cleared",
            run.target.alias,
            run.label(target_version)
        );
        run.ui().result(&text, json!({"event": "dry_run", "command": "rollback", "stage": name, "from": view_json(&view),
            "to": {"version": v(target_version), "candidate": null}}));
        return Ok(());
    }
    run.stop_if_interrupted("rolling back")?;
    run.write(write, "rollback").await?;
    let text = format!(
        "{name} serves version {} only (was {view})",
        run.label(target_version)
    );
    run.ui().result(&text, json!({"event": "done", "stage": name, "result": "rolled_back", "alias": view_json(&run.alias.view)}));
    Ok(())
}
