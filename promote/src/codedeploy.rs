//! The CodeDeploy engine's thin adapter: create a deployment, read it and the traffic its
//! Lambda target reports, find the deployments in flight for a group, stop one with
//! rollback. Nothing here decides: `rollout::codedeploy` reads what these calls return, and
//! `cd_engine.rs` drives them.
//!
//! Also the in-memory stand-in's CodeDeploy ([`FakeDeployments`]): moto creates and lists
//! deployments but never progresses one and has no StopDeployment, so following a
//! deployment through its states is driven from there and from recorded responses
//! (`cd_engine_tests.rs`, `codedeploy_tests.rs`).

use std::collections::{BTreeMap, VecDeque};

use anyhow::{Context, Result, anyhow};
use aws_sdk_codedeploy::types::{AppSpecContent, DeploymentStatus, RevisionLocation};
use rollout::Version;
use rollout::codedeploy::{DeploymentRead, Status};
use serde_json::{Value, json};

use crate::aws::{Aws, concise};
use crate::fake::Fake;

/// The statuses of a deployment that has not ended: CodeDeploy runs one of these per group.
pub const IN_FLIGHT: [&str; 5] = ["Created", "Queued", "InProgress", "Baking", "Ready"];

/// One `CreateDeployment`: the stage's group, its deployment configuration and the AppSpec
/// as a string revision (`AppSpecContent`), so nothing needs an S3 bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRequest {
    pub application: String,
    pub group: String,
    pub config: String,
    pub appspec: String,
    pub description: String,
}

impl DeploymentRequest {
    /// The request as CodeDeploy's API names its fields (for `--dry-run`).
    pub fn to_json(&self) -> Value {
        json!({
            "applicationName": self.application,
            "deploymentGroupName": self.group,
            "deploymentConfigName": self.config,
            "description": self.description,
            "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content": self.appspec}},
        })
    }
}

/// A deployment as `GetDeployment` reports it, with the AppSpec it carries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Deployment {
    pub read: DeploymentRead,
    pub application: String,
    pub group: String,
    pub config: String,
    pub appspec: Option<String>,
}

/// What an AppSpec shifts, read back from a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    pub current: Version,
    pub target: Version,
}

impl Deployment {
    /// The versions this deployment shifts `alias` of `function` between, when its AppSpec
    /// is one promote could have written for them.
    pub fn shift_of(&self, function: &str, alias: &str) -> Option<Shift> {
        let spec: Value = serde_json::from_str(self.appspec.as_deref()?).ok()?;
        let props = spec["Resources"]
            .as_array()?
            .iter()
            .find_map(|r| r.get(function))?
            .get("Properties")?;
        if props["Name"].as_str()? != function || props["Alias"].as_str()? != alias {
            return None;
        }
        let version = |k: &str| Version::parse(props[k].as_str()?).ok();
        Some(Shift {
            current: version("CurrentVersion")?,
            target: version("TargetVersion")?,
        })
    }
}

pub trait Deployments {
    /// `CreateDeployment`; the new deployment's id.
    async fn create_deployment(&self, req: &DeploymentRequest) -> Result<String>;
    async fn get_deployment(&self, id: &str) -> Result<Deployment>;
    /// `ListDeployments` of the group, only those in [`IN_FLIGHT`] statuses.
    async fn in_flight(&self, application: &str, group: &str) -> Result<Vec<String>>;
    /// `ListDeploymentTargets` then `GetDeploymentTarget`: the target version's share
    /// (0.0 to 1.0) as the deployment's Lambda target reports it, once it has one.
    async fn target_weight(&self, id: &str) -> Result<Option<f64>>;
    /// `StopDeployment` with `autoRollbackEnabled`: CodeDeploy takes the traffic back with a
    /// rollback deployment of its own. Returns CodeDeploy's status message.
    async fn stop_deployment(&self, id: &str) -> Result<String>;
}

/// The real thing, over one SDK client (the SDK's retries as configured in `Aws::connect`).
pub struct CodeDeployApi {
    pub client: aws_sdk_codedeploy::Client,
}

fn sdk_err<E: std::error::Error + 'static>(e: E) -> anyhow::Error {
    tracing::debug!(error = %aws_sdk_codedeploy::error::DisplayErrorContext(&e), "CodeDeploy call failed");
    anyhow!("{}", concise(&e))
}

impl CodeDeployApi {
    pub async fn create_deployment(&self, req: &DeploymentRequest) -> Result<String> {
        let revision = RevisionLocation::builder()
            .revision_type(aws_sdk_codedeploy::types::RevisionLocationType::AppSpecContent)
            .app_spec_content(AppSpecContent::builder().content(&req.appspec).build())
            .build();
        let out = self
            .client
            .create_deployment()
            .application_name(&req.application)
            .deployment_group_name(&req.group)
            .deployment_config_name(&req.config)
            .description(&req.description)
            .revision(revision)
            .send()
            .await
            .map_err(sdk_err)
            .with_context(|| {
                format!(
                    "CreateDeployment in group {} of CodeDeploy application {}",
                    req.group, req.application
                )
            })?;
        out.deployment_id()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("CreateDeployment answered without a deployment id"))
    }

    pub async fn get_deployment(&self, id: &str) -> Result<Deployment> {
        let out = self
            .client
            .get_deployment()
            .deployment_id(id)
            .send()
            .await
            .map_err(sdk_err)
            .with_context(|| format!("GetDeployment {id}"))?;
        let info = out
            .deployment_info()
            .ok_or_else(|| anyhow!("GetDeployment {id} answered without deploymentInfo"))?;
        let status = match info.status() {
            Some(s) => Some(Status::parse(s.as_str())?),
            None => None,
        };
        let error = info.error_information().and_then(|e| {
            let code = e.code().map(|c| c.as_str().to_string());
            let message = e.message().map(str::to_string);
            (code.is_some() || message.is_some())
                .then(|| (code.unwrap_or_default(), message.unwrap_or_default()))
        });
        let rollback = info.rollback_info();
        let some = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
        Ok(Deployment {
            read: DeploymentRead {
                id: some(info.deployment_id()).unwrap_or_else(|| id.to_string()),
                status,
                target_weight: None,
                error,
                rollback_deployment_id: some(rollback.and_then(|r| r.rollback_deployment_id())),
                rollback_message: some(rollback.and_then(|r| r.rollback_message())),
                rollback_of: some(rollback.and_then(|r| r.rollback_triggering_deployment_id())),
            },
            application: info.application_name().unwrap_or_default().to_string(),
            group: info.deployment_group_name().unwrap_or_default().to_string(),
            config: info
                .deployment_config_name()
                .unwrap_or_default()
                .to_string(),
            appspec: info
                .revision()
                .and_then(|r| r.app_spec_content())
                .and_then(|c| c.content())
                .map(str::to_string),
        })
    }

    pub async fn in_flight(&self, application: &str, group: &str) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self
                .client
                .list_deployments()
                .application_name(application)
                .deployment_group_name(group)
                .set_next_token(token.clone());
            for s in IN_FLIGHT {
                req = req.include_only_statuses(DeploymentStatus::from(s));
            }
            let out = req.send().await.map_err(sdk_err).with_context(|| {
                format!("ListDeployments of group {group} of CodeDeploy application {application}")
            })?;
            ids.extend(out.deployments().iter().cloned());
            // An empty or repeated token ends it, as moto sometimes sends one.
            match out.next_token() {
                Some(t) if !t.is_empty() && token.as_deref() != Some(t) => {
                    token = Some(t.to_string());
                }
                _ => return Ok(ids),
            }
        }
    }

    pub async fn target_weight(&self, id: &str) -> Result<Option<f64>> {
        let targets = self
            .client
            .list_deployment_targets()
            .deployment_id(id)
            .send()
            .await
            .map_err(sdk_err)
            .with_context(|| format!("ListDeploymentTargets of deployment {id}"))?;
        // A Lambda deployment has one target: the function's alias.
        let Some(target) = targets.target_ids().first() else {
            return Ok(None);
        };
        let out = self
            .client
            .get_deployment_target()
            .deployment_id(id)
            .target_id(target)
            .send()
            .await
            .map_err(sdk_err)
            .with_context(|| format!("GetDeploymentTarget {target} of deployment {id}"))?;
        Ok(out
            .deployment_target()
            .and_then(|t| t.lambda_target())
            .and_then(|t| t.lambda_function_info())
            .map(|f| f.target_version_weight()))
    }

    pub async fn stop_deployment(&self, id: &str) -> Result<String> {
        let out = self
            .client
            .stop_deployment()
            .deployment_id(id)
            .auto_rollback_enabled(true)
            .send()
            .await
            .map_err(sdk_err)
            .with_context(|| format!("StopDeployment {id} (with automatic rollback)"))?;
        Ok(format!(
            "{}{}",
            out.status().map_or("", |s| s.as_str()),
            out.status_message()
                .map_or(String::new(), |m| format!(": {m}"))
        ))
    }
}

impl Deployments for Aws {
    async fn create_deployment(&self, req: &DeploymentRequest) -> Result<String> {
        self.codedeploy()?.create_deployment(req).await
    }
    async fn get_deployment(&self, id: &str) -> Result<Deployment> {
        self.codedeploy()?.get_deployment(id).await
    }
    async fn in_flight(&self, application: &str, group: &str) -> Result<Vec<String>> {
        self.codedeploy()?.in_flight(application, group).await
    }
    async fn target_weight(&self, id: &str) -> Result<Option<f64>> {
        self.codedeploy()?.target_weight(id).await
    }
    async fn stop_deployment(&self, id: &str) -> Result<String> {
        self.codedeploy()?.stop_deployment(id).await
    }
}

// ---- The in-memory stand-in -------------------------------------------------------------

/// One state a stand-in deployment reports, with the traffic CodeDeploy has shifted by then.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeRead {
    pub status: Status,
    pub weight: Option<f64>,
    pub error: Option<(String, String)>,
    pub rollback_deployment_id: Option<String>,
}

impl FakeRead {
    pub fn at(status: Status, weight: Option<f64>) -> FakeRead {
        FakeRead {
            status,
            weight,
            error: None,
            rollback_deployment_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FakeDeployment {
    pub request: DeploymentRequest,
    pub now: FakeRead,
    /// States reported at the next reads, one per `GetDeployment`; the last one stays.
    pub script: VecDeque<FakeRead>,
    /// Set on a rollback deployment: the deployment it takes back.
    pub rollback_of: Option<String>,
}

/// CodeDeploy as the stand-in models it: deployments follow their script one state per
/// `GetDeployment`, and moving through them moves the alias as CodeDeploy would (a share
/// on the target while shifting, the target alone once succeeded, the current version
/// alone once a rollback succeeded).
#[derive(Debug, Default)]
pub struct FakeDeployments {
    pub deployments: BTreeMap<String, FakeDeployment>,
    /// The script every created deployment gets.
    pub script_for_new: VecDeque<FakeRead>,
    pub created: Vec<DeploymentRequest>,
    pub stopped: Vec<String>,
    /// For every StopDeployment: whether signals were held (a critical section) when sent.
    pub held_at_stop: Vec<bool>,
    pub gets: usize,
    /// So many next `GetDeployment` calls fail.
    pub failing_gets: usize,
}

impl FakeDeployments {
    /// Puts a deployment in flight, as one created by an earlier run would be.
    pub fn insert(&mut self, id: &str, request: DeploymentRequest, script: Vec<FakeRead>) {
        let mut script: VecDeque<FakeRead> = script.into();
        let now = script
            .pop_front()
            .unwrap_or(FakeRead::at(Status::Created, None));
        self.deployments.insert(
            id.to_string(),
            FakeDeployment {
                request,
                now,
                script,
                rollback_of: None,
            },
        );
    }
}

impl Fake {
    /// Moves the alias to where deployment `d`'s state puts it.
    fn follow_alias(&self, d: &FakeDeployment) {
        let content: Value = serde_json::from_str(&d.request.appspec).unwrap_or_default();
        let Some(props) = content["Resources"][0]
            .as_object()
            .and_then(|o| o.values().next())
            .map(|r| r["Properties"].clone())
        else {
            return;
        };
        let v = |k: &str| {
            props[k]
                .as_str()
                .and_then(|s| Version::parse(s).ok())
                .expect("versions in the AppSpec")
        };
        let alias = props["Alias"].as_str().unwrap_or_default().to_string();
        let (current, target) = (v("CurrentVersion"), v("TargetVersion"));
        let view = match (d.now.status, d.now.weight, &d.rollback_of) {
            // A rollback deployment's AppSpec names the versions the other way round.
            (Status::Succeeded, _, _) => rollout::AliasView {
                version: target,
                split: None,
            },
            (Status::InProgress | Status::Baking, Some(w), None) if w > 0.0 && w < 1.0 => {
                rollout::AliasView {
                    version: current,
                    split: Some(rollout::Split {
                        version: target,
                        weight: rollout::Weight::from_fraction(w).expect("weight"),
                    }),
                }
            }
            _ => return,
        };
        let mut st = self.state.borrow_mut();
        if st.aliases.get(&alias).is_some_and(|a| a.view != view) {
            st.tamper(&alias, view);
        }
    }
}

impl Deployments for Fake {
    async fn create_deployment(&self, req: &DeploymentRequest) -> Result<String> {
        let mut st = self.state.borrow_mut();
        let cd = &mut st.codedeploy;
        cd.created.push(req.clone());
        let id = format!("d-FAKE{:05}", cd.created.len());
        let script: Vec<FakeRead> = cd.script_for_new.iter().cloned().collect();
        cd.insert(&id, req.clone(), script);
        Ok(id)
    }

    async fn get_deployment(&self, id: &str) -> Result<Deployment> {
        let d = {
            let mut st = self.state.borrow_mut();
            let cd = &mut st.codedeploy;
            cd.gets += 1;
            if cd.failing_gets > 0 {
                cd.failing_gets -= 1;
                return Err(anyhow!("GetDeployment {id}: connection reset"));
            }
            let d = cd
                .deployments
                .get_mut(id)
                .ok_or_else(|| anyhow!("DeploymentDoesNotExistException: {id}"))?;
            if let Some(next) = d.script.pop_front() {
                d.now = next;
            }
            d.clone()
        };
        self.follow_alias(&d);
        Ok(Deployment {
            read: DeploymentRead {
                id: id.to_string(),
                status: Some(d.now.status),
                target_weight: None,
                error: d.now.error.clone(),
                rollback_deployment_id: d.now.rollback_deployment_id.clone(),
                rollback_message: None,
                rollback_of: d.rollback_of.clone(),
            },
            application: d.request.application.clone(),
            group: d.request.group.clone(),
            config: d.request.config.clone(),
            appspec: Some(d.request.appspec.clone()),
        })
    }

    async fn in_flight(&self, application: &str, group: &str) -> Result<Vec<String>> {
        let st = self.state.borrow();
        Ok(st
            .codedeploy
            .deployments
            .iter()
            .filter(|(_, d)| {
                d.request.application == application
                    && d.request.group == group
                    && IN_FLIGHT.contains(&status_name(d.now.status))
            })
            .map(|(id, _)| id.clone())
            .collect())
    }

    async fn target_weight(&self, id: &str) -> Result<Option<f64>> {
        let st = self.state.borrow();
        Ok(st.codedeploy.deployments.get(id).and_then(|d| d.now.weight))
    }

    /// As CodeDeploy does: the deployment reads Stopped with a rollback deployment, which
    /// shifts the traffic back to the current version and succeeds.
    async fn stop_deployment(&self, id: &str) -> Result<String> {
        let held = self.interrupt.is_holding();
        let mut st = self.state.borrow_mut();
        let cd = &mut st.codedeploy;
        cd.stopped.push(id.to_string());
        cd.held_at_stop.push(held);
        let rollback_id = format!("{id}-rollback");
        let d = cd
            .deployments
            .get_mut(id)
            .ok_or_else(|| anyhow!("DeploymentDoesNotExistException: {id}"))?;
        if !IN_FLIGHT.contains(&status_name(d.now.status)) {
            return Err(anyhow!(
                "DeploymentAlreadyCompletedException: deployment {id} has already completed"
            ));
        }
        d.script = VecDeque::from([FakeRead {
            status: Status::Stopped,
            weight: d.now.weight,
            error: Some((
                "MANUAL_STOP".into(),
                "The deployment was stopped by the user".into(),
            )),
            rollback_deployment_id: Some(rollback_id.clone()),
        }]);
        // The rollback shifts the AppSpec's versions the other way round.
        let mut back = d.request.clone();
        back.appspec = swap_versions(&back.appspec);
        cd.deployments.insert(
            rollback_id,
            FakeDeployment {
                request: back,
                now: FakeRead::at(Status::InProgress, None),
                script: VecDeque::from([FakeRead::at(Status::Succeeded, Some(1.0))]),
                rollback_of: Some(id.to_string()),
            },
        );
        Ok("Pending: Stopping deployment".into())
    }
}

fn swap_versions(appspec: &str) -> String {
    let mut spec: Value = serde_json::from_str(appspec).unwrap_or_default();
    if let Some(props) = spec["Resources"][0]
        .as_object_mut()
        .and_then(|o| o.values_mut().next())
        .and_then(|r| r.get_mut("Properties"))
    {
        let current = props["CurrentVersion"].clone();
        props["CurrentVersion"] = props["TargetVersion"].clone();
        props["TargetVersion"] = current;
    }
    spec.to_string()
}

pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Created => "Created",
        Status::Queued => "Queued",
        Status::InProgress => "InProgress",
        Status::Baking => "Baking",
        Status::Ready => "Ready",
        Status::Succeeded => "Succeeded",
        Status::Failed => "Failed",
        Status::Stopped => "Stopped",
    }
}

#[cfg(test)]
#[path = "codedeploy_tests.rs"]
pub(crate) mod tests;
