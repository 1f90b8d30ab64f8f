//! The in-memory stand-in's CodeDeploy (tests only): moto creates and lists deployments but
//! never progresses one and has no StopDeployment, so a deployment's states are scripted
//! here, and moving through them moves the alias as CodeDeploy would.

use std::collections::{BTreeMap, VecDeque};

use anyhow::{Result, anyhow};
use rollout::Version;
use rollout::codedeploy::{DeploymentRead, Status};
use serde_json::Value;

use crate::cloud::codedeploy::*;
use crate::cloud::fake::Fake;

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
