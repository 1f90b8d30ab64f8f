//! The CodeDeploy engine's thin adapter: create a deployment, read it and the traffic its
//! Lambda target reports, find the deployments in flight for a group, stop one with
//! rollback. Nothing here decides: `rollout::codedeploy` reads what these calls return, and
//! `rollout::machine` decides what to call (applied by `commands.rs` and `run.rs`).
//!
//! The in-memory stand-in's CodeDeploy lives in `fake_codedeploy.rs`, built for tests only:
//! moto creates and lists deployments but never progresses one and has no StopDeployment,
//! so following a deployment through its states is driven from there and from recorded
//! responses (`cd_engine_tests.rs`, `codedeploy_tests.rs`).

use anyhow::{Context, Result, anyhow};
use aws_sdk_codedeploy::types::{AppSpecContent, DeploymentStatus, RevisionLocation};
use rollout::Version;
pub use rollout::codedeploy::Shift;
use rollout::codedeploy::{DeploymentRead, DeploymentView, Status};
use serde_json::{Value, json};

use aliases::sdk_error::concise;
// The stand-in's types where the engine's tests have always found them.
#[cfg(any(test, feature = "testing"))]
pub use crate::cloud::fake_codedeploy::{FakeDeployment, FakeDeployments, FakeRead};

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

    /// The deployment as the decision function observes it; `None` while it reports no
    /// status (read it again).
    pub fn view(&self, function: &str, alias: &str) -> Option<DeploymentView> {
        Some(DeploymentView {
            id: self.read.id.clone(),
            application: self.application.clone(),
            config: self.config.clone(),
            shift: self.shift_of(function, alias),
            status: self.read.status?,
            rollback_of: self.read.rollback_of.clone(),
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

pub fn status_name(s: Status) -> &'static str {
    s.as_str()
}

#[cfg(test)]
#[path = "codedeploy_tests.rs"]
pub(crate) mod tests;
