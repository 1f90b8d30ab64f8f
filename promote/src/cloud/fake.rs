//! An in-memory stand-in for AWS, behind the same traits as the real adapters.
//!
//! It exists for what moto cannot show: moto neither rotates nor checks alias RevisionIds,
//! so the "changed by someone else" paths (a RevisionId conflict on UpdateAlias, an alias
//! moved by another writer between our read and our write, or during a bake) are driven
//! from here. Lambda's behaviour is modelled as documented: every write rotates the
//! RevisionId, and a write carrying a stale one fails.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use anyhow::{Result, anyhow};
use rollout::plan::{AlarmReading, AlarmValue};
use rollout::{AliasView, Split, Version, Weight};

use crate::cli::interrupt::Interrupt;
use crate::cli::ui::{Format, Ui};
use crate::cloud::aws::{
    Alarms, AliasRecord, AliasStore, AliasWrite, CodeUpdate, StageTarget, Stages, UpdateStatus,
    VersionInfo, Versions, WriteError,
};
use crate::ctx::Ctx;

pub type Hook = Box<dyn FnMut(&mut FakeState)>;
/// Answers a GetMetricData read (see [`FakeState::metrics`]).
pub type MetricsFn =
    Box<dyn FnMut(&crate::cloud::aws::MetricsQuery) -> Result<Vec<crate::cloud::aws::Series>>>;

#[derive(Default)]
pub struct FakeState {
    /// Lambda's per-version metrics: `None` answers every read with no datapoints (a stage
    /// that saw no traffic); a test installs a generator of the traffic it wants judged.
    pub metrics: Option<MetricsFn>,
    /// Every GetMetricData read, in order.
    pub metric_reads: Vec<crate::cloud::aws::MetricsQuery>,
    pub aliases: BTreeMap<String, AliasRecord>,
    pub versions: Vec<VersionInfo>,
    pub alarms: Vec<AlarmReading>,
    /// Alarm changes applied at successive DescribeAlarms calls: (name, new state).
    pub alarm_script: VecDeque<Vec<(String, AlarmValue)>>,
    /// Every UpdateAlias that reached "AWS": alias, write, RevisionId sent.
    pub updates: Vec<(String, AliasWrite, String)>,
    /// The UpdateAlias calls that were applied, in order.
    pub applied: Vec<(String, AliasWrite)>,
    /// For every UpdateAlias: whether signals were held (a critical section) when it was sent.
    pub held_at_update: Vec<bool>,
    /// Every call yields to the runtime once before acting, so that two runs sharing this
    /// stand-in on one runtime interleave call by call, as two processes would.
    pub interleave: bool,
    pub get_alias_calls: usize,
    pub alarm_reads: usize,
    /// Runs after the n-th GetAlias (1-based) returns: another writer acting.
    pub after_get: BTreeMap<usize, Hook>,
    /// Runs after the n-th DescribeAlarms (1-based).
    pub after_alarm_read: BTreeMap<usize, Hook>,
    /// Makes the next UpdateAlias fail as Lambda does on a stale RevisionId.
    pub fail_next_update_with_conflict: bool,
    /// The next UpdateAlias is applied, but its answer is lost (a timeout, a dropped
    /// connection): the caller sees a transient error.
    pub drop_next_update_response: bool,
    /// So many next UpdateAlias calls fail with a service error (throttling, 5xx).
    pub failing_updates: usize,
    /// So many next DescribeAlarms calls fail.
    pub failing_alarm_reads: usize,
    pub revision: u64,
    pub code_updates: Vec<Vec<u8>>,
    pub status_reads: usize,
    /// UpdateStatus answers, in order; Successful once exhausted.
    pub status_script: VecDeque<UpdateStatus>,
    pub published: Vec<(String, String)>,
    /// CodeDeploy (codedeploy.rs): deployments and the script they follow.
    pub codedeploy: crate::cloud::codedeploy::FakeDeployments,
}

impl FakeState {
    pub fn next_revision(&mut self) -> String {
        self.revision += 1;
        format!("rev-{}", self.revision)
    }

    /// Another writer moves an alias (rotating its RevisionId, as Lambda does).
    pub fn tamper(&mut self, alias: &str, view: AliasView) {
        let rev = self.next_revision();
        let rec = self.aliases.get_mut(alias).expect("alias");
        rec.view = view;
        rec.revision_id = rev;
    }

    pub fn set_alarm(&mut self, name: &str, value: AlarmValue) {
        let a = self
            .alarms
            .iter_mut()
            .find(|a| a.name == name)
            .expect("alarm");
        a.value = value;
        a.reason = format!("Threshold Crossed: {name} test datapoint");
    }
}

#[derive(Clone, Default)]
pub struct Fake {
    pub state: Rc<RefCell<FakeState>>,
    pub interrupt: Rc<Interrupt>,
}

pub fn ver(n: u64) -> Version {
    Version::new(n).unwrap()
}

pub fn pct(p: &str) -> Weight {
    Weight::parse_percent(p).unwrap()
}

pub fn view(version: u64, split: Option<(u64, &str)>) -> AliasView {
    AliasView {
        version: ver(version),
        split: split.map(|(v, w)| Split {
            version: ver(v),
            weight: pct(w),
        }),
    }
}

impl Fake {
    /// Three versions (0.1.0, 0.1.1, 0.1.2), aliases dev/test/live on version 1, the
    /// alarms of the repository's environments/ all OK. dev and test have each completed all
    /// three versions before (their notes' `served`) and returned to 1, so that the stage after
    /// each may take any of them past the path-to-live guard; the last stage's note is foreign
    /// text.
    pub fn seeded(env: &rollout::Environments) -> Fake {
        let fake = Fake::default();
        {
            let mut st = fake.state.borrow_mut();
            for i in 1..=3u64 {
                st.versions.push(VersionInfo {
                    version: ver(i),
                    description: format!("app 0.1.{} {}", i - 1, format!("{i}").repeat(40)),
                    code_sha256: format!("sha-{i}"),
                });
            }
            for s in &env.stages {
                let rev = st.next_revision();
                st.aliases.insert(
                    s.name.clone(),
                    AliasRecord {
                        name: s.name.clone(),
                        view: view(1, None),
                        description: if env
                            .stages
                            .iter()
                            .any(|t| t.upstream.as_deref() == Some(s.name.as_str()))
                        {
                            "promote/v1 served=2,3,1".to_string()
                        } else {
                            format!("stage {}", s.name)
                        },
                        revision_id: rev,
                    },
                );
                // Every function's, as the stack names them (`Alarm::name_for`).
                for f in &env.project.functions {
                    for name in s.alarm_names_for(&env.project, &f.name) {
                        if !st.alarms.iter().any(|a| a.name == name) {
                            st.alarms.push(AlarmReading {
                                name,
                                value: AlarmValue::Ok,
                                reason: "seeded".into(),
                            });
                        }
                    }
                }
            }
        }
        fake
    }

    pub fn set_alias(&self, alias: &str, v: AliasView) {
        self.state.borrow_mut().tamper(alias, v);
    }

    pub fn alias(&self, alias: &str) -> AliasRecord {
        self.state.borrow().aliases[alias].clone()
    }

    pub fn updates(&self) -> Vec<(String, AliasWrite, String)> {
        self.state.borrow().updates.clone()
    }

    pub fn applied(&self) -> Vec<(String, AliasWrite)> {
        self.state.borrow().applied.clone()
    }

    async fn turn(&self) {
        let interleave = self.state.borrow().interleave;
        if interleave {
            tokio::task::yield_now().await;
        }
    }
}

fn run_hook(state: &Rc<RefCell<FakeState>>, pick: impl Fn(&mut FakeState) -> Option<Hook>) {
    let hook = pick(&mut state.borrow_mut());
    if let Some(mut h) = hook {
        h(&mut state.borrow_mut());
    }
}

impl AliasStore for Fake {
    async fn get_alias(&self, alias: &str) -> Result<AliasRecord> {
        self.turn().await;
        let (rec, n) = {
            let mut st = self.state.borrow_mut();
            st.get_alias_calls += 1;
            let rec = st
                .aliases
                .get(alias)
                .cloned()
                .ok_or_else(|| anyhow!("no alias {alias}"))?;
            (rec, st.get_alias_calls)
        };
        run_hook(&self.state, |st| st.after_get.remove(&n));
        Ok(rec)
    }

    async fn update_alias(
        &self,
        alias: &str,
        write: &AliasWrite,
        revision_id: &str,
    ) -> Result<AliasRecord, WriteError> {
        self.turn().await;
        let mut st = self.state.borrow_mut();
        st.updates
            .push((alias.to_string(), write.clone(), revision_id.to_string()));
        st.held_at_update.push(self.interrupt.is_holding());
        if st.failing_updates > 0 {
            st.failing_updates -= 1;
            return Err(WriteError::Transient(anyhow!(
                "TooManyRequestsException: Rate exceeded"
            )));
        }
        let current = st
            .aliases
            .get(alias)
            .cloned()
            .ok_or_else(|| WriteError::Other(anyhow!("no alias {alias}")))?;
        if std::mem::take(&mut st.fail_next_update_with_conflict)
            || current.revision_id != revision_id
        {
            return Err(WriteError::Conflict(format!(
                "alias {alias}: RevisionId {revision_id} is no longer current"
            )));
        }
        let rev = st.next_revision();
        let rec = st.aliases.get_mut(alias).unwrap();
        rec.view = AliasView {
            version: write.version,
            split: write.split,
        };
        if let Some(d) = &write.description {
            rec.description = d.clone();
        }
        rec.revision_id = rev;
        let rec = rec.clone();
        st.applied.push((alias.to_string(), write.clone()));
        if std::mem::take(&mut st.drop_next_update_response) {
            return Err(WriteError::Transient(anyhow!(
                "dispatch failure: connection closed before the response"
            )));
        }
        Ok(rec)
    }
}

impl Versions for Fake {
    async fn list_versions(&self) -> Result<Vec<VersionInfo>> {
        self.turn().await;
        Ok(self.state.borrow().versions.clone())
    }

    async fn update_code(&self, zip: Vec<u8>) -> Result<CodeUpdate> {
        let mut st = self.state.borrow_mut();
        st.code_updates.push(zip);
        let rev = st.next_revision();
        Ok(CodeUpdate {
            code_sha256: String::new(),
            revision_id: Some(rev),
        })
    }

    async fn update_status(&self) -> Result<(UpdateStatus, String)> {
        let mut st = self.state.borrow_mut();
        st.status_reads += 1;
        Ok((
            st.status_script
                .pop_front()
                .unwrap_or(UpdateStatus::Successful),
            String::new(),
        ))
    }

    async fn publish_version(
        &self,
        description: &str,
        code_sha256: &str,
        _revision_id: Option<&str>,
    ) -> Result<VersionInfo> {
        let mut st = self.state.borrow_mut();
        st.published
            .push((description.to_string(), code_sha256.to_string()));
        let info = VersionInfo {
            version: ver(st.versions.len() as u64 + 1),
            description: description.to_string(),
            code_sha256: code_sha256.to_string(),
        };
        st.versions.push(info.clone());
        Ok(info)
    }
}

impl Stages for Fake {
    async fn resolve(&self, stage: &str) -> Result<StageTarget> {
        self.turn().await;
        Ok(StageTarget {
            stage: stage.to_string(),
            alias: stage.to_string(),
            invoke_url: format!("https://fakeapi.execute-api.eu-west-2.amazonaws.com/{stage}"),
            variables: [("lambdaAlias".to_string(), stage.to_string())].into(),
        })
    }
}

impl Alarms for Fake {
    async fn read(&self, names: &[String]) -> Result<Vec<AlarmReading>> {
        self.turn().await;
        let (out, n) = {
            let mut st = self.state.borrow_mut();
            st.alarm_reads += 1;
            if st.failing_alarm_reads > 0 {
                st.failing_alarm_reads -= 1;
                return Err(anyhow!("DescribeAlarms: connection reset"));
            }
            if let Some(changes) = st.alarm_script.pop_front() {
                for (name, value) in changes {
                    st.set_alarm(&name, value);
                }
            }
            let out: Vec<AlarmReading> = st
                .alarms
                .iter()
                .filter(|a| names.contains(&a.name))
                .cloned()
                .collect();
            (out, st.alarm_reads)
        };
        run_hook(&self.state, |st| st.after_alarm_read.remove(&n));
        Ok(out)
    }
}

/// Copies the frozen test environments into `dir` (for tests that break a file).
pub fn copy_environments(dir: &std::path::Path) {
    let from = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/environments"
    ));
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
}

/// A frozen copy of environments/, so that tuning the real files does not change test
/// expectations.
pub fn env() -> rollout::Environments {
    rollout::Environments::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/environments"
    ))
    .unwrap()
}

/// The frozen environments, a seeded [`Fake`] and a capturing UI: what a command needs.
pub struct World {
    pub env: rollout::Environments,
    pub fake: Fake,
    pub ui: Ui,
}

impl World {
    pub fn new(format: Format) -> World {
        let env = env();
        let fake = Fake::seeded(&env);
        World {
            env,
            fake,
            ui: Ui::capture(format),
        }
    }
    pub fn ctx(&self) -> Ctx<'_, Fake> {
        Ctx {
            cloud: &self.fake,
            env: &self.env,
            ui: &self.ui,
            interrupt: &self.fake.interrupt,
            function: &self.env.project.main_function().name,
        }
    }
    pub fn stdout(&self) -> String {
        self.ui.output().0
    }
    pub fn stderr(&self) -> String {
        self.ui.output().1
    }
}

impl crate::cloud::aws::Metrics for Fake {
    async fn version_metrics(
        &self,
        q: &crate::cloud::aws::MetricsQuery,
    ) -> Result<Vec<crate::cloud::aws::Series>> {
        let mut st = self.state.borrow_mut();
        st.metric_reads.push(q.clone());
        match st.metrics.as_mut() {
            Some(f) => f(q),
            None => Ok(vec![crate::cloud::aws::Series::default(); q.series.len()]),
        }
    }
}
